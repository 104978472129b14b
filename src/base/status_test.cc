#include "base/status.h"

#include <gtest/gtest.h>

#include "base/log.h"

namespace cpamp {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Error(ErrorCode::kBadRequest, "odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  CPAMP_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Status, CatalogueGivesWireCodeAndStatus) {
  Status s = Error(ErrorCode::kPollIntervalExceedsRetention, "too slow");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(WireCode(s.code()), "poll_interval_exceeds_retention");
  EXPECT_EQ(s.http_status(), 400);
  EXPECT_EQ(s.WithHttpStatus(502).http_status(), 502);
  EXPECT_EQ(WireCode(ErrorCode::kUsageServiceNotConfigured), "usage_service_not_configured");
  EXPECT_EQ(DefaultHttpStatus(ErrorCode::kUsageServiceNotConfigured), 428);
}

TEST(Status, ResultPropagatesErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd");
}

TEST(Log, RegisteredSecretsAreRedacted) {
  RegisterSecret("sk-super-secret-value");
  RegisterSecret("abc");  // too short to register
  EXPECT_EQ(RedactSecrets("key=sk-super-secret-value; abc"), "key=[REDACTED]; abc");
}

}  // namespace
}  // namespace cpamp
