// RespConnection design notes.
//
// - Blocking facade over Asio: each call starts async operations on a private io_context and
//   runs it on the calling thread until the operation completes or the deadline passes
//   (run_one_until). No extra threads, no timers to cancel.
// - Reads are never cancelled on a slice timeout: the async_read_some stays pending and the next
//   Read() keeps running it. Cancelling a TLS read half-way could corrupt the TLS record state;
//   leaving it armed is correct for both plain and TLS streams and loses no bytes. One read and
//   one write may be outstanding together (allowed for ssl::stream on one thread), so the
//   subscribe loop can send PING while its read is pending.
// - A failed or timed-out write, connect or handshake closes the socket; the handlers then run
//   with operation_aborted while the io_context drains, so nothing outlives the Impl.
// - TLS: no ALPN (CPA then routes by the first byte to its RESP handler); SNI for host names;
//   peer verification against the system store with host-name check unless tls_skip_verify.
// - Replies are parsed by the strict codec with a 16 MiB bulk limit (one usage record).
#include "collector/resp_connection.h"

#include <openssl/ssl.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>

#include "clients/http/http_client.h"

namespace cpamp::collector {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

SteadyTime DeadlineIn(int64_t ms) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<int64_t>(ms, 0));
}

resp::Limits ReplyLimits() {
  resp::Limits l;
  l.max_bulk_length = kRespMaxBulkBytes;
  l.max_buffered_bytes = kRespMaxBulkBytes + (size_t{1} << 20);
  l.max_value_bytes = size_t{256} << 20;
  return l;
}

bool IsRespPrefix(char c) { return c == '+' || c == '-' || c == ':' || c == '$' || c == '*'; }

Status NetError(std::string message) {
  return Error(ErrorCode::kUpstreamUnavailable, std::move(message));
}

}  // namespace

Result<RespEndpoint> RespEndpointFromBaseUrl(std::string_view base_url, bool tls_skip_verify) {
  CPAMP_ASSIGN_OR_RETURN(http_client::Url url, http_client::ParseUrl(base_url));
  RespEndpoint ep;
  ep.host = url.host;
  ep.port = url.port;
  ep.tls = url.scheme == "https";
  ep.tls_skip_verify = tls_skip_verify;
  return ep;
}

struct RespConnection::Impl {
  explicit Impl(const RespEndpoint& ep)
      : endpoint(ep), ssl_ctx(asio::ssl::context::tls_client), parser(ReplyLimits()) {}

  tcp::socket& Lowest() { return tls ? tls->next_layer() : *plain; }

  // Runs handlers until `done` or the deadline; false when the deadline passed first.
  bool RunUntil(const bool& done, SteadyTime deadline) {
    while (!done) {
      if (io.stopped()) io.restart();
      if (io.run_one_until(deadline) == 0 && !done &&
          std::chrono::steady_clock::now() >= deadline) {
        return false;
      }
    }
    return true;
  }

  // Closes the socket and lets every aborted handler run.
  void CloseAndDrain() {
    boost::system::error_code ignored;
    if (tls || plain) Lowest().close(ignored);
    io.restart();
    io.run_for(std::chrono::seconds(1));
  }

  template <typename Stream>
  void StartRead(Stream& s) {
    s.async_read_some(asio::buffer(buf), [this](boost::system::error_code ec, size_t n) {
      read_ec = ec;
      read_n = n;
      read_done = true;
    });
  }
  void StartRead() {
    read_done = false;
    read_pending = true;
    if (tls) {
      StartRead(*tls);
    } else {
      StartRead(*plain);
    }
  }

  template <typename Stream>
  void StartWrite(Stream& s) {
    asio::async_write(s, asio::buffer(write_buf), [this](boost::system::error_code ec, size_t) {
      write_ec = ec;
      write_done = true;
    });
  }

  std::string Where() const { return endpoint.host + ":" + endpoint.port; }

  RespEndpoint endpoint;
  asio::io_context io;
  asio::ssl::context ssl_ctx;
  std::optional<tcp::socket> plain;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  resp::Parser parser;
  std::array<char, 64 * 1024> buf{};
  bool read_pending = false;
  bool read_done = false;
  boost::system::error_code read_ec;
  size_t read_n = 0;
  std::string write_buf;
  bool write_done = false;
  boost::system::error_code write_ec;
  bool got_first_byte = false;
  char first_byte = 0;
};

RespConnection::RespConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RespConnection::~RespConnection() {
  if (impl_) impl_->CloseAndDrain();
}

Result<std::unique_ptr<RespConnection>> RespConnection::Connect(const RespEndpoint& endpoint,
                                                                int64_t timeout_ms) {
  auto impl = std::make_unique<Impl>(endpoint);
  Impl& m = *impl;
  const SteadyTime deadline = DeadlineIn(timeout_ms);
  const std::string dial = "dial tcp " + m.Where();

  tcp::resolver resolver(m.io);
  bool resolved = false;
  boost::system::error_code resolve_ec;
  tcp::resolver::results_type results;
  resolver.async_resolve(endpoint.host, endpoint.port,
                         [&](boost::system::error_code ec, tcp::resolver::results_type r) {
                           resolve_ec = ec;
                           results = std::move(r);
                           resolved = true;
                         });
  if (!m.RunUntil(resolved, deadline)) {
    resolver.cancel();
    m.io.restart();
    m.io.run_for(std::chrono::seconds(1));
    return NetError(dial + ": lookup timed out");
  }
  if (resolve_ec) return NetError(dial + ": lookup " + endpoint.host + ": " + resolve_ec.message());

  if (endpoint.tls) {
    boost::system::error_code ec;
    if (endpoint.tls_skip_verify) {
      m.ssl_ctx.set_verify_mode(asio::ssl::verify_none);
    } else {
      m.ssl_ctx.set_default_verify_paths(ec);
      m.ssl_ctx.set_verify_mode(asio::ssl::verify_peer);
      m.ssl_ctx.set_verify_callback(asio::ssl::host_name_verification(endpoint.host));
    }
    m.tls.emplace(m.io, m.ssl_ctx);
  } else {
    m.plain.emplace(m.io);
  }

  bool connected = false;
  boost::system::error_code connect_ec;
  asio::async_connect(m.Lowest(), results, [&](boost::system::error_code ec, const tcp::endpoint&) {
    connect_ec = ec;
    connected = true;
  });
  if (!m.RunUntil(connected, deadline)) {
    m.CloseAndDrain();
    return NetError(dial + ": i/o timeout");
  }
  if (connect_ec) {
    m.CloseAndDrain();
    return NetError(dial + ": connect: " + connect_ec.message());
  }
  boost::system::error_code ignored;
  m.Lowest().set_option(tcp::no_delay(true), ignored);
  m.Lowest().set_option(asio::socket_base::keep_alive(true), ignored);

  if (m.tls) {
    boost::system::error_code addr_ec;
    asio::ip::make_address(endpoint.host, addr_ec);
    if (addr_ec) SSL_set_tlsext_host_name(m.tls->native_handle(), endpoint.host.c_str());
    bool shaken = false;
    boost::system::error_code hs_ec;
    m.tls->async_handshake(asio::ssl::stream_base::client, [&](boost::system::error_code ec) {
      hs_ec = ec;
      shaken = true;
    });
    if (!m.RunUntil(shaken, deadline)) {
      m.CloseAndDrain();
      return NetError("tls handshake with " + m.Where() + ": i/o timeout");
    }
    if (hs_ec) {
      m.CloseAndDrain();
      return NetError("tls handshake with " + m.Where() + ": " + hs_ec.message());
    }
  }
  return std::unique_ptr<RespConnection>(new RespConnection(std::move(impl)));
}

Status RespConnection::Broken(Status status) {
  if (!broken_) {
    broken_ = true;
    impl_->CloseAndDrain();
  }
  return status;
}

Status RespConnection::Send(const std::vector<std::string_view>& args, int64_t timeout_ms) {
  if (broken_) return NetError("connection is closed");
  Impl& m = *impl_;
  m.write_buf = resp::EncodeCommand(args);
  m.write_done = false;
  if (m.tls) {
    m.StartWrite(*m.tls);
  } else {
    m.StartWrite(*m.plain);
  }
  if (!m.RunUntil(m.write_done, DeadlineIn(timeout_ms))) {
    return Broken(NetError("write tcp " + m.Where() + ": i/o timeout"));
  }
  if (m.write_ec) return Broken(NetError("write tcp " + m.Where() + ": " + m.write_ec.message()));
  return Status::Ok();
}

Result<std::optional<resp::Value>> RespConnection::Read(int64_t timeout_ms) {
  if (broken_) return NetError("connection is closed");
  Impl& m = *impl_;
  const SteadyTime deadline = DeadlineIn(timeout_ms);
  while (true) {
    resp::ParseResult r = m.parser.Next();
    if (r.has_value()) return std::optional<resp::Value>(std::move(r.value));
    if (r.is_error()) {
      std::string message = r.error;
      if (m.got_first_byte && !IsRespPrefix(m.first_byte)) {
        not_resp_ = true;
        if (m.first_byte == 'H') {
          message +=
              " (the peer answered with HTTP: a reverse proxy in front of CPA must pass raw TCP "
              "to CPA's port for RESP, or set the collector mode to http)";
        }
      }
      return Broken(Error(ErrorCode::kUpstreamUnavailable, message));
    }
    if (!m.read_pending) m.StartRead();
    if (!m.RunUntil(m.read_done, deadline)) return std::optional<resp::Value>();
    m.read_pending = false;
    if (m.read_ec) {
      if (m.read_ec == asio::error::eof || m.read_ec == asio::ssl::error::stream_truncated) {
        peer_closed_ = true;
        return Broken(NetError("read tcp " + m.Where() + ": connection closed by peer (EOF)"));
      }
      return Broken(NetError("read tcp " + m.Where() + ": " + m.read_ec.message()));
    }
    if (m.read_n > 0 && !m.got_first_byte) {
      m.got_first_byte = true;
      m.first_byte = m.buf[0];
    }
    m.parser.Feed(std::string_view(m.buf.data(), m.read_n));
  }
}

size_t RespConnection::UnreadBytes() const {
  if (broken_) return 0;
  Impl& m = *impl_;
  boost::system::error_code ec;
  size_t socket_bytes = (m.tls || m.plain) ? m.Lowest().available(ec) : 0;
  if (ec) socket_bytes = 0;
  return m.parser.buffered_bytes() + socket_bytes;
}

Result<resp::Value> RespConnection::Command(const std::vector<std::string_view>& args,
                                            int64_t timeout_ms) {
  const SteadyTime deadline = DeadlineIn(timeout_ms);
  CPAMP_RETURN_IF_ERROR(Send(args, timeout_ms));
  int64_t left = std::chrono::duration_cast<std::chrono::milliseconds>(
                     deadline - std::chrono::steady_clock::now())
                     .count();
  CPAMP_ASSIGN_OR_RETURN(std::optional<resp::Value> reply, Read(left));
  if (!reply) {
    return Broken(NetError("read tcp " + impl_->Where() + ": i/o timeout"));
  }
  return std::move(*reply);
}

}  // namespace cpamp::collector
