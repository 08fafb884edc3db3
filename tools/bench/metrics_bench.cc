// Hot-path cost of Herald's metrics (prometheus-cpp's Counter and Histogram behind
// herald::metrics) against the CPU-striped counter and histogram Herald had before, measured in
// the same run: one update, and the updates of one job (5 counters, 2 histograms), from 1 thread
// and from 2 threads updating the same series. Also one scrape of a busy process's registry.
//
//   build/tools/bench/metrics_bench         (or tools/bench/run build --only=metrics)
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <sched.h>

#include <herald/metrics/metrics.h>

#include "ratio_main.h"

namespace herald::metrics {
namespace {

// ---------------------------------------------------------------------------------------------
// BASELINE ONLY: the CPU-striped Counter and Histogram that libs/metrics implemented before it
// moved onto prometheus-cpp, copied unchanged (but for names) so that both run in one binary.
// Nothing in Herald uses them.
namespace striped {

// Hot-path updates go to one of kStripes cache-line-sized cells chosen by the CPU the caller runs
// on, so threads updating the same series do not contend on one cache line; reads add the cells.
inline constexpr size_t kStripes = 8;

size_t ThreadStripe() {
  // The CPU the thread runs on: threads running at the same time are on different CPUs, so they
  // never share a stripe (up to kStripes CPUs). glibc answers from rseq without a system call.
  const int cpu = sched_getcpu();
  if (cpu >= 0) return static_cast<size_t>(cpu) % kStripes;
  static std::atomic<size_t> next{0};
  thread_local const size_t stripe = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
  return stripe;
}

struct alignas(64) StripedDouble {
  std::atomic<double> value{0};
};

class Counter {
 public:
  void Increment(double v = 1.0) {
    if (v > 0) cells_[ThreadStripe()].value.fetch_add(v, std::memory_order_relaxed);
  }
  double Value() const {
    double total = 0;
    for (const auto& cell : cells_) total += cell.value.load(std::memory_order_relaxed);
    return total;
  }

 private:
  std::array<StripedDouble, kStripes> cells_;
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)),
        lines_per_stripe_((bounds_.size() + 1 + 7) / 8),
        lines_(std::make_unique<CountLine[]>(lines_per_stripe_ * kStripes)) {}

  void Observe(double v) {
    const size_t i =
        static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    const size_t stripe = ThreadStripe();
    Count(stripe, i).fetch_add(1, std::memory_order_relaxed);
    sums_[stripe].value.fetch_add(v, std::memory_order_relaxed);
  }

 private:
  struct alignas(64) CountLine {
    std::atomic<uint64_t> counts[8];
  };
  std::atomic<uint64_t>& Count(size_t stripe, size_t bucket) const {
    return lines_[stripe * lines_per_stripe_ + bucket / 8].counts[bucket % 8];
  }

  const std::vector<double> bounds_;
  const size_t lines_per_stripe_;
  std::unique_ptr<CountLine[]> lines_;
  std::array<StripedDouble, kStripes> sums_;
};

}  // namespace striped
// ---------------------------------------------------------------------------------------------

// Latency-like values spread over the buckets, different on each call.
struct Values {
  double v = 0.0001;
  double Next() {
    v = v > 10 ? 0.0001 : v * 1.7;
    return v;
  }
};

const std::vector<double>& Buckets() {
  static const auto* buckets = new std::vector<double>(ExponentialBuckets(0.0005, 2, 16));
  return *buckets;
}

// Every benchmark's series live in one registry, as in a Herald process; each benchmark's
// threads share its series.
Registry& SharedRegistry() {
  static Registry* registry = new Registry();
  return *registry;
}

// For reference: every thread adds to one shared atomic integer (what a naive counter costs).
void BM_SharedAtomic(benchmark::State& state) {
  static std::atomic<uint64_t> shared{0};
  for (auto _ : state) shared.fetch_add(1, std::memory_order_relaxed);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SharedAtomic)->Threads(1)->Threads(2)->UseRealTime();

void BM_StripedCounterIncrement(benchmark::State& state) {
  static striped::Counter c;
  for (auto _ : state) c.Increment();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StripedCounterIncrement)->Threads(1)->Threads(2)->UseRealTime();

void BM_CounterIncrement(benchmark::State& state) {
  static Counter& c = SharedRegistry().AddCounter("bench_total", "bench", {}).Add({});
  for (auto _ : state) c.Increment();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2)->UseRealTime();
HERALD_BENCH_BASELINE(BM_CounterIncrement, BM_StripedCounterIncrement);

void BM_StripedHistogramObserve(benchmark::State& state) {
  static striped::Histogram h(Buckets());
  Values values;
  for (auto _ : state) h.Observe(values.Next());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StripedHistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

void BM_HistogramObserve(benchmark::State& state) {
  static Histogram& h =
      SharedRegistry().AddHistogram("bench_seconds", "bench", {}, Buckets()).Add({});
  Values values;
  for (auto _ : state) h.Observe(values.Next());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->UseRealTime();
HERALD_BENCH_BASELINE(BM_HistogramObserve, BM_StripedHistogramObserve);

// What one job costs in metric updates: a handful of counters (its outcome, Redis commands,
// upstream requests...) and two histograms (its duration, an upstream call's duration). One
// iteration is one job. The argument is the job's other work, in steps of a dependent
// multiply-add chain (about 1.1 ns each here): 0 runs the updates back to back, the worst case
// for two threads sharing the series; 3000 (about 3.3 µs, near Herald's own CPU per leased and
// acked job in the queue benchmark) spaces them as a busy worker does, so the difference from the
// baseline is what the updates cost a job when the other thread has touched the same series in
// between.
constexpr int kJobCounters = 5;
constexpr int kJobHistograms = 2;

void OtherWork(int64_t steps) {
  uint64_t x = static_cast<uint64_t>(steps);
  for (int64_t i = 0; i < steps; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  benchmark::DoNotOptimize(x);
}

template <typename C, typename H>
void RunJobs(benchmark::State& state, const std::array<C*, kJobCounters>& counters,
             const std::array<H*, kJobHistograms>& histograms) {
  const int64_t work = state.range(0);
  Values values;
  for (auto _ : state) {
    OtherWork(work);
    for (C* c : counters) c->Increment();
    for (H* h : histograms) h->Observe(values.Next());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_StripedJobUpdates(benchmark::State& state) {
  static auto* counters = new std::array<striped::Counter, kJobCounters>();
  static auto* histograms = new std::array<striped::Histogram, kJobHistograms>{
      striped::Histogram(Buckets()), striped::Histogram(Buckets())};
  std::array<striped::Counter*, kJobCounters> c;
  std::array<striped::Histogram*, kJobHistograms> h;
  for (int i = 0; i < kJobCounters; ++i) c[i] = &(*counters)[i];
  for (int i = 0; i < kJobHistograms; ++i) h[i] = &(*histograms)[i];
  RunJobs(state, c, h);
}
BENCHMARK(BM_StripedJobUpdates)->Arg(0)->Arg(3000)->Threads(1)->Threads(2)->UseRealTime();

void BM_JobUpdates(benchmark::State& state) {
  auto& counters = SharedRegistry().AddCounter("bench_job_total", "bench", {"i"});
  auto& histograms = SharedRegistry().AddHistogram("bench_job_seconds", "bench", {"i"}, Buckets());
  std::array<Counter*, kJobCounters> c;
  std::array<Histogram*, kJobHistograms> h;
  for (int i = 0; i < kJobCounters; ++i) c[i] = &counters.Add({{"i", std::to_string(i)}});
  for (int i = 0; i < kJobHistograms; ++i) h[i] = &histograms.Add({{"i", std::to_string(i)}});
  RunJobs(state, c, h);
}
BENCHMARK(BM_JobUpdates)->Arg(0)->Arg(3000)->Threads(1)->Threads(2)->UseRealTime();
HERALD_BENCH_BASELINE(BM_JobUpdates, BM_StripedJobUpdates);

// Only the other work, to read the updates' share off the two above.
void BM_JobOtherWorkOnly(benchmark::State& state) {
  for (auto _ : state) OtherWork(state.range(0));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JobOtherWorkOnly)->Arg(3000)->Threads(1)->Threads(2)->UseRealTime();

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
