// Synthetic CPA usage records (spec/cpa-protocol.md §1) for the simulator.
//
// RecordGenerator produces compact JSON lines with every field of CPA HEAD in CPA's key order
// (§1.2-1.4), or the v6.10.8 legacy shape (§1.5) when asked. Records are drawn from a fixed
// table of credentials (file OAuth auths and config API keys) whose `auth_index` values are
// computed like CPA does (first 8 bytes of sha256(seed) as hex), so they match the simulator's
// `GET /v0/management/auth-files` list. The same seed yields the same sequence of records;
// only `timestamp` follows the clock passed in.
//
// Threading: a RecordGenerator is a plain value used from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace cpamp::sim {

// One upstream credential the generator charges records to.
struct Credential {
  std::string provider;      // codex | claude | gemini | openai
  std::string executor;      // CodexExecutor, ClaudeExecutor, ...
  std::string auth_type;     // oauth | apikey
  std::string file_name;     // auth file (id) for file auths; "" for config API keys
  std::string email;         // OAuth account; "" for API keys
  std::string upstream_key;  // raw upstream API key for config keys; "" for OAuth
  std::string base_url;      // config keys only
  std::string project_id;    // gemini only
  std::string plan_type;     // codex only
  std::string account_id;    // codex only (chatgpt_account_id)
  std::string auth_index;    // 16 lowercase hex chars
  std::string access_token;  // synthetic OAuth access token ("" for API keys)
  std::string token_sha256;  // hex sha256 of access_token ("" for API keys)
  std::string source;        // what CPA puts in the record's `source`
  bool listed = false;       // appears in GET /auth-files (file auths only)
};

// The built-in credential table (same for every seed).
const std::vector<Credential>& BuiltinCredentials();
// CPA's stable auth index: hex of the first 8 bytes of sha256(seed).
std::string StableAuthIndex(std::string_view seed);
// Appends `s` as a JSON string literal escaped like Go's encoding/json (HTML-safe: < > & and
// U+2028/2029 as \uXXXX).
void AppendGoJsonString(std::string_view s, std::string* out);
// Go time.Time JSON text (RFC 3339, nanoseconds with trailing zeros trimmed, UTC "Z").
std::string GoTimestamp(std::chrono::system_clock::time_point t);

struct GeneratorOptions {
  std::uint64_t seed = 1;
  bool legacy_fields = false;   // v6.10.8 record shape (§1.5): no fields added after v6.10.7
  double failure_ratio = 0.05;  // share of failed attempts
};

// What a generated record was about (for per-credential counters and `errors` events).
struct RecordMeta {
  std::size_t credential = 0;  // index into BuiltinCredentials()
  bool failed = false;
  int status_code = 200;
  std::string model;
  std::string fail_body;  // raw (unescaped) failure text; "" on success
};

class RecordGenerator {
 public:
  explicit RecordGenerator(GeneratorOptions options);

  // Appends one record (compact JSON, no newline) to `*out` and returns what it describes.
  RecordMeta Next(std::chrono::system_clock::time_point now, std::string* out);
  // An `errors` channel event (§1.8) for a failed record.
  std::string ErrorEvent(const RecordMeta& meta, std::chrono::system_clock::time_point now) const;

  // Credentials marked unusable (disabled or deleted auth files) are skipped; when none is
  // usable every credential is used again (traffic never stops entirely).
  void SetUsable(std::size_t credential, bool usable);
  // Models offered by GET /v1/models.
  std::vector<std::string> Models() const;

 private:
  struct ProviderProfile;
  std::size_t PickCredential();
  std::uint64_t Uniform(std::uint64_t lo, std::uint64_t hi);  // inclusive
  bool Chance(double p);

  GeneratorOptions options_;
  std::mt19937_64 rng_;
  std::vector<bool> usable_;
  std::string retry_request_id_;  // set after a retryable failure: the next record retries it
  std::size_t retry_from_ = 0;
  // Date/time prefix cache for timestamps (rebuilt once per second).
  std::int64_t cached_second_ = -1;
  std::string cached_prefix_;
};

}  // namespace cpamp::sim
