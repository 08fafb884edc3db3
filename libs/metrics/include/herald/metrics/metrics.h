// Prometheus metrics: counters, gauges and histograms in labelled families, and their text
// exposition (format 0.0.4).
//
// The API follows prometheus-cpp, with one difference: a family's label names are fixed when it
// is registered, so every series of a family has the same label set.
//
//   auto& jobs = metrics::BuildCounter()
//                    .Name("herald_jobs_total")
//                    .Help("Jobs finished, by kind and outcome.")
//                    .LabelNames({"kind", "outcome"})
//                    .Register(registry);
//   metrics::Counter& sent_ok = jobs.Add({{"kind", "send_mass_message"}, {"outcome", "ok"}});
//   sent_ok.Increment();   // lock-free; safe from any thread
//
// Components declare their metrics once, in a struct built at start-up, and keep references
// to the series they update; nothing is looked up by name on a hot path. Series and families
// live as long as the registry. Label values must come from small fixed sets (never an account
// or fan id).
//
// Misuse (an invalid name, a label set that does not match the family, registering one name
// twice with different definitions) is a programming error and aborts with a message.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace herald::metrics {

using Labels = std::map<std::string, std::string>;

namespace internal {

// Hot-path updates go to one of kStripes cache-line-sized cells chosen by the CPU the caller runs
// on, so threads updating the same series do not contend on one cache line; reads add the cells.
inline constexpr size_t kStripes = 8;
size_t ThreadStripe();  // the stripe for the calling thread now (by CPU)

struct alignas(64) StripedDouble {
  std::atomic<double> value{0};
};

}  // namespace internal

// A monotonically increasing value.
class Counter {
 public:
  // Adds `v`; negative values are ignored (a counter never goes down).
  void Increment(double v = 1.0) {
    if (v > 0) cells_[internal::ThreadStripe()].value.fetch_add(v, std::memory_order_relaxed);
  }
  double Value() const;

 private:
  std::array<internal::StripedDouble, internal::kStripes> cells_;
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Increment(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Decrement(double v = 1.0) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into fixed buckets (upper bounds, inclusive) and keeps their sum.
class Histogram {
 public:
  // `bounds` must be finite, strictly increasing and non-empty; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;        // without +Inf
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;  // equals cumulative.back()
  };
  Snapshot Collect() const;

 private:
  // Each stripe's counts, one per bucket (+Inf last), fill whole cache lines of their own.
  struct alignas(64) CountLine {
    std::atomic<uint64_t> counts[8];
  };
  std::atomic<uint64_t>& Count(size_t stripe, size_t bucket) const {
    return lines_[stripe * lines_per_stripe_ + bucket / 8].counts[bucket % 8];
  }

  const std::vector<double> bounds_;
  const size_t lines_per_stripe_;
  std::unique_ptr<CountLine[]> lines_;
  std::array<internal::StripedDouble, internal::kStripes> sums_;
};

// Bucket helpers. ExponentialBuckets(0.001, 2, 12): 1ms, 2ms, ... ~2s.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
std::vector<double> LinearBuckets(double start, double width, int count);

enum class MetricType { kCounter, kGauge, kHistogram };

// A named group of series that share help text, type and label names.
template <typename T>
class Family {
 public:
  // The series with these labels, created on first use. The label names must be exactly the
  // family's. The reference stays valid as long as the registry.
  T& Add(const Labels& labels);

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Visits every series in label order, under the family's lock.
  void ForEach(
      const std::function<void(const std::vector<std::string>& values, const T&)>& fn) const;

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> buckets);

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;  // sorted
  const std::vector<double> buckets_;           // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_;
};

// Owns families and renders them. Thread-safe.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registering an existing name returns the existing family if its definition is identical,
  // and aborts otherwise.
  Family<Counter>& AddCounter(std::string_view name, std::string_view help,
                              std::vector<std::string> label_names);
  Family<Gauge>& AddGauge(std::string_view name, std::string_view help,
                          std::vector<std::string> label_names);
  Family<Histogram>& AddHistogram(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> buckets);

  // Runs `hook` at the start of every Serialize(), to refresh values that are cheap to read
  // on demand (process statistics). Hooks must not block.
  void AddCollectHook(std::function<void()> hook);

  // The whole registry in the Prometheus text format 0.0.4, families sorted by name.
  std::string Serialize() const;

 private:
  struct Entry {
    MetricType type;
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
  };
  Entry& AddEntry(MetricType type, std::string_view name, std::string_view help,
                  std::vector<std::string>& label_names, const std::vector<double>& buckets);

  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> families_;
  std::vector<std::function<void()>> hooks_;
};

// Fluent builders, as in prometheus-cpp.
template <typename T>
class Builder {
 public:
  Builder& Name(std::string_view name) {
    name_ = name;
    return *this;
  }
  Builder& Help(std::string_view help) {
    help_ = help;
    return *this;
  }
  Builder& LabelNames(std::vector<std::string> names) {
    label_names_ = std::move(names);
    return *this;
  }
  Builder& Buckets(std::vector<double> bounds) requires std::is_same_v<T, Histogram> {
    buckets_ = std::move(bounds);
    return *this;
  }
  Family<T>& Register(Registry& registry);

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> buckets_;
};

inline Builder<Counter> BuildCounter() { return {}; }
inline Builder<Gauge> BuildGauge() { return {}; }
inline Builder<Histogram> BuildHistogram() { return {}; }

// Registers process_* metrics (CPU seconds, resident memory, open fds, start time), refreshed
// at each scrape from /proc.
void RegisterProcessMetrics(Registry& registry);

// The content type of Serialize()'s output.
inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace herald::metrics
