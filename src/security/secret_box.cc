// Design note: the enc:v1 format is CPAMP's (spec §2.6) and must stay byte-compatible: AES-256-GCM
// with a 12-byte nonce, the 16-byte tag appended to the ciphertext, AAD "settings-secret", and
// both parts in unpadded standard base64. The working key is derived once in the constructor via
// HKDF so the data key itself is never used directly as a cipher key. Every decryption failure —
// framing, base64, nonce length, tag mismatch — collapses into one message so callers (and
// attackers) cannot tell a wrong data key from tampering; the panel shows that message verbatim.
// A fresh EVP context per call keeps the box immutable and therefore safe to share.
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <memory>

#include "base/strings.h"
#include "security/primitives.h"
#include "security/security.h"

namespace cpamp::security {
namespace {

constexpr std::string_view kPrefix = "enc:v1:";
constexpr std::string_view kHkdfSalt = "cpa-manager-plus";
constexpr std::string_view kSecretsInfo = "settings-secrets-v1";
constexpr std::string_view kAad = "settings-secret";
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
// The management key is short; this bounds the work a corrupted settings row can cause.
constexpr size_t kMaxStoredChars = 1 << 20;

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

Status DecryptError() {
  return Error(ErrorCode::kRequestFailed,
               "decrypt secret: invalid data key or corrupted ciphertext");
}

}  // namespace

SecretBox::SecretBox(const DataKey& data_key) {
  std::string_view ikm(reinterpret_cast<const char*>(data_key.data()), data_key.size());
  std::string key = internal::HkdfSha256(ikm, kHkdfSalt, kSecretsInfo, working_key_.size());
  std::copy(key.begin(), key.end(), working_key_.begin());
  OPENSSL_cleanse(key.data(), key.size());
}

SecretBox::~SecretBox() { OPENSSL_cleanse(working_key_.data(), working_key_.size()); }

bool SecretBox::IsEncrypted(std::string_view stored) {
  return TrimView(stored).starts_with(kPrefix);
}

Result<std::string> SecretBox::Encrypt(std::string_view plaintext) const {
  return EncryptWithNonce(plaintext, RandomBytes(kNonceBytes));
}

Result<std::string> SecretBox::EncryptWithNonce(std::string_view plaintext,
                                                std::string_view nonce) const {
  plaintext = TrimView(plaintext);
  if (plaintext.empty() || plaintext.starts_with(kPrefix)) return std::string(plaintext);
  if (nonce.size() != kNonceBytes) {
    return Error(ErrorCode::kRequestFailed, "encrypt secret: nonce must be 12 bytes");
  }
  if (plaintext.size() > INT_MAX - kTagBytes) {
    return Error(ErrorCode::kRequestFailed, "encrypt secret: value too large");
  }
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string sealed(plaintext.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  int len = 0;
  int total = 0;
  bool ok =
      ctx != nullptr &&
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, working_key_.data(), Bytes(nonce)) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(kAad), kAad.size()) == 1 &&
      EVP_EncryptUpdate(ctx.get(), out, &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) == 1;
  total = len;
  ok = ok && EVP_EncryptFinal_ex(ctx.get(), out + total, &len) == 1;
  total += len;
  ok = ok && static_cast<size_t>(total) == plaintext.size() &&
       EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, out + total) == 1;
  if (!ok) return Error(ErrorCode::kRequestFailed, "encrypt secret: cipher failure");
  return std::string(kPrefix) + Base64Encode(nonce, /*pad=*/false) + ":" +
         Base64Encode(sealed, /*pad=*/false);
}

Result<std::string> SecretBox::Decrypt(std::string_view stored) const {
  std::string_view value = TrimView(stored);
  if (!value.starts_with(kPrefix)) return std::string(stored);
  value.remove_prefix(kPrefix.size());
  size_t colon = value.find(':');
  if (colon == std::string_view::npos || value.size() > kMaxStoredChars) return DecryptError();
  std::string nonce;
  std::string sealed;
  if (!internal::DecodeStdBase64Either(value.substr(0, colon), &nonce) ||
      !internal::DecodeStdBase64Either(value.substr(colon + 1), &sealed) ||
      nonce.size() != kNonceBytes || sealed.size() < kTagBytes) {
    return DecryptError();
  }
  const size_t text_size = sealed.size() - kTagBytes;
  std::string plaintext(text_size, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plaintext.data());
  auto* tag = reinterpret_cast<unsigned char*>(sealed.data() + text_size);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  int total = 0;
  bool ok =
      ctx != nullptr &&
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, working_key_.data(), Bytes(nonce)) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(kAad), kAad.size()) == 1 &&
      EVP_DecryptUpdate(ctx.get(), out, &len, Bytes(sealed), static_cast<int>(text_size)) == 1;
  total = len;
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) == 1 &&
       EVP_DecryptFinal_ex(ctx.get(), out + total, &len) == 1;
  if (!ok) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return DecryptError();
  }
  total += len;
  plaintext.resize(static_cast<size_t>(total));
  return plaintext;
}

}  // namespace cpamp::security
