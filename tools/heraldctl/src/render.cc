#include <algorithm>
#include <cmath>

#include <absl/time/time.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/json_util.h>

#include <herald/common/strings.h>
#include <herald/heraldctl/exit_codes.h>
#include <herald/heraldctl/names.h>
#include <herald/heraldctl/render.h>
#include <herald/v1/account.pb.h>
#include <herald/v1/analytics.pb.h>
#include <herald/v1/audience.pb.h>
#include <herald/v1/automation.pb.h>
#include <herald/v1/campaign.pb.h>
#include <herald/v1/events.pb.h>
#include <herald/v1/media.pb.h>
#include <herald/v1/tenant.pb.h>

namespace herald::heraldctl {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string FormatTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(t.seconds()),
                          absl::UTCTimeZone());
}

std::string FormatDuration(const google::protobuf::Duration& d) {
  return absl::FormatDuration(absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos()));
}

std::string Yes(bool b) { return b ? "yes" : "no"; }

std::string Scalar(const Message& message, const FieldDescriptor* field, int index) {
  const Reflection* r = message.GetReflection();
  const bool rep = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return StrCat(rep ? r->GetRepeatedInt32(message, field, index) : r->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_INT64: {
      const int64_t v =
          rep ? r->GetRepeatedInt64(message, field, index) : r->GetInt64(message, field);
      if (field->name().ends_with("_cents")) return StrCat(v, " (", FormatCents(v), ")");
      return StrCat(v);
    }
    case FieldDescriptor::CPPTYPE_UINT32:
      return StrCat(rep ? r->GetRepeatedUInt32(message, field, index)
                        : r->GetUInt32(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return StrCat(rep ? r->GetRepeatedUInt64(message, field, index)
                        : r->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return StrCat(rep ? r->GetRepeatedDouble(message, field, index)
                        : r->GetDouble(message, field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return StrCat(static_cast<double>(rep ? r->GetRepeatedFloat(message, field, index)
                                            : r->GetFloat(message, field)));
    case FieldDescriptor::CPPTYPE_BOOL:
      return Yes(rep ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field));
    case FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(message, field, index) : r->GetEnum(message, field))->name();
    case FieldDescriptor::CPPTYPE_STRING:
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        return StrCat(
            "(",
            (rep ? r->GetRepeatedString(message, field, index) : r->GetString(message, field))
                .size(),
            " bytes)");
      }
      return rep ? r->GetRepeatedString(message, field, index) : r->GetString(message, field);
    default:
      return "";
  }
}

// Timestamps and durations print on one line like scalars.
bool IsInline(const FieldDescriptor* field) {
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return true;
  const std::string& type = field->message_type()->full_name();
  return type == "google.protobuf.Timestamp" || type == "google.protobuf.Duration";
}

std::string InlineValue(const Message& message, const FieldDescriptor* field, int index) {
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return Scalar(message, field, index);
  const Reflection* r = message.GetReflection();
  const Message& value = field->is_repeated() ? r->GetRepeatedMessage(message, field, index)
                                              : r->GetMessage(message, field);
  if (field->message_type()->full_name() == "google.protobuf.Timestamp") {
    return FormatTime(static_cast<const google::protobuf::Timestamp&>(value));
  }
  return FormatDuration(static_cast<const google::protobuf::Duration&>(value));
}

void AppendDetail(std::string& out, const Message& message, const std::string& indent) {
  const Reflection* r = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (!field->is_repeated()) {
      if (IsInline(field)) {
        // A zero timestamp reads as "not set", like an absent one.
        const std::string value = InlineValue(message, field, 0);
        if (!value.empty() || field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
          StrAppend(&out, indent, field->name(), ": ", value, "\n");
        }
      } else {
        StrAppend(&out, indent, field->name(), ":\n");
        AppendDetail(out, r->GetMessage(message, field), indent + "  ");
      }
      continue;
    }
    const int size = r->FieldSize(message, field);
    if (IsInline(field)) {
      std::vector<std::string> values;
      for (int i = 0; i < size; ++i) values.push_back(InlineValue(message, field, i));
      StrAppend(&out, indent, field->name(), ": ", StrJoin(values, ", "), "\n");
      continue;
    }
    StrAppend(&out, indent, field->name(), ":\n");
    for (int i = 0; i < size; ++i) {
      std::string item;
      AppendDetail(item, r->GetRepeatedMessage(message, field, i), indent + "    ");
      // "- " marks the first line of each element.
      if (item.size() >= indent.size() + 4) item.replace(indent.size() + 2, 2, "- ");
      out += item;
    }
  }
}

std::string TeamStatus(const v1::Team& team) {
  if (team.api_key_invalid()) return "key invalid";
  if (team.paused())
    return team.pause_reason().empty() ? "paused" : StrCat("paused: ", team.pause_reason());
  return "active";
}

std::string Webhook(const v1::Team& team) {
  return team.webhook_id().empty() ? "not registered" : team.webhook_id();
}

// "tenants/t/campaigns/c1/stats" -> "c1".
std::string_view CampaignOfStats(std::string_view stats_name) {
  constexpr std::string_view kSuffix = "/stats";
  if (stats_name.ends_with(kSuffix)) stats_name.remove_suffix(kSuffix.size());
  return ShortId(stats_name);
}

std::string SegmentRule(const v1::Segment& segment) {
  std::vector<std::string> rules;
  if (segment.min_lifetime_spend_cents() > 0) {
    rules.push_back(StrCat("spend >= ", FormatCents(segment.min_lifetime_spend_cents())));
  }
  if (segment.subscribed_within_days() > 0) {
    rules.push_back(StrCat("subscribed within ", segment.subscribed_within_days(), "d"));
  }
  if (segment.expired_only()) rules.push_back("expired");
  std::string rule = StrJoin(rules, " and ");
  if (segment.top_spenders() > 0) {
    rule = rules.empty() ? StrCat("top ", segment.top_spenders(), " spenders")
                         : StrCat("top ", segment.top_spenders(), " spenders of: ", rule);
  }
  return rule;
}

// Aligned `label:  value` lines.
std::string RenderLabels(const std::vector<std::pair<std::string, std::string>>& lines) {
  size_t width = 0;
  for (const auto& [label, value] : lines) width = std::max(width, label.size());
  std::string out;
  for (const auto& [label, value] : lines) {
    StrAppend(&out, label, ":", std::string(width - label.size() + 2, ' '), value, "\n");
  }
  return out;
}

std::string Bar(double fraction, int width) {
  if (width <= 0) return "";
  const int filled = static_cast<int>(std::floor(std::clamp(fraction, 0.0, 1.0) * width));
  return StrCat("[", std::string(filled, '#'), std::string(width - filled, '-'), "]");
}

}  // namespace

std::string RenderTable(const Table& table) {
  std::vector<size_t> widths(table.headers.size(), 0);
  for (size_t i = 0; i < table.headers.size(); ++i) widths[i] = table.headers[i].size();
  for (const auto& row : table.rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  const auto append_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string& cell = i < row.size() ? row[i] : std::string();
      line += cell;
      if (i + 1 < widths.size()) line.append(widths[i] - cell.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    StrAppend(&out, line, "\n");
  };
  append_row(table.headers);
  for (const auto& row : table.rows) append_row(row);
  return out;
}

std::string RenderDetail(const Message& message) {
  std::string out;
  AppendDetail(out, message, "");
  return out;
}

std::string ToJson(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return StrCat("{\"error\":\"", status.ToString(), "\"}");
  return out;
}

std::string FormatCents(int64_t cents) {
  const bool negative = cents < 0;
  const uint64_t abs = negative ? 0 - static_cast<uint64_t>(cents) : static_cast<uint64_t>(cents);
  const uint64_t fraction = abs % 100;
  return StrCat(negative ? "-$" : "$", abs / 100, ".", fraction < 10 ? "0" : "", fraction);
}

std::string FormatPercent(double ratio) {
  // Beyond this the tenths of a percent no longer fit an int64 (and no rate gets near it).
  constexpr double kMax = 1e15;
  if (!std::isfinite(ratio) || std::fabs(ratio) > kMax) return "-";
  const int64_t tenths = std::llround(ratio * 1000);
  const uint64_t abs =
      tenths < 0 ? 0 - static_cast<uint64_t>(tenths) : static_cast<uint64_t>(tenths);
  return StrCat(tenths < 0 ? "-" : "", abs / 10, ".", abs % 10, "%");
}

std::string RenderTeam(const v1::Team& team) {
  // The webhook fields come last, the id even when empty: "not registered" is worth saying.
  v1::Team rest = team;
  rest.clear_webhook_id();
  rest.clear_webhook_error();
  rest.clear_webhook_endpoint();
  std::string out = RenderDetail(rest);
  StrAppend(&out, "webhook_id: ", Webhook(team), "\n");
  if (!team.webhook_error().empty()) StrAppend(&out, "webhook_error: ", team.webhook_error(), "\n");
  if (!team.webhook_endpoint().empty()) {
    StrAppend(&out, "webhook_endpoint: ", team.webhook_endpoint(), "\n");
  }
  return out;
}

std::string RenderCampaignStats(const v1::CampaignStats& stats) {
  const std::string updated = FormatTime(stats.update_time());
  const std::vector<std::pair<std::string, std::string>> lines = {
      {"campaign", std::string(CampaignOfStats(stats.name()))},
      {"recipients", StrCat(stats.recipients())},
      {"sent", StrCat(stats.sent())},
      {"viewed", StrCat(stats.viewed(), " (", FormatPercent(stats.view_rate()), ")")},
      {"purchases", StrCat(stats.purchases())},
      {"unlock rate", FormatPercent(stats.unlock_rate())},
      {"gross", FormatCents(stats.gross_revenue_cents())},
      {"net", FormatCents(stats.net_revenue_cents())},
      {"fees", FormatCents(stats.fee_cents())},
      {"updated", updated.empty() ? "never (no events yet)" : updated},
  };
  return StrCat(RenderLabels(lines), "\n", RenderTable(ToTable(stats)));
}

std::string RenderAccountOverview(const v1::AccountOverview& overview) {
  return RenderLabels({
      {"account", std::string(ShortId(overview.name()))},
      {"sent", StrCat(overview.sent())},
      {"purchases", StrCat(overview.purchases())},
      {"gross", FormatCents(overview.gross_revenue_cents())},
      {"net", FormatCents(overview.net_revenue_cents())},
      {"fees", FormatCents(overview.fee_cents())},
      {"reconciled purchases", StrCat(overview.reconciled_purchases())},
      {"new subscribers", StrCat(overview.new_subscribers())},
      {"known fans", StrCat(overview.known_fans())},
  });
}

std::string EventLine(const v1::Event& event) {
  const std::string time = FormatTime(event.apply_time());
  std::string line = StrCat(time.empty() ? "-" : time, " ", event.event_type(), " ",
                            event.account().empty() ? "-" : ShortId(event.account()));
  if (event.upstream_message_id() != 0) StrAppend(&line, " message ", event.upstream_message_id());
  if (event.fan_id() != 0) StrAppend(&line, " fan ", event.fan_id());
  if (event.amount_cents() != 0) StrAppend(&line, " ", FormatCents(event.amount_cents()));
  StrAppend(&line, " cursor ", event.cursor());
  return line;
}

Table ToTable(const v1::TopCampaignsResponse& response) {
  Table t{{"RANK", "ID", "DISPLAY NAME", "CREATED", "PURCHASES", "UNLOCK RATE", "GROSS", "NET"},
          {}};
  int rank = 0;
  for (const auto& c : response.campaigns()) {
    t.rows.push_back({StrCat(++rank), std::string(ShortId(c.campaign())), c.display_name(),
                      FormatTime(c.create_time()), StrCat(c.stats().purchases()),
                      FormatPercent(c.stats().unlock_rate()),
                      FormatCents(c.stats().gross_revenue_cents()),
                      FormatCents(c.stats().net_revenue_cents())});
  }
  return t;
}

Table ToTable(const v1::CampaignStats& stats) {
  Table t{{"ACCOUNT", "MESSAGE", "RECIPIENTS", "SENT", "VIEWED", "PURCHASES", "UNLOCK RATE",
           "GROSS", "NET"},
          {}};
  for (const auto& a : stats.accounts()) {
    t.rows.push_back({std::string(ShortId(a.account())),
                      a.upstream_message_id() == 0 ? "" : StrCat(a.upstream_message_id()),
                      StrCat(a.recipients()), StrCat(a.sent()), StrCat(a.viewed()),
                      StrCat(a.purchases()), FormatPercent(a.unlock_rate()),
                      FormatCents(a.gross_revenue_cents()), FormatCents(a.net_revenue_cents())});
  }
  return t;
}

Table ToTable(const v1::ListTenantsResponse& response) {
  Table t{{"ID", "DISPLAY NAME", "WEIGHT", "CREATED"}, {}};
  for (const auto& tenant : response.tenants()) {
    t.rows.push_back({std::string(ShortId(tenant.name())), tenant.display_name(),
                      StrCat(tenant.scheduling_weight()), FormatTime(tenant.create_time())});
  }
  return t;
}

Table ToTable(const v1::ListApiKeysResponse& response) {
  Table t{{"ID", "DISPLAY NAME", "PREFIX", "CREATED", "REVOKED"}, {}};
  for (const auto& key : response.api_keys()) {
    t.rows.push_back({std::string(ShortId(key.name())), key.display_name(), key.secret_prefix(),
                      FormatTime(key.create_time()), FormatTime(key.revoke_time())});
  }
  return t;
}

Table ToTable(const v1::ListAuditEventsResponse& response) {
  Table t{{"TIME", "ACTOR", "ACTION", "RESOURCE", "DETAIL"}, {}};
  for (const auto& e : response.events()) {
    t.rows.push_back({FormatTime(e.time()), e.actor(), e.action(), e.resource(), e.detail()});
  }
  return t;
}

Table ToTable(const v1::ListTeamsResponse& response) {
  Table t{{"ID", "DISPLAY NAME", "RATE/MIN", "KEY", "STATUS", "WEBHOOK"}, {}};
  for (const auto& team : response.teams()) {
    std::string webhook = Webhook(team);
    if (!team.webhook_error().empty()) StrAppend(&webhook, " (error: ", team.webhook_error(), ")");
    t.rows.push_back({std::string(ShortId(team.name())), team.display_name(),
                      StrCat(team.rate_limit_per_minute()),
                      team.upstream_api_key_hint().empty()
                          ? std::string()
                          : StrCat("...", team.upstream_api_key_hint()),
                      TeamStatus(team), std::move(webhook)});
  }
  return t;
}

Table ToTable(const v1::ListAccountsResponse& response) {
  Table t{{"ID", "TEAM", "DISPLAY NAME", "PACE/MIN", "MAX IN FLIGHT", "STATUS", "USERNAME"}, {}};
  for (const auto& account : response.accounts()) {
    t.rows.push_back({std::string(ShortId(account.name())), std::string(ShortId(account.team())),
                      account.display_name(),
                      account.sends_per_minute() == 0 ? "-" : StrCat(account.sends_per_minute()),
                      account.max_in_flight() == 0 ? "-" : StrCat(account.max_in_flight()),
                      account.paused() ? "paused" : "active", account.upstream_username()});
  }
  return t;
}

Table ToTable(const v1::ListMediaAssetsResponse& response) {
  Table t{{"ID", "TYPE", "FILE", "SIZE", "SOURCE"}, {}};
  for (const auto& media : response.media_assets()) {
    t.rows.push_back({std::string(ShortId(media.name())), v1::MediaAsset::Type_Name(media.type()),
                      media.file_name(), media.size_bytes() == 0 ? "" : StrCat(media.size_bytes()),
                      media.source_url().empty() ? "upload" : media.source_url()});
  }
  return t;
}

Table ToTable(const v1::ListUserListsResponse& response) {
  Table t{{"ID", "NAME", "TYPE", "FANS"}, {}};
  for (const auto& list : response.user_lists()) {
    t.rows.push_back({list.id(), list.display_name(), list.type(), StrCat(list.fan_count())});
  }
  return t;
}

Table ToTable(const v1::ListSegmentsResponse& response) {
  Table t{{"ID", "DISPLAY NAME", "RULE", "CREATED"}, {}};
  for (const auto& segment : response.segments()) {
    t.rows.push_back({std::string(ShortId(segment.name())), segment.display_name(),
                      SegmentRule(segment), FormatTime(segment.create_time())});
  }
  return t;
}

Table ToTable(const v1::ListAutomationsResponse& response) {
  Table t{{"ID", "ACCOUNT", "TRIGGER", "ACTION", "LIST", "FANS", "CREATED"}, {}};
  for (const auto& a : response.automations()) {
    // A rule counts in the field of its action; the other stays 0.
    t.rows.push_back({std::string(ShortId(a.name())), std::string(ShortId(a.account())),
                      v1::Automation::Trigger_Name(a.trigger()),
                      v1::Automation::Action_Name(a.action()), a.user_list_id(),
                      StrCat(a.fans_added() + a.fans_removed()), FormatTime(a.create_time())});
  }
  return t;
}

Table ToTable(const v1::ListCampaignsResponse& response) {
  Table t{{"ID", "STATE", "DISPLAY NAME", "PRICE", "ACCOUNTS", "DONE", "SEND TIME", "CREATED"}, {}};
  for (const auto& campaign : response.campaigns()) {
    const Progress p = ComputeProgress(campaign);
    t.rows.push_back(
        {std::string(ShortId(campaign.name())), v1::Campaign::State_Name(campaign.state()),
         campaign.display_name(), FormatCents(campaign.content().price_cents()),
         StrCat(campaign.targets_size()), StrCat(p.deliveries_done, "/", p.deliveries_total),
         FormatTime(campaign.send_time()), FormatTime(campaign.create_time())});
  }
  return t;
}

Table ToTable(const v1::ListDeliveriesResponse& response) {
  Table t{{"ACCOUNT", "STATE", "MESSAGE", "RECIPIENTS", "ATTEMPTS", "ERROR"}, {}};
  for (const auto& d : response.deliveries()) {
    t.rows.push_back({std::string(ShortId(d.account())), v1::Delivery::State_Name(d.state()),
                      d.upstream_message_id() == 0 ? "" : StrCat(d.upstream_message_id()),
                      StrCat(d.recipients() - d.recipients_pending(), "/", d.recipients()),
                      StrCat(d.send_attempts()),
                      d.error().empty() ? d.cancel_outcome() : d.error()});
  }
  return t;
}

// Whether the upstream holds `item` for a later time (its date, the scheduledDate, is ahead).
bool HeldForLater(const v1::UpstreamQueueItem& item, absl::Time now) {
  absl::Time date;
  std::string error;
  return absl::ParseTime(absl::RFC3339_full, item.date(), &date, &error) && date > now;
}

Table ToTable(const v1::ListUpstreamQueueResponse& response, absl::Time now) {
  Table t{{"ID", "DATE", "STATUS", "DELIVERED", "CAN UNSEND", "CAMPAIGN"}, {}};
  for (const auto& item : response.items()) {
    std::string status = item.has_error()          ? "error"
                         : item.is_canceled()      ? "canceled"
                         : item.is_done()          ? "done"
                         : HeldForLater(item, now) ? "scheduled"
                         : item.is_ready()         ? "sending"
                                                   : "pending";
    t.rows.push_back({StrCat(item.id()), item.date(), status,
                      StrCat(item.total() - item.pending(), "/", item.total()),
                      Yes(item.can_unsend()),
                      StrCat(ShortId(item.campaign()), item.test_message() ? " (test)" : "")});
  }
  return t;
}

Table ToTable(const v1::ListCampaignBuyersResponse& response) {
  Table t{{"ACCOUNT", "FAN ID", "SPENT", "FIRST PURCHASE"}, {}};
  for (const auto& buyer : response.buyers()) {
    t.rows.push_back({std::string(ShortId(buyer.account())), StrCat(buyer.fan_id()),
                      FormatCents(buyer.spent_cents()), FormatTime(buyer.first_purchase_time())});
  }
  return t;
}

Progress ComputeProgress(const v1::Campaign& campaign) {
  const v1::DeliveryCounts& c = campaign.delivery_counts();
  Progress p;
  p.deliveries_total = c.total();
  p.deliveries_done = c.completed() + c.failed() + c.cancelled();
  p.deliveries_failed = c.failed();
  p.recipients_total = c.recipients();
  p.recipients_delivered = std::max<int64_t>(0, c.recipients() - c.recipients_pending());
  if (c.total() > 0) {
    double sent_share = 0;
    if (c.recipients() > 0 && c.sent() > 0) {
      // Recipients of deliveries still being delivered: those not yet delivered are all
      // pending, so the share of pending among recipients is an upper bound of what is left.
      sent_share = c.sent() * (1.0 - static_cast<double>(c.recipients_pending()) /
                                         static_cast<double>(c.recipients()));
    }
    p.fraction = std::clamp((p.deliveries_done + sent_share) / c.total(), 0.0, 1.0);
  }
  if (IsFinal(campaign)) p.fraction = 1.0;
  return p;
}

bool HasRevenue(const v1::CampaignStats& stats) {
  return stats.purchases() != 0 || stats.gross_revenue_cents() != 0 ||
         stats.net_revenue_cents() != 0;
}

std::string RenderProgressLine(const v1::Campaign& campaign, int width,
                               const v1::CampaignStats* stats) {
  const Progress p = ComputeProgress(campaign);
  const std::string state = v1::Campaign::State_Name(campaign.state());
  const std::string percent = StrCat(" ", static_cast<int>(std::floor(p.fraction * 100)), "%");
  std::string deliveries =
      StrCat(percent, "  deliveries ", p.deliveries_done, "/", p.deliveries_total);
  if (p.deliveries_failed > 0) StrAppend(&deliveries, ", ", p.deliveries_failed, " failed");
  const std::string recipients =
      StrCat("  recipients ", p.recipients_delivered, "/", p.recipients_total);
  const std::string revenue = stats != nullptr && HasRevenue(*stats)
                                  ? StrCat("  purchases ", stats->purchases(), "  ",
                                           FormatCents(stats->gross_revenue_cents()))
                                  : std::string();
  const auto fits = [width](const std::string& line) {
    return width <= 0 || static_cast<int>(line.size()) <= width;
  };
  const std::string tail = StrCat(deliveries, recipients, revenue);
  const int fixed = static_cast<int>(state.size() + 2 + 2 + tail.size());
  const int bar_width = std::clamp(width - fixed, 0, 40);
  if (bar_width >= 10) return StrCat(state, "  ", Bar(p.fraction, bar_width), tail);
  // Too narrow for a useful bar: the numbers alone, as many of them as fit whole (the revenue
  // before the recipients), never a number cut short; at the very least the state.
  for (const std::string& line : {StrCat(state, " ", tail), StrCat(state, " ", deliveries, revenue),
                                  StrCat(state, " ", deliveries, recipients),
                                  StrCat(state, " ", deliveries), StrCat(state, " ", percent)}) {
    if (fits(line)) return line;
  }
  return fits(state) ? state : state.substr(0, static_cast<size_t>(width));
}

std::string CampaignChangeLine(const v1::Campaign& campaign) {
  const Progress p = ComputeProgress(campaign);
  std::string line =
      StrCat("campaign ", ShortId(campaign.name()), " ", v1::Campaign::State_Name(campaign.state()),
             " deliveries ", p.deliveries_done, "/", p.deliveries_total, " failed ",
             p.deliveries_failed, " recipients ", p.recipients_delivered, "/", p.recipients_total);
  if (!campaign.state_reason().empty()) StrAppend(&line, " reason: ", campaign.state_reason());
  return line;
}

std::string DeliveryChangeLine(const v1::Delivery& delivery) {
  std::string line =
      StrCat("delivery ", ShortId(delivery.account()), " ",
             v1::Delivery::State_Name(delivery.state()), " recipients ",
             delivery.recipients() - delivery.recipients_pending(), "/", delivery.recipients());
  if (delivery.upstream_message_id() != 0) {
    StrAppend(&line, " message ", delivery.upstream_message_id());
  }
  if (!delivery.error().empty()) StrAppend(&line, " error: ", delivery.error());
  return line;
}

std::string RevenueChangeLine(const v1::CampaignStats& stats) {
  return StrCat("revenue: ", stats.purchases(), " purchases, gross ",
                FormatCents(stats.gross_revenue_cents()), ", net ",
                FormatCents(stats.net_revenue_cents()));
}

bool IsFinal(const v1::Campaign& campaign) {
  switch (campaign.state()) {
    case v1::Campaign::COMPLETED:
    case v1::Campaign::PARTIALLY_FAILED:
    case v1::Campaign::FAILED:
    case v1::Campaign::CANCELLED:
    case v1::Campaign::MISSED:
      return true;
    default:
      return false;
  }
}

WatchPrinter::WatchPrinter(Mode mode, int width)
    : mode_(mode), width_(width), campaign_(std::make_unique<v1::Campaign>()) {}

WatchPrinter::~WatchPrinter() = default;

std::string WatchPrinter::Update(const v1::WatchCampaignResponse& change) {
  if (change.has_campaign()) {
    *campaign_ = change.campaign();
    seen_campaign_ = true;
  }
  // kLines prints a line when the revenue moves (from none, before the first figures).
  bool revenue_moved = false;
  if (change.has_stats()) {
    if (stats_ == nullptr) stats_ = std::make_unique<v1::CampaignStats>();
    const v1::CampaignStats& now = change.stats();
    revenue_moved = now.purchases() != stats_->purchases() ||
                    now.gross_revenue_cents() != stats_->gross_revenue_cents() ||
                    now.net_revenue_cents() != stats_->net_revenue_cents();
    *stats_ = now;
  }
  switch (mode_) {
    case Mode::kJson: {
      // A watch reopened after a disconnect starts again from the whole campaign: what is
      // unchanged since it was printed is not printed twice.
      std::string key = "json:stats";
      if (change.has_campaign()) key = "json:campaign";
      if (change.has_delivery()) key = StrCat("json:delivery:", change.delivery().account());
      return Once(key, ToJson(change));
    }
    case Mode::kLines:
      if (change.has_campaign()) return Once("", CampaignChangeLine(*campaign_));
      if (change.has_delivery()) {
        return Once(change.delivery().account(), DeliveryChangeLine(change.delivery()));
      }
      if (revenue_moved) return RevenueChangeLine(*stats_) + "\n";
      return "";
    case Mode::kLive: {
      // "\r\033[K": back to the line's start and clear it, then redraw.
      std::string out;
      if (change.has_delivery() && change.delivery().state() == v1::Delivery::FAILED) {
        const std::string failed =
            Once(change.delivery().account(), DeliveryChangeLine(change.delivery()));
        if (!failed.empty()) out = StrCat("\r\033[K", failed);
      }
      if (seen_campaign_) {
        std::string line = RenderProgressLine(*campaign_, width_, stats_.get());
        // Redraw only what changed (a delivery change often leaves the totals as they were).
        if (!out.empty() || line != last_line_) StrAppend(&out, "\r\033[K", line);
        last_line_ = std::move(line);
      }
      return out;
    }
  }
  return "";
}

std::string WatchPrinter::Once(const std::string& key, std::string line) {
  std::string& last = printed_[key];
  if (line == last) return "";
  last = line;
  return line + "\n";
}

std::string WatchPrinter::Finish() const {
  return mode_ == Mode::kLive && seen_campaign_ ? "\n" : "";
}

int WatchPrinter::ExitCode(std::string* message, bool interrupted) const {
  message->clear();
  if (!seen_campaign_ || !IsFinal(*campaign_)) {
    *message = interrupted ? "interrupted before the campaign was final"
                           : "the watch ended before the campaign was final";
    return kExitRpcError;
  }
  if (campaign_->state() == v1::Campaign::COMPLETED) return kExitOk;
  *message = StrCat("campaign ended ", v1::Campaign::State_Name(campaign_->state()));
  if (!campaign_->state_reason().empty()) StrAppend(message, ": ", campaign_->state_reason());
  return kExitCampaignOutcome;
}

}  // namespace herald::heraldctl
