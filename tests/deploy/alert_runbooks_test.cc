// The alert rules in deploy/prometheus/herald-rules.yml: every alert carries a severity, a
// summary, a description and a runbook_url naming a section of deploy/README.md written for it
// (what it means, what to check, what to do), and every metric an expression uses is in the
// catalogue (docs/operations.md). `promtool check rules` and the rule unit tests are separate
// ctest tests (deploy_prometheus_rules_*).
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/testing/observability.h>

namespace herald {
namespace {

using testing::AlertRule;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MarkdownSection;

constexpr std::string_view kRunbookFile = "deploy/README.md#";
constexpr std::string_view kRunbookParts[] = {"**Meaning.**", "**Check.**", "**Action.**"};

// What is wrong with the rules and their runbooks; empty when nothing is.
std::vector<std::string> LintAlerts(
    const std::vector<AlertRule>& rules, const std::map<std::string, MarkdownSection>& readme,
    const std::map<std::string, testing::CatalogueEntry>& catalogue) {
  std::vector<std::string> problems;
  std::set<std::string> names;
  for (const AlertRule& r : rules) {
    auto problem = [&](auto&&... parts) { problems.push_back(StrCat(r.name, ": ", parts...)); };
    if (!names.insert(r.name).second) problem("defined twice");
    const auto severity = r.labels.find("severity");
    if (severity == r.labels.end()) {
      problem("no severity label");
    } else if (severity->second != "page" && severity->second != "warn") {
      problem("severity '", severity->second, "' is neither page nor warn");
    }
    for (const char* annotation : {"summary", "description", "runbook_url"}) {
      const auto it = r.annotations.find(annotation);
      if (it == r.annotations.end() || it->second.empty())
        problem("no ", annotation, " annotation");
    }
    for (const testing::MetricSelector& s : testing::MetricSelectors(r.expr)) {
      if (s.metric != "up" && !catalogue.contains(testing::MetricFamily(s.metric))) {
        problem(s.metric, " is not in docs/operations.md");
      }
    }
    const auto url = r.annotations.find("runbook_url");
    if (url == r.annotations.end()) continue;
    const size_t at = url->second.find(kRunbookFile);
    if (!url->second.starts_with("https://") || at == std::string::npos) {
      problem("runbook_url '", url->second, "' is not an https link into ", kRunbookFile);
      continue;
    }
    const std::string anchor = url->second.substr(at + kRunbookFile.size());
    if (anchor != testing::GithubAnchor(r.name)) {
      problem("runbook_url anchor '", anchor, "' is not the alert's own (#",
              testing::GithubAnchor(r.name), ")");
    }
    const auto section = readme.find(anchor);
    if (section == readme.end()) {
      problem("no runbook section #", anchor, " in deploy/README.md");
      continue;
    }
    if (section->second.heading != r.name) {
      problem("runbook section '", section->second.heading,
              "' is not headed with the alert's name");
    }
    for (std::string_view part : kRunbookParts) {
      if (section->second.body.find(part) == std::string::npos) {
        problem("runbook section has no ", part, " paragraph");
      }
    }
  }
  // A runbook whose alert is gone misleads whoever finds it.
  for (const auto& [anchor, section] : readme) {
    if (section.level == 3 && section.heading.starts_with("Herald") &&
        !names.contains(section.heading)) {
      problems.push_back(StrCat("deploy/README.md: runbook '", section.heading, "' has no alert"));
    }
  }
  return problems;
}

class AlertRunbooks : public ::testing::Test {
 protected:
  void SetUp() override {
    auto readme = testing::ReadTextFile(testing::SourcePath("deploy/README.md"));
    ASSERT_TRUE(readme.ok()) << readme.status();
    readme_ = testing::MarkdownSections(*readme);
    auto ops = testing::ReadTextFile(testing::SourcePath("docs/operations.md"));
    ASSERT_TRUE(ops.ok()) << ops.status();
    catalogue_ = testing::ParseMetricsCatalogue(*ops);
  }

  std::map<std::string, MarkdownSection> readme_;
  std::map<std::string, testing::CatalogueEntry> catalogue_;
};

TEST_F(AlertRunbooks, EveryAlertHasItsAnnotationsAndARunbookSection) {
  auto rules = testing::LoadAlertRules(testing::SourcePath("deploy/prometheus/herald-rules.yml"));
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_FALSE(rules->empty());
  EXPECT_THAT(LintAlerts(*rules, readme_, catalogue_), IsEmpty());
}

TEST_F(AlertRunbooks, AnAlertWithoutARunbookSectionFails) {
  auto rules = testing::ParseAlertRules(R"(
groups:
  - name: g
    rules:
      - alert: HeraldDown
        expr: up == 0
        labels: {severity: page}
        annotations:
          summary: s
          description: d
          runbook_url: "https://example.com/x/deploy/README.md#heralddown"
      - alert: HeraldSomethingNew
        expr: herald_jobs_total > herald_unknown_metric
        labels: {severity: critical}
        annotations:
          summary: s
          runbook_url: "https://example.com/x/deploy/README.md#heraldsomethingnew"
      - alert: HeraldNoLink
        expr: vector(1)
        annotations: {summary: s, description: d, runbook_url: "deploy/README.md#heralddown"}
      - record: herald:recorded
        expr: vector(1)
)");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 3u) << "a recording rule is not an alert";
  const std::vector<std::string> problems = LintAlerts(*rules, readme_, catalogue_);
  for (std::string_view expected :
       {"HeraldSomethingNew: no runbook section #heraldsomethingnew",
        "HeraldSomethingNew: severity 'critical'", "HeraldSomethingNew: no description",
        "HeraldSomethingNew: herald_unknown_metric is not in docs/operations.md",
        "HeraldNoLink: no severity label",
        "HeraldNoLink: runbook_url 'deploy/README.md#heralddown' is not",
        "runbook 'HeraldQueueBacklogAging' has no alert"}) {
    EXPECT_THAT(problems, Contains(HasSubstr(std::string(expected)))) << expected;
  }
  EXPECT_THAT(problems, ::testing::Not(Contains(HasSubstr("HeraldDown:"))));
}

TEST(MarkdownSections, AnchorsAreGithubs) {
  EXPECT_EQ(testing::GithubAnchor("Alerts and runbooks"), "alerts-and-runbooks");
  EXPECT_EQ(testing::GithubAnchor("HeraldDown"), "heralddown");
  EXPECT_EQ(testing::GithubAnchor("What `herald queue` says (v2)"), "what-herald-queue-says-v2");
  const auto sections = testing::MarkdownSections(
      "# T\nintro\n## A b\ntext\n```\n# not a heading\n```\n### C\nmore\n");
  ASSERT_EQ(sections.size(), 3u);
  EXPECT_EQ(sections.at("a-b").level, 2);
  EXPECT_THAT(sections.at("a-b").body, HasSubstr("# not a heading"));
  EXPECT_EQ(sections.at("c").body, "more\n");
}

}  // namespace
}  // namespace herald
