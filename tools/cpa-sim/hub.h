// The simulator's usage queue and Pub/Sub hub (spec/cpa-protocol.md §2.4, §2.6).
//
// One FIFO pop queue with time-based retention, plus subscriber lists for the `usage` and
// `errors` channels. A usage record goes to every current usage subscriber, or, when there is
// none, to the pop queue (subscriber-xor-queue). Each subscriber has a 256-message buffer of
// pre-encoded RESP frames, counting both the frames waiting for the writer and those of the
// write in flight; a publish that finds it full drops the subscriber (what is buffered is
// flushed, then its connection closes) and the record is lost for it, not queued.
//
// Pre-loaded records (--preload) sit logically before everything else in the queue; they are
// materialised lazily on pop by `preload_source` and never expire.
//
// Threading: not thread-safe; owned and used by the simulator's single I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cpamp::sim {

inline constexpr std::size_t kSubscriberBufferMessages = 256;

enum class Channel { kUsage, kErrors };

// One subscribed connection, shared by the hub and the connection's writer.
struct Subscriber {
  Channel channel = Channel::kUsage;
  std::string channel_echo;           // the channel name as the client sent it, trimmed
  std::string pending;                // encoded frames not yet taken by the writer
  std::size_t pending_messages = 0;   // messages in `pending` (replies are not counted)
  std::size_t inflight_messages = 0;  // messages of the writer's unfinished async write
  bool finished = false;              // removed from the hub: flush `pending`, then close
  std::function<void()> wake;         // set by the writer while it waits

  // Messages held against the 256-message buffer (CPA's Go channel).
  std::size_t buffered_messages() const { return pending_messages + inflight_messages; }
};

struct QueueItem {
  std::string payload;
  bool valid_json = true;  // the HTTP queue embeds invalid items as JSON strings
};

struct HubStats {
  std::uint64_t produced = 0;             // usage payloads accepted by Publish (incl. injected)
  std::uint64_t queued = 0;               // ... of which went to the pop queue
  std::uint64_t delivered = 0;            // usage messages handed to subscribers (per subscriber)
  std::uint64_t popped = 0;               // records removed by LPOP/RPOP/HTTP queue
  std::uint64_t expired = 0;              // records removed by retention
  std::uint64_t overflow_lost = 0;        // messages lost because a subscriber buffer was full
  std::uint64_t subscribers_dropped = 0;  // removed on overflow or by DropUsageSubscribers
  std::uint64_t refresh_sent = 0;         // {"refresh":true} messages handed to subscribers
  std::uint64_t error_events = 0;         // errors-channel messages handed to subscribers
};

class UsageHub {
 public:
  using Clock = std::chrono::steady_clock;
  using PreloadSource = std::function<void(std::string* out)>;

  UsageHub(int retention_seconds, PreloadSource preload_source);

  // CPA clamps: <=0 becomes 60, >3600 becomes 3600. Returns the effective value.
  static int ClampRetention(int seconds);
  int SetRetention(int seconds);
  int retention_seconds() const { return retention_seconds_; }

  // Publishes a usage payload (record or raw injected line). Returns true if it was queued
  // or delivered to at least one subscriber.
  bool PublishUsage(std::string payload, bool valid_json = true);
  // Publishes on the errors channel (subscribers only; discarded without any).
  void PublishError(std::string_view payload);
  // Sends {"refresh":true} to usage subscribers only. Returns how many received it.
  std::size_t NotifyRefresh();

  // Removes up to n of the oldest items (n >= 1).
  std::vector<QueueItem> PopOldest(std::size_t n);
  void AddPreload(std::uint64_t n) { preload_remaining_ += n; }
  void ClearQueue();
  std::size_t QueueLength();  // prunes first

  // Registers a subscriber. For usage, `support_refresh` pre-loads {"support_refresh":true}.
  void Subscribe(const std::shared_ptr<Subscriber>& sub, bool support_refresh);
  // Removes it (idempotent); marks it finished and wakes its writer.
  void Unsubscribe(const std::shared_ptr<Subscriber>& sub);
  // Finishes every subscriber (used by "drop all connections"). Not counted as dropped.
  void DropAllSubscribers();
  // Removes every usage subscriber the way an overflow would (flush, then close), without
  // losing a record. Counted in subscribers_dropped. Returns how many were removed.
  std::size_t DropUsageSubscribers();
  // Calls DropUsageSubscribers() right after the next `n` usage payloads have been published
  // (n == 0 cancels a pending request).
  void DropUsageSubscribersAfter(std::uint64_t n) { drop_after_ = n; }

  std::size_t usage_subscribers() const { return usage_subs_.size(); }
  std::size_t error_subscribers() const { return error_subs_.size(); }
  // Largest buffered_messages() among usage subscribers (paced generator).
  std::size_t MaxUsageBufferedMessages() const;
  // Largest buffered_messages() among all subscribers (unpaced generator yields above it).
  std::size_t MaxBufferedMessages() const;
  const HubStats& stats() const { return stats_; }

  // RESP frame of a published message: *3 message <channel> <payload>.
  static void AppendMessageFrame(std::string_view channel, std::string_view payload,
                                 std::string* out);

 private:
  struct Entry {
    QueueItem item;
    Clock::time_point enqueued;
  };
  void Prune(Clock::time_point now);
  // Appends one message to each subscriber of `subs`, dropping the overflowing ones.
  std::size_t Fanout(std::vector<std::shared_ptr<Subscriber>>& subs, std::string_view payload);

  int retention_seconds_;
  PreloadSource preload_source_;
  std::uint64_t preload_remaining_ = 0;
  std::deque<Entry> queue_;
  std::vector<std::shared_ptr<Subscriber>> usage_subs_;
  std::vector<std::shared_ptr<Subscriber>> error_subs_;
  std::uint64_t drop_after_ = 0;  // DropUsageSubscribersAfter countdown, 0 = none
  HubStats stats_;
};

}  // namespace cpamp::sim
