#include "client_metrics.h"

#include <gtest/gtest.h>

namespace herald::upstream::internal {
namespace {

TEST(CodeLabelTest, TheContractsStatusesByNumberOthersByClass) {
  EXPECT_EQ(CodeLabel(200), "200");
  EXPECT_EQ(CodeLabel(402), "402");
  EXPECT_EQ(CodeLabel(429), "429");
  EXPECT_EQ(CodeLabel(503), "503");
  EXPECT_EQ(CodeLabel(418), "4xx");
  EXPECT_EQ(CodeLabel(599), "5xx");
  EXPECT_EQ(CodeLabel(302), "3xx");
  EXPECT_EQ(CodeLabel(99), "other");
  EXPECT_EQ(CodeLabel(600), "other");
  EXPECT_EQ(CodeLabel(999), "other");
}

}  // namespace
}  // namespace herald::upstream::internal
