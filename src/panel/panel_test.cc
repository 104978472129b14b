#include "panel/panel.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace cpamp::panel {
namespace {

TEST(Panel, EmbeddedBytesEqualTheSourceFile) {
  std::string source(EmbeddedSource());
  std::string path = source == "placeholder" ? std::string(CPAMP_SOURCE_DIR "/src/panel/placeholder.html")
                                             : std::string(CPAMP_SOURCE_DIR "/") + source;
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(EmbeddedHtml(), ss.str());
  EXPECT_NE(EmbeddedHtml().find("<html"), std::string_view::npos);
}

}  // namespace
}  // namespace cpamp::panel
