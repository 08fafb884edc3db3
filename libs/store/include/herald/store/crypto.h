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
// value is "v3:" + key id + ":" + base64url(12-byte nonce || ciphertext || 16-byte tag), with a
// fresh random nonce; the key id is the first 8 hex characters of SHA-256 of the key, so a value
// names the key it needs. The value is bound to a context (what it is, and whose: "team
// acme/main upstream_api_key"), authenticated as associated data: one copied to another team or
// another use does not open there. Values of earlier formats open in any context: "v2:" (a key
// id, no context) and "v1:" + base64url(...) (neither, opened with whichever key authenticates
// it); they are not under the current key for SealedUnderCurrentKey, so a rotation seals them
// again in the current format. Thread-safe.
class SecretBox {
 public:
  // `key_hex`: 64 hex characters (32 bytes). kInvalidArgument otherwise.
  static absl::StatusOr<SecretBox> FromHexKey(std::string_view key_hex);
  // The current key and the keys values may still be sealed under (opened, never sealed with),
  // during a rotation. kInvalidArgument for a malformed key, naming which.
  static absl::StatusOr<SecretBox> FromHexKeys(std::string_view current_hex,
                                               const std::vector<std::string>& previous_hex);

  std::string Seal(std::string_view plaintext, std::string_view context) const;
  // kFailedPrecondition when the value names a key this box does not hold (a process started
  // without it); kDataLoss when it does not open (altered, sealed in another context, or of the
  // first format under no key of this box).
  absl::StatusOr<std::string> Open(std::string_view sealed, std::string_view context) const;
  // Whether `sealed` is in the current format under the current key (false for earlier formats
  // and other keys).
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

// What a team's secret is sealed as (SecretBox's context): whose, and which. A webhook secret
// keeps its context when a rotation makes it the previous one.
enum class TeamSecret { kUpstreamApiKey, kWebhookSecret };
std::string TeamSecretContext(std::string_view tenant, std::string_view team, TeamSecret secret);

}  // namespace herald::store
