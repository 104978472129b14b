// pricing: model prices (USD per 1M tokens), the cost formula, price sync from models.dev,
// LiteLLM and OpenRouter, and API key aliases (spec storage §7, api §4.7).
//
// Layers: types and pure functions (JSON codec, validation, resolution, Cost) → store functions
// on a db::Connection / db::Database → the sync service (pure RunSync plus SyncPrices that
// loads and writes) → Handlers (one method per route). Everything except Handlers and the
// HttpPriceSource is pure or takes its environment (clock, database, source) as arguments.
//
// Threading: the free functions are thread-safe (no shared state). Store functions follow the
// db::Database contract. PriceSource implementations state their own contract; Handlers is
// thread-safe as long as its PriceSource is. Ownership: Handlers borrows the Database, the
// PriceSource and the Clock, which must outlive it.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "db/db.h"
#include "net/http.h"

namespace cpamp::pricing {

// ---- Constants (spec storage §3.2, §7.3) ------------------------------------------------------

// Requests whose normalized input is strictly greater than this are "long context".
inline constexpr int64_t kLongContextThresholdTokens = 272'000;
// Context band of a row priced at the base price (no context tier applies).
inline constexpr int64_t kBaseContextBand = -1;
// Context band 0: legacy / unclassified rows (treated like the base band).
inline constexpr int64_t kLegacyContextBand = 0;
inline constexpr size_t kMaxAliasRunes = 120;
inline constexpr int64_t kDefaultUsageQueryLimit = 50'000;
inline constexpr int64_t kSourceTimeoutMs = 10'000;  // per price source (spec §7.5)

// ---- Types (spec storage §7.1) ----------------------------------------------------------------

// Five prices (USD per 1M tokens) and their "configured" flags, which tell an explicit 0 from
// "missing". The base row of model_prices has no cache flag; tiers have all five.
struct PriceFields {
  double prompt = 0;
  double completion = 0;
  double cache = 0;  // legacy cached-input price
  double cache_read = 0;
  double cache_creation = 0;
  bool prompt_configured = false;
  bool completion_configured = false;
  bool cache_configured = false;
  bool cache_read_configured = false;
  bool cache_creation_configured = false;

  bool AnyConfigured() const;
  // A copy of this with every field `over` has configured replaced by `over`'s value.
  PriceFields OverriddenBy(const PriceFields& over) const;
  bool operator==(const PriceFields&) const = default;
};

// Applies to a whole request whose normalized input is strictly greater than threshold_tokens.
struct ContextTier {
  int64_t threshold_tokens = 0;
  PriceFields price;
  bool operator==(const ContextTier&) const = default;
};

// Matches an event whose service_tier equals `mode` or `service_tier` (both lower-case).
struct ServiceTierRule {
  std::string mode;
  std::string service_tier;
  PriceFields price;
  bool operator==(const ServiceTierRule&) const = default;
};

struct PriceRecord {
  PriceFields base;
  std::string source;           // "models.dev" | "litellm" | "openrouter" | anything the UI sent
  std::string source_model_id;  // key in the source
  std::string raw_json;         // the source's JSON object for this model
  int64_t updated_at_ms = 0;
  int64_t synced_at_ms = 0;                    // 0 = never synced (NULL in the table)
  std::vector<ContextTier> context_tiers;      // ascending threshold, unique
  std::vector<ServiceTierRule> service_tiers;  // identifiers unique across rules

  // Same prices, tiers, source and source model id (timestamps and raw_json ignored).
  bool SamePricing(const PriceRecord& other) const;
};

// model name → price; ordered by model name (byte order, like SQLite BINARY).
using PriceTable = std::map<std::string, PriceRecord, std::less<>>;

// ---- JSON codec and validation (spec api §4.7) ------------------------------------------------

// camelCase ModelPrice object. Prices are always present; flags, source fields, tiers and
// syncedAtMs only when set.
boost::json::object PriceToJson(const PriceRecord& price);
boost::json::object PriceTableToJson(const PriceTable& table);
// Decodes one ModelPrice object. Numbers may be JSON numbers or numeric strings. A missing flag
// is inferred as "value > 0"; mode/serviceTier are trimmed and lower-cased; context tiers are
// sorted. Type errors are kBadRequest "invalid model price for <model>: ...".
Result<PriceRecord> PriceFromJson(std::string_view model, const boost::json::value& value);
// Every price finite and ≥ 0; context tiers with positive unique thresholds and ≥1 configured
// price; service tiers with mode and serviceTier set, identifiers unique, ≥1 configured price.
// kBadRequest "invalid model price for <model>: <reason>".
Status ValidatePrice(std::string_view model, const PriceRecord& price);

// ---- Resolution and cost (spec storage §6.1, §7.2, §7.3) --------------------------------------

// Summed token categories of one aggregate row (model × billing × pricing model × context band ×
// service tier). The long_* fields are the same sums restricted to events whose normalized input
// exceeds kLongContextThresholdTokens.
struct TokenCounts {
  int64_t input = 0;       // Σ normalized total input (coalesce(normalized, input_tokens))
  int64_t output = 0;      // Σ output_tokens (reasoning is inside output)
  int64_t cached = 0;      // Σ compatible cached (max(cached, cache) − read − creation, ≥ 0)
  int64_t cache_read = 0;  // Σ cache_read_tokens
  int64_t cache_creation = 0;  // Σ cache_creation_tokens
  int64_t long_input = 0;
  int64_t long_output = 0;
  int64_t long_cached = 0;
  int64_t long_cache_read = 0;
  int64_t long_cache_creation = 0;

  // The counts of one event; the long_* mirror the totals when input > 272,000.
  static TokenCounts ForEvent(int64_t input, int64_t output, int64_t cached, int64_t cache_read,
                              int64_t cache_creation);
  TokenCounts& operator+=(const TokenCounts& other);
};

bool IsLongContext(int64_t normalized_input);
// The pricing model of §6.1: the first of billing, analytics, requested that has a price (exact,
// case-sensitive), else the billing model.
std::string PricingModelFor(const PriceTable& table, std::string_view billing_model,
                            std::string_view analytics_model, std::string_view requested_model);
// The context band of §6.1: the highest configured tier threshold strictly below
// normalized_input, else kBaseContextBand. `price` may be null (no price → base band).
int64_t ContextBandFor(const PriceRecord* price, int64_t normalized_input);

// The built-in official price of gpt-5.6-sol/-terra/-luna (last path segment, lower-case, equal
// or followed by '-'); nullopt for other models.
std::optional<PriceRecord> BuiltinGpt56Price(std::string_view model);
// §7.2: prices[pricing_model], else the first candidate with a price (exact), else the built-in
// GPT-5.6 price of a candidate, else nullopt (cost 0). For gpt-5.6 models, unconfigured
// prompt/completion are filled from the official table and unconfigured read/creation become
// 0.1×/1.25× prompt.
std::optional<PriceRecord> ResolvePrice(const PriceTable& table, std::string_view pricing_model,
                                        std::span<const std::string> candidates);
// §7.3 rule 4: flex/batch 0.5; priority/fast 2 (gpt-5.6, gpt-5.4-mini, gpt-5.4, gpt-5.3-codex)
// or 2.5 (gpt-5.5); else 1. Tier and model are compared lower-case; the model by its last path
// segment, equal to the family or starting with "family-".
double ServiceTierMultiplier(std::string_view behaviour_model, std::string_view service_tier);
// §7.3 rule 2: whether the behaviour model gets the legacy long-context surcharge.
bool UsesLegacyLongContext(std::string_view behaviour_model);
// The price of one segment with input/output multipliers (the bracket of §7.3, divided by 1e6).
// Uses only the non-long fields of `tokens`.
double SegmentCost(const PriceFields& price, const TokenCounts& tokens, double input_multiplier,
                   double output_multiplier);
// The cost in USD of an aggregate row priced with `price` (§7.3 rule selection). `context_band`
// is the row's band (kBaseContextBand / 0 / a threshold); `behaviour_model` is the billing model.
double Cost(const PriceRecord& price, const TokenCounts& tokens, std::string_view service_tier,
            int64_t context_band, std::string_view behaviour_model);

// One aggregate row as analytics holds it; CostForRow resolves the price and applies Cost.
struct CostRow {
  std::string analytics_model;
  std::string billing_model;
  std::string pricing_model;
  std::string service_tier;
  int64_t context_band = kBaseContextBand;
  TokenCounts tokens;
};
double CostForRow(const PriceTable& table, const CostRow& row);

// "context-v1:" + hex SHA-256 over model ids and tier thresholds (spec storage §3.2).
std::string ModelPriceStructureRevision(const PriceTable& table);

// ---- Price store (tables model_prices, model_price_context_tiers, model_price_service_tiers) --

Result<PriceTable> LoadPrices(db::Connection& conn);
// Replaces the whole table inside the caller's transaction; updated_at_ms = now for every row.
Status ReplaceAllPrices(db::Connection& conn, const PriceTable& table, int64_t now_ms);
// Replaces the given rows (and their tiers) as they are; other rows are untouched.
Status UpsertPrices(db::Connection& conn, const PriceTable& rows);

// PUT semantics: validates every entry, replaces the table in one transaction, returns the
// reloaded table.
Result<PriceTable> ReplacePrices(db::Database& db, const PriceTable& table, int64_t now_ms);
Result<PriceTable> ListPrices(db::Database& db);

// ---- Model usage summary (GET /v0/management/model-prices/usage-summary) ---------------------

struct ModelUsage {
  std::string model;
  int64_t calls = 0;            // events naming the model as model, requested or resolved
  int64_t requested_calls = 0;  // events with requested_model = model
  int64_t resolved_calls = 0;   // events with resolved_model = model
};
struct UsageSummary {
  int64_t sampled_events = 0;
  int64_t total_events = 0;
  bool truncated = false;
  std::vector<ModelUsage> models;  // calls descending, then model ascending
};
// Over the newest `limit` usage_events rows (by id).
Result<UsageSummary> LoadUsageSummary(db::Database& db, int64_t limit);
boost::json::object UsageSummaryToJson(const UsageSummary& summary);

// ---- Price sources (spec storage §7.5) ---------------------------------------------------------

enum class SourceId { kModelsDev, kLiteLlm, kOpenRouter };
inline constexpr SourceId kSourceOrder[] = {SourceId::kModelsDev, SourceId::kLiteLlm,
                                            SourceId::kOpenRouter};
std::string_view SourceName(SourceId id);  // "models.dev" | "litellm" | "openrouter"
std::string_view SourceUrl(SourceId id);

// One parsed price of a source.
struct SourceEntry {
  std::string key;    // models.dev "<pid>/<mid>", LiteLLM key, OpenRouter id
  std::string alias;  // the part after the first '/' ("" when the key has none)
  PriceRecord price;  // source, source_model_id and raw_json set; timestamps 0
};
struct SourceCatalog {
  SourceId source = SourceId::kModelsDev;
  std::vector<SourceEntry> entries;  // in document order
  int64_t skipped = 0;               // entries with prices that failed validation
  // models.dev catalog metadata: canonical ids of the root "models" map (official entries).
  bool has_catalog_metadata = false;
  std::vector<std::string> canonical_ids;
};
Result<SourceCatalog> ParseModelsDev(std::string_view body);
Result<SourceCatalog> ParseLiteLlm(std::string_view body);
Result<SourceCatalog> ParseOpenRouter(std::string_view body);
Result<SourceCatalog> ParseSource(SourceId id, std::string_view body);

// Where price documents come from. Fetch returns the response body or an error (network,
// non-2xx, timeout).
class PriceSource {
 public:
  virtual ~PriceSource() = default;
  virtual Result<std::string> Fetch(SourceId id) = 0;
  // Whether fetches go through a proxy (reported as proxyUsed).
  virtual bool ProxyUsed() const { return false; }
};

// The proxy URL the environment asks for when fetching `url` (HTTPS_PROXY/https_proxy for
// https, HTTP_PROXY/http_proxy for http, ALL_PROXY as a fallback; NO_PROXY host suffixes and
// "*" respected); nullopt for a direct connection. `getenv` is injectable for tests.
std::optional<std::string> ProxyForUrl(
    std::string_view url, const std::function<std::optional<std::string>(const char*)>& getenv);

// The real sources over http_client::Fetch with a per-source timeout; models.dev responses are
// cached in memory with their ETag and revalidated with If-None-Match. Thread-safe.
// A proxy from the environment (ProxyForUrl) is used via http_client's CONNECT tunnel and
// reported by ProxyUsed().
class HttpPriceSource final : public PriceSource {
 public:
  explicit HttpPriceSource(int64_t timeout_ms = kSourceTimeoutMs);
  Result<std::string> Fetch(SourceId id) override;
  bool ProxyUsed() const override;

 private:
  const int64_t timeout_ms_;
  mutable std::mutex mu_;
  std::string models_dev_etag_;  // guarded by mu_
  std::string models_dev_body_;  // guarded by mu_
  bool proxy_used_ = false;      // guarded by mu_
};

// Fixed bodies or errors per source, for tests and offline runs. Counts fetches. Thread-safe.
class StaticPriceSource final : public PriceSource {
 public:
  void SetBody(SourceId id, std::string body);
  void SetError(SourceId id, std::string message);
  // Loads models-dev-catalog-subset.json, litellm-subset.json and `openrouter_file` from `dir`.
  static Result<std::unique_ptr<StaticPriceSource>> FromFixtureDir(
      const std::string& dir, const std::string& openrouter_file = "openrouter-models-subset.json");
  Result<std::string> Fetch(SourceId id) override;
  int FetchCount(SourceId id) const;

 private:
  mutable std::mutex mu_;
  std::map<SourceId, Result<std::string>> answers_;  // guarded by mu_
  std::map<SourceId, int> fetches_;                  // guarded by mu_
};

// ---- Sync (spec storage §7.4/§7.5, api §4.7) --------------------------------------------------

struct SyncOptions {
  // Local model names to price. Empty: the distinct model names of usage_events (model,
  // requested_model, resolved_model); only unique matches are taken.
  std::vector<std::string> models;
  bool explicit_models = false;  // `models` came from the request
  bool preview = false;          // compute the outcome, write nothing
};

struct SyncCandidate {
  std::string source;
  std::string source_model_id;
  double score = 0;
  std::string reason;  // exact | case_insensitive | same_tail | ... | similar
  bool official = false;
  PriceRecord price;
};
struct SourceResult {
  std::string source;
  int64_t models = 0;   // valid entries parsed
  int64_t skipped = 0;  // invalid entries skipped
  std::string error;    // "" on success
  bool fetched = false;
};
struct SyncReport {
  std::string source;                // the single contributing source, or "multi"
  std::vector<std::string> sources;  // sources fetched successfully, in order
  int64_t imported = 0;
  int64_t skipped = 0;
  PriceTable matched;  // local name → new price
  std::vector<std::pair<std::string, std::vector<SyncCandidate>>> candidates;
  std::vector<std::string> unmatched;
  std::vector<std::string> preserved;
  bool proxy_used = false;
  std::vector<SourceResult> source_results;
  // Our extension: how the matched rows compare with the stored ones.
  std::vector<std::string> added;
  std::vector<std::string> updated;
  std::vector<std::string> unchanged;
  bool preview = false;
  PriceTable prices;  // the whole table after the sync (as it would be, in preview)
};

// The pure part: fetches sources in priority order (skipping later ones once every explicitly
// requested model is matched), matches, applies the preservation rule and builds the report.
// `current` is the stored table. All sources failing → kModelPriceSyncFailed.
Result<SyncReport> RunSync(const SyncOptions& options, const PriceTable& current,
                           PriceSource& source, int64_t now_ms);
// Loads the table (and the usage model names when options.models is empty), runs RunSync and,
// unless previewing, upserts the matched rows in one transaction.
Result<SyncReport> SyncPrices(db::Database& db, PriceSource& source, SyncOptions options,
                              int64_t now_ms);
boost::json::object SyncReportToJson(const SyncReport& report);

// ---- API key aliases (spec storage §7.6) --------------------------------------------------------

struct ApiKeyAlias {
  std::string api_key_hash;  // 64 lower-case hex
  std::string alias;
  int64_t updated_at_ms = 0;
};
struct AliasUpdate {
  std::vector<ApiKeyAlias> items;  // hash and alias as sent
  std::vector<std::string> active_api_key_hashes;
  bool allow_orphan_alias_cleanup = false;
};
// Trimmed, lower-cased; kBadRequest "valid apiKeyHash is required" unless 64 hex digits.
Result<std::string> NormalizeApiKeyHash(std::string_view hash);
// Ordered by alias (NOCASE), then hash.
Result<std::vector<ApiKeyAlias>> ListAliases(db::Database& db);
// Upserts in one transaction. Errors: kBadRequest for a bad hash or alias (blank, > 120
// runes); kApiKeyAliasDuplicate "api key alias already exists" when an alias (lower + trim)
// is used twice in the request or by another stored hash — unless that stored hash is not
// active and orphan cleanup is allowed, in which case the orphan row is deleted.
Status UpsertAliases(db::Database& db, const AliasUpdate& update, int64_t now_ms);
// Deleting an absent hash is OK.
Status DeleteAlias(db::Database& db, std::string_view api_key_hash);

// ---- HTTP handlers (spec api §4.7)
// ---------------------------------------------------------------

struct HandlerOptions {
  int64_t usage_query_limit = kDefaultUsageQueryLimit;
  // Called after any price change (PUT, sync that wrote rows): wakes the pricing rollup worker.
  std::function<void()> on_prices_changed;
};

// The route handlers of model prices and API key aliases. Each method decodes, calls one store
// or service function and encodes; errors become the {"error","code"} envelope.
class Handlers {
 public:
  Handlers(db::Database& db, PriceSource& source, const Clock& clock, HandlerOptions options = {});

  // Everything under the prefix /v0/management/model-prices: routes to the methods below and
  // answers 405 method_not_allowed for any other method/path combination.
  net::Response ModelPrices(const net::Request& request);
  // Everything under the prefix /v0/management/api-key-aliases (405 likewise).
  net::Response ApiKeyAliases(const net::Request& request);

  net::Response GetPrices(const net::Request& request);
  net::Response PutPrices(const net::Request& request);
  net::Response GetUsageSummary(const net::Request& request);  // ?limit=N (capped)
  net::Response SyncPrices(const net::Request& request);  // body {models?, preview?}, ?preview=1
  net::Response GetAliases(const net::Request& request);
  net::Response PutAliases(const net::Request& request);
  net::Response DeleteAlias(const net::Request& request);  // hash = last path segment

 private:
  void NotifyPricesChanged();

  db::Database& db_;
  PriceSource& source_;
  const Clock& clock_;
  HandlerOptions options_;
};

}  // namespace cpamp::pricing
