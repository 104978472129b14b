// Tests of the analytics context: hand-computed golden values, rollup-vs-raw equivalence over
// random ranges/zones/filters, HTTP validation errors and retention.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "analytics/internal.h"
#include "base/json.h"

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
        CPAMP_RETURN_IF_ERROR(st->Bind(5, e.resolved.empty() ? std::optional<std::string>()
                                                             : std::optional(e.resolved)));
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
  FakeClock clock_{1'750'000'000'000};
  std::filesystem::path dir_;
  std::unique_ptr<db::Database> db_;
  pricing::PriceTable prices_;
  Options options_;
  int next_ = 0;
};

constexpr int64_t kT0 = 1'749'945'600'000;  // 2025-06-15T00:00:00Z

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
  EXPECT_NEAR(s.at("total_cost").as_double(), m1 + m2, 1e-12);
  // Latencies 100, 300, 200 → nearest rank ceil(0.95*3)=3 → 300.
  EXPECT_EQ(s.at("p95_latency_ms").as_int64(), 300);
  EXPECT_DOUBLE_EQ(s.at("average_latency_ms").as_double(), 200.0);
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
    Ev e{kT0 + static_cast<int64_t>(rng() % (3 * kDayMs)), models[rng() % 4], "", tiers[rng() % 3],
         static_cast<int64_t>(rng() % 300000), static_cast<int64_t>(rng() % 2000),
         static_cast<int64_t>(rng() % 100), static_cast<int64_t>(rng() % 50), 0,
         static_cast<int64_t>(rng() % 5000), static_cast<int64_t>(rng() % 9000),
         static_cast<int64_t>(rng() % 900), rng() % 20 == 0};
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
    std::string filters = i % 3 == 0 ? R"("filters":{"models":["m3"]},)"
                          : i % 3 == 1 ? R"("filters":{"include_failed":false},)" : "";
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

TEST_F(AnalyticsTest, ValidationErrors) {
  Handlers h(*db_, clock_, options_);
  bj::object e = Post(h, R"({"from_ms":5,"to_ms":5})", 400);
  EXPECT_EQ(e.at("error").as_string(),
            "from_ms and to_ms are required and from_ms must be less than to_ms");
  e = Post(h, R"({"from_ms":1,"to_ms":5,"time_zone":"Nope/Zone"})", 500);
  EXPECT_EQ(e.at("code").as_string(), "invalid_time_zone");
  e = Post(h, R"({"from_ms":1,"to_ms":5,"include":{"events_page":{"limit":50001}}})", 400);
  EXPECT_EQ(e.at("error").as_string(), "events_page.limit must be less than or equal to 50000");
  net::Request r;
  r.head.method = "GET";
  net::Response resp = h.DashboardSummary(r);
  EXPECT_EQ(resp.status, 400);
  EXPECT_NE(resp.body.find("today_start_ms is required"), std::string::npos);
  r.head.query = "today_start_ms=abc";
  EXPECT_EQ(h.DashboardSummary(r).status, 400);
  r.head.query = "today_start_ms=1000&now_ms=5";
  EXPECT_EQ(h.DashboardSummary(r).status, 500);
}

TEST_F(AnalyticsTest, DashboardCountsToday) {
  Insert({{kT0 + 1000, "m1", "", "", 1000, 100, 0, 0, 0, 1100, 100, 10, false},
          {kT0 + 700'000, "m1", "", "", 10, 10, 0, 0, 0, 20, 100, 10, true, "a2"}});
  Handlers h(*db_, clock_, options_);
  net::Request r;
  r.head.method = "GET";
  r.head.query = "today_start_ms=" + std::to_string(kT0) + "&now_ms=" + std::to_string(kT0 + kHourMs);
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
  std::string body = "{\"from_ms\":" + std::to_string(kT0) + ",\"to_ms\":" +
                     std::to_string(kT0 + 41 * kDayMs) + R"(,"include":{"summary":true,"summary_profile":"compact","summary_percentiles":true}})";
  std::string before = json::Serialize(Post(h, body).at("summary"));
  RetentionWorker rw(*db_, clock_, 30);
  auto n = rw.RunOnce();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(*db_->CountRows("usage_events"), 1);
  bj::object after = Post(h, body);
  EXPECT_EQ(json::Serialize(after.at("summary")), before);
}

}  // namespace
}  // namespace cpamp::analytics
