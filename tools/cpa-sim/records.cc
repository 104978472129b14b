// Record generator.
//
// Design: a record is appended piece by piece into the caller's string (reserved once by the
// caller and reused), so producing one costs a few dozen appends and no JSON DOM. Everything
// that does not vary per record (credential table, escaped failure bodies, response-header
// blocks) is built once in function-local statics. Token counts follow the per-provider
// semantics of §1.3 (OpenAI/Codex "subset", Claude "independent", Gemini "separate reasoning")
// and the `token_breakdown` always satisfies the v2 invariants with quality "complete".
// About 5% of attempts fail; failure bodies deliberately carry secrets (sk- keys, Bearer
// tokens, Google API keys, e-mail addresses) and HTML so that redaction and Go-style escaping
// can be tested downstream. A retryable failure makes the next record reuse its request_id on
// another credential, like CPA's per-attempt reporters.
#include "records.h"

#include <openssl/sha.h>

#include <charconv>
#include <ctime>

namespace cpamp::sim {
namespace {

void AppendInt(std::int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendKey(std::string_view key, std::string* out) {
  out->push_back('"');
  out->append(key);
  out->append("\":");
}

void AppendStrField(std::string_view key, std::string_view value, std::string* out) {
  AppendKey(key, out);
  AppendGoJsonString(value, out);
  out->push_back(',');
}

void AppendIntField(std::string_view key, std::int64_t value, std::string* out) {
  AppendKey(key, out);
  AppendInt(value, out);
  out->push_back(',');
}

std::string Sha256Hex(std::string_view s) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : digest) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

constexpr std::string_view kAuthDir = "/root/.cli-proxy-api/";

Credential FileAuth(std::string provider, std::string executor, std::string file,
                    std::string email) {
  Credential c;
  c.provider = std::move(provider);
  c.executor = std::move(executor);
  c.auth_type = "oauth";
  c.file_name = std::move(file);
  c.email = std::move(email);
  c.auth_index = StableAuthIndex(c.provider + ":" + std::string(kAuthDir) + c.file_name);
  c.access_token = "sim-access-token-" + c.auth_index;
  c.token_sha256 = Sha256Hex(c.access_token);
  c.source = c.email;
  c.listed = true;
  return c;
}

Credential ConfigKey(std::string provider, std::string executor, std::string seed_kind,
                     std::string base_url, std::string key) {
  Credential c;
  c.provider = std::move(provider);
  c.executor = std::move(executor);
  c.auth_type = "apikey";
  c.base_url = std::move(base_url);
  c.upstream_key = std::move(key);
  c.auth_index = StableAuthIndex(seed_kind + ":" + c.base_url + "+" + c.upstream_key);
  c.source = c.upstream_key;  // CPA reports the raw upstream key for API-key credentials
  return c;
}

struct ModelChoice {
  std::string_view model;
  bool reasoning;  // emits reasoning tokens
};

struct ProviderData {
  std::vector<ModelChoice> models;
  std::vector<std::string_view> endpoints;
  std::vector<std::string_view> user_agents;
  std::vector<std::string_view> efforts;  // "" = none
};

const ProviderData& DataFor(std::string_view provider) {
  static const ProviderData kCodex{
      {{"gpt-5.5", true}, {"gpt-5.4", true}, {"gpt-5.4-mini", true}, {"gpt-5.3-codex", true}},
      {"POST /v1/responses", "POST /backend-api/codex/responses"},
      {"codex_cli_rs/0.130.0 (Debian 12.0.0; x86_64) xterm-256color",
       "codex_vscode/0.129.2 (Mac OS 15.5.0; arm64)"},
      {"low", "medium", "high", "xhigh"}};
  static const ProviderData kClaude{
      {{"claude-sonnet-4-5-20250929", true},
       {"claude-opus-4-1-20250805", true},
       {"claude-haiku-4-5-20251001", false}},
      {"POST /v1/messages"},
      {"claude-cli/2.0.14 (external, cli)", "Anthropic/Python 0.68.0"},
      {"", "", "high"}};
  static const ProviderData kGemini{
      {{"gemini-2.5-pro", true}, {"gemini-2.5-flash", true}},
      {"POST /v1beta/models/*action", "POST /v1/chat/completions"},
      {"GeminiCLI/0.9.0 (linux; x64)", "google-genai-sdk/1.30.0 gl-python/3.12.3"},
      {"", "auto", "high"}};
  static const ProviderData kOpenAI{{{"gpt-4.1", false}, {"gpt-4o-mini", false}, {"o4-mini", true}},
                                    {"POST /v1/chat/completions", "POST /v1/responses"},
                                    {"OpenAI/Python 1.109.1", "Mozilla/5.0 (X11; Linux x86_64)"},
                                    {"", "medium"}};
  if (provider == "codex") return kCodex;
  if (provider == "claude") return kClaude;
  if (provider == "gemini") return kGemini;
  return kOpenAI;
}

struct Failure {
  int status;
  std::string escaped_body;  // Go-escaped JSON string literal, quotes included
  std::string raw_body;
  bool retryable;
};

const std::vector<Failure>& Failures() {
  static const std::vector<Failure> kFailures = [] {
    struct Raw {
      int status;
      std::string_view body;
      bool retryable;
    };
    static constexpr Raw kRaw[] = {
        {401,
         R"({"error":{"message":"Incorrect API key provided: sk-proj-Zx81LmQ2vB7nR4tY9wE3uI6oP0aS5dF1gH8jK2lC. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})",
         false},
        {429,
         R"({"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (org-7f3e21) of 400,000 input tokens per minute. Account: carol@example.com"},"request_id":"req_011CTq8xK2"})",
         true},
        {401,
         "upstream error: POST https://chatgpt.com/backend-api/codex/responses: 401 Unauthorized; "
         "request sent with Authorization: Bearer "
         "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhdXRoMHx1c2VyLTEyMyIsImVtYWlsIjoiYWxpY2"
         "VAZXhhbXBsZS5jb20ifQ.c2lnbmF0dXJlLXNpbQ (token expired for alice@example.com)",
         false},
        {403,
         R"({"error":{"code":403,"message":"Permission denied on resource project my-project-123 (caller erin@example.com, key AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY).","status":"PERMISSION_DENIED"}})",
         false},
        {502,
         "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
         "Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>",
         true},
        {429,
         R"({"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_in_seconds":14400}})",
         true},
        {500,
         "upstream failed: x-api-key sk-ant-api03-Qm9vZ2xlR29vZ2xlR29vZ2xlR29vZ2xl-AbCdEfAA "
         "rejected & connection reset by peer",
         true},
        {400,
         R"({"error":{"message":"Invalid 'input': prompt contains secret 'ghp_4f8Kx2LmQ9vB7nR4tY9wE3uI6oP0aS5dF1gH' of user dave@example.org","type":"invalid_request_error"}})",
         false},
    };
    std::vector<Failure> out;
    for (const Raw& r : kRaw) {
      Failure f{r.status, "", std::string(r.body), r.retryable};
      AppendGoJsonString(r.body, &f.escaped_body);
      out.push_back(std::move(f));
    }
    return out;
  }();
  return kFailures;
}

constexpr std::string_view kClientKeys[] = {"sk-team-alpha-7c1d", "sk-team-beta-93f0",
                                            "sk-ci-runner-0a55", "sk-demo-4411"};
constexpr std::string_view kClientIps[] = {"172.18.0.1", "10.0.4.23", "192.168.1.50", "127.0.0.1"};
constexpr std::string_view kForwardedFor[] = {"", "", "203.0.113.5", "203.0.113.5, 198.51.100.8"};

void AppendHex(std::uint64_t v, int digits, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out->push_back(kHex[(v >> (i * 4)) & 0xf]);
}

}  // namespace

std::string StableAuthIndex(std::string_view seed) { return Sha256Hex(seed).substr(0, 16); }

void AppendGoJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '<':
      case '>':
      case '&':
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
        } else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
                    static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
          out->append(static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029");
          i += 2;
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

std::string GoTimestamp(std::chrono::system_clock::time_point t) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::int64_t secs = ns / 1000000000;
  std::int64_t frac = ns % 1000000000;
  if (frac < 0) {
    frac += 1000000000;
    --secs;
  }
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (frac != 0) {
    char fbuf[16];
    std::snprintf(fbuf, sizeof(fbuf), ".%09lld", static_cast<long long>(frac));
    std::string f(fbuf);
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  out.push_back('Z');
  return out;
}

const std::vector<Credential>& BuiltinCredentials() {
  static const std::vector<Credential> kCredentials = [] {
    std::vector<Credential> v;
    v.push_back(FileAuth("codex", "CodexExecutor", "codex-alice@example.com-plus.json",
                         "alice@example.com"));
    v.back().plan_type = "plus";
    v.back().account_id = "acc-5f0c9a1e-alice";
    v.push_back(
        FileAuth("codex", "CodexExecutor", "codex-bob@example.org-pro.json", "bob@example.org"));
    v.back().plan_type = "pro";
    v.back().account_id = "acc-77d1b2c3-bob";
    v.push_back(FileAuth("codex", "CodexAutoExecutor", "codex-team@example.net-team.json",
                         "team@example.net"));
    v.back().plan_type = "team";
    v.back().account_id = "acc-0e9f8d7c-team";
    v.push_back(
        FileAuth("claude", "ClaudeExecutor", "claude-carol@example.com.json", "carol@example.com"));
    v.push_back(
        FileAuth("claude", "ClaudeExecutor", "claude-dave@example.org.json", "dave@example.org"));
    v.push_back(FileAuth("gemini", "GeminiExecutor", "gemini-erin@example.com-my-project-123.json",
                         "erin@example.com"));
    v.back().project_id = "my-project-123";
    v.push_back(ConfigKey("openai", "OpenAICompatExecutor", "openai-compatibility",
                          "https://api.openai.com/v1", "sk-proj-Rk3vT9wQ1mZ7xC5bN2aL8sD4fG6hJ0kP"));
    v.push_back(ConfigKey("claude", "ClaudeExecutor", "claude-api-key", "https://api.anthropic.com",
                          "sk-ant-api03-Xy7Qw2Er9Ty4Ui1Op6As3Df8Gh5Jk0Lz-QwErTyAA"));
    return v;
  }();
  return kCredentials;
}

RecordGenerator::RecordGenerator(GeneratorOptions options)
    : options_(options), rng_(options.seed), usable_(BuiltinCredentials().size(), true) {}

std::uint64_t RecordGenerator::Uniform(std::uint64_t lo, std::uint64_t hi) {
  if (hi <= lo) return lo;
  return lo + rng_() % (hi - lo + 1);
}

bool RecordGenerator::Chance(double p) {
  return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0) < p;
}

void RecordGenerator::SetUsable(std::size_t credential, bool usable) {
  if (credential < usable_.size()) usable_[credential] = usable;
}

std::vector<std::string> RecordGenerator::Models() const {
  std::vector<std::string> out;
  for (std::string_view p : {"codex", "claude", "gemini", "openai"}) {
    for (const auto& m : DataFor(p).models) out.emplace_back(m.model);
  }
  return out;
}

std::size_t RecordGenerator::PickCredential() {
  const auto& creds = BuiltinCredentials();
  std::size_t usable = 0;
  for (bool u : usable_) usable += u ? 1 : 0;
  // Weighted towards the OAuth accounts (most CPA traffic), API keys get the rest.
  for (int attempt = 0; attempt < 64; ++attempt) {
    std::size_t i = static_cast<std::size_t>(Uniform(0, creds.size() + 3)) % creds.size();
    if (attempt == 0 && Uniform(0, 9) < 4) i = static_cast<std::size_t>(Uniform(0, 2));  // codex
    if (usable == 0 || usable_[i]) return i;
  }
  for (std::size_t i = 0; i < usable_.size(); ++i) {
    if (usable_[i]) return i;
  }
  return 0;
}

RecordMeta RecordGenerator::Next(std::chrono::system_clock::time_point now, std::string* out) {
  const auto& creds = BuiltinCredentials();
  RecordMeta meta;
  std::string request_id;
  if (!retry_request_id_.empty()) {
    request_id.swap(retry_request_id_);
    meta.credential = PickCredential();
    if (meta.credential == retry_from_) meta.credential = (meta.credential + 1) % creds.size();
  } else {
    meta.credential = PickCredential();
    AppendHex(rng_(), 8, &request_id);
  }
  const Credential& cred = creds[meta.credential];
  const ProviderData& data = DataFor(cred.provider);
  const ModelChoice& model = data.models[Uniform(0, data.models.size() - 1)];
  meta.model = std::string(model.model);
  const std::string_view endpoint = data.endpoints[Uniform(0, data.endpoints.size() - 1)];
  const std::string_view ua = data.user_agents[Uniform(0, data.user_agents.size() - 1)];
  const std::size_t client = static_cast<std::size_t>(Uniform(0, 3));
  std::string_view effort = data.efforts[Uniform(0, data.efforts.size() - 1)];
  if (!model.reasoning) effort = "";
  const bool suffixed_alias = !effort.empty() && cred.provider == "codex" && Chance(0.6);

  const Failure* failure = nullptr;
  if (Chance(options_.failure_ratio)) {
    failure = &Failures()[Uniform(0, Failures().size() - 1)];
    meta.failed = true;
    meta.status_code = failure->status;
    meta.fail_body = failure->raw_body;
    if (failure->retryable && Chance(0.5)) {
      retry_request_id_ = request_id;
      retry_from_ = meta.credential;
    }
  }
  const bool warmup = !failure && cred.provider == "codex" && Chance(0.02);

  // Tokens per provider semantics (§1.3); failures and warm-ups carry none.
  std::int64_t input = 0, output = 0, reasoning = 0, cached = 0, cache_read = 0, cache_creation = 0,
               total = 0;
  std::int64_t bd_in_total = 0, bd_uncached = 0, bd_read = 0, bd_write = 0, bd_out_total = 0,
               bd_non_reasoning = 0, bd_reasoning = 0;
  if (!failure && !warmup) {
    const auto prompt = static_cast<std::int64_t>(Uniform(200, 60000));
    const std::int64_t hit =
        Chance(0.55) ? prompt * static_cast<std::int64_t>(Uniform(30, 95)) / 100 : 0;
    const auto out_tokens = static_cast<std::int64_t>(Uniform(20, 4000));
    const std::int64_t think =
        model.reasoning ? out_tokens * static_cast<std::int64_t>(Uniform(0, 70)) / 100 : 0;
    if (cred.provider == "claude") {
      const std::int64_t write = Chance(0.3) ? static_cast<std::int64_t>(Uniform(100, 4000)) : 0;
      const std::int64_t uncached = prompt - hit;
      input = uncached;
      cache_read = hit;
      cache_creation = write;
      cached = hit != 0 ? hit : write;
      output = out_tokens;
      reasoning = think;
      total = uncached + out_tokens + hit + write;
      bd_in_total = uncached + hit + write;
      bd_uncached = uncached;
      bd_read = hit;
      bd_write = write;
      bd_out_total = out_tokens;
      bd_non_reasoning = out_tokens - think;
      bd_reasoning = think;
    } else if (cred.provider == "gemini") {
      input = prompt;
      cached = cache_read = hit;
      output = out_tokens - think;  // candidates, thoughts excluded
      reasoning = think;
      total = prompt + output + think;
      bd_in_total = prompt;
      bd_uncached = prompt - hit;
      bd_read = hit;
      bd_out_total = output + think;
      bd_non_reasoning = output;
      bd_reasoning = think;
    } else {  // codex, openai: input includes cached, output includes reasoning
      input = prompt;
      cached = cache_read = hit;
      output = out_tokens;
      reasoning = think;
      total = prompt + out_tokens;
      bd_in_total = prompt;
      bd_uncached = prompt - hit;
      bd_read = hit;
      bd_out_total = out_tokens;
      bd_non_reasoning = out_tokens - think;
      bd_reasoning = think;
    }
  }

  const auto latency = static_cast<std::int64_t>(failure ? Uniform(40, 3000) : Uniform(300, 30000));
  const std::int64_t ttft =
      (failure || Chance(0.2))
          ? 0
          : static_cast<std::int64_t>(Uniform(80, std::min<std::int64_t>(latency, 4000)));
  const auto start = now - std::chrono::milliseconds(latency);

  // Timestamp: cached "YYYY-MM-DDTHH:MM:SS" per second plus the trimmed fraction.
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count();
  const std::int64_t sec = ns / 1000000000;
  if (sec != cached_second_) {
    cached_second_ = sec;
    cached_prefix_ = GoTimestamp(std::chrono::system_clock::time_point(std::chrono::seconds(sec)));
    cached_prefix_.pop_back();  // drop the "Z"
  }

  out->append("{\"timestamp\":\"");
  out->append(cached_prefix_);
  if (std::int64_t frac = ns % 1000000000; frac != 0) {
    char fbuf[16];
    std::snprintf(fbuf, sizeof(fbuf), ".%09lld", static_cast<long long>(frac));
    std::string_view f(fbuf);
    while (f.back() == '0') f.remove_suffix(1);
    out->append(f);
  }
  out->append("Z\",");
  AppendIntField("latency_ms", latency, out);
  const bool legacy = options_.legacy_fields;
  if (!legacy) AppendIntField("ttft_ms", ttft, out);
  AppendStrField("source", cred.source, out);
  AppendStrField("auth_index", cred.auth_index, out);
  if (!legacy) {
    if (!cred.token_sha256.empty()) AppendStrField("access_token_sha256", cred.token_sha256, out);
    AppendStrField("client_ip", kClientIps[client], out);
    AppendStrField("x_forwarded_for", kForwardedFor[client], out);
    AppendStrField("user_agent", ua, out);
  }
  out->append("\"tokens\":{");
  AppendIntField("input_tokens", input, out);
  AppendIntField("output_tokens", output, out);
  AppendIntField("reasoning_tokens", reasoning, out);
  AppendIntField("cached_tokens", cached, out);
  if (!legacy) {
    AppendIntField("cache_read_tokens", cache_read, out);
    out->append("\"cache_read_tokens_present\":true,");
    AppendIntField("cache_creation_tokens", cache_creation, out);
  }
  AppendKey("total_tokens", out);
  AppendInt(total, out);
  out->append("},\"failed\":");
  out->append(failure ? "true," : "false,");
  if (!legacy) {
    out->append(warmup ? "\"generate\":false," : "\"generate\":true,");
    out->append("\"fail\":{\"status_code\":");
    if (failure) {
      AppendInt(failure->status, out);
      out->append(",\"body\":");
      out->append(failure->escaped_body);
      out->append("},");
    } else {
      out->append("200,\"body\":\"\"},");
    }
    // Upstream response headers (sorted canonical keys); omitted for some attempts.
    if (Chance(0.9)) {
      out->append("\"response_headers\":{");
      if (failure && failure->status == 429) {
        out->append("\"Content-Type\":[\"application/json\"],\"Retry-After\":[\"");
        AppendInt(static_cast<std::int64_t>(Uniform(5, 120)), out);
        out->append("\"]");
      } else if (cred.provider == "codex") {
        out->append("\"Content-Type\":[\"text/event-stream\"],\"X-Codex-Plan-Type\":[\"");
        out->append(cred.plan_type);
        out->append("\"],\"X-Codex-Primary-Reset-After-Seconds\":[\"");
        AppendInt(static_cast<std::int64_t>(Uniform(60, 18000)), out);
        out->append("\"],\"X-Codex-Primary-Used-Percent\":[\"");
        AppendInt(static_cast<std::int64_t>(Uniform(0, 100)), out);
        out->append(
            "\"],\"X-Codex-Primary-Window-Minutes\":[\"300\"],"
            "\"X-Codex-Secondary-Used-Percent\":[\"");
        AppendInt(static_cast<std::int64_t>(Uniform(0, 100)), out);
        out->append(
            "\"],\"X-Codex-Secondary-Window-Minutes\":[\"10080\"],\"X-Oai-Request-Id\":[\"req_");
        AppendHex(rng_(), 12, out);
        out->append("\"]");
      } else if (cred.provider == "claude") {
        out->append(
            "\"Anthropic-Ratelimit-Unified-Status\":[\"allowed\"],"
            "\"Content-Type\":[\"text/event-stream; charset=utf-8\"],\"Request-Id\":[\"req_011C");
        AppendHex(rng_(), 16, out);
        out->append("\"]");
      } else if (cred.provider == "gemini") {
        out->append(
            "\"Content-Type\":[\"text/event-stream\"],\"Server\":[\"scaffolding on "
            "HTTPServer2\"],\"X-Cloudaicompanion-Trace-Id\":[\"");
        AppendHex(rng_(), 16, out);
        out->append("\"]");
      } else {
        out->append("\"Content-Type\":[\"application/json\"],\"Openai-Processing-Ms\":[\"");
        AppendInt(latency, out);
        out->append("\"],\"X-Ratelimit-Remaining-Requests\":[\"");
        AppendInt(static_cast<std::int64_t>(Uniform(0, 10000)), out);
        out->append("\"],\"X-Request-Id\":[\"req_");
        AppendHex(rng_(), 16, out);
        out->append("\"]");
      }
      out->append("},");
    }
    out->append(
        "\"accounting_version\":2,\"token_breakdown\":{\"schema_version\":2,"
        "\"quality\":\"complete\",");
    AppendIntField("total_tokens", bd_in_total + bd_out_total, out);
    out->append("\"input\":{");
    AppendIntField("total_tokens", bd_in_total, out);
    AppendIntField("uncached_tokens", bd_uncached, out);
    AppendIntField("cache_read_tokens", bd_read, out);
    AppendKey("cache_write_tokens", out);
    AppendInt(bd_write, out);
    out->append("},\"output\":{");
    AppendIntField("total_tokens", bd_out_total, out);
    AppendIntField("non_reasoning_tokens", bd_non_reasoning, out);
    AppendKey("reasoning_tokens", out);
    AppendInt(bd_reasoning, out);
    out->append("},\"unclassified_tokens\":0},");
  }
  AppendStrField("provider", cred.provider, out);
  if (!legacy) AppendStrField("executor_type", cred.executor, out);
  AppendStrField("model", model.model, out);
  AppendKey("alias", out);
  out->push_back('"');
  out->append(model.model);
  if (suffixed_alias) {
    out->push_back('(');
    out->append(effort);
    out->push_back(')');
  }
  out->append("\",");
  AppendStrField("endpoint", endpoint, out);
  AppendStrField("auth_type", cred.auth_type, out);
  AppendStrField("api_key", kClientKeys[client], out);
  if (legacy) {
    AppendKey("request_id", out);
    AppendGoJsonString(request_id, out);
    out->push_back('}');
    return meta;
  }
  AppendStrField("request_id", request_id, out);
  AppendStrField("reasoning_effort", effort, out);
  std::string_view tier = "default";
  std::string_view response_tier;
  if (cred.provider == "codex" || cred.provider == "openai") {
    tier = Chance(0.15) ? "priority" : "auto";
    if (!failure) response_tier = tier == "priority" ? "priority" : "default";
  } else if (Chance(0.1)) {
    tier = "flex";
  }
  AppendKey("service_tier", out);
  AppendGoJsonString(tier, out);
  if (!response_tier.empty()) {
    out->append(",\"response_service_tier\":");
    AppendGoJsonString(response_tier, out);
  }
  out->push_back('}');
  return meta;
}

std::string RecordGenerator::ErrorEvent(const RecordMeta& meta,
                                        std::chrono::system_clock::time_point now) const {
  const Credential& cred = BuiltinCredentials()[meta.credential];
  std::string out = "{\"timestamp\":";
  AppendGoJsonString(GoTimestamp(now), &out);
  out.push_back(',');
  AppendStrField("provider", cred.provider, &out);
  AppendStrField("model", meta.model, &out);
  if (!cred.file_name.empty()) AppendStrField("auth_id", cred.file_name, &out);
  AppendStrField("auth_index", cred.auth_index, &out);
  AppendIntField("status_code", meta.status_code, &out);
  AppendStrField("body", meta.fail_body.empty() ? "request failed" : meta.fail_body, &out);
  if (meta.status_code == 429 || meta.status_code >= 500) out.append("\"retryable\":true,");
  out.append("\"auth_status\":{\"status\":\"active\",\"disabled\":false,\"unavailable\":false}}");
  return out;
}

}  // namespace cpamp::sim
