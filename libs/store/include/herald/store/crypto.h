// Secrets at rest: API key hashes, sealed upstream keys, and random secrets.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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

// AES-256-GCM under a current key and any previous keys: Seal encrypts and authenticates under
// the current key, Open checks and decrypts a value sealed under any key the box holds. A sealed
// value is "v2:" + key id + ":" + base64url(12-byte nonce || ciphertext || 16-byte tag), with a
// fresh random nonce; the key id is the first 8 hex characters of SHA-256 of the key, so a value
// names the key it needs. Values of the first format, "v1:" + base64url(...), carry no key id and
// are opened with whichever key authenticates them. Thread-safe.
class SecretBox {
 public:
  // `key_hex`: 64 hex characters (32 bytes). kInvalidArgument otherwise.
  static absl::StatusOr<SecretBox> FromHexKey(std::string_view key_hex);
  // The current key and the keys values may still be sealed under (opened, never sealed with),
  // during a rotation. kInvalidArgument for a malformed key, naming which.
  static absl::StatusOr<SecretBox> FromHexKeys(std::string_view current_hex,
                                               const std::vector<std::string>& previous_hex);

  std::string Seal(std::string_view plaintext) const;
  // kDataLoss when the value was sealed under no key of this box or was altered.
  absl::StatusOr<std::string> Open(std::string_view sealed) const;
  // Whether `sealed` names the current key (false for the first format and for other keys).
  bool SealedUnderCurrentKey(std::string_view sealed) const;
  // The current key's id.
  const std::string& key_id() const { return keys_.front().id; }

 private:
  struct Key {
    std::string id;     // 8 hex characters
    std::string bytes;  // 32 bytes
  };
  explicit SecretBox(std::vector<Key> keys) : keys_(std::move(keys)) {}
  std::vector<Key> keys_;  // the current key first
};

}  // namespace herald::store
