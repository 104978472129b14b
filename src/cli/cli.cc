// CLI11 front end. The server takes no flags (it is configured by environment and
// config.json, like upstream); subcommands are offline tools that share the config
// resolution. reset-admin-key's flags, messages and exit codes follow cpamp-api.md §2.7.

#include "cli/cli.h"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <boost/json.hpp>

#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "app/app.h"
#include "base/log.h"
#include "base/strings.h"
#include "config/config.h"
#include "db/db.h"
#include "setup/setup.h"
#include "usage/usage_data.h"

namespace cpamp::cli {
namespace {

int ResetFail(const std::string& message) {
  spdlog::error("reset admin key: {}", message);
  return 1;
}

int ResetAdminKey(const std::string& db_path_flag, const std::string& key_flag,
                  const std::string& key_file, const std::vector<std::string>& extra) {
  if (!extra.empty()) return ResetFail("unexpected argument \"" + extra.front() + "\"");
  if (!key_flag.empty() && !key_file.empty()) {
    return ResetFail("--admin-key and --admin-key-file are mutually exclusive");
  }
  std::string key = Trim(key_flag);
  if (!key_file.empty()) {
    std::ifstream in(key_file);
    if (!in) return ResetFail("read admin key file " + key_file + ": cannot open file");
    std::stringstream ss;
    ss << in.rdbuf();
    key = Trim(ss.str());
    if (key.empty()) return ResetFail("admin key file " + key_file + " is empty");
  }
  std::string db_path = db_path_flag;
  if (db_path.empty()) {
    config::LoadOptions options;
    options.create_default_file = false;
    auto cfg = config::Load(config::Environment::FromProcess(), options);
    if (!cfg.ok()) return ResetFail("load config: " + cfg.status().message());
    db_path = cfg->db_path;
  }
  auto looks = db::LooksLikeManagerDatabase(db_path);
  if (!looks.ok()) return ResetFail(looks.status().message());
  auto lock = db::ProcessLock::Acquire(db_path);
  if (!lock.ok()) {
    return ResetFail("acquire admin reset lock; stop Manager Server and retry: " +
                     lock.status().message());
  }
  auto result = setup::ResetAdminKey(db_path, key, SystemClock::Instance());
  if (!result.ok()) return ResetFail(result.status().message());
  std::cout << "CPA Manager Plus admin key reset.\n";
  if (!result->generated_key.empty()) {
    std::cout << "New admin key: " << result->generated_key << "\n"
              << "Save this value now. It will not be shown again.\n";
  } else {
    std::cout << "Use the provided admin key to log in after restarting Manager Server.\n";
  }
  std::cout.flush();
  return 0;
}

// The database path from --db-path or the normal configuration (never creating config.json).
Result<std::string> ResolveDbPath(const std::string& flag) {
  if (!flag.empty()) return flag;
  config::LoadOptions options;
  options.create_default_file = false;
  auto cfg = config::Load(config::Environment::FromProcess(), options);
  if (!cfg.ok()) return cfg.status().Prefixed("load config");
  return cfg->db_path;
}

int ExportCommand(const std::string& db_flag, const std::string& out, std::optional<int64_t> from,
                  std::optional<int64_t> to, int64_t limit) {
  auto db_path = ResolveDbPath(db_flag);
  if (!db_path.ok()) {
    spdlog::error("export: {}", db_path.status().message());
    return 1;
  }
  auto looks = db::LooksLikeManagerDatabase(*db_path);
  if (!looks.ok()) {
    spdlog::error("export: {}", looks.status().message());
    return 1;
  }
  usage::ExportRange range;
  range.from_ms = from;
  range.to_ms = to;
  range.limit = limit;
  // Reads one consistent snapshot; safe while a server is running on the same database.
  auto stats = usage::ExportToFile(*db_path, out, range);
  if (!stats.ok()) {
    spdlog::error("export: {}", stats.status().message());
    return 1;
  }
  std::cout << "Exported " << stats->rows << " events (" << stats->bytes << " bytes) to " << out
            << "\n";
  return 0;
}

int ImportCommand(const std::string& db_flag, const std::string& file) {
  auto db_path = ResolveDbPath(db_flag);
  if (!db_path.ok()) {
    spdlog::error("import: {}", db_path.status().message());
    return 1;
  }
  auto lock = db::ProcessLock::Acquire(*db_path);
  if (!lock.ok()) {
    spdlog::error("import: stop Manager Server (or import through its API) and retry: {}",
                  lock.status().message());
    return 1;
  }
  auto database = db::Database::Open(*db_path);
  if (!database.ok()) {
    spdlog::error("import: open database {}: {}", *db_path, database.status().message());
    return 1;
  }
  auto report = usage::ImportFile(**database, file);
  if (!report.ok()) {
    spdlog::error("import: {}", report.status().message());
    return 1;
  }
  std::cout << boost::json::serialize(report->ToJson()) << "\n";
  if (!report->status.ok()) {
    spdlog::error("import stopped: {}", report->status.message());
    return 1;
  }
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
  InitLogging();
  CLI::App cli{
      "CPA Manager Plus — Manager Server for CLIProxyAPI.\n"
      "Configured through environment variables and config.json (see docs/operations.md).",
      "cpa-manager-plus"};
  cli.set_version_flag("--version", std::string("cpa-manager-plus ") + app::kVersion);
  cli.require_subcommand(0, 1);
  cli.footer("Settings (env var / config.json key / default):\n" + config::KeyTableMarkdown());

  auto* serve = cli.add_subcommand("serve", "Run the Manager Server (the default).");

  std::string db_path;
  std::string admin_key;
  std::string admin_key_file;
  auto* reset = cli.add_subcommand(
      "reset-admin-key",
      "Replace the admin key in a stopped server's database and print the new key.");
  reset->alias("reset-admin-password");
  reset->add_option("--db-path", db_path, "SQLite database (default: from configuration)");
  reset->add_option("--admin-key", admin_key, "Use this key instead of generating one");
  reset->add_option("--admin-key-file", admin_key_file, "Read the new key from this file");
  reset->allow_extras();

  std::string export_db;
  std::string export_out;
  std::optional<int64_t> export_from;
  std::optional<int64_t> export_to;
  int64_t export_limit = 50'000;
  auto* exp = cli.add_subcommand(
      "export", "Write usage events as NDJSON (the format of GET /v0/management/usage/export).");
  exp->add_option("--db-path", export_db, "SQLite database (default: from configuration)");
  exp->add_option("-o,--output", export_out, "Output file")->required();
  exp->add_option("--from-ms", export_from, "Start of the range (epoch ms, inclusive)");
  exp->add_option("--to-ms", export_to, "End of the range (epoch ms, exclusive)");
  exp->add_option("--limit", export_limit,
                  "Without a range: the newest N events (default 50000, like USAGE_QUERY_LIMIT)");

  std::string import_db;
  std::string import_file;
  auto* imp = cli.add_subcommand(
      "import",
      "Import a usage file (exported NDJSON, JSON arrays, queue records, legacy CPA "
      "exports) into a stopped server's database; duplicates are skipped.");
  imp->add_option("--db-path", import_db, "SQLite database (default: from configuration)");
  imp->add_option("file", import_file, "File to import")->required();

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (reset->parsed()) {
    return ResetAdminKey(db_path, admin_key, admin_key_file, reset->remaining());
  }
  if (exp->parsed()) {
    return ExportCommand(export_db, export_out, export_from, export_to, export_limit);
  }
  if (imp->parsed()) return ImportCommand(import_db, import_file);
  (void)serve;
  return app::Serve();
}

}  // namespace cpamp::cli
