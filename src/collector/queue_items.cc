// SplitQueueArray design notes: a single forward scan with a nesting depth and a string state
// (backslash escapes skip one byte, so `\"` never closes a string). Elements end at a top-level
// ',' or ']'. Strings are decoded with Boost.JSON on the element alone; every other element is
// passed on as text. Measured: the old DOM parse + per-item serialise of a 4,096-record answer
// cost more CPU than normalising it (docs/benchmarks-ingest.md).
#include "collector/queue_items.h"

#include <boost/json.hpp>

namespace cpamp::collector {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Skips one JSON string starting at body[i] == '"'; returns the index after the closing quote,
// or npos when it never closes.
size_t SkipString(std::string_view body, size_t i) {
  for (++i; i < body.size(); ++i) {
    if (body[i] == '\\') {
      ++i;
    } else if (body[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

}  // namespace

bool SplitQueueArray(std::string_view body, std::vector<std::string>* items, size_t* answered,
                     std::string* error) {
  std::vector<std::string> out;
  size_t n = 0;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < body.size() && IsSpace(body[i])) ++i;
  };
  auto fail = [&](std::string why) {
    *error = std::move(why);
    return false;
  };
  skip_ws();
  if (i >= body.size() || body[i] != '[') return fail("not a JSON array");
  ++i;
  skip_ws();
  if (i < body.size() && body[i] == ']') {
    ++i;
  } else {
    for (;;) {
      skip_ws();
      if (i >= body.size()) return fail("unterminated array");
      const size_t start = i;
      if (body[i] == '"') {
        i = SkipString(body, i);
        if (i == std::string_view::npos) return fail("unterminated string");
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(body.substr(start, i - start), ec);
        if (ec || !v.is_string()) return fail("invalid string element");
        if (!v.get_string().empty()) out.emplace_back(v.get_string());
      } else if (body[i] == '{' || body[i] == '[') {
        // A container: up to the bracket that closes it (bracket kinds are checked by the
        // normaliser's parse of the element).
        int depth = 0;
        for (; i < body.size(); ++i) {
          const char c = body[i];
          if (c == '"') {
            i = SkipString(body, i);
            if (i == std::string_view::npos) return fail("unterminated string");
            --i;
          } else if (c == '{' || c == '[') {
            ++depth;
          } else if (c == '}' || c == ']') {
            if (--depth == 0) {
              ++i;
              break;
            }
          }
        }
        if (depth != 0) return fail("unterminated element");
        out.emplace_back(body.substr(start, i - start));
      } else {
        // A scalar: up to whitespace, ',' or ']'.
        while (i < body.size() && !IsSpace(body[i]) && body[i] != ',' && body[i] != ']') ++i;
        std::string_view text = body.substr(start, i - start);
        if (text.empty()) return fail("empty element");
        if (text != "null") out.emplace_back(text);
      }
      ++n;
      skip_ws();
      if (i >= body.size()) return fail("unterminated array");
      if (body[i] == ',') {
        ++i;
        continue;
      }
      if (body[i] == ']') {
        ++i;
        break;
      }
      return fail("expected ',' or ']'");
    }
  }
  skip_ws();
  if (i != body.size()) return fail("trailing data after the array");
  *answered = n;
  for (std::string& s : out) items->push_back(std::move(s));
  return true;
}

}  // namespace cpamp::collector
