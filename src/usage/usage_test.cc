// Behaviour of NormalizeQueuePayload and the derived columns (spec cpamp-storage.md §4).
#include <gtest/gtest.h>

#include <string>

#include "usage/usage.h"

namespace cpamp::usage {
namespace {

constexpr int64_t kNow = 1790000000000;  // 2026-09-21T14:13:20Z

UsageEvent Event(std::string_view payload, int64_t now = kNow) {
  NormalizeResult r = NormalizeQueuePayload(payload, now);
  EXPECT_EQ(r.kind, PayloadKind::kEvent) << payload << " -> " << r.dead_letter_error;
  return r.event;
}

std::string DeadLetterError(std::string_view payload) {
  NormalizeResult r = NormalizeQueuePayload(payload, kNow);
  EXPECT_EQ(r.kind, PayloadKind::kDeadLetter) << payload;
  return r.dead_letter_error;
}

// ---- Timestamps (§4.4) ----

TEST(UsageTimestamp, Rfc3339WithOffsetIsStoredAsUtcWithFullNanoseconds) {
  UsageEvent e = Event(R"({"timestamp":"2026-08-01T09:41:07.318204551+08:00"})");
  EXPECT_EQ(e.timestamp, "2026-08-01T01:41:07.318204551Z");
  EXPECT_EQ(e.timestamp_ms, 1785548467318);
}

TEST(UsageTimestamp, TrailingFractionalZerosAreTrimmed) {
  EXPECT_EQ(Event(R"({"timestamp":"2026-05-03T14:02:11.520000+08:00"})").timestamp,
            "2026-05-03T06:02:11.52Z");
  EXPECT_EQ(Event(R"({"timestamp":"2026-05-03T06:02:11.000Z"})").timestamp, "2026-05-03T06:02:11Z");
  EXPECT_EQ(Event(R"({"timestamp":"2026-05-03T06:02:11,5Z"})").timestamp, "2026-05-03T06:02:11.5Z");
}

TEST(UsageTimestamp, ZonelessLayoutsAreUtc) {
  UsageEvent space = Event(R"({"timestamp":"2026-04-25 08:30:00"})");
  EXPECT_EQ(space.timestamp, "2026-04-25T08:30:00Z");
  EXPECT_EQ(space.timestamp_ms, 1777105800000);
  EXPECT_EQ(Event(R"({"timestamp":"2026-04-25T08:30:00.25"})").timestamp,
            "2026-04-25T08:30:00.25Z");
  // Go's fallback parser accepts a one-digit hour.
  EXPECT_EQ(Event(R"({"timestamp":"2026-04-25T8:30:00Z"})").timestamp, "2026-04-25T08:30:00Z");
}

TEST(UsageTimestamp, NumbersBelowTenBillionAreSecondsElseMilliseconds) {
  EXPECT_EQ(Event(R"({"timestamp":1777075200})").timestamp_ms, 1777075200000);
  EXPECT_EQ(Event(R"({"timestamp":1777075200123})").timestamp_ms, 1777075200123);
  EXPECT_EQ(Event(R"({"timestamp":1777075200123})").timestamp, "2026-04-25T00:00:00.123Z");
  EXPECT_EQ(Event(R"({"timestamp":9999999999})").timestamp_ms, 9999999999000);
  EXPECT_EQ(Event(R"({"timestamp":10000000000})").timestamp_ms, 10000000000);
  // Fractions truncate toward zero before the rule applies.
  EXPECT_EQ(Event(R"({"timestamp":1777075200.9})").timestamp_ms, 1777075200000);
  // Decimal strings follow the same rule; float strings are not numbers (and match no layout).
  EXPECT_EQ(Event(R"({"timestamp":"1777075200"})").timestamp_ms, 1777075200000);
  EXPECT_EQ(Event(R"({"timestamp":"1777075200123"})").timestamp_ms, 1777075200123);
  EXPECT_EQ(Event(R"({"timestamp":"1777075200.5"})").timestamp_ms, kNow);
}

TEST(UsageTimestamp, AliasesAreReadInOrderAndFirstPresentWinsEvenIfNull) {
  EXPECT_EQ(Event(R"({"createdAt":"2026-04-25T00:00:00Z"})").timestamp_ms, 1777075200000);
  EXPECT_EQ(Event(R"({"time":1777075200,"created_at":"2020-01-01T00:00:00Z"})").timestamp_ms,
            1777075200000);
  // "timestamp" is present (null) so later aliases are not consulted: the time becomes now.
  EXPECT_EQ(Event(R"({"timestamp":null,"time":1777075200})").timestamp_ms, kNow);
}

TEST(UsageTimestamp, MissingOrInvalidBecomesNow) {
  UsageEvent missing = Event(R"({"model":"m"})");
  EXPECT_EQ(missing.timestamp_ms, kNow);
  EXPECT_EQ(missing.timestamp, "2026-09-21T14:13:20Z");
  EXPECT_EQ(Event(R"({"timestamp":"yesterday"})").timestamp_ms, kNow);
  EXPECT_EQ(Event(R"({"timestamp":"2026-02-30T00:00:00Z"})").timestamp_ms, kNow);
  EXPECT_EQ(Event(R"({"timestamp":"2026-04-25T24:00:00Z"})").timestamp_ms, kNow);
  EXPECT_EQ(Event(R"({"timestamp":"2026-04-25 00:00:00Z"})").timestamp_ms, kNow);
  EXPECT_EQ(Event(R"({"timestamp":true})").timestamp_ms, kNow);
  // Because "now" differs per delivery, so does the hash (documented upstream quirk).
  EXPECT_NE(Event(R"({"model":"m"})", kNow).event_hash,
            Event(R"({"model":"m"})", kNow + 1).event_hash);
}

TEST(UsageTimestamp, FormatAndParseHelpers) {
  EXPECT_EQ(FormatTimestampMs(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTimestampMs(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatTimestampMs(951782400000), "2000-02-29T00:00:00Z");
  auto leap = ParseTimestampText("2024-02-29T23:59:59.999999999-01:30");
  ASSERT_TRUE(leap.has_value());
  EXPECT_EQ(leap->text, "2024-03-01T01:29:59.999999999Z");
  EXPECT_EQ(leap->ms, 1709256599999);
  EXPECT_FALSE(ParseTimestampText("2023-02-29T00:00:00Z").has_value());
  EXPECT_FALSE(ParseTimestampText("2026-04-25T00:00:00+24:00").has_value());
  EXPECT_FALSE(ParseTimestampText("").has_value());
}

// ---- Control messages and dead letters (§4.2, §4.12) ----

TEST(UsageControl, RefreshAndSupportRefreshAreRecognised) {
  EXPECT_EQ(NormalizeQueuePayload(R"({"refresh":true})", kNow).kind, PayloadKind::kControlRefresh);
  EXPECT_EQ(NormalizeQueuePayload(R"({"support_refresh":true})", kNow).kind,
            PayloadKind::kControlSupportRefresh);
  EXPECT_EQ(NormalizeQueuePayload(" { \"refresh\" : true }\n", kNow).kind,
            PayloadKind::kControlRefresh);
}

TEST(UsageControl, OtherOneKeyObjectsAreEvents) {
  UsageEvent e = Event(R"({"refresh":false})");
  EXPECT_EQ(e.model, "-");
  EXPECT_EQ(e.endpoint, "-");
  EXPECT_EQ(e.timestamp_ms, kNow);
  EXPECT_EQ(e.raw_json, R"({"refresh":false})");
  EXPECT_EQ(NormalizeQueuePayload(R"({"refresh":"true"})", kNow).kind, PayloadKind::kEvent);
  EXPECT_EQ(NormalizeQueuePayload(R"({"refresh":true,"x":1})", kNow).kind, PayloadKind::kEvent);
  EXPECT_EQ(NormalizeQueuePayload(R"({"reload":true})", kNow).kind, PayloadKind::kEvent);
}

TEST(UsageDeadLetter, NonObjectsAndInvalidJsonAreDeadLetters) {
  EXPECT_NE(DeadLetterError("[1,2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(DeadLetterError("42").find("got a number"), std::string::npos);
  EXPECT_NE(DeadLetterError("null").find("got null"), std::string::npos);
  EXPECT_NE(DeadLetterError("true").find("got a boolean"), std::string::npos);
  EXPECT_NE(DeadLetterError("").find("invalid JSON"), std::string::npos);
  EXPECT_NE(DeadLetterError("not json").find("invalid JSON"), std::string::npos);
  EXPECT_NE(DeadLetterError(R"({"a":1} {"b":2})").find("invalid JSON"), std::string::npos);
  EXPECT_NE(DeadLetterError(R"({"a":1,})").find("invalid JSON"), std::string::npos);
  // Go's decoder rejects numbers outside float64.
  EXPECT_NE(DeadLetterError(R"({"latency_ms":1e400})").find("float64"), std::string::npos);
}

TEST(UsageDeadLetter, JsonStringHoldingAnObjectIsUnwrapped) {
  UsageEvent e = Event(R"("{\"request_id\":\"r1\",\"model\":\"gpt-5\"}")");
  EXPECT_EQ(e.request_id, "r1");
  EXPECT_EQ(e.model, "gpt-5");
  EXPECT_EQ(NormalizeQueuePayload(R"("{\"refresh\":true}")", kNow).kind,
            PayloadKind::kControlRefresh);
  EXPECT_NE(DeadLetterError(R"("[1]")").find("JSON string"), std::string::npos);
  EXPECT_NE(DeadLetterError(R"("plain text")").find("JSON string"), std::string::npos);
  EXPECT_NE(DeadLetterError(R"("\"{}\"")").find("JSON string"), std::string::npos);
}

// ---- Field mapping (§4.3) ----

TEST(UsageMapping, OldCpaRecordWithoutNewerFields) {
  // v6.9.38 shape: no alias, fail, ttft, tiers, executor_type, client fields.
  UsageEvent e = Event(
      R"({"timestamp":"2026-03-01T10:00:00+08:00","latency_ms":900,"source":"sk-abcdef0123456789",)"
      R"("auth_index":"1a2b3c4d5e6f7081","tokens":{"input_tokens":100,"output_tokens":50,)"
      R"("reasoning_tokens":0,"cached_tokens":0,"total_tokens":150},"failed":true,)"
      R"("provider":"gemini","model":"gemini-2.5-pro","endpoint":"POST /v1beta/models/*action",)"
      R"("auth_type":"apikey","api_key":"client-key","request_id":"deadbeef"})");
  EXPECT_EQ(e.model, "gemini-2.5-pro");
  EXPECT_EQ(e.requested_model, std::nullopt);
  EXPECT_EQ(e.resolved_model, "gemini-2.5-pro");
  EXPECT_EQ(e.ttft_ms, std::nullopt);
  EXPECT_EQ(e.latency_ms, 900);
  EXPECT_EQ(e.fail_status_code, std::nullopt);
  EXPECT_EQ(e.fail_body, std::nullopt);
  EXPECT_EQ(e.fail_summary, std::nullopt);
  EXPECT_TRUE(e.failed);
  EXPECT_EQ(e.service_tier, std::nullopt);
  EXPECT_EQ(e.request_service_tier, std::nullopt);
  EXPECT_EQ(e.executor_type, std::nullopt);
  EXPECT_EQ(e.client_ip, std::nullopt);
  EXPECT_EQ(e.method, "POST");
  EXPECT_EQ(e.path, "/v1beta/models/*action");
  EXPECT_EQ(e.source, "m:sk-a...6789");
  EXPECT_EQ(e.source_hash, Sha256Hex("sk-abcdef0123456789"));
  EXPECT_EQ(e.api_key_hash, Sha256Hex("client-key"));
  EXPECT_EQ(e.event_hash,
            Sha256Hex("deadbeef|2026-03-01T02:00:00Z|POST /v1beta/models/*action|gemini-2.5-pro|"
                      "1a2b3c4d5e6f7081|" +
                      Sha256Hex("sk-abcdef0123456789") + "|100|50|0|0|true|900"));
}

TEST(UsageMapping, EndpointMethodAndPathFillEachOther) {
  UsageEvent from_parts = Event(R"({"method":"post","path":"/v1/messages"})");
  EXPECT_EQ(from_parts.endpoint, "POST /v1/messages");
  EXPECT_EQ(from_parts.method, "POST");
  UsageEvent from_endpoint = Event(R"({"endpoint":"DELETE  /v1/x extra"})");
  EXPECT_EQ(from_endpoint.method, "DELETE");
  EXPECT_EQ(from_endpoint.path, "/v1/x");
  EXPECT_EQ(from_endpoint.endpoint, "DELETE  /v1/x extra");
  UsageEvent lower_verb = Event(R"({"endpoint":"post /v1/x"})");
  EXPECT_EQ(lower_verb.method, std::nullopt);
  UsageEvent none = Event(R"({"endpoint":"  "})");
  EXPECT_EQ(none.endpoint, "-");
  EXPECT_EQ(none.path, std::nullopt);
}

TEST(UsageMapping, FirstPresentKeyWinsEvenWhenEmpty) {
  // "source" is present but empty, so api_key is not used as the source.
  UsageEvent e = Event(R"({"source":"","api_key":"k-123","alias":"","model":"gpt-5"})");
  EXPECT_EQ(e.source, std::nullopt);
  EXPECT_EQ(e.source_hash, std::nullopt);
  EXPECT_EQ(e.api_key_hash, Sha256Hex("k-123"));
  EXPECT_EQ(e.model, "gpt-5");  // empty alias falls back to the resolved model
  // Without "source", the api_key is the source.
  EXPECT_EQ(Event(R"({"api_key":" k-123 "})").source_hash, Sha256Hex("k-123"));
}

TEST(UsageMapping, ScalarsAreStringifiedLikeGo) {
  UsageEvent e = Event(R"({"request_id":12345,"auth_index":1.5,"provider":true,"model":"  m  "})");
  EXPECT_EQ(e.request_id, "12345");
  EXPECT_EQ(e.auth_index, "1.5");
  EXPECT_EQ(e.provider, "true");
  EXPECT_EQ(e.model, "m");
  EXPECT_EQ(Event(R"({"request_id":1e21})").request_id, "1e+21");
  EXPECT_EQ(Event(R"({"request_id":{"a":1}})").request_id, std::nullopt);
}

TEST(UsageMapping, FailedFollowsTheDocumentedFallbacks) {
  EXPECT_TRUE(Event(R"({"is_failed":true})").failed);
  EXPECT_TRUE(Event(R"({"success":false})").failed);
  EXPECT_FALSE(Event(R"({"ok":true,"status":500})").failed);
  EXPECT_TRUE(Event(R"({"status_code":429})").failed);
  EXPECT_TRUE(Event(R"({"httpStatus":"503"})").failed);
  EXPECT_FALSE(Event(R"({"status":200})").failed);
  EXPECT_TRUE(Event(R"({"error":""})").failed);
  EXPECT_FALSE(Event(R"({"error":null})").failed);
  EXPECT_FALSE(Event(R"({"failed":false,"error":"x"})").failed);
}

TEST(UsageMapping, FailureBodyStatusAndSummary) {
  UsageEvent e = Event(
      R"({"failed":true,"fail":{"status_code":401,"body":"  bad key sk-live0123456789abc  "},)"
      R"("response_headers":{"Set-Cookie":["s=1"],"X-Request-Id":["rq-1"]}})");
  EXPECT_EQ(e.fail_status_code, 401);
  EXPECT_EQ(e.fail_body,
            "bad key sk-live0123456789abc\n{\"Set-Cookie\":[\"s=1\"],\"X-Request-Id\":[\"rq-1\"]}");
  EXPECT_EQ(e.fail_summary,
            "bad key [redacted]\n{\"Set-Cookie\":[\"[redacted]\"],\"X-Request-Id\":[\"rq-1\"]}");
  EXPECT_EQ(e.header_trace_id, "rq-1");
  // Top-level aliases when there is no fail object; non-positive status -> NULL.
  UsageEvent top = Event(R"({"failed":true,"fail_status_code":0,"failBody":"boom"})");
  EXPECT_EQ(top.fail_status_code, std::nullopt);
  EXPECT_EQ(top.fail_body, "boom");
  EXPECT_EQ(top.fail_summary, "boom");
  // An explicit summary is redacted instead of the body.
  EXPECT_EQ(Event(R"({"fail_body":"raw","fail_summary":"mail bob@example.com"})").fail_summary,
            "mail b***@example.com");
  // Successes keep no headers in fail_body.
  UsageEvent ok = Event(R"({"failed":false,"fail":{"status_code":200,"body":""},)"
                        R"("response_headers":{"Retry-After":["1"]}})");
  EXPECT_EQ(ok.fail_body, std::nullopt);
  EXPECT_EQ(ok.fail_status_code, 200);
}

TEST(UsageMapping, ClientFieldsAreSanitisedAndLimited) {
  std::string ua(1500, 'a');
  UsageEvent e = Event(R"({"client_ip":" 10.0.0.1\t","x_forwarded_for":"a,\n\n b","user_agent":")" +
                       ua + "\"}");
  EXPECT_EQ(e.client_ip, "10.0.0.1");
  EXPECT_EQ(e.x_forwarded_for, "a, b");
  ASSERT_TRUE(e.user_agent.has_value());
  EXPECT_EQ(e.user_agent->size(), kUserAgentMaxBytes);
  EXPECT_EQ(e.user_agent->substr(kUserAgentMaxBytes - 3), "...");
  EXPECT_EQ(Event(R"({"clientIp":"::1"})").client_ip, "::1");
}

TEST(UsageMapping, SnapshotsAndProjectAliasesFromThePayload) {
  UsageEvent e = Event(R"({"accountSnapshot":"a@x.io","auth_file_snapshot":"f.json",)"
                       R"("projectId":"proj-1","auth_snapshot_at_ms":-5,"reasoningEffort":"low"})");
  EXPECT_EQ(e.account_snapshot, "a@x.io");
  EXPECT_EQ(e.auth_file_snapshot, "f.json");
  EXPECT_EQ(e.auth_project_id_snapshot, "proj-1");
  EXPECT_EQ(e.auth_snapshot_at_ms, std::nullopt);
  EXPECT_EQ(e.reasoning_effort, "low");
}

// ---- Tokens and cache accounting (§4.6) ----

TEST(UsageTokens, SubsetProvidersIncludeCacheInInput) {
  UsageEvent e =
      Event(R"({"provider":"openai","executor_type":"OpenAICompatExecutor",)"
            R"("tokens":{"input_tokens":1000,"output_tokens":300,"reasoning_tokens":100,)"
            R"("cached_tokens":600,"cache_read_tokens":600,"total_tokens":1300}})");
  EXPECT_EQ(e.cache_input_mode, kIncludedInInput);
  EXPECT_EQ(CompatibleCachedTokens(e), 0);
  EXPECT_EQ(e.normalized_cache_read_tokens, 600);
  EXPECT_EQ(e.normalized_uncached_input_tokens, 400);
  EXPECT_EQ(e.normalized_total_input_tokens, 1000);
  EXPECT_EQ(e.total_tokens, 1300);
}

TEST(UsageTokens, ClaudeKeepsCacheSeparateFromInput) {
  UsageEvent e = Event(R"({"provider":"claude","executor_type":"ClaudeExecutor",)"
                       R"("tokens":{"input_tokens":12,"output_tokens":850,"reasoning_tokens":300,)"
                       R"("cached_tokens":48000,"cache_read_tokens":48000,)"
                       R"("cache_creation_tokens":1200}})");
  EXPECT_EQ(e.cache_input_mode, kSeparateFromInput);
  EXPECT_EQ(e.normalized_uncached_input_tokens, 12);
  EXPECT_EQ(e.normalized_total_input_tokens, 49212);
  EXPECT_EQ(e.normalized_cache_creation_tokens, 1200);
  // No reported total: normalized total input + output + reasoning.
  EXPECT_EQ(e.total_tokens, 49212 + 850 + 300);
}

TEST(UsageTokens, GeminiIsIncludedAndLegacyCachedCountsAsCompatibleCached) {
  UsageEvent e = Event(R"({"provider":"vertex","tokens":{"input_tokens":500,"output_tokens":20,)"
                       R"("reasoning_tokens":30,"cached_tokens":200}})");
  EXPECT_EQ(e.cache_input_mode, kIncludedInInput);
  EXPECT_EQ(CompatibleCachedTokens(e), 200);
  EXPECT_EQ(e.normalized_cache_read_tokens, 200);
  EXPECT_EQ(e.normalized_uncached_input_tokens, 300);
  EXPECT_EQ(e.total_tokens, 550);
}

TEST(UsageTokens, ModeInferenceOrder) {
  // Explicit mode from tokens/usage/top level wins; invalid values are ignored.
  EXPECT_EQ(Event(R"({"provider":"claude","usage":{"cache_input_mode":"Included_In_Input"}})")
                .cache_input_mode,
            kIncludedInInput);
  EXPECT_EQ(Event(R"({"provider":"claude","tokens":{"cacheInputMode":"bogus"}})").cache_input_mode,
            kSeparateFromInput);
  // Executor beats provider; provider beats model.
  EXPECT_EQ(Event(R"({"executor_type":"CodexExecutor","provider":"claude"})").cache_input_mode,
            kIncludedInInput);
  EXPECT_EQ(Event(R"({"provider":"anthropic","model":"gpt-5"})").cache_input_mode,
            kSeparateFromInput);
  EXPECT_EQ(Event(R"({"provider":"acme","model":"claude-sonnet-4"})").cache_input_mode,
            kSeparateFromInput);
  EXPECT_EQ(Event(R"({"provider":"acme","model":"grok-4"})").cache_input_mode, kIncludedInInput);
  // Unknown everything: cache counters decide.
  EXPECT_EQ(Event(R"({"provider":"acme","model":"m","tokens":{"cache_creation_tokens":5}})")
                .cache_input_mode,
            kSeparateFromInput);
  EXPECT_EQ(Event(R"({"provider":"acme","model":"m"})").cache_input_mode, kIncludedInInput);
}

TEST(UsageTokens, AliasesContainersAndFirstNonZero) {
  UsageEvent e = Event(R"({"tokens":{"input_tokens":0,"output_tokens":7},)"
                       R"("usage":{"prompt_tokens":11,"completion_tokens":99,)"
                       R"("cache_read_input_tokens":3,"cache_write_input_tokens":4},)"
                       R"("reasoningTokens":"5","total":"x","cacheTokens":2.9})");
  EXPECT_EQ(e.input_tokens, 11);  // zero in tokens falls through to usage
  EXPECT_EQ(e.output_tokens, 7);  // first non-zero container wins
  EXPECT_EQ(e.reasoning_tokens, 5);
  EXPECT_EQ(e.cache_read_tokens, 3);
  EXPECT_EQ(e.cache_creation_tokens, 4);
  EXPECT_EQ(e.cache_tokens, 2);  // float64 truncated
  EXPECT_EQ(e.total_tokens, e.normalized_total_input_tokens.value() + 7 + 5);
  EXPECT_EQ(Event(R"({"input_tokens":"12.5"})").input_tokens, 0);
}

// ---- Service tier (§4.7) ----

TEST(UsageTier, CodexBillsTheRequestTierOthersTheResponseTier) {
  UsageEvent codex = Event(R"({"provider":"codex","service_tier":"priority",)"
                           R"("response_service_tier":"default"})");
  EXPECT_EQ(codex.service_tier, "priority");
  EXPECT_EQ(codex.request_service_tier, "priority");
  EXPECT_EQ(codex.response_service_tier, "default");
  UsageEvent openai = Event(R"({"provider":"openai","service_tier":"auto",)"
                            R"("response_service_tier":"flex"})");
  EXPECT_EQ(openai.service_tier, "flex");
  // v7.2.65-v7.2.73 request_service_tier is preferred over service_tier for the request tier.
  UsageEvent both = Event(R"({"executor_type":"CodexAutoExecutor","request_service_tier":"fast",)"
                          R"("service_tier":"auto"})");
  EXPECT_EQ(both.request_service_tier, "fast");
  EXPECT_EQ(both.service_tier, "fast");
  // Only a response tier: it is also copied into the empty request tier.
  UsageEvent response_only = Event(R"({"provider":"claude","response_service_tier":"batch"})");
  EXPECT_EQ(response_only.service_tier, "batch");
  EXPECT_EQ(response_only.request_service_tier, "batch");
  // Codex detection also looks at auth_type and the snapshot provider.
  EXPECT_EQ(
      Event(R"({"provider":"openai","auth_provider_snapshot":"codex","service_tier":"priority",)"
            R"("response_service_tier":"default"})")
          .service_tier,
      "priority");
}

// ---- Model identity (§4.5) ----

TEST(UsageModel, AnalyticsModelStripsOnlyReasoningSuffixes) {
  EXPECT_EQ(AnalyticsModel("gpt-5.5(high)"), "gpt-5.5");
  EXPECT_EQ(AnalyticsModel("deepseek-v4-flash(max)"), "deepseek-v4-flash");
  EXPECT_EQ(AnalyticsModel("gemini-2.5-pro(8192)"), "gemini-2.5-pro");
  EXPECT_EQ(AnalyticsModel("m(-1)"), "m");
  EXPECT_EQ(AnalyticsModel("m(XHigh)"), "m");
  EXPECT_EQ(AnalyticsModel("foo(custom)"), "foo(custom)");
  EXPECT_EQ(AnalyticsModel("(high)"), "(high)");
  EXPECT_EQ(AnalyticsModel("m()"), "m()");
}

// ---- Event hash (§4.10) ----

TEST(UsageHash, PreimageJoinsTheDocumentedFields) {
  UsageEvent e;
  e.request_id = "r";
  e.timestamp = "2026-04-25T00:00:00Z";
  e.endpoint = "POST /v1/x";
  e.model = "m";
  e.auth_index = "ai";
  e.source_hash = "sh";
  e.input_tokens = 1;
  e.output_tokens = 2;
  e.reasoning_tokens = 3;
  e.cached_tokens = 4;
  e.cache_tokens = 9;
  EXPECT_EQ(EventHashPreimage(e), "r|2026-04-25T00:00:00Z|POST /v1/x|m|ai|sh|1|2|3|9|false");
  e.latency_ms = 0;
  e.failed = true;
  EXPECT_EQ(EventHashPreimage(e), "r|2026-04-25T00:00:00Z|POST /v1/x|m|ai|sh|1|2|3|9|true|0");
  EXPECT_EQ(ComputeEventHash(e), Sha256Hex(EventHashPreimage(e)));
  // Printed with `printf '%s' 'r|2026-04-25T00:00:00Z|POST /v1/x|m|ai|sh|1|2|3|9|true|0' |
  // sha256sum`
  EXPECT_EQ(ComputeEventHash(e),
            "c6aeb4797179d45c2cae9272a1c43aee63c810672f1a89610ba4bd06098722f3");
}

TEST(UsageHash, DerivedValuesDoNotChangeTheHash) {
  std::string base = R"({"request_id":"r","timestamp":"2026-04-25T00:00:00Z","model":"m",)"
                     R"("tokens":{"input_tokens":5}})";
  std::string with_extras =
      R"({"request_id":"r","timestamp":"2026-04-25T00:00:00Z","model":"m",)"
      R"("tokens":{"input_tokens":5,"total_tokens":99},"service_tier":"x",)"
      R"("account_snapshot":"acct","response_headers":{"Retry-After":["1"]}})";
  EXPECT_EQ(Event(base).event_hash, Event(with_extras).event_hash);
  EXPECT_NE(Event(base).event_hash,
            Event(R"({"request_id":"r","timestamp":"2026-04-25T00:00:00Z","model":"m",)"
                  R"("tokens":{"input_tokens":5},"latency_ms":0})")
                .event_hash);
  // The same instant written in two zones hashes the same.
  EXPECT_EQ(Event(R"({"timestamp":"2026-04-25T08:00:00+08:00"})", 1).event_hash,
            Event(R"({"timestamp":"2026-04-25T00:00:00Z"})", 2).event_hash);
}

// ---- Response metadata (§4.8) ----

TEST(UsageMetadata, AllowListDropsCredentialsAndRedactsValues) {
  UsageEvent e = Event(
      R"({"response_headers":{"Authorization":["Bearer abcdefgh12345"],"Set-Cookie":["a=b"],)"
      R"("X-Ratelimit-Remaining-Tokens":["900"],"X-Goog-Token":["t"],"X-Secret-Thing":["s"],)"
      R"("X-Openai-Authorization-Error":["invalid_api_key"],"X-Openai-Ide-Error-Code":["E1"],)"
      R"("Retry-After":"30","X-Request-Id":["contact admin@example.com"],"Unknown":["u"]}})");
  EXPECT_EQ(
      e.response_metadata_json,
      R"({"errors":{"retry-after":"30","x-openai-authorization-error":"invalid_api_key",)"
      R"("x-openai-ide-error-code":"E1"},"trace":{"x-request-id":"contact a***@example.com"},)"
      R"("rate_limit":{"x-ratelimit-remaining-tokens":"900"}})");
  EXPECT_EQ(e.header_error_kind, "invalid_api_key");
  EXPECT_EQ(e.header_error_code, "E1");
  EXPECT_EQ(e.header_trace_id, "contact a***@example.com");
}

TEST(UsageMetadata, CodexExhaustedWindowGivesRecoveryTime) {
  UsageEvent e = Event(
      R"({"timestamp":1777075200000,"provider":"codex","response_headers":{)"
      R"("X-Codex-Primary-Used-Percent":["100"],"X-Codex-Primary-Reset-After-Seconds":["600"],)"
      R"("X-Codex-Secondary-Used-Percent":["40"],"X-Codex-Secondary-Reset-At":["1777111200"],)"
      R"("X-Codex-Plan-Type":["pro"],"Traceparent":["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]}})");
  EXPECT_EQ(e.header_quota_recover_at_ms, 1777075200000 + 600000);
  EXPECT_EQ(e.header_quota_used_percent, 100.0);
  EXPECT_EQ(e.header_quota_plan_type, "pro");
  EXPECT_EQ(e.header_trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  // Rate-limit-reached without an exhausted percentage: the latest window reset.
  UsageEvent reached = Event(
      R"({"timestamp":1777075200000,"response_headers":{"X-Codex-Rate-Limit-Reached-Type":["primary"],)"
      R"("X-Codex-Primary-Reset-After-Seconds":["60"],"X-Codex-Secondary-Reset-At":["1777111200"]}})");
  EXPECT_EQ(reached.header_quota_recover_at_ms, 1777111200000);
  EXPECT_EQ(reached.header_error_kind, "primary");
}

TEST(UsageMetadata, XaiFreeUsageExhaustionEstimatesRecovery) {
  UsageEvent e = Event(
      R"({"timestamp":1777075200000,"provider":"xai","failed":true,)"
      R"("fail":{"status_code":429,"body":"{\"code\":\"subscription:free-usage-exhausted\"}"}})");
  EXPECT_EQ(e.response_metadata_json,
            R"({"provider_usage":{"provider":"xai","reason":"free_usage_exhausted",)"
            R"("recover_at_estimated":true,"recover_at_ms":1777161600000}})");
  EXPECT_EQ(e.header_quota_recover_at_ms, 1777161600000);
}

TEST(UsageMetadata, CarriedMetadataIsReFilteredAndMerged) {
  UsageEvent e = Event(R"({"response_metadata":{"quota":{"x-codex-plan-type":"team",)"
                       R"("authorization":"x"},"trace":{"x-oai-request-id":"old"}},)"
                       R"("response_headers":{"X-Oai-Request-Id":["new"]}})");
  EXPECT_EQ(e.response_metadata_json,
            R"({"quota":{"x-codex-plan-type":"team"},"trace":{"x-oai-request-id":"new"}})");
  EXPECT_EQ(Event(R"({"response_headers":{}})").response_metadata_json, std::nullopt);
}

// ---- raw_json (§4.8) ----

TEST(UsageRawJson, KeysAreRedactedSortedAndGoEscaped) {
  UsageEvent e = Event(
      R"({"z":1,"api_key":"k","Api-Key":"k2","nested":{"Authorization":"B","my_secret_x":{"a":1},)"
      R"("refresh_token":null,"tokens":3},"fail":{"body":"key sk-abcdef123456","status_code":500},)"
      R"("fail_body":"Bearer abcdefghijk","client_ip":"1.2.3.4\n","html":"<a&b>\u2028",)"
      R"("n":[1.0,1.5e-7,1e21,100000000000000000000,-0.5]})");
  EXPECT_EQ(
      e.raw_json,
      R"({"Api-Key":"[redacted]","api_key":"[redacted]","client_ip":"1.2.3.4",)"
      R"("fail":{"body":"key [redacted]","status_code":500},"fail_body":"Bearer [redacted]",)"
      R"("html":"\u003ca\u0026b\u003e\u2028","n":[1,1.5e-7,1e+21,100000000000000000000,-0.5],)"
      R"("nested":{"Authorization":"[redacted]","my_secret_x":"[redacted]",)"
      R"("refresh_token":"[redacted]","tokens":3},"z":1})");
}

TEST(UsageRawJson, InvalidUtf8IsReplacedEverywhere) {
  std::string payload = "{\"model\":\"m\xff\",\"user_agent\":\"ua\xc3\"}";
  UsageEvent e = Event(payload);
  EXPECT_EQ(e.model, "m\xEF\xBF\xBD");
  EXPECT_EQ(e.user_agent, "ua\xEF\xBF\xBD");
  EXPECT_EQ(e.raw_json, "{\"model\":\"m\xEF\xBF\xBD\",\"user_agent\":\"ua\xEF\xBF\xBD\"}");
}

TEST(UsageRawJson, SafeRawJsonFallsBackToTextRedaction) {
  EXPECT_EQ(SafeRawJson(R"({"b":1,"token":"t"})"), R"({"b":1,"token":"[redacted]"})");
  EXPECT_EQ(SafeRawJson("not json Bearer abcdefghij"), "not json Bearer [redacted]");
}

// ---- Snapshot enrichment (§4.11) ----

TEST(UsageSnapshot, FillsOnlyMissingFieldsAndStampsTime) {
  UsageEvent e =
      Event(R"({"auth_index":"ai1","account_snapshot":"kept@x.io",)"
            R"("provider":"openai","service_tier":"priority","response_service_tier":"default"})");
  std::string hash = e.event_hash;
  EXPECT_EQ(e.service_tier, "default");
  AuthSnapshot snap{"acct@x.io", "Label", "codex-acct.json", "codex", "proj-9"};
  ApplyAuthSnapshot(e, snap, 1777000000000);
  EXPECT_EQ(e.account_snapshot, "kept@x.io");
  EXPECT_EQ(e.auth_label_snapshot, "Label");
  EXPECT_EQ(e.auth_file_snapshot, "codex-acct.json");
  EXPECT_EQ(e.auth_provider_snapshot, "codex");
  EXPECT_EQ(e.auth_project_id_snapshot, "proj-9");
  EXPECT_EQ(e.auth_snapshot_at_ms, 1777000000000);
  EXPECT_EQ(e.service_tier, "priority");  // the snapshot made it a Codex event
  EXPECT_EQ(e.event_hash, hash);
}

TEST(UsageSnapshot, SkipsEventsWithoutAuthIndexOrWithCompleteSnapshot) {
  AuthSnapshot snap{"a", "l", "f", "p", "proj"};
  UsageEvent no_index = Event(R"({"model":"m"})");
  ApplyAuthSnapshot(no_index, snap, 5);
  EXPECT_EQ(no_index.account_snapshot, std::nullopt);
  EXPECT_EQ(no_index.auth_snapshot_at_ms, std::nullopt);
  UsageEvent complete = Event(R"({"auth_index":"i","account_snapshot":"a1","project_id":"p1"})");
  ApplyAuthSnapshot(complete, snap, 5);
  EXPECT_EQ(complete.auth_label_snapshot, std::nullopt);
  EXPECT_EQ(complete.auth_snapshot_at_ms, std::nullopt);
  UsageEvent nothing_new = Event(R"({"auth_index":"i"})");
  ApplyAuthSnapshot(nothing_new, AuthSnapshot{}, 5);
  EXPECT_EQ(nothing_new.auth_snapshot_at_ms, std::nullopt);
}

TEST(UsageSnapshot, AuthFileEntryMapping) {
  auto s = AuthSnapshotFromAuthFileJson(
      R"({"name":"codex-user@example.com-plus.json","account":"sk-0123456789abcdef",)"
      R"("email":"user@example.com","type":"codex","gemini_virtual_project":"gp-1","auth_index":"x"})");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->account, "user@example.com");  // the secret-looking account value is skipped
  EXPECT_EQ(s->label, "codex-user@example.com-plus.json");
  EXPECT_EQ(s->file_name, "codex-user@example.com-plus.json");
  EXPECT_EQ(s->provider, "codex");
  EXPECT_EQ(s->project_id, "gp-1");
  auto bare = AuthSnapshotFromAuthFileJson(R"({"name":"f.json","provider":"gemini"})");
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->account, "f.json");
  EXPECT_FALSE(AuthSnapshotFromAuthFileJson("[1]").has_value());
}

}  // namespace
}  // namespace cpamp::usage
