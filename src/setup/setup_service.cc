// SetupService: connection resolution, first-run setup, manager config, bootstrap state.
//
// Resolution order (spec §3.1): env (CPA_UPSTREAM_URL + a CPA key) → saved manager config →
// legacy `setup` row → not configured. The CPA Management Key is decrypted on read and
// encrypted (enc:v1) on every write; plaintext legacy values are re-encrypted at boot.
// Setup and PutConfig validate against CPA *before* persisting, in upstream's order, so a
// failed check never leaves a half-saved connection. Error codes and messages are upstream's
// (cpamp-api.md §3.3–3.4, §5.3); the HTTP status differs per route, as upstream's mapping does.
// One GET /v0/management/config answers both the key validation and the retention check (the
// upstream issues the same request twice).

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include "base/json.h"
#include "base/log.h"
#include "base/strings.h"
#include "clients/cpa/cpa_client.h"
#include "setup/setup.h"

namespace cpamp::setup {
namespace bj = boost::json;

namespace {

constexpr int64_t kInfoCpaTimeoutMs = 5'000;  // GET /usage-service/config's live block

std::string DecryptOrKeep(const security::SecretBox& box, const std::string& value, Status* error) {
  auto plain = box.Decrypt(value);
  if (!plain.ok()) {
    *error = plain.status();
    return "";
  }
  return *plain;
}

struct LegacySetup {
  std::string base_url;
  std::string management_key;
  std::string queue;
  std::string pop_side;
};

Result<std::optional<LegacySetup>> LoadLegacySetup(db::Connection& conn,
                                                   const security::SecretBox& box) {
  auto raw = db::GetSetting(conn, kSettingSetup);
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return std::optional<LegacySetup>();
  auto parsed = json::ParseObject(**raw);
  if (!parsed.ok()) {
    spdlog::warn("ignoring unreadable settings.setup row: {}", parsed.status().message());
    return std::optional<LegacySetup>();
  }
  LegacySetup s;
  s.base_url = config::NormalizeBaseUrl(json::GetString(*parsed, "cpaBaseUrl").value_or(""));
  if (Trim(json::GetString(*parsed, "cpaBaseUrl").value_or("")).empty()) s.base_url.clear();
  Status err;
  s.management_key =
      DecryptOrKeep(box, json::GetString(*parsed, "managementKey").value_or(""), &err);
  if (!err.ok()) return err;
  s.queue = Trim(json::GetString(*parsed, "queue").value_or(""));
  s.pop_side = Trim(json::GetString(*parsed, "popSide").value_or(""));
  return std::optional<LegacySetup>(std::move(s));
}

bool IsSet(const config::Config& cfg, std::string_view env) {
  return cfg.env_overridden.count(std::string(env)) > 0;
}

}  // namespace

// ---- IdleCollector ----------------------------------------------------------------------

void IdleCollector::Apply(const std::optional<CollectorPlan>& plan) {
  std::lock_guard lock(mu_);
  plan_ = plan;
}

bj::object IdleCollector::StatusJson() {
  std::lock_guard lock(mu_);
  bj::object o;
  o["collector"] = "stopped";
  o["upstream"] = plan_ ? plan_->base_url : "";
  o["mode"] = plan_ ? plan_->collector.collector_mode : "";
  o["transport"] = "";
  o["queue"] = plan_ ? plan_->collector.queue : "";
  o["lastConsumedAt"] = 0;
  o["lastInsertedAt"] = 0;
  o["totalInserted"] = 0;
  o["totalSkipped"] = 0;
  o["deadLetters"] = 0;
  return o;
}

// ---- SetupService -----------------------------------------------------------------------

SetupService::SetupService(const config::Config& cfg, db::Database& db,
                           const security::SecretBox& box, const Clock& clock,
                           CollectorControl& collector, int64_t started_at_ms)
    : cfg_(cfg),
      db_(db),
      box_(box),
      clock_(clock),
      collector_(collector),
      started_at_ms_(started_at_ms) {}

Result<std::optional<ManagerConfig>> SetupService::LoadSavedManagerConfig(db::Connection& conn) {
  auto raw = db::GetSetting(conn, kSettingManagerConfig);
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return std::optional<ManagerConfig>();
  auto parsed = json::ParseObject(**raw);
  if (!parsed.ok()) {
    spdlog::warn("ignoring unreadable settings.manager_config_v1 row: {}",
                 parsed.status().message());
    return std::optional<ManagerConfig>();
  }
  auto mc = ManagerConfigFromJson(*parsed, DefaultManagerConfig(cfg_));
  if (!mc.ok()) {
    // A stored value we cannot normalise (e.g. a time zone unknown to this system's tzdata)
    // must not make the server unusable: keep the connection, reset the inspection block.
    bj::object copy = *parsed;
    copy.erase("codexInspection");
    mc = ManagerConfigFromJson(copy, DefaultManagerConfig(cfg_));
    if (!mc.ok()) return mc.status();
  }
  Status err;
  mc->management_key = DecryptOrKeep(box_, mc->management_key, &err);
  if (!err.ok()) return err;
  if (!mc->cpa_base_url.empty()) mc->cpa_base_url = config::NormalizeBaseUrl(mc->cpa_base_url);
  return std::optional<ManagerConfig>(std::move(*mc));
}

Result<ResolvedConnection> SetupService::Resolve() {
  return db_.Read([&](db::Connection& conn) -> Result<ResolvedConnection> {
    ResolvedConnection r;
    auto saved = LoadSavedManagerConfig(conn);
    if (!saved.ok()) return saved.status();
    r.config = saved->has_value() ? std::move(**saved) : DefaultManagerConfig(cfg_);
    if (!r.config.HasConnection()) {
      auto legacy = LoadLegacySetup(conn, box_);
      if (!legacy.ok()) return legacy.status();
      if (legacy->has_value() && !(*legacy)->base_url.empty() &&
          !(*legacy)->management_key.empty()) {
        r.config.cpa_base_url = (*legacy)->base_url;
        r.config.management_key = (*legacy)->management_key;
        if (!(*legacy)->queue.empty()) r.config.collector.queue = (*legacy)->queue;
        if (!(*legacy)->pop_side.empty()) r.config.collector.pop_side = (*legacy)->pop_side;
      }
    }
    if (r.config.HasConnection()) r.source = "db";
    // Environment overrides (only the variables actually set).
    if (cfg_.connection_from_env()) {
      r.config.cpa_base_url = cfg_.cpa_upstream_url;
      r.config.management_key = cfg_.cpa_management_key;
      r.source = "env";
    }
    auto& col = r.config.collector;
    if (IsSet(cfg_, "USAGE_COLLECTOR_MODE")) col.collector_mode = cfg_.collector_mode;
    if (IsSet(cfg_, "USAGE_RESP_QUEUE")) col.queue = cfg_.queue;
    if (IsSet(cfg_, "USAGE_RESP_POP_SIDE")) col.pop_side = cfg_.pop_side;
    if (IsSet(cfg_, "USAGE_BATCH_SIZE")) col.batch_size = cfg_.batch_size;
    if (IsSet(cfg_, "USAGE_POLL_INTERVAL_MS")) col.poll_interval_ms = cfg_.poll_interval_ms;
    if (IsSet(cfg_, "USAGE_QUERY_LIMIT")) col.query_limit = cfg_.query_limit;
    if (IsSet(cfg_, "USAGE_RESP_TLS_SKIP_VERIFY")) col.tls_skip_verify = cfg_.tls_skip_verify;
    return r;
  });
}

Result<bj::object> SetupService::ComputeBootstrapState(db::Connection& conn, bool migrated_legacy) {
  bool history = false;
  for (const char* table :
       {"usage_events", "dead_letter_events", "model_prices", "api_key_aliases"}) {
    auto stmt = conn.Prepare(std::string("SELECT EXISTS(SELECT 1 FROM ") + table + ")");
    if (!stmt.ok()) return stmt.status();
    auto row = stmt->Step();
    if (!row.ok()) return row.status();
    if (*row && stmt->ColumnInt64(0) != 0) history = true;
  }
  for (auto key : {kSettingSetup, kSettingManagerConfig}) {
    auto v = db::GetSetting(conn, key);
    if (!v.ok()) return v.status();
    if (v->has_value()) history = true;
  }
  auto cred = db::GetSetting(conn, kSettingAdminCredential);
  if (!cred.ok()) return cred.status();
  auto saved = LoadSavedManagerConfig(conn);
  if (!saved.ok()) return saved.status();
  bool initialized =
      cfg_.connection_from_env() || (saved->has_value() && (*saved)->HasConnection());
  if (!initialized) {
    auto legacy = LoadLegacySetup(conn, box_);
    if (!legacy.ok()) return legacy.status();
    initialized =
        legacy->has_value() && !(*legacy)->base_url.empty() && !(*legacy)->management_key.empty();
  }
  std::string status =
      initialized ? (history ? "migrated" : "ready") : (history ? "needs_setup" : "fresh");
  bj::object state;
  state["version"] = 1;
  state["status"] = status;
  state["adminReady"] = cred->has_value();
  state["projectInitialized"] = initialized;
  state["dataKeyReady"] = true;
  state["migratedLegacy"] = migrated_legacy;
  state["hasHistoricalData"] = history;
  state["updatedAtMs"] = clock_.NowMs();
  return state;
}

Result<BootstrapResult> SetupService::Bootstrap() {
  return db_.WriteTransaction([&](db::Connection& conn) -> Result<BootstrapResult> {
    BootstrapResult result;
    const int64_t now = clock_.NowMs();
    // 1. Admin credential: seeded only when absent.
    auto cred = db::GetSetting(conn, kSettingAdminCredential);
    if (!cred.ok()) return cred.status();
    if (!cred->has_value()) {
      std::string key = Trim(cfg_.admin_key);
      std::string source = "env";
      if (key.empty()) {
        key = security::GenerateAdminKey();
        source = "generated";
        result.generated_admin_key = key;
      }
      auto credential = security::MakeAdminCredential(key, source, now);
      CPAMP_RETURN_IF_ERROR(db::PutSetting(conn, kSettingAdminCredential,
                                           security::AdminCredentialToJson(credential), now));
    }
    // 2. Legacy plaintext keys: build manager_config_v1 from `setup` when missing, then make
    //    sure both rows store the key encrypted.
    bool migrated = false;
    auto prior_state = db::GetSetting(conn, kSettingBootstrapState);
    if (!prior_state.ok()) return prior_state.status();
    if (prior_state->has_value()) {
      auto ps = json::ParseObject(**prior_state);
      if (ps.ok()) migrated = json::GetBool(*ps, "migratedLegacy").value_or(false);
    }
    auto legacy = LoadLegacySetup(conn, box_);
    if (!legacy.ok()) return legacy.status();
    auto raw_setup = db::GetSetting(conn, kSettingSetup);
    if (!raw_setup.ok()) return raw_setup.status();
    if (raw_setup->has_value()) {
      auto obj = json::ParseObject(**raw_setup);
      if (obj.ok()) {
        auto key = json::GetString(*obj, "managementKey").value_or("");
        if (!key.empty() && !security::SecretBox::IsEncrypted(key)) {
          auto enc = box_.Encrypt(key);
          if (!enc.ok()) return enc.status();
          (*obj)["managementKey"] = *enc;
          CPAMP_RETURN_IF_ERROR(db::PutSetting(conn, kSettingSetup, bj::serialize(*obj), now));
          result.migrated_legacy = true;
        }
      }
    }
    auto raw_mc = db::GetSetting(conn, kSettingManagerConfig);
    if (!raw_mc.ok()) return raw_mc.status();
    if (!raw_mc->has_value() && legacy->has_value() && !(*legacy)->base_url.empty() &&
        !(*legacy)->management_key.empty()) {
      ManagerConfig mc = DefaultManagerConfig(cfg_);
      mc.cpa_base_url = (*legacy)->base_url;
      mc.management_key = (*legacy)->management_key;
      if (!(*legacy)->queue.empty()) mc.collector.queue = (*legacy)->queue;
      if (!(*legacy)->pop_side.empty()) mc.collector.pop_side = (*legacy)->pop_side;
      mc.collector.enabled = true;
      mc.collector.batch_size = 100;
      mc.collector.poll_interval_ms = 500;
      mc.collector.query_limit = 50000;
      mc.updated_at_ms = now;
      auto enc = box_.Encrypt(mc.management_key);
      if (!enc.ok()) return enc.status();
      mc.management_key = *enc;
      CPAMP_RETURN_IF_ERROR(
          db::PutSetting(conn, kSettingManagerConfig, bj::serialize(ManagerConfigToJson(mc)), now));
      result.migrated_legacy = true;
    } else if (raw_mc->has_value()) {
      auto obj = json::ParseObject(**raw_mc);
      if (obj.ok()) {
        auto* conn_obj = (*obj).if_contains("cpaConnection");
        if (conn_obj && conn_obj->is_object()) {
          auto key = json::GetString(conn_obj->as_object(), "managementKey").value_or("");
          if (!key.empty() && !security::SecretBox::IsEncrypted(key)) {
            auto enc = box_.Encrypt(key);
            if (!enc.ok()) return enc.status();
            conn_obj->as_object()["managementKey"] = *enc;
            CPAMP_RETURN_IF_ERROR(
                db::PutSetting(conn, kSettingManagerConfig, bj::serialize(*obj), now));
            result.migrated_legacy = true;
          }
        }
      }
    }
    // 3. Bootstrap state, recomputed at every boot.
    auto state = ComputeBootstrapState(conn, migrated || result.migrated_legacy);
    if (!state.ok()) return state.status();
    CPAMP_RETURN_IF_ERROR(db::PutSetting(conn, kSettingBootstrapState, bj::serialize(*state), now));
    return result;
  });
}

Result<bj::object> SetupService::Info() {
  auto resolved = Resolve();
  if (!resolved.ok()) return resolved.status();
  return db_.Read([&](db::Connection& conn) -> Result<bj::object> {
    auto cred = db::GetSetting(conn, kSettingAdminCredential);
    if (!cred.ok()) return cred.status();
    auto raw_state = db::GetSetting(conn, kSettingBootstrapState);
    if (!raw_state.ok()) return raw_state.status();
    bj::object state;
    if (raw_state->has_value()) {
      auto parsed = json::ParseObject(**raw_state);
      if (parsed.ok()) state = std::move(*parsed);
    }
    bool initialized =
        resolved->Configured() || json::GetBool(state, "projectInitialized").value_or(false);
    bool admin_ready = cred->has_value();
    bj::object o;
    o["service"] = kServiceName;
    o["mode"] = "embedded";
    o["startedAt"] = started_at_ms_;
    o["configured"] = initialized;
    o["adminReady"] = admin_ready;
    o["projectInitialized"] = initialized;
    o["setupRequired"] = admin_ready && !initialized;
    auto status = json::GetString(state, "status").value_or("");
    if (!status.empty()) o["migrationStatus"] = status;
    o["dataKeyReady"] = json::GetBool(state, "dataKeyReady").value_or(true);
    o["hasHistoricalData"] = json::GetBool(state, "hasHistoricalData").value_or(false);
    return o;
  });
}

Status SetupService::CheckCpa(const ManagerConfig& mc, bool monitoring_enabled, bool ensure_usage) {
  cpa::Connection conn{mc.cpa_base_url, mc.management_key, mc.collector.tls_skip_verify,
                       cpa::kCpaTimeoutMs};
  auto config = cpa::GetConfig(conn);
  if (!config.ok()) return Error(ErrorCode::kUpstreamUnavailable, config.status().message());
  if (!config->ok()) {
    return Error(ErrorCode::kManagementApiValidationFailed,
                 "management API validation failed: " + http_client::StatusLine(config->status));
  }
  if (monitoring_enabled) {
    bj::object cfg_obj;
    auto parsed = json::Parse(config->body);
    if (parsed.ok() && parsed->is_object()) cfg_obj = parsed->as_object();
    auto usage = cpa::ParseUsageSettings(cfg_obj);
    const int64_t retention_ms = usage.retention_seconds * 1000;
    if (retention_ms <= 0) {
      return Error(ErrorCode::kCpaUsageRetentionInvalid,
                   "CPA redis-usage-queue-retention-seconds must be greater than 0");
    }
    if (mc.collector.poll_interval_ms > retention_ms) {
      return Error(ErrorCode::kPollIntervalExceedsRetention,
                   "pollIntervalMs must be less than or equal to CPA "
                   "redis-usage-queue-retention-seconds (" +
                       std::to_string(usage.retention_seconds) + " seconds)");
    }
  }
  if (ensure_usage) {
    auto put = cpa::SetUsageStatisticsEnabled(conn, true);
    if (!put.ok()) return Error(ErrorCode::kUpstreamUnavailable, put.status().message());
    if (!put->ok()) {
      return Error(ErrorCode::kEnableCpaUsageStatisticsFailed,
                   "enable CPA usage statistics failed: " + http_client::StatusLine(put->status));
    }
  }
  return Status::Ok();
}

Status SetupService::SaveManagerConfig(const ManagerConfig& mc) {
  const int64_t now = clock_.NowMs();
  ManagerConfig stored = mc;
  stored.updated_at_ms = now;
  const bool env_connection = cfg_.connection_from_env();
  if (env_connection) {
    // Env-managed keys are never written to SQLite.
    stored.cpa_base_url.clear();
    stored.management_key.clear();
  }
  auto enc = box_.Encrypt(stored.management_key);
  if (!enc.ok()) return enc.status();
  stored.management_key = *enc;
  return db_.WriteTransaction([&](db::Connection& conn) -> Status {
    CPAMP_RETURN_IF_ERROR(db::PutSetting(conn, kSettingManagerConfig,
                                         bj::serialize(ManagerConfigToJson(stored)), now));
    if (!env_connection && stored.HasConnection()) {
      bj::object setup_row;
      setup_row["cpaBaseUrl"] = stored.cpa_base_url;
      setup_row["managementKey"] = stored.management_key;
      setup_row["queue"] = stored.collector.queue;
      setup_row["popSide"] = stored.collector.pop_side;
      CPAMP_RETURN_IF_ERROR(db::PutSetting(conn, kSettingSetup, bj::serialize(setup_row), now));
    }
    auto state = ComputeBootstrapState(conn, false);
    if (!state.ok()) return state.status();
    (*state)["status"] = "ready";
    (*state)["projectInitialized"] = mc.HasConnection();
    return db::PutSetting(conn, kSettingBootstrapState, bj::serialize(*state), now);
  });
}

Result<bj::object> SetupService::Setup(const bj::object& body) {
  std::lock_guard lock(save_mu_);
  std::string url_in = Trim(json::GetString(body, "cpaBaseUrl").value_or(""));
  std::string url = url_in.empty() ? "" : config::NormalizeBaseUrl(url_in);
  std::string key = Trim(json::GetString(body, "cpaManagementKey").value_or(""));
  if (key.empty()) key = Trim(json::GetString(body, "managementKey").value_or(""));
  if (url.empty() || key.empty()) {
    return Error(ErrorCode::kCpaConnectionRequired, "cpaBaseUrl and managementKey are required");
  }
  auto resolved = Resolve();
  if (!resolved.ok()) return resolved.status().WithHttpStatus(500);
  ManagerConfig mc = resolved->config;
  const auto& defaults = DefaultManagerConfig(cfg_).collector;
  std::string queue = Trim(json::GetString(body, "queue").value_or(""));
  if (queue.empty()) queue = defaults.queue;
  std::string pop = ToLower(Trim(json::GetString(body, "popSide").value_or("")));
  if (pop != "left" && pop != "right") pop = defaults.pop_side;
  if (resolved->source == "env" && (url != mc.cpa_base_url || key != mc.management_key ||
                                    queue != mc.collector.queue || pop != mc.collector.pop_side)) {
    return Error(ErrorCode::kSetupEnvManaged, "setup is managed by environment variables");
  }
  if (!mc.management_key.empty() && key != mc.management_key && url != mc.cpa_base_url) {
    return Error(ErrorCode::kInvalidExistingManagementKey,
                 "invalid management key for existing setup");
  }
  std::optional<bool> monitoring_in;
  if (auto it = body.find("requestMonitoringEnabled"); it != body.end() && it->value().is_bool())
    monitoring_in = it->value().as_bool();
  const bool monitoring = monitoring_in.value_or(true);
  bool ensure = monitoring;
  if (auto it = body.find("ensureUsageStatisticsEnabled");
      it != body.end() && it->value().is_bool()) {
    ensure = it->value().as_bool() && monitoring;
  }
  mc.cpa_base_url = url;
  mc.management_key = key;
  auto& col = mc.collector;
  std::string mode = ToLower(Trim(json::GetString(body, "collectorMode").value_or("")));
  col.collector_mode =
      (mode == "subscribe" || mode == "http" || mode == "resp" || mode == "auto") ? mode : "auto";
  col.queue = queue;
  col.pop_side = pop;
  auto positive = [&](const char* name, int fallback) {
    auto n = json::GetInt(body, name);
    return n && *n > 0 && *n <= 86'400'000 ? static_cast<int>(*n) : fallback;
  };
  col.batch_size = positive("batchSize", defaults.batch_size);
  col.poll_interval_ms = positive("pollIntervalMs", defaults.poll_interval_ms);
  col.query_limit = positive("queryLimit", defaults.query_limit);
  col.tls_skip_verify = json::GetBool(body, "tlsSkipVerify").value_or(false);
  col.enabled = monitoring;

  Status checked = CheckCpa(mc, monitoring, ensure);
  if (!checked.ok()) {
    // /setup: required/retention/poll/timezone → 400, everything else → 502.
    return checked.http_status() == 400 ? checked : checked.WithHttpStatus(502);
  }
  Status saved = SaveManagerConfig(mc);
  if (!saved.ok()) return saved.WithHttpStatus(500);
  CPAMP_RETURN_IF_ERROR(ApplyCollector());
  spdlog::info("setup completed: bound to CPA {}", url);
  bj::object out;
  out["ok"] = true;
  out["upstream"] = url;
  return out;
}

Result<bj::object> SetupService::GetConfig() {
  auto resolved = Resolve();
  if (!resolved.ok()) return resolved.status().WithHttpStatus(500);
  bj::object out;
  out["config"] = ManagerConfigToJson(resolved->config);
  out["source"] = resolved->source;
  if (resolved->Configured()) {
    cpa::Connection conn{resolved->config.cpa_base_url, resolved->config.management_key,
                         resolved->config.collector.tls_skip_verify, kInfoCpaTimeoutMs};
    auto live = cpa::GetConfig(conn);
    if (live.ok() && live->ok()) {
      auto parsed = json::Parse(live->body);
      if (parsed.ok() && parsed->is_object()) {
        auto usage = cpa::ParseUsageSettings(parsed->as_object());
        bj::object cpa_usage;
        cpa_usage["usageStatisticsEnabled"] = usage.usage_statistics_enabled;
        cpa_usage["redisUsageQueueRetentionSeconds"] = usage.retention_seconds;
        cpa_usage["retentionSourceDefault"] = usage.retention_source_default;
        out["cpaUsage"] = std::move(cpa_usage);
      }
    }
  }
  return out;
}

Result<bj::object> SetupService::PutConfig(const bj::object& body) {
  std::lock_guard lock(save_mu_);
  const bj::object empty;
  const bj::object* submitted = json::GetObject(body, "config");
  if (submitted == nullptr) submitted = &empty;
  auto resolved = Resolve();
  if (!resolved.ok()) return resolved.status().WithHttpStatus(500);
  const ManagerConfig& current = resolved->config;
  ManagerConfig merged = current;

  if (const auto* conn = json::GetObject(*submitted, "cpaConnection")) {
    std::string url = Trim(json::GetString(*conn, "cpaBaseUrl").value_or(""));
    std::string key = Trim(json::GetString(*conn, "managementKey").value_or(""));
    if (!url.empty() || !key.empty()) {
      merged.cpa_base_url = url.empty() ? "" : config::NormalizeBaseUrl(url);
      merged.management_key = key;
    }
  }
  // tlsSkipVerify is always taken from the body (absent = false), as upstream does.
  merged.collector.tls_skip_verify = false;
  if (const auto* col = json::GetObject(*submitted, "collector")) {
    MergeCollectorJson(*col, merged.collector);
  }
  auto codex = NormalizeCodexInspection(json::GetObject(*submitted, "codexInspection"),
                                        current.codex_inspection);
  if (!codex.ok()) {
    return codex.status().code() == ErrorCode::kInvalidTimeZone
               ? codex.status().WithHttpStatus(400)
               : codex.status().WithHttpStatus(500);
  }
  merged.codex_inspection = std::move(*codex);

  if (resolved->source == "env") {
    const auto& a = current.collector;
    const auto& b = merged.collector;
    if (merged.cpa_base_url != current.cpa_base_url ||
        merged.management_key != current.management_key || a.Enabled() != b.Enabled() ||
        a.collector_mode != b.collector_mode || a.queue != b.queue || a.pop_side != b.pop_side ||
        a.batch_size != b.batch_size || a.poll_interval_ms != b.poll_interval_ms ||
        a.tls_skip_verify != b.tls_skip_verify) {
      return Error(ErrorCode::kConnectionEnvManaged,
                   "connection setup is managed by environment variables");
    }
  }
  const bool has_url = !merged.cpa_base_url.empty();
  const bool has_key = !merged.management_key.empty();
  if (has_url != has_key) {
    return Error(ErrorCode::kCpaConnectionRequired, "cpaBaseUrl and managementKey are required");
  }
  if (!has_url && merged.collector.Enabled()) {
    return Error(ErrorCode::kCpaConnectionRequiredForMonitoring,
                 "cpaBaseUrl and managementKey are required when request monitoring is enabled");
  }
  if (has_url) {
    Status checked = CheckCpa(merged, merged.collector.Enabled(), merged.collector.Enabled());
    if (!checked.ok()) {
      // PUT config: CPA validation/config/enable failures → 502, required/retention/poll → 400,
      // everything else → 500 (upstream's ManagerConfigErrorStatus).
      switch (checked.code()) {
        case ErrorCode::kManagementApiValidationFailed:
        case ErrorCode::kManagementApiConfigFailed:
        case ErrorCode::kEnableCpaUsageStatisticsFailed:
          return checked.WithHttpStatus(502);
        case ErrorCode::kCpaUsageRetentionInvalid:
        case ErrorCode::kPollIntervalExceedsRetention:
          return checked.WithHttpStatus(400);
        default:
          return Status(ErrorCode::kRequestFailed, checked.message(), 500);
      }
    }
  }
  Status saved = SaveManagerConfig(merged);
  if (!saved.ok()) return saved.WithHttpStatus(500);
  CPAMP_RETURN_IF_ERROR(ApplyCollector());
  merged.updated_at_ms = clock_.NowMs();
  bj::object out;
  out["config"] = ManagerConfigToJson(merged);
  out["source"] = "db";
  return out;
}

Status SetupService::ApplyCollector() {
  auto resolved = Resolve();
  if (!resolved.ok()) return resolved.status();
  if (resolved->Configured() &&
      (resolved->source == "env" || resolved->config.collector.Enabled())) {
    RegisterSecret(resolved->config.management_key);
    collector_.Apply(CollectorPlan{resolved->config.cpa_base_url, resolved->config.management_key,
                                   resolved->config.collector});
  } else {
    collector_.Apply(std::nullopt);
  }
  return Status::Ok();
}

}  // namespace cpamp::setup
