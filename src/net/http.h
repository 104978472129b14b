// HTTP transport types and the server (STYLE: net/ is HTTP transport only).
//
// The server reads a request head, asks the Application how to handle it (on the worker pool,
// since deciding may touch SQLite), then either reads the body (bounded) and runs a local
// handler on the worker pool, answers at once, or relays the request to an upstream (the CPA
// proxy) streaming both bodies. Handlers never see sockets.
//
// Threading: Asio I/O threads run sessions; blocking work (handlers, SQLite) runs on a separate
// worker pool. HttpServer is started and stopped from one thread.
#pragma once

#include <boost/json/value.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace cpamp::net {

// Limits and deadlines (STYLE habit 9).
inline constexpr int64_t kHeaderReadTimeoutMs = 10'000;  // as upstream's ReadHeaderTimeout
inline constexpr int64_t kBodyReadTimeoutMs = 300'000;   // whole-body deadline for local routes
inline constexpr int64_t kWriteTimeoutMs = 300'000;
inline constexpr int64_t kIdleKeepAliveMs = 120'000;
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;
inline constexpr size_t kDefaultBodyLimit = 4 * 1024 * 1024;
inline constexpr int64_t kUpstreamConnectTimeoutMs = 10'000;
inline constexpr int64_t kUpstreamIdleTimeoutMs = 600'000;  // no bytes either way for this long

using Headers = std::vector<std::pair<std::string, std::string>>;

// Case-insensitive header lookup; "" when absent.
std::string_view FindHeader(const Headers& headers, std::string_view name);

struct RequestHead {
  std::string method;  // "GET", ...
  std::string target;  // raw request target, path + "?" + query
  std::string path;    // decoded? no: raw path without query
  std::string query;   // raw query without '?'
  Headers headers;
  std::string remote_address;  // peer IP address, no port
  bool has_body = false;       // Content-Length > 0 or chunked

  std::string_view Header(std::string_view name) const { return FindHeader(headers, name); }
  // First value of a query parameter (percent-decoded), nullopt when absent.
  std::optional<std::string> QueryParam(std::string_view name) const;
};

struct Request {
  RequestHead head;
  std::string body;
  const std::string& method() const { return head.method; }
  const std::string& path() const { return head.path; }
  std::string_view Header(std::string_view name) const { return head.Header(name); }
};

// Produces the next piece of a streamed body into `chunk` (cleared by the caller). Returns
// true while more may follow, false when done; an error aborts the connection. Runs on the
// worker pool.
using BodyStream = std::function<Result<bool>(std::string& chunk)>;

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  BodyStream stream;     // when set, `body` is ignored and the body is sent chunked
  int64_t delay_ms = 0;  // wait this long before answering (failed-login slow-down)
  bool close = false;    // close the connection after this response

  void SetHeader(std::string name, std::string value);
  static Response Json(int status, const boost::json::value& body);
  static Response Text(int status, std::string body,
                       std::string content_type = "text/plain; charset=utf-8");
  static Response Empty(int status);
  // The {"error","code"} envelope for a non-OK status.
  static Response FromStatus(const Status& status);
  static Response ErrorJson(int status, std::string_view message, std::string_view code);
};

// Where and how to relay a request (the CPA proxy).
struct ProxyPlan {
  std::string scheme;   // "http" | "https"
  std::string host;     // upstream host (no brackets for v6)
  std::string port;     // "8317"
  std::string target;   // path + query sent upstream
  Headers set_headers;  // replace these (e.g. Authorization)
  std::vector<std::string> remove_headers;
  Headers response_headers;  // added to the relayed response (CORS)
  bool tls_skip_verify = false;
  // Called once with the outcome, for the access log / metrics (status or 502).
  std::function<void(int status)> on_done;
};

// What the application decided for a request head.
struct Dispatch {
  enum class Kind { kLocal, kRespond, kProxy };
  Kind kind = Kind::kLocal;
  size_t body_limit = kDefaultBodyLimit;  // kLocal: larger bodies get 413
  Response response;                      // kRespond
  ProxyPlan proxy;                        // kProxy
};

class Application {
 public:
  virtual ~Application() = default;
  // Runs on the worker pool; may block briefly (SQLite reads).
  virtual Dispatch Classify(const RequestHead& head) = 0;
  // Runs on the worker pool once the body is read.
  virtual Response Handle(const Request& request) = 0;
  // Called after every response (access log). Runs on an I/O thread; must not block.
  virtual void OnCompleted(const RequestHead& head, int status, int64_t duration_ms) = 0;
};

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 18317;
  int io_threads = 2;
  int worker_threads = 4;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Application& app);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. Returns the bound address as "host:port".
  Result<std::string> Start();
  uint16_t BoundPort() const;
  // Stops accepting, lets in-flight requests finish for up to `grace_ms`, then closes.
  void Stop(int64_t grace_ms = 10'000);
  // Blocks until SIGINT/SIGTERM (or Stop from elsewhere); returns the signal number or 0.
  int WaitForSignal();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpamp::net
