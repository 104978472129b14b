#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "db/db.h"
#include "db/db_test_util.h"

namespace cpamp::db {
namespace {

using testing::TempDir;

Result<int64_t> ScalarInt(Connection& conn, std::string_view sql) {
  CPAMP_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare(sql));
  CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Error(ErrorCode::kRequestFailed, "no row");
  return stmt.ColumnInt64(0);
}

TEST(Database, FreshOpenCreatesParentDirAndEveryAuthoritativeTable) {
  TempDir dir;
  std::string path = dir.File("nested/data/usage.sqlite");
  FakeClock clock(1760000000000);
  auto db = Database::Open(path, clock);
  ASSERT_TRUE(db.ok()) << db.status().message();
  EXPECT_EQ((*db)->Path(), path);
  EXPECT_TRUE(std::filesystem::exists(path));

  Status checked = (*db)->Read([](Connection& conn) -> Status {
    for (std::string_view table : AuthoritativeTableNames()) {
      CPAMP_ASSIGN_OR_RETURN(bool has, conn.HasTable(table));
      EXPECT_TRUE(has) << table;
    }
    CPAMP_ASSIGN_OR_RETURN(std::vector<std::string> cols, conn.TableColumns("usage_events"));
    EXPECT_EQ(cols.size(), 59u);
    EXPECT_EQ(cols.front(), "id");
    EXPECT_EQ(cols[11], "client_ip");
    EXPECT_EQ(cols.back(), "created_at_ms");
    CPAMP_ASSIGN_OR_RETURN(int64_t indexes,
                           ScalarInt(conn,
                                     "select count(*) from sqlite_master where type = "
                                     "'index' and name like 'idx_%'"));
    // 10 upstream v1.1.0 indexes; the 3 analytics indexes of step 4 are dropped by step 5 and
    // the unused usage_events endpoint/model/request_id indexes by step 7; step 8 turns the
    // timestamp index of files we create into the unique (timestamp_ms, event_hash) dedup key.
    EXPECT_EQ(indexes, 7);
    // No upstream derived tables are created.
    CPAMP_ASSIGN_OR_RETURN(bool rollup, conn.HasTable("usage_hourly_aggregate_v1"));
    EXPECT_FALSE(rollup);
    return Status::Ok();
  });
  EXPECT_TRUE(checked.ok()) << checked.message();
  EXPECT_EQ(AuthoritativeTableNames().size(), 10u);
}

TEST(Database, JournalModeIsWalOnTheFile) {
  TempDir dir;
  auto db = Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(db.ok()) << db.status().message();
  auto mode = (*db)->Read([](Connection& conn) -> Result<std::string> {
    CPAMP_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare("pragma journal_mode"));
    CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Error(ErrorCode::kRequestFailed, "no row");
    return stmt.ColumnText(0);
  });
  ASSERT_TRUE(mode.ok()) << mode.status().message();
  EXPECT_EQ(*mode, "wal");
}

TEST(Database, MigrationsRecordedOnceAndReopenIsANoOp) {
  TempDir dir;
  std::string path = dir.File("usage.sqlite");
  FakeClock clock(1760000000000);
  { ASSERT_TRUE(Database::Open(path, clock).ok()); }
  clock.Advance(60000);
  auto db = Database::Open(path, clock);
  ASSERT_TRUE(db.ok()) << db.status().message();
  // Running the migrations again on the live writer changes nothing either.
  Status again = (*db)->Write([&](Connection& conn) { return RunMigrations(conn, clock.NowMs()); });
  ASSERT_TRUE(again.ok()) << again.message();

  Status checked = (*db)->Read([](Connection& conn) -> Status {
    CPAMP_ASSIGN_OR_RETURN(
        Statement stmt,
        conn.Prepare("select version, name, applied_at_ms from cpamp_schema_migrations "
                     "order by version"));
    int expected_version = 1;
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      EXPECT_EQ(stmt.ColumnInt64("version"), expected_version++);
      EXPECT_EQ(stmt.ColumnInt64("applied_at_ms"), 1760000000000);
      EXPECT_FALSE(stmt.ColumnText("name").empty());
    }
    EXPECT_EQ(expected_version - 1, LatestSchemaVersion());
    return Status::Ok();
  });
  EXPECT_TRUE(checked.ok()) << checked.message();
}

TEST(Database, ReadersSeeCommittedDataAndDoNotWaitForTheWriter) {
  TempDir dir;
  auto opened = Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  Database& db = **opened;

  Status status = db.Write([&](Connection& conn) -> Status {
    CPAMP_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(conn));
    CPAMP_RETURN_IF_ERROR(conn.Exec(
        "insert into dead_letter_events (payload, error, created_at_ms) values ('x', 'e', 1)"));
    // The write transaction is open and holds the write lock; a reader still answers at once,
    // from the last committed snapshot.
    auto during = db.CountRows("dead_letter_events");
    EXPECT_TRUE(during.ok()) << during.status().message();
    EXPECT_EQ(during.value_or(-1), 0);
    return tx.Commit();
  });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(db.CountRows("dead_letter_events").value_or(-1), 1);
  EXPECT_EQ(db.CountRows("usage_events").value_or(-1), 0);
  EXPECT_FALSE(db.CountRows("usage_events; drop table settings").ok());
  EXPECT_FALSE(db.CountRows("no_such_table").ok());
}

TEST(Database, WriteTransactionCommitsOnOkAndRollsBackOnError) {
  TempDir dir;
  auto opened = Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(opened.ok());
  Database& db = **opened;
  Status ok = db.WriteTransaction([](Connection& conn) { return PutSetting(conn, "a", "1", 5); });
  ASSERT_TRUE(ok.ok()) << ok.message();
  Result<int> failed = db.WriteTransaction([](Connection& conn) -> Result<int> {
    CPAMP_RETURN_IF_ERROR(PutSetting(conn, "b", "2", 5));
    return Error(ErrorCode::kBadRequest, "changed my mind");
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message(), "changed my mind");
  auto a = db.Read([](Connection& conn) { return GetSetting(conn, "a"); });
  auto b = db.Read([](Connection& conn) { return GetSetting(conn, "b"); });
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, std::optional<std::string>("1"));
  EXPECT_EQ(*b, std::nullopt);
}

TEST(Database, ConcurrentReadersShareABoundedPool) {
  TempDir dir;
  auto opened = Database::Open(dir.File("usage.sqlite"), SystemClock::Instance(), 2);
  ASSERT_TRUE(opened.ok());
  Database& db = **opened;
  ASSERT_TRUE(db.Write([](Connection& conn) { return PutSetting(conn, "k", "v", 1); }).ok());

  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto value = db.Read([&](Connection& conn) -> Result<std::optional<std::string>> {
          int now = ++inside;
          int seen = max_inside.load();
          while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
          }
          auto v = GetSetting(conn, "k");
          std::this_thread::yield();
          --inside;
          return v;
        });
        if (!value.ok() || *value != std::optional<std::string>("v")) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(max_inside.load(), 2);
  EXPECT_GE(max_inside.load(), 1);
}

TEST(Database, OpenFailsCleanlyOnAFileThatIsNotSqlite) {
  TempDir dir;
  std::string path = dir.File("usage.sqlite");
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("this is definitely not a sqlite database file, just text padding it out....", f);
    std::fclose(f);
  }
  auto db = Database::Open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("file is not a database"), std::string::npos)
      << db.status().message();
}

TEST(Settings, PutGetUpsertDelete) {
  TempDir dir;
  auto opened = Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(opened.ok());
  Database& db = **opened;
  Status s = db.Write([](Connection& conn) -> Status {
    CPAMP_ASSIGN_OR_RETURN(std::optional<std::string> absent, GetSetting(conn, "setup"));
    EXPECT_EQ(absent, std::nullopt);
    CPAMP_RETURN_IF_ERROR(PutSetting(conn, "setup", R"({"a":1})", 100));
    CPAMP_RETURN_IF_ERROR(PutSetting(conn, "setup", R"({"a":2})", 200));
    CPAMP_ASSIGN_OR_RETURN(std::optional<std::string> value, GetSetting(conn, "setup"));
    EXPECT_EQ(value, std::optional<std::string>(R"({"a":2})"));
    CPAMP_ASSIGN_OR_RETURN(int64_t updated,
                           ScalarInt(conn, "select updated_at_ms from settings where key='setup'"));
    EXPECT_EQ(updated, 200);
    CPAMP_ASSIGN_OR_RETURN(int64_t rows, ScalarInt(conn, "select count(*) from settings"));
    EXPECT_EQ(rows, 1);
    CPAMP_RETURN_IF_ERROR(DeleteSetting(conn, "setup"));
    CPAMP_RETURN_IF_ERROR(DeleteSetting(conn, "setup"));  // absent: still OK
    CPAMP_ASSIGN_OR_RETURN(std::optional<std::string> gone, GetSetting(conn, "setup"));
    EXPECT_EQ(gone, std::nullopt);
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.message();
}

}  // namespace
}  // namespace cpamp::db

namespace cpamp::db {
namespace {

TEST(Database, NewFilesUseSixteenKibPagesAndBackgroundCheckpointsKeepTheWalSmall) {
  testing::TempDir dir;
  auto db = Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(db.ok()) << db.status().message();
  auto page = (*db)->Write([](Connection& c) { return c.QueryInt64("PRAGMA page_size"); });
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(*page, 16384);
  ASSERT_TRUE((*db)->StartBackgroundCheckpoints(256 << 10).ok());
  ASSERT_TRUE((*db)->StartBackgroundCheckpoints(256 << 10).ok());  // idempotent
  // ~4 MiB of WAL in small transactions; the writer's own autocheckpoint is 8 x 256 KiB.
  const std::string blob(4000, 'x');
  for (int i = 0; i < 1000; ++i) {
    Status st = (*db)->WriteTransaction([&](Connection& c) -> Status {
      CPAMP_ASSIGN_OR_RETURN(Statement s, c.Prepare("insert into settings (key, value, "
                                                    "updated_at_ms) values (?1, ?2, 0)"));
      CPAMP_RETURN_IF_ERROR(s.Bind(1, "k" + std::to_string(i)));
      CPAMP_RETURN_IF_ERROR(s.Bind(2, blob));
      return s.Run();
    });
    ASSERT_TRUE(st.ok()) << st.message();
  }
  for (int i = 0; i < 100 && (*db)->background_checkpoints() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GT((*db)->background_checkpoints(), 0);
  EXPECT_EQ(*(*db)->CountRows("settings"), 1000);
}

TEST(Database, IncrementalRowCountFollowsInsertsAndNotedDeletes) {
  TempDir dir;
  auto db = Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(db.ok());
  auto exec = [&](const std::string& sql) {
    Status st = (*db)->Write([&](Connection& c) { return c.Exec(sql); });
    ASSERT_TRUE(st.ok()) << st.message();
  };
  exec("create table t (id integer primary key autoincrement, v text)");
  auto count = [&] {
    Result<int64_t> n = (*db)->CountRowsIncremental("t");
    EXPECT_TRUE(n.ok());
    EXPECT_EQ(n.value_or(-1), *(*db)->CountRows("t"));  // always the exact count
    return n.value_or(-1);
  };
  EXPECT_EQ(count(), 0);
  exec("insert into t (v) values ('a'), ('b'), ('c')");
  EXPECT_EQ(count(), 3);
  exec("insert into t (v) values ('d')");
  EXPECT_EQ(count(), 4);
  exec("delete from t where v in ('a', 'c')");
  (*db)->InvalidateRowCount("t");
  EXPECT_EQ(count(), 2);
  exec("insert into t (v) values ('e'), ('f')");
  EXPECT_EQ(count(), 4);
  EXPECT_FALSE((*db)->CountRowsIncremental("t; drop table t").ok());
}

}  // namespace
}  // namespace cpamp::db
