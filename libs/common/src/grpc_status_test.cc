#include <string>

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

TEST(GrpcStatusTest, AnOversizedMessageIsCutAtACharacterBoundaryKeepingItsStart) {
  // A caller's 10 KB name echoed back would exceed the client's trailer limit.
  const std::string echoed(10'000, 'a');
  const grpc::Status g =
      ToGrpcStatus(absl::InvalidArgumentError("campaign.targets[0].account: '" + echoed + "'"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(g.error_message().size(), 1100u);
  EXPECT_TRUE(g.error_message().starts_with("campaign.targets[0].account: 'aaa"));
  EXPECT_TRUE(g.error_message().ends_with(" bytes cut)")) << g.error_message();

  // Two-byte characters straddling the limit: no half character is left before the cut.
  std::string accented;
  while (accented.size() < 2000) accented += "\xc3\xa9";
  const std::string cut = ToGrpcStatus(absl::InvalidArgumentError("x" + accented)).error_message();
  const size_t end = cut.find("… (");
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(end % 2, 1u) << "'x' then whole two-byte characters";
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError(std::string(1024, 'b'))).error_message(),
            std::string(1024, 'b'))
      << "a message at the limit is kept whole";
  // Text that is not UTF-8 (an upstream's bytes echoed) is cut near the limit, not emptied.
  const std::string junk =
      ToGrpcStatus(absl::InvalidArgumentError("field: " + std::string(2000, '\x80')))
          .error_message();
  EXPECT_TRUE(junk.starts_with("field: "));
  EXPECT_GE(junk.find("… ("), 1021u);
}

TEST(GrpcStatusTest, ARetryDelayTravelsAsTheStandardDetail) {
  const absl::Status limited = WithRetryInfo(absl::ResourceExhaustedError("over quota"),
                                             absl::Seconds(2) + absl::Milliseconds(250));
  EXPECT_EQ(RetryDelayOf(limited), absl::Seconds(2) + absl::Milliseconds(250));
  const grpc::Status g = ToGrpcStatus(limited);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(g.error_message(), "over quota");
  EXPECT_FALSE(g.error_details().empty());
  const absl::Status back = FromGrpcStatus(g);
  EXPECT_EQ(back.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(back.message(), "over quota");
  EXPECT_EQ(RetryDelayOf(back), absl::Seconds(2) + absl::Milliseconds(250));

  // None given, none read; details that do not parse are ignored.
  EXPECT_EQ(RetryDelayOf(absl::ResourceExhaustedError("too big")), std::nullopt);
  EXPECT_TRUE(ToGrpcStatus(absl::ResourceExhaustedError("too big")).error_details().empty());
  EXPECT_EQ(RetryDelayOf(FromGrpcStatus(
                grpc::Status(grpc::StatusCode::UNAVAILABLE, "down", std::string("\xff\xff", 2)))),
            std::nullopt);
}

TEST(GrpcStatusTest, NonCanonicalCodeFromAPeerBecomesUnknown) {
  // 20 is representable in grpc::StatusCode but is not a canonical code.
  const absl::Status s = FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "odd"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(s.message(), "odd");
}

}  // namespace
}  // namespace herald
