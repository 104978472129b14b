#include "base/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>
#include <vector>

namespace cpamp {
namespace {

std::mutex g_secrets_mu;
std::vector<std::string>& Secrets() {
  static std::vector<std::string> secrets;
  return secrets;
}

// Formats with the parent's formatter, scrubs registered secrets, writes to stderr unbuffered.
class RedactingStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string line = RedactSecrets(std::string_view(formatted.data(), formatted.size()));
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

}  // namespace

void InitLogging(bool verbose) {
  auto sink = std::make_shared<RedactingStderrSink>();
  auto logger = std::make_shared<spdlog::logger>("cpamp", sink);
  logger->set_pattern("%Y/%m/%d %H:%M:%S %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void RegisterSecret(std::string_view secret) {
  if (secret.size() < 6) return;
  std::lock_guard lock(g_secrets_mu);
  for (const auto& s : Secrets()) {
    if (s == secret) return;
  }
  Secrets().emplace_back(secret);
}

std::string RedactSecrets(std::string_view text) {
  std::string out(text);
  std::lock_guard lock(g_secrets_mu);
  for (const auto& s : Secrets()) {
    size_t pos = 0;
    while ((pos = out.find(s, pos)) != std::string::npos) {
      out.replace(pos, s.size(), "[REDACTED]");
      pos += 10;
    }
  }
  return out;
}

}  // namespace cpamp
