// Serialize() writes JSON the way Go's encoding/json does for the same values, so responses read
// like upstream's: a double is its shortest round-trip decimal, in plain notation when
// 1e-6 <= |x| < 1e21 (100, not 1E2; 1.25, not 1.25E0) and otherwise as 1e-7 / 1e+21 (Go drops a
// leading zero of a negative exponent). Non-finite doubles, which Go refuses to encode, become
// null. Strings are escaped as Boost.JSON does ("\\", "\"", \b \f \n \r \t, other control
// characters as \u00XX); objects keep their insertion order. The writer walks the DOM once into
// one string with no intermediate copies.
#include "base/json.h"

#include <charconv>
#include <cmath>

namespace cpamp::json {

Result<bj::value> Parse(std::string_view text) {
  boost::system::error_code ec;
  bj::value v = bj::parse(text, ec);
  if (ec) return Error(ErrorCode::kBadRequest, "invalid JSON: " + ec.message());
  return v;
}

Result<bj::object> ParseObject(std::string_view text) {
  auto v = Parse(text);
  if (!v.ok()) return v.status();
  if (!v->is_object()) return Error(ErrorCode::kBadRequest, "invalid JSON: expected an object");
  return std::move(v->as_object());
}

std::optional<std::string> GetString(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return std::nullopt;
  return std::string(it->value().as_string());
}

std::optional<long long> GetInt(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  const bj::value& v = it->value();
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) {
    if (v.as_uint64() > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<long long>(v.as_uint64());
  }
  if (v.is_double()) {
    double d = v.as_double();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18)
      return static_cast<long long>(d);
  }
  return std::nullopt;
}

std::optional<double> GetDouble(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  const bj::value& v = it->value();
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  return std::nullopt;
}

std::optional<bool> GetBool(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_bool()) return std::nullopt;
  return it->value().as_bool();
}

const bj::object* GetObject(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_object()) return nullptr;
  return &it->value().as_object();
}

const bj::array* GetArray(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_array()) return nullptr;
  return &it->value().as_array();
}

namespace {

void AppendEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escape
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '\b': out.push_back('b'); break;
      case '\f': out.push_back('f'); break;
      case '\n': out.push_back('n'); break;
      case '\r': out.push_back('r'); break;
      case '\t': out.push_back('t'); break;
      default:
        out.append("u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void AppendValue(std::string& out, const bj::value& v) {
  char buf[64];
  switch (v.kind()) {
    case bj::kind::null: out.append("null"); return;
    case bj::kind::bool_: out.append(v.get_bool() ? "true" : "false"); return;
    case bj::kind::int64: {
      auto r = std::to_chars(buf, buf + sizeof(buf), v.get_int64());
      out.append(buf, r.ptr);
      return;
    }
    case bj::kind::uint64: {
      auto r = std::to_chars(buf, buf + sizeof(buf), v.get_uint64());
      out.append(buf, r.ptr);
      return;
    }
    case bj::kind::double_: AppendDouble(out, v.get_double()); return;
    case bj::kind::string: AppendEscaped(out, v.get_string()); return;
    case bj::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const bj::value& el : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        AppendValue(out, el);
      }
      out.push_back(']');
      return;
    }
    case bj::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        AppendEscaped(out, kv.key());
        out.push_back(':');
        AppendValue(out, kv.value());
      }
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

void AppendDouble(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out.append("null");
    return;
  }
  // The shortest round-trip digits come from to_chars' scientific form ("-d.ddde+XX"); plain
  // notation is then laid out by hand so that, as in Go, digits beyond the shortest ones are
  // zeros (1.2345678901234568e+20 -> 123456789012345680000, not the exact binary value).
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  const size_t e_pos = sci.find('e');
  std::string_view mantissa = sci.substr(0, e_pos);
  int exp10 = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exp10);
  const double a = std::fabs(d);
  const bool plain = a == 0 || (a >= 1e-6 && a < 1e21);
  if (!plain) {
    out.append(mantissa);
    out.push_back('e');
    out.push_back(exp10 < 0 ? '-' : '+');
    auto er = std::to_chars(buf, buf + sizeof(buf), exp10 < 0 ? -exp10 : exp10);
    out.append(buf, er.ptr);  // no leading zero: e-7, e+21
    return;
  }
  if (!mantissa.empty() && mantissa.front() == '-') {
    out.push_back('-');
    mantissa.remove_prefix(1);
  }
  std::string digits;  // mantissa without the point: value = 0.digits * 10^(exp10 + 1)
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  if (exp10 < 0) {
    out.append("0.");
    out.append(static_cast<size_t>(-exp10 - 1), '0');
    out.append(digits);
    return;
  }
  const auto int_len = static_cast<size_t>(exp10) + 1;
  if (digits.size() <= int_len) {
    out.append(digits);
    out.append(int_len - digits.size(), '0');
    return;
  }
  out.append(digits, 0, int_len);
  out.push_back('.');
  out.append(digits, int_len, std::string::npos);
}

std::string Serialize(const bj::value& v) {
  std::string out;
  out.reserve(256);
  AppendValue(out, v);
  out.push_back('\n');
  return out;
}

}  // namespace cpamp::json
