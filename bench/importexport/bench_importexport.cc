// Usage data import/export throughput (bench/importexport).
//
// Phases, each timed: (1) normalise N generated CPA queue records and write them with the
// shared EventStore into a source database (the collector's insert path); (2) export the source
// to NDJSON (ExportToFile, range = everything); (3) import that file into an empty database in a
// forked child, so the child's own peak RSS (wait4) shows the importer's memory, not the
// generator's; (4) re-import the same file (every row a dedup skip), also in a child; (5) export
// the imported database again and compare the bytes with (2).
// The data is realistic in shape: 14 models (some with reasoning suffixes), 60 accounts, 5
// endpoints, failures with headers every ~37 requests, 30 days of timestamps.
//
// Usage: bench_importexport [events=1000000] [work_dir=/tmp]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "usage/usage_data.h"

namespace {

using cpamp::usage::EventStore;
using cpamp::usage::NormalizeQueuePayload;
using cpamp::usage::UsageEvent;

constexpr const char* kModels[] = {"gpt-5.5",           "gpt-5.5(high)",  "gpt-5.4-mini",
                                   "gpt-5.4-mini(low)", "gpt-5.3-codex",  "claude-sonnet-4",
                                   "claude-opus-4.1",   "claude-haiku-4", "gemini-2.5-pro",
                                   "gemini-2.5-flash",  "grok-4",         "kimi-k2",
                                   "deepseek-v4(max)",  "qwen3-coder"};
constexpr const char* kEndpoints[] = {
    "POST /v1/responses", "POST /v1/chat/completions", "POST /v1/messages",
    "POST /v1beta/models/gemini:generateContent", "POST /v1/completions"};
constexpr int kAccounts = 60;
constexpr int64_t kStartMs = 1785000000000;  // 2026-07-25

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double CpuSeconds(const rusage& ru) {
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return CpuSeconds(ru);
}

long PeakRssKb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

std::string Record(int64_t i) {
  const int m = static_cast<int>(i % 14);
  const int acct = static_cast<int>((i * 7) % kAccounts);
  const bool claude = m >= 5 && m <= 7;
  const int64_t ts = kStartMs + i * 2592;  // 1M events over 30 days
  std::string s;
  s.reserve(900);
  s += "{\"timestamp\":" + std::to_string(ts);
  s += ",\"request_id\":\"req-" + std::to_string(i) + "\"";
  std::string model = kModels[m];
  std::string base = model.substr(0, model.find('('));
  s += ",\"model\":\"" + base + "\"";
  if (base != model) s += ",\"alias\":\"" + model + "\"";
  s += ",\"endpoint\":\"" + std::string(kEndpoints[(i + m) % 5]) + "\"";
  s += ",\"source\":\"account" + std::to_string(acct) + "@example.com\"";
  s += ",\"api_key\":\"sk-client-" + std::to_string(i % 9) + "abcdefghijklmnopqrstuvwx\"";
  s += ",\"auth_index\":\"" + std::to_string(1000 + acct) + "\"";
  s += ",\"provider\":\"" +
       std::string(claude ? "claude" : (m >= 8 && m <= 9 ? "gemini" : "codex")) + "\"";
  s += ",\"executor_type\":\"" + std::string(claude ? "ClaudeExecutor" : "CodexExecutor") + "\"";
  s += ",\"auth_file_snapshot\":\"codex-account" + std::to_string(acct) + "-plus.json\"";
  s += ",\"account_snapshot\":\"account" + std::to_string(acct) + "@example.com\"";
  if (i % 5 == 0) s += ",\"service_tier\":\"priority\"";
  s += ",\"reasoning_effort\":\"" + std::string(i % 3 == 0 ? "high" : "medium") + "\"";
  s += ",\"latency_ms\":" + std::to_string(300 + (i * 37) % 9000);
  s += ",\"ttft_ms\":" + std::to_string(80 + (i * 13) % 900);
  s += ",\"client_ip\":\"10.1." + std::to_string(i % 200) + ".7\"";
  s += ",\"tokens\":{\"input_tokens\":" + std::to_string(2000 + (i * 131) % 60000);
  s += ",\"output_tokens\":" + std::to_string(50 + (i * 17) % 3000);
  s += ",\"reasoning_tokens\":" + std::to_string((i % 4) * 128);
  if (claude) {
    s += ",\"cache_read_tokens\":" + std::to_string((i * 53) % 20000);
    s += ",\"cache_creation_tokens\":" + std::to_string((i * 11) % 2000);
  } else {
    s += ",\"cached_tokens\":" + std::to_string((i * 97) % 30000);
  }
  s += "}";
  if (i % 37 == 5) {
    s +=
        ",\"failed\":true,\"fail\":{\"status_code\":429,\"body\":\"{\\\"error\\\":{\\\"message\\\":"
        "\\\"Rate limit reached for account" +
        std::to_string(acct) + "@example.com\\\"}}\"}";
    s += ",\"response_headers\":{\"X-Codex-Primary-Used-Percent\":[\"97.5\"],\"Retry-After\":[\"" +
         std::to_string(i % 60) + "\"],\"X-Request-Id\":[\"trace-" + std::to_string(i) + "\"]}";
  }
  s += "}";
  return s;
}

struct ChildResult {
  double seconds = 0;
  double cpu_seconds = 0;
  long peak_rss_kb = 0;
  int exit_code = -1;
};

// Runs fn() in a forked child; returns its wall time and peak RSS.
template <typename F>
ChildResult InChild(F&& fn) {
  std::fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int rc = fn();
    std::fflush(stdout);
    _exit(rc);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  ChildResult r;
  r.seconds = Seconds(start);
  r.peak_rss_kb = ru.ru_maxrss;
  r.cpu_seconds = CpuSeconds(ru);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : 1'000'000;
  const std::filesystem::path work =
      std::filesystem::path(argc > 2 ? argv[2] : "/tmp") / "cpamp_bench_importexport";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  const std::string src_db = (work / "source.sqlite").string();
  const std::string dst_db = (work / "imported.sqlite").string();
  const std::string export1 = (work / "export1.jsonl").string();
  const std::string export2 = (work / "export2.jsonl").string();
  cpamp::usage::ExportRange everything;
  everything.from_ms = 0;

  std::printf("events: %lld\n", static_cast<long long>(n));
  {
    auto db = cpamp::db::Database::Open(src_db);
    if (!db.ok()) {
      std::fprintf(stderr, "open: %s\n", db.status().message().c_str());
      return 1;
    }
    EventStore store(**db);
    std::vector<UsageEvent> batch;
    batch.reserve(cpamp::usage::kImportBatchRows);
    double normalize_s = 0;
    double insert_s = 0;
    double insert_cpu = 0;
    for (int64_t i = 0; i < n; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      cpamp::usage::NormalizeResult r = NormalizeQueuePayload(Record(i), kStartMs);
      normalize_s += Seconds(t0);
      batch.push_back(std::move(r.event));
      if (batch.size() == cpamp::usage::kImportBatchRows || i + 1 == n) {
        auto t1 = std::chrono::steady_clock::now();
        const double c1 = SelfCpuSeconds();
        auto counts = store.InsertBatch(batch);
        insert_s += Seconds(t1);
        insert_cpu += SelfCpuSeconds() - c1;
        if (!counts.ok()) {
          std::fprintf(stderr, "insert: %s\n", counts.status().message().c_str());
          return 1;
        }
        batch.clear();
      }
    }
    std::printf("normalize (generator)   : %8.2f s  %10.0f events/s\n", normalize_s,
                n / normalize_s);
    std::printf(
        "EventStore insert       : %8.2f s  %10.0f rows/s (5000 rows/tx); CPU %.2f s = "
        "%.0f rows/CPU-s\n",
        insert_s, n / insert_s, insert_cpu, n / insert_cpu);
    auto t = std::chrono::steady_clock::now();
    const double c0 = SelfCpuSeconds();
    auto stats = cpamp::usage::ExportToFile(**db, export1, everything);
    const double s = Seconds(t);
    const double export_cpu = SelfCpuSeconds() - c0;
    if (!stats.ok()) {
      std::fprintf(stderr, "export: %s\n", stats.status().message().c_str());
      return 1;
    }
    std::printf(
        "export (NDJSON)         : %8.2f s  %10.0f rows/s  %.1f MiB (%.0f B/row); CPU %.2f s\n", s,
        stats->rows / s, stats->bytes / 1048576.0,
        static_cast<double>(stats->bytes) / static_cast<double>(stats->rows), export_cpu);
  }
  std::printf("parent peak RSS so far  : %ld KiB\n", PeakRssKb());

  auto import_once = [&](const char* label) {
    ChildResult r = InChild([&] {
      auto db = cpamp::db::Database::Open(dst_db);
      if (!db.ok()) return 2;
      auto report = cpamp::usage::ImportFile(**db, export1);
      if (!report.ok() || !report->status.ok()) return 3;
      std::printf("  %s: added %lld skipped %lld failed %lld\n", label,
                  static_cast<long long>(report->added), static_cast<long long>(report->skipped),
                  static_cast<long long>(report->failed));
      return 0;
    });
    std::printf(
        "%-24s: %8.2f s  %10.0f events/s  CPU %.2f s = %.0f events/CPU-s  peak RSS %ld KiB"
        "  (exit %d)\n",
        label, r.seconds, n / r.seconds, r.cpu_seconds, n / r.cpu_seconds, r.peak_rss_kb,
        r.exit_code);
    return r.exit_code == 0;
  };
  if (!import_once("import into empty db")) return 1;
  if (!import_once("re-import (all skipped)")) return 1;

  {
    auto db = cpamp::db::Database::Open(dst_db);
    if (!db.ok()) return 1;
    auto t = std::chrono::steady_clock::now();
    auto stats = cpamp::usage::ExportToFile(**db, export2, everything);
    const double s = Seconds(t);
    if (!stats.ok()) return 1;
    std::printf("export of imported db   : %8.2f s  %10.0f rows/s\n", s, stats->rows / s);
  }
  const bool same = std::filesystem::file_size(export1) == std::filesystem::file_size(export2) &&
                    std::system(("cmp -s " + export1 + " " + export2).c_str()) == 0;
  std::printf("round trip byte-identical: %s\n", same ? "yes" : "NO");
  std::printf("database size after import: %.1f MiB\n",
              std::filesystem::file_size(dst_db) / 1048576.0);
  std::filesystem::remove_all(work);
  return same ? 0 : 1;
}
