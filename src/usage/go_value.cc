// Go-compatible reading and writing of decoded JSON values.
//
// Upstream decodes a queue item with encoding/json into map[string]any, so every number is a
// float64, invalid UTF-8 becomes U+FFFD, duplicate keys keep the last value, and json.Marshal
// writes objects with sorted keys, HTML-safe escapes and shortest float64 text. The event hash
// and the raw_json column depend on those details, so this file reproduces them over a
// boost::json DOM (parsed with allow_invalid_utf8; the repair happens here, when a string is
// read or written). Number text comes from std::to_chars' shortest round-trip digits, laid out
// the way strconv.FormatFloat lays them out ('f', 'e' or %v's 'g').
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/json.h"
#include "usage/internal.h"

namespace cpamp::usage::internal {

namespace {

constexpr uint32_t kRuneError = 0xFFFD;

// Decodes one rune at s[i]; invalid sequences yield {kRuneError, 1} like Go's utf8.DecodeRune.
struct Rune {
  uint32_t r;
  size_t size;
};

Rune DecodeRune(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  size_t n = s.size() - i;
  unsigned char c0 = p[0];
  if (c0 < 0x80) return {c0, 1};
  if (c0 < 0xC2 || c0 > 0xF4) return {kRuneError, 1};
  auto cont = [&](size_t k) { return k < n && (p[k] & 0xC0) == 0x80; };
  if (c0 < 0xE0) {
    if (!cont(1)) return {kRuneError, 1};
    return {static_cast<uint32_t>((c0 & 0x1F) << 6 | (p[1] & 0x3F)), 2};
  }
  if (c0 < 0xF0) {
    if (!cont(1) || !cont(2)) return {kRuneError, 1};
    if (c0 == 0xE0 && p[1] < 0xA0) return {kRuneError, 1};  // overlong
    if (c0 == 0xED && p[1] > 0x9F) return {kRuneError, 1};  // surrogate
    return {static_cast<uint32_t>((c0 & 0x0F) << 12 | (p[1] & 0x3F) << 6 | (p[2] & 0x3F)), 3};
  }
  if (!cont(1) || !cont(2) || !cont(3)) return {kRuneError, 1};
  if (c0 == 0xF0 && p[1] < 0x90) return {kRuneError, 1};  // overlong
  if (c0 == 0xF4 && p[1] > 0x8F) return {kRuneError, 1};  // > U+10FFFF
  return {static_cast<uint32_t>((c0 & 0x07) << 18 | (p[1] & 0x3F) << 12 | (p[2] & 0x3F) << 6 |
                                (p[3] & 0x3F)),
          4};
}

bool IsGoSpace(uint32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

// Decoded size of the rune that ends at s[end) (scanning back at most 4 bytes), or 0.
Rune LastRune(std::string_view s, size_t end) {
  size_t start = end;
  size_t limit = end >= 4 ? end - 4 : 0;
  while (start > limit) {
    --start;
    if ((static_cast<unsigned char>(s[start]) & 0xC0) != 0x80) break;
  }
  Rune r = DecodeRune(s, start);
  if (start + r.size != end) return {kRuneError, 1};
  return r;
}

// Shortest round-trip decimal digits of |d| > 0 with d = 0.DIGITS x 10^point.
struct Digits {
  char buf[32];
  int count = 0;
  int point = 0;
};

Digits ShortestDigits(double d) {
  char tmp[64];
  auto res = std::to_chars(tmp, tmp + sizeof(tmp), std::fabs(d), std::chars_format::scientific);
  Digits out;
  const char* p = tmp;
  for (; p < res.ptr && *p != 'e'; ++p) {
    if (*p != '.') out.buf[out.count++] = *p;
  }
  int exp = 0;
  if (p < res.ptr) std::from_chars(p + 1 + (p[1] == '+' ? 1 : 0), res.ptr, exp);
  while (out.count > 1 && out.buf[out.count - 1] == '0') --out.count;
  out.point = exp + 1;
  return out;
}

void AppendFixed(std::string& out, const Digits& dg) {
  if (dg.point <= 0) {
    out.append("0.");
    out.append(static_cast<size_t>(-dg.point), '0');
    out.append(dg.buf, static_cast<size_t>(dg.count));
  } else if (dg.point >= dg.count) {
    out.append(dg.buf, static_cast<size_t>(dg.count));
    out.append(static_cast<size_t>(dg.point - dg.count), '0');
  } else {
    out.append(dg.buf, static_cast<size_t>(dg.point));
    out.push_back('.');
    out.append(dg.buf + dg.point, static_cast<size_t>(dg.count - dg.point));
  }
}

void AppendExponent(std::string& out, const Digits& dg) {
  out.push_back(dg.buf[0]);
  if (dg.count > 1) {
    out.push_back('.');
    out.append(dg.buf + 1, static_cast<size_t>(dg.count - 1));
  }
  int exp = dg.point - 1;
  out.push_back('e');
  out.push_back(exp < 0 ? '-' : '+');
  int a = exp < 0 ? -exp : exp;
  if (a < 10) out.push_back('0');
  out.append(std::to_string(a));
}

double ValueAsDouble(const bj::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  return static_cast<double>(v.get_uint64());
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

// ---- UTF-8 ----

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    Rune r = DecodeRune(s, i);
    if (r.r == kRuneError && r.size == 1) return false;
    i += r.size;
  }
  return true;
}

std::string ToValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    Rune r = DecodeRune(s, i);
    if (r.r == kRuneError && r.size == 1) {
      out.append("\xEF\xBF\xBD");
    } else {
      out.append(s.substr(i, r.size));
    }
    i += r.size;
  }
  return out;
}

size_t RuneBoundaryPrefix(std::string_view s, size_t max_bytes) {
  if (max_bytes >= s.size()) return s.size();
  size_t n = max_bytes;
  // Back up over continuation bytes (at most 3) to the start of the rune that straddles the cut.
  size_t steps = 0;
  while (n > 0 && steps < 4 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
    --n;
    ++steps;
  }
  return n;
}

std::string_view GoTrimSpace(std::string_view s) {
  size_t b = 0;
  while (b < s.size()) {
    Rune r = DecodeRune(s, b);
    if (!IsGoSpace(r.r)) break;
    b += r.size;
  }
  size_t e = s.size();
  while (e > b) {
    Rune r = LastRune(s, e);
    if (!IsGoSpace(r.r)) break;
    e -= r.size;
  }
  return s.substr(b, e - b);
}

void LimitBytesWithEllipsis(std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return;
  size_t keep = max_bytes >= 3 ? max_bytes - 3 : 0;
  s.resize(RuneBoundaryPrefix(s, keep));
  s.append("...");
}

// ---- Reading ----

const bj::value* FirstPresent(const bj::object& o, Keys keys) {
  for (std::string_view k : keys) {
    if (auto it = o.find(k); it != o.end()) return &it->value();
  }
  return nullptr;
}

int64_t GoFloatToInt(double d) {
  if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0)) {
    return std::numeric_limits<int64_t>::min();
  }
  return static_cast<int64_t>(d);
}

std::string ScalarString(const bj::value* v) {
  if (v == nullptr) return {};
  switch (v->kind()) {
    case bj::kind::string: {
      std::string_view t = GoTrimSpace(std::string_view(v->get_string()));
      if (IsValidUtf8(t)) return std::string(t);
      return std::string(GoTrimSpace(ToValidUtf8(t)));
    }
    case bj::kind::bool_:
      return v->get_bool() ? "true" : "false";
    case bj::kind::int64:
    case bj::kind::uint64:
    case bj::kind::double_: {
      double d = ValueAsDouble(*v);
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.2e18) {
        return std::to_string(static_cast<int64_t>(d));
      }
      return GoFormatFloatV(d);
    }
    default:
      return {};
  }
}

int64_t ScalarInt(const bj::value* v) {
  if (v == nullptr) return 0;
  switch (v->kind()) {
    case bj::kind::int64:
    case bj::kind::uint64:
    case bj::kind::double_:
      return GoFloatToInt(std::trunc(ValueAsDouble(*v)));
    case bj::kind::string: {
      std::string_view t = GoTrimSpace(std::string_view(v->get_string()));
      if (!t.empty() && t[0] == '+') {
        t.remove_prefix(1);
        if (t.empty() || t[0] == '-') return 0;
      }
      int64_t out = 0;
      auto res = std::from_chars(t.data(), t.data() + t.size(), out, 10);
      if (t.empty() || res.ec != std::errc() || res.ptr != t.data() + t.size()) return 0;
      return out;
    }
    default:
      return 0;
  }
}

std::optional<double> ScalarDouble(const bj::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_number()) return ValueAsDouble(*v);
  if (v->is_string()) {
    std::string_view t = GoTrimSpace(std::string_view(v->get_string()));
    if (!t.empty() && t[0] == '+') t.remove_prefix(1);
    double d = 0;
    auto res = std::from_chars(t.data(), t.data() + t.size(), d);
    if (t.empty() || res.ec != std::errc() || res.ptr != t.data() + t.size() || !std::isfinite(d))
      return std::nullopt;
    return d;
  }
  return std::nullopt;
}

std::string ReadString(const bj::object& o, Keys keys) {
  return ScalarString(FirstPresent(o, keys));
}

// ---- Number formatting ----

std::string GoFormatFloatV(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  std::string out;
  if (std::signbit(d)) out.push_back('-');
  if (d == 0) {
    out.push_back('0');
    return out;
  }
  Digits dg = ShortestDigits(d);
  int exp = dg.point - 1;
  if (exp < -4 || exp >= 6) {
    AppendExponent(out, dg);
  } else {
    AppendFixed(out, dg);
  }
  return out;
}

// ---- Writing ----

void AppendGoJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  size_t i = 0;
  size_t run = 0;  // start of the pending run of bytes copied verbatim
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
        ++i;
        continue;
      }
      out.append(s.data() + run, i - run);
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\f':
          out.append("\\f");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        default:
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
      }
      run = ++i;
      continue;
    }
    Rune r = DecodeRune(s, i);
    if ((r.r == kRuneError && r.size == 1) || r.r == 0x2028 || r.r == 0x2029) {
      out.append(s.data() + run, i - run);
      // Go's decoder already turned invalid bytes into U+FFFD, which the encoder writes raw.
      out.append(r.r == 0x2028 ? "\\u2028" : r.r == 0x2029 ? "\\u2029" : "\xEF\xBF\xBD");
      i += r.size;
      run = i;
      continue;
    }
    i += r.size;
  }
  out.append(s.data() + run, i - run);
  out.push_back('"');
}

namespace {

struct KeyedValue {
  std::string_view key;
  const bj::value* value;
};

// Collects the members of `o` sorted by key bytes (Go sorts map keys with sort.Strings).
void SortedMembers(const bj::object& o, std::vector<KeyedValue>& out) {
  out.clear();
  out.reserve(o.size());
  for (const auto& kv : o) out.push_back({std::string_view(kv.key()), &kv.value()});
  std::sort(out.begin(), out.end(),
            [](const KeyedValue& a, const KeyedValue& b) { return a.key < b.key; });
}

bool AppendNumber(std::string& out, const bj::value& v) {
  double d = ValueAsDouble(v);
  if (!std::isfinite(d)) return false;
  json::AppendDouble(out, d);  // encoding/json float64 layout
  return true;
}

}  // namespace

bool AppendGoJson(std::string& out, const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::null:
      out.append("null");
      return true;
    case bj::kind::bool_:
      out.append(v.get_bool() ? "true" : "false");
      return true;
    case bj::kind::int64:
    case bj::kind::uint64:
    case bj::kind::double_:
      return AppendNumber(out, v);
    case bj::kind::string:
      AppendGoJsonString(out, std::string_view(v.get_string()));
      return true;
    case bj::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const bj::value& e : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        if (!AppendGoJson(out, e)) return false;
      }
      out.push_back(']');
      return true;
    }
    case bj::kind::object: {
      std::vector<KeyedValue> members;
      SortedMembers(v.get_object(), members);
      out.push_back('{');
      bool first = true;
      for (const KeyedValue& m : members) {
        if (!first) out.push_back(',');
        first = false;
        AppendGoJsonString(out, m.key);
        out.push_back(':');
        if (!AppendGoJson(out, *m.value)) return false;
      }
      out.push_back('}');
      return true;
    }
  }
  return true;
}

namespace {

enum class KeyClass { kPlain, kSecret, kClientIp, kForwardedFor, kUserAgent, kFailBody, kFail };

// Normalised key (lower-case, trimmed, '-' and ' ' -> '_') classified for §4.8 redaction.
KeyClass ClassifyKey(std::string_view key, bool parent_is_fail) {
  char buf[64];
  std::string_view t = GoTrimSpace(key);
  if (t.size() > sizeof(buf)) {
    // Long keys can only match the "contains secret" rule.
    std::string lower(t);
    for (char& c : lower) c = AsciiLower(c);
    return lower.find("secret") != std::string::npos ? KeyClass::kSecret : KeyClass::kPlain;
  }
  for (size_t i = 0; i < t.size(); ++i) {
    char c = AsciiLower(t[i]);
    buf[i] = (c == '-' || c == ' ') ? '_' : c;
  }
  std::string_view n(buf, t.size());
  if (n == "api_key" || n == "apikey" || n == "authorization" || n == "cookie" ||
      n == "set_cookie" || n == "access_token" || n == "refresh_token" || n == "id_token" ||
      n == "token" || n.find("secret") != std::string_view::npos) {
    return KeyClass::kSecret;
  }
  if (n == "client_ip" || n == "clientip") return KeyClass::kClientIp;
  if (n == "x_forwarded_for" || n == "xforwardedfor") return KeyClass::kForwardedFor;
  if (n == "user_agent" || n == "useragent") return KeyClass::kUserAgent;
  if (n == "fail_body" || n == "failbody" || (parent_is_fail && n == "body")) {
    return KeyClass::kFailBody;
  }
  if (n == "fail") return KeyClass::kFail;
  return KeyClass::kPlain;
}

bool AppendRedacted(std::string& out, const bj::value& v, bool is_fail_object) {
  if (v.is_array()) {
    out.push_back('[');
    bool first = true;
    for (const bj::value& e : v.get_array()) {
      if (!first) out.push_back(',');
      first = false;
      if (!AppendRedacted(out, e, is_fail_object)) return false;
    }
    out.push_back(']');
    return true;
  }
  if (!v.is_object()) return AppendGoJson(out, v);
  std::vector<KeyedValue> members;
  SortedMembers(v.get_object(), members);
  out.push_back('{');
  bool first = true;
  for (const KeyedValue& m : members) {
    if (!first) out.push_back(',');
    first = false;
    AppendGoJsonString(out, m.key);
    out.push_back(':');
    KeyClass cls = ClassifyKey(m.key, is_fail_object);
    const bj::value& val = *m.value;
    if (cls == KeyClass::kSecret) {
      out.append("\"[redacted]\"");
      continue;
    }
    if (val.is_string()) {
      std::string_view s(val.get_string());
      switch (cls) {
        case KeyClass::kClientIp:
          AppendGoJsonString(out, SanitizeClientField(s, kClientIpMaxBytes));
          continue;
        case KeyClass::kForwardedFor:
          AppendGoJsonString(out, SanitizeClientField(s, kForwardedForMaxBytes));
          continue;
        case KeyClass::kUserAgent:
          AppendGoJsonString(out, SanitizeClientField(s, kUserAgentMaxBytes));
          continue;
        case KeyClass::kFailBody:
          AppendGoJsonString(out, RedactFailureText(s));
          continue;
        default:
          break;
      }
    }
    if (!AppendRedacted(out, val, cls == KeyClass::kFail)) return false;
  }
  out.push_back('}');
  return true;
}

}  // namespace

bool AppendRedactedGoJson(std::string& out, const bj::value& v) {
  return AppendRedacted(out, v, false);
}

bool AllNumbersFinite(const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::double_:
    case bj::kind::int64:
    case bj::kind::uint64:
      return std::isfinite(ValueAsDouble(v));
    case bj::kind::array:
      for (const bj::value& e : v.get_array()) {
        if (!AllNumbersFinite(e)) return false;
      }
      return true;
    case bj::kind::object:
      for (const auto& kv : v.get_object()) {
        if (!AllNumbersFinite(kv.value())) return false;
      }
      return true;
    default:
      return true;
  }
}

}  // namespace cpamp::usage::internal
