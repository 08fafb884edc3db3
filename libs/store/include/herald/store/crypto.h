// Secrets at rest: API key hashes, sealed upstream keys, and random secrets.
#pragma once

#include <string>
#include <string_view>

#include <absl/status/statusor.h>

namespace herald::store {

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// Lowercase hex HMAC-SHA256 of `message` with `key` (the upstream's webhook signature).
std::string HmacSha256Hex(std::string_view key, std::string_view message);

// `bytes` cryptographically random bytes, as unpadded base64url (43 characters for 32 bytes).
std::string RandomToken(int bytes);

// Constant-time comparison of two equal-length strings (false when the lengths differ).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// AES-256-GCM with one key: Seal encrypts and authenticates, Open checks and decrypts. Each
// sealed value is "v1:" + base64url(12-byte nonce || ciphertext || 16-byte tag) with a fresh
// random nonce. Thread-safe.
class SecretBox {
 public:
  // `key_hex`: 64 hex characters (32 bytes). kInvalidArgument otherwise.
  static absl::StatusOr<SecretBox> FromHexKey(std::string_view key_hex);

  std::string Seal(std::string_view plaintext) const;
  // kDataLoss when the value was not sealed with this key or was altered.
  absl::StatusOr<std::string> Open(std::string_view sealed) const;

 private:
  explicit SecretBox(std::string key) : key_(std::move(key)) {}
  std::string key_;  // 32 bytes
};

}  // namespace herald::store
