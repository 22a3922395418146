#include "vellum/base/clock.h"

#include <chrono>

namespace vellum {

std::int64_t SystemClock::NowMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const Clock& SystemClock::Default() {
  static const SystemClock clock;
  return clock;
}

}  // namespace vellum
