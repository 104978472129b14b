// Usage data import/export: the JSONL export, the CPA-compatible /usage payload, the importer
// for every accepted input format, resumable import sessions and their HTTP handlers
// (spec cpamp-storage.md §5, cpamp-api.md §4.6, cpa-protocol.md §5.2).
//
// Memory: export and /usage stream rows from one read transaction into bounded chunks; the
// importer reads its input in bounded pieces and commits every kImportBatchRows events, so memory
// is O(batch), not O(rows) (a legacy CPA envelope is the one format decoded whole, as upstream).
//
// Threading: free functions are thread-safe given a thread-safe Database. ExportCursor is used by
// one thread at a time. ImportSessionManager and DataHandlers are thread-safe.
// Ownership: everything borrows the Database (and Clock), which must outlive it.
#pragma once

#include <boost/json.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "config/config.h"
#include "db/db.h"
#include "net/http.h"
#include "usage/event_store.h"

namespace cpamp::usage {

inline constexpr int64_t kMaxCompatibleUsageRows = 50'000;  // §5.2 hard cap
inline constexpr size_t kImportBodyLimit = 64 << 20;        // POST /usage/import
inline constexpr size_t kImportSessionCreateBodyLimit = 64 << 10;
inline constexpr size_t kImportMaxLineBytes = 10 << 20;     // a longer JSONL line aborts
inline constexpr size_t kImportMaxLegacyBytes = 256 << 20;  // legacy envelope decoded whole
inline constexpr size_t kImportBatchRows = 5000;            // events per transaction
inline constexpr size_t kStreamChunkBytes = 64 << 10;       // streamed body piece size
inline constexpr size_t kMaxReportedRejections = 200;

// ---- Export (§5.1) -----------------------------------------------------------------------------

// Which rows to export. Without a range: the newest `limit` rows (USAGE_QUERY_LIMIT), as upstream.
// With from_ms and/or to_ms (beyond upstream): every row with from_ms <= timestamp_ms < to_ms,
// no cap.
struct ExportRange {
  std::optional<int64_t> from_ms;
  std::optional<int64_t> to_ms;
  int64_t limit = 50'000;
  bool has_range() const { return from_ms.has_value() || to_ms.has_value(); }
};

struct ExportStats {
  int64_t rows = 0;
  int64_t bytes = 0;
};

// Pulls NDJSON export lines, ascending by (timestamp_ms, id), from a consistent snapshot: its
// own read-only connection holds one read transaction from Open() until destruction.
class ExportCursor {
 public:
  static Result<std::unique_ptr<ExportCursor>> Open(const std::string& db_path,
                                                    const ExportRange& range);
  ~ExportCursor();
  // Appends whole lines until this call appended at least `min_bytes` or the rows end. Returns
  // true while more rows may follow.
  Result<bool> Next(std::string& out, size_t min_bytes = kStreamChunkBytes);
  const ExportStats& stats() const { return stats_; }

 private:
  struct State;
  explicit ExportCursor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
  ExportStats stats_;
};

// Writes the export to `path` (created/truncated; written to `path`.tmp then renamed).
Result<ExportStats> ExportToFile(db::Database& db, const std::string& path,
                                 const ExportRange& range);
Result<ExportStats> ExportToFile(const std::string& db_path, const std::string& path,
                                 const ExportRange& range);

// ---- Compatible usage payload (§5.2) -----------------------------------------------------------

// Streams {"total_requests",...,"apis":{endpoint:{"models":{analytics model:{"details":[...]}}}}}
// over the newest min(limit, 50000) rows. Details are written as the rows are stepped (SQLite
// sorts them), so the process holds one row at a time.
class CompatibleUsageCursor {
 public:
  static Result<std::unique_ptr<CompatibleUsageCursor>> Open(const std::string& db_path,
                                                             int64_t limit);
  ~CompatibleUsageCursor();
  Result<bool> Next(std::string& out, size_t min_bytes = kStreamChunkBytes);

 private:
  struct State;
  explicit CompatibleUsageCursor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// ---- Import (§5.3-5.5, §5.7) -------------------------------------------------------------------

struct ImportRejection {
  int64_t line = 0;   // 1-based JSONL line, or 0
  int64_t index = 0;  // 1-based element of a JSON array / detail of a legacy model, or 0
  std::string where;  // legacy: "<endpoint> / <model>"; else ""
  std::string error;
};

struct ImportReport {
  std::string format = "usage_service_jsonl";  // | legacy_usage_export | legacy_usage_payload
  int64_t added = 0;
  int64_t skipped = 0;  // event_hash already stored (or repeated within the input)
  int64_t failed = 0;   // records that could not be read
  int64_t unsupported = 0;
  std::vector<std::string> warnings;
  std::vector<ImportRejection> rejected;  // first kMaxReportedRejections failures
  // OK, or why the import stopped early: kBadRequest for input that cannot be read on (a line
  // over 10 MiB, a broken JSON array, a legacy file without details), kRequestFailed for a
  // persistence error. Batches committed before the stop stay committed.
  Status status;
  bool persisted_any = false;  // some batch was committed (added or skipped)
  int64_t total() const { return added + skipped; }
  // {format, added, skipped, total, failed, unsupported, warnings, rejected}
  boost::json::object ToJson() const;
};

// A source of input bytes for the importer (a file or memory).
class ImportInput {
 public:
  virtual ~ImportInput() = default;
  // Reads up to `n` bytes; 0 at end of input; error on an I/O failure.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

struct ImportOptions {
  size_t batch_rows = kImportBatchRows;
  const std::atomic<bool>* cancel = nullptr;  // checked between batches
};

// Detects the format and imports everything. `body` may be up to kImportBodyLimit bytes.
ImportReport ImportBytes(EventStore& store, std::string_view body, int64_t now_ms,
                         const ImportOptions& options = {});
ImportReport ImportStream(EventStore& store, ImportInput& input, int64_t now_ms,
                          const ImportOptions& options = {});
// The `import FILE` CLI: error only when the file cannot be opened; the rest is in the report.
Result<ImportReport> ImportFile(db::Database& db, const std::string& path,
                                const Clock& clock = SystemClock::Instance());

// ---- Resumable import sessions (§5.6) ----------------------------------------------------------

struct ImportSessionLimits {
  int64_t chunk_bytes = 4 << 20;
  int64_t disk_quota_bytes = 16LL << 30;
  int max_sessions = 2;
  int64_t ttl_ms = 1440LL * 60'000;
  static ImportSessionLimits FromConfig(const config::Config& config);
};

struct ImportSession {
  std::string id;  // 32 lower-hex
  std::string filename;
  std::string resume_key;
  std::string status;  // uploading | ready | processing | completed | failed | cancelled
  int64_t size_bytes = 0;
  int64_t received_bytes = 0;
  int64_t chunk_size_bytes = 0;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t expires_at_ms = 0;
  bool retryable = false;
  std::string error;
  std::optional<boost::json::object> result;  // ImportReport::ToJson() once processed
  boost::json::object ToJson() const;
};

// Session errors: a Status whose http_status() selects the wire code below.
inline constexpr std::string_view kSessionInvalidRequest = "usage_import_session_invalid_request";
inline constexpr std::string_view kSessionNotFound = "usage_import_session_not_found";
inline constexpr std::string_view kSessionConflict = "usage_import_session_conflict";
inline constexpr std::string_view kSessionTooLarge = "usage_import_session_too_large";
inline constexpr std::string_view kSessionQuotaExceeded = "usage_import_session_quota_exceeded";
inline constexpr std::string_view kSessionLimitExceeded = "usage_import_session_limit_exceeded";
inline constexpr std::string_view kSessionUnavailable = "usage_import_session_unavailable";
// 400/404/409/413/507/429 -> the codes above; anything else -> kSessionUnavailable.
std::string_view SessionWireCode(int http_status);

// Owns <dataDir>/usage-imports/: `<id>.json` (metadata) and `<id>.part` (the upload). Processing
// runs on a background thread per completed session; Stop() (or the destructor) cancels and
// joins them. On construction, sessions left `processing` by a crash become `ready` again.
class ImportSessionManager {
 public:
  ImportSessionManager(db::Database& db, std::string dir, ImportSessionLimits limits,
                       const Clock& clock = SystemClock::Instance());
  ~ImportSessionManager();
  ImportSessionManager(const ImportSessionManager&) = delete;
  ImportSessionManager& operator=(const ImportSessionManager&) = delete;

  // `body` is the create request JSON {filename, size_bytes, resume_key?}. The same resume_key
  // with the same file returns the existing session.
  Result<ImportSession> Create(std::string_view body);
  Result<ImportSession> Get(std::string_view id);
  // `content_length` is the request's Content-Length header value (nullopt when absent).
  Result<ImportSession> PutChunk(std::string_view id, std::optional<std::string> offset_param,
                                 std::string_view chunk, std::optional<int64_t> content_length);
  // Starts processing; returns the session (status processing, or completed if already done).
  Result<ImportSession> Complete(std::string_view id);
  // `was_processing` (optional) tells whether an import was running (the route answers 202).
  Result<ImportSession> Cancel(std::string_view id, bool* was_processing = nullptr);
  // Deletes expired sessions (and their files). Returns how many were removed.
  int CleanupExpired();
  // Waits for running imports (tests); Stop() cancels them first.
  void WaitIdle();
  void Stop();

 private:
  struct Entry;
  Result<Entry*> Find(std::string_view id);  // requires mu_
  Status Persist(const Entry& entry);        // requires mu_
  void ExpireLocked();                       // requires mu_
  void Load();
  void RemoveFiles(const std::string& id);
  void Process(std::string id);
  std::string PartPath(std::string_view id) const;
  std::string MetaPath(std::string_view id) const;

  db::Database& db_;
  const std::string dir_;
  const ImportSessionLimits limits_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> sessions_;  // guarded by mu_
  std::vector<std::thread> workers_;                                     // guarded by mu_
  std::atomic<bool> stopping_{false};
};

// ---- HTTP handlers (cpamp-api §4.6) ------------------------------------------------------------

// Handlers for /v0/management/usage, /usage/export, /usage/import and /usage/import-sessions.
// Admin authentication is the route table's job. Thread-safe; borrows everything.
class DataHandlers {
 public:
  DataHandlers(db::Database& db, const config::Config& config, ImportSessionManager& sessions,
               const Clock& clock = SystemClock::Instance());

  net::Response CompatibleUsage(const net::Request& request);  // GET /usage (streamed)
  net::Response Export(const net::Request& request);           // GET /usage/export (streamed)
  net::Response Import(const net::Request& request);           // POST /usage/import
  net::Response CreateSession(const net::Request& request);    // POST /usage/import-sessions
  // Any method under /usage/import-sessions/: GET {id}, DELETE {id}, PUT {id}/chunk,
  // POST {id}/complete; wrong method -> 405, malformed sub-path -> 404.
  net::Response SessionRoute(const net::Request& request);
  // Everything under /v0/management/usage as upstream routes it (GET .../export -> Export, POST
  // .../import -> Import, import-sessions, other GET -> CompatibleUsage). Optional convenience.
  net::Response Route(const net::Request& request);
  // Body limit for a request head under /v0/management/usage.
  size_t BodyLimit(std::string_view method, std::string_view path) const;

 private:
  db::Database& db_;
  EventStore store_;
  const config::Config& config_;
  ImportSessionManager& sessions_;
  const Clock& clock_;
};

}  // namespace cpamp::usage
