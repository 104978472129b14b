#include "clients/cpa/cpa_client.h"

#include <boost/json.hpp>

#include <cmath>

#include "base/strings.h"

namespace cpamp::cpa {
namespace {

http_client::Request MakeRequest(const Connection& conn, std::string method, std::string path) {
  http_client::Request req;
  req.method = std::move(method);
  req.url = conn.base_url + path;
  req.timeout_ms = conn.timeout_ms;
  req.tls_skip_verify = conn.tls_skip_verify;
  req.headers.emplace_back("Authorization", "Bearer " + conn.management_key);
  req.headers.emplace_back("Accept", "application/json");
  req.max_response_bytes = 32 * 1024 * 1024;
  return req;
}

const boost::json::value* Find(const boost::json::object& o, std::string_view kebab,
                               std::string_view camel) {
  if (auto it = o.find(kebab); it != o.end()) return &it->value();
  if (auto it = o.find(camel); it != o.end()) return &it->value();
  return nullptr;
}

}  // namespace

Result<http_client::Response> GetConfig(const Connection& conn) {
  return http_client::Fetch(MakeRequest(conn, "GET", "/v0/management/config"));
}

Result<http_client::Response> SetUsageStatisticsEnabled(const Connection& conn, bool enabled) {
  auto req = MakeRequest(conn, "PUT", "/v0/management/usage-statistics-enabled");
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = enabled ? R"({"value":true})" : R"({"value":false})";
  return http_client::Fetch(req);
}

Result<http_client::Response> ListAuthFiles(const Connection& conn) {
  return http_client::Fetch(MakeRequest(conn, "GET", "/v0/management/auth-files"));
}

UsageSettings ParseUsageSettings(const boost::json::object& config) {
  UsageSettings s;
  if (const auto* v = Find(config, "usage-statistics-enabled", "usageStatisticsEnabled")) {
    if (v->is_bool()) {
      s.usage_statistics_enabled = v->as_bool();
    } else if (v->is_string()) {
      std::string t = ToLower(Trim(v->as_string()));
      s.usage_statistics_enabled = t == "true" || t == "1" || t == "yes" || t == "on";
    }
  }
  if (const auto* v =
          Find(config, "redis-usage-queue-retention-seconds", "redisUsageQueueRetentionSeconds")) {
    long long n = 0;
    bool parsed = false;
    if (v->is_int64()) {
      n = v->as_int64();
      parsed = true;
    } else if (v->is_uint64()) {
      n = static_cast<long long>(std::min<uint64_t>(v->as_uint64(), INT64_MAX));
      parsed = true;
    } else if (v->is_double() && std::isfinite(v->as_double())) {
      n = static_cast<long long>(v->as_double());
      parsed = true;
    } else if (v->is_string()) {
      parsed = ParseInt64(Trim(v->as_string()), &n);
    }
    if (parsed) {
      s.retention_seconds = n;
      s.retention_source_default = false;
    }
  }
  if (const auto* v = Find(config, "proxy-url", "proxyUrl"); v && v->is_string()) {
    s.proxy_url = std::string(v->as_string());
  }
  return s;
}

}  // namespace cpamp::cpa
