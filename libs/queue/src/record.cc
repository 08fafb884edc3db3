#include <charconv>

#include <herald/queue/record.h>

namespace herald::queue {
namespace {

// Reads a length-prefixed name at `pos`; advances `pos` past it.
bool ReadName(std::string_view in, size_t& pos, std::string_view& out) {
  if (pos >= in.size()) return false;
  const size_t n = static_cast<unsigned char>(in[pos]);
  ++pos;
  if (n == 0 || in.size() - pos < n) return false;
  out = in.substr(pos, n);
  pos += n;
  return true;
}

// Reads decimal digits up to a ':' at `pos`; advances `pos` past the ':'.
bool ReadNumber(std::string_view in, size_t& pos, int64_t& out) {
  const size_t colon = in.find(':', pos);
  if (colon == std::string_view::npos || colon == pos) return false;
  const char* first = in.data() + pos;
  const char* last = in.data() + colon;
  const auto [end, ec] = std::from_chars(first, last, out);
  if (ec != std::errc() || end != last || out < 0) return false;
  pos = colon + 1;
  return true;
}

}  // namespace

std::optional<JobRecord> DecodeJobRecord(std::string_view in) {
  JobRecord r;
  if (in.empty() || (in[0] != '0' && in[0] != '1')) return std::nullopt;
  r.previous_outcome_unknown = in[0] == '1';
  size_t pos = 1;
  int64_t reason_length = 0;
  if (!ReadName(in, pos, r.kind) || !ReadName(in, pos, r.account) ||
      !ReadNumber(in, pos, r.failed_attempts) || !ReadNumber(in, pos, r.max_attempts) ||
      !ReadNumber(in, pos, r.ready_ms) || !ReadNumber(in, pos, r.dead_ms) ||
      !ReadNumber(in, pos, reason_length)) {
    return std::nullopt;
  }
  if (static_cast<uint64_t>(reason_length) > in.size() - pos) return std::nullopt;
  r.reason = in.substr(pos, static_cast<size_t>(reason_length));
  r.payload = in.substr(pos + static_cast<size_t>(reason_length));
  return r;
}

}  // namespace herald::queue
