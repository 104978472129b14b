// Response-header metadata (§4.8): allow-listed upstream headers grouped for the panel, plus the
// scalar header_* columns used for filtering.
//
// Sources, later ones overriding earlier: the record's own `response_metadata` object (exported
// rows carry one), then `response_headers` (Go-canonical names, arrays of values). On the queue
// path the "headers inside raw_json" are the same response_headers, so they are not read twice.
// Names are lower-cased; a name is kept only if it is on the allow-list and not a credential
// (names with token/secret/authorization/set-cookie, minus the documented exceptions). Values are
// joined with ", ", fail-summary-redacted and capped at 1024 bytes. Groups are written in the
// documented order, members sorted, empty groups omitted; no kept header -> NULL.
// The spec names the groups but not every member; the concrete lists below are our choice and are
// listed in src/usage/README.md. `providers` is never produced (the spec gives no content for it).
#include <array>
#include <cmath>
#include <map>

#include "usage/internal.h"

namespace cpamp::usage::internal {

namespace {

enum Group { kQuota, kErrors, kTrace, kRouting, kResponse, kRateLimit, kDataPolicy, kGroupCount };
constexpr std::array<std::string_view, kGroupCount> kGroupNames = {
    "quota", "errors", "trace", "routing", "response", "rate_limit", "data_policy"};

// Trace-id headers in the order header_trace_id prefers them.
constexpr std::string_view kTraceHeaders[] = {
    "x-oai-request-id",
    "x-request-id",
    "x-oneapi-request-id",
    "cf-ray",
    "eagleid",
    "x-cloudaicompanion-trace-id",
    "x-client-request-id",
    "x-zeabur-request-id",
};
constexpr std::string_view kRoutingHeaders[] = {
    "server",
    "via",
    "x-envoy-upstream-service-time",
    "openai-processing-ms",
    "openai-version",
    "openai-model",
    "x-served-by",
    "cf-cache-status",
};
constexpr std::string_view kRateLimitHeaders[] = {
    "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens"};

bool Contains(std::string_view s, std::string_view n) {
  return s.find(n) != std::string_view::npos;
}
bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
template <size_t N>
bool OneOf(std::string_view s, const std::string_view (&list)[N]) {
  for (std::string_view x : list)
    if (s == x) return true;
  return false;
}

std::optional<Group> Classify(std::string_view name) {
  if (Contains(name, "secret") || Contains(name, "set-cookie") || Contains(name, "cookie")) {
    return std::nullopt;
  }
  if (Contains(name, "authorization") && name != "x-openai-authorization-error") {
    return std::nullopt;
  }
  if (OneOf(name, kRateLimitHeaders)) return kRateLimit;
  if (Contains(name, "token")) return std::nullopt;
  if (StartsWith(name, "x-codex-")) return kQuota;
  if (name == "retry-after" || name == "x-should-retry" ||
      (StartsWith(name, "x-openai-") && Contains(name, "error"))) {
    return kErrors;
  }
  if (OneOf(name, kTraceHeaders) || name == "traceparent") return kTrace;
  if (OneOf(name, kRoutingHeaders)) return kRouting;
  if (StartsWith(name, "content-") || name == "server-timing") return kResponse;
  if (Contains(name, "data-retention") || Contains(name, "data-policy")) return kDataPolicy;
  return std::nullopt;
}

using GroupMaps = std::array<std::map<std::string, std::string, std::less<>>, kGroupCount>;

std::string LowerName(std::string_view name) {
  std::string out(GoTrimSpace(name));
  for (char& c : out) c = AsciiLower(c);
  return out;
}

std::string HeaderValue(const bj::value& v) {
  if (!v.is_array()) return ScalarString(&v);
  std::string out;
  for (const bj::value& e : v.get_array()) {
    std::string s = ScalarString(&e);
    if (s.empty()) continue;
    if (!out.empty()) out.append(", ");
    out.append(s);
  }
  return out;
}

void AddHeader(GroupMaps& maps, std::string_view raw_name, const bj::value& raw_value) {
  std::string name = LowerName(raw_name);
  std::optional<Group> g = Classify(name);
  if (!g) return;
  std::string value = HeaderValue(raw_value);
  if (value.empty()) return;
  value = RedactFailureText(value);
  LimitBytesWithEllipsis(value, kHeaderValueMaxBytes);
  maps[*g].insert_or_assign(std::move(name), std::move(value));
}

const std::string* Find(const GroupMaps& maps, Group g, std::string_view name) {
  auto it = maps[g].find(name);
  return it == maps[g].end() ? nullptr : &it->second;
}

std::optional<double> Percent(const std::string* v) {
  if (v == nullptr) return std::nullopt;
  std::string s(*v);
  if (!s.empty() && s.back() == '%') s.pop_back();
  bj::value tmp(bj::string_view(s.data(), s.size()));
  return ScalarDouble(&tmp);
}

// Reset instant of one Codex window: reset-at (epoch s/ms or RFC3339), else event time plus
// reset-after-seconds.
std::optional<int64_t> WindowReset(const GroupMaps& maps, std::string_view window, int64_t ts_ms) {
  std::string prefix = "x-codex-" + std::string(window);
  if (const std::string* at = Find(maps, kQuota, prefix + "-reset-at")) {
    if (auto p = ParseTimestampText(*at)) return p->ms;
  }
  if (auto after = Percent(Find(maps, kQuota, prefix + "-reset-after-seconds"))) {
    return WrapAdd(ts_ms, GoFloatToInt(std::trunc(*after * 1000)));
  }
  return std::nullopt;
}

bool IsHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// The 32-hex trace id of a W3C traceparent "vv-<32hex>-<16hex>-ff", if valid and non-zero.
std::optional<std::string> TraceparentId(std::string_view tp) {
  if (tp.size() < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return std::nullopt;
  std::string_view version = tp.substr(0, 2), id = tp.substr(3, 32), parent = tp.substr(36, 16),
                   flags = tp.substr(53, 2);
  if (!IsHex(version) || version == "ff" || !IsHex(id) || !IsHex(parent) || !IsHex(flags)) {
    return std::nullopt;
  }
  if (id.find_first_not_of('0') == std::string_view::npos) return std::nullopt;
  return std::string(id);
}

std::string ToLowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

constexpr int64_t kXaiFreeUsageWindowMs = 24LL * 3600 * 1000;

}  // namespace

ResponseMetadata BuildResponseMetadata(const bj::object* record_metadata, const bj::value* headers,
                                       const UsageEvent& event, std::string_view raw_fail_body) {
  GroupMaps maps;
  const bj::object* carried_provider_usage = nullptr;
  if (record_metadata != nullptr) {
    for (const auto& group : *record_metadata) {
      if (!group.value().is_object()) continue;
      if (group.key() == "provider_usage") {
        carried_provider_usage = &group.value().get_object();
        continue;
      }
      for (const auto& kv : group.value().get_object()) AddHeader(maps, kv.key(), kv.value());
    }
  }
  if (headers != nullptr && headers->is_object()) {
    for (const auto& kv : headers->get_object()) AddHeader(maps, kv.key(), kv.value());
  }

  ResponseMetadata out;
  // provider_usage: xAI free-usage exhaustion, recovery estimated at event time + 24 h.
  bj::object provider_usage;
  std::string family =
      ToLowerCopy(event.provider.value_or("") + " " + event.executor_type.value_or(""));
  int64_t status = event.fail_status_code.value_or(0);
  if (Contains(family, "xai") && (status == 402 || status == 429) &&
      Contains(raw_fail_body, "subscription:free-usage-exhausted")) {
    provider_usage["provider"] = "xai";
    provider_usage["reason"] = "free_usage_exhausted";
    provider_usage["recover_at_ms"] = WrapAdd(event.timestamp_ms, kXaiFreeUsageWindowMs);
    provider_usage["recover_at_estimated"] = true;
  } else if (carried_provider_usage != nullptr && !carried_provider_usage->empty()) {
    provider_usage = *carried_provider_usage;
  }

  bool any = !provider_usage.empty();
  for (const auto& m : maps) any = any || !m.empty();
  if (!any) return out;

  std::string json = "{";
  bool first = true;
  auto open_group = [&](std::string_view name) {
    if (!first) json.push_back(',');
    first = false;
    AppendGoJsonString(json, name);
    json.push_back(':');
  };
  for (size_t g = 0; g < kGroupCount; ++g) {
    if (maps[g].empty()) continue;
    open_group(kGroupNames[g]);
    json.push_back('{');
    bool first_member = true;
    for (const auto& [k, v] : maps[g]) {
      if (!first_member) json.push_back(',');
      first_member = false;
      AppendGoJsonString(json, k);
      json.push_back(':');
      AppendGoJsonString(json, v);
    }
    json.push_back('}');
  }
  if (!provider_usage.empty()) {
    open_group("provider_usage");
    std::string pu;
    if (AppendGoJson(pu, provider_usage)) {
      json.append(pu);
    } else {
      json.append("{}");
    }
  }
  json.push_back('}');
  out.json = std::move(json);

  // Quota scalars.
  if (const std::string* plan = Find(maps, kQuota, "x-codex-plan-type"); plan && !plan->empty()) {
    out.quota_plan_type = *plan;
  }
  std::optional<double> used;
  std::optional<int64_t> exhausted_reset;
  std::optional<int64_t> any_reset;
  for (std::string_view w : {"primary", "secondary"}) {
    std::optional<double> p =
        Percent(Find(maps, kQuota, "x-codex-" + std::string(w) + "-used-percent"));
    std::optional<int64_t> reset = WindowReset(maps, w, event.timestamp_ms);
    if (p && (!used || *p > *used)) used = p;
    if (reset && (!any_reset || *reset > *any_reset)) any_reset = reset;
    if (p && *p >= 100 && reset && (!exhausted_reset || *reset > *exhausted_reset)) {
      exhausted_reset = reset;
    }
  }
  out.quota_used_percent = used;
  std::optional<int64_t> recover = exhausted_reset;
  if (!recover && Find(maps, kQuota, "x-codex-rate-limit-reached-type") != nullptr) {
    recover = any_reset;
  }
  if (!recover) {
    if (auto it = provider_usage.find("recover_at_ms"); it != provider_usage.end()) {
      recover = ScalarInt(&it->value());
    }
  }
  if (recover && *recover > 0) out.quota_recover_at_ms = recover;

  // Error scalars.
  if (const std::string* k = Find(maps, kErrors, "x-openai-authorization-error")) {
    out.error_kind = *k;
  } else if (const std::string* t = Find(maps, kQuota, "x-codex-rate-limit-reached-type")) {
    out.error_kind = *t;
  }
  if (const std::string* c = Find(maps, kErrors, "x-openai-ide-error-code")) {
    out.error_code = *c;
  } else {
    for (const auto& [k, v] : maps[kErrors]) {
      if (StartsWith(k, "x-openai-") && k != "x-openai-authorization-error") {
        out.error_code = v;
        break;
      }
    }
  }
  if (out.error_kind && out.error_kind->empty()) out.error_kind.reset();
  if (out.error_code && out.error_code->empty()) out.error_code.reset();

  // Trace id.
  for (std::string_view h : kTraceHeaders) {
    if (const std::string* v = Find(maps, kTrace, h); v && !v->empty()) {
      out.trace_id = *v;
      break;
    }
  }
  if (!out.trace_id) {
    if (const std::string* tp = Find(maps, kTrace, "traceparent"))
      out.trace_id = TraceparentId(*tp);
  }
  return out;
}

}  // namespace cpamp::usage::internal
