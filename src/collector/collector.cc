// Collector design notes.
//
// - One worker thread per applied plan. Run() picks a transport, runs its loop until an error
//   or Stop, then decides: fall back (auto mode, "not supported"), re-probe (auto mode, every
//   reprobe_interval on a fallback transport), or back off (1 s doubling to 30 s, +0-25 %
//   jitter, never longer than half the CPA queue retention) and reconnect. A subscription that
//   CPA closed after it ran reconnects after 100 ms: every second away sends records to the pop
//   queue, where only a drain finds them.
// - "Not supported" is decided from what CPA answered, never from message text: an error reply
//   to AUTH or SUBSCRIBE (older CPA, RESP disabled, home mode...), a peer that does not speak
//   RESP at all (HTTP behind a reverse proxy), or HTTP 404/405/501 from the usage-queue route.
//   Connect errors and timeouts are never a reason to fall back: CPA may simply be down.
// - Read fast, write behind: transports only read, parse and Submit() raw items to the
//   IngestPipeline (normalise + commit on its own two threads). The subscribe loop drains every
//   complete message its socket buffer holds into one chunk before submitting, so a burst costs
//   one hand-over per socket read. Submit() blocks only when the bounded buffer is full: then
//   the reader stops reading (/status readerStalled) rather than growing without bound.
// - Pops (http/resp transports and drains) pop only below the pop-ahead limit: CPA keeps what
//   we have not taken, so a kill -9 loses little in those modes; a subscriber cannot wait.
// - Drops: CPA closes a subscriber that is 256 messages behind and loses the overflowing record;
//   records published while no subscriber exists go to the pop queue. So a drain thread runs
//   beside every subscription: it pops the queue dry when the subscription starts (this covers
//   every re-subscribe after a drop) and again every quarter of the retention. A drop is
//   counted as an overflow (one record estimated lost) when the reader was stalled or far
//   behind the socket shortly before it; otherwise it is a plain close (CPA restart, disable).
// - Subscribe reads in 250 ms slices so Stop is noticed; the read window (40 s) and PING after
//   30 s idle are tracked here, not in the socket.
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
#include "collector/queue_items.h"
#include "collector/resp_connection.h"
#include "usage/event_store.h"

namespace cpamp::collector {
namespace {

namespace bj = boost::json;

constexpr int64_t kSubscribeSliceMs = 250;
constexpr size_t kSubscribeChunkItems = 4'096;  // hand over at least this often in a burst
constexpr int64_t kResubscribeDelayMs = 100;
constexpr size_t kCpaSubscriberBuffer = 256;  // cpa-protocol.md §2.4
constexpr int64_t kDropWindowMs = 200;
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
  bool dropped = false;      // CPA closed a running subscription
  static Outcome Stopped() { return Outcome{}; }
  static Outcome Fail(std::string stage, std::string error, bool unsupported = false) {
    return Outcome{std::move(stage), std::move(error), unsupported, false, false};
  }
  static Outcome Reprobe() { return Outcome{"", "", false, true, false}; }
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

CollectorStats Collector::GetStats() const {
  std::lock_guard lock(stats_mu_);
  CollectorStats s = stats_;
  if (pipeline_) {
    PipelineStats p = pipeline_->Stats();
    s.total_inserted += p.inserted;
    s.total_skipped += p.skipped;
    s.total_dead_letters += p.dead_letters;
    s.batches += p.transactions;
    s.transactions += p.transactions;
    s.commit_failures += p.commit_failures;
    if (p.last_inserted_at_ms > 0) s.last_inserted_at_ms = p.last_inserted_at_ms;
    if (p.newest_event_ms > 0) s.lag_ms = std::max<int64_t>(0, clock_.NowMs() - p.newest_event_ms);
    s.events_per_second = p.events_per_second;
    s.backlog_records = p.backlog_records;
    s.backlog_bytes = p.backlog_bytes;
    s.peak_backlog_records = std::max(s.peak_backlog_records, p.peak_backlog_records);
    s.reader_stalled = p.reader_stalled;
    s.reader_stalls += p.reader_stalls;
    s.reader_stall_ms += p.reader_stall_ms;
    if (p.commit_failing) s.last_commit_error = p.last_commit_error;
  }
  s.backlog_max_records = options_.buffer_max_records;
  s.backlog_max_bytes = options_.buffer_max_bytes;
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
  o["subscriberDrops"] = s.subscriber_drops;
  o["lastSubscriberDropAt"] = s.last_subscriber_drop_at_ms;
  o["overflowDrops"] = s.overflow_drops;
  o["drainedRecords"] = s.drained_records;
  o["drains"] = s.drains;
  o["lastDrainAt"] = s.last_drain_at_ms;
  o["drainTransport"] = s.drain_transport;
  if (!s.last_drain_error.empty()) o["lastDrainError"] = s.last_drain_error;
  o["undrainedGaps"] = s.undrained_gaps;
  o["estimatedLost"] = s.estimated_lost;
  o["backlogRecords"] = s.backlog_records;
  o["backlogBytes"] = s.backlog_bytes;
  o["backlogMaxRecords"] = s.backlog_max_records;
  o["backlogMaxBytes"] = s.backlog_max_bytes;
  o["peakBacklogRecords"] = s.peak_backlog_records;
  o["readerStalled"] = s.reader_stalled;
  o["readerStalls"] = s.reader_stalls;
  o["readerStallMs"] = s.reader_stall_ms;
  o["commitFailures"] = s.commit_failures;
  if (!s.last_commit_error.empty()) o["lastCommitError"] = s.last_commit_error;
  return o;
}

// ---- Worker ----------------------------------------------------------------------------------

int Collector::NextPopCount(bool full, int count, int batch) const {
  if (!full) return batch;
  const int64_t cap = std::max<int64_t>(batch, std::min(options_.max_pop_records, pop_ahead_));
  return static_cast<int>(std::min<int64_t>(int64_t{count} * 2, cap));
}

int64_t Collector::IdleWaitMs(const setup::CollectorPlan& plan) const {
  int64_t poll = plan.collector.poll_interval_ms > 0 ? plan.collector.poll_interval_ms : 500;
  return std::max<int64_t>(10, std::min(poll, retention_ms_ / 2));
}

bool Collector::Submit(std::vector<std::string>&& items) {
  if (items.empty()) return !stopping();
  NoteConsumed();
  std::shared_ptr<IngestPipeline> p;
  {
    std::lock_guard lock(stats_mu_);
    p = pipeline_;
  }
  p->Submit(std::move(items), &stop_);
  return !stopping();
}

bool Collector::WaitForPopRoom() {
  std::shared_ptr<IngestPipeline> p;
  {
    std::lock_guard lock(stats_mu_);
    p = pipeline_;
  }
  auto room = [&] { return p->QueuedRecords() < pop_ahead_ && p->HasRoom(0.5); };
  if (room()) return true;
  // The writer is behind: stop popping (the records wait in CPA's queue, which survives our
  // kill -9) and say so as a reader stall.
  p->BeginReaderWait();
  bool ok = false;
  while (!stopping()) {
    if (room()) {
      ok = true;
      break;
    }
    if (!Wait(5)) break;
  }
  p->EndReaderWait();
  return ok;
}

void Collector::NoteConsumed() {
  std::lock_guard lock(stats_mu_);
  stats_.last_consumed_at_ms = clock_.NowMs();
}

void Collector::NoteSubscriberDrop(bool overflow) {
  std::lock_guard lock(stats_mu_);
  ++stats_.subscriber_drops;
  stats_.last_subscriber_drop_at_ms = clock_.NowMs();
  if (overflow) {
    ++stats_.overflow_drops;
    ++stats_.estimated_lost;  // CPA loses exactly the record that overflowed (§2.4)
  }
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
  PipelineOptions popts;
  popts.max_records = options_.buffer_max_records;
  popts.max_bytes = options_.buffer_max_bytes;
  popts.snapshot_ttl_ms = options_.auth_snapshot_ttl_ms;
  popts.raw_json = options_.raw_json;
  popts.rate_window_ms = options_.rate_window_ms;
  {
    auto pipeline = std::make_shared<IngestPipeline>(db_, clock_, std::move(fetch), popts);
    std::lock_guard lock(stats_mu_);
    pipeline_ = std::move(pipeline);
  }

  pop_ahead_ = std::max<int64_t>(options_.pop_ahead_records, BatchSize(plan));
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
        before = stats_.last_consumed_at_ms;
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
      was_running = stats_.state == "running" || stats_.last_consumed_at_ms != before;
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
    if (out.dropped && was_running) wait = kResubscribeDelayMs;
    backoff = std::min(backoff * 2, options_.backoff_max_ms);
    if (!Wait(wait)) break;
  }

  // Commit what the pipeline holds, then fold its counters into the collector's totals.
  std::shared_ptr<IngestPipeline> p;
  {
    std::lock_guard lock(stats_mu_);
    p = pipeline_;
  }
  p->Close();
  {
    PipelineStats ps = p->Stats();
    std::lock_guard lock(stats_mu_);
    stats_.total_inserted += ps.inserted;
    stats_.total_skipped += ps.skipped;
    stats_.total_dead_letters += ps.dead_letters;
    stats_.batches += ps.transactions;
    stats_.transactions += ps.transactions;
    stats_.commit_failures += ps.commit_failures;
    if (ps.last_inserted_at_ms > 0) stats_.last_inserted_at_ms = ps.last_inserted_at_ms;
    stats_.reader_stalls += ps.reader_stalls;
    stats_.reader_stall_ms += ps.reader_stall_ms;
    stats_.peak_backlog_records = std::max(stats_.peak_backlog_records, ps.peak_backlog_records);
    pipeline_.reset();
  }
  SetState("stopped", "");
}

// ---- Pops (shared by the http/resp transports and the drainer) ------------------------------

namespace {

// One HTTP usage-queue pop. `unsupported` when CPA lacks the route.
struct PopResult {
  std::vector<std::string> items;
  size_t answered = 0;  // entries in CPA's answer (nulls and empties included)
  Status status;
  bool unsupported = false;
  std::string dead_body;  // an answer that was not a JSON array, kept as a dead letter
  std::string dead_error;
};

PopResult PopHttp(const http_client::Request& req) {
  PopResult out;
  Result<http_client::Response> resp = http_client::Fetch(req);
  if (!resp.ok()) {
    out.status = resp.status();
    return out;
  }
  const int st = resp->status;
  if (st == 404 || st == 405 || st == 501) {
    out.unsupported = true;
    out.status = Error(ErrorCode::kUpstreamUnavailable,
                       "usage queue not supported by CPA (" + http_client::StatusLine(st) + ")");
    return out;
  }
  if (!resp->ok()) {
    std::string msg = "unexpected status " + http_client::StatusLine(st);
    std::string body = Snippet(resp->body);
    if (!body.empty()) msg += ": " + body;
    out.status = Error(ErrorCode::kUpstreamUnavailable, msg);
    return out;
  }
  std::string why;
  if (!SplitQueueArray(resp->body, &out.items, &out.answered, &why)) {
    // Whatever CPA popped for this answer is in the body: keep it as a dead letter.
    out.dead_body = std::move(resp->body);
    out.dead_error = "usage-queue response " + why;
    out.status = Error(ErrorCode::kUpstreamUnavailable, "invalid usage-queue response: " + why);
    return out;
  }
  return out;
}

http_client::Request HttpQueueRequest(const setup::CollectorPlan& plan, int count,
                                      int64_t timeout_ms) {
  http_client::Request req;
  req.url = BaseUrl(plan) + "/v0/management/usage-queue?count=" + std::to_string(count);
  req.headers.emplace_back("Authorization", "Bearer " + plan.management_key);
  req.headers.emplace_back("Accept", "application/json");
  req.timeout_ms = timeout_ms;
  req.tls_skip_verify = plan.collector.tls_skip_verify;
  req.max_response_bytes = kHttpQueueMaxResponseBytes;
  return req;
}

// One RESP pop reply -> items; `answered` counts the entries CPA returned.
void TakeRespPop(resp::Value& reply, std::vector<std::string>* items, size_t* answered) {
  switch (reply.type) {
    case resp::Value::Type::kArray:
      for (resp::Value& el : reply.elements) {
        ++*answered;
        if (el.type == resp::Value::Type::kBulkString ||
            el.type == resp::Value::Type::kSimpleString) {
          if (!el.str.empty()) items->push_back(std::move(el.str));
        }
      }
      break;
    case resp::Value::Type::kBulkString:
      *answered = 1;
      if (!reply.str.empty()) items->push_back(std::move(reply.str));
      break;
    default:
      break;  // $-1 / *-1: empty queue
  }
}

Status StoreDeadLetter(db::Database& db, const Clock& clock, std::string_view payload,
                       std::string_view error) {
  usage::EventStore store(db);
  return store.InsertDeadLetter(payload, error, clock.NowMs());
}

}  // namespace

// ---- HTTP queue --------------------------------------------------------------------------------

Collector::Outcome Collector::RunHttp(const setup::CollectorPlan& plan, int64_t reprobe_at) {
  const int batch = BatchSize(plan);
  int count = batch;
  while (!stopping()) {
    if (reprobe_at > 0 && SteadyNowMs() >= reprobe_at) return Outcome::Reprobe();
    if (!WaitForPopRoom()) break;
    PopResult pop = PopHttp(HttpQueueRequest(plan, count, options_.http_timeout_ms));
    if (!pop.dead_body.empty()) {
      Status dl = StoreDeadLetter(db_, clock_, pop.dead_body, pop.dead_error);
      if (!dl.ok()) return Outcome::Fail("consume", dl.message());
    }
    if (!pop.status.ok()) return Outcome::Fail("http", pop.status.message(), pop.unsupported);
    MarkRunning();
    if (!Submit(std::move(pop.items))) break;
    const bool full = pop.answered >= static_cast<size_t>(count);
    count = NextPopCount(full, count, batch);
    if (!full && !Wait(IdleWaitMs(plan))) break;
  }
  return Outcome::Stopped();
}

// ---- RESP pop ----------------------------------------------------------------------------------

Collector::Outcome Collector::RunResp(const setup::CollectorPlan& plan, int64_t reprobe_at) {
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
  int count = batch;
  const std::string_view cmd = ToLower(plan.collector.pop_side) == "left" ? "LPOP" : "RPOP";
  while (!stopping()) {
    if (reprobe_at > 0 && SteadyNowMs() >= reprobe_at) return Outcome::Reprobe();
    if (!WaitForPopRoom()) break;
    Result<resp::Value> reply = c.Command({cmd, plan.collector.queue, std::to_string(count)});
    if (!reply.ok()) return Outcome::Fail("consume", reply.status().message(), c.not_resp());
    if (reply->type == resp::Value::Type::kError) return Outcome::Fail("consume", reply->str);
    std::vector<std::string> items;
    size_t answered = 0;
    TakeRespPop(*reply, &items, &answered);
    if (!Submit(std::move(items))) break;
    const bool full = answered >= static_cast<size_t>(count);
    count = NextPopCount(full, count, batch);
    if (!full && !Wait(IdleWaitMs(plan))) break;
  }
  return Outcome::Stopped();
}

// ---- Drainer -----------------------------------------------------------------------------------

// Runs beside one subscription: pops CPA's queue dry at start, then every interval. Owns its
// thread (joined by the destructor) and its own connections; reports into the collector's stats.
class Collector::Drainer {
 public:
  Drainer(Collector& owner, const setup::CollectorPlan& plan, bool after_drop)
      : owner_(owner), plan_(plan), after_drop_(after_drop) {
    interval_ms_ = owner_.options_.drain_interval_ms > 0
                       ? owner_.options_.drain_interval_ms
                       : std::clamp<int64_t>(owner_.retention_ms_ / 4, 1'000, 60'000);
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "collector-drain");
      try {
        Loop();
      } catch (const std::exception& e) {  // worker-loop boundary (STYLE habit 4)
        spdlog::error("collector: drain stopped by exception: {}", e.what());
      }
    });
  }
  ~Drainer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Drainer(const Drainer&) = delete;
  Drainer& operator=(const Drainer&) = delete;

 private:
  bool Stopping() {
    std::lock_guard lock(mu_);
    return stop_ || owner_.stopping();
  }
  bool Sleep(int64_t ms) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_ || owner_.stopping(); });
    return !stop_ && !owner_.stopping();
  }

  void Loop() {
    bool first = true;
    while (!Stopping()) {
      Status st = DrainOnce();
      if (!st.ok()) {
        std::lock_guard lock(owner_.stats_mu_);
        owner_.stats_.last_drain_error = st.message();
        if (first && after_drop_) ++owner_.stats_.undrained_gaps;
      } else {
        std::lock_guard lock(owner_.stats_mu_);
        owner_.stats_.last_drain_error.clear();
      }
      first = false;
      if (!Sleep(interval_ms_)) break;
    }
  }

  // Pops until the queue is empty (or we are stopping). Tries RESP pop, then the HTTP queue.
  Status DrainOnce() {
    const int batch = std::max(BatchSize(plan_), 500);
    int64_t drained = 0;
    Status result;
    for (;;) {
      if (Stopping()) break;
      // Leave the buffer to the subscriber: pop only below half of it.
      while (!owner_.DrainHasRoom()) {
        if (!Sleep(20)) return Status::Ok();
      }
      std::vector<std::string> items;
      size_t answered = 0;
      Status st = Pop(batch, &items, &answered);
      if (!st.ok()) {
        result = st;
        break;
      }
      const int64_t n = static_cast<int64_t>(items.size());
      if (n > 0) {
        owner_.Submit(std::move(items));
        drained += n;
        std::lock_guard lock(owner_.stats_mu_);
        owner_.stats_.drained_records += n;
        owner_.stats_.last_drain_at_ms = owner_.clock_.NowMs();
      }
      if (answered < static_cast<size_t>(batch)) break;
    }
    if (drained > 0) {
      {
        std::lock_guard lock(owner_.stats_mu_);
        ++owner_.stats_.drains;
      }
      spdlog::info("collector: drained {} records from CPA's queue ({})", drained,
                   after_drop_ ? "after a subscriber drop" : "queued while no subscriber existed");
    }
    return result;
  }

  Status Pop(int batch, std::vector<std::string>* items, size_t* answered) {
    if (use_http_) return PopViaHttp(batch, items, answered);
    Status st = PopViaResp(batch, items, answered);
    if (st.ok() || !resp_unsupported_) return st;
    use_http_ = true;
    return PopViaHttp(batch, items, answered);
  }

  Status PopViaResp(int batch, std::vector<std::string>* items, size_t* answered) {
    if (!resp_) {
      CPAMP_ASSIGN_OR_RETURN(RespEndpoint ep, RespEndpointFromBaseUrl(
                                                  BaseUrl(plan_), plan_.collector.tls_skip_verify));
      CPAMP_ASSIGN_OR_RETURN(resp_, RespConnection::Connect(ep));
      Result<resp::Value> auth = resp_->Command({"AUTH", plan_.management_key});
      if (!auth.ok() || auth->type == resp::Value::Type::kError) {
        resp_unsupported_ = auth.ok() || resp_->not_resp();
        Status st = auth.ok() ? Error(ErrorCode::kUpstreamUnavailable, "auth: " + auth->str)
                              : auth.status();
        resp_.reset();
        return st;
      }
    }
    const std::string_view cmd = ToLower(plan_.collector.pop_side) == "left" ? "LPOP" : "RPOP";
    Result<resp::Value> reply =
        resp_->Command({cmd, plan_.collector.queue, std::to_string(batch)});
    if (!reply.ok()) {
      resp_unsupported_ = resp_->not_resp();
      resp_.reset();
      return reply.status();
    }
    if (reply->type == resp::Value::Type::kError) {
      resp_unsupported_ = true;
      resp_.reset();
      return Error(ErrorCode::kUpstreamUnavailable, "pop: " + reply->str);
    }
    TakeRespPop(*reply, items, answered);
    SetTransport("resp");
    return Status::Ok();
  }

  Status PopViaHttp(int batch, std::vector<std::string>* items, size_t* answered) {
    PopResult pop = PopHttp(HttpQueueRequest(plan_, batch, owner_.options_.http_timeout_ms));
    if (!pop.dead_body.empty()) {
      Status dl = StoreDeadLetter(owner_.db_, owner_.clock_, pop.dead_body, pop.dead_error);
      if (!dl.ok()) return dl;
    }
    if (!pop.status.ok()) {
      if (pop.unsupported) use_http_ = false;  // neither works: try RESP again next time
      return pop.status;
    }
    *items = std::move(pop.items);
    *answered = pop.answered;
    SetTransport("http");
    return Status::Ok();
  }

  void SetTransport(std::string_view t) {
    std::lock_guard lock(owner_.stats_mu_);
    owner_.stats_.drain_transport = std::string(t);
  }

  Collector& owner_;
  const setup::CollectorPlan plan_;
  const bool after_drop_;
  int64_t interval_ms_ = 15'000;
  std::unique_ptr<RespConnection> resp_;
  bool resp_unsupported_ = false;
  bool use_http_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

bool Collector::DrainHasRoom() {
  std::shared_ptr<IngestPipeline> p;
  {
    std::lock_guard lock(stats_mu_);
    p = pipeline_;
  }
  return p->HasRoom(0.5) && p->QueuedRecords() < pop_ahead_;
}

// ---- RESP subscribe ----------------------------------------------------------------------------

Collector::Outcome Collector::RunSubscribe(const setup::CollectorPlan& plan) {
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
  bool after_drop = false;
  {
    std::lock_guard lock(stats_mu_);
    after_drop = stats_.subscriber_drops > 0;
  }
  // Subscribed from here on, so new records come to us; what CPA queued before is drained.
  Drainer drainer(*this, plan, after_drop);

  int64_t last_rx = SteadyNowMs();
  int64_t last_ping = last_rx;
  int64_t behind_at = 0;  // steady ms when the socket was last seen far behind
  // Messages received in the current and the previous 200 ms window: CPA drops a subscriber
  // only when its 256-message buffer is full, and then still writes that full buffer, so a
  // close right after >= 256 messages in a few hundred ms is the overflow signature.
  int64_t window_start = SteadyNowMs();
  int64_t window_msgs = 0;
  int64_t prev_window_msgs = 0;
  std::vector<std::string> chunk;
  while (!stopping()) {
    // Take every complete message already received, then hand them over at once.
    Result<std::optional<resp::Value>> msg = c.Read(chunk.empty() ? kSubscribeSliceMs : 0);
    if (!msg.ok()) {
      Submit(std::move(chunk));
      if (c.peer_closed() && !stopping()) {
        PipelineStats ps;
        {
          std::lock_guard lock(stats_mu_);
          ps = pipeline_->Stats();
        }
        const int64_t now = SteadyNowMs();
        const bool stalled_recently =
            ps.reader_stalled || (ps.last_stall_end_steady_ms > 0 &&
                                  now - ps.last_stall_end_steady_ms <= options_.overflow_window_ms);
        const bool behind_recently =
            behind_at > 0 && now - behind_at <= options_.overflow_window_ms;
        const bool dense_close =
            window_msgs + prev_window_msgs >= static_cast<int64_t>(kCpaSubscriberBuffer);
        const bool overflow = stalled_recently || behind_recently || dense_close;
        NoteSubscriberDrop(overflow);
        spdlog::warn("collector: CPA closed the subscription{}",
                     overflow ? " (slow-consumer overflow: CPA drops one record); re-subscribing "
                                "and draining its queue"
                              : "; re-subscribing and draining its queue");
        Outcome out = Outcome::Fail("consume", msg.status().message(), c.not_resp());
        out.dropped = true;
        return out;
      }
      return Outcome::Fail("consume", msg.status().message(), c.not_resp());
    }
    const int64_t now = SteadyNowMs();
    if (now - window_start >= kDropWindowMs) {
      prev_window_msgs = now - window_start >= 2 * kDropWindowMs ? 0 : window_msgs;
      window_msgs = 0;
      window_start = now;
    }
    if (msg->has_value()) {
      last_rx = now;
      ++window_msgs;
      resp::Value& v = **msg;
      if (v.type == resp::Value::Type::kArray && v.elements.size() == 3 &&
          ToLower(v.elements[0].str) == "message") {
        std::string& payload = v.elements[2].str;
        if (payload != kSupportRefreshPayload && !payload.empty()) {
          chunk.push_back(std::move(payload));
        }
      } else if (v.type == resp::Value::Type::kError) {
        spdlog::warn("collector: subscribe: server said {}", v.str);
      }
      if (chunk.size() < kSubscribeChunkItems) continue;
    }
    if (!chunk.empty()) {
      if (c.UnreadBytes() >= options_.overflow_unread_bytes) behind_at = now;
      if (!Submit(std::move(chunk))) break;
      chunk.clear();
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
  Submit(std::move(chunk));
  return Outcome::Stopped();
}

}  // namespace cpamp::collector
