// Blocking HTTP client built on Beast coroutines running on a private io_context.
//
// One overall deadline is converted into per-operation expiries on the tcp_stream, so a slow
// upstream can never hold a worker thread past `timeout_ms`. TLS verifies the peer against the
// system trust store (with host-name checking) unless `tls_skip_verify`. Responses larger than
// `max_response_bytes` fail instead of growing memory without bound.

#include "clients/http/http_client.h"

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <chrono>
#include <optional>

#include "base/strings.h"

namespace cpamp::http_client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunkBytes = 64 * 1024;  // one socket read at most

std::string GoMethod(const std::string& m) {
  if (m.empty()) return "Get";
  std::string out = ToLower(m);
  out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

ssl::context& TlsContext(bool verify) {
  static ssl::context* verify_ctx = [] {
    auto* c = new ssl::context(ssl::context::tls_client);  // NOLINT: process-lifetime singleton
    c->set_default_verify_paths();
    c->set_verify_mode(ssl::verify_peer);
    return c;
  }();
  static ssl::context* plain_ctx = [] {
    auto* c = new ssl::context(ssl::context::tls_client);  // NOLINT: process-lifetime singleton
    c->set_verify_mode(ssl::verify_none);
    return c;
  }();
  return verify ? *verify_ctx : *plain_ctx;
}

// "user:pass" from an URL's authority, "" when absent.
std::string UserInfo(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return "";
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  size_t at = rest.rfind('@');
  return at == std::string_view::npos ? "" : std::string(rest.substr(0, at));
}

struct Call {
  const Request& req;
  Url url;
  std::optional<Url> proxy;
  std::chrono::steady_clock::time_point deadline;
  Result<Response> result = Error(ErrorCode::kUpstreamUnavailable, "request did not complete");

  std::chrono::steady_clock::duration Remaining() const {
    auto left = deadline - std::chrono::steady_clock::now();
    return left > std::chrono::steady_clock::duration::zero() ? left : std::chrono::milliseconds(1);
  }
  std::string Prefix() const { return GoMethod(req.method) + " \"" + req.url + "\": "; }
  Status Fail(const std::string& what) const {
    return Error(ErrorCode::kUpstreamUnavailable, Prefix() + what);
  }

  template <class Stream>
  asio::awaitable<void> Exchange(Stream& stream) {
    http::request<http::string_body> r;
    r.method_string(req.method.empty() ? "GET" : req.method);
    // Through a forward proxy, plain-HTTP requests carry the absolute URL.
    r.target(proxy && url.scheme == "http" ? req.url : url.target);
    if (proxy && url.scheme == "http") AddProxyAuth(r);
    r.version(11);
    bool default_port =
        (url.scheme == "https" && url.port == "443") || (url.scheme == "http" && url.port == "80");
    std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
    r.set(http::field::host, default_port ? host : host + ":" + url.port);
    r.set(http::field::user_agent, "cpa-manager-plus");
    for (const auto& [k, v] : req.headers) r.set(k, v);
    r.keep_alive(false);
    r.body() = req.body;
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
      r.prepare_payload();
    }
    beast::get_lowest_layer(stream).expires_after(Remaining());
    auto [wec, wn] = co_await http::async_write(stream, r, kTuple);
    if (wec) {
      result = Fail("write: " + wec.message());
      co_return;
    }
    // Beast sizes each read by the buffer's free capacity (at least 512 bytes); the parser moves
    // body bytes out at once, so an unreserved buffer stays small and a 5 MB usage-queue answer
    // took ~11,000 reads of ~500 bytes, each with an epoll wait and a timer update.
    beast::flat_buffer buffer;
    buffer.reserve(kReadChunkBytes);
    http::response_parser<http::string_body> parser;
    parser.body_limit(req.max_response_bytes);
    parser.header_limit(64 * 1024);
    if (req.method == "HEAD") parser.skip(true);
    beast::get_lowest_layer(stream).expires_after(Remaining());
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kTuple);
    if (rec == beast::error::timeout) {
      result = Fail("context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
      co_return;
    }
    if (rec == http::error::body_limit) {
      result = Fail("response body exceeds " + std::to_string(req.max_response_bytes) + " bytes");
      co_return;
    }
    if (rec) {
      result = Fail("read: " + rec.message());
      co_return;
    }
    Response out;
    auto& msg = parser.get();
    out.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) out.headers.emplace_back(f.name_string(), f.value());
    out.body = std::move(msg.body());
    result = std::move(out);
  }

  template <class Message>
  void AddProxyAuth(Message& m) const {
    std::string user = UserInfo(req.proxy_url);
    if (!user.empty()) m.set(http::field::proxy_authorization, "Basic " + Base64Encode(user));
  }

  // Sends CONNECT host:port to the proxy and waits for its 2xx.
  asio::awaitable<bool> Tunnel(beast::tcp_stream& stream) {
    std::string authority =
        (url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host) + ":" +
        url.port;
    http::request<http::empty_body> connect{http::verb::connect, authority, 11};
    connect.set(http::field::host, authority);
    AddProxyAuth(connect);
    stream.expires_after(Remaining());
    auto [wec, wn] = co_await http::async_write(stream, connect, kTuple);
    if (wec) {
      result = Fail("proxyconnect tcp: " + wec.message());
      co_return false;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    parser.skip(true);  // a CONNECT answer has no body
    stream.expires_after(Remaining());
    auto [rec, rn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
    if (rec) {
      result = Fail("proxyconnect tcp: " + rec.message());
      co_return false;
    }
    int status = static_cast<int>(parser.get().result_int());
    if (status < 200 || status >= 300) {
      result = Fail("proxy refused CONNECT: " + StatusLine(status));
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<void> Run() {
    auto exec = co_await asio::this_coro::executor;
    tcp::resolver resolver(exec);
    const Url& dial = proxy ? *proxy : url;
    auto [rec, endpoints] = co_await resolver.async_resolve(dial.host, dial.port, kTuple);
    if (rec) {
      result = Fail("dial tcp: lookup " + dial.host + ": " + rec.message());
      co_return;
    }
    auto connect_fail = [&](const boost::system::error_code& ec) {
      std::string what = ec == beast::error::timeout ? "i/o timeout" : ec.message();
      if (ec == asio::error::connection_refused) what = "connect: connection refused";
      return Fail(std::string(proxy ? "proxyconnect tcp: " : "") + "dial tcp " + dial.host + ":" +
                  dial.port + ": " + what);
    };
    if (url.scheme == "https") {
      beast::tcp_stream raw(exec);
      raw.expires_after(Remaining());
      auto [cec, ep] = co_await raw.async_connect(endpoints, kTuple);
      if (cec) {
        result = connect_fail(cec);
        co_return;
      }
      if (proxy && !co_await Tunnel(raw)) co_return;
      beast::ssl_stream<beast::tcp_stream> stream(std::move(raw), TlsContext(!req.tls_skip_verify));
      SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
      if (!req.tls_skip_verify) stream.set_verify_callback(ssl::host_name_verification(url.host));
      beast::get_lowest_layer(stream).expires_after(Remaining());
      auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, kTuple);
      if (hec) {
        result = Fail("tls: " + hec.message());
        co_return;
      }
      co_await Exchange(stream);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
      co_await stream.async_shutdown(kTuple);
    } else {
      beast::tcp_stream stream(exec);
      stream.expires_after(Remaining());
      auto [cec, ep] = co_await stream.async_connect(endpoints, kTuple);
      if (cec) {
        result = connect_fail(cec);
        co_return;
      }
      co_await Exchange(stream);
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
  }
};

}  // namespace

std::string_view Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return {};
}

std::string StatusLine(int status) {
  std::string reason(http::obsolete_reason(static_cast<http::status>(status)));
  if (reason == "<unknown-status>") reason.clear();
  return reason.empty() ? std::to_string(status) : std::to_string(status) + " " + reason;
}

Result<Url> ParseUrl(std::string_view text) {
  Url url;
  size_t sep = text.find("://");
  if (sep == std::string_view::npos)
    return Error(ErrorCode::kBadRequest, "invalid URL: missing scheme");
  url.scheme = ToLower(text.substr(0, sep));
  if (url.scheme != "http" && url.scheme != "https") {
    return Error(ErrorCode::kBadRequest, "unsupported protocol scheme \"" + url.scheme + "\"");
  }
  std::string_view rest = text.substr(sep + 3);
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  url.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!url.target.empty() && url.target[0] == '?') url.target = "/" + url.target;
  if (auto at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  if (authority.empty()) return Error(ErrorCode::kBadRequest, "invalid URL: missing host");
  if (authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return Error(ErrorCode::kBadRequest, "invalid URL: bad IPv6 host");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return Error(ErrorCode::kBadRequest, "invalid URL: bad port");
      url.port = std::string(after.substr(1));
    }
  } else {
    size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) url.port = std::string(authority.substr(colon + 1));
  }
  if (url.host.empty()) return Error(ErrorCode::kBadRequest, "invalid URL: missing host");
  if (url.port.empty()) url.port = url.scheme == "https" ? "443" : "80";
  long long port = 0;
  if (!ParseInt64(url.port, &port) || port <= 0 || port > 65535) {
    return Error(ErrorCode::kBadRequest, "invalid URL: bad port \"" + url.port + "\"");
  }
  return url;
}

Result<Response> Fetch(const Request& request) {
  auto url = ParseUrl(request.url);
  if (!url.ok()) return url.status();
  std::optional<Url> proxy;
  if (!request.proxy_url.empty()) {
    std::string proxy_text = request.proxy_url;
    if (proxy_text.find("://") == std::string::npos) proxy_text = "http://" + proxy_text;
    auto parsed = ParseUrl(proxy_text);
    if (!parsed.ok())
      return Error(ErrorCode::kBadRequest, "invalid proxy URL: " + parsed.status().message());
    if (parsed->scheme != "http") {
      return Error(ErrorCode::kBadRequest, "unsupported proxy scheme \"" + parsed->scheme + "\"");
    }
    proxy = std::move(*parsed);
  }
  asio::io_context io;
  Call call{request, std::move(*url), std::move(proxy),
            std::chrono::steady_clock::now() + std::chrono::milliseconds(request.timeout_ms)};
  asio::co_spawn(io, call.Run(), asio::detached);
  io.run();
  return std::move(call.result);
}

}  // namespace cpamp::http_client
