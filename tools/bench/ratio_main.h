// main() for Google Benchmark binaries that also prints each benchmark's time as a ratio of a
// baseline benchmark from the same run.
//
// A benchmark named "BM_Foo/threads:2" is compared with the baseline named by the pair
// registered for it: HERALD_BENCH_BASELINE(BM_Foo, BM_Baseline) compares BM_Foo/threads:N with
// BM_Baseline/threads:N (same suffix).
#pragma once

#include <string>

namespace herald::bench {

// Registers `baseline` as the baseline of `benchmark` (names without the "/..." suffix).
bool AddBaseline(const std::string& benchmark, const std::string& baseline);

}  // namespace herald::bench

#define HERALD_BENCH_BASELINE(name, baseline_name) \
  static const bool herald_baseline_##name = ::herald::bench::AddBaseline(#name, #baseline_name)
