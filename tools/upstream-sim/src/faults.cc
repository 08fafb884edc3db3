#include <algorithm>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <herald/common/strings.h>
#include <herald/upstream_sim/faults.h>
#include <herald/upstream_sim/json_writer.h>

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;

std::string_view Str(const json::string& s) { return {s.data(), s.size()}; }

std::optional<double> Number(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  if (v.is_double()) return v.as_double();
  return std::nullopt;
}

absl::Status Bad(std::string_view why) {
  return absl::InvalidArgumentError(StrCat("faults: ", why));
}

absl::StatusOr<FaultRule> ParseRule(const json::value& v) {
  if (!v.is_object()) return Bad("a rule is a JSON object");
  FaultRule rule;
  for (const auto& entry : v.as_object()) {
    const std::string_view key = std::string_view(entry.key().data(), entry.key().size());
    const json::value& value = entry.value();
    auto rate = [&](double& field) -> absl::Status {
      auto n = Number(value);
      if (!n || *n < 0 || *n > 1) return Bad(StrCat(key, " must be in [0, 1]"));
      field = *n;
      return absl::OkStatus();
    };
    absl::Status s;
    if (key == "team") {
      if (!value.is_string()) return Bad("team must be a string");
      rule.team = std::string(Str(value.as_string()));
    } else if (key == "methods") {
      if (!value.is_array()) return Bad("methods must be an array of strings");
      for (const json::value& m : value.as_array()) {
        if (!m.is_string()) return Bad("methods must be an array of strings");
        rule.methods.push_back(AsciiUpper(Str(m.as_string())));
      }
    } else if (key == "path_contains") {
      if (!value.is_string()) return Bad("path_contains must be a string");
      rule.path_contains = std::string(Str(value.as_string()));
    } else if (key == "error_rate") {
      s = rate(rule.error_rate);
    } else if (key == "reset_rate") {
      s = rate(rule.reset_rate);
    } else if (key == "commit_then_lose_rate") {
      s = rate(rule.commit_then_lose_rate);
    } else if (key == "error_status") {
      auto n = Number(value);
      if (!n || *n < 400 || *n > 599) return Bad("error_status must be a 4xx or 5xx status");
      rule.error_status = static_cast<int>(*n);
    } else if (key == "error_code") {
      if (!value.is_string() || value.as_string().empty() || value.as_string().size() > 64) {
        return Bad("error_code must be a string of 1 to 64 characters");
      }
      rule.error_code = std::string(Str(value.as_string()));
    } else if (key == "retry_after_s") {
      auto n = Number(value);
      if (!n || *n < 0 || *n > 3600 || *n != static_cast<int>(*n)) {
        return Bad("retry_after_s must be an integer in [0, 3600]");
      }
      rule.retry_after_s = static_cast<int>(*n);
    } else if (key == "count") {
      auto n = Number(value);
      if (!n || *n < 1) return Bad("count must be a positive integer");
      rule.remaining = static_cast<int64_t>(*n);
    } else if (key == "latency_ms") {
      if (!value.is_object()) return Bad("latency_ms must be an object");
      for (const auto& l : value.as_object()) {
        const std::string_view lk = std::string_view(l.key().data(), l.key().size());
        auto ms = Number(l.value());
        if (!ms || *ms < 0) return Bad(StrCat("latency_ms.", lk, " must be >= 0"));
        const absl::Duration d = absl::Milliseconds(*ms);
        if (lk == "fixed") {
          rule.latency.fixed = d;
        } else if (lk == "jitter") {
          rule.latency.jitter = d;
        } else if (lk.size() >= 2 && lk[0] == 'p') {
          auto p = ParseInt<int>(lk.substr(1));
          double q = 0;
          if (p && *p > 0 && *p <= 100) q = *p / 100.0;
          if (lk == "p999") q = 0.999;
          if (q == 0) return Bad(StrCat("unknown percentile ", lk, " (p1..p100, p999)"));
          rule.latency.percentiles.emplace_back(q, d);
        } else {
          return Bad(StrCat("unknown latency key ", lk, " (fixed, jitter, pNN)"));
        }
      }
      std::sort(rule.latency.percentiles.begin(), rule.latency.percentiles.end());
      for (size_t i = 1; i < rule.latency.percentiles.size(); ++i) {
        if (rule.latency.percentiles[i].second < rule.latency.percentiles[i - 1].second) {
          return Bad("latency percentiles must not decrease");
        }
      }
    } else {
      return Bad(StrCat("unknown key '", key, "'"));
    }
    if (!s.ok()) return s;
  }
  if (rule.error_rate + rule.reset_rate + rule.commit_then_lose_rate > 1.0 + 1e-9) {
    return Bad("error_rate + reset_rate + commit_then_lose_rate must not exceed 1");
  }
  return rule;
}

bool IsMutation(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

}  // namespace

absl::Duration LatencySpec::Sample(double u) const {
  if (percentiles.empty()) return fixed + jitter * u;
  double prev_q = 0;
  absl::Duration prev = absl::ZeroDuration();
  for (const auto& [q, d] : percentiles) {
    if (u <= q) return prev + (d - prev) * ((u - prev_q) / (q - prev_q));
    prev_q = q;
    prev = d;
  }
  return prev;
}

absl::StatusOr<std::vector<FaultRule>> ParseFaultRules(std::string_view text) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return Bad(StrCat("not valid JSON: ", ec.message()));
  std::vector<FaultRule> rules;
  if (root.is_array()) {
    for (const json::value& v : root.as_array()) {
      auto rule = ParseRule(v);
      if (!rule.ok()) return rule.status();
      rules.push_back(*rule);
    }
  } else {
    auto rule = ParseRule(root);
    if (!rule.ok()) return rule.status();
    rules.push_back(*rule);
  }
  return rules;
}

void FaultInjector::Add(std::vector<FaultRule> rules) {
  absl::MutexLock lock(&mu_);
  for (FaultRule& rule : rules) rules_.push_back(std::move(rule));
}

void FaultInjector::Clear(std::optional<std::string> team) {
  absl::MutexLock lock(&mu_);
  if (!team) {
    rules_.clear();
    return;
  }
  std::erase_if(rules_, [&](const FaultRule& r) { return r.team == *team; });
}

FaultDecision FaultInjector::Decide(std::string_view team, std::string_view method,
                                    std::string_view path) {
  FaultDecision decision;
  absl::MutexLock lock(&mu_);
  if (rules_.empty()) return decision;
  auto matches = [&](const FaultRule& r) {
    if (!r.methods.empty() &&
        std::find(r.methods.begin(), r.methods.end(), method) == r.methods.end()) {
      return false;
    }
    return r.path_contains.empty() || path.find(r.path_contains) != std::string_view::npos;
  };
  FaultRule* chosen = nullptr;
  size_t chosen_at = 0;
  for (size_t i = rules_.size(); i-- > 0 && chosen == nullptr;) {
    if (!team.empty() && rules_[i].team == team && matches(rules_[i])) {
      chosen = &rules_[i];
      chosen_at = i;
    }
  }
  for (size_t i = rules_.size(); i-- > 0 && chosen == nullptr;) {
    if (rules_[i].team.empty() && matches(rules_[i])) {
      chosen = &rules_[i];
      chosen_at = i;
    }
  }
  if (chosen == nullptr) return decision;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (!chosen->latency.empty()) decision.latency = chosen->latency.Sample(unit(random_));
  const double u = unit(random_);
  if (u < chosen->reset_rate) {
    decision.action = FaultAction::kReset;
  } else if (u < chosen->reset_rate + chosen->error_rate) {
    decision.action = FaultAction::kError;
    decision.status = chosen->error_status;
    decision.code = !chosen->error_code.empty()   ? chosen->error_code
                    : chosen->error_status >= 500 ? "internal_error"
                                                  : "injected_error";
    decision.retry_after_s = chosen->retry_after_s;
    if (!decision.retry_after_s && chosen->error_status == 429) decision.retry_after_s = 1;
  } else if (u < chosen->reset_rate + chosen->error_rate + chosen->commit_then_lose_rate &&
             IsMutation(method)) {
    decision.action = FaultAction::kCommitThenLose;
  }
  if (chosen->remaining > 0 && --chosen->remaining == 0) {
    rules_.erase(rules_.begin() + static_cast<ptrdiff_t>(chosen_at));
  }
  return decision;
}

std::string FaultInjector::ToJson(std::optional<std::string> team) const {
  absl::MutexLock lock(&mu_);
  JsonWriter w;
  w.BeginArray();
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    const FaultRule& r = *it;
    if (team.has_value() && r.team != *team) continue;
    w.BeginObject();
    if (!r.team.empty()) w.Field("team", r.team);
    if (!r.methods.empty()) {
      w.Key("methods").BeginArray();
      for (const std::string& m : r.methods) w.String(m);
      w.EndArray();
    }
    if (!r.path_contains.empty()) w.Field("path_contains", r.path_contains);
    if (!r.latency.empty()) {
      w.Key("latency_ms").BeginObject();
      if (r.latency.percentiles.empty()) {
        w.Key("fixed").Double(absl::ToDoubleMilliseconds(r.latency.fixed));
        w.Key("jitter").Double(absl::ToDoubleMilliseconds(r.latency.jitter));
      }
      for (const auto& [q, d] : r.latency.percentiles) {
        w.Key(q == 0.999 ? std::string("p999") : StrCat("p", static_cast<int>(q * 100 + 0.5)))
            .Double(absl::ToDoubleMilliseconds(d));
      }
      w.EndObject();
    }
    w.Key("error_rate").Double(r.error_rate);
    w.Field("error_status", r.error_status);
    if (!r.error_code.empty()) w.Field("error_code", r.error_code);
    if (r.retry_after_s) w.Field("retry_after_s", *r.retry_after_s);
    w.Key("reset_rate").Double(r.reset_rate);
    w.Key("commit_then_lose_rate").Double(r.commit_then_lose_rate);
    if (r.remaining > 0) w.Field("count", r.remaining);
    w.EndObject();
  }
  w.EndArray();
  return w.Take();
}

}  // namespace herald::upstream_sim
