// Herald's observability files as tests read them: the Grafana dashboards
// (deploy/grafana/dashboards/*.json), the alert rules (deploy/prometheus/herald-rules.yml), the
// runbooks (sections of deploy/README.md), the metrics catalogue (docs/operations.md), and the
// pieces of PromQL the dashboard lint looks at.
//
//   auto dashboards = LoadDashboards(SourcePath("deploy/grafana/dashboards"));
//   auto rules = LoadAlertRules(SourcePath("deploy/prometheus/herald-rules.yml"));
//
// Loaders fail (InvalidArgument, naming the file) on a file that is not what they read; they do
// not judge content: the tests do.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace herald::testing {

// The path of a file in the source tree, e.g. SourcePath("deploy/README.md").
std::string SourcePath(std::string_view relative);

// A whole file, or NotFound.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

// ---- Grafana dashboards --------------------------------------------------------------------

struct DashboardQuery {
  std::string ref_id;
  std::string expr;
  std::string datasource_type;  // the target's datasource.type; "" when absent
  std::string datasource_uid;   // the target's datasource.uid; "" when absent
};

struct DashboardPanel {
  int id = 0;
  std::string type;  // "timeseries", "stat", "heatmap", "table", ...
  std::string title;
  std::string description;
  std::string unit;  // fieldConfig.defaults.unit
  std::string datasource_type;
  std::string datasource_uid;
  std::vector<DashboardQuery> queries;
  std::vector<std::string> link_urls;  // panel links
};

struct DashboardVariable {
  std::string name;
  std::string type;   // "datasource", "query", ...
  std::string query;  // a query variable's query (a string, or an object's "query")
  std::string datasource_uid;
  bool include_all = false;
  std::string all_value;
  bool multi = false;
};

struct DashboardLink {
  std::string type;  // "dashboards" or "link"
  std::vector<std::string> tags;
  std::string url;
  bool include_vars = false;
  bool keep_time = false;
};

struct Dashboard {
  std::string file;  // the file name, e.g. "queue.json"
  std::string uid;
  std::string title;
  std::vector<std::string> tags;
  std::vector<DashboardVariable> variables;
  std::vector<DashboardLink> links;
  // Every panel, those inside rows included; row panels themselves are left out.
  std::vector<DashboardPanel> panels;
};

// One dashboard from its JSON text; `file` names it in errors.
absl::StatusOr<Dashboard> ParseDashboard(std::string_view json_text, std::string file);
// Every *.json in `dir`, sorted by file name.
absl::StatusOr<std::vector<Dashboard>> LoadDashboards(const std::string& dir);

// `expr` with Grafana variables replaced: $name, ${name} and ${name:format} of each key of
// `values` (longer names first, so $role never eats part of $roles).
std::string ExpandVariables(std::string_view expr,
                            const std::map<std::string, std::string>& values);

// ---- PromQL, as far as the lint needs it ----------------------------------------------------

// One use of a metric in an expression: `metric{matchers}[range]`.
struct MetricSelector {
  std::string metric;
  bool has_braces = false;
  std::string matchers;  // between the braces, as written
  std::string range;     // between the brackets that follow, as written; "" when none
};
// Every herald_*, process_* or `up` metric an expression selects, in order. String literals are
// skipped, so label values never count as metrics.
std::vector<MetricSelector> MetricSelectors(std::string_view expr);
// Every range or subquery (the text between [ and ]) outside string literals.
std::vector<std::string> Ranges(std::string_view expr);
// A histogram's base name for its _bucket, _sum and _count series; other names unchanged.
std::string MetricFamily(std::string_view series_name);

// ---- Alert rules ----------------------------------------------------------------------------

struct AlertRule {
  std::string group;
  std::string name;
  std::string expr;
  std::string for_duration;  // "" when absent
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

// The alerting rules of a Prometheus rule file's YAML text (recording rules are left out).
absl::StatusOr<std::vector<AlertRule>> ParseAlertRules(std::string_view yaml_text);
absl::StatusOr<std::vector<AlertRule>> LoadAlertRules(const std::string& path);

// ---- Markdown -------------------------------------------------------------------------------

struct MarkdownSection {
  std::string heading;  // the heading's text, without the #s
  int level = 0;        // 2 for ##, 3 for ###
  std::string body;     // up to the next heading of any level
};
// Sections by the anchor GitHub gives their heading (GithubAnchor), in file order of first use.
// Headings inside fenced code blocks are not headings.
std::map<std::string, MarkdownSection> MarkdownSections(std::string_view markdown);
// GitHub's anchor for a heading: lower case, spaces to '-', other punctuation dropped.
std::string GithubAnchor(std::string_view heading);

// ---- Metrics catalogue ----------------------------------------------------------------------

struct CatalogueEntry {
  std::string type;  // "counter", "gauge" or "histogram"
  std::string labels;
  std::string meaning;
};
// The rows of docs/operations.md's tables whose first cell is a metric name in backquotes.
std::map<std::string, CatalogueEntry> ParseMetricsCatalogue(std::string_view markdown);

// The metric families of a Prometheus text exposition: name → type, from its # TYPE lines.
std::map<std::string, std::string> ExpositionFamilies(std::string_view exposition);

// The value of one series of a text exposition, written as it appears there:
// `herald_jobs_total{kind="send",outcome="ok"}` (labels sorted by name), or a bare name;
// nullopt when the exposition does not have it.
std::optional<double> SeriesValue(std::string_view exposition, std::string_view series);
// The sum of every series of metric `family` in a text exposition (0 when it has none).
double FamilySum(std::string_view exposition, std::string_view family);

}  // namespace herald::testing
