// Small string helpers shared across contexts.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cpamp {

std::string_view TrimView(std::string_view s);
std::string Trim(std::string_view s);
std::string ToLower(std::string_view s);
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
std::vector<std::string> SplitAndTrim(std::string_view s, char sep);  // drops empties
// Standard base64 (RFC 4648 §4) and URL-safe base64 (§5), with or without '=' padding.
std::string Base64Encode(std::string_view bytes, bool pad = true, bool url_safe = false);
// Decodes strictly: the exact alphabet, padding only when `padded`; false on anything else.
bool Base64Decode(std::string_view text, std::string* out, bool padded, bool url_safe);
std::string HexEncode(std::string_view bytes);
// Parses a decimal integer strictly (optional sign, digits only, no overflow).
bool ParseInt64(std::string_view s, long long* out);

}  // namespace cpamp
