#include <absl/strings/escaping.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <herald/common/strings.h>
#include <herald/store/crypto.h>

namespace herald::store {
namespace {

constexpr std::string_view kKey =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
// "upstream-key" sealed under kKey in the formats before contexts: with a key id (v2), and the
// same bytes without (v1).
constexpr std::string_view kV2Value =
    "v2:630dcd29:rYeYjrKGovZtVWZrZgqWHiDoGWgjY_b94Mlr4bAQP2rsIrtz-FF8jA";
constexpr std::string_view kV1Value = "v1:rYeYjrKGovZtVWZrZgqWHiDoGWgjY_b94Mlr4bAQP2rsIrtz-FF8jA";
// What the values below are sealed as.
constexpr std::string_view kContext = "team acme/main upstream_api_key";
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

TEST(HmacSha256Hex, Rfc4231Case1AndCase4BinaryKeys) {
  EXPECT_EQ(HmacSha256Hex(std::string(20, '\x0b'), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  std::string key;
  for (char c = 0x01; c <= 0x19; ++c) key.push_back(c);
  EXPECT_EQ(HmacSha256Hex(key, std::string(50, '\xcd')),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

TEST(HmacSha256Hex, Rfc4231Case6KeyLongerThanTheBlockIsHashedFirst) {
  EXPECT_EQ(HmacSha256Hex(std::string(131, '\xaa'),
                          "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Hex, MatchesOpenSslsHmacAroundTheBlockSize) {
  // Keys on both sides of the 64-byte block (padded, or hashed first) and messages of several
  // blocks, against OpenSSL's own HMAC.
  for (size_t key_size : {0, 1, 32, 63, 64, 65, 128, 200}) {
    for (size_t message_size : {0, 1, 55, 56, 64, 600}) {
      const std::string key(key_size, static_cast<char>('a' + key_size % 26));
      const std::string message(message_size, static_cast<char>('0' + message_size % 10));
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int length = 0;
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
      EXPECT_EQ(HmacSha256Hex(key, message),
                absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest),
                                                         static_cast<size_t>(length))))
          << "key " << key_size << " bytes, message " << message_size << " bytes";
    }
  }
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
  const std::string sealed = box->Seal("upstream-key-123", kContext);
  EXPECT_EQ(sealed.find("upstream-key-123"), std::string::npos);
  EXPECT_NE(box->Seal("upstream-key-123", kContext), sealed) << "each seal has a fresh nonce";
  auto opened = box->Open(sealed, kContext);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "upstream-key-123");
}

TEST(SecretBox, RefusesTamperingAndOtherKeys) {
  auto box = SecretBox::FromHexKey(kKey);
  auto other = SecretBox::FromHexKey(std::string(64, 'f'));
  ASSERT_TRUE(box.ok() && other.ok());
  std::string sealed = box->Seal("k", kContext);
  EXPECT_EQ(other->Open(sealed, kContext).status().code(), absl::StatusCode::kFailedPrecondition);
  sealed[sealed.size() - 2] = sealed[sealed.size() - 2] == 'A' ? 'B' : 'A';
  EXPECT_EQ(box->Open(sealed, kContext).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(box->Open("plain", kContext).status().code(), absl::StatusCode::kDataLoss);
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
  const std::string sealed = box->Seal("k", kContext);
  EXPECT_TRUE(sealed.starts_with(StrCat("v3:", box->key_id(), ":"))) << sealed;
  EXPECT_TRUE(box->SealedUnderCurrentKey(sealed));
  auto other = SecretBox::FromHexKey(kOtherKey);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->key_id(), box->key_id());
  EXPECT_FALSE(other->SealedUnderCurrentKey(sealed));
  // A box without the key says which key the value needs.
  auto refused = other->Open(sealed, kContext);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(box->key_id()));
}

TEST(SecretBox, DuringARotationOldValuesOpenAndNewOnesUseTheNewKey) {
  auto old_box = SecretBox::FromHexKey(kKey);
  auto rotating = SecretBox::FromHexKeys(kOtherKey, {std::string(kKey)});
  auto new_box = SecretBox::FromHexKey(kOtherKey);
  ASSERT_TRUE(old_box.ok() && rotating.ok() && new_box.ok());
  const std::string old_value = old_box->Seal("upstream-key", kContext);
  for (const std::string& sealed : {old_value, std::string(kV2Value), std::string(kV1Value)}) {
    SCOPED_TRACE(sealed);
    EXPECT_FALSE(rotating->SealedUnderCurrentKey(sealed));
    auto opened = rotating->Open(sealed, kContext);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, "upstream-key");
    const std::string resealed = rotating->Seal(*opened, kContext);
    EXPECT_TRUE(rotating->SealedUnderCurrentKey(resealed));
    // Once everything is resealed, the old key can go.
    auto reopened = new_box->Open(resealed, kContext);
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    EXPECT_EQ(*reopened, "upstream-key");
    EXPECT_FALSE(new_box->Open(sealed, kContext).ok());
  }
  EXPECT_TRUE(old_box->Open(std::string(kV1Value), kContext).ok());
}

// A value is bound to what it was sealed as: copied to another team, or used as another kind of
// secret, it does not open.
TEST(SecretBox, AValueOpensOnlyInTheContextItWasSealedIn) {
  auto box = SecretBox::FromHexKey(kKey);
  ASSERT_TRUE(box.ok());
  const std::string sealed =
      box->Seal("upstream-key", TeamSecretContext("acme", "main", TeamSecret::kUpstreamApiKey));
  EXPECT_TRUE(sealed.starts_with(StrCat("v3:", box->key_id(), ":"))) << sealed;
  EXPECT_EQ(box->Open(sealed, TeamSecretContext("acme", "main", TeamSecret::kUpstreamApiKey))
                .value_or(""),
            "upstream-key");
  for (const std::string& elsewhere :
       {TeamSecretContext("acme", "other", TeamSecret::kUpstreamApiKey),
        TeamSecretContext("rival", "main", TeamSecret::kUpstreamApiKey),
        TeamSecretContext("acme", "main", TeamSecret::kWebhookSecret), std::string()}) {
    EXPECT_EQ(box->Open(sealed, elsewhere).status().code(), absl::StatusCode::kDataLoss)
        << elsewhere;
  }
  // Values of the formats before contexts open in any (a rotation binds them).
  for (std::string_view context : {kContext, std::string_view("team x/y webhook_secret")}) {
    EXPECT_EQ(box->Open(std::string(kV2Value), context).value_or(""), "upstream-key");
  }
}

}  // namespace
}  // namespace herald::store
