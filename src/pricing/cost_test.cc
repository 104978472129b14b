// Cost formula, resolution and structure revision: golden values computed by hand below.
#include <gtest/gtest.h>

#include "pricing/pricing.h"

namespace cpamp::pricing {
namespace {

PriceFields Fields(double prompt, double completion, double cache = 0, double read = 0,
                   double creation = 0) {
  PriceFields p;
  p.prompt = prompt;
  p.completion = completion;
  p.cache = cache;
  p.cache_read = read;
  p.cache_creation = creation;
  p.prompt_configured = true;
  p.completion_configured = true;
  p.cache_configured = cache > 0;
  p.cache_read_configured = read > 0;
  p.cache_creation_configured = creation > 0;
  return p;
}

PriceRecord Price(PriceFields base) {
  PriceRecord r;
  r.base = base;
  return r;
}

TokenCounts Tokens(int64_t input, int64_t output, int64_t cached = 0, int64_t read = 0,
                   int64_t creation = 0) {
  return TokenCounts::ForEvent(input, output, cached, read, creation);
}

TEST(CostTest, ChargesEachCacheCategoryAtItsOwnPrice) {
  // prompt tokens = 1,000,000 − (100,000 + 200,000) − 50,000 = 650,000
  // (650,000·2 + 100,000·0.5 + 200,000·0.25 + 50,000·3 + 10,000·10) / 1e6 = 1.65
  PriceRecord p = Price(Fields(2, 10, 0.5, 0.25, 3));
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(1'000'000, 10'000, 100'000, 200'000, 50'000), "", -1, "m"), 1.65);
}

TEST(CostTest, UnconfiguredReadAndCreationFallBack) {
  // read price = 0.1 × prompt = 0.2; creation price = prompt = 2
  // (400,000·2 + 500,000·0.2 + 100,000·2) / 1e6 = 1.1
  PriceRecord p = Price(Fields(2, 10));
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(1'000'000, 0, 0, 500'000, 100'000), "", -1, "m"), 1.1);
  // With a legacy cache price the read price is the cache price: 800,000 + 200,000 + 200,000.
  p.base.cache = 0.4;
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(1'000'000, 0, 0, 500'000, 100'000), "", -1, "m"), 1.2);
  // An explicitly configured 0 read price is honoured.
  p.base.cache_read_configured = true;
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(1'000'000, 0, 0, 500'000, 100'000), "", -1, "m"), 1.0);
}

TEST(CostTest, PromptTokensNeverGoNegative) {
  PriceRecord p = Price(Fields(2, 10, 0, 1, 3));
  // read (600) + creation (600) exceed input (1000): prompt part is 0.
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(1'000, 0, 0, 600, 600), "", -1, "m"), (600 * 1 + 600 * 3) / 1e6);
}

TEST(CostTest, ContextBandSwitchesStrictlyAboveThreshold) {
  PriceRecord p = Price(Fields(2, 12, 0, 0.2));
  ContextTier tier;
  tier.threshold_tokens = 200'000;
  tier.price.prompt = 4;
  tier.price.completion = 18;
  tier.price.prompt_configured = tier.price.completion_configured = true;
  p.context_tiers.push_back(tier);

  EXPECT_EQ(ContextBandFor(&p, 200'000), kBaseContextBand);
  EXPECT_EQ(ContextBandFor(&p, 200'001), 200'000);
  EXPECT_EQ(ContextBandFor(nullptr, 900'000), kBaseContextBand);
  // Base band: 200,000·2 + 1,000·12 = 412,000.
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(200'000, 1'000), "", ContextBandFor(&p, 200'000), "m"), 0.412);
  // Tier band: 200,001·4 + 1,000·18 = 818,004. With 1,000 read tokens priced at the inherited
  // base read price 0.2: 200,001·4 + 1,000·0.2 + 1,000·18 = 818,204.
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(200'001, 1'000), "", ContextBandFor(&p, 200'001), "m"), 0.818004);
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(201'001, 1'000, 0, 1'000), "", 200'000, "m"), 0.818204);
  // The tier price stacks no service-tier multiplier (flex would halve the base price).
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(200'001, 1'000), "flex", 200'000, "m"), 0.818004);
  // A band without a matching tier falls back to the base rules.
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(200'000, 1'000), "", 123, "m"), 0.412);
}

TEST(CostTest, ServiceTierMultipliers) {
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("gpt-5.5", "priority"), 2.5);
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("openai/GPT-5.5-2026-04-23", "Fast"), 2.5);
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("gpt-5.6-sol", "priority"), 2);
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("gpt-5.4-mini", "fast"), 2);
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("gpt-5.3-codex", "priority"), 2);
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("gpt-4o", "priority"), 1);
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("gpt-5.55", "priority"), 1);  // not the family
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("claude-opus-4-7", "flex"), 0.5);
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("gpt-4o", "batch"), 0.5);
  EXPECT_DOUBLE_EQ(ServiceTierMultiplier("gpt-5.5", "default"), 1);

  PriceRecord p = Price(Fields(5, 30));
  // 100,000·5 + 1,000·30 = 530,000 → 0.53; priority × 2.5; flex × 0.5.
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(100'000, 1'000), "priority", -1, "gpt-5.5"), 1.325);
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(100'000, 1'000), "flex", -1, "gpt-5.5"), 0.265);
}

TEST(CostTest, ExplicitServiceTierRuleReplacesMultiplier) {
  PriceRecord p = Price(Fields(5, 30));
  ServiceTierRule rule;
  rule.mode = "fast";
  rule.service_tier = "priority";
  rule.price.prompt = 12.5;
  rule.price.completion = 75;
  rule.price.prompt_configured = rule.price.completion_configured = true;
  p.service_tiers.push_back(rule);
  // 100,000·12.5 + 1,000·75 = 1,325,000; matched by mode or by serviceTier, any case.
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(100'000, 1'000), "priority", -1, "gpt-5.5"), 1.325);
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(100'000, 1'000), "FAST", -1, "claude-opus-4-7"), 1.325);
  // Unconfigured fields inherit the base: only prompt configured.
  p.service_tiers[0].price.completion_configured = false;
  EXPECT_DOUBLE_EQ(Cost(p, Tokens(100'000, 1'000), "fast", -1, "x"), (1'250'000 + 30'000) / 1e6);
}

TEST(CostTest, LongContextThresholdIsStrict) {
  EXPECT_FALSE(IsLongContext(272'000));
  EXPECT_TRUE(IsLongContext(272'001));
  EXPECT_EQ(Tokens(272'000, 5).long_input, 0);
  EXPECT_EQ(Tokens(272'001, 5).long_input, 272'001);
  EXPECT_EQ(Tokens(272'001, 5).long_output, 5);
}

TEST(CostTest, LegacyLongContextSurcharge) {
  PriceRecord p = Price(Fields(5, 30));
  TokenCounts t = Tokens(100'000, 1'000);
  t += Tokens(300'000, 2'000);
  // short: 100,000·5 + 1,000·30 = 530,000 → 0.53
  // long: 300,000·5·2 + 2,000·30·1.5 = 3,090,000 → 3.09
  EXPECT_DOUBLE_EQ(Cost(p, t, "", -1, "gpt-5.5"), 3.62);
  EXPECT_DOUBLE_EQ(Cost(p, t, "", -1, "gpt-5.4-2026-03-05"), 3.62);
  EXPECT_DOUBLE_EQ(Cost(p, t, "", -1, "gpt-5.6-terra"), 3.62);
  // priority: only the short part gets the multiplier: 0.53·2.5 + 3.09.
  EXPECT_DOUBLE_EQ(Cost(p, t, "priority", -1, "gpt-5.5"), 4.415);
  // flex: the whole cost × 0.5.
  EXPECT_DOUBLE_EQ(Cost(p, t, "flex", -1, "gpt-5.5"), 1.81);
  // Not a long-context family: plain 400,000·5 + 3,000·30.
  EXPECT_DOUBLE_EQ(Cost(p, t, "", -1, "gpt-5.4-mini"), 2.09);
  EXPECT_FALSE(UsesLegacyLongContext("gpt-5.5-mini"));
  EXPECT_TRUE(UsesLegacyLongContext("gpt-5.4-pro-2026-03-05"));
  // A model with context tiers never gets the legacy rule (band -1: base price only).
  ContextTier tier;
  tier.threshold_tokens = 272'000;
  tier.price.prompt = 10;
  tier.price.prompt_configured = true;
  p.context_tiers.push_back(tier);
  EXPECT_DOUBLE_EQ(Cost(p, t, "", -1, "gpt-5.5"), 2.09);
}

TEST(CostTest, LegacyLongContextWithExplicitPriorityRule) {
  PriceRecord p = Price(Fields(5, 30));
  ServiceTierRule rule{"priority", "priority", Fields(10, 60)};
  p.service_tiers.push_back(rule);
  TokenCounts t = Tokens(100'000, 1'000);
  t += Tokens(300'000, 2'000);
  // short at the rule price: 100,000·10 + 1,000·60 = 1.06; long at the standard price: 3.09.
  EXPECT_DOUBLE_EQ(Cost(p, t, "priority", -1, "gpt-5.5"), 4.15);
}

TEST(ResolveTest, PricingModelAndCandidatesAreExactAndCaseSensitive) {
  PriceTable table;
  table["billing"] = Price(Fields(1, 1));
  table["analytics"] = Price(Fields(2, 2));
  table["gpt-5"] = Price(Fields(1.25, 10));
  EXPECT_EQ(PricingModelFor(table, "billing", "analytics", "req"), "billing");
  EXPECT_EQ(PricingModelFor(table, "nope", "analytics", "req"), "analytics");
  EXPECT_EQ(PricingModelFor(table, "nope", "none", "gpt-5"), "gpt-5");
  EXPECT_EQ(PricingModelFor(table, "nope", "none", "other"), "nope");

  std::vector<std::string> candidates = {"nope", "analytics"};
  auto r = ResolvePrice(table, "nope", candidates);
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(r->base.prompt, 2);
  // No case folding, no provider-prefix stripping.
  std::vector<std::string> upper = {"GPT-5"};
  EXPECT_FALSE(ResolvePrice(table, "GPT-5", upper).has_value());
  std::vector<std::string> prefixed = {"openai/gpt-5"};
  EXPECT_FALSE(ResolvePrice(table, "openai/gpt-5", prefixed).has_value());
  CostRow row{"unknown", "unknown", "unknown", "", -1, Tokens(1000, 1000)};
  EXPECT_DOUBLE_EQ(CostForRow(table, row), 0);
}

TEST(ResolveTest, BuiltinGpt56PricesAndFill) {
  PriceTable table;
  std::vector<std::string> candidates = {"openai/GPT-5.6-Sol-2026-06-01"};
  auto sol = ResolvePrice(table, "openai/GPT-5.6-Sol-2026-06-01", candidates);
  ASSERT_TRUE(sol.has_value());
  EXPECT_DOUBLE_EQ(sol->base.prompt, 5);
  EXPECT_DOUBLE_EQ(sol->base.completion, 30);
  EXPECT_DOUBLE_EQ(sol->base.cache_read, 0.5);
  EXPECT_DOUBLE_EQ(sol->base.cache_creation, 6.25);
  EXPECT_FALSE(BuiltinGpt56Price("gpt-5.6-solar").has_value());
  EXPECT_DOUBLE_EQ(BuiltinGpt56Price("gpt-5.6-luna")->base.completion, 6);

  PriceRecord partial;
  partial.base.prompt = 3;
  partial.base.prompt_configured = true;
  table["gpt-5.6-terra"] = partial;
  std::vector<std::string> terra = {"gpt-5.6-terra"};
  auto filled = ResolvePrice(table, "gpt-5.6-terra", terra);
  ASSERT_TRUE(filled.has_value());
  EXPECT_DOUBLE_EQ(filled->base.prompt, 3);             // configured: kept
  EXPECT_DOUBLE_EQ(filled->base.completion, 15);        // official table
  EXPECT_DOUBLE_EQ(filled->base.cache_read, 0.3);       // 0.1 × prompt
  EXPECT_DOUBLE_EQ(filled->base.cache_creation, 3.75);  // 1.25 × prompt

  // Built-in luna prompt 1: 100,000·1 = 0.1; the 1,000,000-token row is long context (×2).
  CostRow row{"gpt-5.6-luna", "gpt-5.6-luna", "gpt-5.6-luna", "", -1, Tokens(100'000, 0)};
  EXPECT_DOUBLE_EQ(CostForRow(table, row), 0.1);
  row.tokens = Tokens(1'000'000, 0);
  EXPECT_DOUBLE_EQ(CostForRow(table, row), 2.0);
}

TEST(RevisionTest, ChangesWithModelsAndThresholdsOnly) {
  PriceTable table;
  table["a"] = Price(Fields(1, 1));
  const std::string r1 = ModelPriceStructureRevision(table);
  EXPECT_EQ(r1.rfind("context-v1:", 0), 0u);
  EXPECT_EQ(r1.size(), std::string("context-v1:").size() + 64);
  table["a"].base.prompt = 9;
  EXPECT_EQ(ModelPriceStructureRevision(table), r1);
  table["a"].context_tiers.push_back(ContextTier{200'000, Fields(2, 2)});
  const std::string r2 = ModelPriceStructureRevision(table);
  EXPECT_NE(r2, r1);
  table["b"] = Price(Fields(1, 1));
  EXPECT_NE(ModelPriceStructureRevision(table), r2);
}

}  // namespace
}  // namespace cpamp::pricing
