// Typed calls of the queue's Lua scripts over a blocking connection, with an explicit `now`, so
// integration tests read as the queue's operations and stay deterministic.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <herald/common/strings.h>
#include <herald/queue/record.h>
#include <herald/queue/scripts.h>
#include <herald/testing/redis_sync.h>

namespace herald::queue::testing {

using herald::testing::SyncRedis;
using herald::testing::SyncReply;

// 2023-11-14 22:13:20 UTC, in microseconds.
inline constexpr int64_t kT0 = 1'700'000'000'000'000;
inline constexpr int64_t kSecond = 1'000'000;
inline constexpr int64_t kMs = 1'000;

struct TestJob {
  std::string id;
  std::string account = "acct_a";
  std::string team = "team_1";
  std::string kind = "send";
  std::string tenant = "tenant_1";
  std::string payload = "p";
  int max_attempts = 3;
  int64_t delay_ms = 0;
};

struct Leased {
  std::string id, token, kind, account, team, tenant, payload;
  int64_t attempt = 0, max_attempts = 0;
  bool unknown = false;
  int64_t enqueued_ms = 0, expires_ms = 0;
};

struct LeaseResult {
  int64_t hint_ms = 0;
  int64_t throttled_account = 0;
  int64_t throttled_team = 0;
  std::vector<Leased> jobs;
};

class ScriptDriver {
 public:
  ScriptDriver(SyncRedis& redis, std::string tag) : redis_(redis), tag_(std::move(tag)) {}

  SyncReply Run(ScriptId id, int64_t now, std::vector<std::string> args) {
    args.insert(args.begin(), StrCat(now));
    auto reply = redis_.Eval(ScriptSource(id), {tag_}, args);
    if (!reply.ok()) {
      ADD_FAILURE() << ScriptName(id) << ": " << reply.status();
      return {};
    }
    if (reply->is_error()) ADD_FAILURE() << ScriptName(id) << ": " << reply->str;
    return *reply;
  }

  static void AppendJob(std::vector<std::string>& args, const TestJob& j) {
    for (std::string v : {j.id, j.kind, j.account, j.team, j.tenant, j.payload,
                          StrCat(j.max_attempts), StrCat(j.delay_ms)}) {
      args.push_back(std::move(v));
    }
  }

  std::vector<int64_t> Enqueue(int64_t now, const std::vector<TestJob>& jobs,
                               int64_t window_ms = 86'400'000) {
    std::vector<std::string> args = {StrCat(window_ms)};
    for (const auto& j : jobs) AppendJob(args, j);
    return Ints(Run(ScriptId::kEnqueue, now, args));
  }
  int64_t Enqueue1(int64_t now, const TestJob& job, int64_t window_ms = 86'400'000) {
    auto r = Enqueue(now, {job}, window_ms);
    return r.empty() ? -99 : r[0];
  }

  // `visit_cap`: jobs per account visit (lease.lua's V); 1 is strict job-by-job round-robin.
  LeaseResult Lease(int64_t now, int max_jobs, int64_t lease_ms = 30'000, int visit_cap = 1) {
    const SyncReply r = Run(ScriptId::kLease, now,
                            {StrCat(max_jobs), StrCat(lease_ms), "100", "100", StrCat(visit_cap)});
    LeaseResult out;
    if (r.elements.size() < 4) return out;
    const auto& e = r.elements;
    out.hint_ms = e[0].integer;
    out.throttled_account = e[1].integer;
    out.throttled_team = e[2].integer;
    const int64_t expires_ms = e[3].integer;
    size_t i = 4;
    while (i + 5 <= e.size()) {
      const std::string& account = e[i].str;
      const std::string& team = e[i + 1].str;
      const std::string& tenant = e[i + 2].str;
      const std::string& prefix = e[i + 3].str;
      const int64_t n = e[i + 4].integer;
      i += 5;
      for (int64_t k = 0; k < n && i + 2 <= e.size(); ++k, i += 2) {
        const std::optional<JobRecord> rec = DecodeJobRecord(e[i + 1].str);
        if (!rec.has_value()) {
          ADD_FAILURE() << "undecodable record for " << e[i].str;
          continue;
        }
        EXPECT_EQ(rec->account, account);
        out.jobs.push_back({.id = e[i].str,
                            .token = prefix + e[i].str,
                            .kind = std::string(rec->kind),
                            .account = account,
                            .team = team,
                            .tenant = tenant,
                            .payload = std::string(rec->payload),
                            .attempt = rec->failed_attempts + 1,
                            .max_attempts = rec->max_attempts,
                            .unknown = rec->previous_outcome_unknown,
                            .enqueued_ms = rec->enqueued_ms,
                            .expires_ms = expires_ms});
      }
    }
    return out;
  }

  // ack.lua's token groups: a token is its group's prefix followed by the job's id. Each job is
  // sent as a group of its own (a token that does not end with the id goes whole, as a prefix
  // naming no group, and is fenced).
  static void AppendTokens(std::vector<std::string>& args,
                           const std::vector<std::pair<std::string, std::string>>& jobs) {
    args.push_back(StrCat(jobs.size()));
    for (const auto& [id, token] : jobs) {
      const bool split = token.size() > id.size() && token.ends_with(id);
      args.push_back(split ? token.substr(0, token.size() - id.size()) : token);
      args.push_back("1");
      args.push_back(id);
    }
  }

  // {ack, next} per job.
  std::vector<int64_t> Ack(int64_t now,
                           const std::vector<std::pair<std::string, std::string>>& jobs,
                           int64_t window_ms = 86'400'000) {
    std::vector<std::string> args = {StrCat(window_ms)};
    AppendTokens(args, jobs);
    return Ints(Run(ScriptId::kAck, now, args));
  }
  int64_t Ack1(int64_t now, const Leased& job) {
    auto r = Ack(now, {{job.id, job.token}});
    return r.empty() ? -99 : r[0];
  }
  std::vector<int64_t> AckAndEnqueue(int64_t now, const Leased& job, const TestJob& next,
                                     int64_t window_ms = 86'400'000) {
    std::vector<std::string> args = {StrCat(window_ms)};
    AppendTokens(args, {{job.id, job.token}});
    args.push_back("1");
    AppendJob(args, next);
    return Ints(Run(ScriptId::kAck, now, args));
  }

  int64_t Nack(int64_t now, const Leased& job, std::string mode, int64_t number,
               std::string reason = "", bool unknown = false) {
    auto r = Ints(Run(ScriptId::kNack, now,
                      {job.id, job.token, std::move(mode), StrCat(number), std::move(reason),
                       unknown ? "1" : "0"}));
    return r.empty() ? -99 : r[0];
  }

  int64_t Heartbeat(int64_t now, const Leased& job, int64_t lease_ms) {
    auto r = Ints(Run(ScriptId::kHeartbeat, now, {StrCat(lease_ms), job.id, job.token}));
    return r.empty() ? -99 : r[0];
  }

  int64_t Reap(int64_t now, int limit = 100) {
    return Run(ScriptId::kReap, now, {StrCat(limit)}).integer;
  }

  SyncReply Configure(int64_t now, std::vector<std::string> args) {
    args.insert(args.begin(), StrCat(now));
    auto reply = redis_.Eval(ScriptSource(ScriptId::kConfigure), {tag_}, args);
    if (!reply.ok()) return {.type = SyncReply::Type::kError, .str = reply.status().ToString()};
    return *reply;
  }
  void SetAccount(int64_t now, const std::string& account, const std::string& team,
                  int64_t per_minute, int64_t burst, int64_t max_in_flight = 0) {
    const SyncReply r = Configure(now, {"account", account, team, "tenant_1", StrCat(per_minute),
                                        StrCat(burst), StrCat(max_in_flight)});
    EXPECT_FALSE(r.is_error()) << r.str;
  }
  void SetTeam(int64_t now, const std::string& team, int64_t per_minute, int64_t burst) {
    const SyncReply r = Configure(now, {"team", team, StrCat(per_minute), StrCat(burst)});
    EXPECT_FALSE(r.is_error()) << r.str;
  }

  struct Stats {
    int64_t ready = 0, delayed = 0, leased = 0, dead = 0, oldest_ready_age_ms = 0, ring = 0;
    std::map<std::string, int64_t> counters;
  };
  Stats GetStats(int64_t now) {
    const SyncReply r = Run(ScriptId::kStats, now, {"16"});
    Stats s;
    if (r.elements.size() < 6) return s;
    s.ready = r.elements[0].integer;
    s.delayed = r.elements[1].integer;
    s.leased = r.elements[2].integer;
    s.dead = r.elements[3].integer;
    s.oldest_ready_age_ms = r.elements[4].integer;
    s.ring = r.elements[5].integer;
    for (size_t i = 6; i + 1 < r.elements.size(); i += 2) {
      s.counters[r.elements[i].str] = r.elements[i + 1].integer;
    }
    return s;
  }

  const std::string& tag() const { return tag_; }

 private:
  static std::vector<int64_t> Ints(const SyncReply& r) {
    std::vector<int64_t> out;
    for (const auto& e : r.elements) out.push_back(e.integer);
    return out;
  }

  SyncRedis& redis_;
  std::string tag_;
};

}  // namespace herald::queue::testing
