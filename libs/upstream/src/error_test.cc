#include <gtest/gtest.h>

#include <herald/upstream/error.h>

namespace herald::upstream {
namespace {

TEST(UpstreamError, RoundTripsThroughTheStatusPayload) {
  const absl::Status status =
      MakeUpstreamStatus(absl::StatusCode::kResourceExhausted, "rate limited",
                         {.kind = ErrorKind::kRateLimited,
                          .http_status = 429,
                          .code = "too_many\nlines",
                          .retry_after = absl::Milliseconds(1500),
                          .request_written = true});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(std::string(status.message()), "rate limited");
  const std::optional<UpstreamError> error = GetUpstreamError(status);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->kind, ErrorKind::kRateLimited);
  EXPECT_EQ(error->http_status, 429);
  EXPECT_EQ(error->code, "too_many lines");
  EXPECT_EQ(error->retry_after, absl::Milliseconds(1500));
  EXPECT_TRUE(error->request_written);
}

TEST(UpstreamError, EveryKindRoundTrips) {
  for (ErrorKind kind :
       {ErrorKind::kRetryable, ErrorKind::kRateLimited, ErrorKind::kOutOfCredits,
        ErrorKind::kUnauthorized, ErrorKind::kTerminal, ErrorKind::kUnknownOutcome}) {
    const absl::Status status = MakeUpstreamStatus(absl::StatusCode::kUnknown, "x", {.kind = kind});
    ASSERT_TRUE(GetUpstreamError(status).has_value());
    EXPECT_EQ(GetUpstreamError(status)->kind, kind) << ErrorKindName(kind);
    EXPECT_FALSE(GetUpstreamError(status)->request_written);
  }
}

TEST(UpstreamError, AStampSaysWhenAndWithWhichKeyTheCallWasMadeAndKeepsTheRest) {
  const absl::Status refused = MakeUpstreamStatus(
      absl::StatusCode::kFailedPrecondition, "no credits",
      {.kind = ErrorKind::kOutOfCredits, .http_status = 402, .request_written = true});
  EXPECT_EQ(GetUpstreamError(refused)->asked_at, absl::InfinitePast());
  EXPECT_EQ(GetUpstreamError(refused)->key_id, "");

  const absl::Time asked = absl::FromUnixMillis(1'790'000'000'123);
  const absl::Status stamped = StampCall(refused, asked, "k1");
  EXPECT_EQ(stamped.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(stamped.message()), "no credits");
  const std::optional<UpstreamError> error = GetUpstreamError(stamped);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->asked_at, asked);
  EXPECT_EQ(error->key_id, "k1");
  EXPECT_EQ(error->kind, ErrorKind::kOutOfCredits);
  EXPECT_EQ(error->http_status, 402);
  EXPECT_TRUE(error->request_written);

  const absl::Status local = absl::UnavailableError("redis");
  EXPECT_EQ(StampCall(local, asked, "k1"), local);  // not an upstream error: as it was
}

TEST(UpstreamError, AbsentForOtherStatuses) {
  EXPECT_FALSE(GetUpstreamError(absl::OkStatus()).has_value());
  EXPECT_FALSE(GetUpstreamError(absl::UnavailableError("redis")).has_value());
}

TEST(UpstreamError, TransientAreFailuresARetryMayGetPast) {
  EXPECT_TRUE(IsTransient(std::nullopt));  // a local failure
  EXPECT_TRUE(IsTransient(UpstreamError{.kind = ErrorKind::kRetryable}));
  EXPECT_TRUE(IsTransient(UpstreamError{.kind = ErrorKind::kUnknownOutcome}));
  for (ErrorKind kind : {ErrorKind::kRateLimited, ErrorKind::kOutOfCredits,
                         ErrorKind::kUnauthorized, ErrorKind::kTerminal}) {
    EXPECT_FALSE(IsTransient(UpstreamError{.kind = kind})) << ErrorKindName(kind);
  }
}

TEST(UpstreamError, A404SaysWhetherTheAccountOrWhatItNamedIsMissing) {
  const UpstreamError message{
      .kind = ErrorKind::kTerminal, .http_status = 404, .code = "message_not_found"};
  const UpstreamError account{
      .kind = ErrorKind::kTerminal, .http_status = 404, .code = "account_not_found"};
  const UpstreamError uncoded{.kind = ErrorKind::kTerminal, .http_status = 404};
  const UpstreamError refused{
      .kind = ErrorKind::kTerminal, .http_status = 422, .code = "account_not_found"};
  EXPECT_TRUE(IsNotFoundInAccount(message));
  EXPECT_TRUE(IsNotFoundInAccount(uncoded));
  EXPECT_FALSE(IsNotFoundInAccount(account));
  EXPECT_FALSE(IsNotFoundInAccount(refused));
  EXPECT_FALSE(IsNotFoundInAccount(std::nullopt));
  EXPECT_TRUE(IsAccountNotFound(account));
  EXPECT_FALSE(IsAccountNotFound(message));
  EXPECT_FALSE(IsAccountNotFound(refused));
  EXPECT_FALSE(IsAccountNotFound(std::nullopt));
}

TEST(UpstreamError, KindNames) {
  EXPECT_EQ(ErrorKindName(ErrorKind::kRetryable), "retryable");
  EXPECT_EQ(ErrorKindName(ErrorKind::kRateLimited), "rate_limited");
  EXPECT_EQ(ErrorKindName(ErrorKind::kOutOfCredits), "out_of_credits");
  EXPECT_EQ(ErrorKindName(ErrorKind::kUnauthorized), "unauthorized");
  EXPECT_EQ(ErrorKindName(ErrorKind::kTerminal), "terminal");
  EXPECT_EQ(ErrorKindName(ErrorKind::kUnknownOutcome), "unknown_outcome");
}

}  // namespace
}  // namespace herald::upstream
