#include <algorithm>
#include <initializer_list>
#include <memory>
#include <optional>

#include <absl/strings/escaping.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
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

namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// SHA-256 over `parts`, on the calling thread's digest context.
void Sha256(std::initializer_list<std::string_view> parts, unsigned char* out) {
  // Fetched once: OpenSSL's one-shot HMAC() fetches the algorithms and allocates its contexts
  // on every call, which is more than half of its cost on a webhook-sized body.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local const MdCtx ctx(EVP_MD_CTX_new());
  unsigned int length = 0;
  bool ok =
      sha256 != nullptr && ctx != nullptr && EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) == 1;
  for (std::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(ctx.get(), out, &length) == 1;
  if (!ok || length != SHA256_DIGEST_LENGTH) std::abort();  // no SHA-256: nothing safe to do
}

}  // namespace

// HMAC as RFC 2104 defines it: H((K ^ opad) || H((K ^ ipad) || message)), K the key padded to
// the block (hashed first when longer).
std::string HmacSha256Hex(std::string_view key, std::string_view message) {
  constexpr size_t kBlock = 64;
  unsigned char block[kBlock] = {};
  if (key.size() > kBlock) {
    Sha256({key}, block);
  } else {
    std::copy(key.begin(), key.end(), block);
  }
  char inner_pad[kBlock], outer_pad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) {
    inner_pad[i] = static_cast<char>(block[i] ^ 0x36);
    outer_pad[i] = static_cast<char>(block[i] ^ 0x5c);
  }
  unsigned char inner[SHA256_DIGEST_LENGTH], digest[SHA256_DIGEST_LENGTH];
  Sha256({std::string_view(inner_pad, kBlock), message}, inner);
  Sha256({std::string_view(outer_pad, kBlock),
          std::string_view(reinterpret_cast<const char*>(inner), sizeof(inner))},
         digest);
  OPENSSL_cleanse(block, sizeof(block));
  OPENSSL_cleanse(inner_pad, sizeof(inner_pad));
  OPENSSL_cleanse(outer_pad, sizeof(outer_pad));
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

constexpr std::string_view kSealV1 = "v1:";
constexpr std::string_view kSealV2 = "v2:";
constexpr std::string_view kSealV3 = "v3:";
static_assert(kSealV2.size() == kSealV3.size());
constexpr size_t kKeyIdSize = 8;

absl::StatusOr<std::string> KeyBytes(std::string_view key_hex) {
  if (key_hex.size() != 64 ||
      key_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos) {
    return absl::InvalidArgumentError("the encryption key must be 64 hex characters (32 bytes)");
  }
  return absl::HexStringToBytes(ToAbsl(key_hex));
}

// nonce || ciphertext || tag of `plaintext` under `key`, `aad` authenticated with it.
std::string Seal(const std::string& key, std::string_view plaintext, std::string_view aad) {
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  if (RAND_bytes(U(out), kNonceBytes) != 1) std::abort();
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  int aad_len = 0;
  unsigned char* cipher = U(out) + kNonceBytes;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key), U(out)) != 1 ||
      (!aad.empty() && EVP_EncryptUpdate(ctx.get(), nullptr, &aad_len, U(aad),
                                         static_cast<int>(aad.size())) != 1) ||
      EVP_EncryptUpdate(ctx.get(), cipher, &len, U(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), cipher + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, cipher + plaintext.size()) !=
          1) {
    std::abort();  // OpenSSL failing on valid input is not recoverable
  }
  return absl::WebSafeBase64Escape(out);
}

// The plaintext of nonce || ciphertext || tag under `key` with `aad`; nullopt when it does not
// authenticate.
std::optional<std::string> Open(const std::string& key, std::string_view raw,
                                std::string_view aad) {
  if (raw.size() < kNonceBytes + kTagBytes) return std::nullopt;
  const size_t text_size = raw.size() - kNonceBytes - kTagBytes;
  std::string plain(text_size, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  int aad_len = 0;
  const unsigned char* cipher = U(raw) + kNonceBytes;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key), U(raw)) != 1 ||
      (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &aad_len, U(aad),
                                         static_cast<int>(aad.size())) != 1) ||
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

std::string SecretBox::Seal(std::string_view plaintext, std::string_view context) const {
  const Key& current = keys_.front();
  return StrCat(kSealV3, current.id, ":", store::Seal(current.bytes, plaintext, context));
}

bool SecretBox::SealedUnderCurrentKey(std::string_view sealed) const {
  return sealed.starts_with(kSealV3) && sealed.substr(kSealV3.size()).starts_with(key_id()) &&
         sealed.size() > kSealV3.size() + kKeyIdSize && sealed[kSealV3.size() + kKeyIdSize] == ':';
}

absl::StatusOr<std::string> SecretBox::Open(std::string_view sealed,
                                            std::string_view context) const {
  const absl::Status bad = absl::DataLossError(
      "sealed secret cannot be opened with this key (or was sealed for another use)");
  std::string raw;
  const bool bound = sealed.starts_with(kSealV3);
  if (bound || sealed.starts_with(kSealV2)) {
    // Both formats: a key id, then the value; only the current one binds a context.
    const std::string_view aad = bound ? context : std::string_view();
    const std::string_view rest = sealed.substr(kSealV3.size());
    if (rest.size() <= kKeyIdSize || rest[kKeyIdSize] != ':') return bad;
    const std::string_view id = rest.substr(0, kKeyIdSize);
    const auto key =
        std::find_if(keys_.begin(), keys_.end(), [&](const Key& k) { return k.id == id; });
    if (key == keys_.end()) {
      return absl::FailedPreconditionError(
          StrCat("sealed secret needs encryption key ", id, ", which this server does not have"));
    }
    if (!absl::WebSafeBase64Unescape(ToAbsl(rest.substr(kKeyIdSize + 1)), &raw)) return bad;
    std::optional<std::string> plain = store::Open(key->bytes, raw, aad);
    if (!plain) return bad;
    return *std::move(plain);
  }
  if (!sealed.starts_with(kSealV1) ||
      !absl::WebSafeBase64Unescape(ToAbsl(sealed.substr(kSealV1.size())), &raw)) {
    return bad;
  }
  for (const Key& key : keys_) {
    if (std::optional<std::string> plain = store::Open(key.bytes, raw, {})) {
      return *std::move(plain);
    }
  }
  return bad;
}

std::string TeamSecretContext(std::string_view tenant, std::string_view team, TeamSecret secret) {
  return StrCat("team ", tenant, "/", team, " ",
                secret == TeamSecret::kUpstreamApiKey ? "upstream_api_key" : "webhook_secret");
}

}  // namespace herald::store
