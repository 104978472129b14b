// Queue item -> UsageEvent (§4.2-4.11).
//
// One boost::json parse per item into a stack-backed monotonic arena; every column is then read
// from the DOM with the upstream reading rules (internal.h): "first present key wins" for plain
// fields, "first non-zero wins" across tokens -> usage -> top level for token counters. The
// redacted raw_json copy is written first because it is also the check upstream's decoder makes
// implicitly (a number outside float64 range makes the whole item a dead letter). The derived
// columns (cache accounting, effective tier, response metadata) are computed here rather than at
// insert so that the row handed to the store is final; enrichment (ApplyAuthSnapshot) re-derives
// only what a snapshot can change. The event hash is computed last, from the final column values.
//
// Choices where the spec is silent (also listed in README.md): a success never gets a fail_body
// (headers are appended to the failure body of failed events only, without a leading newline when
// the body is empty); fail.body / fail.status_code fall through to the top-level aliases when
// empty / non-positive; the hash sees endpoint "-" and model "-" for unknown values.
#include <algorithm>

#include "usage/internal.h"

namespace cpamp::usage {

namespace {

using internal::FirstPresent;
using internal::Keys;
using internal::ReadString;
using internal::ScalarInt;
using internal::ScalarString;
using internal::bj::object;
using internal::bj::value;

constexpr size_t kMaxJsonDepth = 1000;

std::optional<std::string> Opt(std::string s) {
  if (s.empty()) return std::nullopt;
  return std::optional<std::string>(std::move(s));
}

std::optional<int64_t> Positive(int64_t v) {
  if (v <= 0) return std::nullopt;
  return v;
}

bool ContainsAny(std::string_view haystack, std::initializer_list<std::string_view> needles) {
  for (std::string_view n : needles)
    if (haystack.find(n) != std::string_view::npos) return true;
  return false;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = internal::AsciiLower(c);
  return out;
}

const object* ObjectAt(const object& o, std::string_view key) {
  auto it = o.find(key);
  return (it != o.end() && it->value().is_object()) ? &it->value().get_object() : nullptr;
}

// RE2 \s: [\t\n\f\r ].
bool IsRe2Space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

// ^(GET|POST|PUT|PATCH|DELETE|OPTIONS|HEAD)\s+(\S+)
bool SplitEndpoint(std::string_view endpoint, std::string_view* method, std::string_view* path) {
  static constexpr std::string_view kVerbs[] = {"GET",    "POST",    "PUT", "PATCH",
                                                "DELETE", "OPTIONS", "HEAD"};
  for (std::string_view verb : kVerbs) {
    if (endpoint.substr(0, verb.size()) != verb) continue;
    size_t p = verb.size();
    size_t q = p;
    while (q < endpoint.size() && IsRe2Space(endpoint[q])) ++q;
    if (q == p) continue;
    size_t e = q;
    while (e < endpoint.size() && !IsRe2Space(endpoint[e])) ++e;
    if (e == q) continue;
    *method = verb;
    *path = endpoint.substr(q, e - q);
    return true;
  }
  return false;
}

bool IsValidMode(std::string_view lower) {
  return lower == kIncludedInInput || lower == kSeparateFromInput;
}

std::string TierFor(std::string_view family, std::string_view request, std::string_view legacy,
                    std::string_view response) {
  const bool codex = Lower(family).find("codex") != std::string::npos;
  const std::string_view order[3] = {codex ? request : response, legacy,
                                     codex ? response : request};
  for (std::string_view t : order)
    if (!t.empty()) return std::string(t);
  return {};
}

std::string TierFamily(const UsageEvent& e) {
  return e.executor_type.value_or("") + e.provider.value_or("") +
         e.auth_provider_snapshot.value_or("") + e.auth_type.value_or("");
}

NormalizeResult DeadLetter(std::string error) {
  NormalizeResult r;
  r.kind = PayloadKind::kDeadLetter;
  r.dead_letter_error = std::move(error);
  return r;
}

std::string_view KindName(const value& v) {
  switch (v.kind()) {
    case internal::bj::kind::array:
      return "an array";
    case internal::bj::kind::string:
      return "a string";
    case internal::bj::kind::bool_:
      return "a boolean";
    case internal::bj::kind::null:
      return "null";
    case internal::bj::kind::object:
      return "an object";
    default:
      return "a number";
  }
}

// Token counter: first non-zero value over tokens -> usage -> top level, aliases in order.
struct TokenReader {
  const object* containers[3];
  int64_t operator()(Keys keys) const {
    for (const object* c : containers) {
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

bool ReadFailed(const object& o) {
  for (std::string_view k : {"failed", "is_failed", "isFailed"}) {
    if (auto it = o.find(k); it != o.end() && it->value().is_bool()) return it->value().get_bool();
  }
  for (std::string_view k : {"success", "ok"}) {
    if (auto it = o.find(k); it != o.end() && it->value().is_bool()) return !it->value().get_bool();
  }
  if (const value* s =
          FirstPresent(o, {"status", "status_code", "statusCode", "http_status", "httpStatus"});
      s != nullptr && ScalarInt(s) >= 400) {
    return true;
  }
  for (std::string_view k : {"error", "error_message", "errorMessage"}) {
    if (auto it = o.find(k); it != o.end() && !it->value().is_null()) return true;
  }
  return false;
}

void FillEvent(const object& o, int64_t now_ms, UsageEvent& e, std::string raw_json) {
  e.created_at_ms = now_ms;
  e.raw_json = std::move(raw_json);

  // Timestamp (§4.4).
  std::optional<ParsedTimestamp> ts =
      internal::ReadTimestampValue(FirstPresent(o, {"timestamp", "time", "created_at", "createdAt",
                                                    "created", "request_time", "requestTime"}));
  if (!ts) ts = ParsedTimestamp{now_ms, FormatTimestampMs(now_ms)};
  e.timestamp_ms = ts->ms;
  e.timestamp = std::move(ts->text);

  e.request_id = Opt(ReadString(o, {"request_id", "requestId", "id"}));

  // Endpoint, method, path.
  std::string method = ReadString(o, {"method", "http_method", "httpMethod"});
  for (char& c : method) c = internal::AsciiUpper(c);
  std::string path = ReadString(o, {"path", "url_path", "urlPath", "route"});
  std::string endpoint = ReadString(o, {"endpoint", "api", "request", "operation"});
  if (endpoint.empty() && !method.empty() && !path.empty()) endpoint = method + " " + path;
  std::string_view ep_method, ep_path;
  if (SplitEndpoint(endpoint, &ep_method, &ep_path)) {
    if (method.empty()) method = ep_method;
    if (path.empty()) path = ep_path;
  }
  e.endpoint = endpoint.empty() ? "-" : std::move(endpoint);
  e.method = Opt(std::move(method));
  e.path = Opt(std::move(path));

  // Identity.
  e.provider = Opt(ReadString(o, {"provider", "type", "auth_type", "authType"}));
  e.executor_type = Opt(ReadString(o, {"executor_type", "executorType"}));
  e.auth_type = Opt(ReadString(o, {"auth_type", "authType"}));
  e.auth_index = Opt(ReadString(o, {"auth_index", "authIndex", "AuthIndex"}));
  std::string requested = ReadString(o, {"alias", "requested_model", "requestedModel"});
  std::string resolved =
      ReadString(o, {"resolved_model", "resolvedModel", "model", "model_name", "modelName"});
  e.model = !requested.empty() ? requested : !resolved.empty() ? resolved : "-";
  e.requested_model = Opt(std::move(requested));
  e.resolved_model = Opt(std::move(resolved));

  std::string raw_source =
      ReadString(o, {"source", "api_key", "apiKey", "key", "account", "email"});
  if (!raw_source.empty()) {
    e.source = Opt(MaskSource(raw_source));
    e.source_hash = Sha256Hex(raw_source);
  }
  if (std::string key = ReadString(o, {"api_key", "apiKey", "key"}); !key.empty()) {
    e.api_key_hash = Sha256Hex(key);
  }

  e.client_ip =
      Opt(SanitizeClientField(ReadString(o, {"client_ip", "clientIp"}), kClientIpMaxBytes));
  e.x_forwarded_for = Opt(SanitizeClientField(ReadString(o, {"x_forwarded_for", "xForwardedFor"}),
                                              kForwardedForMaxBytes));
  e.user_agent =
      Opt(SanitizeClientField(ReadString(o, {"user_agent", "userAgent"}), kUserAgentMaxBytes));

  // Snapshots carried by the record.
  e.account_snapshot = Opt(ReadString(o, {"account_snapshot", "accountSnapshot"}));
  e.auth_label_snapshot = Opt(ReadString(o, {"auth_label_snapshot", "authLabelSnapshot"}));
  e.auth_file_snapshot = Opt(ReadString(o, {"auth_file_snapshot", "authFileSnapshot"}));
  e.auth_provider_snapshot = Opt(ReadString(o, {"auth_provider_snapshot", "authProviderSnapshot"}));
  e.auth_project_id_snapshot = Opt(ReadString(
      o, {"auth_project_id_snapshot", "authProjectIdSnapshot", "project_id", "projectId"}));
  e.auth_snapshot_at_ms =
      Positive(ScalarInt(FirstPresent(o, {"auth_snapshot_at_ms", "authSnapshotAtMs"})));
  e.reasoning_effort = Opt(ReadString(o, {"reasoning_effort", "reasoningEffort"}));

  // Service tiers (§4.7).
  std::string request_tier =
      ReadString(o, {"request_service_tier", "requestServiceTier", "service_tier", "serviceTier"});
  std::string legacy_tier = ReadString(o, {"service_tier", "serviceTier"});
  std::string response_tier = ReadString(o, {"response_service_tier", "responseServiceTier"});
  std::string effective = TierFor(TierFamily(e), request_tier, legacy_tier, response_tier);
  if (request_tier.empty()) request_tier = effective;
  e.service_tier = Opt(std::move(effective));
  e.request_service_tier = Opt(std::move(request_tier));
  e.response_service_tier = Opt(std::move(response_tier));

  // Tokens (§4.3, §4.6).
  const object* tokens = ObjectAt(o, "tokens");
  const object* usage = ObjectAt(o, "usage");
  TokenReader tok{{tokens, usage, &o}};
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
  for (const object* c : {tokens, usage, &o}) {
    if (c == nullptr) continue;
    std::string mode = Lower(ReadString(*c, {"cache_input_mode", "cacheInputMode"}));
    if (IsValidMode(mode)) {
      e.cache_input_mode = std::move(mode);
      break;
    }
  }
  ApplyCacheAccounting(e);
  e.total_tokens = tok({"total_tokens", "totalTokens", "total"});
  if (e.total_tokens <= 0) {
    e.total_tokens =
        internal::WrapAdd(internal::WrapAdd(e.normalized_total_input_tokens.value_or(0),
                                            std::max<int64_t>(e.output_tokens, 0)),
                          std::max<int64_t>(e.reasoning_tokens, 0));
  }

  // Latency.
  if (const value* v = FirstPresent(
          o, {"latency_ms", "latencyMs", "duration_ms", "durationMs", "elapsed_ms", "elapsedMs"})) {
    e.latency_ms = ScalarInt(v);
  }
  if (const value* v =
          FirstPresent(o, {"ttft_ms", "ttftMs", "time_to_first_token_ms", "timeToFirstTokenMs"})) {
    e.ttft_ms = ScalarInt(v);
  }

  // Failure (§4.3, §4.8).
  e.failed = ReadFailed(o);
  const object* fail = ObjectAt(o, "fail");
  int64_t status =
      fail != nullptr ? ScalarInt(FirstPresent(*fail, {"status_code", "statusCode"})) : 0;
  if (status <= 0) status = ScalarInt(FirstPresent(o, {"fail_status_code", "failStatusCode"}));
  e.fail_status_code = Positive(status);
  std::string body = fail != nullptr ? ReadString(*fail, {"body"}) : std::string();
  if (body.empty()) body = ReadString(o, {"fail_body", "failBody"});
  const value* headers = FirstPresent(o, {"response_headers", "responseHeaders", "headers"});
  std::string fail_body = body;
  if (e.failed && headers != nullptr && !headers->is_null()) {
    std::string headers_json;
    if (internal::AppendGoJson(headers_json, *headers) && headers_json != "{}" &&
        headers_json != "[]") {
      if (!fail_body.empty()) fail_body.push_back('\n');
      fail_body.append(headers_json);
    }
  }
  std::string summary_source = ReadString(o, {"fail_summary", "failSummary"});
  e.fail_summary = Opt(RedactFailureText(summary_source.empty() ? fail_body : summary_source));
  e.fail_body = Opt(std::move(fail_body));

  // Response-header metadata.
  internal::ResponseMetadata md =
      internal::BuildResponseMetadata(ObjectAt(o, "response_metadata"), headers, e, body);
  e.response_metadata_json = std::move(md.json);
  e.header_quota_recover_at_ms = md.quota_recover_at_ms;
  e.header_quota_used_percent = md.quota_used_percent;
  e.header_quota_plan_type = std::move(md.quota_plan_type);
  e.header_error_kind = std::move(md.error_kind);
  e.header_error_code = std::move(md.error_code);
  e.header_trace_id = std::move(md.trace_id);

  e.event_hash = ComputeEventHash(e);
}

}  // namespace

NormalizeResult NormalizeQueuePayload(std::string_view payload, int64_t now_ms, RawJsonMode raw) {
  unsigned char arena[16384];
  internal::bj::monotonic_resource mr(arena, sizeof(arena));
  internal::bj::parse_options opts;
  opts.allow_invalid_utf8 = true;
  opts.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  value v = internal::bj::parse(payload, ec, &mr, opts);
  if (ec) return DeadLetter("invalid JSON: " + ec.message());
  if (v.is_string()) {
    // The HTTP queue may deliver a record as a JSON string holding the record's JSON text.
    std::string_view inner(v.get_string());
    value unwrapped = internal::bj::parse(inner, ec, &mr, opts);
    if (ec || !unwrapped.is_object()) {
      return DeadLetter("usage record is a JSON string that does not hold a JSON object");
    }
    v = std::move(unwrapped);
  }
  if (!v.is_object()) {
    return DeadLetter("usage record is not a JSON object (got " + std::string(KindName(v)) + ")");
  }
  const object& o = v.get_object();

  if (o.size() == 1 && o.begin()->value().is_bool() && o.begin()->value().get_bool()) {
    std::string_view key = o.begin()->key();
    if (key == "refresh") return NormalizeResult{PayloadKind::kControlRefresh, {}, {}};
    if (key == "support_refresh") {
      return NormalizeResult{PayloadKind::kControlSupportRefresh, {}, {}};
    }
  }

  // The redacted copy is built only where it is kept; the float64 check always runs.
  if (!internal::AllNumbersFinite(v)) return DeadLetter("invalid JSON: number out of float64 range");
  NormalizeResult result;
  result.kind = PayloadKind::kEvent;
  FillEvent(o, now_ms, result.event, std::string());
  result.event.raw_json.reset();
  if (raw == RawJsonMode::kAll || (raw == RawJsonMode::kFailed && result.event.failed)) {
    std::string raw_json;
    raw_json.reserve(payload.size() + 32);
    internal::AppendRedactedGoJson(raw_json, v);
    result.event.raw_json = std::move(raw_json);
  }
  return result;
}

std::string EventHashPreimage(const UsageEvent& e) {
  std::string s;
  s.reserve(256);
  auto field = [&](std::string_view v) {
    s.append(v);
    s.push_back('|');
  };
  field(e.request_id.value_or(""));
  field(e.timestamp);
  field(e.endpoint.value_or(""));
  field(e.model);
  field(e.auth_index.value_or(""));
  field(e.source_hash.value_or(""));
  field(std::to_string(e.input_tokens));
  field(std::to_string(e.output_tokens));
  field(std::to_string(e.reasoning_tokens));
  field(std::to_string(std::max(e.cached_tokens, e.cache_tokens)));
  s.append(e.failed ? "true" : "false");
  if (e.latency_ms) {
    s.push_back('|');
    s.append(std::to_string(*e.latency_ms));
  }
  return s;
}

std::string ComputeEventHash(const UsageEvent& e) { return Sha256Hex(EventHashPreimage(e)); }

// ---- Model identity and accounting ----

std::string AnalyticsModel(std::string_view m) {
  if (m.size() < 3 || m.back() != ')') return std::string(m);
  size_t open = m.rfind('(');
  if (open == std::string_view::npos || open == 0) return std::string(m);
  std::string inner = Lower(m.substr(open + 1, m.size() - open - 2));
  static constexpr std::string_view kLevels[] = {"none",   "auto", "-1",    "minimal", "low",
                                                 "medium", "high", "xhigh", "max"};
  bool known = std::find(std::begin(kLevels), std::end(kLevels), inner) != std::end(kLevels);
  bool number = !inner.empty() && inner.find_first_not_of("0123456789") == std::string::npos;
  return known || number ? std::string(m.substr(0, open)) : std::string(m);
}

std::string_view InferCacheInputMode(const UsageEvent& e) {
  if (e.cache_input_mode) {
    std::string explicit_mode = Lower(*e.cache_input_mode);
    if (explicit_mode == kIncludedInInput) return kIncludedInInput;
    if (explicit_mode == kSeparateFromInput) return kSeparateFromInput;
  }
  std::string executor = Lower(e.executor_type.value_or(""));
  if (executor.find("claude") != std::string::npos) return kSeparateFromInput;
  if (ContainsAny(executor,
                  {"openaicompat", "openai_compat", "openai-compat", "openai", "codex", "gemini",
                   "aistudio", "ai_studio", "ai-studio", "antigravity", "xai", "kimi"})) {
    return kIncludedInInput;
  }
  for (const std::optional<std::string>* field : {&e.provider, &e.auth_provider_snapshot}) {
    std::string v = Lower(field->value_or(""));
    if (ContainsAny(v, {"anthropic", "claude"})) return kSeparateFromInput;
    if (ContainsAny(v, {"openai", "codex", "gemini", "vertex", "aistudio", "ai_studio", "ai-studio",
                        "interaction", "antigravity", "xai", "kimi", "moonshot"})) {
      return kIncludedInInput;
    }
  }
  std::string display = e.model == "-" ? std::string() : e.model;
  auto view = [](const std::optional<std::string>& o) {
    return o ? std::string_view(*o) : std::string_view();
  };
  for (std::string_view field :
       {view(e.resolved_model), view(e.requested_model), std::string_view(display)}) {
    std::string v = Lower(field);
    if (ContainsAny(v, {"anthropic", "claude"})) return kSeparateFromInput;
    if (ContainsAny(v, {"gpt-", "openai", "codex", "gemini", "vertex", "aistudio", "antigravity",
                        "grok", "xai", "kimi", "moonshot"})) {
      return kIncludedInInput;
    }
  }
  return (e.cache_read_tokens > 0 || e.cache_creation_tokens > 0) ? kSeparateFromInput
                                                                  : kIncludedInInput;
}

int64_t CompatibleCachedTokens(const UsageEvent& e) {
  int64_t c = std::max(e.cached_tokens, e.cache_tokens);
  if (c <= 0) return 0;
  using internal::WrapAdd;
  using internal::WrapSub;
  if (c <= WrapAdd(std::max<int64_t>(e.cache_read_tokens, 0),
                   std::max<int64_t>(e.cache_creation_tokens, 0))) {
    return 0;
  }
  return WrapSub(WrapSub(c, e.cache_read_tokens), e.cache_creation_tokens);
}

void ApplyCacheAccounting(UsageEvent& e) {
  std::string_view mode = InferCacheInputMode(e);
  e.cache_input_mode = std::string(mode);
  using internal::WrapAdd;
  using internal::WrapSub;
  int64_t read = WrapAdd(CompatibleCachedTokens(e), std::max<int64_t>(e.cache_read_tokens, 0));
  int64_t creation = std::max<int64_t>(e.cache_creation_tokens, 0);
  e.normalized_cache_read_tokens = read;
  e.normalized_cache_creation_tokens = creation;
  if (mode == kSeparateFromInput) {
    e.normalized_uncached_input_tokens = std::max<int64_t>(e.input_tokens, 0);
    e.normalized_total_input_tokens =
        WrapAdd(WrapAdd(e.input_tokens, read), e.cache_creation_tokens);
  } else {
    e.normalized_uncached_input_tokens =
        std::max<int64_t>(WrapSub(WrapSub(e.input_tokens, read), e.cache_creation_tokens), 0);
    e.normalized_total_input_tokens = std::max<int64_t>(e.input_tokens, 0);
  }
}

std::string EffectiveServiceTier(const UsageEvent& e) {
  return TierFor(TierFamily(e), e.request_service_tier.value_or(""), e.service_tier.value_or(""),
                 e.response_service_tier.value_or(""));
}

// ---- Account snapshots (§4.11) ----

std::optional<AuthSnapshot> AuthSnapshotFromAuthFileJson(std::string_view json_object_text) {
  unsigned char arena[4096];
  internal::bj::monotonic_resource mr(arena, sizeof(arena));
  internal::bj::parse_options opts;
  opts.allow_invalid_utf8 = true;
  opts.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  value v = internal::bj::parse(json_object_text, ec, &mr, opts);
  if (ec || !v.is_object()) return std::nullopt;
  const object& o = v.get_object();
  auto first_non_empty = [&](Keys keys) -> std::string {
    for (std::string_view k : keys) {
      auto it = o.find(k);
      if (it == o.end()) continue;
      if (std::string s = ScalarString(&it->value()); !s.empty()) return s;
    }
    return {};
  };
  AuthSnapshot s;
  for (std::string_view k : {"account", "email"}) {
    auto it = o.find(k);
    if (it == o.end()) continue;
    std::string a = ScalarString(&it->value());
    if (!a.empty() && !LooksSecret(a)) {
      s.account = std::move(a);
      break;
    }
  }
  s.label = first_non_empty({"label", "name", "email", "account"});
  s.file_name = first_non_empty({"name"});
  s.provider = first_non_empty({"provider", "type"});
  s.project_id = first_non_empty(
      {"project_id", "projectId", "gemini_virtual_project", "geminiVirtualProject"});
  if (s.account.empty()) s.account = !s.label.empty() ? s.label : s.file_name;
  return s;
}

void ApplyAuthSnapshot(UsageEvent& e, const AuthSnapshot& snap, int64_t fetched_at_ms) {
  if (!e.auth_index || e.auth_index->empty()) return;
  if (e.account_snapshot && e.auth_project_id_snapshot) return;
  bool filled = false;
  auto fill = [&](std::optional<std::string>& column, const std::string& v) {
    if ((!column || column->empty()) && !v.empty()) {
      column = v;
      filled = true;
    }
  };
  fill(e.account_snapshot, snap.account);
  fill(e.auth_label_snapshot, snap.label);
  fill(e.auth_file_snapshot, snap.file_name);
  fill(e.auth_provider_snapshot, snap.provider);
  fill(e.auth_project_id_snapshot, snap.project_id);
  if (!filled) return;
  e.auth_snapshot_at_ms = Positive(fetched_at_ms);
  e.service_tier = Opt(EffectiveServiceTier(e));
}

}  // namespace cpamp::usage
