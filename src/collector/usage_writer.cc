// UsageWriter design notes.
//
// - Normalisation and enrichment run before the write lock is taken: the lock (and the SQLite
//   write transaction) covers only binding and stepping prepared statements, so other writers
//   wait as little as possible.
// - The INSERT names every usage_events column except id and uses ON CONFLICT(event_hash) DO
//   NOTHING; Connection::Changes() after each step tells inserted (1) from skipped (0). This
//   also dedups two copies of one record inside the same batch.
// - Dead letters go into the same transaction as the events (stricter than upstream, which
//   wrote them one by one): a batch is either fully stored or fully retried by the caller.
// - Statements are prepared once on the writer connection and reused; they are finalised
//   inside Database::Write() so no other thread can be using that connection at the time.
// - The auth-file list is fetched outside the transaction (network!) and only when an event of
//   the batch needs it; fetch attempts are spaced by the TTL so a CPA without the endpoint or
//   a CPA that is down costs one request per TTL, not one per batch. Failures are logged and
//   the batch is written without enrichment.
// - raw_json follows Options::raw_json (default: failed events only). It was ~60 % of a row;
//   rows above a quarter page also pack one per 4 KiB page, so dropping it is the biggest
//   single saving in bytes on disk and in WAL traffic.
// - The writer connection gets a larger page cache once (PRAGMA cache_size) so the random-order
//   unique index on event_hash stays in memory as the table grows.
#include "collector/usage_writer.h"

#include <boost/json.hpp>

#include <algorithm>
#include <string_view>

#include "base/log.h"
#include "base/strings.h"

namespace cpamp::collector {
namespace {

namespace bj = boost::json;

// usage_events columns in UsageEvent member order (id excluded).
constexpr std::string_view kEventColumns[] = {
    "request_id",
    "event_hash",
    "timestamp_ms",
    "timestamp",
    "provider",
    "executor_type",
    "model",
    "endpoint",
    "method",
    "path",
    "client_ip",
    "x_forwarded_for",
    "user_agent",
    "auth_type",
    "auth_index",
    "source",
    "source_hash",
    "api_key_hash",
    "account_snapshot",
    "auth_label_snapshot",
    "auth_file_snapshot",
    "auth_provider_snapshot",
    "auth_project_id_snapshot",
    "auth_snapshot_at_ms",
    "requested_model",
    "resolved_model",
    "reasoning_effort",
    "service_tier",
    "request_service_tier",
    "response_service_tier",
    "cache_input_mode",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "cache_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "normalized_uncached_input_tokens",
    "normalized_total_input_tokens",
    "normalized_cache_read_tokens",
    "normalized_cache_creation_tokens",
    "total_tokens",
    "latency_ms",
    "ttft_ms",
    "failed",
    "fail_status_code",
    "fail_summary",
    "response_metadata_json",
    "header_quota_recover_at_ms",
    "header_quota_used_percent",
    "header_quota_plan_type",
    "header_error_kind",
    "header_error_code",
    "header_trace_id",
    "fail_body",
    "raw_json",
    "created_at_ms",
};
constexpr size_t kEventColumnCount = std::size(kEventColumns);

std::string InsertEventSql() {
  std::string cols;
  std::string params;
  for (size_t i = 0; i < kEventColumnCount; ++i) {
    if (i > 0) {
      cols += ", ";
      params += ", ";
    }
    cols += kEventColumns[i];
    params += ":";
    params += kEventColumns[i];
  }
  return "INSERT INTO usage_events (" + cols + ") VALUES (" + params +
         ") ON CONFLICT(event_hash) DO NOTHING";
}

constexpr std::string_view kInsertDeadLetterSql =
    "INSERT INTO dead_letter_events (payload, error, created_at_ms) "
    "VALUES (:payload, :error, :created_at_ms)";

// Binds values in column order, remembering the first failure.
class Binder {
 public:
  Binder(db::Statement& stmt, const int* indexes) : stmt_(stmt), indexes_(indexes) {}
  template <typename T>
  Binder& operator<<(const T& value) {
    if (status_.ok()) status_ = stmt_.Bind(indexes_[next_], value);
    ++next_;
    return *this;
  }
  const Status& status() const { return status_; }
  size_t count() const { return next_; }

 private:
  db::Statement& stmt_;
  const int* indexes_;
  size_t next_ = 0;
  Status status_;
};

Status BindEvent(db::Statement& stmt, const int* indexes, const usage::UsageEvent& e) {
  Binder b(stmt, indexes);
  b << e.request_id << e.event_hash << e.timestamp_ms << e.timestamp << e.provider
    << e.executor_type << e.model << e.endpoint << e.method << e.path << e.client_ip
    << e.x_forwarded_for << e.user_agent << e.auth_type << e.auth_index << e.source << e.source_hash
    << e.api_key_hash << e.account_snapshot << e.auth_label_snapshot << e.auth_file_snapshot
    << e.auth_provider_snapshot << e.auth_project_id_snapshot << e.auth_snapshot_at_ms
    << e.requested_model << e.resolved_model << e.reasoning_effort << e.service_tier
    << e.request_service_tier << e.response_service_tier << e.cache_input_mode << e.input_tokens
    << e.output_tokens << e.reasoning_tokens << e.cached_tokens << e.cache_tokens
    << e.cache_read_tokens << e.cache_creation_tokens << e.normalized_uncached_input_tokens
    << e.normalized_total_input_tokens << e.normalized_cache_read_tokens
    << e.normalized_cache_creation_tokens << e.total_tokens << e.latency_ms << e.ttft_ms << e.failed
    << e.fail_status_code << e.fail_summary << e.response_metadata_json
    << e.header_quota_recover_at_ms << e.header_quota_used_percent << e.header_quota_plan_type
    << e.header_error_kind << e.header_error_code << e.header_trace_id << e.fail_body << e.raw_json
    << e.created_at_ms;
  CHECK(b.count() == kEventColumnCount);
  return b.status();
}

bool NeedsSnapshot(const usage::UsageEvent& e) {
  return e.auth_index.has_value() &&
         (!e.account_snapshot.has_value() || !e.auth_project_id_snapshot.has_value());
}

// {"files":[{"auth_index":"...", ...}, ...]} -> auth_index -> snapshot.
Result<std::unordered_map<std::string, usage::AuthSnapshot>> ParseAuthFiles(std::string_view body) {
  boost::system::error_code ec;
  bj::value v = bj::parse(body, ec);
  if (ec)
    return Error(ErrorCode::kUpstreamUnavailable, "auth-files: invalid JSON: " + ec.message());
  const bj::object* root = v.if_object();
  const bj::value* files = root != nullptr ? root->if_contains("files") : nullptr;
  if (files == nullptr || !files->is_array()) {
    return Error(ErrorCode::kUpstreamUnavailable, "auth-files: response has no files array");
  }
  std::unordered_map<std::string, usage::AuthSnapshot> out;
  for (const bj::value& item : files->get_array()) {
    const bj::object* obj = item.if_object();
    if (obj == nullptr) continue;
    const bj::value* idx = obj->if_contains("auth_index");
    if (idx == nullptr || !idx->is_string() || idx->get_string().empty()) continue;
    std::optional<usage::AuthSnapshot> snap =
        usage::AuthSnapshotFromAuthFileJson(bj::serialize(*obj));
    if (snap) out[std::string(idx->get_string())] = std::move(*snap);
  }
  return out;
}

}  // namespace

std::optional<RawJsonPolicy> ParseRawJsonPolicy(std::string_view text) {
  const std::string t = ToLower(Trim(text));
  if (t == "all") return RawJsonPolicy::kAll;
  if (t == "failed") return RawJsonPolicy::kFailed;
  if (t == "none") return RawJsonPolicy::kNone;
  return std::nullopt;
}

struct UsageWriter::Statements {
  db::Connection* conn = nullptr;
  db::Statement insert_event;
  db::Statement insert_dead_letter;
  int event_indexes[kEventColumnCount] = {};
  int dl_payload = 0, dl_error = 0, dl_created = 0;
};

UsageWriter::UsageWriter(db::Database& db, const Clock& clock, AuthFilesFetcher fetch_auth_files,
                         Options options)
    : db_(db), clock_(clock), fetch_auth_files_(std::move(fetch_auth_files)), options_(options) {}

UsageWriter::~UsageWriter() {
  if (statements_) {
    db_.Write([&](db::Connection&) { statements_.reset(); });
  }
}

Status UsageWriter::WriteDeadLetter(std::string_view payload, std::string_view error) {
  const int64_t now_ms = clock_.NowMs();
  Status written = db_.WriteTransaction([&](db::Connection& conn) -> Status {
    CPAMP_RETURN_IF_ERROR(PrepareStatements(conn));
    db::Statement& dl = statements_->insert_dead_letter;
    CPAMP_RETURN_IF_ERROR(dl.Reset());
    CPAMP_RETURN_IF_ERROR(dl.Bind(statements_->dl_payload, payload));
    CPAMP_RETURN_IF_ERROR(dl.Bind(statements_->dl_error, error));
    CPAMP_RETURN_IF_ERROR(dl.Bind(statements_->dl_created, now_ms));
    CPAMP_RETURN_IF_ERROR(dl.Run());
    return dl.Reset();
  });
  if (!written.ok()) {
    db_.Write([&](db::Connection&) { statements_.reset(); });
    return written.Prefixed("write dead letter");
  }
  ++transactions_;
  return Status::Ok();
}

void UsageWriter::InvalidateAuthSnapshots() {
  snapshots_.clear();
  snapshots_valid_ = false;
  fetch_allowed_now_ = true;
}

Status UsageWriter::PrepareStatements(db::Connection& conn) {
  if (statements_ && statements_->conn == &conn) return Status::Ok();
  statements_.reset();
  if (options_.writer_cache_kib > 0) {
    CPAMP_RETURN_IF_ERROR(
        conn.Exec("PRAGMA cache_size = -" + std::to_string(options_.writer_cache_kib)));
  }
  CPAMP_ASSIGN_OR_RETURN(db::Statement ins, conn.Prepare(InsertEventSql()));
  CPAMP_ASSIGN_OR_RETURN(db::Statement dl, conn.Prepare(kInsertDeadLetterSql));
  auto s = std::unique_ptr<Statements>(
      new Statements{&conn, std::move(ins), std::move(dl), {}, 0, 0, 0});
  for (size_t i = 0; i < kEventColumnCount; ++i) {
    CPAMP_ASSIGN_OR_RETURN(s->event_indexes[i],
                           s->insert_event.ParameterIndex(":" + std::string(kEventColumns[i])));
  }
  CPAMP_ASSIGN_OR_RETURN(s->dl_payload, s->insert_dead_letter.ParameterIndex(":payload"));
  CPAMP_ASSIGN_OR_RETURN(s->dl_error, s->insert_dead_letter.ParameterIndex(":error"));
  CPAMP_ASSIGN_OR_RETURN(s->dl_created, s->insert_dead_letter.ParameterIndex(":created_at_ms"));
  statements_ = std::move(s);
  return Status::Ok();
}

void UsageWriter::EnrichEvents(std::vector<usage::UsageEvent>& events) {
  if (!fetch_auth_files_) return;
  if (std::none_of(events.begin(), events.end(), NeedsSnapshot)) return;

  const int64_t steady = clock_.SteadyMs();
  const bool fresh =
      snapshots_valid_ && clock_.NowMs() - snapshots_fetched_at_ms_ < options_.snapshot_ttl_ms;
  const bool may_fetch = fetch_allowed_now_ || auth_fetches_ == 0 ||
                         steady - last_fetch_attempt_steady_ms_ >= options_.snapshot_ttl_ms;
  if (!fresh && may_fetch) {
    fetch_allowed_now_ = false;
    last_fetch_attempt_steady_ms_ = steady;
    ++auth_fetches_;
    Result<std::string> body = fetch_auth_files_();
    Result<std::unordered_map<std::string, usage::AuthSnapshot>> parsed =
        body.ok() ? ParseAuthFiles(*body)
                  : Result<std::unordered_map<std::string, usage::AuthSnapshot>>(body.status());
    if (parsed.ok()) {
      snapshots_ = std::move(parsed).value();
      snapshots_valid_ = true;
      snapshots_fetched_at_ms_ = clock_.NowMs();
    } else {
      // Keep whatever (possibly stale) list we had; enrichment is best effort.
      spdlog::warn("collector: auth snapshot refresh failed: {}", parsed.status().message());
    }
  }
  if (!snapshots_valid_) return;
  for (usage::UsageEvent& e : events) {
    if (!NeedsSnapshot(e)) continue;
    auto it = snapshots_.find(*e.auth_index);
    if (it != snapshots_.end()) usage::ApplyAuthSnapshot(e, it->second, snapshots_fetched_at_ms_);
  }
}

Result<WriteStats> UsageWriter::WriteBatch(const std::vector<std::string>& payloads) {
  WriteStats stats;
  if (payloads.empty()) return stats;
  const int64_t now_ms = clock_.NowMs();

  std::vector<usage::UsageEvent> events;
  events.reserve(payloads.size());
  struct DeadLetter {
    const std::string* payload;
    std::string error;
  };
  std::vector<DeadLetter> dead;
  for (const std::string& p : payloads) {
    usage::NormalizeResult r = usage::NormalizeQueuePayload(p, now_ms);
    switch (r.kind) {
      case usage::PayloadKind::kEvent:
        stats.newest_event_ms = std::max(stats.newest_event_ms, r.event.timestamp_ms);
        if (options_.raw_json == RawJsonPolicy::kNone ||
            (options_.raw_json == RawJsonPolicy::kFailed && !r.event.failed)) {
          r.event.raw_json.reset();
        }
        events.push_back(std::move(r.event));
        break;
      case usage::PayloadKind::kControlRefresh:
        ++stats.controls;
        InvalidateAuthSnapshots();
        break;
      case usage::PayloadKind::kControlSupportRefresh:
        ++stats.controls;
        break;
      case usage::PayloadKind::kDeadLetter:
        dead.push_back({&p, std::move(r.dead_letter_error)});
        break;
    }
  }
  if (events.empty() && dead.empty()) return stats;
  EnrichEvents(events);

  Result<WriteStats> written =
      db_.WriteTransaction([&](db::Connection& conn) -> Result<WriteStats> {
        CPAMP_RETURN_IF_ERROR(PrepareStatements(conn));
        WriteStats s = stats;
        db::Statement& ins = statements_->insert_event;
        for (const usage::UsageEvent& e : events) {
          CPAMP_RETURN_IF_ERROR(ins.Reset());
          CPAMP_RETURN_IF_ERROR(BindEvent(ins, statements_->event_indexes, e));
          CPAMP_RETURN_IF_ERROR(ins.Run());
          if (conn.Changes() > 0) {
            ++s.inserted;
          } else {
            ++s.skipped;
          }
        }
        db::Statement& dl = statements_->insert_dead_letter;
        for (const DeadLetter& d : dead) {
          CPAMP_RETURN_IF_ERROR(dl.Reset());
          CPAMP_RETURN_IF_ERROR(dl.Bind(statements_->dl_payload, *d.payload));
          CPAMP_RETURN_IF_ERROR(dl.Bind(statements_->dl_error, d.error));
          CPAMP_RETURN_IF_ERROR(dl.Bind(statements_->dl_created, now_ms));
          CPAMP_RETURN_IF_ERROR(dl.Run());
          ++s.dead_letters;
        }
        CPAMP_RETURN_IF_ERROR(ins.Reset());
        CPAMP_RETURN_IF_ERROR(dl.Reset());
        return s;
      });
  if (!written.ok()) {
    // A failed step can leave the statements mid-execution; start afresh next time.
    db_.Write([&](db::Connection&) { statements_.reset(); });
    return written.status().Prefixed("write usage batch");
  }
  ++transactions_;
  return written;
}

}  // namespace cpamp::collector
