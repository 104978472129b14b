// EventStore: the shared batch writer of `usage_events` and `dead_letter_events`.
//
// Contract: InsertBatch() writes a span of finished UsageEvent rows in ONE BEGIN IMMEDIATE
// transaction on the Database's writer connection, each with
// `INSERT ... ON CONFLICT(event_hash) DO NOTHING`, and reports how many rows were new and how
// many were already present (dedup by event_hash, spec cpamp-storage.md §4.10 / §5.7). Any
// SQLite error rolls the whole batch back and is returned; earlier batches stay committed.
// Rows are stored exactly as given: the caller (normaliser, importer) has already filled every
// derived column.
//
// Threading: all methods may be called from any thread; they run inside Database::Write(), whose
// mutex serialises them with every other writer. The prepared statements are cached for the
// writer connection and only touched under that mutex.
// Ownership: borrows the Database, which must outlive the EventStore.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "base/status.h"
#include "db/db.h"
#include "usage/usage.h"

namespace cpamp::usage {

struct InsertCounts {
  int64_t inserted = 0;
  int64_t skipped = 0;  // event_hash already present
};

class EventStore {
 public:
  explicit EventStore(db::Database& db);
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  // One transaction for the whole span (an empty span is a no-op).
  Result<InsertCounts> InsertBatch(std::span<const UsageEvent> events);
  // Stores a payload that was not a usage record, verbatim, in its own statement.
  Status InsertDeadLetter(std::string_view payload, std::string_view error, int64_t created_at_ms);

 private:
  struct Prepared;
  db::Database& db_;
  std::unique_ptr<Prepared> prepared_;  // created lazily inside Write(); guarded by the writer
};

// Binds every column of `event` to `stmt` in the order of kInsertColumns (parameters ?1..?N).
// Exposed for the collector's own writer, which shares the column list.
Status BindUsageEvent(db::Statement& stmt, const UsageEvent& event);
// "insert into usage_events (...) values (?1, ...) on conflict(event_hash) do nothing".
std::string_view InsertUsageEventSql();

}  // namespace cpamp::usage
