#include "ratio_main.h"

#include <cstdio>
#include <map>
#include <set>
#include <vector>

#include <benchmark/benchmark.h>

namespace herald::bench {
namespace {

std::map<std::string, std::string>& Baselines() {
  static auto* baselines = new std::map<std::string, std::string>();
  return *baselines;
}

// Prints to the console as usual and remembers real time per iteration for the ratio table:
// the median over repetitions when --benchmark_repetitions asks for several, else the one run.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const std::string name = run.run_name.str();
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name == "median") {
        seconds_[name] = run.GetAdjustedRealTime();
        medians_.insert(name);
      } else if (run.run_type == Run::RT_Iteration && !medians_.contains(name)) {
        seconds_[name] = run.GetAdjustedRealTime();
      }
    }
  }

  void PrintRatios() const {
    bool header = false;
    for (const auto& [name, time] : seconds_) {
      const size_t slash = name.find('/');
      const std::string base = name.substr(0, slash);
      const std::string suffix = slash == std::string::npos ? "" : name.substr(slash);
      auto b = Baselines().find(base);
      if (b == Baselines().end()) continue;
      auto baseline = seconds_.find(b->second + suffix);
      if (baseline == seconds_.end() || baseline->second <= 0) continue;
      if (!header) {
        std::printf("\n%-48s %-48s %s\n", "benchmark", "baseline (same run)", "time / baseline");
        header = true;
      }
      std::printf("%-48s %-48s %.2f\n", name.c_str(), baseline->first.c_str(),
                  time / baseline->second);
    }
  }

 private:
  std::map<std::string, double> seconds_;
  std::set<std::string> medians_;
};

}  // namespace

bool AddBaseline(const std::string& benchmark, const std::string& baseline) {
  Baselines()[benchmark] = baseline;
  return true;
}

}  // namespace herald::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  herald::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
