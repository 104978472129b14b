// IngestPipeline against real temporary SQLite files: everything submitted is committed once,
// the bound stalls the submitter while the database is locked, nothing is lost afterwards.
#include "collector/ingest_pipeline.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "collector/collector_test_util.h"

namespace cpamp::collector {
namespace {

using testing_util::Record;
using testing_util::TempDir;

std::vector<std::string> Records(int from, int n) {
  std::vector<std::string> out;
  for (int i = from; i < from + n; ++i) out.push_back(Record(i));
  return out;
}

class IngestPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = db::Database::Open(dir_.File("usage.sqlite"), clock_);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db).value();
  }
  int64_t Count(std::string_view table) { return db_->CountRows(table).value_or(-1); }

  TempDir dir_;
  FakeClock clock_{1790000000000};
  std::unique_ptr<db::Database> db_;
};

TEST_F(IngestPipelineTest, CommitsEverySubmittedItemOnceAndDeadLettersGarbage) {
  PipelineOptions o;
  o.prepare_chunk = 64;
  o.max_commit_events = 100;
  IngestPipeline p(*db_, clock_, {}, o);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(p.Submit(Records(i * 50, 50)));
  ASSERT_TRUE(p.Submit(Records(0, 50)));  // redelivered
  ASSERT_TRUE(p.Submit({"not json", R"({"refresh":true})", ""}));
  ASSERT_TRUE(p.WaitIdle(30'000));
  PipelineStats s = p.Stats();
  EXPECT_EQ(s.submitted, 1052);  // the empty string is not an item
  EXPECT_EQ(s.inserted, 1000);
  EXPECT_EQ(s.skipped, 50);
  EXPECT_EQ(s.dead_letters, 1);
  EXPECT_EQ(s.controls, 1);
  EXPECT_EQ(s.backlog_records, 0);
  EXPECT_EQ(s.backlog_bytes, 0);
  EXPECT_GE(s.transactions, 1);
  EXPECT_EQ(Count("usage_events"), 1000);
  EXPECT_EQ(Count("dead_letter_events"), 1);
}

TEST_F(IngestPipelineTest, FullBufferStallsTheSubmitterUntilTheWriterCatchesUp) {
  PipelineOptions o;
  o.max_records = 100;
  o.commit_retry_ms = 20;
  IngestPipeline p(*db_, clock_, {}, o);
  // Another connection holds the write lock: nothing can commit.
  auto locker = db::Connection::Open(dir_.File("usage.sqlite"), false);
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE((*locker)->Exec("BEGIN IMMEDIATE").ok());

  ASSERT_TRUE(p.Submit(Records(0, 100)));  // fills the bound
  std::atomic<bool> returned{false};
  std::thread second([&] {
    p.Submit(Records(100, 60));
    returned = true;
  });
  for (int i = 0; i < 200 && !p.Stats().reader_stalled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  PipelineStats during = p.Stats();
  EXPECT_TRUE(during.reader_stalled);
  EXPECT_FALSE(returned.load());
  EXPECT_EQ(during.backlog_records, 100);  // the bound holds: the second chunk waits outside
  EXPECT_EQ(Count("usage_events"), 0);

  ASSERT_TRUE((*locker)->Exec("ROLLBACK").ok());
  second.join();
  EXPECT_TRUE(returned.load());
  ASSERT_TRUE(p.WaitIdle(30'000));
  PipelineStats after = p.Stats();
  EXPECT_FALSE(after.reader_stalled);
  EXPECT_EQ(after.reader_stalls, 1);
  EXPECT_GT(after.reader_stall_ms, 0);
  EXPECT_EQ(after.inserted, 160);
  EXPECT_GE(after.commit_failures, 0);
  EXPECT_EQ(Count("usage_events"), 160);
}

TEST_F(IngestPipelineTest, StopRequestAdmitsItemsThatAlreadyLeftCpa) {
  PipelineOptions o;
  o.max_records = 10;
  o.commit_retry_ms = 20;
  IngestPipeline p(*db_, clock_, {}, o);
  auto locker = db::Connection::Open(dir_.File("usage.sqlite"), false);
  ASSERT_TRUE(locker.ok());
  ASSERT_TRUE((*locker)->Exec("BEGIN IMMEDIATE").ok());
  ASSERT_TRUE(p.Submit(Records(0, 10)));
  std::atomic<bool> stop{true};
  ASSERT_TRUE(p.Submit(Records(10, 10), &stop));  // over the bound, but not dropped
  EXPECT_EQ(p.Stats().backlog_records, 20);
  ASSERT_TRUE((*locker)->Exec("ROLLBACK").ok());
  p.Close();
  EXPECT_EQ(Count("usage_events"), 20);
  EXPECT_FALSE(p.Submit(Records(20, 1)));  // closed
}

TEST_F(IngestPipelineTest, CloseCommitsWhatIsBuffered) {
  {
    IngestPipeline p(*db_, clock_, {}, PipelineOptions{});
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.Submit(Records(i * 300, 300)));
  }  // destructor = Close
  EXPECT_EQ(Count("usage_events"), 3000);
}

}  // namespace
}  // namespace cpamp::collector
