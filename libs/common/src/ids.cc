#include <array>

#include <herald/common/ids.h>

namespace herald {
namespace {

constexpr std::string_view kAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";

// Maps a character to its 5-bit value, or -1.
constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  }
  return table;
}
constexpr std::array<int8_t, 256> kDecode = MakeDecodeTable();

}  // namespace

IdGenerator::IdGenerator(const Clock& clock) : clock_(clock) {}

std::string IdGenerator::Next() {
  uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(clock_.Now()));
  uint16_t hi;
  uint64_t lo;
  {
    absl::MutexLock lock(&mu_);
    if (ms <= last_ms_) {
      // Same millisecond (or the clock stepped back): count up from the previous id so ids
      // stay strictly increasing. An 80-bit carry out would need 2^80 ids in one millisecond.
      ms = last_ms_;
      if (++rand_lo_ == 0) ++rand_hi_;
    } else {
      last_ms_ = ms;
      rand_hi_ = absl::Uniform<uint16_t>(random_);
      rand_lo_ = absl::Uniform<uint64_t>(random_);
    }
    hi = rand_hi_;
    lo = rand_lo_;
  }

  std::string id(kIdLength, '0');
  ms &= (uint64_t{1} << 48) - 1;
  for (int i = 9; i >= 0; --i) {
    id[static_cast<size_t>(i)] = kAlphabet[ms & 31];
    ms >>= 5;
  }
  // 80 random bits = 16 characters of 5 bits, least significant last.
  for (int i = 25; i >= 10; --i) {
    id[static_cast<size_t>(i)] = kAlphabet[lo & 31];
    lo = (lo >> 5) | (static_cast<uint64_t>(hi & 31) << 59);
    hi = static_cast<uint16_t>(hi >> 5);
  }
  return id;
}

bool IsValidId(std::string_view id) {
  if (id.size() != kIdLength) return false;
  for (char c : id) {
    if (kDecode[static_cast<unsigned char>(c)] < 0) return false;
  }
  // 10 characters carry 50 bits; a 48-bit timestamp leaves the first character at most '7'.
  return kDecode[static_cast<unsigned char>(id[0])] < 8;
}

uint64_t IdTimestampMillis(std::string_view id) {
  uint64_t ms = 0;
  for (size_t i = 0; i < 10 && i < id.size(); ++i) {
    ms = (ms << 5) | static_cast<uint64_t>(kDecode[static_cast<unsigned char>(id[i])] & 31);
  }
  return ms;
}

}  // namespace herald
