#include <string>

#include <absl/strings/str_cat.h>

#include <herald/common/grpc_status.h>
#include <herald/common/retry_info.h>

namespace herald {

static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
              static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
static_assert(static_cast<int>(absl::StatusCode::kDataLoss) ==
              static_cast<int>(grpc::StatusCode::DATA_LOSS));

namespace {

// The message travels percent-encoded in the grpc-message trailer, and a client drops trailers
// over 8 KiB (gRPC's default), reporting RESOURCE_EXHAUSTED instead of the status. A message that
// echoes a caller's oversized value is cut to this many bytes, at a character boundary; what
// it says first (the field and the rule) stays.
constexpr size_t kMaxMessageBytes = 1024;

std::string BoundedMessage(std::string message) {
  if (message.size() <= kMaxMessageBytes) return message;
  size_t cut = kMaxMessageBytes;
  // Back over a character's continuation bytes (three at most: text that is not UTF-8 is cut
  // where it is).
  for (int back = 0; back < 3 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80;
       ++back) {
    --cut;
  }
  const size_t dropped = message.size() - cut;
  message.resize(cut);
  absl::StrAppend(&message, "… (", dropped, " bytes cut)");
  return message;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message = BoundedMessage(std::string(status.message()));
  std::optional<std::string> details = RetryInfoDetails(status);
  if (!details) return grpc::Status(code, std::move(message));
  return grpc::Status(code, std::move(message), *std::move(details));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  // A code outside the canonical range (a misbehaving peer) is reported as UNKNOWN.
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(status.error_message());
  }
  absl::Status out(static_cast<absl::StatusCode>(code), status.error_message());
  AddRetryInfoFromDetails(status.error_details(), out);
  return out;
}

}  // namespace herald
