// Compatibility of the migrations with files written by upstream CPAMP (tests/compat/*.sql).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "db/db.h"
#include "db/db_test_util.h"

namespace cpamp::db {
namespace {

using testing::CompatFile;
using testing::CreateDatabaseFromSql;
using testing::ReadFileOrDie;
using testing::TempDir;

// Every column of every row of `table`, rendered as text, in rowid order, selected by name.
Result<std::vector<std::string>> DumpRows(Connection& conn, const std::string& table,
                                          const std::vector<std::string>& columns) {
  std::string sql = "select ";
  for (size_t i = 0; i < columns.size(); ++i) {
    sql += (i ? ", " : "") + std::string("quote(") + columns[i] + ") as " + columns[i];
  }
  sql += " from " + table + " order by rowid";
  CPAMP_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare(sql));
  std::vector<std::string> rows;
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    std::string line;
    for (const std::string& c : columns) line += c + "=" + stmt.ColumnText(c) + ";";
    rows.push_back(line);
  }
  return rows;
}

// Snapshot of all rows of the given tables, using each table's columns at snapshot time.
std::map<std::string, std::vector<std::string>> Snapshot(const std::string& path,
                                                         const std::vector<std::string>& tables) {
  std::map<std::string, std::vector<std::string>> out;
  auto conn = Connection::Open(path, true);
  EXPECT_TRUE(conn.ok()) << conn.status().message();
  if (!conn.ok()) return out;
  for (const std::string& t : tables) {
    auto cols = (*conn)->TableColumns(t);
    EXPECT_TRUE(cols.ok());
    auto rows = DumpRows(**conn, t, *cols);
    EXPECT_TRUE(rows.ok()) << rows.status().message();
    out[t] = rows.value_or({});
  }
  return out;
}

class UpstreamCompat : public ::testing::Test {
 protected:
  std::vector<std::string> Columns(const std::string& table) {
    auto conn = Connection::Open(path_, true);
    EXPECT_TRUE(conn.ok());
    return (*conn)->TableColumns(table).value_or({});
  }

  TempDir dir_;
  std::string path_ = dir_.File("usage.sqlite");
  FakeClock clock_{1760000000000};
};

TEST_F(UpstreamCompat, OpensV110DatabaseKeepingDataAndAddingHeadColumns) {
  CreateDatabaseFromSql(path_, ReadFileOrDie(CompatFile("upstream-v1.1.0-schema.sql")));
  // A table from a newer upstream version that we do not manage.
  CreateDatabaseFromSql(
      path_,
      "create table usage_hourly_aggregate_v1 (bucket_ms integer not null, "
      "model text not null, calls integer not null default 0, "
      "primary key (bucket_ms, model));"
      "insert into usage_hourly_aggregate_v1 values (1748000000000, 'gpt-5.4', 3);");
  const std::vector<std::string> tables = {"usage_events",
                                           "dead_letter_events",
                                           "settings",
                                           "model_prices",
                                           "api_key_aliases",
                                           "codex_inspection_runs",
                                           "codex_inspection_results",
                                           "codex_inspection_logs",
                                           "usage_hourly_aggregate_v1"};
  std::map<std::string, std::vector<std::string>> columns_before;
  for (const std::string& t : tables) columns_before[t] = Columns(t);
  auto before = Snapshot(path_, tables);
  ASSERT_EQ(before["usage_events"].size(), 2u);
  ASSERT_EQ(columns_before["usage_events"].size(), 42u);

  auto db = Database::Open(path_, clock_);
  ASSERT_TRUE(db.ok()) << db.status().message();
  db->reset();  // close before inspecting with plain connections

  // Old columns keep their data; new columns are appended.
  for (const std::string& t : tables) {
    std::vector<std::string> after_cols = Columns(t);
    ASSERT_GE(after_cols.size(), columns_before[t].size()) << t;
    EXPECT_TRUE(std::equal(columns_before[t].begin(), columns_before[t].end(), after_cols.begin()))
        << t << ": existing columns must keep their order";
    auto conn = Connection::Open(path_, true);
    ASSERT_TRUE(conn.ok());
    auto rows = DumpRows(**conn, t, columns_before[t]);
    ASSERT_TRUE(rows.ok()) << rows.status().message();
    EXPECT_EQ(*rows, before[t]) << t;
  }
  EXPECT_EQ(Columns("usage_events").size(), 59u);
  EXPECT_EQ(Columns("model_prices").size(), 15u);
  EXPECT_EQ(Columns("codex_inspection_results").size(), 27u);
  EXPECT_EQ(Columns("usage_hourly_aggregate_v1"), columns_before["usage_hourly_aggregate_v1"]);

  auto reopened = Database::Open(path_, clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.status().message();
  Status checked = (*reopened)->Read([](Connection& conn) -> Status {
    // New tables exist.
    for (std::string_view t : AuthoritativeTableNames()) {
      CPAMP_ASSIGN_OR_RETURN(bool has, conn.HasTable(t));
      EXPECT_TRUE(has) << t;
    }
    // Settings rows, readable by name, byte-identical (plaintext key untouched here).
    CPAMP_ASSIGN_OR_RETURN(std::optional<std::string> setup, GetSetting(conn, "setup"));
    EXPECT_TRUE(setup.has_value());
    EXPECT_NE(setup.value_or("").find(R"("managementKey":"plain-management-key-123")"),
              std::string::npos);
    CPAMP_ASSIGN_OR_RETURN(std::optional<std::string> config,
                           GetSetting(conn, "manager_config_v1"));
    EXPECT_NE(config.value_or("").find(R"("queryLimit":50000)"), std::string::npos);

    // usage_events: old values by name, new HEAD columns NULL / default.
    CPAMP_ASSIGN_OR_RETURN(Statement ev, conn.Prepare("select * from usage_events order by id"));
    CPAMP_ASSIGN_OR_RETURN(bool row, ev.Step());
    EXPECT_TRUE(row);
    EXPECT_EQ(ev.ColumnText("request_id"), "req-1");
    EXPECT_EQ(ev.ColumnInt64("timestamp_ms"), 1748000100000);
    EXPECT_EQ(ev.ColumnText("model"), "gpt-5.4");
    EXPECT_EQ(ev.ColumnInt64("cached_tokens"), 1000);
    EXPECT_EQ(ev.ColumnInt64("latency_ms"), 2345);
    EXPECT_EQ(ev.ColumnText("service_tier"), "priority");
    EXPECT_TRUE(ev.IsNull("client_ip"));
    EXPECT_TRUE(ev.IsNull("normalized_total_input_tokens"));
    EXPECT_TRUE(ev.IsNull("header_quota_used_percent"));
    EXPECT_TRUE(ev.IsNull("cache_input_mode"));
    CPAMP_ASSIGN_OR_RETURN(row, ev.Step());
    EXPECT_TRUE(row);
    EXPECT_EQ(ev.ColumnInt64("failed"), 1);
    EXPECT_EQ(ev.ColumnInt64("fail_status_code"), 429);
    EXPECT_EQ(ev.ColumnText("fail_body"), "rate limited body");
    EXPECT_EQ(ev.ColumnOptionalInt64("ttft_ms"), std::nullopt);

    // model_prices: configured flags back-filled per spec storage 3.1 step 16.
    CPAMP_ASSIGN_OR_RETURN(
        Statement mp,
        conn.Prepare("select model, prompt_configured, completion_configured, "
                     "cache_read_configured, cache_creation_configured, prompt_per_1m "
                     "from model_prices order by model"));
    struct Flags {
      std::string model;
      int64_t p, c, cr, cc;
    };
    std::vector<Flags> got;
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool r, mp.Step());
      if (!r) break;
      got.push_back({mp.ColumnText("model"), mp.ColumnInt64("prompt_configured"),
                     mp.ColumnInt64("completion_configured"),
                     mp.ColumnInt64("cache_read_configured"),
                     mp.ColumnInt64("cache_creation_configured")});
    }
    EXPECT_EQ(got.size(), 3u);
    if (got.size() == 3) {
      EXPECT_EQ(got[0].model, "claude-sonnet-4");  // read 0.3, creation 3.75
      EXPECT_EQ(got[0].p, 1);
      EXPECT_EQ(got[0].c, 1);
      EXPECT_EQ(got[0].cr, 1);
      EXPECT_EQ(got[0].cc, 1);
      EXPECT_EQ(got[1].model, "free-model");  // all zero: base flags still configured
      EXPECT_EQ(got[1].p, 1);
      EXPECT_EQ(got[1].c, 1);
      EXPECT_EQ(got[1].cr, 0);
      EXPECT_EQ(got[1].cc, 0);
      EXPECT_EQ(got[2].model, "gpt-5.4");  // read 0.125, creation 0
      EXPECT_EQ(got[2].cr, 1);
      EXPECT_EQ(got[2].cc, 0);
    }

    // codex results: HEAD columns added with defaults.
    CPAMP_ASSIGN_OR_RETURN(Statement cr, conn.Prepare("select * from codex_inspection_results"));
    CPAMP_ASSIGN_OR_RETURN(row, cr.Step());
    EXPECT_TRUE(row);
    EXPECT_EQ(cr.ColumnText("display_account"), "user@example.com");
    EXPECT_DOUBLE_EQ(cr.ColumnDouble("used_percent"), 42.5);
    EXPECT_EQ(cr.ColumnInt64("auto_recover_eligible"), 0);
    EXPECT_TRUE(cr.IsNull("plan_type"));

    // The unknown newer table is untouched.
    CPAMP_ASSIGN_OR_RETURN(Statement agg,
                           conn.Prepare("select calls from usage_hourly_aggregate_v1"));
    CPAMP_ASSIGN_OR_RETURN(row, agg.Step());
    EXPECT_TRUE(row);
    EXPECT_EQ(agg.ColumnInt64("calls"), 3);
    return Status::Ok();
  });
  EXPECT_TRUE(checked.ok()) << checked.message();
}

TEST_F(UpstreamCompat, BackfillDoesNotRunAgainOnceFlagsExist) {
  CreateDatabaseFromSql(path_, ReadFileOrDie(CompatFile("upstream-v1.1.0-schema.sql")));
  {
    auto db = Database::Open(path_, clock_);
    ASSERT_TRUE(db.ok()) << db.status().message();
    Status s = (*db)->Write([](Connection& conn) {
      return conn.Exec("update model_prices set prompt_configured = 0 where model = 'gpt-5.4'");
    });
    ASSERT_TRUE(s.ok());
  }
  auto db = Database::Open(path_, clock_);
  ASSERT_TRUE(db.ok());
  auto flag = (*db)->Read([](Connection& conn) -> Result<int64_t> {
    CPAMP_ASSIGN_OR_RETURN(
        Statement stmt,
        conn.Prepare("select prompt_configured from model_prices where model = 'gpt-5.4'"));
    CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Error(ErrorCode::kNotFound, "missing");
    return stmt.ColumnInt64("prompt_configured");
  });
  ASSERT_TRUE(flag.ok());
  EXPECT_EQ(*flag, 0);
}

TEST_F(UpstreamCompat, OpensHeadV112TablesUnchanged) {
  CreateDatabaseFromSql(path_, ReadFileOrDie(CompatFile("upstream-v1.12-tables.sql")));
  const std::vector<std::string> tables = {"usage_events",
                                           "settings",
                                           "model_prices",
                                           "model_price_context_tiers",
                                           "codex_inspection_runs",
                                           "codex_inspection_results",
                                           "codex_inspection_leases",
                                           "usage_hourly_aggregate_v1",
                                           "usage_event_identity_ledger"};
  std::map<std::string, std::vector<std::string>> columns_before;
  for (const std::string& t : tables) columns_before[t] = Columns(t);
  auto before = Snapshot(path_, tables);

  auto db = Database::Open(path_, clock_);
  ASSERT_TRUE(db.ok()) << db.status().message();
  db->reset();

  for (const std::string& t : tables) {
    EXPECT_EQ(Columns(t), columns_before[t]) << t << ": a HEAD table needs no new column";
  }
  EXPECT_EQ(Snapshot(path_, tables), before);

  auto reopened = Database::Open(path_, clock_);
  ASSERT_TRUE(reopened.ok()) << reopened.status().message();
  Status checked = (*reopened)->Read([](Connection& conn) -> Status {
    CPAMP_ASSIGN_OR_RETURN(bool logs, conn.HasTable("codex_inspection_logs"));
    EXPECT_TRUE(logs);  // missing authoritative tables are created
    CPAMP_ASSIGN_OR_RETURN(bool service_tiers, conn.HasTable("model_price_service_tiers"));
    EXPECT_TRUE(service_tiers);
    CPAMP_ASSIGN_OR_RETURN(Statement ev, conn.Prepare("select * from usage_events"));
    CPAMP_ASSIGN_OR_RETURN(bool row, ev.Step());
    EXPECT_TRUE(row);
    EXPECT_EQ(ev.ColumnText("client_ip"), "10.0.0.7");
    EXPECT_EQ(ev.ColumnText("timestamp"), "2025-08-12T12:01:40.123456789Z");
    EXPECT_EQ(ev.ColumnInt64("normalized_total_input_tokens"), 300000);
    EXPECT_DOUBLE_EQ(ev.ColumnDouble("header_quota_used_percent"), 37.5);
    EXPECT_EQ(ev.ColumnText("header_trace_id"), "trace-123");
    // The FTS5 table from upstream is still queryable.
    CPAMP_ASSIGN_OR_RETURN(
        Statement fts, conn.Prepare("select count(*) as n from usage_monitoring_event_search_v1 "
                                    "where usage_monitoring_event_search_v1 match 'cod'"));
    CPAMP_ASSIGN_OR_RETURN(row, fts.Step());
    EXPECT_TRUE(row);
    EXPECT_EQ(fts.ColumnInt64("n"), 1);
    // The model_prices flags of a HEAD file are never re-back-filled.
    CPAMP_ASSIGN_OR_RETURN(Statement mp, conn.Prepare("select * from model_prices"));
    CPAMP_ASSIGN_OR_RETURN(row, mp.Step());
    EXPECT_TRUE(row);
    EXPECT_EQ(mp.ColumnInt64("prompt_configured"), 1);
    EXPECT_EQ(mp.ColumnInt64("completion_configured"), 0);
    EXPECT_EQ(mp.ColumnInt64("cache_read_configured"), 0);
    return Status::Ok();
  });
  EXPECT_TRUE(checked.ok()) << checked.message();
}

TEST_F(UpstreamCompat, CpaManagerEraUsageEventsGainEveryLaterColumn) {
  // The first CPA-Manager store (1f9e4317): the original 27 columns only.
  CreateDatabaseFromSql(
      path_,
      "create table usage_events (id integer primary key autoincrement, request_id text, "
      "event_hash text not null unique, timestamp_ms integer not null, timestamp text not null, "
      "provider text, model text not null, endpoint text, method text, path text, "
      "auth_type text, auth_index text, source text, source_hash text, api_key_hash text, "
      "input_tokens integer not null default 0, output_tokens integer not null default 0, "
      "reasoning_tokens integer not null default 0, cached_tokens integer not null default 0, "
      "cache_tokens integer not null default 0, total_tokens integer not null default 0, "
      "latency_ms integer, failed integer not null default 0, raw_json text, "
      "created_at_ms integer not null);"
      "insert into usage_events (event_hash, timestamp_ms, timestamp, model, created_at_ms) "
      "values ('h', 1, '1970-01-01T00:00:00.001Z', 'm', 2);");
  auto db = Database::Open(path_, clock_);
  ASSERT_TRUE(db.ok()) << db.status().message();
  db->reset();
  std::vector<std::string> cols = Columns("usage_events");
  EXPECT_EQ(cols.size(), 59u);
  std::set<std::string> names(cols.begin(), cols.end());
  for (const char* c : {"cache_read_tokens", "executor_type", "account_snapshot", "fail_body",
                        "client_ip", "normalized_cache_creation_tokens", "header_trace_id"}) {
    EXPECT_EQ(names.count(c), 1u) << c;
  }
}

TEST_F(UpstreamCompat, UnrepairableTableFailsOpenWithoutPartialChanges) {
  // created_at_ms is NOT NULL without a default: SQLite cannot add it, so Open must fail clearly
  // and leave the file as it was (the step's transaction rolls back).
  CreateDatabaseFromSql(path_,
                        "create table usage_events (id integer primary key autoincrement, "
                        "event_hash text not null unique, timestamp_ms integer not null, "
                        "timestamp text not null, model text not null);");
  auto db = Database::Open(path_, clock_);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("usage_events lacks required column created_at_ms"),
            std::string::npos)
      << db.status().message();
  EXPECT_EQ(Columns("usage_events").size(), 5u);
  auto conn = Connection::Open(path_, true);
  ASSERT_TRUE(conn.ok());
  auto applied = (*conn)->Prepare("select count(*) from cpamp_schema_migrations where version = 2");
  ASSERT_TRUE(applied.ok());
  ASSERT_TRUE(*applied->Step());
  EXPECT_EQ(applied->ColumnInt64(0), 0);
}

}  // namespace
}  // namespace cpamp::db
