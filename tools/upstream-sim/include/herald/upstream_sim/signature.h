// Webhook signatures as the upstream computes them: lowercase hex HMAC-SHA256 of the raw
// request body, keyed with the endpoint's signing secret (header `Signature`).
#pragma once

#include <string>
#include <string_view>

namespace herald::upstream_sim {

// Lowercase hex HMAC-SHA256 of `message` under `key` (64 characters). Thread-safe.
std::string HmacSha256Hex(std::string_view key, std::string_view message);

}  // namespace herald::upstream_sim
