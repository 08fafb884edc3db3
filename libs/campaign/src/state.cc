#include <algorithm>

#include <herald/campaign/state.h>
#include <herald/common/strings.h>

namespace herald::campaign {

std::string_view CampaignStateName(CampaignState state) {
  switch (state) {
    case CampaignState::kDraft:
      return "DRAFT";
    case CampaignState::kScheduled:
      return "SCHEDULED";
    case CampaignState::kDispatching:
      return "DISPATCHING";
    case CampaignState::kSending:
      return "SENDING";
    case CampaignState::kPaused:
      return "PAUSED";
    case CampaignState::kCompleted:
      return "COMPLETED";
    case CampaignState::kPartiallyFailed:
      return "PARTIALLY_FAILED";
    case CampaignState::kFailed:
      return "FAILED";
    case CampaignState::kCancelled:
      return "CANCELLED";
    case CampaignState::kMissed:
      return "MISSED";
  }
  return "UNKNOWN";
}

bool IsFinal(CampaignState state) {
  return state == CampaignState::kCompleted || state == CampaignState::kPartiallyFailed ||
         state == CampaignState::kFailed || state == CampaignState::kCancelled ||
         state == CampaignState::kMissed;
}

bool NeverAttempted(const store::Delivery& d) {
  using store::DeliveryState;
  // Waiting, or still preparing its send (uploading media, building a segment's list).
  const bool before_send = d.state == DeliveryState::kPending ||
                           d.state == DeliveryState::kUploadingMedia ||
                           d.state == DeliveryState::kBuildingList;
  return before_send && d.upstream_message_id == 0 && d.send_attempts == 0;
}

DeliveryCounts CountDeliveries(const std::vector<store::Delivery>& deliveries) {
  using store::DeliveryState;
  DeliveryCounts c;
  c.total = static_cast<int32_t>(deliveries.size());
  for (const store::Delivery& d : deliveries) {
    switch (d.state) {
      case DeliveryState::kPending:
        ++c.pending;
        break;
      case DeliveryState::kUploadingMedia:
      case DeliveryState::kBuildingList:
      case DeliveryState::kSending:
        ++c.in_progress;
        break;
      case DeliveryState::kScheduledUpstream:
        ++c.scheduled_upstream;
        break;
      case DeliveryState::kSent:
        ++c.sent;
        break;
      case DeliveryState::kCompleted:
        ++c.completed;
        break;
      case DeliveryState::kFailed:
        ++c.failed;
        break;
      case DeliveryState::kCancelled:
        ++c.cancelled;
        break;
    }
    c.recipients += d.recipients;
    c.recipients_pending += d.recipients_pending;
    c.updated_ms = std::max(c.updated_ms, d.update_time_ms);
  }
  return c;
}

CampaignState DeriveState(const store::Campaign& campaign, const DeliveryCounts& counts) {
  using store::CampaignPhase;
  switch (campaign.phase) {
    case CampaignPhase::kDraft:
      return CampaignState::kDraft;
    case CampaignPhase::kScheduled:
      // Messages the upstream held go out at the send time with no Herald job to move the
      // phase (webhooks may finish them first): once every delivery has finished, so has the
      // campaign.
      if (campaign.upstream_lead_ms <= 0 || counts.total == 0 ||
          counts.completed + counts.failed + counts.cancelled < counts.total) {
        return CampaignState::kScheduled;
      }
      break;
    case CampaignPhase::kPaused:
      // Deliveries handed to the upstream before the pause are followed to their end: once
      // every delivery has finished, nothing is held and the campaign is final.
      if (counts.total == 0 || counts.completed + counts.failed + counts.cancelled < counts.total) {
        return CampaignState::kPaused;
      }
      break;
    case CampaignPhase::kCancelled:
      return CampaignState::kCancelled;
    case CampaignPhase::kMissed:
      return CampaignState::kMissed;
    case CampaignPhase::kDispatched:
      break;
  }
  const int32_t unfinished =
      counts.pending + counts.in_progress + counts.sent + counts.scheduled_upstream;
  if (unfinished > 0) {
    return counts.pending + counts.in_progress > 0 ? CampaignState::kDispatching
                                                   : CampaignState::kSending;
  }
  if (counts.completed == counts.total) return CampaignState::kCompleted;
  if (counts.completed == 0) return CampaignState::kFailed;
  return CampaignState::kPartiallyFailed;
}

std::optional<absl::Duration> LateBeyondGrace(const store::Campaign& c, absl::Time now) {
  if (c.send_time_ms == 0) return std::nullopt;
  const absl::Duration late = now - absl::FromUnixMillis(c.send_time_ms);
  if (late <= absl::Milliseconds(c.grace_period_ms)) return std::nullopt;
  return late;
}

std::string MissedReason(const store::Campaign& c, absl::Duration late) {
  return StrCat("its send time passed ", absl::FormatDuration(absl::Trunc(late, absl::Seconds(1))),
                " ago, beyond the grace period of ",
                absl::FormatDuration(absl::Milliseconds(c.grace_period_ms)), "; nothing was sent");
}

void BeginPause(std::vector<store::PauseWindow>& pauses, int64_t now_ms) {
  if (!pauses.empty() && pauses.back().end_ms == 0) return;
  pauses.push_back({.start_ms = now_ms});
  if (pauses.size() > kPauseWindowsKept) pauses.erase(pauses.begin());
}

void EndPause(std::vector<store::PauseWindow>& pauses, int64_t now_ms) {
  if (!pauses.empty() && pauses.back().end_ms == 0) pauses.back().end_ms = now_ms;
}

const store::PauseWindow* PauseAcross(const std::vector<store::PauseWindow>& pauses, int64_t t_ms) {
  for (const store::PauseWindow& p : pauses) {
    if (p.start_ms <= t_ms && (p.end_ms == 0 || p.end_ms > t_ms)) return &p;
  }
  return nullptr;
}

}  // namespace herald::campaign
