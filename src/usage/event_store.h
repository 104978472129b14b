// EventStore: the one writer of `usage_events` and `dead_letter_events` rows, shared by the
// collector and every import path.
//
// Contract: Write() stores a batch of finished UsageEvent rows and dead letters in ONE BEGIN
// IMMEDIATE transaction on the Database's writer connection. Each event is
// `INSERT ... ON CONFLICT(event_hash) DO NOTHING`, so a record delivered or imported twice is
// stored once (spec cpamp-storage.md §4.10 / §5.7); the counts say how many rows were new and how
// many were already present. Any SQLite error rolls the whole batch back and is returned: the
// caller still owns the batch and may retry it (dedup makes a retry harmless). Rows are stored
// exactly as given: the caller (normaliser, importer) has already filled every derived column.
// The column list, the INSERT and the binder come from db/usage_event_columns.h.
//
// Threading: all methods may be called from any thread; they run inside Database::Write(), whose
// mutex serialises them with every other writer. The prepared statements are cached for the
// writer connection and only touched under that mutex.
// Ownership: borrows the Database, which must outlive the EventStore.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "db/db.h"
#include "usage/usage.h"

namespace cpamp::usage {

struct InsertCounts {
  int64_t inserted = 0;
  int64_t skipped = 0;       // event_hash already present (or twice in the batch)
  int64_t dead_letters = 0;  // dead_letter_events rows written
};

// A payload that is not a usage record, stored verbatim with the reason.
struct DeadLetterRow {
  std::string payload;
  std::string error;
};

class EventStore {
 public:
  struct Options {
    // Page cache of the writer connection (KiB, PRAGMA cache_size = -N) set when the statements
    // are first prepared; 0 leaves it alone. Keeps the random-order event_hash index hot.
    int64_t writer_cache_kib = 0;
  };

  explicit EventStore(db::Database& db) : EventStore(db, Options{}) {}
  EventStore(db::Database& db, Options options);
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  // Events and dead letters in one transaction (both empty: no-op). Dead letters get
  // created_at_ms = now_ms.
  Result<InsertCounts> Write(std::span<const UsageEvent> events,
                             std::span<const DeadLetterRow> dead_letters, int64_t now_ms);
  // The same rows inside a transaction the caller holds: must run inside Database::Write() on
  // `conn` (the writer connection) with a transaction open. Several Append() calls may share one
  // transaction; nothing is committed here.
  Result<InsertCounts> Append(db::Connection& conn, std::span<const UsageEvent> events,
                              std::span<const DeadLetterRow> dead_letters, int64_t now_ms);
  Result<InsertCounts> InsertBatch(std::span<const UsageEvent> events) {
    return Write(events, {}, 0);
  }
  // Stores a payload that was not a usage record, verbatim, in its own transaction.
  Status InsertDeadLetter(std::string_view payload, std::string_view error, int64_t created_at_ms);

  // Write transactions committed so far.
  int64_t transactions() const { return transactions_.load(std::memory_order_relaxed); }

 private:
  struct Prepared;
  Status Prepare(db::Connection& conn);

  db::Database& db_;
  const Options options_;
  std::unique_ptr<Prepared> prepared_;  // created lazily inside Write(); guarded by the writer
  std::atomic<int64_t> transactions_{0};
};

// "insert into usage_events (<every UsageEvent column>) values (?1, ...)
//  on conflict(event_hash) do nothing".
std::string_view InsertUsageEventSql();
// Binds every member of `event` to `stmt` as parameters ?1..?N in column order. Strings are
// bound without a copy: `event` must outlive the step.
Status BindUsageEvent(db::Statement& stmt, const UsageEvent& event);
// "id, request_id, ..., created_at_ms": every column in UsageEventColumn order, for
// `select <this> from usage_events ...`.
std::string_view UsageEventSelectList();
// Reads a row of a statement that selected UsageEventSelectList() first (id is not read).
UsageEvent ReadUsageEvent(const db::Statement& stmt);
// Column position of `c` in UsageEventSelectList().
constexpr int ColumnIndex(UsageEventColumn c) { return static_cast<int>(c); }

}  // namespace cpamp::usage
