// Private to src/security: thin wrappers over the OpenSSL 3 primitives the context uses. Not part
// of the public surface; other contexts include only security.h.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cpamp::security::internal {

// HKDF-SHA256 (RFC 5869) extract-and-expand; CHECK-fails only on an OpenSSL malfunction.
std::string HkdfSha256(std::string_view secret, std::string_view salt, std::string_view info,
                       size_t length);
// HMAC-SHA256(key, message), 32 bytes.
std::string HmacSha256(std::string_view key, std::string_view message);
// PBKDF2-HMAC-SHA256(password, salt, iterations, length).
std::string Pbkdf2Sha256(std::string_view password, std::string_view salt, int iterations,
                         size_t length);
// Compares in time independent of the contents (lengths are not secret).
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// Decodes standard base64 with or without '=' padding.
bool DecodeStdBase64Either(std::string_view text, std::string* out);

}  // namespace cpamp::security::internal
