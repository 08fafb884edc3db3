// Cost of the hot-path operations: counter increment, histogram observe, and one scrape.
//   build/libs/metrics/metrics_bench
#include <benchmark/benchmark.h>

#include <herald/metrics/metrics.h>

namespace herald::metrics {
namespace {

Registry& SharedRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

void BM_CounterIncrement(benchmark::State& state) {
  static Counter& c = SharedRegistry().AddCounter("bench_total", "bench", {}).Add({});
  for (auto _ : state) c.Increment();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2)->Threads(4);

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
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->Threads(4);

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

BENCHMARK_MAIN();
