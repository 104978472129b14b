// SplitQueueArray: CPA's HTTP usage-queue answers split without a DOM.
#include "collector/queue_items.h"

#include <gtest/gtest.h>

namespace cpamp::collector {
namespace {

struct Split {
  bool ok = false;
  std::vector<std::string> items;
  size_t answered = 0;
  std::string error;
};

Split SplitBody(std::string_view body) {
  Split s;
  s.ok = SplitQueueArray(body, &s.items, &s.answered, &s.error);
  return s;
}

TEST(SplitQueueArray, ObjectsAreReturnedVerbatimAndStringsUnescaped) {
  Split s = SplitBody(R"( [ {"a":"x,]}","b":[1,{"c":2}]} , "not json \"at\" all", null, "", {"d":"\\\""}] )");
  ASSERT_TRUE(s.ok) << s.error;
  EXPECT_EQ(s.answered, 5u);
  ASSERT_EQ(s.items.size(), 3u);
  EXPECT_EQ(s.items[0], R"({"a":"x,]}","b":[1,{"c":2}]})");
  EXPECT_EQ(s.items[1], R"(not json "at" all)");
  EXPECT_EQ(s.items[2], R"({"d":"\\\""})");
}

TEST(SplitQueueArray, EmptyArrayAndScalars) {
  Split e = SplitBody("[]");
  ASSERT_TRUE(e.ok);
  EXPECT_EQ(e.answered, 0u);
  EXPECT_TRUE(e.items.empty());
  Split n = SplitBody("[1, true, 2.5e3]");
  ASSERT_TRUE(n.ok);
  EXPECT_EQ(n.items, (std::vector<std::string>{"1", "true", "2.5e3"}));
}

TEST(SplitQueueArray, MalformedAnswersAreRejectedWholesale) {
  for (std::string_view bad :
       {"", "{}", "[", "[{]", "[{\"a\":1}", "[{\"a\":1},]", "[1 2]", "[\"open]", "[1]x",
        "<html>oops</html>", "[,]"}) {
    Split s = SplitBody(bad);
    EXPECT_FALSE(s.ok) << bad;
    EXPECT_FALSE(s.error.empty()) << bad;
    EXPECT_TRUE(s.items.empty()) << bad;
  }
}

}  // namespace
}  // namespace cpamp::collector
