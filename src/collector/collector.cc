// Collector design notes.
//
// - One worker thread per applied plan. Run() picks a transport, runs its loop until an error
//   or Stop, then decides: fall back (auto mode, "not supported"), re-probe (auto mode, every
//   reprobe_interval on a fallback transport), or back off (1 s doubling to 30 s, +0-25 %
//   jitter, never longer than half the CPA queue retention) and reconnect.
// - "Not supported" is decided from what CPA answered, never from message text: an error reply
//   to AUTH or SUBSCRIBE (older CPA, RESP disabled, home mode...), a peer that does not speak
//   RESP at all (HTTP behind a reverse proxy), or HTTP 404/405/501 from the usage-queue route.
//   Connect errors and timeouts are never a reason to fall back: CPA may simply be down.
// - No loss: items received go to pending_ and are committed (UsageWriter, one transaction)
//   before the next pop. A failed commit is retried a few times; if it still fails the items
//   stay in pending_, the session ends with a `consume` error and the next session commits them
//   first. Stop() commits whatever is pending once more before the worker exits.
// - Subscribe reads in 250 ms slices so Stop and the flush timer (poll interval) are noticed;
//   the read window (40 s) and PING after 30 s idle are tracked here, not in the socket.
// - The idle poll wait is min(pollIntervalMs, retention/2) so records never expire in CPA
//   between two polls (retention read once per start from GET /v0/management/config).
#include "collector/collector.h"

#include <pthread.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>

#include "base/json.h"
#include "base/log.h"
#include "base/strings.h"
#include "clients/cpa/cpa_client.h"
#include "clients/http/http_client.h"
#include "collector/resp_connection.h"

namespace cpamp::collector {
namespace {

namespace bj = boost::json;

constexpr int64_t kSubscribeSliceMs = 250;
constexpr std::string_view kSupportRefreshPayload = R"({"support_refresh":true})";
constexpr size_t kHttpQueueMaxResponseBytes = size_t{256} << 20;
constexpr size_t kErrorBodySnippet = 200;

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool SamePlan(const setup::CollectorPlan& a, const setup::CollectorPlan& b) {
  const setup::CollectorConfig& x = a.collector;
  const setup::CollectorConfig& y = b.collector;
  return a.base_url == b.base_url && a.management_key == b.management_key &&
         x.Enabled() == y.Enabled() && x.collector_mode == y.collector_mode && x.queue == y.queue &&
         x.pop_side == y.pop_side && x.batch_size == y.batch_size &&
         x.poll_interval_ms == y.poll_interval_ms && x.query_limit == y.query_limit &&
         x.tls_skip_verify == y.tls_skip_verify;
}

std::string BaseUrl(const setup::CollectorPlan& plan) {
  std::string base = plan.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

int BatchSize(const setup::CollectorPlan& plan) {
  return plan.collector.batch_size > 0 ? plan.collector.batch_size : 100;
}

cpa::Connection CpaConnection(const setup::CollectorPlan& plan, int64_t timeout_ms) {
  cpa::Connection c;
  c.base_url = BaseUrl(plan);
  c.management_key = plan.management_key;
  c.tls_skip_verify = plan.collector.tls_skip_verify;
  c.timeout_ms = timeout_ms;
  return c;
}

std::string Snippet(std::string_view body) {
  std::string s(TrimView(body.substr(0, kErrorBodySnippet)));
  return s;
}

}  // namespace

struct Collector::Outcome {
  std::string stage;  // connect | auth | subscribe | http | consume; empty when stopped
  std::string error;
  bool unsupported = false;  // CPA answered that this transport is not available
  bool reprobe = false;      // time to try the preferred transport again
  static Outcome Stopped() { return Outcome{}; }
  static Outcome Fail(std::string stage, std::string error, bool unsupported = false) {
    return Outcome{std::move(stage), std::move(error), unsupported, false};
  }
  static Outcome Reprobe() { return Outcome{"", "", false, true}; }
};

Collector::Collector(db::Database& db, const Clock& clock, CollectorOptions options)
    : db_(db), clock_(clock), options_(options) {}

Collector::~Collector() { Stop(); }

// ---- Control ---------------------------------------------------------------------------------

void Collector::Apply(const std::optional<setup::CollectorPlan>& plan) {
  {
    std::lock_guard lock(control_mu_);
    if (plan && plan_ && SamePlan(*plan, *plan_) && worker_.joinable()) return;
  }
  Stop();
  {
    std::lock_guard lock(control_mu_);
    plan_ = plan;
    if (plan_) RegisterSecret(plan_->management_key);
  }
  if (plan) Start();
}

void Collector::Start() {
  std::lock_guard lock(control_mu_);
  if (worker_.joinable() || !plan_) return;
  stop_ = false;
  {
    std::lock_guard wl(wait_mu_);
    woken_ = false;
  }
  {
    std::lock_guard sl(stats_mu_);
    stats_.state = "starting";
    stats_.upstream = plan_->base_url;
    stats_.mode = plan_->collector.collector_mode;
    stats_.queue = plan_->collector.queue;
    stats_.transport.clear();
  }
  worker_ = std::thread([this, plan = *plan_]() mutable {
    pthread_setname_np(pthread_self(), "collector");
    try {
      Run(std::move(plan));
    } catch (const std::exception& e) {  // worker-loop boundary (STYLE habit 4)
      spdlog::error("collector: worker stopped by exception: {}", e.what());
      SetError(std::string("consume: ") + e.what());
      SetState("stopped", "");
    }
  });
}

void Collector::Wake() {
  {
    std::lock_guard lock(wait_mu_);
    woken_ = true;
  }
  wait_cv_.notify_all();
}

void Collector::Stop() {
  std::lock_guard lock(control_mu_);
  if (!worker_.joinable()) return;
  stop_ = true;
  wait_cv_.notify_all();
  worker_.join();
}

bool Collector::Wait(int64_t ms) {
  std::unique_lock lock(wait_mu_);
  wait_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(ms, 0)),
                    [&] { return stop_.load() || woken_; });
  woken_ = false;
  return !stop_.load();
}

// ---- Status ----------------------------------------------------------------------------------

void Collector::SetState(std::string_view state, std::string_view transport) {
  std::lock_guard lock(stats_mu_);
  stats_.state = std::string(state);
  stats_.transport = std::string(transport);
}

void Collector::SetError(std::string error) {
  spdlog::warn("collector: {}", error);
  std::lock_guard lock(stats_mu_);
  stats_.state = "error";
  stats_.last_error = std::move(error);
}

void Collector::MarkRunning() {
  std::lock_guard lock(stats_mu_);
  stats_.state = "running";
  stats_.last_error.clear();
}

void Collector::RecordBatch(const WriteStats& w, size_t items) {
  const int64_t now = clock_.NowMs();
  const int64_t steady = SteadyNowMs();
  std::lock_guard lock(stats_mu_);
  ++stats_.batches;
  if (items > 0) stats_.last_consumed_at_ms = now;
  stats_.total_inserted += w.inserted;
  stats_.total_skipped += w.skipped;
  stats_.total_dead_letters += w.dead_letters;
  if (w.inserted + w.skipped > 0) stats_.last_inserted_at_ms = now;
  if (w.newest_event_ms > 0) stats_.lag_ms = std::max<int64_t>(0, now - w.newest_event_ms);
  recent_.emplace_back(steady, w.inserted + w.skipped);
  while (!recent_.empty() && steady - recent_.front().first > options_.rate_window_ms) {
    recent_.pop_front();
  }
}

CollectorStats Collector::GetStats() const {
  std::lock_guard lock(stats_mu_);
  CollectorStats s = stats_;
  const int64_t steady = SteadyNowMs();
  int64_t events = 0;
  for (const auto& [at, n] : recent_) {
    if (steady - at <= options_.rate_window_ms) events += n;
  }
  s.events_per_second =
      static_cast<double>(events) * 1000.0 / static_cast<double>(options_.rate_window_ms);
  return s;
}

bj::object Collector::StatusJson() {
  CollectorStats s = GetStats();
  bj::object o;
  o["collector"] = s.state;
  o["upstream"] = s.upstream;
  o["mode"] = s.mode;
  o["transport"] = s.transport;
  o["queue"] = s.queue;
  o["lastConsumedAt"] = s.last_consumed_at_ms;
  o["lastInsertedAt"] = s.last_inserted_at_ms;
  o["totalInserted"] = s.total_inserted;
  o["totalSkipped"] = s.total_skipped;
  Result<int64_t> dead = db_.CountRows("dead_letter_events");
  o["deadLetters"] = dead.ok() ? *dead : s.total_dead_letters;
  if (!s.last_error.empty()) o["lastError"] = s.last_error;
  o["eventsPerSecond"] = s.events_per_second;
  o["lagMs"] = s.lag_ms;
  o["totalDeadLetters"] = s.total_dead_letters;
  o["batches"] = s.batches;
  o["reconnects"] = s.reconnects;
  return o;
}

// ---- Worker ----------------------------------------------------------------------------------

int64_t Collector::IdleWaitMs(const setup::CollectorPlan& plan) const {
  int64_t poll = plan.collector.poll_interval_ms > 0 ? plan.collector.poll_interval_ms : 500;
  return std::max<int64_t>(10, std::min(poll, retention_ms_ / 2));
}

bool Collector::CommitPending(std::string* error) {
  if (pending_.empty()) return true;
  int64_t wait = options_.commit_retry_ms;
  for (int attempt = 1; attempt <= std::max(1, options_.commit_attempts); ++attempt) {
    Result<WriteStats> w = writer_->WriteBatch(pending_);
    if (w.ok()) {
      RecordBatch(*w, pending_.size());
      pending_.clear();
      return true;
    }
    *error = w.status().message();
    spdlog::warn("collector: commit of {} items failed (attempt {}): {}", pending_.size(), attempt,
                 *error);
    if (attempt < options_.commit_attempts) {
      if (!Wait(wait)) return false;
      wait *= 2;
    }
  }
  return false;
}

void Collector::Run(setup::CollectorPlan plan) {
  cpa::Connection auth_conn = CpaConnection(plan, options_.auth_files_timeout_ms);
  AuthFilesFetcher fetch = [auth_conn]() -> Result<std::string> {
    CPAMP_ASSIGN_OR_RETURN(http_client::Response r, cpa::ListAuthFiles(auth_conn));
    if (!r.ok()) {
      return Error(ErrorCode::kUpstreamUnavailable,
                   "auth-files: unexpected status " + http_client::StatusLine(r.status));
    }
    return std::move(r.body);
  };
  UsageWriter::Options wopts;
  wopts.snapshot_ttl_ms = options_.auth_snapshot_ttl_ms;
  wopts.raw_json = options_.raw_json;
  writer_ = std::make_unique<UsageWriter>(db_, clock_, std::move(fetch), wopts);

  retention_ms_ = cpa::kDefaultRetentionSeconds * 1000;
  if (options_.read_retention) {
    Result<http_client::Response> cfg = cpa::GetConfig(CpaConnection(plan, 5'000));
    if (cfg.ok() && cfg->ok()) {
      Result<bj::object> obj = json::ParseObject(cfg->body);
      if (obj.ok()) {
        cpa::UsageSettings us = cpa::ParseUsageSettings(*obj);
        retention_ms_ = std::max<int64_t>(1, us.retention_seconds) * 1000;
        std::lock_guard lock(stats_mu_);
        stats_.retention_seconds = us.retention_seconds;
      }
    } else {
      spdlog::info("collector: could not read CPA retention, assuming {} s",
                   cpa::kDefaultRetentionSeconds);
    }
  }

  std::vector<Transport> order;
  const std::string mode = ToLower(Trim(plan.collector.collector_mode));
  if (mode == "subscribe") {
    order = {Transport::kSubscribe};
  } else if (mode == "http") {
    order = {Transport::kHttp};
  } else if (mode == "resp") {
    order = {Transport::kResp};
  } else {
    order = {Transport::kSubscribe, Transport::kHttp, Transport::kResp};
  }

  size_t idx = 0;
  int64_t backoff = options_.backoff_initial_ms;
  int64_t fallback_at = 0;
  while (!stopping()) {
    const Transport t = order[idx];
    const std::string_view name = t == Transport::kSubscribe ? "subscribe"
                                  : t == Transport::kHttp    ? "http"
                                                             : "resp";
    {
      std::lock_guard lock(stats_mu_);
      if (stats_.state != "error") stats_.state = "starting";
      stats_.transport = std::string(name);
    }
    const int64_t reprobe_at = idx > 0 ? fallback_at + options_.reprobe_interval_ms : 0;
    bool was_running = false;
    Outcome out;
    {
      int64_t before = 0;
      {
        std::lock_guard lock(stats_mu_);
        before = stats_.batches;
      }
      switch (t) {
        case Transport::kSubscribe:
          out = RunSubscribe(plan);
          break;
        case Transport::kHttp:
          out = RunHttp(plan, reprobe_at);
          break;
        case Transport::kResp:
          out = RunResp(plan, reprobe_at);
          break;
      }
      std::lock_guard lock(stats_mu_);
      was_running = stats_.state == "running" || stats_.batches != before;
    }
    if (stopping()) break;
    if (out.reprobe) {
      spdlog::info("collector: re-probing the preferred transport");
      idx = 0;
      continue;
    }
    if (was_running) backoff = options_.backoff_initial_ms;
    if (out.unsupported && idx + 1 < order.size()) {
      spdlog::info("collector: {} not supported ({}: {}), falling back", name, out.stage,
                   out.error);
      ++idx;
      fallback_at = SteadyNowMs();
      {
        std::lock_guard lock(stats_mu_);
        stats_.state = "starting";
        stats_.last_error = out.stage + ": " + out.error;
      }
      continue;
    }
    SetError(out.stage + ": " + out.error);
    {
      std::lock_guard lock(stats_mu_);
      ++stats_.reconnects;
    }
    int64_t wait = std::min(backoff, std::max(options_.backoff_initial_ms, retention_ms_ / 2));
    wait += std::uniform_int_distribution<int64_t>(0, wait / 4)(rng_);
    backoff = std::min(backoff * 2, options_.backoff_max_ms);
    if (!Wait(wait)) break;
  }

  if (!pending_.empty()) {
    // One last attempt on the way out; a failure here is the documented loss bound.
    Result<WriteStats> w = writer_->WriteBatch(pending_);
    if (w.ok()) {
      RecordBatch(*w, pending_.size());
    } else {
      spdlog::error("collector: {} items could not be stored at stop: {}", pending_.size(),
                    w.status().message());
    }
    pending_.clear();
  }
  writer_.reset();
  SetState("stopped", "");
}

// ---- HTTP queue --------------------------------------------------------------------------------

Collector::Outcome Collector::RunHttp(const setup::CollectorPlan& plan, int64_t reprobe_at) {
  const int batch = BatchSize(plan);
  http_client::Request req;
  req.url = BaseUrl(plan) + "/v0/management/usage-queue?count=" + std::to_string(batch);
  req.headers.emplace_back("Authorization", "Bearer " + plan.management_key);
  req.headers.emplace_back("Accept", "application/json");
  req.timeout_ms = options_.http_timeout_ms;
  req.tls_skip_verify = plan.collector.tls_skip_verify;
  req.max_response_bytes = kHttpQueueMaxResponseBytes;

  std::string err;
  while (!stopping()) {
    if (!CommitPending(&err))
      return stopping() ? Outcome::Stopped() : Outcome::Fail("consume", err);
    if (reprobe_at > 0 && SteadyNowMs() >= reprobe_at) return Outcome::Reprobe();

    Result<http_client::Response> resp = http_client::Fetch(req);
    if (!resp.ok()) return Outcome::Fail("http", resp.status().message());
    const int st = resp->status;
    if (st == 404 || st == 405 || st == 501) {
      return Outcome::Fail(
          "http", "usage queue not supported by CPA (" + http_client::StatusLine(st) + ")", true);
    }
    if (!resp->ok()) {
      std::string msg = "unexpected status " + http_client::StatusLine(st);
      std::string body = Snippet(resp->body);
      if (!body.empty()) msg += ": " + body;
      return Outcome::Fail("http", msg);
    }
    MarkRunning();

    boost::system::error_code ec;
    bj::value v = bj::parse(resp->body, ec);
    if (ec || !v.is_array()) {
      // Whatever CPA popped for this answer is in the body: keep it as a dead letter.
      std::string why = ec ? "invalid JSON: " + ec.message() : "not a JSON array";
      Status dl = writer_->WriteDeadLetter(resp->body, "usage-queue response " + why);
      if (!dl.ok()) return Outcome::Fail("consume", dl.message());
      return Outcome::Fail("http", "invalid usage-queue response: " + why);
    }
    const bj::array& arr = v.get_array();
    for (const bj::value& item : arr) {
      if (item.is_null()) continue;
      if (item.is_string()) {
        if (!item.get_string().empty()) pending_.emplace_back(item.get_string());
      } else {
        pending_.push_back(bj::serialize(item));
      }
    }
    if (!pending_.empty()) {
      std::lock_guard lock(stats_mu_);
      stats_.last_consumed_at_ms = clock_.NowMs();
    }
    if (!CommitPending(&err))
      return stopping() ? Outcome::Stopped() : Outcome::Fail("consume", err);
    if (arr.size() < static_cast<size_t>(batch) && !Wait(IdleWaitMs(plan))) break;
  }
  return Outcome::Stopped();
}

// ---- RESP pop ----------------------------------------------------------------------------------

Collector::Outcome Collector::RunResp(const setup::CollectorPlan& plan, int64_t reprobe_at) {
  std::string err;
  if (!CommitPending(&err)) return stopping() ? Outcome::Stopped() : Outcome::Fail("consume", err);
  Result<RespEndpoint> ep = RespEndpointFromBaseUrl(BaseUrl(plan), plan.collector.tls_skip_verify);
  if (!ep.ok()) return Outcome::Fail("connect", ep.status().message());
  Result<std::unique_ptr<RespConnection>> conn = RespConnection::Connect(*ep);
  if (!conn.ok()) return Outcome::Fail("connect", conn.status().message());
  RespConnection& c = **conn;

  Result<resp::Value> auth = c.Command({"AUTH", plan.management_key});
  if (!auth.ok()) return Outcome::Fail("auth", auth.status().message(), c.not_resp());
  if (auth->type == resp::Value::Type::kError) return Outcome::Fail("auth", auth->str, true);
  MarkRunning();

  const int batch = BatchSize(plan);
  const std::string count = std::to_string(batch);
  const std::string_view cmd = ToLower(plan.collector.pop_side) == "left" ? "LPOP" : "RPOP";
  while (!stopping()) {
    if (reprobe_at > 0 && SteadyNowMs() >= reprobe_at) return Outcome::Reprobe();
    Result<resp::Value> reply = c.Command({cmd, plan.collector.queue, count});
    if (!reply.ok()) return Outcome::Fail("consume", reply.status().message(), c.not_resp());
    size_t got = 0;
    switch (reply->type) {
      case resp::Value::Type::kError:
        return Outcome::Fail("consume", reply->str);
      case resp::Value::Type::kArray:
        for (resp::Value& el : reply->elements) {
          ++got;
          if (el.type == resp::Value::Type::kBulkString ||
              el.type == resp::Value::Type::kSimpleString) {
            if (!el.str.empty()) pending_.push_back(std::move(el.str));
          }
        }
        break;
      case resp::Value::Type::kBulkString:
        got = 1;
        if (!reply->str.empty()) pending_.push_back(std::move(reply->str));
        break;
      default:
        break;  // $-1 / *-1: empty queue
    }
    if (!pending_.empty()) {
      std::lock_guard lock(stats_mu_);
      stats_.last_consumed_at_ms = clock_.NowMs();
    }
    if (!CommitPending(&err))
      return stopping() ? Outcome::Stopped() : Outcome::Fail("consume", err);
    if (got < static_cast<size_t>(batch) && !Wait(IdleWaitMs(plan))) break;
  }
  return Outcome::Stopped();
}

// ---- RESP subscribe ----------------------------------------------------------------------------

Collector::Outcome Collector::RunSubscribe(const setup::CollectorPlan& plan) {
  std::string err;
  if (!CommitPending(&err)) return stopping() ? Outcome::Stopped() : Outcome::Fail("consume", err);
  Result<RespEndpoint> ep = RespEndpointFromBaseUrl(BaseUrl(plan), plan.collector.tls_skip_verify);
  if (!ep.ok()) return Outcome::Fail("connect", ep.status().message());
  Result<std::unique_ptr<RespConnection>> conn = RespConnection::Connect(*ep);
  if (!conn.ok()) return Outcome::Fail("connect", conn.status().message());
  RespConnection& c = **conn;

  Result<resp::Value> auth = c.Command({"AUTH", plan.management_key});
  if (!auth.ok()) return Outcome::Fail("auth", auth.status().message(), c.not_resp());
  if (auth->type == resp::Value::Type::kError) return Outcome::Fail("auth", auth->str, true);

  Result<resp::Value> sub = c.Command({"SUBSCRIBE", plan.collector.queue});
  if (!sub.ok()) return Outcome::Fail("subscribe", sub.status().message(), c.not_resp());
  if (sub->type == resp::Value::Type::kError) return Outcome::Fail("subscribe", sub->str, true);
  if (sub->type != resp::Value::Type::kArray || sub->elements.empty() ||
      ToLower(sub->elements[0].str) != "subscribe") {
    return Outcome::Fail("subscribe", "unexpected reply " + resp::DebugString(*sub), true);
  }
  MarkRunning();

  const size_t batch = static_cast<size_t>(BatchSize(plan));
  const int64_t flush_after =
      plan.collector.poll_interval_ms > 0 ? plan.collector.poll_interval_ms : 500;
  int64_t last_rx = SteadyNowMs();
  int64_t last_ping = last_rx;
  int64_t batch_started = 0;
  while (!stopping()) {
    int64_t now = SteadyNowMs();
    int64_t slice = kSubscribeSliceMs;
    if (!pending_.empty()) slice = std::min(slice, batch_started + flush_after - now);
    Result<std::optional<resp::Value>> msg = c.Read(std::max<int64_t>(slice, 1));
    if (!msg.ok()) {
      std::string read_error = msg.status().message();
      if (!CommitPending(&err)) {
        return stopping() ? Outcome::Stopped() : Outcome::Fail("consume", err);
      }
      return Outcome::Fail("consume", read_error, c.not_resp());
    }
    now = SteadyNowMs();
    if (msg->has_value()) {
      last_rx = now;
      resp::Value& v = **msg;
      if (v.type == resp::Value::Type::kArray && v.elements.size() == 3 &&
          ToLower(v.elements[0].str) == "message") {
        std::string& payload = v.elements[2].str;
        if (payload != kSupportRefreshPayload && !payload.empty()) {
          if (pending_.empty()) batch_started = now;
          pending_.push_back(std::move(payload));
        }
      } else if (v.type == resp::Value::Type::kError) {
        spdlog::warn("collector: subscribe: server said {}", v.str);
      }
    }
    if (!pending_.empty() && (pending_.size() >= batch || now - batch_started >= flush_after)) {
      {
        std::lock_guard lock(stats_mu_);
        stats_.last_consumed_at_ms = clock_.NowMs();
      }
      if (!CommitPending(&err)) {
        return stopping() ? Outcome::Stopped() : Outcome::Fail("consume", err);
      }
    }
    if (now - last_rx >= options_.subscribe_read_window_ms) {
      return Outcome::Fail("consume", "read timeout: no data from CPA for " +
                                          std::to_string(options_.subscribe_read_window_ms / 1000) +
                                          "s");
    }
    if (now - std::max(last_rx, last_ping) >= options_.subscribe_ping_idle_ms) {
      last_ping = now;
      Status ping = c.Send({"PING"});
      if (!ping.ok()) return Outcome::Fail("consume", ping.message());
    }
  }
  return Outcome::Stopped();
}

}  // namespace cpamp::collector
