// RollupWorker and RetentionWorker.
//
// Design notes:
// - The rollup checkpoint is analytics_rollup_state('hourly').last_event_id: every usage_events
//   row with id ≤ checkpoint is folded into analytics_hourly_rollups exactly once. One batch =
//   ≤1,000 ids read in id order, aggregated in memory per (UTC hour, effective requested model,
//   billing model, service tier, context band, failed) and merged into the stored rows (read,
//   add, replace — sample blobs are appended) in one IMMEDIATE transaction with the checkpoint,
//   so a crash never double counts. Start-up never waits: the first pass runs on the thread.
// - Context bands depend on the price table's structure (tier thresholds), so the state records
//   the structure revision. When it changes the worker deletes rollup rows from the oldest hour
//   that still has raw events and re-folds from id 0; older rows (raw already deleted by
//   retention) are kept with their old bands, the one documented approximation.
// - Retention deletes whole UTC hours older than N days, only ids the rollup already covers, in
//   1,000-row transactions, and records the horizon in the state row.
// - The search projection (analytics_search_rows) has its own checkpoint (state row 'search'), so
//   databases rolled up before it existed are back-filled; each pass runs ≤ max_batches of it
//   after the rollup batches. Retention deletes an event's projection row in the same transaction.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <map>
#include <tuple>

#include "analytics/internal.h"

namespace cpamp::analytics {
namespace in = internal;

namespace {

struct RollupCell {
  in::Tokens t;
  std::string lat, ttft;
};

Status EnsureState(db::Connection& conn, const std::string& revision, int64_t now_ms) {
  CPAMP_ASSIGN_OR_RETURN(db::Statement s,
                         conn.Prepare("insert or ignore into analytics_rollup_state(name, "
                                      "last_event_id, structure_revision, updated_at_ms) "
                                      "values ('hourly', 0, ?1, ?2)"));
  CPAMP_RETURN_IF_ERROR(s.Bind(1, revision));
  CPAMP_RETURN_IF_ERROR(s.Bind(2, now_ms));
  return s.Run();
}

Status Rebuild(db::Connection& conn, const std::string& revision, int64_t now_ms) {
  CPAMP_ASSIGN_OR_RETURN(db::Statement m,
                         conn.Prepare("select min(timestamp_ms) from usage_events"));
  CPAMP_ASSIGN_OR_RETURN(bool row, m.Step());
  if (row && !m.IsNull(0)) {
    int64_t cutoff = in::FloorDiv(m.ColumnInt64(0), kHourMs) * kHourMs;
    CPAMP_ASSIGN_OR_RETURN(db::Statement d, conn.Prepare("delete from analytics_hourly_rollups "
                                                         "where bucket_ms >= ?1"));
    CPAMP_RETURN_IF_ERROR(d.Bind(1, cutoff));
    CPAMP_RETURN_IF_ERROR(d.Run());
  }
  CPAMP_ASSIGN_OR_RETURN(db::Statement u,
                         conn.Prepare("update analytics_rollup_state set last_event_id = 0, "
                                      "structure_revision = ?1, updated_at_ms = ?2 "
                                      "where name = 'hourly'"));
  CPAMP_RETURN_IF_ERROR(u.Bind(1, revision));
  CPAMP_RETURN_IF_ERROR(u.Bind(2, now_ms));
  return u.Run();
}

// Folds ids (checkpoint, checkpoint + batch] into the rollup; returns events folded.
// One batch of the search projection: ≤1,000 events past the 'search' checkpoint, in id order.
Result<int64_t> ProjectBatch(db::Connection& conn, int64_t now_ms) {
  CPAMP_RETURN_IF_ERROR(
      conn.Exec("insert or ignore into analytics_rollup_state(name, last_event_id) "
                "values ('search', 0)"));
  CPAMP_ASSIGN_OR_RETURN(int64_t last, in::SearchProjectionCheckpoint(conn));
  CPAMP_ASSIGN_OR_RETURN(
      db::Statement s,
      conn.Prepare(fmt::format("select id, timestamp_ms, {} from usage_events where id > ?1 "
                               "order by id limit ?2",
                               in::SearchColumnList())));
  CPAMP_RETURN_IF_ERROR(s.Bind(1, last));
  CPAMP_RETURN_IF_ERROR(s.Bind(2, kRollupBatchEvents));
  CPAMP_ASSIGN_OR_RETURN(db::Statement ins,
                         conn.Prepare("insert or replace into analytics_search_rows "
                                      "(timestamp_ms, id, text) values (?1, ?2, ?3)"));
  int64_t n = 0;
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    last = s.ColumnInt64(0);
    CPAMP_RETURN_IF_ERROR(ins.Reset());
    CPAMP_RETURN_IF_ERROR(ins.Bind(1, s.ColumnInt64(1)));
    CPAMP_RETURN_IF_ERROR(ins.Bind(2, last));
    CPAMP_RETURN_IF_ERROR(ins.BindText(3, in::SearchText(s, 2)));
    CPAMP_RETURN_IF_ERROR(ins.Run());
    ++n;
  }
  if (n == 0) return n;
  CPAMP_ASSIGN_OR_RETURN(db::Statement u,
                         conn.Prepare("update analytics_rollup_state set last_event_id = ?1, "
                                      "updated_at_ms = ?2 where name = 'search'"));
  CPAMP_RETURN_IF_ERROR(u.Bind(1, last));
  CPAMP_RETURN_IF_ERROR(u.Bind(2, now_ms));
  CPAMP_RETURN_IF_ERROR(u.Run());
  return n;
}

Result<int64_t> FoldBatch(db::Connection& conn, in::CostKeys& keys, int64_t now_ms) {
  CPAMP_ASSIGN_OR_RETURN(in::RollupState st, in::LoadRollupState(conn));
  CPAMP_ASSIGN_OR_RETURN(db::Statement s,
                         conn.Prepare(std::string("select ") + in::kCoreColumns +
                                      " from usage_events where id > ?1 order by id limit ?2"));
  CPAMP_RETURN_IF_ERROR(s.Bind(1, st.last_event_id));
  CPAMP_RETURN_IF_ERROR(s.Bind(2, kRollupBatchEvents));
  using Key = std::tuple<int64_t, int, bool>;  // hour, cost key, failed
  std::map<Key, RollupCell> cells;
  int64_t last = st.last_event_id, n = 0;
  while (true) {
    CPAMP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    in::EventView e = in::ReadCoreColumns(s, 0);
    int key =
        keys.ForEvent(e.model, e.requested_model, e.resolved_model, e.service_tier, e.tokens.input);
    RollupCell& c = cells[{in::FloorDiv(e.ts, kHourMs) * kHourMs, key, e.failed}];
    c.t.Add(e.tokens);
    if (e.latency && *e.latency > 0) in::AppendSamples(c.lat, static_cast<uint32_t>(*e.latency));
    if (e.ttft && *e.ttft > 0) in::AppendSamples(c.ttft, static_cast<uint32_t>(*e.ttft));
    last = e.id;
    ++n;
  }
  if (n == 0) return int64_t{0};
  CPAMP_ASSIGN_OR_RETURN(
      db::Statement get,
      conn.Prepare("select calls, input_tokens, output_tokens, reasoning_tokens, cached_tokens, "
                   "cache_read_tokens, cache_creation_tokens, total_tokens, latency_sum_ms, "
                   "latency_samples, zero_token_calls, long_input_tokens, long_output_tokens, "
                   "long_cached_tokens, long_cache_read_tokens, long_cache_creation_tokens, "
                   "latency_blob, ttft_blob from analytics_hourly_rollups where bucket_ms = ?1 "
                   "and model = ?2 and billing_model = ?3 and service_tier = ?4 and "
                   "context_band = ?5 and failed = ?6"));
  CPAMP_ASSIGN_OR_RETURN(
      db::Statement put,
      conn.Prepare("insert or replace into analytics_hourly_rollups (bucket_ms, model, "
                   "billing_model, service_tier, context_band, failed, calls, input_tokens, "
                   "output_tokens, reasoning_tokens, cached_tokens, cache_read_tokens, "
                   "cache_creation_tokens, total_tokens, latency_sum_ms, latency_samples, "
                   "zero_token_calls, long_input_tokens, long_output_tokens, long_cached_tokens, "
                   "long_cache_read_tokens, long_cache_creation_tokens, latency_blob, ttft_blob) "
                   "values (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,"
                   "?20,?21,?22,?23,?24)"));
  for (auto& [k, c] : cells) {
    const in::CostKey& ck = keys.Get(std::get<1>(k));
    for (db::Statement* st2 : {&get, &put}) {
      CPAMP_RETURN_IF_ERROR(st2->Reset());
      CPAMP_RETURN_IF_ERROR(st2->Bind(1, std::get<0>(k)));
      CPAMP_RETURN_IF_ERROR(st2->Bind(2, ck.requested));
      CPAMP_RETURN_IF_ERROR(st2->Bind(3, ck.billing));
      CPAMP_RETURN_IF_ERROR(st2->Bind(4, ck.tier));
      CPAMP_RETURN_IF_ERROR(st2->Bind(5, ck.band));
      CPAMP_RETURN_IF_ERROR(st2->Bind(6, std::get<2>(k) ? 1 : 0));
    }
    CPAMP_ASSIGN_OR_RETURN(bool found, get.Step());
    in::Tokens t = c.t;
    std::string lat, ttft;
    if (found) {
      in::Tokens o;
      o.calls = get.ColumnInt64(0);
      o.input = get.ColumnInt64(1);
      o.output = get.ColumnInt64(2);
      o.reasoning = get.ColumnInt64(3);
      o.cached = get.ColumnInt64(4);
      o.cache_read = get.ColumnInt64(5);
      o.cache_creation = get.ColumnInt64(6);
      o.total = get.ColumnInt64(7);
      o.latency_sum = get.ColumnInt64(8);
      o.latency_samples = get.ColumnInt64(9);
      o.zero_token_calls = get.ColumnInt64(10);
      o.long_input = get.ColumnInt64(11);
      o.long_output = get.ColumnInt64(12);
      o.long_cached = get.ColumnInt64(13);
      o.long_cache_read = get.ColumnInt64(14);
      o.long_cache_creation = get.ColumnInt64(15);
      t.Add(o);
      lat = get.ColumnText(16);
      ttft = get.ColumnText(17);
    }
    CPAMP_RETURN_IF_ERROR(get.Reset());
    lat += c.lat;
    ttft += c.ttft;
    int64_t vals[] = {t.calls,       t.input,           t.output,           t.reasoning,
                      t.cached,      t.cache_read,      t.cache_creation,   t.total,
                      t.latency_sum, t.latency_samples, t.zero_token_calls, t.long_input,
                      t.long_output, t.long_cached,     t.long_cache_read,  t.long_cache_creation};
    for (int i = 0; i < 16; ++i) CPAMP_RETURN_IF_ERROR(put.Bind(7 + i, vals[i]));
    CPAMP_RETURN_IF_ERROR(put.BindBlob(23, lat));
    CPAMP_RETURN_IF_ERROR(put.BindBlob(24, ttft));
    CPAMP_RETURN_IF_ERROR(put.Run());
  }
  CPAMP_ASSIGN_OR_RETURN(db::Statement u,
                         conn.Prepare("update analytics_rollup_state set last_event_id = ?1, "
                                      "updated_at_ms = ?2 where name = 'hourly'"));
  CPAMP_RETURN_IF_ERROR(u.Bind(1, last));
  CPAMP_RETURN_IF_ERROR(u.Bind(2, now_ms));
  CPAMP_RETURN_IF_ERROR(u.Run());
  return n;
}

}  // namespace

RollupWorker::RollupWorker(db::Database& db, const Clock& clock, PriceLoader prices,
                           int64_t poll_interval_ms, bool search_projection)
    : db_(db),
      clock_(clock),
      prices_(std::move(prices)),
      poll_interval_ms_(poll_interval_ms),
      search_projection_(search_projection) {}

RollupWorker::~RollupWorker() { Stop(); }

Result<int64_t> RollupWorker::RunOnce(int64_t max_batches) {
  pricing::PriceTable table;
  if (prices_) {
    CPAMP_ASSIGN_OR_RETURN(table, prices_());
  } else {
    CPAMP_ASSIGN_OR_RETURN(table, db_.Read([](db::Connection& c) { return in::LoadPricesOn(c); }));
  }
  std::string revision = in::RollupRevision(table);
  int64_t now = clock_.NowMs();
  Status prepared = db_.WriteTransaction([&](db::Connection& conn) -> Status {
    CPAMP_RETURN_IF_ERROR(EnsureState(conn, revision, now));
    CPAMP_ASSIGN_OR_RETURN(in::RollupState st, in::LoadRollupState(conn));
    if (st.revision != revision) return Rebuild(conn, revision, now);
    return Status::Ok();
  });
  CPAMP_RETURN_IF_ERROR(prepared);
  in::CostKeys keys(table);
  int64_t total = 0;
  for (int64_t i = 0; i < max_batches; ++i) {
    CPAMP_ASSIGN_OR_RETURN(int64_t n, db_.WriteTransaction([&](db::Connection& conn) {
      return FoldBatch(conn, keys, now);
    }));
    total += n;
    if (n < kRollupBatchEvents) break;
  }
  int64_t projected = 0;
  for (int64_t i = 0; search_projection_ && i < max_batches; ++i) {
    CPAMP_ASSIGN_OR_RETURN(int64_t n, db_.WriteTransaction([&](db::Connection& conn) {
      return ProjectBatch(conn, now);
    }));
    projected += n;
    if (n < kRollupBatchEvents) break;
  }
  last_projected_ = projected;
  return total;
}

void RollupWorker::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void RollupWorker::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = true;
  cv_.notify_all();
}

void RollupWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

WorkerStats RollupWorker::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void RollupWorker::Loop() {
  while (true) {
    int64_t folded = 0;
    try {
      Result<int64_t> r = RunOnce();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.passes;
      if (r.ok()) {
        folded = *r;
        stats_.processed += folded;
        stats_.last_error.clear();
      } else {
        stats_.last_error = r.status().message();
        spdlog::warn("analytics rollup: {}", stats_.last_error);
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.last_error = e.what();
    }
    std::unique_lock<std::mutex> lock(mu_);
    // More pending: continue after 250 ms; otherwise wait for a wake or the poll interval.
    constexpr int64_t kFullPass = kRollupBatchEvents * kRollupBatchesPerWake;
    int64_t wait_ms = folded >= kFullPass || last_projected_ >= kFullPass ? 250 : poll_interval_ms_;
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stopping_ || wake_; });
    if (stopping_) return;
    wake_ = false;
  }
}

// ---- Retention ------------------------------------------------------------------------------

RetentionWorker::RetentionWorker(db::Database& db, const Clock& clock, int retention_days,
                                 int64_t poll_interval_ms)
    : db_(db),
      clock_(clock),
      retention_days_(retention_days),
      poll_interval_ms_(poll_interval_ms) {}

RetentionWorker::~RetentionWorker() { Stop(); }

Result<int64_t> RetentionWorker::RunOnce(int64_t max_batches) {
  if (retention_days_ <= 0) return int64_t{0};
  int64_t horizon =
      in::FloorDiv(clock_.NowMs() - int64_t{retention_days_} * kDayMs, kHourMs) * kHourMs;
  int64_t total = 0;
  for (int64_t i = 0; i < max_batches; ++i) {
    CPAMP_ASSIGN_OR_RETURN(
        int64_t n, db_.WriteTransaction([&](db::Connection& conn) -> Result<int64_t> {
          CPAMP_ASSIGN_OR_RETURN(in::RollupState st, in::LoadRollupState(conn));
          CPAMP_ASSIGN_OR_RETURN(
              db::Statement d,
              conn.Prepare("delete from usage_events where id in (select id from usage_events "
                           "where timestamp_ms < ?1 and id <= ?2 order by timestamp_ms limit ?3) "
                           "returning timestamp_ms, id"));
          CPAMP_RETURN_IF_ERROR(d.Bind(1, horizon));
          CPAMP_RETURN_IF_ERROR(d.Bind(2, st.last_event_id));
          CPAMP_RETURN_IF_ERROR(d.Bind(3, kRetentionBatchRows));
          std::vector<std::pair<int64_t, int64_t>> deleted;
          while (true) {
            CPAMP_ASSIGN_OR_RETURN(bool row, d.Step());
            if (!row) break;
            deleted.emplace_back(d.ColumnInt64(0), d.ColumnInt64(1));
          }
          // The search projection row of each deleted event goes in the same transaction.
          CPAMP_ASSIGN_OR_RETURN(db::Statement p,
                                 conn.Prepare("delete from analytics_search_rows where "
                                              "timestamp_ms = ?1 and id = ?2"));
          for (const auto& [ts, id] : deleted) {
            CPAMP_RETURN_IF_ERROR(p.Reset());
            CPAMP_RETURN_IF_ERROR(p.Bind(1, ts));
            CPAMP_RETURN_IF_ERROR(p.Bind(2, id));
            CPAMP_RETURN_IF_ERROR(p.Run());
          }
          int64_t changed = static_cast<int64_t>(deleted.size());
          if (changed > 0) {
            CPAMP_ASSIGN_OR_RETURN(db::Statement u,
                                   conn.Prepare("update analytics_rollup_state set "
                                                "retained_before_ms = max(retained_before_ms, ?1) "
                                                "where name = 'hourly'"));
            CPAMP_RETURN_IF_ERROR(u.Bind(1, horizon));
            CPAMP_RETURN_IF_ERROR(u.Run());
          }
          return changed;
        }));
    // After the commit (db.h contract): /status counts usage_events incrementally.
    if (n > 0) db_.InvalidateRowCount("usage_events");
    total += n;
    if (n < kRetentionBatchRows) break;
  }
  return total;
}

void RetentionWorker::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || retention_days_ <= 0) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void RetentionWorker::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  wake_ = true;
  cv_.notify_all();
}

void RetentionWorker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

WorkerStats RetentionWorker::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void RetentionWorker::Loop() {
  while (true) {
    int64_t deleted = 0;
    try {
      Result<int64_t> r = RunOnce();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.passes;
      if (r.ok()) {
        deleted = *r;
        stats_.processed += deleted;
      } else {
        stats_.last_error = r.status().message();
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.last_error = e.what();
    }
    std::unique_lock<std::mutex> lock(mu_);
    int64_t wait_ms = deleted > 0 ? 50 : poll_interval_ms_;
    cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stopping_ || wake_; });
    if (stopping_) return;
    wake_ = false;
  }
}

}  // namespace cpamp::analytics
