// Test helpers for collector_test: a temporary directory and generated CPA usage records.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace cpamp::collector::testing_util {

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "cpamp_collector_test_XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A small CPA usage record with request id "req-<i>" and input_tokens 100+i.
inline std::string Record(int i, const std::string& auth_index = "") {
  std::string r = R"({"timestamp":"2026-08-01T09:41:07.5+08:00","latency_ms":)" +
                  std::to_string(1000 + i) +
                  R"(,"source":"user@example.com","provider":"codex","model":"gpt-5",)"
                  R"("endpoint":"POST /v1/responses","auth_type":"oauth","request_id":"req-)" +
                  std::to_string(i) + R"(","tokens":{"input_tokens":)" + std::to_string(100 + i) +
                  R"(,"output_tokens":20,"reasoning_tokens":0,"cached_tokens":0,"total_tokens":)" +
                  std::to_string(120 + i) + R"(},"failed":false)";
  if (!auth_index.empty()) r += R"(,"auth_index":")" + auth_index + R"(")";
  return r + "}";
}

// A realistic ~1.7 KB Codex record (cpa-protocol.md §1.6 example C) with a varying request id.
inline std::string CodexRecord(int i) {
  return R"({"timestamp":"2026-08-01T09:41:07.318204551+08:00","latency_ms":)" +
         std::to_string(8000 + i % 997) +
         R"(,"ttft_ms":1187,"source":"user@example.com","auth_index":"3fa85f6457170562",)"
         R"("client_ip":"172.18.0.1","x_forwarded_for":"","user_agent":"codex_cli_rs/0.130.0",)"
         R"("tokens":{"input_tokens":)" +
         std::to_string(20000 + i % 5000) +
         R"(,"output_tokens":612,"reasoning_tokens":384,"cached_tokens":23040,)"
         R"("cache_read_tokens":23040,"cache_read_tokens_present":true,"cache_creation_tokens":0,)"
         R"("total_tokens":25125},"failed":false,"fail":{"status_code":200,"body":""},)"
         R"("response_headers":{"Content-Type":["text/event-stream"],"X-Codex-Plan-Type":["plus"],)"
         R"("X-Codex-Primary-Used-Percent":["12"],"X-Codex-Primary-Window-Minutes":["300"]},)"
         R"("provider":"codex","executor_type":"CodexExecutor","model":"gpt-5.5",)"
         R"("endpoint":"POST /v1/responses","auth_type":"oauth",)"
         R"("api_key":"sk-team-alpha-7c1d","request_id":"r-)" +
         std::to_string(i) +
         R"(","reasoning_effort":"high","service_tier":"auto","response_service_tier":"default"})";
}

}  // namespace cpamp::collector::testing_util
