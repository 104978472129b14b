// Configuration loading: one table row per knob, one generic resolver.
//
// Each Row names the env var, the config.json key, the default text and a Kind; the Kind picks
// the parser, and the same parser reads the env value, the file value and the default text, so
// the documented default is the applied one. Load() has two steps: pick (or create) the config
// file (spec §1.2), then walk the table in order resolving env > file > default. Derived
// defaults (data dir from the config dir; db path and data.key under the data dir) are rows
// too, which is why dataDir precedes dbPath and dataKeyPath. Secrets add two sources between
// env and default: the file named by <VAR>_FILE, then the file named by the config key.
//
// Errors are values naming the source ("USAGE_BATCH_SIZE" or "batchSize (in <file>)"); a
// secret's value never appears in one. config.json keys match exactly or, like Go's
// encoding/json, case-insensitively. Files are read with a size cap (kMaxConfigBytes,
// kMaxSecretBytes) so a mistaken path to a huge file fails fast.

#include "config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <variant>

#include "base/log.h"
#include "base/strings.h"

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace cpamp::config {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;

constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr size_t kMaxSecretBytes = 64 << 10;
constexpr std::string_view kConfigEnv = "CPA_MANAGER_CONFIG";
constexpr std::string_view kDefaultConfigContent =
    "{\n  \"httpAddr\": \"0.0.0.0:18317\",\n  \"dataDir\": \"./data\"\n}\n";

enum class Kind {
  kConfigFile,       // CPA_MANAGER_CONFIG: resolved before the table walk
  kListenAddress,    // host:port
  kLoopbackAddress,  // host:port on a loopback host, or empty
  kString,
  kUrl,   // CPA base URL, normalised
  kPath,  // file values resolved against the config file's directory
  kEnum,  // one of Row::choices, lower-cased
  kPositiveInt,
  kPositiveInt64,
  kNonNegativeInt,
  kBool,
  kList,    // comma-separated (env) or array of strings (file)
  kSecret,  // <VAR>, <VAR>_FILE, file key (a path), default path
};

// How a row's default is computed when neither env nor file sets it.
enum class Derived {
  kNone,       // default_text parsed like any value
  kDataDir,    // <config dir>/data, or /data without a config file
  kInDataDir,  // <data dir>/<leaf>
};

using Field = std::variant<std::monostate, std::string Config::*, int Config::*, int64_t Config::*,
                           bool Config::*, std::vector<std::string> Config::*>;

struct Row {
  std::string_view env;
  std::string_view json_key;      // "" = env only
  std::string_view default_text;  // parsed unless `derived`; for secrets the default file
  Kind kind;
  Field field;
  std::string_view description;
  std::string_view file_env = {};          // kSecret: the <VAR>_FILE variable
  std::string_view file_description = {};  // kSecret: docs for the <VAR>_FILE row
  std::string_view choices = {};           // kEnum: "a|b|c"
  Derived derived = Derived::kNone;
  std::string_view leaf = {};                 // Derived::kInDataDir
  std::string_view file_ignored_if_env = {};  // the file value counts only if this env is unset
};

// The settings table (spec §1.3). Order matters only for derived defaults: dataDir first.
// clang-format off
const Row kRows[] = {
    {.env = kConfigEnv, .json_key = "", .default_text = "<executable dir>/config.json",
     .kind = Kind::kConfigFile, .field = {},
     .description = "Config file path; created with default content if missing"},
    {.env = "HTTP_ADDR", .json_key = "httpAddr", .default_text = "0.0.0.0:18317",
     .kind = Kind::kListenAddress, .field = &Config::http_addr,
     .description = "Listen address: host:port, :port or [v6]:port (port 0 = any free port)"},
    {.env = "USAGE_DATA_DIR", .json_key = "dataDir",
     .default_text = "<config dir>/data; /data when no config file is used", .kind = Kind::kPath,
     .field = &Config::data_dir, .description = "Data directory (database, data.key, imports)",
     .derived = Derived::kDataDir},
    {.env = "USAGE_DB_PATH", .json_key = "dbPath", .default_text = "<data dir>/usage.sqlite",
     .kind = Kind::kPath, .field = &Config::db_path,
     .description = "SQLite database; the config key is ignored when USAGE_DATA_DIR is set",
     .derived = Derived::kInDataDir, .leaf = "usage.sqlite",
     .file_ignored_if_env = "USAGE_DATA_DIR"},
    {.env = "CPA_UPSTREAM_URL", .json_key = "cpaUpstreamUrl", .default_text = "",
     .kind = Kind::kUrl, .field = &Config::cpa_upstream_url,
     .description = "CPA base URL; with a management key the connection is env-managed"},
    {.env = "CPA_MANAGEMENT_KEY", .json_key = "managementKeyFile",
     .default_text = "/run/secrets/cpa_management_key", .kind = Kind::kSecret,
     .field = &Config::cpa_management_key, .description = "CPA management key (value)",
     .file_env = "CPA_MANAGEMENT_KEY_FILE",
     .file_description = "File holding the CPA management key, used when the value is unset"},
    {.env = "CPA_MANAGER_ADMIN_KEY", .json_key = "adminKeyFile",
     .default_text = "/run/secrets/cpa_admin_key", .kind = Kind::kSecret,
     .field = &Config::admin_key,
     .description = "Admin key (value); seeds the admin credential on first boot only",
     .file_env = "CPA_MANAGER_ADMIN_KEY_FILE",
     .file_description = "File holding the admin key, used when the value is unset"},
    {.env = "CPA_MANAGER_DATA_KEY", .json_key = "dataKeyFile",
     .default_text = "/run/secrets/cpa_data_key", .kind = Kind::kSecret,
     .field = &Config::data_key_secret,
     .description = "External data key (value); replaces the data.key file",
     .file_env = "CPA_MANAGER_DATA_KEY_FILE",
     .file_description = "File holding the external data key, used when the value is unset"},
    {.env = "CPA_MANAGER_DATA_KEY_PATH", .json_key = "dataKeyPath",
     .default_text = "<data dir>/data.key", .kind = Kind::kPath, .field = &Config::data_key_path,
     .description = "Generated data key location", .derived = Derived::kInDataDir,
     .leaf = "data.key"},
    {.env = "USAGE_COLLECTOR_MODE", .json_key = "collectorMode", .default_text = "auto",
     .kind = Kind::kEnum, .field = &Config::collector_mode,
     .description = "Usage collector transport: auto, subscribe, http or resp",
     .choices = "auto|subscribe|http|resp"},
    {.env = "USAGE_RESP_QUEUE", .json_key = "queue", .default_text = "usage",
     .kind = Kind::kString, .field = &Config::queue,
     .description = "RESP key / channel name of the CPA usage queue"},
    {.env = "USAGE_RESP_POP_SIDE", .json_key = "popSide", .default_text = "right",
     .kind = Kind::kEnum, .field = &Config::pop_side,
     .description = "Queue pop side: right (RPOP) or left (LPOP)", .choices = "left|right"},
    {.env = "USAGE_BATCH_SIZE", .json_key = "batchSize", .default_text = "100",
     .kind = Kind::kPositiveInt, .field = &Config::batch_size,
     .description = "Usage records popped per batch"},
    {.env = "USAGE_POLL_INTERVAL_MS", .json_key = "pollIntervalMs", .default_text = "500",
     .kind = Kind::kPositiveInt, .field = &Config::poll_interval_ms,
     .description = "Idle poll interval of the collector (ms)"},
    {.env = "USAGE_QUERY_LIMIT", .json_key = "queryLimit", .default_text = "50000",
     .kind = Kind::kPositiveInt, .field = &Config::query_limit,
     .description = "Row cap for usage queries, export and model usage summary"},
    {.env = "PANEL_PATH", .json_key = "panelPath", .default_text = "", .kind = Kind::kPath,
     .field = &Config::panel_path,
     .description = "Serve this file instead of the embedded management.html"},
    {.env = "USAGE_CORS_ORIGINS", .json_key = "corsOrigins", .default_text = "*",
     .kind = Kind::kList, .field = &Config::cors_origins,
     .description = "Allowed CORS origins: comma-separated (env) or array (file); [] = no CORS"},
    {.env = "USAGE_RESP_TLS_SKIP_VERIFY", .json_key = "tlsSkipVerify", .default_text = "false",
     .kind = Kind::kBool, .field = &Config::tls_skip_verify,
     .description = "Skip certificate verification for RESP over TLS"},
    {.env = "CPA_MANAGER_PPROF_ADDR", .json_key = "pprofAddr", .default_text = "",
     .kind = Kind::kLoopbackAddress, .field = &Config::pprof_addr,
     .description = "Accepted for compatibility (must be a loopback host:port); no pprof server"},
    {.env = "USAGE_QUOTA_COOLDOWN_ENABLED", .json_key = "quotaCooldownEnabled",
     .default_text = "false", .kind = Kind::kBool, .field = &Config::quota_cooldown_enabled,
     .description = "Quota cooldown; setting the env var locks the panel switch"},
    {.env = "USAGE_ACCOUNT_ACTIONS_ENABLED", .json_key = "accountActionsEnabled",
     .default_text = "false", .kind = Kind::kBool, .field = &Config::account_actions_enabled,
     .description = "Account actions; setting the env var locks the panel switch"},
    {.env = "USAGE_ACCOUNT_ACTIONS_AUTO_DISABLE", .json_key = "accountActionsAutoDisable",
     .default_text = "false", .kind = Kind::kBool, .field = &Config::account_actions_auto_disable,
     .description = "Auto-disable accounts (only with account actions enabled)"},
    {.env = "USAGE_DASHBOARD_HOURLY_ROLLUP_ENABLED", .json_key = "", .default_text = "true",
     .kind = Kind::kBool, .field = &Config::dashboard_hourly_rollup_enabled,
     .description = "Maintain the hourly dashboard rollup"},
    {.env = "USAGE_IMPORT_CHUNK_BYTES", .json_key = "usageImportChunkBytes",
     .default_text = "4194304", .kind = Kind::kPositiveInt64,
     .field = &Config::usage_import_chunk_bytes,
     .description = "Import-session chunk size in bytes (4 MiB)"},
    {.env = "USAGE_IMPORT_DISK_QUOTA_BYTES", .json_key = "usageImportDiskQuotaBytes",
     .default_text = "17179869184", .kind = Kind::kPositiveInt64,
     .field = &Config::usage_import_disk_quota_bytes,
     .description = "Disk quota for pending import sessions in bytes (16 GiB)"},
    {.env = "USAGE_IMPORT_MAX_SESSIONS", .json_key = "usageImportMaxSessions",
     .default_text = "2", .kind = Kind::kPositiveInt, .field = &Config::usage_import_max_sessions,
     .description = "Concurrently active import sessions"},
    {.env = "USAGE_IMPORT_SESSION_TTL_MINUTES", .json_key = "usageImportSessionTTLMinutes",
     .default_text = "1440", .kind = Kind::kPositiveInt,
     .field = &Config::usage_import_session_ttl_minutes,
     .description = "Idle import sessions expire after this many minutes"},
    {.env = "USAGE_RETENTION_DAYS", .json_key = "usageRetentionDays", .default_text = "0",
     .kind = Kind::kNonNegativeInt, .field = &Config::usage_retention_days,
     .description = "Delete usage events older than this many days; 0 keeps everything"},
    {.env = "USAGE_RAW_JSON", .json_key = "usageRawJson", .default_text = "failed",
     .kind = Kind::kEnum, .field = &Config::usage_raw_json,
     .description = "Keep the redacted raw record (raw_json) for: all, failed or none events",
     .choices = "all|failed|none"},
    {.env = "USAGE_BUFFER_MAX_RECORDS", .json_key = "usageBufferMaxRecords",
     .default_text = "1500000", .kind = Kind::kPositiveInt64,
     .field = &Config::usage_buffer_max_records,
     .description = "Collector write-behind buffer: records received, not yet committed, at most"},
    {.env = "USAGE_BUFFER_MAX_BYTES", .json_key = "usageBufferMaxBytes",
     .default_text = "2147483648", .kind = Kind::kPositiveInt64,
     .field = &Config::usage_buffer_max_bytes,
     .description = "Collector write-behind buffer bound in bytes (2 GiB); full = reader stalls"},
    {.env = "USAGE_SEARCH_INDEX", .json_key = "usageSearchIndex", .default_text = "false",
     .kind = Kind::kBool, .field = &Config::usage_search_index,
     .description = "Keep a search projection for ~6x faster free-text search (~0.7 KB/event)"},
};
// clang-format on

Status Bad(std::string_view where, std::string_view problem) {
  return Error(ErrorCode::kBadRequest, std::string(where) + ": " + std::string(problem));
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Go's filepath.Join: join, then clean; no trailing slash except for "/".
std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out = (fs::path(dir) / fs::path(name)).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out.empty() ? "." : out;
}

std::string DirOf(const std::string& path) {
  std::string dir = fs::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// Reads a whole small file. Returns 0 or an errno value (EFBIG when larger than `limit`).
int ReadSmallFile(const std::string& path, size_t limit, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  out->clear();
  char buf[8192];
  int err = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > limit) {
      err = EFBIG;
      break;
    }
  }
  ::close(fd);
  return err;
}

std::string ErrnoText(int err, size_t limit) {
  if (err == EFBIG) return "file is larger than " + std::to_string(limit) + " bytes";
  return std::strerror(err);
}

// mkdir -p with mode 0755 for each created level.
Status MakeDirs(const std::string& dir) {
  fs::path partial;
  for (const fs::path& part : fs::path(dir)) {
    partial /= part;
    if (part.empty() || part == "/" || part == "." || part == "..") continue;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      return Bad("create config directory " + partial.string(), std::strerror(errno));
    }
  }
  return Status::Ok();
}

// The config file Load() works with: `used` when it was read or created; `dir` may be known
// without a file (LoadOptions::create_default_file = false).
struct ConfigFile {
  std::string path;
  std::string dir;
  bool used = false;
  bj::object values;
};

Result<bj::object> ParseConfig(const std::string& path, std::string_view text) {
  bj::stream_parser parser;
  boost::system::error_code ec;
  size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    return Bad("parse config " + path, ec.message() + " at byte " + std::to_string(consumed));
  }
  bj::value v = parser.release();
  if (!v.is_object()) return Bad("parse config " + path, "expected a JSON object");
  return std::move(v.as_object());
}

Result<ConfigFile> ResolveConfigFile(const Environment& env, const LoadOptions& options) {
  ConfigFile file;
  if (auto explicit_path = env.Get(kConfigEnv)) {
    file.path = *explicit_path;
  } else {
    file.path = JoinPath(env.executable_dir.empty() ? "." : env.executable_dir, "config.json");
    struct stat st {};
    bool exists = ::stat(file.path.c_str(), &st) == 0;
    if (!exists && (env.Get("USAGE_DATA_DIR") || env.Get("USAGE_DB_PATH"))) return ConfigFile{};
  }
  file.dir = DirOf(file.path);

  std::string text;
  int err = ReadSmallFile(file.path, kMaxConfigBytes, &text);
  if (err == ENOENT) {
    if (!options.create_default_file) {
      file.path.clear();
      return file;
    }
    CPAMP_RETURN_IF_ERROR(MakeDirs(file.dir));
    int fd = ::open(file.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Bad("create config " + file.path, std::strerror(errno));
    ssize_t n = ::write(fd, kDefaultConfigContent.data(), kDefaultConfigContent.size());
    int write_err = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(kDefaultConfigContent.size())) {
      return Bad("create config " + file.path, n < 0 ? std::strerror(write_err) : "short write");
    }
    text = std::string(kDefaultConfigContent);
  } else if (err != 0) {
    return Bad("read config " + file.path, ErrnoText(err, kMaxConfigBytes));
  }
  CPAMP_ASSIGN_OR_RETURN(file.values, ParseConfig(file.path, text));
  file.used = true;
  return file;
}

// The value of `key` in the file: exact match first, then case-insensitive (Go's rule).
const bj::value* FindKey(const bj::object& o, std::string_view key) {
  if (auto it = o.find(key); it != o.end()) return &it->value();
  for (const auto& kv : o) {
    if (EqualsIgnoreCase(kv.key(), key)) return &kv.value();
  }
  return nullptr;
}

// A raw setting before parsing: scalar text, or items for a list.
struct Raw {
  std::string text;
  std::optional<std::vector<std::string>> items;  // set for JSON arrays
  std::string where;                              // names the source in errors
  bool from_file = false;
};

bool IsTextKind(Kind k) {
  return k != Kind::kPositiveInt && k != Kind::kPositiveInt64 && k != Kind::kNonNegativeInt &&
         k != Kind::kBool && k != Kind::kList;
}

// Converts a config.json value to Raw; nullopt when it counts as unset (null, blank string).
Result<std::optional<Raw>> FromJson(const Row& row, const bj::value& v, const std::string& where) {
  Raw raw;
  raw.where = where;
  raw.from_file = true;
  if (v.is_null()) return std::optional<Raw>();
  if (v.is_string()) {
    raw.text = Trim(v.as_string());
    if (raw.text.empty()) return std::optional<Raw>();
    return std::optional<Raw>(std::move(raw));
  }
  if (IsTextKind(row.kind)) return Bad(where, "expected a string");
  if (v.is_array()) {
    if (row.kind != Kind::kList) return Bad(where, "expected a single value, not an array");
    std::vector<std::string> items;
    for (const bj::value& item : v.as_array()) {
      if (!item.is_string()) return Bad(where, "expected an array of strings");
      std::string s = Trim(item.as_string());
      if (!s.empty()) items.push_back(std::move(s));
    }
    raw.items = std::move(items);
    return std::optional<Raw>(std::move(raw));
  }
  if (v.is_object()) return Bad(where, "expected a single value, not an object");
  if (v.is_bool()) {
    raw.text = v.as_bool() ? "true" : "false";
  } else if (v.is_int64()) {
    raw.text = std::to_string(v.as_int64());
  } else if (v.is_uint64()) {
    raw.text = std::to_string(v.as_uint64());
  } else {
    double d = v.as_double();
    if (d == static_cast<double>(static_cast<long long>(d))) {
      raw.text = std::to_string(static_cast<long long>(d));
    } else {
      std::ostringstream text;
      text << d;
      raw.text = text.str();
    }
  }
  return std::optional<Raw>(std::move(raw));
}

Result<bool> ParseBool(const Raw& raw) {
  std::string v = ToLower(raw.text);
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  return Bad(raw.where,
             Quoted(raw.text) + " is not a boolean (use true/false, 1/0, yes/no, on/off)");
}

Result<long long> ParseInteger(const Raw& raw, long long min, long long max) {
  long long v = 0;
  bool parsed = ParseInt64(raw.text, &v);
  if (!parsed || v < min) {
    return Bad(raw.where, Quoted(raw.text) + (min > 0 ? " is not a positive integer"
                                                      : " is not a non-negative integer"));
  }
  if (v > max)
    return Bad(raw.where, Quoted(raw.text) + " is too large (max " + std::to_string(max) + ")");
  return v;
}

Status ValidateUrl(const Raw& raw, const std::string& url) {
  size_t sep = url.find("://");
  std::string scheme = ToLower(url.substr(0, sep));
  std::string_view rest = std::string_view(url).substr(sep + 3);
  std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
  std::string problem;
  if (scheme != "http" && scheme != "https")
    problem = "scheme must be http or https";
  else if (host.empty())
    problem = "missing host";
  else if (url.find_first_of(" \t\r\n") != std::string::npos)
    problem = "contains whitespace";
  if (problem.empty()) return Status::Ok();
  return Bad(raw.where, "invalid URL " + Quoted(raw.text) + ": " + problem);
}

// Parses `raw` per the row's kind and stores it in the row's field.
Status Apply(const Row& row, const Raw& raw, const ConfigFile& file, Config* cfg) {
  auto str = [&]() -> std::string& { return cfg->*std::get<std::string Config::*>(row.field); };
  switch (row.kind) {
    case Kind::kConfigFile:
    case Kind::kSecret:
      CHECK(false);  // resolved outside the generic walk
      return Status::Ok();
    case Kind::kListenAddress: {
      auto addr = ParseListenAddress(raw.text);
      if (!addr.ok()) return addr.status().Prefixed(raw.where);
      str() = raw.text;
      return Status::Ok();
    }
    case Kind::kLoopbackAddress: {
      auto addr = ParseListenAddress(raw.text);
      if (!addr.ok()) return addr.status().Prefixed(raw.where);
      if (!IsLoopbackHost(addr->host)) {
        return Bad(raw.where, "configure pprof: pprof address must use a loopback host");
      }
      str() = raw.text;
      return Status::Ok();
    }
    case Kind::kString:
      str() = raw.text;
      return Status::Ok();
    case Kind::kUrl: {
      std::string url = NormalizeBaseUrl(raw.text);
      CPAMP_RETURN_IF_ERROR(ValidateUrl(raw, url));
      str() = std::move(url);
      return Status::Ok();
    }
    case Kind::kPath:
      str() = raw.from_file && !fs::path(raw.text).is_absolute() ? JoinPath(file.dir, raw.text)
                                                                 : raw.text;
      return Status::Ok();
    case Kind::kEnum: {
      std::string v = ToLower(raw.text);
      for (const std::string& choice : SplitAndTrim(row.choices, '|')) {
        if (v == choice) {
          str() = v;
          return Status::Ok();
        }
      }
      return Bad(raw.where, Quoted(raw.text) + " is not one of " + std::string(row.choices));
    }
    case Kind::kPositiveInt:
    case Kind::kNonNegativeInt: {
      CPAMP_ASSIGN_OR_RETURN(long long v,
                             ParseInteger(raw, row.kind == Kind::kPositiveInt ? 1 : 0, INT_MAX));
      cfg->*std::get<int Config::*>(row.field) = static_cast<int>(v);
      return Status::Ok();
    }
    case Kind::kPositiveInt64: {
      CPAMP_ASSIGN_OR_RETURN(long long v, ParseInteger(raw, 1, LLONG_MAX));
      cfg->*std::get<int64_t Config::*>(row.field) = v;
      return Status::Ok();
    }
    case Kind::kBool: {
      CPAMP_ASSIGN_OR_RETURN(bool v, ParseBool(raw));
      cfg->*std::get<bool Config::*>(row.field) = v;
      return Status::Ok();
    }
    case Kind::kList: {
      std::vector<std::string> items = raw.items ? *raw.items : SplitAndTrim(raw.text, ',');
      if (!raw.items && items.empty()) return Bad(raw.where, Quoted(raw.text) + " lists no values");
      cfg->*std::get<std::vector<std::string> Config::*>(row.field) = std::move(items);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

std::string FileWhere(std::string_view key, const ConfigFile& file) {
  return std::string(key) + " (in " + file.path + ")";
}

// The file value of a row, honouring file_ignored_if_env.
Result<std::optional<Raw>> FileValue(const Row& row, const Environment& env,
                                     const ConfigFile& file) {
  if (!file.used || row.json_key.empty()) return std::optional<Raw>();
  if (!row.file_ignored_if_env.empty() && env.Get(row.file_ignored_if_env)) {
    return std::optional<Raw>();
  }
  const bj::value* v = FindKey(file.values, row.json_key);
  if (v == nullptr) return std::optional<Raw>();
  return FromJson(row, *v, FileWhere(row.json_key, file));
}

// Reads a secret file; `missing_ok` only for the hard /run/secrets default.
Result<std::string> ReadSecretFile(const std::string& path, const std::string& where,
                                   bool missing_ok) {
  std::string text;
  int err = ReadSmallFile(path, kMaxSecretBytes, &text);
  if (err == 0) return Trim(text);
  if (missing_ok && (err == ENOENT || err == ENOTDIR)) return std::string();
  return Bad(where, "cannot read " + path + ": " + ErrnoText(err, kMaxSecretBytes));
}

// Secret order: <VAR>, then the file named by <VAR>_FILE, the file key, the default file.
Status ResolveSecret(const Row& row, const Environment& env, const ConfigFile& file, Config* cfg) {
  std::string& out = cfg->*std::get<std::string Config::*>(row.field);
  if (auto value = env.Get(row.env)) {
    cfg->env_overridden.insert(std::string(row.env));
    out = *value;
  } else if (auto path = env.Get(row.file_env)) {
    cfg->env_overridden.insert(std::string(row.file_env));
    CPAMP_ASSIGN_OR_RETURN(out, ReadSecretFile(*path, std::string(row.file_env), false));
  } else {
    CPAMP_ASSIGN_OR_RETURN(std::optional<Raw> raw, FileValue(row, env, file));
    if (raw) {
      std::string resolved =
          fs::path(raw->text).is_absolute() ? raw->text : JoinPath(file.dir, raw->text);
      CPAMP_ASSIGN_OR_RETURN(out, ReadSecretFile(resolved, raw->where, false));
    } else {
      CPAMP_ASSIGN_OR_RETURN(
          out, ReadSecretFile(std::string(row.default_text), std::string(row.default_text), true));
    }
  }
  RegisterSecret(out);
  return Status::Ok();
}

Status ResolveRow(const Row& row, const Environment& env, const ConfigFile& file, Config* cfg) {
  if (row.kind == Kind::kSecret) return ResolveSecret(row, env, file, cfg);
  if (auto value = env.Get(row.env)) {
    cfg->env_overridden.insert(std::string(row.env));
    return Apply(row, Raw{*value, std::nullopt, std::string(row.env), false}, file, cfg);
  }
  CPAMP_ASSIGN_OR_RETURN(std::optional<Raw> raw, FileValue(row, env, file));
  if (raw) return Apply(row, *raw, file, cfg);
  switch (row.derived) {
    case Derived::kDataDir:
      cfg->*std::get<std::string Config::*>(row.field) =
          file.dir.empty() ? "/data" : JoinPath(file.dir, "data");
      return Status::Ok();
    case Derived::kInDataDir:
      cfg->*std::get<std::string Config::*>(row.field) = JoinPath(cfg->data_dir, row.leaf);
      return Status::Ok();
    case Derived::kNone:
      break;
  }
  if (row.default_text.empty()) return Status::Ok();  // the Config{} value (empty) stands
  Status s =
      Apply(row, Raw{std::string(row.default_text), std::nullopt, "default", false}, file, cfg);
  CHECK(s.ok());  // a default that does not parse is a bug in the table
  return s;
}

std::string EscapeCell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

Environment Environment::FromProcess() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.vars.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) env.executable_dir = exe.parent_path().string();
  return env;
}

std::optional<std::string> Environment::Get(std::string_view name) const {
  auto it = vars.find(std::string(name));
  if (it == vars.end()) return std::nullopt;
  std::string v = Trim(it->second);
  if (v.empty()) return std::nullopt;
  return v;
}

bool Config::connection_from_env() const {
  return !cpa_upstream_url.empty() && !cpa_management_key.empty();
}

Result<Config> Load(const Environment& env, const LoadOptions& options) {
  CPAMP_ASSIGN_OR_RETURN(ConfigFile file, ResolveConfigFile(env, options));
  Config cfg;
  if (file.used) cfg.config_path = file.path;
  if (env.Get(kConfigEnv)) cfg.env_overridden.insert(std::string(kConfigEnv));
  for (const Row& row : kRows) {
    if (row.kind == Kind::kConfigFile) continue;
    CPAMP_RETURN_IF_ERROR(ResolveRow(row, env, file, &cfg));
  }
  return cfg;
}

const std::vector<KeyInfo>& KeyTable() {
  static const std::vector<KeyInfo> table = [] {
    std::vector<KeyInfo> out;
    for (const Row& row : kRows) {
      if (row.kind == Kind::kSecret) {
        out.push_back({row.env, "", "", row.description});
        out.push_back({row.file_env, row.json_key, row.default_text, row.file_description});
      } else {
        out.push_back({row.env, row.json_key, row.default_text, row.description});
      }
    }
    return out;
  }();
  return table;
}

std::string KeyTableMarkdown() {
  std::string out =
      "| Env var | config.json key | Default | Meaning |\n"
      "|---|---|---|---|\n";
  for (const KeyInfo& k : KeyTable()) {
    out += "| `" + std::string(k.env) + "` | ";
    out += k.json_key.empty() ? "—" : "`" + std::string(k.json_key) + "`";
    out += " | ";
    out += k.default_text.empty() ? "empty" : "`" + EscapeCell(k.default_text) + "`";
    out += " | " + EscapeCell(k.description) + " |\n";
  }
  return out;
}

}  // namespace cpamp::config
