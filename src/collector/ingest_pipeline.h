// IngestPipeline: the write-behind half of the collector (spec cpamp-storage.md §4.1).
//
// Transports (the subscribe reader, the pop loops, the drains) hand raw queue items to Submit()
// and go straight back to reading CPA. Two named threads do the rest:
//   "usage-prepare"  normalises, redacts and hashes each item (usage::NormalizeQueuePayload),
//                    applies the raw_json policy and fills account snapshots from a cached copy
//                    of CPA's auth-file list (a `refresh` control message invalidates it);
//   "usage-writer"   commits the prepared events and dead letters through usage::EventStore,
//                    coalescing whatever is ready into one transaction (bigger under backlog),
//                    retrying a failed commit with backoff and never dropping the batch.
// So the SQLite writer core does nothing but bind and step, and a slow commit (fsync,
// checkpoint, a lock held by another process) never stops the reader.
//
// Bound: everything between Submit() and the commit (raw, prepared and committing items) counts
// against max_records and max_bytes. Submit() blocks while the bound is reached ("reader
// stalled", counted in Stats) instead of growing without limit. What a kill -9 can lose is
// exactly what this bound holds at that instant (Stats().backlog_*).
//
// Threading: thread-safe. Submit/HasRoom/Stats/WaitIdle may be called from any thread.
// Ownership: borrows the Database and Clock (they must outlive it); owns its two threads, which
// the destructor (or Close) joins after committing everything submitted.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "collector/usage_writer.h"
#include "db/db.h"

namespace cpamp::collector {

struct PipelineOptions {
  // The in-memory bound (see above). Defaults hold a 30 s burst at 50k records/s of ~1.4 KB.
  int64_t max_records = 1'500'000;
  int64_t max_bytes = int64_t{2} << 30;
  // A transaction takes batches as they are prepared and commits after this many rows, after
  // max_transaction_ms, or when no batch arrived for idle_commit_ms. Under load, big commits
  // matter: every commit rewrites each page the random-order event_hash index touched, so the
  // WAL bytes per event fall as a commit grows (docs/benchmarks-ingest.md).
  int64_t max_commit_events = 32'768;
  int64_t max_transaction_ms = 1'000;
  int64_t idle_commit_ms = 10;
  // Raw items the preparer takes at once.
  int64_t prepare_chunk = 1'024;
  // Prepared events waiting for the writer at most (the preparer waits beyond it).
  int64_t max_prepared_events = 4'096;
  int64_t commit_retry_ms = 100;       // first wait after a failed commit, doubling
  int64_t commit_retry_max_ms = 5'000;
  int64_t rate_window_ms = 10'000;     // events_per_second window
  int64_t snapshot_ttl_ms = kAuthSnapshotTtlMs;
  RawJsonPolicy raw_json = RawJsonPolicy::kFailed;
  int64_t writer_cache_kib = 32'768;
};

struct PipelineStats {
  int64_t backlog_records = 0;  // submitted, not yet committed
  int64_t backlog_bytes = 0;
  // Of backlog_records, those already inserted in the writer's open transaction (they wait only
  // for its commit); the rest are raw or prepared.
  int64_t in_transaction_records = 0;
  int64_t max_records = 0;
  int64_t max_bytes = 0;
  int64_t peak_backlog_records = 0;
  bool reader_stalled = false;  // a Submit() is waiting for room right now
  int64_t reader_stalls = 0;
  int64_t reader_stall_ms = 0;       // total, including a stall in progress
  int64_t last_stall_end_steady_ms = 0;  // 0 = never stalled
  int64_t submitted = 0;             // items accepted by Submit()
  int64_t inserted = 0;
  int64_t skipped = 0;
  int64_t dead_letters = 0;
  int64_t controls = 0;
  int64_t transactions = 0;
  int64_t commit_failures = 0;
  bool commit_failing = false;  // the last commit attempt failed
  std::string last_commit_error;
  int64_t last_inserted_at_ms = 0;
  int64_t newest_event_ms = 0;  // max timestamp_ms committed in the last transaction
  double events_per_second = 0;
};

class IngestPipeline {
 public:
  // `fetch_auth_files` may be empty: then no enrichment happens.
  IngestPipeline(db::Database& db, const Clock& clock, AuthFilesFetcher fetch_auth_files,
                 PipelineOptions options);
  ~IngestPipeline();
  IngestPipeline(const IngestPipeline&) = delete;
  IngestPipeline& operator=(const IngestPipeline&) = delete;

  // Takes the items (empty strings are ignored). Blocks while the bound is reached; when `stop`
  // becomes true while waiting, the items are accepted anyway (they already left CPA), so
  // nothing handed over is ever dropped. Returns false after Close().
  bool Submit(std::vector<std::string>&& payloads, const std::atomic<bool>* stop = nullptr);
  // True while the backlog is below `fraction` of both bounds (drains pop only then, leaving the
  // rest of the room to the subscriber).
  bool HasRoom(double fraction) const;
  // Records submitted and not yet inserted into the writer's open transaction: what a pop
  // transport's pop-ahead limit counts, so that popping goes on while a large transaction is
  // being filled and committed (counting those too would idle the preparer at every commit).
  int64_t QueuedRecords() const;
  // A reader that paces itself on HasRoom()/Stats() instead of blocking in Submit() (the pop
  // transports, which leave records in CPA's queue) reports its wait here, so a writer that
  // holds the reader back shows as a stall either way. Calls pair up; any thread.
  void BeginReaderWait();
  void EndReaderWait();
  // Waits until every submitted item is committed (or dead-lettered); false on timeout.
  bool WaitIdle(int64_t timeout_ms);
  // Commits everything submitted (retrying failed commits up to `give_up_after_ms`), then joins
  // the threads. Later Submit() calls return false. Idempotent.
  void Close(int64_t give_up_after_ms = 10'000);

  PipelineStats Stats() const;

 private:
  struct RawChunk {
    std::vector<std::string> items;
    int64_t bytes = 0;
  };
  struct Prepared;

  void PrepareLoop();
  void WriteLoop();
  void Release(int64_t records, int64_t bytes);
  void StallBeginLocked();  // requires mu_
  void StallEndLocked();    // requires mu_

  db::Database& db_;
  const Clock& clock_;
  const PipelineOptions options_;
  std::unique_ptr<UsageWriter> preparer_;  // preparer-thread state (normaliser + snapshots)

  mutable std::mutex mu_;
  std::condition_variable room_cv_;      // backlog shrank / closing
  std::condition_variable raw_cv_;       // raw chunk queued / closing
  std::condition_variable prepared_cv_;  // prepared batch queued / prepared room / closing
  std::condition_variable idle_cv_;      // backlog reached zero
  std::deque<RawChunk> raw_;             // guarded by mu_
  std::deque<std::unique_ptr<Prepared>> prepared_;  // guarded by mu_
  // Committed batches handed back to the preparer, which allocated their strings and frees them
  // (a free on the allocating thread stays on glibc's fast path). Guarded by mu_.
  std::vector<std::unique_ptr<Prepared>> committed_;
  int64_t prepared_events_ = 0;                     // guarded by mu_
  bool closing_ = false;                            // guarded by mu_: no more Submit
  bool prepare_done_ = false;                       // guarded by mu_: preparer exited
  int64_t give_up_at_steady_ms_ = 0;                // guarded by mu_: writer stops retrying
  int stalled_submitters_ = 0;                      // guarded by mu_
  int64_t stall_started_steady_ms_ = 0;             // guarded by mu_
  std::deque<std::pair<int64_t, int64_t>> recent_;  // (steady ms, events), guarded by mu_
  PipelineStats stats_;                             // guarded by mu_

  std::thread prepare_thread_;
  std::thread write_thread_;
};

}  // namespace cpamp::collector
