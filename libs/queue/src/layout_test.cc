#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/queue/layout.h>
#include <herald/queue/scripts.h>

namespace herald::queue {
namespace {

TEST(LayoutTest, ShardOfIsStableAndSpreadsTeams) {
  // Pinned values: a change would strand jobs queued under the old mapping.
  EXPECT_EQ(ShardOf("", 16), static_cast<int>(14695981039346656037ull % 16));
  EXPECT_EQ(ShardOf("team_1", 16), ShardOf("team_1", 16));
  std::map<int, int> counts;
  for (int i = 0; i < 1600; ++i) ++counts[ShardOf(StrCat("team_", i), 16)];
  ASSERT_EQ(counts.size(), 16u);
  for (const auto& [shard, n] : counts) {
    EXPECT_GE(shard, 0);
    EXPECT_LT(shard, 16);
    EXPECT_GT(n, 50) << shard;
  }
}

TEST(LayoutTest, ShardTagIsAHashTag) { EXPECT_EQ(ShardTag(7), "{hd:s7}"); }

TEST(ScriptsTest, EveryScriptCarriesTheSharedSnippetsAndItsHeader) {
  for (const ScriptId id : {ScriptId::kEnqueue, ScriptId::kLease, ScriptId::kAck, ScriptId::kNack,
                            ScriptId::kHeartbeat, ScriptId::kReap, ScriptId::kConfigure,
                            ScriptId::kStats, ScriptId::kListDead, ScriptId::kTakeDead}) {
    const std::string& source = ScriptSource(id);
    EXPECT_NE(source.find("local function gcra_allow_at"), std::string::npos) << ScriptName(id);
    EXPECT_NE(source.find("local function ring_if_eligible"), std::string::npos);
    for (const char* section : {"-- KEYS[1]", "-- ARGV[1]", "-- Returns:", "-- Complexity:"}) {
      EXPECT_NE(source.find(section, source.find("local function finish")), std::string::npos)
          << ScriptName(id) << " lacks " << section;
    }
  }
}

}  // namespace
}  // namespace herald::queue
