// Prometheus metrics on prometheus-cpp: its registry, families and metric types, and its text
// exposition (format 0.0.4).
//
// Counter, Gauge and Histogram are prometheus-cpp's own classes; this header adds the rules
// Herald keeps on top of them:
//   - a family's label names (and a histogram's buckets) are fixed when it is registered, and
//     every series must carry exactly those labels;
//   - registering a name again returns the same family if the definition (type, help, label
//     names, buckets) is identical, and aborts otherwise;
//   - misuse (an invalid metric or label name, a label set that does not match the family, bad
//     buckets) aborts with a message instead of throwing;
//   - a scrape lists every registered family, in name order, even before it has a series.
//
//   auto& jobs = metrics::BuildCounter()
//                    .Name("herald_jobs_total")
//                    .Help("Jobs finished, by kind and outcome.")
//                    .LabelNames({"kind", "outcome"})
//                    .Register(registry);
//   metrics::Counter& sent_ok = jobs.Add({{"kind", "send_mass_message"}, {"outcome", "ok"}});
//   sent_ok.Increment();   // safe from any thread
//
// Components declare their metrics once, in a struct built at start-up, and keep references
// to the series they update; nothing is looked up by name on a hot path (Family::Add takes a
// lock and allocates). Series and families live as long as the registry. Label values must come
// from small fixed sets (never an account or fan id).
//
// Thread safety: every method of Registry and Family, and every update of a series, may be
// called from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/metric_type.h>

namespace prometheus {
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace herald::metrics {

// prometheus-cpp's types. Counter::Increment ignores negative values; Histogram bounds are
// inclusive upper bounds, +Inf implicit; Histogram::Collect() returns the cumulative counts.
using Counter = prometheus::Counter;
using Gauge = prometheus::Gauge;
using Histogram = prometheus::Histogram;
using Labels = prometheus::Labels;

// Bucket helpers. ExponentialBuckets(0.001, 2, 12): 1ms, 2ms, ... ~2s.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
std::vector<double> LinearBuckets(double start, double width, int count);

// A named group of series that share help text, type and label names.
template <typename T>
class Family {
 public:
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // The series with these labels, created on first use. The label names must be exactly the
  // family's. The reference stays valid as long as the registry.
  T& Add(const Labels& labels);

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }  // sorted
  const std::vector<double>& buckets() const { return buckets_; }               // histograms only

 private:
  friend class Registry;
  Family(prometheus::Family<T>& family, std::string name, std::string help,
         std::vector<std::string> label_names, std::vector<double> buckets);

  prometheus::Family<T>& family_;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;
};

// Owns families (through a prometheus::Registry) and renders them.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registering an existing name returns the existing family if its definition is identical
  // (label names in any order), and aborts otherwise.
  Family<Counter>& AddCounter(std::string_view name, std::string_view help,
                              std::vector<std::string> label_names);
  Family<Gauge>& AddGauge(std::string_view name, std::string_view help,
                          std::vector<std::string> label_names);
  // `buckets` must be finite, strictly increasing and non-empty.
  Family<Histogram>& AddHistogram(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> buckets);

  // Runs `hook` at the start of every Serialize(), to refresh values that are cheap to read
  // on demand (process statistics). Hooks must not block.
  void AddCollectHook(std::function<void()> hook);

  // The whole registry in the Prometheus text format 0.0.4 (prometheus::TextSerializer),
  // families sorted by name and series by label values.
  std::string Serialize() const;

 private:
  struct Entry {
    prometheus::MetricType type;
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
  };
  template <typename T>
  static std::unique_ptr<Family<T>>& Slot(Entry& e);
  template <typename T>
  Family<T>& Add(std::string_view name, std::string_view help, std::vector<std::string> label_names,
                 std::vector<double> buckets);

  const std::unique_ptr<prometheus::Registry> registry_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> families_;
  std::vector<std::function<void()>> hooks_;
};

// Fluent builders in prometheus-cpp's style, with label names and buckets fixed per family.
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
