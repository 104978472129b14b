// The usage collector: consumes CPA's usage queue and stores every record (spec cpamp-api.md §6,
// cpa-protocol.md §2-3, cpamp-storage.md §4.1). This is the context's public header;
// ingest_pipeline.h, usage_writer.h and resp_connection.h are its building blocks.
//
// Transports: `subscribe` (RESP SUBSCRIBE), `http` (GET /v0/management/usage-queue), `resp`
// (RPOP/LPOP <queue> <n>), and `auto` = subscribe -> http -> resp, moving on only when the
// preferred transport is not supported by this CPA and re-probing it every 10 minutes.
//
// Read fast, write behind: the transport thread only reads and parses, and hands raw items to an
// IngestPipeline whose own threads normalise and commit them. While subscribed, a drain thread
// pops what CPA queued while no subscriber existed (at every (re)subscribe, then every quarter of
// the queue retention), over RESP pop or the HTTP queue.
//
// No loss: an item received is committed or dead-lettered; dedup by event_hash makes overlaps
// (drain vs subscription, redelivery) harmless. What a kill -9 can lose is the pipeline's
// in-memory backlog at that instant (bounded by buffer_max_records/bytes, see /status
// `backlogRecords`); docs/operations.md states the bound.
//
// Threading: Collector is thread-safe. It runs one named worker thread ("collector") while a
// plan is applied, plus the pipeline's two threads and, while subscribed, "collector-drain";
// Apply/Start/Wake/Stop/StatusJson/GetStats may be called from any thread (Apply and Stop block
// until the worker has stopped and the pipeline has committed what it holds).
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
#include "collector/ingest_pipeline.h"
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
  int64_t rate_window_ms = 10'000;  // eventsPerSecond window
  // Write-behind buffer bound (records and bytes received, not yet committed).
  int64_t buffer_max_records = 1'500'000;
  int64_t buffer_max_bytes = int64_t{2} << 30;
  // Pop transports and drains pop only while fewer than this many records wait for the writer's
  // transaction (raw or prepared; rows already in the open transaction are not counted, so
  // popping goes on while it commits) and the backlog is below half of the buffer. Popping never
  // crowds out the subscriber, kill -9 exposure stays small for pops (this plus one transaction,
  // see ingest_pipeline.h) and CPA keeps the rest until the writer catches up.
  int64_t pop_ahead_records = 8'192;
  // Under backlog a pop asks for up to this many records (doubling from the batch size while
  // CPA keeps answering full batches); an idle queue is polled with the batch size.
  int64_t max_pop_records = 4'096;
  // While subscribed, drain CPA's pop queue this often (0 = a quarter of the retention).
  int64_t drain_interval_ms = 0;
  // A subscriber drop counts as CPA's slow-consumer overflow when, within this window before it,
  // the reader stalled or had more than overflow_unread_bytes unread.
  int64_t overflow_window_ms = 5'000;
  size_t overflow_unread_bytes = size_t{1} << 20;
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
  // Subscriber drops and drains.
  int64_t subscriber_drops = 0;  // subscriptions CPA closed while we were reading
  int64_t last_subscriber_drop_at_ms = 0;
  int64_t overflow_drops = 0;  // ... of which looked like CPA's 256-message overflow
  int64_t drained_records = 0;  // popped by the drains
  int64_t drains = 0;           // drain passes that popped something
  int64_t last_drain_at_ms = 0;
  std::string drain_transport;  // resp | http | "" (none worked yet)
  std::string last_drain_error;
  int64_t undrained_gaps = 0;  // drops after which no drain could reach CPA's queue
  int64_t estimated_lost = 0;  // one per overflow drop (CPA loses the overflowing record)
  // Write-behind buffer.
  int64_t backlog_records = 0;
  int64_t backlog_bytes = 0;
  int64_t backlog_max_records = 0;
  int64_t backlog_max_bytes = 0;
  int64_t peak_backlog_records = 0;
  bool reader_stalled = false;
  int64_t reader_stalls = 0;
  int64_t reader_stall_ms = 0;
  int64_t transactions = 0;
  int64_t commit_failures = 0;
  std::string last_commit_error;  // set while commits are failing
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
  class Drainer;
  enum class Transport { kSubscribe, kHttp, kResp };

  void Run(setup::CollectorPlan plan);
  Outcome RunSubscribe(const setup::CollectorPlan& plan);
  // reprobe_at: steady ms at which to hand back to the preferred transport (0 = never).
  Outcome RunHttp(const setup::CollectorPlan& plan, int64_t reprobe_at);
  Outcome RunResp(const setup::CollectorPlan& plan, int64_t reprobe_at);
  // Hands items to the pipeline (blocks while its buffer is full); false when stopping.
  bool Submit(std::vector<std::string>&& items);
  // Waits while the backlog is above the pop-ahead limit; false when stopping.
  bool WaitForPopRoom();
  // The next pop size: doubles while CPA answers full pops (backlog), back to `batch` otherwise.
  int NextPopCount(bool full, int count, int batch) const;
  void NoteConsumed();
  void NoteSubscriberDrop(bool overflow);
  bool DrainHasRoom();
  // Sleeps up to ms; returns false when stopping. Wake() ends the wait early.
  bool Wait(int64_t ms);
  bool stopping() const { return stop_.load(); }
  int64_t IdleWaitMs(const setup::CollectorPlan& plan) const;
  void SetState(std::string_view state, std::string_view transport);
  void SetError(std::string error);
  void MarkRunning();

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
  CollectorStats stats_;  // guarded by stats_mu_; totals of finished pipelines included
  // The running plan's pipeline (null when stopped), guarded by stats_mu_; its counters are added
  // to stats_ in GetStats() and folded into stats_ when the run ends.
  std::shared_ptr<IngestPipeline> pipeline_;

  // Worker-thread state.
  int64_t retention_ms_ = 60'000;
  int64_t pop_ahead_ = 2'000;  // effective pop-ahead limit of the running plan
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace cpamp::collector
