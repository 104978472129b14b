// HTTP/1.1 server on Boost.Beast with C++20 coroutines.
//
// One coroutine per connection runs on the I/O context. For each request it reads the head
// only, hands the head to Application::Classify on the worker pool, and then:
//   - kLocal:   converts the head parser into a bounded string-body parser (413 past the
//               limit), reads the body, runs Application::Handle on the worker pool;
//   - kRespond: answers without reading the body (the connection is closed if a body follows);
//   - kProxy:   relays to the upstream with buffer_body parsers in both directions, so request
//               and response bodies of any size stream through a 64 KiB buffer.
// Every read and write has a deadline (tcp_stream::expires_after). Responses with a
// BodyStream are sent chunked, each chunk produced on the worker pool.
// Shutdown: the acceptor closes first; in-flight sessions get a grace period, then the I/O
// context stops.

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "base/strings.h"
#include "net/http.h"

namespace cpamp::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

constexpr size_t kRelayBufferBytes = 64 * 1024;
constexpr size_t kBodyReadChunkBytes = 64 * 1024;  // socket read size for bodies
constexpr int64_t kDrainTimeoutMs = 5'000;
constexpr size_t kMaxDrainBytes = 256 * 1024 * 1024;

bool IsHopByHop(std::string_view name) {
  static constexpr std::string_view kHop[] = {
      "connection",          "keep-alive", "proxy-connection", "proxy-authenticate",
      "proxy-authorization", "te",         "trailer",          "upgrade"};
  for (auto h : kHop) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  return false;
}

std::string PeerAddress(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "";
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string();
  }
  return addr.to_string();
}

template <class Fields>
Headers CopyHeaders(const Fields& fields) {
  Headers out;
  for (const auto& f : fields)
    out.emplace_back(std::string(f.name_string()), std::string(f.value()));
  return out;
}

template <class Message>
void ApplyHeaders(Message& msg, const Headers& headers) {
  for (const auto& [k, v] : headers) msg.set(k, v);
}

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  Application& app;
  asio::io_context io;
  asio::thread_pool pool;
  tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
  std::atomic<int> busy_requests{0};  // requests between head read and response end
  std::atomic<bool> stopping{false};
  std::promise<int> signal_promise;
  std::once_flag signal_once;
  asio::signal_set signals{io, SIGINT, SIGTERM};
  ssl::context tls_verify{ssl::context::tls_client};
  ssl::context tls_no_verify{ssl::context::tls_client};
  uint16_t bound_port = 0;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> work;

  Impl(ServerOptions opts, Application& application)
      : options(std::move(opts)),
        app(application),
        pool(static_cast<size_t>(std::max(1, options.worker_threads))) {
    tls_verify.set_default_verify_paths();
    tls_verify.set_verify_mode(ssl::verify_peer);
    tls_no_verify.set_verify_mode(ssl::verify_none);
  }

  void NotifySignal(int sig) {
    std::call_once(signal_once, [&] { signal_promise.set_value(sig); });
  }

  template <class F>
  awaitable<std::invoke_result_t<F>> OnPool(F f) {
    using R = std::invoke_result_t<F>;
    co_return co_await asio::co_spawn(
        pool.get_executor(), [f = std::move(f)]() mutable -> awaitable<R> { co_return f(); },
        use_awaitable);
  }

  awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) {
        if (stopping || ec == asio::error::operation_aborted) co_return;
        spdlog::warn("accept failed: {}", ec.message());
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(socket.get_executor(), Session(std::move(socket)), asio::detached);
    }
  }

  static RequestHead MakeHead(const http::request<http::empty_body>& req, std::string remote,
                              bool has_body) {
    RequestHead head;
    head.method = std::string(req.method_string());
    head.target = std::string(req.target());
    auto q = head.target.find('?');
    head.path = head.target.substr(0, q);
    if (q != std::string::npos) head.query = head.target.substr(q + 1);
    head.headers = CopyHeaders(req);
    head.remote_address = std::move(remote);
    head.has_body = has_body;
    return head;
  }

  awaitable<bool> WriteResponse(beast::tcp_stream& stream, Response& resp, unsigned version,
                                bool keep_alive) {
    if (!resp.stream) {
      http::response<http::string_body> res{static_cast<http::status>(resp.status), version};
      ApplyHeaders(res, resp.headers);
      res.body() = std::move(resp.body);
      res.keep_alive(keep_alive);
      res.prepare_payload();
      stream.expires_after(std::chrono::milliseconds(kWriteTimeoutMs));
      auto [ec, n] = co_await http::async_write(stream, res, kTuple);
      co_return !ec;
    }
    http::response<http::empty_body> res{static_cast<http::status>(resp.status), version};
    ApplyHeaders(res, resp.headers);
    res.keep_alive(keep_alive);
    res.chunked(true);
    http::response_serializer<http::empty_body> sr{res};
    stream.expires_after(std::chrono::milliseconds(kWriteTimeoutMs));
    auto [hec, hn] = co_await http::async_write_header(stream, sr, kTuple);
    if (hec) co_return false;
    BodyStream producer = std::move(resp.stream);
    for (;;) {
      struct Piece {
        std::string data;
        bool more = false;
        std::string error;
      };
      Piece next = co_await OnPool([&producer]() {
        Piece piece;
        auto more = producer(piece.data);
        if (more.ok()) {
          piece.more = *more;
        } else {
          piece.error = more.status().message();
        }
        return piece;
      });
      if (!next.error.empty()) {
        spdlog::warn("streamed response aborted: {}", next.error);
        co_return false;  // the client sees a truncated chunked body
      }
      if (!next.data.empty()) {
        stream.expires_after(std::chrono::milliseconds(kWriteTimeoutMs));
        auto [ec, n] =
            co_await asio::async_write(stream, http::make_chunk(asio::buffer(next.data)), kTuple);
        if (ec) co_return false;
      }
      if (!next.more) break;
    }
    stream.expires_after(std::chrono::milliseconds(kWriteTimeoutMs));
    auto [ec, n] = co_await asio::async_write(stream, http::make_chunk_last(), kTuple);
    co_return !ec;
  }

  // Relays body-carrying messages: reads from `input` via parser `p`, writes to `output`
  // through serializer `sr` (which references p.get()).
  template <class Out, class In, bool isRequest>
  static awaitable<boost::system::error_code> RelayBody(
      Out& output, In& input, beast::flat_buffer& buffer,
      http::parser<isRequest, http::buffer_body>& p,
      http::serializer<isRequest, http::buffer_body>& sr) {
    std::vector<char> buf(kRelayBufferBytes);
    // Beast sizes each socket read by the dynamic buffer's free capacity (>= 512 bytes): without
    // room a large body arrives in ~500-byte reads, each with an epoll wait and a timer update.
    buffer.reserve(kBodyReadChunkBytes);
    do {
      if (!p.is_done()) {
        p.get().body().data = buf.data();
        p.get().body().size = buf.size();
        beast::get_lowest_layer(input).expires_after(
            std::chrono::milliseconds(kUpstreamIdleTimeoutMs));
        auto [ec, n] = co_await http::async_read(input, buffer, p, kTuple);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) co_return ec;
        p.get().body().size = buf.size() - p.get().body().size;
        p.get().body().data = buf.data();
        p.get().body().more = !p.is_done();
      } else {
        p.get().body().data = nullptr;
        p.get().body().size = 0;
      }
      beast::get_lowest_layer(output).expires_after(
          std::chrono::milliseconds(kUpstreamIdleTimeoutMs));
      auto [ec, n] = co_await http::async_write(output, sr, kTuple);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return ec;
    } while (!p.is_done() && !sr.is_done());
    co_return boost::system::error_code{};
  }

  // Sends the request upstream and the response back. Returns whether the client connection
  // may be kept alive; `status` receives the relayed status (502 when upstream failed).
  template <class Upstream>
  awaitable<bool> RelayOver(Upstream& up, beast::tcp_stream& client, beast::flat_buffer& cbuf,
                            http::request_parser<http::buffer_body>& rp, const ProxyPlan& plan,
                            bool head_request, bool client_keep_alive, int& status) {
    auto& req = rp.get();
    http::request_serializer<http::buffer_body> rsr{req};
    auto [hec, hn] = co_await http::async_write_header(up, rsr, kTuple);
    if (hec) {
      status = 502;
      co_return co_await FailProxy(client, req.version(), "upstream write failed: " + hec.message(),
                                   plan, !rp.is_done());
    }
    auto ec = co_await RelayBody(up, client, cbuf, rp, rsr);
    if (ec) {
      status = 502;
      // The client may have gone away mid-body; answer if we still can.
      co_return co_await FailProxy(client, req.version(), "relaying request body: " + ec.message(),
                                   plan, true);
    }
    beast::flat_buffer ubuf;
    http::response_parser<http::buffer_body> resp_parser;
    resp_parser.body_limit(boost::none);
    resp_parser.header_limit(kMaxHeaderBytes);
    if (head_request) resp_parser.skip(true);
    beast::get_lowest_layer(up).expires_after(std::chrono::milliseconds(kUpstreamIdleTimeoutMs));
    auto [rec, rn] = co_await http::async_read_header(up, ubuf, resp_parser, kTuple);
    if (rec) {
      status = 502;
      co_return co_await FailProxy(client, req.version(),
                                   "upstream response failed: " + rec.message(), plan, false);
    }
    auto& res = resp_parser.get();
    status = static_cast<int>(res.result_int());
    for (auto it = res.begin(); it != res.end();) {
      if (IsHopByHop(it->name_string())) {
        it = res.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [k, v] : plan.response_headers) {
      res.set(k, v);
    }
    // What the client asked for (its Connection: close), not the upstream request's keep-alive.
    bool keep_alive = client_keep_alive;
    res.keep_alive(keep_alive);
    http::response_serializer<http::buffer_body> sr{res};
    client.expires_after(std::chrono::milliseconds(kWriteTimeoutMs));
    auto [wec, wn] = co_await http::async_write_header(client, sr, kTuple);
    if (wec) co_return false;
    auto bec = co_await RelayBody(client, up, ubuf, resp_parser, sr);
    if (bec) co_return false;
    co_return keep_alive&& res.keep_alive();
  }

  awaitable<bool> FailProxy(beast::tcp_stream& client, unsigned version, const std::string& msg,
                            const ProxyPlan& plan, bool body_unread) {
    Response r = Response::ErrorJson(502, msg, "request_failed");
    for (const auto& [k, v] : plan.response_headers) r.SetHeader(k, v);
    bool keep = !body_unread;
    bool ok = co_await WriteResponse(client, r, version, keep);
    co_return ok&& keep;
  }

  awaitable<bool> Relay(beast::tcp_stream& client, beast::flat_buffer& cbuf,
                        http::request_parser<http::empty_body>& head_parser, ProxyPlan& plan,
                        int& status) {
    auto exec = co_await asio::this_coro::executor;
    http::request_parser<http::buffer_body> rp{std::move(head_parser)};
    auto& req = rp.get();
    const bool head_request = req.method() == http::verb::head;
    const bool client_keep_alive = req.keep_alive();  // before the rewrite below
    // Rewrite the head for upstream.
    std::string forwarded_for = std::string(req["X-Forwarded-For"]);
    for (auto it = req.begin(); it != req.end();) {
      if (IsHopByHop(it->name_string()) || EqualsIgnoreCase(it->name_string(), "expect")) {
        it = req.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& name : plan.remove_headers) req.erase(name);
    for (const auto& [k, v] : plan.set_headers) req.set(k, v);
    req.target(plan.target);
    std::string host_header =
        plan.host.find(':') != std::string::npos ? "[" + plan.host + "]" : plan.host;
    const bool default_port = (plan.scheme == "https" && plan.port == "443") ||
                              (plan.scheme == "http" && plan.port == "80");
    if (!default_port) host_header += ":" + plan.port;
    req.set(http::field::host, host_header);
    std::string peer = PeerAddress(client.socket());
    req.set("X-Forwarded-For", forwarded_for.empty() ? peer : forwarded_for + ", " + peer);
    req.keep_alive(true);

    tcp::resolver resolver(exec);
    auto [rec, endpoints] = co_await resolver.async_resolve(plan.host, plan.port, kTuple);
    if (rec) {
      status = 502;
      co_return co_await FailProxy(
          client, req.version(), "lookup " + plan.host + ": " + rec.message(), plan, !rp.is_done());
    }
    if (plan.scheme == "https") {
      beast::ssl_stream<beast::tcp_stream> up(exec,
                                              plan.tls_skip_verify ? tls_no_verify : tls_verify);
      if (!SSL_set_tlsext_host_name(up.native_handle(), plan.host.c_str())) {
        status = 502;
        co_return co_await FailProxy(client, req.version(), "TLS: cannot set SNI", plan,
                                     !rp.is_done());
      }
      if (!plan.tls_skip_verify) up.set_verify_callback(ssl::host_name_verification(plan.host));
      beast::get_lowest_layer(up).expires_after(
          std::chrono::milliseconds(kUpstreamConnectTimeoutMs));
      auto [cec, ep] = co_await beast::get_lowest_layer(up).async_connect(endpoints, kTuple);
      if (cec) {
        status = 502;
        co_return co_await FailProxy(
            client, req.version(), "dial tcp " + plan.host + ":" + plan.port + ": " + cec.message(),
            plan, !rp.is_done());
      }
      auto [tec] = co_await up.async_handshake(ssl::stream_base::client, kTuple);
      if (tec) {
        status = 502;
        co_return co_await FailProxy(client, req.version(), "TLS handshake: " + tec.message(), plan,
                                     !rp.is_done());
      }
      bool keep =
          co_await RelayOver(up, client, cbuf, rp, plan, head_request, client_keep_alive, status);
      beast::get_lowest_layer(up).expires_after(std::chrono::seconds(2));
      co_await up.async_shutdown(kTuple);
      co_return keep;
    }
    beast::tcp_stream up(exec);
    up.expires_after(std::chrono::milliseconds(kUpstreamConnectTimeoutMs));
    auto [cec, ep] = co_await up.async_connect(endpoints, kTuple);
    if (cec) {
      status = 502;
      co_return co_await FailProxy(client, req.version(),
                                   "dial tcp " + plan.host + ":" + plan.port + ": " + cec.message(),
                                   plan, !rp.is_done());
    }
    bool keep =
        co_await RelayOver(up, client, cbuf, rp, plan, head_request, client_keep_alive, status);
    boost::system::error_code ignored;
    up.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return keep;
  }

  awaitable<void> Session(tcp::socket socket) {
    std::string remote = PeerAddress(socket);
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    bool first = true;
    bool unread_body = false;  // answered before reading the body: drain before closing
    for (;;) {
      http::request_parser<http::empty_body> head_parser;
      head_parser.header_limit(kMaxHeaderBytes);
      head_parser.body_limit(boost::none);
      stream.expires_after(
          std::chrono::milliseconds(first ? kHeaderReadTimeoutMs : kIdleKeepAliveMs));
      first = false;
      auto [ec, n] = co_await http::async_read_header(stream, buffer, head_parser, kTuple);
      if (ec) {
        const bool protocol_error =
            ec.category() == http::make_error_code(http::error::bad_target).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message;
        if (protocol_error) {
          Response bad = Response::Text(ec == http::error::header_limit ? 431 : 400,
                                        "Bad Request: " + ec.message() + "\n");
          co_await WriteResponse(stream, bad, 11, false);
        }
        break;
      }
      if (stopping) break;
      ++busy_requests;
      auto started = std::chrono::steady_clock::now();
      const auto& req = head_parser.get();
      const unsigned version = req.version();
      bool keep_alive = req.keep_alive();
      RequestHead head = MakeHead(req, remote, !head_parser.is_done());
      const bool expects_continue = EqualsIgnoreCase(req[http::field::expect], "100-continue");
      Dispatch dispatch = co_await OnPool([this, &head] { return app.Classify(head); });
      int status = 0;
      if (dispatch.kind == Dispatch::Kind::kProxy) {
        if (expects_continue && head.has_body) {
          stream.expires_after(std::chrono::milliseconds(kWriteTimeoutMs));
          co_await asio::async_write(stream, asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25),
                                     kTuple);
        }
        keep_alive = co_await Relay(stream, buffer, head_parser, dispatch.proxy, status);
        if (dispatch.proxy.on_done) dispatch.proxy.on_done(status);
      } else {
        Response resp;
        if (dispatch.kind == Dispatch::Kind::kLocal) {
          http::request_parser<http::string_body> body_parser{std::move(head_parser)};
          body_parser.body_limit(dispatch.body_limit);
          bool body_ok = true;
          const auto declared = body_parser.content_length();
          const bool too_large = declared && *declared > dispatch.body_limit;
          if (!body_parser.is_done() && !too_large) {
            if (expects_continue) {
              stream.expires_after(std::chrono::milliseconds(kWriteTimeoutMs));
              co_await asio::async_write(stream, asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25),
                                         kTuple);
            }
            stream.expires_after(std::chrono::milliseconds(kBodyReadTimeoutMs));
            if (!declared || *declared > kBodyReadChunkBytes / 4) {
              buffer.reserve(kBodyReadChunkBytes);  // large reads for large bodies (see RelayBody)
            }
            auto [bec, bn] = co_await http::async_read(stream, buffer, body_parser, kTuple);
            if (bec == http::error::body_limit) {
              resp = Response::ErrorJson(413,
                                         "request body exceeds the limit of " +
                                             std::to_string(dispatch.body_limit) + " bytes",
                                         "payload_too_large");
              keep_alive = false;
              body_ok = false;
              unread_body = true;
            } else if (bec) {
              --busy_requests;
              break;  // client went away or timed out mid-body
            }
          }
          if (too_large) {
            resp = Response::ErrorJson(413,
                                       "request body exceeds the limit of " +
                                           std::to_string(dispatch.body_limit) + " bytes",
                                       "payload_too_large");
            keep_alive = false;
            body_ok = false;
            unread_body = true;
          }
          if (body_ok) {
            Request request{std::move(head), std::move(body_parser.get().body())};
            resp = co_await OnPool([this, &request] { return app.Handle(request); });
            head = std::move(request.head);
          }
        } else {
          resp = std::move(dispatch.response);
          if (head.has_body) {
            keep_alive = false;  // unread body: cannot reuse the connection
            unread_body = true;
          }
        }
        if (resp.delay_ms > 0) {
          asio::steady_timer timer(stream.get_executor());
          timer.expires_after(std::chrono::milliseconds(resp.delay_ms));
          co_await timer.async_wait(kTuple);
        }
        status = resp.status;
        if (resp.close) keep_alive = false;
        bool written = co_await WriteResponse(stream, resp, version, keep_alive);
        if (!written) keep_alive = false;
      }
      auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::steady_clock::now() - started)
                         .count();
      app.OnCompleted(head, status, elapsed);
      --busy_requests;
      if (!keep_alive || stopping) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (unread_body) {
      // Closing with unread input makes the kernel send RST, and the client may lose our
      // answer (413/401) while it is still uploading. Discard what it sends, bounded in time
      // and bytes, so it can read the response.
      std::vector<char> sink(kRelayBufferBytes);
      size_t drained = 0;
      stream.expires_after(std::chrono::milliseconds(kDrainTimeoutMs));
      while (drained < kMaxDrainBytes) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
        if (ec) break;
        drained += n;
      }
    }
  }
};

HttpServer::HttpServer(ServerOptions options, Application& app)
    : impl_(std::make_unique<Impl>(std::move(options), app)) {}

HttpServer::~HttpServer() { Stop(0); }

Result<std::string> HttpServer::Start() {
  auto& im = *impl_;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(im.options.host, ec);
  if (ec) return Error(ErrorCode::kBadRequest, "invalid listen host " + im.options.host);
  tcp::endpoint endpoint(address, im.options.port);
  im.acceptor.open(endpoint.protocol(), ec);
  if (!ec) im.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor.bind(endpoint, ec);
  if (!ec) im.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error(ErrorCode::kRequestFailed, "listen tcp " + im.options.host + ":" +
                                                std::to_string(im.options.port) + ": " +
                                                ec.message());
  }
  auto local = im.acceptor.local_endpoint();
  im.bound_port = local.port();
  im.signals.async_wait([&im](const boost::system::error_code& sec, int sig) {
    if (!sec) im.NotifySignal(sig);
  });
  asio::co_spawn(im.io, im.Accept(), asio::detached);
  im.work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      im.io.get_executor());
  for (int i = 0; i < std::max(1, im.options.io_threads); ++i) {
    im.threads.emplace_back([&im] { im.io.run(); });
  }
  std::string host = local.address().to_string();
  if (local.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(local.port());
}

uint16_t HttpServer::BoundPort() const { return impl_->bound_port; }

int HttpServer::WaitForSignal() { return impl_->signal_promise.get_future().get(); }

void HttpServer::Stop(int64_t grace_ms) {
  auto& im = *impl_;
  if (im.threads.empty()) return;
  im.stopping = true;
  asio::post(im.io, [&im] {
    boost::system::error_code ec;
    im.acceptor.close(ec);
    im.signals.cancel(ec);
  });
  im.NotifySignal(0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (im.busy_requests > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  im.work.reset();
  im.io.stop();
  for (auto& t : im.threads) t.join();
  im.threads.clear();
  im.pool.join();
}

}  // namespace cpamp::net
