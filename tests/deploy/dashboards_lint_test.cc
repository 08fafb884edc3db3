// The Grafana dashboards in deploy/grafana, linted in the spirit of Grafana's dashboard-linter:
// every dashboard has the data source, namespace, role and instance variables and the link menu
// to the others; every panel has a unit and a description and queries the data source variable;
// every query selects with the three variables and takes rates over $__rate_interval; every
// metric a query names is in the catalogue (docs/operations.md). Whether the queries run and
// return data is the end-to-end test's part (tests/e2e/observability_test.cc).
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <herald/common/strings.h>
#include <herald/testing/observability.h>

namespace herald {
namespace {

using ::testing::Contains;
using testing::Dashboard;
using testing::DashboardPanel;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr std::string_view kDatasource = "${datasource}";
constexpr std::string_view kSelectorVariables[] = {"namespace", "role", "instance"};
// Variables every dashboard has, applied to the metrics whose catalogue labels name them.
constexpr std::string_view kLabelVariables[] = {"tenant", "team"};

// Grafana unit ids the dashboards may use (a typo renders as a bare number).
const std::set<std::string> kUnits = {"s",    "ms",    "bytes",      "percentunit", "short",
                                      "none", "cps",   "ops",        "reqps",       "cpm",
                                      "opm",  "reqpm", "currencyUSD"};

// The label names at the head of a catalogue labels cell: "`tenant`, `state`: `DRAFT`, …" has
// tenant and state; the backquoted words after a ':' or a '(' are values.
std::set<std::string> LabelNames(std::string_view cell) {
  std::set<std::string> names;
  while (cell.starts_with("`")) {
    const size_t end = cell.find('`', 1);
    if (end == std::string_view::npos) break;
    names.insert(std::string(cell.substr(1, end - 1)));
    cell.remove_prefix(end + 1);
    if (!cell.starts_with(", `")) break;
    cell.remove_prefix(2);
  }
  return names;
}

std::string WithoutSpaces(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != ' ') out.push_back(c);
  }
  return out;
}

// What is wrong with one panel; empty when nothing is.
std::vector<std::string> LintPanel(
    const DashboardPanel& p, const std::set<std::string>& uids,
    const std::map<std::string, testing::CatalogueEntry>& catalogue) {
  std::vector<std::string> problems;
  auto problem = [&](auto&&... parts) {
    problems.push_back(StrCat("panel '", p.title, "': ", parts...));
  };
  if (p.title.empty()) problem("no title");
  if (p.description.empty()) problem("no description");
  if (p.unit.empty()) {
    problem("no unit (fieldConfig.defaults.unit)");
  } else if (!kUnits.contains(p.unit)) {
    problem("unit '", p.unit, "' is not one of the Grafana units the dashboards use");
  }
  if (p.datasource_uid != kDatasource) {
    problem("panel data source is '", p.datasource_uid, "', not ", kDatasource);
  }
  if (p.queries.empty()) problem("no query");
  std::set<std::string> ref_ids;
  for (const testing::DashboardQuery& q : p.queries) {
    if (!ref_ids.insert(q.ref_id).second) problem("refId ", q.ref_id, " twice");
    if (q.datasource_uid != kDatasource) {
      problem("query ", q.ref_id, " data source is '", q.datasource_uid, "', not ", kDatasource);
    }
    if (q.expr.empty()) problem("query ", q.ref_id, " is empty");
    for (const std::string& range : testing::Ranges(q.expr)) {
      if (range != "$__rate_interval") {
        problem("query ", q.ref_id, " uses range [", range, "], not [$__rate_interval]: ", q.expr);
      }
    }
    const std::vector<testing::MetricSelector> selectors = testing::MetricSelectors(q.expr);
    if (selectors.empty()) problem("query ", q.ref_id, " selects no Herald metric: ", q.expr);
    for (const testing::MetricSelector& s : selectors) {
      const std::string matchers = WithoutSpaces(s.matchers);
      for (std::string_view var : kSelectorVariables) {
        const std::string wanted = StrCat(var, "=~\"$", var, "\"");
        if (matchers.find(wanted) == std::string::npos) {
          problem("query ", q.ref_id, ": ", s.metric, " is not filtered by ", wanted);
        }
      }
      const auto entry = catalogue.find(testing::MetricFamily(s.metric));
      if (s.metric != "up" && entry == catalogue.end()) {
        problem("query ", q.ref_id, ": ", s.metric, " is not in docs/operations.md");
      }
      for (std::string_view var : kLabelVariables) {
        const std::string wanted = StrCat(var, "=~\"$", var, "\"");
        if (entry != catalogue.end() &&
            LabelNames(entry->second.labels).contains(std::string(var)) &&
            matchers.find(wanted) == std::string::npos) {
          problem("query ", q.ref_id, ": ", s.metric, " has a ", var, " label but is not ",
                  "filtered by ", wanted);
        }
      }
    }
  }
  for (const std::string& url : p.link_urls) {
    const size_t start = url.starts_with("/d/") ? 3 : std::string::npos;
    const std::string uid =
        start == std::string::npos ? "" : url.substr(start, url.find_first_of("/?", start) - start);
    if (!uids.contains(uid)) problem("link '", url, "' is not to one of the dashboards");
  }
  return problems;
}

// What is wrong with one dashboard; empty when nothing is. `uids`: every dashboard's.
std::vector<std::string> LintDashboard(
    const Dashboard& d, const std::set<std::string>& uids,
    const std::map<std::string, testing::CatalogueEntry>& catalogue) {
  std::vector<std::string> problems;
  auto problem = [&](auto&&... parts) { problems.push_back(StrCat(d.file, ": ", parts...)); };
  if (!d.uid.starts_with("herald-")) problem("uid '", d.uid, "' does not start with herald-");
  if (d.title.empty()) problem("no title");
  if (std::find(d.tags.begin(), d.tags.end(), "herald") == d.tags.end()) {
    problem("not tagged herald (the link menu lists dashboards by that tag)");
  }

  std::map<std::string, const testing::DashboardVariable*> vars;
  for (const auto& v : d.variables) vars[v.name] = &v;
  if (!vars.contains("datasource")) {
    problem("no datasource variable");
  } else if (vars["datasource"]->type != "datasource" ||
             vars["datasource"]->query != "prometheus") {
    problem("the datasource variable is not a Prometheus data source variable");
  }
  std::vector<std::string_view> variables(std::begin(kSelectorVariables),
                                          std::end(kSelectorVariables));
  variables.insert(variables.end(), std::begin(kLabelVariables), std::end(kLabelVariables));
  for (std::string_view name : variables) {
    const auto it = vars.find(std::string(name));
    if (it == vars.end()) {
      problem("no ", name, " variable");
      continue;
    }
    const testing::DashboardVariable& v = *it->second;
    if (v.type != "query" || v.query.empty())
      problem("variable ", name, " is not a query variable");
    if (v.datasource_uid != kDatasource) {
      problem("variable ", name, " does not query ", kDatasource);
    }
    if (!v.include_all || v.all_value != ".*" || !v.multi) {
      problem("variable ", name, " needs multi-value with All as .*");
    }
  }

  const bool linked =
      std::any_of(d.links.begin(), d.links.end(), [](const testing::DashboardLink& l) {
        return l.type == "dashboards" &&
               std::find(l.tags.begin(), l.tags.end(), "herald") != l.tags.end() &&
               l.include_vars && l.keep_time;
      });
  if (!linked) problem("no link menu to the herald dashboards keeping time and variables");

  if (d.panels.empty()) problem("no panels");
  std::set<int> ids;
  std::set<std::string> titles;
  for (const DashboardPanel& p : d.panels) {
    if (!ids.insert(p.id).second) problem("panel id ", p.id, " twice");
    if (!titles.insert(p.title).second) problem("panel title '", p.title, "' twice");
    for (std::string& s : LintPanel(p, uids, catalogue)) problem(s);
  }
  return problems;
}

class DashboardLint : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dashboards = testing::LoadDashboards(testing::SourcePath("deploy/grafana/dashboards"));
    ASSERT_TRUE(dashboards.ok()) << dashboards.status();
    dashboards_ = *std::move(dashboards);
    for (const Dashboard& d : dashboards_) uids_.insert(d.uid);
    auto ops = testing::ReadTextFile(testing::SourcePath("docs/operations.md"));
    ASSERT_TRUE(ops.ok()) << ops.status();
    catalogue_ = testing::ParseMetricsCatalogue(*ops);
    ASSERT_FALSE(catalogue_.empty()) << "no metrics catalogue in docs/operations.md";
  }

  std::vector<std::string> Lint(const Dashboard& d) const {
    return LintDashboard(d, uids_, catalogue_);
  }

  std::vector<Dashboard> dashboards_;
  std::set<std::string> uids_;
  std::map<std::string, testing::CatalogueEntry> catalogue_;
};

TEST_F(DashboardLint, TheFiveDashboardsExistOnceEach) {
  EXPECT_EQ(uids_.size(), dashboards_.size()) << "two dashboards share a uid";
  for (const char* uid :
       {"herald-overview", "herald-queue", "herald-limits", "herald-ingest", "herald-process"}) {
    EXPECT_TRUE(uids_.contains(uid)) << uid;
  }
}

TEST_F(DashboardLint, EveryDashboardPasses) {
  for (const Dashboard& d : dashboards_) {
    EXPECT_THAT(Lint(d), IsEmpty()) << d.file;
  }
}

TEST_F(DashboardLint, CatchesWhatItChecks) {
  // One panel with every fault the lint looks for.
  constexpr std::string_view kBad = R"json({
    "uid": "other", "title": "Bad", "tags": [],
    "templating": {"list": [{"name": "namespace", "type": "custom", "query": "a,b"}]},
    "links": [],
    "panels": [{
      "id": 1, "type": "timeseries", "title": "Rate",
      "datasource": {"type": "prometheus", "uid": "prometheus"},
      "fieldConfig": {"defaults": {}},
      "links": [{"url": "/d/nowhere"}],
      "targets": [
        {"refId": "A", "datasource": {"uid": "prometheus"},
         "expr": "sum(rate(herald_jobs_total{instance=~\"$instance\"}[5m]))"},
        {"refId": "B", "datasource": {"uid": "${datasource}"},
         "expr": "herald_not_a_metric{namespace=~\"$namespace\", role=~\"$role\", instance=~\"$instance\"}"}
      ]
}]
})json";
  auto d = testing::ParseDashboard(kBad, "bad.json");
  ASSERT_TRUE(d.ok()) << d.status();
  const std::vector<std::string> problems = Lint(*d);
  for (std::string_view expected :
       {"uid 'other'", "not tagged herald", "no datasource variable",
        "variable namespace is not a query", "no role variable", "no instance variable",
        "no link menu", "no description", "no unit", "panel data source is 'prometheus'",
        "query A data source", "[5m], not [$__rate_interval]",
        "herald_jobs_total is not filtered by namespace",
        "herald_jobs_total is not filtered by role",
        "herald_not_a_metric is not in docs/operations.md", "link '/d/nowhere'"}) {
    EXPECT_THAT(problems, Contains(HasSubstr(std::string(expected)))) << expected;
  }
}

TEST_F(DashboardLint, SelectorsAndRangesAreFoundOutsideStrings) {
  const auto selectors = testing::MetricSelectors(
      R"(histogram_quantile(0.99, sum by (le) (rate(herald_job_duration_seconds_bucket{kind="herald_x"}[$__rate_interval]))) / on() group_left process_threads)");
  ASSERT_EQ(selectors.size(), 2u);
  EXPECT_EQ(selectors[0].metric, "herald_job_duration_seconds_bucket");
  EXPECT_EQ(selectors[0].matchers, R"(kind="herald_x")");
  EXPECT_EQ(selectors[0].range, "$__rate_interval");
  EXPECT_EQ(selectors[1].metric, "process_threads");
  EXPECT_FALSE(selectors[1].has_braces);
  EXPECT_THAT(testing::Ranges(R"(rate(x{a="[1m]"}[2m]) + y[3m:1m])"),
              ::testing::ElementsAre("2m", "3m:1m"));
  EXPECT_EQ(testing::MetricFamily("herald_job_duration_seconds_bucket"),
            "herald_job_duration_seconds");
  EXPECT_EQ(testing::ExpandVariables(
                R"(x{a=~"$role", b=~"${roles}", c="${role:regex}"}[$__rate_interval])",
                {{"role", ".*"}, {"roles", "r"}, {"__rate_interval", "1m"}}),
            R"(x{a=~".*", b=~"r", c=".*"}[1m])");
}

// Grafana loads the dashboards from the directory the provider names, and $__rate_interval needs
// the data source's scrape interval.
TEST(DeployGrafanaProvisioning, ProviderAndDataSourceAreComplete) {
  const YAML::Node providers =
      YAML::LoadFile(testing::SourcePath("deploy/grafana/provisioning/dashboards/herald.yml"));
  ASSERT_EQ(providers["apiVersion"].as<int>(), 1);
  ASSERT_TRUE(providers["providers"].IsSequence());
  ASSERT_EQ(providers["providers"].size(), 1u);
  const YAML::Node provider = providers["providers"][0];
  EXPECT_EQ(provider["type"].as<std::string>(), "file");
  EXPECT_FALSE(provider["options"]["path"].as<std::string>().empty());

  const YAML::Node sources =
      YAML::LoadFile(testing::SourcePath("deploy/grafana/provisioning/datasources/herald.yml"));
  ASSERT_EQ(sources["apiVersion"].as<int>(), 1);
  ASSERT_TRUE(sources["datasources"].IsSequence());
  ASSERT_EQ(sources["datasources"].size(), 1u);
  const YAML::Node source = sources["datasources"][0];
  EXPECT_EQ(source["type"].as<std::string>(), "prometheus");
  EXPECT_FALSE(source["url"].as<std::string>().empty());
  EXPECT_FALSE(source["jsonData"]["timeInterval"].as<std::string>().empty());
}

}  // namespace
}  // namespace herald
