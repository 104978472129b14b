// Manager Server configuration: environment variables > config.json > built-in defaults.
//
// What: Load() turns an injected Environment (env vars + directory of the binary) into a Config,
// following the upstream resolution rules (spec cpamp-api §1.2–1.4): which config.json is used
// or created, relative paths in it resolved against its directory, the data-dir / db-path
// nuances, and secrets read from `<VAR>`, `<VAR>_FILE`, the file's `*KeyFile` or
// /run/secrets/…. Every knob is one row of a table (KeyTable() exposes it for docs and --help).
//
// Unlike upstream, an invalid value is an error, not a silent fallback: Load() returns
// ErrorCode::kBadRequest with a message naming the env var (or the config key and file),
// e.g. `USAGE_BATCH_SIZE: "abc" is not a positive integer`. Messages never contain secret
// values. The caller prefixes them with "load config: ".
//
// Threading: all functions are pure apart from Load()'s file I/O (it may create config.json
// and its parent directory, and registers resolved secrets with RegisterSecret()); Config is a
// plain value, safe to copy and share read-only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace cpamp::config {

// The process environment as Load() sees it. Production uses FromProcess(); tests build one.
struct Environment {
  std::map<std::string, std::string> vars;  // env vars
  std::string executable_dir;               // directory of the running binary
  // Snapshot of environ plus the directory of /proc/self/exe.
  static Environment FromProcess();
  // The trimmed value; nullopt when unset or blank (an empty env var counts as unset).
  std::optional<std::string> Get(std::string_view name) const;
};

struct Config {
  std::string config_path;  // "" when no config file is used
  std::string http_addr = "0.0.0.0:18317";
  std::string data_dir;
  std::string db_path;
  std::string cpa_upstream_url;  // normalised (NormalizeBaseUrl); CPA_UPSTREAM_URL / cpaUpstreamUrl
  std::string cpa_management_key;  // CPA_MANAGEMENT_KEY[_FILE] / managementKeyFile / /run/secrets
  std::string admin_key;           // CPA_MANAGER_ADMIN_KEY[_FILE] / adminKeyFile / /run/secrets
  std::string data_key_secret;     // CPA_MANAGER_DATA_KEY[_FILE] / dataKeyFile / /run/secrets
  std::string data_key_path;       // default <dataDir>/data.key
  std::string collector_mode = "auto";  // auto|subscribe|http|resp
  std::string queue = "usage";
  std::string pop_side = "right";  // left|right
  int batch_size = 100;
  int poll_interval_ms = 500;
  int query_limit = 50000;
  std::string panel_path;
  std::vector<std::string> cors_origins{"*"};
  bool tls_skip_verify = false;
  std::string pprof_addr;  // accepted (loopback only) and otherwise unused
  bool quota_cooldown_enabled = false;
  bool account_actions_enabled = false;
  bool account_actions_auto_disable = false;
  bool dashboard_hourly_rollup_enabled = true;
  int64_t usage_import_chunk_bytes = 4 << 20;
  int64_t usage_buffer_max_records = 1'500'000;         // beyond upstream: collector buffer
  int64_t usage_buffer_max_bytes = int64_t{2} << 30;    // beyond upstream: collector buffer
  int64_t usage_import_disk_quota_bytes = 16LL << 30;
  int usage_import_max_sessions = 2;
  int usage_import_session_ttl_minutes = 1440;
  int usage_retention_days = 0;  // beyond upstream; 0 = keep everything
  std::string usage_raw_json = "failed";  // beyond upstream: all|failed|none
  bool usage_search_index = false;         // beyond upstream: analytics search projection
  // Names of the table's env vars that were set (non-blank), e.g. "USAGE_QUOTA_COOLDOWN_ENABLED"
  // or "CPA_MANAGEMENT_KEY_FILE": the panel switches they back are "env-managed".
  std::set<std::string> env_overridden;

  // The configuration itself supplies the CPA connection (spec §3.1 source "env"): the
  // upstream URL and a management key are both non-empty.
  bool connection_from_env() const;
};

struct LoadOptions {
  // false: resolve as usual but never create config.json (reset-admin-key). A missing file then
  // still fixes the config directory, so paths match what the server would use.
  bool create_default_file = true;
};

Result<Config> Load(const Environment& env, const LoadOptions& options = {});

// "host:port", ":port" or "[v6]:port"; port 0..65535 (0 = any free port). Host without brackets.
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};
Result<ListenAddress> ParseListenAddress(std::string_view addr);

// True for "localhost", 127.0.0.0/8, ::1 and IPv4-mapped 127.x addresses.
bool IsLoopbackHost(std::string_view host);

// CPA base URL normalisation (spec §3.1): trim; prepend http:// if there is no "://"; strip
// trailing "/"; then strip a trailing "/v0/management", then a trailing "/v0".
std::string NormalizeBaseUrl(std::string_view url);

// One row per setting, in table order. Secrets appear twice: `<VAR>` (value, env only) and
// `<VAR>_FILE` (path; config key `*KeyFile`, default /run/secrets/…). Static storage.
struct KeyInfo {
  std::string_view env;
  std::string_view json_key;  // "" = env only
  std::string_view default_text;
  std::string_view description;
};
const std::vector<KeyInfo>& KeyTable();

// KeyTable() as a Markdown table (docs/operations and `--help`).
std::string KeyTableMarkdown();

}  // namespace cpamp::config
