// IngestPipeline design notes.
//
// - Three stages, two queues, one lock. Submit() appends a raw chunk (the items of one socket
//   read or one pop) to raw_; the preparer takes up to prepare_chunk items, runs
//   UsageWriter::Prepare outside the lock and appends the prepared rows to prepared_; the writer
//   takes every prepared batch that is ready (up to max_commit_events events), merges them and
//   commits them in one transaction. The lock is held only to move chunks between queues.
// - Accounting: backlog_records/bytes grow in Submit() and shrink only after the commit of the
//   batch that holds the items (Release), so the bound covers raw, prepared and in-flight items
//   alike and equals what a kill -9 would lose.
// - Back-pressure: Submit() waits on room_cv_ while either bound is reached. A chunk is admitted
//   as soon as the backlog is below the bound, so the bound may be exceeded by one chunk (a
//   chunk is at most one socket read or one pop). A stop request admits the chunk regardless:
//   those items already left CPA and must not vanish.
// - A failed commit keeps its batch in the writer and is retried with doubling waits (100 ms to
//   5 s); meanwhile the backlog fills and the readers stall, which is the only honest answer to
//   a database that cannot take writes. Close() gives the writer a deadline after which a batch
//   that still cannot be committed is logged as lost (the documented stop-time bound).
// - Batching under backlog: a transaction takes everything already prepared, so under load
//   commits grow (fewer per-transaction costs) and at low rates each read commits at once.
#include "collector/ingest_pipeline.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "base/log.h"

namespace cpamp::collector {
namespace {

// The preparer and the writer run at a lower priority than the transport threads and the HTTP
// API: a subscriber that is not scheduled for a few milliseconds falls 256 messages behind and
// CPA drops it (at 60k records/s that is 4 ms), and the API should answer while a burst is
// written. The writer still gets every idle cycle. Raising nice needs no privilege.
constexpr int kWorkerNice = 5;

void LowerThreadPriority() {
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kWorkerNice);  // best effort
}

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct IngestPipeline::Prepared {
  PreparedRows rows;
  std::vector<std::string> raw;  // the items `rows` came from, for a retry
  int64_t records = 0;  // raw items this batch accounts for
  int64_t bytes = 0;
};

IngestPipeline::IngestPipeline(db::Database& db, const Clock& clock,
                               AuthFilesFetcher fetch_auth_files, PipelineOptions options)
    : db_(db), clock_(clock), options_(options) {
  UsageWriter::Options w;
  w.snapshot_ttl_ms = options_.snapshot_ttl_ms;
  w.raw_json = options_.raw_json;
  w.writer_cache_kib = options_.writer_cache_kib;
  preparer_ = std::make_unique<UsageWriter>(db_, clock_, std::move(fetch_auth_files), w);
  stats_.max_records = options_.max_records;
  stats_.max_bytes = options_.max_bytes;
  prepare_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "usage-prepare");
    LowerThreadPriority();
    PrepareLoop();
  });
  write_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "usage-writer");
    LowerThreadPriority();
    WriteLoop();
  });
}

IngestPipeline::~IngestPipeline() { Close(); }

bool IngestPipeline::Submit(std::vector<std::string>&& payloads, const std::atomic<bool>* stop) {
  RawChunk chunk;
  chunk.items.reserve(payloads.size());
  for (std::string& p : payloads) {
    if (p.empty()) continue;
    chunk.bytes += static_cast<int64_t>(p.size());
    chunk.items.push_back(std::move(p));
  }
  payloads.clear();
  std::unique_lock lock(mu_);
  if (closing_) return false;
  if (chunk.items.empty()) return true;
  auto full = [&] {
    return stats_.backlog_records >= options_.max_records ||
           stats_.backlog_bytes >= options_.max_bytes;
  };
  if (full()) {
    StallBeginLocked();
    while (full() && !closing_ && !(stop != nullptr && stop->load())) {
      room_cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
    StallEndLocked();
  }
  // Admitted even when closing or stopping: these items already left CPA.
  stats_.backlog_records += static_cast<int64_t>(chunk.items.size());
  stats_.backlog_bytes += chunk.bytes;
  stats_.peak_backlog_records = std::max(stats_.peak_backlog_records, stats_.backlog_records);
  stats_.submitted += static_cast<int64_t>(chunk.items.size());
  raw_.push_back(std::move(chunk));
  raw_cv_.notify_one();
  return true;
}

void IngestPipeline::StallBeginLocked() {
  if (stalled_submitters_++ == 0) {
    stall_started_steady_ms_ = SteadyNowMs();
    ++stats_.reader_stalls;
    stats_.reader_stalled = true;
    // One warning per episode: during a long burst the reader may stall many times a second.
    const bool quiet_since = stats_.last_stall_end_steady_ms == 0 ||
                             stall_started_steady_ms_ - stats_.last_stall_end_steady_ms > 10'000;
    if (quiet_since) {
      spdlog::warn("collector: writer behind ({} records, {} bytes buffered): reader stalled "
                   "(stall #{})",
                   stats_.backlog_records, stats_.backlog_bytes, stats_.reader_stalls);
    }
  }
}

void IngestPipeline::StallEndLocked() {
  if (--stalled_submitters_ == 0) {
    const int64_t now = SteadyNowMs();
    stats_.reader_stall_ms += now - stall_started_steady_ms_;
    stats_.last_stall_end_steady_ms = now;
    stats_.reader_stalled = false;
  }
}

void IngestPipeline::BeginReaderWait() {
  std::lock_guard lock(mu_);
  StallBeginLocked();
}

void IngestPipeline::EndReaderWait() {
  std::lock_guard lock(mu_);
  StallEndLocked();
}

bool IngestPipeline::HasRoom(double fraction) const {
  std::lock_guard lock(mu_);
  return static_cast<double>(stats_.backlog_records) <
             fraction * static_cast<double>(options_.max_records) &&
         static_cast<double>(stats_.backlog_bytes) <
             fraction * static_cast<double>(options_.max_bytes);
}

int64_t IngestPipeline::QueuedRecords() const {
  std::lock_guard lock(mu_);
  return stats_.backlog_records - stats_.in_transaction_records;
}

bool IngestPipeline::WaitIdle(int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0)),
                           [&] { return stats_.backlog_records == 0; });
}

void IngestPipeline::Close(int64_t give_up_after_ms) {
  {
    std::lock_guard lock(mu_);
    if (!closing_) {
      closing_ = true;
      give_up_at_steady_ms_ = SteadyNowMs() + give_up_after_ms;
    }
  }
  raw_cv_.notify_all();
  prepared_cv_.notify_all();
  room_cv_.notify_all();
  if (prepare_thread_.joinable()) prepare_thread_.join();
  if (write_thread_.joinable()) write_thread_.join();
}

void IngestPipeline::Release(int64_t records, int64_t bytes) {
  std::lock_guard lock(mu_);
  stats_.backlog_records -= records;
  stats_.backlog_bytes -= bytes;
  room_cv_.notify_all();
  if (stats_.backlog_records == 0) idle_cv_.notify_all();
}

void IngestPipeline::PrepareLoop() {
  std::vector<std::string> items;
  std::vector<std::unique_ptr<Prepared>> graveyard;
  for (;;) {
    int64_t bytes = 0;
    items.clear();
    graveyard.clear();  // frees committed batches outside the lock
    {
      std::unique_lock lock(mu_);
      raw_cv_.wait(lock, [&] { return !raw_.empty() || !committed_.empty() || closing_; });
      graveyard.swap(committed_);
      if (raw_.empty()) {
        if (closing_) break;  // closing and nothing left
        continue;             // woken to free committed batches
      }
      // Take up to prepare_chunk items, splitting a larger chunk (a pop of 4,096 records): the
      // prepared rows of one call are ~3 KB each until the writer has inserted them, so smaller
      // calls keep fewer of them alive at once.
      while (!raw_.empty() && static_cast<int64_t>(items.size()) < options_.prepare_chunk) {
        RawChunk& c = raw_.front();
        const size_t want = static_cast<size_t>(options_.prepare_chunk) - items.size();
        if (c.items.size() <= want) {
          bytes += c.bytes;
          std::move(c.items.begin(), c.items.end(), std::back_inserter(items));
          raw_.pop_front();
          continue;
        }
        int64_t part = 0;
        for (size_t i = 0; i < want; ++i) {
          part += static_cast<int64_t>(c.items[i].size());
          items.push_back(std::move(c.items[i]));
        }
        c.items.erase(c.items.begin(), c.items.begin() + static_cast<std::ptrdiff_t>(want));
        c.bytes -= part;
        bytes += part;
      }
    }
    auto batch = std::make_unique<Prepared>();
    batch->records = static_cast<int64_t>(items.size());
    batch->bytes = bytes;
    batch->rows = preparer_->Prepare(items);
    batch->raw = std::move(items);  // kept until the batch is committed
    items = {};
    std::unique_lock lock(mu_);
    prepared_cv_.wait(lock, [&] {
      return prepared_events_ < options_.max_prepared_events || prepared_.empty() || closing_;
    });
    prepared_events_ += static_cast<int64_t>(batch->rows.events.size());
    prepared_.push_back(std::move(batch));
    prepared_cv_.notify_all();
  }
  std::lock_guard lock(mu_);
  prepare_done_ = true;
  prepared_cv_.notify_all();
}

// One transaction spans several prepared batches: rows are inserted as batches arrive and the
// transaction commits after max_commit_events rows, max_transaction_ms, or as soon as no batch
// arrives within idle_commit_ms (so light traffic commits at once). The raw items of every
// batch in the open transaction are kept until it commits; a failed transaction puts them back
// at the front of the raw queue, the preparer prepares them again and nothing is lost.
void IngestPipeline::WriteLoop() {
  int64_t wait = options_.commit_retry_ms;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      prepared_cv_.wait(lock, [&] { return !prepared_.empty() || prepare_done_; });
      if (prepared_.empty()) break;  // preparer finished and nothing left
    }
    std::vector<std::unique_ptr<Prepared>> in_tx;
    WriteStats tx;
    const int64_t started = SteadyNowMs();
    int64_t rows = 0;
    Status st = db_.WriteTransaction([&](db::Connection& conn) -> Status {
      for (;;) {
        std::unique_ptr<Prepared> batch;
        {
          std::unique_lock lock(mu_);
          if (prepared_.empty() && !in_tx.empty()) {
            const int64_t left = options_.max_transaction_ms - (SteadyNowMs() - started);
            prepared_cv_.wait_for(
                lock, std::chrono::milliseconds(std::clamp<int64_t>(left, 0, options_.idle_commit_ms)),
                [&] { return !prepared_.empty() || prepare_done_; });
          }
          if (prepared_.empty()) break;
          batch = std::move(prepared_.front());
          prepared_.pop_front();
          prepared_events_ -= static_cast<int64_t>(batch->rows.events.size());
          stats_.in_transaction_records += batch->records;
        }
        prepared_cv_.notify_all();  // room for the preparer
        // Held by in_tx before the insert: if the insert fails, its raw items go back too.
        Prepared& b = *in_tx.emplace_back(std::move(batch));
        CPAMP_ASSIGN_OR_RETURN(WriteStats w, preparer_->Append(conn, b.rows));
        tx.inserted += w.inserted;
        tx.skipped += w.skipped;
        tx.dead_letters += w.dead_letters;
        tx.controls += w.controls;
        tx.newest_event_ms = std::max(tx.newest_event_ms, w.newest_event_ms);
        rows += static_cast<int64_t>(b.rows.events.size() + b.rows.dead_letters.size());
        // The rows are in the transaction; keep only the raw items (for a retry).
        b.rows.events = {};
        b.rows.dead_letters = {};
        if (rows >= options_.max_commit_events ||
            SteadyNowMs() - started >= options_.max_transaction_ms) {
          break;
        }
      }
      return Status::Ok();
    });
    int64_t records = 0;
    int64_t bytes = 0;
    for (const auto& b : in_tx) {
      records += b->records;
      bytes += b->bytes;
    }
    {
      // Committed, or going back to the raw queue below: no longer in a transaction.
      std::lock_guard lock(mu_);
      stats_.in_transaction_records -= records;
    }
    if (st.ok()) {
      wait = options_.commit_retry_ms;
      const int64_t now = clock_.NowMs();
      const int64_t steady = SteadyNowMs();
      {
        std::lock_guard lock(mu_);
        stats_.inserted += tx.inserted;
        stats_.skipped += tx.skipped;
        stats_.dead_letters += tx.dead_letters;
        stats_.controls += tx.controls;
        if (tx.inserted + tx.skipped + tx.dead_letters > 0) ++stats_.transactions;
        if (tx.inserted + tx.skipped > 0) stats_.last_inserted_at_ms = now;
        if (tx.newest_event_ms > 0) stats_.newest_event_ms = tx.newest_event_ms;
        stats_.commit_failing = false;
        recent_.emplace_back(steady, tx.inserted + tx.skipped);
        while (!recent_.empty() && steady - recent_.front().first > options_.rate_window_ms) {
          recent_.pop_front();
        }
        // Freed by the preparer, which allocated the strings (glibc's fast path).
        if (!prepare_done_) {
          for (auto& b : in_tx) committed_.push_back(std::move(b));
        }
      }
      raw_cv_.notify_one();
      Release(records, bytes);
      continue;
    }

    int64_t give_up_at = 0;
    {
      std::lock_guard lock(mu_);
      ++stats_.commit_failures;
      stats_.commit_failing = true;
      stats_.last_commit_error = st.message();
      give_up_at = closing_ ? give_up_at_steady_ms_ : 0;
    }
    if (give_up_at > 0 && SteadyNowMs() + wait > give_up_at) {
      spdlog::error("collector: {} items could not be stored at stop: {}", records, st.message());
      Release(records, bytes);
      continue;
    }
    spdlog::warn("collector: commit of {} items failed, retrying in {} ms: {}", records, wait,
                 st.message());
    {
      // Back to the front of the raw queue, in their order: prepared (and committed) again.
      std::lock_guard lock(mu_);
      for (auto it = in_tx.rbegin(); it != in_tx.rend(); ++it) {
        RawChunk c;
        c.items = std::move((*it)->raw);
        c.bytes = (*it)->bytes;
        if (!c.items.empty()) raw_.push_front(std::move(c));
      }
    }
    raw_cv_.notify_one();
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    wait = std::min(wait * 2, options_.commit_retry_max_ms);
  }
}

PipelineStats IngestPipeline::Stats() const {
  std::lock_guard lock(mu_);
  PipelineStats s = stats_;
  const int64_t steady = SteadyNowMs();
  if (stalled_submitters_ > 0) s.reader_stall_ms += steady - stall_started_steady_ms_;
  int64_t events = 0;
  for (const auto& [at, n] : recent_) {
    if (steady - at <= options_.rate_window_ms) events += n;
  }
  s.events_per_second =
      static_cast<double>(events) * 1000.0 / static_cast<double>(options_.rate_window_ms);
  return s;
}

}  // namespace cpamp::collector
