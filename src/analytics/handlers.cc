// HTTP handlers: dashboard summary, monitoring analytics, header snapshots (spec api §4.11-4.12,
// storage §6.2-6.4).
//
// Design notes:
// - Each handler decodes and validates, then computes on ONE pooled read connection inside a
//   deferred transaction (a consistent snapshot across its queries), then encodes snake_case.
// - Rollup-servable sections (summary aggregates and P95s, comparison, timeline,
//   hourly_distribution, anomaly points, model share/stats) go through internal::RunCore.
//   Sections grouped by credential, API key or provider (channel_share, failure_sources,
//   heatmap, filter_options, account/API-key/credential stats and timelines) read raw rows in
//   one scan with every filter in SQL. The dashboard reads today's raw rows once through the
//   timestamp index (10-minute buckets and channels need them; a day is small).
// - Events page and drilldown preview: keyset over idx_usage_events_timestamp (timestamp_ms, then
//   rowid = id); the model filter becomes an SQL function (analytics_model) so LIMIT stays exact.
// - Account history scans every raw event once, computing for each the identity keys of the
//   kinds the request asks about (spec storage 6.4) and looking them up in a map of targets.
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "analytics/internal.h"
#include "base/json.h"
#include "base/strings.h"
#include "usage/usage.h"

namespace cpamp::analytics {
namespace bj = boost::json;
namespace in = internal;
using net::Request;
using net::Response;

namespace {

Response Fail(const Status& s) { return Response::FromStatus(s); }

std::optional<int64_t> ParseInt(std::string_view text) {
  long long v = 0;
  if (!ParseInt64(text, &v)) return std::nullopt;
  return static_cast<int64_t>(v);
}
Response BadRequest(std::string msg) {
  return Response::FromStatus(Error(ErrorCode::kBadRequest, std::move(msg)));
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

bj::value AvgLatency(const in::Tokens& t) {
  if (t.latency_samples <= 0) return nullptr;
  return static_cast<double>(t.latency_sum) / static_cast<double>(t.latency_samples);
}

bj::value OptInt(const std::optional<int64_t>& v) {
  if (!v) return nullptr;
  return *v;
}

double CacheHitRate(const in::Tokens& t) {
  if (t.input <= 0) return 0;
  return std::clamp(static_cast<double>(t.cached + t.cache_read) / static_cast<double>(t.input),
                    0.0, 1.0);
}

// The full WHERE including the model filter (via analytics_model()).
in::Where FullWhere(const in::Filters& f) {
  in::Where w = in::BuildWhere(f);
  if (!f.models.empty()) {
    w.sql += " and analytics_model(model, requested_model) in (";
    for (size_t i = 0; i < f.models.size(); ++i) {
      w.sql += i ? ",?" : "?";
      w.text_params.push_back(f.models[i]);
    }
    w.sql += ")";
  }
  return w;
}

// ---- request decoding ---------------------------------------------------------------------------

std::vector<std::string> StringList(const bj::object* o, std::string_view key, bool lower) {
  std::vector<std::string> out;
  if (!o) return out;
  const bj::array* a = json::GetArray(*o, key);
  if (!a) return out;
  for (const bj::value& v : *a) {
    if (!v.is_string()) continue;
    std::string s(Trim(std::string_view(v.as_string())));
    if (s.empty()) continue;
    if (lower) s = ToLower(s);
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  }
  return out;
}

in::Filters ParseFilters(const bj::object& body) {
  in::Filters f;
  f.search_query = std::string(Trim(json::GetString(body, "search_query").value_or("")));
  f.search_api_key_hash =
      std::string(Trim(json::GetString(body, "search_api_key_hash").value_or("")));
  const bj::object* o = json::GetObject(body, "filters");
  for (std::string& m : StringList(o, "models", false)) {
    std::string a = usage::AnalyticsModel(m);
    if (std::find(f.models.begin(), f.models.end(), a) == f.models.end()) f.models.push_back(a);
  }
  f.providers = StringList(o, "providers", true);
  f.accounts = StringList(o, "accounts", true);
  f.credential_ids = StringList(o, "credential_ids", false);
  f.auth_files = StringList(o, "auth_files", false);
  f.auth_indices = StringList(o, "auth_indices", false);
  f.api_key_hashes = StringList(o, "api_key_hashes", false);
  f.source_hashes = StringList(o, "source_hashes", false);
  f.project_ids = StringList(o, "project_ids", false);
  f.request_types = StringList(o, "request_types", false);
  f.header_error_kinds = StringList(o, "header_error_kinds", false);
  f.header_error_codes = StringList(o, "header_error_codes", false);
  f.header_quota_plans = StringList(o, "header_quota_plans", false);
  f.header_trace_ids = StringList(o, "header_trace_ids", false);
  if (o) {
    f.include_failed = json::GetBool(*o, "include_failed").value_or(true);
    f.failed_only = json::GetBool(*o, "failed_only").value_or(false);
    f.min_latency_ms = json::GetInt(*o, "min_latency_ms").value_or(0);
    std::string cs = ToLower(Trim(json::GetString(*o, "cache_status").value_or("")));
    if (cs == "hit" || cs == "miss" || cs == "read" || cs == "creation") f.cache_status = cs;
  }
  return f;
}

// ---- shared row encoders ---------------------------------------------------------------------

void PutOptText(bj::object& o, std::string_view key, const db::Statement& s, std::string_view col) {
  if (!s.IsNull(col) && !s.ColumnTextView(col).empty()) o[key] = s.ColumnTextView(col);
}

constexpr char kFailureColumns[] =
    "timestamp_ms, model, api_key_hash, source, source_hash, auth_index, account_snapshot, "
    "auth_label_snapshot, auth_provider_snapshot, auth_project_id_snapshot, endpoint, latency_ms, "
    "fail_status_code, fail_summary, response_metadata_json, header_quota_recover_at_ms, "
    "header_quota_used_percent, header_quota_plan_type, header_error_kind, header_error_code, "
    "header_trace_id";

void PutHeaderFields(bj::object& o, const db::Statement& s) {
  if (!s.IsNull("response_metadata_json")) {
    auto parsed = json::Parse(s.ColumnTextView("response_metadata_json"));
    if (parsed.ok() && parsed->is_object()) o["response_metadata"] = *parsed;
  }
  if (!s.IsNull("header_quota_recover_at_ms")) {
    o["header_quota_recover_at_ms"] = s.ColumnInt64("header_quota_recover_at_ms");
  }
  if (!s.IsNull("header_quota_used_percent")) {
    o["header_quota_used_percent"] = s.ColumnDouble("header_quota_used_percent");
  }
  PutOptText(o, "header_quota_plan_type", s, "header_quota_plan_type");
  PutOptText(o, "header_error_kind", s, "header_error_kind");
  PutOptText(o, "header_error_code", s, "header_error_code");
  PutOptText(o, "header_trace_id", s, "header_trace_id");
}

bj::object FailureRow(const db::Statement& s) {
  bj::object o;
  o["timestamp_ms"] = s.ColumnInt64("timestamp_ms");
  o["model"] = s.ColumnTextView("model");
  o["api_key_hash"] = s.ColumnTextView("api_key_hash");
  PutOptText(o, "source", s, "source");
  o["source_hash"] = s.ColumnTextView("source_hash");
  o["auth_index"] = s.ColumnTextView("auth_index");
  PutOptText(o, "account_snapshot", s, "account_snapshot");
  PutOptText(o, "auth_label_snapshot", s, "auth_label_snapshot");
  PutOptText(o, "auth_provider_snapshot", s, "auth_provider_snapshot");
  PutOptText(o, "auth_project_id_snapshot", s, "auth_project_id_snapshot");
  o["endpoint"] = s.ColumnTextView("endpoint");
  o["duration_ms"] = s.ColumnInt64("latency_ms");
  if (!s.IsNull("fail_status_code")) o["fail_status_code"] = s.ColumnInt64("fail_status_code");
  PutOptText(o, "fail_summary", s, "fail_summary");
  PutHeaderFields(o, s);
  return o;
}

// Newest `limit` failed events in [from, to) matching `where`.
Result<bj::array> RecentFailures(db::Connection& conn, int64_t from, int64_t to,
                                 const in::Where& where, int64_t limit) {
  bj::array out;
  if (limit <= 0) return out;
  CPAMP_ASSIGN_OR_RETURN(
      db::Statement s,
      conn.Prepare(fmt::format("select {} from usage_events indexed by idx_usage_events_timestamp "
                               "where failed = 1 and timestamp_ms >= "
                               "?1 and timestamp_ms < ?2 and {} order by timestamp_ms desc, id "
                               "desc limit {}",
                               kFailureColumns, where.sql, limit)));
  CPAMP_RETURN_IF_ERROR(s.Bind(1, from));
  CPAMP_RETURN_IF_ERROR(s.Bind(2, to));
  CPAMP_RETURN_IF_ERROR(in::BindWhere(s, where, 3));
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(FailureRow(s));
  }
  return out;
}

// ---- credential groups (channel_share / channel_health / failure_sources) ----------------------

struct Group {
  in::Agg agg;
  int64_t last_seen = 0;
  std::string source, account, label, provider;
};

double GroupCost(const Group& g, in::CostKeys& keys) { return g.agg.Cost(keys); }

}  // namespace

Handlers::Handlers(db::Database& db, const Clock& clock, Options options)
    : db_(db), clock_(clock), options_(std::move(options)) {}

Result<pricing::PriceTable> Handlers::LoadPrices() {
  if (options_.prices) return options_.prices();
  return db_.Read([](db::Connection& c) { return in::LoadPricesOn(c); });
}

Response Handlers::MethodNotAllowed(const Request&) {
  return Response::ErrorJson(405, "method not allowed", "method_not_allowed");
}

// ==== Dashboard ==================================================================================

Response Handlers::DashboardSummary(const Request& request) {
  auto today_param = request.head.QueryParam("today_start_ms");
  if (!today_param || Trim(*today_param).empty()) return BadRequest("today_start_ms is required");
  auto today_start = ParseInt(Trim(*today_param));
  if (!today_start || *today_start <= 0) {
    return BadRequest("today_start_ms must be a positive integer");
  }
  int64_t now = 0;
  if (auto p = request.head.QueryParam("now_ms"); p && !Trim(*p).empty()) {
    auto v = ParseInt(Trim(*p));
    if (!v) return BadRequest("now_ms must be an integer");
    now = *v;
  }
  if (now <= 0) now = clock_.NowMs();
  int64_t top_n = 5, failures_n = 5;
  for (auto [name, target] : {std::pair{"top_models", &top_n}, {"recent_failures", &failures_n}}) {
    if (auto p = request.head.QueryParam(name); p && !Trim(*p).empty()) {
      auto v = ParseInt(Trim(*p));
      if (!v) return BadRequest(fmt::format("{} must be an integer", name));
      if (*v > 0) *target = *v;
    }
  }
  if (now < *today_start) {
    return Fail(Error(ErrorCode::kRequestFailed, "now_ms must not be before today_start_ms"));
  }
  auto prices = LoadPrices();
  if (!prices.ok()) return Fail(prices.status());
  const int64_t from = *today_start;

  auto result = db_.Read([&](db::Connection& conn) -> Result<bj::object> {
    CPAMP_ASSIGN_OR_RETURN(db::Transaction tx,
                           db::Transaction::Begin(conn, db::Transaction::Mode::kDeferred));
    in::CostKeys keys(*prices);
    in::Agg today;
    std::map<std::string, in::Agg, std::less<>> models;
    std::array<in::Tokens, 24> hours{};
    std::array<in::Tokens, 144> tens{};
    std::map<std::string, Group, std::less<>> channels;
    std::map<std::pair<std::string, std::string>, Group> sources;
    CPAMP_ASSIGN_OR_RETURN(
        db::Statement s,
        conn.Prepare(fmt::format("select {}, auth_index, source_hash from usage_events indexed "
                                 "by idx_usage_events_timestamp where timestamp_ms >= ?1 and "
                                 "timestamp_ms < ?2",
                                 in::kCoreColumns)));
    CPAMP_RETURN_IF_ERROR(s.Bind(1, from));
    CPAMP_RETURN_IF_ERROR(s.Bind(2, now));
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      in::EventView e = in::ReadCoreColumns(s, 0);
      int key = keys.ForEvent(e.model, e.requested_model, e.resolved_model, e.service_tier,
                              e.tokens.input);
      today.Add(key, e.tokens);
      auto mit = models.find(std::string_view(keys.Get(key).analytics));
      if (mit == models.end()) mit = models.emplace(keys.Get(key).analytics, in::Agg{}).first;
      mit->second.Add(key, e.tokens);
      int64_t h = (e.ts - from) / kHourMs;
      if (h >= 0 && h < 24) hours[h].Add(e.tokens);
      int64_t t10 = (e.ts - from) / 600'000;
      if (t10 >= 0 && t10 < 144) tens[t10].Add(e.tokens);
      std::string_view ai = s.ColumnTextView(18);
      std::string auth = ai.empty() ? "-" : std::string(ai);
      Group& ch = channels[auth];
      ch.agg.Add(key, e.tokens);
      // Failure sources count every call of a credential that failed at least once, so all
      // credentials are accumulated in this one pass and the failure-free ones dropped after.
      Group& fs = sources[{std::string(s.ColumnTextView(19)), std::string(ai)}];
      fs.agg.Add(key, e.tokens);
      if (e.failed) fs.last_seen = std::max(fs.last_seen, e.ts);
    }
    std::erase_if(sources, [](const auto& kv) { return kv.second.agg.total.failure == 0; });

    bj::object out;
    out["generated_at_ms"] = clock_.NowMs();
    out["window"] = bj::object{
        {"today_start_ms", from}, {"now_ms", now}, {"rolling_30m_start_ms", now - 1'800'000}};
    const in::Tokens& t = today.total;
    double today_cost = today.Cost(keys);
    out["today"] = bj::object{{"total_calls", t.calls},
                              {"success_calls", t.success},
                              {"failure_calls", t.failure},
                              {"success_rate", Ratio(t.success, t.calls)},
                              {"input_tokens", t.input},
                              {"output_tokens", t.output},
                              {"cached_tokens", t.cached},
                              {"cache_read_tokens", t.cache_read},
                              {"cache_creation_tokens", t.cache_creation},
                              {"reasoning_tokens", t.reasoning},
                              {"total_tokens", t.total},
                              {"total_cost", today_cost},
                              {"average_latency_ms", AvgLatency(t)},
                              {"zero_token_calls", t.zero_token_calls}};
    // Rolling 30 minutes.
    {
      CPAMP_ASSIGN_OR_RETURN(
          db::Statement r,
          conn.Prepare("select count(*), coalesce(sum(total_tokens), 0) from usage_events "
                       "indexed by idx_usage_events_timestamp where timestamp_ms >= ?1 and "
                       "timestamp_ms < ?2"));
      CPAMP_RETURN_IF_ERROR(r.Bind(1, now - 1'800'000));
      CPAMP_RETURN_IF_ERROR(r.Bind(2, now));
      CPAMP_ASSIGN_OR_RETURN(bool row, r.Step());
      int64_t calls = row ? r.ColumnInt64(0) : 0, tokens = row ? r.ColumnInt64(1) : 0;
      out["rolling_30m"] = bj::object{{"rpm", calls / 30.0},
                                      {"tpm", tokens / 30.0},
                                      {"total_calls", calls},
                                      {"total_tokens", tokens}};
    }
    struct ModelRow {
      std::string model;
      int64_t calls, tokens, success;
      double cost;
    };
    std::vector<ModelRow> rows;
    for (auto& [m, a] : models) {
      rows.push_back({m, a.total.calls, a.total.total, a.total.success, a.Cost(keys)});
    }
    std::vector<ModelRow> by_calls = rows;
    std::sort(by_calls.begin(), by_calls.end(), [](const ModelRow& a, const ModelRow& b) {
      return a.calls != b.calls ? a.calls > b.calls : a.model < b.model;
    });
    bj::array top;
    for (size_t i = 0; i < by_calls.size() && static_cast<int64_t>(i) < top_n; ++i) {
      const ModelRow& r = by_calls[i];
      top.push_back(bj::object{{"model", r.model},
                               {"calls", r.calls},
                               {"tokens", r.tokens},
                               {"cost", r.cost},
                               {"success_rate", Ratio(r.success, r.calls)}});
    }
    out["top_models_today"] = std::move(top);
    std::sort(rows.begin(), rows.end(), [](const ModelRow& a, const ModelRow& b) {
      if (a.cost != b.cost) return a.cost > b.cost;
      if (a.calls != b.calls) return a.calls > b.calls;
      return a.model < b.model;
    });
    double max_cost = rows.empty() ? 0 : rows.front().cost;
    bj::array rank;
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < top_n; ++i) {
      const ModelRow& r = rows[i];
      rank.push_back(bj::object{{"model", r.model},
                                {"calls", r.calls},
                                {"tokens", r.tokens},
                                {"cost", r.cost},
                                {"success_rate", Ratio(r.success, r.calls)},
                                {"cost_share", Ratio(r.cost, max_cost)}});
    }
    out["model_cost_rank"] = std::move(rank);
    int64_t max_calls = 0, max_tokens = 0;
    for (const auto& h : hours) {
      max_calls = std::max(max_calls, h.calls);
      max_tokens = std::max(max_tokens, h.total);
    }
    bj::array traffic, activity;
    for (int i = 0; i < 24; ++i) {
      const in::Tokens& h = hours[i];
      double cs = Ratio(h.calls, max_calls), ts = Ratio(h.total, max_tokens);
      int64_t b = from + i * kHourMs;
      traffic.push_back(bj::object{{"bucket_ms", b},
                                   {"calls", h.calls},
                                   {"tokens", h.total},
                                   {"success", h.success},
                                   {"failure", h.failure},
                                   {"calls_share", cs},
                                   {"tokens_share", ts},
                                   {"failure_rate", Ratio(h.failure, h.calls)}});
      activity.push_back(bj::object{{"hour_index", i},
                                    {"bucket_ms", b},
                                    {"calls", h.calls},
                                    {"tokens", h.total},
                                    {"intensity", std::max(cs, ts)}});
    }
    out["traffic_timeline"] = std::move(traffic);
    out["hourly_activity"] = std::move(activity);
    int64_t max10 = 0;
    for (const auto& p : tens) max10 = std::max(max10, p.calls);
    bj::array points;
    for (int i = 0; i < 144; ++i) {
      const in::Tokens& p = tens[i];
      int64_t b = from + i * 600'000;
      double fr = Ratio(p.failure, p.calls);
      bool future = b > now;
      std::string tone = future         ? "future"
                         : p.calls == 0 ? "empty"
                         : fr >= 0.1    ? "bad"
                         : fr > 0       ? "warn"
                                        : "good";
      points.push_back(bj::object{{"bucket_ms", b},
                                  {"calls", p.calls},
                                  {"tokens", p.total},
                                  {"success", p.success},
                                  {"failure", p.failure},
                                  {"success_rate", Ratio(p.success, p.calls)},
                                  {"failure_rate", fr},
                                  {"tone", tone},
                                  {"intensity", Ratio(p.calls, max10)},
                                  {"future", future}});
    }
    out["today_request_health_timeline"] = bj::object{{"from_ms", from},
                                                      {"to_ms", from + 144 * 600'000},
                                                      {"bucket_ms", 600'000},
                                                      {"success_calls", t.success},
                                                      {"failure_calls", t.failure},
                                                      {"total_calls", t.calls},
                                                      {"success_rate", Ratio(t.success, t.calls)},
                                                      {"points", std::move(points)}};
    // Token mix.
    {
      int64_t cached = t.cached + t.cache_read + t.cache_creation;
      int64_t input = std::max<int64_t>(t.input - cached, 0);
      int64_t output = t.output, reasoning = t.reasoning;
      int64_t sum = cached + input + output + reasoning;
      if (sum > t.total) {
        int64_t over = sum - t.total;
        int64_t r = std::min({over, std::min(output, reasoning)});
        reasoning -= r;
        over -= r;
        int64_t o = std::min(over, output);
        output -= o;
        over -= o;
        input -= std::min(over, input);
      }
      int64_t seg_sum = cached + input + output + reasoning;
      bj::array mix;
      for (auto [k, v] : {std::pair{"input", input},
                          {"cached", cached},
                          {"output", output},
                          {"reasoning", reasoning}}) {
        mix.push_back(bj::object{{"key", k}, {"tokens", v}, {"share", Ratio(v, seg_sum)}});
      }
      out["token_mix"] = std::move(mix);
    }
    // Channel health.
    {
      struct Ch {
        std::string auth;
        const Group* g;
        double sr, lat;
        int sev;
      };
      std::vector<Ch> list;
      for (auto& [a, g] : channels) {
        const in::Tokens& x = g.agg.total;
        double sr = Ratio(x.success, x.calls);
        double lat = x.latency_samples ? static_cast<double>(x.latency_sum) / x.latency_samples : 0;
        int sev = (sr < 0.85 || x.failure >= 5 || lat >= 30000)  ? 2
                  : (sr < 0.95 || x.failure > 0 || lat >= 15000) ? 1
                                                                 : 0;
        list.push_back({a, &g, sr, lat, sev});
      }
      std::sort(list.begin(), list.end(), [](const Ch& a, const Ch& b) {
        if (a.sev != b.sev) return a.sev > b.sev;
        if (a.g->agg.total.failure != b.g->agg.total.failure) {
          return a.g->agg.total.failure > b.g->agg.total.failure;
        }
        if (a.g->agg.total.calls != b.g->agg.total.calls) {
          return a.g->agg.total.calls > b.g->agg.total.calls;
        }
        return a.auth < b.auth;
      });
      bj::array arr;
      CPAMP_ASSIGN_OR_RETURN(
          db::Statement info,
          conn.Prepare("select source, account_snapshot, auth_label_snapshot, "
                       "auth_provider_snapshot from usage_events where coalesce(nullif("
                       "auth_index,''),'-') = ?1 and timestamp_ms >= ?2 and timestamp_ms < ?3 "
                       "order by timestamp_ms desc limit 1"));
      for (size_t i = 0; i < list.size() && i < 5; ++i) {
        const Ch& c = list[i];
        const in::Tokens& x = c.g->agg.total;
        bj::object o;
        o["auth_index"] = c.auth;
        CPAMP_RETURN_IF_ERROR(info.Reset());
        CPAMP_RETURN_IF_ERROR(info.Bind(1, c.auth));
        CPAMP_RETURN_IF_ERROR(info.Bind(2, from));
        CPAMP_RETURN_IF_ERROR(info.Bind(3, now));
        CPAMP_ASSIGN_OR_RETURN(bool row, info.Step());
        if (row) {
          PutOptText(o, "source", info, "source");
          PutOptText(o, "account_snapshot", info, "account_snapshot");
          PutOptText(o, "auth_label_snapshot", info, "auth_label_snapshot");
          PutOptText(o, "auth_provider_snapshot", info, "auth_provider_snapshot");
        }
        o["calls"] = x.calls;
        o["failures"] = x.failure;
        o["failure_rate"] = Ratio(x.failure, x.calls);
        o["success_rate"] = c.sr;
        o["tokens"] = x.total;
        o["cost"] = GroupCost(*c.g, keys);
        o["average_latency_ms"] = AvgLatency(x);
        o["tone"] = c.sev == 2 ? "bad" : c.sev == 1 ? "warn" : "good";
        arr.push_back(std::move(o));
      }
      out["channel_health"] = std::move(arr);
    }
    // Failure sources.
    {
      std::vector<std::pair<const std::pair<std::string, std::string>*, const Group*>> list;
      for (auto& [k, g] : sources) list.emplace_back(&k, &g);
      std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
        if (a.second->agg.total.failure != b.second->agg.total.failure) {
          return a.second->agg.total.failure > b.second->agg.total.failure;
        }
        if (a.second->last_seen != b.second->last_seen) {
          return a.second->last_seen > b.second->last_seen;
        }
        return *a.first < *b.first;
      });
      CPAMP_ASSIGN_OR_RETURN(
          db::Statement info,
          conn.Prepare("select source, account_snapshot, auth_label_snapshot, "
                       "auth_provider_snapshot from usage_events where coalesce(source_hash,'') "
                       "= ?1 and coalesce(auth_index,'') = ?2 and timestamp_ms >= ?3 and "
                       "timestamp_ms < ?4 order by timestamp_ms desc limit 1"));
      bj::array arr;
      for (size_t i = 0; i < list.size() && i < 5; ++i) {
        const in::Tokens& x = list[i].second->agg.total;
        bj::object o;
        CPAMP_RETURN_IF_ERROR(info.Reset());
        CPAMP_RETURN_IF_ERROR(info.Bind(1, list[i].first->first));
        CPAMP_RETURN_IF_ERROR(info.Bind(2, list[i].first->second));
        CPAMP_RETURN_IF_ERROR(info.Bind(3, from));
        CPAMP_RETURN_IF_ERROR(info.Bind(4, now));
        CPAMP_ASSIGN_OR_RETURN(bool row, info.Step());
        if (row) PutOptText(o, "source", info, "source");
        o["source_hash"] = list[i].first->first;
        o["auth_index"] = list[i].first->second;
        if (row) {
          PutOptText(o, "account_snapshot", info, "account_snapshot");
          PutOptText(o, "auth_label_snapshot", info, "auth_label_snapshot");
          PutOptText(o, "auth_provider_snapshot", info, "auth_provider_snapshot");
        }
        double fr = Ratio(x.failure, x.calls);
        o["calls"] = x.calls;
        o["failures"] = x.failure;
        o["failure_rate"] = fr;
        o["last_seen_ms"] = list[i].second->last_seen;
        o["average_latency_ms"] = AvgLatency(x);
        o["tone"] = (fr >= 0.5 || x.failure >= 5) ? "bad" : "warn";
        arr.push_back(std::move(o));
      }
      out["failure_sources"] = std::move(arr);
    }
    in::Where none;
    none.sql = "1=1";
    CPAMP_ASSIGN_OR_RETURN(bj::array rf, RecentFailures(conn, from, now, none, failures_n));
    out["recent_failures"] = std::move(rf);
    return out;
  });
  if (!result.ok()) return Fail(result.status());
  return Response::Json(200, *result);
}

// ==== Monitoring analytics =======================================================================

namespace {

struct Include {
  bool summary = false, compact = false, percentiles = false, comparison = false;
  bool timeline = false, hourly = false, heatmap = false, anomaly = false;
  bool model_share = false, model_stats = false, channel_share = false, failure_sources = false;
  bool filter_options = false, task_buckets = false;
  bool account_stats = false, api_key_stats = false, credential_stats = false;
  bool credential_timeline = false, api_key_timeline = false;
  bool drilldown = false;
  int64_t drilldown_from = 0, drilldown_to = 0, drilldown_limit = kDefaultDrilldownLimit;
  int64_t recent_failures = 0;
  bool events = false;
  int64_t events_limit = kDefaultEventsPageLimit;
  int64_t before_ms = 0, before_id = 0;
  std::string granularity;
};

// Identity columns of one raw row (views valid until the next step).
struct IdentityView {
  std::string_view auth_index, source_hash, source, account, label, auth_provider, api_key_hash,
      provider, auth_file;
};

// The per-entity metric fields shared by account/API-key/credential rows (api 4.12).
void PutStats(bj::object& o, const in::Agg& a, in::CostKeys& keys) {
  const in::Tokens& t = a.total;
  o["calls"] = t.calls;
  o["success_calls"] = t.success;
  o["failure_calls"] = t.failure;
  o["success_rate"] = Ratio(t.success, t.calls);
  o["input_tokens"] = t.input;
  o["output_tokens"] = t.output;
  o["cached_tokens"] = t.cached;
  o["cache_read_tokens"] = t.cache_read;
  o["cache_creation_tokens"] = t.cache_creation;
  o["reasoning_tokens"] = t.reasoning;
  o["total_tokens"] = t.total;
  o["cost"] = a.Cost(keys);
  o["average_latency_ms"] = AvgLatency(t);
}

void PutIfNotEmpty(bj::object& o, std::string_view key, const std::string& v) {
  if (!v.empty()) o[key] = v;
}

bj::array StringArray(const std::set<std::string>& values) {
  bj::array a;
  for (const auto& v : values) a.push_back(bj::value(v));
  return a;
}

// account_stats, api_key_stats, credential_stats, credential_timeline and api_key_timeline, fed
// row by row from the grouped raw scan (spec storage 6.3). Identity fields (source, snapshots,
// provider) are those of the entity's newest event.
class EntitySections {
 public:
  EntitySections(in::CostKeys& keys, const in::Buckets& buckets) : keys_(keys), buckets_(buckets) {}

  void Add(const Include& inc, const in::EventView& e, int key, const IdentityView& id) {
    const std::string& model = keys_.Get(key).analytics;
    if (inc.account_stats) {
      std::string_view name = !id.account.empty()      ? id.account
                              : !id.label.empty()      ? id.label
                              : !id.source.empty()     ? id.source
                              : !id.auth_index.empty() ? id.auth_index
                                                       : std::string_view("-");
      Entity& a = Touch(accounts_[std::string(name)], e, key, id, model);
      if (!id.auth_index.empty()) a.auth_indices.emplace(id.auth_index);
      if (!id.source.empty()) a.sources.emplace(id.source);
      if (!id.source_hash.empty()) a.source_hashes.emplace(id.source_hash);
    }
    if (inc.api_key_stats) {
      Entity& k = Touch(api_keys_[std::string(id.api_key_hash)], e, key, id, model);
      std::string provider(!id.auth_provider.empty() ? id.auth_provider : id.provider);
      std::string ctx_key =
          fmt::format("{}|{}|{}|{}", id.source_hash, id.auth_index, id.source, provider);
      Touch(k.contexts[ctx_key], e, key, id, "");
    }
    std::string cred;
    if (inc.credential_stats || inc.credential_timeline) {
      std::string_view cid = !id.auth_file.empty()     ? id.auth_file
                             : !id.auth_index.empty()  ? id.auth_index
                             : !id.source_hash.empty() ? id.source_hash
                             : !id.source.empty()      ? id.source
                                                       : std::string_view("-");
      cred = fmt::format("{}\x1f{}\x1f{}\x1f{}", cid, id.auth_file, id.auth_index, id.source_hash);
    }
    if (inc.credential_stats) Touch(credentials_[cred], e, key, id, model);
    size_t b = (inc.credential_timeline || inc.api_key_timeline) ? buckets_.Index(e.ts) : SIZE_MAX;
    if (b != SIZE_MAX && inc.credential_timeline) {
      credential_points_[{cred, b}].Add(key, e.tokens);
    }
    if (b != SIZE_MAX && inc.api_key_timeline) {
      api_key_points_[{std::string(id.api_key_hash), b}].Add(key, e.tokens);
    }
  }

  void Encode(const Include& inc, bj::object& out) {
    if (inc.account_stats) {
      bj::array arr;
      for (const auto& [name, a] : Sorted(accounts_)) {
        bj::object o;
        o["account"] = *name;
        PutIdentity(o, *a);
        PutStats(o, a->agg, keys_);
        o["last_seen_ms"] = a->last_seen;
        o["auth_indices"] = StringArray(a->auth_indices);
        o["sources"] = StringArray(a->sources);
        o["source_hashes"] = StringArray(a->source_hashes);
        o["models"] = Models(*a);
        arr.push_back(std::move(o));
      }
      out["account_stats"] = std::move(arr);
    }
    if (inc.api_key_stats) {
      bj::array arr;
      for (const auto& [hash, k] : Sorted(api_keys_)) {
        bj::object o;
        o["api_key_hash"] = *hash;
        PutStats(o, k->agg, keys_);
        o["last_seen_ms"] = k->last_seen;
        o["models"] = Models(*k);
        bj::array contexts;
        for (const auto& [ck, c] : Sorted(k->contexts)) {
          bj::object co;
          co["context_key"] = *ck;
          co["source_hash"] = c->source_hash;
          co["auth_index"] = c->auth_index;
          PutIfNotEmpty(co, "source", c->source);
          PutIfNotEmpty(co, "provider", c->provider);
          PutIdentity(co, *c);
          PutStats(co, c->agg, keys_);
          co["last_seen_ms"] = c->last_seen;
          contexts.push_back(std::move(co));
        }
        o["contexts"] = std::move(contexts);
        arr.push_back(std::move(o));
      }
      out["api_key_stats"] = std::move(arr);
    }
    if (inc.credential_stats) {
      bj::array arr;
      for (const auto& [cred, c] : Sorted(credentials_)) {
        bj::object o;
        PutCredentialId(o, *cred);
        PutIfNotEmpty(o, "source", c->source);
        PutIdentity(o, *c);
        PutStats(o, c->agg, keys_);
        o["last_seen_ms"] = c->last_seen;
        o["models"] = Models(*c);
        arr.push_back(std::move(o));
      }
      out["credential_stats"] = std::move(arr);
    }
    if (inc.credential_timeline) {
      out["credential_timeline"] = Timeline(credential_points_, true);
    }
    if (inc.api_key_timeline) out["api_key_timeline"] = Timeline(api_key_points_, false);
  }

 private:
  struct Entity {
    in::Agg agg;
    int64_t last_seen = 0;
    std::string source, source_hash, auth_index, account, label, provider, auth_file;
    std::set<std::string> auth_indices, sources, source_hashes;
    std::map<std::string, in::Agg> models;
    std::map<std::string, Entity> contexts;
  };

  Entity& Touch(Entity& g, const in::EventView& e, int key, const IdentityView& id,
                const std::string& model) {
    g.agg.Add(key, e.tokens);
    if (!model.empty()) g.models[model].Add(key, e.tokens);
    if (e.ts >= g.last_seen) {
      g.last_seen = e.ts;
      g.source = id.source;
      g.source_hash = id.source_hash;
      g.auth_index = id.auth_index;
      g.account = id.account;
      g.label = id.label;
      g.provider = !id.auth_provider.empty() ? id.auth_provider : id.provider;
      g.auth_file = id.auth_file;
    }
    return g;
  }

  static void PutIdentity(bj::object& o, const Entity& g) {
    PutIfNotEmpty(o, "account_snapshot", g.account);
    PutIfNotEmpty(o, "auth_label_snapshot", g.label);
    PutIfNotEmpty(o, "auth_provider_snapshot", g.provider);
  }

  static void PutCredentialId(bj::object& o, const std::string& cred) {
    std::vector<std::string_view> parts;
    std::string_view rest = cred;
    for (size_t p; (p = rest.find('\x1f')) != std::string_view::npos; rest.remove_prefix(p + 1)) {
      parts.push_back(rest.substr(0, p));
    }
    parts.push_back(rest);
    o["credential_id"] = parts[0];
    if (!parts[1].empty()) o["auth_file_snapshot"] = parts[1];
    o["auth_index"] = parts[2];
    o["source_hash"] = parts[3];
  }

  // Calls desc, then key asc.
  template <typename V>
  static std::vector<std::pair<const std::string*, const V*>> Sorted(
      const std::map<std::string, V>& m) {
    std::vector<std::pair<const std::string*, const V*>> list;
    for (const auto& [k, v] : m) list.emplace_back(&k, &v);
    std::stable_sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
      return Calls(*a.second) > Calls(*b.second);
    });
    return list;
  }
  static int64_t Calls(const Entity& e) { return e.agg.total.calls; }
  static int64_t Calls(const in::Agg& a) { return a.total.calls; }

  bj::array Models(const Entity& g) {
    bj::array arr;
    for (const auto& [m, a] : Sorted(g.models)) {
      bj::object o;
      o["model"] = *m;
      PutStats(o, *a, keys_);
      arr.push_back(std::move(o));
    }
    return arr;
  }

  bj::array Timeline(const std::map<std::pair<std::string, size_t>, in::Agg>& points,
                     bool credential) {
    bj::array arr;
    for (const auto& [k, a] : points) {
      bj::object o;
      if (credential) {
        PutCredentialId(o, k.first);
      } else {
        o["api_key_hash"] = k.first;
      }
      const in::Tokens& t = a.total;
      o["bucket_ms"] = buckets_.Start(k.second);
      o["label"] = buckets_.Label(k.second);
      o["calls"] = t.calls;
      o["tokens"] = t.total;
      o["success"] = t.success;
      o["failure"] = t.failure;
      o["cost"] = a.Cost(keys_);
      o["average_latency_ms"] = AvgLatency(t);
      arr.push_back(std::move(o));
    }
    return arr;
  }

  in::CostKeys& keys_;
  const in::Buckets& buckets_;
  std::map<std::string, Entity> accounts_, api_keys_, credentials_;
  std::map<std::pair<std::string, size_t>, in::Agg> credential_points_, api_key_points_;
};

bj::object EventRowJson(const db::Statement& s) {
  bj::object o;
  PutOptText(o, "request_id", s, "request_id");
  o["id"] = s.ColumnInt64("id");
  o["event_hash"] = s.ColumnTextView("event_hash");
  o["timestamp_ms"] = s.ColumnInt64("timestamp_ms");
  o["model"] = s.ColumnTextView("model");
  std::string_view req = s.ColumnTextView("requested_model");
  o["analytics_model"] = usage::AnalyticsModel(req.empty() ? s.ColumnTextView("model") : req);
  PutOptText(o, "requested_model", s, "requested_model");
  PutOptText(o, "resolved_model", s, "resolved_model");
  for (const char* c : {"endpoint", "method", "path"}) o[c] = s.ColumnTextView(c);
  PutOptText(o, "client_ip", s, "client_ip");
  PutOptText(o, "x_forwarded_for", s, "x_forwarded_for");
  PutOptText(o, "user_agent", s, "user_agent");
  for (const char* c : {"auth_index", "source", "source_hash", "api_key_hash", "account_snapshot",
                        "auth_label_snapshot"}) {
    o[c] = s.ColumnTextView(c);
  }
  PutOptText(o, "auth_file_snapshot", s, "auth_file_snapshot");
  o["auth_provider_snapshot"] = s.ColumnTextView("auth_provider_snapshot");
  PutOptText(o, "auth_project_id_snapshot", s, "auth_project_id_snapshot");
  PutOptText(o, "reasoning_effort", s, "reasoning_effort");
  PutOptText(o, "service_tier", s, "service_tier");
  PutOptText(o, "executor_type", s, "executor_type");
  int64_t input = s.IsNull("normalized_total_input_tokens")
                      ? s.ColumnInt64("input_tokens")
                      : s.ColumnInt64("normalized_total_input_tokens");
  int64_t c = std::max(s.ColumnInt64("cached_tokens"), s.ColumnInt64("cache_tokens"));
  int64_t read = s.ColumnInt64("cache_read_tokens"), cr = s.ColumnInt64("cache_creation_tokens");
  int64_t compat = c - std::max<int64_t>(read, 0) - std::max<int64_t>(cr, 0);
  o["input_tokens"] = input;
  o["output_tokens"] = s.ColumnInt64("output_tokens");
  o["cached_tokens"] = c <= 0 || compat < 0 ? 0 : compat;
  o["cache_read_tokens"] = read;
  o["cache_creation_tokens"] = cr;
  o["reasoning_tokens"] = s.ColumnInt64("reasoning_tokens");
  o["total_tokens"] = s.ColumnInt64("total_tokens");
  o["latency_ms"] = s.ColumnInt64("latency_ms");
  o["ttft_ms"] = s.ColumnInt64("ttft_ms");
  o["failed"] = s.ColumnInt64("failed") != 0;
  if (!s.IsNull("fail_status_code")) o["fail_status_code"] = s.ColumnInt64("fail_status_code");
  PutOptText(o, "fail_summary", s, "fail_summary");
  PutHeaderFields(o, s);
  return o;
}

constexpr char kEventColumns[] =
    "id, request_id, event_hash, timestamp_ms, model, requested_model, resolved_model, endpoint, "
    "method, path, client_ip, x_forwarded_for, user_agent, auth_index, source, source_hash, "
    "api_key_hash, account_snapshot, auth_label_snapshot, auth_file_snapshot, "
    "auth_provider_snapshot, auth_project_id_snapshot, reasoning_effort, service_tier, "
    "executor_type, input_tokens, normalized_total_input_tokens, output_tokens, cached_tokens, "
    "cache_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens, total_tokens, "
    "latency_ms, ttft_ms, failed, fail_status_code, fail_summary, response_metadata_json, "
    "header_quota_recover_at_ms, header_quota_used_percent, header_quota_plan_type, "
    "header_error_kind, header_error_code, header_trace_id";

// Binds analytics_hit() to a request's hits and unbinds it when the request's read ends, so a
// pooled connection never points at freed hits.
class HitsBinding {
 public:
  explicit HitsBinding(db::Connection& conn) : conn_(conn) {}
  ~HitsBinding() {
    if (bound_) in::BindSearchHits(conn_, nullptr);
  }
  HitsBinding(const HitsBinding&) = delete;
  HitsBinding& operator=(const HitsBinding&) = delete;
  void Bind(const in::SearchHits* hits) {
    in::BindSearchHits(conn_, hits);
    bound_ = true;
  }

 private:
  db::Connection& conn_;
  bool bound_ = false;
};

// One keyset page (timestamp_ms desc, id desc) of [from, to) rows matching `where`, without
// total_count.
Result<bj::object> EventsPage(db::Connection& conn, int64_t from, int64_t to,
                              const in::Where& where, int64_t before_ms, int64_t before_id,
                              int64_t limit) {
  std::string cursor;
  if (before_ms > 0 && before_id > 0) {
    cursor = fmt::format(" and (timestamp_ms < {0} or (timestamp_ms = {0} and id < {1}))",
                         before_ms, before_id);
  } else if (before_ms > 0) {
    cursor = fmt::format(" and timestamp_ms < {}", before_ms);
  }
  CPAMP_ASSIGN_OR_RETURN(
      db::Statement s,
      conn.Prepare(fmt::format("select {} from usage_events indexed by "
                               "idx_usage_events_timestamp where timestamp_ms >= ?1 and "
                               "timestamp_ms < ?2{} and {} order by timestamp_ms desc, id "
                               "desc limit {}",
                               kEventColumns, cursor, where.sql, limit + 1)));
  CPAMP_RETURN_IF_ERROR(s.Bind(1, from));
  CPAMP_RETURN_IF_ERROR(s.Bind(2, to));
  CPAMP_RETURN_IF_ERROR(in::BindWhere(s, where, 3));
  bj::array items;
  bool has_more = false;
  int64_t last_ms = 0, last_id = 0;
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    if (static_cast<int64_t>(items.size()) == limit) {
      has_more = true;
      break;
    }
    last_ms = s.ColumnInt64("timestamp_ms");
    last_id = s.ColumnInt64("id");
    bj::object o = EventRowJson(s);
    o.erase("id");
    items.push_back(std::move(o));
  }
  return bj::object{{"items", std::move(items)},
                    {"next_before_ms", has_more ? last_ms : 0},
                    {"next_before_id", has_more ? last_id : 0},
                    {"has_more", has_more}};
}

bj::object SummaryBase(const in::Tokens& t, double cost) {
  return bj::object{{"total_calls", t.calls},
                    {"success_calls", t.success},
                    {"failure_calls", t.failure},
                    {"success_rate", Ratio(t.success, t.calls)},
                    {"input_tokens", t.input},
                    {"output_tokens", t.output},
                    {"cached_tokens", t.cached},
                    {"cache_read_tokens", t.cache_read},
                    {"cache_creation_tokens", t.cache_creation},
                    {"cache_hit_rate", CacheHitRate(t)},
                    {"reasoning_tokens", t.reasoning},
                    {"total_tokens", t.total},
                    {"total_cost", cost},
                    {"average_cost_per_call", Ratio(cost, t.calls)},
                    {"average_latency_ms", AvgLatency(t)},
                    {"zero_token_calls", t.zero_token_calls}};
}

double Delta(double cur, double prev) {
  if (prev <= 0) return cur > 0 ? 1 : 0;
  return (cur - prev) / prev;
}

}  // namespace

Response Handlers::MonitoringAnalytics(const Request& request) {
  Result<bj::object> parsed = Trim(request.body).empty() ? Result<bj::object>(bj::object())
                                                         : json::ParseObject(request.body);
  if (!parsed.ok()) return BadRequest("invalid request body: " + parsed.status().message());
  const bj::object& body = *parsed;
  int64_t from = json::GetInt(body, "from_ms").value_or(0);
  int64_t to = json::GetInt(body, "to_ms").value_or(0);
  if (from <= 0 || to <= 0 || from >= to) {
    return BadRequest("from_ms and to_ms are required and from_ms must be less than to_ms");
  }
  int64_t now = json::GetInt(body, "now_ms").value_or(0);
  if (now <= 0) now = clock_.NowMs();
  Include inc;
  if (const bj::object* o = json::GetObject(body, "include")) {
    auto flag = [&](std::string_view k) { return json::GetBool(*o, k).value_or(false); };
    inc.summary = flag("summary");
    inc.compact = json::GetString(*o, "summary_profile").value_or("") == "compact";
    inc.percentiles = flag("summary_percentiles");
    inc.comparison = flag("summary_comparison");
    inc.timeline = flag("timeline");
    inc.hourly = flag("hourly_distribution");
    inc.heatmap = flag("heatmap");
    inc.anomaly = flag("anomaly_points");
    inc.model_share = flag("model_share");
    inc.model_stats = flag("model_stats");
    inc.channel_share = flag("channel_share");
    inc.failure_sources = flag("failure_sources");
    inc.filter_options = flag("filter_options") || flag("filter_selectors");
    inc.task_buckets = flag("task_buckets");
    inc.account_stats = flag("account_stats");
    inc.api_key_stats = flag("api_key_stats");
    inc.credential_stats = flag("credential_stats");
    inc.credential_timeline = flag("credential_timeline");
    inc.api_key_timeline = flag("api_key_timeline");
    if (const bj::object* dp = json::GetObject(*o, "drilldown_preview")) {
      inc.drilldown = true;
      inc.drilldown_from = json::GetInt(*dp, "from_ms").value_or(0);
      inc.drilldown_to = json::GetInt(*dp, "to_ms").value_or(0);
      int64_t limit = json::GetInt(*dp, "limit").value_or(0);
      if (limit > 0) inc.drilldown_limit = std::min<int64_t>(limit, kMaxDrilldownLimit);
    }
    inc.recent_failures = json::GetInt(*o, "recent_failures").value_or(0);
    if (const bj::object* ep = json::GetObject(*o, "events_page")) {
      inc.events = true;
      int64_t limit = json::GetInt(*ep, "limit").value_or(0);
      if (limit > kMaxEventsPageLimit) {
        return BadRequest("events_page.limit must be less than or equal to 50000");
      }
      if (limit > 0) inc.events_limit = limit;
      inc.before_ms = json::GetInt(*ep, "before_ms").value_or(0);
      inc.before_id = json::GetInt(*ep, "before_id").value_or(0);
    }
    inc.granularity = json::GetString(*o, "granularity").value_or("");
  }
  if (inc.granularity != "hour" && inc.granularity != "day") {
    inc.granularity = to - from <= kDayMs ? "hour" : "day";
  }
  auto zone = in::Zone::Load(json::GetString(body, "time_zone").value_or(""));
  if (!zone.ok()) return Fail(zone.status());
  in::Filters filters = ParseFilters(body);
  auto prices = LoadPrices();
  if (!prices.ok()) return Fail(prices.status());

  auto result = db_.Read([&](db::Connection& conn) -> Result<bj::object> {
    in::RegisterSqlFunctions(conn);
    CPAMP_ASSIGN_OR_RETURN(db::Transaction tx,
                           db::Transaction::Begin(conn, db::Transaction::Mode::kDeferred));
    // Search: look the query up once in the projection for every range this request reads.
    in::SearchHits hits;
    HitsBinding binding(conn);
    if (!filters.search_query.empty() && !in::UsesLikeSearch(filters.search_query)) {
      std::vector<std::pair<int64_t, int64_t>> ranges = {{from, to}};
      if (inc.comparison) ranges.emplace_back(from - (to - from), from);
      if (inc.summary && !inc.compact) ranges.emplace_back(now - 1'800'000, now);
      if (inc.drilldown) {
        ranges.emplace_back(inc.drilldown_from > 0 ? inc.drilldown_from : from,
                            inc.drilldown_to > 0 ? inc.drilldown_to : to);
      }
      CPAMP_RETURN_IF_ERROR(in::LoadSearchHits(conn, filters.search_query, ranges, hits));
      binding.Bind(&hits);
      filters.search_hits = &hits;
    }
    in::CostKeys keys(*prices);
    bj::object out;
    out["generated_at_ms"] = clock_.NowMs();
    out["granularity"] = inc.granularity;
    in::Buckets buckets(*zone, from, to, inc.granularity == "day");
    bool full = inc.summary && !inc.compact;
    bool need_core = inc.summary || inc.timeline || inc.hourly || inc.anomaly || inc.model_share ||
                     inc.model_stats || inc.events;
    in::CoreResult core;
    if (need_core) {
      in::CoreSpec spec;
      spec.from_ms = from;
      spec.to_ms = to;
      spec.zone = &*zone;
      spec.buckets = (inc.timeline || inc.anomaly) ? &buckets : nullptr;
      spec.filters = &filters;
      spec.percentiles = inc.summary && (full || inc.percentiles);
      spec.allow_rollup = options_.rollups_enabled;
      CPAMP_RETURN_IF_ERROR(in::RunCore(conn, keys, spec, core));
    }
    in::Where where = FullWhere(filters);

    // Task buckets: newest first, stop once 500 distinct buckets are complete.
    bj::array task_json;
    int64_t approx_tasks = 0, approx_task_failures = 0;
    if (inc.task_buckets || full) {
      struct Task {
        std::string key, source, source_hash, auth_index;
        int64_t total = 0, success = 0, failure = 0, first = INT64_MAX, last = 0;
        std::set<std::string> models, endpoints;
        in::Tokens t;
        int64_t max_latency = 0;
        size_t order = 0;
      };
      std::map<std::string, Task> tasks;
      CPAMP_ASSIGN_OR_RETURN(
          db::Statement s,
          conn.Prepare(fmt::format(
              "select timestamp, timestamp_ms, source, source_hash, auth_index, model, "
              "requested_model, endpoint, failed, latency_ms, {} from usage_events where "
              "timestamp_ms >= ?1 and timestamp_ms < ?2 and {} order by timestamp_ms desc, id "
              "desc",
              in::kCoreColumns, where.sql)));
      CPAMP_RETURN_IF_ERROR(s.Bind(1, from));
      CPAMP_RETURN_IF_ERROR(s.Bind(2, to));
      CPAMP_RETURN_IF_ERROR(in::BindWhere(s, where, 3));
      int64_t stop_before = INT64_MIN;
      while (true) {
        CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        int64_t ts = s.ColumnInt64(1);
        if (stop_before != INT64_MIN && ts < stop_before) break;
        std::string key =
            fmt::format("{}|{}|{}", s.ColumnTextView(0), s.ColumnTextView(3), s.ColumnTextView(4));
        auto it = tasks.find(key);
        if (it == tasks.end()) {
          if (static_cast<int64_t>(tasks.size()) >= kTaskBucketLimit) {
            if (stop_before == INT64_MIN) stop_before = ts;
            continue;
          }
          it = tasks.emplace(key, Task{}).first;
          it->second.key = key;
          it->second.source = s.ColumnText(2);
          it->second.source_hash = s.ColumnText(3);
          it->second.auth_index = s.ColumnText(4);
          it->second.order = tasks.size();
        }
        Task& t = it->second;
        in::EventView e = in::ReadCoreColumns(s, 10);
        ++t.total;
        (e.failed ? t.failure : t.success)++;
        t.first = std::min(t.first, ts);
        t.last = std::max(t.last, ts);
        std::string_view req = s.ColumnTextView(6);
        t.models.insert(usage::AnalyticsModel(req.empty() ? s.ColumnTextView(5) : req));
        t.endpoints.insert(s.ColumnText(7));
        t.t.Add(e.tokens);
        if (e.latency) t.max_latency = std::max(t.max_latency, *e.latency);
      }
      std::vector<const Task*> list;
      for (auto& [k, t] : tasks) list.push_back(&t);
      std::sort(list.begin(), list.end(), [](const Task* a, const Task* b) {
        return a->last != b->last ? a->last > b->last : a->key < b->key;
      });
      approx_tasks = static_cast<int64_t>(list.size());
      for (const Task* t : list) {
        if (t->success == 0) ++approx_task_failures;
        bj::array ms, eps;
        for (const auto& m : t->models) ms.push_back(bj::value(m));
        for (const auto& ep : t->endpoints) eps.push_back(bj::value(ep));
        task_json.push_back(bj::object{{"bucket_key", t->key},
                                       {"total", t->total},
                                       {"success", t->success},
                                       {"failure", t->failure},
                                       {"first_ms", t->first},
                                       {"last_ms", t->last},
                                       {"source", t->source},
                                       {"source_hash", t->source_hash},
                                       {"auth_index", t->auth_index},
                                       {"models", std::move(ms)},
                                       {"endpoints", std::move(eps)},
                                       {"input_tokens", t->t.input},
                                       {"output_tokens", t->t.output},
                                       {"cached_tokens", t->t.cached},
                                       {"cache_read_tokens", t->t.cache_read},
                                       {"cache_creation_tokens", t->t.cache_creation},
                                       {"total_tokens", t->t.total},
                                       {"average_latency_ms", AvgLatency(t->t)},
                                       {"max_latency_ms", t->max_latency}});
      }
    }

    if (inc.summary) {
      const in::Tokens& t = core.total.total;
      bj::object s = SummaryBase(t, core.total.Cost(keys));
      bool pct = full || inc.percentiles;
      s["p95_latency_ms"] = pct ? OptInt(in::P95(core.latencies)) : bj::value(nullptr);
      s["p95_ttft_ms"] = pct ? OptInt(in::P95(core.ttfts)) : bj::value(nullptr);
      double rpm = 0, tpm = 0, adr = 0, adt = 0;
      bj::array ztm;
      if (full) {
        in::CoreResult roll;
        in::CoreSpec spec;
        spec.from_ms = now - 1'800'000;
        spec.to_ms = now;
        spec.zone = &*zone;
        spec.filters = &filters;
        spec.allow_rollup = false;
        CPAMP_RETURN_IF_ERROR(in::RunCore(conn, keys, spec, roll));
        rpm = roll.total.total.calls / 30.0;
        tpm = roll.total.total.total / 30.0;
        double days = std::max<double>(1, static_cast<double>(core.active_days.size()));
        adr = t.calls / days;
        adt = t.total / days;
        for (const auto& m : core.zero_token_models) ztm.push_back(bj::value(m));
      }
      s["rpm_30m"] = rpm;
      s["tpm_30m"] = tpm;
      s["avg_daily_requests"] = adr;
      s["avg_daily_tokens"] = adt;
      s["approx_tasks"] = full ? approx_tasks : 0;
      s["approx_task_failures"] = full ? approx_task_failures : 0;
      s["approx_task_success_rate"] =
          full ? Ratio(approx_tasks - approx_task_failures, approx_tasks) : 0.0;
      s["zero_token_models"] = std::move(ztm);
      out["summary"] = std::move(s);
    }
    if (inc.comparison && from - (to - from) > 0) {
      in::CoreResult prev;
      in::CoreSpec spec;
      spec.from_ms = from - (to - from);
      spec.to_ms = from;
      spec.zone = &*zone;
      spec.filters = &filters;
      spec.allow_rollup = options_.rollups_enabled;
      CPAMP_RETURN_IF_ERROR(in::RunCore(conn, keys, spec, prev));
      const in::Tokens& t = prev.total.total;
      out["summary_comparison"] =
          bj::object{{"from_ms", spec.from_ms},    {"to_ms", spec.to_ms},
                     {"total_calls", t.calls},     {"success_calls", t.success},
                     {"failure_calls", t.failure}, {"success_rate", Ratio(t.success, t.calls)},
                     {"total_tokens", t.total},    {"total_cost", prev.total.Cost(keys)}};
    }
    if (inc.timeline || inc.anomaly) {
      bj::array tl, anomalies;
      struct Prev {
        double calls, cost, tpr, hit, fr, p95;
      };
      std::optional<Prev> prev;
      struct Anom {
        bj::object o;
        double score;
      };
      std::vector<Anom> alist;
      for (size_t i = 0; i < buckets.size(); ++i) {
        in::BucketAgg& b = core.buckets[i];
        const in::Tokens& t = b.agg.total;
        double cost = b.agg.Cost(keys);
        auto p95l = in::P95(b.latencies);
        auto p95t = in::P95(b.ttfts);
        if (inc.timeline) {
          tl.push_back(bj::object{{"bucket_ms", buckets.Start(i)},
                                  {"label", buckets.Label(i)},
                                  {"calls", t.calls},
                                  {"tokens", t.total},
                                  {"success", t.success},
                                  {"failure", t.failure},
                                  {"input_tokens", t.input},
                                  {"output_tokens", t.output},
                                  {"cached_tokens", t.cached},
                                  {"cache_read_tokens", t.cache_read},
                                  {"cache_creation_tokens", t.cache_creation},
                                  {"cache_hit_rate", CacheHitRate(t)},
                                  {"reasoning_tokens", t.reasoning},
                                  {"total_tokens", t.total},
                                  {"cost", cost},
                                  {"average_latency_ms", AvgLatency(t)},
                                  {"p95_latency_ms", OptInt(p95l)},
                                  {"p95_ttft_ms", OptInt(p95t)},
                                  {"success_rate", Ratio(t.success, t.calls)},
                                  {"failure_rate", Ratio(t.failure, t.calls)}});
        }
        Prev cur{static_cast<double>(t.calls), cost,
                 Ratio(t.total, t.calls),      CacheHitRate(t),
                 Ratio(t.failure, t.calls),    static_cast<double>(p95l.value_or(0))};
        if (prev) {
          double rc = Delta(cur.calls, prev->calls), cc = Delta(cur.cost, prev->cost),
                 tc = Delta(cur.tpr, prev->tpr), hc = cur.hit - prev->hit, fc = cur.fr - prev->fr,
                 lc = Delta(cur.p95, prev->p95);
          bj::array keys_arr;
          double score = 0;
          if (rc > 1) keys_arr.push_back("request_spike");
          if (cc > 1) keys_arr.push_back("cost_spike");
          if (tc > 0.5) keys_arr.push_back("tokens_per_request_spike");
          if (hc < -0.2) keys_arr.push_back("cache_hit_drop");
          if (fc > 0.2) keys_arr.push_back("failure_rate_spike");
          if (lc > 0.5) keys_arr.push_back("latency_spike");
          if (!keys_arr.empty()) {
            for (double d : {rc, cc, tc, fc, lc}) score += std::max(0.0, d);
            score += 10.0 * static_cast<double>(keys_arr.size());
            size_t n = keys_arr.size();
            alist.push_back({bj::object{{"bucket_ms", buckets.Start(i)},
                                        {"bucket_end_ms", buckets.End(i)},
                                        {"label", buckets.Label(i)},
                                        {"severity", n >= 3   ? "high"
                                                     : n == 2 ? "medium"
                                                              : "low"},
                                        {"metric_keys", std::move(keys_arr)},
                                        {"calls", t.calls},
                                        {"total_tokens", t.total},
                                        {"cost", cost},
                                        {"failure_rate", cur.fr},
                                        {"request_change", rc},
                                        {"cost_change", cc},
                                        {"tokens_per_request_change", tc},
                                        {"cache_hit_rate_change", hc},
                                        {"failure_rate_change", fc},
                                        {"latency_p95_change", lc}},
                             score});
          }
        }
        prev = cur;
      }
      if (inc.timeline) out["timeline"] = std::move(tl);
      if (inc.anomaly) {
        std::stable_sort(alist.begin(), alist.end(),
                         [](const Anom& a, const Anom& b) { return a.score > b.score; });
        for (size_t i = 0; i < alist.size() && i < 50; ++i) {
          anomalies.push_back(std::move(alist[i].o));
        }
        out["anomaly_points"] = std::move(anomalies);
      }
    }
    if (inc.hourly) {
      bj::array hd;
      for (int h = 0; h < 24; ++h) {
        if (core.hour_of_day[h].first == 0) continue;
        hd.push_back(bj::object{{"hour", h},
                                {"calls", core.hour_of_day[h].first},
                                {"tokens", core.hour_of_day[h].second}});
      }
      out["hourly_distribution"] = std::move(hd);
    }
    if (inc.model_share || inc.model_stats) {
      std::map<std::string, in::Agg> models;
      for (const auto& [k, t] : core.total.parts) models[keys.Get(k).analytics].Add(k, t);
      std::vector<std::pair<const std::string*, const in::Agg*>> list;
      for (auto& [m, a] : models) list.emplace_back(&m, &a);
      std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
        if (a.second->total.calls != b.second->total.calls) {
          return a.second->total.calls > b.second->total.calls;
        }
        return *a.first < *b.first;
      });
      bj::array share, stats;
      for (const auto& [m, a] : list) {
        const in::Tokens& t = a->total;
        double cost = a->Cost(keys);
        share.push_back(
            bj::object{{"model", *m}, {"calls", t.calls}, {"tokens", t.total}, {"cost", cost}});
        stats.push_back(bj::object{{"model", *m},
                                   {"calls", t.calls},
                                   {"success_calls", t.success},
                                   {"failure_calls", t.failure},
                                   {"success_rate", Ratio(t.success, t.calls)},
                                   {"input_tokens", t.input},
                                   {"output_tokens", t.output},
                                   {"cached_tokens", t.cached},
                                   {"cache_read_tokens", t.cache_read},
                                   {"cache_creation_tokens", t.cache_creation},
                                   {"cache_hit_tokens", t.cached + t.cache_read},
                                   {"cache_hit_input_tokens", t.input},
                                   {"cache_hit_rate", CacheHitRate(t)},
                                   {"total_tokens", t.total},
                                   {"cost", cost}});
      }
      if (inc.model_share) out["model_share"] = std::move(share);
      if (inc.model_stats) out["model_stats"] = std::move(stats);
    }

    // Raw-only grouped sections in one scan.
    bool entity_sections = inc.account_stats || inc.api_key_stats || inc.credential_stats ||
                           inc.credential_timeline || inc.api_key_timeline;
    if (inc.channel_share || inc.failure_sources || inc.heatmap || inc.filter_options ||
        entity_sections) {
      EntitySections entities(keys, buckets);
      std::map<std::string, Group> channels;
      std::map<std::pair<std::string, std::string>, Group> sources;
      struct Cell {
        in::Agg agg;
        std::map<std::string, in::Agg> by_model, by_key, by_provider;
      };
      std::map<std::pair<int, int>, Cell> cells;
      std::map<std::string, std::set<std::string>> options;
      CPAMP_ASSIGN_OR_RETURN(
          db::Statement s,
          conn.Prepare(fmt::format(
              "select {}, auth_index, source_hash, source, account_snapshot, "
              "auth_label_snapshot, auth_provider_snapshot, api_key_hash, provider, "
              "auth_file_snapshot, auth_project_id_snapshot, executor_type, header_error_kind, "
              "header_error_code, header_quota_plan_type, header_trace_id from usage_events "
              "where timestamp_ms >= ?1 and timestamp_ms < ?2 and {}",
              in::kCoreColumns, where.sql)));
      CPAMP_RETURN_IF_ERROR(s.Bind(1, from));
      CPAMP_RETURN_IF_ERROR(s.Bind(2, to));
      CPAMP_RETURN_IF_ERROR(in::BindWhere(s, where, 3));
      while (true) {
        CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        in::EventView e = in::ReadCoreColumns(s, 0);
        int key = keys.ForEvent(e.model, e.requested_model, e.resolved_model, e.service_tier,
                                e.tokens.input);
        std::string auth = s.ColumnText(18);
        if (inc.channel_share) {
          Group& g = channels[auth];
          g.agg.Add(key, e.tokens);
          if (e.ts >= g.last_seen) {
            g.last_seen = e.ts;
            g.source = s.ColumnText(20);
            g.account = s.ColumnText(21);
            g.label = s.ColumnText(22);
            g.provider = s.ColumnText(23);
          }
        }
        if (inc.failure_sources) {
          Group& g = sources[{s.ColumnText(19), auth}];
          g.agg.Add(key, e.tokens);
          if (e.failed && e.ts >= g.last_seen) g.last_seen = e.ts;
          if (g.source.empty()) {
            g.source = s.ColumnText(20);
            g.account = s.ColumnText(21);
            g.label = s.ColumnText(22);
            g.provider = s.ColumnText(23);
          }
        }
        if (inc.heatmap) {
          int64_t local = zone->LocalMs(e.ts);
          int64_t day = in::FloorDiv(local, kDayMs);
          int wd = static_cast<int>(((day + 4) % 7 + 7) % 7);
          int hr = static_cast<int>((local - day * kDayMs) / kHourMs);
          Cell& c = cells[{wd, hr}];
          c.agg.Add(key, e.tokens);
          c.by_model[keys.Get(key).analytics].Add(key, e.tokens);
          c.by_key[s.ColumnText(24)].Add(key, e.tokens);
          std::string prov = s.ColumnText(25);
          if (prov.empty()) prov = s.ColumnText(23);
          c.by_provider[prov].Add(key, e.tokens);
        }
        if (entity_sections) {
          IdentityView id;
          id.auth_index = s.ColumnTextView(18);
          id.source_hash = s.ColumnTextView(19);
          id.source = s.ColumnTextView(20);
          id.account = s.ColumnTextView(21);
          id.label = s.ColumnTextView(22);
          id.auth_provider = s.ColumnTextView(23);
          id.api_key_hash = s.ColumnTextView(24);
          id.provider = s.ColumnTextView(25);
          id.auth_file = s.ColumnTextView(26);
          entities.Add(inc, e, key, id);
        }
        if (inc.filter_options) {
          options["models"].insert(keys.Get(key).analytics);
          const std::pair<const char*, int> cols[] = {
              {"api_key_hashes", 24},     {"providers", 25},          {"auth_files", 26},
              {"accounts", 21},           {"project_ids", 27},        {"request_types", 28},
              {"header_error_kinds", 29}, {"header_error_codes", 30}, {"header_quota_plans", 31},
              {"header_trace_ids", 32}};
          for (const auto& [name, col] : cols) {
            std::string_view v = s.ColumnTextView(col);
            if (!v.empty()) options[name].insert(std::string(v));
          }
        }
      }
      auto group_row = [&](const Group& g, bj::object& o) {
        if (!g.source.empty()) o["source"] = g.source;
        if (!g.account.empty()) o["account_snapshot"] = g.account;
        if (!g.label.empty()) o["auth_label_snapshot"] = g.label;
        if (!g.provider.empty()) o["auth_provider_snapshot"] = g.provider;
      };
      if (inc.channel_share) {
        std::vector<std::pair<const std::string*, const Group*>> list;
        for (auto& [k, g] : channels) list.emplace_back(&k, &g);
        std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
          if (a.second->agg.total.calls != b.second->agg.total.calls) {
            return a.second->agg.total.calls > b.second->agg.total.calls;
          }
          return *a.first < *b.first;
        });
        bj::array arr;
        for (const auto& [k, g] : list) {
          bj::object o;
          o["auth_index"] = *k;
          group_row(*g, o);
          const in::Tokens& t = g->agg.total;
          o["calls"] = t.calls;
          o["success"] = t.success;
          o["failure"] = t.failure;
          o["tokens"] = t.total;
          o["cost"] = g->agg.Cost(keys);
          o["average_latency_ms"] = AvgLatency(t);
          arr.push_back(std::move(o));
        }
        out["channel_share"] = std::move(arr);
      }
      if (inc.failure_sources) {
        std::vector<std::pair<const std::pair<std::string, std::string>*, const Group*>> list;
        for (auto& [k, g] : sources) {
          if (g.agg.total.failure > 0) list.emplace_back(&k, &g);
        }
        std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
          if (a.second->agg.total.failure != b.second->agg.total.failure) {
            return a.second->agg.total.failure > b.second->agg.total.failure;
          }
          if (a.second->last_seen != b.second->last_seen) {
            return a.second->last_seen > b.second->last_seen;
          }
          return *a.first < *b.first;
        });
        bj::array arr;
        for (const auto& [k, g] : list) {
          bj::object o;
          group_row(*g, o);
          o["source_hash"] = k->first;
          o["auth_index"] = k->second;
          o["calls"] = g->agg.total.calls;
          o["failure"] = g->agg.total.failure;
          o["last_seen_ms"] = g->last_seen;
          o["average_latency_ms"] = AvgLatency(g->agg.total);
          arr.push_back(std::move(o));
        }
        out["failure_sources"] = std::move(arr);
      }
      if (inc.heatmap) {
        bj::array arr;
        auto contributors = [&](const std::map<std::string, in::Agg>& m, int64_t cell_calls) {
          std::vector<std::pair<const std::string*, const in::Agg*>> list;
          for (auto& [k, a] : m) list.emplace_back(&k, &a);
          std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
            if (a.second->total.calls != b.second->total.calls) {
              return a.second->total.calls > b.second->total.calls;
            }
            return *a.first < *b.first;
          });
          bj::array out_arr;
          for (size_t i = 0; i < list.size() && i < 5; ++i) {
            const in::Tokens& t = list[i].second->total;
            out_arr.push_back(bj::object{{"key", *list[i].first},
                                         {"calls", t.calls},
                                         {"success", t.success},
                                         {"failure", t.failure},
                                         {"tokens", t.total},
                                         {"cost", list[i].second->Cost(keys)},
                                         {"failure_rate", Ratio(t.failure, t.calls)},
                                         {"share", Ratio(t.calls, cell_calls)}});
          }
          return out_arr;
        };
        for (auto& [k, c] : cells) {
          const in::Tokens& t = c.agg.total;
          arr.push_back(
              bj::object{{"weekday", k.first},
                         {"hour", k.second},
                         {"calls", t.calls},
                         {"success", t.success},
                         {"failure", t.failure},
                         {"tokens", t.total},
                         {"cost", c.agg.Cost(keys)},
                         {"failure_rate", Ratio(t.failure, t.calls)},
                         {"model_contributors", contributors(c.by_model, t.calls)},
                         {"api_key_contributors", contributors(c.by_key, t.calls)},
                         {"provider_contributors", contributors(c.by_provider, t.calls)}});
        }
        out["heatmap"] = std::move(arr);
      }
      entities.Encode(inc, out);
      if (inc.filter_options) {
        bj::object fo;
        for (const char* name : {"models", "api_key_hashes", "providers", "auth_files", "accounts",
                                 "project_ids", "request_types", "header_error_kinds",
                                 "header_error_codes", "header_quota_plans", "header_trace_ids"}) {
          bj::array a;
          for (const auto& v : options[name]) a.push_back(bj::value(v));
          fo[name] = std::move(a);
        }
        fo["account_count"] = static_cast<int64_t>(options["accounts"].size());
        fo["api_key_count"] = static_cast<int64_t>(options["api_key_hashes"].size());
        out["filter_options"] = std::move(fo);
      }
    }
    if (inc.task_buckets) out["task_buckets"] = std::move(task_json);
    if (inc.recent_failures > 0) {
      CPAMP_ASSIGN_OR_RETURN(bj::array rf,
                             RecentFailures(conn, from, to, where, inc.recent_failures));
      out["recent_failures"] = std::move(rf);
    }
    if (inc.events) {
      CPAMP_ASSIGN_OR_RETURN(bj::object page, EventsPage(conn, from, to, where, inc.before_ms,
                                                         inc.before_id, inc.events_limit));
      page["total_count"] = core.total.total.calls;
      out["events"] = std::move(page);
    }
    if (inc.drilldown) {
      int64_t dfrom = inc.drilldown_from > 0 ? inc.drilldown_from : from;
      int64_t dto = inc.drilldown_to > 0 ? inc.drilldown_to : to;
      bj::object page;
      if (dfrom < dto) {
        CPAMP_ASSIGN_OR_RETURN(page,
                               EventsPage(conn, dfrom, dto, where, 0, 0, inc.drilldown_limit));
      } else {
        page = bj::object{{"items", bj::array()},
                          {"next_before_ms", 0},
                          {"next_before_id", 0},
                          {"has_more", false}};
      }
      page["total_count"] = static_cast<int64_t>(page["items"].as_array().size());
      out["drilldown_preview"] = std::move(page);
    }
    return out;
  });
  if (!result.ok()) return Fail(result.status());
  return Response::Json(200, *result);
}

// ==== Header snapshots
// ============================================================================

Response Handlers::HeaderSnapshots(const Request& request) {
  int64_t days = 30, limit = 1000;
  for (auto [name, target, max] :
       {std::tuple{"days", &days, int64_t{365}}, std::tuple{"limit", &limit, int64_t{5000}}}) {
    if (auto p = request.head.QueryParam(name); p && !Trim(*p).empty()) {
      auto v = ParseInt(Trim(*p));
      if (!v || *v < 0) return BadRequest(fmt::format("{} must be a non-negative integer", name));
      if (*v > 0) *target = std::min(*v, max);
    }
  }
  int64_t now = clock_.NowMs();
  int64_t from = now - days * kDayMs;
  auto result = db_.Read([&](db::Connection& conn) -> Result<bj::object> {
    CPAMP_ASSIGN_OR_RETURN(
        db::Statement s,
        conn.Prepare(fmt::format(
            "select {}, case when coalesce(auth_file_snapshot,'') != '' and "
            "coalesce(auth_index,'') != '' then auth_file_snapshot || '::' || auth_index "
            "when coalesce(auth_file_snapshot,'') != '' then 'file::' || auth_file_snapshot "
            "when coalesce(auth_index,'') != '' then 'auth::' || auth_index "
            "when coalesce(account_snapshot,'') != '' then 'account::' || lower(account_snapshot) "
            "when coalesce(source_hash,'') != '' then 'source::' || source_hash "
            "else 'event::' || event_hash end as snapshot_key from usage_events indexed by "
            "idx_usage_events_timestamp where timestamp_ms >= ?1 and timestamp_ms <= ?2 and "
            "response_metadata_json is not null and response_metadata_json != '' "
            "order by timestamp_ms desc, id desc",
            kEventColumns)));
    CPAMP_RETURN_IF_ERROR(s.Bind(1, from));
    CPAMP_RETURN_IF_ERROR(s.Bind(2, now));
    std::set<std::string> seen;
    bj::array items;
    while (static_cast<int64_t>(items.size()) < limit) {
      CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      if (!seen.insert(s.ColumnText("snapshot_key")).second) continue;
      bj::object o;
      o["event_hash"] = s.ColumnTextView("event_hash");
      o["timestamp_ms"] = s.ColumnInt64("timestamp_ms");
      PutOptText(o, "model", s, "model");
      std::string_view req = s.ColumnTextView("requested_model");
      o["analytics_model"] = usage::AnalyticsModel(req.empty() ? s.ColumnTextView("model") : req);
      for (const char* c : {"requested_model", "resolved_model", "auth_file_snapshot", "auth_index",
                            "account_snapshot", "auth_label_snapshot", "auth_provider_snapshot",
                            "auth_project_id_snapshot", "source", "source_hash"}) {
        PutOptText(o, c, s, c);
      }
      PutHeaderFields(o, s);
      items.push_back(std::move(o));
    }
    return bj::object{
        {"generated_at_ms", now}, {"from_ms", from}, {"to_ms", now}, {"items", std::move(items)}};
  });
  if (!result.ok()) return Fail(result.status());
  return Response::Json(200, *result);
}

// ==== Account history
// =============================================================================

namespace {

constexpr std::string_view kAccountKeyPrefix = "usage-account-history:2:";
constexpr std::string_view kTargetFields[] = {"row_key",
                                              "account_key",
                                              "account_snapshot",
                                              "auth_label_snapshot",
                                              "auth_file_snapshot",
                                              "auth_provider_snapshot",
                                              "auth_project_id_snapshot",
                                              "auth_index",
                                              "source"};

// The credential identity of a target or an event (spec storage 6.4, usageidentity).
struct Identity {
  std::string file, provider, index, project, account, label;
};

std::string NormalizeProvider(std::string_view p) {
  std::string out = ToLower(Trim(p));
  std::replace(out.begin(), out.end(), '_', '-');
  if (out == "x-ai" || out == "grok") out = "xai";
  return out;
}

Identity MakeIdentity(std::string_view file, std::string_view source, std::string_view provider,
                      std::string_view index, std::string_view project, std::string_view account,
                      std::string_view label) {
  Identity id;
  id.account = ToLower(Trim(account));
  id.label = ToLower(Trim(label));
  id.file = std::string(Trim(file));
  std::string src(Trim(source));
  if (id.file.empty() && !src.empty() && ToLower(src) != id.account && ToLower(src) != id.label) {
    id.file = src;
  }
  id.provider = NormalizeProvider(provider);
  id.index = std::string(Trim(index));
  id.project = std::string(Trim(project));
  return id;
}

// Kinds in priority order; each lists the identity fields its key is made of.
enum class Kind {
  kFileIndex,
  kFileProject,
  kFileAccount,
  kFileLabel,
  kFile,
  kAuthIndex,
  kProject,
  kAccount,
  kLabel,
  kCount
};
constexpr std::string_view kKindNames[] = {"file-index", "file-project", "file-account",
                                           "file-label", "file",         "auth-index",
                                           "project",    "account",      "label"};

std::vector<const std::string*> KindFields(const Identity& id, Kind k) {
  switch (k) {
    case Kind::kFileIndex:
      return {&id.provider, &id.file, &id.index};
    case Kind::kFileProject:
      return {&id.provider, &id.file, &id.project};
    case Kind::kFileAccount:
      return {&id.provider, &id.file, &id.account};
    case Kind::kFileLabel:
      return {&id.provider, &id.file, &id.label};
    case Kind::kFile:
      return {&id.provider, &id.file};
    case Kind::kAuthIndex:
      return {&id.index};
    case Kind::kProject:
      return {&id.project};
    case Kind::kAccount:
      return {&id.account};
    case Kind::kLabel:
      return {&id.label};
    case Kind::kCount:
      break;
  }
  return {};
}

// "usage-account-history:2:<kind>:<HEX>:…", or "" when a field of the kind is empty. The provider
// may be empty only for events (a file target without provider is rejected up front).
std::string AccountKey(const Identity& id, Kind k) {
  std::string key(kAccountKeyPrefix);
  key += kKindNames[static_cast<int>(k)];
  bool file_kind = k <= Kind::kFile;
  auto fields = KindFields(id, k);
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i]->empty() && !(file_kind && i == 0)) return "";
    key += ':';
    std::string hex = HexEncode(*fields[i]);
    for (char& c : hex) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    key += hex;
  }
  return key;
}

Kind PrimaryKind(const Identity& id) {
  for (int k = 0; k < static_cast<int>(Kind::kCount); ++k) {
    if (!AccountKey(id, static_cast<Kind>(k)).empty()) return static_cast<Kind>(k);
  }
  return Kind::kCount;
}

struct HistoryTarget {
  std::string row_key, account_key;
  std::string auth_index;  // set for file-index and auth-index targets: an SQL prefilter
  Kind kind = Kind::kCount;
  in::Agg agg;
  int64_t first = 0, last = 0;
  // Newest requests, kept sorted newest first, at most kAccountHistoryRecentRequests.
  std::vector<std::pair<std::pair<int64_t, int64_t>, bj::object>> recent;
};

bj::object RecentRequestJson(const db::Statement& s, const in::EventView& e) {
  bj::object o;
  o["timestamp_ms"] = e.ts;
  o["failed"] = e.failed;
  if (!s.IsNull("fail_status_code")) o["fail_status_code"] = s.ColumnInt64("fail_status_code");
  PutOptText(o, "fail_summary", s, "fail_summary");
  PutOptText(o, "header_error_kind", s, "header_error_kind");
  PutOptText(o, "header_error_code", s, "header_error_code");
  PutOptText(o, "header_trace_id", s, "header_trace_id");
  return o;
}

}  // namespace

Response Handlers::AccountHistory(const Request& request) {
  Result<bj::object> parsed = json::ParseObject(request.body);
  if (!parsed.ok()) return BadRequest("invalid request body: " + parsed.status().message());
  for (const auto& kv : *parsed) {
    if (kv.key() != "accounts" && kv.key() != "catch_up") {
      return BadRequest(fmt::format("unknown field \"{}\"", std::string_view(kv.key())));
    }
  }
  const bj::array* accounts = json::GetArray(*parsed, "accounts");
  if (!accounts || accounts->empty()) return BadRequest("accounts are required");
  if (accounts->size() > kMaxAccountHistoryTargets) {
    return BadRequest(fmt::format("at most {} accounts are allowed", kMaxAccountHistoryTargets));
  }
  bool catch_up = json::GetBool(*parsed, "catch_up").value_or(false);
  std::vector<HistoryTarget> targets;
  std::set<std::string> row_keys;
  std::map<std::string, std::vector<size_t>> by_key;
  std::array<bool, static_cast<size_t>(Kind::kCount)> kinds{};
  for (const bj::value& v : *accounts) {
    if (!v.is_object()) return BadRequest("each account must be an object");
    const bj::object& o = v.as_object();
    for (const auto& kv : o) {
      if (std::find(std::begin(kTargetFields), std::end(kTargetFields), kv.key()) ==
          std::end(kTargetFields)) {
        return BadRequest(fmt::format("unknown field \"{}\"", std::string_view(kv.key())));
      }
      if (!kv.value().is_string() && !kv.value().is_null()) {
        return BadRequest(fmt::format("{} must be a string", std::string_view(kv.key())));
      }
    }
    auto field = [&](std::string_view k) { return json::GetString(o, k).value_or(""); };
    HistoryTarget t;
    t.row_key = std::string(Trim(field("row_key")));
    if (t.row_key.empty()) return BadRequest("row_key is required");
    if (!row_keys.insert(t.row_key).second) {
      return BadRequest("duplicate row_key: " + t.row_key);
    }
    Identity id =
        MakeIdentity(field("auth_file_snapshot"), field("source"), field("auth_provider_snapshot"),
                     field("auth_index"), field("auth_project_id_snapshot"),
                     field("account_snapshot"), field("auth_label_snapshot"));
    std::string given(Trim(field("account_key")));
    Kind kind = PrimaryKind(id);
    if (kind == Kind::kCount) {
      // Only an account key: take its kind from the key itself.
      for (int k = 0; k < static_cast<int>(Kind::kCount) && !given.empty(); ++k) {
        std::string prefix = std::string(kAccountKeyPrefix) + std::string(kKindNames[k]) + ":";
        if (given.rfind(prefix, 0) == 0) {
          kind = static_cast<Kind>(k);
          break;
        }
      }
      if (kind == Kind::kCount) {
        return BadRequest("account " + t.row_key + " needs at least one target field");
      }
      t.account_key = given;
    } else {
      if (kind <= Kind::kFile && id.provider.empty()) {
        return BadRequest("auth_provider_snapshot is required for auth-file account " + t.row_key);
      }
      t.account_key = AccountKey(id, kind);
      if (kind == Kind::kFileIndex || kind == Kind::kAuthIndex) t.auth_index = id.index;
    }
    t.kind = kind;
    kinds[static_cast<size_t>(kind)] = true;
    by_key[t.account_key].push_back(targets.size());
    targets.push_back(std::move(t));
  }

  int64_t processed = 0;
  if (catch_up) {
    RollupWorker worker(db_, clock_, options_.prices);
    auto n = worker.RunOnce(5);  // ≤ 5 × 1,000 events
    if (!n.ok()) return Fail(n.status());
    processed = *n;
  }
  auto prices = LoadPrices();
  if (!prices.ok()) return Fail(prices.status());

  auto result = db_.Read([&](db::Connection& conn) -> Result<bj::object> {
    CPAMP_ASSIGN_OR_RETURN(db::Transaction tx,
                           db::Transaction::Begin(conn, db::Transaction::Mode::kDeferred));
    in::CostKeys keys(*prices);
    CPAMP_ASSIGN_OR_RETURN(in::RollupState state, in::LoadRollupState(conn));
    // When every target pins an auth index, only rows with those indices can match: read them
    // through idx_usage_events_auth_index instead of scanning the table.
    std::string prefilter;
    if (std::all_of(targets.begin(), targets.end(),
                    [](const HistoryTarget& t) { return !t.auth_index.empty(); })) {
      prefilter = " where auth_index in (";
      for (size_t i = 0; i < targets.size(); ++i) prefilter += i ? ",?" : "?";
      prefilter += ")";
    }
    CPAMP_ASSIGN_OR_RETURN(
        db::Statement s,
        conn.Prepare(fmt::format(
            "select {}, auth_file_snapshot, source, auth_provider_snapshot, provider, auth_index, "
            "auth_project_id_snapshot, account_snapshot, auth_label_snapshot, fail_status_code, "
            "fail_summary, header_error_kind, header_error_code, header_trace_id "
            "from usage_events{}",
            in::kCoreColumns, prefilter)));
    for (size_t i = 0; i < targets.size() && !prefilter.empty(); ++i) {
      CPAMP_RETURN_IF_ERROR(s.BindText(static_cast<int>(i) + 1, targets[i].auth_index));
    }
    CPAMP_ASSIGN_OR_RETURN(db::Statement max_id,
                           conn.Prepare("select coalesce(max(id), 0) from usage_events"));
    CPAMP_ASSIGN_OR_RETURN(bool has_max, max_id.Step());
    int64_t latest_id = has_max ? max_id.ColumnInt64(0) : 0;
    while (true) {
      CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      in::EventView e = in::ReadCoreColumns(s, 0);
      std::string_view provider = s.ColumnTextView(20);
      if (provider.empty()) provider = s.ColumnTextView(21);
      Identity id =
          MakeIdentity(s.ColumnTextView(18), s.ColumnTextView(19), provider, s.ColumnTextView(22),
                       s.ColumnTextView(23), s.ColumnTextView(24), s.ColumnTextView(25));
      int key = -1;
      for (size_t k = 0; k < kinds.size(); ++k) {
        if (!kinds[k]) continue;
        std::string ak = AccountKey(id, static_cast<Kind>(k));
        if (ak.empty()) continue;
        auto it = by_key.find(ak);
        if (it == by_key.end()) continue;
        if (key < 0) {
          key = keys.ForEvent(e.model, e.requested_model, e.resolved_model, e.service_tier,
                              e.tokens.input);
        }
        for (size_t ti : it->second) {
          HistoryTarget& t = targets[ti];
          t.agg.Add(key, e.tokens);
          t.first = t.first == 0 ? e.ts : std::min(t.first, e.ts);
          t.last = std::max(t.last, e.ts);
          auto order = std::make_pair(e.ts, e.id);
          if (t.recent.size() < static_cast<size_t>(kAccountHistoryRecentRequests) ||
              order > t.recent.back().first) {
            auto pos = std::find_if(t.recent.begin(), t.recent.end(),
                                    [&](const auto& r) { return r.first < order; });
            t.recent.insert(pos, {order, RecentRequestJson(s, e)});
            if (t.recent.size() > static_cast<size_t>(kAccountHistoryRecentRequests)) {
              t.recent.pop_back();
            }
          }
        }
      }
    }
    bj::array items;
    for (HistoryTarget& t : targets) {
      const in::Tokens& x = t.agg.total;
      bool matched = x.calls > 0;
      bj::object o;
      o["row_key"] = t.row_key;
      o["account_key"] = t.account_key;
      o["matched"] = matched;
      o["total_requests"] = x.calls;
      o["success_calls"] = x.success;
      o["failure_calls"] = x.failure;
      o["total_tokens"] = x.total;
      o["total_cost"] = t.agg.Cost(keys);
      o["success_rate"] = matched ? bj::value(Ratio(x.success, x.calls)) : bj::value(nullptr);
      o["first_seen_ms"] = matched ? bj::value(t.first) : bj::value(nullptr);
      o["last_seen_ms"] = matched ? bj::value(t.last) : bj::value(nullptr);
      if (matched) {
        o["latest_request"] = t.recent.front().second;
        bj::array recent;
        for (auto& r : t.recent) recent.push_back(std::move(r.second));
        o["recent_requests"] = std::move(recent);
      }
      o["sync_status"] = matched ? "ready" : "empty";
      items.push_back(std::move(o));
    }
    int64_t pending = std::max<int64_t>(0, latest_id - state.last_event_id);
    return bj::object{{"generated_at_ms", clock_.NowMs()},
                      {"checkpoint", bj::object{{"last_event_id", state.last_event_id},
                                                {"latest_id", latest_id},
                                                {"pending", pending},
                                                {"processed", processed}}},
                      {"items", std::move(items)}};
  });
  if (!result.ok()) return Fail(result.status());
  return Response::Json(200, *result);
}

}  // namespace cpamp::analytics
