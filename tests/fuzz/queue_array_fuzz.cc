// libFuzzer harness for SplitQueueArray (src/collector/queue_items.h), differential against a
// Boost.JSON DOM parse of the same bytes.
//
// Invariants on every input:
//   1. No crash, leak or undefined behaviour (ASan/UBSan).
//   2. When Boost.JSON parses the input as an array, SplitQueueArray accepts it, counts the same
//      number of elements, and its items are, in order, the non-null non-empty elements: a
//      string element unescaped, an object or array as text that parses to the same structure
//      (numbers compared by kind only), a scalar as its own text from the input.
//   3. When SplitQueueArray rejects the input it says why and returns no items.
#include <boost/json/src.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "collector/queue_items.h"

namespace {

// Equal, any number equal to any number: Boost 1.81's fast number parser may round a long
// mantissa, or an out-of-range exponent, differently depending on where the number sits in the
// input buffer, and SplitQueueArray passes number text through untouched anyway.
bool Same(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_number() && b.is_number()) return true;
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto& x = a.get_array();
    const auto& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!Same(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto& x = a.get_object();
    const auto& y = b.get_object();
    if (x.size() != y.size()) return false;
    auto it = y.begin();
    for (const auto& kv : x) {
      if (kv.key() != it->key() || !Same(kv.value(), it->value())) return false;
      ++it;
    }
    return true;
  }
  return a == b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> items;
  size_t answered = 0;
  std::string error;
  const bool ok = cpamp::collector::SplitQueueArray(body, &items, &answered, &error);
  if (!ok && (error.empty() || !items.empty())) std::abort();

  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_array()) return 0;
  if (!ok || answered != v.get_array().size()) std::abort();
  size_t next = 0;
  for (const boost::json::value& el : v.get_array()) {
    if (el.is_null()) continue;
    if (el.is_string()) {
      if (el.get_string().empty()) continue;
      if (next >= items.size() || items[next] != std::string_view(el.get_string())) std::abort();
    } else {
      if (next >= items.size()) std::abort();
      boost::system::error_code ec2;
      if (el.is_object() || el.is_array()) {
        boost::json::value back = boost::json::parse(items[next], ec2);
        if (ec2 || !Same(back, el)) std::abort();
      } else if (items[next].empty() || body.find(items[next]) == std::string_view::npos) {
        std::abort();  // a scalar is passed on as its own text (Boost parses "0E9999" alone
                       // differently from inside an array, so it is not re-parsed here)
      }
    }
    ++next;
  }
  if (next != items.size()) std::abort();
  return 0;
}
