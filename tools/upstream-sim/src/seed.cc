#include <algorithm>
#include <cmath>
#include <set>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <herald/common/strings.h>
#include <herald/upstream_sim/money.h>
#include <herald/upstream_sim/seed.h>
#include <herald/upstream_sim/time_format.h>

namespace herald::upstream_sim {
namespace {

namespace json = boost::json;

constexpr const char* kListNames[] = {"VIP", "Top spenders", "Recent buyers", "Whales",
                                      "Re-engage"};

std::string Hex(uint64_t a, uint64_t b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[i] = kHex[(a >> (60 - 4 * i)) & 0xf];
    out[16 + i] = kHex[(b >> (60 - 4 * i)) & 0xf];
  }
  return out;
}

absl::Status Bad(std::string_view where, std::string_view why) {
  return absl::InvalidArgumentError(StrCat("seed: ", where, ": ", why));
}

std::optional<int64_t> AsInt(const json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v.as_uint64());
  }
  if (v.is_double() && v.as_double() == std::floor(v.as_double()) &&
      std::fabs(v.as_double()) < 9e15) {
    return static_cast<int64_t>(v.as_double());
  }
  if (v.is_string()) return ParseInt<int64_t>(std::string_view(v.as_string()));
  return std::nullopt;
}

std::optional<int64_t> AsCents(const json::value& v) {
  if (v.is_int64()) return v.as_int64() * 100;
  if (v.is_uint64()) return static_cast<int64_t>(v.as_uint64()) * 100;
  if (v.is_double()) return CentsFromDouble(v.as_double());
  if (v.is_string()) return ParseDollarText(std::string_view(v.as_string()));
  return std::nullopt;
}

std::string_view Str(const json::string& s) { return {s.data(), s.size()}; }

// Every key of `object` must be one of `allowed`, so typos in a seed file are caught.
absl::Status CheckKeys(std::string_view where, const json::object& object,
                       std::initializer_list<std::string_view> allowed) {
  for (const auto& entry : object) {
    const std::string_view key = std::string_view(entry.key().data(), entry.key().size());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Bad(where, StrCat("unknown key '", key, "'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<FanSeed> ParseFan(std::string_view where, const json::value& v) {
  FanSeed fan;
  if (auto id = AsInt(v); id) {
    if (*id <= 0) return Bad(where, "fan ids must be positive");
    fan.id = static_cast<uint64_t>(*id);
    return fan;
  }
  if (!v.is_object()) return Bad(where, "a fan is an id or an object");
  const json::object& o = v.as_object();
  if (absl::Status s =
          CheckKeys(where, o,
                    {"id", "active", "rebill_on", "subscribed_at", "spend_messages",
                     "spend_subscriptions", "spend_tips", "spend_posts", "propensity"});
      !s.ok()) {
    return s;
  }
  auto id = o.contains("id") ? AsInt(o.at("id")) : std::nullopt;
  if (!id || *id <= 0) return Bad(where, "fan needs a positive integer id");
  fan.id = static_cast<uint64_t>(*id);
  if (o.contains("active")) {
    if (!o.at("active").is_bool()) return Bad(where, "active must be a boolean");
    fan.active = o.at("active").as_bool();
  }
  if (o.contains("rebill_on")) {
    if (!o.at("rebill_on").is_bool()) return Bad(where, "rebill_on must be a boolean");
    fan.rebill_on = o.at("rebill_on").as_bool();
  }
  if (o.contains("subscribed_at")) {
    const json::value& at = o.at("subscribed_at");
    auto t = at.is_string() ? ParseClientTime(Str(at.as_string())) : std::nullopt;
    if (!t) return Bad(where, "subscribed_at must be a date such as \"2025-01-01 00:00:00\"");
    fan.subscribed_at = *t;
  }
  struct Spend {
    const char* key;
    int64_t* field;
  };
  for (const Spend& spend :
       {Spend{"spend_messages", &fan.spend_messages},
        Spend{"spend_subscriptions", &fan.spend_subscriptions},
        Spend{"spend_tips", &fan.spend_tips}, Spend{"spend_posts", &fan.spend_posts}}) {
    if (!o.contains(spend.key)) continue;
    auto cents = AsCents(o.at(spend.key));
    if (!cents || *cents < 0 || *cents > 4'000'000'000) {
      return Bad(where, StrCat(spend.key, " must be dollars in [0, 40000000] (2 decimals)"));
    }
    *spend.field = *cents;
  }
  if (o.contains("propensity")) {
    const json::value& p = o.at("propensity");
    const double value = p.is_double()  ? p.as_double()
                         : p.is_int64() ? static_cast<double>(p.as_int64())
                                        : -1;
    if (value < 0 || value > 100) return Bad(where, "propensity must be a number in [0, 100]");
    fan.propensity = value;
  }
  return fan;
}

absl::StatusOr<ListSeed> ParseList(std::string_view where, const json::value& v) {
  if (!v.is_object()) return Bad(where, "a list is an object");
  const json::object& o = v.as_object();
  if (absl::Status s = CheckKeys(where, o, {"id", "name", "users", "size"}); !s.ok()) return s;
  ListSeed list;
  if (o.contains("id")) {
    auto id = AsInt(o.at("id"));
    if (!id || *id <= 0) return Bad(where, "list id must be a positive integer");
    list.id = *id;
  }
  if (!o.contains("name") || !o.at("name").is_string()) return Bad(where, "list needs a name");
  list.name = std::string(Str(o.at("name").as_string()));
  if (o.contains("users")) {
    if (!o.at("users").is_array()) return Bad(where, "users must be an array of fan ids");
    for (const json::value& u : o.at("users").as_array()) {
      auto id = AsInt(u);
      if (!id || *id <= 0) return Bad(where, "users must be positive fan ids");
      list.members.push_back(static_cast<uint64_t>(*id));
    }
  }
  if (o.contains("size")) {
    auto size = AsInt(o.at("size"));
    if (!size || *size < 0) return Bad(where, "size must be a non-negative integer");
    list.random_size = *size;
  }
  return list;
}

absl::StatusOr<AccountSeed> ParseAccount(std::string_view where, const json::value& v) {
  if (!v.is_object()) return Bad(where, "an account is an object");
  const json::object& o = v.as_object();
  if (absl::Status s = CheckKeys(where, o, {"id", "username", "display_name", "fans", "lists"});
      !s.ok()) {
    return s;
  }
  AccountSeed account;
  for (auto [key, field] : {std::pair{"id", &account.id}, std::pair{"username", &account.username},
                            std::pair{"display_name", &account.display_name}}) {
    if (!o.contains(key)) continue;
    if (!o.at(key).is_string()) return Bad(where, StrCat(key, " must be a string"));
    *field = std::string(Str(o.at(key).as_string()));
  }
  if (o.contains("fans")) {
    const json::value& fans = o.at("fans");
    if (fans.is_array()) {
      for (const json::value& f : fans.as_array()) {
        auto fan = ParseFan(StrCat(where, ".fans"), f);
        if (!fan.ok()) return fan.status();
        account.fans.push_back(*fan);
      }
    } else {
      auto n = AsInt(fans);
      if (!n || *n < 0) return Bad(where, "fans must be a count or an array of fans");
      account.generated_fans = *n;
    }
  }
  if (o.contains("lists")) {
    if (!o.at("lists").is_array()) return Bad(where, "lists must be an array");
    for (const json::value& l : o.at("lists").as_array()) {
      auto list = ParseList(StrCat(where, ".lists"), l);
      if (!list.ok()) return list.status();
      account.lists.push_back(*list);
    }
  }
  return account;
}

absl::StatusOr<TeamSeed> ParseTeam(std::string_view where, const json::value& v) {
  if (!v.is_object()) return Bad(where, "a team is an object");
  const json::object& o = v.as_object();
  if (absl::Status s =
          CheckKeys(where, o, {"id", "api_keys", "rate_limit_per_minute", "credits", "accounts"});
      !s.ok()) {
    return s;
  }
  TeamSeed team;
  if (!o.contains("id") || !o.at("id").is_string()) return Bad(where, "team needs an id");
  team.id = std::string(Str(o.at("id").as_string()));
  if (!o.contains("api_keys") || !o.at("api_keys").is_array()) {
    return Bad(where, "team needs api_keys (an array of strings)");
  }
  for (const json::value& k : o.at("api_keys").as_array()) {
    if (!k.is_string()) return Bad(where, "api_keys must be strings");
    team.api_keys.emplace_back(Str(k.as_string()));
  }
  if (o.contains("rate_limit_per_minute")) {
    auto n = AsInt(o.at("rate_limit_per_minute"));
    if (!n) return Bad(where, "rate_limit_per_minute must be an integer");
    team.rate_limit_per_minute = *n;
  }
  if (o.contains("credits")) {
    auto n = AsInt(o.at("credits"));
    if (!n) return Bad(where, "credits must be an integer");
    team.credits = *n;
  }
  if (o.contains("accounts")) {
    if (!o.at("accounts").is_array()) return Bad(where, "accounts must be an array");
    int i = 0;
    for (const json::value& a : o.at("accounts").as_array()) {
      auto account = ParseAccount(StrCat(where, ".accounts[", i++, "]"), a);
      if (!account.ok()) return account.status();
      team.accounts.push_back(*account);
    }
  }
  return team;
}

// Generated fans for one account: ids ascending with random gaps, ~80% active, spend with a
// long tail (a tenth of the fans spend twenty times more).
std::vector<Fan> GenerateFans(uint64_t seed, uint64_t account_hash, int64_t count, absl::Time now) {
  std::vector<Fan> fans;
  fans.reserve(static_cast<size_t>(count));
  uint64_t id = 100'000 + HashValues({seed, account_hash, 1}) % 5'000'000;
  const int64_t now_s = absl::ToUnixSeconds(now);
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t h = HashValues({seed, account_hash, static_cast<uint64_t>(i)});
    id += 1 + Mix64(h) % 997;
    Fan fan;
    fan.id = id;
    const double u_active = UnitInterval(Mix64(h ^ 1));
    fan.flags = 0;
    if (u_active < 0.8) fan.flags |= kFanActive;
    if (UnitInterval(Mix64(h ^ 2)) < 0.6) fan.flags |= kFanRebillOn;
    fan.subscribed_at = now_s - static_cast<int64_t>(UnitInterval(Mix64(h ^ 3)) * 730 * 86400);
    double spend = -std::log(1 - UnitInterval(Mix64(h ^ 4))) * 3000;  // cents, mean $30
    if (UnitInterval(Mix64(h ^ 5)) < 0.1) spend *= 20;
    spend = std::min(spend, 2e8);
    fan.spend_subscriptions = static_cast<uint32_t>(spend * 0.40);
    fan.spend_messages = static_cast<uint32_t>(spend * 0.40);
    fan.spend_tips = static_cast<uint32_t>(spend * 0.15);
    fan.spend_posts = static_cast<uint32_t>(spend * 0.05);
    fans.push_back(fan);
  }
  return fans;
}

// Propensity from message spend relative to the account's mean: 0.5 + 0.5 * spend / mean, so
// the mean is 1.0 and big buyers buy more.
void DerivePropensity(std::vector<Fan>& fans, const std::vector<bool>& explicit_propensity) {
  double total = 0;
  for (const Fan& f : fans) total += f.spend_messages;
  const double mean = fans.empty() ? 0 : total / static_cast<double>(fans.size());
  for (size_t i = 0; i < fans.size(); ++i) {
    if (explicit_propensity[i]) continue;
    const double p = mean > 0 ? 0.5 + 0.5 * fans[i].spend_messages / mean : 1.0;
    fans[i].propensity = static_cast<uint16_t>(std::clamp(std::lround(p * 100), 5L, 5000L));
  }
}

}  // namespace

SeedSpec MakeQuickSeed(const QuickSeed& quick) {
  SeedSpec spec;
  spec.seed = quick.seed;
  for (int t = 1; t <= quick.teams; ++t) {
    TeamSeed team;
    team.id = StrCat("team-", t);
    team.api_keys = {StrCat("sim-key-", t)};
    team.rate_limit_per_minute = quick.rate_limit_per_minute;
    team.credits = quick.credits;
    for (int a = 1; a <= quick.accounts_per_team; ++a) {
      AccountSeed account;
      account.username = StrCat("creator_", t, "_", a);
      account.display_name = StrCat("Creator ", t, "-", a);
      account.generated_fans = quick.fans_per_account;
      for (int l = 0; l < quick.lists_per_account; ++l) {
        ListSeed list;
        list.name = l < 5 ? kListNames[l] : StrCat("List ", l + 1);
        list.random_size = quick.fans_per_account / 10;
        account.lists.push_back(list);
      }
      team.accounts.push_back(std::move(account));
    }
    spec.teams.push_back(std::move(team));
  }
  return spec;
}

absl::StatusOr<SeedSpec> ParseSeedJson(std::string_view text, uint64_t default_seed) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return absl::InvalidArgumentError(StrCat("seed: not valid JSON: ", ec.message()));
  if (!root.is_object()) return Bad("top level", "must be an object");
  const json::object& o = root.as_object();
  if (absl::Status s = CheckKeys("top level", o, {"seed", "teams"}); !s.ok()) return s;
  SeedSpec spec;
  spec.seed = default_seed;
  if (o.contains("seed")) {
    auto n = AsInt(o.at("seed"));
    if (!n || *n < 0) return Bad("seed", "must be a non-negative integer");
    spec.seed = static_cast<uint64_t>(*n);
  }
  if (!o.contains("teams") || !o.at("teams").is_array()) return Bad("teams", "must be an array");
  int i = 0;
  for (const json::value& t : o.at("teams").as_array()) {
    auto team = ParseTeam(StrCat("teams[", i++, "]"), t);
    if (!team.ok()) return team.status();
    spec.teams.push_back(*team);
  }
  if (absl::Status s = ValidateSeed(spec); !s.ok()) return s;
  return spec;
}

absl::Status ValidateSeed(const SeedSpec& spec) {
  if (spec.teams.empty()) return Bad("teams", "at least one team is needed");
  std::set<std::string> team_ids, keys, account_ids;
  std::set<int64_t> list_ids;
  for (const TeamSeed& team : spec.teams) {
    if (team.id.empty()) return Bad("team", "empty id");
    if (!team_ids.insert(team.id).second) return Bad(team.id, "duplicate team id");
    if (team.api_keys.empty()) return Bad(team.id, "needs at least one API key");
    for (const std::string& key : team.api_keys) {
      if (key.empty()) return Bad(team.id, "empty API key");
      if (!keys.insert(key).second) return Bad(team.id, "API key used by two teams");
    }
    if (team.rate_limit_per_minute < 1) return Bad(team.id, "rate_limit_per_minute must be >= 1");
    if (team.credits < 0) return Bad(team.id, "credits must be >= 0");
    for (const AccountSeed& account : team.accounts) {
      if (!account.id.empty()) {
        if (!account.id.starts_with("acct_") || account.id.size() < 6) {
          return Bad(account.id, "account ids start with acct_");
        }
        if (!account_ids.insert(account.id).second) return Bad(account.id, "duplicate account id");
      }
      if (account.generated_fans < 0 || account.generated_fans > 50'000'000) {
        return Bad(team.id, "fans per account must be in [0, 50000000]");
      }
      std::set<uint64_t> fan_ids;
      for (const FanSeed& fan : account.fans) {
        if (!fan_ids.insert(fan.id).second) return Bad(team.id, "duplicate fan id in an account");
      }
      for (const ListSeed& list : account.lists) {
        if (list.name.empty() || list.name.size() > 64) {
          return Bad(list.name, "list names have 1 to 64 characters");
        }
        if (list.id && !list_ids.insert(*list.id).second)
          return Bad(list.name, "duplicate list id");
        for (uint64_t member : list.members) {
          // Generated fans are unknown until built; exact members must be exact fans.
          if (!fan_ids.contains(member)) {
            return Bad(list.name, StrCat("member ", member, " is not one of the account's fans"));
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<World> BuildWorld(const SeedSpec& spec, absl::Time now) {
  std::vector<std::unique_ptr<Team>> teams;
  std::vector<std::unique_ptr<Account>> accounts;
  int64_t next_list_id = 1'000;
  for (const TeamSeed& team : spec.teams) {
    for (const AccountSeed& account : team.accounts) {
      for (const ListSeed& list : account.lists) {
        if (list.id) next_list_id = std::max(next_list_id, *list.id + 1);
      }
    }
  }
  for (uint32_t t = 0; t < spec.teams.size(); ++t) {
    const TeamSeed& ts = spec.teams[t];
    auto team = std::make_unique<Team>(ts.id, ts.api_keys, ts.rate_limit_per_minute, ts.credits,
                                       ts.rate_limit_window);
    for (uint32_t a = 0; a < ts.accounts.size(); ++a) {
      const AccountSeed& as = ts.accounts[a];
      const uint64_t account_hash = HashValues({spec.seed, t, a, 0xacc});
      auto identity = std::make_shared<AccountIdentity>();
      identity->id =
          as.id.empty() ? StrCat("acct_", Hex(account_hash, Mix64(account_hash))) : as.id;
      identity->username =
          as.username.empty() ? StrCat("creator_", t + 1, "_", a + 1) : as.username;
      identity->display_name = as.display_name.empty() ? identity->username : as.display_name;
      identity->user_id = 10'000'000 + Mix64(account_hash) % 400'000'000;
      identity->team_id = ts.id;
      identity->team_index = t;
      identity->index = static_cast<uint32_t>(accounts.size());
      auto acct = std::make_unique<Account>(identity);
      {
        absl::MutexLock lock(&acct->mu);
        std::vector<Fan> fans = GenerateFans(spec.seed, account_hash, as.generated_fans, now);
        std::vector<bool> explicit_propensity(fans.size(), false);
        for (const FanSeed& fs : as.fans) {
          Fan fan;
          fan.id = fs.id;
          fan.flags = static_cast<uint8_t>((fs.active ? kFanActive : 0) |
                                           (fs.rebill_on ? kFanRebillOn : 0));
          fan.subscribed_at =
              absl::ToUnixSeconds(fs.subscribed_at.value_or(now - absl::Hours(24 * 90)));
          fan.spend_subscriptions = static_cast<uint32_t>(fs.spend_subscriptions);
          fan.spend_messages = static_cast<uint32_t>(fs.spend_messages);
          fan.spend_tips = static_cast<uint32_t>(fs.spend_tips);
          fan.spend_posts = static_cast<uint32_t>(fs.spend_posts);
          if (fs.propensity)
            fan.propensity = static_cast<uint16_t>(std::lround(*fs.propensity * 100));
          // An exact fan replaces a generated one with the same id.
          auto it = std::lower_bound(fans.begin(), fans.end(), fan.id,
                                     [](const Fan& f, uint64_t id) { return f.id < id; });
          const size_t at = static_cast<size_t>(it - fans.begin());
          if (it != fans.end() && it->id == fan.id) {
            *it = fan;
            explicit_propensity[at] = fs.propensity.has_value();
          } else {
            fans.insert(it, fan);
            explicit_propensity.insert(explicit_propensity.begin() + static_cast<ptrdiff_t>(at),
                                       fs.propensity.has_value());
          }
        }
        DerivePropensity(fans, explicit_propensity);
        acct->fans = std::move(fans);
        for (size_t l = 0; l < as.lists.size(); ++l) {
          const ListSeed& ls = as.lists[l];
          UserList list;
          list.id = ls.id ? *ls.id : next_list_id++;
          list.name = ls.name;
          list.created_at = now - absl::Hours(24 * 30);
          for (uint64_t member : ls.members) {
            if (auto index = acct->FindFan(member)) list.members.push_back(*index);
          }
          const size_t n = acct->fans.size();
          const int64_t want = std::min<int64_t>(ls.random_size, static_cast<int64_t>(n));
          // Deterministic sample: walk the fans with a per-list hash threshold, then top up
          // from the start with fans not taken yet.
          const double fraction = n == 0 ? 0 : static_cast<double>(want) / static_cast<double>(n);
          std::vector<bool> chosen(n, false);
          for (uint32_t index : list.members) chosen[index] = true;
          int64_t taken = 0;
          for (uint32_t i = 0; i < n && taken < want; ++i) {
            if (!chosen[i] &&
                UnitInterval(HashValues({spec.seed, account_hash, l, i})) < fraction) {
              chosen[i] = true;
              list.members.push_back(i);
              ++taken;
            }
          }
          for (uint32_t i = 0; i < n && taken < want; ++i) {
            if (chosen[i]) continue;
            chosen[i] = true;
            list.members.push_back(i);
            ++taken;
          }
          std::sort(list.members.begin(), list.members.end());
          list.members.erase(std::unique(list.members.begin(), list.members.end()),
                             list.members.end());
          acct->lists.push_back(std::move(list));
        }
      }
      team->accounts.push_back(identity->index);
      accounts.push_back(std::move(acct));
    }
    teams.push_back(std::move(team));
  }
  auto world = std::make_unique<World>(spec.seed, std::move(teams), std::move(accounts));
  world->SetNextListIdAtLeast(next_list_id);
  return world;
}

}  // namespace herald::upstream_sim
