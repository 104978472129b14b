#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

#include "db/db.h"
#include "db/db_test_util.h"

namespace cpamp::db {
namespace {

using testing::TempDir;

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = Connection::Open(dir_.File("t.sqlite"), /*read_only=*/false);
    ASSERT_TRUE(conn.ok()) << conn.status().message();
    conn_ = std::move(conn).value();
    ASSERT_TRUE(
        conn_->Exec("create table t (id integer primary key, n integer, d real, s text)").ok());
  }

  int64_t CountT() {
    auto stmt = conn_->Prepare("select count(*) from t");
    EXPECT_TRUE(stmt.ok());
    EXPECT_TRUE(*stmt->Step());
    return stmt->ColumnInt64(0);
  }

  TempDir dir_;
  std::unique_ptr<Connection> conn_;
};

TEST_F(ConnectionTest, BindsByIndexAndReadsColumnsByName) {
  auto insert = conn_->Prepare("insert into t (n, d, s) values (?1, ?2, ?3)");
  ASSERT_TRUE(insert.ok()) << insert.status().message();
  ASSERT_TRUE(insert->Bind(1, 42).ok());
  ASSERT_TRUE(insert->Bind(2, 2.5).ok());
  ASSERT_TRUE(insert->Bind(3, "hello").ok());
  ASSERT_TRUE(insert->Run().ok());
  EXPECT_EQ(conn_->LastInsertRowId(), 1);
  EXPECT_EQ(conn_->Changes(), 1);

  auto select = conn_->Prepare("select s as label, d, n, id from t");
  ASSERT_TRUE(select.ok());
  auto row = select->Step();
  ASSERT_TRUE(row.ok());
  ASSERT_TRUE(*row);
  EXPECT_EQ(select->ColumnInt64("n"), 42);
  EXPECT_DOUBLE_EQ(select->ColumnDouble("d"), 2.5);
  EXPECT_EQ(select->ColumnText("label"), "hello");
  EXPECT_EQ(select->ColumnTextView(0), "hello");
  EXPECT_EQ(select->ColumnIndex("id"), 3);
  EXPECT_EQ(select->ColumnIndex("s"), -1);  // aliased away
  EXPECT_EQ(select->ColumnName(0), "label");
  EXPECT_FALSE(select->IsNull("n"));
  EXPECT_FALSE(*select->Step());
}

TEST_F(ConnectionTest, BindsNamedParametersNullsAndOptionals) {
  auto insert = conn_->Prepare("insert into t (n, d, s) values (:n, :d, :s)");
  ASSERT_TRUE(insert.ok());
  std::optional<int64_t> empty_n;
  ASSERT_TRUE(insert->Bind(":n", empty_n).ok());
  ASSERT_TRUE(insert->Bind(":d", std::nullopt).ok());
  ASSERT_TRUE(insert->Bind(":s", std::optional<std::string>("x")).ok());
  ASSERT_TRUE(insert->Run().ok());

  ASSERT_TRUE(insert->Reset().ok());
  ASSERT_TRUE(insert->Bind(":n", std::optional<int64_t>(7)).ok());
  ASSERT_TRUE(insert->Bind(":d", 1.0f).ok());
  ASSERT_TRUE(insert->Bind(":s", std::string("")).ok());
  ASSERT_TRUE(insert->Run().ok());

  Status bad = insert->Bind(":missing", 1);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find(":missing"), std::string::npos);
  EXPECT_FALSE(insert->Bind(9, 1).ok());  // out of range

  auto select = conn_->Prepare("select n, d, s from t order by id");
  ASSERT_TRUE(select.ok());
  ASSERT_TRUE(*select->Step());
  EXPECT_TRUE(select->IsNull("n"));
  EXPECT_EQ(select->ColumnOptionalInt64("n"), std::nullopt);
  EXPECT_EQ(select->ColumnOptionalDouble("d"), std::nullopt);
  EXPECT_EQ(select->ColumnOptionalText("s"), std::optional<std::string>("x"));
  EXPECT_EQ(select->ColumnInt64("n"), 0);  // NULL reads as 0
  ASSERT_TRUE(*select->Step());
  EXPECT_EQ(select->ColumnOptionalInt64("n"), std::optional<int64_t>(7));
  EXPECT_EQ(select->ColumnOptionalDouble("d"), std::optional<double>(1.0));
  // An empty string is stored as '' (not NULL).
  EXPECT_FALSE(select->IsNull("s"));
  EXPECT_EQ(select->ColumnText("s"), "");
}

TEST_F(ConnectionTest, SqliteErrorsBecomeStatusWithErrmsg) {
  auto bad_sql = conn_->Prepare("select * from no_such_table");
  ASSERT_FALSE(bad_sql.ok());
  EXPECT_NE(bad_sql.status().message().find("no such table: no_such_table"), std::string::npos)
      << bad_sql.status().message();
  EXPECT_EQ(bad_sql.status().code(), ErrorCode::kRequestFailed);

  ASSERT_TRUE(conn_->Exec("create table u (k text primary key)").ok());
  ASSERT_TRUE(conn_->Exec("insert into u values ('a')").ok());
  auto dup = conn_->Prepare("insert into u values ('a')");
  ASSERT_TRUE(dup.ok());
  auto step = dup->Step();
  ASSERT_FALSE(step.ok());
  EXPECT_NE(step.status().message().find("UNIQUE constraint failed: u.k"), std::string::npos)
      << step.status().message();
  EXPECT_EQ(conn_->LastErrorCode(), SQLITE_CONSTRAINT_PRIMARYKEY);

  Status exec = conn_->Exec("this is not sql");
  EXPECT_FALSE(exec.ok());
  EXPECT_NE(exec.message().find("syntax error"), std::string::npos) << exec.message();
}

TEST_F(ConnectionTest, TransactionRollsBackOnDestructionUnlessCommitted) {
  {
    auto tx = Transaction::Begin(*conn_);
    ASSERT_TRUE(tx.ok()) << tx.status().message();
    ASSERT_TRUE(conn_->Exec("insert into t (n) values (1)").ok());
    EXPECT_EQ(CountT(), 1);
  }  // dropped without Commit
  EXPECT_EQ(CountT(), 0);
  EXPECT_NE(sqlite3_get_autocommit(conn_->handle()), 0);

  {
    auto tx = Transaction::Begin(*conn_);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(conn_->Exec("insert into t (n) values (2)").ok());
    ASSERT_TRUE(tx->Commit().ok());
    EXPECT_FALSE(tx->active());
    EXPECT_FALSE(tx->Commit().ok());  // committing twice is an error, not a crash
  }
  EXPECT_EQ(CountT(), 1);

  {
    auto tx = Transaction::Begin(*conn_, Transaction::Mode::kDeferred);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(conn_->Exec("insert into t (n) values (3)").ok());
    ASSERT_TRUE(tx->Rollback().ok());
  }
  EXPECT_EQ(CountT(), 1);
}

TEST_F(ConnectionTest, MovedTransactionRollsBackOnce) {
  auto tx = Transaction::Begin(*conn_);
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE(conn_->Exec("insert into t (n) values (1)").ok());
  {
    Transaction moved = std::move(tx).value();
    EXPECT_TRUE(moved.active());
  }
  EXPECT_EQ(CountT(), 0);
  // A nested BEGIN would fail if the transaction had leaked.
  auto again = Transaction::Begin(*conn_);
  EXPECT_TRUE(again.ok()) << again.status().message();
}

TEST_F(ConnectionTest, ReadWriteConnectionUsesWalNormalSyncAndForeignKeys) {
  auto stmt = conn_->Prepare(
      "select (select journal_mode from pragma_journal_mode) as jm, "
      "(select synchronous from pragma_synchronous) as sync, "
      "(select foreign_keys from pragma_foreign_keys) as fk, "
      "(select timeout from pragma_busy_timeout) as bt");
  ASSERT_TRUE(stmt.ok()) << stmt.status().message();
  ASSERT_TRUE(*stmt->Step());
  EXPECT_EQ(stmt->ColumnText("jm"), "wal");
  EXPECT_EQ(stmt->ColumnInt64("sync"), 1);  // NORMAL (WAL: no fsync per commit)
  EXPECT_EQ(stmt->ColumnInt64("fk"), 1);
  EXPECT_EQ(stmt->ColumnInt64("bt"), 5000);
}

TEST_F(ConnectionTest, ReadOnlyConnectionCannotWriteAndNeverCreatesFiles) {
  auto ro = Connection::Open(dir_.File("t.sqlite"), /*read_only=*/true);
  ASSERT_TRUE(ro.ok()) << ro.status().message();
  EXPECT_TRUE((*ro)->read_only());
  Status write = (*ro)->Exec("insert into t (n) values (1)");
  EXPECT_FALSE(write.ok());
  EXPECT_NE(write.message().find("readonly"), std::string::npos) << write.message();

  std::string missing = dir_.File("missing.sqlite");
  auto none = Connection::Open(missing, /*read_only=*/true);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("unable to open database file"), std::string::npos)
      << none.status().message();
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(ConnectionTest, SchemaHelpersListTablesAndColumns) {
  EXPECT_TRUE(*conn_->HasTable("t"));
  EXPECT_FALSE(*conn_->HasTable("nope"));
  auto cols = conn_->TableColumns("t");
  ASSERT_TRUE(cols.ok());
  EXPECT_EQ(*cols, (std::vector<std::string>{"id", "n", "d", "s"}));
  EXPECT_TRUE(conn_->TableColumns("nope")->empty());
}

}  // namespace
}  // namespace cpamp::db
