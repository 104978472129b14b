// Tests of the analytics context: hand-computed golden values, rollup-vs-raw equivalence over
// random ranges/zones/filters, HTTP validation errors and retention.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "analytics/internal.h"
#include "base/json.h"
#include "base/strings.h"

namespace cpamp::analytics {
namespace {
namespace bj = boost::json;

struct Ev {
  int64_t ts;
  std::string model, resolved, tier;
  int64_t input, output, cached, read, creation, total;
  int64_t latency, ttft;
  bool failed;
  std::string auth = "a1";
};

class AnalyticsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("analytics_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto db = db::Database::Open((dir_ / "usage.sqlite").string(), clock_);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(db).value();
    pricing::PriceRecord p;
    p.base.prompt = 2;
    p.base.completion = 8;
    p.base.cache_read = 0.5;
    p.base.prompt_configured = p.base.completion_configured = p.base.cache_read_configured = true;
    prices_["m1"] = p;
    pricing::PriceRecord q = p;
    q.base.prompt = 1;
    q.context_tiers.push_back({100000, {}});
    q.context_tiers[0].price.prompt = 4;
    q.context_tiers[0].price.prompt_configured = true;
    prices_["m2"] = q;
    options_.prices = [this]() -> Result<pricing::PriceTable> { return prices_; };
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Insert(const std::vector<Ev>& evs) {
    Status s = db_->WriteTransaction([&](db::Connection& c) -> Status {
      auto st = c.Prepare(
          "insert into usage_events (event_hash, timestamp_ms, timestamp, model, resolved_model, "
          "service_tier, input_tokens, output_tokens, cached_tokens, cache_read_tokens, "
          "cache_creation_tokens, total_tokens, latency_ms, ttft_ms, failed, auth_index, "
          "source_hash, endpoint, created_at_ms) values (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,"
          "?13,?14,?15,?16,'sh','POST /v1/x',0)");
      if (!st.ok()) return st.status();
      for (const Ev& e : evs) {
        CPAMP_RETURN_IF_ERROR(st->Reset());
        CPAMP_RETURN_IF_ERROR(st->Bind(1, "h" + std::to_string(next_++)));
        CPAMP_RETURN_IF_ERROR(st->Bind(2, e.ts));
        CPAMP_RETURN_IF_ERROR(st->Bind(3, std::to_string(e.ts)));
        CPAMP_RETURN_IF_ERROR(st->Bind(4, e.model));
        CPAMP_RETURN_IF_ERROR(st->Bind(
            5, e.resolved.empty() ? std::optional<std::string>() : std::optional(e.resolved)));
        CPAMP_RETURN_IF_ERROR(st->Bind(6, e.tier));
        int64_t v[] = {e.input, e.output, e.cached, e.read, e.creation, e.total};
        for (int i = 0; i < 6; ++i) CPAMP_RETURN_IF_ERROR(st->Bind(7 + i, v[i]));
        CPAMP_RETURN_IF_ERROR(st->Bind(13, e.latency));
        CPAMP_RETURN_IF_ERROR(st->Bind(14, e.ttft));
        CPAMP_RETURN_IF_ERROR(st->Bind(15, e.failed ? 1 : 0));
        CPAMP_RETURN_IF_ERROR(st->Bind(16, e.auth));
        CPAMP_RETURN_IF_ERROR(st->Run());
      }
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s.message();
  }
  bj::object Post(Handlers& h, const std::string& body, int want = 200) {
    net::Request r;
    r.head.method = "POST";
    r.body = body;
    net::Response resp = h.MonitoringAnalytics(r);
    EXPECT_EQ(resp.status, want) << resp.body;
    auto v = json::ParseObject(resp.body);
    EXPECT_TRUE(v.ok());
    return v.ok() ? *v : bj::object();
  }
  void Exec(const std::string& sql) {
    Status s = db_->Write([&](db::Connection& c) { return c.Exec(sql); });
    ASSERT_TRUE(s.ok()) << s.message();
  }
  net::Response Get(Handlers& h, net::Response (Handlers::*fn)(const net::Request&),
                    const std::string& query) {
    net::Request r;
    r.head.method = "GET";
    r.head.query = query;
    return (h.*fn)(r);
  }
  net::Response PostTo(Handlers& h, net::Response (Handlers::*fn)(const net::Request&),
                       const std::string& body) {
    net::Request r;
    r.head.method = "POST";
    r.body = body;
    return (h.*fn)(r);
  }
  // Three events with full identity columns (api key, account, provider, file) for the grouped
  // sections and account history.
  void InsertIdentities() {
    Insert({{kT0 + 1000, "m1", "", "", 1000, 100, 0, 0, 0, 1100, 100, 10, false, "i1"},
            {kT0 + 2000, "m2", "", "", 10, 10, 0, 0, 0, 20, 300, 10, true, "i1"},
            {kT0 + 3'600'000, "m1", "", "", 500, 50, 0, 0, 0, 550, 200, 10, false, "i2"}});
    Exec(
        "update usage_events set api_key_hash = 'k1', account_snapshot = 'Alice@x', "
        "auth_file_snapshot = 'alice.json', auth_provider_snapshot = 'Codex', source = 'src-a', "
        "fail_status_code = case when failed then 429 end, fail_summary = case when failed then "
        "'rate limited' end where auth_index = 'i1'");
    Exec(
        "update usage_events set api_key_hash = 'k2', auth_label_snapshot = 'Bob', "
        "provider = 'gemini' where auth_index = 'i2'");
  }
  static constexpr int64_t kT0 = 1'749'945'600'000;  // 2025-06-15T00:00:00Z
  FakeClock clock_{1'750'000'000'000};
  std::filesystem::path dir_;
  std::unique_ptr<db::Database> db_;
  pricing::PriceTable prices_;
  Options options_;
  int next_ = 0;
};

constexpr int64_t kT0 = 1'749'945'600'000;  // 2025-06-15T00:00:00Z

std::string Range(int64_t from, int64_t to) {
  return "\"from_ms\":" + std::to_string(from) + ",\"to_ms\":" + std::to_string(to);
}

TEST_F(AnalyticsTest, SummaryTimelineAndCostMatchHandComputedValues) {
  Insert({{kT0 + 1000, "m1", "", "", 1000, 100, 200, 0, 0, 1100, 100, 10, false},
          {kT0 + 2000, "m1(high)", "", "", 500, 50, 0, 100, 0, 550, 300, 30, false},
          {kT0 + 3'600'000, "m2", "", "", 200000, 10, 0, 0, 0, 200010, 0, 0, true},
          {kT0 + 3'700'000, "m2", "", "flex", 1000, 1000, 0, 0, 0, 0, 200, 20, false}});
  Handlers h(*db_, clock_, options_);
  bj::object r = Post(h, R"({"from_ms":1749945600000,"to_ms":1749952800000,"time_zone":"UTC",
    "include":{"summary":true,"timeline":true,"model_stats":true,"events_page":{"limit":2}}})");
  const bj::object& s = r.at("summary").as_object();
  EXPECT_EQ(s.at("total_calls").as_int64(), 4);
  EXPECT_EQ(s.at("failure_calls").as_int64(), 1);
  EXPECT_EQ(s.at("input_tokens").as_int64(), 1000 + 500 + 200000 + 1000);
  EXPECT_EQ(s.at("cached_tokens").as_int64(), 200);
  EXPECT_EQ(s.at("cache_read_tokens").as_int64(), 100);
  EXPECT_EQ(s.at("zero_token_calls").as_int64(), 1);
  // m1: one aggregate row (m1 and m1(high) share analytics m1 but differ in requested model):
  //  row m1: prompt (1000-200)*2 + cached 200 * cacheReadPrice... cache(legacy)=0 → cached*0 +
  //  read 0; output 100*8. row m1(high): prompt (500-100)*2 + read 100*0.5 + out 50*8.
  double m1 = ((800 * 2.0) + 0 + 0 + 100 * 8.0) / 1e6 + ((400 * 2.0) + 100 * 0.5 + 50 * 8.0) / 1e6;
  // m2 long row: band 100000 → tier prompt 4: 200000*4 + 10*8. flex row: (1000*1 + 1000*8)*0.5.
  double m2 = (200000 * 4.0 + 10 * 8.0) / 1e6 + (1000 * 1.0 + 1000 * 8.0) / 1e6 * 0.5;
  EXPECT_NEAR(s.at("total_cost").to_number<double>(), m1 + m2, 1e-12);
  // Latencies 100, 300, 200 → nearest rank ceil(0.95*3)=3 → 300.
  EXPECT_EQ(s.at("p95_latency_ms").as_int64(), 300);
  EXPECT_DOUBLE_EQ(s.at("average_latency_ms").to_number<double>(), 200.0);
  const bj::array& tl = r.at("timeline").as_array();
  ASSERT_EQ(tl.size(), 2u);
  EXPECT_EQ(tl[0].at("calls").as_int64(), 2);
  EXPECT_EQ(tl[1].at("label").as_string(), "01:00");
  const bj::object& ev = r.at("events").as_object();
  EXPECT_EQ(ev.at("items").as_array().size(), 2u);
  EXPECT_TRUE(ev.at("has_more").as_bool());
  EXPECT_EQ(ev.at("total_count").as_int64(), 4);
  EXPECT_EQ(ev.at("next_before_ms").as_int64(), kT0 + 3'600'000);
}

TEST_F(AnalyticsTest, BucketsFollowZonesIncludingHalfHourAndDst) {
  auto ny = internal::Zone::Load("America/New_York");
  ASSERT_TRUE(ny.ok());
  // 2025-11-02 fall back: local 01:00 happens twice. Range 04:00Z..08:00Z.
  int64_t from = 1'762'056'000'000;  // 2025-11-02T04:00:00Z = 00:00 EDT
  internal::Buckets b(*ny, from, from + 4 * kHourMs, false);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b.Label(0), "00:00");
  EXPECT_EQ(b.Label(1), "01:00");
  EXPECT_EQ(b.Label(2), "01:00");
  EXPECT_EQ(b.Label(3), "02:00");
  auto kol = internal::Zone::Load("Asia/Kolkata");
  internal::Buckets k(*kol, kT0, kT0 + 2 * kHourMs, false);
  EXPECT_EQ(k.Start(0), kT0 - 30 * 60'000);
  EXPECT_EQ(k.Label(0), "05:00");
  auto sh = internal::Zone::Load("Asia/Shanghai");
  internal::Buckets d(*sh, kT0, kT0 + 2 * kDayMs, true);
  EXPECT_EQ(d.Start(0), kT0 - 8 * kHourMs);
  EXPECT_EQ(d.Label(0), "06/15");
  EXPECT_FALSE(internal::Zone::Load("Mars/Base").ok());
}

TEST_F(AnalyticsTest, RollupAndRawAnswersAreIdentical) {
  std::mt19937_64 rng(7);
  std::vector<Ev> evs;
  const char* models[] = {"m1", "m2", "m3(high)", "m3"};
  const char* tiers[] = {"", "priority", "flex"};
  for (int i = 0; i < 3000; ++i) {
    Ev e{kT0 + static_cast<int64_t>(rng() % (3 * kDayMs)),
         models[rng() % 4],
         "",
         tiers[rng() % 3],
         static_cast<int64_t>(rng() % 300000),
         static_cast<int64_t>(rng() % 2000),
         static_cast<int64_t>(rng() % 100),
         static_cast<int64_t>(rng() % 50),
         0,
         static_cast<int64_t>(rng() % 5000),
         static_cast<int64_t>(rng() % 9000),
         static_cast<int64_t>(rng() % 900),
         rng() % 20 == 0};
    evs.push_back(e);
  }
  Insert(evs);
  RollupWorker w(*db_, clock_, options_.prices);
  auto n = w.RunOnce(100);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3000);
  // Events after the checkpoint come from raw rows.
  Insert({{kT0 + 5 * kHourMs + 5, "m1", "", "", 10, 10, 0, 0, 0, 20, 5, 1, false}});
  Options raw_opts = options_;
  raw_opts.rollups_enabled = false;
  Handlers rolled(*db_, clock_, options_), raw(*db_, clock_, raw_opts);
  const char* zones[] = {"UTC", "Asia/Shanghai", "Asia/Kolkata", "America/New_York"};
  for (int i = 0; i < 12; ++i) {
    int64_t a = kT0 + static_cast<int64_t>(rng() % (2 * kDayMs));
    int64_t b = a + 1 + static_cast<int64_t>(rng() % kDayMs);
    std::string filters = i % 3 == 0   ? R"("filters":{"models":["m3"]},)"
                          : i % 3 == 1 ? R"("filters":{"include_failed":false},)"
                                       : "";
    std::string body = "{\"from_ms\":" + std::to_string(a) + ",\"to_ms\":" + std::to_string(b) +
                       ",\"now_ms\":" + std::to_string(b) + ",\"time_zone\":\"" + zones[i % 4] +
                       "\"," + filters +
                       R"("include":{"summary":true,"timeline":true,"model_stats":true,
                       "hourly_distribution":true,"granularity":")" +
                       (i % 2 ? "day" : "hour") + "\"}}";
    bj::object x = Post(rolled, body), y = Post(raw, body);
    x.erase("generated_at_ms");
    y.erase("generated_at_ms");
    EXPECT_EQ(json::Serialize(x), json::Serialize(y)) << body;
  }
}

TEST_F(AnalyticsTest, EveryValidationErrorHasItsStatusAndCode) {
  Handlers h(*db_, clock_, options_);
  struct Case {
    net::Response resp;
    int status;
    std::string code, error;
  };
  auto dash = [&](const std::string& q) { return Get(h, &Handlers::DashboardSummary, q); };
  auto mon = [&](const std::string& b) { return PostTo(h, &Handlers::MonitoringAnalytics, b); };
  auto snap = [&](const std::string& q) { return Get(h, &Handlers::HeaderSnapshots, q); };
  auto hist = [&](const std::string& b) { return PostTo(h, &Handlers::AccountHistory, b); };
  std::string many = R"({"accounts":[)";
  for (int i = 0; i < 201; ++i) {
    many += (i ? "," : "") + std::string(R"({"row_key":"r)") + std::to_string(i) +
            R"(","auth_index":"x"})";
  }
  many += "]}";
  std::vector<Case> cases = {
      {dash(""), 400, "request_failed", "today_start_ms is required"},
      {dash("today_start_ms=abc"), 400, "request_failed",
       "today_start_ms must be a positive integer"},
      {dash("today_start_ms=-5"), 400, "request_failed",
       "today_start_ms must be a positive integer"},
      {dash("today_start_ms=1000&now_ms=x"), 400, "request_failed", "now_ms must be an integer"},
      {dash("today_start_ms=1000&top_models=x"), 400, "request_failed",
       "top_models must be an integer"},
      {dash("today_start_ms=1000&recent_failures=x"), 400, "request_failed",
       "recent_failures must be an integer"},
      {dash("today_start_ms=1000&now_ms=5"), 500, "request_failed",
       "now_ms must not be before today_start_ms"},
      {mon("{"), 400, "request_failed", ""},
      {mon(R"({"from_ms":5,"to_ms":5})"), 400, "request_failed",
       "from_ms and to_ms are required and from_ms must be less than to_ms"},
      {mon(R"({"to_ms":5})"), 400, "request_failed",
       "from_ms and to_ms are required and from_ms must be less than to_ms"},
      {mon(R"({"from_ms":1,"to_ms":5,"time_zone":"Nope/Zone"})"), 500, "invalid_time_zone",
       "invalid time zone: Nope/Zone"},
      {mon(R"({"from_ms":1,"to_ms":5,"include":{"events_page":{"limit":50001}}})"), 400,
       "request_failed", "events_page.limit must be less than or equal to 50000"},
      {snap("days=-1"), 400, "request_failed", "days must be a non-negative integer"},
      {snap("limit=abc"), 400, "request_failed", "limit must be a non-negative integer"},
      {hist("[]"), 400, "request_failed", ""},
      {hist(R"({"accounts":[]})"), 400, "request_failed", "accounts are required"},
      {hist(R"({"accounts":[{"row_key":"a","auth_index":"1"}],"extra":1})"), 400, "request_failed",
       "unknown field \"extra\""},
      {hist(R"({"accounts":[{"row_key":"a","auth_index":"1","bogus":"x"}]})"), 400,
       "request_failed", "unknown field \"bogus\""},
      {hist(R"({"accounts":[{"auth_index":"1"}]})"), 400, "request_failed", "row_key is required"},
      {hist(R"({"accounts":[{"row_key":"a","auth_index":"1"},{"row_key":"a","auth_index":"2"}]})"),
       400, "request_failed", "duplicate row_key: a"},
      {hist(R"({"accounts":[{"row_key":"a"}]})"), 400, "request_failed",
       "account a needs at least one target field"},
      {hist(R"({"accounts":[{"row_key":"a","auth_file_snapshot":"f.json"}]})"), 400,
       "request_failed", "auth_provider_snapshot is required for auth-file account a"},
      {hist(many), 400, "request_failed", "at most 200 accounts are allowed"},
      {h.MethodNotAllowed(net::Request{}), 405, "method_not_allowed", "method not allowed"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    EXPECT_EQ(c.resp.status, c.status) << i << " " << c.resp.body;
    auto body = json::ParseObject(c.resp.body);
    ASSERT_TRUE(body.ok()) << i;
    EXPECT_EQ(body->at("code").as_string(), c.code) << i;
    if (!c.error.empty()) {
      EXPECT_EQ(body->at("error").as_string(), c.error) << i;
    }
  }
}

TEST_F(AnalyticsTest, DashboardCostAndRollingRateAreExact) {
  // now = T0 + 2h; the rolling window is [T0 + 1h30m, T0 + 2h).
  Insert({{kT0 + 1000, "m1", "", "", 1000, 100, 200, 0, 0, 1100, 100, 10, false},
          {kT0 + 100 * 60'000, "m2", "", "", 200000, 10, 0, 0, 0, 200010, 0, 0, false},
          {kT0 + 110 * 60'000, "m1", "", "", 30, 30, 0, 0, 0, 60, 50, 5, true},
          {kT0 + 121 * 60'000, "m1", "", "", 9, 9, 0, 0, 0, 18, 1, 1, false}});
  Handlers h(*db_, clock_, options_);
  net::Response resp =
      Get(h, &Handlers::DashboardSummary,
          "today_start_ms=" + std::to_string(kT0) + "&now_ms=" + std::to_string(kT0 + 2 * kHourMs));
  ASSERT_EQ(resp.status, 200) << resp.body;
  auto o = json::ParseObject(resp.body);
  ASSERT_TRUE(o.ok());
  const bj::object& today = o->at("today").as_object();
  EXPECT_EQ(today.at("total_calls").as_int64(), 3);  // the event at 2h01 is after now
  double cost = ((1000 - 200) * 2.0 + 100 * 8.0) / 1e6 + (200000 * 4.0 + 10 * 8.0) / 1e6 +
                (30 * 2.0 + 30 * 8.0) / 1e6;
  EXPECT_NEAR(today.at("total_cost").to_number<double>(), cost, 1e-12);
  const bj::object& roll = o->at("rolling_30m").as_object();
  EXPECT_EQ(roll.at("total_calls").as_int64(), 2);
  EXPECT_EQ(roll.at("total_tokens").as_int64(), 200010 + 60);
  EXPECT_DOUBLE_EQ(roll.at("rpm").to_number<double>(), 2 / 30.0);
  EXPECT_DOUBLE_EQ(roll.at("tpm").to_number<double>(), 200070 / 30.0);
  EXPECT_EQ(o->at("window").at("rolling_30m_start_ms").as_int64(), kT0 + 90 * 60'000);
  const bj::array& rank = o->at("model_cost_rank").as_array();
  ASSERT_EQ(rank.size(), 2u);
  EXPECT_EQ(rank[0].at("model").as_string(), "m2");
  EXPECT_DOUBLE_EQ(rank[0].at("cost_share").to_number<double>(), 1.0);
  // One failing credential: every call of it counts, the last failure is its last_seen.
  const bj::array& fs = o->at("failure_sources").as_array();
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].at("calls").as_int64(), 3);
  EXPECT_EQ(fs[0].at("failures").as_int64(), 1);
  EXPECT_EQ(fs[0].at("last_seen_ms").as_int64(), kT0 + 110 * 60'000);
  EXPECT_EQ(fs[0].at("tone").as_string(), "warn");
}

TEST_F(AnalyticsTest, ShanghaiBucketsEventsAndMonitoringRates) {
  // 15:00Z = 23:00 Shanghai on 06-15; 17:00Z = 01:00 on 06-16.
  Insert({{kT0 + 15 * kHourMs, "m1", "", "", 10, 10, 0, 0, 0, 20, 100, 10, false},
          {kT0 + 17 * kHourMs, "m1", "", "", 30, 30, 0, 0, 0, 60, 100, 10, false},
          {kT0 + 17 * kHourMs + 60'000, "m1", "", "", 5, 5, 0, 0, 0, 10, 100, 10, true}});
  Handlers h(*db_, clock_, options_);
  int64_t from = kT0 - 8 * kHourMs, to = from + 2 * kDayMs;  // local 06-15 00:00 .. 06-17 00:00
  bj::object r = Post(h, "{" + Range(from, to) +
                             ",\"now_ms\":" + std::to_string(kT0 + 17 * kHourMs + 120'000) +
                             R"(,"time_zone":"Asia/Shanghai","include":{"summary":true,
      "timeline":true,"hourly_distribution":true,"granularity":"day","events_page":{"limit":2}}})");
  const bj::array& tl = r.at("timeline").as_array();
  ASSERT_EQ(tl.size(), 2u);
  EXPECT_EQ(tl[0].at("label").as_string(), "06/15");
  EXPECT_EQ(tl[0].at("bucket_ms").as_int64(), from);
  EXPECT_EQ(tl[0].at("calls").as_int64(), 1);
  EXPECT_EQ(tl[1].at("label").as_string(), "06/16");
  EXPECT_EQ(tl[1].at("calls").as_int64(), 2);
  const bj::array& hd = r.at("hourly_distribution").as_array();
  ASSERT_EQ(hd.size(), 2u);
  EXPECT_EQ(hd[0].at("hour").as_int64(), 1);
  EXPECT_EQ(hd[0].at("calls").as_int64(), 2);
  EXPECT_EQ(hd[1].at("hour").as_int64(), 23);
  const bj::object& s = r.at("summary").as_object();
  EXPECT_DOUBLE_EQ(s.at("avg_daily_requests").to_number<double>(), 1.5);  // 3 calls, 2 local dates
  EXPECT_DOUBLE_EQ(s.at("rpm_30m").to_number<double>(), 2 / 30.0);
  EXPECT_DOUBLE_EQ(s.at("tpm_30m").to_number<double>(), 70 / 30.0);
  const bj::object& ev = r.at("events").as_object();
  const bj::array& items = ev.at("items").as_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].at("timestamp_ms").as_int64(), kT0 + 17 * kHourMs + 60'000);
  EXPECT_TRUE(items[0].at("failed").as_bool());
  EXPECT_EQ(ev.at("total_count").as_int64(), 3);
  EXPECT_TRUE(ev.at("has_more").as_bool());
  // The second page from the cursor holds the remaining (oldest) event.
  bj::object r2 = Post(h, "{" + Range(from, to) +
                              R"(,"time_zone":"Asia/Shanghai","include":{"events_page":{"limit":2,
      "before_ms":)" + std::to_string(ev.at("next_before_ms").as_int64()) +
                              ",\"before_id\":" +
                              std::to_string(ev.at("next_before_id").as_int64()) + "}}}");
  const bj::array& page2 = r2.at("events").at("items").as_array();
  ASSERT_EQ(page2.size(), 1u);
  EXPECT_EQ(page2[0].at("timestamp_ms").as_int64(), kT0 + 15 * kHourMs);
  EXPECT_FALSE(r2.at("events").at("has_more").as_bool());
}

TEST_F(AnalyticsTest, EntitySectionsGroupByAccountKeyAndCredential) {
  InsertIdentities();
  Handlers h(*db_, clock_, options_);
  bj::object r = Post(h, "{" + Range(kT0, kT0 + 2 * kHourMs) + R"(,"include":{
      "account_stats":true,"api_key_stats":true,"credential_stats":true,"credential_timeline":true,
      "api_key_timeline":true,"granularity":"hour",
      "drilldown_preview":{"from_ms":)" +
                             std::to_string(kT0) + ",\"to_ms\":" + std::to_string(kT0 + kHourMs) +
                             ",\"limit\":1}}}");
  const bj::array& acc = r.at("account_stats").as_array();
  ASSERT_EQ(acc.size(), 2u);
  EXPECT_EQ(acc[0].at("account").as_string(), "Alice@x");
  EXPECT_EQ(acc[0].at("calls").as_int64(), 2);
  EXPECT_EQ(acc[0].at("failure_calls").as_int64(), 1);
  EXPECT_EQ(acc[0].at("last_seen_ms").as_int64(), kT0 + 2000);
  EXPECT_EQ(acc[0].at("auth_indices").as_array().size(), 1u);
  EXPECT_EQ(acc[0].at("models").as_array().size(), 2u);
  EXPECT_NEAR(acc[0].at("cost").to_number<double>(),
              (1000 * 2.0 + 100 * 8.0) / 1e6 + (10 * 1.0 + 10 * 8.0) / 1e6, 1e-12);
  EXPECT_EQ(acc[1].at("account").as_string(), "Bob");  // label when no account snapshot
  const bj::array& keys = r.at("api_key_stats").as_array();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].at("api_key_hash").as_string(), "k1");
  const bj::array& ctx = keys[0].at("contexts").as_array();
  ASSERT_EQ(ctx.size(), 1u);
  EXPECT_EQ(ctx[0].at("context_key").as_string(), "sh|i1|src-a|Codex");
  EXPECT_EQ(keys[1].at("contexts").at(0).at("provider").as_string(), "gemini");
  const bj::array& cred = r.at("credential_stats").as_array();
  ASSERT_EQ(cred.size(), 2u);
  EXPECT_EQ(cred[0].at("credential_id").as_string(), "alice.json");
  EXPECT_EQ(cred[1].at("credential_id").as_string(), "i2");  // no file → auth index
  const bj::array& ct = r.at("credential_timeline").as_array();
  ASSERT_EQ(ct.size(), 2u);
  EXPECT_EQ(ct[0].at("bucket_ms").as_int64(), kT0);
  EXPECT_EQ(ct[0].at("calls").as_int64(), 2);
  EXPECT_EQ(ct[1].at("label").as_string(), "01:00");
  const bj::array& kt = r.at("api_key_timeline").as_array();
  ASSERT_EQ(kt.size(), 2u);
  EXPECT_EQ(kt[1].at("api_key_hash").as_string(), "k2");
  const bj::object& dp = r.at("drilldown_preview").as_object();
  ASSERT_EQ(dp.at("items").as_array().size(), 1u);
  EXPECT_EQ(dp.at("items").at(0).at("timestamp_ms").as_int64(), kT0 + 2000);
  EXPECT_EQ(dp.at("total_count").as_int64(), 1);
  EXPECT_TRUE(dp.at("has_more").as_bool());
}

TEST_F(AnalyticsTest, AccountHistoryMatchesTargetsByIdentityKey) {
  InsertIdentities();
  Handlers h(*db_, clock_, options_);
  net::Response resp = PostTo(h, &Handlers::AccountHistory, R"({"accounts":[
      {"row_key":"a","auth_file_snapshot":"alice.json","auth_provider_snapshot":"codex",
       "auth_index":"i1"},
      {"row_key":"b","auth_label_snapshot":"bob"},
      {"row_key":"c","auth_index":"nobody"}]})");
  ASSERT_EQ(resp.status, 200) << resp.body;
  auto o = json::ParseObject(resp.body);
  ASSERT_TRUE(o.ok());
  const bj::array& items = o->at("items").as_array();
  ASSERT_EQ(items.size(), 3u);
  const bj::object& a = items[0].as_object();
  // Key: kind file-index, then upper-hex provider, file, auth index.
  EXPECT_EQ(a.at("account_key").as_string(),
            "usage-account-history:2:file-index:" + std::string("636F646578") + ":" +
                "616C6963652E6A736F6E" + ":" + "6931");
  EXPECT_TRUE(a.at("matched").as_bool());
  EXPECT_EQ(a.at("total_requests").as_int64(), 2);
  EXPECT_EQ(a.at("failure_calls").as_int64(), 1);
  EXPECT_DOUBLE_EQ(a.at("success_rate").to_number<double>(), 0.5);
  EXPECT_EQ(a.at("first_seen_ms").as_int64(), kT0 + 1000);
  EXPECT_EQ(a.at("last_seen_ms").as_int64(), kT0 + 2000);
  EXPECT_EQ(a.at("latest_request").at("fail_status_code").as_int64(), 429);
  EXPECT_EQ(a.at("recent_requests").as_array().size(), 2u);
  EXPECT_EQ(a.at("sync_status").as_string(), "ready");
  const bj::object& b = items[1].as_object();
  EXPECT_EQ(b.at("account_key").as_string(), "usage-account-history:2:label:626F62");
  EXPECT_EQ(b.at("total_requests").as_int64(), 1);
  EXPECT_EQ(b.at("total_tokens").as_int64(), 550);
  const bj::object& c = items[2].as_object();
  EXPECT_FALSE(c.at("matched").as_bool());
  EXPECT_TRUE(c.at("success_rate").is_null());
  EXPECT_TRUE(c.at("first_seen_ms").is_null());
  EXPECT_EQ(c.at("sync_status").as_string(), "empty");
  EXPECT_EQ(o->at("checkpoint").at("latest_id").as_int64(), 3);
  EXPECT_EQ(o->at("checkpoint").at("pending").as_int64(), 3);
  // Only auth-index-pinned targets: the indexed prefilter path gives the same answer.
  net::Response pinned = PostTo(h, &Handlers::AccountHistory, R"({"accounts":[
      {"row_key":"a","auth_file_snapshot":"alice.json","auth_provider_snapshot":"codex",
       "auth_index":"i1"},{"row_key":"c","auth_index":"i2"}]})");
  ASSERT_EQ(pinned.status, 200) << pinned.body;
  auto p = json::ParseObject(pinned.body);
  ASSERT_TRUE(p.ok());
  bj::object pa = p->at("items").at(0).as_object();
  bj::object fa = a;
  EXPECT_EQ(json::Serialize(pa), json::Serialize(fa));
  EXPECT_EQ(p->at("items").at(1).at("total_requests").as_int64(), 1);
  EXPECT_EQ(p->at("checkpoint").at("latest_id").as_int64(), 3);
  // catch_up folds the pending events into the rollup first.
  resp = PostTo(h, &Handlers::AccountHistory,
                R"({"accounts":[{"row_key":"b","auth_label_snapshot":"Bob"}],"catch_up":true})");
  ASSERT_EQ(resp.status, 200) << resp.body;
  o = json::ParseObject(resp.body);
  EXPECT_EQ(o->at("checkpoint").at("processed").as_int64(), 3);
  EXPECT_EQ(o->at("checkpoint").at("pending").as_int64(), 0);
}

TEST_F(AnalyticsTest, SearchEqualsLikeSemanticsWithAndWithoutProjection) {
  InsertIdentities();
  Insert({{kT0 + 5000, "GPT-5(high)", "", "Priority", 1, 1, 0, 0, 0, 2, 1, 1, false, "I_9%"}});
  Handlers h(*db_, clock_, options_);
  const char* queries[] = {"alice", "ALICE@X", "gpt-5(",   "post /v1", "i_9", "i_",
                           "%",     "9%",      "priority", "k1",       "zzz", "sh",
                           "src-a", "codex",   "rate lim", "h1"};
  auto check_all = [&](const std::string& state) {
    for (const char* q : queries) {
      // Reference: lower(col) LIKE '%q%' with q escaped, over every populated column.
      std::string esc;
      for (char c : ToLower(q)) {
        if (c == '%' || c == '_' || c == '\\') esc.push_back('\\');
        esc.push_back(c);
      }
      std::string cond;
      for (const char* col :
           {"event_hash", "model", "endpoint", "source", "source_hash", "api_key_hash",
            "auth_index", "account_snapshot", "auth_label_snapshot", "auth_file_snapshot",
            "auth_provider_snapshot", "service_tier", "fail_summary"}) {
        cond += std::string(cond.empty() ? "" : " or ") + "lower(" + col + ") like '%" + esc +
                "%' escape '\\'";
      }
      auto want = db_->Read([&](db::Connection& c) -> Result<int64_t> {
        CPAMP_ASSIGN_OR_RETURN(db::Statement s,
                               c.Prepare("select count(*) from usage_events where " + cond));
        CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
        return row ? s.ColumnInt64(0) : -1;
      });
      ASSERT_TRUE(want.ok());
      bj::object r = Post(h, "{" + Range(kT0, kT0 + kDayMs) +
                                 ",\"search_query\":" + json::Serialize(bj::value(q)) +
                                 R"(,"include":{"summary":true,"summary_profile":"compact",
          "events_page":{"limit":10}}})");
      EXPECT_EQ(r.at("summary").at("total_calls").as_int64(), *want) << state << " " << q;
      EXPECT_EQ(static_cast<int64_t>(r.at("events").at("items").as_array().size()), *want)
          << state << " " << q;
    }
    // search_api_key_hash is ORed in.
    bj::object r = Post(h, "{" + Range(kT0, kT0 + kDayMs) +
                               R"(,"search_query":"bob","search_api_key_hash":"k1",
        "include":{"summary":true,"summary_profile":"compact"}})");
    EXPECT_EQ(r.at("summary").at("total_calls").as_int64(), 3) << state;
  };
  check_all("no projection");
  RollupWorker w(*db_, clock_, options_.prices);
  ASSERT_TRUE(w.RunOnce().ok());
  EXPECT_EQ(*db_->CountRows("analytics_search_rows"), 4);
  check_all("projection");
  // An event past the projection checkpoint is matched directly.
  Insert({{kT0 + 6000, "m1", "", "", 1, 1, 0, 0, 0, 2, 1, 1, false, "alice-tail"}});
  check_all("projection + tail");
}

TEST_F(AnalyticsTest, DashboardCountsToday) {
  Insert({{kT0 + 1000, "m1", "", "", 1000, 100, 0, 0, 0, 1100, 100, 10, false},
          {kT0 + 700'000, "m1", "", "", 10, 10, 0, 0, 0, 20, 100, 10, true, "a2"}});
  Handlers h(*db_, clock_, options_);
  net::Request r;
  r.head.method = "GET";
  r.head.query =
      "today_start_ms=" + std::to_string(kT0) + "&now_ms=" + std::to_string(kT0 + kHourMs);
  net::Response resp = h.DashboardSummary(r);
  ASSERT_EQ(resp.status, 200) << resp.body;
  auto o = json::ParseObject(resp.body);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->at("today").at("total_calls").as_int64(), 2);
  EXPECT_EQ(o->at("traffic_timeline").as_array().size(), 24u);
  const bj::array& pts = o->at("today_request_health_timeline").at("points").as_array();
  ASSERT_EQ(pts.size(), 144u);
  EXPECT_EQ(pts[0].at("tone").as_string(), "good");
  EXPECT_EQ(pts[1].at("tone").as_string(), "bad");
  EXPECT_EQ(pts[7].at("tone").as_string(), "future");
  EXPECT_EQ(o->at("rolling_30m").at("total_calls").as_int64(), 0);
  EXPECT_EQ(o->at("recent_failures").as_array().size(), 1u);
}

TEST_F(AnalyticsTest, RetentionKeepsLongTermTotals) {
  Insert({{kT0, "m1", "", "", 1000, 100, 0, 0, 0, 1100, 100, 10, false},
          {kT0 + 40 * kDayMs, "m1", "", "", 10, 10, 0, 0, 0, 20, 100, 10, false}});
  clock_.Advance(kT0 + 41 * kDayMs - clock_.NowMs());
  RollupWorker w(*db_, clock_, options_.prices);
  ASSERT_TRUE(w.RunOnce().ok());
  Handlers h(*db_, clock_, options_);
  std::string body =
      "{\"from_ms\":" + std::to_string(kT0) + ",\"to_ms\":" + std::to_string(kT0 + 41 * kDayMs) +
      R"(,"include":{"summary":true,"summary_profile":"compact","summary_percentiles":true}})";
  std::string before = json::Serialize(Post(h, body).at("summary"));
  RetentionWorker rw(*db_, clock_, 30);
  auto n = rw.RunOnce();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(*db_->CountRows("usage_events"), 1);
  EXPECT_EQ(*db_->CountRows("analytics_search_rows"), 1);  // pruned with its event
  bj::object after = Post(h, body);
  EXPECT_EQ(json::Serialize(after.at("summary")), before);
}

}  // namespace
}  // namespace cpamp::analytics
