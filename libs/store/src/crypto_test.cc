#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/store/crypto.h>

namespace herald::store {
namespace {

constexpr std::string_view kKey =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr std::string_view kOtherKey =
    "f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100";

using ::testing::HasSubstr;

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
  auto previous = SecretBox::FromHexKeys(kKey, {std::string(64, 'a'), "abcd"});
  ASSERT_FALSE(previous.ok());
  EXPECT_EQ(previous.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(previous.status().message()), HasSubstr("previous key 2"));
}

TEST(SecretBox, EachValueNamesItsKey) {
  auto box = SecretBox::FromHexKey(kKey);
  ASSERT_TRUE(box.ok());
  // The id: the first 8 hex characters of SHA-256 of the key's 32 bytes.
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(box->key_id(), Sha256Hex(bytes).substr(0, 8));
  const std::string sealed = box->Seal("k");
  EXPECT_TRUE(sealed.starts_with(StrCat("v2:", box->key_id(), ":"))) << sealed;
  EXPECT_TRUE(box->SealedUnderCurrentKey(sealed));
  auto other = SecretBox::FromHexKey(kOtherKey);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->key_id(), box->key_id());
  EXPECT_FALSE(other->SealedUnderCurrentKey(sealed));
  // A box without the key says which key the value needs.
  auto refused = other->Open(sealed);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(box->key_id()));
}

TEST(SecretBox, DuringARotationOldValuesOpenAndNewOnesUseTheNewKey) {
  auto old_box = SecretBox::FromHexKey(kKey);
  auto rotating = SecretBox::FromHexKeys(kOtherKey, {std::string(kKey)});
  auto new_box = SecretBox::FromHexKey(kOtherKey);
  ASSERT_TRUE(old_box.ok() && rotating.ok() && new_box.ok());
  const std::string old_value = old_box->Seal("upstream-key");
  // The first format (no key id): the same bytes after "v1:".
  const std::string v1_value =
      StrCat("v1:", old_value.substr(std::string_view("v2:").size() + 8 + 1));
  for (const std::string& sealed : {old_value, v1_value}) {
    SCOPED_TRACE(sealed);
    EXPECT_FALSE(rotating->SealedUnderCurrentKey(sealed));
    auto opened = rotating->Open(sealed);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, "upstream-key");
    const std::string resealed = rotating->Seal(*opened);
    EXPECT_TRUE(rotating->SealedUnderCurrentKey(resealed));
    // Once everything is resealed, the old key can go.
    auto reopened = new_box->Open(resealed);
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    EXPECT_EQ(*reopened, "upstream-key");
    EXPECT_FALSE(new_box->Open(sealed).ok());
  }
  EXPECT_TRUE(old_box->Open(v1_value).ok());
}

}  // namespace
}  // namespace herald::store
