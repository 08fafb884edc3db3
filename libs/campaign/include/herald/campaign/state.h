// The state a campaign reports: what it was told to do (its phase) and where its deliveries are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/time/time.h>

#include <herald/store/model.h>

namespace herald::campaign {

enum class CampaignState {
  kDraft,
  kScheduled,
  kDispatching,
  kSending,
  kPaused,
  kCompleted,
  kPartiallyFailed,
  kFailed,
  kCancelled,
  kMissed,
};

std::string_view CampaignStateName(CampaignState state);  // "COMPLETED"
bool IsFinal(CampaignState state);

struct DeliveryCounts {
  int32_t total = 0;
  int32_t pending = 0;
  int32_t in_progress = 0;
  int32_t sent = 0;
  int32_t scheduled_upstream = 0;  // held by the upstream until the send time
  int32_t completed = 0;
  int32_t failed = 0;
  int32_t cancelled = 0;
  int64_t recipients = 0;
  int64_t recipients_pending = 0;
  int64_t updated_ms = 0;  // the latest change of a delivery (Unix ms); 0 when none has any
};

DeliveryCounts CountDeliveries(const std::vector<store::Delivery>& deliveries);

// Whether a delivery never began a send (pending, or still uploading its media or building its
// segment's list; no send attempt, no upstream message): one that can end without asking the
// upstream, as a missed campaign's do.
bool NeverAttempted(const store::Delivery& d);

// Draft, scheduled, paused, cancelled and missed come from the phase. A dispatched campaign is
// DISPATCHING while a delivery has not sent, SENDING while every unfinished one has its upstream
// message (sent, or held by the upstream for the send time), then COMPLETED (all completed), FAILED
// (none completed) or PARTIALLY_FAILED.
CampaignState DeriveState(const store::Campaign& campaign, const DeliveryCounts& counts);

// How late `c`'s send would be at `now` when that is beyond its grace period: such a send is
// missed, never made hours late. nullopt when it may still go out (or has no send time).
std::optional<absl::Duration> LateBeyondGrace(const store::Campaign& c, absl::Time now);
// Why a campaign `late` past its send time is missed, for its state_reason.
std::string MissedReason(const store::Campaign& c, absl::Duration late);

// The pauses an account or team keeps (oldest first), enough to tell what held a delivery.
constexpr size_t kPauseWindowsKept = 4;
// A pause that begins at `now_ms`; nothing when one already lasts.
void BeginPause(std::vector<store::PauseWindow>& pauses, int64_t now_ms);
// The lasting pause ends at `now_ms`; nothing when none lasts.
void EndPause(std::vector<store::PauseWindow>& pauses, int64_t now_ms);
// The pause that lasted across `t_ms` (began at or before it and ended after it), or null; one
// still lasting counts.
const store::PauseWindow* PauseAcross(const std::vector<store::PauseWindow>& pauses, int64_t t_ms);

}  // namespace herald::campaign
