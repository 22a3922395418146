// Time as an injected dependency (STYLE.md: no hidden clocks), so tests can
// fix or step it. Times are microseconds since the Unix epoch, UTC.
//
// Thread-safety: implementations must be safe to call from any thread.
#ifndef VELLUM_BASE_CLOCK_H_
#define VELLUM_BASE_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace vellum {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t NowMicros() const = 0;
};

// The system's real-time clock. Stateless; SystemClock::Default() is a
// constant, not a mutable global.
class SystemClock final : public Clock {
 public:
  std::int64_t NowMicros() const override;
  static const Clock& Default();
};

// A clock tests set by hand.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t now_micros) : now_(now_micros) {}
  std::int64_t NowMicros() const override { return now_.load(); }
  void Set(std::int64_t now_micros) { now_.store(now_micros); }
  void Advance(std::int64_t micros) { now_.fetch_add(micros); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace vellum

#endif  // VELLUM_BASE_CLOCK_H_
