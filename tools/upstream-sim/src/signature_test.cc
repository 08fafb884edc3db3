#include <gtest/gtest.h>

#include <herald/upstream_sim/signature.h>

namespace herald::upstream_sim {
namespace {

// RFC 4231 test cases 1 and 2.
TEST(SignatureTest, MatchesRfc4231Vectors) {
  EXPECT_EQ(HmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SignatureTest, DependsOnEveryByteOfTheBody) {
  const std::string a = HmacSha256Hex("secret", R"({"event":"messages.sent"})");
  const std::string b = HmacSha256Hex("secret", R"({"event":"messages.sent"} )");
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, b);
  EXPECT_NE(a, HmacSha256Hex("other", R"({"event":"messages.sent"})"));
}

}  // namespace
}  // namespace herald::upstream_sim
