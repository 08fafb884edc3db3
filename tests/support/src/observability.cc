#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include <herald/common/strings.h>
#include <herald/testing/observability.h>

namespace herald::testing {
namespace {

namespace json = boost::json;

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

bool Bool(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->as_bool();
}

const json::object* Obj(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}

const json::array* Arr(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_array() ? &v->as_array() : nullptr;
}

std::vector<std::string> Strings(const json::array* a) {
  std::vector<std::string> out;
  if (a == nullptr) return out;
  for (const json::value& v : *a) {
    if (v.is_string()) out.emplace_back(v.as_string());
  }
  return out;
}

// A datasource reference: {"type": ..., "uid": ...}, or the older plain name string.
void ReadDatasource(const json::object& o, std::string& type, std::string& uid) {
  const json::value* v = o.if_contains("datasource");
  if (v == nullptr) return;
  if (v->is_string()) {
    uid = std::string(v->as_string());
  } else if (v->is_object()) {
    type = Str(v->as_object(), "type");
    uid = Str(v->as_object(), "uid");
  }
}

void ReadPanels(const json::array* panels, std::vector<DashboardPanel>& out) {
  if (panels == nullptr) return;
  for (const json::value& v : *panels) {
    if (!v.is_object()) continue;
    const json::object& p = v.as_object();
    if (Str(p, "type") == "row") {
      ReadPanels(Arr(p, "panels"), out);  // a collapsed row holds its panels
      continue;
    }
    DashboardPanel panel;
    if (const json::value* id = p.if_contains("id"); id != nullptr && id->is_int64()) {
      panel.id = static_cast<int>(id->as_int64());
    }
    panel.type = Str(p, "type");
    panel.title = Str(p, "title");
    panel.description = Str(p, "description");
    if (const json::object* fc = Obj(p, "fieldConfig")) {
      if (const json::object* defaults = Obj(*fc, "defaults")) panel.unit = Str(*defaults, "unit");
    }
    ReadDatasource(p, panel.datasource_type, panel.datasource_uid);
    if (const json::array* targets = Arr(p, "targets")) {
      for (const json::value& t : *targets) {
        if (!t.is_object()) continue;
        DashboardQuery q{.ref_id = Str(t.as_object(), "refId"), .expr = Str(t.as_object(), "expr")};
        ReadDatasource(t.as_object(), q.datasource_type, q.datasource_uid);
        panel.queries.push_back(std::move(q));
      }
    }
    if (const json::array* links = Arr(p, "links")) {
      for (const json::value& l : *links) {
        if (l.is_object()) panel.link_urls.push_back(Str(l.as_object(), "url"));
      }
    }
    out.push_back(std::move(panel));
  }
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}

// The index just past the string literal opening at `i` ("...", '...' or `...`).
size_t SkipString(std::string_view s, size_t i) {
  const char quote = s[i];
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\' && quote != '`') {
      ++i;
    } else if (s[i] == quote) {
      return i + 1;
    }
  }
  return s.size();
}

// The index just past the bracket group opening at `i` (braces or brackets), strings skipped.
size_t SkipGroup(std::string_view s, size_t i) {
  const char open = s[i];
  const char close = open == '{' ? '}' : ']';
  for (++i; i < s.size();) {
    if (s[i] == '"' || s[i] == '\'' || s[i] == '`') {
      i = SkipString(s, i);
    } else if (s[i] == close) {
      return i + 1;
    } else {
      ++i;
    }
  }
  return s.size();
}

bool IsMetricName(std::string_view ident) {
  return ident.starts_with("herald_") || ident.starts_with("process_") || ident == "up";
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// The cells of a Markdown table row "| a | b |", trimmed.
std::vector<std::string> Cells(std::string_view line) {
  std::vector<std::string> cells;
  std::string_view rest = line.substr(1);
  while (!rest.empty()) {
    const size_t bar = rest.find('|');
    if (bar == std::string_view::npos) break;
    cells.push_back(Trim(rest.substr(0, bar)));
    rest.remove_prefix(bar + 1);
  }
  return cells;
}

std::map<std::string, std::string> YamlStringMap(const YAML::Node& node) {
  std::map<std::string, std::string> out;
  if (!node || !node.IsMap()) return out;
  for (const auto& kv : node) out.emplace(kv.first.as<std::string>(), kv.second.as<std::string>());
  return out;
}

}  // namespace

std::string SourcePath(std::string_view relative) {
  return StrCat(HERALD_SOURCE_DIR, "/", relative);
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<Dashboard> ParseDashboard(std::string_view json_text, std::string file) {
  boost::system::error_code ec;
  json::value v = json::parse(json_text, ec);
  if (ec || !v.is_object()) {
    return absl::InvalidArgumentError(StrCat(file, ": not a JSON object: ", ec.message()));
  }
  const json::object& d = v.as_object();
  Dashboard out{.file = std::move(file), .uid = Str(d, "uid"), .title = Str(d, "title")};
  out.tags = Strings(Arr(d, "tags"));
  if (const json::object* templating = Obj(d, "templating")) {
    if (const json::array* list = Arr(*templating, "list")) {
      for (const json::value& x : *list) {
        if (!x.is_object()) continue;
        const json::object& o = x.as_object();
        DashboardVariable var{.name = Str(o, "name"),
                              .type = Str(o, "type"),
                              .include_all = Bool(o, "includeAll"),
                              .all_value = Str(o, "allValue"),
                              .multi = Bool(o, "multi")};
        if (const json::value* q = o.if_contains("query"); q != nullptr && q->is_string()) {
          var.query = std::string(q->as_string());
        } else if (const json::object* qo = Obj(o, "query")) {
          var.query = Str(*qo, "query");
        }
        std::string ignored;
        ReadDatasource(o, ignored, var.datasource_uid);
        out.variables.push_back(std::move(var));
      }
    }
  }
  if (const json::array* links = Arr(d, "links")) {
    for (const json::value& x : *links) {
      if (!x.is_object()) continue;
      const json::object& o = x.as_object();
      out.links.push_back({.type = Str(o, "type"),
                           .tags = Strings(Arr(o, "tags")),
                           .url = Str(o, "url"),
                           .include_vars = Bool(o, "includeVars"),
                           .keep_time = Bool(o, "keepTime")});
    }
  }
  ReadPanels(Arr(d, "panels"), out.panels);
  return out;
}

absl::StatusOr<std::vector<Dashboard>> LoadDashboards(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  if (ec) return absl::NotFoundError(StrCat("cannot list ", dir, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  std::vector<Dashboard> out;
  for (const auto& f : files) {
    absl::StatusOr<std::string> text = ReadTextFile(f.string());
    if (!text.ok()) return text.status();
    absl::StatusOr<Dashboard> d = ParseDashboard(*text, f.filename().string());
    if (!d.ok()) return d.status();
    out.push_back(*std::move(d));
  }
  return out;
}

std::string ExpandVariables(std::string_view expr,
                            const std::map<std::string, std::string>& values) {
  std::vector<std::pair<std::string, std::string>> by_length(values.begin(), values.end());
  std::sort(by_length.begin(), by_length.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::string out;
  for (size_t i = 0; i < expr.size();) {
    if (expr[i] != '$') {
      out.push_back(expr[i++]);
      continue;
    }
    bool replaced = false;
    for (const auto& [name, value] : by_length) {
      const std::string_view rest = expr.substr(i + 1);
      if (rest.starts_with("{" + name + "}")) {
        out += value;
        i += name.size() + 3;
      } else if (rest.starts_with("{" + name + ":")) {
        const size_t close = rest.find('}');
        if (close == std::string_view::npos) continue;
        out += value;
        i += close + 2;
      } else if (rest.starts_with(name) &&
                 (rest.size() == name.size() || !IsIdentChar(rest[name.size()]))) {
        out += value;
        i += name.size() + 1;
      } else {
        continue;
      }
      replaced = true;
      break;
    }
    if (!replaced) out.push_back(expr[i++]);
  }
  return out;
}

std::vector<MetricSelector> MetricSelectors(std::string_view expr) {
  std::vector<MetricSelector> out;
  for (size_t i = 0; i < expr.size();) {
    const char c = expr[i];
    if (c == '"' || c == '\'' || c == '`') {
      i = SkipString(expr, i);
    } else if (c == '{' || c == '[') {
      i = SkipGroup(expr, i);  // matchers or a range not following a metric: not metrics
    } else if (IsIdentStart(c) && (i == 0 || !IsIdentChar(expr[i - 1]))) {
      size_t end = i;
      while (end < expr.size() && IsIdentChar(expr[end])) ++end;
      const std::string_view ident = expr.substr(i, end - i);
      i = end;
      size_t next = end;
      while (next < expr.size() && std::isspace(static_cast<unsigned char>(expr[next]))) ++next;
      // A function call or a grouping keyword's label list is not a selector.
      if (!IsMetricName(ident) || (next < expr.size() && expr[next] == '(')) continue;
      MetricSelector sel{.metric = std::string(ident)};
      if (next < expr.size() && expr[next] == '{') {
        const size_t close = SkipGroup(expr, next);
        sel.has_braces = true;
        sel.matchers = std::string(expr.substr(next + 1, close - next - 2));
        next = close;
        i = close;
      }
      while (next < expr.size() && std::isspace(static_cast<unsigned char>(expr[next]))) ++next;
      if (next < expr.size() && expr[next] == '[') {
        const size_t close = SkipGroup(expr, next);
        sel.range = std::string(expr.substr(next + 1, close - next - 2));
        i = close;
      }
      out.push_back(std::move(sel));
    } else {
      ++i;
    }
  }
  return out;
}

std::vector<std::string> Ranges(std::string_view expr) {
  std::vector<std::string> out;
  for (size_t i = 0; i < expr.size();) {
    const char c = expr[i];
    if (c == '"' || c == '\'' || c == '`') {
      i = SkipString(expr, i);
    } else if (c == '{') {
      i = SkipGroup(expr, i);
    } else if (c == '[') {
      const size_t close = SkipGroup(expr, i);
      out.emplace_back(expr.substr(i + 1, close - i - 2));
      i = close;
    } else {
      ++i;
    }
  }
  return out;
}

std::string MetricFamily(std::string_view series_name) {
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (series_name.ends_with(suffix)) {
      return std::string(series_name.substr(0, series_name.size() - suffix.size()));
    }
  }
  return std::string(series_name);
}

absl::StatusOr<std::vector<AlertRule>> ParseAlertRules(std::string_view yaml_text) {
  std::vector<AlertRule> out;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    const YAML::Node groups = root["groups"];
    if (!groups || !groups.IsSequence()) {
      return absl::InvalidArgumentError("a rule file needs a `groups` list");
    }
    for (const YAML::Node& g : groups) {
      const std::string group = g["name"] ? g["name"].as<std::string>() : "";
      if (!g["rules"]) continue;
      for (const YAML::Node& r : g["rules"]) {
        if (!r["alert"]) continue;  // a recording rule
        out.push_back({.group = group,
                       .name = r["alert"].as<std::string>(),
                       .expr = r["expr"] ? r["expr"].as<std::string>() : "",
                       .for_duration = r["for"] ? r["for"].as<std::string>() : "",
                       .labels = YamlStringMap(r["labels"]),
                       .annotations = YamlStringMap(r["annotations"])});
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("rule file: ", e.what()));
  }
  return out;
}

absl::StatusOr<std::vector<AlertRule>> LoadAlertRules(const std::string& path) {
  absl::StatusOr<std::string> text = ReadTextFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::vector<AlertRule>> rules = ParseAlertRules(*text);
  if (!rules.ok()) return absl::InvalidArgumentError(StrCat(path, ": ", rules.status().message()));
  return rules;
}

std::string GithubAnchor(std::string_view heading) {
  std::string out;
  for (char c : heading) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_') {
      out.push_back(static_cast<char>(std::tolower(u)));
    } else if (c == ' ') {
      out.push_back('-');
    }
  }
  return out;
}

std::map<std::string, MarkdownSection> MarkdownSections(std::string_view markdown) {
  std::map<std::string, MarkdownSection> out;
  MarkdownSection* current = nullptr;
  bool in_code = false;
  std::istringstream lines{std::string(markdown)};
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("```")) in_code = !in_code;
    if (!in_code && line.starts_with("#")) {
      const size_t level = line.find_first_not_of('#');
      if (level != std::string::npos && line[level] == ' ') {
        const std::string heading = Trim(std::string_view(line).substr(level));
        auto [it, inserted] =
            out.try_emplace(GithubAnchor(heading),
                            MarkdownSection{.heading = heading, .level = static_cast<int>(level)});
        current = inserted ? &it->second : nullptr;  // GitHub suffixes repeats: not linkable here
        continue;
      }
    }
    if (current != nullptr) StrAppend(&current->body, line, "\n");
  }
  return out;
}

std::map<std::string, CatalogueEntry> ParseMetricsCatalogue(std::string_view markdown) {
  std::map<std::string, CatalogueEntry> out;
  std::istringstream lines{std::string(markdown)};
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("| `")) continue;
    const std::vector<std::string> cells = Cells(line);
    if (cells.size() < 4 || cells[0].size() < 3 || cells[0].back() != '`') continue;
    const std::string name = cells[0].substr(1, cells[0].size() - 2);
    if (!IsMetricName(name)) continue;
    out[name] = {.type = cells[1], .labels = cells[2], .meaning = cells[3]};
  }
  return out;
}

std::map<std::string, std::string> ExpositionFamilies(std::string_view exposition) {
  std::map<std::string, std::string> out;
  std::istringstream lines{std::string(exposition)};
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("# TYPE ")) continue;
    std::istringstream fields(line.substr(7));
    std::string name, type;
    fields >> name >> type;
    out[name] = type;
  }
  return out;
}

double FamilySum(std::string_view exposition, std::string_view family) {
  std::istringstream lines{std::string(exposition)};
  double sum = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > family.size() && line.starts_with(family) &&
        (line[family.size()] == '{' || line[family.size()] == ' ')) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

std::optional<double> SeriesValue(std::string_view exposition, std::string_view series) {
  std::istringstream lines{std::string(exposition)};
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

}  // namespace herald::testing
