// Start-up and shutdown order (docs/architecture.md):
//   1. load config (fatal "load config: …")
//   2. process lock on <canonical db path>.manager.lock (a second server refuses to start)
//   3. data key (load or create), secret box
//   4. open SQLite + ordered migrations
//   5. bootstrap: admin credential seeding, legacy key encryption, bootstrap state
//   6. HTTP listener (prints the bound address), then background workers (collector)
// Shutdown reverses it: stop workers, drain HTTP for up to 10 s, close the database, release
// the lock. Nothing on the start-up path grows with the amount of stored data.

#include "app/app.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "analytics/analytics.h"
#include "api/api.h"
#include "base/clock.h"
#include "base/log.h"
#include "collector/collector.h"
#include "config/config.h"
#include "db/db.h"
#include "net/http.h"
#include "pricing/pricing.h"
#include "security/security.h"
#include "setup/setup.h"
#include "usage/usage_data.h"

namespace cpamp::app {

namespace {
constexpr int64_t kShutdownGraceMs = 10'000;

// Expires idle import sessions: every min(TTL/4, 15 min), at least every second.
class ImportSessionJanitor {
 public:
  ImportSessionJanitor(usage::ImportSessionManager& sessions, int ttl_minutes)
      : sessions_(sessions),
        period_ms_(std::clamp<int64_t>(int64_t{ttl_minutes} * 60'000 / 4, 1'000, 15 * 60'000)),
        thread_([this] { Loop(); }) {}
  ~ImportSessionJanitor() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (
        !cv_.wait_for(lock, std::chrono::milliseconds(period_ms_), [this] { return stopping_; })) {
      lock.unlock();
      sessions_.CleanupExpired();
      lock.lock();
    }
  }
  usage::ImportSessionManager& sessions_;
  const int64_t period_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};
constexpr int64_t kRollupPollMs = 5'000;  // rollups trail ingest by at most this (reads stay exact)
}  // namespace

int Serve() {
  auto& clock = SystemClock::Instance();
  const int64_t started_at = clock.NowMs();
  auto cfg = config::Load(config::Environment::FromProcess());
  if (!cfg.ok()) {
    spdlog::error("load config: {}", cfg.status().message());
    return 1;
  }
  auto listen = config::ParseListenAddress(cfg->http_addr);
  if (!listen.ok()) {
    spdlog::error("load config: {}", listen.status().message());
    return 1;
  }
  auto lock = db::ProcessLock::Acquire(cfg->db_path);
  if (!lock.ok()) {
    spdlog::error("acquire manager database process lock: {}", lock.status().message());
    return 1;
  }
  auto key = security::LoadOrCreateDataKey({cfg->data_key_secret, cfg->data_key_path});
  if (!key.ok()) {
    spdlog::error("load data key: {}", key.status().message());
    return 1;
  }
  security::SecretBox box(key->key);
  auto canonical = db::CanonicalDbPath(cfg->db_path);
  auto database = db::Database::Open(canonical.ok() ? *canonical : cfg->db_path, clock);
  if (!database.ok()) {
    spdlog::error("open database {}: {}", cfg->db_path, database.status().message());
    return 1;
  }
  if (Status st = (*database)->StartBackgroundCheckpoints(); !st.ok()) {
    spdlog::warn("background checkpoints not started: {}", st.message());
  }
  collector::CollectorOptions collector_options;
  collector_options.raw_json = collector::ParseRawJsonPolicy(cfg->usage_raw_json)
                                   .value_or(collector::RawJsonPolicy::kFailed);
  collector_options.buffer_max_records = cfg->usage_buffer_max_records;
  collector_options.buffer_max_bytes = cfg->usage_buffer_max_bytes;
  collector::Collector collector(**database, clock, collector_options);
  setup::SetupService setup_service(*cfg, **database, box, clock, collector, started_at);
  auto boot = setup_service.Bootstrap();
  if (!boot.ok()) {
    spdlog::error("bootstrap: {}", boot.status().message());
    return 1;
  }
  if (!boot->generated_admin_key.empty()) {
    spdlog::info("CPA Manager Plus admin key generated: {}", boot->generated_admin_key);
  } else {
    spdlog::info("CPA Manager Plus admin credential initialized");
  }
  if (key->created) spdlog::info("CPA Manager Plus data key created at {}", key->path);
  if (boot->migrated_legacy) spdlog::info("CPA Manager Plus legacy data migrated");

  setup::AdminAuth auth(**database, clock);
  analytics::RollupWorker rollups(**database, clock, {}, kRollupPollMs, cfg->usage_search_index);
  analytics::RetentionWorker retention(**database, clock, cfg->usage_retention_days);
  pricing::HttpPriceSource price_source;
  pricing::HandlerOptions pricing_options;
  pricing_options.usage_query_limit = cfg->query_limit;
  pricing_options.on_prices_changed = [&rollups] { rollups.Wake(); };
  pricing::Handlers pricing_handlers(**database, price_source, clock, pricing_options);
  analytics::Options analytics_options;
  analytics_options.rollups_enabled = cfg->dashboard_hourly_rollup_enabled;
  analytics::Handlers analytics_handlers(**database, clock, analytics_options);
  const std::string imports_dir =
      (std::filesystem::path(cfg->data_dir.empty()
                                 ? std::filesystem::path(cfg->db_path).parent_path().string()
                                 : cfg->data_dir) /
       "usage-imports")
          .string();
  usage::ImportSessionManager import_sessions(**database, imports_dir,
                                              usage::ImportSessionLimits::FromConfig(*cfg), clock);
  usage::DataHandlers usage_handlers(**database, *cfg, import_sessions, clock);
  api::ManagerApplication application(api::Services{*cfg, **database, setup_service, auth,
                                                    collector, pricing_handlers, analytics_handlers,
                                                    usage_handlers, started_at});
  net::ServerOptions options;
  options.host = listen->host.empty() ? "0.0.0.0" : listen->host;
  options.port = listen->port;
  net::HttpServer server(options, application);
  auto bound = server.Start();
  if (!bound.ok()) {
    spdlog::error("{}", bound.status().message());
    return 1;
  }
  spdlog::info("cpa-manager-plus listening on {}", *bound);
  Status started = setup_service.ApplyCollector();
  if (!started.ok()) spdlog::warn("collector not started: {}", started.message());
  if (cfg->dashboard_hourly_rollup_enabled) rollups.Start();
  retention.Start();
  auto janitor = std::make_unique<ImportSessionJanitor>(import_sessions,
                                                        cfg->usage_import_session_ttl_minutes);

  int sig = server.WaitForSignal();
  spdlog::info("shutting down (signal {})", sig);
  collector.Apply(std::nullopt);
  retention.Stop();
  rollups.Stop();
  server.Stop(kShutdownGraceMs);
  janitor.reset();
  import_sessions.Stop();

  spdlog::info("cpa-manager-plus stopped");
  return 0;
}

}  // namespace cpamp::app
