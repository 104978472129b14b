// Design note: upstream CPAMP lets anyone guess admin keys at full speed; we slow guessing down
// per client address. Each address has one entry: failures counted since the first failure of
// the current window, and a lock deadline. Failures up to free_failures cost nothing (typos);
// after that each failure earns base_delay_ms doubling per further failure, capped at
// max_delay_ms; reaching lockout_failures inside window_ms locks the address for lockout_ms, and
// Check() then tells the caller to answer 429 without even hashing the key. An entry expires
// when both its window and its lock have passed, and is then forgotten on next touch.
// Memory is bounded: entries sit in an LRU list; when the table is full, expired entries at the
// cold end are dropped first, then the least recently touched one. Time is the injected clock's
// monotonic SteadyMs(), so wall-clock jumps neither lift nor extend a lockout.
#include <algorithm>

#include "security/security.h"

namespace cpamp::security {

LoginThrottle::LoginThrottle(const Clock& clock, ThrottlePolicy policy)
    : clock_(clock), policy_(policy) {}

bool LoginThrottle::Expired(const Entry& e, int64_t now) const {
  return now >= e.window_start_ms + policy_.window_ms && now >= e.locked_until_ms;
}

ThrottleDecision LoginThrottle::Locked(const Entry& e, int64_t now) const {
  ThrottleDecision d;
  if (e.locked_until_ms > now) {
    d.locked_out = true;
    d.retry_after_s = std::max<int64_t>(1, (e.locked_until_ms - now + 999) / 1000);
  }
  return d;
}

void LoginThrottle::Erase(std::unordered_map<std::string, Entry>::iterator it) {
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void LoginThrottle::MakeRoom(int64_t now) {
  while (!lru_.empty()) {
    auto coldest = entries_.find(lru_.front());
    if (!Expired(coldest->second, now)) break;
    Erase(coldest);
  }
  const size_t limit = std::max<size_t>(1, policy_.max_tracked_addresses);
  while (entries_.size() >= limit) Erase(entries_.find(lru_.front()));
}

ThrottleDecision LoginThrottle::Check(const std::string& address) {
  const int64_t now = clock_.SteadyMs();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(address);
  if (it == entries_.end()) return {};
  if (Expired(it->second, now)) {
    Erase(it);
    return {};
  }
  return Locked(it->second, now);
}

ThrottleDecision LoginThrottle::RecordFailure(const std::string& address) {
  const int64_t now = clock_.SteadyMs();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(address);
  if (it != entries_.end() && Expired(it->second, now)) {
    Erase(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    MakeRoom(now);
    lru_.push_back(address);
    it = entries_.emplace(address, Entry{0, now, 0, std::prev(lru_.end())}).first;
  } else {
    lru_.splice(lru_.end(), lru_, it->second.lru);
  }
  Entry& e = it->second;
  // Attempts racing past Check() while locked neither count nor extend the lock.
  if (e.locked_until_ms > now) return Locked(e, now);
  if (e.locked_until_ms != 0) {
    // The lock has passed but the window has not: start afresh rather than relocking at once.
    e = Entry{0, now, 0, e.lru};
  }

  ++e.failures;
  ThrottleDecision d;
  const int over = e.failures - policy_.free_failures;
  if (over > 0) {
    int64_t delay = policy_.base_delay_ms;
    for (int i = 1; i < over && delay < policy_.max_delay_ms; ++i) delay *= 2;
    d.delay_ms = std::min(delay, policy_.max_delay_ms);
  }
  if (e.failures >= policy_.lockout_failures) {
    e.locked_until_ms = now + policy_.lockout_ms;
    ThrottleDecision locked = Locked(e, now);
    d.locked_out = locked.locked_out;
    d.retry_after_s = locked.retry_after_s;
  }
  return d;
}

void LoginThrottle::RecordSuccess(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(address);
  if (it != entries_.end()) Erase(it);
}

size_t LoginThrottle::TrackedAddresses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace cpamp::security
