#include <limits>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>

namespace herald::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, ExpositionMatchesTextFormatExactly) {
  Registry registry;
  auto& jobs = BuildCounter()
                   .Name("herald_jobs_total")
                   .Help("Jobs finished, by kind and outcome.")
                   .LabelNames({"outcome", "kind"})
                   .Register(registry);
  jobs.Add({{"kind", "send"}, {"outcome", "ok"}}).Increment(3);
  jobs.Add({{"kind", "send"}, {"outcome", "failed"}}).Increment();
  BuildGauge().Name("herald_up").Help("Always 1.").Register(registry).Add({}).Set(1);
  auto& latency = BuildHistogram()
                      .Name("herald_call_seconds")
                      .Help("Call latency.")
                      .LabelNames({"kind"})
                      .Buckets({0.1, 1})
                      .Register(registry)
                      .Add({{"kind", "send"}});
  latency.Observe(0.05);
  latency.Observe(0.1);  // bounds are inclusive
  latency.Observe(0.5);
  latency.Observe(7);

  BuildCounter()
      .Name("herald_unused_total")
      .Help("Registered, never added to.")
      .LabelNames({"kind"})
      .Register(registry);

  // prometheus::TextSerializer's layout: a histogram's count and sum before its buckets.
  EXPECT_EQ(registry.Serialize(),
            "# HELP herald_call_seconds Call latency.\n"
            "# TYPE herald_call_seconds histogram\n"
            "herald_call_seconds_count{kind=\"send\"} 4\n"
            "herald_call_seconds_sum{kind=\"send\"} 7.65\n"
            "herald_call_seconds_bucket{kind=\"send\",le=\"0.1\"} 2\n"
            "herald_call_seconds_bucket{kind=\"send\",le=\"1\"} 3\n"
            "herald_call_seconds_bucket{kind=\"send\",le=\"+Inf\"} 4\n"
            "# HELP herald_jobs_total Jobs finished, by kind and outcome.\n"
            "# TYPE herald_jobs_total counter\n"
            "herald_jobs_total{kind=\"send\",outcome=\"failed\"} 1\n"
            "herald_jobs_total{kind=\"send\",outcome=\"ok\"} 3\n"
            "# HELP herald_unused_total Registered, never added to.\n"
            "# TYPE herald_unused_total counter\n"
            "# HELP herald_up Always 1.\n"
            "# TYPE herald_up gauge\n"
            "herald_up 1\n");
}

TEST(MetricsTest, EveryRegisteredFamilyIsListedWithOrWithoutSeries) {
  Registry registry;
  for (int i = 0; i < 40; ++i) {
    auto& f = registry.AddCounter(StrCat("c", 100 + i, "_total"), "c", {});
    if (i % 3 == 0) f.Add({}).Increment();
  }
  const std::string out = registry.Serialize();
  for (int i = 0; i < 40; ++i) {
    EXPECT_THAT(out, HasSubstr(StrCat("# TYPE c", 100 + i, "_total counter\n")));
  }
  EXPECT_THAT(out, HasSubstr("# HELP c103_total c\n# TYPE c103_total counter\nc103_total 1\n"
                             "# HELP c104_total c\n# TYPE c104_total counter\n# HELP c105_total"));
}

TEST(MetricsTest, SeriesAreSortedByLabelValues) {
  Registry registry;
  auto& f = registry.AddGauge("g", "g", {"k"});
  for (const char* k : {"d", "b", "e", "a", "c"}) f.Add({{"k", k}}).Set(1);
  EXPECT_EQ(registry.Serialize(),
            "# HELP g g\n# TYPE g gauge\n"
            "g{k=\"a\"} 1\ng{k=\"b\"} 1\ng{k=\"c\"} 1\ng{k=\"d\"} 1\ng{k=\"e\"} 1\n");
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  Registry registry;
  auto& f = registry.AddGauge("x", "line one\nback\\slash \"quotes\" stay", {"v"});
  f.Add({{"v", "a\"b\\c\nd"}}).Set(2);
  const std::string out = registry.Serialize();
  EXPECT_THAT(out, HasSubstr("# HELP x line one\\nback\\\\slash \"quotes\" stay\n"));
  EXPECT_THAT(out, HasSubstr("x{v=\"a\\\"b\\\\c\\nd\"} 2\n"));
}

TEST(MetricsTest, SpecialValuesUsePrometheusSpelling) {
  Registry registry;
  auto& f = registry.AddGauge("g", "g", {"k"});
  f.Add({{"k", "pinf"}}).Set(std::numeric_limits<double>::infinity());
  f.Add({{"k", "ninf"}}).Set(-std::numeric_limits<double>::infinity());
  f.Add({{"k", "nan"}}).Set(std::numeric_limits<double>::quiet_NaN());
  f.Add({{"k", "small"}}).Set(1e-9);
  const std::string out = registry.Serialize();
  EXPECT_THAT(out, HasSubstr("g{k=\"pinf\"} +Inf\n"));
  EXPECT_THAT(out, HasSubstr("g{k=\"ninf\"} -Inf\n"));
  // Prometheus parses NaN in any case; prometheus-cpp writes "Nan".
  EXPECT_THAT(out, HasSubstr("g{k=\"nan\"} Nan\n"));
  EXPECT_THAT(out, HasSubstr("g{k=\"small\"} 1e-09\n"));
}

TEST(MetricsTest, SameLabelsReturnTheSameSeries) {
  Registry registry;
  auto& f = registry.AddCounter("c_total", "c", {"a"});
  EXPECT_EQ(&f.Add({{"a", "1"}}), &f.Add({{"a", "1"}}));
  EXPECT_NE(&f.Add({{"a", "1"}}), &f.Add({{"a", "2"}}));
}

TEST(MetricsTest, IdenticalReRegistrationReturnsTheSameFamily) {
  Registry registry;
  auto& a = registry.AddCounter("c_total", "c", {"x", "y"});
  auto& b = registry.AddCounter("c_total", "c", {"y", "x"});
  EXPECT_EQ(&a, &b);
  auto& h = registry.AddHistogram("h_seconds", "h", {}, {1, 2});
  EXPECT_EQ(&h, &registry.AddHistogram("h_seconds", "h", {}, {1, 2}));
}

TEST(MetricsTest, CounterIgnoresNegativeIncrements) {
  Counter c;
  c.Increment(2);
  c.Increment(-5);
  EXPECT_EQ(c.Value(), 2);
}

TEST(MetricsDeathTest, MisuseAbortsWithAMessage) {
  Registry registry;
  auto& f = registry.AddCounter("c_total", "c", {"kind"});
  EXPECT_DEATH(f.Add({{"kynd", "x"}}), "do not match");
  EXPECT_DEATH(f.Add({}), "do not match");
  EXPECT_DEATH(registry.AddGauge("c_total", "c", {"kind"}), "registered twice");
  EXPECT_DEATH(registry.AddCounter("c_total", "other help", {"kind"}), "registered twice");
  EXPECT_DEATH(registry.AddCounter("c_total", "c", {"kind", "more"}), "registered twice");
  registry.AddHistogram("h_seconds", "h", {}, {1, 2});
  EXPECT_DEATH(registry.AddHistogram("h_seconds", "h", {}, {1, 3}), "registered twice");
  EXPECT_DEATH(registry.AddCounter("bad-name", "h", {}), "invalid metric name");
  EXPECT_DEATH(registry.AddCounter("ok_total", "h", {"__reserved"}), "invalid label name");
  EXPECT_DEATH(registry.AddHistogram("h", "h", {"le"}, {1}), "reserved");
  EXPECT_DEATH(registry.AddHistogram("h", "h", {}, {2, 1}), "strictly increasing");
  EXPECT_DEATH(registry.AddHistogram("h", "h", {}, {}), "at least one bucket");
  EXPECT_DEATH(registry.AddGauge("g", "", {}), "help text is required");
}

TEST(MetricsTest, ConcurrentIncrementsAddUpExactly) {
  Registry registry;
  Counter& counter = registry.AddCounter("c_total", "c", {}).Add({});
  Gauge& gauge = registry.AddGauge("g", "g", {}).Add({});
  Histogram& hist = registry.AddHistogram("h", "h", {}, {0.5, 1.5}).Add({});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        counter.Increment();
        gauge.Increment(t % 2 == 0 ? 1 : -1);
        hist.Observe(i % 2);  // 0 and 1 alternate
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.Value(), kThreads * kPerThread);
  EXPECT_EQ(gauge.Value(), 0);
  const auto s = hist.Collect().histogram;
  EXPECT_EQ(s.sample_count, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.bucket[0].cumulative_count, s.sample_count / 2);
  EXPECT_EQ(s.bucket[1].cumulative_count, s.sample_count);
  EXPECT_EQ(s.sample_sum, kThreads * kPerThread / 2);
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_THAT(ExponentialBuckets(0.001, 10, 3), ::testing::ElementsAre(0.001, 0.01, 0.1));
  EXPECT_THAT(LinearBuckets(1, 2, 3), ::testing::ElementsAre(1, 3, 5));
}

TEST(MetricsTest, ProcessMetricsAreExported) {
  Registry registry;
  RegisterProcessMetrics(registry);
  const std::string out = registry.Serialize();
  EXPECT_THAT(out, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(out, HasSubstr("process_open_fds "));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("process_resident_memory_bytes 0\n")));
}

}  // namespace
}  // namespace herald::metrics
