// Usage record normalisation: one CPA usage-queue item -> one `usage_events` row.
//
// Contract: NormalizeQueuePayload() classifies a raw queue item (control message, usage record or
// dead letter) and, for a record, fills every column of the HEAD `usage_events` table exactly as
// spec cpamp-storage.md §4.3-4.10 describes, including the dedup `event_hash`. Everything here is
// a pure function of its arguments (the caller passes "now"), allocates only what it returns, and
// is safe to call from any number of threads at once. Nothing here touches SQLite or the network:
// the collector enriches events with ApplyAuthSnapshot() and the store writes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "db/usage_event_columns.h"

namespace cpamp::usage {

// Member types of the `usage_events` row table (db/usage_event_columns.h).
namespace column_kind {
using Text = std::string;
using OptText = std::optional<std::string>;
using Int = int64_t;
using OptInt = std::optional<int64_t>;
using OptReal = std::optional<double>;
using Bool = bool;
}  // namespace column_kind

// One `usage_events` row without `id`: one member per column of CPAMP_USAGE_EVENT_COLUMNS, in the
// table's declared order (see that table for each column's meaning). Optional members are the
// nullable columns; NormalizeQueuePayload() leaves them empty (NULL) for empty strings and for
// non-positive auth_snapshot_at_ms / header_quota_recover_at_ms / fail_status_code, as the
// upstream store does.
struct UsageEvent {
#define CPAMP_USAGE_MEMBER(name, kind, decl, init) column_kind::kind name init;
  CPAMP_USAGE_EVENT_COLUMNS(CPAMP_USAGE_MEMBER)
#undef CPAMP_USAGE_MEMBER

  bool operator==(const UsageEvent&) const = default;
};

// Position of each column in SelectUsageEventColumns() (event_store.h): `id` first, then the
// UsageEvent members in order. Readers that select every column read by these names.
enum class UsageEventColumn : int {
#define CPAMP_USAGE_ENUM(name, kind, decl, init) name,
  CPAMP_USAGE_EVENT_ID_COLUMN(CPAMP_USAGE_ENUM) CPAMP_USAGE_EVENT_COLUMNS(CPAMP_USAGE_ENUM)
#undef CPAMP_USAGE_ENUM
      kCount
};
// Columns of UsageEvent (every usage_events column except id).
inline constexpr int kUsageEventColumnCount = static_cast<int>(UsageEventColumn::kCount) - 1;

inline constexpr std::string_view kIncludedInInput = "included_in_input";
inline constexpr std::string_view kSeparateFromInput = "separate_from_input";

// ---- Queue items -------------------------------------------------------------------------------

enum class PayloadKind { kEvent, kControlRefresh, kControlSupportRefresh, kDeadLetter };

struct NormalizeResult {
  PayloadKind kind = PayloadKind::kDeadLetter;
  UsageEvent event;               // filled only for kEvent
  std::string dead_letter_error;  // filled only for kDeadLetter
};

// Classifies and normalises one queue item. `payload` is the item text: a JSON object, or a JSON
// string whose content is a JSON object (the HTTP queue may deliver either). `now_ms` becomes
// created_at_ms and stands in for a missing or unparsable timestamp.
//  - exactly one key with a boolean value, {"refresh":true} / {"support_refresh":true} -> control;
//  - any other object -> kEvent (a record that lacks every field still becomes a row);
//  - invalid JSON, a non-object, or a number outside float64 range -> kDeadLetter with the reason.
// The caller stores dead letters verbatim with its own copy of `payload`.
// `raw` decides which events get their raw_json copy (building it is ~15 % of the work).
enum class RawJsonMode { kAll, kFailed, kNone };
NormalizeResult NormalizeQueuePayload(std::string_view payload, int64_t now_ms,
                                      RawJsonMode raw = RawJsonMode::kAll);

// ---- Exported records (§5.4) -------------------------------------------------------------------

// Maps one line of our (or upstream's) JSONL export back to a row: `event_hash`/`eventHash` is
// taken verbatim (never recomputed, so re-importing an export deduplicates exactly), timestamps
// and created_at_ms are preserved, `source`/`source_hash` are taken as already masked, the cache
// mode and effective tier are re-derived. Returns kEvent, or kDeadLetter with the reason when the
// text is not a JSON object or has no event_hash. `now_ms` stands in for missing times.
NormalizeResult NormalizeExportedRecord(std::string_view json_text, int64_t now_ms);

// ---- Dedup key ---------------------------------------------------------------------------------

// The text the event hash is taken over (§4.10):
// request_id|timestamp|endpoint|model|auth_index|source_hash|input|output|reasoning|
// max(cached,cache)|true-or-false[|latency_ms], NULL columns as "".
std::string EventHashPreimage(const UsageEvent& event);
// Lowercase hex SHA-256 of EventHashPreimage(). Legacy-export imports (§5.5) hash a copy whose
// `model` holds the aggregate model key.
std::string ComputeEventHash(const UsageEvent& event);

// ---- Redaction and sanitising (§4.8, §4.9)
// -------------------------------------------------------

inline constexpr size_t kFailSummaryMaxBytes = 4096;
inline constexpr size_t kClientIpMaxBytes = 64;
inline constexpr size_t kForwardedForMaxBytes = 2048;
inline constexpr size_t kUserAgentMaxBytes = 1024;
inline constexpr size_t kHeaderValueMaxBytes = 1024;

// The "redacted failure evidence" filter: authorization values, Bearer tokens, *_token and
// api-key field values, key-shaped tokens (sk-, sess-, ghp_, github_pat_, AIza, hf_, pk_, rk_),
// cookies and e-mail local parts are masked; the result is trimmed, and cut to 4096 bytes at a
// UTF-8 boundary with "..." appended when it was longer. Invalid UTF-8 becomes U+FFFD.
std::string RedactFailureText(std::string_view text);
// client_ip / x_forwarded_for / user_agent cleaning: whitespace and non-graphic runes become one
// space, trimmed; longer than `max_bytes` -> cut at a rune boundary to max-3 bytes plus "...".
std::string SanitizeClientField(std::string_view text, size_t max_bytes);
// The stored form of a credential label: "use***@example.com", "m:sk-a...wxyz", "m:****".
std::string MaskSource(std::string_view raw);
// True for values that look like credentials (no space, '/' or '\'; "sk-"/"AIza" or >= 32 bytes).
bool LooksSecret(std::string_view value);
// Lowercase hex SHA-256.
std::string Sha256Hex(std::string_view bytes);
// The `raw_json` column for a JSON text: key-redacted, Go-marshalled (sorted keys, HTML-safe
// escapes). Non-JSON text falls back to RedactFailureText().
std::string SafeRawJson(std::string_view json_text);

// ---- Model identity, cache accounting, tiers (§4.5-4.7)
// ------------------------------------------

// Drops a trailing reasoning suffix "(high)", "(max)", "(8192)" ... ("foo(custom)" is unchanged).
std::string AnalyticsModel(std::string_view requested_or_model);
// First decisive rule of §4.6 (explicit mode, executor, provider, snapshot provider, models,
// cache counters) -> kIncludedInInput or kSeparateFromInput.
std::string_view InferCacheInputMode(const UsageEvent& event);
// max(cached, cache) minus read and creation, floored at 0 (§4.6 "compatible cached").
int64_t CompatibleCachedTokens(const UsageEvent& event);
// Sets cache_input_mode (keeping a valid existing one) and the four normalized_* columns.
void ApplyCacheAccounting(UsageEvent& event);
// §4.7: Codex-family events bill the request tier, others the response tier.
std::string EffectiveServiceTier(const UsageEvent& event);

// ---- Account-snapshot enrichment (§4.11)
// ----------------------------------------------------------

// One entry of CPA's `GET /v0/management/auth-files`, reduced to what enrichment uses.
struct AuthSnapshot {
  std::string account;     // account/email (not secret-looking), else label, else file name
  std::string label;       // label / name / email / account
  std::string file_name;   // name
  std::string provider;    // provider / type
  std::string project_id;  // project_id / projectId / gemini_virtual_project / ...
};

// Builds an AuthSnapshot from one auth-files entry (a JSON object text); nullopt if the text is
// not a JSON object.
std::optional<AuthSnapshot> AuthSnapshotFromAuthFileJson(std::string_view json_object_text);

// Fills the snapshot columns the payload left empty; only for events that have an auth_index and
// lack account_snapshot or auth_project_id_snapshot. Sets auth_snapshot_at_ms = fetched_at_ms
// when anything was filled and re-derives the effective service tier. Does not touch the hash.
void ApplyAuthSnapshot(UsageEvent& event, const AuthSnapshot& snapshot, int64_t fetched_at_ms);

// ---- Timestamps (§4.4)
// ---------------------------------------------------------------------------

struct ParsedTimestamp {
  int64_t ms = 0;    // epoch ms, sub-millisecond digits dropped (floor)
  std::string text;  // UTC RFC3339Nano, trailing fractional zeros trimmed, "Z" suffix
};
// Parses a timestamp string: base-10 integer (seconds below 1e10, else ms), RFC3339(Nano),
// "2006-01-02 15:04:05", "2006-01-02T15:04:05" (zone-less = UTC). nullopt if none fits.
std::optional<ParsedTimestamp> ParseTimestampText(std::string_view text);
// RFC3339Nano text of an epoch-ms instant in UTC.
std::string FormatTimestampMs(int64_t ms);

}  // namespace cpamp::usage
