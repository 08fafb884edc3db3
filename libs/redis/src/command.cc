#include <openssl/evp.h>

#include <herald/common/strings.h>
#include <herald/redis/client.h>

namespace herald::redis {

Command& Command::Arg(std::string_view arg) {
  args_.emplace_back(arg);
  return *this;
}

Command& Command::Arg(int64_t arg) {
  args_.push_back(StrCat(arg));
  return *this;
}

namespace {

std::string Sha1Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha1(), nullptr) != 1) {
    // Only an OpenSSL built without SHA-1 gets here; Redis scripting cannot work without it.
    std::abort();
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * size);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

}  // namespace

Script::Script(std::string source, Durability durability)
    : source_(std::move(source)), sha1_(Sha1Hex(source_)), durability_(durability) {}

}  // namespace herald::redis
