// Which usage_events indexes the analytics, export and price-summary reads really use, proven with
// EXPLAIN QUERY PLAN. docs/storage/indexes.md is written from this test's output.
//
// Design notes:
// - Statements are captured where they run. sqlite3_auto_extension registers a hook that SQLite
//   calls for every connection it opens from then on (the Database's writer and pooled readers,
//   the export snapshot connections), and the hook installs sqlite3_trace_v2(SQLITE_TRACE_STMT).
//   Production code knows nothing about it.
// - Each distinct unexpanded SQL text (sqlite3_sql: the literals the code formats in stay, the
//   ?N parameters stay unbound) that names usage_events gets EXPLAIN QUERY PLAN on a separate
//   connection to the same file, with the same SQL functions registered.
// - No code path runs ANALYZE (the test checks there is no sqlite_stat1), so the plans come from
//   SQLite's fixed heuristics, not from the data: a few hundred events are enough.
// - The rules: no plain `SCAN usage_events` outside a short allow-list that says why; every
//   time-range read goes through idx_usage_events_timestamp (or the index an exception list names,
//   with why); account history pinned to auth indices goes through idx_usage_events_auth_index;
//   every secondary index the schema keeps is used by at least one plan.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <set>

#include "analytics/internal.h"
#include "base/json.h"
#include "pricing/pricing.h"
#include "usage/event_store.h"
#include "usage/usage.h"
#include "usage/usage_data.h"

namespace cpamp::analytics {
namespace {
namespace bj = boost::json;

constexpr int64_t kT0 = 1'749'945'600'000;                             // 2025-06-15T00:00:00Z
constexpr int64_t kNow = kT0 + 2 * kDayMs + 13 * kHourMs + 1'234'567;  // mid-hour, day 3

// ---- Statement capture --------------------------------------------------------------------------

// Shared with the SQLite callbacks, which carry no user data of ours (auto extensions get none).
struct Capture {
  std::mutex mu;
  bool enabled = false;
  std::string label;                                    // the entry point being exercised
  std::vector<std::string> order;                       // distinct SQL, first-run order
  std::map<std::string, std::set<std::string>> labels;  // SQL → entry points that ran it
  int hooked = 0;                                       // connections the hook was installed on
};

Capture& Captured() {
  static Capture c;
  return c;
}

int OnTrace(unsigned type, void*, void* p, void*) {
  if (type != SQLITE_TRACE_STMT) return 0;
  auto* stmt = static_cast<sqlite3_stmt*>(p);
  const char* text = sqlite3_sql(stmt);
  if (text == nullptr) return 0;
  std::string sql(text);
  if (sql.find("usage_events") == std::string::npos) return 0;
  Capture& c = Captured();
  std::lock_guard<std::mutex> lock(c.mu);
  if (!c.enabled) return 0;
  auto [it, fresh] = c.labels.try_emplace(sql);
  if (fresh) c.order.push_back(sql);
  it->second.insert(c.label);
  return 0;
}

// The auto-extension entry point: runs inside sqlite3_open_v2 for every new connection.
int HookConnection(sqlite3* db, char**, const sqlite3_api_routines*) {
  {
    std::lock_guard<std::mutex> lock(Captured().mu);
    ++Captured().hooked;
  }
  sqlite3_trace_v2(db, SQLITE_TRACE_STMT, &OnTrace, nullptr);
  return SQLITE_OK;
}

using AutoExtension = void (*)();
AutoExtension HookAsAutoExtension() {
  // sqlite3_auto_extension takes the entry point type-erased; SQLite calls it with its real
  // signature (the documented idiom).
  return reinterpret_cast<AutoExtension>(&HookConnection);  // NOLINT(*-reinterpret-cast)
}

void SetLabel(const std::string& label) {
  std::lock_guard<std::mutex> lock(Captured().mu);
  Captured().label = label;
}

void SetCapturing(bool on) {
  std::lock_guard<std::mutex> lock(Captured().mu);
  Captured().enabled = on;
}

// ---- Plans --------------------------------------------------------------------------------------

struct Plan {
  std::string sql;
  std::set<std::string> labels;
  std::vector<std::string> lines;  // EXPLAIN QUERY PLAN detail, indented by depth
};

void NoopFn(sqlite3_context* ctx, int, sqlite3_value**) { sqlite3_result_null(ctx); }

Result<std::vector<std::string>> ExplainQueryPlan(db::Connection& conn, const std::string& sql) {
  CPAMP_ASSIGN_OR_RETURN(db::Statement s, conn.Prepare("explain query plan " + sql));
  std::map<int64_t, int> depth;  // node id → depth
  std::vector<std::string> lines;
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    int64_t id = s.ColumnInt64(0), parent = s.ColumnInt64(1);
    int d = parent == 0 ? 0 : depth[parent] + 1;
    depth[id] = d;
    lines.push_back(std::string(2 * static_cast<size_t>(d), ' ') + s.ColumnText(3));
  }
  return lines;
}

// The SQL as printed: long select lists and the per-column search predicates are elided (they do
// not change a plan); everything from FROM on is kept verbatim.
std::string Compact(std::string sql) {
  static const std::regex search(R"(analytics_search\(\?(, \w+)+\))");
  static const std::regex like(
      R"(lower\(\w+\) like \? escape '\\'( or lower\(\w+\) like \? escape '\\')+)");
  sql = std::regex_replace(sql, search, "analytics_search(?, <search columns>)");
  sql = std::regex_replace(sql, like, "lower(<each search column>) like ? escape '\\'");
  for (size_t at = 0; (at = sql.find("select ", at)) != std::string::npos;) {
    size_t from = sql.find(" from ", at);
    if (from == std::string::npos) break;
    size_t cols = at + 7;
    if (from - cols > 60) {
      std::string_view list(sql.data() + cols, from - cols);
      size_t n = std::count(list.begin(), list.end(), ',') + 1;
      sql.replace(cols, from - cols,
                  list.find('(') == std::string_view::npos ? fmt::format("<{} columns>", n)
                                                           : std::string("<columns>"));
    }
    at = cols;
  }
  return sql;
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// A plain table scan: every row of usage_events read in rowid order (not an index walk).
bool IsFullTableScan(std::string_view line) {
  while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  return line.rfind("SCAN usage_events", 0) == 0 && !Contains(line, " USING ");
}

// Statements allowed a plain `SCAN usage_events`, each with the reason. `sql_suffix` must end the
// statement (so adding a WHERE clause takes it off the list).
struct AllowedScan {
  std::string_view sql_suffix;
  std::string_view why;
};
constexpr AllowedScan kAllowedFullScans[] = {
    {"header_error_code, header_trace_id from usage_events",
     "account history with a target that pins no auth index (label, account, file without index): "
     "the spec §6.4 identity key is computed per row, so every event is read once by design"},
    {"from usage_events order by id desc limit ?1) group by 1, 2, 3",
     "price usage summary: the newest N rows walked backwards in rowid order; LIMIT ends it"},
};

const AllowedScan* FindAllowedScan(std::string_view sql) {
  for (const AllowedScan& a : kAllowedFullScans) {
    if (sql.size() >= a.sql_suffix.size() &&
        sql.substr(sql.size() - a.sql_suffix.size()) == a.sql_suffix) {
      return &a;
    }
  }
  return nullptr;
}

// Time-range reads that do not go through idx_usage_events_timestamp, with the index they do use
// (checked, so a plan change is noticed) and why. Entries marked FINDING are plans the code did
// not ask for; each is a one-line fix in the query (docs/storage/indexes.md, "Findings").
struct RangeException {
  std::string_view sql_contains;
  std::string_view plan_contains;
  std::string_view why;
};
constexpr RangeException kRangeExceptions[] = {
    {"from usage_events where timestamp_ms >= ?1 and timestamp_ms < ?2 and 1=1 and auth_index in (",
     "SEARCH usage_events USING INDEX idx_usage_events_auth_index (auth_index=?)",
     "FINDING: task buckets and the grouped sections with an auth_indices filter carry no INDEXED "
     "BY; SQLite's heuristic prefers the IN equality, so every event of those credentials (all "
     "time) is read and the range is applied per row"},
    {"select count(*), coalesce(sum(failed != 0), 0), coalesce(sum(total_tokens), 0) from "
     "usage_events where id <= ?1 and (timestamp_ms > ?2",
     "SEARCH usage_events USING INTEGER PRIMARY KEY (rowid<?)",
     "FINDING: the compatible /usage payload totals: the OR in the newest-N window leaves no "
     "timestamp range, so the rowid range id <= max_id reads every row of the table"},
};

// Not listed because its plan does use idx_usage_events_timestamp: RunCore's tail (`id > ?1 and
// timestamp_ms >= ?2 and timestamp_ms < ?3`) walks every index entry of the rollup-covered hours
// to find the ids past the checkpoint (docs/storage/indexes.md, "Findings" 3).
bool IsTimeRangeRead(const std::string& sql) {
  static const std::regex range(R"(timestamp_ms\s*(>=|<=|<|>)\s*\?)");
  return std::regex_search(sql, range);
}

// ---- Fixture ------------------------------------------------------------------------------------

class QueryPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("analytics_query_plan_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    ASSERT_EQ(sqlite3_auto_extension(HookAsAutoExtension()), SQLITE_OK);
    auto db = db::Database::Open(Path(), clock_);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db).value();
    pricing::PriceRecord p;
    p.base.prompt = 1.25;
    p.base.completion = 10;
    p.base.cache_read = 0.125;
    p.base.prompt_configured = p.base.completion_configured = p.base.cache_read_configured = true;
    prices_["gpt-5"] = p;
    prices_["claude-sonnet-4"] = p;
    pricing::PriceRecord g = p;
    g.context_tiers.push_back({200000, {}});
    g.context_tiers[0].price.prompt = 2.5;
    g.context_tiers[0].price.prompt_configured = true;
    prices_["gemini-2.5-pro"] = g;
    options_.prices = [this]() -> Result<pricing::PriceTable> { return prices_; };
  }
  void TearDown() override {
    SetCapturing(false);
    sqlite3_cancel_auto_extension(HookAsAutoExtension());
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Path() const { return (dir_ / "usage.sqlite").string(); }

  // `count` events spread over [from, to) through the real writer (usage::EventStore), with the
  // identity, failure and header columns the grouped sections, filters and search read.
  void Seed(int count, int64_t from, int64_t to) {
    static const char* kModels[] = {"gpt-5", "gpt-5(high)", "claude-sonnet-4", "gemini-2.5-pro"};
    static const char* kProviders[] = {"codex", "codex", "claude", "gemini"};
    static const char* kAccounts[] = {"alice@example.com", "bob@example.com", "", "carol@x.io"};
    static const char* kEndpoints[] = {"POST /v1/responses", "POST /v1/chat/completions",
                                       "POST /v1/messages"};
    std::vector<usage::UsageEvent> events;
    for (int i = 0; i < count; ++i, ++next_) {
      usage::UsageEvent e;
      const int m = static_cast<int>(rng_() % 4), a = static_cast<int>(rng_() % 6);
      e.timestamp_ms = from + static_cast<int64_t>(rng_() % static_cast<uint64_t>(to - from));
      e.timestamp = usage::FormatTimestampMs(e.timestamp_ms);
      e.created_at_ms = e.timestamp_ms + 5;
      e.event_hash = fmt::format("{:064x}", 0x5eed0000ULL + static_cast<uint64_t>(next_));
      e.request_id = fmt::format("req_{:06d}", next_);
      e.provider = kProviders[m];
      e.executor_type = m == 3 ? "gemini-cli" : "openai-compatible";
      e.model = kModels[m];
      e.requested_model = kModels[m];
      if (m == 1) e.resolved_model = "gpt-5";
      const std::string endpoint = kEndpoints[rng_() % 3];
      e.endpoint = endpoint;
      e.method = "POST";
      e.path = endpoint.substr(5);
      e.client_ip = "10.0.0." + std::to_string(1 + rng_() % 20);
      e.user_agent = "codex_cli_rs/0.40.0";
      e.auth_type = "oauth";
      e.auth_index = "a" + std::to_string(a);
      e.source = fmt::format("sk-...{:04x}", 0xab00 + a);
      e.source_hash = fmt::format("{:064x}", 0x50c0ULL + static_cast<uint64_t>(a));
      e.api_key_hash = fmt::format("{:064x}", 0xa91ULL + rng_() % 3);
      if (kAccounts[a % 4][0] != '\0') e.account_snapshot = kAccounts[a % 4];
      e.auth_label_snapshot = "label-" + std::to_string(a);
      e.auth_file_snapshot = std::string(kProviders[m]) + "-" + std::to_string(a) + ".json";
      e.auth_provider_snapshot = kProviders[m];
      if (m == 3) e.auth_project_id_snapshot = "proj-" + std::to_string(a);
      e.auth_snapshot_at_ms = e.timestamp_ms - 60'000;
      if (rng_() % 3 == 0) e.reasoning_effort = "high";
      e.service_tier = rng_() % 5 == 0 ? "priority" : "default";
      e.cache_input_mode = std::string(usage::kIncludedInInput);
      e.input_tokens = 200 + static_cast<int64_t>(rng_() % (m == 3 ? 300'000 : 40'000));
      e.output_tokens = static_cast<int64_t>(rng_() % 4'000);
      e.reasoning_tokens = e.output_tokens / 3;
      e.cached_tokens = static_cast<int64_t>(rng_() % 2) * e.input_tokens / 2;
      e.cache_read_tokens = e.cached_tokens;
      e.total_tokens = e.input_tokens + e.output_tokens;
      e.latency_ms = 300 + static_cast<int64_t>(rng_() % 30'000);
      e.ttft_ms = 100 + static_cast<int64_t>(rng_() % 2'000);
      e.failed = rng_() % 12 == 0;
      if (e.failed) {
        e.fail_status_code = rng_() % 2 ? 429 : 500;
        e.fail_summary =
            e.fail_status_code == 429 ? "rate limited: usage limit reached" : "upstream error";
        e.header_error_kind = e.fail_status_code == 429 ? "usage_limit" : "server_error";
        e.header_error_code = e.fail_status_code == 429 ? "usage_limit_reached" : "internal";
        e.total_tokens = 0;
        e.output_tokens = e.reasoning_tokens = 0;
      }
      if (rng_() % 4 == 0) {
        e.response_metadata_json = R"({"headers":{"x-codex-primary-used-percent":"42"}})";
        e.header_quota_used_percent = 42.0;
        e.header_quota_recover_at_ms = e.timestamp_ms + 3 * kHourMs;
        e.header_quota_plan_type = "plus";
        e.header_trace_id = fmt::format("trace-{:08x}", next_);
      }
      e.raw_json = R"({"total_tokens":)" + std::to_string(e.total_tokens) + "}";
      events.push_back(std::move(e));
    }
    bool was = false;
    {
      std::lock_guard<std::mutex> lock(Captured().mu);
      std::swap(was, Captured().enabled);  // the fixture's own writes are not under test
    }
    usage::EventStore store(*db_);
    auto written = store.InsertBatch(events);
    SetCapturing(was);
    ASSERT_TRUE(written.ok()) << written.status().message();
    ASSERT_EQ(written->inserted, count);
  }

  bj::object Call(const std::string& label, net::Response (Handlers::*fn)(const net::Request&),
                  Handlers& h, const std::string& method, const std::string& query_or_body) {
    SetLabel(label);
    net::Request r;
    r.head.method = method;
    (method == "GET" ? r.head.query : r.body) = query_or_body;
    net::Response resp = (h.*fn)(r);
    EXPECT_EQ(resp.status, 200) << label << ": " << resp.body;
    auto v = json::ParseObject(resp.body);
    EXPECT_TRUE(v.ok()) << label;
    return v.ok() ? *v : bj::object();
  }
  bj::object Monitor(Handlers& h, const std::string& label, const std::string& body) {
    return Call(label, &Handlers::MonitoringAnalytics, h, "POST", body);
  }

  FakeClock clock_{kNow};
  std::filesystem::path dir_;
  std::unique_ptr<db::Database> db_;
  pricing::PriceTable prices_;
  Options options_;
  std::mt19937_64 rng_{20250615};
  int next_ = 0;
};

std::string Range(int64_t from, int64_t to) {
  return fmt::format(R"("from_ms":{},"to_ms":{},"now_ms":{})", from, to, kNow);
}

// Every section of the monitoring request at once.
constexpr char kAllSections[] =
    R"("summary":true,"summary_percentiles":true,"summary_comparison":true,"timeline":true,
    "hourly_distribution":true,"heatmap":true,"anomaly_points":true,"model_share":true,
    "model_stats":true,"channel_share":true,"failure_sources":true,"filter_options":true,
    "task_buckets":true,"account_stats":true,"api_key_stats":true,"credential_stats":true,
    "credential_timeline":true,"api_key_timeline":true,"recent_failures":5,
    "events_page":{"limit":50})";

std::string Drilldown(int64_t from, int64_t to) {
  return fmt::format(R"("drilldown_preview":{{"from_ms":{},"to_ms":{},"limit":10}})", from, to);
}

// The number of distinct usage_events statements this exercise captures (observed). Fewer means
// the hook or an entry point broke; more means a new query shape: look at its plan, then raise
// this and update docs/storage/indexes.md.
constexpr size_t kExpectedStatements = 55;

TEST_F(QueryPlanTest, EveryUsageEventsReadUsesTheIndexItNeeds) {
  // 20 events older than the 30-day retention, 600 over the last ~2.5 days.
  Seed(20, kNow - 45 * kDayMs, kNow - 40 * kDayMs);
  Seed(600, kT0, kNow);
  SetCapturing(true);

  Handlers h(*db_, clock_, options_);
  Options raw_options = options_;
  raw_options.rollups_enabled = false;
  Handlers raw(*db_, clock_, raw_options);
  const int64_t today = kT0 + 2 * kDayMs;
  const std::string all_range = Range(kT0, kNow);

  // Before the first rollup pass: every section from raw rows; search without the projection.
  Monitor(h, "monitoring: all sections, no rollup yet",
          "{" + all_range + R"(,"time_zone":"UTC","include":{)" + kAllSections + "," +
              Drilldown(today, kNow) + R"(,"granularity":"hour"}})");
  Monitor(h, "monitoring: search before the projection exists",
          "{" + all_range + R"(,"search_query":"alice","include":{"summary":true,
          "events_page":{"limit":20}}})");

  SetLabel("rollup worker pass (fold + search projection)");
  RollupWorker worker(*db_, clock_, options_.prices);
  auto folded = worker.RunOnce(100);
  ASSERT_TRUE(folded.ok()) << folded.status().message();
  ASSERT_EQ(*folded, 620);

  // Rollup-backed: whole UTC hours from the rollup, edges and the post-checkpoint tail raw.
  Monitor(h, "monitoring: all sections, UTC hours (rollup + raw edges)",
          "{" + all_range + R"(,"time_zone":"UTC","include":{)" + kAllSections + "," +
              Drilldown(today, kNow) + R"(,"granularity":"hour"}})");
  Monitor(h, "monitoring: day buckets, Asia/Shanghai, comparison",
          "{" + all_range + R"(,"time_zone":"Asia/Shanghai","include":{"summary":true,
          "summary_comparison":true,"timeline":true,"model_stats":true,"granularity":"day"}})");
  Monitor(h, "monitoring: half-hour zone (Asia/Kolkata, raw only)",
          "{" + Range(today, kNow) + R"(,"time_zone":"Asia/Kolkata","include":{"summary":true,
          "timeline":true,"hourly_distribution":true,"granularity":"hour"}})");
  Monitor(h, "monitoring: model filter + include_failed=false (rollup-eligible)",
          "{" + all_range + R"(,"filters":{"models":["gpt-5"],"include_failed":false},
          "include":{"summary":true,"timeline":true,"model_share":true,"events_page":{"limit":20}}})");
  Monitor(h, "monitoring: auth_indices filter",
          "{" + all_range + R"(,"filters":{"auth_indices":["a1","a2"]},"include":{)" +
              kAllSections + "}}");
  Monitor(h, "monitoring: every other filter",
          "{" + all_range + R"(,"filters":{"providers":["codex"],"accounts":["alice@example.com"],
          "credential_ids":["codex-0.json"],"auth_files":["codex-0.json"],
          "api_key_hashes":["x"],"source_hashes":["y"],"project_ids":["proj-1"],
          "request_types":["openai-compatible"],"header_error_kinds":["usage_limit"],
          "header_error_codes":["usage_limit_reached"],"header_quota_plans":["plus"],
          "header_trace_ids":["trace-1"],"failed_only":true,"min_latency_ms":1000,
          "cache_status":"hit"},"include":{"summary":true,"channel_share":true,
          "task_buckets":true,"events_page":{"limit":20}}})");
  Monitor(h, "monitoring: search via the projection (+ api key hash)",
          "{" + all_range + R"(,"search_query":"alice","search_api_key_hash":")" +
              fmt::format("{:064x}", 0xa91) + R"(","include":{"summary":true,"timeline":true,
          "account_stats":true,"task_buckets":true,"events_page":{"limit":20},)" +
              Drilldown(today, kNow) + "}}");
  Monitor(h, "monitoring: LIKE search (query with _ or %)",
          "{" + all_range + R"(,"search_query":"req_0001","include":{"summary":true,
          "summary_profile":"compact","events_page":{"limit":20}}})");
  bj::object page = Monitor(h, "monitoring: events page",
                            "{" + all_range + R"(,"include":{"events_page":{"limit":25}}})");
  const bj::object& events = page.at("events").as_object();
  ASSERT_TRUE(events.at("has_more").as_bool());
  const int64_t before_ms = events.at("next_before_ms").as_int64();
  const int64_t before_id = events.at("next_before_id").as_int64();
  Monitor(h, "monitoring: events page, keyset cursor (before_ms + before_id)",
          "{" + all_range +
              fmt::format(R"(,"include":{{"events_page":{{"limit":25,"before_ms":{},)"
                          R"("before_id":{}}}}}}})",
                          before_ms, before_id));
  Monitor(h, "monitoring: events page, before_ms only",
          "{" + all_range +
              fmt::format(R"(,"include":{{"events_page":{{"limit":25,"before_ms":{}}}}}}})",
                          before_ms));
  Monitor(raw, "monitoring: rollups disabled",
          "{" + all_range + R"(,"time_zone":"UTC","include":{"summary":true,"timeline":true,
          "model_stats":true,"granularity":"hour"}})");

  Call("dashboard summary", &Handlers::DashboardSummary, h, "GET",
       fmt::format("today_start_ms={}&now_ms={}&top_models=5&recent_failures=5", today, kNow));
  Call("header snapshots", &Handlers::HeaderSnapshots, h, "GET", "days=30&limit=100");
  const std::string pinned =
      R"({"row_key":"p","auth_file_snapshot":"codex-0.json","auth_provider_snapshot":"codex",
      "auth_index":"a0"},{"row_key":"q","auth_index":"a3"})";
  Call("account history: targets pinned to auth indices", &Handlers::AccountHistory, h, "POST",
       R"({"accounts":[)" + pinned + "]}");
  Call("account history: label/account targets", &Handlers::AccountHistory, h, "POST",
       R"({"accounts":[)" + pinned + R"(,{"row_key":"l","auth_label_snapshot":"label-2"}]})");

  // Events past the rollup checkpoint: the tail query has rows, catch_up folds them.
  Seed(30, kNow - 20 * kHourMs, kNow);
  Monitor(h, "monitoring: all sections, UTC hours (rollup + raw edges)",
          "{" + all_range + R"(,"time_zone":"UTC","include":{)" + kAllSections + "," +
              Drilldown(today, kNow) + R"(,"granularity":"hour"}})");
  Call("account history: catch_up", &Handlers::AccountHistory, h, "POST",
       R"({"accounts":[)" + pinned + R"(],"catch_up":true})");

  // A price-structure change (new context tier) makes the next pass rebuild from the oldest hour.
  prices_["gpt-5"].context_tiers.push_back({272000, {}});
  SetLabel("rollup worker pass after a price-structure change (rebuild)");
  folded = worker.RunOnce(100);
  ASSERT_TRUE(folded.ok()) << folded.status().message();
  EXPECT_EQ(*folded, 650);

  SetLabel("retention worker pass");
  RetentionWorker retention(*db_, clock_, 30);
  auto deleted = retention.RunOnce();
  ASSERT_TRUE(deleted.ok()) << deleted.status().message();
  EXPECT_EQ(*deleted, 20);

  // The other readers of usage_events: export, the compatible /usage payload, the price summary.
  auto drain = [](auto cursor) {
    std::string out;
    while (true) {
      auto more = cursor->Next(out);
      EXPECT_TRUE(more.ok()) << more.status().message();
      if (!more.ok() || !*more) break;
    }
    return out;
  };
  SetLabel("export (newest N)");
  usage::ExportRange newest;
  newest.limit = 100;
  auto export_newest = usage::ExportCursor::Open(Path(), newest);
  ASSERT_TRUE(export_newest.ok()) << export_newest.status().message();
  EXPECT_FALSE(drain(std::move(export_newest).value()).empty());
  SetLabel("export (time range)");
  usage::ExportRange ranged;
  ranged.from_ms = today;
  ranged.to_ms = kNow;
  auto export_range = usage::ExportCursor::Open(Path(), ranged);
  ASSERT_TRUE(export_range.ok()) << export_range.status().message();
  EXPECT_FALSE(drain(std::move(export_range).value()).empty());
  SetLabel("compatible usage payload (newest N)");
  auto payload = usage::CompatibleUsageCursor::Open(Path(), 100);
  ASSERT_TRUE(payload.ok()) << payload.status().message();
  EXPECT_FALSE(drain(std::move(payload).value()).empty());
  SetLabel("price usage summary");
  auto summary = pricing::LoadUsageSummary(*db_, 200);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  SetCapturing(false);

  // ---- Plans ----------------------------------------------------------------------------------
  std::vector<Plan> plans;
  int connections = 0;
  {
    std::lock_guard<std::mutex> lock(Captured().mu);
    for (const std::string& sql : Captured().order) {
      plans.push_back({sql, Captured().labels[sql], {}});
    }
    connections = Captured().hooked;
  }
  auto conn = db::Connection::Open(Path(), /*read_only=*/true);
  ASSERT_TRUE(conn.ok()) << conn.status().message();
  internal::RegisterSqlFunctions(**conn);
  internal::BindSearchHits(**conn, nullptr);
  // The export's own function (usage/export.cc); a stand-in is enough to plan with.
  ASSERT_EQ(sqlite3_create_function((*conn)->handle(), "cpamp_analytics_model", 2, SQLITE_UTF8,
                                    nullptr, &NoopFn, nullptr, nullptr),
            SQLITE_OK);
  auto stats = (*conn)->HasTable("sqlite_stat1");
  ASSERT_TRUE(stats.ok());
  EXPECT_FALSE(*stats) << "ANALYZE ran: plans now depend on the data";

  for (Plan& p : plans) {
    auto lines = ExplainQueryPlan(**conn, p.sql);
    ASSERT_TRUE(lines.ok()) << lines.status().message() << "\n" << p.sql;
    p.lines = std::move(lines).value();
  }

  // Print everything (docs/storage/indexes.md quotes these lines).
  std::cout << "usage_events statements: " << plans.size() << " distinct; trace hook installed on "
            << connections << " connections (writer, pooled readers, export snapshots)\n";
  for (size_t i = 0; i < plans.size(); ++i) {
    const Plan& p = plans[i];
    std::cout << "\n[" << i + 1 << "] " << Compact(p.sql) << "\n";
    for (const std::string& l : p.labels) std::cout << "    via: " << l << "\n";
    if (const AllowedScan* a = FindAllowedScan(p.sql)) {
      std::cout << "    allowed full scan: " << a->why << "\n";
    }
    for (const RangeException& e : kRangeExceptions) {
      if (Contains(p.sql, e.sql_contains)) std::cout << "    range exception: " << e.why << "\n";
    }
    for (const std::string& l : p.lines) std::cout << "    | " << l << "\n";
    if (p.lines.empty()) std::cout << "    | (no plan rows)\n";
  }

  // (a) The hook saw every statement.
  EXPECT_GE(plans.size(), kExpectedStatements);

  // (b) No plain table scan outside the allow-list; every allow-list entry still matters.
  std::set<const AllowedScan*> allowed_used;
  for (const Plan& p : plans) {
    bool scans = std::any_of(p.lines.begin(), p.lines.end(), IsFullTableScan);
    if (!scans) continue;
    const AllowedScan* allowed = FindAllowedScan(p.sql);
    EXPECT_NE(allowed, nullptr) << "full SCAN usage_events:\n" << p.sql;
    if (allowed) allowed_used.insert(allowed);
  }
  for (const AllowedScan& a : kAllowedFullScans) {
    EXPECT_EQ(allowed_used.count(&a), 1u) << "stale allow-list entry: " << a.sql_suffix;
  }

  // (c) Time ranges read through idx_usage_events_timestamp (or the rowid where listed); account
  // history pinned to auth indices through idx_usage_events_auth_index.
  std::map<std::string, int> index_uses;
  std::set<const RangeException*> exceptions_used;
  bool history_by_auth_index = false;
  for (const Plan& p : plans) {
    std::string plan;
    for (const std::string& l : p.lines) plan += l + "\n";
    for (std::string_view idx : {"idx_usage_events_timestamp", "idx_usage_events_auth_index"}) {
      if (Contains(plan, idx)) ++index_uses[std::string(idx)];
    }
    if (IsTimeRangeRead(p.sql)) {
      const RangeException* exception = nullptr;
      for (const RangeException& e : kRangeExceptions) {
        if (Contains(p.sql, e.sql_contains)) exception = &e;
      }
      if (exception) {
        exceptions_used.insert(exception);
        EXPECT_TRUE(Contains(plan, exception->plan_contains)) << p.sql << "\n" << plan;
      } else {
        EXPECT_TRUE(Contains(plan, "idx_usage_events_timestamp")) << p.sql << "\n" << plan;
      }
    }
    if (Contains(p.sql, " where auth_index in (")) {
      history_by_auth_index = true;
      EXPECT_TRUE(Contains(plan, "USING INDEX idx_usage_events_auth_index (auth_index=?)"))
          << p.sql << "\n"
          << plan;
    }
  }
  EXPECT_TRUE(history_by_auth_index) << "the auth-index account history path was not exercised";
  for (const RangeException& e : kRangeExceptions) {
    EXPECT_EQ(exceptions_used.count(&e), 1u) << "stale range exception: " << e.sql_contains;
  }

  // Every secondary index the schema keeps is used by some plan, and only those exist.
  std::set<std::string> indexes;
  {
    auto st = (*conn)->Prepare("select name from pragma_index_list('usage_events') order by name");
    ASSERT_TRUE(st.ok());
    while (true) {
      auto row = st->Step();
      ASSERT_TRUE(row.ok()) << row.status().message();
      if (!*row) break;
      indexes.insert(st->ColumnText(0));
    }
  }
  EXPECT_EQ(indexes,
            (std::set<std::string>{"idx_usage_events_auth_index", "idx_usage_events_timestamp"}));
  for (const std::string& idx : indexes) {
    EXPECT_GT(index_uses[idx], 0) << idx << " is used by no plan";
  }
  std::cout << "\nplans using idx_usage_events_timestamp: "
            << index_uses["idx_usage_events_timestamp"]
            << ", idx_usage_events_auth_index: " << index_uses["idx_usage_events_auth_index"]
            << ", plain table scans (allow-listed): " << allowed_used.size() << "\n";
}

}  // namespace
}  // namespace cpamp::analytics
