// The simulator's network side: one listener, first-byte sniffing, RESP and HTTP sessions.
//
// Design: everything runs on ONE I/O thread, so the hub, the generator, the auth-failure
// table and the runtime config need no locks; coroutines interleave only at co_await. Each
// accepted socket is sniffed (10 s deadline for the first byte, §2.1): `* $ + - :` go to the
// RESP session, anything else to a small Beast HTTP/1.1 session whose peeked bytes are
// replayed into the parser. A RESP connection that SUBSCRIBEs splits into a reader (client
// commands) and a writer coroutine; all bytes for that socket, replies included, go through
// the Subscriber's pending string so there is exactly one writer. Generated records follow a
// 1 ms timer with a credit counter (capped at one second of rate, so a late tick still
// publishes what accumulated). By default they are unpaced, like CPA, which publishes as
// requests finish whatever its subscribers do: a consumer that falls 256 messages behind is
// dropped. Because CPA's writer goroutines run in parallel with the publishers and ours share
// one thread, the generator yields to the loop (asio::post) after each record once any
// subscriber holds kYieldAtBuffered messages, so a writer whose socket accepts data always
// runs before its buffer could fill. `--paced` restores the old, kinder mode: while usage
// subscribers exist a tick never fills a buffer beyond 224 of its 256 slots, so a slow
// consumer slows the generator instead of being dropped.
// Deadlines: 10 s sniff, 30 s per write, 5 min HTTP idle; RESP reads have none, like CPA
// (subscribers legitimately idle for long periods). Sizes: HTTP bodies up to 256 MiB, RESP
// frames per resp::Limits.
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "base/json.h"
#include "base/strings.h"
#include "clients/resp/resp.h"
#include "hub.h"
#include "records.h"
#include "sim.h"

namespace cpamp::sim {

Result<Emulation> ParseEmulation(std::string_view csv) {
  Emulation e;
  for (const std::string& name : SplitAndTrim(csv, ',')) {
    const std::string n = ToLower(name);
    if (n == "no-subscribe") {
      e.no_subscribe = true;
      e.no_support_refresh = true;
    } else if (n == "no-support-refresh") {
      e.no_support_refresh = true;
    } else if (n == "no-http-queue") {
      e.no_http_queue = true;
    } else if (n == "legacy-fields") {
      e.legacy_fields = true;
    } else if (n == "resp-disabled") {
      e.resp_disabled = true;
    } else if (n == "home-mode") {
      e.home_mode = true;
    } else {
      return Error(ErrorCode::kBadRequest, "unknown emulation '" + name + "'");
    }
  }
  return e;
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace bj = boost::json;
using tcp = asio::ip::tcp;
using asio::awaitable;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

constexpr auto kSniffTimeout = std::chrono::seconds(10);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kHttpIdleTimeout = std::chrono::minutes(5);
constexpr auto kGeneratorTick = std::chrono::milliseconds(1);
constexpr auto kBanDuration = std::chrono::minutes(30);
constexpr int kMaxAuthFailures = 5;
constexpr std::size_t kMaxHttpBody = std::size_t{256} << 20;
constexpr std::uint32_t kMaxHttpHeader = 64 * 1024;
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kPacingReserve = 32;    // paced: subscriber slots the generator leaves free
constexpr std::size_t kYieldAtBuffered = 32;  // unpaced: yield to the writers from this many
constexpr std::string_view kJsonType = "application/json; charset=utf-8";

struct Conn {
  explicit Conn(tcp::socket s) : stream(std::move(s)) {}
  beast::tcp_stream stream;
  std::string peer;
  std::uint64_t id = 0;
  std::function<void()> on_destroy;
  ~Conn() {
    if (on_destroy) on_destroy();
  }
  void Close() {
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
  }
};

struct Reply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

Reply JsonReply(int status, const bj::value& v) {
  return Reply{status, std::string(kJsonType), bj::serialize(v), {}};
}
Reply ErrorReply(int status, std::string_view message) {
  return JsonReply(status, bj::object{{"error", message}});
}
Reply OkReply() { return JsonReply(200, bj::object{{"status", "ok"}}); }
Reply GinNotFound() { return Reply{404, "text/plain", "404 page not found", {}}; }

bj::object Sorted(std::map<std::string, bj::value> m) {
  bj::object o;
  for (auto& [k, v] : m) o.emplace(k, std::move(v));
  return o;
}

bool IsLocal(std::string_view ip) { return ip == "127.0.0.1" || ip == "::1"; }

std::string PeerAddress(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "";
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6()).to_string();
  }
  return addr.to_string();
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) {
        out.push_back(s[i]);
        continue;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

using Query = std::vector<std::pair<std::string, std::string>>;

Query ParseQuery(std::string_view q) {
  Query out;
  std::size_t pos = 0;
  while (pos <= q.size() && !q.empty()) {
    std::size_t amp = q.find('&', pos);
    std::string_view part = q.substr(pos, amp == std::string_view::npos ? q.npos : amp - pos);
    if (!part.empty()) {
      std::size_t eq = part.find('=');
      out.emplace_back(PercentDecode(part.substr(0, eq)),
                       eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return out;
}

const std::string* QueryGet(const Query& q, std::string_view key) {
  for (const auto& [k, v] : q) {
    if (k == key) return &v;
  }
  return nullptr;
}

// Go's time.Duration.String() for a whole number of seconds.
std::string GoDuration(std::int64_t secs) {
  const std::int64_t h = secs / 3600, m = (secs % 3600) / 60, s = secs % 60;
  if (h > 0) return std::to_string(h) + "h" + std::to_string(m) + "m" + std::to_string(s) + "s";
  if (m > 0) return std::to_string(m) + "m" + std::to_string(s) + "s";
  return std::to_string(s) + "s";
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// Go encoding/json matches field names case-insensitively.
const bj::value* FindFold(const bj::object& o, std::string_view key) {
  for (const auto& kv : o) {
    if (EqualsIgnoreCase(kv.key(), key)) return &kv.value();
  }
  return nullptr;
}

void AppendBulk(std::string_view s, std::string* out) {
  out->push_back('$');
  out->append(std::to_string(s.size()));
  out->append("\r\n");
  out->append(s);
  out->append("\r\n");
}

awaitable<bool> WriteAll(tcp::socket& socket, std::string_view data) {
  asio::steady_timer deadline(socket.get_executor());
  deadline.expires_after(kWriteTimeout);
  deadline.async_wait([&socket](boost::system::error_code ec) {
    if (!ec) socket.close(ec);
  });
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(data), kTuple);
  deadline.cancel();
  co_return !ec;
}

enum class SettingType { kBool, kInt, kString };
struct Setting {
  std::string_view key;
  SettingType type;
};
constexpr Setting kSettings[] = {
    {"debug", SettingType::kBool},
    {"logging-to-file", SettingType::kBool},
    {"logs-max-total-size-mb", SettingType::kInt},
    {"error-logs-max-files", SettingType::kInt},
    {"usage-statistics-enabled", SettingType::kBool},
    {"proxy-url", SettingType::kString},
    {"request-log", SettingType::kBool},
    {"ws-auth", SettingType::kBool},
    {"request-retry", SettingType::kInt},
    {"max-retry-credentials", SettingType::kInt},
    {"max-retry-interval", SettingType::kInt},
    {"force-model-prefix", SettingType::kBool},
};

constexpr std::string_view kClientApiKeys[] = {"sk-team-alpha-7c1d", "sk-team-beta-93f0",
                                               "sk-ci-runner-0a55", "sk-demo-4411"};

struct Bucket {
  std::int64_t slot = -1;
  std::int64_t success = 0;
  std::int64_t failed = 0;
};

// One listed auth file (built-in credential or uploaded file).
struct AuthFile {
  std::string name;
  std::string provider;
  std::string email;
  std::string auth_index;
  std::string project_id;
  std::string plan_type;
  std::string account_id;
  std::size_t credential = static_cast<std::size_t>(-1);  // built-in index, or none
  std::int64_t size = 0;
  bool disabled = false;
  std::int64_t success = 0;
  std::int64_t failed = 0;
  std::array<Bucket, 20> buckets;
  std::map<std::string, bj::value> fields;  // set through PATCH /auth-files/fields
};

}  // namespace

struct Simulator::Impl {
  explicit Impl(SimOptions options)
      : opt(std::move(options)),
        gen(GeneratorOptions{opt.seed, opt.emulation.legacy_fields, 0.05}),
        hub(opt.retention_seconds, [this](std::string* out) { Produce(out); }),
        rate(opt.rate),
        count_limit(opt.count),
        paced(opt.paced),
        started(std::chrono::system_clock::now()) {
    BuildConfig();
    BuildAuthFiles();
    hub.AddPreload(opt.preload);
  }

  // ---- State (declared before the io_context so it outlives every coroutine frame) ----
  SimOptions opt;
  RecordGenerator gen;
  UsageHub hub;
  std::unordered_map<std::uint64_t, std::weak_ptr<Conn>> conns;
  std::uint64_t next_conn_id = 1;
  struct Attempt {
    int failures = 0;
    std::chrono::steady_clock::time_point blocked_until{};
  };
  std::unordered_map<std::string, Attempt> attempts;
  bj::object config;
  std::vector<AuthFile> auth_files;
  double rate;
  std::uint64_t count_limit;
  bool paced;
  std::uint64_t generated = 0;
  double credit = 0;
  std::string logs_body;
  std::chrono::system_clock::time_point started;
  std::atomic<std::uint16_t> bound_port{0};
  bool stopping = false;

  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer gen_timer{io};
  std::optional<asio::signal_set> signals;
  std::thread thread;
  std::mutex join_mu;

  // ---- Configuration and auth files -----------------------------------------------------

  void BuildConfig() {
    const auto& creds = BuiltinCredentials();
    bj::array api_keys;
    for (auto k : kClientApiKeys) api_keys.emplace_back(k);
    bj::array claude_keys, openai_compat;
    for (const auto& c : creds) {
      if (c.auth_type != "apikey") continue;
      if (c.provider == "claude") {
        claude_keys.push_back(bj::object{{"api-key", c.upstream_key}, {"base-url", c.base_url}});
      } else {
        openai_compat.push_back(
            bj::object{{"name", "openai"},
                       {"base-url", c.base_url},
                       {"api-key-entries", bj::array{bj::object{{"api-key", c.upstream_key}}}}});
      }
    }
    config = bj::object{
        {"proxy-url", ""},
        {"disable-image-generation", false},
        {"force-model-prefix", false},
        {"request-log", false},
        {"api-keys", api_keys},
        {"passthrough-headers", false},
        {"tls", bj::object{{"enable", false}, {"cert", ""}, {"key", ""}}},
        {"debug", false},
        {"pprof", bj::object{{"enable", false}, {"addr", "127.0.0.1:8316"}}},
        {"commercial-mode", false},
        {"logging-to-file", true},
        {"logs-max-total-size-mb", 0},
        {"error-logs-max-files", 10},
        {"usage-statistics-enabled", opt.usage_enabled},
        {"redis-usage-queue-retention-seconds", hub.retention_seconds()},
        {"disable-cooling", false},
        {"request-retry", 3},
        {"max-retry-credentials", 0},
        {"max-retry-interval", 30},
        {"quota-exceeded", bj::object{{"switch-project", true}, {"switch-preview-model", true}}},
        {"routing", bj::object{{"strategy", "round-robin"}}},
        {"ws-auth", false},
        {"gemini-api-key", bj::array{}},
        {"codex-api-key", bj::array{}},
        {"claude-api-key", claude_keys},
        {"openai-compatibility", openai_compat},
        {"vertex-api-key", bj::array{}},
    };
  }

  void BuildAuthFiles() {
    const auto& creds = BuiltinCredentials();
    for (std::size_t i = 0; i < creds.size(); ++i) {
      const auto& c = creds[i];
      if (!c.listed) continue;
      AuthFile f;
      f.name = c.file_name;
      f.provider = c.provider;
      f.email = c.email;
      f.auth_index = c.auth_index;
      f.project_id = c.project_id;
      f.plan_type = c.plan_type;
      f.account_id = c.account_id;
      f.credential = i;
      f.size = static_cast<std::int64_t>(1800 + 331 * i);
      auth_files.push_back(std::move(f));
    }
  }

  bool UsageEnabled() const {
    const bj::value* v = config.if_contains("usage-statistics-enabled");
    return v != nullptr && v->is_bool() && v->as_bool();
  }

  AuthFile* FindAuthFile(std::string_view name, std::string_view auth_index) {
    for (auto& f : auth_files) {
      if ((!name.empty() && f.name == name) || (!auth_index.empty() && f.auth_index == auth_index))
        return &f;
    }
    return nullptr;
  }

  // ---- Record production ------------------------------------------------------------------

  void Account(const RecordMeta& m, std::chrono::system_clock::time_point now) {
    const std::int64_t slot =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() / 600;
    for (auto& f : auth_files) {
      if (f.credential != m.credential) continue;
      (m.failed ? f.failed : f.success)++;
      Bucket& b = f.buckets[static_cast<std::size_t>(slot % 20)];
      if (b.slot != slot) b = Bucket{slot, 0, 0};
      (m.failed ? b.failed : b.success)++;
    }
  }

  void Produce(std::string* out) {
    const auto now = std::chrono::system_clock::now();
    out->reserve(2048);
    RecordMeta m = gen.Next(now, out);
    ++generated;
    Account(m, now);
    if (m.failed && hub.error_subscribers() > 0) hub.PublishError(gen.ErrorEvent(m, now));
  }

  void GenerateOne() {
    std::string rec;
    Produce(&rec);
    hub.PublishUsage(std::move(rec));
  }

  bool GeneratorIdle() const {
    return rate <= 0 || !UsageEnabled() || (count_limit > 0 && generated >= count_limit);
  }

  awaitable<void> GeneratorLoop() {
    auto last = std::chrono::steady_clock::now();
    for (;;) {
      gen_timer.expires_after(kGeneratorTick);
      co_await gen_timer.async_wait(kTuple);
      if (stopping) co_return;
      const auto now = std::chrono::steady_clock::now();
      const double dt = std::chrono::duration<double>(now - last).count();
      last = now;
      if (GeneratorIdle()) {
        credit = 0;
        continue;
      }
      credit = std::min(credit + rate * dt, std::max(rate, 1.0));
      auto due = static_cast<std::uint64_t>(credit);
      if (paced && hub.usage_subscribers() > 0) {
        const std::size_t buffered = hub.MaxUsageBufferedMessages();
        const std::size_t room = kSubscriberBufferMessages - kPacingReserve;
        due = std::min<std::uint64_t>(due, buffered >= room ? 0 : room - buffered);
      }
      if (count_limit > 0) due = std::min<std::uint64_t>(due, count_limit - generated);
      for (std::uint64_t i = 0; i < due; ++i) {
        GenerateOne();
        credit -= 1;
        if (paced || hub.MaxBufferedMessages() < kYieldAtBuffered) continue;
        // One turn of the loop per record: a writer whose socket takes the data drains its
        // buffer, one whose socket is full does not, and then overflows like in CPA.
        co_await asio::post(io, asio::use_awaitable);
        if (stopping) co_return;
        if (GeneratorIdle() || paced) break;
      }
    }
  }

  // ---- Authentication (§2.5) ----------------------------------------------------------------

  struct AuthResult {
    bool ok = false;
    int status = 200;
    std::string message;
    bool banned = false;
  };

  AuthResult Authenticate(const std::string& ip, std::string_view key) {
    const auto now = std::chrono::steady_clock::now();
    Attempt& a = attempts[ip];
    if (a.blocked_until > now) {
      const auto left = std::chrono::duration<double>(a.blocked_until - now).count();
      return {false, 403,
              "IP banned due to too many failed attempts. Try again in " +
                  GoDuration(static_cast<std::int64_t>(std::llround(left))),
              true};
    }
    if (!IsLocal(ip) && !opt.allow_remote) return {false, 403, "remote management disabled"};
    auto fail = [&] {
      if (++a.failures >= kMaxAuthFailures) {
        a.blocked_until = now + kBanDuration;
        a.failures = 0;
      }
    };
    if (key.empty()) {
      fail();
      return {false, 401, "missing management key"};
    }
    if (ConstantTimeEquals(key, opt.management_key)) {
      a.failures = 0;
      return {true, 200, ""};
    }
    fail();
    return {false, 401, "invalid management key"};
  }

  // ---- Connections --------------------------------------------------------------------------

  std::shared_ptr<Conn> Register(tcp::socket socket) {
    auto c = std::make_shared<Conn>(std::move(socket));
    c->peer = PeerAddress(c->stream.socket());
    c->id = next_conn_id++;
    conns[c->id] = c;
    c->on_destroy = [this, id = c->id] { conns.erase(id); };
    return c;
  }

  std::size_t DropConnections(std::uint64_t except) {
    hub.DropAllSubscribers();
    std::size_t n = 0;
    std::vector<std::shared_ptr<Conn>> live;
    for (auto& [id, weak] : conns) {
      if (id == except) continue;
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
    for (auto& c : live) {
      c->Close();
      ++n;
    }
    return n;
  }

  awaitable<void> Accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kTuple);
      if (ec) {
        if (stopping || ec == asio::error::operation_aborted) co_return;
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(io, Sniff(Register(std::move(socket))), asio::detached);
    }
  }

  awaitable<void> Sniff(std::shared_ptr<Conn> c) {
    std::string initial(kReadChunk, '\0');
    c->stream.expires_after(kSniffTimeout);
    auto [ec, n] = co_await c->stream.async_read_some(asio::buffer(initial), kTuple);
    if (ec || n == 0) {
      c->Close();
      co_return;
    }
    c->stream.expires_never();
    initial.resize(n);
    const char first = initial[0];
    if (first == '*' || first == '$' || first == '+' || first == '-' || first == ':') {
      co_await RespSession(c, std::move(initial));
    } else {
      co_await HttpSession(c, std::move(initial));
    }
  }

  // ---- RESP (§2) ----------------------------------------------------------------------------

  enum class Next { kContinue, kClose, kSubscribe };

  Next HandleCommand(Conn& c, const std::vector<std::string>& args, bool* authed, std::string* out,
                     std::shared_ptr<Subscriber>* sub) {
    if (args.empty()) {
      out->append(resp::EncodeError("ERR empty command"));
      return Next::kContinue;
    }
    const std::string name = ToLower(Trim(args[0]));
    if (name == "auth") {
      if (args.size() == 2 || args.size() == 3) {
        AuthResult r = Authenticate(c.peer, args.back());
        if (r.ok) {
          *authed = true;
          out->append(resp::EncodeSimple("OK"));
        } else {
          out->append(resp::EncodeError("ERR " + r.message));
        }
      } else {
        AuthResult r = Authenticate(c.peer, "");
        out->append(resp::EncodeError(
            r.banned ? "ERR " + r.message : "ERR wrong number of arguments for 'auth' command"));
      }
      return Next::kContinue;
    }
    if (!*authed) {
      AuthResult r = Authenticate(c.peer, "");
      out->append(
          resp::EncodeError(r.banned ? "ERR " + r.message : "NOAUTH Authentication required."));
      return Next::kContinue;
    }
    if (name == "lpop" || name == "rpop") {
      if (args.size() != 2 && args.size() != 3) {
        out->append(resp::EncodeError("ERR wrong number of arguments for '" + name + "' command"));
        return Next::kContinue;
      }
      long long count = 1;
      const bool with_count = args.size() == 3;
      if (with_count && (!ParseInt64(args[2], &count) || count <= 0)) {
        out->append(resp::EncodeError("ERR value is not an integer or out of range"));
        return Next::kContinue;
      }
      const std::string key = Trim(args[1]);
      if (!EqualsIgnoreCase(key, "usage")) {
        out->append(resp::EncodeError("ERR unsupported channel '" + key + "'"));
        return Next::kContinue;
      }
      std::vector<QueueItem> items = hub.PopOldest(static_cast<std::size_t>(count));
      if (!with_count) {
        if (items.empty()) {
          out->append(resp::EncodeNullBulk());
        } else {
          AppendBulk(items[0].payload, out);
        }
        return Next::kContinue;
      }
      std::size_t bytes = 16;
      for (const auto& it : items) bytes += it.payload.size() + 16;
      out->reserve(out->size() + bytes);
      out->push_back('*');
      out->append(std::to_string(items.size()));
      out->append("\r\n");
      for (const auto& it : items) AppendBulk(it.payload, out);
      return Next::kContinue;
    }
    if (name == "subscribe" && !opt.emulation.no_subscribe) {
      if (args.size() != 2) {
        out->append(resp::EncodeError("ERR wrong number of arguments for 'subscribe' command"));
        return Next::kContinue;
      }
      const std::string channel = Trim(args[1]);
      const std::string lower = ToLower(channel);
      if (lower != "usage" && lower != "errors") {
        out->append(resp::EncodeError("ERR unsupported channel '" + channel + "'"));
        return Next::kContinue;
      }
      auto s = std::make_shared<Subscriber>();
      s->channel = lower == "usage" ? Channel::kUsage : Channel::kErrors;
      s->channel_echo = channel;
      out->append("*3\r\n$9\r\nsubscribe\r\n");
      AppendBulk(channel, out);
      out->append(":1\r\n");
      *sub = std::move(s);
      return Next::kSubscribe;
    }
    out->append(resp::EncodeError("ERR unknown command '" + name + "'"));
    return Next::kContinue;
  }

  awaitable<void> RespSession(std::shared_ptr<Conn> c, std::string initial) {
    tcp::socket& socket = c->stream.socket();
    if (opt.emulation.home_mode || opt.emulation.resp_disabled) {
      co_await WriteAll(socket, opt.emulation.home_mode
                                    ? "-ERR redis usage output disabled in home mode\r\n"
                                    : "-ERR RESP AUTH disabled; use mTLS\r\n");
      c->Close();
      co_return;
    }
    resp::Parser parser;
    parser.Feed(initial);
    bool authed = false;
    std::string out;
    std::vector<char> buf(kReadChunk);
    for (;;) {
      for (;;) {
        resp::ParseResult r = parser.Next();
        if (r.need_more()) break;
        std::optional<std::vector<std::string>> args;
        if (r.has_value()) {
          auto a = resp::CommandArgs(r.value);
          if (a.ok()) args = std::move(*a);
        }
        if (!args) {
          out.append(resp::EncodeError("ERR protocol error"));
          co_await WriteAll(socket, out);
          c->Close();
          co_return;
        }
        std::shared_ptr<Subscriber> sub;
        Next next = HandleCommand(*c, *args, &authed, &out, &sub);
        if (next == Next::kSubscribe) {
          sub->pending = std::move(out);
          co_await Subscribed(c, std::move(parser), std::move(sub));
          co_return;
        }
      }
      if (!out.empty()) {
        if (!co_await WriteAll(socket, out)) break;
        out.clear();
        if (out.capacity() > (std::size_t{4} << 20)) out.shrink_to_fit();
      }
      if (stopping) break;
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), kTuple);
      if (ec) break;
      parser.Feed(std::string_view(buf.data(), n));
    }
    c->Close();
  }

  awaitable<void> SubscriberWriter(std::shared_ptr<Conn> c, std::shared_ptr<Subscriber> sub) {
    asio::steady_timer wake(io);
    sub->wake = [&wake] { wake.cancel(); };
    std::string batch;
    for (;;) {
      if (!sub->pending.empty()) {
        batch.clear();
        batch.swap(sub->pending);
        sub->inflight_messages = sub->pending_messages;
        sub->pending_messages = 0;
        const bool ok = co_await WriteAll(c->stream.socket(), batch);
        sub->inflight_messages = 0;
        if (!ok) break;
        continue;
      }
      if (sub->finished || stopping) break;
      wake.expires_at(asio::steady_timer::time_point::max());
      co_await wake.async_wait(kTuple);
    }
    sub->wake = nullptr;
    hub.Unsubscribe(sub);
    c->Close();
  }

  awaitable<void> Subscribed(std::shared_ptr<Conn> c, resp::Parser parser,
                             std::shared_ptr<Subscriber> sub) {
    hub.Subscribe(sub, sub->channel == Channel::kUsage && !opt.emulation.no_support_refresh);
    asio::co_spawn(io, SubscriberWriter(c, sub), asio::detached);
    std::vector<char> buf(kReadChunk);
    auto reply = [&](std::string_view bytes) {
      sub->pending.append(bytes);
      if (sub->wake) sub->wake();
    };
    for (;;) {
      for (;;) {
        resp::ParseResult r = parser.Next();
        if (r.need_more()) break;
        std::optional<std::vector<std::string>> args;
        if (r.has_value()) {
          auto a = resp::CommandArgs(r.value);
          if (a.ok()) args = std::move(*a);
        }
        if (!args) {
          reply(resp::EncodeError("ERR protocol error"));
          hub.Unsubscribe(sub);
          co_return;
        }
        if (args->empty()) {
          reply(resp::EncodeError("ERR empty command"));
          continue;
        }
        const std::string name = ToLower(Trim((*args)[0]));
        if (name == "ping") {
          std::string pong = "*2\r\n$4\r\npong\r\n";
          if (args->size() > 1) {
            AppendBulk((*args)[1], &pong);
          } else {
            pong.append("$-1\r\n");
          }
          reply(pong);
        } else if (name == "unsubscribe") {
          std::string bye = "*3\r\n$11\r\nunsubscribe\r\n";
          AppendBulk(sub->channel_echo, &bye);
          bye.append(":0\r\n");
          reply(bye);
          hub.Unsubscribe(sub);
          co_return;
        } else if (name == "quit") {
          reply(resp::EncodeSimple("OK"));
          hub.Unsubscribe(sub);
          co_return;
        } else {
          reply(resp::EncodeError("ERR unknown command '" + name + "'"));
        }
      }
      if (sub->finished) co_return;
      auto [ec, n] = co_await c->stream.socket().async_read_some(asio::buffer(buf), kTuple);
      if (ec) break;
      parser.Feed(std::string_view(buf.data(), n));
    }
    sub->pending.clear();  // EOF: unsubscribe and close, nothing more to say
    hub.Unsubscribe(sub);
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  awaitable<void> HttpSession(std::shared_ptr<Conn> c, std::string initial) {
    beast::flat_buffer buffer;
    auto mb = buffer.prepare(initial.size());
    asio::buffer_copy(mb, asio::buffer(initial));
    buffer.commit(initial.size());
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxHttpBody);
      parser.header_limit(kMaxHttpHeader);
      c->stream.expires_after(kHttpIdleTimeout);
      auto [ec, n] = co_await http::async_read(c->stream, buffer, parser, kTuple);
      if (ec) {
        if (ec != http::error::end_of_stream && ec != asio::error::eof &&
            ec.category() == http::make_error_code(http::error::bad_target).category()) {
          http::response<http::string_body> bad{http::status::bad_request, 11};
          bad.set(http::field::content_type, "text/plain");
          bad.body() = "Bad Request";
          bad.keep_alive(false);
          bad.prepare_payload();
          c->stream.expires_after(kWriteTimeout);
          co_await http::async_write(c->stream, bad, kTuple);
        }
        break;
      }
      http::request<http::string_body> req = parser.release();
      Reply r = Handle(req, *c);
      http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
      res.set("Access-Control-Allow-Origin", "*");
      res.set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
      res.set("Access-Control-Allow-Headers", "*");
      res.set("Access-Control-Expose-Headers",
              "X-CPA-TRACE-ID, X-CPA-VERSION, X-CPA-COMMIT, X-CPA-BUILD-DATE, "
              "X-CPA-SUPPORT-PLUGIN, X-CPA-HOME-VERSION, X-CPA-HOME-BUILD-DATE, "
              "X-SERVER-VERSION, X-SERVER-BUILD-DATE, Location, Retry-After, X-Request-Id, "
              "OpenAI-Request-Id");
      if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
      for (const auto& [k, v] : r.headers) res.set(k, v);
      res.body() = std::move(r.body);
      const bool keep = req.keep_alive() && !stopping;
      res.keep_alive(keep);
      res.prepare_payload();
      c->stream.expires_after(kWriteTimeout);
      auto [wec, wn] = co_await http::async_write(c->stream, res, kTuple);
      if (wec || !keep) break;
    }
    c->Close();
  }

  Reply Handle(const http::request<http::string_body>& req, Conn& c) {
    const std::string_view target = req.target();
    const std::size_t qpos = target.find('?');
    const std::string path(target.substr(0, qpos));
    const Query query = ParseQuery(qpos == target.npos ? "" : target.substr(qpos + 1));
    if (req.method() == http::verb::options) return Reply{204, "", "", {}};
    if (path == "/_sim" || path.starts_with("/_sim/")) return Control(req, path, query, c);
    if (path == "/v0/management" || path.starts_with("/v0/management/")) {
      return Management(req, path.substr(std::string_view("/v0/management").size()), query, c);
    }
    return Public(req, path);
  }

  Reply Public(const http::request<http::string_body>& req, const std::string& path) {
    const bool get = req.method() == http::verb::get;
    if (path == "/healthz" && req.method() == http::verb::head) return Reply{200, "", "", {}};
    if (path == "/healthz" && get) return JsonReply(200, bj::object{{"status", "ok"}});
    if (path == "/" && get) {
      return JsonReply(
          200, bj::object{{"endpoints", bj::array{"POST /v1/chat/completions",
                                                  "POST /v1/completions", "GET /v1/models"}},
                          {"message", "CLI Proxy API Server"}});
    }
    if ((path == "/v1/models" || path == "/models") && get) {
      bj::array data;
      for (const auto& m : gen.Models()) {
        std::string owner = m.starts_with("claude")   ? "anthropic"
                            : m.starts_with("gemini") ? "google"
                                                      : "openai";
        data.push_back(bj::object{
            {"created", 1754006400}, {"id", m}, {"object", "model"}, {"owned_by", owner}});
      }
      return JsonReply(200, bj::object{{"data", std::move(data)}, {"object", "list"}});
    }
    return GinNotFound();
  }

  // ---- Management API (§4) ------------------------------------------------------------------

  std::string ClientIp(const http::request<http::string_body>& req, const Conn& c) {
    std::string_view xff = req["X-Forwarded-For"];
    if (!xff.empty()) {
      std::string first = Trim(xff.substr(0, xff.find(',')));
      if (!first.empty()) return first;
    }
    std::string real = Trim(req["X-Real-IP"]);
    return real.empty() ? c.peer : real;
  }

  Reply Management(const http::request<http::string_body>& req, const std::string& sub,
                   const Query& query, Conn& c) {
    if (opt.emulation.home_mode) return Reply{404, "", "", {}};
    if (opt.emulation.no_http_queue && sub == "/usage-queue") return GinNotFound();
    Reply r = ManagementAuthed(req, sub, query, c);
    r.headers.emplace_back("X-CPA-VERSION", opt.version);
    r.headers.emplace_back("X-CPA-COMMIT", opt.commit);
    r.headers.emplace_back("X-CPA-BUILD-DATE", opt.build_date);
    r.headers.emplace_back("X-CPA-SUPPORT-PLUGIN", opt.support_plugin ? "1" : "0");
    return r;
  }

  Reply ManagementAuthed(const http::request<http::string_body>& req, const std::string& sub,
                         const Query& query, Conn& c) {
    std::string key;
    std::string_view authz = req[http::field::authorization];
    if (!authz.empty()) {
      const std::size_t sp = authz.find(' ');
      if (sp != authz.npos && EqualsIgnoreCase(authz.substr(0, sp), "bearer")) {
        key = std::string(authz.substr(sp + 1));
      } else {
        key = std::string(authz);
      }
    } else {
      key = std::string(req["X-Management-Key"]);
    }
    AuthResult auth = Authenticate(ClientIp(req, c), key);
    if (!auth.ok) return ErrorReply(auth.status, auth.message);

    const http::verb m = req.method();
    const bool get = m == http::verb::get;
    const bool put = m == http::verb::put || m == http::verb::patch;
    for (const Setting& s : kSettings) {
      if (sub != std::string("/") + std::string(s.key)) continue;
      if (get) return JsonReply(200, bj::object{{s.key, config[s.key]}});
      if (put) return PutSetting(s, req.body());
      if (m == http::verb::delete_ && s.key == "proxy-url") {
        config["proxy-url"] = "";
        return OkReply();
      }
      return Reply{404, "", "", {}};
    }
    if (sub == "/usage-queue" && get) return UsageQueue(query);
    if (sub == "/config" && get) return JsonReply(200, config);
    if (sub == "/latest-version" && get) {
      return JsonReply(200, bj::object{{"latest-version", "v" + opt.version}});
    }
    if (sub == "/api-keys" && get)
      return JsonReply(200, bj::object{{"api-keys", config["api-keys"]}});
    if (sub == "/auth-files") {
      if (get) return ListAuthFiles(query);
      if (m == http::verb::delete_) return DeleteAuthFiles(query, req.body());
      if (m == http::verb::post) return UploadAuthFile(query, req);
    }
    if (sub == "/auth-files/status" && m == http::verb::patch) return PatchStatus(req.body());
    if (sub == "/auth-files/fields" && m == http::verb::patch) return PatchFields(req.body());
    if (sub == "/auth-files/download" && get) return DownloadAuthFile(query);
    if (sub == "/auth-files/models" && get) return AuthFileModels(query);
    if (sub == "/api-call" && m == http::verb::post) return ApiCall(req.body());
    if (sub == "/logs" && get) return Logs();
    if (sub == "/logs" && m == http::verb::delete_) {
      return JsonReply(
          200,
          bj::object{{"message", "Logs cleared successfully"}, {"removed", 3}, {"success", true}});
    }
    return Reply{404, "", "", {}};
  }

  Reply PutSetting(const Setting& s, std::string_view body) {
    auto obj = json::ParseObject(body);
    if (!obj.ok()) return ErrorReply(400, "invalid body");
    const bj::value* v = FindFold(*obj, "value");
    if (v == nullptr) return ErrorReply(400, "invalid body");
    switch (s.type) {
      case SettingType::kBool:
        if (!v->is_bool()) return ErrorReply(400, "invalid body");
        config[s.key] = v->as_bool();
        break;
      case SettingType::kInt: {
        std::int64_t n = 0;
        if (v->is_int64()) {
          n = v->as_int64();
        } else if (v->is_uint64() && v->as_uint64() < (1ULL << 62)) {
          n = static_cast<std::int64_t>(v->as_uint64());
        } else {
          return ErrorReply(400, "invalid body");
        }
        if (n < 0 && s.key == "logs-max-total-size-mb") n = 0;
        if (n < 0 && s.key == "error-logs-max-files") n = 10;
        config[s.key] = n;
        break;
      }
      case SettingType::kString:
        if (!v->is_string()) return ErrorReply(400, "invalid body");
        config[s.key] = v->as_string();
        break;
    }
    return OkReply();
  }

  Reply UsageQueue(const Query& query) {
    long long count = 1;
    if (const std::string* c = QueryGet(query, "count")) {
      if (!ParseInt64(*c, &count) || count <= 0) {
        return ErrorReply(400, "count must be a positive integer");
      }
    }
    std::vector<QueueItem> items = hub.PopOldest(static_cast<std::size_t>(count));
    std::size_t bytes = 2;
    for (const auto& it : items) bytes += it.payload.size() + 1;
    std::string body;
    body.reserve(bytes);
    body.push_back('[');
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0) body.push_back(',');
      if (items[i].valid_json) {
        body.append(items[i].payload);
      } else {
        body.append(bj::serialize(bj::value(bj::string(items[i].payload))));
      }
    }
    body.push_back(']');
    return Reply{200, std::string(kJsonType), std::move(body), {}};
  }

  bj::value AuthFileJson(const AuthFile& f) {
    const std::string ts = GoTimestamp(started);
    std::map<std::string, bj::value> e;
    e["account"] = f.email;
    e["account_type"] = "oauth";
    e["auth_index"] = f.auth_index;
    e["created_at"] = GoTimestamp(started - std::chrono::hours(48));
    e["disabled"] = f.disabled;
    if (!f.email.empty()) e["email"] = f.email;
    e["failed"] = f.failed;
    e["id"] = f.name;
    if (f.provider == "codex") {
      e["id_token"] = bj::object{{"chatgpt_account_id", f.account_id}, {"plan_type", f.plan_type}};
    }
    e["label"] = f.email.empty() ? f.provider : f.email;
    e["last_refresh"] = ts;
    e["modtime"] = ts;
    e["name"] = f.name;
    e["path"] = "/root/.cli-proxy-api/" + f.name;
    if (!f.project_id.empty()) e["project_id"] = f.project_id;
    e["provider"] = f.provider;
    bj::array recent;
    const std::int64_t now_slot = std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count() /
                                  600;
    for (std::int64_t k = 19; k >= 0; --k) {
      const std::int64_t slot = now_slot - k;
      const Bucket& b = f.buckets[static_cast<std::size_t>(slot % 20)];
      const std::int64_t start_min = (slot * 10) % (24 * 60),
                         end_min = (start_min + 10) % (24 * 60);
      char label[32];
      std::snprintf(label, sizeof(label), "%02d:%02d-%02d:%02d", static_cast<int>(start_min / 60),
                    static_cast<int>(start_min % 60), static_cast<int>(end_min / 60),
                    static_cast<int>(end_min % 60));
      const bool valid = b.slot == slot;
      recent.push_back(bj::object{
          {"time", label}, {"success", valid ? b.success : 0}, {"failed", valid ? b.failed : 0}});
    }
    e["recent_requests"] = std::move(recent);
    e["runtime_only"] = false;
    e["size"] = f.size;
    e["source"] = "file";
    e["status"] = f.disabled ? "disabled" : "active";
    e["status_message"] = "";
    e["success"] = f.success;
    e["type"] = f.provider;
    e["unavailable"] = false;
    e["updated_at"] = ts;
    for (const auto& [k, v] : f.fields) e[k] = v;
    return Sorted(std::move(e));
  }

  Reply ListAuthFiles(const Query& query) {
    const std::string* name = QueryGet(query, "name");
    const std::string* index = QueryGet(query, "auth_index");
    std::vector<const AuthFile*> sorted;
    for (const auto& f : auth_files) {
      if (name && !name->empty() && f.name != *name) continue;
      if (index && !index->empty() && f.auth_index != *index) continue;
      sorted.push_back(&f);
    }
    std::sort(sorted.begin(), sorted.end(), [](const AuthFile* a, const AuthFile* b) {
      return ToLower(a->name) < ToLower(b->name);
    });
    bj::array files;
    for (const AuthFile* f : sorted) files.push_back(AuthFileJson(*f));
    return JsonReply(200, bj::object{{"files", std::move(files)}});
  }

  void RemoveAuthFile(const std::string& name) {
    for (auto it = auth_files.begin(); it != auth_files.end(); ++it) {
      if (it->name != name) continue;
      if (it->credential != static_cast<std::size_t>(-1)) gen.SetUsable(it->credential, false);
      auth_files.erase(it);
      return;
    }
  }

  Reply DeleteAuthFiles(const Query& query, std::string_view body) {
    std::vector<std::string> names;
    for (const auto& [k, v] : query) {
      if (k == "name") names.push_back(v);
    }
    if (const std::string* all = QueryGet(query, "all");
        all && (*all == "true" || *all == "1" || *all == "*")) {
      const auto n = static_cast<std::int64_t>(auth_files.size());
      while (!auth_files.empty()) RemoveAuthFile(auth_files.front().name);
      hub.NotifyRefresh();
      return JsonReply(200, bj::object{{"deleted", n}, {"status", "ok"}});
    }
    if (names.empty() && !TrimView(body).empty()) {
      auto v = json::Parse(body);
      if (v.ok() && v->is_array()) {
        for (const auto& x : v->as_array()) {
          if (x.is_string()) names.emplace_back(x.as_string());
        }
      } else if (v.ok() && v->is_object()) {
        if (auto n = json::GetString(v->as_object(), "name")) names.push_back(*n);
        if (const auto* arr = json::GetArray(v->as_object(), "names")) {
          for (const auto& x : *arr) {
            if (x.is_string()) names.emplace_back(x.as_string());
          }
        }
      }
    }
    if (names.empty()) return ErrorReply(400, "invalid name");
    bj::array deleted, failed;
    for (const auto& n : names) {
      if (n.empty() || n.find('/') != n.npos || n.find('\\') != n.npos) {
        failed.push_back(bj::object{{"error", "invalid name"}, {"name", n}});
      } else if (FindAuthFile(n, "") == nullptr) {
        failed.push_back(bj::object{{"error", "auth file not found"}, {"name", n}});
      } else {
        RemoveAuthFile(n);
        deleted.emplace_back(n);
      }
    }
    if (!deleted.empty()) hub.NotifyRefresh();
    if (names.size() == 1) {
      if (!failed.empty()) {
        const auto& err = failed[0].as_object().at("error").as_string();
        return ErrorReply(err == "invalid name" ? 400 : 404, err);
      }
      return OkReply();
    }
    if (failed.empty()) {
      return JsonReply(
          200,
          bj::object{{"deleted", deleted.size()}, {"files", std::move(deleted)}, {"status", "ok"}});
    }
    return JsonReply(207, bj::object{{"deleted", deleted.size()},
                                     {"failed", std::move(failed)},
                                     {"files", std::move(deleted)},
                                     {"status", "partial"}});
  }

  Reply UploadAuthFile(const Query& query, const http::request<http::string_body>& req) {
    const std::string* name = QueryGet(query, "name");
    if (name == nullptr || name->empty()) return ErrorReply(400, "no files uploaded");
    if (!name->ends_with(".json")) return ErrorReply(400, "file must be .json");
    if (name->find('/') != name->npos || name->find('\\') != name->npos) {
      return ErrorReply(400, "invalid name");
    }
    auto obj = json::ParseObject(req.body());
    if (!obj.ok()) return ErrorReply(400, "invalid auth file");
    RemoveAuthFile(*name);
    AuthFile f;
    f.name = *name;
    f.provider = json::GetString(*obj, "type").value_or("unknown");
    f.email = json::GetString(*obj, "email").value_or("");
    f.project_id = json::GetString(*obj, "project_id").value_or("");
    f.auth_index = StableAuthIndex(f.provider + ":/root/.cli-proxy-api/" + f.name);
    f.size = static_cast<std::int64_t>(req.body().size());
    auth_files.push_back(std::move(f));
    hub.NotifyRefresh();
    return OkReply();
  }

  Reply PatchStatus(std::string_view body) {
    auto obj = json::ParseObject(body);
    if (!obj.ok()) return ErrorReply(400, "invalid body");
    const std::string name = json::GetString(*obj, "name").value_or("");
    const std::string index = json::GetString(*obj, "auth_index").value_or("");
    if (Trim(name).empty()) return ErrorReply(400, "name is required");
    const auto disabled = json::GetBool(*obj, "disabled");
    if (!disabled) return ErrorReply(400, "disabled is required");
    AuthFile* f = FindAuthFile(name, index);
    if (f == nullptr) return ErrorReply(404, "auth file not found");
    f->disabled = *disabled;
    if (f->credential != static_cast<std::size_t>(-1)) gen.SetUsable(f->credential, !*disabled);
    hub.NotifyRefresh();
    return JsonReply(200, bj::object{{"disabled", *disabled}, {"status", "ok"}});
  }

  Reply PatchFields(std::string_view body) {
    auto obj = json::ParseObject(body);
    if (!obj.ok()) return ErrorReply(400, "invalid body");
    const std::string name = json::GetString(*obj, "name").value_or("");
    if (Trim(name).empty()) return ErrorReply(400, "name is required");
    if (obj->size() < 2) return ErrorReply(400, "no fields to update");
    AuthFile* f = FindAuthFile(name, "");
    if (f == nullptr) return ErrorReply(404, "auth file not found");
    for (const auto& kv : *obj) {
      const std::string k(kv.key());
      if (k == "name") continue;
      if (k != "priority" && k != "note" && k != "weight" && k != "websockets" &&
          k != "request_retry" && k != "headers") {
        return ErrorReply(400, "invalid field " + k);
      }
      f->fields[k] = kv.value();
    }
    hub.NotifyRefresh();
    return OkReply();
  }

  Reply DownloadAuthFile(const Query& query) {
    const std::string* name = QueryGet(query, "name");
    if (name == nullptr || name->empty() || name->find('/') != name->npos ||
        name->find('\\') != name->npos) {
      return ErrorReply(400, "invalid name");
    }
    if (!name->ends_with(".json")) return ErrorReply(400, "name must end with .json");
    AuthFile* f = FindAuthFile(*name, "");
    if (f == nullptr) return ErrorReply(404, "file not found");
    bj::object file{{"type", f->provider},
                    {"email", f->email},
                    {"access_token", "sim-access-token-" + f->auth_index},
                    {"refresh_token", "sim-refresh-token-" + f->auth_index},
                    {"expired", GoTimestamp(started + std::chrono::hours(1))}};
    if (!f->account_id.empty()) file["account_id"] = f->account_id;
    if (!f->project_id.empty()) file["project_id"] = f->project_id;
    Reply r{200, "application/json", bj::serialize(file), {}};
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + *name + "\"");
    return r;
  }

  Reply AuthFileModels(const Query& query) {
    const std::string* name = QueryGet(query, "name");
    AuthFile* f = name ? FindAuthFile(*name, "") : nullptr;
    bj::array models;
    if (f != nullptr) {
      for (const auto& m : gen.Models()) {
        const bool match = (f->provider == "claude" && m.starts_with("claude")) ||
                           (f->provider == "gemini" && m.starts_with("gemini")) ||
                           (f->provider == "codex" && m.starts_with("gpt-5"));
        if (match) models.push_back(bj::object{{"id", m}, {"owned_by", f->provider}});
      }
    }
    return JsonReply(200, bj::object{{"models", std::move(models)}});
  }

  Reply ApiCall(std::string_view body) {
    auto obj = json::ParseObject(body);
    if (!obj.ok()) return ErrorReply(400, "invalid body");
    auto str = [&](std::string_view k) -> std::string {
      const bj::value* v = FindFold(*obj, k);
      return v && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    std::string method = ToLower(Trim(str("method")));
    std::transform(method.begin(), method.end(), method.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
    const std::string url = Trim(str("url"));
    if (method.empty()) return ErrorReply(400, "missing method");
    if (url.empty()) return ErrorReply(400, "missing url");
    if (!url.starts_with("http://") && !url.starts_with("https://")) {
      return ErrorReply(400, "invalid url");
    }
    std::string auth_index = str("auth_index");
    if (auth_index.empty()) auth_index = str("authIndex");
    std::string token;
    bool known = false;
    for (const auto& c : BuiltinCredentials()) {
      if (!auth_index.empty() && c.auth_index == auth_index) {
        known = true;
        token = c.auth_type == "oauth" ? c.access_token : c.upstream_key;
      }
    }
    bj::object sent_headers;
    if (const bj::value* h = FindFold(*obj, "header"); h && h->is_object()) {
      for (const auto& kv : h->as_object()) {
        std::string v = kv.value().is_string() ? std::string(kv.value().as_string()) : "";
        if (known) {
          for (std::size_t p; (p = v.find("$TOKEN$")) != v.npos;) v.replace(p, 7, token);
        }
        sent_headers[kv.key()] = v;
      }
    }
    std::int64_t status = 200;
    if (std::size_t p = url.find("sim_status="); p != url.npos) {
      long long s = 0;
      if (ParseInt64(url.substr(p + 11, 3), &s)) status = s;
    }
    std::string upstream_body;
    if (url.find("/backend-api/wham/usage") != url.npos) {
      upstream_body = bj::serialize(bj::object{
          {"plan_type", "plus"},
          {"rate_limit",
           bj::object{{"allowed", true},
                      {"limit_reached", false},
                      {"primary_window", bj::object{{"used_percent", 12},
                                                    {"limit_window_seconds", 18000},
                                                    {"reset_after_seconds", 14400}}},
                      {"secondary_window", bj::object{{"used_percent", 31},
                                                      {"limit_window_seconds", 604800},
                                                      {"reset_after_seconds", 302400}}}}}});
    } else {
      upstream_body = bj::serialize(bj::object{{"method", method},
                                               {"url", url},
                                               {"header", std::move(sent_headers)},
                                               {"data", str("data")}});
    }
    bj::object header{{"Content-Type", bj::array{"application/json"}},
                      {"Date", bj::array{"Sat, 01 Aug 2026 01:41:07 GMT"}}};
    return JsonReply(
        200, bj::object{
                 {"body", upstream_body}, {"header", std::move(header)}, {"status_code", status}});
  }

  Reply Logs() {
    const bj::value* enabled = config.if_contains("logging-to-file");
    if (enabled == nullptr || !enabled->is_bool() || !enabled->as_bool()) {
      return ErrorReply(400, "logging to file disabled");
    }
    if (logs_body.empty()) {
      std::string lines;
      lines.reserve(opt.logs_bytes + 4096);
      std::int64_t n = 0;
      const std::int64_t base =
          std::chrono::duration_cast<std::chrono::seconds>(started.time_since_epoch()).count();
      std::string line;
      while (lines.size() < opt.logs_bytes) {
        line.clear();
        const std::time_t t = static_cast<std::time_t>(base - 86400 + n);
        std::tm tm{};
        gmtime_r(&t, &tm);
        char ts[32];
        std::strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        char buf[256];
        std::snprintf(buf, sizeof(buf),
                      "[%s] [info ] [gin_logger.go:58] 200 | %6.3fs | 172.18.0.%d | POST "
                      "\"/v1/responses\" request_id=%08llx",
                      ts, static_cast<double>(n % 9000) / 1000.0, static_cast<int>(n % 250 + 1),
                      static_cast<unsigned long long>(n * 2654435761ULL & 0xffffffffULL));
        if (n > 0) lines.push_back(',');
        lines.append(bj::serialize(bj::value(bj::string(buf))));
        ++n;
      }
      logs_body = "{\"latest-timestamp\":" + std::to_string(base) +
                  ",\"line-count\":" + std::to_string(n) + ",\"lines\":[" + lines +
                  "],\"next-cursor\":\"" + std::to_string(n) + "\"}";
    }
    return Reply{200, std::string(kJsonType), logs_body, {}};
  }

  // ---- Control API (/_sim/*) ------------------------------------------------------------------

  bj::object Stats() {
    const HubStats& s = hub.stats();
    return bj::object{{"produced", s.produced},
                      {"generated", generated},
                      {"queued", s.queued},
                      {"delivered", s.delivered},
                      {"popped", s.popped},
                      {"expired", s.expired},
                      {"overflow_lost", s.overflow_lost},
                      {"subscribers_dropped", s.subscribers_dropped},
                      {"refresh_sent", s.refresh_sent},
                      {"error_events", s.error_events},
                      {"usage_subscribers", hub.usage_subscribers()},
                      {"error_subscribers", hub.error_subscribers()},
                      {"queue_length", hub.QueueLength()},
                      {"connections", conns.size()},
                      {"rate", rate == std::floor(rate) && rate < 9e15
                                   ? bj::value(static_cast<std::int64_t>(rate))
                                   : bj::value(rate)},
                      {"count_limit", count_limit},
                      {"paced", paced},
                      {"usage_enabled", UsageEnabled()},
                      {"retention_seconds", hub.retention_seconds()}};
  }

  Reply Control(const http::request<http::string_body>& req, const std::string& path,
                const Query& query, Conn& c) {
    if (!IsLocal(c.peer)) return ErrorReply(403, "control endpoint is loopback only");
    auto num = [&](std::string_view key, double* out) -> bool {
      const std::string* v = QueryGet(query, key);
      if (v == nullptr) return false;
      char* end = nullptr;
      const double d = std::strtod(v->c_str(), &end);
      if (end == v->c_str() || *end != '\0' || !std::isfinite(d) || d < 0) return false;
      *out = d;
      return true;
    };
    if (path == "/_sim/stats") return JsonReply(200, Stats());
    if (path == "/_sim/publish") {
      const std::string* ch = QueryGet(query, "channel");
      const bool errors = ch != nullptr && EqualsIgnoreCase(*ch, "errors");
      std::int64_t n = 0;
      std::string_view body = req.body();
      while (!body.empty()) {
        std::size_t nl = body.find('\n');
        std::string_view line = body.substr(0, nl);
        body = nl == body.npos ? std::string_view() : body.substr(nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;
        if (errors) {
          hub.PublishError(line);
        } else {
          boost::system::error_code ec;
          bj::parse(line, ec);
          hub.PublishUsage(std::string(line), !ec);
        }
        ++n;
      }
      return JsonReply(200, bj::object{{"published", n}});
    }
    if (path == "/_sim/refresh") {
      return JsonReply(200, bj::object{{"subscribers", hub.NotifyRefresh()}});
    }
    if (path == "/_sim/drop") {
      const std::size_t n = DropConnections(c.id);
      const std::string* clear = QueryGet(query, "clear");
      if (clear && (*clear == "1" || *clear == "true")) hub.ClearQueue();
      return JsonReply(200, bj::object{{"dropped", n}});
    }
    if (path == "/_sim/drop-subscribers") {
      if (QueryGet(query, "after") != nullptr) {
        double after = 0;
        if (!num("after", &after)) return ErrorReply(400, "invalid after");
        const auto n = static_cast<std::uint64_t>(after);
        hub.DropUsageSubscribersAfter(n);
        if (n >= 1) return JsonReply(200, bj::object{{"after", n}});
      }
      return JsonReply(200, bj::object{{"dropped", hub.DropUsageSubscribers()}});
    }
    if (path == "/_sim/generate") {
      double n = 1;
      if (QueryGet(query, "count") && !num("count", &n)) return ErrorReply(400, "invalid count");
      for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(n); ++i) GenerateOne();
      return JsonReply(200, bj::object{{"generated", static_cast<std::uint64_t>(n)}});
    }
    if (path == "/_sim/unban") {
      attempts.clear();
      return OkReply();
    }
    if (path == "/_sim/rate" || path == "/_sim/set") {
      double v = 0;
      if (path == "/_sim/rate") {
        if (!num("value", &v)) return ErrorReply(400, "invalid value");
        rate = v;
      }
      if (num("rate", &v)) rate = v;
      if (num("count", &v)) count_limit = static_cast<std::uint64_t>(v);
      if (QueryGet(query, "retention") && num("retention", &v)) {
        config["redis-usage-queue-retention-seconds"] = hub.SetRetention(static_cast<int>(v));
      }
      if (const std::string* u = QueryGet(query, "usage_enabled")) {
        config["usage-statistics-enabled"] = (*u == "1" || *u == "true");
      }
      if (const std::string* p = QueryGet(query, "paced")) paced = (*p == "1" || *p == "true");
      return JsonReply(200, Stats());
    }
    return Reply{404, "", "", {}};
  }

  // ---- Lifecycle ----------------------------------------------------------------------------

  void StopOnIo() {
    if (stopping) return;
    stopping = true;
    boost::system::error_code ec;
    acceptor.close(ec);
    gen_timer.cancel();
    if (signals) signals->cancel(ec);
    DropConnections(0);
    io.stop();
  }
};

Simulator::Simulator(SimOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Simulator::~Simulator() { Stop(); }

Status Simulator::Start() {
  Impl& d = *impl_;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(d.opt.host, ec);
  if (ec) return Error(ErrorCode::kBadRequest, "invalid listen host '" + d.opt.host + "'");
  tcp::endpoint ep(addr, d.opt.port);
  d.acceptor.open(ep.protocol(), ec);
  if (!ec) d.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) d.acceptor.bind(ep, ec);
  if (!ec) d.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error(ErrorCode::kUnavailable, "listen on " + d.opt.host + ":" +
                                              std::to_string(d.opt.port) + ": " + ec.message());
  }
  d.bound_port = d.acceptor.local_endpoint().port();
  if (d.opt.handle_signals) {
    d.signals.emplace(d.io, SIGINT, SIGTERM);
    d.signals->async_wait([&d](boost::system::error_code sec, int) {
      if (!sec) d.StopOnIo();
    });
  }
  asio::co_spawn(d.io, d.Accept(), asio::detached);
  asio::co_spawn(d.io, d.GeneratorLoop(), asio::detached);
  d.thread = std::thread([&d] { d.io.run(); });
  return Status::Ok();
}

std::uint16_t Simulator::port() const { return impl_->bound_port; }

void Simulator::Wait() {
  std::lock_guard<std::mutex> lock(impl_->join_mu);
  if (impl_->thread.joinable()) impl_->thread.join();
}

void Simulator::Stop() {
  Impl& d = *impl_;
  asio::post(d.io, [&d] { d.StopOnIo(); });
  std::lock_guard<std::mutex> lock(d.join_mu);
  if (d.thread.joinable()) d.thread.join();
}

}  // namespace cpamp::sim
