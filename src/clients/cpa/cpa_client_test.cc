#include "clients/cpa/cpa_client.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace cpamp::cpa {
namespace {

UsageSettings Parse(std::string_view text) {
  return ParseUsageSettings(boost::json::parse(text).as_object());
}

TEST(ParseUsageSettings, ReadsKebabAndCamelCase) {
  auto a = Parse(R"({"usage-statistics-enabled":true,"redis-usage-queue-retention-seconds":120,
                     "proxy-url":"http://proxy:8080"})");
  EXPECT_TRUE(a.usage_statistics_enabled);
  EXPECT_EQ(a.retention_seconds, 120);
  EXPECT_FALSE(a.retention_source_default);
  EXPECT_EQ(a.proxy_url, "http://proxy:8080");
  auto b = Parse(R"({"usageStatisticsEnabled":"yes","redisUsageQueueRetentionSeconds":"30"})");
  EXPECT_TRUE(b.usage_statistics_enabled);
  EXPECT_EQ(b.retention_seconds, 30);
}

TEST(ParseUsageSettings, MissingRetentionDefaultsTo60AndIsFlagged) {
  auto s = Parse(R"({"usage-statistics-enabled":"off"})");
  EXPECT_FALSE(s.usage_statistics_enabled);
  EXPECT_EQ(s.retention_seconds, 60);
  EXPECT_TRUE(s.retention_source_default);
}

TEST(ParseUsageSettings, NonNumericRetentionIsTreatedAsAbsent) {
  auto s = Parse(R"({"redis-usage-queue-retention-seconds":"soon"})");
  EXPECT_EQ(s.retention_seconds, 60);
  EXPECT_TRUE(s.retention_source_default);
  auto z = Parse(R"({"redis-usage-queue-retention-seconds":0})");
  EXPECT_EQ(z.retention_seconds, 0);
  EXPECT_FALSE(z.retention_source_default);
}

TEST(StatusLine, MatchesGoStatusText) {
  EXPECT_EQ(http_client::StatusLine(401), "401 Unauthorized");
  EXPECT_EQ(http_client::StatusLine(404), "404 Not Found");
}

}  // namespace
}  // namespace cpamp::cpa
