// Design note: the data key decides whether every stored CPA management key can be decrypted,
// so this file is careful about three things. (1) Compatibility: the accepted encodings and the
// HKDF stretch of a configured passphrase match CPAMP byte for byte (spec §2.6), so an old data
// directory or secret keeps working. (2) Never losing a key: a new key is written to a private
// temp file (0600, fsync) and hard-linked into place, which fails instead of overwriting when a
// concurrent starter won the race; we then load the winner's key. Filesystems without hard links
// fall back to rename. The parent directory is fsynced so the name survives a crash.
// (3) Confidentiality: new directories are 0700, the file 0600, and an existing file readable
// by group/others is tightened to 0600 with a warning. An existing file is never rewritten.
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "base/log.h"
#include "base/strings.h"
#include "security/primitives.h"
#include "security/security.h"

namespace cpamp::security {
namespace {

constexpr std::string_view kHkdfSalt = "cpa-manager-plus";
constexpr std::string_view kDataKeyInfo = "data-key-v1";
constexpr char kInvalidKeyMessage[] = "data key must be 32 bytes or base64-encoded 32 bytes";
// A stored key is at most 44 characters plus whitespace; anything far larger is not a key.
constexpr size_t kMaxKeyFileBytes = 4096;

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

Status Errno(std::string_view what, const std::string& path, int err) {
  return Error(ErrorCode::kRequestFailed,
               std::string(what) + " " + path + ": " + std::strerror(err));
}

DataKey ToKey(std::string_view bytes) {
  DataKey key{};
  std::memcpy(key.data(), bytes.data(), key.size());
  return key;
}

// Creates every missing directory of `dir` with mode 0700; existing ones are left alone.
Status MakeDirs(const std::filesystem::path& dir) {
  if (dir.empty()) return Status::Ok();
  std::filesystem::path current;
  for (const auto& part : dir) {
    current /= part;
    if (::mkdir(current.c_str(), 0700) == 0) continue;
    int err = errno;
    if (err != EEXIST) return Errno("create data key directory", current.string(), err);
    struct stat st {};
    if (::stat(current.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Errno("create data key directory", current.string(), ENOTDIR);
    }
  }
  return Status::Ok();
}

void SyncDir(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() >= 0) ::fsync(fd.get());
}

// Reads and parses an existing key file; sets *missing (and fails) when it does not exist.
Result<LoadedDataKey> ReadKeyFile(const std::string& path, bool* missing) {
  *missing = false;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ENOENT) {
      *missing = true;
      return Error(ErrorCode::kRequestFailed, "data key not found at " + path);
    }
    return Errno("read data key", path, err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Errno("read data key", path, errno);
  if (!S_ISREG(st.st_mode)) return Error(ErrorCode::kRequestFailed, kInvalidKeyMessage);
  if ((st.st_mode & 077) != 0) {
    if (::fchmod(fd.get(), 0600) == 0) {
      spdlog::warn(
          "data key file {} was accessible by group/others (mode {:04o}); tightened to 0600", path,
          st.st_mode & 07777);
    } else {
      spdlog::warn(
          "data key file {} is accessible by group/others (mode {:04o}) and could not be "
          "tightened: {}",
          path, st.st_mode & 07777, std::strerror(errno));
    }
  }
  std::string content;
  char buf[1024];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("read data key", path, errno);
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > kMaxKeyFileBytes) {
      return Error(ErrorCode::kRequestFailed, kInvalidKeyMessage);
    }
  }
  std::optional<DataKey> key = ParseStoredDataKey(content);
  OPENSSL_cleanse(content.data(), content.size());
  if (!key) return Error(ErrorCode::kRequestFailed, kInvalidKeyMessage);
  return LoadedDataKey{*key, false, path};
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write data key", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Writes a fresh key to a temp file and links it into place. Returns true in *lost_race when the
// final name appeared meanwhile (the caller then loads that key instead).
Result<DataKey> CreateKeyFile(const std::string& path, bool* lost_race) {
  *lost_race = false;
  const std::filesystem::path target(path);
  const std::filesystem::path dir = target.parent_path();
  CPAMP_RETURN_IF_ERROR(MakeDirs(dir));

  std::string raw = RandomBytes(32);
  DataKey key = ToKey(raw);
  std::string content = Base64Encode(raw, /*pad=*/false) + "\n";
  OPENSSL_cleanse(raw.data(), raw.size());

  const std::string tmp = path + ".tmp-" + HexEncode(RandomBytes(8));
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Errno("write data key", tmp, errno);
  Status written = WriteAll(fd.get(), content, tmp);
  OPENSSL_cleanse(content.data(), content.size());
  if (written.ok() && ::fchmod(fd.get(), 0600) != 0) written = Errno("write data key", tmp, errno);
  if (written.ok() && ::fsync(fd.get()) != 0) written = Errno("write data key", tmp, errno);
  if (written.ok() && ::close(fd.Release()) != 0) written = Errno("write data key", tmp, errno);
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return written;
  }

  if (::link(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    if (err == EEXIST) {
      ::unlink(tmp.c_str());
      *lost_race = true;
      return Error(ErrorCode::kRequestFailed, "data key created concurrently at " + path);
    }
    // No hard links here (some FUSE/network filesystems): fall back to an atomic rename.
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int rename_err = errno;
      ::unlink(tmp.c_str());
      return Errno("write data key", path, rename_err);
    }
  } else {
    ::unlink(tmp.c_str());
  }
  SyncDir(dir);
  return key;
}

}  // namespace

std::optional<DataKey> ParseStoredDataKey(std::string_view text) {
  text = TrimView(text);
  std::string decoded;
  struct Encoding {
    bool padded;
    bool url_safe;
  };
  for (Encoding e : {Encoding{false, false}, Encoding{true, false}, Encoding{false, true}}) {
    if (Base64Decode(text, &decoded, e.padded, e.url_safe) && decoded.size() == 32) {
      DataKey key = ToKey(decoded);
      OPENSSL_cleanse(decoded.data(), decoded.size());
      return key;
    }
  }
  OPENSSL_cleanse(decoded.data(), decoded.size());
  if (text.size() == 32) return ToKey(text);
  return std::nullopt;
}

Result<LoadedDataKey> LoadOrCreateDataKey(const DataKeyOptions& options) {
  std::string_view secret = TrimView(options.configured_secret);
  if (!secret.empty()) {
    if (std::optional<DataKey> key = ParseStoredDataKey(secret)) {
      return LoadedDataKey{*key, false, ""};
    }
    std::string stretched = internal::HkdfSha256(secret, kHkdfSalt, kDataKeyInfo, 32);
    LoadedDataKey loaded{ToKey(stretched), false, ""};
    OPENSSL_cleanse(stretched.data(), stretched.size());
    return loaded;
  }

  const std::string& path = options.key_path;
  if (path.empty()) return Error(ErrorCode::kRequestFailed, "data key path is empty");
  // Two rounds at most: if a concurrent starter creates the file between our read and our
  // link, the second read picks its key up.
  for (int round = 0; round < 2; ++round) {
    bool missing = false;
    Result<LoadedDataKey> existing = ReadKeyFile(path, &missing);
    if (!missing) return existing;
    bool lost_race = false;
    Result<DataKey> created = CreateKeyFile(path, &lost_race);
    if (lost_race) continue;
    if (!created.ok()) return created.status();
    // The caller logs "CPA Manager Plus data key created at <path>" (spec start-up line).
    return LoadedDataKey{*created, true, path};
  }
  return Error(ErrorCode::kRequestFailed, "data key at " + path + " keeps disappearing");
}

}  // namespace cpamp::security
