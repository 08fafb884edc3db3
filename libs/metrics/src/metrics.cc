#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <prometheus/check_names.h>
#include <prometheus/family.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>

namespace herald::metrics {
namespace {

[[noreturn]] void Die(std::string_view what) {
  std::fprintf(stderr, "herald::metrics: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// The text format escapes backslashes and line feeds in HELP; prometheus-cpp 1.0.1's
// TextSerializer writes help verbatim (it escapes label values itself).
std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Sorts and checks a definition; prometheus-cpp would throw on some of these mistakes, Herald
// aborts with the name of the metric on all of them.
void Validate(prometheus::MetricType type, std::string_view name, std::string_view help,
              std::vector<std::string>& label_names, const std::vector<double>& buckets) {
  if (!prometheus::CheckMetricName(std::string(name))) {
    Die(StrCat("invalid metric name '", name, "'"));
  }
  if (help.empty()) Die(StrCat(name, ": help text is required"));
  std::sort(label_names.begin(), label_names.end());
  for (size_t i = 0; i < label_names.size(); ++i) {
    if (!prometheus::CheckLabelName(label_names[i])) {
      Die(StrCat(name, ": invalid label name '", label_names[i], "'"));
    }
    if (i > 0 && label_names[i] == label_names[i - 1]) {
      Die(StrCat(name, ": duplicate label name '", label_names[i], "'"));
    }
    if (type == prometheus::MetricType::Histogram && label_names[i] == "le") {
      Die(StrCat(name, ": 'le' is reserved in histograms"));
    }
  }
  if (type != prometheus::MetricType::Histogram) return;
  if (buckets.empty()) Die(StrCat(name, ": histogram needs at least one bucket bound"));
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
      Die(StrCat(name, ": histogram bucket bounds must be finite and strictly increasing"));
    }
  }
}

template <typename T>
prometheus::Family<T>& RegisterWith(prometheus::Registry& registry, const std::string& name,
                                    const std::string& help) {
  if constexpr (std::is_same_v<T, Counter>) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
  } else if constexpr (std::is_same_v<T, Gauge>) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
  } else {
    return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
  }
}

}  // namespace

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (start <= 0 || factor <= 1 || count < 1) Die("ExponentialBuckets: bad arguments");
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  if (width <= 0 || count < 1) Die("LinearBuckets: bad arguments");
  std::vector<double> out;
  for (int i = 0; i < count; ++i) out.push_back(start + width * i);
  return out;
}

template <typename T>
Family<T>::Family(prometheus::Family<T>& family, std::string name, std::string help,
                  std::vector<std::string> label_names, std::vector<double> buckets)
    : family_(family),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {}

template <typename T>
T& Family<T>::Add(const Labels& labels) {
  // Both sides are sorted by name.
  const bool match =
      std::equal(labels.begin(), labels.end(), label_names_.begin(), label_names_.end(),
                 [](const auto& label, const std::string& name) { return label.first == name; });
  if (!match) {
    std::vector<std::string> given;
    for (const auto& [k, v] : labels) given.push_back(k);
    Die(StrCat(name_, ": labels {", StrJoin(given, ","), "} do not match {",
               StrJoin(label_names_, ","), "}"));
  }
  if constexpr (std::is_same_v<T, Histogram>) {
    return family_.Add(labels, buckets_);
  } else {
    return family_.Add(labels);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry::Registry() : registry_(std::make_unique<prometheus::Registry>()) {}

Registry::~Registry() = default;

template <typename T>
std::unique_ptr<Family<T>>& Registry::Slot(Entry& e) {
  if constexpr (std::is_same_v<T, Counter>) {
    return e.counter;
  } else if constexpr (std::is_same_v<T, Gauge>) {
    return e.gauge;
  } else {
    return e.histogram;
  }
}

template <typename T>
Family<T>& Registry::Add(std::string_view name, std::string_view help,
                         std::vector<std::string> label_names, std::vector<double> buckets) {
  constexpr prometheus::MetricType kType = T::metric_type;
  Validate(kType, name, help, label_names, buckets);
  std::lock_guard lock(mu_);
  if (auto it = families_.find(name); it != families_.end()) {
    const std::unique_ptr<Family<T>>& family = Slot<T>(it->second);
    if (it->second.type != kType || family->help() != help ||
        family->label_names() != label_names || family->buckets() != buckets) {
      Die(StrCat("metric '", name, "' registered twice with different definitions"));
    }
    return *family;
  }
  std::string name_copy(name);
  std::string help_copy(help);
  prometheus::Family<T>& family = RegisterWith<T>(*registry_, name_copy, help_copy);
  Entry& e = families_[name_copy];
  e.type = kType;
  Slot<T>(e).reset(new Family<T>(family, std::move(name_copy), std::move(help_copy),
                                 std::move(label_names), std::move(buckets)));
  return *Slot<T>(e);
}

Family<Counter>& Registry::AddCounter(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names) {
  return Add<Counter>(name, help, std::move(label_names), {});
}

Family<Gauge>& Registry::AddGauge(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names) {
  return Add<Gauge>(name, help, std::move(label_names), {});
}

Family<Histogram>& Registry::AddHistogram(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> buckets) {
  return Add<Histogram>(name, help, std::move(label_names), std::move(buckets));
}

void Registry::AddCollectHook(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  hooks_.push_back(std::move(hook));
}

std::string Registry::Serialize() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(mu_);
    hooks = hooks_;
  }
  for (const auto& hook : hooks) hook();

  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  {
    // prometheus-cpp leaves out a family that has no series yet; Herald lists it (HELP and
    // TYPE alone), so that every scrape shows the whole catalogue.
    std::set<std::string> collected;
    for (const prometheus::MetricFamily& f : families) collected.insert(f.name);
    std::lock_guard lock(mu_);
    for (const auto& [name, e] : families_) {
      if (collected.contains(name)) continue;
      const std::string& help = e.counter ? e.counter->help()
                                : e.gauge ? e.gauge->help()
                                          : e.histogram->help();
      families.push_back({.name = name, .help = help, .type = e.type, .metric = {}});
    }
  }
  // Series come out of prometheus-cpp in hash order and families by type; a stable order makes
  // scrapes comparable.
  for (prometheus::MetricFamily& f : families) {
    f.help = EscapeHelp(f.help);
    std::sort(f.metric.begin(), f.metric.end(),
              [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) {
                return a.label < b.label;
              });
  }
  std::sort(families.begin(), families.end(),
            [](const prometheus::MetricFamily& a, const prometheus::MetricFamily& b) {
              return a.name < b.name;
            });
  return prometheus::TextSerializer().Serialize(families);
}

template <typename T>
Family<T>& Builder<T>::Register(Registry& registry) {
  if constexpr (std::is_same_v<T, Counter>) {
    return registry.AddCounter(name_, help_, label_names_);
  } else if constexpr (std::is_same_v<T, Gauge>) {
    return registry.AddGauge(name_, help_, label_names_);
  } else {
    return registry.AddHistogram(name_, help_, label_names_, buckets_);
  }
}

template class Builder<Counter>;
template class Builder<Gauge>;
template class Builder<Histogram>;

namespace {

struct ProcessMetrics {
  std::mutex mu;  // scrapes may run concurrently
  double last_cpu_seconds = 0;
  Counter& cpu_seconds;
  Gauge& resident_bytes;
  Gauge& virtual_bytes;
  Gauge& open_fds;
  Gauge& start_time;
  Gauge& threads;
};

// Reads /proc/self/stat; fields per proc(5).
void RefreshProcessMetrics(ProcessMetrics& m) {
  std::lock_guard lock(m.mu);
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (!std::getline(stat, line)) return;
  // The command name (field 2) may contain spaces; everything after the last ')' is fixed.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  for (std::string tok; rest >> tok;) f.push_back(tok);
  if (f.size() < 22) return;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double utime = std::strtod(f[11].c_str(), nullptr);
  const double stime = std::strtod(f[12].c_str(), nullptr);
  const double cpu = (utime + stime) / ticks;
  m.cpu_seconds.Increment(cpu - m.last_cpu_seconds);
  m.last_cpu_seconds = cpu;
  m.threads.Set(std::strtod(f[17].c_str(), nullptr));
  const double start_ticks = std::strtod(f[19].c_str(), nullptr);
  m.virtual_bytes.Set(std::strtod(f[20].c_str(), nullptr));
  m.resident_bytes.Set(std::strtod(f[21].c_str(), nullptr) * page);

  // Boot time from /proc/stat turns the start tick count into a Unix time.
  std::ifstream sys("/proc/stat");
  for (std::string l; std::getline(sys, l);) {
    if (l.starts_with("btime ")) {
      m.start_time.Set(std::strtod(l.c_str() + 6, nullptr) + start_ticks / ticks);
      break;
    }
  }
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  m.open_fds.Set(fds);
}

}  // namespace

void RegisterProcessMetrics(Registry& registry) {
  auto gauge = [&registry](std::string_view name, std::string_view help) -> Gauge& {
    return registry.AddGauge(name, help, {}).Add({});
  };
  auto m = std::shared_ptr<ProcessMetrics>(new ProcessMetrics{
      .cpu_seconds = registry
                         .AddCounter("process_cpu_seconds_total",
                                     "Total user and system CPU time spent in seconds.", {})
                         .Add({}),
      .resident_bytes = gauge("process_resident_memory_bytes", "Resident memory size in bytes."),
      .virtual_bytes = gauge("process_virtual_memory_bytes", "Virtual memory size in bytes."),
      .open_fds = gauge("process_open_fds", "Number of open file descriptors."),
      .start_time = gauge("process_start_time_seconds",
                          "Start time of the process since unix epoch in seconds."),
      .threads = gauge("process_threads", "Number of OS threads in the process."),
  });
  registry.AddCollectHook([m] { RefreshProcessMetrics(*m); });
}

}  // namespace herald::metrics
