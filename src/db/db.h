// db: the SQLite layer — RAII connection/statement/transaction wrappers, the Database that owns
// the single writer connection and a pool of read-only connections, the ordered schema
// migrations, the settings repository, the process lock and the reset-admin-key file check.
//
// Error contract: every SQLite or OS failure comes back as a Status (code kRequestFailed unless
// stated otherwise) whose message carries sqlite3_errmsg / strerror. Nothing here CHECKs on
// anything the disk, the file or the caller's data can cause; CHECKs guard only our own bugs
// (for example asking a statement for a column name its own SELECT list does not have).
//
// Ownership: Connection is owned through unique_ptr and is neither copyable nor movable.
// Statement and Transaction are move-only values that borrow their Connection, which must outlive
// them. Database owns all its connections. ProcessLock owns its file descriptor.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace cpamp::db {

class Connection;

namespace internal {
template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <typename T>
inline constexpr bool kAlwaysFalse = false;
}  // namespace internal

// A prepared statement. Move-only; finalized on destruction. Not thread-safe: use it on the
// thread that holds its Connection. Parameter indexes are 1-based (SQLite's convention); column
// indexes are 0-based.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Binds one parameter. Accepted values: any integral type (bool, int, int64_t …), floating
  // point, anything convertible to std::string_view (text, copied by SQLite), std::nullopt
  // (NULL) and std::optional<T> of those (NULL when empty).
  template <typename T>
  Status Bind(int index, const T& value);
  // Same, by parameter name including its prefix (":name", "@name", "$name", "?NNN").
  template <typename T>
  Status Bind(std::string_view name, const T& value);

  Status BindInt64(int index, int64_t value);
  Status BindDouble(int index, double value);
  Status BindText(int index, std::string_view value);
  // Binds without copying: `value` must stay valid and unchanged until the statement is reset or
  // rebound (the hot insert path binds strings that outlive the step).
  Status BindTextNoCopy(int index, std::string_view value);
  Status BindBlob(int index, std::string_view bytes);
  Status BindNull(int index);
  // The 1-based index of a named parameter, or an error if the statement has none by that name.
  Result<int> ParameterIndex(std::string_view name) const;
  Status ClearBindings();

  // Advances: true when a row is available, false when the statement is done.
  Result<bool> Step();
  // Steps until done, ignoring any rows (for INSERT/UPDATE/DELETE/DDL).
  Status Run();
  // Rewinds the statement for another execution; bindings are kept.
  Status Reset();

  int ColumnCount() const;
  std::string_view ColumnName(int index) const;
  // 0-based index of a result column by name (exact, case-sensitive), or -1 when absent. Names
  // are cached at first use; hot loops may resolve indexes once before stepping.
  int ColumnIndex(std::string_view name) const;

  bool IsNull(int index) const;
  int64_t ColumnInt64(int index) const;  // NULL reads as 0
  double ColumnDouble(int index) const;  // NULL reads as 0.0
  // Text of the column ("" for NULL). The view is valid until the next Step/Reset.
  std::string_view ColumnTextView(int index) const;
  std::string ColumnText(int index) const;
  std::optional<int64_t> ColumnOptionalInt64(int index) const;
  std::optional<double> ColumnOptionalDouble(int index) const;
  std::optional<std::string> ColumnOptionalText(int index) const;

  // By-name column access. The name must be in the statement's result columns (a CHECK: asking
  // for a column your own SELECT does not produce is a bug, not a runtime condition).
  bool IsNull(std::string_view name) const { return IsNull(RequireColumn(name)); }
  int64_t ColumnInt64(std::string_view name) const { return ColumnInt64(RequireColumn(name)); }
  double ColumnDouble(std::string_view name) const { return ColumnDouble(RequireColumn(name)); }
  std::string_view ColumnTextView(std::string_view name) const {
    return ColumnTextView(RequireColumn(name));
  }
  std::string ColumnText(std::string_view name) const { return ColumnText(RequireColumn(name)); }
  std::optional<int64_t> ColumnOptionalInt64(std::string_view name) const {
    return ColumnOptionalInt64(RequireColumn(name));
  }
  std::optional<double> ColumnOptionalDouble(std::string_view name) const {
    return ColumnOptionalDouble(RequireColumn(name));
  }
  std::optional<std::string> ColumnOptionalText(std::string_view name) const {
    return ColumnOptionalText(RequireColumn(name));
  }

  sqlite3_stmt* handle() const { return stmt_; }

 private:
  friend class Connection;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  int RequireColumn(std::string_view name) const;
  Status Check(int rc, std::string_view what) const;

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  mutable std::vector<std::string> column_names_;  // filled on first by-name access
};

// One SQLite connection. Not thread-safe: one thread at a time (Database enforces this for the
// connections it owns). Opened with busy_timeout 5000 ms and foreign_keys ON; read-write
// connections also get synchronous NORMAL and journal_mode WAL. A read-only open never creates
// the file.
class Connection {
 public:
  static constexpr int kBusyTimeoutMs = 5000;

  static Result<std::unique_ptr<Connection>> Open(const std::string& path, bool read_only);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Runs one or more SQL statements without parameters, discarding rows.
  Status Exec(std::string_view sql);
  Result<Statement> Prepare(std::string_view sql);
  // The first column of the first row of `sql` as an integer (0 when there is no row).
  Result<int64_t> QueryInt64(std::string_view sql);

  int64_t LastInsertRowId() const;
  // Rows changed by the most recent INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  // The (extended) result code of the most recent failed call, e.g. SQLITE_NOTADB.
  int LastErrorCode() const;
  bool read_only() const { return read_only_; }
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

  // Schema helpers used by migrations and checks.
  Result<bool> HasTable(std::string_view table);
  // Column names of `table` in physical order (empty when the table does not exist).
  Result<std::vector<std::string>> TableColumns(std::string_view table);

 private:
  Connection(sqlite3* db, std::string path, bool read_only)
      : db_(db), path_(std::move(path)), read_only_(read_only) {}

  sqlite3* db_;
  std::string path_;
  bool read_only_;
};

// A transaction on one Connection. Move-only. Rolls back on destruction unless Commit()
// succeeded. Writers use kImmediate (takes the write lock up front, so a busy database fails at
// Begin rather than mid-way); readers use kDeferred for a consistent snapshot across queries.
class Transaction {
 public:
  enum class Mode { kImmediate, kDeferred };

  static Result<Transaction> Begin(Connection& conn, Mode mode = Mode::kImmediate);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&& other) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status Commit();
  Status Rollback();
  bool active() const { return conn_ != nullptr; }

 private:
  explicit Transaction(Connection* conn) : conn_(conn) {}
  Connection* conn_;  // null once committed, rolled back or moved from
};

// The database: one read-write connection (the single writer) and a small pool of read-only
// connections. Thread-safe: Write() calls are serialised by an internal mutex; Read() calls run
// concurrently with each other and with the writer (WAL) up to the pool size, then wait for a
// free reader. A callback must not keep the Connection (or statements on it) after it returns and
// must not call Write() from inside Write() (the writer mutex is not recursive). Read() inside
// Write() is fine and sees only committed data. The Database must outlive every call on it.
//
// The caller that owns the data directory takes the ProcessLock before Open(); Database itself
// does not lock the file.
class Database {
 public:
  static constexpr int kDefaultMaxReaders = 4;

  // Creates the parent directory if needed, opens (creating the file) and runs the migrations.
  static Result<std::unique_ptr<Database>> Open(const std::string& path,
                                                const Clock& clock = SystemClock::Instance(),
                                                int max_readers = kDefaultMaxReaders);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs fn(Connection&) on the read-write connection while holding the writer lock and returns
  // what fn returns.
  template <typename F>
  auto Write(F&& fn) -> std::invoke_result_t<F, Connection&> {
    std::lock_guard<std::mutex> lock(writer_mu_);
    return std::forward<F>(fn)(*writer_);
  }

  // Write() inside a BEGIN IMMEDIATE transaction: fn returns Status or Result<T>; commits when it
  // is OK, rolls back otherwise.
  template <typename F>
  auto WriteTransaction(F&& fn) -> std::invoke_result_t<F, Connection&> {
    using R = std::invoke_result_t<F, Connection&>;
    return Write([&](Connection& conn) -> R {
      auto tx = Transaction::Begin(conn);
      if (!tx.ok()) return R(tx.status());
      R result = std::forward<F>(fn)(conn);
      if (!result.ok()) return result;
      Status committed = tx->Commit();
      if (!committed.ok()) return R(committed);
      return result;
    });
  }

  // Runs fn(Connection&) on a pooled read-only connection. fn returns Status or Result<T>, so a
  // failure to open a reader can be reported through the same type.
  template <typename F>
  auto Read(F&& fn) -> std::invoke_result_t<F, Connection&> {
    using R = std::invoke_result_t<F, Connection&>;
    static_assert(std::is_constructible_v<R, Status>, "Read() callbacks return Status/Result<T>");
    Result<std::unique_ptr<Connection>> reader = AcquireReader();
    if (!reader.ok()) return R(reader.status());
    ReaderLease lease(this, std::move(reader).value());
    return std::forward<F>(fn)(*lease.conn);
  }

  const std::string& Path() const { return path_; }

  // Moves WAL checkpoints off the writer: a named thread ("db-checkpoint") runs a PASSIVE
  // checkpoint on its own connection whenever the -wal file exceeds `wal_bytes`, and the
  // writer's automatic checkpoint is raised to 8 x that as a safety net. A checkpoint copies
  // (and fsyncs) pages into the database file; on the writer it stalled every commit behind it.
  // Idempotent; stopped by the destructor.
  Status StartBackgroundCheckpoints(int64_t wal_bytes = int64_t{32} << 20);
  // Checkpoints completed by that thread (for tests and /status).
  int64_t background_checkpoints() const { return checkpoints_.load(); }

  // SELECT count(*) of a table (e.g. usage_events, dead_letter_events) on a reader. The name
  // must be a plain identifier ([A-Za-z0-9_]).
  Result<int64_t> CountRows(std::string_view table);
  // The same count without scanning the table each time, for an append-mostly table with an
  // AUTOINCREMENT rowid (usage_events): the first call counts, later calls add the rows above
  // the largest rowid seen then (one snapshot, one rowid range). Contract: whoever deletes rows
  // from `table` calls InvalidateRowCount(table) after the delete commits; the next call then
  // counts again. Thread-safe.
  Result<int64_t> CountRowsIncremental(std::string_view table);
  void InvalidateRowCount(std::string_view table);

 private:
  struct RowCount {
    int64_t rows = 0;
    int64_t max_rowid = 0;
    int64_t generation = 0;  // of the table when counted
  };

  struct ReaderLease {
    ReaderLease(Database* d, std::unique_ptr<Connection> c) : db(d), conn(std::move(c)) {}
    ReaderLease(const ReaderLease&) = delete;
    ReaderLease& operator=(const ReaderLease&) = delete;
    ~ReaderLease() { db->ReleaseReader(std::move(conn)); }
    Database* db;
    std::unique_ptr<Connection> conn;
  };

  Database(std::string path, std::unique_ptr<Connection> writer, int max_readers);
  Result<std::unique_ptr<Connection>> AcquireReader();
  void ReleaseReader(std::unique_ptr<Connection> conn);

  void CheckpointLoop(int64_t wal_bytes);

  const std::string path_;
  std::thread checkpoint_thread_;
  std::atomic<bool> checkpoint_stop_{false};
  std::atomic<int64_t> checkpoints_{0};
  const int max_readers_;
  std::mutex writer_mu_;
  std::unique_ptr<Connection> writer_;  // used only under writer_mu_

  std::mutex counts_mu_;
  std::map<std::string, RowCount, std::less<>> counts_;        // guarded by counts_mu_
  std::map<std::string, int64_t, std::less<>> generations_;   // guarded by counts_mu_

  std::mutex readers_mu_;
  std::condition_variable reader_free_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;  // guarded by readers_mu_
  int open_readers_ = 0;                                   // guarded by readers_mu_
};

// ---- Schema migrations -----------------------------------------------------------------------

// Applies every migration step not yet recorded in cpamp_schema_migrations, each in its own
// IMMEDIATE transaction together with its bookkeeping row. Idempotent; tables it does not know
// are never touched. Called by Database::Open; exposed for tests and tools.
Status RunMigrations(Connection& conn, int64_t now_ms);
// The highest migration version this build knows.
int LatestSchemaVersion();
// The authoritative tables the migrations create and extend, in creation order.
std::vector<std::string_view> AuthoritativeTableNames();

// ---- Settings repository (table `settings`, spec storage 1.3)
// ------------------------------------

Result<std::optional<std::string>> GetSetting(Connection& conn, std::string_view key);
// Inserts or replaces the value and its updated_at_ms.
Status PutSetting(Connection& conn, std::string_view key, std::string_view value, int64_t now_ms);
// Deleting an absent key is OK.
Status DeleteSetting(Connection& conn, std::string_view key);

// ---- Process lock (spec api 1.4/1.5)
// -------------------------------------------------------------

// The canonical absolute database path: symlinks of the file resolved when it exists, else of
// its parent directory (as far as it exists) plus the file name.
Result<std::string> CanonicalDbPath(const std::string& path);

// An exclusive, non-blocking flock on `<canonical db path>.manager.lock` (created 0600, never
// deleted), held until destruction. Move-only; a moved-from lock holds nothing. Thread-compatible.
// Acquire creates the database's parent directory when it is missing and rejects a database file
// with more than one hard link.
class ProcessLock {
 public:
  static Result<ProcessLock> Acquire(const std::string& db_path);
  ProcessLock(ProcessLock&& other) noexcept;
  ProcessLock& operator=(ProcessLock&& other) noexcept;
  ProcessLock(const ProcessLock&) = delete;
  ProcessLock& operator=(const ProcessLock&) = delete;
  ~ProcessLock();

  bool held() const { return fd_ >= 0; }
  const std::string& db_path() const { return db_path_; }  // canonical
  const std::string& lock_path() const { return lock_path_; }

 private:
  ProcessLock(int fd, std::string db_path, std::string lock_path)
      : fd_(fd), db_path_(std::move(db_path)), lock_path_(std::move(lock_path)) {}
  void Release();

  int fd_ = -1;
  std::string db_path_;
  std::string lock_path_;
};

// ---- reset-admin-key pre-check (spec api 2.7)
// ----------------------------------------------------

// Checks that `path` is an existing, non-empty, non-directory SQLite file with tables `settings`
// and `usage_events`, opening it read-only (never creating it). Returns true when it is; every
// other outcome is an error Status whose message is the one to print:
//   kNotFound   "SQLite database not found at <path>"
//   kBadRequest "SQLite database path <path> is a directory"
//   kBadRequest "SQLite database <path> is empty"
//   kBadRequest "<path> does not look like a CPA Manager Plus Manager Server database"
// (the last also for files that are not SQLite databases at all).
Result<bool> LooksLikeManagerDatabase(const std::string& path);

// ---- Template definitions
// ------------------------------------------------------------------------

template <typename T>
Status Statement::Bind(int index, const T& value) {
  if constexpr (std::is_same_v<T, std::nullopt_t> || std::is_same_v<T, std::nullptr_t>) {
    return BindNull(index);
  } else if constexpr (internal::IsOptional<T>::value) {
    if (!value.has_value()) return BindNull(index);
    return Bind(index, *value);
  } else if constexpr (std::is_integral_v<T>) {
    return BindInt64(index, static_cast<int64_t>(value));
  } else if constexpr (std::is_floating_point_v<T>) {
    return BindDouble(index, static_cast<double>(value));
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return BindText(index, std::string_view(value));
  } else {
    static_assert(internal::kAlwaysFalse<T>, "unsupported type for Statement::Bind");
  }
}

template <typename T>
Status Statement::Bind(std::string_view name, const T& value) {
  CPAMP_ASSIGN_OR_RETURN(int index, ParameterIndex(name));
  return Bind(index, value);
}

}  // namespace cpamp::db
