// Collector against real peers: a real redis-server (RESP subscribe and pop with AUTH), a fake
// CPA HTTP server (usage queue, 404 fallback, garbage answers), and nothing at all (backoff).
#include "collector/collector.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "collector/collector_test_util.h"
#include "collector/resp_connection.h"
#include "net/http.h"

namespace cpamp::collector {
namespace {

namespace bj = boost::json;
using testing_util::Record;
using testing_util::TempDir;

constexpr char kRedisBinary[] = "/usr/bin/redis-server";
constexpr char kPassword[] = "test-management-key-123";

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool WaitUntil(const std::function<bool()>& pred, int64_t timeout_ms = 10'000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// A real redis-server on a free loopback port, with a password, no persistence.
class RedisServer {
 public:
  explicit RedisServer(const std::string& dir) : port_(FreePort()) {
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execl(kRedisBinary, "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
              "--requirepass", kPassword, "--save", "", "--appendonly", "no", "--dir", dir.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    RespEndpoint ep{"127.0.0.1", port, false, false};
    WaitUntil([&] {
      auto c = RespConnection::Connect(ep, 1000);
      if (!c.ok()) return false;
      client_ = std::move(c).value();
      return true;
    });
    EXPECT_TRUE(client_ != nullptr) << "redis-server did not start";
    if (client_) {
      auto ok = client_->Command({"AUTH", kPassword});
      EXPECT_TRUE(ok.ok() && ok->str == "OK");
    }
  }
  ~RedisServer() {
    client_.reset();
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  resp::Value Command(const std::vector<std::string_view>& args) {
    auto r = client_->Command(args);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r).value() : resp::Value::ErrorReply("failed");
  }
  std::string BaseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
  std::unique_ptr<RespConnection> client_;
};

// A fake CPA Management API: the usage queue serves queued bodies, then [] (or 404).
class FakeCpa : public net::Application {
 public:
  net::Dispatch Classify(const net::RequestHead&) override { return net::Dispatch{}; }
  net::Response Handle(const net::Request& req) override {
    if (req.Header("Authorization") != std::string("Bearer ") + kPassword) {
      return net::Response::ErrorJson(401, "invalid management key", "");
    }
    std::lock_guard lock(mu);
    if (req.path() == "/v0/management/usage-queue") {
      ++queue_requests;
      last_count = req.head.QueryParam("count").value_or("");
      if (unsupported) return net::Response::Empty(404);
      if (bodies.empty()) return net::Response::Text(200, "[]", "application/json");
      std::string body = std::move(bodies.front());
      bodies.pop_front();
      return net::Response::Text(200, std::move(body), "application/json");
    }
    if (req.path() == "/v0/management/config") {
      return net::Response::Text(200, R"({"redis-usage-queue-retention-seconds":60})",
                                 "application/json");
    }
    if (req.path() == "/v0/management/auth-files") {
      return net::Response::Text(200, R"({"files":[]})", "application/json");
    }
    return net::Response::Empty(404);
  }
  void OnCompleted(const net::RequestHead&, int, int64_t) override {}

  std::mutex mu;
  std::deque<std::string> bodies;
  bool unsupported = false;
  int queue_requests = 0;
  std::string last_count;
};

class CollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = db::Database::Open(dir_.File("usage.sqlite"));
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db).value();
    options_.backoff_initial_ms = 50;
    options_.backoff_max_ms = 400;
  }
  int64_t Count(std::string_view table) { return db_->CountRows(table).value_or(-1); }
  static setup::CollectorPlan Plan(const std::string& base, const std::string& mode) {
    setup::CollectorPlan p;
    p.base_url = base;
    p.management_key = kPassword;
    p.collector.collector_mode = mode;
    p.collector.batch_size = 100;
    p.collector.poll_interval_ms = 50;
    return p;
  }
  static std::string Str(const bj::object& o, std::string_view key) {
    const bj::value* v = o.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : "";
  }

  TempDir dir_;
  std::unique_ptr<db::Database> db_;
  CollectorOptions options_;
};

TEST_F(CollectorTest, SubscribeModeStoresPublishedRecords) {
  RedisServer redis(dir_.path().string());
  options_.read_retention = false;
  Collector collector(*db_, SystemClock::Instance(), options_);
  collector.Apply(Plan(redis.BaseUrl(), "subscribe"));
  ASSERT_TRUE(WaitUntil([&] { return collector.GetStats().state == "running"; }))
      << collector.GetStats().last_error;
  // The subscription is live once PUBLISH reports one receiver.
  ASSERT_TRUE(WaitUntil([&] {
    return redis.Command({"PUBLISH", "usage", R"({"support_refresh":true})"}).integer == 1;
  }));
  for (int i = 0; i < 250; ++i) {
    std::string rec = Record(i);
    EXPECT_EQ(redis.Command({"PUBLISH", "usage", rec}).integer, 1);
  }
  redis.Command({"PUBLISH", "usage", Record(0)});  // re-delivery
  redis.Command({"PUBLISH", "usage", "{broken"});
  ASSERT_TRUE(WaitUntil(
      [&] { return collector.GetStats().total_skipped == 1 && Count("dead_letter_events") == 1; }));
  EXPECT_EQ(Count("usage_events"), 250);
  bj::object st = collector.StatusJson();
  EXPECT_EQ(Str(st, "collector"), "running");
  EXPECT_EQ(Str(st, "transport"), "subscribe");
  EXPECT_EQ(Str(st, "mode"), "subscribe");
  EXPECT_EQ(Str(st, "queue"), "usage");
  EXPECT_EQ(st.at("totalInserted").as_int64(), 250);
  EXPECT_EQ(st.at("deadLetters").as_int64(), 1);
  EXPECT_GT(st.at("lastConsumedAt").as_int64(), 0);
  // One transaction takes whatever arrives within its second (or until 10 ms of quiet).
  EXPECT_GE(st.at("batches").as_int64(), 1);
  EXPECT_FALSE(st.contains("lastError"));

  collector.Apply(std::nullopt);
  EXPECT_EQ(collector.GetStats().state, "stopped");
}

TEST_F(CollectorTest, RespModePopsPushedRecords) {
  RedisServer redis(dir_.path().string());
  for (int i = 0; i < 250; ++i) {
    std::string rec = Record(i);
    redis.Command({"RPUSH", "usage", rec});
  }
  options_.read_retention = false;
  Collector collector(*db_, SystemClock::Instance(), options_);
  auto plan = Plan(redis.BaseUrl(), "resp");
  plan.collector.pop_side = "left";
  collector.Apply(plan);
  ASSERT_TRUE(WaitUntil([&] { return Count("usage_events") == 250; }))
      << collector.GetStats().last_error;
  EXPECT_EQ(redis.Command({"LLEN", "usage"}).integer, 0);
  // Later pushes are picked up by the idle poll.
  std::string late = Record(1000);
  redis.Command({"RPUSH", "usage", late});
  ASSERT_TRUE(WaitUntil([&] { return Count("usage_events") == 251; }));
  CollectorStats s = collector.GetStats();
  EXPECT_EQ(s.transport, "resp");
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(s.total_inserted, 251);
  EXPECT_GE(s.batches, 2);  // the late record is a commit of its own
}

TEST_F(CollectorTest, WrongPasswordIsAnAuthError) {
  RedisServer redis(dir_.path().string());
  options_.read_retention = false;
  Collector collector(*db_, SystemClock::Instance(), options_);
  auto plan = Plan(redis.BaseUrl(), "resp");
  plan.management_key = "wrong-key-000000";
  collector.Apply(plan);
  ASSERT_TRUE(WaitUntil([&] { return !collector.GetStats().last_error.empty(); }));
  CollectorStats s = collector.GetStats();
  EXPECT_EQ(s.state, "error");
  EXPECT_EQ(s.last_error.rfind("auth: ", 0), 0u) << s.last_error;
}

TEST_F(CollectorTest, HttpModeConsumesQueueBatchesAndSurvivesGarbage) {
  FakeCpa cpa;
  net::ServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.io_threads = 1;
  so.worker_threads = 2;
  net::HttpServer server(so, cpa);
  ASSERT_TRUE(server.Start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.BoundPort());
  {
    std::lock_guard lock(cpa.mu);
    cpa.bodies.push_back("this is not json");
    cpa.bodies.push_back("[" + Record(1) + "," + Record(2) + "]");
    cpa.bodies.push_back("[" + bj::serialize(bj::value(Record(3))) + ",null,\"\"," + Record(1) +
                         "]");
  }
  Collector collector(*db_, SystemClock::Instance(), options_);
  collector.Apply(Plan(base, "http"));
  ASSERT_TRUE(WaitUntil([&] { return Count("usage_events") == 3; }))
      << collector.GetStats().last_error;
  ASSERT_TRUE(WaitUntil([&] { return collector.GetStats().total_skipped == 1; }));
  EXPECT_EQ(Count("dead_letter_events"), 1);  // the garbage body, kept verbatim
  auto payload = db_->Read([](db::Connection& c) -> Result<std::string> {
    CPAMP_ASSIGN_OR_RETURN(db::Statement s, c.Prepare("select payload from dead_letter_events"));
    CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Error(ErrorCode::kNotFound, "none");
    return s.ColumnText(0);
  });
  EXPECT_EQ(payload.value_or(""), "this is not json");
  CollectorStats s = collector.GetStats();
  EXPECT_EQ(s.transport, "http");
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(s.retention_seconds, 60);
  EXPECT_GE(s.reconnects, 1);  // the garbage answer was an error followed by a retry
  {
    std::lock_guard lock(cpa.mu);
    EXPECT_EQ(cpa.last_count, "100");
  }
  // Apply with the same plan is a no-op; a different plan restarts.
  collector.Apply(Plan(base, "http"));
  EXPECT_EQ(collector.GetStats().state, "running");
  collector.Apply(std::nullopt);
  EXPECT_EQ(collector.GetStats().state, "stopped");
  server.Stop(1000);
}

TEST_F(CollectorTest, AutoFallsBackFromSubscribeToHttpToResp) {
  FakeCpa cpa;
  net::ServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.io_threads = 1;
  so.worker_threads = 2;
  net::HttpServer server(so, cpa);
  ASSERT_TRUE(server.Start().ok());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.BoundPort());
  {
    std::lock_guard lock(cpa.mu);
    cpa.bodies.push_back("[" + Record(1) + "]");
  }
  Collector collector(*db_, SystemClock::Instance(), options_);
  collector.Apply(Plan(base, "auto"));
  // RESP SUBSCRIBE meets an HTTP server -> not supported -> HTTP queue works.
  ASSERT_TRUE(WaitUntil([&] { return Count("usage_events") == 1; }))
      << collector.GetStats().last_error;
  EXPECT_EQ(collector.GetStats().transport, "http");
  EXPECT_EQ(collector.GetStats().state, "running");

  // The queue route disappears (404) -> RESP pop, which also meets HTTP: a clear error.
  {
    std::lock_guard lock(cpa.mu);
    cpa.unsupported = true;
  }
  ASSERT_TRUE(WaitUntil([&] { return collector.GetStats().transport == "resp"; }));
  ASSERT_TRUE(WaitUntil([&] { return collector.GetStats().state == "error"; }));
  bj::object st = collector.StatusJson();
  const std::string err = Str(st, "lastError");
  EXPECT_EQ(err.rfind("auth: unsupported RESP prefix 'H'", 0), 0u) << err;
  EXPECT_NE(err.find("reverse proxy"), std::string::npos) << err;
  EXPECT_NE(err.find("collector mode to http"), std::string::npos) << err;
  EXPECT_EQ(Str(st, "mode"), "auto");
  collector.Stop();
  server.Stop(1000);
}

TEST_F(CollectorTest, BacksOffWhenNothingListens) {
  const uint16_t port = FreePort();
  options_.read_retention = false;
  Collector collector(*db_, SystemClock::Instance(), options_);
  collector.Apply(Plan("http://127.0.0.1:" + std::to_string(port), "resp"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  bj::object st = collector.StatusJson();
  EXPECT_EQ(Str(st, "collector"), "error");
  EXPECT_EQ(Str(st, "transport"), "resp");
  const std::string err = Str(st, "lastError");
  EXPECT_EQ(err.rfind("connect: dial tcp 127.0.0.1:" + std::to_string(port), 0), 0u) << err;
  // 50, 100, 200, 400, 400 ms (+ jitter): a handful of attempts, not a busy loop.
  const int64_t reconnects = st.at("reconnects").as_int64();
  EXPECT_GE(reconnects, 3);
  EXPECT_LE(reconnects, 8);
  for (std::string_view key :
       {"upstream", "mode", "queue", "lastConsumedAt", "lastInsertedAt", "totalInserted",
        "totalSkipped", "deadLetters", "eventsPerSecond", "lagMs", "totalDeadLetters", "batches"}) {
    EXPECT_TRUE(st.contains(key)) << key;
  }
  // Stop is prompt even while backing off.
  auto t0 = std::chrono::steady_clock::now();
  collector.Apply(std::nullopt);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_EQ(collector.GetStats().state, "stopped");
}

}  // namespace
}  // namespace cpamp::collector
