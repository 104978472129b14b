#include "base/json.h"

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

std::string Serialize(const bj::value& v) {
  std::string out = bj::serialize(v);
  out.push_back('\n');
  return out;
}

}  // namespace cpamp::json
