// Parsing the recorded price sources and syncing from them (no network: StaticPriceSource).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pricing/pricing.h"
#include "pricing/test_util.h"

namespace cpamp::pricing {
namespace {

using testing::FixtureDir;
using testing::TempDb;

std::string ReadFixture(const std::string& name) {
  std::ifstream in(FixtureDir() + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const SourceEntry* Find(const SourceCatalog& c, std::string_view key) {
  for (const SourceEntry& e : c.entries) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

std::unique_ptr<StaticPriceSource> Fixtures(
    const std::string& openrouter = "openrouter-models-subset.json") {
  auto s = StaticPriceSource::FromFixtureDir(FixtureDir(), openrouter);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return std::move(s).value();
}

TEST(ParseSourceTest, ModelsDevCatalog) {
  auto c = ParseModelsDev(ReadFixture("models-dev-catalog-subset.json"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->has_catalog_metadata);
  EXPECT_EQ(c->canonical_ids.size(), 8u);
  EXPECT_EQ(c->entries.size(), 29u);
  EXPECT_EQ(c->skipped, 0);
  const SourceEntry* gpt54 = Find(*c, "openai/gpt-5.4");
  ASSERT_NE(gpt54, nullptr);
  EXPECT_EQ(gpt54->alias, "gpt-5.4");
  EXPECT_EQ(gpt54->price.source, "models.dev");
  EXPECT_EQ(gpt54->price.source_model_id, "openai/gpt-5.4");
  EXPECT_DOUBLE_EQ(gpt54->price.base.prompt, 2.5);
  EXPECT_DOUBLE_EQ(gpt54->price.base.cache, 0.25);
  EXPECT_TRUE(gpt54->price.base.cache_read_configured);
  EXPECT_FALSE(gpt54->price.base.cache_creation_configured);
  ASSERT_EQ(gpt54->price.context_tiers.size(), 1u);
  EXPECT_EQ(gpt54->price.context_tiers[0].threshold_tokens, 272000);
  EXPECT_DOUBLE_EQ(gpt54->price.context_tiers[0].price.completion, 22.5);
  ASSERT_EQ(gpt54->price.service_tiers.size(), 1u);
  EXPECT_EQ(gpt54->price.service_tiers[0].mode, "fast");
  EXPECT_EQ(gpt54->price.service_tiers[0].service_tier, "priority");
  EXPECT_DOUBLE_EQ(gpt54->price.service_tiers[0].price.completion, 30);
  EXPECT_FALSE(gpt54->price.raw_json.empty());
  const SourceEntry* sonnet = Find(*c, "anthropic/claude-sonnet-4-5");
  ASSERT_NE(sonnet, nullptr);
  EXPECT_DOUBLE_EQ(sonnet->price.base.cache_creation, 3.75);
  EXPECT_TRUE(sonnet->price.base.cache_creation_configured);
}

TEST(ParseSourceTest, ModelsDevLegacyRootAndBadTiers) {
  auto c = ParseModelsDev(R"({"p":{"models":{
      "a":{"cost":{"input":1,"output":2,"tiers":[{"input":2,"tier":{"type":"context","size":100}},
                                               {"input":3,"tier":{"type":"context"}}]}},
      "b":{"name":"no cost"},
      "c":{"cost":{"reasoning":1}}}}})");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_catalog_metadata);
  ASSERT_EQ(c->entries.size(), 1u);
  EXPECT_EQ(c->entries[0].key, "p/a");
  EXPECT_TRUE(c->entries[0].price.context_tiers.empty());  // one bad context entry drops all
}

TEST(ParseSourceTest, LiteLlm) {
  auto c = ParseLiteLlm(ReadFixture("litellm-subset.json"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  // 31 keys − sample_spec − dashscope/qwen3-max (tiered_pricing only).
  EXPECT_EQ(c->entries.size(), 29u);
  EXPECT_EQ(Find(*c, "sample_spec"), nullptr);
  const SourceEntry* gpt5 = Find(*c, "gpt-5");
  ASSERT_NE(gpt5, nullptr);
  EXPECT_DOUBLE_EQ(gpt5->price.base.prompt, 1.25);
  EXPECT_DOUBLE_EQ(gpt5->price.base.completion, 10);
  EXPECT_DOUBLE_EQ(gpt5->price.base.cache_read, 0.125);
  EXPECT_DOUBLE_EQ(gpt5->price.base.cache, 0.125);
  const SourceEntry* opus = Find(*c, "claude-opus-4-1");
  ASSERT_NE(opus, nullptr);
  EXPECT_DOUBLE_EQ(opus->price.base.cache_creation, 18.75);
  const SourceEntry* grok = Find(*c, "xai/grok-4.3");
  ASSERT_NE(grok, nullptr);
  EXPECT_EQ(grok->alias, "grok-4.3");
}

TEST(ParseSourceTest, OpenRouterBothSnapshots) {
  auto aug = ParseOpenRouter(ReadFixture("openrouter-models-subset.json"));
  ASSERT_TRUE(aug.ok()) << aug.status().message();
  EXPECT_EQ(aug->entries.size(), 22u);  // openrouter/auto ("-1") is skipped
  EXPECT_EQ(aug->skipped, 1);
  EXPECT_EQ(Find(*aug, "openrouter/auto"), nullptr);
  const SourceEntry* sonnet = Find(*aug, "anthropic/claude-sonnet-4.5");
  ASSERT_NE(sonnet, nullptr);
  EXPECT_DOUBLE_EQ(sonnet->price.base.prompt, 3);
  EXPECT_DOUBLE_EQ(sonnet->price.base.cache_creation, 3.75);
  const SourceEntry* free_model = Find(*aug, "z-ai/glm-5.2:free");
  ASSERT_NE(free_model, nullptr);
  EXPECT_DOUBLE_EQ(free_model->price.base.prompt, 0);
  EXPECT_TRUE(free_model->price.base.prompt_configured);

  auto may = ParseOpenRouter(ReadFixture("openrouter-models-subset-2026-05-15.json"));
  ASSERT_TRUE(may.ok());
  EXPECT_EQ(may->entries.size(), 22u);
  EXPECT_NE(Find(*may, "x-ai/grok-4"), nullptr);
  EXPECT_NEAR(Find(*may, "moonshotai/kimi-k2.6")->price.base.prompt, 0.73, 1e-12);
  EXPECT_NEAR(Find(*aug, "moonshotai/kimi-k2.6")->price.base.prompt, 0.5605, 1e-12);
}

TEST(ParseSourceTest, MalformedDocumentsAreErrors) {
  EXPECT_FALSE(ParseSource(SourceId::kModelsDev, "not json").ok());
  EXPECT_FALSE(ParseSource(SourceId::kOpenRouter, R"({"nodata":1})").ok());
}

TEST(ProxyTest, EnvironmentLookup) {
  std::map<std::string, std::string> env;
  auto get = [&](const char* name) -> std::optional<std::string> {
    auto it = env.find(name);
    return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  EXPECT_FALSE(ProxyForUrl("https://models.dev/catalog.json", get).has_value());
  env["HTTPS_PROXY"] = "http://proxy:3128";
  env["HTTP_PROXY"] = "http://plain:8080";
  EXPECT_EQ(ProxyForUrl("https://models.dev/catalog.json", get), "http://proxy:3128");
  EXPECT_EQ(ProxyForUrl("http://example.com/x", get), "http://plain:8080");
  env["NO_PROXY"] = "localhost, .models.dev";
  EXPECT_FALSE(ProxyForUrl("https://models.dev/catalog.json", get).has_value());
  EXPECT_TRUE(ProxyForUrl("https://openrouter.ai/api/v1/models", get).has_value());
}

TEST(SyncTest, MatchesInPriorityOrderAndStopsEarly) {
  auto source = Fixtures();
  SyncOptions o;
  o.models = {"gpt-5", "claude-sonnet-4-5", "grok-4.3"};
  o.explicit_models = true;
  auto r = RunSync(o, {}, *source, 1000);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->matched.size(), 3u);
  EXPECT_EQ(r->matched.at("gpt-5").source, "models.dev");
  EXPECT_EQ(r->matched.at("gpt-5").source_model_id, "openai/gpt-5");
  EXPECT_EQ(r->matched.at("grok-4.3").source_model_id, "xai/grok-4.3");
  EXPECT_EQ(r->matched.at("gpt-5").synced_at_ms, 1000);
  EXPECT_EQ(r->source, "models.dev");
  EXPECT_EQ(r->imported, 3);
  EXPECT_EQ(source->FetchCount(SourceId::kLiteLlm), 0);  // all matched by models.dev
  EXPECT_EQ(r->added.size(), 3u);
}

TEST(SyncTest, FallsThroughToLowerSourcesAndReportsMulti) {
  auto source = Fixtures();
  SyncOptions o;
  // qwen3-coder: LiteLLM provider-prefix tail; kimi-k2: OpenRouter alias; claude-sonnet:
  // nobody unique (candidates only).
  o.models = {"gpt-5", "qwen3-coder", "kimi-k2", "claude-sonnet"};
  o.explicit_models = true;
  auto r = RunSync(o, {}, *source, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->matched.at("gpt-5").source, "models.dev");
  EXPECT_EQ(r->matched.at("qwen3-coder").source, "litellm");
  EXPECT_EQ(r->matched.at("qwen3-coder").source_model_id, "openrouter/qwen/qwen3-coder");
  EXPECT_EQ(r->matched.at("kimi-k2").source, "openrouter");
  EXPECT_EQ(r->matched.at("kimi-k2").source_model_id, "moonshotai/kimi-k2");
  EXPECT_EQ(r->source, "multi");
  EXPECT_EQ(r->sources.size(), 3u);
  EXPECT_EQ(r->skipped, 1);  // openrouter/auto
  ASSERT_EQ(r->unmatched.size(), 1u);
  EXPECT_EQ(r->unmatched[0], "claude-sonnet");
  ASSERT_EQ(r->candidates.size(), 1u);
  EXPECT_FALSE(r->candidates[0].second.empty());
  EXPECT_GE(r->candidates[0].second[0].score, 0.55);
}

TEST(SyncTest, LowerSourceUsedWhenPreferredFailsAndPreservesItsPrices) {
  auto source = Fixtures();
  source->SetError(SourceId::kModelsDev, "dial tcp: timeout");
  PriceTable current;
  PriceRecord old;
  old.base.prompt = 99;
  old.source = "models.dev";
  current["gpt-5"] = old;
  SyncOptions o;
  o.models = {"gpt-5", "gpt-5-mini"};
  o.explicit_models = true;
  auto r = RunSync(o, current, *source, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->matched.count("gpt-5"), 0u);
  ASSERT_EQ(r->preserved.size(), 1u);
  EXPECT_EQ(r->preserved[0], "gpt-5");
  EXPECT_EQ(r->matched.at("gpt-5-mini").source, "litellm");
  EXPECT_DOUBLE_EQ(r->prices.at("gpt-5").base.prompt, 99);
  ASSERT_FALSE(r->source_results.empty());
  EXPECT_EQ(r->source_results[0].error, "dial tcp: timeout");
}

TEST(SyncTest, AllSourcesFailing) {
  StaticPriceSource empty;
  SyncOptions o;
  o.models = {"gpt-5"};
  o.explicit_models = true;
  auto r = RunSync(o, {}, empty, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kModelPriceSyncFailed);
  EXPECT_EQ(r.status().message().rfind(
                "model price sync failed; existing prices were not changed: models.dev", 0),
            0u);
}

TEST(SyncTest, PriceChangesBetweenSnapshotsAreReported) {
  TempDb t;
  auto may = Fixtures("openrouter-models-subset-2026-05-15.json");
  may->SetError(SourceId::kModelsDev, "down");
  may->SetError(SourceId::kLiteLlm, "down");
  SyncOptions o;
  o.models = {"moonshotai/kimi-k2.6", "moonshotai/kimi-k2"};
  auto first = SyncPrices(t.db(), *may, o, 10);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(first->added.size(), 2u);
  EXPECT_EQ(first->source, "openrouter");

  auto aug = Fixtures();
  aug->SetError(SourceId::kModelsDev, "down");
  aug->SetError(SourceId::kLiteLlm, "down");
  auto second = SyncPrices(t.db(), *aug, o, 20);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->updated.size(), 1u);
  EXPECT_EQ(second->updated[0], "moonshotai/kimi-k2.6");
  ASSERT_EQ(second->unchanged.size(), 1u);
  EXPECT_EQ(second->unchanged[0], "moonshotai/kimi-k2");
  auto stored = ListPrices(t.db());
  ASSERT_TRUE(stored.ok());
  EXPECT_NEAR(stored->at("moonshotai/kimi-k2.6").base.prompt, 0.5605, 1e-12);
  EXPECT_EQ(stored->at("moonshotai/kimi-k2.6").synced_at_ms, 20);
}

TEST(SyncTest, PreviewWritesNothing) {
  TempDb t;
  auto source = Fixtures();
  SyncOptions o;
  o.models = {"gpt-5"};
  o.preview = true;
  auto r = SyncPrices(t.db(), *source, o, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->preview);
  EXPECT_EQ(r->added.size(), 1u);
  EXPECT_EQ(r->prices.count("gpt-5"), 1u);
  auto stored = ListPrices(t.db());
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->empty());
}

TEST(SyncTest, LocalRowsSurviveAndDefaultModelsComeFromUsage) {
  TempDb t;
  PriceTable manual;
  PriceRecord mine;
  mine.base.prompt = 7;
  mine.base.prompt_configured = true;
  mine.source = "manual";
  manual["my-local-alias"] = mine;
  manual["claude-haiku-4-5"] = mine;
  ASSERT_TRUE(ReplacePrices(t.db(), manual, 1).ok());
  t.AddEvent(1, "gpt-5", "gpt-5", "");
  auto source = Fixtures();
  auto r = SyncPrices(t.db(), *source, SyncOptions{}, 5);  // no list: usage models
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->matched.size(), 1u);
  EXPECT_EQ(r->matched.count("gpt-5"), 1u);
  auto stored = ListPrices(t.db());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 3u);
  EXPECT_DOUBLE_EQ(stored->at("my-local-alias").base.prompt, 7);
  EXPECT_EQ(stored->at("claude-haiku-4-5").source, "manual");
  // Spec §7.4: an explicit sync that matches a manually priced model overwrites it.
  SyncOptions o;
  o.models = {"claude-haiku-4-5"};
  ASSERT_TRUE(SyncPrices(t.db(), *source, o, 6).ok());
  stored = ListPrices(t.db());
  EXPECT_EQ(stored->at("claude-haiku-4-5").source, "litellm");
  EXPECT_EQ(stored->at("my-local-alias").source, "manual");
}

}  // namespace
}  // namespace cpamp::pricing
