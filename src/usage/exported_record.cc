// Exported row -> UsageEvent (§5.4) and legacy CPA detail -> UsageEvent (§5.5).
//
// Exported rows are our own (or upstream's) export lines, so almost every column is read back
// by its column name and kept verbatim: event_hash (the dedup key; recomputing it could break
// dedup against rows written by another version), timestamp text and ms, created_at_ms, source
// and source_hash (already masked), fail_summary, header_* columns. Only what exports do not
// carry is re-derived: cache mode and normalized columns, the effective tier, response metadata
// regrouping, and a provenance raw_json ({"total_tokens":N} etc.) when the row has none. The
// result of export -> import -> export is therefore byte-identical.
//
// Legacy details reuse the queue normaliser on a synthesized record (the detail plus the
// endpoint and model keys), then apply the legacy-specific rules: created_at = import time, a
// wrapper raw_json, the synthetic `legacy:` request id and a hash over the model *key*.
#include <boost/json.hpp>

#include <algorithm>

#include "usage/import_internal.h"
#include "usage/internal.h"

namespace cpamp::usage {
namespace internal {
namespace {

std::optional<std::string> Opt(std::string s) {
  if (s.empty()) return std::nullopt;
  return std::optional<std::string>(std::move(s));
}

std::optional<int64_t> Positive(int64_t v) {
  if (v <= 0) return std::nullopt;
  return v;
}

const bj::object* ObjectAt(const bj::object& o, std::string_view key) {
  auto it = o.find(key);
  return (it != o.end() && it->value().is_object()) ? &it->value().get_object() : nullptr;
}

// Token counter: first non-zero value over tokens -> usage -> top level (§4.3).
struct Tokens {
  const bj::object* containers[3];
  int64_t operator()(Keys keys) const {
    for (const bj::object* c : containers) {
      if (c == nullptr) continue;
      for (std::string_view k : keys) {
        auto it = c->find(k);
        if (it == c->end()) continue;
        if (int64_t v = ScalarInt(&it->value()); v != 0) return v;
      }
    }
    return 0;
  }
};

// bool, non-zero number, or "1"/"true"/"yes"/"on".
bool LooseBool(const bj::value* v) {
  if (v == nullptr) return false;
  if (v->is_bool()) return v->get_bool();
  if (v->is_int64()) return v->get_int64() != 0;
  if (v->is_uint64()) return v->get_uint64() != 0;
  if (v->is_double()) return v->get_double() != 0;
  if (v->is_string()) {
    std::string s(GoTrimSpace(std::string_view(v->get_string())));
    for (char& c : s) c = AsciiLower(c);
    return s == "1" || s == "true" || s == "yes" || s == "on";
  }
  return false;
}

std::optional<int64_t> OptionalInt(const bj::object& o, Keys keys) {
  const bj::value* v = FirstPresent(o, keys);
  if (v == nullptr || v->is_null()) return std::nullopt;
  return ScalarInt(v);
}

std::string ValidMode(const bj::object* c) {
  if (c == nullptr) return {};
  std::string mode = ReadString(*c, {"cache_input_mode", "cacheInputMode"});
  for (char& ch : mode) ch = AsciiLower(ch);
  return (mode == kIncludedInInput || mode == kSeparateFromInput) ? mode : std::string();
}

}  // namespace

bool HasEventHash(const bj::object& o) {
  return !ReadString(o, {"event_hash", "eventHash"}).empty();
}

std::string ExportedTimestampProblem(const bj::object& o) {
  if (OptionalInt(o, {"timestamp_ms", "timestampMs"})) return {};
  const std::string text = ReadString(o, {"timestamp"});
  if (!text.empty() && ParseTimestampText(text)) return {};
  return text.empty() ? "exported usage record has an event_hash but no timestamp"
                      : "exported usage record has an unparsable timestamp: " + text.substr(0, 64);
}

UsageEvent EventFromExportedObject(const bj::object& o, int64_t now_ms) {
  UsageEvent e;
  e.event_hash = ReadString(o, {"event_hash", "eventHash"});
  e.request_id = Opt(ReadString(o, {"request_id", "requestId", "id"}));

  std::optional<int64_t> ts_ms = OptionalInt(o, {"timestamp_ms", "timestampMs"});
  std::string ts_text = ReadString(o, {"timestamp"});
  if (ts_text.empty()) {
    e.timestamp_ms = ts_ms.value_or(now_ms);
    e.timestamp = FormatTimestampMs(e.timestamp_ms);
  } else {
    if (!ts_ms) {
      std::optional<ParsedTimestamp> parsed = ParseTimestampText(ts_text);
      ts_ms = parsed ? parsed->ms : now_ms;
    }
    e.timestamp_ms = *ts_ms;
    e.timestamp = std::move(ts_text);
  }

  e.provider = Opt(ReadString(o, {"provider"}));
  e.executor_type = Opt(ReadString(o, {"executor_type", "executorType"}));
  std::string model = ReadString(o, {"model"});
  e.requested_model = Opt(ReadString(o, {"requested_model", "requestedModel"}));
  e.resolved_model = Opt(ReadString(o, {"resolved_model", "resolvedModel"}));
  e.model = !model.empty()                  ? std::move(model)
            : e.requested_model.has_value() ? *e.requested_model
            : e.resolved_model.has_value()  ? *e.resolved_model
                                            : std::string("-");
  e.endpoint = Opt(ReadString(o, {"endpoint"}));
  e.method = Opt(ReadString(o, {"method"}));
  e.path = Opt(ReadString(o, {"path"}));
  e.client_ip =
      Opt(SanitizeClientField(ReadString(o, {"client_ip", "clientIp"}), kClientIpMaxBytes));
  e.x_forwarded_for = Opt(SanitizeClientField(ReadString(o, {"x_forwarded_for", "xForwardedFor"}),
                                              kForwardedForMaxBytes));
  e.user_agent =
      Opt(SanitizeClientField(ReadString(o, {"user_agent", "userAgent"}), kUserAgentMaxBytes));
  e.auth_type = Opt(ReadString(o, {"auth_type", "authType"}));
  e.auth_index = Opt(ReadString(o, {"auth_index", "authIndex"}));
  e.source = Opt(ReadString(o, {"source"}));
  e.source_hash = Opt(ReadString(o, {"source_hash", "sourceHash"}));
  e.api_key_hash = Opt(ReadString(o, {"api_key_hash", "apiKeyHash"}));
  e.account_snapshot = Opt(ReadString(o, {"account_snapshot", "accountSnapshot"}));
  e.auth_label_snapshot = Opt(ReadString(o, {"auth_label_snapshot", "authLabelSnapshot"}));
  e.auth_file_snapshot = Opt(ReadString(o, {"auth_file_snapshot", "authFileSnapshot"}));
  e.auth_provider_snapshot = Opt(ReadString(o, {"auth_provider_snapshot", "authProviderSnapshot"}));
  e.auth_project_id_snapshot =
      Opt(ReadString(o, {"auth_project_id_snapshot", "authProjectIdSnapshot"}));
  e.auth_snapshot_at_ms =
      Positive(ScalarInt(FirstPresent(o, {"auth_snapshot_at_ms", "authSnapshotAtMs"})));
  e.reasoning_effort = Opt(ReadString(o, {"reasoning_effort", "reasoningEffort"}));

  // Tiers: exports carry the effective tier as service_tier; re-derive as the store does.
  e.service_tier = Opt(ReadString(o, {"service_tier", "serviceTier"}));
  e.request_service_tier = Opt(ReadString(o, {"request_service_tier", "requestServiceTier"}));
  e.response_service_tier = Opt(ReadString(o, {"response_service_tier", "responseServiceTier"}));
  e.service_tier = Opt(EffectiveServiceTier(e));
  if (!e.request_service_tier) e.request_service_tier = e.service_tier;

  const bj::object* tokens = ObjectAt(o, "tokens");
  const bj::object* usage = ObjectAt(o, "usage");
  Tokens tok{{tokens, usage, &o}};
  e.input_tokens = tok({"input_tokens", "inputTokens", "prompt_tokens", "promptTokens"});
  e.output_tokens = tok({"output_tokens", "outputTokens", "completion_tokens", "completionTokens"});
  e.reasoning_tokens = tok({"reasoning_tokens", "reasoningTokens"});
  e.cached_tokens = tok({"cached_tokens", "cachedTokens"});
  e.cache_tokens = tok({"cache_tokens", "cacheTokens"});
  e.cache_read_tokens = tok(
      {"cache_read_tokens", "cacheReadTokens", "cache_read_input_tokens", "cacheReadInputTokens"});
  e.cache_creation_tokens =
      tok({"cache_creation_tokens", "cacheCreationTokens", "cache_creation_input_tokens",
           "cacheCreationInputTokens", "cache_write_tokens", "cacheWriteTokens",
           "cache_write_input_tokens", "cacheWriteInputTokens"});
  std::string explicit_mode;
  for (const bj::object* c : {tokens, usage, &o}) {
    explicit_mode = ValidMode(c);
    if (!explicit_mode.empty()) break;
  }
  e.cache_input_mode = Opt(explicit_mode);
  ApplyCacheAccounting(e);
  const int64_t reported_total = tok({"total_tokens", "totalTokens", "total"});
  e.total_tokens = reported_total;
  if (e.total_tokens <= 0) {
    e.total_tokens = WrapAdd(
        WrapAdd(e.normalized_total_input_tokens.value_or(0), std::max<int64_t>(e.output_tokens, 0)),
        std::max<int64_t>(e.reasoning_tokens, 0));
  }

  e.latency_ms = OptionalInt(
      o, {"latency_ms", "latencyMs", "duration_ms", "durationMs", "elapsed_ms", "elapsedMs"});
  e.ttft_ms = OptionalInt(o, {"ttft_ms", "ttftMs", "time_to_first_token_ms", "timeToFirstTokenMs"});
  e.failed = LooseBool(FirstPresent(o, {"failed", "is_failed", "isFailed"}));

  const bj::object* fail = ObjectAt(o, "fail");
  int64_t status =
      fail != nullptr ? ScalarInt(FirstPresent(*fail, {"status_code", "statusCode"})) : 0;
  if (status <= 0) status = ScalarInt(FirstPresent(o, {"fail_status_code", "failStatusCode"}));
  e.fail_status_code = Positive(status);
  std::string body = fail != nullptr ? ReadString(*fail, {"body"}) : std::string();
  if (body.empty()) body = ReadString(o, {"fail_body", "failBody"});
  std::string summary = ReadString(o, {"fail_summary", "failSummary"});
  e.fail_summary = Opt(summary.empty() ? RedactFailureText(body) : std::move(summary));
  e.fail_body = Opt(body);

  const bj::value* headers = FirstPresent(o, {"response_headers", "responseHeaders", "headers"});
  ResponseMetadata md = BuildResponseMetadata(ObjectAt(o, "response_metadata"), headers, e, body);
  e.response_metadata_json = std::move(md.json);
  auto keep = [&](std::optional<std::string> derived, Keys keys) {
    return derived ? derived : Opt(ReadString(o, keys));
  };
  e.header_quota_recover_at_ms =
      md.quota_recover_at_ms ? md.quota_recover_at_ms
                             : Positive(ScalarInt(FirstPresent(o, {"header_quota_recover_at_ms"})));
  e.header_quota_used_percent = md.quota_used_percent;
  if (!e.header_quota_used_percent) {
    e.header_quota_used_percent = ScalarDouble(FirstPresent(o, {"header_quota_used_percent"}));
  }
  e.header_quota_plan_type = keep(std::move(md.quota_plan_type), {"header_quota_plan_type"});
  e.header_error_kind = keep(std::move(md.error_kind), {"header_error_kind"});
  e.header_error_code = keep(std::move(md.error_code), {"header_error_code"});
  e.header_trace_id = keep(std::move(md.trace_id), {"header_trace_id"});

  // raw_json: the record's own copy (redacted again), else a provenance object with what the
  // export carried explicitly and raw events would not otherwise record.
  const bj::value* raw = FirstPresent(o, {"raw_json", "rawJson"});
  std::string raw_text;
  if (raw != nullptr && raw->is_string()) {
    raw_text = SafeRawJson(std::string_view(raw->get_string()));
  } else if (raw != nullptr && (raw->is_object() || raw->is_array())) {
    AppendRedactedGoJson(raw_text, *raw);
  }
  if (!explicit_mode.empty() || reported_total > 0) {
    std::string prov = "{";
    if (!explicit_mode.empty()) {
      prov += "\"cache_input_mode\":";
      AppendGoJsonString(prov, explicit_mode);
    }
    if (!raw_text.empty()) {
      if (prov.size() > 1) prov += ',';
      prov += "\"raw_json\":" + raw_text;
    }
    if (reported_total > 0) {
      if (prov.size() > 1) prov += ',';
      prov += "\"total_tokens\":" + std::to_string(reported_total);
    }
    prov += '}';
    raw_text = std::move(prov);
  }
  e.raw_json = Opt(std::move(raw_text));

  const int64_t created = ScalarInt(FirstPresent(o, {"created_at_ms", "createdAtMs"}));
  e.created_at_ms = created > 0 ? created : now_ms;
  return e;
}

bool EventFromLegacyDetail(const bj::object& detail, std::string_view endpoint,
                           std::string_view model_key, size_t endpoint_rank, size_t model_rank,
                           size_t detail_index, int64_t now_ms, UsageEvent* out,
                           std::string* error) {
  const bj::value* ts = FirstPresent(detail, {"timestamp", "time", "created_at", "createdAt"});
  bool usable = false;
  if (ts != nullptr && ts->is_string()) {
    usable = ParseTimestampText(GoTrimSpace(std::string_view(ts->get_string()))).has_value();
  } else if (ts != nullptr && ts->is_number()) {
    usable = true;  // our choice: numeric times use the §4.4 number rule rather than "now"
  }
  if (!usable) {
    *error = "legacy usage detail has no valid timestamp";
    return false;
  }

  // The detail as a queue record: the endpoint key is the endpoint, the model key is the
  // upstream model unless the detail names one.
  bj::object record = detail;
  record.erase("api");
  record.erase("request");
  record.erase("operation");
  record["endpoint"] = endpoint;
  if (FirstPresent(detail, {"resolved_model", "resolvedModel", "model", "model_name",
                            "modelName"}) == nullptr) {
    record["model"] = model_key;
  }
  NormalizeResult r = NormalizeQueuePayload(bj::serialize(record), now_ms);
  if (r.kind != PayloadKind::kEvent) {
    *error = r.kind == PayloadKind::kDeadLetter ? r.dead_letter_error
                                                : std::string("legacy detail is a control message");
    return false;
  }
  UsageEvent& e = r.event;
  e.created_at_ms = now_ms;

  bj::object wrapper;
  wrapper["format"] = "legacy_usage_export";
  wrapper["endpoint"] = endpoint;
  wrapper["model"] = model_key;
  wrapper["detail"] = detail;
  std::string raw;
  AppendRedactedGoJson(raw, wrapper);
  e.raw_json = raw;

  if (!e.request_id) {
    std::string seed = "legacy|" + std::to_string(endpoint_rank) + "|" +
                       std::to_string(model_rank) + "|" + std::to_string(detail_index) + "|" +
                       std::string(endpoint) + "|" + std::string(model_key) + "|" + e.timestamp +
                       "|" + raw;
    e.request_id = "legacy:" + Sha256Hex(seed).substr(0, 16);
  }
  UsageEvent for_hash = e;
  for_hash.model = std::string(model_key);
  e.event_hash = ComputeEventHash(for_hash);
  *out = std::move(e);
  return true;
}

}  // namespace internal

NormalizeResult NormalizeExportedRecord(std::string_view json_text, int64_t now_ms) {
  internal::bj::parse_options opts;
  opts.allow_invalid_utf8 = true;
  opts.max_depth = 1000;
  boost::system::error_code ec;
  internal::bj::value v = internal::bj::parse(json_text, ec, {}, opts);
  NormalizeResult r;
  if (ec) {
    r.dead_letter_error = "invalid JSON: " + ec.message();
    return r;
  }
  if (!v.is_object() || !internal::HasEventHash(v.get_object())) {
    r.dead_letter_error = "exported usage record must be a JSON object with an event_hash";
    return r;
  }
  if (std::string problem = internal::ExportedTimestampProblem(v.get_object()); !problem.empty()) {
    r.dead_letter_error = std::move(problem);
    return r;
  }
  r.kind = PayloadKind::kEvent;
  r.event = internal::EventFromExportedObject(v.get_object(), now_ms);
  return r;
}

}  // namespace cpamp::usage
