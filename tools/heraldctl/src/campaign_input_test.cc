#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <herald/common/strings.h>
#include <herald/heraldctl/campaign_input.h>
#include <herald/heraldctl/cli.h>
#include <herald/v1/campaign.pb.h>

namespace herald::heraldctl {
namespace {

// `name` in a temporary directory of this process's own (test binaries of several builds may
// run at once).
std::string TempFile(std::string_view name) {
  const std::string dir = StrCat(::testing::TempDir(), "/heraldctl-test-", getpid());
  std::filesystem::create_directories(dir);
  return StrCat(dir, "/", name);
}

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ParsedCommand Command(std::vector<std::string> args) {
  args.insert(args.begin(), {"campaigns", "create"});
  auto parsed = ParseCommandLine(args, Commands(),
                                 [](std::string_view) -> std::optional<std::string> { return {}; });
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : ParsedCommand{};
}

TEST(YamlToJsonTest, ScalarsBecomeStringsExceptBooleansAndNull) {
  EXPECT_EQ(*YamlToJson("a: 1\nb: true\nc: 'true'\nd: ~\ne: [x, \"y\"]\nf: {g: h}\n"),
            R"({"a":"1","b":true,"c":"true","d":null,"e":["x","y"],"f":{"g":"h"}})");
  EXPECT_EQ(*YamlToJson("text: \"line\\none \\\"q\\\"\"\n"), R"({"text":"line\none \"q\""})");
  EXPECT_FALSE(YamlToJson("a: [1, 2").ok());
}

TEST(YamlToJsonTest, AnUnclosedQuoteOrARepeatedKeyIsAnErrorWithItsLine) {
  // yaml-cpp alone reads the unclosed quote to the end of the file, fields after it included.
  absl::StatusOr<std::string> unclosed =
      YamlToJson("display_name: x\ncontent:\n  text: \"unterminated\n  price_cents: 0\n");
  ASSERT_FALSE(unclosed.ok()) << *unclosed;
  EXPECT_THAT(std::string(unclosed.status().message()),
              HasSubstr("line 3, column 9: a quoted value that never closes"));
  EXPECT_FALSE(YamlToJson("a: 'it''s\nb: 1\n").ok());
  // Escaped and doubled quotes inside closed values are fine.
  EXPECT_EQ(*YamlToJson("a: 'it''s'\nb: \"say \\\"hi\\\"\"\n"), R"({"a":"it's","b":"say \"hi\""})");
  absl::StatusOr<std::string> twice = YamlToJson("display_name: x\ndisplay_name: y\n");
  ASSERT_FALSE(twice.ok()) << *twice;
  EXPECT_THAT(std::string(twice.status().message()),
              HasSubstr("line 2, column 1: 'display_name' appears twice"));
  // protobuf reads both spellings as one field, and would keep the last.
  absl::StatusOr<std::string> spelled_twice =
      YamlToJson("targets:\n  - account: a\n    userLists: [x]\n    user_lists: [y]\n");
  ASSERT_FALSE(spelled_twice.ok()) << *spelled_twice;
  EXPECT_EQ(spelled_twice.status().message(),
            "not valid YAML: line 4, column 5: 'user_lists' repeats 'userLists' (one field) in one "
            "mapping");
  EXPECT_FALSE(YamlToJson("a_b: 1\naB: 2\n").ok());
  EXPECT_TRUE(YamlToJson("ab: 1\naB: 2\n").ok());  // fields "ab" and "a_b"
}

TEST(YamlToJsonTest, ASecondDocumentIsRefusedNotLeftOut) {
  absl::StatusOr<std::string> two =
      YamlToJson("content: {text: hi}\n---\ncontent: {text: SECOND}\n");
  ASSERT_FALSE(two.ok()) << *two;
  EXPECT_THAT(std::string(two.status().message()), HasSubstr("line 2"));
  EXPECT_THAT(std::string(two.status().message()), HasSubstr("a second document"));
  EXPECT_EQ(*YamlToJson("---\ncontent: {text: hi}\n"), R"({"content":{"text":"hi"}})");
  EXPECT_EQ(*YamlToJson(""), "null");
  EXPECT_FALSE(YamlToJson("content: {text: hi}\n...\nmore: 1\n").ok());
  EXPECT_EQ(*YamlToJson("# a comment\n--- # the document\ncontent: {text: hi}\n...\n"),
            R"({"content":{"text":"hi"}})");
  // A marker indented inside a block scalar is text.
  EXPECT_EQ(*YamlToJson("text: |\n  one\n  ---\n  two\n"), R"({"text":"one\n---\ntwo\n"})");
}

TEST(YamlToJsonTest, AliasesExpandWithinBounds) {
  // An alias repeats its anchor's node.
  EXPECT_EQ(*YamlToJson("l: &l [fans, vip]\nt: [{lists: *l}, {lists: *l}]\n"),
            R"({"l":["fans","vip"],"t":[{"lists":["fans","vip"]},{"lists":["fans","vip"]}]})");

  // A node inside itself would nest forever.
  absl::StatusOr<std::string> cycle = YamlToJson("a: &a [x, *a]\n");
  ASSERT_FALSE(cycle.ok());
  EXPECT_EQ(cycle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(cycle.status().message()), HasSubstr("nested deeper than 64 levels"));

  // Aliases of aliases: nine levels of nine make 387,420,489 strings from 300 bytes.
  std::string bomb = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 9; ++i) {
    const std::string prev = StrCat("*a", i - 1);
    StrAppend(&bomb, "a", i, ": &a", i, " [", StrJoin(std::vector<std::string>(9, prev), ", "),
              "]\n");
  }
  absl::StatusOr<std::string> expanded = YamlToJson(bomb);
  ASSERT_FALSE(expanded.ok());
  EXPECT_THAT(std::string(expanded.status().message()), HasSubstr("aliases expand to more than"));
  v1::Campaign campaign;
  EXPECT_FALSE(ParseCampaignFile(bomb, &campaign, nullptr).ok());
}

constexpr char kYaml[] = R"(
display_name: Friday drop
content:
  text: "New video: 50% off"
  price_cents: 1500
  media: [teaser]
  locked_text: true
targets:
  - {account: acct_a, user_lists: [fans]}
  - account: tenants/acme/accounts/acct_b
    fan_ids: [11, 12]
    excluded_lists: ["123"]
    segment: top
send_time: 2026-05-01T20:00:00Z
grace_period: 900s
)";

TEST(ParseCampaignFileTest, YamlMapsOntoTheCampaignMessage) {
  v1::Campaign campaign;
  std::vector<std::string> paths;
  ASSERT_TRUE(ParseCampaignFile(kYaml, &campaign, &paths).ok());
  EXPECT_EQ(campaign.display_name(), "Friday drop");
  EXPECT_EQ(campaign.content().text(), "New video: 50% off");
  EXPECT_EQ(campaign.content().price_cents(), 1500);
  EXPECT_TRUE(campaign.content().locked_text());
  ASSERT_EQ(campaign.targets_size(), 2);
  EXPECT_THAT(campaign.targets(1).fan_ids(), ElementsAre(11, 12));
  EXPECT_EQ(campaign.send_time().seconds(), 1777665600);
  EXPECT_EQ(campaign.grace_period().seconds(), 900);
  EXPECT_THAT(paths,
              ElementsAre("display_name", "content", "targets", "send_time", "grace_period"));

  ASSERT_TRUE(ResolveCampaignNames(Names("acme"), &campaign).ok());
  EXPECT_EQ(campaign.content().media(0), "tenants/acme/media/teaser");
  EXPECT_EQ(campaign.targets(0).account(), "tenants/acme/accounts/acct_a");
  EXPECT_EQ(campaign.targets(1).account(), "tenants/acme/accounts/acct_b");
  EXPECT_EQ(campaign.targets(1).segment(), "tenants/acme/segments/top");
}

TEST(ParseCampaignFileTest, JsonAndCamelCase) {
  v1::Campaign campaign;
  ASSERT_TRUE(ParseCampaignFile(R"( {"content": {"text": "hi", "priceCents": "300"},
      "targets": [{"account": "acct_a", "userLists": ["fans"]}], "save_as_draft": true})",
                                &campaign, nullptr)
                  .ok());
  EXPECT_EQ(campaign.content().price_cents(), 300);
  EXPECT_TRUE(campaign.save_as_draft());
  EXPECT_EQ(campaign.targets(0).user_lists(0), "fans");
}

// Durations and the send time may be written as the flags take them.
TEST(ParseCampaignFileTest, DurationsAndTimesAsTheFlagsTakeThem) {
  v1::Campaign campaign;
  std::vector<std::string> paths;
  const absl::Status parsed = ParseCampaignFile(
      "content: {text: hi, price_cents: 1500}\n"
      "send_time: 2030-05-01T22:00:00.250+02:00\ngrace_period: 30m\nupstreamLead: 1h30m\n",
      &campaign, &paths);
  ASSERT_TRUE(parsed.ok()) << parsed;
  EXPECT_EQ(campaign.send_time().seconds(), 1903896000);
  EXPECT_EQ(campaign.send_time().nanos(), 250'000'000);
  EXPECT_EQ(campaign.grace_period().seconds(), 1800);
  EXPECT_EQ(campaign.upstream_lead().seconds(), 5400);
  EXPECT_EQ(campaign.content().price_cents(), 1500);
  EXPECT_THAT(paths, ElementsAre("content", "send_time", "grace_period", "upstream_lead"));
  ASSERT_TRUE(ParseCampaignFile(R"({"gracePeriod": "1.5s"})", &campaign, nullptr).ok());
  EXPECT_EQ(campaign.grace_period().seconds(), 1);
  EXPECT_EQ(campaign.grace_period().nanos(), 500'000'000);
  EXPECT_THAT(std::string(ParseCampaignFile("grace_period: soon\n", &campaign, nullptr).message()),
              HasSubstr("Campaign"));
}

TEST(ParseCampaignFileTest, UnknownFieldsAndNonMappingsAreErrors) {
  v1::Campaign campaign;
  EXPECT_THAT(std::string(ParseCampaignFile("txt: hi\n", &campaign, nullptr).message()),
              HasSubstr("Campaign"));
  EXPECT_FALSE(ParseCampaignFile("- a\n- b\n", &campaign, nullptr).ok());
  EXPECT_FALSE(ParseCampaignFile("{not json", &campaign, nullptr).ok());
  // An unknown key is named with its line, nested or not, in YAML and JSON.
  EXPECT_THAT(std::string(ParseCampaignFile("display_name: x\ncontent: {text: hi}\nsendtime: 1\n",
                                            &campaign, nullptr)
                              .message()),
              HasSubstr("line 3: sendtime: Cannot find field"));
  EXPECT_THAT(std::string(ParseCampaignFile("content: {text: hi}\ntargets:\n  - account: a\n"
                                            "  - acount: b\n",
                                            &campaign, nullptr)
                              .message()),
              HasSubstr("line 4: (targets[1]) acount: Cannot find field"));
  EXPECT_THAT(std::string(ParseCampaignFile("{\"content\": {\"text\": \"hi\"},\n \"sendTime2\": 1}",
                                            &campaign, nullptr)
                              .message()),
              HasSubstr("line 2: sendTime2"));
}

TEST(ParseCampaignFileTest, JsonIsStrictAndItsErrorsSayWhere) {
  v1::Campaign campaign;
  const auto error = [&](std::string_view json) {
    return std::string(ParseCampaignFile(json, &campaign, nullptr).message());
  };
  // protobuf's own parser takes a trailing comma, and the last of a repeated key.
  EXPECT_EQ(error("{\n  \"display_name\": \"x\",\n}\n"),
            "not valid JSON: line 3, column 1: syntax error");
  EXPECT_EQ(error("{\"content\": {\"text\": \"hi\"}, \"content\": {}}"),
            "not valid JSON: line 1, column 29: 'content' appears twice in one object");
  EXPECT_EQ(error("{\"targets\": [{\"account\": \"a\",\n  \"account\": \"b\"}]}"),
            "not valid JSON: line 2, column 3: 'account' appears twice in one object");
  EXPECT_EQ(error("{\"display_name\": \"é\" \"text\": 1}"),
            "not valid JSON: line 1, column 22: syntax error");
  EXPECT_EQ(error("{\"\": 1, \"\": 2}"),
            "not valid JSON: line 1, column 9: '' appears twice in one object");
  EXPECT_EQ(error("{\"display_name\": \"x\", \"displayName\": \"y\"}"),
            "not valid JSON: line 1, column 23: 'displayName' repeats 'display_name' (one field) "
            "in one object");
  EXPECT_EQ(error("{} {}"), "not valid JSON: line 1, column 4: extra data");
  EXPECT_EQ(error("{\"display_name\": \"x\"} // note"),
            "not valid JSON: line 1, column 23: extra data");
  // The same key in two different objects is fine, and so is trailing white space.
  EXPECT_TRUE(ParseCampaignFile(R"({"display_name": "x", "targets": [{"account": "a"},
      {"account": "b"}]}  )"
                                "\n",
                                &campaign, nullptr)
                  .ok());
  EXPECT_EQ(campaign.targets_size(), 2);
}

TEST(ApplyCampaignFlagsTest, FlagsBuildContentTargetsAndMask) {
  const ParsedCommand c = Command({"--text=Hi", "--price=15.00", "--media=m1,m2", "--previews=m1",
                                   "--accounts=acct_a,acct_b", "--lists=fans,123",
                                   "--exclude-lists=456", "--send-at=2026-05-01T20:00:00Z",
                                   "--grace-period=30m", "--upstream-lead=2h", "--display-name=D"});
  v1::Campaign campaign;
  std::vector<std::string> paths;
  ASSERT_TRUE(ApplyCampaignFlags(c, Names("acme"), &campaign, &paths).ok());
  EXPECT_EQ(campaign.content().price_cents(), 1500);
  EXPECT_THAT(campaign.content().media(),
              ElementsAre("tenants/acme/media/m1", "tenants/acme/media/m2"));
  EXPECT_THAT(campaign.content().previews(), ElementsAre("tenants/acme/media/m1"));
  ASSERT_EQ(campaign.targets_size(), 2);
  EXPECT_EQ(campaign.targets(1).account(), "tenants/acme/accounts/acct_b");
  EXPECT_THAT(campaign.targets(1).user_lists(), ElementsAre("fans", "123"));
  EXPECT_THAT(campaign.targets(1).excluded_lists(), ElementsAre("456"));
  EXPECT_EQ(campaign.send_time().seconds(), 1777665600);
  EXPECT_EQ(campaign.grace_period().seconds(), 1800);
  EXPECT_EQ(campaign.upstream_lead().seconds(), 7200);
  EXPECT_THAT(paths, ElementsAre("display_name", "content.text", "content.price_cents",
                                 "content.media", "content.previews", "targets", "send_time",
                                 "grace_period", "upstream_lead"));
}

// An empty --send-at clears the send time: in an update's mask, with the field unset.
TEST(ApplyCampaignFlagsTest, AnEmptySendTimeClearsIt) {
  v1::Campaign campaign;
  campaign.mutable_send_time()->set_seconds(1777665600);
  std::vector<std::string> paths;
  ASSERT_TRUE(ApplyCampaignFlags(Command({"--send-at="}), Names("acme"), &campaign, &paths).ok());
  EXPECT_FALSE(campaign.has_send_time());
  EXPECT_THAT(paths, ElementsAre("send_time"));
}

TEST(ApplyCampaignFlagsTest, DefaultListIsFansAndFanIdsFromFile) {
  v1::Campaign plain;
  std::vector<std::string> paths;
  ASSERT_TRUE(
      ApplyCampaignFlags(Command({"--accounts=acct_a"}), Names("acme"), &plain, &paths).ok());
  EXPECT_THAT(plain.targets(0).user_lists(), ElementsAre("fans"));

  const std::string file = TempFile("fans.txt");
  std::ofstream(file) << "5\n6,7\n";
  v1::Campaign fans;
  ASSERT_TRUE(ApplyCampaignFlags(Command({"--accounts=acct_a", "--fans-file=" + file}),
                                 Names("acme"), &fans, &paths)
                  .ok());
  EXPECT_THAT(fans.targets(0).fan_ids(), ElementsAre(5, 6, 7));
  EXPECT_TRUE(fans.targets(0).user_lists().empty());
}

TEST(ApplyCampaignFlagsTest, UsageErrors) {
  std::vector<std::string> paths;
  v1::Campaign c;
  EXPECT_FALSE(
      ApplyCampaignFlags(Command({"--price=1", "--price-cents=100"}), Names("a"), &c, &paths).ok());
  EXPECT_THAT(
      std::string(ApplyCampaignFlags(Command({"--lists=fans"}), Names("a"), &c, &paths).message()),
      HasSubstr("--accounts"));
  EXPECT_FALSE(ApplyCampaignFlags(Command({"--send-at=tomorrow"}), Names("a"), &c, &paths).ok());
  EXPECT_FALSE(ApplyCampaignFlags(Command({"--accounts=acct_a"}), Names(""), &c, &paths).ok());
}

}  // namespace
}  // namespace herald::heraldctl
