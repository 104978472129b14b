#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <mutex>

#include "clients/http/http_client.h"
#include "net/http.h"

namespace cpamp::net {
namespace {

// A tiny upstream that echoes what it received.
class EchoApp : public Application {
 public:
  Dispatch Classify(const RequestHead&) override { return Dispatch{}; }
  Response Handle(const Request& req) override {
    if (req.path() == "/stream") {
      auto n = std::make_shared<int>(0);
      Response r;
      r.headers.emplace_back("Content-Type", "text/plain");
      r.stream = [n](std::string& chunk) -> Result<bool> {
        chunk = "line " + std::to_string(*n) + "\n";
        return ++*n < 1000;
      };
      return r;
    }
    boost::json::object o;
    o["method"] = req.method();
    o["target"] = req.head.target;
    o["body_size"] = req.body.size();
    o["body_head"] = req.body.substr(0, 32);
    o["auth"] = std::string(req.Header("Authorization"));
    o["xff"] = std::string(req.Header("X-Forwarded-For"));
    o["host"] = std::string(req.Header("Host"));
    auto r = Response::Json(201, o);
    r.headers.emplace_back("X-CPA-VERSION", "v9.9.9");
    return r;
  }
  void OnCompleted(const RequestHead&, int, int64_t) override { ++completed; }
  std::atomic<int> completed{0};
};

// The server under test: proxies /p/* to the echo upstream, answers /deny at once.
class FrontApp : public Application {
 public:
  explicit FrontApp(uint16_t upstream_port) : upstream_port_(upstream_port) {}
  Dispatch Classify(const RequestHead& head) override {
    Dispatch d;
    if (head.path == "/small") d.body_limit = 16;
    if (head.path == "/deny") {
      d.kind = Dispatch::Kind::kRespond;
      d.response = Response::ErrorJson(401, "invalid admin key", "invalid_admin_key");
    } else if (head.path.rfind("/p/", 0) == 0) {
      d.kind = Dispatch::Kind::kProxy;
      d.proxy.scheme = "http";
      d.proxy.host = "127.0.0.1";
      d.proxy.port = std::to_string(upstream_port_);
      d.proxy.target = head.target.substr(2);
      d.proxy.set_headers = {{"Authorization", "Bearer upstream-key"}};
      d.proxy.response_headers = {{"Access-Control-Allow-Origin", "*"}};
    } else if (head.path == "/down") {
      d.kind = Dispatch::Kind::kProxy;
      d.proxy.scheme = "http";
      d.proxy.host = "127.0.0.1";
      d.proxy.port = "1";
      d.proxy.target = "/x";
    }
    return d;
  }
  Response Handle(const Request& req) override {
    return Response::Text(200, "local " + req.path());
  }
  void OnCompleted(const RequestHead&, int, int64_t) override {}

 private:
  uint16_t upstream_port_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_ = std::make_unique<HttpServer>(ServerOptions{"127.0.0.1", 0, 1, 2}, echo_);
    ASSERT_TRUE(upstream_->Start().ok());
    front_app_ = std::make_unique<FrontApp>(upstream_->BoundPort());
    front_ = std::make_unique<HttpServer>(ServerOptions{"127.0.0.1", 0, 2, 2}, *front_app_);
    ASSERT_TRUE(front_->Start().ok());
  }
  void TearDown() override {
    front_->Stop(1000);
    upstream_->Stop(1000);
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(front_->BoundPort()) + path;
  }
  http_client::Response Call(const std::string& method, const std::string& path,
                             std::string body = "", http_client::Headers headers = {}) {
    http_client::Request req;
    req.method = method;
    req.url = Url(path);
    req.body = std::move(body);
    req.headers = std::move(headers);
    auto r = http_client::Fetch(req);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : http_client::Response{};
  }

  EchoApp echo_;
  std::unique_ptr<HttpServer> upstream_;
  std::unique_ptr<FrontApp> front_app_;
  std::unique_ptr<HttpServer> front_;
};

TEST_F(HttpServerTest, LocalHandlerGetsBodyAndPath) {
  auto r = Call("POST", "/hello?x=1", "payload");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "local /hello");
}

TEST_F(HttpServerTest, BodyOverLimitGets413) {
  auto r = Call("POST", "/small", std::string(100, 'a'));
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("payload_too_large"), std::string::npos);
}

TEST_F(HttpServerTest, RespondWithoutReadingBody) {
  auto r = Call("PUT", "/deny", std::string(1000, 'b'));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("invalid_admin_key"), std::string::npos);
}

TEST_F(HttpServerTest, ProxyRelaysMethodQueryBodyAndRewritesHeaders) {
  std::string big(3 * 1024 * 1024 + 7, 'z');
  big.replace(0, 5, "start");
  auto r =
      Call("PUT", "/p/v0/management/thing?a=1&b=two", big, {{"Authorization", "Bearer admin-key"}});
  ASSERT_EQ(r.status, 201);
  auto o = boost::json::parse(r.body).as_object();
  EXPECT_EQ(o["method"].as_string(), "PUT");
  EXPECT_EQ(o["target"].as_string(), "/v0/management/thing?a=1&b=two");
  EXPECT_EQ(o["body_size"].as_int64(), static_cast<int64_t>(big.size()));
  EXPECT_EQ(o["body_head"].as_string().subview().substr(0, 5), "start");
  EXPECT_EQ(o["auth"].as_string(), "Bearer upstream-key");
  EXPECT_EQ(o["xff"].as_string(), "127.0.0.1");
  EXPECT_EQ(o["host"].as_string(), "127.0.0.1:" + std::to_string(upstream_->BoundPort()));
  EXPECT_EQ(r.Header("X-CPA-VERSION"), "v9.9.9");
  EXPECT_EQ(r.Header("Access-Control-Allow-Origin"), "*");
}

TEST_F(HttpServerTest, ProxyStreamsLargeChunkedResponses) {
  auto r = Call("GET", "/p/stream");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body.substr(0, 7), "line 0\n");
  EXPECT_NE(r.body.find("line 999\n"), std::string::npos);
}

TEST_F(HttpServerTest, ProxyToDeadUpstreamGives502) {
  auto r = Call("DELETE", "/down");
  EXPECT_EQ(r.status, 502);
  auto o = boost::json::parse(r.body).as_object();
  EXPECT_EQ(o["code"].as_string(), "request_failed");
  EXPECT_NE(std::string(o["error"].as_string()).find("dial tcp 127.0.0.1:1"), std::string::npos);
}

TEST(HttpClient, ConnectionRefusedHasGoLikeMessage) {
  http_client::Request req;
  req.url = "http://127.0.0.1:1/v0/management/config";
  auto r = http_client::Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "Get \"http://127.0.0.1:1/v0/management/config\": dial tcp 127.0.0.1:1: connect: "
            "connection refused");
}

TEST_F(HttpServerTest, ClientSendsAbsoluteFormThroughAnHttpProxy) {
  http_client::Request req;
  req.url = "http://prices.example.invalid/api/v1/models?x=1";
  req.proxy_url = "http://user:pw@127.0.0.1:" + std::to_string(upstream_->BoundPort());
  auto r = http_client::Fetch(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->status, 201);
  auto o = boost::json::parse(r->body).as_object();
  EXPECT_EQ(o["target"].as_string(), "http://prices.example.invalid/api/v1/models?x=1");
}

TEST_F(HttpServerTest, ClientTunnelsHttpsWithConnect) {
  // The echo server accepts the CONNECT (2xx) but then speaks HTTP, not TLS: the handshake
  // must fail cleanly, proving the CONNECT exchange happened first.
  http_client::Request req;
  req.url = "https://prices.example.invalid/x";
  req.proxy_url = "127.0.0.1:" + std::to_string(upstream_->BoundPort());
  req.timeout_ms = 3000;
  auto r = http_client::Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tls"), std::string::npos) << r.status().message();
  req.proxy_url = "http://127.0.0.1:1";
  r = http_client::Fetch(req);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("proxyconnect tcp: dial tcp 127.0.0.1:1"), std::string::npos)
      << r.status().message();
}

TEST(HttpClient, ParseUrlHandlesPortsAndIpv6) {
  auto u = http_client::ParseUrl("https://[::1]:8443/a?b=c");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "8443");
  EXPECT_EQ(u->target, "/a?b=c");
  auto d = http_client::ParseUrl("http://cpa");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, "80");
  EXPECT_EQ(d->target, "/");
  EXPECT_FALSE(http_client::ParseUrl("ftp://x").ok());
  EXPECT_FALSE(http_client::ParseUrl("http://x:99999").ok());
}

}  // namespace
}  // namespace cpamp::net
