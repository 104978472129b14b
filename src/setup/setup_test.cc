#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>

#include "base/json.h"
#include "setup/setup.h"

namespace cpamp::setup {
namespace {
namespace bj = boost::json;

TEST(BearerToken, SchemeIsCaseInsensitiveAndTokenTrimmed) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("bEaReR   abc  "), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  EXPECT_EQ(BearerToken("abc"), "");
  EXPECT_EQ(BearerToken(""), "");
}

TEST(ManagerConfig, JsonOmitsZeroValuesAndForcesExternalServiceOff) {
  config::Config cfg;
  ManagerConfig mc = DefaultManagerConfig(cfg);
  bj::object o = ManagerConfigToJson(mc);
  EXPECT_TRUE(o["cpaConnection"].as_object().empty());
  EXPECT_EQ(o["externalUsageService"], (bj::object{{"enabled", false}}));
  auto& col = o["collector"].as_object();
  EXPECT_EQ(col["enabled"], true);
  EXPECT_EQ(col["collectorMode"], "auto");
  EXPECT_EQ(col["batchSize"], 100);
  EXPECT_FALSE(col.contains("tlsSkipVerify"));
  EXPECT_FALSE(o.contains("updatedAtMs"));
}

TEST(ManagerConfig, DecodingIgnoresWrongTypesAndKeepsBase) {
  config::Config cfg;
  auto parsed = json::ParseObject(R"({"cpaConnection":{"cpaBaseUrl":"http://cpa:8317",
      "managementKey":7},"collector":{"enabled":false,"batchSize":"x","pollIntervalMs":250,
      "collectorMode":"SUBSCRIBE","popSide":"sideways"},"externalUsageService":{"enabled":true}})");
  ASSERT_TRUE(parsed.ok());
  auto mc = ManagerConfigFromJson(*parsed, DefaultManagerConfig(cfg));
  ASSERT_TRUE(mc.ok());
  EXPECT_EQ(mc->cpa_base_url, "http://cpa:8317");
  EXPECT_EQ(mc->management_key, "");
  EXPECT_FALSE(mc->collector.Enabled());
  EXPECT_EQ(mc->collector.batch_size, 100);
  EXPECT_EQ(mc->collector.poll_interval_ms, 250);
  EXPECT_EQ(mc->collector.collector_mode, "subscribe");
  EXPECT_EQ(mc->collector.pop_side, "right");
  EXPECT_EQ(ManagerConfigToJson(*mc)["externalUsageService"], (bj::object{{"enabled", false}}));
}

TEST(CodexInspection, NormalisationRules) {
  auto in = json::ParseObject(R"({"workers":0,"deleteWorkers":8,"retries":0,"sampleSize":5,
      "usedPercentThreshold":0.8,"autoActionMode":"explode","targetTypes":["xai","codex","xai"],
      "schedule":{"mode":"time_points","timePoints":["9:05","09:05","23:59","25:00"],
                  "timeZone":"Asia/Shanghai"}})");
  ASSERT_TRUE(in.ok());
  auto out = NormalizeCodexInspection(&*in, bj::object{});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)["workers"], 4);
  EXPECT_EQ((*out)["deleteWorkers"], 8);
  EXPECT_EQ((*out)["retries"], 0);
  EXPECT_EQ((*out)["sampleSize"], 5);
  EXPECT_DOUBLE_EQ((*out)["usedPercentThreshold"].as_double(), 80.0);
  EXPECT_EQ((*out)["autoActionMode"], "none");
  EXPECT_EQ((*out)["targetTypes"], (bj::array{"codex", "xai"}));
  EXPECT_EQ((*out)["targetType"], "codex");
  auto& sched = (*out)["schedule"].as_object();
  EXPECT_EQ(sched["timePoints"], (bj::array{"09:05", "23:59"}));
  EXPECT_EQ(sched["timeZone"], "Asia/Shanghai");
}

TEST(CodexInspection, InvalidInputsAreErrors) {
  auto tz = json::ParseObject(R"({"schedule":{"timeZone":"Nowhere/Land"}})");
  auto r = NormalizeCodexInspection(&*tz, bj::object{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidTimeZone);
  auto bad = json::ParseObject(R"({"targetType":"gemini"})");
  r = NormalizeCodexInspection(&*bad, bj::object{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unsupported inspection target type \"gemini\"");
  auto none = json::ParseObject(R"({"targetTypes":[]})");
  r = NormalizeCodexInspection(&*none, bj::object{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "at least one inspection target type is required");
}

class SetupServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("setup-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto db = db::Database::Open((dir_ / "usage.sqlite").string(), clock_);
    ASSERT_TRUE(db.ok()) << db.status().message();
    db_ = std::move(*db);
    key_.fill(7);
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  FakeClock clock_;
  std::unique_ptr<db::Database> db_;
  security::DataKey key_{};
};

TEST_F(SetupServiceTest, BootstrapSeedsOnceAndEnvConnectionWins) {
  config::Config cfg;
  security::SecretBox box(key_);
  IdleCollector collector;
  SetupService svc(cfg, *db_, box, clock_, collector, clock_.NowMs());
  auto first = svc.Bootstrap();
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->generated_admin_key.empty());
  auto second = svc.Bootstrap();
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->generated_admin_key.empty());
  auto info = svc.Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ((*info)["migrationStatus"], "fresh");
  EXPECT_EQ((*info)["setupRequired"], true);

  // A saved plaintext legacy row is encrypted at the next bootstrap and still resolves.
  ASSERT_TRUE(db_->Write([&](db::Connection& c) {
                   return db::PutSetting(
                       c, kSettingSetup,
                       R"({"cpaBaseUrl":"cpa:8317/v0","managementKey":"legacy-key-1",
                                             "queue":"q2","popSide":"left"})",
                       1);
                 })
                  .ok());
  auto boot = svc.Bootstrap();
  ASSERT_TRUE(boot.ok());
  EXPECT_TRUE(boot->migrated_legacy);
  auto resolved = svc.Resolve();
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->source, "db");
  EXPECT_EQ(resolved->config.cpa_base_url, "http://cpa:8317");
  EXPECT_EQ(resolved->config.management_key, "legacy-key-1");
  EXPECT_EQ(resolved->config.collector.queue, "q2");
  auto stored = db_->Read([](db::Connection& c) { return db::GetSetting(c, kSettingSetup); });
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_NE((*stored)->find("enc:v1:"), std::string::npos);
  EXPECT_EQ((*stored)->find("legacy-key-1"), std::string::npos);

  config::Config env_cfg;
  env_cfg.cpa_upstream_url = "http://env-cpa:8317";
  env_cfg.cpa_management_key = "env-key";
  env_cfg.batch_size = 777;
  env_cfg.env_overridden = {"CPA_UPSTREAM_URL", "CPA_MANAGEMENT_KEY", "USAGE_BATCH_SIZE"};
  SetupService env_svc(env_cfg, *db_, box, clock_, collector, clock_.NowMs());
  auto env_resolved = env_svc.Resolve();
  ASSERT_TRUE(env_resolved.ok());
  EXPECT_EQ(env_resolved->source, "env");
  EXPECT_EQ(env_resolved->config.cpa_base_url, "http://env-cpa:8317");
  EXPECT_EQ(env_resolved->config.collector.batch_size, 777);
  ASSERT_TRUE(env_svc.ApplyCollector().ok());
  EXPECT_EQ(collector.StatusJson()["upstream"], "http://env-cpa:8317");
}

TEST_F(SetupServiceTest, AdminAuthVerifiesAgainstStoredCredential) {
  config::Config cfg;
  cfg.admin_key = "admin-key-for-test";
  security::SecretBox box(key_);
  IdleCollector collector;
  SetupService svc(cfg, *db_, box, clock_, collector, clock_.NowMs());
  ASSERT_TRUE(svc.Bootstrap().ok());
  AdminAuth auth(*db_, clock_);
  EXPECT_TRUE(auth.Check("Bearer admin-key-for-test", "10.0.0.1").ok);
  auto bad = auth.Check("Bearer nope", "10.0.0.1");
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(bad.code, "invalid_admin_key");
  auto missing = auth.Check("", "10.0.0.1");
  EXPECT_EQ(missing.status, 401);
}

}  // namespace
}  // namespace cpamp::setup
