// Hot-path cost of Herald's metrics: counter increment and histogram observe, from 1 and 2
// threads, against a single shared std::atomic (what a naive counter costs), and one scrape.
//
//   build/tools/bench/metrics_bench
#include <atomic>

#include <benchmark/benchmark.h>

#include <herald/metrics/metrics.h>

#include "ratio_main.h"

namespace herald::metrics {
namespace {

Registry& SharedRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

// Baseline: every thread adds to one shared atomic integer.
void BM_BaselineSharedAtomic(benchmark::State& state) {
  static std::atomic<uint64_t> shared{0};
  for (auto _ : state) shared.fetch_add(1, std::memory_order_relaxed);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BaselineSharedAtomic)->Threads(1)->Threads(2)->UseRealTime();

void BM_CounterIncrement(benchmark::State& state) {
  static Counter& c = SharedRegistry().AddCounter("bench_total", "bench", {}).Add({});
  for (auto _ : state) c.Increment();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2)->UseRealTime();
HERALD_BENCH_BASELINE(BM_CounterIncrement, BM_BaselineSharedAtomic);

void BM_HistogramObserve(benchmark::State& state) {
  static Histogram& h =
      SharedRegistry()
          .AddHistogram("bench_seconds", "bench", {}, ExponentialBuckets(0.0005, 2, 16))
          .Add({});
  double v = 0.0001;
  for (auto _ : state) {
    h.Observe(v);
    v = v > 10 ? 0.0001 : v * 1.7;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->UseRealTime();
HERALD_BENCH_BASELINE(BM_HistogramObserve, BM_BaselineSharedAtomic);

// One scrape of a registry the size of a busy Herald process (10 job kinds x 4 outcomes, 10
// latency histograms).
void BM_Serialize(benchmark::State& state) {
  Registry registry;
  auto& jobs = registry.AddCounter("jobs_total", "jobs", {"kind", "outcome"});
  auto& lat =
      registry.AddHistogram("lat_seconds", "lat", {"kind"}, ExponentialBuckets(0.001, 2, 14));
  for (int k = 0; k < 10; ++k) {
    for (const char* o : {"ok", "retry", "dead", "rate_limited"}) {
      jobs.Add({{"kind", std::to_string(k)}, {"outcome", o}}).Increment(k);
    }
    lat.Add({{"kind", std::to_string(k)}}).Observe(0.01 * k);
  }
  for (auto _ : state) benchmark::DoNotOptimize(registry.Serialize());
}
BENCHMARK(BM_Serialize);

}  // namespace
}  // namespace herald::metrics
