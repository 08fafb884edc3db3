// Herald's log lines (JSON, info and above) captured for a test's assertions, from any thread,
// instead of going to stderr. One at a time: it replaces the process's log configuration until
// it is stopped or destroyed.
//
//   testing::LogCapture logs;
//   ...
//   logs.Stop();  // before what the lines are checked against goes (or let it die)
//   EXPECT_EQ(logs.Count(R"("msg":"redis recovered")"), 1) << logs.All();
#pragma once

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <herald/common/log.h>

namespace herald::testing {

class LogCapture {
 public:
  LogCapture() {
    log::Configure({.min_level = log::Level::kInfo,
                    .format = log::Format::kJson,
                    .sink = [this](std::string_view line) {
                      std::lock_guard<std::mutex> lock(mu_);
                      lines_.emplace_back(line);
                    }});
  }
  ~LogCapture() { Stop(); }

  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // Lines go to stderr again; once it returns, no line is being captured. Idempotent. (Not
  // under mu_: the log holds its own lock while it calls the sink, which takes mu_.)
  void Stop() {
    if (stopped_.exchange(true)) return;
    log::Configure({});
  }

  // The lines holding `text`.
  int Count(std::string_view text) const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(std::count_if(lines_.begin(), lines_.end(), [&](const std::string& l) {
      return l.find(text) != std::string::npos;
    }));
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_.size();
  }
  // Every line, for a failure's message.
  std::string All() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string all;
    for (const std::string& l : lines_) all += l;
    return all;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;  // guarded by mu_
  std::atomic<bool> stopped_{false};
};

}  // namespace herald::testing
