// Resumable import sessions (§5.6): upload a large file in chunks, then import it in the
// background.
//
// Layout: <dir>/<id>.part holds the bytes received so far, <id>.json the session metadata
// (written to a temp file and renamed, so a crash leaves either the old or the new state). All
// state lives in `sessions_` under one mutex; chunk writes happen under it too (one bounded
// pwrite + fsync of at most chunk_bytes), which keeps the offset/length rules race-free. A
// failed write is rolled back by truncating the file to the old offset.
//
// Completing a session starts one worker thread that runs the streaming importer over the .part
// file with a cancel flag checked between batches. Outcomes follow upstream: a persistence error
// is `failed` + retryable (file kept; re-running is safe because of event_hash dedup), a parse
// error is `failed`, not retryable, and deletes the file. A `processing` session found at start-up
// (the server stopped mid-import) becomes `ready` again. Expiry = last update + TTL; expired
// sessions are removed lazily on every call and by CleanupExpired().
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>
#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/strings.h"
#include "usage/usage_data.h"

namespace cpamp::usage {

namespace bj = boost::json;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kDefaultFilename = "usage-import.jsonl";
constexpr size_t kMaxFilenameRunes = 240;

Status SessionError(int http, std::string message) {
  ErrorCode code = ErrorCode::kBadRequest;
  switch (http) {
    case 404:
      code = ErrorCode::kNotFound;
      break;
    case 413:
      code = ErrorCode::kPayloadTooLarge;
      break;
    case 429:
      code = ErrorCode::kTooManyRequests;
      break;
    case 500:
    case 507:
      code = ErrorCode::kRequestFailed;
      break;
    default:
      break;
  }
  return Status(code, std::move(message), http);
}

bool IsLowerHex32(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string SanitizeFilename(std::string_view name) {
  size_t slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  std::string out;
  size_t runes = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c == 0) continue;
    if ((c & 0xC0) != 0x80) {
      if (runes == kMaxFilenameRunes) break;
      ++runes;
    }
    out.push_back(static_cast<char>(c));
  }
  out = Trim(out);
  if (out.empty() || out == "." || out == "..") return std::string(kDefaultFilename);
  return out;
}

bool IsActive(std::string_view status) {
  return status == "uploading" || status == "ready" || status == "processing";
}

std::string NewId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // OpenSSL's CSPRNG failing is not something a request can cause.
    CHECK(false);
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

std::optional<ImportSession> SessionFromJson(const bj::object& o) {
  ImportSession s;
  auto str = [&](std::string_view k) -> std::string {
    auto it = o.find(k);
    return (it != o.end() && it->value().is_string()) ? std::string(it->value().get_string())
                                                      : std::string();
  };
  auto num = [&](std::string_view k) -> int64_t {
    auto it = o.find(k);
    return (it != o.end() && it->value().is_int64()) ? it->value().get_int64() : 0;
  };
  s.id = str("id");
  if (!IsLowerHex32(s.id)) return std::nullopt;
  s.filename = str("filename");
  s.resume_key = str("resume_key");
  s.status = str("status");
  s.size_bytes = num("size_bytes");
  s.received_bytes = num("received_bytes");
  s.chunk_size_bytes = num("chunk_size_bytes");
  s.created_at_ms = num("created_at_ms");
  s.updated_at_ms = num("updated_at_ms");
  s.expires_at_ms = num("expires_at_ms");
  if (auto it = o.find("retryable"); it != o.end() && it->value().is_bool()) {
    s.retryable = it->value().get_bool();
  }
  s.error = str("error");
  if (auto it = o.find("result"); it != o.end() && it->value().is_object()) {
    s.result = it->value().get_object();
  }
  return s;
}

}  // namespace

std::string_view SessionWireCode(int http_status) {
  switch (http_status) {
    case 400:
      return kSessionInvalidRequest;
    case 404:
      return kSessionNotFound;
    case 409:
      return kSessionConflict;
    case 413:
      return kSessionTooLarge;
    case 507:
      return kSessionQuotaExceeded;
    case 429:
      return kSessionLimitExceeded;
    default:
      return kSessionUnavailable;
  }
}

ImportSessionLimits ImportSessionLimits::FromConfig(const config::Config& c) {
  ImportSessionLimits l;
  l.chunk_bytes = c.usage_import_chunk_bytes;
  l.disk_quota_bytes = c.usage_import_disk_quota_bytes;
  l.max_sessions = c.usage_import_max_sessions;
  l.ttl_ms = static_cast<int64_t>(c.usage_import_session_ttl_minutes) * 60'000;
  return l;
}

bj::object ImportSession::ToJson() const {
  bj::object o;
  o["id"] = id;
  o["filename"] = filename;
  o["status"] = status;
  o["size_bytes"] = size_bytes;
  o["received_bytes"] = received_bytes;
  o["chunk_size_bytes"] = chunk_size_bytes;
  o["created_at_ms"] = created_at_ms;
  o["updated_at_ms"] = updated_at_ms;
  o["expires_at_ms"] = expires_at_ms;
  o["retryable"] = retryable;
  if (!error.empty()) o["error"] = error;
  if (result) o["result"] = *result;
  return o;
}

struct ImportSessionManager::Entry {
  ImportSession session;
  std::atomic<bool> cancel{false};
};

ImportSessionManager::ImportSessionManager(db::Database& db, std::string dir,
                                           ImportSessionLimits limits, const Clock& clock)
    : db_(db), dir_(std::move(dir)), limits_(limits), clock_(clock) {
  Load();
}

ImportSessionManager::~ImportSessionManager() { Stop(); }

std::string ImportSessionManager::PartPath(std::string_view id) const {
  return dir_ + "/" + std::string(id) + ".part";
}
std::string ImportSessionManager::MetaPath(std::string_view id) const {
  return dir_ + "/" + std::string(id) + ".json";
}

void ImportSessionManager::Load() {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& de : fs::directory_iterator(dir_, ec)) {
    if (de.path().extension() != ".json") continue;
    std::ifstream in(de.path());
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code jec;
    bj::value v = bj::parse(ss.str(), jec);
    if (jec || !v.is_object()) continue;
    std::optional<ImportSession> s = SessionFromJson(v.get_object());
    if (!s || s->id != de.path().stem().string()) continue;
    auto entry = std::make_unique<Entry>();
    entry->session = std::move(*s);
    if (entry->session.status == "processing") {
      entry->session.status = "ready";
      (void)Persist(*entry);
    }
    sessions_.emplace(entry->session.id, std::move(entry));
  }
}

Status ImportSessionManager::Persist(const Entry& entry) {
  bj::object o = entry.session.ToJson();
  if (!entry.session.resume_key.empty()) o["resume_key"] = entry.session.resume_key;
  const std::string path = MetaPath(entry.session.id);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << bj::serialize(o);
    if (!out.good()) {
      return SessionError(500, "usage import session metadata could not be written");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return SessionError(500, "usage import session metadata could not be written");
  }
  return Status::Ok();
}

void ImportSessionManager::RemoveFiles(const std::string& id) {
  std::remove(PartPath(id).c_str());
  std::remove(MetaPath(id).c_str());
}

void ImportSessionManager::ExpireLocked() {
  const int64_t now = clock_.NowMs();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    const ImportSession& s = it->second->session;
    if (s.status != "processing" && now >= s.expires_at_ms) {
      RemoveFiles(s.id);
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

int ImportSessionManager::CleanupExpired() {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t before = sessions_.size();
  ExpireLocked();
  return static_cast<int>(before - sessions_.size());
}

Result<ImportSessionManager::Entry*> ImportSessionManager::Find(std::string_view id) {
  ExpireLocked();
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return SessionError(404, "usage import session not found");
  return it->second.get();
}

Result<ImportSession> ImportSessionManager::Create(std::string_view body) {
  boost::system::error_code ec;
  bj::value v = bj::parse(body, ec);
  if (ec || !v.is_object()) return SessionError(400, "usage import session request is invalid");
  const bj::object& o = v.get_object();
  for (const auto& kv : o) {
    if (kv.key() != "filename" && kv.key() != "size_bytes" && kv.key() != "resume_key") {
      return SessionError(
          400, "usage import session request has unknown field \"" + std::string(kv.key()) + "\"");
    }
  }
  int64_t size = 0;
  if (auto it = o.find("size_bytes"); it != o.end()) {
    if (it->value().is_int64()) size = it->value().get_int64();
    if (it->value().is_uint64()) size = -1;
  }
  if (size <= 0) return SessionError(400, "usage import session size_bytes must be positive");
  std::string filename;
  if (auto it = o.find("filename"); it != o.end()) {
    if (!it->value().is_string() && !it->value().is_null()) {
      return SessionError(400, "usage import session filename must be a string");
    }
    if (it->value().is_string()) filename = std::string(it->value().get_string());
  }
  filename = SanitizeFilename(filename);
  std::string resume_key;
  if (auto it = o.find("resume_key"); it != o.end() && !it->value().is_null()) {
    if (!it->value().is_string() || !IsLowerHex32(it->value().get_string())) {
      return SessionError(400, "usage import session resume_key must be 32 lower-case hex");
    }
    resume_key = std::string(it->value().get_string());
  }

  std::lock_guard<std::mutex> lock(mu_);
  ExpireLocked();
  if (!resume_key.empty()) {
    for (auto& [id, entry] : sessions_) {
      const ImportSession& s = entry->session;
      if (s.resume_key != resume_key || s.status == "cancelled") continue;
      if (s.filename == filename && s.size_bytes == size) return s;
      return SessionError(409, "usage import session resume_key belongs to a different file");
    }
  }
  if (size > limits_.disk_quota_bytes) {
    return SessionError(413, "usage import file is larger than the disk quota");
  }
  int active = 0;
  int64_t reserved = 0;
  for (const auto& [id, entry] : sessions_) {
    if (!IsActive(entry->session.status)) continue;
    ++active;
    reserved += entry->session.size_bytes;
  }
  if (active >= limits_.max_sessions) {
    return SessionError(429, "too many active usage import sessions");
  }
  if (reserved + size > limits_.disk_quota_bytes) {
    return SessionError(507, "usage import disk quota is exhausted");
  }
  std::error_code fec;
  fs::create_directories(dir_, fec);
  auto entry = std::make_unique<Entry>();
  ImportSession& s = entry->session;
  s.id = NewId();
  s.filename = filename;
  s.resume_key = resume_key;
  s.status = "uploading";
  s.size_bytes = size;
  s.chunk_size_bytes = limits_.chunk_bytes;
  s.created_at_ms = s.updated_at_ms = clock_.NowMs();
  s.expires_at_ms = s.updated_at_ms + limits_.ttl_ms;
  int fd = ::open(PartPath(s.id).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return SessionError(500, "usage import file could not be created");
  ::close(fd);
  CPAMP_RETURN_IF_ERROR(Persist(*entry));
  ImportSession copy = s;
  sessions_.emplace(copy.id, std::move(entry));
  return copy;
}

Result<ImportSession> ImportSessionManager::Get(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  CPAMP_ASSIGN_OR_RETURN(Entry * e, Find(id));
  return e->session;
}

Result<ImportSession> ImportSessionManager::PutChunk(std::string_view id,
                                                     std::optional<std::string> offset_param,
                                                     std::string_view chunk,
                                                     std::optional<int64_t> content_length) {
  long long offset = -1;
  if (!offset_param || !ParseInt64(*offset_param, &offset) || offset < 0) {
    return SessionError(400, "usage import chunk offset is invalid");
  }
  std::lock_guard<std::mutex> lock(mu_);
  CPAMP_ASSIGN_OR_RETURN(Entry * e, Find(id));
  ImportSession& s = e->session;
  if (s.status != "uploading") {
    return SessionError(409,
                        "usage import session is not accepting chunks (status " + s.status + ")");
  }
  if (offset != s.received_bytes) {
    return SessionError(409, "usage import chunk offset " + std::to_string(offset) +
                                 " does not match received_bytes " +
                                 std::to_string(s.received_bytes));
  }
  if (chunk.empty()) return SessionError(400, "usage import chunk is empty");
  if (content_length && *content_length != static_cast<int64_t>(chunk.size())) {
    return SessionError(400, "usage import chunk length does not match Content-Length");
  }
  const int64_t limit = std::min(s.chunk_size_bytes, s.size_bytes - s.received_bytes);
  if (static_cast<int64_t>(chunk.size()) > limit) {
    return SessionError(413,
                        "usage import chunk is larger than " + std::to_string(limit) + " bytes");
  }
  const std::string part = PartPath(s.id);
  int fd = ::open(part.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return SessionError(500, "usage import file could not be opened");
  size_t done = 0;
  bool ok = true;
  while (done < chunk.size()) {
    ssize_t n = ::pwrite(fd, chunk.data() + done, chunk.size() - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (ok && ::fsync(fd) != 0) ok = false;
  if (!ok) {
    (void)!::ftruncate(fd, offset);
    ::close(fd);
    return SessionError(500, "usage import chunk could not be written");
  }
  ::close(fd);
  s.received_bytes += static_cast<int64_t>(chunk.size());
  s.updated_at_ms = clock_.NowMs();
  s.expires_at_ms = s.updated_at_ms + limits_.ttl_ms;
  if (s.received_bytes == s.size_bytes) s.status = "ready";
  CPAMP_RETURN_IF_ERROR(Persist(*e));
  return s;
}

Result<ImportSession> ImportSessionManager::Complete(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  CPAMP_ASSIGN_OR_RETURN(Entry * e, Find(id));
  ImportSession& s = e->session;
  if (s.status == "processing" || s.status == "completed") return s;
  if (!(s.status == "ready" || (s.status == "failed" && s.retryable))) {
    return SessionError(409, "usage import session is not ready (status " + s.status + ")");
  }
  if (stopping_) return SessionError(500, "usage import is shutting down");
  s.status = "processing";
  s.error.clear();
  s.retryable = false;
  s.updated_at_ms = clock_.NowMs();
  s.expires_at_ms = s.updated_at_ms + limits_.ttl_ms;
  e->cancel = false;
  CPAMP_RETURN_IF_ERROR(Persist(*e));
  workers_.emplace_back([this, sid = s.id] { Process(sid); });
  return s;
}

void ImportSessionManager::Process(std::string id) {
  const std::atomic<bool>* cancel = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    cancel = &it->second->cancel;
  }
  ImportOptions options;
  options.cancel = cancel;
  Result<ImportReport> report = Error(ErrorCode::kRequestFailed, "not run");
  {
    std::FILE* f = std::fopen(PartPath(id).c_str(), "rb");
    if (f == nullptr) {
      report = Error(ErrorCode::kRequestFailed, "usage import file could not be opened");
    } else {
      struct Input final : ImportInput {
        explicit Input(std::FILE* file) : f(file) {}
        ~Input() override { std::fclose(f); }
        Result<size_t> Read(char* buf, size_t n) override {
          size_t got = std::fread(buf, 1, n, f);
          if (got == 0 && std::ferror(f)) return Error(ErrorCode::kRequestFailed, "read failed");
          return got;
        }
        std::FILE* f;
      } input(f);
      EventStore store(db_);
      report = ImportStream(store, input, clock_.NowMs(), options);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  ImportSession& s = it->second->session;
  s.updated_at_ms = clock_.NowMs();
  s.expires_at_ms = s.updated_at_ms + limits_.ttl_ms;
  if (s.status == "cancelled") {
    std::remove(PartPath(id).c_str());
  } else if (stopping_) {
    s.status = "ready";  // shutdown mid-import: resumable after restart, as upstream
  } else if (!report.ok()) {
    s.status = "failed";
    s.retryable = true;
    s.error = report.status().message();
  } else {
    s.result = report->ToJson();
    if (report->status.ok()) {
      s.status = "completed";
      std::remove(PartPath(id).c_str());
    } else if (report->status.code() == ErrorCode::kBadRequest) {
      s.status = "failed";
      s.retryable = false;
      s.error = report->status.message();
      std::remove(PartPath(id).c_str());
    } else {
      s.status = "failed";
      s.retryable = true;
      s.error = report->status.message();
    }
  }
  (void)Persist(*it->second);
}

Result<ImportSession> ImportSessionManager::Cancel(std::string_view id, bool* was_processing) {
  std::lock_guard<std::mutex> lock(mu_);
  CPAMP_ASSIGN_OR_RETURN(Entry * e, Find(id));
  ImportSession& s = e->session;
  if (was_processing != nullptr) *was_processing = s.status == "processing";
  if (s.status == "completed" || s.status == "cancelled") return s;
  const bool processing = s.status == "processing";
  e->cancel = true;
  s.status = "cancelled";
  s.updated_at_ms = clock_.NowMs();
  s.expires_at_ms = s.updated_at_ms + limits_.ttl_ms;
  if (!processing) std::remove(PartPath(s.id).c_str());
  CPAMP_RETURN_IF_ERROR(Persist(*e));
  return s;
}

void ImportSessionManager::WaitIdle() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
}

void ImportSessionManager::Stop() {
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, entry] : sessions_) entry->cancel = true;
  }
  WaitIdle();
}

}  // namespace cpamp::usage
