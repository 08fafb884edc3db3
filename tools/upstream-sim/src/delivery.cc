#include <algorithm>
#include <cmath>

#include <herald/upstream_sim/delivery.h>

namespace herald::upstream_sim {
namespace {

// Recipients one account delivers per pass at most, so a huge queue at a huge rate holds its
// account's lock for milliseconds, not seconds (the rest goes out on the next passes).
constexpr uint32_t kMaxDeliveriesPerPass = 20'000;

}  // namespace

void DeliveryEngine::Reset() {
  absl::MutexLock lock(&tick_mu_);
  last_tick_ = absl::InfinitePast();
  subscriber_carry_ = 0;
}

void DeliveryEngine::Tick(World& world, const Behavior& behavior) {
  absl::MutexLock tick_lock(&tick_mu_);
  const absl::Time now = clock_.Now();
  if (behavior.new_subscribers_per_second > 0 && last_tick_ != absl::InfinitePast() &&
      !world.accounts().empty()) {
    subscriber_carry_ +=
        behavior.new_subscribers_per_second * absl::ToDoubleSeconds(now - last_tick_);
    // Bounded per pass so a stalled timer cannot add a burst of millions.
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(subscriber_carry_), 100'000);
    subscriber_carry_ -= static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t pick = HashValues({world.seed(), 0x5ab, subscriber_draws_++});
      Account& account = *world.accounts()[pick % world.accounts().size()];
      AddSubscribers(world, account, 1);
    }
  }
  last_tick_ = now;

  for (uint32_t index : world.active().Take()) {
    Account& account = *world.accounts()[index];
    bool more;
    {
      absl::MutexLock lock(&account.mu);
      more = Advance(world, account, behavior, now);
    }
    if (more) world.active().Mark(index);
  }
}

bool DeliveryEngine::Advance(World& world, Account& account, const Behavior& behavior,
                             absl::Time now) {
  const bool emit = sink_.Wants(account.identity());
  uint32_t budget = kMaxDeliveriesPerPass;
  for (size_t k = 0; k < account.active_messages.size();) {
    MassMessage* m = account.FindMessage(account.active_messages[k]);
    if (m == nullptr || m->canceled || m->save_for_later) {
      account.active_messages.erase(account.active_messages.begin() + static_cast<ptrdiff_t>(k));
      continue;
    }
    if (now < m->start_at) {
      ++k;
      continue;
    }
    if (!m->start_reported) {
      m->start_reported = true;
      m->last_progress_report = now;
      if (emit) EmitQueue(world, account, *m, EventType::kChatQueueUpdated, behavior, now);
    }
    const uint32_t total = static_cast<uint32_t>(m->recipients.size());
    const double due =
        std::floor(absl::ToDoubleSeconds(now - m->start_at) * behavior.delivery_rate);
    uint32_t target = due >= total ? total : static_cast<uint32_t>(due);
    const uint32_t before = m->sent;
    if (target > before) target = before + std::min(target - before, budget);
    budget -= target > before ? target - before : 0;
    for (uint32_t i = m->sent; i < target; ++i) Deliver(world, account, *m, i, behavior, now, emit);
    if (target > m->sent) m->sent = target;
    counters_.recipients_delivered.fetch_add(m->sent - before, std::memory_order_relaxed);
    if (m->sent == total) {
      m->finish_reported = true;
      m->finished_at = now;
      counters_.queues_finished.fetch_add(1, std::memory_order_relaxed);
      if (emit) EmitQueue(world, account, *m, EventType::kChatQueueFinished, behavior, now);
      account.active_messages.erase(account.active_messages.begin() + static_cast<ptrdiff_t>(k));
      continue;
    }
    if (m->sent > before && now - m->last_progress_report >= behavior.progress_interval) {
      m->last_progress_report = now;
      if (emit) EmitQueue(world, account, *m, EventType::kChatQueueUpdated, behavior, now);
    }
    ++k;
  }

  while (!account.pending_purchases.empty() && account.pending_purchases.top().due <= now) {
    const PendingPurchase p = account.pending_purchases.top();
    account.pending_purchases.pop();
    MassMessage* m = account.FindMessage(p.message_id);
    if (m == nullptr) continue;
    --m->purchases_pending;
    // An unsent message can no longer be bought.
    if (m->canceled && m->canceled_at <= p.due) continue;
    Buy(world, account, *m, p.recipient, p.due, emit);
  }

  // Async uploads that completed or failed since the last pass.
  for (size_t k = 0; k < account.pending_uploads.size();) {
    auto it = account.media.find(account.pending_uploads[k]);
    if (it != account.media.end() && it->second.ready_at > now) {
      ++k;
      continue;
    }
    if (it != account.media.end() && emit) {
      const Media& media = it->second;
      WebhookEvent e;
      e.type =
          media.error.empty() ? EventType::kMediaUploadCompleted : EventType::kMediaUploadFailed;
      e.account = account.shared_identity();
      e.at = media.ready_at;
      e.seed = world.seed();
      e.sequence = world.NextEventSequence();
      e.media = std::make_shared<const Media>(media);
      sink_.Emit(std::move(e));
    }
    account.pending_uploads.erase(account.pending_uploads.begin() + static_cast<ptrdiff_t>(k));
  }
  return account.HasWork();
}

double PurchaseChance(double probability, FanBehavior behavior, double propensity, double scale) {
  const double p = std::clamp(probability, 0.0, 1.0);
  if (behavior != FanBehavior::kSpendWeighted || p == 0.0 || p == 1.0) return p;
  if (propensity <= 0) return 0;  // a fan who never buys (its weight 0)
  return std::min(1.0, scale * propensity);
}

double SpendWeightedScale(const std::vector<double>& weights, double probability) {
  if (probability <= 0.0 || probability >= 1.0) return 0;
  // Fans of weight 0 never buy: the scale is found for the others (all of them buying when p is
  // beyond their share of the recipients).
  double least = 0;
  for (double w : weights) {
    if (w > 0 && (least == 0 || w < least)) least = w;
  }
  if (least == 0) return 0;
  auto mean = [&](double a) {
    double sum = 0;
    for (double w : weights) sum += w > 0 ? std::min(1.0, a * w) : 0.0;
    return sum / static_cast<double>(weights.size());
  };
  // The mean grows with a, from 0 to 1 at a = 1 / least: bisected to the last bit.
  double lo = 0, hi = 1 / least;
  for (int i = 0; i < 200 && lo < hi; ++i) {
    const double mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    (mean(mid) < probability ? lo : hi) = mid;
  }
  return lo + (hi - lo) / 2;
}

void DeliveryEngine::Deliver(World& world, Account& account, MassMessage& m, uint32_t recipient,
                             const Behavior& behavior, absl::Time now, bool emit) {
  const Fan& fan = account.fans[m.recipients[recipient]];
  const uint64_t h = HashValues({world.seed(), static_cast<uint64_t>(m.id), fan.id});
  bool buys = false;
  if (m.content->price_cents > 0) {
    if (behavior.fan_behavior == FanBehavior::kSpendWeighted &&
        m.purchase_scale_for != behavior.purchase_probability) {
      std::vector<double> weights;
      weights.reserve(m.recipients.size());
      for (uint32_t r : m.recipients) weights.push_back(account.fans[r].propensity / 100.0);
      m.purchase_scale = SpendWeightedScale(weights, behavior.purchase_probability);
      m.purchase_scale_for = behavior.purchase_probability;
    }
    const double p = PurchaseChance(behavior.purchase_probability, behavior.fan_behavior,
                                    fan.propensity / 100.0, m.purchase_scale);
    buys = p >= 1.0 || UnitInterval(Mix64(h ^ 1)) < p;
  }
  if (buys || UnitInterval(Mix64(h ^ 2)) < behavior.view_probability) ++m.viewed;
  if (emit) {
    WebhookEvent e;
    e.type = EventType::kMessagesSent;
    e.account = account.shared_identity();
    e.content = m.content;
    e.at = now;
    e.seed = world.seed();
    e.sequence = world.NextEventSequence();
    e.queue_id = m.id;
    e.fan = Snapshot(fan);
    const uint32_t index = m.recipients[recipient];
    e.fan.lists.emplace();
    for (const UserList& l : account.lists) {
      e.fan.lists->push_back(
          {.id = l.id,
           .name = l.name,
           .has_user = std::binary_search(l.members.begin(), l.members.end(), index)});
    }
    e.chat_message_id = m.first_chat_message_id + recipient;
    sink_.Emit(std::move(e));
  }
  if (buys) {
    const absl::Duration spread = behavior.purchase_delay_max - behavior.purchase_delay_min;
    const absl::Duration delay = behavior.purchase_delay_min + spread * UnitInterval(Mix64(h ^ 3));
    account.pending_purchases.push(PendingPurchase{now + delay, m.id, recipient});
    ++m.purchases_pending;
  }
}

void DeliveryEngine::Buy(World& world, Account& account, MassMessage& m, uint32_t recipient,
                         absl::Time at, bool emit) {
  Fan& fan = account.fans[m.recipients[recipient]];
  const int64_t amount = m.content->price_cents;
  fan.spend_messages = static_cast<uint32_t>(fan.spend_messages + amount);
  m.purchases.push_back(Purchase{recipient, amount, at});
  m.revenue_cents += amount;
  counters_.purchases.fetch_add(1, std::memory_order_relaxed);
  counters_.revenue_cents.fetch_add(amount, std::memory_order_relaxed);
  if (!emit) return;
  for (EventType type : {EventType::kPpvUnlocked, EventType::kTransactionNew}) {
    WebhookEvent e;
    e.type = type;
    e.account = account.shared_identity();
    e.content = m.content;
    e.at = at;
    e.seed = world.seed();
    e.sequence = world.NextEventSequence();
    e.queue_id = m.id;
    e.fan = Snapshot(fan);
    e.chat_message_id = m.first_chat_message_id + recipient;
    e.amount_cents = amount;
    sink_.Emit(std::move(e));
  }
}

void DeliveryEngine::EmitQueue(World& world, Account& account, const MassMessage& m, EventType type,
                               const Behavior& behavior, absl::Time now) {
  WebhookEvent e;
  e.type = type;
  e.account = account.shared_identity();
  e.at = now;
  e.seed = world.seed();
  e.sequence = world.NextEventSequence();
  e.queue_id = m.id;
  e.queue = ComputeQueueStatus(m, now, behavior.unsend_window);
  sink_.Emit(std::move(e));
}

void DeliveryEngine::AddSubscribers(World& world, Account& account, int count) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&account.mu);
  const bool emit = sink_.Wants(account.identity());
  for (int i = 0; i < count; ++i) {
    Fan fan;
    const uint64_t h = HashValues({world.seed(), 0x50b, world.NextEventSequence()});
    fan.id = (account.fans.empty() ? 100'000 : account.fans.back().id) + 1 + Mix64(h) % 997;
    fan.subscribed_at = absl::ToUnixSeconds(now);
    fan.flags = kFanActive | kFanRebillOn;
    fan.propensity = 100;
    account.fans.push_back(fan);
    counters_.subscribers_added.fetch_add(1, std::memory_order_relaxed);
    if (emit) {
      WebhookEvent e;
      e.type = EventType::kSubscriptionNew;
      e.account = account.shared_identity();
      e.at = now;
      e.seed = world.seed();
      e.sequence = world.NextEventSequence();
      e.fan = Snapshot(fan);
      sink_.Emit(std::move(e));
    }
  }
}

}  // namespace herald::upstream_sim
