// Price store, PUT validation, usage summary and API key aliases on a real temp SQLite file.
#include <gtest/gtest.h>

#include "base/json.h"
#include "pricing/pricing.h"
#include "pricing/test_util.h"

namespace cpamp::pricing {
namespace {

using testing::TempDb;

PriceRecord Simple(double prompt, double completion, std::string source = "manual") {
  PriceRecord r;
  r.base.prompt = prompt;
  r.base.completion = completion;
  r.base.prompt_configured = r.base.completion_configured = true;
  r.source = std::move(source);
  return r;
}

PriceRecord Decode(std::string_view model, std::string_view text) {
  auto v = json::Parse(text);
  EXPECT_TRUE(v.ok());
  auto rec = PriceFromJson(model, *v);
  EXPECT_TRUE(rec.ok()) << rec.status().message();
  return rec.ok() ? *rec : PriceRecord{};
}

TEST(PriceStoreTest, ReplaceRoundTripsTiersAndSetsUpdatedAt) {
  TempDb t;
  PriceTable table;
  PriceRecord gpt = Decode("gpt-5", R"({"prompt":1.25,"completion":10,"cache":0.125,
      "cacheRead":0.125,"cacheReadConfigured":true,"source":"models.dev","sourceModelId":"openai/gpt-5",
      "rawJson":"{}","syncedAtMs":5,
      "contextTiers":[{"thresholdTokens":272000,"prompt":2.5,"completion":15,"cache":0.25}],
      "serviceTiers":[{"mode":"Priority","serviceTier":"priority","prompt":2.5,"completion":20}]})");
  table["gpt-5"] = gpt;
  table["alias-name"] = Simple(1, 2);
  auto saved = ReplacePrices(t.db(), table, 1234);
  ASSERT_TRUE(saved.ok()) << saved.status().message();
  ASSERT_EQ(saved->size(), 2u);
  const PriceRecord& back = saved->at("gpt-5");
  EXPECT_EQ(back.updated_at_ms, 1234);
  EXPECT_EQ(back.synced_at_ms, 5);
  EXPECT_TRUE(back.SamePricing(gpt));
  ASSERT_EQ(back.context_tiers.size(), 1u);
  EXPECT_EQ(back.context_tiers[0].threshold_tokens, 272000);
  EXPECT_TRUE(back.context_tiers[0].price.cache_configured);  // inferred from the value
  ASSERT_EQ(back.service_tiers.size(), 1u);
  EXPECT_EQ(back.service_tiers[0].mode, "priority");  // lower-cased
  EXPECT_EQ(saved->at("alias-name").synced_at_ms, 0);

  // PUT replaces the whole table.
  PriceTable only;
  only["other"] = Simple(3, 4);
  auto replaced = ReplacePrices(t.db(), only, 2000);
  ASSERT_TRUE(replaced.ok());
  EXPECT_EQ(replaced->size(), 1u);
  EXPECT_EQ(replaced->count("gpt-5"), 0u);
  auto tiers = t.db().Read([](db::Connection& c) -> Result<int64_t> {
    auto s = c.Prepare("select count(*) from model_price_context_tiers");
    if (!s.ok()) return s.status();
    auto row = s->Step();
    if (!row.ok()) return row.status();
    return s->ColumnInt64(0);
  });
  ASSERT_TRUE(tiers.ok());
  EXPECT_EQ(*tiers, 0);
}

TEST(PriceStoreTest, UpsertTouchesOnlyGivenRows) {
  TempDb t;
  PriceTable table;
  table["a"] = Simple(1, 1);
  table["b"] = Simple(2, 2);
  ASSERT_TRUE(ReplacePrices(t.db(), table, 1).ok());
  PriceTable change;
  change["b"] = Simple(5, 5, "litellm");
  change["c"] = Simple(6, 6, "litellm");
  ASSERT_TRUE(
      t.db().WriteTransaction([&](db::Connection& c) { return UpsertPrices(c, change); }).ok());
  auto now = ListPrices(t.db());
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->size(), 3u);
  EXPECT_DOUBLE_EQ(now->at("a").base.prompt, 1);
  EXPECT_DOUBLE_EQ(now->at("b").base.prompt, 5);
  EXPECT_EQ(now->at("b").source, "litellm");
}

TEST(PriceValidationTest, RejectsInvalidEntries) {
  auto invalid = [](std::string_view text) {
    auto v = json::Parse(text);
    EXPECT_TRUE(v.ok());
    auto rec = PriceFromJson("m", *v);
    if (!rec.ok()) return rec.status();
    return ValidatePrice("m", *rec);
  };
  EXPECT_TRUE(invalid(R"({"prompt":1})").ok());
  EXPECT_TRUE(invalid(R"({"prompt":"1.5","completion":"2"})").ok());  // numeric strings
  for (
      const char* bad : {
          R"({"prompt":-1})",
          R"({"prompt":"abc"})",
          R"({"prompt":1,"contextTiers":[{"thresholdTokens":0,"prompt":1}]})",
          R"({"prompt":1,"contextTiers":[{"thresholdTokens":10}]})",
          R"({"prompt":1,"contextTiers":[{"thresholdTokens":10,"prompt":1},{"thresholdTokens":10,"prompt":2}]})",
          R"({"prompt":1,"serviceTiers":[{"mode":"","serviceTier":"priority","prompt":1}]})",
          R"({"prompt":1,"serviceTiers":[{"mode":"fast","serviceTier":"priority"}]})",
          R"({"prompt":1,"serviceTiers":[{"mode":"fast","serviceTier":"priority","prompt":1},{"mode":"priority","serviceTier":"x","prompt":1}]})",
      }) {
    Status s = invalid(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.code(), ErrorCode::kBadRequest) << bad;
    EXPECT_EQ(s.message().rfind("invalid model price for m", 0), 0u) << s.message();
  }
  EXPECT_FALSE(ValidatePrice(" ", Simple(1, 1)).ok());
}

TEST(UsageSummaryTest, CountsModelsOverNewestEvents) {
  TempDb t;
  t.AddEvent(1, "old-model", "", "");
  t.AddEvent(2, "gpt-5", "gpt-5", "");
  t.AddEvent(3, "gpt-5", "gpt-5", "gpt-5-2025-08-07");
  t.AddEvent(4, "claude", "", "claude-real");
  auto all = LoadUsageSummary(t.db(), 100);
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->total_events, 4);
  EXPECT_EQ(all->sampled_events, 4);
  EXPECT_FALSE(all->truncated);
  ASSERT_FALSE(all->models.empty());
  EXPECT_EQ(all->models[0].model, "gpt-5");
  EXPECT_EQ(all->models[0].calls, 2);
  EXPECT_EQ(all->models[0].requested_calls, 2);
  EXPECT_EQ(all->models[0].resolved_calls, 0);
  auto limited = LoadUsageSummary(t.db(), 3);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->sampled_events, 3);
  EXPECT_TRUE(limited->truncated);
  for (const ModelUsage& m : limited->models) EXPECT_NE(m.model, "old-model");
}

const std::string kHashA(64, 'a');
const std::string kHashB(64, 'b');
const std::string kHashC(64, 'c');

TEST(AliasTest, UpsertListDelete) {
  TempDb t;
  AliasUpdate u;
  u.items = {{std::string(64, 'A'), "  team b ", 0}, {kHashB, "Team A", 0}};
  ASSERT_TRUE(UpsertAliases(t.db(), u, 100).ok());
  auto list = ListAliases(t.db());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].alias, "Team A");       // NOCASE order
  EXPECT_EQ((*list)[1].api_key_hash, kHashA);  // lower-cased
  EXPECT_EQ((*list)[1].alias, "team b");       // trimmed
  EXPECT_EQ((*list)[1].updated_at_ms, 100);
  // Swapping aliases in one request is not a conflict.
  u.items = {{kHashA, "Team A", 0}, {kHashB, "team b", 0}};
  ASSERT_TRUE(UpsertAliases(t.db(), u, 200).ok());
  ASSERT_TRUE(DeleteAlias(t.db(), kHashA).ok());
  ASSERT_TRUE(DeleteAlias(t.db(), kHashA).ok());  // absent is fine
  list = ListAliases(t.db());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].api_key_hash, kHashB);
  EXPECT_EQ(DeleteAlias(t.db(), "xyz").code(), ErrorCode::kBadRequest);
}

TEST(AliasTest, DuplicatesAndOrphanCleanup) {
  TempDb t;
  AliasUpdate u;
  u.items = {{kHashA, "Team", 0}};
  ASSERT_TRUE(UpsertAliases(t.db(), u, 1).ok());
  u.items = {{kHashB, " team ", 0}};
  Status dup = UpsertAliases(t.db(), u, 2);
  EXPECT_EQ(dup.code(), ErrorCode::kApiKeyAliasDuplicate);
  EXPECT_EQ(dup.message(), "api key alias already exists");
  // Within one request.
  u.items = {{kHashB, "X", 0}, {kHashC, "x", 0}};
  EXPECT_EQ(UpsertAliases(t.db(), u, 2).code(), ErrorCode::kApiKeyAliasDuplicate);
  // Cleanup allowed but the conflicting hash is active: still a duplicate.
  u.items = {{kHashB, "team", 0}};
  u.allow_orphan_alias_cleanup = true;
  u.active_api_key_hashes = {kHashA};
  EXPECT_EQ(UpsertAliases(t.db(), u, 3).code(), ErrorCode::kApiKeyAliasDuplicate);
  // Orphan (not active) and cleanup allowed: the old row goes.
  u.active_api_key_hashes = {kHashB};
  ASSERT_TRUE(UpsertAliases(t.db(), u, 4).ok());
  auto list = ListAliases(t.db());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].api_key_hash, kHashB);
}

TEST(AliasTest, ValidatesHashAndAlias) {
  TempDb t;
  AliasUpdate u;
  u.items = {{"abc", "x", 0}};
  Status s = UpsertAliases(t.db(), u, 1);
  EXPECT_EQ(s.code(), ErrorCode::kBadRequest);
  EXPECT_EQ(s.message(), "valid apiKeyHash is required");
  u.items = {{kHashA, "   ", 0}};
  EXPECT_EQ(UpsertAliases(t.db(), u, 1).code(), ErrorCode::kBadRequest);
  std::string long_alias;
  for (int i = 0; i < 121; ++i) long_alias += "é";  // 121 runes, 242 bytes
  u.items = {{kHashA, long_alias, 0}};
  EXPECT_EQ(UpsertAliases(t.db(), u, 1).code(), ErrorCode::kBadRequest);
  long_alias.resize(240);  // 120 runes
  u.items = {{kHashA, long_alias, 0}};
  EXPECT_TRUE(UpsertAliases(t.db(), u, 1).ok());
}

}  // namespace
}  // namespace cpamp::pricing
