// security: the data key (data.key), the enc:v1 secret box that keeps the CPA management key
// encrypted at rest, admin-key generation and hashing, and throttling of failed admin-key
// attempts. Formats are byte-compatible with the Go CPAMP server (spec cpamp-api.md §2.1, §2.2,
// §2.6; cpamp-storage.md §1.3), so an existing CPAMP data directory keeps working.
//
// Threading: the free functions are reentrant; SecretBox is immutable after construction and may
// be shared across threads; LoginThrottle is internally synchronised.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.h"
#include "base/status.h"

namespace cpamp::security {

// Cryptographically secure random bytes (OpenSSL RAND_bytes). CHECK-fails only if OpenSSL's RNG
// fails, which leaves the process without a safe source of keys.
std::string RandomBytes(size_t n);

// A newly generated admin key: "cpamp_" + 32 characters from [0-9A-Za-z] (38 characters),
// drawn by rejection sampling from RandomBytes so every character is uniform.
std::string GenerateAdminKey();

// ---------------------------------------------------------------------------------------------
// data.key

using DataKey = std::array<unsigned char, 32>;

// Parses a stored data key. The input is trimmed, then accepted, in this order, as: unpadded
// standard base64 of 32 bytes; padded standard base64 of 32 bytes; unpadded URL-safe base64 of
// 32 bytes; a literal 32-byte string. nullopt for anything else.
std::optional<DataKey> ParseStoredDataKey(std::string_view text);

struct DataKeyOptions {
  // The raw secret from CPA_MANAGER_DATA_KEY / *_FILE, already resolved; "" means none.
  std::string configured_secret;
  // Where the generated key lives; <dataDir>/data.key by default.
  std::string key_path;
};

struct LoadedDataKey {
  DataKey key{};
  bool created = false;  // true when this call generated and wrote key_path
  std::string path;      // the file the key came from; "" for a configured secret
};

// Resolves the data key (spec §2.6):
//  1. A configured secret (trimmed) is parsed as a stored key; if that fails the key is
//     HKDF-SHA256(secret, salt "cpa-manager-plus", info "data-key-v1", 32). Nothing is written.
//  2. Else key_path is read and parsed; an unparsable file is the error
//     "data key must be 32 bytes or base64-encoded 32 bytes" (callers prefix "load data key").
//     A group/world-accessible file is tightened to 0600 with a logged warning.
//  3. A missing file is created: parent directories 0700, content base64std_nopad(key) + "\n",
//     mode 0600, written to a temp file and linked into place atomically. If another process
//     creates the file first, its key is loaded instead (never overwritten).
// Disk errors are returned as kRequestFailed.
Result<LoadedDataKey> LoadOrCreateDataKey(const DataKeyOptions& options);

// ---------------------------------------------------------------------------------------------
// enc:v1 secret box

// Encrypts and decrypts the CPA management key at rest: AES-256-GCM under a working key
// HKDF-SHA256(data key, salt "cpa-manager-plus", info "settings-secrets-v1", 32), AAD
// "settings-secret", serialised "enc:v1:" + b64std_nopad(nonce12) + ":" +
// b64std_nopad(ciphertext || tag16).
// Immutable after construction; safe to share between threads. Copies hold their own key copy;
// the key material is wiped on destruction.
class SecretBox {
 public:
  explicit SecretBox(const DataKey& data_key);
  SecretBox(const SecretBox&) = default;
  SecretBox& operator=(const SecretBox&) = default;
  ~SecretBox();

  // Trims; "" and values already starting with "enc:v1:" are returned as they are (trimmed);
  // anything else is encrypted under a fresh random nonce.
  Result<std::string> Encrypt(std::string_view plaintext) const;
  // Values without the "enc:v1:" prefix are returned unchanged (legacy plaintext). Any failure
  // (bad framing, bad base64, wrong key, tampering) is kRequestFailed with the message
  // "decrypt secret: invalid data key or corrupted ciphertext".
  Result<std::string> Decrypt(std::string_view stored) const;
  // True when `stored` (trimmed) carries the "enc:v1:" prefix.
  static bool IsEncrypted(std::string_view stored);
  // Encrypt with a caller-chosen 12-byte nonce (for known-answer tests). Never reuse a nonce.
  Result<std::string> EncryptWithNonce(std::string_view plaintext, std::string_view nonce) const;

 private:
  std::array<unsigned char, 32> working_key_{};
};

// ---------------------------------------------------------------------------------------------
// Admin credential (settings.admin_credential_v1)

struct AdminCredential {
  int version = 1;
  std::string salt_b64;      // 16 random bytes, std base64 without padding
  std::string key_hash_b64;  // 32 bytes, std base64 without padding
  int iterations = 1;        // <= 1: HMAC-SHA256; > 1: PBKDF2-HMAC-SHA256 (read-only support)
  int64_t created_at_ms = 0;
  int64_t rotated_at_ms = 0;  // 0 = absent (omitted from JSON)
  std::string source;         // generated | env | cli | cli-generated
};

// A new credential for `admin_key` (trimmed): random 16-byte salt, keyHash = HMAC-SHA256(key =
// salt, message = admin key), iterations 1, createdAtMs = now_ms.
AdminCredential MakeAdminCredential(std::string_view admin_key, std::string source, int64_t now_ms);
// Constant-time check of `admin_key` (trimmed) against the credential. An empty key, an
// undecodable salt/hash or a hash of the wrong length never verifies. Salt and hash are accepted
// with or without base64 padding.
bool VerifyAdminKey(const AdminCredential& credential, std::string_view admin_key);
// Compact JSON with keys version, salt, keyHash, iterations, createdAtMs, rotatedAtMs (omitted
// when 0), source — in that order, no trailing newline.
std::string AdminCredentialToJson(const AdminCredential& c);
// Parses the stored JSON. Invalid JSON or a non-object is kRequestFailed; absent fields keep
// their defaults (such a credential simply never verifies).
Result<AdminCredential> AdminCredentialFromJson(std::string_view json);

// ---------------------------------------------------------------------------------------------
// Failed admin-key throttling (beyond upstream, which has none)

struct ThrottlePolicy {
  int free_failures = 3;        // failures before any delay
  int64_t base_delay_ms = 250;  // delay for the first delayed failure; doubles per further one
  int64_t max_delay_ms = 4000;  // ...up to this
  int lockout_failures = 10;    // failures within window_ms that lock the address out
  int64_t window_ms = 15 * 60 * 1000;
  int64_t lockout_ms = 15 * 60 * 1000;
  size_t max_tracked_addresses = 10000;  // bounded memory; expired, then oldest, are evicted
};

struct ThrottleDecision {
  bool locked_out = false;    // answer 429 without checking the key
  int64_t retry_after_s = 0;  // Retry-After seconds when locked_out (>= 1)
  int64_t delay_ms = 0;       // delay to apply before answering a failed attempt
};

// Counts failed admin-key attempts per client address within a sliding window that starts at the
// first failure; after free_failures each further failure earns an exponentially growing, capped
// delay, and lockout_failures failures lock the address out for lockout_ms. Time comes from
// clock.SteadyMs(). Thread-safe (one internal mutex). The clock must outlive the throttle.
class LoginThrottle {
 public:
  explicit LoginThrottle(const Clock& clock, ThrottlePolicy policy = {});

  // Before verifying a key: locked_out (with retry_after_s) or not; delay_ms is always 0.
  ThrottleDecision Check(const std::string& address);
  // After a failed attempt: the delay for this failure, and locked_out if the address is (now)
  // locked out.
  ThrottleDecision RecordFailure(const std::string& address);
  // After a successful attempt: forgets that address only.
  void RecordSuccess(const std::string& address);
  size_t TrackedAddresses() const;

 private:
  struct Entry {
    int failures = 0;
    int64_t window_start_ms = 0;
    int64_t locked_until_ms = 0;  // 0 = not locked
    std::list<std::string>::iterator lru;
  };
  bool Expired(const Entry& e, int64_t now) const;
  ThrottleDecision Locked(const Entry& e, int64_t now) const;
  void Erase(std::unordered_map<std::string, Entry>::iterator it);
  void MakeRoom(int64_t now);

  const Clock& clock_;
  const ThrottlePolicy policy_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::list<std::string> lru_;                      // guarded by mu_; least recently touched first
};

}  // namespace cpamp::security
