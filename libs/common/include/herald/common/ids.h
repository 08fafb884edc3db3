// Sortable unique identifiers.
//
// Herald ids are ULIDs written in lowercase Crockford base32: 26 characters, the first 10
// encode the creation time in milliseconds, the last 16 are random. Ids sort by creation time
// as plain strings, are safe in resource names and Redis keys, and a generator never returns
// the same id twice (within one millisecond it counts up instead of drawing a new random part).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <absl/base/thread_annotations.h>
#include <absl/random/random.h>
#include <absl/synchronization/mutex.h>

#include <herald/common/clock.h>

namespace herald {

inline constexpr size_t kIdLength = 26;

// Thread-safe generator of ids. The clock must outlive the generator.
class IdGenerator {
 public:
  explicit IdGenerator(const Clock& clock = SystemClock::Get());

  // A new id, strictly greater than every id this generator returned before.
  std::string Next();

 private:
  const Clock& clock_;
  absl::Mutex mu_;
  absl::BitGen random_ ABSL_GUARDED_BY(mu_);
  uint64_t last_ms_ ABSL_GUARDED_BY(mu_) = 0;
  // The 80-bit random part: 16 high bits and 64 low bits.
  uint16_t rand_hi_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rand_lo_ ABSL_GUARDED_BY(mu_) = 0;
};

// True if `id` has the shape of a Herald id (26 lowercase Crockford base32 characters, with a
// timestamp that fits 48 bits).
bool IsValidId(std::string_view id);

// The creation time encoded in a valid id, in Unix milliseconds.
uint64_t IdTimestampMillis(std::string_view id);

}  // namespace herald
