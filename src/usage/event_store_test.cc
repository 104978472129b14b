// EventStore: batch insert with dedup on event_hash, dead letters.
#include "usage/event_store.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace cpamp::usage
