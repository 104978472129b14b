#include "config/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/log.h"

namespace cpamp::config {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

mode_t CurrentUmask() {
  mode_t m = ::umask(0);
  ::umask(m);
  return m;
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cpamp-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    env_.executable_dir = (root_ / "bin").string();
    fs::create_directories(env_.executable_dir);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path ExeConfig() const { return fs::path(env_.executable_dir) / "config.json"; }
  void WriteExeConfig(const std::string& json) { WriteFile(ExeConfig(), json); }

  Config MustLoad(const LoadOptions& options = {}) {
    auto r = Load(env_, options);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : Config{};
  }
  // Loads expecting failure; returns the message.
  std::string LoadError() {
    auto r = Load(env_);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "";
    EXPECT_EQ(r.status().code(), ErrorCode::kBadRequest);
    return r.status().message();
  }

  fs::path root_;
  Environment env_;
};

// ---- file resolution (spec 1.2) ----

TEST_F(ConfigTest, CreatesDefaultConfigNextToExecutableAndDerivesPaths) {
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.config_path, ExeConfig().string());
  EXPECT_EQ(ReadAll(ExeConfig()),
            "{\n  \"httpAddr\": \"0.0.0.0:18317\",\n  \"dataDir\": \"./data\"\n}\n");
  EXPECT_EQ(ModeOf(ExeConfig()), 0644 & ~CurrentUmask());
  const std::string data = (fs::path(env_.executable_dir) / "data").string();
  EXPECT_EQ(cfg.data_dir, data);
  EXPECT_EQ(cfg.db_path, data + "/usage.sqlite");
  EXPECT_EQ(cfg.data_key_path, data + "/data.key");
  EXPECT_TRUE(cfg.env_overridden.empty());
}

TEST_F(ConfigTest, DefaultsMatchTheStructAndTheSpec) {
  Config cfg = MustLoad();
  const Config want;
  EXPECT_EQ(cfg.http_addr, "0.0.0.0:18317");
  EXPECT_EQ(cfg.http_addr, want.http_addr);
  EXPECT_EQ(cfg.cpa_upstream_url, "");
  EXPECT_EQ(cfg.cpa_management_key, "");  // /run/secrets/* absent on test machines
  EXPECT_EQ(cfg.admin_key, "");
  EXPECT_EQ(cfg.data_key_secret, "");
  EXPECT_EQ(cfg.collector_mode, want.collector_mode);
  EXPECT_EQ(cfg.queue, want.queue);
  EXPECT_EQ(cfg.pop_side, want.pop_side);
  EXPECT_EQ(cfg.batch_size, 100);
  EXPECT_EQ(cfg.poll_interval_ms, 500);
  EXPECT_EQ(cfg.query_limit, 50000);
  EXPECT_EQ(cfg.panel_path, "");
  EXPECT_EQ(cfg.cors_origins, std::vector<std::string>{"*"});
  EXPECT_FALSE(cfg.tls_skip_verify);
  EXPECT_EQ(cfg.pprof_addr, "");
  EXPECT_FALSE(cfg.quota_cooldown_enabled);
  EXPECT_FALSE(cfg.account_actions_enabled);
  EXPECT_FALSE(cfg.account_actions_auto_disable);
  EXPECT_TRUE(cfg.dashboard_hourly_rollup_enabled);
  EXPECT_EQ(cfg.usage_import_chunk_bytes, 4 << 20);
  EXPECT_EQ(cfg.usage_import_disk_quota_bytes, 16LL << 30);
  EXPECT_EQ(cfg.usage_import_chunk_bytes, want.usage_import_chunk_bytes);
  EXPECT_EQ(cfg.usage_import_disk_quota_bytes, want.usage_import_disk_quota_bytes);
  EXPECT_EQ(cfg.usage_import_max_sessions, want.usage_import_max_sessions);
  EXPECT_EQ(cfg.usage_import_session_ttl_minutes, 1440);
  EXPECT_EQ(cfg.usage_retention_days, 0);
  EXPECT_FALSE(cfg.connection_from_env());
}

TEST_F(ConfigTest, CreatesMissingExecutableDirWith0755) {
  env_.executable_dir = (root_ / "opt" / "cpamp").string();
  Config cfg = MustLoad();
  EXPECT_TRUE(fs::exists(ExeConfig()));
  EXPECT_EQ(ModeOf(root_ / "opt"), 0755 & ~CurrentUmask());
  EXPECT_EQ(ModeOf(root_ / "opt" / "cpamp"), 0755 & ~CurrentUmask());
  EXPECT_EQ(cfg.data_dir, (root_ / "opt" / "cpamp" / "data").string());
}

TEST_F(ConfigTest, ConfigEnvPathIsCreatedWhenMissing) {
  const fs::path path = root_ / "etc" / "nested" / "manager.json";
  env_.vars["CPA_MANAGER_CONFIG"] = "  " + path.string() + " ";
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.config_path, path.string());
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(ExeConfig()));
  EXPECT_EQ(cfg.data_dir, (path.parent_path() / "data").string());
  EXPECT_EQ(cfg.env_overridden.count("CPA_MANAGER_CONFIG"), 1u);
}

TEST_F(ConfigTest, ConfigEnvPathIsReadWhenPresent) {
  const fs::path path = root_ / "etc" / "manager.json";
  WriteFile(path, R"({"httpAddr": "127.0.0.1:9000", "queue": "q2"})");
  env_.vars["CPA_MANAGER_CONFIG"] = path.string();
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.http_addr, "127.0.0.1:9000");
  EXPECT_EQ(cfg.queue, "q2");
  EXPECT_EQ(cfg.data_dir, (root_ / "etc" / "data").string());  // no dataDir key
}

TEST_F(ConfigTest, ConfigEnvPathCreatedEvenWhenDataDirEnvSet) {
  const fs::path path = root_ / "c.json";
  env_.vars["CPA_MANAGER_CONFIG"] = path.string();
  env_.vars["USAGE_DATA_DIR"] = (root_ / "d").string();
  Config cfg = MustLoad();
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(cfg.data_dir, (root_ / "d").string());
}

TEST_F(ConfigTest, NoCreateOptionResolvesWithoutWritingAnything) {
  Config cfg = MustLoad(LoadOptions{.create_default_file = false});
  EXPECT_FALSE(fs::exists(ExeConfig()));
  EXPECT_EQ(cfg.config_path, "");
  // Same paths the server would use after creating the default file.
  EXPECT_EQ(cfg.db_path, (fs::path(env_.executable_dir) / "data" / "usage.sqlite").string());

  const fs::path path = root_ / "missing" / "c.json";
  env_.vars["CPA_MANAGER_CONFIG"] = path.string();
  cfg = MustLoad(LoadOptions{.create_default_file = false});
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(root_ / "missing"));
  EXPECT_EQ(cfg.data_dir, (root_ / "missing" / "data").string());
}

TEST_F(ConfigTest, NoCreateOptionStillReadsAnExistingFile) {
  WriteExeConfig(R"({"dataDir": "/srv/cpamp"})");
  Config cfg = MustLoad(LoadOptions{.create_default_file = false});
  EXPECT_EQ(cfg.config_path, ExeConfig().string());
  EXPECT_EQ(cfg.db_path, "/srv/cpamp/usage.sqlite");
}

// ---- data dir / db path nuances (spec 1.3) ----

TEST_F(ConfigTest, DataDirEnvWithoutExeConfigUsesNoFile) {
  env_.vars["USAGE_DATA_DIR"] = (root_ / "data").string();
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.config_path, "");
  EXPECT_FALSE(fs::exists(ExeConfig()));
  EXPECT_EQ(cfg.data_dir, (root_ / "data").string());
  EXPECT_EQ(cfg.db_path, (root_ / "data" / "usage.sqlite").string());
  EXPECT_EQ(cfg.data_key_path, (root_ / "data" / "data.key").string());
}

TEST_F(ConfigTest, DbPathEnvAloneLeavesDataDirAtSlashData) {
  env_.vars["USAGE_DB_PATH"] = (root_ / "x.sqlite").string();
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.config_path, "");
  EXPECT_FALSE(fs::exists(ExeConfig()));
  EXPECT_EQ(cfg.data_dir, "/data");
  EXPECT_EQ(cfg.db_path, (root_ / "x.sqlite").string());
  EXPECT_EQ(cfg.data_key_path, "/data/data.key");
}

TEST_F(ConfigTest, ConfigDbPathIgnoredWhenDataDirEnvSet) {
  WriteExeConfig(R"({"dataDir": "d", "dbPath": "other/db.sqlite", "dataKeyPath": "k/data.key"})");
  env_.vars["USAGE_DATA_DIR"] = "/var/lib/cpamp";
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.config_path, ExeConfig().string());  // an existing exe-dir file is still used
  EXPECT_EQ(cfg.data_dir, "/var/lib/cpamp");
  EXPECT_EQ(cfg.db_path, "/var/lib/cpamp/usage.sqlite");
  EXPECT_EQ(cfg.data_key_path, (fs::path(env_.executable_dir) / "k" / "data.key").string());
}

TEST_F(ConfigTest, ConfigDbPathHonouredWithoutDataDirEnvAndEnvDbPathWins) {
  WriteExeConfig(R"({"dataDir": "d", "dbPath": "other/db.sqlite"})");
  Config cfg = MustLoad();
  const fs::path dir = env_.executable_dir;
  EXPECT_EQ(cfg.data_dir, (dir / "d").string());
  EXPECT_EQ(cfg.db_path, (dir / "other" / "db.sqlite").string());
  EXPECT_EQ(cfg.data_key_path, (dir / "d" / "data.key").string());

  env_.vars["USAGE_DB_PATH"] = "/tmp/env.sqlite";
  cfg = MustLoad();
  EXPECT_EQ(cfg.db_path, "/tmp/env.sqlite");
  EXPECT_EQ(cfg.env_overridden.count("USAGE_DB_PATH"), 1u);
}

TEST_F(ConfigTest, RelativePathsResolveAgainstConfigDirAbsoluteKept) {
  const fs::path cfg_dir = root_ / "conf";
  WriteFile(cfg_dir / "secrets" / "mgmt", "  mgmt-key-123456 \n");
  WriteFile(cfg_dir / "c.json", R"({
    "dataDir": "./state/../store",
    "dataKeyPath": "keys/data.key",
    "panelPath": "panel/index.html",
    "managementKeyFile": "secrets/mgmt",
    "dbPath": "/abs/usage.sqlite"
  })");
  env_.vars["CPA_MANAGER_CONFIG"] = (cfg_dir / "c.json").string();
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.data_dir, (cfg_dir / "store").string());
  EXPECT_EQ(cfg.data_key_path, (cfg_dir / "keys" / "data.key").string());
  EXPECT_EQ(cfg.panel_path, (cfg_dir / "panel" / "index.html").string());
  EXPECT_EQ(cfg.cpa_management_key, "mgmt-key-123456");
  EXPECT_EQ(cfg.db_path, "/abs/usage.sqlite");
}

TEST_F(ConfigTest, EnvPathsAreTakenAsGiven) {
  WriteExeConfig("{}");
  env_.vars["PANEL_PATH"] = "relative/panel.html";
  env_.vars["CPA_MANAGER_DATA_KEY_PATH"] = "keys/data.key";
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.panel_path, "relative/panel.html");
  EXPECT_EQ(cfg.data_key_path, "keys/data.key");
}

// ---- precedence for every kind of key ----

TEST_F(ConfigTest, FileValuesOverrideDefaultsForEveryKind) {
  WriteExeConfig(R"({
    "httpAddr": "[::1]:19000",
    "cpaUpstreamUrl": "cpa:8317/v0/management/",
    "collectorMode": "RESP",
    "queue": "usage-file",
    "popSide": "left",
    "batchSize": 7,
    "pollIntervalMs": 250,
    "queryLimit": 10.0,
    "corsOrigins": ["https://a.example", " ", "https://b.example"],
    "tlsSkipVerify": true,
    "pprofAddr": "127.0.0.1:6060",
    "quotaCooldownEnabled": true,
    "accountActionsEnabled": "yes",
    "usageImportChunkBytes": 1048576,
    "usageImportDiskQuotaBytes": 1073741824,
    "usageImportMaxSessions": 3,
    "usageImportSessionTTLMinutes": 60,
    "usageRetentionDays": 30,
    "someFutureKey": {"nested": [1, 2]}
  })");
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.http_addr, "[::1]:19000");
  EXPECT_EQ(cfg.cpa_upstream_url, "http://cpa:8317");
  EXPECT_EQ(cfg.collector_mode, "resp");
  EXPECT_EQ(cfg.queue, "usage-file");
  EXPECT_EQ(cfg.pop_side, "left");
  EXPECT_EQ(cfg.batch_size, 7);
  EXPECT_EQ(cfg.poll_interval_ms, 250);
  EXPECT_EQ(cfg.query_limit, 10);
  EXPECT_EQ(cfg.cors_origins, (std::vector<std::string>{"https://a.example", "https://b.example"}));
  EXPECT_TRUE(cfg.tls_skip_verify);
  EXPECT_EQ(cfg.pprof_addr, "127.0.0.1:6060");
  EXPECT_TRUE(cfg.quota_cooldown_enabled);
  EXPECT_TRUE(cfg.account_actions_enabled);
  EXPECT_EQ(cfg.usage_import_chunk_bytes, 1048576);
  EXPECT_EQ(cfg.usage_import_disk_quota_bytes, 1073741824);
  EXPECT_EQ(cfg.usage_import_max_sessions, 3);
  EXPECT_EQ(cfg.usage_import_session_ttl_minutes, 60);
  EXPECT_EQ(cfg.usage_retention_days, 30);
  EXPECT_TRUE(cfg.env_overridden.empty());
}

TEST_F(ConfigTest, EnvOverridesFileForEveryKind) {
  WriteExeConfig(R"({
    "httpAddr": "[::1]:19000", "cpaUpstreamUrl": "http://file:1", "collectorMode": "resp",
    "queue": "usage-file", "popSide": "left", "batchSize": 7, "usageImportChunkBytes": 5,
    "corsOrigins": ["https://a.example"], "tlsSkipVerify": true, "pprofAddr": "[::1]:6060",
    "usageRetentionDays": 30, "panelPath": "p.html", "dataDir": "fd"
  })");
  env_.vars = {
      {"HTTP_ADDR", " :0 "},
      {"CPA_UPSTREAM_URL", "https://env.example/v0"},
      {"USAGE_COLLECTOR_MODE", "http"},
      {"USAGE_RESP_QUEUE", "usage-env"},
      {"USAGE_RESP_POP_SIDE", "Right"},
      {"USAGE_BATCH_SIZE", "42"},
      {"USAGE_IMPORT_CHUNK_BYTES", "8"},
      {"USAGE_CORS_ORIGINS", " https://x.example , ,https://y.example "},
      {"USAGE_RESP_TLS_SKIP_VERIFY", "off"},
      {"CPA_MANAGER_PPROF_ADDR", "localhost:7070"},
      {"USAGE_RETENTION_DAYS", "0"},
      {"USAGE_RAW_JSON", "failed"},
      {"USAGE_SEARCH_INDEX", "false"},
      {"PANEL_PATH", "/srv/panel.html"},
      {"USAGE_DATA_DIR", "/srv/data"},
      {"USAGE_DASHBOARD_HOURLY_ROLLUP_ENABLED", "false"},
      {"USAGE_QUERY_LIMIT", ""},  // empty counts as unset
  };
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.http_addr, ":0");
  EXPECT_EQ(cfg.cpa_upstream_url, "https://env.example");
  EXPECT_EQ(cfg.collector_mode, "http");
  EXPECT_EQ(cfg.queue, "usage-env");
  EXPECT_EQ(cfg.pop_side, "right");
  EXPECT_EQ(cfg.batch_size, 42);
  EXPECT_EQ(cfg.usage_import_chunk_bytes, 8);
  EXPECT_EQ(cfg.cors_origins, (std::vector<std::string>{"https://x.example", "https://y.example"}));
  EXPECT_FALSE(cfg.tls_skip_verify);
  EXPECT_EQ(cfg.pprof_addr, "localhost:7070");
  EXPECT_EQ(cfg.usage_retention_days, 0);
  EXPECT_EQ(cfg.panel_path, "/srv/panel.html");
  EXPECT_EQ(cfg.data_dir, "/srv/data");
  EXPECT_FALSE(cfg.dashboard_hourly_rollup_enabled);
  EXPECT_EQ(cfg.query_limit, 50000);
  EXPECT_EQ(cfg.env_overridden.count("USAGE_BATCH_SIZE"), 1u);
  EXPECT_EQ(cfg.env_overridden.count("USAGE_RESP_TLS_SKIP_VERIFY"), 1u);
  EXPECT_EQ(cfg.env_overridden.count("USAGE_QUERY_LIMIT"), 0u);
  EXPECT_EQ(cfg.env_overridden.count("USAGE_QUOTA_COOLDOWN_ENABLED"), 0u);
}

TEST_F(ConfigTest, BooleanSpellings) {
  WriteExeConfig("{}");
  for (const char* t : {"1", "true", "TRUE", "yes", "On"}) {
    env_.vars["USAGE_QUOTA_COOLDOWN_ENABLED"] = t;
    EXPECT_TRUE(MustLoad().quota_cooldown_enabled) << t;
  }
  for (const char* f : {"0", "false", "No", "OFF"}) {
    env_.vars["USAGE_QUOTA_COOLDOWN_ENABLED"] = f;
    Config cfg = MustLoad();
    EXPECT_FALSE(cfg.quota_cooldown_enabled) << f;
    EXPECT_EQ(cfg.env_overridden.count("USAGE_QUOTA_COOLDOWN_ENABLED"), 1u);
  }
}

TEST_F(ConfigTest, EmptyCorsArrayInFileMeansNoOrigins) {
  WriteExeConfig(R"({"corsOrigins": []})");
  EXPECT_TRUE(MustLoad().cors_origins.empty());
}

TEST_F(ConfigTest, FileKeysMatchCaseInsensitivelyLikeGo) {
  WriteExeConfig(R"({"HTTPADDR": ":1234", "batchsize": 9, "batchSize": 8})");
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.http_addr, ":1234");
  EXPECT_EQ(cfg.batch_size, 8);  // the exact spelling wins
}

TEST_F(ConfigTest, NullAndBlankFileValuesCountAsUnset) {
  WriteExeConfig(R"({"httpAddr": "  ", "queue": null, "cpaUpstreamUrl": ""})");
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.http_addr, "0.0.0.0:18317");
  EXPECT_EQ(cfg.queue, "usage");
  EXPECT_EQ(cfg.cpa_upstream_url, "");
}

// ---- secrets ----

TEST_F(ConfigTest, SecretResolutionOrder) {
  const fs::path env_file = root_ / "env-secret";
  const fs::path cfg_file = root_ / "bin" / "cfg-secret";
  WriteFile(env_file, "\n from-env-file-value \n");
  WriteFile(cfg_file, "from-config-file-value\n");
  WriteExeConfig(R"({"managementKeyFile": "cfg-secret", "adminKeyFile": "cfg-secret",
                     "dataKeyFile": "cfg-secret"})");

  // Config *KeyFile when no env.
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.cpa_management_key, "from-config-file-value");
  EXPECT_EQ(cfg.admin_key, "from-config-file-value");
  EXPECT_EQ(cfg.data_key_secret, "from-config-file-value");

  // <VAR>_FILE beats the config file key.
  env_.vars["CPA_MANAGEMENT_KEY_FILE"] = env_file.string();
  env_.vars["CPA_MANAGER_ADMIN_KEY_FILE"] = env_file.string();
  env_.vars["CPA_MANAGER_DATA_KEY_FILE"] = env_file.string();
  cfg = MustLoad();
  EXPECT_EQ(cfg.cpa_management_key, "from-env-file-value");
  EXPECT_EQ(cfg.admin_key, "from-env-file-value");
  EXPECT_EQ(cfg.data_key_secret, "from-env-file-value");
  EXPECT_EQ(cfg.env_overridden.count("CPA_MANAGEMENT_KEY_FILE"), 1u);
  EXPECT_EQ(cfg.env_overridden.count("CPA_MANAGEMENT_KEY"), 0u);

  // <VAR> beats everything (trimmed).
  env_.vars["CPA_MANAGEMENT_KEY"] = "  direct-mgmt-value ";
  env_.vars["CPA_MANAGER_ADMIN_KEY"] = "direct-admin-value";
  env_.vars["CPA_MANAGER_DATA_KEY"] = "direct-data-value";
  cfg = MustLoad();
  EXPECT_EQ(cfg.cpa_management_key, "direct-mgmt-value");
  EXPECT_EQ(cfg.admin_key, "direct-admin-value");
  EXPECT_EQ(cfg.data_key_secret, "direct-data-value");
  EXPECT_EQ(cfg.env_overridden.count("CPA_MANAGEMENT_KEY"), 1u);
}

TEST_F(ConfigTest, MissingDefaultSecretFilesAreEmpty) {
  ASSERT_FALSE(fs::exists("/run/secrets/cpa_management_key"));
  Config cfg = MustLoad();
  EXPECT_EQ(cfg.cpa_management_key, "");
  EXPECT_EQ(cfg.admin_key, "");
  EXPECT_EQ(cfg.data_key_secret, "");
}

TEST_F(ConfigTest, ExplicitSecretFilesThatCannotBeReadAreErrors) {
  env_.vars["CPA_MANAGEMENT_KEY_FILE"] = "/x/y";
  EXPECT_EQ(LoadError(), "CPA_MANAGEMENT_KEY_FILE: cannot read /x/y: No such file or directory");

  env_.vars.clear();
  env_.vars["CPA_MANAGER_DATA_KEY_FILE"] = root_.string();  // a directory
  EXPECT_EQ(LoadError(),
            "CPA_MANAGER_DATA_KEY_FILE: cannot read " + root_.string() + ": Is a directory");

  env_.vars.clear();
  WriteExeConfig(R"({"adminKeyFile": "nope/admin"})");
  const std::string missing = (fs::path(env_.executable_dir) / "nope" / "admin").string();
  EXPECT_EQ(LoadError(), "adminKeyFile (in " + ExeConfig().string() + "): cannot read " + missing +
                             ": No such file or directory");
}

TEST_F(ConfigTest, SecretsAreRegisteredForRedactionAndNeverInErrors) {
  env_.vars["CPA_MANAGEMENT_KEY"] = "redact-me-mgmt-secret";
  env_.vars["USAGE_BATCH_SIZE"] = "abc";
  std::string msg = LoadError();
  EXPECT_EQ(msg.find("redact-me"), std::string::npos);

  env_.vars.erase("USAGE_BATCH_SIZE");
  MustLoad();
  EXPECT_EQ(RedactSecrets("key=redact-me-mgmt-secret"), "key=[REDACTED]");
}

TEST_F(ConfigTest, ConnectionFromEnvNeedsUrlAndKey) {
  env_.vars["CPA_UPSTREAM_URL"] = "http://cli-proxy-api:8317";
  EXPECT_FALSE(MustLoad().connection_from_env());
  env_.vars["CPA_MANAGEMENT_KEY"] = "mgmt-key-value";
  Config cfg = MustLoad();
  EXPECT_TRUE(cfg.connection_from_env());
  EXPECT_EQ(cfg.cpa_upstream_url, "http://cli-proxy-api:8317");
}

// ---- invalid values stop start-up ----

// Every env var whose value is validated, with a bad value and the expected message tail.
struct BadEnv {
  const char* var;
  const char* value;
  const char* message;  // full message
};
const BadEnv kBadEnv[] = {
    {"HTTP_ADDR", "foo", "HTTP_ADDR: invalid listen address \"foo\": missing port"},
    {"CPA_UPSTREAM_URL", "ftp://cpa",
     "CPA_UPSTREAM_URL: invalid URL \"ftp://cpa\": scheme must be "
     "http or https"},
    {"USAGE_COLLECTOR_MODE", "redis",
     "USAGE_COLLECTOR_MODE: \"redis\" is not one of auto|subscribe|http|resp"},
    {"USAGE_RESP_POP_SIDE", "up", "USAGE_RESP_POP_SIDE: \"up\" is not one of left|right"},
    {"USAGE_BATCH_SIZE", "abc", "USAGE_BATCH_SIZE: \"abc\" is not a positive integer"},
    {"USAGE_POLL_INTERVAL_MS", "0", "USAGE_POLL_INTERVAL_MS: \"0\" is not a positive integer"},
    {"USAGE_QUERY_LIMIT", "-5", "USAGE_QUERY_LIMIT: \"-5\" is not a positive integer"},
    {"USAGE_CORS_ORIGINS", ",", "USAGE_CORS_ORIGINS: \",\" lists no values"},
    {"USAGE_RESP_TLS_SKIP_VERIFY", "maybe",
     "USAGE_RESP_TLS_SKIP_VERIFY: \"maybe\" is not a boolean (use true/false, 1/0, yes/no, "
     "on/off)"},
    {"CPA_MANAGER_PPROF_ADDR", "0.0.0.0:6060",
     "CPA_MANAGER_PPROF_ADDR: configure pprof: pprof address must use a loopback host"},
    {"USAGE_QUOTA_COOLDOWN_ENABLED", "2",
     "USAGE_QUOTA_COOLDOWN_ENABLED: \"2\" is not a boolean (use true/false, 1/0, yes/no, on/off)"},
    {"USAGE_ACCOUNT_ACTIONS_ENABLED", "enabled",
     "USAGE_ACCOUNT_ACTIONS_ENABLED: \"enabled\" is not a boolean (use true/false, 1/0, yes/no, "
     "on/off)"},
    {"USAGE_ACCOUNT_ACTIONS_AUTO_DISABLE", "y",
     "USAGE_ACCOUNT_ACTIONS_AUTO_DISABLE: \"y\" is not a boolean (use true/false, 1/0, yes/no, "
     "on/off)"},
    {"USAGE_DASHBOARD_HOURLY_ROLLUP_ENABLED", "nope",
     "USAGE_DASHBOARD_HOURLY_ROLLUP_ENABLED: \"nope\" is not a boolean (use true/false, 1/0, "
     "yes/no, on/off)"},
    {"USAGE_IMPORT_CHUNK_BYTES", "4MiB",
     "USAGE_IMPORT_CHUNK_BYTES: \"4MiB\" is not a positive integer"},
    {"USAGE_IMPORT_DISK_QUOTA_BYTES", "99999999999999999999",
     "USAGE_IMPORT_DISK_QUOTA_BYTES: \"99999999999999999999\" is not a positive integer"},
    {"USAGE_IMPORT_MAX_SESSIONS", "3000000000",
     "USAGE_IMPORT_MAX_SESSIONS: \"3000000000\" is too large (max 2147483647)"},
    {"USAGE_IMPORT_SESSION_TTL_MINUTES", "1.5",
     "USAGE_IMPORT_SESSION_TTL_MINUTES: \"1.5\" is not a positive integer"},
    {"USAGE_RETENTION_DAYS", "-1", "USAGE_RETENTION_DAYS: \"-1\" is not a non-negative integer"},
    {"USAGE_RAW_JSON", "some", "USAGE_RAW_JSON: \"some\" is not one of all|failed|none"},
    {"USAGE_BUFFER_MAX_RECORDS", "0", "USAGE_BUFFER_MAX_RECORDS: \"0\" is not a positive integer"},
    {"USAGE_BUFFER_MAX_BYTES", "2GiB", "USAGE_BUFFER_MAX_BYTES: \"2GiB\" is not a positive integer"},
    {"USAGE_SEARCH_INDEX", "maybe",
     "USAGE_SEARCH_INDEX: \"maybe\" is not a boolean (use true/false, 1/0, yes/no, on/off)"},
    {"CPA_MANAGEMENT_KEY_FILE", "/nonexistent/k",
     "CPA_MANAGEMENT_KEY_FILE: cannot read /nonexistent/k: No such file or directory"},
    {"CPA_MANAGER_ADMIN_KEY_FILE", "/nonexistent/a",
     "CPA_MANAGER_ADMIN_KEY_FILE: cannot read /nonexistent/a: No such file or directory"},
    {"CPA_MANAGER_DATA_KEY_FILE", "/nonexistent/d",
     "CPA_MANAGER_DATA_KEY_FILE: cannot read /nonexistent/d: No such file or directory"},
};

// Env vars whose values are free-form (any non-empty value is valid).
const char* const kFreeFormEnv[] = {
    "CPA_MANAGER_CONFIG",        "USAGE_DATA_DIR",        "USAGE_DB_PATH",
    "CPA_MANAGEMENT_KEY",        "CPA_MANAGER_ADMIN_KEY", "CPA_MANAGER_DATA_KEY",
    "CPA_MANAGER_DATA_KEY_PATH", "USAGE_RESP_QUEUE",      "PANEL_PATH",
};

TEST_F(ConfigTest, EveryInvalidEnvValueNamesItsVariable) {
  for (const BadEnv& c : kBadEnv) {
    env_.vars = {{c.var, c.value}};
    EXPECT_EQ(LoadError(), c.message) << c.var;
  }
}

TEST_F(ConfigTest, EveryValidatedKeyHasAnInvalidValueCase) {
  for (const KeyInfo& k : KeyTable()) {
    bool covered = false;
    for (const BadEnv& c : kBadEnv) covered = covered || k.env == c.var;
    for (const char* f : kFreeFormEnv) covered = covered || k.env == f;
    EXPECT_TRUE(covered) << k.env << " needs a case in kBadEnv or kFreeFormEnv";
  }
}

TEST_F(ConfigTest, PprofAcceptsLoopbackHostsOnly) {
  for (const char* ok : {"127.0.0.1:6060", "localhost:6060", "[::1]:6060"}) {
    env_.vars = {{"CPA_MANAGER_PPROF_ADDR", ok}};
    EXPECT_EQ(MustLoad().pprof_addr, ok);
  }
  for (const char* bad : {":6060", "[::]:6060", "example.com:6060"}) {
    env_.vars = {{"CPA_MANAGER_PPROF_ADDR", bad}};
    EXPECT_EQ(LoadError(),
              "CPA_MANAGER_PPROF_ADDR: configure pprof: pprof address must use a loopback host");
  }
  env_.vars = {{"CPA_MANAGER_PPROF_ADDR", "localhost"}};
  EXPECT_EQ(LoadError(),
            "CPA_MANAGER_PPROF_ADDR: invalid listen address \"localhost\": missing port");
}

TEST_F(ConfigTest, InvalidFileValuesNameTheKeyAndFile) {
  struct Case {
    const char* json;
    const char* message;  // after "<key> (in <path>): "
  };
  const Case cases[] = {
      {R"({"batchSize": "abc"})", "batchSize|\"abc\" is not a positive integer"},
      {R"({"batchSize": 0})", "batchSize|\"0\" is not a positive integer"},
      {R"({"queryLimit": 2.5})", "queryLimit|\"2.5\" is not a positive integer"},
      {R"({"tlsSkipVerify": "maybe"})",
       "tlsSkipVerify|\"maybe\" is not a boolean (use true/false, 1/0, yes/no, on/off)"},
      {R"({"corsOrigins": [1]})", "corsOrigins|expected an array of strings"},
      {R"({"httpAddr": 18317})", "httpAddr|expected a string"},
      {R"({"httpAddr": "18317"})", "httpAddr|invalid listen address \"18317\": missing port"},
      {R"({"queue": ["a"]})", "queue|expected a string"},
      {R"({"batchSize": {"v": 1}})", "batchSize|expected a single value, not an object"},
      {R"({"popSide": "middle"})", "popSide|\"middle\" is not one of left|right"},
      {R"({"pprofAddr": "0.0.0.0:1"})",
       "pprofAddr|configure pprof: pprof address must use a loopback host"},
  };
  for (const Case& c : cases) {
    WriteExeConfig(c.json);
    std::string spec = c.message;
    size_t bar = spec.find('|');
    std::string want =
        spec.substr(0, bar) + " (in " + ExeConfig().string() + "): " + spec.substr(bar + 1);
    EXPECT_EQ(LoadError(), want) << c.json;
  }
}

TEST_F(ConfigTest, UnparsableConfigIsAParseError) {
  WriteExeConfig("{\"httpAddr\": ");
  std::string msg = LoadError();
  EXPECT_EQ(msg.rfind("parse config " + ExeConfig().string() + ": ", 0), 0u) << msg;

  WriteExeConfig("[1, 2]");
  EXPECT_EQ(LoadError(), "parse config " + ExeConfig().string() + ": expected a JSON object");

  WriteExeConfig("");
  msg = LoadError();
  EXPECT_EQ(msg.rfind("parse config " + ExeConfig().string() + ": ", 0), 0u) << msg;
}

TEST_F(ConfigTest, UnreadableConfigPathIsAnError) {
  env_.vars["CPA_MANAGER_CONFIG"] = root_.string();  // a directory
  EXPECT_EQ(LoadError(), "read config " + root_.string() + ": Is a directory");
}

// ---- the table ----

TEST(KeyTable, EnvNamesAreUniqueAndSecretsHaveFileRows) {
  std::set<std::string_view> names;
  for (const KeyInfo& k : KeyTable()) {
    EXPECT_TRUE(names.insert(k.env).second) << "duplicate " << k.env;
    EXPECT_FALSE(k.description.empty()) << k.env;
  }
  EXPECT_EQ(names.count("CPA_MANAGEMENT_KEY_FILE"), 1u);
  EXPECT_EQ(names.count("USAGE_RETENTION_DAYS"), 1u);
  EXPECT_GE(KeyTable().size(), 31u);
}

TEST(KeyTable, OperationsDocContainsTheGeneratedTable) {
  const fs::path docs = fs::path(CPAMP_SOURCE_DIR) / "docs";
  const fs::path doc = docs / "configuration.md";
  const std::string text = ReadAll(doc);
  EXPECT_NE(text.find(KeyTableMarkdown()), std::string::npos)
      << doc << " must contain the config-key table exactly as generated:\n"
      << KeyTableMarkdown();
}

}  // namespace
}  // namespace cpamp::config
