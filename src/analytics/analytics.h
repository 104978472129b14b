// analytics: the dashboard summary, Usage Analytics / Request Monitoring, header snapshots and
// account history (spec storage §6, api §4.11-4.12), the incremental hourly rollup that makes
// them fast, and raw-event retention.
//
// Layers: time buckets and filters (pure) → the query engine (reads analytics_hourly_rollups plus
// raw usage_events for what the rollup does not cover, so every answer is exact) → Handlers (one
// method per route: decode, compute, encode). RollupWorker folds usage_events into the rollup in
// bounded checkpointed batches; RetentionWorker deletes raw rows older than N days once they are
// folded in, so long-term totals survive.
//
// Threading: Handlers is thread-safe (every call uses pooled read connections; the price table is
// loaded per request). Workers own one thread each; Start/Wake/Stop/Stats may be called from any
// thread. Ownership: everything borrows the Database and Clock, which must outlive it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/status.h"
#include "db/db.h"
#include "net/http.h"
#include "pricing/pricing.h"

namespace cpamp::analytics {

inline constexpr int64_t kHourMs = 3'600'000;
inline constexpr int64_t kDayMs = 86'400'000;
inline constexpr int64_t kMaxEventsPageLimit = 50'000;
inline constexpr int64_t kDefaultEventsPageLimit = 100;
inline constexpr int64_t kDefaultDrilldownLimit = 20;
inline constexpr int64_t kMaxDrilldownLimit = 100;
inline constexpr size_t kMaxAccountHistoryTargets = 200;
inline constexpr int64_t kAccountHistoryRecentRequests = 10;
inline constexpr int64_t kTaskBucketLimit = 500;
inline constexpr int64_t kRollupBatchEvents = 1'000;  // ids per catch-up transaction
inline constexpr int64_t kRollupBatchesPerWake = 10;
inline constexpr int64_t kRetentionBatchRows = 1'000;

// Where prices come from; the default loads model_prices on a read connection per request.
using PriceLoader = std::function<Result<pricing::PriceTable>()>;

struct Options {
  bool rollups_enabled = true;  // false: every read uses raw events (tests, troubleshooting)
  PriceLoader prices;           // empty: pricing::LoadPrices on a reader
};

// The route handlers. Each returns a complete response (errors as the {"error","code"} envelope).
class Handlers {
 public:
  Handlers(db::Database& db, const Clock& clock, Options options = {});

  net::Response DashboardSummary(const net::Request& request);     // GET, exact path
  net::Response MonitoringAnalytics(const net::Request& request);  // POST, exact path
  net::Response HeaderSnapshots(const net::Request& request);      // GET, exact path
  net::Response AccountHistory(const net::Request& request);       // POST, exact path
  // Everything else under /v0/management/monitoring/ and /v0/management/dashboard/: 405.
  net::Response MethodNotAllowed(const net::Request& request);

 private:
  Result<pricing::PriceTable> LoadPrices();

  db::Database& db_;
  const Clock& clock_;
  Options options_;
};

struct WorkerStats {
  int64_t passes = 0;
  int64_t processed = 0;  // events folded in (rollup) or rows deleted (retention)
  int64_t last_event_id = 0;
  std::string last_error;
};

// Folds usage_events (id order) into analytics_hourly_rollups and the search projection
// (analytics_search_rows, own checkpoint). Each pass runs ≤10 transactions of ≤1,000 ids for
// each; a pass is also triggered every poll interval. Rebuilds (from the oldest raw
// hour) when the price structure revision changes, because context bands depend on it.
class RollupWorker {
 public:
  // search_projection=false skips filling analytics_search_rows (saves ~0.7 KB per event; free-
  // text search then tests rows one by one and stays exact, only slower).
  RollupWorker(db::Database& db, const Clock& clock, PriceLoader prices = {},
               int64_t poll_interval_ms = 30'000, bool search_projection = true);
  ~RollupWorker();
  void Start();
  void Wake();
  void Stop();
  WorkerStats Stats() const;
  // One bounded pass on the calling thread (tests, benchmarks, catch_up). Returns events folded.
  Result<int64_t> RunOnce(int64_t max_batches = kRollupBatchesPerWake);

 private:
  void Loop();
  db::Database& db_;
  const Clock& clock_;
  PriceLoader prices_;
  const int64_t poll_interval_ms_;
  const bool search_projection_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;                       // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  WorkerStats stats_;                       // guarded by mu_
  std::atomic<int64_t> last_projected_{0};  // search-projection rows written by the last pass
  std::thread thread_;
};

// Deletes usage_events older than retention_days (whole UTC hours), ≤1,000 rows per transaction,
// and only rows the rollup already covers. retention_days ≤ 0 disables it.
class RetentionWorker {
 public:
  RetentionWorker(db::Database& db, const Clock& clock, int retention_days,
                  int64_t poll_interval_ms = 60'000);
  ~RetentionWorker();
  void Start();
  void Wake();
  void Stop();
  WorkerStats Stats() const;
  // Deletes up to max_batches batches; returns rows deleted.
  Result<int64_t> RunOnce(int64_t max_batches = 10);

 private:
  void Loop();
  db::Database& db_;
  const Clock& clock_;
  const int retention_days_;
  const int64_t poll_interval_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;      // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  WorkerStats stats_;      // guarded by mu_
  std::thread thread_;
};

}  // namespace cpamp::analytics
