// Outbound HTTP/1.1 client (plain and TLS) for calls to CPA and price sources.
//
// Fetch() is blocking: it runs its own small io_context on the calling thread, so call it
// from a worker thread, never from an I/O thread. Every call has one overall deadline and a
// response size limit. Thread-safe (no shared state besides the TLS contexts).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace cpamp::http_client {

using Headers = std::vector<std::pair<std::string, std::string>>;

inline constexpr int64_t kDefaultTimeoutMs = 30'000;
inline constexpr size_t kDefaultMaxResponseBytes = 64 * 1024 * 1024;

struct Url {
  std::string scheme;  // http | https
  std::string host;    // without brackets
  std::string port;    // explicit or scheme default
  std::string target;  // path + query, at least "/"
};
// Parses an absolute http(s) URL.
Result<Url> ParseUrl(std::string_view url);

struct Request {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  int64_t timeout_ms = kDefaultTimeoutMs;
  bool tls_skip_verify = false;
  size_t max_response_bytes = kDefaultMaxResponseBytes;
  // Forward proxy ("http://[user:pass@]host:port"): https targets are tunnelled with CONNECT,
  // http targets are sent in absolute form. Empty = direct.
  std::string proxy_url;
};

struct Response {
  int status = 0;
  Headers headers;
  std::string body;
  std::string_view Header(std::string_view name) const;
  bool ok() const { return status >= 200 && status < 300; }
};

// "401 Unauthorized": the status code and its standard reason phrase (Go's resp.Status).
std::string StatusLine(int status);

// Errors are ErrorCode::kUpstreamUnavailable with a Go-like message, e.g.
// `Get "http://127.0.0.1:1/x": dial tcp 127.0.0.1:1: connect: connection refused`.
Result<Response> Fetch(const Request& request);

}  // namespace cpamp::http_client
