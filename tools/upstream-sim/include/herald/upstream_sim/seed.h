// The simulator's starting state: teams (API keys, per-minute limit, credits), their accounts,
// each account's fans with spend histories, and existing user lists.
//
// Either exact (a JSON seed file, `--seed_file`) or generated (`--teams=N
// --accounts_per_team=M --fans_per_account=K`). Everything generated is a pure function of
// the seed number, so two runs with the same seed start identical.
//
// Seed file format (every field but `teams` optional):
//
//   {
//     "seed": 7,
//     "teams": [{
//       "id": "agency-a", "api_keys": ["key-a"], "rate_limit_per_minute": 1000,
//       "credits": 100000,
//       "accounts": [{
//         "id": "acct_0123456789abcdef0123456789abcdef", "username": "alice",
//         "display_name": "Alice",
//         "fans": 500,                       // generated fans, or an array of exact fans:
//         // "fans": [{"id": 1001, "active": true, "rebill_on": true,
//         //           "subscribed_at": "2025-01-01 00:00:00", "spend_messages": 12.5,
//         //           "spend_subscriptions": 30, "spend_tips": 0, "spend_posts": 0,
//         //           "propensity": 1.5}],
//         "lists": [{"id": 55, "name": "VIP", "users": [1001]},   // exact members
//                   {"name": "Random 10%", "size": 50}]          // 50 random fans
//       }]
//     }]
//   }
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <herald/upstream_sim/model.h>

namespace herald::upstream_sim {

struct FanSeed {
  uint64_t id = 0;
  bool active = true;
  bool rebill_on = true;
  std::optional<absl::Time> subscribed_at;  // generated when absent
  int64_t spend_subscriptions = 0;          // cents
  int64_t spend_messages = 0;
  int64_t spend_tips = 0;
  int64_t spend_posts = 0;
  std::optional<double> propensity;  // relative to the average fan (1.0); derived when absent
};

struct ListSeed {
  std::optional<int64_t> id;      // generated when absent
  std::string name;               // at most 64 characters
  std::vector<uint64_t> members;  // fan ids of this account
  int64_t random_size = 0;        // plus this many fans drawn at random
};

struct AccountSeed {
  std::string id;  // "acct_…"; generated when empty
  std::string username;
  std::string display_name;
  int64_t generated_fans = 0;
  std::vector<FanSeed> fans;  // exact fans, in addition to the generated ones
  std::vector<ListSeed> lists;
};

struct TeamSeed {
  std::string id;
  std::vector<std::string> api_keys;
  int64_t rate_limit_per_minute = 1000;
  // The fixed windows the limit is counted in (Team::Admit); not read from seed files.
  absl::Duration rate_limit_window = absl::Minutes(1);
  int64_t credits = 1'000'000'000;
  std::vector<AccountSeed> accounts;
};

struct SeedSpec {
  uint64_t seed = 1;
  std::vector<TeamSeed> teams;
};

// The flag-driven quick start.
struct QuickSeed {
  int teams = 1;
  int accounts_per_team = 2;
  int fans_per_account = 100;
  int lists_per_account = 2;
  int64_t rate_limit_per_minute = 1000;
  int64_t credits = 1'000'000'000;
  uint64_t seed = 1;
};

// Teams are "team-<i>" with API key "sim-key-<i>" (i from 1); account ids are derived from the
// seed; every account gets `lists_per_account` lists of about 10% of its fans.
SeedSpec MakeQuickSeed(const QuickSeed& quick);

// Parses and validates a seed file's text. `default_seed` applies when the file has no "seed".
absl::StatusOr<SeedSpec> ParseSeedJson(std::string_view json, uint64_t default_seed = 1);

// Unique team ids, API keys and account ids; account ids start with "acct_"; limits >= 1;
// list names 1..64 characters; list members are fans of the account.
absl::Status ValidateSeed(const SeedSpec& spec);

// The world a (valid) spec describes, with fan subscription dates relative to `now`.
std::unique_ptr<World> BuildWorld(const SeedSpec& spec, absl::Time now);

}  // namespace herald::upstream_sim
