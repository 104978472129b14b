// Schema migrations: an ordered table of idempotent steps (STYLE habit 13).
//
// Design notes:
// - Bookkeeping lives in our own table cpamp_schema_migrations(version, name, applied_at_ms);
//   upstream never used PRAGMA user_version and neither do we, so an upstream binary opening the
//   file later sees nothing unfamiliar except that one table.
// - The authoritative tables are described once, as data: each table is its HEAD (v1.12.2)
//   column list in declared order plus its table constraints (spec storage 3.4/3.7). Step 1
//   renders CREATE TABLE IF NOT EXISTS from it; step 2 uses the same list to ALTER TABLE ADD
//   COLUMN whatever an older file (CPA-Manager era, v1.1.0, …) lacks. Physical column order of
//   upgraded files therefore differs from fresh ones; every reader selects columns by name.
// - Step 3 creates only the v1.1.0 indexes (after step 2, so every indexed column exists).
//   Upstream's later usage_events indexes serve upstream's own query shapes and are left to the
//   contexts that design ours (as further numbered steps).
// - Upstream's derived tables (rollups, projections, FTS, ledger, quota) are neither created nor
//   touched: any table not in our list is left exactly as found.
// - The model_prices *_configured flags get upstream's back-fill when a flag column is first
//   added (spec storage 3.1 step 16), in the same transaction as the ALTER.
#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "db/db.h"
#include "db/usage_event_columns.h"

namespace cpamp::db {
namespace {

struct ColumnDef {
  std::string_view name;
  std::string_view decl;  // type and column constraints, as in CREATE TABLE
};

struct TableDef {
  std::string_view name;
  std::span<const ColumnDef> columns;
  std::string_view constraints;  // table constraints appended after the columns, or empty
};

// usage_events comes from the shared row table (db/usage_event_columns.h).
constexpr ColumnDef kUsageEvents[] = {
#define CPAMP_USAGE_COLUMN_DEF(name, kind, decl, init) {#name, decl},
    CPAMP_USAGE_EVENT_ID_COLUMN(CPAMP_USAGE_COLUMN_DEF)
        CPAMP_USAGE_EVENT_COLUMNS(CPAMP_USAGE_COLUMN_DEF)
#undef CPAMP_USAGE_COLUMN_DEF
};

constexpr ColumnDef kDeadLetterEvents[] = {
    {"id", "integer primary key autoincrement"},
    {"payload", "text not null"},
    {"error", "text not null"},
    {"created_at_ms", "integer not null"},
};

constexpr ColumnDef kSettings[] = {
    {"key", "text primary key"},
    {"value", "text not null"},
    {"updated_at_ms", "integer not null"},
};

constexpr ColumnDef kModelPrices[] = {
    {"model", "text primary key"},
    {"prompt_per_1m", "real not null"},
    {"completion_per_1m", "real not null"},
    {"cache_per_1m", "real not null"},
    {"cache_read_per_1m", "real not null default 0"},
    {"cache_creation_per_1m", "real not null default 0"},
    {"prompt_configured", "integer not null default 0"},
    {"completion_configured", "integer not null default 0"},
    {"cache_read_configured", "integer not null default 0"},
    {"cache_creation_configured", "integer not null default 0"},
    {"source", "text"},
    {"source_model_id", "text"},
    {"raw_json", "text"},
    {"updated_at_ms", "integer not null"},
    {"synced_at_ms", "integer"},
};

constexpr ColumnDef kModelPriceContextTiers[] = {
    {"model", "text not null"},
    {"threshold_tokens", "integer not null"},
    {"prompt_per_1m", "real not null default 0"},
    {"completion_per_1m", "real not null default 0"},
    {"cache_per_1m", "real not null default 0"},
    {"cache_read_per_1m", "real not null default 0"},
    {"cache_creation_per_1m", "real not null default 0"},
    {"prompt_configured", "integer not null default 0"},
    {"completion_configured", "integer not null default 0"},
    {"cache_configured", "integer not null default 0"},
    {"cache_read_configured", "integer not null default 0"},
    {"cache_creation_configured", "integer not null default 0"},
};

constexpr ColumnDef kModelPriceServiceTiers[] = {
    {"model", "text not null"},
    {"mode", "text not null"},
    {"service_tier", "text not null"},
    {"prompt_per_1m", "real not null default 0"},
    {"completion_per_1m", "real not null default 0"},
    {"cache_per_1m", "real not null default 0"},
    {"cache_read_per_1m", "real not null default 0"},
    {"cache_creation_per_1m", "real not null default 0"},
    {"prompt_configured", "integer not null default 0"},
    {"completion_configured", "integer not null default 0"},
    {"cache_configured", "integer not null default 0"},
    {"cache_read_configured", "integer not null default 0"},
    {"cache_creation_configured", "integer not null default 0"},
};

constexpr ColumnDef kApiKeyAliases[] = {
    {"api_key_hash", "text primary key"},
    {"alias", "text not null"},
    {"updated_at_ms", "integer not null"},
};

constexpr ColumnDef kCodexInspectionRuns[] = {
    {"id", "integer primary key autoincrement"},
    {"trigger_type", "text not null"},
    {"trigger_key", "text"},
    {"status", "text not null"},
    {"started_at_ms", "integer not null"},
    {"finished_at_ms", "integer"},
    {"total_files", "integer not null default 0"},
    {"probe_set_count", "integer not null default 0"},
    {"sampled_count", "integer not null default 0"},
    {"disabled_count", "integer not null default 0"},
    {"enabled_count", "integer not null default 0"},
    {"delete_count", "integer not null default 0"},
    {"disable_count", "integer not null default 0"},
    {"enable_count", "integer not null default 0"},
    {"reauth_count", "integer not null default 0"},
    {"keep_count", "integer not null default 0"},
    {"error", "text"},
    {"settings_json", "text not null"},
    {"created_at_ms", "integer not null"},
    {"updated_at_ms", "integer not null"},
};

constexpr ColumnDef kCodexInspectionResults[] = {
    {"id", "integer primary key autoincrement"},
    {"run_id", "integer not null"},
    {"account_key", "text not null"},
    {"file_name", "text not null"},
    {"display_account", "text not null"},
    {"account_snapshot", "text"},
    {"auth_index", "text"},
    {"account_id", "text"},
    {"provider", "text"},
    {"disabled", "integer not null default 0"},
    {"status", "text"},
    {"state", "text"},
    {"action", "text not null"},
    {"action_reason", "text"},
    {"action_status", "text"},
    {"executed_action", "text"},
    {"action_error", "text"},
    {"status_code", "integer"},
    {"used_percent", "real"},
    {"is_quota", "integer not null default 0"},
    {"auto_recover_eligible", "integer not null default 0"},
    {"error", "text"},
    {"plan_type", "text"},
    {"quota_windows_json", "text"},
    {"error_kind", "text"},
    {"error_detail", "text"},
    {"created_at_ms", "integer not null"},
};

constexpr ColumnDef kCodexInspectionLogs[] = {
    {"id", "integer primary key autoincrement"},
    {"run_id", "integer not null"},
    {"level", "text not null"},
    {"message", "text not null"},
    {"detail_json", "text"},
    {"created_at_ms", "integer not null"},
};

// Creation order respects foreign keys (parents first).
constexpr TableDef kAuthoritativeTables[] = {
    {"usage_events", kUsageEvents, ""},
    {"dead_letter_events", kDeadLetterEvents, ""},
    {"settings", kSettings, ""},
    {"model_prices", kModelPrices, ""},
    {"model_price_context_tiers", kModelPriceContextTiers,
     "primary key (model, threshold_tokens), "
     "foreign key (model) references model_prices(model) on delete cascade"},
    {"model_price_service_tiers", kModelPriceServiceTiers,
     "primary key (model, mode, service_tier), "
     "foreign key (model) references model_prices(model) on delete cascade"},
    {"api_key_aliases", kApiKeyAliases, ""},
    {"codex_inspection_runs", kCodexInspectionRuns, ""},
    {"codex_inspection_results", kCodexInspectionResults,
     "foreign key(run_id) references codex_inspection_runs(id) on delete cascade, "
     "unique(run_id, account_key)"},
    {"codex_inspection_logs", kCodexInspectionLogs,
     "foreign key(run_id) references codex_inspection_runs(id) on delete cascade"},
};

// The v1.1.0 index set (spec storage 3.3); every version since has these columns.
constexpr std::string_view kBaseIndexes[] = {
    "create index if not exists idx_usage_events_timestamp on usage_events(timestamp_ms)",
    "create index if not exists idx_usage_events_request_id on usage_events(request_id)",
    "create index if not exists idx_usage_events_model on usage_events(model)",
    "create index if not exists idx_usage_events_auth_index on usage_events(auth_index)",
    "create index if not exists idx_usage_events_endpoint on usage_events(endpoint)",
    "create index if not exists idx_codex_inspection_runs_started_at "
    "on codex_inspection_runs(started_at_ms)",
    "create index if not exists idx_codex_inspection_runs_status on codex_inspection_runs(status)",
    "create index if not exists idx_codex_inspection_runs_trigger "
    "on codex_inspection_runs(trigger_type, trigger_key)",
    "create index if not exists idx_codex_inspection_results_run "
    "on codex_inspection_results(run_id)",
    "create index if not exists idx_codex_inspection_logs_run "
    "on codex_inspection_logs(run_id, created_at_ms)",
};

// True when `table` has a unique index on exactly `column` (a UNIQUE column constraint's autoindex
// or a CREATE UNIQUE INDEX).
Result<bool> HasUniqueIndexOn(Connection& conn, std::string_view table, std::string_view column) {
  CPAMP_ASSIGN_OR_RETURN(
      Statement list,
      conn.Prepare(fmt::format("select name from pragma_index_list('{}') where \"unique\" = 1",
                               table)));
  std::vector<std::string> names;
  for (;;) {
    CPAMP_ASSIGN_OR_RETURN(bool row, list.Step());
    if (!row) break;
    names.push_back(list.ColumnText(0));
  }
  for (const std::string& name : names) {
    CPAMP_ASSIGN_OR_RETURN(Statement info,
                           conn.Prepare("select name from pragma_index_info(?1)"));
    CPAMP_RETURN_IF_ERROR(info.Bind(1, name));
    std::vector<std::string> cols;
    for (;;) {
      CPAMP_ASSIGN_OR_RETURN(bool row, info.Step());
      if (!row) break;
      cols.push_back(info.ColumnText(0));
    }
    if (cols.size() == 1 && cols[0] == column) return true;
  }
  return false;
}

// Prefixes a failure with what we were doing; OK passes through unchanged.
Status InContext(Status status, std::string_view context) {
  return status.ok() ? status : status.Prefixed(context);
}

std::string CreateTableSql(const TableDef& table) {
  std::string sql = fmt::format("create table if not exists {} (", table.name);
  for (size_t i = 0; i < table.columns.size(); ++i) {
    if (i > 0) sql += ", ";
    sql += fmt::format("{} {}", table.columns[i].name, table.columns[i].decl);
  }
  if (!table.constraints.empty()) {
    sql += ", ";
    sql += table.constraints;
  }
  sql += ")";
  return sql;
}

// SQLite's ALTER TABLE ADD COLUMN cannot add a PRIMARY KEY or UNIQUE column, nor a NOT NULL
// column without a default.
bool CanAddColumn(const ColumnDef& column) {
  std::string_view d = column.decl;
  if (d.find("primary key") != std::string_view::npos) return false;
  if (d.find("unique") != std::string_view::npos) return false;
  if (d.find("not null") != std::string_view::npos) {
    return d.find("default") != std::string_view::npos;
  }
  return true;
}

Status CreateAuthoritativeTables(Connection& conn) {
  for (const TableDef& table : kAuthoritativeTables) {
    CPAMP_RETURN_IF_ERROR(InContext(conn.Exec(CreateTableSql(table)), table.name));
  }
  return Status::Ok();
}

// After the column step, so even the oldest CPA-Manager-era tables have every indexed column.
Status CreateBaseIndexes(Connection& conn) {
  for (std::string_view sql : kBaseIndexes) CPAMP_RETURN_IF_ERROR(conn.Exec(sql));
  return Status::Ok();
}

// Upstream's back-fill when a model_prices *_configured flag is first added: rows that existed
// before the flags had their base prices set by hand or sync, so prompt/completion count as
// configured, and the cache read/creation rates count when non-zero.
Status BackfillModelPriceFlag(Connection& conn, std::string_view column) {
  if (column == "prompt_configured" || column == "completion_configured") {
    return conn.Exec(fmt::format("update model_prices set {} = 1", column));
  }
  if (column == "cache_read_configured") {
    return conn.Exec(
        "update model_prices set cache_read_configured = 1 "
        "where cache_read_per_1m != 0");
  }
  if (column == "cache_creation_configured") {
    return conn.Exec(
        "update model_prices set cache_creation_configured = 1 "
        "where cache_creation_per_1m != 0");
  }
  return Status::Ok();
}

Status AddMissingHeadColumns(Connection& conn) {
  for (const TableDef& table : kAuthoritativeTables) {
    CPAMP_ASSIGN_OR_RETURN(std::vector<std::string> existing, conn.TableColumns(table.name));
    std::set<std::string, std::less<>> have(existing.begin(), existing.end());
    for (const ColumnDef& column : table.columns) {
      if (have.count(column.name) != 0) continue;
      if (!CanAddColumn(column)) {
        return Error(ErrorCode::kRequestFailed,
                     fmt::format("table {} lacks required column {} and it cannot be added",
                                 table.name, column.name));
      }
      Status added = conn.Exec(
          fmt::format("alter table {} add column {} {}", table.name, column.name, column.decl));
      CPAMP_RETURN_IF_ERROR(
          InContext(added, fmt::format("add column {}.{}", table.name, column.name)));
      if (table.name == "model_prices") {
        CPAMP_RETURN_IF_ERROR(BackfillModelPriceFlag(conn, column.name));
      }
    }
  }
  return Status::Ok();
}

// Step 4 (analytics context): the hourly usage rollup, its checkpoint row and the usage_events
// indexes the analytics raw paths need (time-ordered covering scan, keyset paging, failures).
// Rollup rows hold per-event latency/TTFT samples as little-endian uint32 blobs so P95s are exact.
Status CreateAnalyticsRollups(Connection& conn) {
  return conn.Exec(
      "create table if not exists analytics_hourly_rollups ("
      "bucket_ms integer not null, model text not null, billing_model text not null, "
      "service_tier text not null, context_band integer not null, failed integer not null, "
      "calls integer not null default 0, input_tokens integer not null default 0, "
      "output_tokens integer not null default 0, reasoning_tokens integer not null default 0, "
      "cached_tokens integer not null default 0, cache_read_tokens integer not null default 0, "
      "cache_creation_tokens integer not null default 0, total_tokens integer not null default 0, "
      "latency_sum_ms integer not null default 0, latency_samples integer not null default 0, "
      "zero_token_calls integer not null default 0, long_input_tokens integer not null default 0, "
      "long_output_tokens integer not null default 0, long_cached_tokens integer not null default 0, "
      "long_cache_read_tokens integer not null default 0, "
      "long_cache_creation_tokens integer not null default 0, latency_blob blob, ttft_blob blob, "
      "primary key (bucket_ms, model, billing_model, service_tier, context_band, failed)) "
      "without rowid;"
      "create table if not exists analytics_rollup_state (name text primary key, "
      "last_event_id integer not null default 0, structure_revision text not null default '', "
      "retained_before_ms integer not null default 0, updated_at_ms integer not null default 0);"
      "create index if not exists idx_analytics_events_ts_id on usage_events(timestamp_ms, id);"
      "create index if not exists idx_analytics_events_core on usage_events(timestamp_ms, failed, "
      "model, requested_model, resolved_model, service_tier, input_tokens, "
      "normalized_total_input_tokens, output_tokens, reasoning_tokens, cached_tokens, "
      "cache_tokens, cache_read_tokens, cache_creation_tokens, total_tokens, latency_ms, ttft_ms, "
      "auth_index, source_hash);"
      "create index if not exists idx_analytics_events_failed on usage_events(failed, "
      "timestamp_ms) where failed = 1;");
}

// Step 5 (analytics context): drop the three step-4 usage_events indexes. Their queries are served
// by the rollup plus the base idx_usage_events_timestamp (an index on timestamp_ms also orders by
// rowid = id, so it serves the (timestamp_ms, id) keyset too), and every extra usage_events index
// slows ingest.
Status DropAnalyticsEventIndexes(Connection& conn) {
  return conn.Exec(
      "drop index if exists idx_analytics_events_core;"
      "drop index if exists idx_analytics_events_failed;"
      "drop index if exists idx_analytics_events_ts_id;");
}

// Step 6 (analytics context): the search projection, one row per event: the lower-ASCII text of
// the spec storage 6.1 search columns joined with U+001F, clustered by (timestamp_ms, id) so a
// search reads a range sequentially. Filled by the rollup worker (checkpoint row 'search' in
// analytics_rollup_state) and pruned together with usage_events by retention.
Status CreateAnalyticsSearchRows(Connection& conn) {
  return conn.Exec(
      "create table if not exists analytics_search_rows (timestamp_ms integer not null, "
      "id integer not null, text text not null, primary key (timestamp_ms, id)) without rowid");
}

// Step 7 (collector context): drop the three v1.1.0 usage_events indexes no query of ours uses.
// `EXPLAIN QUERY PLAN` of every usage_events query (docs/storage/indexes.md): the analytics,
// export, retention and rollup paths read by timestamp_ms (idx_usage_events_timestamp) or by id,
// account history by auth_index (idx_usage_events_auth_index); request_id and model are only
// searched with LIKE or grouped after an id-ordered scan, endpoint never. Each index was one more
// random B-tree insert per event (~81 bytes and ~15 % of the writer's time together). Upstream
// recreates them with CREATE INDEX IF NOT EXISTS if a user goes back to it.
Status DropUnusedEventIndexes(Connection& conn) {
  return conn.Exec(
      "drop index if exists idx_usage_events_endpoint;"
      "drop index if exists idx_usage_events_model;"
      "drop index if exists idx_usage_events_request_id;");
}

// Step 8 (collector context): in files we create, idx_usage_events_timestamp is the unique index
// (timestamp_ms, event_hash); it dedups events and serves every time-range read.
// Upstream declares `event_hash ... unique`, an index in the random order of SHA-256: every event
// dirties a random page of it, so once it outgrows the page cache each commit rewrites most of
// its pages through the WAL and ingest falls as the table grows (1M rows: ~35k events/s; 4.5M:
// ~15k, docs/benchmarks-ingest.md). The event hash covers the normalized timestamp text, from
// which timestamp_ms is derived, so one event always has one (timestamp_ms, event_hash) pair and
// the composite key dedups exactly as the hash alone does (imports reject exported rows without
// a usable time, which upstream would store at "now"), while new keys land beside each other at
// the end of the index, and one index does the work of two. Files whose table carries upstream's
// UNIQUE(event_hash) (upstream's, and ours before this step) keep it and their plain timestamp
// index; nothing is rebuilt. The insert says `ON CONFLICT DO NOTHING` without a target, which
// serves either shape. Only a file whose usage_events table we create runs the swap, while it
// is still empty.
Status CreateEventDedupIndex(Connection& conn) {
  CPAMP_ASSIGN_OR_RETURN(bool hash_unique, HasUniqueIndexOn(conn, "usage_events", "event_hash"));
  if (hash_unique) return Status::Ok();
  return conn.Exec(
      "drop index if exists idx_usage_events_timestamp;"
      "create unique index idx_usage_events_timestamp on usage_events(timestamp_ms, event_hash);");
}

struct MigrationStep {
  int version;
  std::string_view name;
  Status (*apply)(Connection&);
};

// Append only; never renumber or edit a released step.
constexpr MigrationStep kMigrations[] = {
    {1, "create_authoritative_tables", &CreateAuthoritativeTables},
    {2, "add_missing_head_columns", &AddMissingHeadColumns},
    {3, "create_base_indexes", &CreateBaseIndexes},
    {4, "create_analytics_rollups", &CreateAnalyticsRollups},
    {5, "drop_analytics_event_indexes", &DropAnalyticsEventIndexes},
    {6, "create_analytics_search_rows", &CreateAnalyticsSearchRows},
    {7, "drop_unused_event_indexes", &DropUnusedEventIndexes},
    {8, "create_event_dedup_index", &CreateEventDedupIndex},
};

Result<std::set<int>> AppliedVersions(Connection& conn) {
  CPAMP_ASSIGN_OR_RETURN(Statement stmt,
                         conn.Prepare("select version from cpamp_schema_migrations"));
  std::set<int> versions;
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    versions.insert(static_cast<int>(stmt.ColumnInt64(0)));
  }
  return versions;
}

Status ApplyStep(Connection& conn, const MigrationStep& step, int64_t now_ms) {
  CPAMP_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(conn));
  // Re-check under the write lock: another process opening the same file (a CLI tool that does
  // not take the ProcessLock) may have applied this step since we listed the applied versions.
  CPAMP_ASSIGN_OR_RETURN(std::set<int> applied, AppliedVersions(conn));
  if (applied.count(step.version) != 0) return Status::Ok();
  CPAMP_RETURN_IF_ERROR(step.apply(conn));
  CPAMP_ASSIGN_OR_RETURN(Statement record,
                         conn.Prepare("insert into cpamp_schema_migrations "
                                      "(version, name, applied_at_ms) values (?1, ?2, ?3)"));
  CPAMP_RETURN_IF_ERROR(record.Bind(1, step.version));
  CPAMP_RETURN_IF_ERROR(record.Bind(2, step.name));
  CPAMP_RETURN_IF_ERROR(record.Bind(3, now_ms));
  CPAMP_RETURN_IF_ERROR(record.Run());
  return tx.Commit();
}

}  // namespace

Status RunMigrations(Connection& conn, int64_t now_ms) {
  CPAMP_RETURN_IF_ERROR(conn.Exec(
      "create table if not exists cpamp_schema_migrations ("
      "version integer primary key, name text not null, applied_at_ms integer not null)"));
  CPAMP_ASSIGN_OR_RETURN(std::set<int> applied, AppliedVersions(conn));
  for (const MigrationStep& step : kMigrations) {
    if (applied.count(step.version) != 0) continue;
    CPAMP_RETURN_IF_ERROR(
        InContext(ApplyStep(conn, step, now_ms),
                  fmt::format("schema migration {} ({})", step.version, step.name)));
  }
  return Status::Ok();
}

int LatestSchemaVersion() { return std::end(kMigrations)[-1].version; }

std::vector<std::string_view> AuthoritativeTableNames() {
  std::vector<std::string_view> names;
  for (const TableDef& table : kAuthoritativeTables) names.push_back(table.name);
  return names;
}

}  // namespace cpamp::db
