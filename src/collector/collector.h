// The usage collector: consumes CPA's usage queue and stores every record through UsageWriter
// (spec cpamp-api.md §6, cpa-protocol.md §2-3, cpamp-storage.md §4.1). This is the context's
// public header; usage_writer.h and resp_connection.h are its building blocks.
//
// Transports: `subscribe` (RESP SUBSCRIBE), `http` (GET /v0/management/usage-queue), `resp`
// (RPOP/LPOP <queue> <n>), and `auto` = subscribe -> http -> resp, moving on only when the
// preferred transport is not supported by this CPA and re-probing it every 10 minutes.
//
// No loss: a popped (or pushed) batch is committed or dead-lettered before anything else is
// popped; a failing commit keeps the batch in memory and retries it, across reconnects too.
// A kill -9 loses at most the batch in flight (popped, not yet committed).
//
// Threading: Collector is thread-safe. It runs one named worker thread ("collector") while a
// plan is applied; Apply/Start/Wake/Stop/StatusJson/GetStats may be called from any thread
// (Apply and Stop block until the worker has stopped: at most one in-flight CPA call, <= 30 s).
// Ownership: borrows the Database and Clock (they must outlive the Collector).
#pragma once

#include <boost/json/object.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "collector/usage_writer.h"
#include "db/db.h"
#include "setup/setup.h"

namespace cpamp::collector {

struct CollectorOptions {
  int64_t backoff_initial_ms = 1'000;
  int64_t backoff_max_ms = 30'000;
  int64_t reprobe_interval_ms = 600'000;  // auto mode: retry the preferred transport
  int64_t subscribe_read_window_ms = 40'000;
  int64_t subscribe_ping_idle_ms = 30'000;
  int64_t http_timeout_ms = 30'000;
  int64_t auth_files_timeout_ms = 5'000;
  int64_t auth_snapshot_ttl_ms = kAuthSnapshotTtlMs;
  int commit_attempts = 5;          // per round; the batch is kept and retried after that
  int64_t commit_retry_ms = 200;    // first wait between attempts, doubling
  int64_t rate_window_ms = 10'000;  // eventsPerSecond window
  bool read_retention = true;       // GET /v0/management/config at start (tests may disable)
  RawJsonPolicy raw_json = RawJsonPolicy::kFailed;  // see usage_writer.h
};

// Counters and state behind StatusJson() (cpamp-api.md §6 plus our extras).
struct CollectorStats {
  std::string state = "stopped";  // stopped | starting | running | error
  std::string upstream;
  std::string mode;
  std::string transport;
  std::string queue;
  int64_t last_consumed_at_ms = 0;
  int64_t last_inserted_at_ms = 0;
  int64_t total_inserted = 0;
  int64_t total_skipped = 0;
  int64_t total_dead_letters = 0;
  int64_t batches = 0;
  int64_t reconnects = 0;
  int64_t lag_ms = 0;
  double events_per_second = 0;
  int64_t retention_seconds = 0;  // as read from CPA (0 = not read)
  std::string last_error;
};

class Collector final : public setup::CollectorControl {
 public:
  Collector(db::Database& db, const Clock& clock = SystemClock::Instance(),
            CollectorOptions options = CollectorOptions{});
  ~Collector() override;
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // nullopt stops; a plan (re)starts the worker with it; the same plan again changes nothing.
  void Apply(const std::optional<setup::CollectorPlan>& plan) override;
  // The `collector` object of GET /status; `deadLetters` is the dead_letter_events row count.
  boost::json::object StatusJson() override;

  // Worker shape (STYLE habit 8). Start() runs the last applied plan (no-op without one or when
  // running); Wake() cuts short an idle or backoff wait (coalescing); Stop() joins.
  void Start();
  void Wake();
  void Stop();
  CollectorStats GetStats() const;

 private:
  struct Outcome;
  enum class Transport { kSubscribe, kHttp, kResp };

  void Run(setup::CollectorPlan plan);
  Outcome RunSubscribe(const setup::CollectorPlan& plan);
  // reprobe_at: steady ms at which to hand back to the preferred transport (0 = never).
  Outcome RunHttp(const setup::CollectorPlan& plan, int64_t reprobe_at);
  Outcome RunResp(const setup::CollectorPlan& plan, int64_t reprobe_at);
  // Commits `pending_` (retrying); false when it is still pending (error or stop).
  bool CommitPending(std::string* error);
  // Sleeps up to ms; returns false when stopping. Wake() ends the wait early.
  bool Wait(int64_t ms);
  bool stopping() const { return stop_.load(); }
  int64_t IdleWaitMs(const setup::CollectorPlan& plan) const;
  void SetState(std::string_view state, std::string_view transport);
  void SetError(std::string error);
  void MarkRunning();
  void RecordBatch(const WriteStats& stats, size_t items);

  db::Database& db_;
  const Clock& clock_;
  const CollectorOptions options_;

  std::mutex control_mu_;                     // serialises Apply/Start/Stop
  std::optional<setup::CollectorPlan> plan_;  // guarded by control_mu_
  std::thread worker_;                        // guarded by control_mu_

  std::atomic<bool> stop_{false};
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  bool woken_ = false;  // guarded by wait_mu_

  mutable std::mutex stats_mu_;
  CollectorStats stats_;                            // guarded by stats_mu_
  std::deque<std::pair<int64_t, int64_t>> recent_;  // (steady ms, events), guarded by stats_mu_

  // Worker-thread state.
  std::unique_ptr<UsageWriter> writer_;
  std::vector<std::string> pending_;  // popped, not yet committed (survives reconnects)
  int64_t retention_ms_ = 60'000;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace cpamp::collector
