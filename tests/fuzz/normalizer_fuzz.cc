// libFuzzer harness for the usage-record normaliser (src/usage/usage.h).
//
// Every input is one queue item. Invariants checked on every input:
//   1. No crash, leak or undefined behaviour (ASan/UBSan).
//   2. A dead letter carries a non-empty reason; a control message carries no event.
//   3. An event is a storable row: event_hash is 64 lowercase hex chars equal to
//      ComputeEventHash(event); model and endpoint are non-empty; no nullable text column is an
//      empty string; every text column is valid UTF-8; length limits hold (client fields,
//      fail_summary); timestamp is the RFC3339Nano text of timestamp_ms; the cache mode is one of
//      the two valid values and the normalized columns are set; raw_json is JSON and
//      response_metadata_json is a JSON object.
//   4. Normalising the same input twice gives the same event (pure function).
//   5. The helpers run on the raw bytes too: RedactFailureText caps its output and is valid UTF-8,
//      SanitizeClientField respects its limit, MaskSource/SafeRawJson/AuthSnapshot never crash.
// Built by tests/fuzz/run-fuzzers.sh from this file and src/usage/*.cc (non-test); needs
// -lcrypto. Boost.JSON is compiled into this translation unit (header-only mode).
#include <boost/json/src.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "usage/usage.h"

namespace {

using cpamp::usage::NormalizeQueuePayload;
using cpamp::usage::NormalizeResult;
using cpamp::usage::PayloadKind;
using cpamp::usage::UsageEvent;

constexpr int64_t kNow = 1790000000000;

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "invariant failed: %s [%.*s]\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

#define FUZZ_CHECK(cond, detail)      \
  do {                                \
    if (!(cond)) Fail(#cond, detail); \
  } while (0)

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t r = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      r = (r << 6) | (cc & 0x3F);
    }
    if ((n == 2 && r < 0x80) || (n == 3 && r < 0x800) || (n == 4 && r < 0x10000) || r > 0x10FFFF ||
        (r >= 0xD800 && r <= 0xDFFF)) {
      return false;
    }
    i += n;
  }
  return true;
}

void CheckText(const std::optional<std::string>& col, const char* name, size_t max_bytes = 0) {
  if (!col) return;
  FUZZ_CHECK(!col->empty(), name);
  FUZZ_CHECK(ValidUtf8(*col), name);
  if (max_bytes != 0) FUZZ_CHECK(col->size() <= max_bytes, name);
}

bool IsLowerHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

void CheckEvent(const UsageEvent& e) {
  FUZZ_CHECK(IsLowerHex64(e.event_hash), e.event_hash);
  FUZZ_CHECK(e.event_hash == cpamp::usage::ComputeEventHash(e), e.event_hash);
  FUZZ_CHECK(!e.model.empty() && ValidUtf8(e.model), e.model);
  FUZZ_CHECK(e.endpoint && !e.endpoint->empty(), "endpoint");
  FUZZ_CHECK(!e.timestamp.empty() && e.timestamp.back() == 'Z', e.timestamp);
  FUZZ_CHECK(
      e.timestamp.substr(0, 19) == cpamp::usage::FormatTimestampMs(e.timestamp_ms).substr(0, 19),
      e.timestamp);
  FUZZ_CHECK(e.created_at_ms == kNow, "created_at_ms");
  CheckText(e.request_id, "request_id");
  CheckText(e.provider, "provider");
  CheckText(e.executor_type, "executor_type");
  CheckText(e.endpoint, "endpoint");
  CheckText(e.method, "method");
  CheckText(e.path, "path");
  CheckText(e.client_ip, "client_ip", cpamp::usage::kClientIpMaxBytes);
  CheckText(e.x_forwarded_for, "x_forwarded_for", cpamp::usage::kForwardedForMaxBytes);
  CheckText(e.user_agent, "user_agent", cpamp::usage::kUserAgentMaxBytes);
  CheckText(e.auth_type, "auth_type");
  CheckText(e.auth_index, "auth_index");
  CheckText(e.source, "source");
  CheckText(e.source_hash, "source_hash");
  CheckText(e.api_key_hash, "api_key_hash");
  CheckText(e.account_snapshot, "account_snapshot");
  CheckText(e.auth_label_snapshot, "auth_label_snapshot");
  CheckText(e.auth_file_snapshot, "auth_file_snapshot");
  CheckText(e.auth_provider_snapshot, "auth_provider_snapshot");
  CheckText(e.auth_project_id_snapshot, "auth_project_id_snapshot");
  CheckText(e.requested_model, "requested_model");
  CheckText(e.resolved_model, "resolved_model");
  CheckText(e.reasoning_effort, "reasoning_effort");
  CheckText(e.service_tier, "service_tier");
  CheckText(e.request_service_tier, "request_service_tier");
  CheckText(e.response_service_tier, "response_service_tier");
  CheckText(e.fail_summary, "fail_summary", cpamp::usage::kFailSummaryMaxBytes + 3);
  CheckText(e.response_metadata_json, "response_metadata_json");
  CheckText(e.header_quota_plan_type, "header_quota_plan_type");
  CheckText(e.header_error_kind, "header_error_kind");
  CheckText(e.header_error_code, "header_error_code");
  CheckText(e.header_trace_id, "header_trace_id");
  CheckText(e.fail_body, "fail_body");
  CheckText(e.raw_json, "raw_json");
  FUZZ_CHECK(e.source.has_value() == e.source_hash.has_value(), "source/source_hash");
  FUZZ_CHECK(!e.fail_status_code || *e.fail_status_code > 0, "fail_status_code");
  FUZZ_CHECK(!e.auth_snapshot_at_ms || *e.auth_snapshot_at_ms > 0, "auth_snapshot_at_ms");
  FUZZ_CHECK(!e.header_quota_recover_at_ms || *e.header_quota_recover_at_ms > 0, "recover_at");
  FUZZ_CHECK(e.cache_input_mode == cpamp::usage::kIncludedInInput ||
                 e.cache_input_mode == cpamp::usage::kSeparateFromInput,
             "cache_input_mode");
  FUZZ_CHECK(e.normalized_uncached_input_tokens && e.normalized_total_input_tokens &&
                 e.normalized_cache_read_tokens && e.normalized_cache_creation_tokens,
             "normalized columns");
  FUZZ_CHECK(*e.normalized_uncached_input_tokens >= 0 && *e.normalized_cache_creation_tokens >= 0,
             "normalized non-negative");
  boost::system::error_code ec;
  FUZZ_CHECK(e.raw_json.has_value(), "raw_json");
  boost::json::parse_options opts;
  opts.max_depth = 1100;
  (void)boost::json::parse(*e.raw_json, ec, {}, opts);
  FUZZ_CHECK(!ec, *e.raw_json);
  if (e.response_metadata_json) {
    boost::json::value md = boost::json::parse(*e.response_metadata_json, ec);
    FUZZ_CHECK(!ec && md.is_object(), *e.response_metadata_json);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  NormalizeResult r = NormalizeQueuePayload(input, kNow);
  switch (r.kind) {
    case PayloadKind::kDeadLetter:
      FUZZ_CHECK(!r.dead_letter_error.empty(), input);
      break;
    case PayloadKind::kControlRefresh:
    case PayloadKind::kControlSupportRefresh:
      FUZZ_CHECK(r.event.event_hash.empty(), input);
      break;
    case PayloadKind::kEvent: {
      CheckEvent(r.event);
      NormalizeResult again = NormalizeQueuePayload(input, kNow);
      FUZZ_CHECK(again.kind == PayloadKind::kEvent && again.event == r.event, input);
      cpamp::usage::UsageEvent enriched = r.event;
      cpamp::usage::ApplyAuthSnapshot(enriched, {"acct", "label", "file.json", "codex", "proj"},
                                      kNow);
      FUZZ_CHECK(enriched.event_hash == r.event.event_hash, "enrichment changed the hash");
      break;
    }
  }

  std::string summary = cpamp::usage::RedactFailureText(input);
  FUZZ_CHECK(summary.size() <= cpamp::usage::kFailSummaryMaxBytes + 3, "summary size");
  FUZZ_CHECK(ValidUtf8(summary), "summary utf8");
  std::string ip = cpamp::usage::SanitizeClientField(input, cpamp::usage::kClientIpMaxBytes);
  FUZZ_CHECK(ip.size() <= cpamp::usage::kClientIpMaxBytes && ValidUtf8(ip), ip);
  (void)cpamp::usage::MaskSource(input);
  FUZZ_CHECK(ValidUtf8(cpamp::usage::SafeRawJson(input)), "SafeRawJson utf8");
  (void)cpamp::usage::AuthSnapshotFromAuthFileJson(input);
  (void)cpamp::usage::ParseTimestampText(input);
  return 0;
}
