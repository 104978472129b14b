// Price resolution and the cost formula (spec storage §6.1, §7.2, §7.3).
//
// Cost is linear in the token counts, so it is computed once per aggregate row from summed
// categories instead of per event; TokenCounts carries both the totals and the long-context
// (> 272,000 normalized input) sums so the legacy long-context surcharge can be split off
// without going back to events. Rule order follows §7.3: an active context band wins and
// stacks nothing; otherwise the legacy long-context split (models without context tiers in
// the gpt-5.4/5.5/5.6 families), then an explicit service-tier rule, then the base price times
// the service-tier multiplier. Model families are always judged on the lower-cased last path
// segment of the behaviour (billing) model. Read-time resolution is exact and case-sensitive;
// the only fallback is the built-in GPT-5.6 table.
#include <algorithm>

#include "base/strings.h"
#include "pricing/internal.h"
#include "pricing/pricing.h"

namespace cpamp::pricing {
namespace {

using internal::IsFamily;
using internal::LastSegmentLower;

struct OfficialPrice {
  std::string_view family;
  double prompt, completion, cache, creation;
};
constexpr OfficialPrice kGpt56Official[] = {
    {"gpt-5.6-sol", 5, 30, 0.5, 6.25},
    {"gpt-5.6-terra", 2.5, 15, 0.25, 3.125},
    {"gpt-5.6-luna", 1, 6, 0.1, 1.25},
};

const OfficialPrice* OfficialFor(std::string_view model) {
  std::string segment = LastSegmentLower(model);
  for (const OfficialPrice& p : kGpt56Official) {
    if (IsFamily(segment, p.family)) return &p;
  }
  return nullptr;
}

bool IsGpt56(std::string_view model) { return IsFamily(LastSegmentLower(model), "gpt-5.6"); }

// §7.2 step 4: fills unconfigured prompt/completion from the official table and derives
// unconfigured read/creation from the prompt price.
void FillGpt56(PriceRecord& rec, std::string_view model) {
  const OfficialPrice* official = OfficialFor(model);
  PriceFields& p = rec.base;
  if (official != nullptr && !p.prompt_configured) {
    p.prompt = official->prompt;
    p.prompt_configured = true;
  }
  if (official != nullptr && !p.completion_configured) {
    p.completion = official->completion;
    p.completion_configured = true;
  }
  if (!p.cache_read_configured) {
    p.cache_read = 0.1 * p.prompt;
    p.cache_read_configured = true;
  }
  if (!p.cache_creation_configured) {
    p.cache_creation = 1.25 * p.prompt;
    p.cache_creation_configured = true;
  }
}

bool IsPriorityTier(std::string_view tier) { return tier == "priority" || tier == "fast"; }

TokenCounts LongPart(const TokenCounts& t) {
  TokenCounts l;
  l.input = std::clamp<int64_t>(t.long_input, 0, std::max<int64_t>(t.input, 0));
  l.output = std::clamp<int64_t>(t.long_output, 0, std::max<int64_t>(t.output, 0));
  l.cached = std::clamp<int64_t>(t.long_cached, 0, std::max<int64_t>(t.cached, 0));
  l.cache_read = std::clamp<int64_t>(t.long_cache_read, 0, std::max<int64_t>(t.cache_read, 0));
  l.cache_creation =
      std::clamp<int64_t>(t.long_cache_creation, 0, std::max<int64_t>(t.cache_creation, 0));
  return l;
}

TokenCounts Minus(const TokenCounts& t, const TokenCounts& l) {
  TokenCounts s;
  s.input = t.input - l.input;
  s.output = t.output - l.output;
  s.cached = t.cached - l.cached;
  s.cache_read = t.cache_read - l.cache_read;
  s.cache_creation = t.cache_creation - l.cache_creation;
  return s;
}

}  // namespace

TokenCounts TokenCounts::ForEvent(int64_t input, int64_t output, int64_t cached, int64_t cache_read,
                                  int64_t cache_creation) {
  TokenCounts t;
  t.input = input;
  t.output = output;
  t.cached = cached;
  t.cache_read = cache_read;
  t.cache_creation = cache_creation;
  if (IsLongContext(input)) {
    t.long_input = input;
    t.long_output = output;
    t.long_cached = cached;
    t.long_cache_read = cache_read;
    t.long_cache_creation = cache_creation;
  }
  return t;
}

TokenCounts& TokenCounts::operator+=(const TokenCounts& o) {
  input += o.input;
  output += o.output;
  cached += o.cached;
  cache_read += o.cache_read;
  cache_creation += o.cache_creation;
  long_input += o.long_input;
  long_output += o.long_output;
  long_cached += o.long_cached;
  long_cache_read += o.long_cache_read;
  long_cache_creation += o.long_cache_creation;
  return *this;
}

bool IsLongContext(int64_t normalized_input) {
  return normalized_input > kLongContextThresholdTokens;
}

std::string PricingModelFor(const PriceTable& table, std::string_view billing_model,
                            std::string_view analytics_model, std::string_view requested_model) {
  for (std::string_view m : {billing_model, analytics_model, requested_model}) {
    if (!m.empty() && table.find(m) != table.end()) return std::string(m);
  }
  return std::string(billing_model);
}

int64_t ContextBandFor(const PriceRecord* price, int64_t normalized_input) {
  int64_t band = kBaseContextBand;
  if (price == nullptr) return band;
  for (const ContextTier& t : price->context_tiers) {
    if (normalized_input > t.threshold_tokens && t.threshold_tokens > band)
      band = t.threshold_tokens;
  }
  return band;
}

std::optional<PriceRecord> BuiltinGpt56Price(std::string_view model) {
  const OfficialPrice* official = OfficialFor(model);
  if (official == nullptr) return std::nullopt;
  PriceRecord rec;
  rec.base = PriceFields{official->prompt,
                         official->completion,
                         official->cache,
                         official->cache,
                         official->creation,
                         true,
                         true,
                         true,
                         true,
                         true};
  rec.source = "builtin";
  return rec;
}

std::optional<PriceRecord> ResolvePrice(const PriceTable& table, std::string_view pricing_model,
                                        std::span<const std::string> candidates) {
  std::optional<PriceRecord> found;
  std::string_view found_for;
  if (auto it = table.find(pricing_model); !pricing_model.empty() && it != table.end()) {
    found = it->second;
    found_for = pricing_model;
  }
  for (size_t i = 0; !found && i < candidates.size(); ++i) {
    if (auto it = table.find(candidates[i]); !candidates[i].empty() && it != table.end()) {
      found = it->second;
      found_for = candidates[i];
    }
  }
  for (size_t i = 0; !found && i < candidates.size(); ++i) {
    found = BuiltinGpt56Price(candidates[i]);
    found_for = candidates[i];
  }
  if (!found) return std::nullopt;
  std::string_view behaviour = candidates.empty() ? found_for : std::string_view(candidates[0]);
  if (IsGpt56(behaviour)) {
    FillGpt56(*found, behaviour);
  } else if (IsGpt56(found_for)) {
    FillGpt56(*found, found_for);
  }
  return found;
}

double ServiceTierMultiplier(std::string_view behaviour_model, std::string_view service_tier) {
  std::string tier = ToLower(Trim(service_tier));
  if (tier == "flex" || tier == "batch") return 0.5;
  if (!IsPriorityTier(tier)) return 1;
  std::string segment = LastSegmentLower(behaviour_model);
  if (IsFamily(segment, "gpt-5.6")) return 2;
  if (IsFamily(segment, "gpt-5.5")) return 2.5;
  if (IsFamily(segment, "gpt-5.4-mini")) return 2;
  if (IsFamily(segment, "gpt-5.4")) return 2;
  if (IsFamily(segment, "gpt-5.3-codex")) return 2;
  return 1;
}

bool UsesLegacyLongContext(std::string_view behaviour_model) {
  std::string segment = LastSegmentLower(behaviour_model);
  if (IsFamily(segment, "gpt-5.6")) return true;
  for (std::string_view family : {"gpt-5.5", "gpt-5.4", "gpt-5.4-pro"}) {
    if (segment == family) return true;
    std::string dated = std::string(family) + "-20";
    if (segment.rfind(dated, 0) == 0) return true;
  }
  return false;
}

double SegmentCost(const PriceFields& p, const TokenCounts& t, double mi, double mo) {
  const double read = static_cast<double>(t.cached) + static_cast<double>(t.cache_read);
  const double prompt_tokens =
      std::max(static_cast<double>(t.input) - read - static_cast<double>(t.cache_creation), 0.0);
  const double read_price = (p.cache_read_configured || p.cache_read > 0) ? p.cache_read
                            : p.cache > 0                                 ? p.cache
                                                                          : 0.1 * p.prompt;
  const double creation_price =
      (p.cache_creation_configured || p.cache_creation > 0) ? p.cache_creation : p.prompt;
  const double sum = prompt_tokens * p.prompt * mi + static_cast<double>(t.cached) * p.cache * mi +
                     static_cast<double>(t.cache_read) * read_price * mi +
                     static_cast<double>(t.cache_creation) * creation_price * mi +
                     static_cast<double>(t.output) * p.completion * mo;
  return sum / 1e6;
}

double Cost(const PriceRecord& price, const TokenCounts& tokens, std::string_view service_tier,
            int64_t context_band, std::string_view behaviour_model) {
  // 1. Active context band: the tier's price for the whole row, nothing stacked.
  if (context_band > 0) {
    for (const ContextTier& t : price.context_tiers) {
      if (t.threshold_tokens == context_band && t.price.AnyConfigured()) {
        return SegmentCost(price.base.OverriddenBy(t.price), tokens, 1, 1);
      }
    }
  }
  const std::string tier = ToLower(Trim(service_tier));
  const ServiceTierRule* rule = nullptr;
  if (!tier.empty()) {
    for (const ServiceTierRule& r : price.service_tiers) {
      if (r.mode == tier || r.service_tier == tier) {
        rule = &r;
        break;
      }
    }
  }
  const PriceFields tier_price =
      rule != nullptr ? price.base.OverriddenBy(rule->price) : price.base;
  const double multiplier = ServiceTierMultiplier(behaviour_model, tier);

  // 2. Legacy long-context surcharge.
  if (price.context_tiers.empty() && UsesLegacyLongContext(behaviour_model) &&
      tokens.long_input > 0) {
    const TokenCounts long_part = LongPart(tokens);
    const TokenCounts short_part = Minus(tokens, long_part);
    if (IsPriorityTier(tier)) {
      const double short_cost = rule != nullptr
                                    ? SegmentCost(tier_price, short_part, 1, 1)
                                    : SegmentCost(price.base, short_part, 1, 1) * multiplier;
      return short_cost + SegmentCost(price.base, long_part, 2, 1.5);
    }
    if (rule != nullptr) {
      return SegmentCost(tier_price, short_part, 1, 1) + SegmentCost(tier_price, long_part, 2, 1.5);
    }
    return (SegmentCost(price.base, short_part, 1, 1) +
            SegmentCost(price.base, long_part, 2, 1.5)) *
           multiplier;
  }
  // 3. Explicit service-tier rule.
  if (rule != nullptr) return SegmentCost(tier_price, tokens, 1, 1);
  // 4. Base price times the multiplier.
  return SegmentCost(price.base, tokens, 1, 1) * multiplier;
}

double CostForRow(const PriceTable& table, const CostRow& row) {
  std::vector<std::string> candidates;
  if (!row.billing_model.empty()) candidates.push_back(row.billing_model);
  if (!row.analytics_model.empty()) candidates.push_back(row.analytics_model);
  std::optional<PriceRecord> price = ResolvePrice(table, row.pricing_model, candidates);
  if (!price) return 0;
  std::string_view behaviour =
      candidates.empty() ? std::string_view(row.pricing_model) : std::string_view(candidates[0]);
  return Cost(*price, row.tokens, row.service_tier, row.context_band, behaviour);
}

}  // namespace cpamp::pricing
