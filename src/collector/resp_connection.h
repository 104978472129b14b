// RespConnection: one blocking RESP2 client connection to CPA's API port (spec cpa-protocol.md
// §2), plain TCP or TLS, on top of the strict codec in clients/resp.
//
// Every call takes a deadline (STYLE habit 9). Read() may return "nothing yet" when its
// deadline passes: a pending read stays armed and simply continues on the next Read(), so a
// caller can poll in short slices (to notice Stop) without losing bytes or breaking TLS state.
// A write that misses its deadline, any socket error, EOF or a protocol error breaks the
// connection: the caller discards it and reconnects.
//
// Error messages carry no stage prefix (the collector adds `<stage>: `). When the peer answers
// with something that is not RESP and starts with 'H' (an HTTP server, typically a reverse proxy
// in front of CPA) the error is `unsupported RESP prefix 'H'` plus a hint to pass raw TCP or use
// collector mode http, and not_resp() turns true.
//
// Threading: not thread-safe; one owner thread. Owns its socket and io_context.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "clients/resp/resp.h"

namespace cpamp::collector {

inline constexpr int64_t kRespConnectTimeoutMs = 10'000;       // resolve + connect + TLS handshake
inline constexpr int64_t kRespCommandTimeoutMs = 30'000;       // one command and its reply
inline constexpr size_t kRespMaxBulkBytes = size_t{16} << 20;  // one usage record

struct RespEndpoint {
  std::string host;
  std::string port;
  bool tls = false;
  bool tls_skip_verify = false;
};

// host/port/tls from a CPA base URL ("http://cpa:8317" -> cpa, 8317, plain).
Result<RespEndpoint> RespEndpointFromBaseUrl(std::string_view base_url, bool tls_skip_verify);

class RespConnection {
 public:
  static Result<std::unique_ptr<RespConnection>> Connect(
      const RespEndpoint& endpoint, int64_t timeout_ms = kRespConnectTimeoutMs);
  ~RespConnection();
  RespConnection(const RespConnection&) = delete;
  RespConnection& operator=(const RespConnection&) = delete;

  // Writes one command (array of bulk strings).
  Status Send(const std::vector<std::string_view>& args,
              int64_t timeout_ms = kRespCommandTimeoutMs);
  // The next reply/message, or nullopt when none completed within timeout_ms.
  Result<std::optional<resp::Value>> Read(int64_t timeout_ms);
  // Send + wait for one reply; a missing reply within timeout_ms is an error.
  Result<resp::Value> Command(const std::vector<std::string_view>& args,
                              int64_t timeout_ms = kRespCommandTimeoutMs);

  // True once the peer was seen to speak something other than RESP (e.g. HTTP).
  bool not_resp() const { return not_resp_; }
  // True once a read ended because the peer closed the connection (EOF).
  bool peer_closed() const { return peer_closed_; }
  // Bytes received but not yet returned by Read(): parser buffer plus the socket's receive queue.
  // A large value means the reader is behind the sender.
  size_t UnreadBytes() const;

 private:
  struct Impl;
  explicit RespConnection(std::unique_ptr<Impl> impl);
  Status Broken(Status status);

  std::unique_ptr<Impl> impl_;
  bool broken_ = false;
  bool not_resp_ = false;
  bool peer_closed_ = false;
};

}  // namespace cpamp::collector
