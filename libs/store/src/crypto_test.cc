#include <gtest/gtest.h>

#include <herald/store/crypto.h>

namespace herald::store {
namespace {

constexpr std::string_view kKey =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

TEST(Sha256Hex, KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HmacSha256Hex, Rfc4231Case2) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(RandomToken, LengthAndUniqueness) {
  const std::string a = RandomToken(32), b = RandomToken(32);
  EXPECT_EQ(a.size(), 43u);
  EXPECT_NE(a, b);
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secrets"));
}

TEST(SecretBox, SealsAndOpens) {
  auto box = SecretBox::FromHexKey(kKey);
  ASSERT_TRUE(box.ok()) << box.status();
  const std::string sealed = box->Seal("upstream-key-123");
  EXPECT_EQ(sealed.find("upstream-key-123"), std::string::npos);
  EXPECT_NE(box->Seal("upstream-key-123"), sealed) << "each seal has a fresh nonce";
  auto opened = box->Open(sealed);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "upstream-key-123");
}

TEST(SecretBox, RefusesTamperingAndOtherKeys) {
  auto box = SecretBox::FromHexKey(kKey);
  auto other = SecretBox::FromHexKey(std::string(64, 'f'));
  ASSERT_TRUE(box.ok() && other.ok());
  std::string sealed = box->Seal("k");
  EXPECT_EQ(other->Open(sealed).status().code(), absl::StatusCode::kDataLoss);
  sealed[sealed.size() - 2] = sealed[sealed.size() - 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(box->Open(sealed).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(box->Open("plain").status().code(), absl::StatusCode::kDataLoss);
}

TEST(SecretBox, KeyMustBe32HexBytes) {
  EXPECT_FALSE(SecretBox::FromHexKey("abcd").ok());
  EXPECT_FALSE(SecretBox::FromHexKey(std::string(64, 'z')).ok());
}

}  // namespace
}  // namespace herald::store
