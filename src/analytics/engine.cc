// The analytics query engine: time zones and buckets, filters, cost keys and the core scan.
//
// Design notes:
// - Every aggregate is kept split by cost key (effective requested model, billing model, service
//   tier, context band), the grain of upstream's aggregate rows, and cost is computed from the
//   summed tokens of each part with pricing::CostForRow. Raw and rollup paths therefore produce
//   identical integer sums and identical costs.
// - The rollup grain is the UTC hour. A rollup hour is used only when (a) the whole hour is in
//   [from, to), (b) it lies inside one local hour of the request zone (so half-hour zones such as
//   Asia/Kolkata read raw rows for every hour — exact, just slower) and inside one bucket, and
//   (c) the rollup's price-structure revision is current. Events with id > the rollup checkpoint
//   always come from raw rows, so hours not yet rolled up are exact too.
// - Rollup rows carry per-event latency/TTFT samples (uint32 blobs) so nearest-rank P95s stay
//   exact without touching usage_events.
// - Zone offsets come from a lazily built span list (date::sys_info) so per-row local time is a
//   binary search, not a tz database call.
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "analytics/internal.h"
#include "base/strings.h"
#include "usage/usage.h"

namespace cpamp::analytics::internal {

// ---- Tokens / Agg
// --------------------------------------------------------------------------------

void Tokens::Add(const Tokens& o) {
  calls += o.calls;
  success += o.success;
  failure += o.failure;
  input += o.input;
  output += o.output;
  reasoning += o.reasoning;
  cached += o.cached;
  cache_read += o.cache_read;
  cache_creation += o.cache_creation;
  total += o.total;
  latency_sum += o.latency_sum;
  latency_samples += o.latency_samples;
  zero_token_calls += o.zero_token_calls;
  long_input += o.long_input;
  long_output += o.long_output;
  long_cached += o.long_cached;
  long_cache_read += o.long_cache_read;
  long_cache_creation += o.long_cache_creation;
}

pricing::TokenCounts Tokens::Counts() const {
  pricing::TokenCounts c;
  c.input = input;
  c.output = output;
  c.cached = cached;
  c.cache_read = cache_read;
  c.cache_creation = cache_creation;
  c.long_input = long_input;
  c.long_output = long_output;
  c.long_cached = long_cached;
  c.long_cache_read = long_cache_read;
  c.long_cache_creation = long_cache_creation;
  return c;
}

void Agg::Add(int key, const Tokens& t) {
  total.Add(t);
  for (auto& [k, v] : parts) {
    if (k == key) {
      v.Add(t);
      return;
    }
  }
  parts.emplace_back(key, t);
}

void Agg::Merge(const Agg& o) {
  for (const auto& [k, v] : o.parts) Add(k, v);
}

double Agg::Cost(CostKeys& keys) const {
  // Sum in key-id order so the result does not depend on arrival order.
  std::vector<std::pair<int, const Tokens*>> sorted;
  sorted.reserve(parts.size());
  for (const auto& [k, v] : parts) sorted.emplace_back(k, &v);
  std::sort(sorted.begin(), sorted.end(), [&](const auto& a, const auto& b) {
    const CostKey& ka = keys.Get(a.first);
    const CostKey& kb = keys.Get(b.first);
    return std::tie(ka.requested, ka.billing, ka.tier, ka.band) <
           std::tie(kb.requested, kb.billing, kb.tier, kb.band);
  });
  double cost = 0;
  for (const auto& [k, v] : sorted) cost += keys.Cost(k, *v);
  return cost;
}

std::optional<int64_t> P95(std::vector<uint32_t>& samples) {
  if (samples.empty()) return std::nullopt;
  size_t n = samples.size();
  size_t rank = (n * 95 + 99) / 100;  // ceil(0.95 n), 1-based
  if (rank < 1) rank = 1;
  std::nth_element(samples.begin(), samples.begin() + static_cast<long>(rank - 1), samples.end());
  return samples[rank - 1];
}

// ---- Cost keys -------------------------------------------------------------------------------

const CostKeys::Resolved& CostKeys::Resolve(std::string_view requested, std::string_view resolved) {
  scratch_.assign(requested);
  scratch_.push_back('\x1f');
  scratch_.append(resolved);
  auto it = resolved_.find(std::string_view(scratch_));
  if (it != resolved_.end()) return it->second;
  Resolved r;
  r.analytics = usage::AnalyticsModel(requested);
  r.billing = resolved.empty() ? r.analytics : std::string(resolved);
  r.pricing = pricing::PricingModelFor(prices_, r.billing, r.analytics, requested);
  auto p = prices_.find(r.pricing);
  r.price = p == prices_.end() ? nullptr : &p->second;
  return resolved_.emplace(scratch_, std::move(r)).first->second;
}

int CostKeys::Intern(const Resolved& r, std::string_view requested, std::string_view tier,
                     int64_t band) {
  scratch_.assign(requested);
  scratch_.push_back('\x1f');
  scratch_.append(r.billing);
  scratch_.push_back('\x1f');
  scratch_.append(tier);
  scratch_.push_back('\x1f');
  scratch_.append(std::to_string(band));
  auto it = ids_.find(std::string_view(scratch_));
  if (it != ids_.end()) return it->second;
  CostKey k;
  k.requested = std::string(requested);
  k.analytics = r.analytics;
  k.billing = r.billing;
  k.pricing = r.pricing;
  k.tier = std::string(tier);
  k.band = band;
  keys_.push_back(std::move(k));
  int id = static_cast<int>(keys_.size()) - 1;
  ids_.emplace(scratch_, id);
  return id;
}

int CostKeys::ForEvent(std::string_view model, std::string_view requested,
                       std::string_view resolved, std::string_view tier, int64_t normalized_input) {
  std::string_view eff = requested.empty() ? model : requested;
  const Resolved& r = Resolve(eff, resolved);
  int64_t band = pricing::ContextBandFor(r.price, normalized_input);
  return Intern(r, eff, tier, band);
}

int CostKeys::ForRollup(std::string_view requested, std::string_view billing, std::string_view tier,
                        int64_t band) {
  // The rollup stores the billing model; resolve with it as the "resolved" model (billing =
  // resolved if non-empty, which is what it is).
  const Resolved& r = Resolve(requested, billing);
  return Intern(r, requested, tier, band);
}

double CostKeys::Cost(int id, const Tokens& t) {
  const CostKey& k = keys_[id];
  pricing::CostRow row;
  row.analytics_model = k.analytics;
  row.billing_model = k.billing;
  row.pricing_model = k.pricing;
  row.service_tier = k.tier;
  row.context_band = k.band;
  row.tokens = t.Counts();
  return pricing::CostForRow(prices_, row);
}

// ---- Zones and buckets --------------------------------------------------------------------------

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

Result<Zone> Zone::Load(std::string_view name) {
  Zone z;
  std::string n(Trim(name));
  if (n.empty()) n = "UTC";
  try {
    z.tz_ = date::locate_zone(n);
  } catch (const std::exception&) {
    return Error(ErrorCode::kInvalidTimeZone, "invalid time zone: " + std::string(name))
        .WithHttpStatus(500);
  }
  return z;
}

const Zone::Span& Zone::Find(int64_t utc_ms) const {
  auto it = std::upper_bound(spans_.begin(), spans_.end(), utc_ms,
                             [](int64_t v, const Span& s) { return v < s.begin; });
  if (it != spans_.begin()) {
    const Span& s = *(it - 1);
    if (utc_ms < s.end) return s;
  }
  using namespace std::chrono;
  date::sys_info info = tz_->get_info(sys_time<milliseconds>(milliseconds(utc_ms)));
  auto to_ms = [](date::sys_seconds s) -> int64_t {
    return duration_cast<milliseconds>(s.time_since_epoch()).count();
  };
  int64_t begin =
      info.begin.time_since_epoch().count() <= -1e15 / 1000 ? INT64_MIN / 2 : to_ms(info.begin);
  int64_t end = to_ms(info.end);
  if (info.end.time_since_epoch().count() >= 1e15 / 1000) end = INT64_MAX / 2;
  Span span{begin, end, info.offset.count() * 1000};
  auto pos = std::upper_bound(spans_.begin(), spans_.end(), span.begin,
                              [](int64_t v, const Span& s) { return v < s.begin; });
  return *spans_.insert(pos, span);
}

int64_t Zone::OffsetMs(int64_t utc_ms) const { return Find(utc_ms).offset; }
int64_t Zone::NextTransition(int64_t utc_ms) const { return Find(utc_ms).end; }

int64_t Zone::LocalMidnightUtc(int64_t day) const {
  using namespace std::chrono;
  date::local_days ld{date::days(day)};
  auto zt = date::zoned_time<milliseconds>(
      tz_, date::local_time<milliseconds>(ld.time_since_epoch()), date::choose::earliest);
  try {
    return duration_cast<milliseconds>(zt.get_sys_time().time_since_epoch()).count();
  } catch (const std::exception&) {
    // Midnight does not exist (a DST gap at 00:00): the day starts at the transition.
    int64_t guess = day * kDayMs - OffsetMs(day * kDayMs);
    return NextTransition(guess - kDayMs);
  }
}

Buckets::Buckets(const Zone& zone, int64_t from_ms, int64_t to_ms, bool day)
    : zone_(zone), day_(day) {
  int64_t cur;
  if (day) {
    cur = zone.LocalMidnightUtc(FloorDiv(zone.LocalMs(from_ms), kDayMs));
    if (cur > from_ms) cur = zone.LocalMidnightUtc(FloorDiv(zone.LocalMs(from_ms), kDayMs) - 1);
  } else {
    int64_t off = zone.OffsetMs(from_ms);
    cur = FloorDiv(from_ms + off, kHourMs) * kHourMs - off;
  }
  while (cur < to_ms) {
    int64_t next;
    if (day) {
      next = zone.LocalMidnightUtc(FloorDiv(zone.LocalMs(cur), kDayMs) + 1);
    } else {
      next = std::min(cur + kHourMs, zone.NextTransition(cur));
      int64_t off = zone.OffsetMs(next);
      int64_t aligned = FloorDiv(next + off, kHourMs) * kHourMs - off;
      if (aligned > cur && aligned < next) next = aligned;
    }
    if (next <= cur) next = cur + kHourMs;  // defensive; never loops forever
    starts_.push_back(cur);
    ends_.push_back(next);
    cur = next;
  }
}

size_t Buckets::Index(int64_t ts) const {
  auto it = std::upper_bound(starts_.begin(), starts_.end(), ts);
  if (it == starts_.begin()) return SIZE_MAX;
  size_t i = static_cast<size_t>(it - starts_.begin()) - 1;
  return ts < ends_[i] ? i : SIZE_MAX;
}

std::string Buckets::Label(size_t i) const {
  int64_t local = zone_.LocalMs(starts_[i]);
  int64_t dayn = FloorDiv(local, kDayMs);
  int64_t in_day = local - dayn * kDayMs;
  if (!day_) {
    return fmt::format("{:02}:{:02}", in_day / kHourMs, (in_day % kHourMs) / 60000);
  }
  date::year_month_day ymd{date::sys_days{date::days(dayn)}};
  return fmt::format("{:02}/{:02}", static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()));
}

// ---- Filters
// -------------------------------------------------------------------------------------

bool Filters::RollupEligible() const {
  return search_query.empty() && search_api_key_hash.empty() && providers.empty() &&
         accounts.empty() && credential_ids.empty() && auth_files.empty() && auth_indices.empty() &&
         api_key_hashes.empty() && source_hashes.empty() && project_ids.empty() &&
         request_types.empty() && header_error_kinds.empty() && header_error_codes.empty() &&
         header_quota_plans.empty() && header_trace_ids.empty() && min_latency_ms <= 0 &&
         cache_status.empty();
}

bool Filters::MatchesModel(std::string_view analytics_model) const {
  if (models.empty()) return true;
  return std::find(models.begin(), models.end(), analytics_model) != models.end();
}

namespace {

constexpr std::string_view kSearchColumns[] = {"request_id",
                                               "event_hash",
                                               "model",
                                               "requested_model",
                                               "resolved_model",
                                               "endpoint",
                                               "method",
                                               "path",
                                               "client_ip",
                                               "x_forwarded_for",
                                               "user_agent",
                                               "source",
                                               "source_hash",
                                               "api_key_hash",
                                               "auth_index",
                                               "account_snapshot",
                                               "auth_label_snapshot",
                                               "auth_file_snapshot",
                                               "auth_provider_snapshot",
                                               "auth_project_id_snapshot",
                                               "reasoning_effort",
                                               "service_tier",
                                               "executor_type",
                                               "fail_summary",
                                               "header_quota_plan_type",
                                               "header_error_kind",
                                               "header_error_code",
                                               "header_trace_id"};

void AddIn(Where& w, std::string_view expr, const std::vector<std::string>& values) {
  if (values.empty()) return;
  w.sql += fmt::format(" and {} in (", expr);
  for (size_t i = 0; i < values.size(); ++i) {
    w.sql += i ? ",?" : "?";
    w.text_params.push_back(values[i]);
  }
  w.sql += ")";
}

std::string EscapeLike(std::string_view q) {
  std::string out;
  for (char c : q) {
    if (c == '%' || c == '_' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

// analytics_search(query, col...): 1 when the lower-ASCII form of any column contains `query`
// (already lower-ASCII). Same answer as `lower(col) like '%q%' escape '\'` ORed over the columns
// (SQLite's lower() and LIKE fold ASCII only), in one call per row instead of 28 lower() copies
// and 28 LIKE evaluations.
void SearchFn(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  const unsigned char* q = sqlite3_value_text(argv[0]);
  std::string_view needle = q ? reinterpret_cast<const char*>(q) : "";
  thread_local std::string scratch;
  for (int i = 1; i < argc; ++i) {
    const unsigned char* v = sqlite3_value_text(argv[i]);
    if (!v) continue;
    int n = sqlite3_value_bytes(argv[i]);
    if (static_cast<size_t>(n) < needle.size()) continue;
    scratch.assign(reinterpret_cast<const char*>(v), static_cast<size_t>(n));
    for (char& c : scratch) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (scratch.find(needle) != std::string::npos) {
      sqlite3_result_int(ctx, 1);
      return;
    }
  }
  sqlite3_result_int(ctx, 0);
}

void AnalyticsModelFn(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const unsigned char* m = sqlite3_value_text(argv[0]);
  const unsigned char* r = sqlite3_value_text(argv[1]);
  std::string_view req = r ? reinterpret_cast<const char*>(r) : "";
  std::string_view mod = m ? reinterpret_cast<const char*>(m) : "";
  std::string out = usage::AnalyticsModel(req.empty() ? mod : req);
  sqlite3_result_text(ctx, out.data(), static_cast<int>(out.size()), SQLITE_TRANSIENT);
}

}  // namespace

void RegisterSqlFunctions(db::Connection& conn) {
  sqlite3_create_function(conn.handle(), "analytics_model", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                          nullptr, &AnalyticsModelFn, nullptr, nullptr);
  sqlite3_create_function(conn.handle(), "analytics_search", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                          nullptr, &SearchFn, nullptr, nullptr);
}

std::string SearchColumnList() {
  std::string out;
  for (std::string_view col : kSearchColumns) {
    if (!out.empty()) out += ", ";
    out += col;
  }
  return out;
}

int SearchColumnCount() { return static_cast<int>(std::size(kSearchColumns)); }

std::string SearchText(const db::Statement& s, int first) {
  std::string text;
  for (int i = 0; i < SearchColumnCount(); ++i) {
    if (i) text.push_back('\x1f');
    std::string_view v = s.IsNull(first + i) ? std::string_view() : s.ColumnTextView(first + i);
    for (char c : v) text.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return text;
}

namespace {

void HitFn(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const auto* hits = static_cast<const SearchHits*>(sqlite3_user_data(ctx));
  sqlite3_int64 id = sqlite3_value_int64(argv[0]);
  bool hit = hits && std::binary_search(hits->ids.begin(), hits->ids.end(), id);
  sqlite3_result_int(ctx, hit ? 1 : 0);
}

}  // namespace

void BindSearchHits(db::Connection& conn, const SearchHits* hits) {
  sqlite3_create_function(conn.handle(), "analytics_hit", 1, SQLITE_UTF8,
                          const_cast<SearchHits*>(hits), &HitFn, nullptr, nullptr);
}

Result<int64_t> SearchProjectionCheckpoint(db::Connection& conn) {
  CPAMP_ASSIGN_OR_RETURN(db::Statement s,
                         conn.Prepare("select last_event_id from analytics_rollup_state "
                                      "where name = 'search'"));
  CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.ColumnInt64(0) : int64_t{0};
}

Status LoadSearchHits(db::Connection& conn, std::string_view query,
                      std::vector<std::pair<int64_t, int64_t>> ranges, SearchHits& out) {
  CPAMP_ASSIGN_OR_RETURN(out.covered_id, SearchProjectionCheckpoint(conn));
  out.ids.clear();
  if (out.covered_id <= 0) return Status::Ok();
  std::sort(ranges.begin(), ranges.end());
  std::vector<std::pair<int64_t, int64_t>> merged;
  for (const auto& r : ranges) {
    if (r.first >= r.second) continue;
    if (!merged.empty() && r.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  CPAMP_ASSIGN_OR_RETURN(db::Statement s,
                         conn.Prepare("select id from analytics_search_rows where timestamp_ms "
                                      ">= ?1 and timestamp_ms < ?2 and instr(text, ?3) > 0"));
  std::string needle = ToLower(query);
  for (const auto& [from, to] : merged) {
    CPAMP_RETURN_IF_ERROR(s.Reset());
    CPAMP_RETURN_IF_ERROR(s.Bind(1, from));
    CPAMP_RETURN_IF_ERROR(s.Bind(2, to));
    CPAMP_RETURN_IF_ERROR(s.BindText(3, needle));
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.ids.push_back(s.ColumnInt64(0));
    }
  }
  std::sort(out.ids.begin(), out.ids.end());
  return Status::Ok();
}

bool UsesLikeSearch(std::string_view query) {
  return query.find_first_of("%_\x1f") != std::string_view::npos;
}

Where BuildWhere(const Filters& f) {
  Where w;
  w.sql = "1=1";
  if (!f.search_query.empty() && !UsesLikeSearch(f.search_query) && f.search_hits &&
      f.search_hits->covered_id > 0) {
    // Projection hits (checked on the timestamp index entry, before the table row is read) plus
    // the direct test for events the projection does not cover yet.
    w.sql += fmt::format(" and (analytics_hit(id) or (id > {} and analytics_search(?",
                         f.search_hits->covered_id);
    w.text_params.push_back(ToLower(f.search_query));
    for (std::string_view col : kSearchColumns) w.sql += fmt::format(", {}", col);
    w.sql += "))";
    if (!f.search_api_key_hash.empty()) {
      w.sql += " or api_key_hash = ?";
      w.text_params.push_back(f.search_api_key_hash);
    }
    w.sql += ")";
  } else if (!f.search_query.empty() && !UsesLikeSearch(f.search_query)) {
    w.sql += " and (analytics_search(?";
    w.text_params.push_back(ToLower(f.search_query));
    for (std::string_view col : kSearchColumns) w.sql += fmt::format(", {}", col);
    w.sql += ")";
    if (!f.search_api_key_hash.empty()) {
      w.sql += " or api_key_hash = ?";
      w.text_params.push_back(f.search_api_key_hash);
    }
    w.sql += ")";
  } else if (!f.search_query.empty()) {
    std::string pattern = "%" + EscapeLike(ToLower(f.search_query)) + "%";
    w.sql += " and (";
    bool first = true;
    for (std::string_view col : kSearchColumns) {
      if (!first) w.sql += " or ";
      first = false;
      w.sql += fmt::format("lower({}) like ? escape '\\'", col);
      w.text_params.push_back(pattern);
    }
    if (!f.search_api_key_hash.empty()) {
      w.sql += " or api_key_hash = ?";
      w.text_params.push_back(f.search_api_key_hash);
    }
    w.sql += ")";
  } else if (!f.search_api_key_hash.empty()) {
    w.sql += " and api_key_hash = ?";
    w.text_params.push_back(f.search_api_key_hash);
  }
  if (!f.providers.empty()) {
    w.sql += " and (lower(provider) in (";
    for (size_t i = 0; i < f.providers.size(); ++i) {
      w.sql += i ? ",?" : "?";
      w.text_params.push_back(f.providers[i]);
    }
    w.sql += ") or lower(auth_provider_snapshot) in (";
    for (size_t i = 0; i < f.providers.size(); ++i) {
      w.sql += i ? ",?" : "?";
      w.text_params.push_back(f.providers[i]);
    }
    w.sql += "))";
  }
  if (!f.accounts.empty()) {
    w.sql += " and (";
    const char* cols[] = {"account_snapshot", "auth_label_snapshot", "source", "auth_index"};
    for (int c = 0; c < 4; ++c) {
      if (c) w.sql += " or ";
      w.sql += fmt::format("lower({}) in (", cols[c]);
      for (size_t i = 0; i < f.accounts.size(); ++i) {
        w.sql += i ? ",?" : "?";
        w.text_params.push_back(f.accounts[i]);
      }
      w.sql += ")";
    }
    w.sql += ")";
  }
  AddIn(w,
        "coalesce(nullif(auth_file_snapshot,''), nullif(auth_index,''), nullif(source_hash,''), "
        "nullif(source,''), '-')",
        f.credential_ids);
  AddIn(w, "auth_file_snapshot", f.auth_files);
  AddIn(w, "auth_index", f.auth_indices);
  AddIn(w, "api_key_hash", f.api_key_hashes);
  AddIn(w, "source_hash", f.source_hashes);
  AddIn(w, "auth_project_id_snapshot", f.project_ids);
  AddIn(w, "executor_type", f.request_types);
  AddIn(w, "header_error_kind", f.header_error_kinds);
  AddIn(w, "header_error_code", f.header_error_codes);
  AddIn(w, "header_quota_plan_type", f.header_quota_plans);
  AddIn(w, "header_trace_id", f.header_trace_ids);
  if (f.failed_only) {
    w.sql += " and failed = 1";
  } else if (!f.include_failed) {
    w.sql += " and failed = 0";
  }
  if (f.min_latency_ms > 0) w.sql += fmt::format(" and latency_ms >= {}", f.min_latency_ms);
  if (f.cache_status == "hit") {
    w.sql +=
        " and (cached_tokens > 0 or cache_tokens > 0 or cache_read_tokens > 0 or "
        "cache_creation_tokens > 0)";
  } else if (f.cache_status == "miss") {
    w.sql +=
        " and not (cached_tokens > 0 or cache_tokens > 0 or cache_read_tokens > 0 or "
        "cache_creation_tokens > 0)";
  } else if (f.cache_status == "read") {
    w.sql += " and cache_read_tokens > 0";
  } else if (f.cache_status == "creation") {
    w.sql += " and cache_creation_tokens > 0";
  }
  return w;
}

Status BindWhere(db::Statement& stmt, const Where& w, int first) {
  for (size_t i = 0; i < w.text_params.size(); ++i) {
    CPAMP_RETURN_IF_ERROR(stmt.BindText(first + static_cast<int>(i), w.text_params[i]));
  }
  return Status::Ok();
}

// ---- Raw rows
// ------------------------------------------------------------------------------------

const char kCoreColumns[] =
    "id, timestamp_ms, failed, model, requested_model, resolved_model, service_tier, "
    "input_tokens, normalized_total_input_tokens, output_tokens, reasoning_tokens, "
    "cached_tokens, cache_tokens, cache_read_tokens, cache_creation_tokens, total_tokens, "
    "latency_ms, ttft_ms";

EventView ReadCoreColumns(const db::Statement& s, int c) {
  EventView e;
  e.id = s.ColumnInt64(c + 0);
  e.ts = s.ColumnInt64(c + 1);
  e.failed = s.ColumnInt64(c + 2) != 0;
  e.model = s.ColumnTextView(c + 3);
  e.requested_model = s.ColumnTextView(c + 4);
  e.resolved_model = s.ColumnTextView(c + 5);
  e.service_tier = s.ColumnTextView(c + 6);
  Tokens& t = e.tokens;
  t.calls = 1;
  t.success = e.failed ? 0 : 1;
  t.failure = e.failed ? 1 : 0;
  t.input = s.IsNull(c + 8) ? s.ColumnInt64(c + 7) : s.ColumnInt64(c + 8);
  t.output = s.ColumnInt64(c + 9);
  t.reasoning = s.ColumnInt64(c + 10);
  int64_t cached = std::max(s.ColumnInt64(c + 11), s.ColumnInt64(c + 12));
  t.cache_read = s.ColumnInt64(c + 13);
  t.cache_creation = s.ColumnInt64(c + 14);
  int64_t compat =
      cached - std::max<int64_t>(t.cache_read, 0) - std::max<int64_t>(t.cache_creation, 0);
  t.cached = cached <= 0 || compat < 0 ? 0 : compat;
  t.total = s.ColumnInt64(c + 15);
  e.latency = s.ColumnOptionalInt64(c + 16);
  e.ttft = s.ColumnOptionalInt64(c + 17);
  if (e.latency && *e.latency != 0) {
    t.latency_sum = *e.latency;
    t.latency_samples = 1;
  }
  t.zero_token_calls = (t.total == 0 && !e.failed) ? 1 : 0;
  if (pricing::IsLongContext(t.input)) {
    t.long_input = t.input;
    t.long_output = t.output;
    t.long_cached = t.cached;
    t.long_cache_read = t.cache_read;
    t.long_cache_creation = t.cache_creation;
  }
  return e;
}

namespace {

void AddHourOfDay(CoreResult& out, const Zone& zone, int64_t ts, int64_t calls, int64_t tokens) {
  int64_t local = zone.LocalMs(ts);
  int64_t hour = (local - FloorDiv(local, kDayMs) * kDayMs) / kHourMs;
  out.hour_of_day[hour].first += calls;
  out.hour_of_day[hour].second += tokens;
  out.active_days.insert(FloorDiv(local, kDayMs));
}

}  // namespace

void AddRawToCore(const EventView& e, int key, const CoreSpec& spec, CoreResult& out) {
  out.total.Add(key, e.tokens);
  if (spec.percentiles) {
    if (e.latency && *e.latency > 0) out.latencies.push_back(static_cast<uint32_t>(*e.latency));
    if (e.ttft && *e.ttft > 0) out.ttfts.push_back(static_cast<uint32_t>(*e.ttft));
  }
  if (spec.buckets) {
    size_t b = spec.buckets->Index(e.ts);
    if (b != SIZE_MAX) {
      BucketAgg& ba = out.buckets[b];
      ba.agg.Add(key, e.tokens);
      if (e.latency && *e.latency > 0) ba.latencies.push_back(static_cast<uint32_t>(*e.latency));
      if (e.ttft && *e.ttft > 0) ba.ttfts.push_back(static_cast<uint32_t>(*e.ttft));
    }
  }
  AddHourOfDay(out, *spec.zone, e.ts, 1, e.tokens.total);
}

// ---- Rollup state and blobs
// -----------------------------------------------------------------------

void AppendSamples(std::string& blob, uint32_t v) {
  char b[4] = {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff),
               static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 24) & 0xff)};
  blob.append(b, 4);
}

void ReadSamples(std::string_view blob, std::vector<uint32_t>& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(blob.data());
  for (size_t i = 0; i + 4 <= blob.size(); i += 4) {
    out.push_back(static_cast<uint32_t>(p[i]) | (static_cast<uint32_t>(p[i + 1]) << 8) |
                  (static_cast<uint32_t>(p[i + 2]) << 16) |
                  (static_cast<uint32_t>(p[i + 3]) << 24));
  }
}

Result<RollupState> LoadRollupState(db::Connection& conn) {
  RollupState st;
  CPAMP_ASSIGN_OR_RETURN(db::Statement s,
                         conn.Prepare("select last_event_id, structure_revision, "
                                      "retained_before_ms from analytics_rollup_state "
                                      "where name = 'hourly'"));
  CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
  if (row) {
    st.last_event_id = s.ColumnInt64(0);
    st.revision = s.ColumnText(1);
    st.retained_before_ms = s.ColumnInt64(2);
  }
  return st;
}

std::string RollupRevision(const pricing::PriceTable& prices) {
  return pricing::ModelPriceStructureRevision(prices);
}

Result<pricing::PriceTable> LoadPricesOn(db::Connection& conn) { return pricing::LoadPrices(conn); }

// ---- The core scan -----------------------------------------------------------------------------

Status RunCore(db::Connection& conn, CostKeys& keys, const CoreSpec& spec, CoreResult& out) {
  const Filters& f = *spec.filters;
  if (spec.buckets) out.buckets.assign(spec.buckets->size(), BucketAgg{});
  const Zone& zone = *spec.zone;

  // Which whole UTC hours the rollup may answer.
  std::vector<int64_t> hours;  // ascending hour starts
  RollupState state;
  bool rollup = spec.allow_rollup && f.RollupEligible();
  if (rollup) {
    CPAMP_ASSIGN_OR_RETURN(state, LoadRollupState(conn));
    rollup = state.last_event_id > 0 && state.revision == RollupRevision(keys.prices());
  }
  if (rollup) {
    int64_t h = FloorDiv(spec.from_ms + kHourMs - 1, kHourMs) * kHourMs;
    for (; h + kHourMs <= spec.to_ms; h += kHourMs) {
      int64_t off = zone.OffsetMs(h);
      if (off % kHourMs != 0 || zone.NextTransition(h) < h + kHourMs) continue;
      if (spec.buckets && spec.buckets->Index(h) != spec.buckets->Index(h + kHourMs - 1)) {
        continue;
      }
      hours.push_back(h);
    }
  }
  out.used_rollup = !hours.empty();

  auto in_hours = [&](int64_t ts) {
    int64_t h = FloorDiv(ts, kHourMs) * kHourMs;
    return std::binary_search(hours.begin(), hours.end(), h);
  };
  auto model_ok = [&](int key) { return f.MatchesModel(keys.Get(key).analytics); };

  Where where = BuildWhere(f);
  // Raw rows: everything in range that is not in a rollup hour, plus rollup-hour rows the
  // rollup has not folded in yet (id > checkpoint).
  {
    std::string sql = fmt::format(
        "select {} from usage_events indexed by idx_usage_events_timestamp "
        "where timestamp_ms >= ?1 and timestamp_ms < ?2 and {}",
        kCoreColumns, where.sql);
    if (where.text_params.empty() && !hours.empty()) {
      // Narrow the scan to the edges when the rollup covers one contiguous run.
      bool contiguous =
          hours.back() - hours.front() == static_cast<int64_t>(hours.size() - 1) * kHourMs;
      if (contiguous) {
        sql = fmt::format(
            "select {} from usage_events indexed by idx_usage_events_timestamp "
            "where ((timestamp_ms >= ?1 and timestamp_ms < {}) or (timestamp_ms >= {} and "
            "timestamp_ms < ?2)) and {}",
            kCoreColumns, hours.front(), hours.back() + kHourMs, where.sql);
      }
    }
    CPAMP_ASSIGN_OR_RETURN(db::Statement s, conn.Prepare(sql));
    CPAMP_RETURN_IF_ERROR(s.Bind(1, spec.from_ms));
    CPAMP_RETURN_IF_ERROR(s.Bind(2, spec.to_ms));
    CPAMP_RETURN_IF_ERROR(BindWhere(s, where, 3));
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      EventView e = ReadCoreColumns(s, 0);
      if (!hours.empty() && in_hours(e.ts)) continue;
      int key = keys.ForEvent(e.model, e.requested_model, e.resolved_model, e.service_tier,
                              e.tokens.input);
      if (!model_ok(key)) continue;
      AddRawToCore(e, key, spec, out);
      if (e.tokens.zero_token_calls) out.zero_token_models.insert(keys.Get(key).analytics);
    }
  }
  if (hours.empty()) return Status::Ok();

  // Tail: rows in rollup hours with id > checkpoint.
  {
    std::string sql = fmt::format(
        "select {} from usage_events where id > ?1 and timestamp_ms >= ?2 and timestamp_ms < ?3 "
        "and {}",
        kCoreColumns, where.sql);
    CPAMP_ASSIGN_OR_RETURN(db::Statement s, conn.Prepare(sql));
    CPAMP_RETURN_IF_ERROR(s.Bind(1, state.last_event_id));
    CPAMP_RETURN_IF_ERROR(s.Bind(2, hours.front()));
    CPAMP_RETURN_IF_ERROR(s.Bind(3, hours.back() + kHourMs));
    CPAMP_RETURN_IF_ERROR(BindWhere(s, where, 4));
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      EventView e = ReadCoreColumns(s, 0);
      if (!in_hours(e.ts)) continue;
      int key = keys.ForEvent(e.model, e.requested_model, e.resolved_model, e.service_tier,
                              e.tokens.input);
      if (!model_ok(key)) continue;
      AddRawToCore(e, key, spec, out);
      if (e.tokens.zero_token_calls) out.zero_token_models.insert(keys.Get(key).analytics);
    }
  }

  // Rollup rows.
  std::string sql =
      "select bucket_ms, model, billing_model, service_tier, context_band, failed, calls, "
      "input_tokens, output_tokens, reasoning_tokens, cached_tokens, cache_read_tokens, "
      "cache_creation_tokens, total_tokens, latency_sum_ms, latency_samples, zero_token_calls, "
      "long_input_tokens, long_output_tokens, long_cached_tokens, long_cache_read_tokens, "
      "long_cache_creation_tokens, " +
      std::string(spec.percentiles || spec.buckets ? "latency_blob, ttft_blob" : "null, null") +
      " from analytics_hourly_rollups where bucket_ms >= ?1 and bucket_ms <= ?2";
  if (f.failed_only) {
    sql += " and failed = 1";
  } else if (!f.include_failed) {
    sql += " and failed = 0";
  }
  CPAMP_ASSIGN_OR_RETURN(db::Statement s, conn.Prepare(sql));
  CPAMP_RETURN_IF_ERROR(s.Bind(1, hours.front()));
  CPAMP_RETURN_IF_ERROR(s.Bind(2, hours.back()));
  std::vector<uint32_t> lat, ttft;
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    int64_t h = s.ColumnInt64(0);
    if (!std::binary_search(hours.begin(), hours.end(), h)) continue;
    int key = keys.ForRollup(s.ColumnTextView(1), s.ColumnTextView(2), s.ColumnTextView(3),
                             s.ColumnInt64(4));
    if (!model_ok(key)) continue;
    bool failed = s.ColumnInt64(5) != 0;
    Tokens t;
    t.calls = s.ColumnInt64(6);
    t.success = failed ? 0 : t.calls;
    t.failure = failed ? t.calls : 0;
    t.input = s.ColumnInt64(7);
    t.output = s.ColumnInt64(8);
    t.reasoning = s.ColumnInt64(9);
    t.cached = s.ColumnInt64(10);
    t.cache_read = s.ColumnInt64(11);
    t.cache_creation = s.ColumnInt64(12);
    t.total = s.ColumnInt64(13);
    t.latency_sum = s.ColumnInt64(14);
    t.latency_samples = s.ColumnInt64(15);
    t.zero_token_calls = s.ColumnInt64(16);
    t.long_input = s.ColumnInt64(17);
    t.long_output = s.ColumnInt64(18);
    t.long_cached = s.ColumnInt64(19);
    t.long_cache_read = s.ColumnInt64(20);
    t.long_cache_creation = s.ColumnInt64(21);
    out.total.Add(key, t);
    if (t.zero_token_calls) out.zero_token_models.insert(keys.Get(key).analytics);
    lat.clear();
    ttft.clear();
    ReadSamples(s.ColumnTextView(22), lat);
    ReadSamples(s.ColumnTextView(23), ttft);
    if (spec.percentiles) {
      out.latencies.insert(out.latencies.end(), lat.begin(), lat.end());
      out.ttfts.insert(out.ttfts.end(), ttft.begin(), ttft.end());
    }
    if (spec.buckets) {
      size_t b = spec.buckets->Index(h);
      if (b != SIZE_MAX) {
        BucketAgg& ba = out.buckets[b];
        ba.agg.Add(key, t);
        ba.latencies.insert(ba.latencies.end(), lat.begin(), lat.end());
        ba.ttfts.insert(ba.ttfts.end(), ttft.begin(), ttft.end());
      }
    }
    AddHourOfDay(out, zone, h, t.calls, t.total);
  }
  return Status::Ok();
}

}  // namespace cpamp::analytics::internal
