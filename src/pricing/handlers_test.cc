// Handler JSON shapes, status codes and error codes (spec api §4.7, §5.3).
#include <gtest/gtest.h>

#include "base/json.h"
#include "pricing/pricing.h"
#include "pricing/test_util.h"

namespace cpamp::pricing {
namespace {

using testing::MakeRequest;
using testing::TempDb;
namespace bj = boost::json;

class HandlersTest : public ::testing::Test {
 protected:
  HandlersTest() {
    auto s = StaticPriceSource::FromFixtureDir(testing::FixtureDir());
    EXPECT_TRUE(s.ok());
    source_ = std::move(s).value();
    HandlerOptions options;
    options.usage_query_limit = 2;
    options.on_prices_changed = [this] { ++changes_; };
    handlers_ = std::make_unique<Handlers>(db_.db(), *source_, clock_, options);
  }

  static bj::object Body(const net::Response& r) {
    auto parsed = json::ParseObject(r.body);
    EXPECT_TRUE(parsed.ok()) << r.body;
    return parsed.ok() ? *parsed : bj::object();
  }
  static std::string Code(const net::Response& r) {
    return json::GetString(Body(r), "code").value_or("");
  }

  TempDb db_;
  FakeClock clock_{1'700'000'000'000};
  std::unique_ptr<StaticPriceSource> source_;
  std::unique_ptr<Handlers> handlers_;
  int changes_ = 0;
};

TEST_F(HandlersTest, GetAndPutPrices) {
  net::Response empty = handlers_->ModelPrices(MakeRequest("GET", "/v0/management/model-prices"));
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body, "{\"prices\":{}}\n");

  net::Response put = handlers_->ModelPrices(
      MakeRequest("PUT", "/v0/management/model-prices",
                  R"({"prices":{"gpt-5":{"prompt":1.25,"completion":10,"cacheRead":0.125,
          "contextTiers":[{"thresholdTokens":272000,"prompt":2.5}]}}})"));
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(changes_, 1);
  bj::object price = Body(put).at("prices").as_object().at("gpt-5").as_object();
  EXPECT_EQ(price.at("prompt").as_double(), 1.25);
  EXPECT_EQ(price.at("cacheCreation").to_number<double>(), 0);
  EXPECT_TRUE(price.at("promptConfigured").as_bool());
  EXPECT_TRUE(price.at("cacheReadConfigured").as_bool());
  EXPECT_FALSE(price.contains("cacheCreationConfigured"));
  EXPECT_FALSE(price.contains("syncedAtMs"));
  EXPECT_EQ(price.at("updatedAtMs").as_int64(), 1'700'000'000'000);
  bj::object tier = price.at("contextTiers").as_array()[0].as_object();
  EXPECT_EQ(tier.at("thresholdTokens").as_int64(), 272000);
  EXPECT_TRUE(tier.at("promptConfigured").as_bool());
  EXPECT_FALSE(tier.contains("completion"));

  net::Response listed = handlers_->ModelPrices(MakeRequest("GET", "/v0/management/model-prices/"));
  EXPECT_EQ(Body(listed).at("prices").as_object().size(), 1u);
}

TEST_F(HandlersTest, PutPricesErrors) {
  for (const char* body : {"", "{}", R"({"prices":null})"}) {
    net::Response r = handlers_->PutPrices(MakeRequest("PUT", "/v0/management/model-prices", body));
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(Code(r), "prices_required") << body;
    EXPECT_EQ(json::GetString(Body(r), "error").value_or(""), "prices are required");
  }
  net::Response bad = handlers_->PutPrices(
      MakeRequest("PUT", "/v0/management/model-prices", R"({"prices":{"x":{"prompt":-1}}})"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Code(bad), "request_failed");
  EXPECT_EQ(json::GetString(Body(bad), "error").value_or("").rfind("invalid model price for x", 0),
            0u);
  net::Response blank = handlers_->PutPrices(
      MakeRequest("PUT", "/v0/management/model-prices", R"({"prices":{" ":{"prompt":1}}})"));
  EXPECT_EQ(blank.status, 400);
  EXPECT_EQ(changes_, 0);
}

TEST_F(HandlersTest, MethodNotAllowed) {
  for (auto [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/v0/management/model-prices"},
           {"GET", "/v0/management/model-prices/sync"},
           {"GET", "/v0/management/model-pricesX"},
           {"DELETE", "/v0/management/api-key-aliases"},
           {"GET", "/v0/management/api-key-aliases/abc"}}) {
    net::Response r = path.find("aliases") != std::string::npos
                          ? handlers_->ApiKeyAliases(MakeRequest(method, path))
                          : handlers_->ModelPrices(MakeRequest(method, path));
    EXPECT_EQ(r.status, 405) << method << " " << path;
    EXPECT_EQ(Code(r), "method_not_allowed");
  }
}

TEST_F(HandlersTest, SyncShapesPreviewAndFailure) {
  net::Response preview = handlers_->ModelPrices(MakeRequest(
      "POST", "/v0/management/model-prices/sync", R"({"models":["gpt-5"]})", "preview=1"));
  ASSERT_EQ(preview.status, 200) << preview.body;
  bj::object p = Body(preview);
  EXPECT_TRUE(p.at("preview").as_bool());
  EXPECT_EQ(p.at("source").as_string(), "models.dev");
  EXPECT_EQ(p.at("imported").as_int64(), 1);
  EXPECT_TRUE(p.at("matched").as_object().contains("gpt-5"));
  EXPECT_EQ(p.at("proxyUsed").as_bool(), false);
  for (const char* key : {"sources", "skipped", "candidates", "unmatched", "preserved",
                          "sourceResults", "prices", "added", "updated", "unchanged"}) {
    EXPECT_TRUE(p.contains(key)) << key;
  }
  bj::object result = p.at("sourceResults").as_array()[0].as_object();
  EXPECT_EQ(result.at("source").as_string(), "models.dev");
  EXPECT_EQ(result.at("models").as_int64(), 29);
  EXPECT_FALSE(result.contains("error"));
  EXPECT_EQ(changes_, 0);
  EXPECT_EQ(Body(handlers_->GetPrices(MakeRequest("GET", "/v0/management/model-prices")))
                .at("prices")
                .as_object()
                .size(),
            0u);

  net::Response real = handlers_->SyncPrices(
      MakeRequest("POST", "/v0/management/model-prices/sync", R"({"models":["gpt-5"]})"));
  ASSERT_EQ(real.status, 200);
  EXPECT_EQ(changes_, 1);
  EXPECT_TRUE(Body(real).at("prices").as_object().contains("gpt-5"));

  net::Response bad =
      handlers_->SyncPrices(MakeRequest("POST", "/v0/management/model-prices/sync", "{not json"));
  EXPECT_EQ(bad.status, 400);

  for (SourceId id : kSourceOrder) source_->SetError(id, "offline");
  net::Response failed =
      handlers_->SyncPrices(MakeRequest("POST", "/v0/management/model-prices/sync", ""));
  EXPECT_EQ(failed.status, 502);
  EXPECT_EQ(Code(failed), "model_price_sync_failed");
}

TEST_F(HandlersTest, UsageSummaryRespectsLimit) {
  db_.AddEvent(1, "a", "", "");
  db_.AddEvent(2, "b", "", "");
  db_.AddEvent(3, "b", "b", "");
  net::Response r =
      handlers_->ModelPrices(MakeRequest("GET", "/v0/management/model-prices/usage-summary"));
  ASSERT_EQ(r.status, 200);
  bj::object o = Body(r);
  EXPECT_EQ(o.at("total_events").as_int64(), 3);
  EXPECT_EQ(o.at("sampled_events").as_int64(), 2);  // capped by the configured limit
  EXPECT_TRUE(o.at("truncated").as_bool());
  bj::object first = o.at("models").as_array()[0].as_object();
  EXPECT_EQ(first.at("model").as_string(), "b");
  EXPECT_EQ(first.at("calls").as_int64(), 2);
  EXPECT_EQ(first.at("requested_calls").as_int64(), 1);
  EXPECT_EQ(first.at("resolved_calls").as_int64(), 0);
  net::Response one = handlers_->GetUsageSummary(
      MakeRequest("GET", "/v0/management/model-prices/usage-summary", "", "limit=1"));
  EXPECT_EQ(Body(one).at("sampled_events").as_int64(), 1);
}

TEST_F(HandlersTest, AliasesCrud) {
  const std::string hash(64, 'a');
  net::Response missing =
      handlers_->ApiKeyAliases(MakeRequest("PUT", "/v0/management/api-key-aliases", "{}"));
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(Code(missing), "api_key_aliases_required");
  net::Response noop = handlers_->ApiKeyAliases(
      MakeRequest("PUT", "/v0/management/api-key-aliases", R"({"items":[]})"));
  EXPECT_EQ(noop.body, "{\"items\":[]}\n");
  net::Response bad_hash = handlers_->ApiKeyAliases(MakeRequest(
      "PUT", "/v0/management/api-key-aliases", R"({"items":[{"apiKeyHash":"x","alias":"a"}]})"));
  EXPECT_EQ(bad_hash.status, 400);
  EXPECT_EQ(json::GetString(Body(bad_hash), "error").value_or(""), "valid apiKeyHash is required");

  net::Response put = handlers_->ApiKeyAliases(
      MakeRequest("PUT", "/v0/management/api-key-aliases",
                  R"({"items":[{"apiKeyHash":")" + hash + R"(","alias":"Team A"}]})"));
  ASSERT_EQ(put.status, 200) << put.body;
  bj::object item = Body(put).at("items").as_array()[0].as_object();
  EXPECT_EQ(item.at("apiKeyHash").as_string(), hash);
  EXPECT_EQ(item.at("alias").as_string(), "Team A");
  EXPECT_EQ(item.at("updatedAtMs").as_int64(), 1'700'000'000'000);

  net::Response dup =
      handlers_->ApiKeyAliases(MakeRequest("PUT", "/v0/management/api-key-aliases",
                                           R"({"items":[{"apiKeyHash":")" + std::string(64, 'b') +
                                               R"(","alias":"team a"}],"activeApiKeyHashes":[")" +
                                               hash + R"("],"allowOrphanAliasCleanup":true})"));
  EXPECT_EQ(dup.status, 400);
  EXPECT_EQ(Code(dup), "api_key_alias_duplicate");

  net::Response del =
      handlers_->ApiKeyAliases(MakeRequest("DELETE", "/v0/management/api-key-aliases/" + hash));
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(del.body, "{\"ok\":true}\n");
  net::Response bad_del =
      handlers_->ApiKeyAliases(MakeRequest("DELETE", "/v0/management/api-key-aliases/zz"));
  EXPECT_EQ(bad_del.status, 400);
  net::Response list =
      handlers_->ApiKeyAliases(MakeRequest("GET", "/v0/management/api-key-aliases"));
  EXPECT_EQ(list.body, "{\"items\":[]}\n");
}

}  // namespace
}  // namespace cpamp::pricing
