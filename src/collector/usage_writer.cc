// UsageWriter design notes.
//
// - Prepare() is pure CPU plus an occasional auth-files fetch: no lock, no SQLite. The collector
//   runs it on its preparer thread, so normalising batch N+1 overlaps the commit of batch N.
// - Rows are written by usage::EventStore (the one writer of usage_events, shared with import):
//   INSERT ... ON CONFLICT(event_hash) DO NOTHING, Changes() tells inserted from skipped, which
//   also dedups two copies of one record inside a batch. Dead letters go into the same
//   transaction as the events (stricter than upstream, which wrote them one by one).
// - The auth-file list is fetched only when an event of the batch needs it; fetch attempts are
//   spaced by the TTL so a CPA without the endpoint or a CPA that is down costs one request per
//   TTL, not one per batch. Failures are logged and the batch goes on without enrichment.
// - raw_json follows Options::raw_json (default: failed events only). It was ~60 % of a row;
//   rows above a quarter page also pack one per 4 KiB page, so dropping it is the biggest single
//   saving in bytes on disk and in WAL traffic.
// - The writer connection gets a larger page cache (EventStore option) so the random-order
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

UsageWriter::UsageWriter(db::Database& db, const Clock& clock, AuthFilesFetcher fetch_auth_files,
                         Options options)
    : clock_(clock),
      fetch_auth_files_(std::move(fetch_auth_files)),
      options_(options),
      store_(db, usage::EventStore::Options{options.writer_cache_kib}) {}

UsageWriter::~UsageWriter() = default;

Status UsageWriter::WriteDeadLetter(std::string_view payload, std::string_view error) {
  Status s = store_.InsertDeadLetter(payload, error, clock_.NowMs());
  return s.ok() ? s : s.Prefixed("write dead letter");
}

void UsageWriter::InvalidateAuthSnapshots() {
  snapshots_.clear();
  snapshots_valid_ = false;
  fetch_allowed_now_ = true;
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

PreparedRows UsageWriter::Prepare(const std::vector<std::string>& payloads) {
  PreparedRows rows;
  if (payloads.empty()) return rows;
  const int64_t now_ms = clock_.NowMs();
  rows.events.reserve(payloads.size());
  for (const std::string& p : payloads) {
    usage::NormalizeResult r = usage::NormalizeQueuePayload(p, now_ms, options_.raw_json);
    switch (r.kind) {
      case usage::PayloadKind::kEvent:
        rows.newest_event_ms = std::max(rows.newest_event_ms, r.event.timestamp_ms);
        rows.events.push_back(std::move(r.event));
        break;
      case usage::PayloadKind::kControlRefresh:
        ++rows.controls;
        InvalidateAuthSnapshots();
        break;
      case usage::PayloadKind::kControlSupportRefresh:
        ++rows.controls;
        break;
      case usage::PayloadKind::kDeadLetter:
        rows.dead_letters.push_back({p, std::move(r.dead_letter_error)});
        break;
    }
  }
  EnrichEvents(rows.events);
  return rows;
}

Result<WriteStats> UsageWriter::Commit(const PreparedRows& rows) {
  WriteStats stats;
  stats.controls = rows.controls;
  stats.newest_event_ms = rows.newest_event_ms;
  if (rows.events.empty() && rows.dead_letters.empty()) return stats;
  CPAMP_ASSIGN_OR_RETURN(usage::InsertCounts c,
                         store_.Write(rows.events, rows.dead_letters, clock_.NowMs()));
  stats.inserted = c.inserted;
  stats.skipped = c.skipped;
  stats.dead_letters = c.dead_letters;
  return stats;
}

Result<WriteStats> UsageWriter::Append(db::Connection& conn, const PreparedRows& rows) {
  WriteStats stats;
  stats.controls = rows.controls;
  stats.newest_event_ms = rows.newest_event_ms;
  if (rows.events.empty() && rows.dead_letters.empty()) return stats;
  CPAMP_ASSIGN_OR_RETURN(usage::InsertCounts c,
                         store_.Append(conn, rows.events, rows.dead_letters, clock_.NowMs()));
  stats.inserted = c.inserted;
  stats.skipped = c.skipped;
  stats.dead_letters = c.dead_letters;
  return stats;
}

Result<WriteStats> UsageWriter::WriteBatch(const std::vector<std::string>& payloads) {
  return Commit(Prepare(payloads));
}

}  // namespace cpamp::collector
