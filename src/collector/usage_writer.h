// UsageWriter: turns raw queue items into rows (spec cpamp-storage.md §4.1, §4.10-4.12) and,
// for synchronous callers, stores them.
//
// Prepare() takes the raw items of one pop (or one subscribe read), normalises each with
// usage::NormalizeQueuePayload, drops control messages (`refresh` invalidates the auth-snapshot
// cache), applies the raw_json policy and fills account snapshots from a cache of CPA's auth-file
// list. It touches no database, so it runs on the collector's preparer thread while the writer
// thread commits the previous batch. Commit() stores prepared rows through usage::EventStore in
// ONE write transaction (INSERT ... ON CONFLICT(event_hash) DO NOTHING for events, payload
// verbatim plus the parser error for dead letters): either the whole batch or nothing.
// WriteBatch() = Prepare() + Commit().
//
// Threading: not thread-safe; one owner thread calls Prepare/WriteBatch. Commit() only uses the
// EventStore, which is thread-safe, so another thread may call it on prepared rows.
// Ownership: borrows the Database and Clock (both must outlive it); owns its EventStore.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "db/db.h"
#include "usage/event_store.h"
#include "usage/usage.h"

namespace cpamp::collector {

// Returns the body of CPA's `GET /v0/management/auth-files` ({"files":[...]}) or an error.
using AuthFilesFetcher = std::function<Result<std::string>()>;

inline constexpr int64_t kAuthSnapshotTtlMs = 30'000;

// Which events keep their `raw_json` copy (the redacted payload, never exported or read back by
// upstream; the column stays and is NULL otherwise). kFailed keeps it where it is evidence.
using RawJsonPolicy = usage::RawJsonMode;
// "all" | "failed" | "none" (case-insensitive); nullopt for anything else.
std::optional<RawJsonPolicy> ParseRawJsonPolicy(std::string_view text);

// The rows of one prepared batch.
struct PreparedRows {
  std::vector<usage::UsageEvent> events;
  std::vector<usage::DeadLetterRow> dead_letters;
  int64_t controls = 0;         // refresh / support_refresh items, not stored
  int64_t newest_event_ms = 0;  // max timestamp_ms of the events (0 when none)
};

struct WriteStats {
  int64_t inserted = 0;
  int64_t skipped = 0;          // duplicates (event_hash already stored, or twice in the batch)
  int64_t dead_letters = 0;     // stored in dead_letter_events
  int64_t controls = 0;         // refresh / support_refresh items, not stored
  int64_t newest_event_ms = 0;  // max timestamp_ms of the batch's events (0 when none)
};

class UsageWriter {
 public:
  struct Options {
    // How long a fetched auth-file list is used; also the minimum spacing of fetch attempts
    // (a `refresh` control message lifts that spacing once).
    int64_t snapshot_ttl_ms = kAuthSnapshotTtlMs;
    RawJsonPolicy raw_json = RawJsonPolicy::kFailed;
    // Page cache of the writer connection (KiB, PRAGMA cache_size = -N); 0 leaves it alone.
    // The random-order event_hash/request_id indexes stay hot in it, so commits do not
    // re-read their pages.
    int64_t writer_cache_kib = 32'768;
  };

  // `fetch_auth_files` may be empty: then no enrichment happens.
  UsageWriter(db::Database& db, const Clock& clock, AuthFilesFetcher fetch_auth_files,
              Options options);
  UsageWriter(db::Database& db, const Clock& clock, AuthFilesFetcher fetch_auth_files = {})
      : UsageWriter(db, clock, std::move(fetch_auth_files), Options{}) {}
  ~UsageWriter();
  UsageWriter(const UsageWriter&) = delete;
  UsageWriter& operator=(const UsageWriter&) = delete;

  // Normalises and enriches one batch (no database access).
  PreparedRows Prepare(const std::vector<std::string>& payloads);
  // Commits prepared rows in one transaction. On error nothing is stored and `rows` is intact
  // (retry it; dedup makes a retry harmless).
  Result<WriteStats> Commit(const PreparedRows& rows);
  // Inserts prepared rows into the transaction the caller holds on the writer connection
  // (inside Database::Write); see usage::EventStore::Append.
  Result<WriteStats> Append(db::Connection& conn, const PreparedRows& rows);
  // Prepare + Commit. On error nothing of the batch is stored and the caller still owns the
  // payloads (retry with the same batch).
  Result<WriteStats> WriteBatch(const std::vector<std::string>& payloads);

  // Stores one item verbatim as a dead letter (e.g. an HTTP queue answer that is not a JSON
  // array: whatever CPA popped for it must not vanish).
  Status WriteDeadLetter(std::string_view payload, std::string_view error);

  // Drops the cached auth-file list; the next batch that needs it fetches it again.
  void InvalidateAuthSnapshots();

  // Write transactions committed so far (one per non-empty batch).
  int64_t transactions() const { return store_.transactions(); }
  // Auth-file list fetch attempts so far (for tests).
  int64_t auth_fetches() const { return auth_fetches_; }

 private:
  void EnrichEvents(std::vector<usage::UsageEvent>& events);

  const Clock& clock_;
  AuthFilesFetcher fetch_auth_files_;
  Options options_;
  usage::EventStore store_;

  std::unordered_map<std::string, usage::AuthSnapshot> snapshots_;  // by auth_index
  bool snapshots_valid_ = false;
  int64_t snapshots_fetched_at_ms_ = 0;
  int64_t last_fetch_attempt_steady_ms_ = 0;
  bool fetch_allowed_now_ = true;  // set by a refresh, cleared by the next attempt

  int64_t auth_fetches_ = 0;
};

}  // namespace cpamp::collector
