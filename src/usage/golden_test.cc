// Replays tests/golden/usage/<case>.input.json through NormalizeQueuePayload and compares the
// result with <case>.expected.json: the payload kind and, for events, every usage_events column.
// How the expected values were derived is in tests/golden/usage/README.md.
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "usage/usage.h"

namespace cpamp::usage {
namespace {

namespace bj = boost::json;
namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename T>
bj::value Col(const std::optional<T>& v) {
  if (!v) return nullptr;
  return bj::value(*v);
}
bj::value Col(const std::string& v) { return bj::value(v); }
bj::value Col(int64_t v) { return bj::value(v); }
bj::value Col(bool v) { return bj::value(v); }

// Every usage_events column (except id) in declared order.
std::vector<std::pair<std::string, bj::value>> ToRow(const UsageEvent& e) {
  return {
      {"request_id", Col(e.request_id)},
      {"event_hash", Col(e.event_hash)},
      {"timestamp_ms", Col(e.timestamp_ms)},
      {"timestamp", Col(e.timestamp)},
      {"provider", Col(e.provider)},
      {"executor_type", Col(e.executor_type)},
      {"model", Col(e.model)},
      {"endpoint", Col(e.endpoint)},
      {"method", Col(e.method)},
      {"path", Col(e.path)},
      {"client_ip", Col(e.client_ip)},
      {"x_forwarded_for", Col(e.x_forwarded_for)},
      {"user_agent", Col(e.user_agent)},
      {"auth_type", Col(e.auth_type)},
      {"auth_index", Col(e.auth_index)},
      {"source", Col(e.source)},
      {"source_hash", Col(e.source_hash)},
      {"api_key_hash", Col(e.api_key_hash)},
      {"account_snapshot", Col(e.account_snapshot)},
      {"auth_label_snapshot", Col(e.auth_label_snapshot)},
      {"auth_file_snapshot", Col(e.auth_file_snapshot)},
      {"auth_provider_snapshot", Col(e.auth_provider_snapshot)},
      {"auth_project_id_snapshot", Col(e.auth_project_id_snapshot)},
      {"auth_snapshot_at_ms", Col(e.auth_snapshot_at_ms)},
      {"requested_model", Col(e.requested_model)},
      {"resolved_model", Col(e.resolved_model)},
      {"reasoning_effort", Col(e.reasoning_effort)},
      {"service_tier", Col(e.service_tier)},
      {"request_service_tier", Col(e.request_service_tier)},
      {"response_service_tier", Col(e.response_service_tier)},
      {"cache_input_mode", Col(e.cache_input_mode)},
      {"input_tokens", Col(e.input_tokens)},
      {"output_tokens", Col(e.output_tokens)},
      {"reasoning_tokens", Col(e.reasoning_tokens)},
      {"cached_tokens", Col(e.cached_tokens)},
      {"cache_tokens", Col(e.cache_tokens)},
      {"cache_read_tokens", Col(e.cache_read_tokens)},
      {"cache_creation_tokens", Col(e.cache_creation_tokens)},
      {"normalized_uncached_input_tokens", Col(e.normalized_uncached_input_tokens)},
      {"normalized_total_input_tokens", Col(e.normalized_total_input_tokens)},
      {"normalized_cache_read_tokens", Col(e.normalized_cache_read_tokens)},
      {"normalized_cache_creation_tokens", Col(e.normalized_cache_creation_tokens)},
      {"total_tokens", Col(e.total_tokens)},
      {"latency_ms", Col(e.latency_ms)},
      {"ttft_ms", Col(e.ttft_ms)},
      {"failed", Col(e.failed)},
      {"fail_status_code", Col(e.fail_status_code)},
      {"fail_summary", Col(e.fail_summary)},
      {"response_metadata_json", Col(e.response_metadata_json)},
      {"header_quota_recover_at_ms", Col(e.header_quota_recover_at_ms)},
      {"header_quota_used_percent", Col(e.header_quota_used_percent)},
      {"header_quota_plan_type", Col(e.header_quota_plan_type)},
      {"header_error_kind", Col(e.header_error_kind)},
      {"header_error_code", Col(e.header_error_code)},
      {"header_trace_id", Col(e.header_trace_id)},
      {"fail_body", Col(e.fail_body)},
      {"raw_json", Col(e.raw_json)},
      {"created_at_ms", Col(e.created_at_ms)},
  };
}

std::string KindName(PayloadKind k) {
  switch (k) {
    case PayloadKind::kEvent:
      return "event";
    case PayloadKind::kControlRefresh:
      return "control_refresh";
    case PayloadKind::kControlSupportRefresh:
      return "control_support_refresh";
    case PayloadKind::kDeadLetter:
      return "dead_letter";
  }
  return "?";
}

// Numbers compare by value (31 == 31.0); everything else by kind and value.
bool SameValue(const bj::value& a, const bj::value& b) {
  if (a.is_number() && b.is_number()) return a.to_number<double>() == b.to_number<double>();
  return a == b;
}

std::vector<fs::path> Cases() {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(CPAMP_USAGE_GOLDEN_DIR)) {
    std::string name = entry.path().filename().string();
    const std::string suffix = ".expected.json";
    if (name.size() > suffix.size() && name.ends_with(suffix)) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(UsageGolden, EveryCaseMatchesItsExpectedRow) {
  std::vector<fs::path> cases = Cases();
  ASSERT_GE(cases.size(), 10u) << "golden cases missing from " << CPAMP_USAGE_GOLDEN_DIR;
  for (const fs::path& expected_path : cases) {
    std::string name = expected_path.filename().string();
    name.resize(name.size() - std::string(".expected.json").size());
    SCOPED_TRACE("golden case " + name);
    bj::object expected = bj::parse(ReadFile(expected_path)).as_object();
    std::string payload = ReadFile(expected_path.parent_path() / (name + ".input.json"));
    ASSERT_FALSE(payload.empty());

    NormalizeResult r = NormalizeQueuePayload(payload, expected.at("now_ms").to_number<int64_t>());
    ASSERT_EQ(KindName(r.kind), std::string(expected.at("kind").as_string()));
    if (r.kind == PayloadKind::kDeadLetter) {
      EXPECT_FALSE(r.dead_letter_error.empty());
      continue;
    }
    if (r.kind != PayloadKind::kEvent) continue;

    const bj::object& want = expected.at("row").as_object();
    auto row = ToRow(r.event);
    EXPECT_EQ(want.size(), row.size()) << "expected row must list every column";
    for (const auto& [column, got] : row) {
      auto it = want.find(column);
      if (it == want.end()) {
        ADD_FAILURE() << "column " << column << " missing from " << expected_path;
        continue;
      }
      EXPECT_TRUE(SameValue(it->value(), got))
          << "column " << column << "\n  expected: " << bj::serialize(it->value())
          << "\n  actual:   " << bj::serialize(got);
    }
    // The stored hash is the hash of the stored columns.
    EXPECT_EQ(r.event.event_hash, ComputeEventHash(r.event));
  }
}

}  // namespace
}  // namespace cpamp::usage
