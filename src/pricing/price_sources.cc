// The three price sources of spec storage §7.5: parsers for their documents, the environment
// proxy lookup, the HTTP-backed source and the fixed-body source used by tests.
//
// Parsers are pure and tolerant: numbers may be strings, per-token sources are scaled to per
// 1M tokens, a field counts as configured when its key is present, and entries without any
// price key are ignored. Entries that carry prices but fail ValidatePrice (OpenRouter's "-1"
// router pseudo-model, non-numeric values) are dropped and counted in `skipped`, which the sync
// reports. models.dev context tiers are all-or-nothing: one bad context entry drops them all.
// The HTTP source caches the models.dev document with its ETag so repeated syncs revalidate
// instead of downloading ~1 MB again. A proxy from the environment (HTTPS_PROXY / HTTP_PROXY /
// ALL_PROXY, honouring NO_PROXY) is used through http_client's CONNECT tunnel.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/json.h"
#include "base/strings.h"
#include "clients/http/http_client.h"
#include "pricing/internal.h"
#include "pricing/pricing.h"

namespace cpamp::pricing {
namespace bj = boost::json;
using internal::NumberField;

namespace {

std::string AliasOf(std::string_view key) {
  size_t slash = key.find('/');
  return slash == std::string_view::npos ? std::string() : std::string(key.substr(slash + 1));
}

// Sets one price from the first present key of `keys` scaled by `scale`. Returns false when a
// present key does not hold a number (the entry is then invalid).
bool TakePrice(const bj::object& o, std::initializer_list<std::string_view> keys, double scale,
               double* value, bool* configured) {
  for (std::string_view key : keys) {
    const bj::value* v = o.if_contains(key);
    if (v == nullptr || v->is_null()) continue;
    std::optional<double> d = internal::NumberOf(*v);
    if (!d) {
      *value = std::nan("");
    } else {
      *value = *d * scale;
    }
    *configured = true;
    return d.has_value();
  }
  return true;
}

// models.dev cost object {input, output, cache_read, cache_write} (already per 1M).
// nullopt when none of the four keys is present; a NaN price marks an invalid value.
std::optional<PriceFields> ModelsDevFields(const bj::object& cost) {
  PriceFields p;
  TakePrice(cost, {"input"}, 1, &p.prompt, &p.prompt_configured);
  TakePrice(cost, {"output"}, 1, &p.completion, &p.completion_configured);
  TakePrice(cost, {"cache_read"}, 1, &p.cache_read, &p.cache_read_configured);
  TakePrice(cost, {"cache_write"}, 1, &p.cache_creation, &p.cache_creation_configured);
  if (!p.AnyConfigured()) return std::nullopt;
  p.cache = p.cache_read;
  p.cache_configured = p.cache_read_configured;
  return p;
}

void AddEntry(SourceCatalog& catalog, std::string key, PriceRecord rec) {
  rec.source = std::string(SourceName(catalog.source));
  rec.source_model_id = key;
  if (!ValidatePrice(key, rec).ok()) {
    ++catalog.skipped;
    return;
  }
  SourceEntry entry;
  entry.alias = AliasOf(key);
  entry.key = std::move(key);
  entry.price = std::move(rec);
  catalog.entries.push_back(std::move(entry));
}

void ParseModelsDevProvider(SourceCatalog& catalog, std::string_view pid, const bj::object& prov) {
  const bj::object* models = json::GetObject(prov, "models");
  if (models == nullptr) return;
  for (const auto& [mid, mv] : *models) {
    if (!mv.is_object()) continue;
    const bj::object& model = mv.get_object();
    const bj::object* cost = json::GetObject(model, "cost");
    if (cost == nullptr) continue;
    std::optional<PriceFields> base = ModelsDevFields(*cost);
    if (!base) continue;
    PriceRecord rec;
    rec.base = *base;
    rec.base.cache_configured = false;  // the base row has no cache flag
    if (const bj::array* tiers = json::GetArray(*cost, "tiers"); tiers != nullptr) {
      bool valid = true;
      std::vector<ContextTier> parsed;
      for (const bj::value& tv : *tiers) {
        if (!tv.is_object()) continue;
        const bj::object* tier = json::GetObject(tv.get_object(), "tier");
        if (tier == nullptr || json::GetString(*tier, "type").value_or("") != "context") continue;
        std::optional<double> size = NumberField(*tier, "size");
        std::optional<PriceFields> fields = ModelsDevFields(tv.get_object());
        if (!size || !fields || !std::isfinite(*size) || *size <= 0 || *size != std::floor(*size)) {
          valid = false;
          break;
        }
        parsed.push_back(ContextTier{static_cast<int64_t>(*size), *fields});
      }
      if (valid) {
        std::sort(parsed.begin(), parsed.end(), [](const ContextTier& a, const ContextTier& b) {
          return a.threshold_tokens < b.threshold_tokens;
        });
        PriceRecord probe;
        probe.context_tiers = parsed;
        if (ValidatePrice("probe", probe).ok()) rec.context_tiers = std::move(parsed);
      }
    }
    if (const bj::object* exp = json::GetObject(model, "experimental"); exp != nullptr) {
      const bj::object* modes = json::GetObject(*exp, "modes");
      const bj::object* fast = modes != nullptr ? json::GetObject(*modes, "fast") : nullptr;
      const bj::object* fast_cost = fast != nullptr ? json::GetObject(*fast, "cost") : nullptr;
      if (fast_cost != nullptr) {
        if (std::optional<PriceFields> fields = ModelsDevFields(*fast_cost)) {
          rec.service_tiers.push_back(ServiceTierRule{"fast", "priority", *fields});
        }
      }
    }
    rec.raw_json = bj::serialize(model);
    AddEntry(catalog, fmt::format("{}/{}", pid, std::string_view(mid)), std::move(rec));
  }
}

}  // namespace

std::string_view SourceName(SourceId id) {
  switch (id) {
    case SourceId::kModelsDev:
      return "models.dev";
    case SourceId::kLiteLlm:
      return "litellm";
    case SourceId::kOpenRouter:
      return "openrouter";
  }
  return "";
}

std::string_view SourceUrl(SourceId id) {
  switch (id) {
    case SourceId::kModelsDev:
      return "https://models.dev/catalog.json";
    case SourceId::kLiteLlm:
      return "https://raw.githubusercontent.com/BerriAI/litellm/main/"
             "model_prices_and_context_window.json";
    case SourceId::kOpenRouter:
      return "https://openrouter.ai/api/v1/models";
  }
  return "";
}

Result<SourceCatalog> ParseModelsDev(std::string_view body) {
  CPAMP_ASSIGN_OR_RETURN(bj::object root, json::ParseObject(body));
  SourceCatalog catalog;
  catalog.source = SourceId::kModelsDev;
  const bj::object* providers = json::GetObject(root, "providers");
  if (providers != nullptr) {
    if (const bj::object* models = json::GetObject(root, "models"); models != nullptr) {
      catalog.has_catalog_metadata = true;
      for (const auto& [id, v] : *models) catalog.canonical_ids.emplace_back(id);
    }
  } else {
    providers = &root;  // legacy api.json root {<pid>: {models: ...}}
  }
  for (const auto& [pid, pv] : *providers) {
    if (pv.is_object()) ParseModelsDevProvider(catalog, pid, pv.get_object());
  }
  return catalog;
}

Result<SourceCatalog> ParseLiteLlm(std::string_view body) {
  CPAMP_ASSIGN_OR_RETURN(bj::object root, json::ParseObject(body));
  SourceCatalog catalog;
  catalog.source = SourceId::kLiteLlm;
  for (const auto& [key, v] : root) {
    if (key == "sample_spec" || !v.is_object()) continue;  // the document's field reference
    const bj::object& o = v.get_object();
    PriceRecord rec;
    PriceFields& p = rec.base;
    TakePrice(o, {"input_cost_per_token"}, 1e6, &p.prompt, &p.prompt_configured);
    TakePrice(o, {"output_cost_per_token"}, 1e6, &p.completion, &p.completion_configured);
    TakePrice(o, {"cache_read_input_token_cost", "input_cache_read"}, 1e6, &p.cache_read,
              &p.cache_read_configured);
    TakePrice(o,
              {"cache_creation_input_token_cost", "cache_write_input_token_cost",
               "input_cache_write", "input_cache_creation"},
              1e6, &p.cache_creation, &p.cache_creation_configured);
    if (!p.AnyConfigured()) continue;
    p.cache = p.cache_read;
    rec.raw_json = bj::serialize(o);
    AddEntry(catalog, std::string(key), std::move(rec));
  }
  return catalog;
}

Result<SourceCatalog> ParseOpenRouter(std::string_view body) {
  CPAMP_ASSIGN_OR_RETURN(bj::object root, json::ParseObject(body));
  const bj::array* data = json::GetArray(root, "data");
  if (data == nullptr) return Error(ErrorCode::kUpstreamUnavailable, "openrouter: missing data");
  SourceCatalog catalog;
  catalog.source = SourceId::kOpenRouter;
  for (const bj::value& v : *data) {
    if (!v.is_object()) continue;
    const bj::object& o = v.get_object();
    std::string id = Trim(json::GetString(o, "id").value_or(""));
    const bj::object* pricing = json::GetObject(o, "pricing");
    if (id.empty() || pricing == nullptr) continue;
    PriceRecord rec;
    PriceFields& p = rec.base;
    TakePrice(*pricing, {"prompt"}, 1e6, &p.prompt, &p.prompt_configured);
    TakePrice(*pricing, {"completion"}, 1e6, &p.completion, &p.completion_configured);
    TakePrice(*pricing, {"input_cache_read", "cache_read_input_token_cost"}, 1e6, &p.cache_read,
              &p.cache_read_configured);
    TakePrice(*pricing,
              {"input_cache_write", "input_cache_creation", "cache_creation_input_token_cost",
               "cache_write_input_token_cost"},
              1e6, &p.cache_creation, &p.cache_creation_configured);
    if (!p.AnyConfigured()) continue;
    p.cache = p.cache_read;
    rec.raw_json = bj::serialize(o);
    AddEntry(catalog, std::move(id), std::move(rec));
  }
  return catalog;
}

Result<SourceCatalog> ParseSource(SourceId id, std::string_view body) {
  Result<SourceCatalog> parsed = id == SourceId::kModelsDev ? ParseModelsDev(body)
                                 : id == SourceId::kLiteLlm ? ParseLiteLlm(body)
                                                            : ParseOpenRouter(body);
  if (!parsed.ok()) {
    return Error(ErrorCode::kUpstreamUnavailable,
                 fmt::format("{}: {}", SourceName(id), parsed.status().message()));
  }
  return parsed;
}

std::optional<std::string> ProxyForUrl(
    std::string_view url, const std::function<std::optional<std::string>(const char*)>& getenv) {
  Result<http_client::Url> parsed = http_client::ParseUrl(url);
  if (!parsed.ok()) return std::nullopt;
  auto env = [&](std::initializer_list<const char*> names) -> std::string {
    for (const char* name : names) {
      std::optional<std::string> v = getenv(name);
      if (v && !Trim(*v).empty()) return Trim(*v);
    }
    return "";
  };
  const std::string host = ToLower(parsed->host);
  for (const std::string& entry : SplitAndTrim(env({"NO_PROXY", "no_proxy"}), ',')) {
    if (entry == "*") return std::nullopt;
    std::string e = ToLower(entry);
    if (!e.empty() && e.front() == '.') e.erase(0, 1);
    if (size_t colon = e.find(':'); colon != std::string::npos) e.resize(colon);
    if (host == e || (host.size() > e.size() && host.ends_with("." + e))) return std::nullopt;
  }
  std::string proxy = parsed->scheme == "https" ? env({"HTTPS_PROXY", "https_proxy"})
                                                : env({"HTTP_PROXY", "http_proxy"});
  if (proxy.empty()) proxy = env({"ALL_PROXY", "all_proxy"});
  if (proxy.empty()) return std::nullopt;
  return proxy;
}

HttpPriceSource::HttpPriceSource(int64_t timeout_ms) : timeout_ms_(timeout_ms) {}

bool HttpPriceSource::ProxyUsed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return proxy_used_;
}

Result<std::string> HttpPriceSource::Fetch(SourceId id) {
  http_client::Request req;
  req.url = std::string(SourceUrl(id));
  req.timeout_ms = timeout_ms_;
  req.headers.emplace_back("Accept", "application/json");
  req.headers.emplace_back("User-Agent", "cpa-manager-plus");
  std::optional<std::string> proxy = ProxyForUrl(req.url, [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::optional<std::string>(v) : std::nullopt;
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (proxy) {
      req.proxy_url = *proxy;
      proxy_used_ = true;
    }
    if (id == SourceId::kModelsDev && !models_dev_etag_.empty()) {
      req.headers.emplace_back("If-None-Match", models_dev_etag_);
    }
  }
  CPAMP_ASSIGN_OR_RETURN(http_client::Response resp, http_client::Fetch(req));
  if (id == SourceId::kModelsDev && resp.status == 304) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!models_dev_body_.empty()) return models_dev_body_;
  }
  if (!resp.ok()) {
    return Error(
        ErrorCode::kUpstreamUnavailable,
        fmt::format("{} returned {}", SourceName(id), http_client::StatusLine(resp.status)));
  }
  if (id == SourceId::kModelsDev) {
    std::string etag(resp.Header("ETag"));
    std::lock_guard<std::mutex> lock(mu_);
    models_dev_etag_ = etag;
    models_dev_body_ = etag.empty() ? std::string() : resp.body;
  }
  return std::move(resp.body);
}

void StaticPriceSource::SetBody(SourceId id, std::string body) {
  std::lock_guard<std::mutex> lock(mu_);
  answers_.insert_or_assign(id, Result<std::string>(std::move(body)));
}

void StaticPriceSource::SetError(SourceId id, std::string message) {
  std::lock_guard<std::mutex> lock(mu_);
  answers_.insert_or_assign(
      id, Result<std::string>(Error(ErrorCode::kUpstreamUnavailable, std::move(message))));
}

Result<std::unique_ptr<StaticPriceSource>> StaticPriceSource::FromFixtureDir(
    const std::string& dir, const std::string& openrouter_file) {
  auto source = std::make_unique<StaticPriceSource>();
  const std::pair<SourceId, std::string> files[] = {
      {SourceId::kModelsDev, "models-dev-catalog-subset.json"},
      {SourceId::kLiteLlm, "litellm-subset.json"},
      {SourceId::kOpenRouter, openrouter_file}};
  for (const auto& [id, name] : files) {
    std::ifstream in(dir + "/" + name, std::ios::binary);
    if (!in) return Error(ErrorCode::kNotFound, fmt::format("cannot read {}/{}", dir, name));
    std::ostringstream text;
    text << in.rdbuf();
    source->SetBody(id, text.str());
  }
  return source;
}

Result<std::string> StaticPriceSource::Fetch(SourceId id) {
  std::lock_guard<std::mutex> lock(mu_);
  ++fetches_[id];
  auto it = answers_.find(id);
  if (it == answers_.end()) {
    return Error(ErrorCode::kUpstreamUnavailable, "no data");
  }
  return it->second;
}

int StaticPriceSource::FetchCount(SourceId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fetches_.find(id);
  return it == fetches_.end() ? 0 : it->second;
}

}  // namespace cpamp::pricing
