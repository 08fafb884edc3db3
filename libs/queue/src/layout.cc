#include <herald/common/strings.h>
#include <herald/queue/layout.h>

namespace herald::queue {

int ShardOf(std::string_view team, int shard_count) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a offset basis
  for (const char c : team) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;  // FNV prime
  }
  return static_cast<int>(h % static_cast<uint64_t>(shard_count));
}

std::string ShardTag(int shard) { return StrCat("{hd:s", shard, "}"); }

}  // namespace herald::queue
