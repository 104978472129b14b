// First-run setup, admin authentication, the manager configuration and the resolved CPA
// connection (spec cpamp-api.md §2–§3).
//
// SetupService is the one place that knows where the CPA connection comes from (env, saved
// manager config, legacy `setup` row), keeps the CPA Management Key encrypted at rest, and
// tells the collector what to run. AdminAuth verifies `Authorization: Bearer <admin key>`
// against settings.admin_credential_v1 with a per-address failure throttle.
//
// Threading: both classes are safe to call from any worker thread; they hold no state besides
// the database (and the throttle's own lock). They block on SQLite and, for Setup/PutConfig,
// on calls to CPA — never call them from an I/O thread.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "config/config.h"
#include "db/db.h"
#include "security/security.h"

namespace cpamp::setup {

inline constexpr std::string_view kServiceName = "cpa-manager-plus";
inline constexpr std::string_view kSettingSetup = "setup";
inline constexpr std::string_view kSettingManagerConfig = "manager_config_v1";
inline constexpr std::string_view kSettingAdminCredential = "admin_credential_v1";
inline constexpr std::string_view kSettingBootstrapState = "bootstrap_state_v1";

// ---- Manager configuration (settings.manager_config_v1) ----------------------------------

struct CollectorConfig {
  std::optional<bool> enabled;  // absent = true
  std::string collector_mode = "auto";
  std::string queue = "usage";
  std::string pop_side = "right";
  int batch_size = 100;
  int poll_interval_ms = 500;
  int query_limit = 50000;
  bool tls_skip_verify = false;
  bool Enabled() const { return enabled.value_or(true); }
};

struct ManagerConfig {
  std::string cpa_base_url;
  std::string management_key;  // plaintext in memory; encrypted when stored
  CollectorConfig collector;
  boost::json::object codex_inspection;  // normalised, see NormalizeCodexInspection
  int64_t updated_at_ms = 0;
  bool HasConnection() const { return !cpa_base_url.empty() && !management_key.empty(); }
};

// Defaults from the server configuration (env/config.json): collector knobs and codex defaults.
ManagerConfig DefaultManagerConfig(const config::Config& cfg);
// Wire/stored JSON (camelCase; omitempty like upstream; externalUsageService forced off).
boost::json::object ManagerConfigToJson(const ManagerConfig& mc);
// Decodes a stored or submitted object onto `base` (missing fields keep base's values).
Result<ManagerConfig> ManagerConfigFromJson(const boost::json::object& o, ManagerConfig base);
// Merges the submitted `collector` object onto `c` (wrong types ignored; non-empty strings and
// positive in-range numbers replace; mode/pop side normalised). tlsSkipVerify is copied only
// when present.
void MergeCollectorJson(const boost::json::object& col, CollectorConfig& c);
// Codex/xAI inspection settings merged onto `current` with the spec §3.4 rules; errors for an
// invalid time zone (kInvalidTimeZone) or target type (kRequestFailed).
Result<boost::json::object> NormalizeCodexInspection(const boost::json::object* submitted,
                                                     const boost::json::object& current);

// ---- The resolved connection ------------------------------------------------------------

// What the collector should run; produced by SetupService, consumed by the collector.
struct CollectorPlan {
  std::string base_url;
  std::string management_key;
  CollectorConfig collector;
};

// Implemented by the collector (wired in app/). Apply(nullopt) stops it.
class CollectorControl {
 public:
  virtual ~CollectorControl() = default;
  virtual void Apply(const std::optional<CollectorPlan>& plan) = 0;
  // The `collector` object of GET /status (cpamp-api.md §6).
  virtual boost::json::object StatusJson() = 0;
};

// A CollectorControl that only remembers what it was told (before the collector exists).
class IdleCollector final : public CollectorControl {
 public:
  void Apply(const std::optional<CollectorPlan>& plan) override;
  boost::json::object StatusJson() override;

 private:
  std::mutex mu_;
  std::optional<CollectorPlan> plan_;
};

struct ResolvedConnection {
  std::string source;    // "env" | "db" | ""
  ManagerConfig config;  // effective: defaults ← saved ← legacy setup ← env overrides
  bool Configured() const { return !source.empty() && config.HasConnection(); }
};

// ---- Bootstrap --------------------------------------------------------------------------

struct BootstrapResult {
  std::string generated_admin_key;  // non-empty only when a key was generated this boot
  bool migrated_legacy = false;     // plaintext CPA keys were found and encrypted (or earlier)
};

// ---- Services ---------------------------------------------------------------------------

class SetupService {
 public:
  SetupService(const config::Config& cfg, db::Database& db, const security::SecretBox& box,
               const Clock& clock, CollectorControl& collector, int64_t started_at_ms);

  // First-boot admin credential seeding, legacy key re-encryption, bootstrap_state_v1.
  Result<BootstrapResult> Bootstrap();

  Result<ResolvedConnection> Resolve();
  // GET /usage-service/info body.
  Result<boost::json::object> Info();
  // POST /setup: the validated body; returns {"ok":true,"upstream":...}.
  Result<boost::json::object> Setup(const boost::json::object& body);
  // GET /usage-service/config body (with the live cpaUsage block when CPA answers).
  Result<boost::json::object> GetConfig();
  // PUT /usage-service/config with the already-parsed {"config":{...}} body.
  Result<boost::json::object> PutConfig(const boost::json::object& body);
  // Starts or stops the collector according to the stored configuration (boot and after saves).
  Status ApplyCollector();

 private:
  Result<std::optional<ManagerConfig>> LoadSavedManagerConfig(db::Connection& conn);
  Status SaveManagerConfig(const ManagerConfig& mc);
  Status CheckCpa(const ManagerConfig& mc, bool monitoring_enabled, bool ensure_usage);
  Result<boost::json::object> ComputeBootstrapState(db::Connection& conn, bool migrated_legacy);

  const config::Config& cfg_;
  db::Database& db_;
  const security::SecretBox& box_;
  const Clock& clock_;
  CollectorControl& collector_;
  const int64_t started_at_ms_;
  std::mutex save_mu_;  // serialises Setup/PutConfig (read-modify-write of the settings)
};

struct AuthOutcome {
  bool ok = false;
  int status = 401;           // 401, 429 or 500 when !ok
  std::string error;          // message for the envelope
  std::string code;           // wire code
  int64_t delay_ms = 0;       // slow-down to apply before answering
  int64_t retry_after_s = 0;  // for 429
};

class AdminAuth {
 public:
  AdminAuth(db::Database& db, const Clock& clock, security::ThrottlePolicy policy = {});
  // Checks `Authorization: Bearer <key>` (scheme case-insensitive, token trimmed) from
  // `address`. Only attempts that present a credential count as failures.
  // With count_failure=false a wrong key is rejected without feeding the throttle (used where
  // a non-admin credential is legitimate, e.g. CPA keys on plugin passthrough paths).
  AuthOutcome Check(std::string_view authorization_header, const std::string& address,
                    bool count_failure = true);
  // True when a credential row exists.
  Result<bool> AdminReady();

 private:
  db::Database& db_;
  security::LoginThrottle throttle_;
};

// Extracts the token of a Bearer authorization header ("" when absent or another scheme).
std::string BearerToken(std::string_view authorization_header);

// `reset-admin-key` (spec §2.7): writes a new credential into the database at `db_path`.
struct ResetResult {
  std::string generated_key;  // empty when the caller supplied the key
};
Result<ResetResult> ResetAdminKey(const std::string& db_path, const std::string& supplied_key,
                                  const Clock& clock);

}  // namespace cpamp::setup
