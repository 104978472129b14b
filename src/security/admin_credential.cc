// Design note: the admin key is stored only as a salted hash in settings.admin_credential_v1,
// in CPAMP's exact JSON (spec §2.2) so credentials carry over in both directions. New
// credentials use HMAC-SHA256(key = 16-byte salt, message = admin key) — a generated key has
// ~190 bits of entropy, so a slow KDF adds nothing; PBKDF2 is only verified, for credentials
// written with iterations > 1. Verification trims the key, refuses the empty key, and compares
// with CRYPTO_memcmp; padding on the stored base64 is tolerated because hand-edited rows and
// other tools may add it. The JSON reader is lenient like Go's decoder: absent fields keep their
// defaults and such a credential simply never verifies.
#include <boost/json.hpp>

#include "base/json.h"
#include "base/strings.h"
#include "security/primitives.h"
#include "security/security.h"

namespace cpamp::security {
namespace {

constexpr size_t kSaltBytes = 16;
constexpr size_t kHashBytes = 32;

}  // namespace

AdminCredential MakeAdminCredential(std::string_view admin_key, std::string source,
                                    int64_t now_ms) {
  const std::string salt = RandomBytes(kSaltBytes);
  AdminCredential c;
  c.version = 1;
  c.salt_b64 = Base64Encode(salt, /*pad=*/false);
  c.key_hash_b64 = Base64Encode(internal::HmacSha256(salt, TrimView(admin_key)), /*pad=*/false);
  c.iterations = 1;
  c.created_at_ms = now_ms;
  c.source = std::move(source);
  return c;
}

bool VerifyAdminKey(const AdminCredential& credential, std::string_view admin_key) {
  admin_key = TrimView(admin_key);
  if (admin_key.empty()) return false;
  std::string salt;
  std::string expected;
  if (!internal::DecodeStdBase64Either(TrimView(credential.salt_b64), &salt) ||
      !internal::DecodeStdBase64Either(TrimView(credential.key_hash_b64), &expected) ||
      expected.size() != kHashBytes) {
    return false;
  }
  const std::string actual =
      credential.iterations <= 1
          ? internal::HmacSha256(salt, admin_key)
          : internal::Pbkdf2Sha256(admin_key, salt, credential.iterations, kHashBytes);
  return internal::ConstantTimeEquals(actual, expected);
}

std::string AdminCredentialToJson(const AdminCredential& c) {
  boost::json::object o;
  o["version"] = c.version;
  o["salt"] = c.salt_b64;
  o["keyHash"] = c.key_hash_b64;
  o["iterations"] = c.iterations;
  o["createdAtMs"] = c.created_at_ms;
  if (c.rotated_at_ms != 0) o["rotatedAtMs"] = c.rotated_at_ms;
  o["source"] = c.source;
  return boost::json::serialize(o);
}

Result<AdminCredential> AdminCredentialFromJson(std::string_view text) {
  Result<boost::json::object> parsed = json::ParseObject(text);
  if (!parsed.ok()) {
    return Error(ErrorCode::kRequestFailed,
                 "decode admin credential: " + parsed.status().message());
  }
  const boost::json::object& o = *parsed;
  AdminCredential c;
  auto small_int = [](std::optional<long long> v, int fallback) {
    return v && *v >= INT32_MIN && *v <= INT32_MAX ? static_cast<int>(*v) : fallback;
  };
  c.version = small_int(json::GetInt(o, "version"), 0);
  c.salt_b64 = json::GetString(o, "salt").value_or("");
  c.key_hash_b64 = json::GetString(o, "keyHash").value_or("");
  c.iterations = small_int(json::GetInt(o, "iterations"), 0);
  c.created_at_ms = json::GetInt(o, "createdAtMs").value_or(0);
  c.rotated_at_ms = json::GetInt(o, "rotatedAtMs").value_or(0);
  c.source = json::GetString(o, "source").value_or("");
  return c;
}

}  // namespace cpamp::security
