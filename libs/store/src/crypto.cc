#include <memory>

#include <absl/strings/escaping.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <herald/common/strings.h>
#include <herald/store/crypto.h>

namespace herald::store {
namespace {

constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;
constexpr std::string_view kSealVersion = "v1:";

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

const unsigned char* U(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* U(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(U(data), data.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string RandomToken(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  if (RAND_bytes(U(raw), bytes) != 1) std::abort();  // no randomness: nothing safe to do
  return absl::WebSafeBase64Escape(raw);
}

std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(length)));
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

absl::StatusOr<SecretBox> SecretBox::FromHexKey(std::string_view key_hex) {
  if (key_hex.size() != 64 ||
      key_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
    return absl::InvalidArgumentError("the encryption key must be 64 hex characters (32 bytes)");
  }
  return SecretBox(absl::HexStringToBytes(ToAbsl(key_hex)));
}

std::string SecretBox::Seal(std::string_view plaintext) const {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  if (RAND_bytes(U(out), kNonceBytes) != 1) std::abort();
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  unsigned char* cipher = U(out) + kNonceBytes;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key_), U(out)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), cipher, &len, U(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), cipher + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, cipher + plaintext.size()) !=
          1) {
    std::abort();  // OpenSSL failing on valid input is not recoverable
  }
  return StrCat(kSealVersion, absl::WebSafeBase64Escape(out));
}

absl::StatusOr<std::string> SecretBox::Open(std::string_view sealed) const {
  const absl::Status bad = absl::DataLossError("sealed secret cannot be opened with this key");
  if (!sealed.starts_with(kSealVersion)) return bad;
  std::string raw;
  if (!absl::WebSafeBase64Unescape(ToAbsl(sealed.substr(kSealVersion.size())), &raw) ||
      raw.size() < kNonceBytes + kTagBytes) {
    return bad;
  }
  const size_t text_size = raw.size() - kNonceBytes - kTagBytes;
  std::string plain(text_size, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const unsigned char* cipher = U(raw) + kNonceBytes;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key_), U(raw)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), U(plain), &len, cipher, static_cast<int>(text_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          const_cast<unsigned char*>(cipher + text_size)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), U(plain) + len, &len) != 1) {
    return bad;
  }
  return plain;
}

}  // namespace herald::store
