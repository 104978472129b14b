// Price records: the camelCase JSON codec of spec api §4.7, validation (§7.1) and the price
// structure revision (§3.2).
//
// Decoding is tolerant the way the panel and older exports need: numbers may be strings, a
// missing "<field>Configured" flag is inferred from the value being > 0 (the v1.1.0 shape and
// the spec's own service-tier example carry no flags), tier identifiers are trimmed and
// lower-cased and context tiers are sorted by threshold. Encoding omits false flags, empty
// source fields, empty tier lists and a zero syncedAtMs, and always writes the five base
// prices. Validation is separate from decoding so that sync can count invalid entries as
// `skipped` while PUT rejects them.
#include <openssl/sha.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "base/strings.h"
#include "pricing/internal.h"
#include "pricing/pricing.h"

namespace cpamp::pricing {
namespace bj = boost::json;

namespace internal {

std::optional<double> NumberOf(const bj::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_string()) {
    std::string text = Trim(std::string_view(v.get_string()));
    if (text.empty()) return std::nullopt;
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return std::nullopt;
    return d;
  }
  return std::nullopt;
}

std::optional<double> NumberField(const bj::object& o, std::string_view key) {
  const bj::value* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  return NumberOf(*v);
}

std::string LastSegmentLower(std::string_view model) {
  size_t slash = model.rfind('/');
  if (slash != std::string_view::npos) model.remove_prefix(slash + 1);
  return ToLower(Trim(model));
}

bool IsFamily(std::string_view segment, std::string_view family) {
  if (segment == family) return true;
  return segment.size() > family.size() && segment.substr(0, family.size()) == family &&
         segment[family.size()] == '-';
}

size_t RuneCount(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace internal

bool PriceFields::AnyConfigured() const {
  return prompt_configured || completion_configured || cache_configured || cache_read_configured ||
         cache_creation_configured;
}

PriceFields PriceFields::OverriddenBy(const PriceFields& over) const {
  PriceFields out = *this;
  if (over.prompt_configured) {
    out.prompt = over.prompt;
    out.prompt_configured = true;
  }
  if (over.completion_configured) {
    out.completion = over.completion;
    out.completion_configured = true;
  }
  if (over.cache_configured) {
    out.cache = over.cache;
    out.cache_configured = true;
  }
  if (over.cache_read_configured) {
    out.cache_read = over.cache_read;
    out.cache_read_configured = true;
  }
  if (over.cache_creation_configured) {
    out.cache_creation = over.cache_creation;
    out.cache_creation_configured = true;
  }
  return out;
}

bool PriceRecord::SamePricing(const PriceRecord& other) const {
  return base == other.base && source == other.source && source_model_id == other.source_model_id &&
         context_tiers == other.context_tiers && service_tiers == other.service_tiers;
}

namespace {

void PutFields(bj::object& o, const PriceFields& p, bool with_cache_flag, bool always_prices) {
  auto put_price = [&](std::string_view key, double v, bool configured) {
    if (always_prices || configured || v != 0) o[key] = v;
  };
  put_price("prompt", p.prompt, p.prompt_configured);
  put_price("completion", p.completion, p.completion_configured);
  put_price("cache", p.cache, p.cache_configured);
  put_price("cacheRead", p.cache_read, p.cache_read_configured);
  put_price("cacheCreation", p.cache_creation, p.cache_creation_configured);
  if (p.prompt_configured) o["promptConfigured"] = true;
  if (p.completion_configured) o["completionConfigured"] = true;
  if (with_cache_flag && p.cache_configured) o["cacheConfigured"] = true;
  if (p.cache_read_configured) o["cacheReadConfigured"] = true;
  if (p.cache_creation_configured) o["cacheCreationConfigured"] = true;
}

Status BadPrice(std::string_view model, std::string_view reason) {
  return Error(ErrorCode::kBadRequest,
               fmt::format("invalid model price for {}: {}", model, reason));
}

// Reads the five prices and flags of `o`; `with_cache_flag` is false for the base row.
Result<PriceFields> FieldsFromJson(std::string_view model, const bj::object& o,
                                   bool with_cache_flag) {
  PriceFields p;
  struct Spec {
    std::string_view key;
    std::string_view flag;
    double* value;
    bool* configured;
  };
  Spec specs[] = {
      {"prompt", "promptConfigured", &p.prompt, &p.prompt_configured},
      {"completion", "completionConfigured", &p.completion, &p.completion_configured},
      {"cache", "cacheConfigured", &p.cache, &p.cache_configured},
      {"cacheRead", "cacheReadConfigured", &p.cache_read, &p.cache_read_configured},
      {"cacheCreation", "cacheCreationConfigured", &p.cache_creation, &p.cache_creation_configured},
  };
  for (const Spec& s : specs) {
    const bj::value* v = o.if_contains(s.key);
    if (v != nullptr && !v->is_null()) {
      std::optional<double> d = internal::NumberOf(*v);
      if (!d) return BadPrice(model, fmt::format("{} must be a number", s.key));
      *s.value = *d;
    }
    if (!with_cache_flag && s.key == "cache") continue;
    const bj::value* flag = o.if_contains(s.flag);
    if (flag != nullptr && flag->is_bool()) {
      *s.configured = flag->get_bool();
    } else {
      *s.configured = *s.value > 0;
    }
  }
  return p;
}

Status CheckFields(std::string_view model, std::string_view where, const PriceFields& p) {
  const std::pair<std::string_view, double> values[] = {{"prompt", p.prompt},
                                                        {"completion", p.completion},
                                                        {"cache", p.cache},
                                                        {"cacheRead", p.cache_read},
                                                        {"cacheCreation", p.cache_creation}};
  for (const auto& [name, v] : values) {
    if (!std::isfinite(v) || v < 0) {
      return BadPrice(model, fmt::format("{}{} must be a finite number >= 0", where, name));
    }
  }
  return Status::Ok();
}

}  // namespace

bj::object PriceToJson(const PriceRecord& price) {
  bj::object o;
  PutFields(o, price.base, /*with_cache_flag=*/false, /*always_prices=*/true);
  if (!price.source.empty()) o["source"] = price.source;
  if (!price.source_model_id.empty()) o["sourceModelId"] = price.source_model_id;
  if (!price.raw_json.empty()) o["rawJson"] = price.raw_json;
  if (!price.context_tiers.empty()) {
    bj::array tiers;
    for (const ContextTier& t : price.context_tiers) {
      bj::object to;
      to["thresholdTokens"] = t.threshold_tokens;
      PutFields(to, t.price, /*with_cache_flag=*/true, /*always_prices=*/false);
      tiers.push_back(std::move(to));
    }
    o["contextTiers"] = std::move(tiers);
  }
  if (!price.service_tiers.empty()) {
    bj::array tiers;
    for (const ServiceTierRule& t : price.service_tiers) {
      bj::object to;
      to["mode"] = t.mode;
      to["serviceTier"] = t.service_tier;
      PutFields(to, t.price, /*with_cache_flag=*/true, /*always_prices=*/false);
      tiers.push_back(std::move(to));
    }
    o["serviceTiers"] = std::move(tiers);
  }
  o["updatedAtMs"] = price.updated_at_ms;
  if (price.synced_at_ms > 0) o["syncedAtMs"] = price.synced_at_ms;
  return o;
}

bj::object PriceTableToJson(const PriceTable& table) {
  bj::object o;
  for (const auto& [model, price] : table) o[model] = PriceToJson(price);
  return o;
}

Result<PriceRecord> PriceFromJson(std::string_view model, const bj::value& value) {
  if (!value.is_object()) return BadPrice(model, "price must be an object");
  const bj::object& o = value.get_object();
  PriceRecord rec;
  CPAMP_ASSIGN_OR_RETURN(rec.base, FieldsFromJson(model, o, /*with_cache_flag=*/false));
  auto text = [&](std::string_view key) -> std::string {
    const bj::value* v = o.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
  };
  auto integer = [&](std::string_view key) -> int64_t {
    const bj::value* v = o.if_contains(key);
    if (v == nullptr) return 0;
    std::optional<double> d = internal::NumberOf(*v);
    return d && std::isfinite(*d) ? static_cast<int64_t>(*d) : 0;
  };
  rec.source = Trim(text("source"));
  rec.source_model_id = Trim(text("sourceModelId"));
  rec.raw_json = text("rawJson");
  rec.updated_at_ms = integer("updatedAtMs");
  rec.synced_at_ms = integer("syncedAtMs");

  if (const bj::value* tiers = o.if_contains("contextTiers");
      tiers != nullptr && !tiers->is_null()) {
    if (!tiers->is_array()) return BadPrice(model, "contextTiers must be an array");
    for (const bj::value& tv : tiers->get_array()) {
      if (!tv.is_object()) return BadPrice(model, "context tier must be an object");
      const bj::object& to = tv.get_object();
      ContextTier tier;
      std::optional<double> threshold = internal::NumberField(to, "thresholdTokens");
      if (!threshold || !std::isfinite(*threshold) || *threshold != std::floor(*threshold)) {
        return BadPrice(model, "context tier thresholdTokens must be an integer");
      }
      tier.threshold_tokens = static_cast<int64_t>(*threshold);
      CPAMP_ASSIGN_OR_RETURN(tier.price, FieldsFromJson(model, to, /*with_cache_flag=*/true));
      rec.context_tiers.push_back(tier);
    }
    std::stable_sort(rec.context_tiers.begin(), rec.context_tiers.end(),
                     [](const ContextTier& a, const ContextTier& b) {
                       return a.threshold_tokens < b.threshold_tokens;
                     });
  }
  if (const bj::value* tiers = o.if_contains("serviceTiers");
      tiers != nullptr && !tiers->is_null()) {
    if (!tiers->is_array()) return BadPrice(model, "serviceTiers must be an array");
    for (const bj::value& tv : tiers->get_array()) {
      if (!tv.is_object()) return BadPrice(model, "service tier must be an object");
      const bj::object& to = tv.get_object();
      ServiceTierRule rule;
      const bj::value* mode = to.if_contains("mode");
      const bj::value* tier = to.if_contains("serviceTier");
      if (mode != nullptr && mode->is_string()) rule.mode = ToLower(Trim(mode->get_string()));
      if (tier != nullptr && tier->is_string()) {
        rule.service_tier = ToLower(Trim(tier->get_string()));
      }
      CPAMP_ASSIGN_OR_RETURN(rule.price, FieldsFromJson(model, to, /*with_cache_flag=*/true));
      rec.service_tiers.push_back(std::move(rule));
    }
  }
  return rec;
}

Status ValidatePrice(std::string_view model, const PriceRecord& price) {
  if (Trim(model).empty()) return BadPrice(model, "model is required");
  CPAMP_RETURN_IF_ERROR(CheckFields(model, "", price.base));
  std::set<int64_t> thresholds;
  for (const ContextTier& t : price.context_tiers) {
    if (t.threshold_tokens <= 0) return BadPrice(model, "context tier thresholdTokens must be > 0");
    if (!thresholds.insert(t.threshold_tokens).second) {
      return BadPrice(model, fmt::format("duplicate context tier {}", t.threshold_tokens));
    }
    CPAMP_RETURN_IF_ERROR(CheckFields(model, "context tier ", t.price));
    if (!t.price.AnyConfigured()) {
      return BadPrice(model,
                      fmt::format("context tier {} has no configured price", t.threshold_tokens));
    }
  }
  std::set<std::string, std::less<>> identifiers;
  for (const ServiceTierRule& r : price.service_tiers) {
    if (r.mode.empty() || r.service_tier.empty()) {
      return BadPrice(model, "service tier mode and serviceTier are required");
    }
    // One rule may use the same identifier for both fields; two rules may not share one.
    std::set<std::string, std::less<>> own = {r.mode, r.service_tier};
    for (const std::string& id : own) {
      if (!identifiers.insert(id).second) {
        return BadPrice(model, fmt::format("duplicate service tier {}", id));
      }
    }
    CPAMP_RETURN_IF_ERROR(CheckFields(model, "service tier ", r.price));
    if (!r.price.AnyConfigured()) {
      return BadPrice(model, fmt::format("service tier {} has no configured price", r.mode));
    }
  }
  return Status::Ok();
}

std::string ModelPriceStructureRevision(const PriceTable& table) {
  std::string bytes = "context-v1";
  auto put_u64 = [&](uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(v >> shift));
  };
  for (const auto& [model, price] : table) {  // std::map: byte order
    put_u64(model.size());
    bytes += model;
    std::vector<int64_t> thresholds;
    for (const ContextTier& t : price.context_tiers) thresholds.push_back(t.threshold_tokens);
    std::sort(thresholds.begin(), thresholds.end());
    put_u64(thresholds.size());
    for (int64_t t : thresholds) put_u64(static_cast<uint64_t>(t));
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return "context-v1:" +
         HexEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

}  // namespace cpamp::pricing
