#include <cmath>
#include <fstream>
#include <limits>

#include <boost/json.hpp>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/prometheus_server.h>
#include <herald/testing/wait.h>

namespace herald::testing {
namespace {

namespace json = boost::json;

// A Prometheus duration: whole milliseconds.
std::string PromDuration(absl::Duration d) { return StrCat(absl::ToInt64Milliseconds(d), "ms"); }

// A YAML double-quoted scalar.
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string Config(const PrometheusServer::Options& options) {
  std::string out =
      StrCat("global:\n  scrape_interval: ", PromDuration(options.scrape_interval),
             "\n  scrape_timeout: ", PromDuration(options.scrape_interval),
             "\n  evaluation_interval: ", PromDuration(options.evaluation_interval), "\n");
  if (!options.rule_files.empty()) {
    out += "rule_files:\n";
    for (const std::string& f : options.rule_files) StrAppend(&out, "  - ", Quoted(f), "\n");
  }
  // One scrape job per job name, one static config per target (each with its own labels).
  std::map<std::string, std::vector<const PrometheusServer::ScrapeTarget*>> jobs;
  for (const auto& t : options.targets) jobs[t.job].push_back(&t);
  out += "scrape_configs:\n";
  for (const auto& [job, targets] : jobs) {
    StrAppend(&out, "  - job_name: ", Quoted(job), "\n    static_configs:\n");
    for (const auto* t : targets) {
      StrAppend(&out, "      - targets: [", Quoted(t->address), "]\n");
      if (!t->labels.empty()) {
        out += "        labels:\n";
        for (const auto& [k, v] : t->labels)
          StrAppend(&out, "          ", k, ": ", Quoted(v), "\n");
      }
    }
  }
  return out;
}

std::map<std::string, std::string> StringMap(const json::value* v) {
  std::map<std::string, std::string> out;
  if (v == nullptr || !v->is_object()) return out;
  for (const auto& [k, val] : v->as_object()) {
    if (val.is_string()) out.emplace(std::string(k), std::string(val.as_string()));
  }
  return out;
}

std::string String(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

// A sample value as the API writes it: [<time>, "<value>"], the value possibly "NaN" or "+Inf".
double SampleValue(const json::value& pair) {
  if (!pair.is_array() || pair.as_array().size() != 2 || !pair.as_array()[1].is_string()) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  const std::string text(pair.as_array()[1].as_string());
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text == "+Inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf") return -std::numeric_limits<double>::infinity();
  return std::strtod(text.c_str(), nullptr);
}

// An API answer whose data has not the shape the API documents.
absl::Status Unexpected(std::string_view what, std::string_view data, const std::exception& e) {
  return absl::UnavailableError(StrCat("unexpected ", what, " data (", e.what(), "): ", data));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PrometheusServer>> PrometheusServer::Start(Options options) {
  const std::string dir = MakeTempDir("prometheus");
  const std::string config = dir + "/prometheus.yml";
  std::ofstream(config) << Config(options);
  // The port is free when picked but may be taken before Prometheus binds it: try again.
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const uint16_t port = PickFreePort();
    auto process = Subprocess::Start(
        {.argv = {"/usr/bin/prometheus", StrCat("--config.file=", config),
                  StrCat("--storage.tsdb.path=", dir, "/data-", attempt),
                  StrCat("--web.listen-address=127.0.0.1:", port), "--log.level=warn"}});
    if (!process.ok()) {
      return absl::FailedPreconditionError(
          StrCat("cannot run /usr/bin/prometheus (tools/install-deps installs it): ",
                 process.status().message()));
    }
    std::unique_ptr<PrometheusServer> server(new PrometheusServer(std::move(*process), port));
    const bool ready = WaitFor(
        [&] {
          if (!server->process_.running()) return true;
          auto r = HttpGet(port, "/-/ready");
          return r.ok() && r->status == 200;
        },
        absl::Seconds(30));
    if (ready && server->process_.running()) return server;
    last =
        absl::UnavailableError(StrCat("prometheus did not become ready on port ", port,
                                      "; config:\n", Config(options), "\nlog:\n", server->Logs()));
    if (server->process_.running()) return last;  // not a start-up exit: no retry
  }
  return last;
}

absl::StatusOr<std::string> PrometheusServer::Get(std::string_view target) const {
  auto r = HttpGet(port_, target);
  if (!r.ok()) return absl::UnavailableError(StrCat("GET ", target, ": ", r.status().message()));
  boost::system::error_code ec;
  json::value body = json::parse(r->body, ec);
  if (ec || !body.is_object()) {
    return absl::UnavailableError(
        StrCat("GET ", target, ": HTTP ", r->status, " with a body that is not JSON: ", r->body));
  }
  const json::object& o = body.as_object();
  if (String(o, "status") != "success") {
    return absl::InvalidArgumentError(
        StrCat(String(o, "errorType"), ": ", String(o, "error"), " (HTTP ", r->status, ")"));
  }
  const json::value* data = o.if_contains("data");
  if (data == nullptr) return absl::UnavailableError(StrCat("GET ", target, ": no data"));
  return json::serialize(*data);
}

absl::StatusOr<PrometheusServer::QueryResult> PrometheusServer::Query(
    std::string_view promql) const {
  absl::StatusOr<std::string> data = Get(StrCat("/api/v1/query?query=", PercentEncode(promql)));
  if (!data.ok()) return data.status();
  try {
    const json::value v = json::parse(*data);
    QueryResult out;
    out.type = String(v.as_object(), "resultType");
    const json::value& result = v.at("result");
    if (out.type == "scalar") {
      out.samples.push_back({.value = SampleValue(result)});
    } else if (out.type == "matrix") {
      for (const json::value& s : result.as_array()) {
        const json::array& values = s.at("values").as_array();
        out.samples.push_back({.labels = StringMap(s.as_object().if_contains("metric")),
                               .value = values.empty() ? std::numeric_limits<double>::quiet_NaN()
                                                       : SampleValue(values.back())});
      }
    } else if (out.type == "vector") {
      for (const json::value& s : result.as_array()) {
        out.samples.push_back({.labels = StringMap(s.as_object().if_contains("metric")),
                               .value = SampleValue(s.at("value"))});
      }
    }
    return out;
  } catch (const std::exception& e) {
    return Unexpected("query", *data, e);
  }
}

absl::StatusOr<std::vector<PrometheusServer::Alert>> PrometheusServer::Alerts() const {
  absl::StatusOr<std::string> data = Get("/api/v1/alerts");
  if (!data.ok()) return data.status();
  try {
    const json::value v = json::parse(*data);
    std::vector<Alert> out;
    for (const json::value& a : v.at("alerts").as_array()) {
      const json::object& o = a.as_object();
      Alert alert{.state = String(o, "state"),
                  .labels = StringMap(o.if_contains("labels")),
                  .annotations = StringMap(o.if_contains("annotations"))};
      alert.name = alert.labels["alertname"];
      out.push_back(std::move(alert));
    }
    return out;
  } catch (const std::exception& e) {
    return Unexpected("alerts", *data, e);
  }
}

absl::StatusOr<std::vector<PrometheusServer::Target>> PrometheusServer::Targets() const {
  absl::StatusOr<std::string> data = Get("/api/v1/targets?state=active");
  if (!data.ok()) return data.status();
  try {
    const json::value v = json::parse(*data);
    std::vector<Target> out;
    for (const json::value& t : v.at("activeTargets").as_array()) {
      const json::object& o = t.as_object();
      const auto discovered = StringMap(o.if_contains("discoveredLabels"));
      const auto it = discovered.find("__address__");
      out.push_back({.job = String(o, "scrapePool"),
                     .address = it == discovered.end() ? "" : it->second,
                     .health = String(o, "health"),
                     .last_error = String(o, "lastError")});
    }
    return out;
  } catch (const std::exception& e) {
    return Unexpected("targets", *data, e);
  }
}

}  // namespace herald::testing
