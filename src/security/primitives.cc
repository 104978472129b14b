// Design note: thin wrappers over OpenSSL 3 — EVP_KDF "HKDF", the one-shot HMAC(),
// PKCS5_PBKDF2_HMAC, CRYPTO_memcmp and RAND_bytes — so the rest of the context deals in
// std::string bytes and never in OpenSSL handles. These calls only fail when OpenSSL itself is
// broken (allocation failure, no default provider); that is a broken invariant rather than bad
// input, so they CHECK instead of returning a Status. RandomBytes and GenerateAdminKey live here
// as well: they are the context's only source of randomness. Admin keys use rejection sampling
// so that each of the 62 characters is exactly equally likely.
#include "security/primitives.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <climits>
#include <memory>

#include "base/check.h"
#include "base/strings.h"
#include "security/security.h"

namespace cpamp::security {
namespace internal {
namespace {

struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

char* Mutable(std::string_view s) { return const_cast<char*>(s.data()); }

}  // namespace

std::string HkdfSha256(std::string_view secret, std::string_view salt, std::string_view info,
                       size_t length) {
  std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  CHECK(kdf != nullptr);
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  CHECK(ctx != nullptr);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, Mutable(secret), secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, Mutable(salt), salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, Mutable(info), info.size()),
      OSSL_PARAM_construct_end(),
  };
  std::string out(length, '\0');
  CHECK(EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out.size(),
                       params) == 1);
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  CHECK(key.size() <= INT_MAX);
  std::string out(32, '\0');
  unsigned int len = 0;
  CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(),
             reinterpret_cast<unsigned char*>(out.data()), &len) != nullptr);
  CHECK(len == out.size());
  return out;
}

std::string Pbkdf2Sha256(std::string_view password, std::string_view salt, int iterations,
                         size_t length) {
  CHECK(iterations >= 1 && password.size() <= INT_MAX && salt.size() <= INT_MAX &&
        length <= INT_MAX);
  std::string out(length, '\0');
  CHECK(PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()),
                          static_cast<int>(salt.size()), iterations, EVP_sha256(),
                          static_cast<int>(length),
                          reinterpret_cast<unsigned char*>(out.data())) == 1);
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool DecodeStdBase64Either(std::string_view text, std::string* out) {
  return Base64Decode(text, out, /*padded=*/false, /*url_safe=*/false) ||
         Base64Decode(text, out, /*padded=*/true, /*url_safe=*/false);
}

}  // namespace internal

std::string RandomBytes(size_t n) {
  CHECK(n <= INT_MAX);
  std::string out(n, '\0');
  if (n > 0) {
    CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) == 1);
  }
  return out;
}

std::string GenerateAdminKey() {
  static constexpr std::string_view kAlphabet =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  static_assert(kAlphabet.size() == 62);
  // 248 = 4 * 62: bytes at or above it would bias the first characters, so they are redrawn.
  constexpr unsigned kLimit = 4 * kAlphabet.size();
  constexpr size_t kLength = 32;
  std::string key = "cpamp_";
  while (key.size() < 6 + kLength) {
    for (unsigned char b : RandomBytes(kLength)) {
      if (b >= kLimit) continue;
      key.push_back(kAlphabet[b % kAlphabet.size()]);
      if (key.size() == 6 + kLength) break;
    }
  }
  return key;
}

}  // namespace cpamp::security
