// Usage queue and Pub/Sub hub.
//
// Design: subscribers receive already-encoded RESP frames appended to one string each, so a
// burst of records costs appends, not allocations, and the writer takes the whole backlog in
// one swap. CPA's Go channel holds 256 messages and its goroutine one more (the message it is
// writing); here `pending_messages` (frames waiting) plus `inflight_messages` (frames of the
// write not yet completed) must stay below 256, so the simulator is as strict as CPA or one
// message stricter, never kinder: a frame leaves the budget only once the kernel has taken
// it, exactly when CPA's goroutine would return from Write. Retention is lazy like CPA's:
// expired items are pruned on the next enqueue or pop.
#include "hub.h"

#include <algorithm>
#include <charconv>

namespace cpamp::sim {
namespace {

constexpr std::string_view kSupportRefresh = R"({"support_refresh":true})";
constexpr std::string_view kRefresh = R"({"refresh":true})";

void AppendBulk(std::string_view s, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), s.size());
  out->push_back('$');
  out->append(buf, r.ptr);
  out->append("\r\n");
  out->append(s);
  out->append("\r\n");
}

void Finish(const std::shared_ptr<Subscriber>& sub) {
  sub->finished = true;
  if (sub->wake) sub->wake();
}

}  // namespace

UsageHub::UsageHub(int retention_seconds, PreloadSource preload_source)
    : retention_seconds_(ClampRetention(retention_seconds)),
      preload_source_(std::move(preload_source)) {}

int UsageHub::ClampRetention(int seconds) {
  if (seconds <= 0) return 60;
  return std::min(seconds, 3600);
}

int UsageHub::SetRetention(int seconds) {
  retention_seconds_ = ClampRetention(seconds);
  return retention_seconds_;
}

void UsageHub::AppendMessageFrame(std::string_view channel, std::string_view payload,
                                  std::string* out) {
  out->append("*3\r\n$7\r\nmessage\r\n");
  AppendBulk(channel, out);
  AppendBulk(payload, out);
}

std::size_t UsageHub::Fanout(std::vector<std::shared_ptr<Subscriber>>& subs,
                             std::string_view payload) {
  std::size_t delivered = 0;
  for (auto it = subs.begin(); it != subs.end();) {
    const auto& sub = *it;
    if (sub->buffered_messages() >= kSubscriberBufferMessages) {
      ++stats_.overflow_lost;
      ++stats_.subscribers_dropped;
      Finish(sub);
      it = subs.erase(it);
      continue;
    }
    AppendMessageFrame(sub->channel_echo, payload, &sub->pending);
    ++sub->pending_messages;
    ++delivered;
    if (sub->wake) sub->wake();
    ++it;
  }
  return delivered;
}

bool UsageHub::PublishUsage(std::string payload, bool valid_json) {
  if (payload.empty()) return false;
  ++stats_.produced;
  bool accepted = true;
  if (!usage_subs_.empty()) {
    std::size_t n = Fanout(usage_subs_, payload);
    stats_.delivered += n;
    accepted = n > 0;
  } else {
    const auto now = Clock::now();
    Prune(now);
    queue_.push_back(Entry{QueueItem{std::move(payload), valid_json}, now});
    ++stats_.queued;
  }
  if (drop_after_ > 0 && --drop_after_ == 0) DropUsageSubscribers();
  return accepted;
}

void UsageHub::PublishError(std::string_view payload) {
  if (payload.empty() || error_subs_.empty()) return;
  stats_.error_events += Fanout(error_subs_, payload);
}

std::size_t UsageHub::NotifyRefresh() {
  std::size_t n = Fanout(usage_subs_, kRefresh);
  stats_.refresh_sent += n;
  return n;
}

void UsageHub::Prune(Clock::time_point now) {
  const auto cutoff = now - std::chrono::seconds(retention_seconds_);
  while (!queue_.empty() && queue_.front().enqueued < cutoff) {
    queue_.pop_front();
    ++stats_.expired;
  }
}

std::vector<QueueItem> UsageHub::PopOldest(std::size_t n) {
  std::vector<QueueItem> out;
  Prune(Clock::now());
  out.reserve(std::min<std::size_t>(n, preload_remaining_ + queue_.size()));
  while (out.size() < n && preload_remaining_ > 0) {
    QueueItem item;
    preload_source_(&item.payload);
    out.push_back(std::move(item));
    --preload_remaining_;
  }
  while (out.size() < n && !queue_.empty()) {
    out.push_back(std::move(queue_.front().item));
    queue_.pop_front();
  }
  stats_.popped += out.size();
  return out;
}

void UsageHub::ClearQueue() {
  queue_.clear();
  preload_remaining_ = 0;
}

std::size_t UsageHub::QueueLength() {
  Prune(Clock::now());
  return queue_.size() + static_cast<std::size_t>(preload_remaining_);
}

void UsageHub::Subscribe(const std::shared_ptr<Subscriber>& sub, bool support_refresh) {
  if (sub->channel == Channel::kUsage) {
    if (support_refresh) {
      AppendMessageFrame(sub->channel_echo, kSupportRefresh, &sub->pending);
      ++sub->pending_messages;
    }
    usage_subs_.push_back(sub);
  } else {
    error_subs_.push_back(sub);
  }
  if (sub->wake) sub->wake();
}

void UsageHub::Unsubscribe(const std::shared_ptr<Subscriber>& sub) {
  auto& subs = sub->channel == Channel::kUsage ? usage_subs_ : error_subs_;
  subs.erase(std::remove(subs.begin(), subs.end(), sub), subs.end());
  if (!sub->finished) Finish(sub);
}

void UsageHub::DropAllSubscribers() {
  auto usage = std::move(usage_subs_);
  auto errors = std::move(error_subs_);
  usage_subs_.clear();
  error_subs_.clear();
  for (const auto& s : usage) Finish(s);
  for (const auto& s : errors) Finish(s);
}

std::size_t UsageHub::DropUsageSubscribers() {
  auto usage = std::move(usage_subs_);
  usage_subs_.clear();
  for (const auto& s : usage) Finish(s);
  stats_.subscribers_dropped += usage.size();
  return usage.size();
}

std::size_t UsageHub::MaxUsageBufferedMessages() const {
  std::size_t m = 0;
  for (const auto& s : usage_subs_) m = std::max(m, s->buffered_messages());
  return m;
}

std::size_t UsageHub::MaxBufferedMessages() const {
  std::size_t m = MaxUsageBufferedMessages();
  for (const auto& s : error_subs_) m = std::max(m, s->buffered_messages());
  return m;
}

}  // namespace cpamp::sim
