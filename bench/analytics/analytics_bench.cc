// Analytics benchmarks: a cached synthetic dataset (CPAMP_BENCH_EVENTS, default 100k; 90 days,
// 12 models, 60 accounts, 24 API keys, 5% failures, three service tiers) written straight into
// SQLite, rolled up once, then dashboard and monitoring queries timed through the handlers.
// Datasets are cached under build/<dir>/bench-data/usage-<events>-<seed>.sqlite (10M takes
// minutes to generate and roll up once). measure_process.sh times the real binary on a copy.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "analytics/analytics.h"
#include "base/json.h"

namespace {
using namespace cpamp;

constexpr int64_t kEnd = 1'780'000'000'000;  // dataset "now"
constexpr int64_t kSpan = 90 * analytics::kDayMs;

int64_t Events() {
  const char* e = std::getenv("CPAMP_BENCH_EVENTS");
  return e ? std::atoll(e) : 100'000;
}

void Generate(db::Database& db, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const char* models[] = {"gpt-5.4",           "gpt-5.4-mini",    "gpt-5.5",
                          "claude-sonnet-4-5", "claude-opus-4-1", "gemini-2.5-pro",
                          "gemini-2.5-flash",  "grok-4",          "deepseek-v4-flash(max)",
                          "kimi-k2",           "qwen3-coder",     "gpt-5.3-codex(high)"};
  const char* tiers[] = {"", "default", "priority", "flex"};
  const int64_t batch = 20'000;
  for (int64_t done = 0; done < n; done += batch) {
    Status s = db.WriteTransaction([&](db::Connection& c) -> Status {
      auto st = c.Prepare(
          "insert into usage_events (event_hash, timestamp_ms, timestamp, model, requested_model, "
          "resolved_model, service_tier, provider, executor_type, endpoint, method, path, "
          "auth_index, source, source_hash, api_key_hash, account_snapshot, input_tokens, "
          "normalized_total_input_tokens, output_tokens, reasoning_tokens, cached_tokens, "
          "cache_read_tokens, total_tokens, latency_ms, ttft_ms, failed, fail_status_code, "
          "fail_summary, created_at_ms) values (?1,?2,?3,?4,?4,?5,?6,?7,?7,'POST /v1/responses',"
          "'POST','/v1/responses',?8,?9,?10,?11,?12,?13,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,"
          "?23,?2)");
      if (!st.ok()) return st.status();
      for (int64_t i = done; i < std::min(n, done + batch); ++i) {
        int64_t ts = kEnd - kSpan + static_cast<int64_t>(rng() % kSpan);
        int m = static_cast<int>(rng() % 12);
        int acct = static_cast<int>(rng() % 60);
        bool failed = rng() % 20 == 0;
        int64_t input = static_cast<int64_t>(500 + rng() % 60'000);
        if (rng() % 200 == 0) input += 280'000;
        int64_t output = static_cast<int64_t>(20 + rng() % 4000);
        int64_t reasoning = output / 3;
        int64_t read = static_cast<int64_t>(rng() % (input / 2 + 1));
        CPAMP_RETURN_IF_ERROR(st->Reset());
        CPAMP_RETURN_IF_ERROR(st->Bind(1, "bench-" + std::to_string(i)));
        CPAMP_RETURN_IF_ERROR(st->Bind(2, ts));
        CPAMP_RETURN_IF_ERROR(st->Bind(3, std::to_string(ts)));
        CPAMP_RETURN_IF_ERROR(st->Bind(4, models[m]));
        CPAMP_RETURN_IF_ERROR(st->Bind(5, m == 3 ? "claude-sonnet-4-5-20250929" : ""));
        CPAMP_RETURN_IF_ERROR(st->Bind(6, tiers[rng() % 4]));
        CPAMP_RETURN_IF_ERROR(st->Bind(7, m < 3 ? "codex" : m < 5 ? "claude" : "gemini"));
        CPAMP_RETURN_IF_ERROR(st->Bind(8, "auth-" + std::to_string(acct)));
        CPAMP_RETURN_IF_ERROR(st->Bind(9, "acct" + std::to_string(acct) + "@example.com"));
        CPAMP_RETURN_IF_ERROR(st->Bind(10, "sh" + std::to_string(acct)));
        CPAMP_RETURN_IF_ERROR(st->Bind(11, "key" + std::to_string(rng() % 24)));
        CPAMP_RETURN_IF_ERROR(st->Bind(12, "acct" + std::to_string(acct)));
        CPAMP_RETURN_IF_ERROR(st->Bind(13, input));
        CPAMP_RETURN_IF_ERROR(st->Bind(14, output));
        CPAMP_RETURN_IF_ERROR(st->Bind(15, reasoning));
        CPAMP_RETURN_IF_ERROR(st->Bind(16, read));
        CPAMP_RETURN_IF_ERROR(st->Bind(17, read));
        CPAMP_RETURN_IF_ERROR(st->Bind(18, failed ? 0 : input + output));
        CPAMP_RETURN_IF_ERROR(st->Bind(19, static_cast<int64_t>(200 + rng() % 30'000)));
        CPAMP_RETURN_IF_ERROR(st->Bind(20, static_cast<int64_t>(50 + rng() % 3'000)));
        CPAMP_RETURN_IF_ERROR(st->Bind(21, failed ? 1 : 0));
        CPAMP_RETURN_IF_ERROR(
            st->Bind(22, failed ? std::optional<int64_t>(429) : std::optional<int64_t>()));
        CPAMP_RETURN_IF_ERROR(st->Bind(23, failed ? std::optional<std::string>("rate limited")
                                                  : std::optional<std::string>()));
        CPAMP_RETURN_IF_ERROR(st->Run());
      }
      return Status::Ok();
    });
    CHECK(s.ok());
  }
}

struct Fixture {
  SystemClock clock;
  std::unique_ptr<db::Database> db;
  std::unique_ptr<analytics::Handlers> handlers;
  Fixture() {
    int64_t n = Events();
    std::filesystem::create_directories(CPAMP_BENCH_DATA_DIR);
    std::string path =
        std::string(CPAMP_BENCH_DATA_DIR) + "/usage-" + std::to_string(n) + "-7.sqlite";
    bool fresh = !std::filesystem::exists(path);
    auto opened = db::Database::Open(path, clock);
    CHECK(opened.ok());
    db = std::move(opened).value();
    if (fresh) Generate(*db, n, 7);
    // Catch up the rollup and the search projection (which has its own checkpoint).
    analytics::RollupWorker w(*db, clock);
    while (true) {
      auto r = w.RunOnce(1000);
      CHECK(r.ok());
      auto lag = db->Read([](db::Connection& c) -> Result<int64_t> {
        auto s = c.Prepare(
            "select coalesce((select max(id) from usage_events), 0) - coalesce((select "
            "last_event_id from analytics_rollup_state where name = 'search'), 0)");
        if (!s.ok()) return s.status();
        auto row = s->Step();
        if (!row.ok()) return row.status();
        return s->ColumnInt64(0);
      });
      CHECK(lag.ok());
      if (*r == 0 && *lag <= 0) break;
    }
    handlers = std::make_unique<analytics::Handlers>(*db, clock);
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

void RunAnalytics(benchmark::State& state, int64_t days, const std::string& extra) {
  Fixture& f = F();
  net::Request r;
  r.head.method = "POST";
  r.body = "{\"from_ms\":" + std::to_string(kEnd - days * analytics::kDayMs) +
           ",\"to_ms\":" + std::to_string(kEnd) + ",\"now_ms\":" + std::to_string(kEnd) +
           ",\"time_zone\":\"Asia/Shanghai\"" + extra +
           R"(,"include":{"summary":true,"summary_profile":"compact","summary_percentiles":true,
           "timeline":true,"model_stats":true,"model_share":true,"events_page":{"limit":100}}})";
  for (auto _ : state) {
    net::Response resp = f.handlers->MonitoringAnalytics(r);
    CHECK(resp.status == 200);
    benchmark::DoNotOptimize(resp.body);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  state.counters["peak_rss_mb"] = static_cast<double>(ru.ru_maxrss) / 1024.0;
}

void BM_DashboardSummary(benchmark::State& state) {
  Fixture& f = F();
  net::Request r;
  r.head.method = "GET";
  r.head.query = "today_start_ms=" + std::to_string(kEnd - analytics::kDayMs) +
                 "&now_ms=" + std::to_string(kEnd);
  for (auto _ : state) {
    net::Response resp = f.handlers->DashboardSummary(r);
    CHECK(resp.status == 200);
    benchmark::DoNotOptimize(resp.body);
  }
}
BENCHMARK(BM_DashboardSummary)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RunAnalytics, overview_1d, 1, "")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RunAnalytics, overview_30d, 30, "")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RunAnalytics, overview_90d, 90, "")->Unit(benchmark::kMillisecond);
constexpr char kModel[] = R"(,"filters":{"models":["gpt-5.4"]})";
constexpr char kSearch[] = R"(,"search_query":"acct7@")";
BENCHMARK_CAPTURE(RunAnalytics, overview_1d_model, 1, kModel)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RunAnalytics, overview_30d_model, 30, kModel)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RunAnalytics, overview_90d_model, 90, kModel)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RunAnalytics, overview_1d_search, 1, kSearch)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RunAnalytics, overview_30d_search, 30, kSearch)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RunAnalytics, overview_90d_search, 90, kSearch)->Unit(benchmark::kMillisecond);
// The filter cost alone: a query matching nothing, on the fast path and on the LIKE path (a
// query containing '%' is matched with the escaped LIKE of spec storage 6.1).
BENCHMARK_CAPTURE(RunAnalytics, search_30d_nomatch_fast, 30, R"(,"search_query":"zzqq")")
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(RunAnalytics, search_30d_nomatch_like, 30, R"(,"search_query":"zz%q")")
    ->Unit(benchmark::kMillisecond);

void BM_EventsPage(benchmark::State& state) {
  Fixture& f = F();
  net::Request r;
  r.head.method = "POST";
  r.body = "{\"from_ms\":" + std::to_string(kEnd - 30 * analytics::kDayMs) +
           ",\"to_ms\":" + std::to_string(kEnd) + R"(,"include":{"events_page":{"limit":500}}})";
  for (auto _ : state) {
    net::Response resp = f.handlers->MonitoringAnalytics(r);
    CHECK(resp.status == 200);
    benchmark::DoNotOptimize(resp.body);
  }
}
BENCHMARK(BM_EventsPage)->Unit(benchmark::kMillisecond);

// 20 credential targets (auth-index kind), lifetime totals + 10 recent requests each.
void BM_AccountHistory(benchmark::State& state) {
  Fixture& f = F();
  net::Request r;
  r.head.method = "POST";
  r.body = R"({"accounts":[)";
  for (int i = 0; i < 20; ++i) {
    r.body += (i ? "," : "") + std::string(R"({"row_key":"r)") + std::to_string(i) +
              R"(","auth_index":"auth-)" + std::to_string(i) + R"("})";
  }
  r.body += "]}";
  for (auto _ : state) {
    net::Response resp = f.handlers->AccountHistory(r);
    CHECK(resp.status == 200);
    benchmark::DoNotOptimize(resp.body);
  }
}
BENCHMARK(BM_AccountHistory)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
