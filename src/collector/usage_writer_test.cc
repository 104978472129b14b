// UsageWriter against real temporary SQLite files: inserts, dedup, control messages, dead
// letters, batch atomicity, auth-snapshot enrichment and a throughput measurement.
#include "collector/usage_writer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "collector/collector_test_util.h"

namespace cpamp::collector {
namespace {

using testing_util::Record;
using testing_util::TempDir;

class UsageWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = db::Database::Open(dir_.File("usage.sqlite"), clock_);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db).value();
  }
  int64_t Count(std::string_view table) {
    auto n = db_->CountRows(table);
    EXPECT_TRUE(n.ok()) << n.status().message();
    return n.value_or(-1);
  }

  TempDir dir_;
  FakeClock clock_{1790000000000};
  std::unique_ptr<db::Database> db_;
};

TEST_F(UsageWriterTest, InsertsEveryEventOfABatch) {
  UsageWriter writer(*db_, clock_);
  auto r = writer.WriteBatch({Record(1), Record(2), Record(3)});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->inserted, 3);
  EXPECT_EQ(r->skipped, 0);
  EXPECT_EQ(r->dead_letters, 0);
  EXPECT_GT(r->newest_event_ms, 0);
  EXPECT_EQ(Count("usage_events"), 3);
  auto model = db_->Read([](db::Connection& c) -> Result<std::string> {
    CPAMP_ASSIGN_OR_RETURN(db::Statement s,
                           c.Prepare("select model, request_id, input_tokens from usage_events "
                                     "where request_id = 'req-2'"));
    CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Error(ErrorCode::kNotFound, "no row");
    return s.ColumnText("model") + "/" + std::to_string(s.ColumnInt64("input_tokens"));
  });
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(*model, "gpt-5/102");
}

TEST_F(UsageWriterTest, RedeliveredPayloadsAreSkipped) {
  UsageWriter writer(*db_, clock_);
  ASSERT_TRUE(writer.WriteBatch({Record(1), Record(2)}).ok());
  auto again = writer.WriteBatch({Record(1), Record(2), Record(3), Record(3)});
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->inserted, 1);  // only req-3, once
  EXPECT_EQ(again->skipped, 3);   // req-1, req-2 (earlier batch) and the second req-3
  EXPECT_EQ(Count("usage_events"), 3);
}

TEST_F(UsageWriterTest, ControlMessagesAreNotStored) {
  UsageWriter writer(*db_, clock_);
  auto r = writer.WriteBatch({R"({"refresh":true})", R"({"support_refresh":true})"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->controls, 2);
  EXPECT_EQ(r->inserted + r->skipped + r->dead_letters, 0);
  EXPECT_EQ(writer.transactions(), 0);  // nothing to write, no transaction
  EXPECT_EQ(Count("usage_events"), 0);
  EXPECT_EQ(Count("dead_letter_events"), 0);
}

TEST_F(UsageWriterTest, MalformedItemsBecomeDeadLettersVerbatim) {
  UsageWriter writer(*db_, clock_);
  const std::vector<std::string> bad = {"not json {", "[1,2,3]", "  42  "};
  std::vector<std::string> batch = bad;
  batch.push_back(Record(7));
  auto r = writer.WriteBatch(batch);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->dead_letters, 3);
  EXPECT_EQ(r->inserted, 1);
  auto rows = db_->Read([](db::Connection& c) -> Result<std::vector<std::string>> {
    CPAMP_ASSIGN_OR_RETURN(db::Statement s, c.Prepare("select payload, error, created_at_ms from "
                                                      "dead_letter_events order by id"));
    std::vector<std::string> out;
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      if (s.ColumnText("error").empty()) return Error(ErrorCode::kRequestFailed, "empty error");
      if (s.ColumnInt64("created_at_ms") != 1790000000000) {
        return Error(ErrorCode::kRequestFailed, "wrong created_at_ms");
      }
      out.push_back(s.ColumnText("payload"));
    }
    return out;
  });
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_EQ(*rows, bad);
}

TEST_F(UsageWriterTest, OneTransactionPerBatchAndAllOrNothing) {
  UsageWriter writer(*db_, clock_);
  ASSERT_TRUE(writer.WriteBatch({Record(1), Record(2)}).ok());
  ASSERT_TRUE(writer.WriteBatch({Record(3), "garbage"}).ok());
  EXPECT_EQ(writer.transactions(), 2);

  // A trigger makes the 3rd event of the next batch fail: nothing of that batch may remain.
  ASSERT_TRUE(db_->Write([](db::Connection& c) {
                   return c.Exec(
                       "create trigger fail_req_12 before insert on usage_events "
                       "when new.request_id = 'req-12' begin select raise(abort, 'boom'); end");
                 })
                  .ok());
  const std::vector<std::string> batch = {Record(10), Record(11), Record(12), "bad json"};
  auto failed = writer.WriteBatch(batch);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(Count("usage_events"), 3);
  EXPECT_EQ(Count("dead_letter_events"), 1);
  EXPECT_EQ(writer.transactions(), 2);

  // Retrying the same batch once the cause is gone stores all of it (statements re-prepared).
  ASSERT_TRUE(
      db_->Write([](db::Connection& c) { return c.Exec("drop trigger fail_req_12"); }).ok());
  auto retried = writer.WriteBatch(batch);
  ASSERT_TRUE(retried.ok()) << retried.status().message();
  EXPECT_EQ(retried->inserted, 3);
  EXPECT_EQ(retried->dead_letters, 1);
  EXPECT_EQ(Count("usage_events"), 6);
  EXPECT_EQ(writer.transactions(), 3);
}

TEST_F(UsageWriterTest, EnrichesFromAuthFilesAndRefreshInvalidatesCache) {
  int calls = 0;
  AuthFilesFetcher fetch = [&]() -> Result<std::string> {
    ++calls;
    return std::string(
        R"({"files":[{"auth_index":"aaaa000011112222","name":"codex-user.json","type":"codex",)"
        R"("provider":"codex","label":"user@example.com","email":"user@example.com",)"
        R"("project_id":"proj-1"}]})");
  };
  UsageWriter writer(*db_, clock_, fetch);
  ASSERT_TRUE(writer.WriteBatch({Record(1, "aaaa000011112222")}).ok());
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(writer.WriteBatch({Record(2, "aaaa000011112222")}).ok());
  EXPECT_EQ(calls, 1);  // cached within the TTL
  ASSERT_TRUE(writer.WriteBatch({R"({"refresh":true})", Record(3, "aaaa000011112222")}).ok());
  EXPECT_EQ(calls, 2);  // refresh dropped the cache
  clock_.Advance(kAuthSnapshotTtlMs + 1);
  ASSERT_TRUE(writer.WriteBatch({Record(4, "aaaa000011112222")}).ok());
  EXPECT_EQ(calls, 3);  // expired

  auto snap = db_->Read([](db::Connection& c) -> Result<std::string> {
    CPAMP_ASSIGN_OR_RETURN(
        db::Statement s,
        c.Prepare("select account_snapshot, auth_file_snapshot, auth_project_id_snapshot, "
                  "auth_snapshot_at_ms from usage_events where request_id = 'req-1'"));
    CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Error(ErrorCode::kNotFound, "no row");
    return s.ColumnText(0) + "|" + s.ColumnText(1) + "|" + s.ColumnText(2) + "|" +
           std::to_string(s.ColumnInt64(3));
  });
  ASSERT_TRUE(snap.ok()) << snap.status().message();
  EXPECT_EQ(*snap, "user@example.com|codex-user.json|proj-1|1790000000000");
}

TEST_F(UsageWriterTest, AuthFilesFailureIsIgnoredAndRateLimited) {
  int calls = 0;
  AuthFilesFetcher fetch = [&]() -> Result<std::string> {
    ++calls;
    return Error(ErrorCode::kUpstreamUnavailable, "connection refused");
  };
  UsageWriter writer(*db_, clock_, fetch);
  auto r = writer.WriteBatch({Record(1, "aaaa000011112222")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->inserted, 1);
  ASSERT_TRUE(writer.WriteBatch({Record(2, "aaaa000011112222")}).ok());
  EXPECT_EQ(calls, 1);  // not retried on every batch
  EXPECT_EQ(Count("usage_events"), 2);
}

// Measures the whole ingest path (normalise + enrich lookup + insert) on 200k realistic records.
TEST_F(UsageWriterTest, RawJsonPolicyKeepsTheCopyOnlyWhereAsked) {
  EXPECT_EQ(ParseRawJsonPolicy(" Failed "), RawJsonPolicy::kFailed);
  EXPECT_EQ(ParseRawJsonPolicy("all"), RawJsonPolicy::kAll);
  EXPECT_EQ(ParseRawJsonPolicy("NONE"), RawJsonPolicy::kNone);
  EXPECT_EQ(ParseRawJsonPolicy("some"), std::nullopt);
  std::string failed = Record(2);
  const std::string kOk = R"("failed":false)";
  failed.replace(failed.find(kOk), kOk.size(), R"("failed":true)");
  auto raw_rows = [&](int64_t offset) {
    auto n = db_->Read([&](db::Connection& c) -> Result<std::string> {
      CPAMP_ASSIGN_OR_RETURN(
          db::Statement s, c.Prepare("select group_concat(failed || ':' || (raw_json is not null)) "
                                     "from (select * from usage_events where id > " +
                                     std::to_string(offset) + " order by id)"));
      CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return Error(ErrorCode::kNotFound, "no row");
      return s.ColumnText(0);
    });
    EXPECT_TRUE(n.ok()) << n.status().message();
    return n.value_or("");
  };
  const std::pair<RawJsonPolicy, std::string> cases[] = {{RawJsonPolicy::kFailed, "0:0,1:1"},
                                                         {RawJsonPolicy::kAll, "0:1,1:1"},
                                                         {RawJsonPolicy::kNone, "0:0,1:0"}};
  int64_t offset = 0;
  int n = 10;
  for (const auto& [policy, want] : cases) {
    UsageWriter::Options opts;
    opts.raw_json = policy;
    UsageWriter writer(*db_, clock_, {}, opts);
    std::string f = failed;
    const std::string id = "req-2";
    f.replace(f.find(id), id.size(), "req-f" + std::to_string(n));
    auto r = writer.WriteBatch({Record(n), f});
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->inserted, 2);
    EXPECT_EQ(raw_rows(offset), want);
    offset += 2;
    ++n;
  }
  UsageWriter defaults(*db_, clock_);
  ASSERT_TRUE(defaults.WriteBatch({Record(50)}).ok());
  EXPECT_EQ(raw_rows(offset), "0:0");
}

TEST_F(UsageWriterTest, WritesTwentyThousandEventsInBatches) {
  // A smoke run; bench/ingest measures throughput end to end.
  constexpr int kRecords = 20'000;
  // CPAMP_TEST_BATCH=<n> changes the batch size (default 1000) for experiments.
  const char* batch_env = std::getenv("CPAMP_TEST_BATCH");
  const int kBatch = batch_env != nullptr && std::atoi(batch_env) > 0 ? std::atoi(batch_env) : 1000;
  std::vector<std::string> payloads;
  payloads.reserve(kRecords);
  // CPAMP_TEST_SMALL_RECORDS=1 uses ~330-byte records instead (to separate size from count).
  const bool small = std::getenv("CPAMP_TEST_SMALL_RECORDS") != nullptr;
  for (int i = 0; i < kRecords; ++i) {
    payloads.push_back(small ? Record(i) : testing_util::CodexRecord(i));
  }

  SystemClock& clock = SystemClock::Instance();
  {
    auto n0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20'000; ++i) {
      usage::NormalizeResult r = usage::NormalizeQueuePayload(payloads[i], 1790000000000);
      ASSERT_EQ(r.kind, usage::PayloadKind::kEvent);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - n0).count();
    std::printf("[ collector ] normalisation alone: %.0f records/s\n", 20'000 / s);
  }
  UsageWriter writer(*db_, clock);
  int64_t inserted = 0;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string> batch;
  for (int i = 0; i < kRecords; i += kBatch) {
    batch.assign(payloads.begin() + i, payloads.begin() + std::min(i + kBatch, kRecords));
    auto r = writer.WriteBatch(batch);
    ASSERT_TRUE(r.ok()) << r.status().message();
    inserted += r->inserted;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(inserted, kRecords);
  EXPECT_EQ(Count("usage_events"), kRecords);
  std::printf("[ collector ] UsageWriter: %d events in %.2f s = %.0f events/s (batch %d)\n",
              kRecords, secs, kRecords / secs, kBatch);
  std::error_code ec;
  std::printf("[ collector ] database size: %.1f MB\n",
              static_cast<double>(std::filesystem::file_size(db_->Path(), ec)) / 1e6);
}

}  // namespace
}  // namespace cpamp::collector
