#include "base/strings.h"

#include <gtest/gtest.h>

namespace cpamp {
namespace {

TEST(Strings, TrimRemovesSurroundingWhitespace) {
  EXPECT_EQ(Trim("  a b \n"), "a b");
  EXPECT_EQ(Trim(""), "");
  EXPECT_EQ(Trim(" \t "), "");
}

TEST(Strings, SplitAndTrimDropsEmptyItems) {
  auto v = SplitAndTrim(" a, ,b ,, c", ',');
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], "a");
  EXPECT_EQ(v[1], "b");
  EXPECT_EQ(v[2], "c");
}

TEST(Strings, Base64RoundTripsEveryVariant) {
  const std::string bytes = std::string("\x00\xff\xfe hello", 9);
  for (bool pad : {true, false}) {
    for (bool url : {true, false}) {
      std::string enc = Base64Encode(bytes, pad, url);
      std::string dec;
      ASSERT_TRUE(Base64Decode(enc, &dec, pad, url)) << enc;
      EXPECT_EQ(dec, bytes);
    }
  }
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo", false), "Zm8");
}

TEST(Strings, Base64RejectsWrongAlphabetAndPadding) {
  std::string out;
  EXPECT_FALSE(Base64Decode("a+b/", &out, false, true));  // std chars in url-safe
  EXPECT_FALSE(Base64Decode("a-b_", &out, false, false));
  EXPECT_FALSE(Base64Decode("Zg", &out, true, false));     // padded requires multiple of 4
  EXPECT_FALSE(Base64Decode("Zg==", &out, false, false));  // '=' not in the alphabet
  EXPECT_FALSE(Base64Decode("Z", &out, false, false));
}

TEST(Strings, ParseInt64IsStrict) {
  long long v = 0;
  EXPECT_TRUE(ParseInt64("42", &v));
  EXPECT_EQ(v, 42);
  EXPECT_TRUE(ParseInt64("-7", &v));
  EXPECT_EQ(v, -7);
  EXPECT_FALSE(ParseInt64("4x", &v));
  EXPECT_FALSE(ParseInt64("", &v));
  EXPECT_FALSE(ParseInt64("99999999999999999999", &v));
}

TEST(Strings, HexEncodeIsLowercase) { EXPECT_EQ(HexEncode("\x01\xab"), "01ab"); }

}  // namespace
}  // namespace cpamp
