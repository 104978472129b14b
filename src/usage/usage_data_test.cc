// Usage data import/export: round trips, every input format, import sessions, the compatible
// /usage payload and the HTTP handlers (spec cpamp-storage.md §5, cpamp-api.md §4.6).
#include "usage/usage_data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "db/db_test_util.h"

namespace cpamp::usage {
namespace {

namespace bj = boost::json;
using db::testing::ReadFileOrDie;
using db::testing::TempDir;

constexpr int64_t kNow = 1790000000000;

std::string Golden(const std::string& name) {
  return std::string(CPAMP_IMPORT_GOLDEN_DIR) + "/" + name;
}

// A varied raw queue record: tiers, snapshots, failures with headers, missing latency, cache
// counters, reasoning suffixes, several endpoints and models.
std::string RawRecord(int i) {
  static const char* kModels[] = {"gpt-5.5", "claude-sonnet-4", "gemini-2.5-pro", "gpt-5.4-mini"};
  static const char* kAliases[] = {"gpt-5.5(high)", "", "", "gpt-5.4-mini(low)"};
  static const char* kEndpoints[] = {"POST /v1/responses", "POST /v1/messages",
                                     "POST /v1/chat/completions"};
  const int m = i % 4;
  bj::object o;
  o["timestamp"] = "2026-05-0" + std::to_string(1 + i % 5) + "T1" + std::to_string(i % 10) + ":0" +
                   std::to_string(i % 6) + ":0" + std::to_string(i % 7) + "." +
                   std::to_string(100 + i) + "Z";
  o["request_id"] = "req-" + std::to_string(i);
  o["model"] = kModels[m];
  if (*kAliases[m] != '\0') o["alias"] = kAliases[m];
  o["endpoint"] = kEndpoints[i % 3];
  o["source"] = i % 2 == 0 ? "user" + std::to_string(i % 7) + "@example.com"
                           : "sk-proj-abcdefghijklmnopqrstuvwxyz" + std::to_string(i % 5);
  o["api_key"] = "client-key-" + std::to_string(i % 3);
  o["auth_index"] = std::to_string(i % 9);
  o["provider"] = m == 1 ? "claude" : (m == 2 ? "gemini" : "codex");
  o["executor_type"] = m == 1 ? "ClaudeExecutor" : "CodexExecutor";
  o["client_ip"] = "10.0.0." + std::to_string(i % 250);
  o["user_agent"] = "test-agent/1.0";
  if (i % 5 == 0) o["service_tier"] = "priority";
  if (i % 7 == 0) o["response_service_tier"] = "default";
  if (i % 4 == 0) o["reasoning_effort"] = "high";
  if (i % 3 != 0) o["latency_ms"] = 100 + i;
  if (i % 6 == 1) o["ttft_ms"] = 0;
  if (i % 8 == 2) o["account_snapshot"] = "acct-" + std::to_string(i % 4);
  bj::object tokens;
  tokens["input_tokens"] = 1000 + i;
  tokens["output_tokens"] = 50 + i % 17;
  tokens["reasoning_tokens"] = i % 4 == 0 ? 32 : 0;
  tokens["cached_tokens"] = i % 3 == 0 ? 512 : 0;
  if (m == 1) tokens["cache_read_tokens"] = 300;
  if (i % 9 == 0) tokens["total_tokens"] = 5000 + i;
  o["tokens"] = std::move(tokens);
  if (i % 11 == 3) {
    o["failed"] = true;
    bj::object fail;
    fail["status_code"] = 429;
    fail["body"] = "rate limited for user@example.com Bearer abcdefghijklmnop <b>";
    o["fail"] = std::move(fail);
    bj::object headers;
    headers["X-Codex-Primary-Used-Percent"] = bj::array{"87.5"};
    headers["X-Request-Id"] = bj::array{"trace-" + std::to_string(i)};
    headers["Retry-After"] = bj::array{"30"};
    o["response_headers"] = std::move(headers);
  }
  return bj::serialize(o);
}

struct Fixture {
  TempDir dir;
  std::unique_ptr<db::Database> db;
  std::unique_ptr<EventStore> store;

  explicit Fixture(const std::string& name = "usage.sqlite") {
    auto opened = db::Database::Open(dir.File(name));
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    db = std::move(opened).value();
    store = std::make_unique<EventStore>(*db);
  }
  void InsertRaw(int n, int offset = 0) {
    std::vector<UsageEvent> batch;
    for (int i = offset; i < offset + n; ++i) {
      NormalizeResult r = NormalizeQueuePayload(RawRecord(i), kNow);
      ASSERT_EQ(r.kind, PayloadKind::kEvent);
      batch.push_back(std::move(r.event));
    }
    ASSERT_TRUE(store->InsertBatch(batch).ok());
  }
  std::string ExportText(const ExportRange& range = {}) {
    std::string path = dir.File("export-" + std::to_string(counter++) + ".jsonl");
    Result<ExportStats> stats = ExportToFile(*db, path, range);
    EXPECT_TRUE(stats.ok()) << stats.status().message();
    return ReadFileOrDie(path);
  }
  int64_t Rows() { return *db->CountRows("usage_events"); }
  int counter = 0;
};

std::vector<bj::object> Lines(const std::string& text) {
  std::vector<bj::object> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(bj::parse(line).as_object());
  return out;
}

// ---- Export ------------------------------------------------------------------------------------

TEST(UsageExport, LinesAreAscendingAndCarryOnlyTheDocumentedFields) {
  Fixture f;
  f.InsertRaw(60);
  std::string text = f.ExportText();
  std::vector<bj::object> lines = Lines(text);
  ASSERT_EQ(lines.size(), 60u);
  int64_t prev = 0;
  for (const bj::object& o : lines) {
    EXPECT_GE(o.at("timestamp_ms").as_int64(), prev);
    prev = o.at("timestamp_ms").as_int64();
    for (const char* never :
         {"client_ip", "x_forwarded_for", "user_agent", "fail_body", "raw_json",
          "normalized_total_input_tokens", "cache_input_mode", "request_service_tier"}) {
      EXPECT_FALSE(o.contains(never)) << never;
    }
    for (const char* always : {"event_hash", "timestamp_ms", "timestamp", "model", "input_tokens",
                               "cache_tokens", "total_tokens", "failed", "created_at_ms"}) {
      EXPECT_TRUE(o.contains(always)) << always;
    }
  }
  EXPECT_EQ(text.find("10.0.0."), std::string::npos);
  EXPECT_EQ(text.find("test-agent"), std::string::npos);
  EXPECT_EQ(text.find("Bearer abcdefghijklmnop"), std::string::npos);
  // Field order follows §5.1 (request_id first, created_at_ms last).
  EXPECT_EQ(text.substr(0, 14), "{\"request_id\":");
  EXPECT_NE(text.find("\"created_at_ms\":1790000000000}\n"), std::string::npos);
}

TEST(UsageExport, WithoutRangeOnlyTheNewestLimitRowsAreExported) {
  Fixture f;
  f.InsertRaw(50);
  ExportRange range;
  range.limit = 7;
  std::vector<bj::object> lines = Lines(f.ExportText(range));
  ASSERT_EQ(lines.size(), 7u);
  std::vector<bj::object> all = Lines(f.ExportText());
  ASSERT_EQ(all.size(), 50u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(lines[i], all[43 + i]);
}

TEST(UsageExport, RangeFilterSelectsHalfOpenIntervalWithoutCap) {
  Fixture f;
  f.InsertRaw(50);
  std::vector<bj::object> all = Lines(f.ExportText());
  const int64_t from = all[10].at("timestamp_ms").as_int64();
  const int64_t to = all[40].at("timestamp_ms").as_int64();
  ExportRange range;
  range.from_ms = from;
  range.to_ms = to;
  range.limit = 3;  // ignored with a range
  std::vector<bj::object> part = Lines(f.ExportText(range));
  int64_t expected = 0;
  for (const bj::object& o : all) {
    int64_t ts = o.at("timestamp_ms").as_int64();
    if (ts >= from && ts < to) ++expected;
  }
  EXPECT_EQ(static_cast<int64_t>(part.size()), expected);
  EXPECT_GT(expected, 3);
  for (const bj::object& o : part) {
    EXPECT_GE(o.at("timestamp_ms").as_int64(), from);
    EXPECT_LT(o.at("timestamp_ms").as_int64(), to);
  }
}

TEST(UsageExport, EmptyDatabaseGivesEmptyFile) {
  Fixture f;
  EXPECT_EQ(f.ExportText(), "");
}

// ---- Round trip --------------------------------------------------------------------------------

TEST(UsageRoundTrip, ExportImportExportIsByteIdenticalAndReimportAddsNothing) {
  Fixture a("a.sqlite");
  a.InsertRaw(400);
  const std::string first = a.ExportText();
  const std::string file = a.dir.File("first.jsonl");
  { std::ofstream(file) << first; }

  Fixture b("b.sqlite");
  Result<ImportReport> report = ImportFile(*b.db, file);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->status.ok()) << report->status.message();
  EXPECT_EQ(report->format, "usage_service_jsonl");
  EXPECT_EQ(report->added, 400);
  EXPECT_EQ(report->skipped, 0);
  EXPECT_EQ(report->failed, 0);
  const std::string second = b.ExportText();
  EXPECT_EQ(first, second);

  Result<ImportReport> again = ImportFile(*b.db, file);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->added, 0);
  EXPECT_EQ(again->skipped, 400);
  EXPECT_EQ(b.Rows(), 400);

  // Importing the export back into the source adds nothing either.
  ImportReport self = ImportBytes(*a.store, first, kNow);
  EXPECT_EQ(self.added, 0);
  EXPECT_EQ(self.skipped, 400);
}

TEST(UsageRoundTrip, SmallBatchesGiveTheSameResult) {
  Fixture a("a.sqlite");
  a.InsertRaw(123);
  const std::string text = a.ExportText();
  Fixture b("b.sqlite");
  ImportOptions options;
  options.batch_rows = 10;
  ImportReport r = ImportBytes(*b.store, text, kNow, options);
  EXPECT_EQ(r.added, 123);
  EXPECT_EQ(b.ExportText(), text);
}

// ---- Import formats ----------------------------------------------------------------------------

TEST(UsageImport, LegacyCpaEnvelopeCountsAddedFailedAndUnsupported) {
  Fixture f;
  Result<ImportReport> r =
      ImportBytes(*f.store, ReadFileOrDie(Golden("legacy_cpa_export.json")), kNow);
  EXPECT_TRUE(r->status.ok()) << r->status.message();
  EXPECT_EQ(r->format, "legacy_usage_export");
  EXPECT_EQ(r->added, 3);
  EXPECT_EQ(r->failed, 3);
  EXPECT_EQ(r->unsupported, 1);
  EXPECT_EQ(r->warnings,
            (std::vector<std::string>{"legacy_usage_metadata_is_partial",
                                      "legacy_usage_source_matching_may_be_approximate"}));
  ASSERT_EQ(r->rejected.size(), 3u);
  EXPECT_EQ(r->rejected[0].where, "POST /v1/chat/completions / gpt-5");
  EXPECT_EQ(r->rejected[0].index, 3);
  EXPECT_EQ(r->rejected[1].where, "POST /v1/messages / claude-sonnet-4");
  EXPECT_EQ(r->rejected[1].index, 2);
  EXPECT_EQ(r->rejected[2].where, "broken-endpoint");

  std::vector<bj::object> lines = Lines(f.ExportText());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].at("timestamp").as_string(), "2026-04-20T01:15:02.1Z");
  EXPECT_EQ(lines[0].at("endpoint").as_string(), "POST /v1/chat/completions");
  EXPECT_EQ(lines[0].at("method").as_string(), "POST");
  EXPECT_EQ(lines[0].at("model").as_string(), "gpt-5");
  EXPECT_EQ(lines[0].at("source").as_string(), "use***@example.com");
  EXPECT_EQ(lines[0].at("request_id").as_string().subview().substr(0, 7), "legacy:");
  EXPECT_EQ(lines[0].at("created_at_ms").as_int64(), kNow);  // legacy rows: import time
  EXPECT_TRUE(lines[1].at("failed").as_bool());
  EXPECT_EQ(lines[1].at("source").as_string(), "m:sk-a...6789");

  // Idempotent: the synthetic request id and the hash are stable.
  Result<ImportReport> again = ImportFile(*f.db, Golden("legacy_cpa_export.json"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->added, 0);
  EXPECT_EQ(again->skipped, 3);
}

TEST(UsageImport, BareApisPayloadOnOneLine) {
  Fixture f;
  ImportReport r = ImportBytes(
      *f.store,
      R"({"apis":{"POST /v1/responses":{"models":{"gpt-5":{"details":[{"timestamp":"2026-04-20T09:15:02Z","tokens":{"input_tokens":3}}]}}}}})",
      kNow);
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.format, "legacy_usage_payload");
  EXPECT_EQ(r.added, 1);
}

TEST(UsageImport, BrokenLinesAreCountedWithTheirLineNumbers) {
  Fixture f;
  Result<ImportReport> r = ImportFile(*f.db, Golden("broken_lines.jsonl"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->status.ok()) << r->status.message();
  EXPECT_EQ(r->format, "usage_service_jsonl");
  EXPECT_EQ(r->added, 3);
  EXPECT_EQ(r->failed, 4);
  std::vector<int64_t> lines;
  for (const ImportRejection& x : r->rejected) lines.push_back(x.line);
  EXPECT_EQ(lines, (std::vector<int64_t>{2, 4, 5, 8}));
  Result<ImportReport> again = ImportFile(*f.db, Golden("broken_lines.jsonl"));
  EXPECT_EQ(again->added, 0);
  EXPECT_EQ(again->skipped, 3);
}

TEST(UsageImport, JsonArrayOfExportedRowsAndOfRawRecords) {
  Fixture a("a.sqlite");
  a.InsertRaw(20);
  std::vector<bj::object> lines = Lines(a.ExportText());
  bj::array exported;
  for (auto& o : lines) exported.emplace_back(o);
  Fixture b("b.sqlite");
  ImportReport r = ImportBytes(*b.store, "  \n" + bj::serialize(exported) + "\n", kNow);
  EXPECT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.added, 20);

  std::string raw = "[\n";
  for (int i = 100; i < 110; ++i) raw += (i > 100 ? ",\n  " : "  ") + RawRecord(i);
  raw += ",\n  42, \"x\"\n]";
  Fixture c("c.sqlite");
  ImportReport rr = ImportBytes(*c.store, raw, kNow);
  EXPECT_TRUE(rr.status.ok()) << rr.status.message();
  EXPECT_EQ(rr.added, 10);
  EXPECT_EQ(rr.failed, 2);
  ASSERT_EQ(rr.rejected.size(), 2u);
  EXPECT_EQ(rr.rejected[0].index, 11);
  EXPECT_EQ(rr.rejected[1].index, 12);
  // Raw records hash as the collector would: importing them again is a no-op.
  EXPECT_EQ(ImportBytes(*c.store, raw, kNow + 5).added, 0);
}

TEST(UsageImport, RawQueueJsonlMatchesTheCollectorsHash) {
  Fixture f;
  std::string jsonl;
  for (int i = 0; i < 30; ++i) jsonl += RawRecord(i) + "\r\n";
  ImportReport r = ImportBytes(*f.store, jsonl, kNow);
  EXPECT_EQ(r.added, 30);
  Fixture g("g.sqlite");
  g.InsertRaw(30);
  ImportReport dup = ImportBytes(*g.store, jsonl, kNow);
  EXPECT_EQ(dup.added, 0);
  EXPECT_EQ(dup.skipped, 30);
}

TEST(UsageImport, MalformedInputsAreReportedNotSwallowed) {
  Fixture f;
  ImportReport unterminated = ImportBytes(*f.store, "[" + RawRecord(1) + ",", kNow);
  EXPECT_EQ(unterminated.status.code(), ErrorCode::kBadRequest);

  ImportReport aggregate = ImportBytes(
      *f.store, R"({"version":1,"usage":{"total_requests":3,"success_count":3}})", kNow);
  EXPECT_EQ(aggregate.status.code(), ErrorCode::kBadRequest);
  EXPECT_EQ(aggregate.status.message(), "legacy usage export does not contain request details");
  EXPECT_EQ(aggregate.unsupported, 1);

  ImportReport trailing = ImportBytes(*f.store, R"({"apis":{}} {"apis":{}})", kNow);
  EXPECT_EQ(trailing.status.code(), ErrorCode::kBadRequest);

  std::string long_line(kImportMaxLineBytes + 10, 'x');
  ImportReport too_long = ImportBytes(*f.store, "{}\n" + long_line, kNow);
  EXPECT_EQ(too_long.status.code(), ErrorCode::kBadRequest);
  EXPECT_NE(too_long.status.message().find("line 2"), std::string::npos);

  ImportReport garbage = ImportBytes(*f.store, "\x01\x02 not json\n\xff\xfe", kNow);
  EXPECT_TRUE(garbage.status.ok());
  EXPECT_EQ(garbage.failed, 2);
  EXPECT_EQ(garbage.added, 0);

  ImportReport empty = ImportBytes(*f.store, "   \n\n", kNow);
  EXPECT_TRUE(empty.status.ok());
  EXPECT_EQ(empty.total(), 0);
  EXPECT_EQ(f.Rows(), 0);
}

TEST(UsageImport, ExportedRowsWithoutAUsableTimeAreRejectedNotStoredAtNow) {
  // Their dedup key would be "now": each re-import would add the row again.
  Fixture f;
  const std::string hash(64, 'a');
  const std::string body =
      R"({"event_hash":")" + hash + R"(","model":"m"})" "\n" +
      R"({"event_hash":")" + hash + R"(","model":"m","timestamp":"yesterday"})" "\n" +
      R"({"event_hash":")" + hash + R"(","model":"m","timestamp":"2026-05-01T10:00:00Z"})" "\n";
  ImportReport first = ImportBytes(*f.store, body, kNow);
  EXPECT_TRUE(first.status.ok()) << first.status.message();
  EXPECT_EQ(first.added, 1);
  EXPECT_EQ(first.failed, 2);
  ASSERT_EQ(first.rejected.size(), 2u);
  EXPECT_EQ(first.rejected[0].line, 1);
  EXPECT_EQ(first.rejected[0].error, "exported usage record has an event_hash but no timestamp");
  EXPECT_EQ(first.rejected[1].line, 2);
  EXPECT_EQ(first.rejected[1].error, "exported usage record has an unparsable timestamp: yesterday");
  ImportReport again = ImportBytes(*f.store, body, kNow + 1000);
  EXPECT_EQ(again.added, 0);
  EXPECT_EQ(again.skipped, 1);
  EXPECT_EQ(f.Rows(), 1);
}

// ---- Compatible /usage payload -----------------------------------------------------------------

std::string DrainCompatible(const std::string& db_path, int64_t limit) {
  auto cursor = CompatibleUsageCursor::Open(db_path, limit);
  EXPECT_TRUE(cursor.ok()) << cursor.status().message();
  std::string out;
  while (true) {
    Result<bool> more = (*cursor)->Next(out, 128);
    EXPECT_TRUE(more.ok());
    if (!more.ok() || !*more) break;
  }
  return out;
}

TEST(CompatibleUsage, EmptyDatabase) {
  Fixture f;
  EXPECT_EQ(DrainCompatible(f.db->Path(), 50000),
            "{\"total_requests\":0,\"success_count\":0,\"failure_count\":0,\"total_tokens\":0,"
            "\"apis\":{}}\n");
}

TEST(CompatibleUsage, GroupsByEndpointAndAnalyticsModelNewestFirst) {
  Fixture f;
  f.InsertRaw(40);
  bj::object o = bj::parse(DrainCompatible(f.db->Path(), 50000)).as_object();
  EXPECT_EQ(o.at("total_requests").as_int64(), 40);
  const int64_t failures = o.at("failure_count").as_int64();
  EXPECT_EQ(o.at("success_count").as_int64() + failures, 40);
  EXPECT_GT(failures, 0);
  const bj::object& apis = o.at("apis").as_object();
  std::vector<std::string> endpoints;
  int64_t details = 0;
  int64_t tokens = 0;
  for (const auto& [ep, v] : apis) {
    endpoints.emplace_back(ep);
    std::vector<std::string> models;
    for (const auto& [model, mv] : v.at("models").as_object()) {
      models.emplace_back(model);
      EXPECT_EQ(model.find('('), bj::string_view::npos) << model;  // suffix stripped
      std::string prev = "9999";
      for (const auto& d : mv.at("details").as_array()) {
        const bj::object& detail = d.as_object();
        std::string ts(detail.at("timestamp").as_string());
        EXPECT_LE(ts, prev);
        prev = ts;
        EXPECT_TRUE(detail.contains("source"));
        EXPECT_TRUE(detail.contains("failed"));
        const bj::object& t = detail.at("tokens").as_object();
        EXPECT_EQ(t.at("cached_tokens"), t.at("cache_tokens"));
        tokens += t.at("total_tokens").as_int64();
        ++details;
      }
    }
    EXPECT_TRUE(std::is_sorted(models.begin(), models.end()));
  }
  EXPECT_TRUE(std::is_sorted(endpoints.begin(), endpoints.end()));
  EXPECT_EQ(details, 40);
  EXPECT_EQ(tokens, o.at("total_tokens").as_int64());
}

TEST(CompatibleUsage, CompatibleCachedSubtractsReadAndCreation) {
  Fixture f;
  ImportReport r = ImportBytes(
      *f.store,
      R"({"timestamp":"2026-05-01T00:00:00Z","model":"claude-x","endpoint":"POST /v1/messages","tokens":{"input_tokens":10,"cached_tokens":1000,"cache_read_tokens":600,"cache_creation_tokens":100}})",
      kNow);
  ASSERT_EQ(r.added, 1);
  bj::object o = bj::parse(DrainCompatible(f.db->Path(), 10)).as_object();
  const bj::object& t = o.at("apis")
                            .at("POST /v1/messages")
                            .at("models")
                            .at("claude-x")
                            .at("details")
                            .as_array()[0]
                            .at("tokens")
                            .as_object();
  EXPECT_EQ(t.at("cached_tokens").as_int64(), 300);
  EXPECT_EQ(t.at("cache_tokens").as_int64(), 300);
  EXPECT_EQ(t.at("cache_read_tokens").as_int64(), 600);
}

TEST(CompatibleUsage, LimitCoversTheNewestRows) {
  Fixture f;
  f.InsertRaw(30);
  bj::object o = bj::parse(DrainCompatible(f.db->Path(), 5)).as_object();
  EXPECT_EQ(o.at("total_requests").as_int64(), 5);
}

// ---- Import sessions ---------------------------------------------------------------------------

struct SessionFixture : Fixture {
  FakeClock clock{kNow};
  ImportSessionLimits limits;
  std::unique_ptr<ImportSessionManager> manager;
  SessionFixture() {
    limits.chunk_bytes = 1024;
    limits.disk_quota_bytes = 100'000;
    limits.max_sessions = 2;
    limits.ttl_ms = 60'000;
    Reset();
  }
  void Reset() {
    manager.reset();
    manager = std::make_unique<ImportSessionManager>(*db, dir.File("usage-imports"), limits, clock);
  }
  static std::string CreateBody(int64_t size, std::string name = "history.jsonl",
                                std::string resume = "") {
    bj::object o;
    o["filename"] = name;
    o["size_bytes"] = size;
    if (!resume.empty()) o["resume_key"] = resume;
    return bj::serialize(o);
  }
};

TEST(ImportSessions, UploadInChunksThenCompleteImports) {
  SessionFixture f;
  Fixture src("src.sqlite");
  src.InsertRaw(25);
  const std::string file = src.ExportText();
  ASSERT_GT(file.size(), 2048u);
  Result<ImportSession> s =
      f.manager->Create(SessionFixture::CreateBody(file.size(), "../x/h.jsonl"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->id.size(), 32u);
  EXPECT_EQ(s->filename, "h.jsonl");
  EXPECT_EQ(s->status, "uploading");
  EXPECT_EQ(s->chunk_size_bytes, 1024);
  size_t offset = 0;
  while (offset < file.size()) {
    size_t n = std::min<size_t>(1024, file.size() - offset);
    Result<ImportSession> put = f.manager->PutChunk(s->id, std::to_string(offset),
                                                    std::string_view(file).substr(offset, n), n);
    ASSERT_TRUE(put.ok()) << put.status().message();
    offset += n;
    EXPECT_EQ(put->received_bytes, static_cast<int64_t>(offset));
  }
  EXPECT_EQ(f.manager->Get(s->id)->status, "ready");
  Result<ImportSession> done = f.manager->Complete(s->id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, "processing");
  f.manager->WaitIdle();
  Result<ImportSession> after = f.manager->Get(s->id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, "completed") << after->error;
  ASSERT_TRUE(after->result.has_value());
  EXPECT_EQ(after->result->at("added").as_int64(), 25);
  EXPECT_EQ(f.Rows(), 25);
  EXPECT_FALSE(std::filesystem::exists(f.dir.File("usage-imports/" + s->id + ".part")));
  // Completing again is idempotent.
  EXPECT_EQ(f.manager->Complete(s->id)->status, "completed");
}

TEST(ImportSessions, ChunkRulesOffsetLengthAndStatus) {
  SessionFixture f;
  Result<ImportSession> s = f.manager->Create(SessionFixture::CreateBody(1500));
  ASSERT_TRUE(s.ok());
  std::string a(1000, 'a');
  auto put = [&](std::optional<std::string> off, std::string_view body,
                 std::optional<int64_t> cl = std::nullopt) {
    return f.manager->PutChunk(s->id, std::move(off), body, cl);
  };
  EXPECT_EQ(put(std::nullopt, a).status().http_status(), 400);
  EXPECT_EQ(put("-1", a).status().http_status(), 400);
  EXPECT_EQ(put("abc", a).status().http_status(), 400);
  EXPECT_EQ(put("5", a).status().http_status(), 409);
  EXPECT_EQ(put("0", "").status().http_status(), 400);
  EXPECT_EQ(put("0", std::string(1025, 'a')).status().http_status(), 413);
  EXPECT_EQ(put("0", a, 999).status().http_status(), 400);
  ASSERT_TRUE(put("0", a).ok());
  EXPECT_EQ(put("0", a).status().http_status(), 409);  // offset mismatch after the first chunk
  EXPECT_EQ(put("1000", std::string(501, 'b')).status().http_status(), 413);  // > remaining
  ASSERT_TRUE(put("1000", std::string(500, 'b')).ok());
  EXPECT_EQ(put("1500", "c").status().http_status(), 409);  // not uploading any more
  EXPECT_EQ(f.manager->Get("0123456789abcdef0123456789abcdef").status().http_status(), 404);
  EXPECT_EQ(SessionWireCode(409), "usage_import_session_conflict");
}

TEST(ImportSessions, QuotaAndSessionLimits) {
  SessionFixture f;
  EXPECT_EQ(f.manager->Create(SessionFixture::CreateBody(100'001)).status().http_status(), 413);
  EXPECT_EQ(f.manager->Create(R"({"size_bytes":0})").status().http_status(), 400);
  EXPECT_EQ(f.manager->Create(R"({"size_bytes":5,"extra":1})").status().http_status(), 400);
  EXPECT_EQ(f.manager->Create(R"({"size_bytes":5,"resume_key":"XYZ"})").status().http_status(),
            400);
  ASSERT_TRUE(f.manager->Create(SessionFixture::CreateBody(60'000)).ok());
  EXPECT_EQ(f.manager->Create(SessionFixture::CreateBody(50'000)).status().http_status(), 507);
  ASSERT_TRUE(f.manager->Create(SessionFixture::CreateBody(40'000)).ok());
  EXPECT_EQ(f.manager->Create(SessionFixture::CreateBody(10)).status().http_status(), 429);
  EXPECT_EQ(SessionWireCode(507), "usage_import_session_quota_exceeded");
  EXPECT_EQ(SessionWireCode(429), "usage_import_session_limit_exceeded");
}

TEST(ImportSessions, ResumeKeyReturnsTheSameSession) {
  SessionFixture f;
  const std::string key = "0123456789abcdef0123456789abcdef";
  Result<ImportSession> a = f.manager->Create(SessionFixture::CreateBody(10, "a.jsonl", key));
  ASSERT_TRUE(a.ok());
  Result<ImportSession> b = f.manager->Create(SessionFixture::CreateBody(10, "a.jsonl", key));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(
      f.manager->Create(SessionFixture::CreateBody(11, "a.jsonl", key)).status().http_status(),
      409);
}

TEST(ImportSessions, CancelDeletesTheUpload) {
  SessionFixture f;
  Result<ImportSession> s = f.manager->Create(SessionFixture::CreateBody(10));
  ASSERT_TRUE(f.manager->PutChunk(s->id, "0", "12345", std::nullopt).ok());
  bool was_processing = true;
  Result<ImportSession> c = f.manager->Cancel(s->id, &was_processing);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(was_processing);
  EXPECT_EQ(c->status, "cancelled");
  EXPECT_FALSE(std::filesystem::exists(f.dir.File("usage-imports/" + s->id + ".part")));
  EXPECT_EQ(f.manager->PutChunk(s->id, "5", "67890", std::nullopt).status().http_status(), 409);
  EXPECT_EQ(f.manager->Cancel(s->id)->status, "cancelled");  // idempotent
  // A cancelled session no longer counts against the limits.
  ASSERT_TRUE(f.manager->Create(SessionFixture::CreateBody(10)).ok());
  ASSERT_TRUE(f.manager->Create(SessionFixture::CreateBody(10)).ok());
}

TEST(ImportSessions, ExpireAfterTtlSinceLastUpdate) {
  SessionFixture f;
  Result<ImportSession> s = f.manager->Create(SessionFixture::CreateBody(10));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->expires_at_ms, kNow + 60'000);
  f.clock.Advance(50'000);
  ASSERT_TRUE(f.manager->PutChunk(s->id, "0", "12345", std::nullopt).ok());  // extends expiry
  f.clock.Advance(50'000);
  EXPECT_EQ(f.manager->CleanupExpired(), 0);
  EXPECT_TRUE(f.manager->Get(s->id).ok());
  f.clock.Advance(10'001);
  EXPECT_EQ(f.manager->CleanupExpired(), 1);
  EXPECT_EQ(f.manager->Get(s->id).status().http_status(), 404);
  EXPECT_FALSE(std::filesystem::exists(f.dir.File("usage-imports/" + s->id + ".json")));
}

TEST(ImportSessions, StateSurvivesRestartAndParseErrorsAreNotRetryable) {
  SessionFixture f;
  const std::string body = "[{\"a\":1},";  // unterminated array
  Result<ImportSession> s = f.manager->Create(SessionFixture::CreateBody(body.size()));
  ASSERT_TRUE(f.manager->PutChunk(s->id, "0", body, std::nullopt).ok());
  f.Reset();  // a new manager reads the metadata back
  Result<ImportSession> reloaded = f.manager->Get(s->id);
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->status, "ready");
  ASSERT_TRUE(f.manager->Complete(s->id).ok());
  f.manager->WaitIdle();
  Result<ImportSession> failed = f.manager->Get(s->id);
  EXPECT_EQ(failed->status, "failed");
  EXPECT_FALSE(failed->retryable);
  EXPECT_FALSE(failed->error.empty());
  EXPECT_EQ(f.manager->Complete(s->id).status().http_status(), 409);
}

// ---- Handlers ----------------------------------------------------------------------------------

net::Request MakeRequest(std::string method, std::string target, std::string body = "") {
  net::Request r;
  r.head.method = std::move(method);
  r.head.target = target;
  size_t q = target.find('?');
  r.head.path = target.substr(0, q);
  if (q != std::string::npos) r.head.query = target.substr(q + 1);
  r.body = std::move(body);
  return r;
}

std::string Drain(net::Response& resp) {
  if (!resp.stream) return resp.body;
  std::string all;
  while (true) {
    std::string chunk;
    Result<bool> more = resp.stream(chunk);
    EXPECT_TRUE(more.ok());
    all += chunk;
    if (!more.ok() || !*more) break;
  }
  return all;
}

TEST(DataHandlers, ImportExportAndSessionRoutes) {
  SessionFixture f;
  config::Config cfg;
  DataHandlers h(*f.db, cfg, *f.manager, f.clock);

  std::string jsonl;
  for (int i = 0; i < 5; ++i) jsonl += RawRecord(i) + "\n";
  net::Response imp = h.Route(MakeRequest("POST", "/v0/management/usage/import", jsonl));
  EXPECT_EQ(imp.status, 200);
  bj::object report = bj::parse(imp.body).as_object();
  EXPECT_EQ(report.at("added").as_int64(), 5);
  EXPECT_EQ(report.at("total").as_int64(), 5);
  EXPECT_TRUE(report.at("warnings").as_array().empty());

  net::Response bad = h.Import(MakeRequest("POST", "/v0/management/usage/import", "[{}"));
  EXPECT_EQ(bad.status, 400);
  bj::object bad_body = bj::parse(bad.body).as_object();
  EXPECT_TRUE(bad_body.contains("error"));
  EXPECT_FALSE(bad_body.contains("code"));

  net::Response exp = h.Route(MakeRequest("GET", "/v0/management/usage/export/"));
  EXPECT_EQ(exp.status, 200);
  EXPECT_EQ(net::FindHeader(exp.headers, "Content-Type"), "application/x-ndjson");
  EXPECT_EQ(net::FindHeader(exp.headers, "Content-Disposition"),
            "attachment; filename=\"cpa-usage-2026-09-21.jsonl\"");
  EXPECT_EQ(Lines(Drain(exp)).size(), 5u);
  EXPECT_EQ(h.Export(MakeRequest("GET", "/v0/management/usage/export?from_ms=x")).status, 400);

  net::Response usage = h.Route(MakeRequest("GET", "/v0/management/usage"));
  EXPECT_EQ(bj::parse(Drain(usage)).at("total_requests").as_int64(), 5);

  net::Response created = h.Route(
      MakeRequest("POST", "/v0/management/usage/import-sessions", SessionFixture::CreateBody(3)));
  EXPECT_EQ(created.status, 201);
  std::string id(bj::parse(created.body).at("id").as_string());
  net::Response chunk = h.Route(
      MakeRequest("PUT", "/v0/management/usage/import-sessions/" + id + "/chunk?offset=0", "[]\n"));
  EXPECT_EQ(chunk.status, 200);
  EXPECT_EQ(bj::parse(chunk.body).at("status").as_string(), "ready");
  net::Response conflict = h.Route(
      MakeRequest("PUT", "/v0/management/usage/import-sessions/" + id + "/chunk?offset=0", "x"));
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(bj::parse(conflict.body).at("code").as_string(), "usage_import_session_conflict");
  EXPECT_EQ(h.Route(MakeRequest("POST", "/v0/management/usage/import-sessions/" + id)).status, 405);
  EXPECT_EQ(
      h.Route(MakeRequest("GET", "/v0/management/usage/import-sessions/" + id + "/x/y")).status,
      404);
  EXPECT_EQ(h.Route(MakeRequest("GET", "/v0/management/usage/import-sessions/ffff")).status, 404);
  net::Response complete =
      h.Route(MakeRequest("POST", "/v0/management/usage/import-sessions/" + id + "/complete"));
  EXPECT_EQ(complete.status, 202);
  f.manager->WaitIdle();
  net::Response got = h.Route(MakeRequest("GET", "/v0/management/usage/import-sessions/" + id));
  EXPECT_EQ(bj::parse(got.body).at("status").as_string(), "completed");
  net::Response del = h.Route(MakeRequest("DELETE", "/v0/management/usage/import-sessions/" + id));
  EXPECT_EQ(del.status, 200);

  EXPECT_EQ(h.BodyLimit("POST", "/v0/management/usage/import"), kImportBodyLimit);
  EXPECT_EQ(h.BodyLimit("PUT", "/v0/management/usage/import-sessions/ab/chunk"),
            static_cast<size_t>(cfg.usage_import_chunk_bytes));
}

}  // namespace
}  // namespace cpamp::usage
