#include "base/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>

namespace cpamp::json {
namespace {

std::string Num(double d) {
  std::string out;
  AppendDouble(out, d);
  return out;
}

TEST(JsonSerialize, DoublesAreWrittenLikeGoEncodingJson) {
  // Expected strings are what Go's json.Marshal writes for the same float64.
  EXPECT_EQ(Num(100.0), "100");
  EXPECT_EQ(Num(1.25), "1.25");
  EXPECT_EQ(Num(0.0), "0");
  EXPECT_EQ(Num(-0.0), "-0");
  EXPECT_EQ(Num(0.1), "0.1");
  EXPECT_EQ(Num(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(Num(0.000125), "0.000125");
  EXPECT_EQ(Num(1e-6), "0.000001");
  EXPECT_EQ(Num(1e-7), "1e-7");
  EXPECT_EQ(Num(1.5e-10), "1.5e-10");
  EXPECT_EQ(Num(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(Num(1e21), "1e+21");
  EXPECT_EQ(Num(-2.5e300), "-2.5e+300");
  EXPECT_EQ(Num(12345.678), "12345.678");
  EXPECT_EQ(Num(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(Num(std::numeric_limits<double>::infinity()), "null");
}

TEST(JsonSerialize, DoublesRoundTrip) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exp10(-12, 24);
  for (int i = 0; i < 20000; ++i) {
    const double d = std::pow(10.0, exp10(rng)) * ((rng() & 1) ? 1 : -1);
    const std::string text = Num(d);
    EXPECT_EQ(text.find('E'), std::string::npos) << text;
    // strtod, not Boost.JSON 1.81's parser, which is not correctly rounded in the last bit.
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), d) << text;
  }
}

TEST(JsonSerialize, StructureStringsAndIntegers) {
  bj::object o;
  o["z"] = 1;
  o["a"] = bj::array{nullptr, true, false, -7, std::numeric_limits<uint64_t>::max(), 2.0};
  o["s"] = std::string("q\"b\\s/\n\t\x01\x1f<>&\xc3\xa9");
  o["o"] = bj::object{};
  EXPECT_EQ(Serialize(o),
            "{\"z\":1,\"a\":[null,true,false,-7,18446744073709551615,2],"
            "\"s\":\"q\\\"b\\\\s/\\n\\t\\u0001\\u001f<>&\xc3\xa9\",\"o\":{}}\n");
}

TEST(JsonSerialize, AgreesWithBoostExceptForNumberFormat) {
  // Any document without doubles serializes exactly as Boost.JSON does (plus the newline).
  const char* docs[] = {R"({"a":[1,2,{"b":"x\u0000y"}],"c":null,"d":"\u00e9\ud83d\ude00"})",
                        R"([])", R"("")", R"({"k":{"k":{"k":[true,false,-9223372036854775808]}}})"};
  for (const char* d : docs) {
    auto v = Parse(d);
    ASSERT_TRUE(v.ok()) << d;
    EXPECT_EQ(Serialize(*v), bj::serialize(*v) + "\n") << d;
  }
}

}  // namespace
}  // namespace cpamp::json
