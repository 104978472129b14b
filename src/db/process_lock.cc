// ProcessLock, CanonicalDbPath and the reset-admin-key database check.
//
// Design notes:
// - The lock is an flock on `<canonical db path>.manager.lock`, taken LOCK_EX|LOCK_NB, exactly
//   like upstream v1.12, so our server, an upstream server and our CLI tools exclude each other
//   on the same file. flock belongs to the open file description: the kernel drops it when the
//   process dies, so the lock file is never deleted (deleting it would let two processes lock
//   two different inodes under one name).
// - Canonicalisation makes `/data/usage.sqlite`, a relative path and a symlink to it all lock the
//   same file. A database with several hard links is rejected because two names for one inode
//   would otherwise map to two different lock files.
// - The lock file is opened O_NOFOLLOW|O_CLOEXEC with mode 0600; child processes do not inherit
//   the descriptor.
// - LooksLikeManagerDatabase never creates anything: it checks the path with stat first and
//   opens SQLite read-only.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "db/db.h"

namespace cpamp::db {
namespace fs = std::filesystem;

Result<std::string> CanonicalDbPath(const std::string& path) {
  if (path.empty()) return Error(ErrorCode::kRequestFailed, "database path is empty");
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  if (ec) {
    return Error(ErrorCode::kRequestFailed,
                 fmt::format("resolve database path {}: {}", path, ec.message()));
  }
  // weakly_canonical resolves symlinks along the existing prefix (the whole path, file included,
  // when the file exists) and normalises the rest lexically.
  fs::path canonical = fs::weakly_canonical(absolute, ec);
  if (ec) {
    return Error(ErrorCode::kRequestFailed,
                 fmt::format("resolve database path {}: {}", path, ec.message()));
  }
  return canonical.string();
}

Result<ProcessLock> ProcessLock::Acquire(const std::string& db_path) {
  CPAMP_ASSIGN_OR_RETURN(std::string canonical, CanonicalDbPath(db_path));
  struct stat st {};
  if (::stat(canonical.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      return Error(ErrorCode::kRequestFailed,
                   fmt::format("manager database path {} is a directory", canonical));
    }
    if (st.st_nlink > 1) {
      return Error(ErrorCode::kRequestFailed,
                   fmt::format("manager database {} has {} hard links; refusing to lock it",
                               canonical, static_cast<long long>(st.st_nlink)));
    }
  } else if (errno != ENOENT) {
    return Error(ErrorCode::kRequestFailed,
                 fmt::format("stat manager database {}: {}", canonical, std::strerror(errno)));
  }
  fs::path parent = fs::path(canonical).parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) {
    return Error(ErrorCode::kRequestFailed,
                 fmt::format("create database directory {}: {}", parent.string(), ec.message()));
  }

  std::string lock_path = canonical + ".manager.lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return Error(ErrorCode::kRequestFailed, fmt::format("open manager database lock file {}: {}",
                                                        lock_path, std::strerror(errno)));
  }
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Error(ErrorCode::kRequestFailed,
                   fmt::format("manager database process lock is already held for {}", canonical));
    }
    return Error(ErrorCode::kRequestFailed,
                 fmt::format("lock {}: {}", lock_path, std::strerror(err)));
  }
  return ProcessLock(fd, std::move(canonical), std::move(lock_path));
}

ProcessLock::ProcessLock(ProcessLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      db_path_(std::move(other.db_path_)),
      lock_path_(std::move(other.lock_path_)) {}

ProcessLock& ProcessLock::operator=(ProcessLock&& other) noexcept {
  if (this != &other) {
    Release();
    fd_ = std::exchange(other.fd_, -1);
    db_path_ = std::move(other.db_path_);
    lock_path_ = std::move(other.lock_path_);
  }
  return *this;
}

ProcessLock::~ProcessLock() { Release(); }

void ProcessLock::Release() {
  if (fd_ < 0) return;
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
  fd_ = -1;
}

Result<bool> LooksLikeManagerDatabase(const std::string& path) {
  const std::string not_ours =
      fmt::format("{} does not look like a CPA Manager Plus Manager Server database", path);
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) {
    return Error(ErrorCode::kNotFound, fmt::format("SQLite database not found at {}", path));
  }
  if (ec) {
    return Error(ErrorCode::kBadRequest, fmt::format("stat {}: {}", path, ec.message()));
  }
  if (fs::is_directory(status)) {
    return Error(ErrorCode::kBadRequest,
                 fmt::format("SQLite database path {} is a directory", path));
  }
  uintmax_t size = fs::file_size(path, ec);
  if (ec) return Error(ErrorCode::kBadRequest, fmt::format("stat {}: {}", path, ec.message()));
  if (size == 0) {
    return Error(ErrorCode::kBadRequest, fmt::format("SQLite database {} is empty", path));
  }

  CPAMP_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(path, true));
  Result<bool> has_settings = conn->HasTable("settings");
  if (!has_settings.ok()) {
    int code = conn->LastErrorCode() & 0xff;
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT)
      return Error(ErrorCode::kBadRequest, not_ours);
    return has_settings.status();
  }
  CPAMP_ASSIGN_OR_RETURN(bool has_usage_events, conn->HasTable("usage_events"));
  if (!*has_settings || !has_usage_events) return Error(ErrorCode::kBadRequest, not_ours);
  return true;
}

}  // namespace cpamp::db
