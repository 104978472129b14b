// Connection, Statement and Transaction: the thin RAII layer over the sqlite3 C API.
//
// Design notes:
// - Connections are opened with SQLITE_OPEN_NOMUTEX: SQLite's own per-connection mutex would be
//   redundant because a connection is only ever used by one thread at a time (Database owns the
//   locking). Extended result codes are on so LastErrorCode() can tell e.g. SQLITE_NOTADB apart.
// - The connection PRAGMAs follow upstream's DSN (busy_timeout 5000, foreign_keys ON) plus
//   journal_mode WAL, which persists in the file; read-only connections skip the write ones.
//   Unlike upstream (synchronous FULL) we use synchronous NORMAL: in WAL mode a commit then no
//   longer waits for an fsync (checkpoints still do). A crashed or killed process loses nothing
//   committed and the file never corrupts; only a power cut can drop the last commits. This
//   is what lets one writer sustain ingest at tens of thousands of events per second.
// - Every failing sqlite3 call becomes a Status carrying sqlite3_errmsg and the result code;
//   nothing aborts on a runtime error.
// - Connections close with sqlite3_close_v2 so a (buggy) leftover statement cannot make close
//   fail; the handle is then released when that statement is finalized.
// - Transaction rolls back in its destructor only while SQLite still reports an open
//   transaction, so a failed COMMIT that SQLite already rolled back is not rolled back twice.
#include <fmt/format.h>

#include <cstdio>
#include <mutex>
#include <string>

#include "db/db.h"

namespace cpamp::db {
namespace {

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error(ErrorCode::kRequestFailed, fmt::format("{}: {} (sqlite code {})", what, msg, rc));
}

}  // namespace

// ---- Statement ---------------------------------------------------------------------------------

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      column_names_(std::move(other.column_names_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    column_names_ = std::move(other.column_names_);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Status Statement::Check(int rc, std::string_view what) const {
  if (rc == SQLITE_OK) return Status::Ok();
  return SqliteError(db_, rc, what);
}

Status Statement::BindInt64(int index, int64_t value) {
  return Check(sqlite3_bind_int64(stmt_, index, value), "bind");
}

Status Statement::BindDouble(int index, double value) {
  return Check(sqlite3_bind_double(stmt_, index, value), "bind");
}

Status Statement::BindText(int index, std::string_view value) {
  // A non-null pointer even for "" so SQLite stores an empty string, not NULL.
  const char* data = value.data() != nullptr ? value.data() : "";
  return Check(sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
               "bind");
}

Status Statement::BindTextNoCopy(int index, std::string_view value) {
  const char* data = value.data() != nullptr ? value.data() : "";
  return Check(sqlite3_bind_text64(stmt_, index, data, value.size(), SQLITE_STATIC, SQLITE_UTF8),
               "bind");
}

Status Statement::BindBlob(int index, std::string_view bytes) {
  const char* data = bytes.data() != nullptr ? bytes.data() : "";
  return Check(sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_TRANSIENT), "bind");
}

Status Statement::BindNull(int index) { return Check(sqlite3_bind_null(stmt_, index), "bind"); }

Result<int> Statement::ParameterIndex(std::string_view name) const {
  int index = sqlite3_bind_parameter_index(stmt_, std::string(name).c_str());
  if (index == 0) {
    return Error(ErrorCode::kRequestFailed, fmt::format("bind: no SQL parameter named {}", name));
  }
  return index;
}

Status Statement::ClearBindings() { return Check(sqlite3_clear_bindings(stmt_), "clear bindings"); }

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, "step");
}

Status Statement::Run() {
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Status::Ok();
  }
}

Status Statement::Reset() {
  // sqlite3_reset repeats the error of the last step; the step already reported it, so the
  // rewind itself counts as done.
  sqlite3_reset(stmt_);
  return Status::Ok();
}

int Statement::ColumnCount() const { return sqlite3_column_count(stmt_); }

std::string_view Statement::ColumnName(int index) const {
  const char* name = sqlite3_column_name(stmt_, index);
  return name != nullptr ? std::string_view(name) : std::string_view();
}

int Statement::ColumnIndex(std::string_view name) const {
  if (column_names_.empty()) {
    int n = ColumnCount();
    column_names_.reserve(n);
    for (int i = 0; i < n; ++i) column_names_.emplace_back(ColumnName(i));
  }
  for (size_t i = 0; i < column_names_.size(); ++i) {
    if (column_names_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

int Statement::RequireColumn(std::string_view name) const {
  int index = ColumnIndex(name);
  if (index < 0) {
    std::fprintf(stderr, "no result column named '%.*s' in: %s\n", static_cast<int>(name.size()),
                 name.data(), sqlite3_sql(stmt_));
  }
  CHECK(index >= 0);
  return index;
}

bool Statement::IsNull(int index) const { return sqlite3_column_type(stmt_, index) == SQLITE_NULL; }

int64_t Statement::ColumnInt64(int index) const { return sqlite3_column_int64(stmt_, index); }

double Statement::ColumnDouble(int index) const { return sqlite3_column_double(stmt_, index); }

std::string_view Statement::ColumnTextView(int index) const {
  const unsigned char* text = sqlite3_column_text(stmt_, index);
  if (text == nullptr) return {};
  int size = sqlite3_column_bytes(stmt_, index);
  return std::string_view(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

std::string Statement::ColumnText(int index) const { return std::string(ColumnTextView(index)); }

std::optional<int64_t> Statement::ColumnOptionalInt64(int index) const {
  if (IsNull(index)) return std::nullopt;
  return ColumnInt64(index);
}

std::optional<double> Statement::ColumnOptionalDouble(int index) const {
  if (IsNull(index)) return std::nullopt;
  return ColumnDouble(index);
}

std::optional<std::string> Statement::ColumnOptionalText(int index) const {
  if (IsNull(index)) return std::nullopt;
  return ColumnText(index);
}

// ---- Connection --------------------------------------------------------------------------------

Result<int64_t> Connection::QueryInt64(std::string_view sql) {
  CPAMP_ASSIGN_OR_RETURN(Statement stmt, Prepare(sql));
  CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.ColumnInt64(0) : 0;
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, bool read_only) {
  // Before SQLite initialises (the first open): no global allocation statistics, which would
  // otherwise take a process-wide mutex on every malloc and free inside SQLite. Nothing of ours
  // reads sqlite3_memory_used().
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close_v2(raw);
    return Error(ErrorCode::kRequestFailed,
                 fmt::format("open SQLite database {}: {} (sqlite code {})", path, msg, rc));
  }
  std::unique_ptr<Connection> conn(new Connection(raw, path, read_only));
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  CPAMP_RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = ON"));
  if (!read_only) {
    // New files get 16 KiB pages: ~1 KB usage_events rows pack with less slack than in 4 KiB
    // pages (-10 % bytes per event, docs/benchmarks-ingest.md). Only an empty file can take
    // it (before WAL); existing files, upstream's included, keep their page size.
    CPAMP_ASSIGN_OR_RETURN(int64_t pages, conn->QueryInt64("PRAGMA page_count"));
    if (pages == 0) CPAMP_RETURN_IF_ERROR(conn->Exec("PRAGMA page_size = 16384"));
    CPAMP_ASSIGN_OR_RETURN(int64_t page_size, conn->QueryInt64("PRAGMA page_size"));
    CPAMP_RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = NORMAL"));
    // Checkpoint (which fsyncs) every ~32 MiB of WAL instead of every 4 MiB: at ingest rates a
    // 4 MiB WAL fills every couple of batches. journal_size_limit truncates the file afterwards.
    CPAMP_RETURN_IF_ERROR(conn->Exec(fmt::format("PRAGMA wal_autocheckpoint = {}",
                                                 (int64_t{32} << 20) / std::max<int64_t>(page_size, 512))));
    CPAMP_RETURN_IF_ERROR(conn->Exec("PRAGMA journal_size_limit = 67108864"));
    CPAMP_RETURN_IF_ERROR(conn->Exec("PRAGMA journal_mode = WAL"));
  }
  return conn;
}

Connection::~Connection() { sqlite3_close_v2(db_); }

Status Connection::Exec(std::string_view sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err != nullptr ? err : sqlite3_errmsg(db_);
  sqlite3_free(err);
  return Error(ErrorCode::kRequestFailed, fmt::format("exec: {} (sqlite code {})", msg, rc));
}

Result<Statement> Connection::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(db_, rc, "prepare");
  }
  if (stmt == nullptr) {
    return Error(ErrorCode::kRequestFailed, "prepare: empty SQL statement");
  }
  return Statement(db_, stmt);
}

int64_t Connection::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }

int64_t Connection::Changes() const { return sqlite3_changes64(db_); }

int Connection::LastErrorCode() const { return sqlite3_extended_errcode(db_); }

Result<bool> Connection::HasTable(std::string_view table) {
  CPAMP_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1 LIMIT 1"));
  CPAMP_RETURN_IF_ERROR(stmt.Bind(1, table));
  return stmt.Step();
}

Result<std::vector<std::string>> Connection::TableColumns(std::string_view table) {
  CPAMP_ASSIGN_OR_RETURN(Statement stmt, Prepare("SELECT name FROM pragma_table_info(?1)"));
  CPAMP_RETURN_IF_ERROR(stmt.Bind(1, table));
  std::vector<std::string> columns;
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    columns.push_back(stmt.ColumnText(0));
  }
  return columns;
}

// ---- Transaction -------------------------------------------------------------------------------

Result<Transaction> Transaction::Begin(Connection& conn, Mode mode) {
  CPAMP_RETURN_IF_ERROR(conn.Exec(mode == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED"));
  return Transaction(&conn);
}

Transaction::Transaction(Transaction&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)) {}

Transaction::~Transaction() {
  if (conn_ != nullptr && sqlite3_get_autocommit(conn_->handle()) == 0) {
    (void)conn_->Exec("ROLLBACK");  // nothing useful to do with a failure in a destructor
  }
}

Status Transaction::Commit() {
  if (conn_ == nullptr) return Error(ErrorCode::kRequestFailed, "commit: transaction not active");
  Status status = conn_->Exec("COMMIT");
  if (status.ok()) conn_ = nullptr;
  return status;
}

Status Transaction::Rollback() {
  if (conn_ == nullptr) return Error(ErrorCode::kRequestFailed, "rollback: transaction not active");
  Connection* conn = std::exchange(conn_, nullptr);
  if (sqlite3_get_autocommit(conn->handle()) != 0) return Status::Ok();
  return conn->Exec("ROLLBACK");
}

}  // namespace cpamp::db
