#include <gtest/gtest.h>

#include <herald/common/grpc_status.h>

namespace herald {
namespace {

TEST(GrpcStatusTest, CodesAndMessagesRoundTrip) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status in(static_cast<absl::StatusCode>(code), code == 0 ? "" : "why");
    const grpc::Status g = ToGrpcStatus(in);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(FromGrpcStatus(g), in);
  }
}

TEST(GrpcStatusTest, InvalidArgumentKeepsItsMessage) {
  const grpc::Status g = ToGrpcStatus(absl::InvalidArgumentError("price must be 0 or 300..20000"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(g.error_message(), "price must be 0 or 300..20000");
}

TEST(GrpcStatusTest, NonCanonicalCodeFromAPeerBecomesUnknown) {
  // 20 is representable in grpc::StatusCode but is not a canonical code.
  const absl::Status s = FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "odd"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(s.message(), "odd");
}

}  // namespace
}  // namespace herald
