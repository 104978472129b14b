#include <gtest/gtest.h>

#include "config/config.h"

namespace cpamp::config {
namespace {

TEST(ParseListenAddress, AcceptsHostPortForms) {
  auto a = ParseListenAddress("0.0.0.0:18317");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->host, "0.0.0.0");
  EXPECT_EQ(a->port, 18317);

  auto any_host = ParseListenAddress(":8080");
  ASSERT_TRUE(any_host.ok());
  EXPECT_EQ(any_host->host, "");
  EXPECT_EQ(any_host->port, 8080);

  auto named = ParseListenAddress("localhost:0");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->host, "localhost");
  EXPECT_EQ(named->port, 0);

  auto max_port = ParseListenAddress("my-host.example:65535");
  ASSERT_TRUE(max_port.ok());
  EXPECT_EQ(max_port->port, 65535);
}

TEST(ParseListenAddress, AcceptsBracketedIpv6) {
  auto v6 = ParseListenAddress("[::1]:18317");
  ASSERT_TRUE(v6.ok()) << v6.status().message();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 18317);

  auto wildcard = ParseListenAddress("[::]:0");
  ASSERT_TRUE(wildcard.ok());
  EXPECT_EQ(wildcard->host, "::");

  auto zoned = ParseListenAddress("[fe80::1%eth0]:80");
  ASSERT_TRUE(zoned.ok());
  EXPECT_EQ(zoned->host, "fe80::1%eth0");
}

TEST(ParseListenAddress, RejectsMalformedAddressesWithReason) {
  struct Case {
    const char* addr;
    const char* reason;
  };
  const Case cases[] = {
      {"foo", "missing port"},         {"", "missing port"},
      {"host:", "missing port"},       {"[::1]", "missing port"},
      {"[::1]:", "missing port"},      {"[::1", "missing ']'"},
      {"[::1]x80", "unexpected text"}, {"[not-v6]:80", "invalid IPv6 address"},
      {"::1:80", "too many colons"},   {"host:65536", "out of range"},
      {"host:123456", "out of range"}, {"host:-1", "not a number"},
      {"host:http", "not a number"},   {"ho st:80", "invalid host"},
  };
  for (const Case& c : cases) {
    auto r = ParseListenAddress(c.addr);
    ASSERT_FALSE(r.ok()) << c.addr;
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    const std::string& msg = r.status().message();
    EXPECT_EQ(msg.rfind("invalid listen address \"" + std::string(c.addr) + "\"", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.reason), std::string::npos) << msg;
  }
}

TEST(IsLoopbackHost, RecognisesLoopbackOnly) {
  for (const char* host : {"localhost", "LocalHost", "127.0.0.1", "127.1.2.3", "::1",
                           "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"", "0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "example.com",
                           "localhost.example.com", "::2"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(NormalizeBaseUrl, FollowsUpstreamRule) {
  EXPECT_EQ(NormalizeBaseUrl("cpa:8317/v0/management/"), "http://cpa:8317");
  EXPECT_EQ(NormalizeBaseUrl("https://cpa.example.com/"), "https://cpa.example.com");
  EXPECT_EQ(NormalizeBaseUrl("https://cpa.example.com/v0/management"), "https://cpa.example.com");
  EXPECT_EQ(NormalizeBaseUrl("http://cpa:8317/v0"), "http://cpa:8317");
  EXPECT_EQ(NormalizeBaseUrl("http://cpa:8317/v0/"), "http://cpa:8317");
  EXPECT_EQ(NormalizeBaseUrl("  \thttp://cpa:8317//  \n"), "http://cpa:8317");
  EXPECT_EQ(NormalizeBaseUrl("http://host/prefix/v0/management"), "http://host/prefix");
  EXPECT_EQ(NormalizeBaseUrl("http://host/v0/x"), "http://host/v0/x");
  EXPECT_EQ(NormalizeBaseUrl("   "), "");
}

}  // namespace
}  // namespace cpamp::config
