// Typed calls the Manager Server makes to CPA's Management API (besides the proxy).
//
// Blocking (built on http_client::Fetch): call from worker threads only. Each call uses the
// CPA timeout of upstream HEAD (30 s) unless the Connection says otherwise.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>

#include "base/status.h"
#include "clients/http/http_client.h"

namespace cpamp::cpa {

inline constexpr int64_t kCpaTimeoutMs = 30'000;
inline constexpr int64_t kDefaultRetentionSeconds = 60;

struct Connection {
  std::string base_url;        // normalised, e.g. http://cpa:8317
  std::string management_key;  // plaintext CPA Management Key
  bool tls_skip_verify = false;
  int64_t timeout_ms = kCpaTimeoutMs;
};

// What CPAMP reads from GET /v0/management/config.
struct UsageSettings {
  bool usage_statistics_enabled = false;
  int64_t retention_seconds = kDefaultRetentionSeconds;
  bool retention_source_default = true;  // CPA omitted the key (CPA < v6.10.1)
  std::string proxy_url;
};

// GET {base}/v0/management/config with the Bearer key. Transport errors are a Status; any
// HTTP answer (including non-2xx) is a Response for the caller to judge.
Result<http_client::Response> GetConfig(const Connection& conn);
// PUT {base}/v0/management/usage-statistics-enabled {"value":enabled}.
Result<http_client::Response> SetUsageStatisticsEnabled(const Connection& conn, bool enabled);
// GET {base}/v0/management/auth-files.
Result<http_client::Response> ListAuthFiles(const Connection& conn);

// Reads usage-statistics-enabled / redis-usage-queue-retention-seconds / proxy-url, each also
// in camelCase; numbers or numeric strings; truthy strings "true|1|yes|on".
UsageSettings ParseUsageSettings(const boost::json::object& config);

}  // namespace cpamp::cpa
