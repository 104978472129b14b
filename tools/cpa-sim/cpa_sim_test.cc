// Protocol-level tests of cpa-sim: an in-process Simulator on port 0, driven by raw POSIX
// sockets with our RESP codec (RESP side) and hand-written HTTP/1.1 requests (HTTP side).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "base/strings.h"
#include "clients/resp/resp.h"
#include "hub.h"
#include "records.h"
#include "sim.h"

namespace cpamp::sim {
namespace {

namespace bj = boost::json;
using resp::Value;
constexpr std::string_view kKey = "sim-management-key";

int Connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

class RespClient {
 public:
  explicit RespClient(std::uint16_t port) : fd_(Connect(port)) {}
  ~RespClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  void Send(const std::vector<std::string_view>& args) { SendAll(fd_, resp::EncodeCommand(args)); }
  void SendRaw(std::string_view bytes) { SendAll(fd_, bytes); }
  // Next reply, or nullopt on EOF/timeout.
  std::optional<Value> Read(int timeout_ms = 5000) {
    for (;;) {
      auto r = parser_.Next();
      if (r.has_value()) return std::move(r.value);
      if (r.is_error()) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        eof_ = true;
        return std::nullopt;
      }
      parser_.Feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }
  Value Cmd(const std::vector<std::string_view>& args) {
    Send(args);
    auto v = Read();
    EXPECT_TRUE(v.has_value()) << "no reply to " << args[0];
    return v.value_or(Value::ErrorReply("<no reply>"));
  }
  // True when the server closed the connection (after any pending replies).
  bool ClosedByServer(int timeout_ms = 5000) {
    while (Read(timeout_ms)) {
    }
    return eof_;
  }
  void Auth() { ASSERT_EQ(Cmd({"AUTH", kKey}), Value::SimpleString("OK")); }
  // SUBSCRIBE usage and consume the confirmation and {"support_refresh":true}.
  void SubscribeUsage() {
    Send({"SUBSCRIBE", "usage"});
    ASSERT_TRUE(Read().has_value());
    auto first = Read();
    ASSERT_TRUE(first && first->elements.size() == 3);
    ASSERT_EQ(first->elements[2].str, "{\"support_refresh\":true}");
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  resp::Parser parser_;
  bool eof_ = false;
};

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool has(std::string_view h) const { return headers.count(ToLower(h)) > 0; }
};

HttpResult Http(std::uint16_t port, std::string_view method, std::string_view target,
                std::vector<std::pair<std::string, std::string>> headers = {},
                std::string_view body = "") {
  int fd = Connect(port);
  std::string req = std::string(method) + " " + std::string(target) +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  req += body;
  SendAll(fd, req);
  std::string raw;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  HttpResult r;
  const std::size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  r.body = raw.substr(end + 4);
  std::string head = raw.substr(0, end);
  r.status = std::atoi(head.substr(9, 3).c_str());
  std::size_t pos = head.find("\r\n");
  while (pos != std::string::npos) {
    std::size_t next = head.find("\r\n", pos + 2);
    std::string line = head.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
    std::size_t colon = line.find(':');
    if (colon != std::string::npos)
      r.headers[ToLower(line.substr(0, colon))] = Trim(line.substr(colon + 1));
    pos = next;
  }
  return r;
}

std::vector<std::pair<std::string, std::string>> Bearer() {
  return {{"Authorization", "Bearer " + std::string(kKey)}};
}

class SimTest : public ::testing::Test {
 protected:
  void StartSim(SimOptions o = {}) {
    sim_ = std::make_unique<Simulator>(o);
    ASSERT_TRUE(sim_->Start().ok());
    port_ = sim_->port();
    ASSERT_NE(port_, 0);
  }
  bj::object Stats() { return bj::parse(Http(port_, "GET", "/_sim/stats").body).as_object(); }
  std::int64_t Stat(std::string_view k) { return Stats().at(k).to_number<std::int64_t>(); }
  void Publish(std::string_view lines) {
    ASSERT_EQ(Http(port_, "POST", "/_sim/publish", {}, lines).status, 200);
  }
  template <class F>
  bool WaitFor(F f, int ms = 5000) {
    for (int i = 0; i < ms / 10; ++i) {
      if (f()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return f();
  }
  std::unique_ptr<Simulator> sim_;
  std::uint16_t port_ = 0;
};

// Reads raw subscription bytes from `fd` without parsing them and counts `message` frames
// (JSON never contains a raw CRLF, so the frame header cannot occur inside a payload). Stops
// when `frames` reaches `target`, on EOF (sets *eof) or after `idle_ms` without data.
std::uint64_t CountFrames(int fd, std::uint64_t target, int idle_ms, bool* eof = nullptr) {
  constexpr std::string_view kHeader = "*3\r\n$7\r\nmessage\r\n";
  std::uint64_t frames = 0;
  std::string window;  // unscanned tail shorter than kHeader + new bytes
  std::vector<char> buf(1 << 20);
  while (frames < target) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, idle_ms) <= 0) break;
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) {
      if (eof) *eof = true;
      break;
    }
    window.append(buf.data(), static_cast<std::size_t>(n));
    std::size_t pos = 0;
    while ((pos = window.find(kHeader, pos)) != std::string::npos) {
      ++frames;
      pos += kHeader.size();
    }
    const std::size_t keep = std::min(window.size(), kHeader.size() - 1);
    window.erase(0, window.size() - keep);
  }
  return frames;
}

// Reads one `message` frame of a subscription and returns its payload.
std::string Message(RespClient& c) {
  auto v = c.Read();
  if (!v || v->type != Value::Type::kArray || v->elements.size() != 3) return "<none>";
  EXPECT_EQ(v->elements[0], Value::Bulk("message"));
  return v->elements[2].str;
}

// ---- RESP -----------------------------------------------------------------------------------

TEST_F(SimTest, CommandsBeforeAuthGetNoauthAndAuthAcceptsUserForm) {
  StartSim();
  RespClient c(port_);
  EXPECT_EQ(c.Cmd({"LPOP", "usage"}), Value::ErrorReply("NOAUTH Authentication required."));
  EXPECT_EQ(c.Cmd({"AUTH", "a", "b", "c"}),
            Value::ErrorReply("ERR wrong number of arguments for 'auth' command"));
  EXPECT_EQ(c.Cmd({"AUTH", ""}), Value::ErrorReply("ERR missing management key"));
  EXPECT_EQ(c.Cmd({"auth", "ignored-user", kKey}), Value::SimpleString("OK"));
  // A failed re-AUTH keeps the connection authenticated.
  EXPECT_EQ(c.Cmd({"AUTH", "wrong"}), Value::ErrorReply("ERR invalid management key"));
  EXPECT_EQ(c.Cmd({"LPOP", "usage"}), Value::NullBulk());
}

TEST_F(SimTest, FiveFailuresBanTheIpForThirtyMinutesAcrossRespAndHttp) {
  StartSim();
  RespClient c(port_);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(c.Cmd({"AUTH", "wrong"}), Value::ErrorReply("ERR invalid management key"));
  }
  Value banned = c.Cmd({"AUTH", kKey});  // even the right key is refused while banned
  ASSERT_EQ(banned.type, Value::Type::kError);
  EXPECT_TRUE(
      banned.str.starts_with("ERR IP banned due to too many failed attempts. Try again in "))
      << banned.str;
  EXPECT_TRUE(banned.str.ends_with("30m0s") || banned.str.ends_with("29m59s")) << banned.str;
  Value noauth = c.Cmd({"LPOP", "usage"});
  EXPECT_TRUE(noauth.str.starts_with("ERR IP banned")) << noauth.str;
  HttpResult h = Http(port_, "GET", "/v0/management/config", Bearer());
  EXPECT_EQ(h.status, 403);
  EXPECT_NE(h.body.find("IP banned due to too many failed attempts"), std::string::npos);
  EXPECT_TRUE(h.has("X-CPA-VERSION"));
  ASSERT_EQ(Http(port_, "POST", "/_sim/unban").status, 200);
  EXPECT_EQ(Http(port_, "GET", "/v0/management/config", Bearer()).status, 200);
}

TEST_F(SimTest, PopRepliesNilWithoutCountAndEmptyArrayWithCount) {
  StartSim();
  RespClient c(port_);
  c.Auth();
  EXPECT_EQ(c.Cmd({"LPOP", "usage"}), Value::NullBulk());
  EXPECT_EQ(c.Cmd({"RPOP", "usage"}), Value::NullBulk());
  EXPECT_EQ(c.Cmd({"LPOP", "usage", "10"}), Value::Array({}));
  EXPECT_EQ(c.Cmd({"RPOP", " USAGE ", "10"}), Value::Array({}));
  EXPECT_EQ(c.Cmd({"LPOP", "usage", "0"}),
            Value::ErrorReply("ERR value is not an integer or out of range"));
  EXPECT_EQ(c.Cmd({"LPOP", "nope", "x"}),
            Value::ErrorReply("ERR value is not an integer or out of range"));
  EXPECT_EQ(c.Cmd({"LPOP", "errors"}), Value::ErrorReply("ERR unsupported channel 'errors'"));
  EXPECT_EQ(c.Cmd({"RPOP"}), Value::ErrorReply("ERR wrong number of arguments for 'rpop' command"));
  EXPECT_EQ(c.Cmd({"PING"}), Value::ErrorReply("ERR unknown command 'ping'"));
  EXPECT_EQ(c.Cmd({"SUBSCRIBE", "a", "b"}),
            Value::ErrorReply("ERR wrong number of arguments for 'subscribe' command"));
  EXPECT_EQ(c.Cmd({"SUBSCRIBE", "news"}), Value::ErrorReply("ERR unsupported channel 'news'"));
  c.SendRaw("*0\r\n");
  EXPECT_EQ(c.Read(), Value::ErrorReply("ERR empty command"));
  c.SendRaw("$4\r\nPING\r\n");  // not an array: protocol error, then close
  EXPECT_EQ(c.Read(), Value::ErrorReply("ERR protocol error"));
  EXPECT_TRUE(c.ClosedByServer());
}

TEST_F(SimTest, BothPopsAndTheHttpQueueReturnOldestFirst) {
  StartSim();
  Publish("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\nnot json\n");
  RespClient c(port_);
  c.Auth();
  EXPECT_EQ(c.Cmd({"RPOP", "usage", "2"}),
            Value::Array({Value::Bulk("{\"n\":1}"), Value::Bulk("{\"n\":2}")}));
  EXPECT_EQ(c.Cmd({"LPOP", "usage"}), Value::Bulk("{\"n\":3}"));
  HttpResult h = Http(port_, "GET", "/v0/management/usage-queue?count=10", Bearer());
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.headers["content-type"], "application/json; charset=utf-8");
  EXPECT_EQ(h.body, "[{\"n\":4},\"not json\"]");  // invalid items are embedded as strings
  EXPECT_EQ(Http(port_, "GET", "/v0/management/usage-queue", Bearer()).body, "[]");
  HttpResult bad = Http(port_, "GET", "/v0/management/usage-queue?count=0", Bearer());
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body, "{\"error\":\"count must be a positive integer\"}");
  EXPECT_EQ(Stat("popped"), 5);
}

TEST_F(SimTest, SubscribeConfirmsThenSupportRefreshThenRecordsInsteadOfTheQueue) {
  StartSim();
  RespClient sub(port_);
  sub.Auth();
  sub.Send({"SUBSCRIBE", " Usage "});
  EXPECT_EQ(sub.Read(),
            Value::Array({Value::Bulk("subscribe"), Value::Bulk("Usage"), Value::Integer(1)}));
  EXPECT_EQ(Message(sub), "{\"support_refresh\":true}");
  ASSERT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 1; }));
  Publish("{\"id\":\"r1\"}\n");
  EXPECT_EQ(Message(sub), "{\"id\":\"r1\"}");
  RespClient popper(port_);
  popper.Auth();
  EXPECT_EQ(popper.Cmd({"LPOP", "usage"}), Value::NullBulk());  // subscriber-xor-queue
  EXPECT_EQ(Stat("queued"), 0);
  ASSERT_EQ(Http(port_, "POST", "/_sim/refresh").body, "{\"subscribers\":1}");
  EXPECT_EQ(Message(sub), "{\"refresh\":true}");
  sub.Send({"PING"});
  EXPECT_EQ(sub.Read(), Value::Array({Value::Bulk("pong"), Value::NullBulk()}));
  sub.Send({"PING", "hi"});
  EXPECT_EQ(sub.Read(), Value::Array({Value::Bulk("pong"), Value::Bulk("hi")}));
  sub.Send({"LPOP", "usage"});
  EXPECT_EQ(sub.Read(), Value::ErrorReply("ERR unknown command 'lpop'"));
  sub.Send({"UNSUBSCRIBE"});
  EXPECT_EQ(sub.Read(),
            Value::Array({Value::Bulk("unsubscribe"), Value::Bulk("Usage"), Value::Integer(0)}));
  EXPECT_TRUE(sub.ClosedByServer());
  ASSERT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 0; }));
  Publish("{\"id\":\"r2\"}\n");  // no subscriber left: queued again
  EXPECT_EQ(popper.Cmd({"LPOP", "usage"}), Value::Bulk("{\"id\":\"r2\"}"));
}

TEST_F(SimTest, QuitInSubscribeModeRepliesOkAndCloses) {
  StartSim();
  RespClient sub(port_);
  sub.Auth();
  sub.Send({"SUBSCRIBE", "errors"});
  EXPECT_EQ(sub.Read(),
            Value::Array({Value::Bulk("subscribe"), Value::Bulk("errors"), Value::Integer(1)}));
  ASSERT_TRUE(WaitFor([&] { return Stat("error_subscribers") == 1; }));
  ASSERT_EQ(
      Http(port_, "POST", "/_sim/publish?channel=errors", {}, "{\"auth_index\":\"a\"}").status,
      200);
  EXPECT_EQ(Message(sub), "{\"auth_index\":\"a\"}");  // errors: no support_refresh first
  sub.Send({"QUIT"});
  EXPECT_EQ(sub.Read(), Value::SimpleString("OK"));
  EXPECT_TRUE(sub.ClosedByServer());
}

TEST_F(SimTest, SubscriberOverflowDropsTheSubscriberAfterItsBuffer) {
  StartSim();
  RespClient sub(port_);
  sub.Auth();
  sub.Send({"SUBSCRIBE", "usage"});
  ASSERT_TRUE(sub.Read().has_value());
  EXPECT_EQ(Message(sub), "{\"support_refresh\":true}");  // already taken by the writer
  ASSERT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 1; }));
  std::string lines;
  for (int i = 0; i < 300; ++i) lines += "{\"i\":" + std::to_string(i) + "}\n";
  Publish(lines);  // one synchronous burst: the 256-message buffer overflows
  int messages = 0;
  while (auto v = sub.Read()) ++messages;
  EXPECT_EQ(messages, 256);  // the full buffer is flushed, then the server closes
  bj::object s = Stats();
  EXPECT_EQ(s.at("subscribers_dropped").as_int64(), 1);
  EXPECT_EQ(s.at("overflow_lost").as_int64(), 1);
  // Record 257 overflowed and is lost; the rest found no subscriber and were queued.
  EXPECT_EQ(s.at("queued").as_int64(), 300 - 257);
}

TEST_F(SimTest, RecordsExpireAfterTheRetention) {
  SimOptions o;
  o.retention_seconds = 1;
  StartSim(o);
  Publish("{\"old\":true}\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  Publish("{\"new\":true}\n");
  RespClient c(port_);
  c.Auth();
  EXPECT_EQ(c.Cmd({"LPOP", "usage", "10"}), Value::Array({Value::Bulk("{\"new\":true}")}));
  EXPECT_EQ(Stat("expired"), 1);
  auto cfg = bj::parse(Http(port_, "GET", "/v0/management/config", Bearer()).body).as_object();
  EXPECT_EQ(cfg.at("redis-usage-queue-retention-seconds").as_int64(), 1);
}

TEST_F(SimTest, UsageStatisticsFlagGatesGeneration) {
  SimOptions o;
  o.rate = 2000;
  StartSim(o);
  EXPECT_EQ(Http(port_, "GET", "/v0/management/usage-statistics-enabled", Bearer()).body,
            "{\"usage-statistics-enabled\":false}");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Stat("generated"), 0);
  EXPECT_EQ(
      Http(port_, "PUT", "/v0/management/usage-statistics-enabled", Bearer(), "{\"v\":1}").status,
      400);
  HttpResult put =
      Http(port_, "PUT", "/v0/management/usage-statistics-enabled", Bearer(), "{\"value\":true}");
  EXPECT_EQ(put.status, 200);
  EXPECT_EQ(put.body, "{\"status\":\"ok\"}");
  EXPECT_TRUE(WaitFor([&] { return Stat("generated") > 50; }));
  ASSERT_EQ(
      Http(port_, "PATCH", "/v0/management/usage-statistics-enabled", Bearer(), "{\"Value\":false}")
          .status,
      200);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto frozen = Stat("generated");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Stat("generated"), frozen);
}

TEST_F(SimTest, CountStopsGenerationAndRecordsCarryEveryField) {
  SimOptions o;
  o.rate = 5000;
  o.count = 300;
  o.usage_enabled = true;
  StartSim(o);
  ASSERT_TRUE(WaitFor([&] { return Stat("generated") == 300; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(Stat("generated"), 300);
  HttpResult h = Http(port_, "GET", "/v0/management/usage-queue?count=1000", Bearer());
  bj::array items = bj::parse(h.body).as_array();
  ASSERT_EQ(items.size(), 300u);
  std::set<std::string> listed;
  const bj::value auth_files =
      bj::parse(Http(port_, "GET", "/v0/management/auth-files", Bearer()).body);
  for (const auto& f : auth_files.at("files").as_array())
    listed.insert(std::string(f.at("auth_index").as_string()));
  int in_list = 0;
  for (const auto& it : items) {
    const auto& rec = it.as_object();
    for (auto k : {"timestamp",
                   "latency_ms",
                   "ttft_ms",
                   "source",
                   "auth_index",
                   "client_ip",
                   "x_forwarded_for",
                   "user_agent",
                   "tokens",
                   "failed",
                   "generate",
                   "fail",
                   "accounting_version",
                   "token_breakdown",
                   "provider",
                   "executor_type",
                   "model",
                   "alias",
                   "endpoint",
                   "auth_type",
                   "api_key",
                   "request_id",
                   "reasoning_effort",
                   "service_tier"}) {
      EXPECT_TRUE(rec.contains(k)) << k;
    }
    in_list += listed.count(std::string(rec.at("auth_index").as_string())) ? 1 : 0;
  }
  EXPECT_GT(in_list, 150);  // most traffic is on listed OAuth files; config keys are unlisted
}

// ---- HTTP management ---------------------------------------------------------------------------

TEST_F(SimTest, ManagementAuthHeadersAndEmptyNotFound) {
  StartSim();
  HttpResult missing = Http(port_, "GET", "/v0/management/config");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.body, "{\"error\":\"missing management key\"}");
  EXPECT_EQ(missing.headers["x-cpa-version"], "7.2.140");
  EXPECT_TRUE(missing.has("X-CPA-COMMIT") && missing.has("X-CPA-BUILD-DATE"));
  EXPECT_EQ(missing.headers["x-cpa-support-plugin"], "1");
  EXPECT_EQ(Http(port_, "GET", "/v0/management/config", {{"Authorization", "Bearer nope"}}).body,
            "{\"error\":\"invalid management key\"}");
  EXPECT_EQ(
      Http(port_, "GET", "/v0/management/config", {{"Authorization", std::string(kKey)}}).status,
      200);
  HttpResult viaHeader =
      Http(port_, "GET", "/v0/management/config", {{"X-Management-Key", std::string(kKey)}});
  EXPECT_EQ(viaHeader.status, 200);
  auto cfg = bj::parse(viaHeader.body).as_object();
  EXPECT_FALSE(cfg.at("usage-statistics-enabled").as_bool());
  EXPECT_EQ(cfg.at("redis-usage-queue-retention-seconds").as_int64(), 60);
  EXPECT_TRUE(cfg.contains("proxy-url"));
  auto remote = Bearer();
  remote.emplace_back("X-Forwarded-For", "203.0.113.9");  // gin's ClientIP honours it
  HttpResult refused = Http(port_, "GET", "/v0/management/config", remote);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.body, "{\"error\":\"remote management disabled\"}");
  HttpResult unknown = Http(port_, "GET", "/v0/management/does-not-exist", Bearer());
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, "");
  EXPECT_TRUE(unknown.has("X-CPA-VERSION"));
  HttpResult options = Http(port_, "OPTIONS", "/v0/management/config");
  EXPECT_EQ(options.status, 204);
  EXPECT_EQ(options.headers["access-control-allow-origin"], "*");
  ASSERT_EQ(Http(port_, "PUT", "/v0/management/proxy-url", Bearer(),
                 "{\"value\":\"socks5://127.0.0.1:1080\"}")
                .status,
            200);
  EXPECT_EQ(Http(port_, "GET", "/v0/management/proxy-url", Bearer()).body,
            "{\"proxy-url\":\"socks5://127.0.0.1:1080\"}");
  auto models = bj::parse(Http(port_, "GET", "/v1/models").body).as_object();
  EXPECT_EQ(models.at("object").as_string(), "list");
  EXPECT_FALSE(models.at("data").as_array().empty());
  HttpResult logs = Http(port_, "GET", "/v0/management/logs", Bearer());
  EXPECT_EQ(logs.status, 200);
  EXPECT_GT(logs.body.size(), std::size_t{3} << 20);
  EXPECT_TRUE(bj::parse(logs.body).as_object().contains("lines"));
}

TEST_F(SimTest, AuthFileActionsAnswerOkAndNotifySubscribers) {
  StartSim();
  auto files = bj::parse(Http(port_, "GET", "/v0/management/auth-files", Bearer()).body)
                   .at("files")
                   .as_array();
  ASSERT_EQ(files.size(), 6u);
  const auto& first = files[0].as_object();
  for (auto k : {"id", "auth_index", "name", "type", "provider", "label", "status",
                 "status_message", "disabled", "unavailable", "runtime_only", "source", "size",
                 "success", "failed", "recent_requests"}) {
    EXPECT_TRUE(first.contains(k)) << k;
  }
  EXPECT_EQ(first.at("recent_requests").as_array().size(), 20u);
  const std::string name(first.at("name").as_string());

  RespClient sub(port_);
  sub.Auth();
  sub.Send({"SUBSCRIBE", "usage"});
  ASSERT_TRUE(sub.Read().has_value());
  EXPECT_EQ(Message(sub), "{\"support_refresh\":true}");

  HttpResult st = Http(port_, "PATCH", "/v0/management/auth-files/status", Bearer(),
                       "{\"name\":\"" + name + "\",\"disabled\":true}");
  EXPECT_EQ(st.body, "{\"disabled\":true,\"status\":\"ok\"}");
  EXPECT_EQ(Message(sub), "{\"refresh\":true}");
  EXPECT_EQ(Http(port_, "PATCH", "/v0/management/auth-files/status", Bearer(),
                 "{\"name\":\"missing.json\",\"disabled\":true}")
                .status,
            404);
  HttpResult del = Http(port_, "DELETE", "/v0/management/auth-files?name=" + name, Bearer());
  EXPECT_EQ(del.body, "{\"status\":\"ok\"}");
  EXPECT_EQ(Message(sub), "{\"refresh\":true}");
  EXPECT_EQ(bj::parse(Http(port_, "GET", "/v0/management/auth-files", Bearer()).body)
                .at("files")
                .as_array()
                .size(),
            5u);

  HttpResult call = Http(port_, "POST", "/v0/management/api-call", Bearer(),
                         "{\"authIndex\":\"" + std::string(files[1].at("auth_index").as_string()) +
                             "\",\"method\":\"get\",\"url\":\"https://chatgpt.com/backend-api/"
                             "wham/usage\",\"header\":{\"Authorization\":\"Bearer $TOKEN$\"}}");
  EXPECT_EQ(call.status, 200);
  auto cr = bj::parse(call.body).as_object();
  EXPECT_EQ(cr.at("status_code").as_int64(), 200);
  EXPECT_TRUE(cr.at("body").is_string());
  EXPECT_TRUE(cr.at("header").is_object());
  EXPECT_EQ(Http(port_, "POST", "/v0/management/api-call", Bearer(), "{\"url\":\"http://x\"}").body,
            "{\"error\":\"missing method\"}");
}

// ---- Control endpoint and emulations -------------------------------------------------------

TEST_F(SimTest, DropClosesEveryConnectionAndOptionallyClearsTheQueue) {
  StartSim();
  Publish("{\"a\":1}\n");
  RespClient popper(port_);
  popper.Auth();
  RespClient sub(port_);
  sub.Auth();
  sub.Send({"SUBSCRIBE", "usage"});
  ASSERT_TRUE(sub.Read().has_value());
  ASSERT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 1; }));
  HttpResult d = Http(port_, "POST", "/_sim/drop?clear=1");
  EXPECT_EQ(d.status, 200);
  EXPECT_TRUE(popper.ClosedByServer());
  EXPECT_TRUE(sub.ClosedByServer());
  EXPECT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 0 && Stat("queue_length") == 0; }));
  RespClient again(port_);  // the listener survives: a "restarted" CPA
  again.Auth();
  EXPECT_EQ(again.Cmd({"LPOP", "usage"}), Value::NullBulk());
}

TEST_F(SimTest, EmulatedOldVersionsLackSubscribeAndTheHttpQueue) {
  SimOptions o;
  o.emulation = ParseEmulation("no-subscribe, no-http-queue").value();
  StartSim(o);
  RespClient c(port_);
  c.Auth();
  EXPECT_EQ(c.Cmd({"SUBSCRIBE", "usage"}), Value::ErrorReply("ERR unknown command 'subscribe'"));
  EXPECT_EQ(Http(port_, "GET", "/v0/management/usage-queue", Bearer()).status, 404);
  EXPECT_FALSE(ParseEmulation("bogus").ok());
}

TEST_F(SimTest, RespDisabledEmulationRefusesEveryRespConnection) {
  SimOptions o;
  o.emulation.resp_disabled = true;
  StartSim(o);
  RespClient c(port_);
  c.Send({"AUTH", kKey});
  EXPECT_EQ(c.Read(), Value::ErrorReply("ERR RESP AUTH disabled; use mTLS"));
  EXPECT_TRUE(c.ClosedByServer());
}

TEST_F(SimTest, PreloadFeedsBatchPopsQuickly) {
  SimOptions o;
  o.preload = 100000;
  StartSim(o);
  RespClient c(port_);
  c.Auth();
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t total = 0;
  for (;;) {
    Value v = c.Cmd({"LPOP", "usage", "1000"});
    ASSERT_EQ(v.type, Value::Type::kArray);
    if (v.elements.empty()) break;
    total += v.elements.size();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(total, 100000u);
  std::printf("preload pop: %zu records in %.3f s (%.0f/s)\n", total, secs, total / secs);
}

// ---- Slow subscribers, unpaced and paced generation ---------------------------------------

TEST_F(SimTest, UnpacedGeneratorDropsASubscriberThatNeverReadsAndQueuesLaterRecords) {
  SimOptions o;
  o.usage_enabled = true;
  StartSim(o);
  EXPECT_FALSE(Stats().at("paced").as_bool());  // unpaced is the default, like CPA
  RespClient sub(port_);
  sub.Auth();
  sub.SubscribeUsage();
  ASSERT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 1; }));
  constexpr std::int64_t kCount = 50000;
  ASSERT_EQ(Http(port_, "POST", "/_sim/set?rate=50000&count=" + std::to_string(kCount)).status,
            200);
  ASSERT_TRUE(WaitFor([&] { return Stat("generated") == kCount; }, 20000));
  bj::object s = Stats();
  EXPECT_EQ(s.at("subscribers_dropped").as_int64(), 1);
  EXPECT_EQ(s.at("overflow_lost").as_int64(), 1);  // only the record that found it full
  EXPECT_EQ(s.at("usage_subscribers").as_int64(), 0);
  const std::int64_t delivered = s.at("delivered").as_int64();
  const std::int64_t queued = s.at("queued").as_int64();
  EXPECT_GE(delivered, 256);
  EXPECT_GT(queued, 0);  // generation went on; with no subscriber left, records are queued
  EXPECT_EQ(s.at("produced").as_int64(), kCount);
  EXPECT_EQ(delivered + 1 + queued, kCount);
  RespClient popper(port_);
  popper.Auth();
  Value first = popper.Cmd({"LPOP", "usage"});
  ASSERT_EQ(first.type, Value::Type::kBulkString);
  EXPECT_TRUE(bj::parse(first.str).as_object().contains("request_id"));
  // The dropped subscriber still gets every record buffered for it, then the connection
  // closes without an error reply.
  bool eof = false;
  EXPECT_EQ(CountFrames(sub.fd(), ~std::uint64_t{0}, 10000, &eof),
            static_cast<std::uint64_t>(delivered));
  EXPECT_TRUE(eof);
}

TEST_F(SimTest, UnpacedGeneratorKeepsASubscriberThatReadsContinuously) {
  SimOptions o;
  o.usage_enabled = true;
  StartSim(o);
  RespClient sub(port_);
  sub.Auth();
  sub.SubscribeUsage();
  ASSERT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 1; }));
  constexpr std::uint64_t kCount = 75000;  // 1.5 s at 50k records/s
  std::uint64_t received = 0;
  std::thread reader([&] { received = CountFrames(sub.fd(), kCount, 15000); });
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(Http(port_, "POST", "/_sim/set?rate=50000&count=" + std::to_string(kCount)).status,
            200);
  const bool done = WaitFor([&] { return Stat("generated") == kCount; }, 20000);
  reader.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(done);
  bj::object s = Stats();
  EXPECT_EQ(s.at("subscribers_dropped").as_int64(), 0);
  EXPECT_EQ(s.at("overflow_lost").as_int64(), 0);
  EXPECT_EQ(s.at("queued").as_int64(), 0);
  EXPECT_EQ(s.at("delivered").as_int64(), s.at("produced").as_int64());
  EXPECT_EQ(received, kCount);
  std::printf("unpaced subscribe: %llu records in %.2f s\n",
              static_cast<unsigned long long>(received), secs);
}

TEST_F(SimTest, DropSubscribersFlushesClosesAndLaterRecordsAreQueued) {
  StartSim();
  RespClient popper(port_);
  popper.Auth();
  RespClient sub(port_);
  sub.Auth();
  sub.SubscribeUsage();
  ASSERT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 1; }));
  Publish("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
  HttpResult d = Http(port_, "POST", "/_sim/drop-subscribers");
  EXPECT_EQ(d.status, 200);
  EXPECT_EQ(d.body, "{\"dropped\":1}");
  EXPECT_EQ(Message(sub), "{\"n\":1}");  // what was buffered is flushed, nothing is lost
  EXPECT_EQ(Message(sub), "{\"n\":2}");
  EXPECT_EQ(Message(sub), "{\"n\":3}");
  EXPECT_TRUE(sub.ClosedByServer());
  ASSERT_EQ(Http(port_, "POST", "/_sim/generate?count=5").status, 200);
  Value popped = popper.Cmd({"LPOP", "usage", "10"});  // the popper's connection survived
  ASSERT_EQ(popped.type, Value::Type::kArray);
  EXPECT_EQ(popped.elements.size(), 5u);

  // ?after=N drops once the next N records are published, mid-stream.
  RespClient sub2(port_);
  sub2.Auth();
  sub2.SubscribeUsage();
  ASSERT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 1; }));
  EXPECT_EQ(Http(port_, "POST", "/_sim/drop-subscribers?after=2").body, "{\"after\":2}");
  Publish("{\"m\":1}\n{\"m\":2}\n{\"m\":3}\n{\"m\":4}\n");
  EXPECT_EQ(Message(sub2), "{\"m\":1}");
  EXPECT_EQ(Message(sub2), "{\"m\":2}");
  EXPECT_TRUE(sub2.ClosedByServer());
  EXPECT_EQ(popper.Cmd({"LPOP", "usage", "10"}),
            Value::Array({Value::Bulk("{\"m\":3}"), Value::Bulk("{\"m\":4}")}));
  bj::object s = Stats();
  EXPECT_EQ(s.at("subscribers_dropped").as_int64(), 2);
  EXPECT_EQ(s.at("overflow_lost").as_int64(), 0);
  EXPECT_EQ(s.at("delivered").as_int64(), 5);
  EXPECT_EQ(s.at("queued").as_int64(), 7);
  EXPECT_EQ(Http(port_, "POST", "/_sim/drop-subscribers").body, "{\"dropped\":0}");
}

TEST_F(SimTest, PacedGeneratorWaitsForASlowSubscriberInsteadOfDroppingIt) {
  SimOptions o;
  o.usage_enabled = true;
  o.paced = true;
  StartSim(o);
  EXPECT_TRUE(Stats().at("paced").as_bool());
  RespClient sub(port_);
  sub.Auth();
  sub.SubscribeUsage();
  ASSERT_TRUE(WaitFor([&] { return Stat("usage_subscribers") == 1; }));
  constexpr std::uint64_t kCount = 40000;  // far more than the socket buffers hold
  ASSERT_EQ(Http(port_, "POST", "/_sim/set?rate=50000&count=" + std::to_string(kCount)).status,
            200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the subscriber reads nothing
  bj::object s = Stats();
  EXPECT_EQ(s.at("subscribers_dropped").as_int64(), 0);
  EXPECT_EQ(s.at("overflow_lost").as_int64(), 0);
  // The generator waits for the consumer instead of dropping it.
  EXPECT_LT(s.at("generated").to_number<std::uint64_t>(), kCount);
  EXPECT_EQ(CountFrames(sub.fd(), kCount, 10000), kCount);  // now it reads: nothing was lost
  s = Stats();
  EXPECT_EQ(s.at("delivered").to_number<std::uint64_t>(), kCount);
  EXPECT_EQ(s.at("subscribers_dropped").as_int64(), 0);
  EXPECT_EQ(s.at("queued").as_int64(), 0);
  EXPECT_FALSE(bj::parse(Http(port_, "POST", "/_sim/set?paced=0").body).at("paced").as_bool());
}

// ---- Generator ------------------------------------------------------------------------------

TEST(RecordGeneratorTest, RecordsFollowCpaKeyOrderAndTokenInvariants) {
  RecordGenerator gen(GeneratorOptions{42, false, 0.05});
  std::vector<std::string> expected_prefix = {"timestamp", "latency_ms", "ttft_ms", "source",
                                              "auth_index"};
  int failures = 0, secrets = 0;
  std::set<std::string> providers;
  for (int i = 0; i < 2000; ++i) {
    std::string rec;
    RecordMeta meta = gen.Next(std::chrono::system_clock::now(), &rec);
    auto obj = bj::parse(rec).as_object();
    std::vector<std::string> keys;
    for (const auto& kv : obj) keys.emplace_back(kv.key());
    ASSERT_GE(keys.size(), 20u);
    EXPECT_TRUE(std::equal(expected_prefix.begin(), expected_prefix.end(), keys.begin()));
    EXPECT_EQ(keys.back() == "response_service_tier" ? keys[keys.size() - 2] : keys.back(),
              "service_tier");
    providers.insert(std::string(obj.at("provider").as_string()));
    const auto& bd = obj.at("token_breakdown").as_object();
    const auto& in = bd.at("input").as_object();
    const auto& out = bd.at("output").as_object();
    EXPECT_EQ(in.at("total_tokens").as_int64(), in.at("uncached_tokens").as_int64() +
                                                    in.at("cache_read_tokens").as_int64() +
                                                    in.at("cache_write_tokens").as_int64());
    EXPECT_EQ(out.at("total_tokens").as_int64(),
              out.at("non_reasoning_tokens").as_int64() + out.at("reasoning_tokens").as_int64());
    EXPECT_EQ(bd.at("total_tokens").as_int64(),
              in.at("total_tokens").as_int64() + out.at("total_tokens").as_int64());
    EXPECT_EQ(bd.at("total_tokens").as_int64(), obj.at("tokens").at("total_tokens").as_int64());
    EXPECT_EQ(obj.at("failed").as_bool(), meta.failed);
    if (meta.failed) {
      ++failures;
      const std::string body(obj.at("fail").at("body").as_string());
      EXPECT_EQ(obj.at("fail").at("status_code").as_int64(), meta.status_code);
      if (body.find("sk-") != body.npos || body.find("Bearer ") != body.npos ||
          body.find('@') != body.npos)
        ++secrets;
      EXPECT_EQ(rec.find('<'), std::string::npos);  // Go escapes HTML
    } else {
      EXPECT_EQ(obj.at("fail").at("status_code").as_int64(), 200);
    }
  }
  EXPECT_EQ(providers, (std::set<std::string>{"claude", "codex", "gemini", "openai"}));
  EXPECT_GT(failures, 50);
  EXPECT_LT(failures, 200);
  EXPECT_GT(secrets, failures / 2);
}

TEST(RecordGeneratorTest, SameSeedSameRecordsAndLegacyShape) {
  RecordGenerator a(GeneratorOptions{7, false, 0.05}), b(GeneratorOptions{7, false, 0.05});
  const auto now = std::chrono::system_clock::now();
  for (int i = 0; i < 50; ++i) {
    std::string ra, rb;
    a.Next(now, &ra);
    b.Next(now, &rb);
    EXPECT_EQ(ra, rb);
  }
  RecordGenerator legacy(GeneratorOptions{7, true, 0.05});
  std::string rec;
  legacy.Next(now, &rec);
  std::vector<std::string> keys;
  const bj::value parsed = bj::parse(rec);
  for (const auto& kv : parsed.as_object()) keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"timestamp", "latency_ms", "source", "auth_index",
                                            "tokens", "failed", "provider", "model", "alias",
                                            "endpoint", "auth_type", "api_key", "request_id"}));
  EXPECT_EQ(bj::parse(rec).at("tokens").as_object().size(), 5u);
}

TEST(RecordGeneratorTest, AuthIndexAndEscapingMatchCpa) {
  EXPECT_EQ(StableAuthIndex("x").size(), 16u);
  std::string s;
  AppendGoJsonString("<a&b>\"\n\xe2\x80\xa8", &s);
  EXPECT_EQ(s, "\"\\u003ca\\u0026b\\u003e\\\"\\n\\u2028\"");
  EXPECT_EQ(GoTimestamp(std::chrono::system_clock::time_point(std::chrono::seconds(1785000000)) +
                        std::chrono::milliseconds(100)),
            "2026-07-25T17:20:00.1Z");
}

}  // namespace
}  // namespace cpamp::sim
