#include <algorithm>
#include <memory>
#include <optional>

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

namespace {

constexpr std::string_view kSealV1 = "v1:";
constexpr std::string_view kSealV2 = "v2:";
constexpr size_t kKeyIdSize = 8;

absl::StatusOr<std::string> KeyBytes(std::string_view key_hex) {
  if (key_hex.size() != 64 ||
      key_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
    return absl::InvalidArgumentError("the encryption key must be 64 hex characters (32 bytes)");
  }
  return absl::HexStringToBytes(ToAbsl(key_hex));
}

std::string Seal(const std::string& key, std::string_view plaintext) {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  if (RAND_bytes(U(out), kNonceBytes) != 1) std::abort();
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  unsigned char* cipher = U(out) + kNonceBytes;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key), U(out)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), cipher, &len, U(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), cipher + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, cipher + plaintext.size()) !=
          1) {
    std::abort();  // OpenSSL failing on valid input is not recoverable
  }
  return absl::WebSafeBase64Escape(out);
}

// The plaintext of nonce || ciphertext || tag under `key`; nullopt when it does not authenticate.
std::optional<std::string> Open(const std::string& key, std::string_view raw) {
  if (raw.size() < kNonceBytes + kTagBytes) return std::nullopt;
  const size_t text_size = raw.size() - kNonceBytes - kTagBytes;
  std::string plain(text_size, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const unsigned char* cipher = U(raw) + kNonceBytes;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key), U(raw)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), U(plain), &len, cipher, static_cast<int>(text_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          const_cast<unsigned char*>(cipher + text_size)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), U(plain) + len, &len) != 1) {
    return std::nullopt;
  }
  return plain;
}

}  // namespace

absl::StatusOr<SecretBox> SecretBox::FromHexKey(std::string_view key_hex) {
  return FromHexKeys(key_hex, {});
}

absl::StatusOr<SecretBox> SecretBox::FromHexKeys(std::string_view current_hex,
                                                 const std::vector<std::string>& previous_hex) {
  std::vector<Key> keys;
  for (size_t i = 0; i <= previous_hex.size(); ++i) {
    const std::string_view hex = i == 0 ? current_hex : std::string_view(previous_hex[i - 1]);
    absl::StatusOr<std::string> bytes = KeyBytes(hex);
    if (!bytes.ok()) {
      if (i == 0) return bytes.status();
      return absl::InvalidArgumentError(StrCat("previous key ", i, ": ", bytes.status().message()));
    }
    std::string id = Sha256Hex(*bytes).substr(0, kKeyIdSize);
    if (std::any_of(keys.begin(), keys.end(), [&](const Key& k) { return k.id == id; })) {
      continue;  // the same key given twice
    }
    keys.push_back({std::move(id), *std::move(bytes)});
  }
  return SecretBox(std::move(keys));
}

std::string SecretBox::Seal(std::string_view plaintext) const {
  const Key& current = keys_.front();
  return StrCat(kSealV2, current.id, ":", store::Seal(current.bytes, plaintext));
}

bool SecretBox::SealedUnderCurrentKey(std::string_view sealed) const {
  return sealed.starts_with(kSealV2) && sealed.substr(kSealV2.size()).starts_with(key_id()) &&
         sealed.size() > kSealV2.size() + kKeyIdSize && sealed[kSealV2.size() + kKeyIdSize] == ':';
}

absl::StatusOr<std::string> SecretBox::Open(std::string_view sealed) const {
  const absl::Status bad = absl::DataLossError("sealed secret cannot be opened with this key");
  std::string raw;
  if (sealed.starts_with(kSealV2)) {
    const std::string_view rest = sealed.substr(kSealV2.size());
    if (rest.size() <= kKeyIdSize || rest[kKeyIdSize] != ':') return bad;
    const std::string_view id = rest.substr(0, kKeyIdSize);
    const auto key =
        std::find_if(keys_.begin(), keys_.end(), [&](const Key& k) { return k.id == id; });
    if (key == keys_.end()) {
      return absl::DataLossError(
          StrCat("sealed secret needs encryption key ", id, ", which this server does not have"));
    }
    if (!absl::WebSafeBase64Unescape(ToAbsl(rest.substr(kKeyIdSize + 1)), &raw)) return bad;
    std::optional<std::string> plain = store::Open(key->bytes, raw);
    if (!plain) return bad;
    return *std::move(plain);
  }
  if (!sealed.starts_with(kSealV1) ||
      !absl::WebSafeBase64Unescape(ToAbsl(sealed.substr(kSealV1.size())), &raw)) {
    return bad;
  }
  for (const Key& key : keys_) {
    if (std::optional<std::string> plain = store::Open(key.bytes, raw)) return *std::move(plain);
  }
  return bad;
}

}  // namespace herald::store
