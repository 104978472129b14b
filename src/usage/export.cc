// JSONL export (§5.1) and the CPA-compatible /usage payload (§5.2), both streamed.
//
// Each cursor opens its own read-only connection and holds ONE read transaction from Open() to
// destruction, so every page comes from the same snapshot while the writer keeps committing
// (WAL). A dedicated connection (not the Database reader pool) is used because the stream
// outlives any single Read() callback and must not starve the pool for the length of a
// download. Rows are stepped from one prepared statement and formatted straight into the output
// chunk: memory is one chunk (~64 KiB) plus one row.
//
// The row window without a range follows upstream: the `limit`-th newest row by
// (timestamp_ms DESC, id DESC) is the cutoff, rows at or after it are exported oldest first.
// For /usage the grouping order (endpoint, analytics model, newest first) is produced by SQLite's
// sorter through a deterministic SQL function for the analytics model, so the process never holds
// the row set. JSON is written by hand with Go's escaping (AppendGoJsonString) in the documented
// key order; optional keys are omitted when NULL or empty.
#include <sqlite3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include <unistd.h>

#include "base/json.h"
#include "usage/internal.h"
#include "usage/usage_data.h"

namespace cpamp::usage {

namespace {

using internal::AppendGoJsonString;

// Appends `key: value` pairs to one JSON object.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }
  void Key(std::string_view key) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.push_back('"');
    out_.append(key);
    out_.append("\":");
  }
  void Str(std::string_view key, std::string_view v) {
    Key(key);
    AppendGoJsonString(out_, v);
  }
  void StrIfAny(std::string_view key, std::string_view v) {
    if (!v.empty()) Str(key, v);
  }
  void Int(std::string_view key, int64_t v) {
    Key(key);
    out_.append(std::to_string(v));
  }
  void Bool(std::string_view key, bool v) {
    Key(key);
    out_.append(v ? "true" : "false");
  }
  void Raw(std::string_view key, std::string_view json) {
    Key(key);
    out_.append(json);
  }
  void End() { out_.push_back('}'); }
  std::string& out() { return out_; }

 private:
  std::string& out_;
  bool first_ = true;
};

// Column helpers on a row.
struct Row {
  const db::Statement& s;
  std::string_view Text(int i) const { return s.ColumnTextView(i); }
  bool Null(int i) const { return s.IsNull(i); }
  int64_t Int(int i) const { return s.ColumnInt64(i); }
};

void OptInt(ObjectWriter& w, const Row& r, std::string_view key, int i) {
  if (!r.Null(i)) w.Int(key, r.Int(i));
}

// The stored response_metadata_json, compacted, if it is valid JSON; "" otherwise.
std::string CompactJson(std::string_view text) {
  if (text.empty()) return {};
  boost::system::error_code ec;
  boost::json::parse(text, ec);
  if (ec) return {};
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      out.push_back(c);
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (c == '"') in_string = true;
    out.push_back(c);
  }
  return out;
}

void AppendFloatField(ObjectWriter& w, std::string_view key, double v) {
  if (!std::isfinite(v)) return;
  w.Key(key);
  json::AppendDouble(w.out(), v);
}

Status SqliteError(sqlite3* db, std::string_view what) {
  return Error(ErrorCode::kRequestFailed, std::string(what) + ": " + sqlite3_errmsg(db));
}

// Opens the snapshot and computes the "newest N" cutoff as (timestamp_ms, id).
struct Snapshot {
  std::unique_ptr<db::Connection> conn;
  std::optional<db::Transaction> tx;
  int64_t max_id = 0;
  int64_t cutoff_ts = std::numeric_limits<int64_t>::min();
  int64_t cutoff_id = 0;
};

Status OpenSnapshot(const std::string& db_path, std::optional<int64_t> limit, Snapshot& snap) {
  CPAMP_ASSIGN_OR_RETURN(snap.conn, db::Connection::Open(db_path, /*read_only=*/true));
  CPAMP_ASSIGN_OR_RETURN(db::Transaction tx,
                         db::Transaction::Begin(*snap.conn, db::Transaction::Mode::kDeferred));
  snap.tx.emplace(std::move(tx));
  CPAMP_ASSIGN_OR_RETURN(db::Statement max_stmt,
                         snap.conn->Prepare("select coalesce(max(id), 0) from usage_events"));
  CPAMP_ASSIGN_OR_RETURN(bool has, max_stmt.Step());
  if (has) snap.max_id = max_stmt.ColumnInt64(0);
  if (limit) {
    CPAMP_ASSIGN_OR_RETURN(
        db::Statement cut,
        snap.conn->Prepare("select timestamp_ms, id from usage_events where id <= ?1 "
                           "order by timestamp_ms desc, id desc limit 1 offset ?2"));
    CPAMP_RETURN_IF_ERROR(cut.Bind(1, snap.max_id));
    CPAMP_RETURN_IF_ERROR(cut.Bind(2, std::max<int64_t>(*limit, 1) - 1));
    CPAMP_ASSIGN_OR_RETURN(bool row, cut.Step());
    if (row) {
      snap.cutoff_ts = cut.ColumnInt64(0);
      snap.cutoff_id = cut.ColumnInt64(1);
    }
  }
  return Status::Ok();
}

constexpr std::string_view kWindowWhere =
    " where id <= ?1 and (timestamp_ms > ?2 or (timestamp_ms = ?2 and id >= ?3)) ";
constexpr std::string_view kRangeWhere = " where timestamp_ms >= ?4 and timestamp_ms < ?5 ";

constexpr std::string_view kExportColumns =
    "select request_id, event_hash, timestamp_ms, timestamp, provider, executor_type, model, "
    "requested_model, resolved_model, endpoint, method, path, auth_type, auth_index, source, "
    "source_hash, api_key_hash, account_snapshot, auth_label_snapshot, auth_file_snapshot, "
    "auth_provider_snapshot, auth_project_id_snapshot, auth_snapshot_at_ms, reasoning_effort, "
    "service_tier, input_tokens, output_tokens, reasoning_tokens, cached_tokens, cache_tokens, "
    "cache_read_tokens, cache_creation_tokens, total_tokens, latency_ms, ttft_ms, failed, "
    "fail_status_code, fail_summary, response_metadata_json, header_quota_recover_at_ms, "
    "header_quota_used_percent, header_quota_plan_type, header_error_kind, header_error_code, "
    "header_trace_id, created_at_ms from usage_events";

void WriteExportLine(const db::Statement& s, std::string& out) {
  Row r{s};
  ObjectWriter w(out);
  w.StrIfAny("request_id", r.Text(0));
  w.Str("event_hash", r.Text(1));
  w.Int("timestamp_ms", r.Int(2));
  w.Str("timestamp", r.Text(3));
  w.StrIfAny("provider", r.Text(4));
  w.StrIfAny("executor_type", r.Text(5));
  w.Str("model", r.Text(6));
  std::string_view requested = r.Text(7);
  w.StrIfAny("analytics_model", AnalyticsModel(!requested.empty() ? requested : r.Text(6)));
  w.StrIfAny("requested_model", requested);
  w.StrIfAny("resolved_model", r.Text(8));
  w.StrIfAny("endpoint", r.Text(9));
  w.StrIfAny("method", r.Text(10));
  w.StrIfAny("path", r.Text(11));
  w.StrIfAny("auth_type", r.Text(12));
  w.StrIfAny("auth_index", r.Text(13));
  w.StrIfAny("source", r.Text(14));
  w.StrIfAny("source_hash", r.Text(15));
  w.StrIfAny("api_key_hash", r.Text(16));
  w.StrIfAny("account_snapshot", r.Text(17));
  w.StrIfAny("auth_label_snapshot", r.Text(18));
  w.StrIfAny("auth_file_snapshot", r.Text(19));
  w.StrIfAny("auth_provider_snapshot", r.Text(20));
  w.StrIfAny("auth_project_id_snapshot", r.Text(21));
  OptInt(w, r, "auth_snapshot_at_ms", 22);
  w.StrIfAny("reasoning_effort", r.Text(23));
  w.StrIfAny("service_tier", r.Text(24));
  w.Int("input_tokens", r.Int(25));
  w.Int("output_tokens", r.Int(26));
  w.Int("reasoning_tokens", r.Int(27));
  w.Int("cached_tokens", r.Int(28));
  w.Int("cache_tokens", r.Int(29));
  w.Int("cache_read_tokens", r.Int(30));
  w.Int("cache_creation_tokens", r.Int(31));
  w.Int("total_tokens", r.Int(32));
  OptInt(w, r, "latency_ms", 33);
  OptInt(w, r, "ttft_ms", 34);
  w.Bool("failed", r.Int(35) != 0);
  OptInt(w, r, "fail_status_code", 36);
  w.StrIfAny("fail_summary", r.Text(37));
  if (std::string md = CompactJson(r.Text(38)); !md.empty()) w.Raw("response_metadata", md);
  OptInt(w, r, "header_quota_recover_at_ms", 39);
  if (!r.Null(40)) AppendFloatField(w, "header_quota_used_percent", s.ColumnDouble(40));
  w.StrIfAny("header_quota_plan_type", r.Text(41));
  w.StrIfAny("header_error_kind", r.Text(42));
  w.StrIfAny("header_error_code", r.Text(43));
  w.StrIfAny("header_trace_id", r.Text(44));
  w.Int("created_at_ms", r.Int(45));
  w.End();
  out.push_back('\n');
}

// Appends rows from `stmt` with `write_row` until this call added min_bytes; false when the rows
// ended.
template <typename F>
Result<bool> Pump(db::Statement& stmt, std::string& out, size_t min_bytes, int64_t* rows,
                  F&& write_row) {
  const size_t start = out.size();
  while (out.size() - start < min_bytes) {
    CPAMP_ASSIGN_OR_RETURN(bool has, stmt.Step());
    if (!has) return false;
    write_row(stmt);
    ++*rows;
  }
  return true;
}

void AnalyticsModelSql(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  auto text = [&](int i) -> std::string_view {
    if (i >= argc || sqlite3_value_type(argv[i]) == SQLITE_NULL) return {};
    const unsigned char* p = sqlite3_value_text(argv[i]);
    return p == nullptr ? std::string_view()
                        : std::string_view(reinterpret_cast<const char*>(p),
                                           static_cast<size_t>(sqlite3_value_bytes(argv[i])));
  };
  std::string_view requested = text(0);
  std::string model = AnalyticsModel(!requested.empty() ? requested : text(1));
  if (model.empty()) model = "-";
  sqlite3_result_text(ctx, model.data(), static_cast<int>(model.size()), SQLITE_TRANSIENT);
}

}  // namespace

// ---- ExportCursor ------------------------------------------------------------------------------

struct ExportCursor::State {
  Snapshot snap;
  std::optional<db::Statement> stmt;  // declared after snap: finalized before the transaction ends
  bool done = false;
  ~State() { stmt.reset(); }
};

ExportCursor::ExportCursor(std::unique_ptr<State> state) : state_(std::move(state)) {}
ExportCursor::~ExportCursor() = default;

Result<std::unique_ptr<ExportCursor>> ExportCursor::Open(const std::string& db_path,
                                                         const ExportRange& range) {
  auto state = std::make_unique<State>();
  std::optional<int64_t> limit;
  if (!range.has_range()) limit = range.limit;
  CPAMP_RETURN_IF_ERROR(OpenSnapshot(db_path, limit, state->snap));
  std::string sql(kExportColumns);
  sql += range.has_range() ? kRangeWhere : kWindowWhere;
  sql += "order by timestamp_ms, id";
  CPAMP_ASSIGN_OR_RETURN(db::Statement stmt, state->snap.conn->Prepare(sql));
  if (range.has_range()) {
    CPAMP_RETURN_IF_ERROR(
        stmt.Bind(4, range.from_ms.value_or(std::numeric_limits<int64_t>::min())));
    CPAMP_RETURN_IF_ERROR(stmt.Bind(5, range.to_ms.value_or(std::numeric_limits<int64_t>::max())));
  } else {
    CPAMP_RETURN_IF_ERROR(stmt.Bind(1, state->snap.max_id));
    CPAMP_RETURN_IF_ERROR(stmt.Bind(2, state->snap.cutoff_ts));
    CPAMP_RETURN_IF_ERROR(stmt.Bind(3, state->snap.cutoff_id));
  }
  state->stmt.emplace(std::move(stmt));
  return std::unique_ptr<ExportCursor>(new ExportCursor(std::move(state)));
}

Result<bool> ExportCursor::Next(std::string& out, size_t min_bytes) {
  if (state_->done) return false;
  const size_t before = out.size();
  CPAMP_ASSIGN_OR_RETURN(bool more, Pump(*state_->stmt, out, min_bytes, &stats_.rows,
                                         [&](const db::Statement& s) { WriteExportLine(s, out); }));
  stats_.bytes += static_cast<int64_t>(out.size() - before);
  if (!more) {
    state_->done = true;
    state_->stmt.reset();
    state_->snap.tx.reset();  // ends the read transaction (rolls back a read-only tx)
  }
  return more;
}

namespace {

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error(ErrorCode::kRequestFailed, std::string("write: ") + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

}  // namespace

Result<ExportStats> ExportToFile(const std::string& db_path, const std::string& path,
                                 const ExportRange& range) {
  CPAMP_ASSIGN_OR_RETURN(std::unique_ptr<ExportCursor> cursor, ExportCursor::Open(db_path, range));
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    return Error(ErrorCode::kRequestFailed, "open " + tmp + ": " + std::strerror(errno));
  }
  const int fd = fileno(f);
  std::string chunk;
  Status st;
  while (true) {
    chunk.clear();
    Result<bool> more = cursor->Next(chunk, 1 << 20);
    if (!more.ok()) {
      st = more.status();
      break;
    }
    st = WriteAll(fd, chunk);
    if (!st.ok() || !*more) break;
  }
  if (st.ok() && ::fsync(fd) != 0) {
    st = Error(ErrorCode::kRequestFailed, "fsync " + tmp + ": " + std::strerror(errno));
  }
  std::fclose(f);
  if (st.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Error(ErrorCode::kRequestFailed, "rename " + tmp + ": " + std::strerror(errno));
  }
  if (!st.ok()) {
    std::remove(tmp.c_str());
    return st;
  }
  return cursor->stats();
}

Result<ExportStats> ExportToFile(db::Database& db, const std::string& path,
                                 const ExportRange& range) {
  return ExportToFile(db.Path(), path, range);
}

// ---- CompatibleUsageCursor ---------------------------------------------------------------------

struct CompatibleUsageCursor::State {
  Snapshot snap;
  std::optional<db::Statement> stmt;
  std::string header;    // totals and the opening of "apis", written first
  std::string endpoint;  // current group
  std::string model;     // current group
  bool any_row = false;
  bool header_sent = false;
  bool done = false;
  int64_t rows = 0;
  ~State() { stmt.reset(); }
};

CompatibleUsageCursor::CompatibleUsageCursor(std::unique_ptr<State> state)
    : state_(std::move(state)) {}
CompatibleUsageCursor::~CompatibleUsageCursor() = default;

Result<std::unique_ptr<CompatibleUsageCursor>> CompatibleUsageCursor::Open(
    const std::string& db_path, int64_t limit) {
  auto state = std::make_unique<State>();
  CPAMP_RETURN_IF_ERROR(
      OpenSnapshot(db_path, std::min(limit, kMaxCompatibleUsageRows), state->snap));
  sqlite3* h = state->snap.conn->handle();
  if (sqlite3_create_function_v2(h, "cpamp_analytics_model", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                 nullptr, AnalyticsModelSql, nullptr, nullptr,
                                 nullptr) != SQLITE_OK) {
    return SqliteError(h, "register cpamp_analytics_model");
  }
  auto bind_window = [&](db::Statement& s) -> Status {
    CPAMP_RETURN_IF_ERROR(s.Bind(1, state->snap.max_id));
    CPAMP_RETURN_IF_ERROR(s.Bind(2, state->snap.cutoff_ts));
    return s.Bind(3, state->snap.cutoff_id);
  };
  std::string totals_sql =
      "select count(*), coalesce(sum(failed != 0), 0), coalesce(sum(total_tokens), 0) "
      "from usage_events";
  totals_sql += kWindowWhere;
  CPAMP_ASSIGN_OR_RETURN(db::Statement totals, state->snap.conn->Prepare(totals_sql));
  CPAMP_RETURN_IF_ERROR(bind_window(totals));
  CPAMP_ASSIGN_OR_RETURN(bool has, totals.Step());
  const int64_t count = has ? totals.ColumnInt64(0) : 0;
  const int64_t failures = has ? totals.ColumnInt64(1) : 0;
  const int64_t tokens = has ? totals.ColumnInt64(2) : 0;
  state->header = "{\"total_requests\":" + std::to_string(count) +
                  ",\"success_count\":" + std::to_string(count - failures) +
                  ",\"failure_count\":" + std::to_string(failures) +
                  ",\"total_tokens\":" + std::to_string(tokens) + ",\"apis\":{";

  std::string sql =
      "select coalesce(nullif(endpoint, ''), '-') as ep, "
      "cpamp_analytics_model(requested_model, model) as am, timestamp, source, auth_index, "
      "api_key_hash, account_snapshot, auth_label_snapshot, auth_file_snapshot, "
      "auth_provider_snapshot, auth_project_id_snapshot, auth_snapshot_at_ms, latency_ms, "
      "ttft_ms, requested_model, model, resolved_model, reasoning_effort, service_tier, "
      "request_service_tier, response_service_tier, cache_input_mode, executor_type, "
      "input_tokens, output_tokens, reasoning_tokens, cached_tokens, cache_tokens, "
      "cache_read_tokens, cache_creation_tokens, total_tokens, failed, fail_status_code, "
      "fail_summary, response_metadata_json from usage_events";
  sql += kWindowWhere;
  sql += "order by ep, am, timestamp_ms desc, id desc";
  CPAMP_ASSIGN_OR_RETURN(db::Statement stmt, state->snap.conn->Prepare(sql));
  CPAMP_RETURN_IF_ERROR(bind_window(stmt));
  state->stmt.emplace(std::move(stmt));
  return std::unique_ptr<CompatibleUsageCursor>(new CompatibleUsageCursor(std::move(state)));
}

namespace {

void WriteCompatibleDetail(const db::Statement& s, std::string& out) {
  Row r{s};
  ObjectWriter w(out);
  w.Str("timestamp", r.Text(2));
  w.Str("source", r.Text(3));
  w.StrIfAny("auth_index", r.Text(4));
  w.StrIfAny("api_key_hash", r.Text(5));
  w.StrIfAny("account_snapshot", r.Text(6));
  w.StrIfAny("auth_label_snapshot", r.Text(7));
  w.StrIfAny("auth_file_snapshot", r.Text(8));
  w.StrIfAny("auth_provider_snapshot", r.Text(9));
  w.StrIfAny("auth_project_id_snapshot", r.Text(10));
  OptInt(w, r, "auth_snapshot_at_ms", 11);
  OptInt(w, r, "latency_ms", 12);
  OptInt(w, r, "ttft_ms", 13);
  std::string_view requested = r.Text(14);
  w.StrIfAny("requested_model", !requested.empty() ? requested : r.Text(15));
  w.StrIfAny("resolved_model", r.Text(16));
  w.StrIfAny("reasoning_effort", r.Text(17));
  w.StrIfAny("service_tier", r.Text(18));
  w.StrIfAny("request_service_tier", r.Text(19));
  w.StrIfAny("response_service_tier", r.Text(20));
  w.StrIfAny("cache_input_mode", r.Text(21));
  w.StrIfAny("executor_type", r.Text(22));
  UsageEvent counts;
  counts.cached_tokens = r.Int(26);
  counts.cache_tokens = r.Int(27);
  counts.cache_read_tokens = r.Int(28);
  counts.cache_creation_tokens = r.Int(29);
  const int64_t compat = CompatibleCachedTokens(counts);
  w.Key("tokens");
  ObjectWriter t(out);
  t.Int("input_tokens", r.Int(23));
  t.Int("output_tokens", r.Int(24));
  t.Int("reasoning_tokens", r.Int(25));
  t.Int("cached_tokens", compat);
  t.Int("cache_tokens", compat);
  t.Int("cache_read_tokens", r.Int(28));
  t.Int("cache_creation_tokens", r.Int(29));
  t.Int("total_tokens", r.Int(30));
  t.End();
  w.Bool("failed", r.Int(31) != 0);
  OptInt(w, r, "fail_status_code", 32);
  w.StrIfAny("fail_summary", r.Text(33));
  if (std::string md = CompactJson(r.Text(34)); !md.empty()) w.Raw("response_metadata", md);
  w.End();
}

}  // namespace

Result<bool> CompatibleUsageCursor::Next(std::string& out, size_t min_bytes) {
  State& st = *state_;
  if (st.done) return false;
  if (!st.header_sent) {
    out += st.header;
    st.header_sent = true;
  }
  CPAMP_ASSIGN_OR_RETURN(bool more,
                         Pump(*st.stmt, out, min_bytes, &st.rows, [&](const db::Statement& s) {
                           std::string_view ep = s.ColumnTextView(0);
                           std::string_view am = s.ColumnTextView(1);
                           if (!st.any_row || ep != st.endpoint) {
                             if (st.any_row) out += "]}}},";
                             AppendGoJsonString(out, ep);
                             out += ":{\"models\":{";
                             AppendGoJsonString(out, am);
                             out += ":{\"details\":[";
                             st.endpoint = ep;
                             st.model = am;
                           } else if (am != st.model) {
                             out += "]},";
                             AppendGoJsonString(out, am);
                             out += ":{\"details\":[";
                             st.model = am;
                           } else {
                             out.push_back(',');
                           }
                           st.any_row = true;
                           WriteCompatibleDetail(s, out);
                         }));
  if (!more) {
    if (st.any_row) out += "]}}}";
    out += "}}\n";
    st.done = true;
    st.stmt.reset();
    st.snap.tx.reset();
  }
  return more;
}

}  // namespace cpamp::usage
