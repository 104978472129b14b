// Private to src/usage: Go-compatible value reading and JSON writing shared by the .cc files.
// Other contexts include only usage.h.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "usage/usage.h"

namespace cpamp::usage::internal {

namespace bj = boost::json;

using Keys = std::initializer_list<std::string_view>;

// ASCII-only case mapping (Go's ToLower agrees on every byte that matters here).
inline char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
inline char AsciiUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }

// Two's-complement wrapping arithmetic, as Go's int64 does on overflow (token counts come from
// untrusted input, so plain signed overflow would be undefined behaviour).
inline int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
inline int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

// ---- UTF-8 ----
// True if `s` is valid UTF-8 (ASCII fast path).
bool IsValidUtf8(std::string_view s);
// Replaces each invalid byte by U+FFFD, as Go's JSON decoder and strings.Map do.
std::string ToValidUtf8(std::string_view s);
// Largest n <= max_bytes such that s[0, n) ends on a rune boundary.
size_t RuneBoundaryPrefix(std::string_view s, size_t max_bytes);
// Go strings.TrimSpace (ASCII and Unicode White_Space).
std::string_view GoTrimSpace(std::string_view s);
// Cuts `s` to at most `max_bytes` bytes at a rune boundary ("..." appended inside the limit).
void LimitBytesWithEllipsis(std::string& s, size_t max_bytes);

// ---- Reading decoded JSON the way upstream's map[string]any readers do ----
// Value of the first key of `keys` present in `o` (even if null/empty), else nullptr.
const bj::value* FirstPresent(const bj::object& o, Keys keys);
// Go-style string of a scalar: strings trimmed (invalid UTF-8 repaired), integral numbers as
// integers, other numbers in %v form, booleans "true"/"false"; null, objects, arrays -> "".
std::string ScalarString(const bj::value* v);
// Integer of a value: numbers truncated through float64, decimal strings via ParseInt, else 0.
int64_t ScalarInt(const bj::value* v);
// Float64 of a number or numeric string; nullopt otherwise.
std::optional<double> ScalarDouble(const bj::value* v);
// ScalarString(FirstPresent(o, keys)).
std::string ReadString(const bj::object& o, Keys keys);
// Go's int64(float64) on amd64 (out of range / NaN -> INT64_MIN).
int64_t GoFloatToInt(double d);

// ---- Go number formatting ----
// strconv.FormatFloat(d, 'g', -1, 64) as used by fmt %v.
std::string GoFormatFloatV(double d);
// encoding/json's float64 layout is json::AppendDouble (base/json.h).

// ---- Go-compatible JSON writing ----
// Appends `s` as a JSON string literal with encoding/json escaping (HTML-safe, U+2028/2029);
// invalid bytes become a raw U+FFFD, as after Go's decode-then-encode round trip.
void AppendGoJsonString(std::string& out, std::string_view s);
// Marshals `v` like encoding/json marshals the map[string]any it decodes to: sorted keys,
// numbers through float64. Returns false if a number is not finite (Go rejects such input).
bool AppendGoJson(std::string& out, const bj::value& v);
// Like AppendGoJson, with the raw_json key redaction of §4.8 applied recursively.
bool AppendRedactedGoJson(std::string& out, const bj::value& v);
// False when a number in `v` is outside float64 range (upstream's decoder rejects the item).
bool AllNumbersFinite(const bj::value& v);

// ---- Response-header metadata (§4.8) ----
struct ResponseMetadata {
  std::optional<std::string> json;
  std::optional<int64_t> quota_recover_at_ms;
  std::optional<double> quota_used_percent;
  std::optional<std::string> quota_plan_type;
  std::optional<std::string> error_kind;
  std::optional<std::string> error_code;
  std::optional<std::string> trace_id;
};
// `record_metadata` is the record's `response_metadata` object (may be null), `headers` the
// `response_headers` value (may be null). Event facts decide provider_usage and recovery times.
ResponseMetadata BuildResponseMetadata(const bj::object* record_metadata, const bj::value* headers,
                                       const UsageEvent& event, std::string_view raw_fail_body);

// ---- Timestamps ----
// Reads the §4.4 timestamp from a decoded value; nullopt for missing/unparsable.
std::optional<ParsedTimestamp> ReadTimestampValue(const bj::value* v);

}  // namespace cpamp::usage::internal
