// EventStore: batch insert with dedup on event_hash, dead letters.
#include "usage/event_store.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "db/db_test_util.h"

namespace cpamp::usage {
namespace {

using db::testing::TempDir;

UsageEvent Make(int i) {
  NormalizeResult r = NormalizeQueuePayload(
      R"({"timestamp":"2026-05-01T10:00:0)" + std::to_string(i % 10) +
          R"(Z","model":"gpt-5","endpoint":"POST /v1/responses","request_id":"r)" +
          std::to_string(i) + R"(","tokens":{"input_tokens":10,"output_tokens":5}})",
      1790000000000);
  EXPECT_EQ(r.kind, PayloadKind::kEvent);
  return r.event;
}

TEST(EventStore, InsertsNewRowsAndSkipsKnownHashes) {
  TempDir dir;
  auto db = db::Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(db.ok()) << db.status().message();
  EventStore store(**db);
  std::vector<UsageEvent> batch;
  for (int i = 0; i < 20; ++i) batch.push_back(Make(i));
  batch.push_back(Make(3));  // duplicate inside the batch

  Result<InsertCounts> first = store.InsertBatch(batch);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->inserted, 20);
  EXPECT_EQ(first->skipped, 1);

  Result<InsertCounts> again = store.InsertBatch(batch);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->inserted, 0);
  EXPECT_EQ(again->skipped, 21);
  EXPECT_EQ(*(*db)->CountRows("usage_events"), 20);
}

TEST(EventStore, StoredRowKeepsEveryColumn) {
  TempDir dir;
  auto db = db::Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(db.ok());
  EventStore store(**db);
  UsageEvent e = Make(1);
  e.latency_ms = std::nullopt;
  e.header_quota_used_percent = 12.5;
  ASSERT_TRUE(store.InsertBatch(std::vector<UsageEvent>{e}).ok());
  auto row = (*db)->Read([&](db::Connection& c) -> Result<std::vector<std::string>> {
    CPAMP_ASSIGN_OR_RETURN(auto s, c.Prepare("select event_hash, request_id, latency_ms is null, "
                                             "header_quota_used_percent, cache_input_mode, "
                                             "raw_json from usage_events"));
    CPAMP_ASSIGN_OR_RETURN(bool has, s.Step());
    EXPECT_TRUE(has);
    return std::vector<std::string>{s.ColumnText(0),
                                    s.ColumnText(1),
                                    std::to_string(s.ColumnInt64(2)),
                                    std::to_string(s.ColumnDouble(3)),
                                    s.ColumnText(4),
                                    s.ColumnText(5)};
  });
  ASSERT_TRUE(row.ok());
  EXPECT_EQ((*row)[0], e.event_hash);
  EXPECT_EQ((*row)[1], "r1");
  EXPECT_EQ((*row)[2], "1");
  EXPECT_EQ((*row)[3], "12.500000");
  EXPECT_EQ((*row)[4], "included_in_input");
  EXPECT_EQ((*row)[5], *e.raw_json);
}

TEST(EventStore, DeadLettersAreStoredVerbatim) {
  TempDir dir;
  auto db = db::Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(db.ok());
  EventStore store(**db);
  ASSERT_TRUE(store.InsertDeadLetter("not json {", "invalid JSON", 42).ok());
  ASSERT_TRUE(store.InsertDeadLetter("[1]", "not an object", 43).ok());
  EXPECT_EQ(*(*db)->CountRows("dead_letter_events"), 2);
  auto payload = (*db)->Read([&](db::Connection& c) -> Result<std::string> {
    CPAMP_ASSIGN_OR_RETURN(auto s, c.Prepare("select payload from dead_letter_events order by id"));
    CPAMP_ASSIGN_OR_RETURN(bool has, s.Step());
    EXPECT_TRUE(has);
    return s.ColumnText(0);
  });
  EXPECT_EQ(*payload, "not json {");
}


// Every member set to a distinct value survives INSERT -> SELECT <select list> -> ReadUsageEvent:
// the struct, the insert, the binder, the schema and the named indexes agree column by column.
TEST(EventStore, EveryColumnRoundTripsThroughTheRowTable) {
  TempDir dir;
  auto db = db::Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(db.ok());
  EventStore store(**db);
  UsageEvent e;
  int n = 0;
  auto fill = [&](auto& member) {
    ++n;
    using T = std::decay_t<decltype(member)>;
    if constexpr (std::is_same_v<T, std::string> ||
                  std::is_same_v<T, std::optional<std::string>>) {
      member = "v" + std::to_string(n);
    } else if constexpr (std::is_same_v<T, bool>) {
      member = true;
    } else if constexpr (std::is_same_v<T, std::optional<double>>) {
      member = n + 0.25;
    } else {
      member = int64_t{1000} + n;
    }
  };
#define CPAMP_FILL(name, kind, decl, init) fill(e.name);
  CPAMP_USAGE_EVENT_COLUMNS(CPAMP_FILL)
#undef CPAMP_FILL
  EXPECT_EQ(n, kUsageEventColumnCount);
  ASSERT_TRUE(store.InsertBatch(std::vector<UsageEvent>{e}).ok());
  auto back = (*db)->Read([&](db::Connection& c) -> Result<UsageEvent> {
    CPAMP_ASSIGN_OR_RETURN(auto s, c.Prepare("select " + std::string(UsageEventSelectList()) +
                                             " from usage_events"));
    CPAMP_ASSIGN_OR_RETURN(bool has, s.Step());
    EXPECT_TRUE(has);
    EXPECT_EQ(s.ColumnName(ColumnIndex(UsageEventColumn::created_at_ms)), "created_at_ms");
    EXPECT_EQ(s.ColumnName(ColumnIndex(UsageEventColumn::model)), "model");
    return ReadUsageEvent(s);
  });
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, e);
  // The schema has exactly these columns plus id.
  auto cols = (*db)->Read(
      [&](db::Connection& c) { return c.TableColumns("usage_events"); });
  ASSERT_TRUE(cols.ok());
  EXPECT_EQ(static_cast<int>(cols->size()), kUsageEventColumnCount + 1);
}

TEST(EventStore, EventsAndDeadLettersShareOneTransaction) {
  TempDir dir;
  auto db = db::Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(db.ok());
  EventStore store(**db);
  std::vector<UsageEvent> events{Make(1), Make(2)};
  std::vector<DeadLetterRow> dead{{"<html>", "invalid JSON"}};
  Result<InsertCounts> w = store.Write(events, dead, 77);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->inserted, 2);
  EXPECT_EQ(w->dead_letters, 1);
  EXPECT_EQ(store.transactions(), 1);
  // A failing batch (NOT NULL violated) stores nothing of itself, dead letters included.
  std::vector<UsageEvent> bad{Make(3), Make(4)};
  bad[1].timestamp_ms = Make(1).timestamp_ms;  // duplicate (same time, same hash): skipped, fine
  bad[1].event_hash = Make(1).event_hash;
  Result<InsertCounts> ok2 = store.Write(bad, dead, 78);
  ASSERT_TRUE(ok2.ok());
  EXPECT_EQ(ok2->skipped, 1);
  ASSERT_TRUE((*db)->Write([](db::Connection& c) {
    return c.Exec("create trigger no_more before insert on dead_letter_events "
                  "begin select raise(abort, 'disk says no'); end");
  }).ok());
  std::vector<UsageEvent> third{Make(5)};
  Result<InsertCounts> failed = store.Write(third, dead, 79);
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(*(*db)->CountRows("usage_events"), 3);
  EXPECT_EQ(*(*db)->CountRows("dead_letter_events"), 2);
  EXPECT_EQ(store.transactions(), 2);
}

// The unique indexes on usage_events, each as "name(col,col)".
std::vector<std::string> UniqueIndexes(db::Database& db) {
  std::vector<std::string> out;
  Status st = db.Read([&](db::Connection& c) -> Status {
    CPAMP_ASSIGN_OR_RETURN(
        db::Statement s,
        c.Prepare("select il.name, group_concat(ii.name, ',') from pragma_index_list('usage_events') "
                  "il, pragma_index_info(il.name) ii where il.\"unique\" = 1 group by il.name "
                  "order by il.name"));
    for (;;) {
      CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(s.ColumnText(0) + "(" + s.ColumnText(1) + ")");
    }
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

TEST(EventStore, NewFilesDedupOnTimeAndHash) {
  TempDir dir;
  auto db = db::Database::Open(dir.File("usage.sqlite"));
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(UniqueIndexes(**db),
            (std::vector<std::string>{"idx_usage_events_timestamp(timestamp_ms,event_hash)"}));
  EventStore store(**db);
  std::vector<UsageEvent> batch{Make(1), Make(1), Make(2)};
  Result<InsertCounts> w = store.InsertBatch(batch);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->inserted, 2);
  EXPECT_EQ(w->skipped, 1);
}

TEST(EventStore, UpstreamFilesKeepDeduppingOnTheHashAlone) {
  TempDir dir;
  const std::string path = dir.File("usage.sqlite");
  {
    // The table as upstream declares it, before our migrations see the file.
    auto conn = db::Connection::Open(path, false);
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE((*conn)->Exec("create table usage_events (id integer primary key autoincrement, "
                              "event_hash text not null unique, timestamp_ms integer not null, "
                              "timestamp text not null, model text not null, "
                              "created_at_ms integer not null)").ok());
  }
  auto db = db::Database::Open(path);
  ASSERT_TRUE(db.ok()) << db.status().message();
  EXPECT_EQ(UniqueIndexes(**db),
            (std::vector<std::string>{"sqlite_autoindex_usage_events_1(event_hash)"}));
  EventStore store(**db);
  UsageEvent moved = Make(1);
  moved.timestamp_ms += 1;  // same hash at another time: the hash alone decides here
  std::vector<UsageEvent> batch{Make(1), moved};
  Result<InsertCounts> w = store.InsertBatch(batch);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(w->inserted, 1);
  EXPECT_EQ(w->skipped, 1);
}

}  // namespace
}  // namespace cpamp::usage
