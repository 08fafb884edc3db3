#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <sched.h>
#include <unistd.h>

#include <herald/common/strings.h>
#include <herald/metrics/metrics.h>

namespace herald::metrics {
namespace {

[[noreturn]] void Die(std::string_view what) {
  std::fprintf(stderr, "herald::metrics: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Go's strconv.FormatFloat(v, 'g', -1, 64) spelling of special values, shortest round-trip
// digits otherwise; what Prometheus' own clients write.
void AppendValue(std::string& out, double v) {
  if (std::isnan(v)) {
    out.append("NaN");
  } else if (std::isinf(v)) {
    out.append(v > 0 ? "+Inf" : "-Inf");
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out.append(buf, end);
  }
}

void AppendEscaped(std::string& out, std::string_view s, bool escape_quote) {
  for (char c : s) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '"' && escape_quote) {
      out.append("\\\"");
    } else {
      out.push_back(c);
    }
  }
}

// Appends `{a="x",b="y"` (without the closing brace) or nothing when there are no labels and no
// extra label; `extra` is the histogram's `le`.
void AppendLabels(std::string& out, const std::vector<std::string>& names,
                  const std::vector<std::string>& values, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out.push_back('{');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(names[i]);
    out.append("=\"");
    AppendEscaped(out, values[i], /*escape_quote=*/true);
    out.push_back('"');
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out.push_back(',');
    out.append(extra_name);
    out.append("=\"");
    out.append(extra_value);
    out.push_back('"');
  }
  out.push_back('}');
}

void AppendHeader(std::string& out, std::string_view name, std::string_view help,
                  std::string_view type) {
  out.append("# HELP ");
  out.append(name);
  out.push_back(' ');
  AppendEscaped(out, help, /*escape_quote=*/false);
  out.append("\n# TYPE ");
  out.append(name);
  out.push_back(' ');
  out.append(type);
  out.push_back('\n');
}

template <typename T>
void AppendScalarFamily(std::string& out, const Family<T>& family, std::string_view type) {
  AppendHeader(out, family.name(), family.help(), type);
  family.ForEach([&](const std::vector<std::string>& values, const T& metric) {
    out.append(family.name());
    AppendLabels(out, family.label_names(), values);
    out.push_back(' ');
    AppendValue(out, metric.Value());
    out.push_back('\n');
  });
}

void AppendHistogramFamily(std::string& out, const Family<Histogram>& family) {
  AppendHeader(out, family.name(), family.help(), "histogram");
  family.ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
    const Histogram::Snapshot s = h.Collect();
    const std::string bucket = StrCat(family.name(), "_bucket");
    for (size_t i = 0; i <= s.bounds.size(); ++i) {
      std::string le;
      if (i < s.bounds.size()) {
        AppendValue(le, s.bounds[i]);
      } else {
        le = "+Inf";
      }
      out.append(bucket);
      AppendLabels(out, family.label_names(), values, "le", le);
      out.push_back(' ');
      StrAppend(&out, s.cumulative[i]);
      out.push_back('\n');
    }
    out.append(family.name());
    out.append("_sum");
    AppendLabels(out, family.label_names(), values);
    out.push_back(' ');
    AppendValue(out, s.sum);
    out.push_back('\n');
    out.append(family.name());
    out.append("_count");
    AppendLabels(out, family.label_names(), values);
    out.push_back(' ');
    StrAppend(&out, s.count);
    out.push_back('\n');
  });
}

}  // namespace

namespace internal {

size_t ThreadStripe() {
  // The CPU the thread runs on: threads running at the same time are on different CPUs, so they
  // never share a stripe (up to kStripes CPUs). glibc answers from rseq without a system call.
  const int cpu = sched_getcpu();
  if (cpu >= 0) return static_cast<size_t>(cpu) % kStripes;
  static std::atomic<size_t> next{0};
  thread_local const size_t stripe = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
  return stripe;
}

}  // namespace internal

double Counter::Value() const {
  double total = 0;
  for (const auto& cell : cells_) total += cell.value.load(std::memory_order_relaxed);
  return total;
}

namespace {

// Cache lines holding one count per bucket including +Inf.
size_t LinesPerStripe(size_t bounds) { return (bounds + 1 + 7) / 8; }

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), lines_per_stripe_(LinesPerStripe(bounds_.size())) {
  if (bounds_.empty()) Die("histogram needs at least one bucket bound");
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      Die("histogram bucket bounds must be finite and strictly increasing");
    }
  }
  const size_t lines = lines_per_stripe_ * internal::kStripes;
  lines_ = std::make_unique<CountLine[]>(lines);  // value-initialised: every count is zero
}

void Histogram::Observe(double v) {
  // Upper bounds are inclusive: v lands in the first bucket whose bound is >= v.
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  const size_t stripe = internal::ThreadStripe();
  Count(stripe, i).fetch_add(1, std::memory_order_relaxed);
  sums_[stripe].value.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.assign(bounds_.size() + 1, 0);
  for (size_t stripe = 0; stripe < internal::kStripes; ++stripe) {
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      s.cumulative[i] += Count(stripe, i).load(std::memory_order_relaxed);
    }
    s.sum += sums_[stripe].value.load(std::memory_order_relaxed);
  }
  for (size_t i = 1; i <= bounds_.size(); ++i) s.cumulative[i] += s.cumulative[i - 1];
  s.count = s.cumulative.back();
  return s;
}

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
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {}

template <typename T>
T& Family<T>::Add(const Labels& labels) {
  std::vector<std::string> values;
  values.reserve(label_names_.size());
  auto it = labels.begin();
  for (const std::string& name : label_names_) {
    if (it == labels.end() || it->first != name) break;
    values.push_back(it->second);
    ++it;
  }
  if (values.size() != label_names_.size() || labels.size() != label_names_.size()) {
    std::vector<std::string> given;
    for (const auto& [k, v] : labels) given.push_back(k);
    Die(StrCat(name_, ": labels {", StrJoin(given, ","), "} do not match {",
               StrJoin(label_names_, ","), "}"));
  }
  std::lock_guard lock(mu_);
  auto& slot = series_[values];
  if (!slot) {
    if constexpr (std::is_same_v<T, Histogram>) {
      slot = std::make_unique<Histogram>(buckets_);
    } else {
      slot = std::make_unique<T>();
    }
  }
  return *slot;
}

template <typename T>
void Family<T>::ForEach(
    const std::function<void(const std::vector<std::string>&, const T&)>& fn) const {
  std::lock_guard lock(mu_);
  for (const auto& [values, metric] : series_) fn(values, *metric);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry::Entry& Registry::AddEntry(MetricType type, std::string_view name, std::string_view help,
                                    std::vector<std::string>& label_names,
                                    const std::vector<double>& buckets) {
  if (!IsValidMetricName(name)) Die(StrCat("invalid metric name '", name, "'"));
  if (help.empty()) Die(StrCat(name, ": help text is required"));
  std::sort(label_names.begin(), label_names.end());
  for (size_t i = 0; i < label_names.size(); ++i) {
    if (!IsValidLabelName(label_names[i])) {
      Die(StrCat(name, ": invalid label name '", label_names[i], "'"));
    }
    if (i > 0 && label_names[i] == label_names[i - 1]) {
      Die(StrCat(name, ": duplicate label name '", label_names[i], "'"));
    }
    if (type == MetricType::kHistogram && label_names[i] == "le") {
      Die(StrCat(name, ": 'le' is reserved in histograms"));
    }
  }

  auto it = families_.find(name);
  if (it != families_.end()) {
    const Entry& e = it->second;
    bool same = e.type == type;
    if (same) {
      switch (type) {
        case MetricType::kCounter:
          same = e.counter->help() == help && e.counter->label_names() == label_names;
          break;
        case MetricType::kGauge:
          same = e.gauge->help() == help && e.gauge->label_names() == label_names;
          break;
        case MetricType::kHistogram:
          same = e.histogram->help() == help && e.histogram->label_names() == label_names &&
                 e.histogram->buckets_ == buckets;
          break;
      }
    }
    if (!same) Die(StrCat("metric '", name, "' registered twice with different definitions"));
    return it->second;
  }
  Entry& e = families_[std::string(name)];
  e.type = type;
  return e;
}

Family<Counter>& Registry::AddCounter(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  Entry& e = AddEntry(MetricType::kCounter, name, help, label_names, {});
  if (!e.counter) {
    e.counter.reset(
        new Family<Counter>(std::string(name), std::string(help), std::move(label_names), {}));
  }
  return *e.counter;
}

Family<Gauge>& Registry::AddGauge(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  Entry& e = AddEntry(MetricType::kGauge, name, help, label_names, {});
  if (!e.gauge) {
    e.gauge.reset(
        new Family<Gauge>(std::string(name), std::string(help), std::move(label_names), {}));
  }
  return *e.gauge;
}

Family<Histogram>& Registry::AddHistogram(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> buckets) {
  Histogram validate(buckets);  // aborts on bad bounds before anything is registered
  std::lock_guard lock(mu_);
  Entry& e = AddEntry(MetricType::kHistogram, name, help, label_names, buckets);
  if (!e.histogram) {
    e.histogram.reset(new Family<Histogram>(std::string(name), std::string(help),
                                            std::move(label_names), std::move(buckets)));
  }
  return *e.histogram;
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

  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, e] : families_) {
    switch (e.type) {
      case MetricType::kCounter:
        AppendScalarFamily(out, *e.counter, "counter");
        break;
      case MetricType::kGauge:
        AppendScalarFamily(out, *e.gauge, "gauge");
        break;
      case MetricType::kHistogram:
        AppendHistogramFamily(out, *e.histogram);
        break;
    }
  }
  return out;
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
