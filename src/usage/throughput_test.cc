// Normalises 100,000 realistic records and logs events/s (no timing assertion: shared CI
// machines vary). The functional assertions check that every record became a distinct event.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <unordered_set>
#include <vector>

#include "usage/usage.h"

namespace cpamp::usage {
namespace {

// Example C of cpa-protocol.md §1.6 with a varying request id, latency and token counts.
std::string CodexRecord(int i) {
  return R"({"timestamp":"2026-08-01T09:41:07.318204551+08:00","latency_ms":)" +
         std::to_string(8000 + i % 997) +
         R"(,"ttft_ms":1187,"source":"user@example.com","auth_index":"3fa85f6457170562",)"
         R"("access_token_sha256":"9c1e5b0d2f7a4e8b6c3d1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807",)"
         R"("client_ip":"172.18.0.1","x_forwarded_for":"","user_agent":"codex_cli_rs/0.130.0",)"
         R"("tokens":{"input_tokens":)" +
         std::to_string(20000 + i % 5000) +
         R"(,"output_tokens":612,"reasoning_tokens":384,"cached_tokens":23040,)"
         R"("cache_read_tokens":23040,"cache_read_tokens_present":true,"cache_creation_tokens":0,)"
         R"("total_tokens":25125},"failed":false,"generate":true,"fail":{"status_code":200,"body":""},)"
         R"("response_headers":{"Content-Type":["text/event-stream"],"X-Codex-Plan-Type":["plus"],)"
         R"("X-Codex-Primary-Reset-After-Seconds":["14400"],"X-Codex-Primary-Used-Percent":["12"],)"
         R"("X-Codex-Primary-Window-Minutes":["300"],"X-Codex-Secondary-Used-Percent":["31"],)"
         R"("X-Codex-Secondary-Window-Minutes":["10080"],"X-Oai-Request-Id":["req_8d1f0c"]},)"
         R"("accounting_version":2,"token_breakdown":{"schema_version":2,"quality":"complete",)"
         R"("total_tokens":25125,"input":{"total_tokens":24513,"uncached_tokens":1473,)"
         R"("cache_read_tokens":23040,"cache_write_tokens":0},"output":{"total_tokens":612,)"
         R"("non_reasoning_tokens":228,"reasoning_tokens":384},"unclassified_tokens":0},)"
         R"("provider":"codex","executor_type":"CodexExecutor","model":"gpt-5.5",)"
         R"json("alias":"gpt-5.5(high)","endpoint":"POST /v1/responses","auth_type":"oauth",)json"
         R"("api_key":"sk-team-alpha-7c1d","request_id":")" +
         std::to_string(i) +
         R"(","reasoning_effort":"high","service_tier":"auto","response_service_tier":"default"})";
}

TEST(UsageThroughput, NormalisesOneHundredThousandRecords) {
  constexpr int kRecords = 100'000;
  std::vector<std::string> payloads;
  payloads.reserve(kRecords);
  size_t bytes = 0;
  for (int i = 0; i < kRecords; ++i) {
    payloads.push_back(CodexRecord(i));
    bytes += payloads.back().size();
  }
  std::vector<std::string> hashes;
  hashes.reserve(kRecords);
  // Thread CPU time as well as wall time: the per-core rate is what matters and stays readable
  // when the machine is busy with other builds.
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  double cpu_start = cpu_now();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRecords; ++i) {
    NormalizeResult r = NormalizeQueuePayload(payloads[i], 1790000000000);
    ASSERT_EQ(r.kind, PayloadKind::kEvent);
    hashes.push_back(std::move(r.event.event_hash));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double cpu_secs = cpu_now() - cpu_start;
  std::printf(
      "[ throughput ] %d records (%.0f bytes avg): wall %.3f s = %.0f events/s, "
      "thread CPU %.3f s = %.0f events/s per core\n",
      kRecords, static_cast<double>(bytes) / kRecords, secs, kRecords / secs, cpu_secs,
      kRecords / cpu_secs);
  std::unordered_set<std::string> unique(hashes.begin(), hashes.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kRecords));
}

}  // namespace
}  // namespace cpamp::usage
