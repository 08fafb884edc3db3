#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <absl/strings/cord.h>

#include <herald/common/retry_info.h>

namespace herald {

namespace {

constexpr char kRetryInfoType[] = "type.googleapis.com/google.rpc.RetryInfo";

// Protocol buffer wire format, for the small googleapis messages below (Debian ships no
// generated code for google/rpc/*.proto):
//   google.rpc.Status { int32 code = 1; string message = 2; repeated google.protobuf.Any
//                       details = 3; }
//   google.protobuf.Any { string type_url = 1; bytes value = 2; }
//   google.rpc.RetryInfo { google.protobuf.Duration retry_delay = 1; }
//   google.protobuf.Duration { int64 seconds = 1; int32 nanos = 2; }
void AppendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void AppendBytes(std::string& out, int field, std::string_view bytes) {
  AppendVarint(out, static_cast<uint64_t>(field) << 3 | 2);
  AppendVarint(out, bytes.size());
  out.append(bytes);
}
void AppendInt(std::string& out, int field, int64_t v) {
  if (v == 0) return;
  AppendVarint(out, static_cast<uint64_t>(field) << 3);
  AppendVarint(out, static_cast<uint64_t>(v));
}

// One field of a message: its number, and its value (a varint, or length-delimited bytes).
struct WireField {
  int number = 0;
  uint64_t varint = 0;
  std::string_view bytes;
};

// Reads a message's fields in order.
class WireReader {
 public:
  explicit WireReader(std::string_view in) : in_(in) {}

  // The next varint or length-delimited field (fixed-width ones are skipped); nullopt at the
  // end, and from the first malformed byte on.
  std::optional<WireField> Next() {
    while (!in_.empty()) {
      uint64_t key = 0;
      if (!Varint(key)) return Stop();
      WireField field{.number = static_cast<int>(key >> 3)};
      switch (key & 7) {
        case 0:
          if (!Varint(field.varint)) return Stop();
          return field;
        case 1:
          if (!Skip(8)) return Stop();
          continue;
        case 2: {
          uint64_t size = 0;
          if (!Varint(size) || size > in_.size()) return Stop();
          field.bytes = in_.substr(0, size);
          in_.remove_prefix(size);
          return field;
        }
        case 5:
          if (!Skip(4)) return Stop();
          continue;
        default:
          return Stop();
      }
    }
    return std::nullopt;
  }

 private:
  std::optional<WireField> Stop() {
    in_ = {};
    return std::nullopt;
  }
  bool Varint(uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64 && !in_.empty(); shift += 7) {
      const auto byte = static_cast<uint8_t>(in_.front());
      in_.remove_prefix(1);
      out |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }
  bool Skip(size_t n) {
    if (in_.size() < n) return false;
    in_.remove_prefix(n);
    return true;
  }
  std::string_view in_;
};

// The RetryInfo payload in google.rpc.Status `details`; empty when there is none.
std::string RetryInfoIn(std::string_view details) {
  WireReader status(details);
  while (const std::optional<WireField> detail = status.Next()) {
    if (detail->number != 3) continue;  // details: google.protobuf.Any
    std::string_view type_url, value;
    WireReader any(detail->bytes);
    while (const std::optional<WireField> field = any.Next()) {
      if (field->number == 1) type_url = field->bytes;
      if (field->number == 2) value = field->bytes;
    }
    if (type_url == kRetryInfoType) return std::string(value);
  }
  return {};
}

}  // namespace

absl::Status WithRetryInfo(absl::Status status, absl::Duration delay) {
  const int64_t seconds = absl::IDivDuration(delay, absl::Seconds(1), &delay);
  std::string duration;
  AppendInt(duration, 1, seconds);
  AppendInt(duration, 2, absl::ToInt64Nanoseconds(delay));
  std::string retry_info;
  AppendBytes(retry_info, 1, duration);
  status.SetPayload(kRetryInfoType, absl::Cord(retry_info));
  return status;
}

std::optional<absl::Duration> RetryDelayOf(const absl::Status& status) {
  const auto retry_info = status.GetPayload(kRetryInfoType);
  if (!retry_info.has_value()) return std::nullopt;
  const std::string flat(*retry_info);
  WireReader reader(flat);
  while (const std::optional<WireField> field = reader.Next()) {
    if (field->number != 1) continue;  // retry_delay: google.protobuf.Duration
    absl::Duration delay;
    WireReader duration(field->bytes);
    while (const std::optional<WireField> part = duration.Next()) {
      if (part->number == 1) delay += absl::Seconds(static_cast<int64_t>(part->varint));
      if (part->number == 2) delay += absl::Nanoseconds(static_cast<int64_t>(part->varint));
    }
    return delay;
  }
  return absl::ZeroDuration();  // RetryInfo without a delay: retry at once
}

std::optional<std::string> RetryInfoDetails(const absl::Status& status) {
  const auto retry_info = status.GetPayload(kRetryInfoType);
  if (!retry_info.has_value()) return std::nullopt;
  std::string any;
  AppendBytes(any, 1, kRetryInfoType);
  AppendBytes(any, 2, std::string(*retry_info));
  std::string details;
  AppendInt(details, 1, static_cast<int64_t>(status.code()));
  AppendBytes(details, 2, std::string_view(status.message().data(), status.message().size()));
  AppendBytes(details, 3, any);
  return details;
}

void AddRetryInfoFromDetails(std::string_view details, absl::Status& status) {
  if (std::string retry_info = RetryInfoIn(details); !retry_info.empty()) {
    status.SetPayload(kRetryInfoType, absl::Cord(std::move(retry_info)));
  }
}

}  // namespace herald
