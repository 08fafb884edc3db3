#include <herald/common/clock.h>

namespace herald {

const SystemClock& SystemClock::Get() {
  static const SystemClock* const clock = new SystemClock();
  return *clock;
}

}  // namespace herald
