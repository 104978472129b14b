// Internal types of the analytics context, shared by its .cc files and its tests. Not part of
// the public surface; see analytics.h for contracts.
#pragma once

#include <date/tz.h>

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "analytics/analytics.h"

namespace cpamp::analytics::internal {

// Summed metrics of one group (spec storage §6.1).
struct Tokens {
  int64_t calls = 0, success = 0, failure = 0;
  int64_t input = 0, output = 0, reasoning = 0, cached = 0, cache_read = 0, cache_creation = 0,
          total = 0;
  int64_t latency_sum = 0, latency_samples = 0, zero_token_calls = 0;
  int64_t long_input = 0, long_output = 0, long_cached = 0, long_cache_read = 0,
          long_cache_creation = 0;
  void Add(const Tokens& o);
  pricing::TokenCounts Counts() const;
};

// A time zone with a cached transition list (fast UTC offset lookups).
class Zone {
 public:
  // "" → UTC; unknown name → kInvalidTimeZone "invalid time zone: X".
  static Result<Zone> Load(std::string_view name);
  int64_t OffsetMs(int64_t utc_ms) const;
  // The first offset change strictly after utc_ms (INT64_MAX if none within 2 years).
  int64_t NextTransition(int64_t utc_ms) const;
  int64_t LocalMs(int64_t utc_ms) const { return utc_ms + OffsetMs(utc_ms); }
  // UTC instant of local midnight of the local day number `day` (days since 1970-01-01 local).
  int64_t LocalMidnightUtc(int64_t day) const;
  const date::time_zone* tz() const { return tz_; }

 private:
  const date::time_zone* tz_ = nullptr;
  struct Span {
    int64_t begin, end, offset;
  };
  mutable std::vector<Span> spans_;  // filled lazily, sorted
  const Span& Find(int64_t utc_ms) const;
};

int64_t FloorDiv(int64_t a, int64_t b);

// Local calendar buckets (hour or day) covering [from, to).
class Buckets {
 public:
  Buckets(const Zone& zone, int64_t from_ms, int64_t to_ms, bool day);
  size_t size() const { return starts_.size(); }
  int64_t Start(size_t i) const { return starts_[i]; }
  int64_t End(size_t i) const { return ends_[i]; }
  // Bucket of a timestamp inside [from, to); SIZE_MAX outside.
  size_t Index(int64_t ts) const;
  std::string Label(size_t i) const;  // "HH:MM" or "MM/DD" local
  bool day() const { return day_; }

 private:
  const Zone& zone_;
  bool day_;
  std::vector<int64_t> starts_, ends_;
};

// Ids (sorted) of events in the search projection whose text contains the query, for the time
// ranges a request reads; events with id > covered_id are not in the projection yet.
struct SearchHits {
  std::vector<int64_t> ids;
  int64_t covered_id = 0;
};

// Request filters (spec storage §6.1 filter table).
struct Filters {
  const SearchHits* search_hits = nullptr;  // borrowed; null → test every row
  std::string search_query;
  std::string search_api_key_hash;
  std::vector<std::string> models;               // analytics-model normalized
  std::vector<std::string> providers, accounts;  // lower-cased
  std::vector<std::string> credential_ids, auth_files, auth_indices, api_key_hashes, source_hashes,
      project_ids, request_types, header_error_kinds, header_error_codes, header_quota_plans,
      header_trace_ids;
  bool include_failed = true;
  bool failed_only = false;
  int64_t min_latency_ms = 0;
  std::string cache_status;  // hit|miss|read|creation or ""

  // Only model and failed filters: the rollup can answer.
  bool RollupEligible() const;
  bool MatchesModel(std::string_view analytics_model) const;
};

// SQL condition (over usage_events columns) and its positional parameters, excluding the model
// filter (applied in C++ on the analytics model).
struct Where {
  std::string sql;  // starts with "1=1"
  std::vector<std::string> text_params;
};
Where BuildWhere(const Filters& f);
// Registers analytics_model(model, requested_model) and analytics_search(q, col...) on a
// connection; every statement built from BuildWhere needs them. Idempotent.
void RegisterSqlFunctions(db::Connection& conn);
// Queries containing %, _ or U+001F use the escaped LIKE path (spec storage 6.1).
bool UsesLikeSearch(std::string_view query);

// Search projection (analytics_search_rows): the column list its text is built from, the text of
// one row read with those columns starting at `first`, the covered-id checkpoint, the hit lookup
// for the union of `ranges` ([from, to) pairs), and the analytics_hit(id) SQL function bound to
// `hits` (which must outlive every statement using it; rebind with null afterwards).
std::string SearchColumnList();
int SearchColumnCount();
std::string SearchText(const db::Statement& s, int first);
Result<int64_t> SearchProjectionCheckpoint(db::Connection& conn);
Status LoadSearchHits(db::Connection& conn, std::string_view query,
                      std::vector<std::pair<int64_t, int64_t>> ranges, SearchHits& out);
void BindSearchHits(db::Connection& conn, const SearchHits* hits);
// Binds Where params starting at parameter index `first`.
Status BindWhere(db::Statement& stmt, const Where& w, int first);

// Cost grouping key registry: (effective requested model, billing model, service tier, band).
struct CostKey {
  std::string requested, analytics, billing, pricing, tier;
  int64_t band = pricing::kBaseContextBand;
};
class CostKeys {
 public:
  explicit CostKeys(const pricing::PriceTable& prices) : prices_(prices) {}
  // For a raw row.
  int ForEvent(std::string_view model, std::string_view requested, std::string_view resolved,
               std::string_view tier, int64_t normalized_input);
  // For a rollup row (requested = effective requested model, billing already resolved).
  int ForRollup(std::string_view requested, std::string_view billing, std::string_view tier,
                int64_t band);
  const CostKey& Get(int id) const { return keys_[id]; }
  double Cost(int id, const Tokens& t);
  const pricing::PriceTable& prices() const { return prices_; }

 private:
  struct Resolved {
    std::string analytics, billing, pricing;
    const pricing::PriceRecord* price = nullptr;
  };
  const Resolved& Resolve(std::string_view requested, std::string_view resolved);
  int Intern(const Resolved& r, std::string_view requested, std::string_view tier, int64_t band);
  const pricing::PriceTable& prices_;
  std::map<std::string, Resolved, std::less<>> resolved_;
  std::map<std::string, int, std::less<>> ids_;
  std::vector<CostKey> keys_;
  std::string scratch_;
};

// Metrics split by cost key, so cost can be computed per upstream aggregate row.
struct Agg {
  Tokens total;
  std::vector<std::pair<int, Tokens>> parts;
  void Add(int key, const Tokens& t);
  void Merge(const Agg& o);
  double Cost(CostKeys& keys) const;
};

// Nearest-rank P95 (rank ceil(0.95 n), ascending) over positive samples; nullopt when empty.
std::optional<int64_t> P95(std::vector<uint32_t>& samples);

struct BucketAgg {
  Agg agg;
  std::vector<uint32_t> latencies, ttfts;
};

// The rollup-servable part of a monitoring request.
struct CoreResult {
  Agg total;
  std::vector<uint32_t> latencies, ttfts;
  std::vector<BucketAgg> buckets;                             // parallel to Buckets
  std::array<std::pair<int64_t, int64_t>, 24> hour_of_day{};  // calls, tokens
  std::set<int64_t> active_days;                              // local day numbers
  std::set<std::string> zero_token_models;
  bool used_rollup = false;
};

// One raw event as read by the engine (views valid until the next step).
struct EventView {
  int64_t id = 0, ts = 0;
  bool failed = false;
  std::string_view model, requested_model, resolved_model, service_tier;
  Tokens tokens;  // calls = 1
  std::optional<int64_t> latency, ttft;
};
// The narrow column list and reader for the core scan.
extern const char kCoreColumns[];
EventView ReadCoreColumns(const db::Statement& stmt, int first_column);

struct CoreSpec {
  int64_t from_ms = 0, to_ms = 0;
  const Zone* zone = nullptr;
  const Buckets* buckets = nullptr;  // may be null (summary only)
  const Filters* filters = nullptr;
  bool percentiles = false;
  bool allow_rollup = true;
};
// Fills `out` for [from, to): rollup rows for whole UTC hours that the rollup covers (and that
// lie inside one local hour and one bucket) plus raw rows for everything else.
Status RunCore(db::Connection& conn, CostKeys& keys, const CoreSpec& spec, CoreResult& out);
// Feeds one raw row into a core result (used by RunCore and by full raw scans).
void AddRawToCore(const EventView& e, int key, const CoreSpec& spec, CoreResult& out);

// Rollup bookkeeping.
struct RollupState {
  int64_t last_event_id = 0;
  std::string revision;
  int64_t retained_before_ms = 0;
};
Result<RollupState> LoadRollupState(db::Connection& conn);
// Revision used for rollup rows: pricing::ModelPriceStructureRevision of the table.
std::string RollupRevision(const pricing::PriceTable& prices);
Result<pricing::PriceTable> LoadPricesOn(db::Connection& conn);

// Little-endian uint32 sample blobs.
void AppendSamples(std::string& blob, uint32_t v);
void ReadSamples(std::string_view blob, std::vector<uint32_t>& out);

}  // namespace cpamp::analytics::internal
