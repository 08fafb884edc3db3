// A real Prometheus for end-to-end tests: Debian's `prometheus` (installed by tools/install-deps)
// with a scrape configuration and rule files written for the test, on a free port, with a
// throw-away TSDB in its own temporary directory, and a blocking client of its HTTP API.
//
//   auto prom = PrometheusServer::Start(
//       {.targets = {{.job = "herald", .address = "127.0.0.1:9090", .labels = {{"role", "all"}}}},
//        .rule_files = {SourcePath("deploy/prometheus/herald-rules.yml")}});
//   ASSERT_TRUE(prom.ok()) << prom.status();
//   auto up = (*prom)->Query("up");      // the evaluated vector, or Prometheus' error
//   auto alerts = (*prom)->Alerts();     // pending and firing alerts
//
// The process is killed when the object dies. Not thread-safe; the HTTP calls are blocking, each
// with a 10 s deadline.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <herald/testing/subprocess.h>

namespace herald::testing {

class PrometheusServer {
 public:
  struct ScrapeTarget {
    std::string job;                            // job_name
    std::string address;                        // host:port, scraped at /metrics over HTTP
    std::map<std::string, std::string> labels;  // target labels added to every series
  };
  struct Options {
    std::vector<ScrapeTarget> targets;
    std::vector<std::string> rule_files;  // absolute paths
    absl::Duration scrape_interval = absl::Seconds(1);
    absl::Duration evaluation_interval = absl::Seconds(1);
  };

  // Writes the configuration, starts Prometheus and waits (up to 30 s) until /-/ready answers
  // 200. Fails with Prometheus' log when it exits first (an invalid rule file, for example).
  static absl::StatusOr<std::unique_ptr<PrometheusServer>> Start(Options options);

  uint16_t port() const { return port_; }
  // Prometheus' log, for assertion messages.
  std::string Logs() const { return process_.Stderr(); }

  struct Sample {
    std::map<std::string, std::string> labels;  // with __name__ when the result keeps it
    double value = 0;                           // the value as Prometheus wrote it (NaN too)
  };
  struct QueryResult {
    std::string type;  // "vector", "scalar", "matrix" or "string"
    // A vector's samples; a scalar is one sample without labels; a matrix gives each series'
    // last value.
    std::vector<Sample> samples;
  };
  // An instant query (GET /api/v1/query) evaluated now. A query Prometheus refuses (a parse or
  // execution error) is InvalidArgument with Prometheus' errorType and message; a failed HTTP
  // exchange is Unavailable.
  absl::StatusOr<QueryResult> Query(std::string_view promql) const;

  struct Alert {
    std::string name;   // alertname
    std::string state;  // "pending" or "firing"
    std::map<std::string, std::string> labels;
    std::map<std::string, std::string> annotations;
  };
  // Every active alert (GET /api/v1/alerts).
  absl::StatusOr<std::vector<Alert>> Alerts() const;

  struct Target {
    std::string job;
    std::string address;  // __address__ of the discovered target
    std::string health;   // "up", "down" or "unknown"
    std::string last_error;
  };
  // Every active scrape target (GET /api/v1/targets).
  absl::StatusOr<std::vector<Target>> Targets() const;

 private:
  PrometheusServer(Subprocess process, uint16_t port) : process_(std::move(process)), port_(port) {}

  // The "data" member of a successful API answer to GET `target`, as JSON text.
  absl::StatusOr<std::string> Get(std::string_view target) const;

  Subprocess process_;
  uint16_t port_;
};

}  // namespace herald::testing
