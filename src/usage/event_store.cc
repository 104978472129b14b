// EventStore: batch insert of usage_events rows (dedup on event_hash) and dead letters.
//
// Design: one BEGIN IMMEDIATE transaction per batch (one WAL commit per batch rather than per
// row), two cached prepared statements bound by position, `ON CONFLICT DO NOTHING` so a duplicate
// costs a unique-index probe and nothing else (the unique index is (timestamp_ms, event_hash) in
// files we create and upstream's UNIQUE(event_hash) in theirs: db/schema.cc step 8), and sqlite3_changes() after each
// step to tell inserted from skipped. The statement cache is keyed on the writer Connection it
// was prepared on and is touched only inside Database::Write(), so the writer mutex also guards
// it; after a failed batch it is dropped so the next batch starts from fresh statements.
// The SQL text, the binder and the reader are expanded from CPAMP_USAGE_EVENT_COLUMNS, so the
// schema, the struct and every statement agree by construction. Upstream's identity ledger
// (§4.10 step 1) is a derived table our schema does not create; the unique index alone gives the
// same answer for every row that still exists.
#include "usage/event_store.h"

#include <optional>
#include <string>

namespace cpamp::usage {

namespace {

std::string BuildInsertSql() {
  std::string cols;
  std::string params;
  int n = 0;
#define CPAMP_INSERT_COLUMN(name, kind, decl, init) \
  cols += (n == 0 ? "" : ", ");                     \
  cols += #name;                                    \
  params += (n == 0 ? "?" : ", ?");                 \
  params += std::to_string(++n);
  CPAMP_USAGE_EVENT_COLUMNS(CPAMP_INSERT_COLUMN)
#undef CPAMP_INSERT_COLUMN
  return "insert into usage_events (" + cols + ") values (" + params +
         ") on conflict do nothing";
}

std::string BuildSelectList() {
  std::string cols = "id";
#define CPAMP_SELECT_COLUMN(name, kind, decl, init) cols += ", " #name;
  CPAMP_USAGE_EVENT_COLUMNS(CPAMP_SELECT_COLUMN)
#undef CPAMP_SELECT_COLUMN
  return cols;
}

constexpr std::string_view kDeadLetterSql =
    "insert into dead_letter_events (payload, error, created_at_ms) values (?1, ?2, ?3)";

// Typed column reads for ReadUsageEvent, one per column_kind.
void ReadColumn(const db::Statement& s, int i, std::string* out) { *out = s.ColumnText(i); }
void ReadColumn(const db::Statement& s, int i, std::optional<std::string>* out) {
  *out = s.ColumnOptionalText(i);
}
void ReadColumn(const db::Statement& s, int i, int64_t* out) { *out = s.ColumnInt64(i); }
void ReadColumn(const db::Statement& s, int i, std::optional<int64_t>* out) {
  *out = s.ColumnOptionalInt64(i);
}
void ReadColumn(const db::Statement& s, int i, std::optional<double>* out) {
  *out = s.ColumnOptionalDouble(i);
}
void ReadColumn(const db::Statement& s, int i, bool* out) { *out = s.ColumnInt64(i) != 0; }

// Strings are bound without a copy: the event outlives the step (Write() resets the statement
// before the next row and after the last one).
Status BindColumn(db::Statement& s, int i, const std::string& v) { return s.BindTextNoCopy(i, v); }
Status BindColumn(db::Statement& s, int i, const std::optional<std::string>& v) {
  return v ? s.BindTextNoCopy(i, *v) : s.BindNull(i);
}
template <typename T>
Status BindColumn(db::Statement& s, int i, const T& v) {
  return s.Bind(i, v);
}

}  // namespace

struct EventStore::Prepared {
  db::Connection* conn = nullptr;
  db::Statement insert;
  db::Statement dead_letter;
};

std::string_view InsertUsageEventSql() {
  static const std::string sql = BuildInsertSql();
  return sql;
}

std::string_view UsageEventSelectList() {
  static const std::string list = BuildSelectList();
  return list;
}

Status BindUsageEvent(db::Statement& s, const UsageEvent& e) {
  int i = 0;
#define CPAMP_BIND_COLUMN(name, kind, decl, init) \
  CPAMP_RETURN_IF_ERROR(BindColumn(s, ++i, e.name));
  CPAMP_USAGE_EVENT_COLUMNS(CPAMP_BIND_COLUMN)
#undef CPAMP_BIND_COLUMN
  return Status::Ok();
}

UsageEvent ReadUsageEvent(const db::Statement& s) {
  UsageEvent e;
#define CPAMP_READ_COLUMN(name, kind, decl, init) \
  ReadColumn(s, ColumnIndex(UsageEventColumn::name), &e.name);
  CPAMP_USAGE_EVENT_COLUMNS(CPAMP_READ_COLUMN)
#undef CPAMP_READ_COLUMN
  return e;
}

EventStore::EventStore(db::Database& db, Options options) : db_(db), options_(options) {}

EventStore::~EventStore() {
  // Finalize the cached statements under the writer lock: the writer connection is in use by
  // other threads otherwise.
  db_.Write([&](db::Connection&) { prepared_.reset(); });
}

Status EventStore::Prepare(db::Connection& conn) {
  if (prepared_ && prepared_->conn == &conn) return Status::Ok();
  prepared_.reset();
  if (options_.writer_cache_kib > 0) {
    CPAMP_RETURN_IF_ERROR(
        conn.Exec("PRAGMA cache_size = -" + std::to_string(options_.writer_cache_kib)));
  }
  CPAMP_ASSIGN_OR_RETURN(db::Statement insert, conn.Prepare(InsertUsageEventSql()));
  CPAMP_ASSIGN_OR_RETURN(db::Statement dead, conn.Prepare(kDeadLetterSql));
  prepared_.reset(new Prepared{&conn, std::move(insert), std::move(dead)});
  return Status::Ok();
}

Result<InsertCounts> EventStore::Append(db::Connection& conn, std::span<const UsageEvent> events,
                                        std::span<const DeadLetterRow> dead_letters,
                                        int64_t now_ms) {
  Status prepared = Prepare(conn);
  if (!prepared.ok()) return prepared;
  InsertCounts counts;
  db::Statement& ins = prepared_->insert;
  db::Statement& dl = prepared_->dead_letter;
  auto run = [&]() -> Status {
    for (const UsageEvent& e : events) {
      CPAMP_RETURN_IF_ERROR(ins.Reset());
      CPAMP_RETURN_IF_ERROR(BindUsageEvent(ins, e));
      CPAMP_RETURN_IF_ERROR(ins.Run());
      if (conn.Changes() > 0) {
        ++counts.inserted;
      } else {
        ++counts.skipped;
      }
    }
    for (const DeadLetterRow& d : dead_letters) {
      CPAMP_RETURN_IF_ERROR(dl.Reset());
      CPAMP_RETURN_IF_ERROR(dl.Bind(1, d.payload));
      CPAMP_RETURN_IF_ERROR(dl.Bind(2, d.error));
      CPAMP_RETURN_IF_ERROR(dl.Bind(3, now_ms));
      CPAMP_RETURN_IF_ERROR(dl.Run());
      ++counts.dead_letters;
    }
    CPAMP_RETURN_IF_ERROR(ins.Reset());
    return dl.Reset();
  };
  Status st = run();
  if (!st.ok()) {
    // A failed step can leave the statements mid-execution; start afresh next time (we hold
    // the writer lock here, so finalising is safe).
    prepared_.reset();
    return st;
  }
  return counts;
}

Result<InsertCounts> EventStore::Write(std::span<const UsageEvent> events,
                                       std::span<const DeadLetterRow> dead_letters,
                                       int64_t now_ms) {
  if (events.empty() && dead_letters.empty()) return InsertCounts{};
  Result<InsertCounts> written =
      db_.WriteTransaction([&](db::Connection& conn) -> Result<InsertCounts> {
        return Append(conn, events, dead_letters, now_ms);
      });
  if (!written.ok()) {
    db_.Write([&](db::Connection&) { prepared_.reset(); });
    return written.status().Prefixed("write usage batch");
  }
  transactions_.fetch_add(1, std::memory_order_relaxed);
  return written;
}

Status EventStore::InsertDeadLetter(std::string_view payload, std::string_view error,
                                    int64_t created_at_ms) {
  DeadLetterRow row{std::string(payload), std::string(error)};
  Result<InsertCounts> r = Write({}, std::span<const DeadLetterRow>(&row, 1), created_at_ms);
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace cpamp::usage
