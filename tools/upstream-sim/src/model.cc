#include <algorithm>
#include <cmath>

#include <herald/common/strings.h>
#include <herald/upstream_sim/model.h>

namespace herald::upstream_sim {

std::string FanName(uint64_t id) { return StrCat("Fan ", id); }
std::string FanUsername(uint64_t id) { return StrCat("u", id); }

QueueStatus ComputeQueueStatus(const MassMessage& m, absl::Time now, absl::Duration unsend_window) {
  QueueStatus s;
  s.date = m.start_at;
  s.total = static_cast<uint32_t>(m.recipients.size());
  s.sent = m.sent;
  s.ready = !m.save_for_later;
  s.started = !m.save_for_later && now >= m.start_at;
  s.canceled = m.canceled;
  if (m.canceled) {
    s.pending = 0;
    s.done = true;
    return s;
  }
  s.pending = s.total - m.sent;
  s.done = s.started && m.sent == s.total;
  if (!s.started) {
    s.can_unsend = true;
    s.unsend_seconds = absl::ToInt64Seconds(unsend_window);
  } else {
    const absl::Duration left = m.start_at + unsend_window - now;
    s.can_unsend = left > absl::ZeroDuration();
    s.unsend_seconds = s.can_unsend ? absl::ToInt64Seconds(absl::Ceil(left, absl::Seconds(1))) : 0;
  }
  return s;
}

std::string WrapHtml(std::string_view text) {
  if (text.starts_with('<')) return std::string(text);
  return StrCat("<p>", text, "</p>");
}

std::string StripHtml(std::string_view html) {
  std::string out;
  out.reserve(html.size());
  bool in_tag = false;
  for (char c : html) {
    if (c == '<') {
      in_tag = true;
    } else if (c == '>') {
      in_tag = false;
    } else if (!in_tag) {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<uint32_t> Account::FindFan(uint64_t fan_id) const {
  auto it = std::lower_bound(fans.begin(), fans.end(), fan_id,
                             [](const Fan& f, uint64_t id) { return f.id < id; });
  if (it == fans.end() || it->id != fan_id) return std::nullopt;
  return static_cast<uint32_t>(it - fans.begin());
}

UserList* Account::FindList(int64_t list_id) {
  for (UserList& list : lists) {
    if (list.id == list_id) return &list;
  }
  return nullptr;
}

MassMessage* Account::FindMessage(int64_t message_id) {
  auto it = messages.find(message_id);
  return it == messages.end() ? nullptr : it->second.get();
}

absl::Time Account::FreeStartTime(absl::Time wanted, int64_t message_id) const {
  const auto taken = [&](absl::Time t) {
    return std::any_of(messages.begin(), messages.end(), [&](const auto& entry) {
      return entry.first != message_id && entry.second->start_at == t;
    });
  };
  while (taken(wanted)) wanted += absl::Microseconds(1);
  return wanted;
}

absl::Time Account::NextMessageTime(absl::Time now) {
  const absl::Time t = std::max(now, last_message_time + absl::Microseconds(1));
  last_message_time = t;
  return t;
}

int64_t Team::WindowAt(absl::Time now) const {
  return absl::ToInt64Microseconds(absl::Floor(now - absl::UnixEpoch(), window_length_)) /
         absl::ToInt64Microseconds(window_length_);
}

int64_t Team::PerWindow() const {
  return std::max<int64_t>(
      1, static_cast<int64_t>(static_cast<double>(limit_per_minute_) *
                              absl::FDivDuration(window_length_, absl::Minutes(1))));
}

Admission Team::Admit(absl::Time now, int64_t credits) {
  absl::MutexLock lock(&mu_);
  const int64_t window = WindowAt(now);
  if (window != window_) {
    window_ = window;
    used_in_window_ = 0;
  }
  Admission a;
  const int64_t limit = PerWindow();
  a.limit_minute = limit_per_minute_;
  if (used_in_window_ >= limit) {
    ++counters_.rate_limited;
    a.result = Admission::Result::kRateLimited;
    a.remaining_minute = 0;
    const absl::Time reset = absl::UnixEpoch() + (window + 1) * window_length_;
    a.retry_after_seconds =
        std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(reset - now, absl::Seconds(1))));
    a.balance = credits_;
    return a;
  }
  ++used_in_window_;
  ++counters_.requests;
  a.remaining_minute = limit - used_in_window_;
  if (credits_ < credits) {
    ++counters_.no_credits;
    a.result = Admission::Result::kNoCredits;
    a.balance = credits_;
    return a;
  }
  credits_ -= credits;
  counters_.credits_spent += credits;
  a.balance = credits_;
  return a;
}

bool Team::Charge(int64_t credits) {
  absl::MutexLock lock(&mu_);
  if (credits_ < credits) {
    ++counters_.no_credits;
    return false;
  }
  credits_ -= credits;
  counters_.credits_spent += credits;
  return true;
}

void Team::Refund(int64_t credits) {
  absl::MutexLock lock(&mu_);
  credits_ += credits;
  counters_.credits_spent -= credits;
}

int64_t Team::balance() const {
  absl::MutexLock lock(&mu_);
  return credits_;
}

int64_t Team::limit_per_minute() const {
  absl::MutexLock lock(&mu_);
  return limit_per_minute_;
}

int64_t Team::remaining(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  if (WindowAt(now) != window_) return PerWindow();
  return std::max<int64_t>(0, PerWindow() - used_in_window_);
}

void Team::SetLimit(int64_t per_minute) {
  absl::MutexLock lock(&mu_);
  limit_per_minute_ = per_minute;
}

void Team::SetCredits(int64_t balance) {
  absl::MutexLock lock(&mu_);
  credits_ = balance;
}

void Team::AddCredits(int64_t delta) {
  absl::MutexLock lock(&mu_);
  credits_ += delta;
}

Team::Counters Team::counters() const {
  absl::MutexLock lock(&mu_);
  return counters_;
}

void ActiveAccounts::Mark(uint32_t account) {
  absl::MutexLock lock(&mu_);
  if (marked_[account]) return;
  marked_[account] = 1;
  list_.push_back(account);
}

std::vector<uint32_t> ActiveAccounts::Take() {
  absl::MutexLock lock(&mu_);
  std::vector<uint32_t> out;
  out.swap(list_);
  for (uint32_t a : out) marked_[a] = 0;
  return out;
}

World::World(uint64_t seed, std::vector<std::unique_ptr<Team>> teams,
             std::vector<std::unique_ptr<Account>> accounts)
    : seed_(seed),
      teams_(std::move(teams)),
      accounts_(std::move(accounts)),
      active_(accounts_.size()) {
  for (uint32_t t = 0; t < teams_.size(); ++t) {
    team_by_id_.emplace(teams_[t]->id(), t);
    for (const std::string& key : teams_[t]->api_keys()) team_by_key_.emplace(key, t);
  }
  for (uint32_t a = 0; a < accounts_.size(); ++a) account_by_id_.emplace(accounts_[a]->id(), a);
}

void World::SetNextListIdAtLeast(int64_t next) {
  int64_t current = next_list_id_.load();
  while (current < next && !next_list_id_.compare_exchange_weak(current, next)) {
  }
}

void World::ContinueSequencesFrom(const World& previous) {
  next_message_id_.store(std::max(next_message_id_.load(), previous.next_message_id_.load()));
  next_media_id_.store(std::max(next_media_id_.load(), previous.next_media_id_.load()));
  next_event_.store(std::max(next_event_.load(), previous.next_event_.load()));
  SetNextListIdAtLeast(previous.next_list_id_.load());
}

Team* World::TeamForKey(std::string_view api_key) const {
  auto it = team_by_key_.find(api_key);
  return it == team_by_key_.end() ? nullptr : teams_[it->second].get();
}

Team* World::FindTeam(std::string_view team_id) const {
  auto it = team_by_id_.find(team_id);
  return it == team_by_id_.end() ? nullptr : teams_[it->second].get();
}

Account* World::FindAccount(std::string_view account_id) const {
  auto it = account_by_id_.find(account_id);
  return it == account_by_id_.end() ? nullptr : accounts_[it->second].get();
}

uint64_t Mix64(uint64_t x) {
  // splitmix64's finaliser.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t HashValues(std::initializer_list<uint64_t> values) {
  uint64_t h = 0x243f6a8885a308d3ULL;
  for (uint64_t v : values) h = Mix64(h ^ Mix64(v));
  return h;
}

double UnitInterval(uint64_t hash) { return static_cast<double>(hash >> 11) * 0x1.0p-53; }

}  // namespace herald::upstream_sim
