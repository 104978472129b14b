// Clock: the injectable source of wall-clock time (STYLE habit 10).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace cpamp {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix epoch milliseconds.
  virtual int64_t NowMs() const = 0;
  // Monotonic milliseconds for measuring durations and timeouts.
  virtual int64_t SteadyMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  int64_t SteadyMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock& Instance() {
    static SystemClock clock;
    return clock;
  }
};

// A clock tests move by hand. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_ms = 1750000000000) : now_ms_(now_ms), steady_ms_(1000) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  int64_t SteadyMs() const override { return steady_ms_.load(); }
  void Advance(int64_t ms) {
    now_ms_ += ms;
    steady_ms_ += ms;
  }

 private:
  std::atomic<int64_t> now_ms_;
  std::atomic<int64_t> steady_ms_;
};

}  // namespace cpamp
