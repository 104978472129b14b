// Database: the single writer connection plus a bounded pool of read-only connections.
//
// Design notes:
// - SQLite allows one writer at a time per file anyway; serialising our own writes behind one
//   mutex on one connection means writers never meet SQLITE_BUSY from each other, and batches
//   can share prepared statements. (A dedicated writer thread can be layered on top later
//   without changing the Write(fn) surface.)
// - Readers are read-only connections; under WAL each sees a consistent snapshot and never
//   blocks the writer. They are opened lazily up to max_readers and reused; one is opened
//   eagerly in Open() so a reader that cannot open fails start-up instead of the first query.
// - Readers are closed before the writer: the last connection to close checkpoints the WAL,
//   and that should be the read-write one.
// - Open() runs the migrations on the writer before any reader exists, so readers always see
//   the final schema.
#include <fmt/format.h>

#include <algorithm>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <system_error>

#include "base/log.h"
#include "db/db.h"

namespace cpamp::db {

Database::Database(std::string path, std::unique_ptr<Connection> writer, int max_readers)
    : path_(std::move(path)), max_readers_(max_readers), writer_(std::move(writer)) {}

Database::~Database() {
  checkpoint_stop_ = true;
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
  // Every Read() has returned by now (the caller owns the Database), so all readers are idle.
  idle_readers_.clear();
  writer_.reset();
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, const Clock& clock,
                                                 int max_readers) {
  if (path.empty()) return Error(ErrorCode::kRequestFailed, "database path is empty");
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Error(ErrorCode::kRequestFailed,
                   fmt::format("create database directory {}: {}", parent.string(), ec.message()));
    }
  }
  CPAMP_ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer, Connection::Open(path, false));
  CPAMP_RETURN_IF_ERROR(RunMigrations(*writer, clock.NowMs()));
  std::unique_ptr<Database> db(new Database(path, std::move(writer), std::max(1, max_readers)));
  CPAMP_ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader, db->AcquireReader());
  db->ReleaseReader(std::move(reader));
  return db;
}

Status Database::StartBackgroundCheckpoints(int64_t wal_bytes) {
  if (checkpoint_thread_.joinable()) return Status::Ok();
  CPAMP_RETURN_IF_ERROR(Write([&](Connection& conn) -> Status {
    CPAMP_ASSIGN_OR_RETURN(int64_t page_size, conn.QueryInt64("PRAGMA page_size"));
    return conn.Exec(fmt::format("PRAGMA wal_autocheckpoint = {}",
                                 8 * wal_bytes / std::max<int64_t>(page_size, 512)));
  }));
  checkpoint_thread_ = std::thread([this, wal_bytes] {
    pthread_setname_np(pthread_self(), "db-checkpoint");
    // Background work: below the HTTP API and the collector's readers (best effort).
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 5);
    CheckpointLoop(wal_bytes);
  });
  return Status::Ok();
}

// Polls the -wal size every 50 ms; a PASSIVE checkpoint never blocks the writer or readers, it
// copies what it can. Errors are logged once per kind and retried on the next pass.
void Database::CheckpointLoop(int64_t wal_bytes) {
  std::unique_ptr<Connection> conn;
  const std::string wal = path_ + "-wal";
  std::string last_error;
  while (!checkpoint_stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::error_code ec;
    const auto size = std::filesystem::file_size(wal, ec);
    if (ec || static_cast<int64_t>(size) < wal_bytes) continue;
    if (!conn) {
      Result<std::unique_ptr<Connection>> opened = Connection::Open(path_, false);
      if (!opened.ok()) {
        if (opened.status().message() != last_error) {
          last_error = opened.status().message();
          spdlog::warn("db: checkpoint connection: {}", last_error);
        }
        continue;
      }
      conn = std::move(opened).value();
      (void)conn->Exec("PRAGMA wal_autocheckpoint = 0");
    }
    Status st = conn->Exec("PRAGMA wal_checkpoint(PASSIVE)");
    if (st.ok()) {
      checkpoints_.fetch_add(1);
      last_error.clear();
      // The WAL only restarts from its beginning once fully copied; wait for the writer to move
      // on before looking again.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    } else if (st.message() != last_error) {
      last_error = st.message();
      spdlog::warn("db: background checkpoint: {}", last_error);
    }
  }
}

Result<std::unique_ptr<Connection>> Database::AcquireReader() {
  std::unique_lock<std::mutex> lock(readers_mu_);
  reader_free_.wait(lock, [&] { return !idle_readers_.empty() || open_readers_ < max_readers_; });
  if (!idle_readers_.empty()) {
    std::unique_ptr<Connection> conn = std::move(idle_readers_.back());
    idle_readers_.pop_back();
    return conn;
  }
  ++open_readers_;  // reserve the slot, then open without holding the lock
  lock.unlock();
  Result<std::unique_ptr<Connection>> conn = Connection::Open(path_, true);
  if (!conn.ok()) {
    lock.lock();
    --open_readers_;
    reader_free_.notify_one();
  }
  return conn;
}

void Database::ReleaseReader(std::unique_ptr<Connection> conn) {
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    idle_readers_.push_back(std::move(conn));
  }
  reader_free_.notify_one();
}

namespace {

bool PlainIdentifier(std::string_view table) {
  return !table.empty() && std::all_of(table.begin(), table.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

void Database::InvalidateRowCount(std::string_view table) {
  std::lock_guard lock(counts_mu_);
  auto it = generations_.find(table);
  if (it == generations_.end()) {
    generations_.emplace(std::string(table), 1);
  } else {
    ++it->second;
  }
}

// Why the generation is read before the snapshot: a delete bumps it only after its commit, so a
// delete that the snapshot missed bumps it after this read and the next call counts afresh.
Result<int64_t> Database::CountRowsIncremental(std::string_view table) {
  if (!PlainIdentifier(table)) {
    return Error(ErrorCode::kRequestFailed, fmt::format("count rows: bad table name {}", table));
  }
  std::optional<RowCount> cached;
  int64_t generation = 0;
  {
    std::lock_guard lock(counts_mu_);
    auto g = generations_.find(table);
    generation = g == generations_.end() ? 0 : g->second;
    auto c = counts_.find(table);
    if (c != counts_.end() && c->second.generation == generation) cached = c->second;
  }
  Result<RowCount> now = Read([&](Connection& conn) -> Result<RowCount> {
    // One statement, so one snapshot for both numbers.
    const std::string sql =
        cached ? fmt::format("select (select max(rowid) from {0}), (select count(*) from {0} "
                             "where rowid > ?1)",
                             table)
               : fmt::format("select (select max(rowid) from {0}), (select count(*) from {0})",
                             table);
    CPAMP_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare(sql));
    if (cached) CPAMP_RETURN_IF_ERROR(stmt.Bind(1, cached->max_rowid));
    CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Error(ErrorCode::kRequestFailed, "count rows: no result");
    RowCount rc;
    rc.max_rowid = stmt.ColumnInt64(0);
    rc.rows = (cached ? cached->rows : 0) + stmt.ColumnInt64(1);
    rc.generation = generation;
    return rc;
  });
  if (!now.ok()) return now.status();
  std::lock_guard lock(counts_mu_);
  auto& slot = counts_[std::string(table)];
  // Keep the newest snapshot's answer when calls overlap.
  if (slot.generation != now->generation || now->max_rowid >= slot.max_rowid) slot = *now;
  return now->rows;
}

Result<int64_t> Database::CountRows(std::string_view table) {
  if (!PlainIdentifier(table)) {
    return Error(ErrorCode::kRequestFailed, fmt::format("count rows: bad table name {}", table));
  }
  return Read([&](Connection& conn) -> Result<int64_t> {
    CPAMP_ASSIGN_OR_RETURN(Statement stmt,
                           conn.Prepare(fmt::format("select count(*) from {}", table)));
    CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Error(ErrorCode::kRequestFailed, "count rows: no result");
    return stmt.ColumnInt64(0);
  });
}

}  // namespace cpamp::db
