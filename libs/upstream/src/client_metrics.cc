#include "client_metrics.h"

#include <algorithm>
#include <iterator>

#include <herald/common/strings.h>
#include <herald/upstream/error.h>

namespace herald::upstream::internal {
namespace {

constexpr std::array<std::string_view, 8> kOutcomes = {
    "ok",           "cancelled", "retryable",      "rate_limited", "out_of_credits",
    "unauthorized", "terminal",  "unknown_outcome"};

}  // namespace

std::string_view EndpointName(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::kSendMassMessage:
      return "send_mass_message";
    case Endpoint::kListMassMessageQueue:
      return "list_mass_message_queue";
    case Endpoint::kGetMassMessageOverview:
      return "get_mass_message_overview";
    case Endpoint::kGetMassMessage:
      return "get_mass_message";
    case Endpoint::kUpdateMassMessage:
      return "update_mass_message";
    case Endpoint::kUnsendMassMessage:
      return "unsend_mass_message";
    case Endpoint::kUploadMedia:
      return "upload_media";
    case Endpoint::kListUserLists:
      return "list_user_lists";
    case Endpoint::kCreateUserList:
      return "create_user_list";
    case Endpoint::kAddUsersToUserList:
      return "add_users_to_user_list";
    case Endpoint::kListUserListUsers:
      return "list_user_list_users";
    case Endpoint::kManageUserList:
      return "manage_user_list";
    case Endpoint::kListMassMessageStats:
      return "list_mass_message_stats";
    case Endpoint::kGetTopMessage:
      return "get_top_message";
    case Endpoint::kGetUploadStatus:
      return "get_upload_status";
    case Endpoint::kGetMassMessageChart:
      return "get_mass_message_chart";
    case Endpoint::kListMessageBuyers:
      return "list_message_buyers";
    case Endpoint::kListAccounts:
      return "list_accounts";
    case Endpoint::kListWebhooks:
      return "list_webhooks";
    case Endpoint::kCreateWebhook:
      return "create_webhook";
    case Endpoint::kUpdateWebhook:
      return "update_webhook";
    case Endpoint::kManageWebhook:
      return "manage_webhook";
  }
  return "unknown";
}

std::string_view OutcomeName(const absl::Status& status) {
  if (status.ok()) return "ok";
  if (status.code() == absl::StatusCode::kCancelled) return "cancelled";
  const std::optional<UpstreamError> error = GetUpstreamError(status);
  return ErrorKindName(error.has_value() ? error->kind : ErrorKind::kTerminal);
}

size_t ClientMetrics::OutcomeIndex(std::string_view outcome) {
  for (size_t i = 0; i < kOutcomes.size(); ++i) {
    if (kOutcomes[i] == outcome) return i;
  }
  return 0;
}

ClientMetrics::ClientMetrics(metrics::Registry& registry, const std::string& tenant,
                             const std::string& team)
    : responses_(metrics::BuildCounter()
                     .Name("herald_upstream_responses_total")
                     .Help("Upstream HTTP responses, by endpoint and status code.")
                     .LabelNames({"endpoint", "code"})
                     .Register(registry)),
      retry_after_(metrics::BuildHistogram()
                       .Name("herald_upstream_retry_after_seconds")
                       .Help("Retry-After of the upstream's 429 and 5xx responses that had one.")
                       .Buckets({1, 2, 5, 10, 15, 30, 60, 120, 300, 600})
                       .Register(registry)
                       .Add({})),
      rate_limit_limit_(metrics::BuildGauge()
                            .Name("herald_upstream_rate_limit_limit")
                            .Help("Requests the upstream allows per minute for the team's key, "
                                  "as last reported (X-Rate-Limit-Limit-Minute).")
                            .LabelNames({"tenant", "team"})
                            .Register(registry),
                        {{"tenant", tenant}, {"team", team}}),
      rate_limit_remaining_(metrics::BuildGauge()
                                .Name("herald_upstream_rate_limit_remaining")
                                .Help("Requests left in the upstream's current minute for the "
                                      "team's key, as last reported.")
                                .LabelNames({"tenant", "team"})
                                .Register(registry),
                            {{"tenant", tenant}, {"team", team}}),
      credits_balance_(metrics::BuildGauge()
                           .Name("herald_upstream_credits_balance")
                           .Help("The upstream team's credit balance, as last reported.")
                           .LabelNames({"tenant", "team"})
                           .Register(registry),
                       {{"tenant", tenant}, {"team", team}}),
      report_time_(metrics::BuildGauge()
                       .Name("herald_upstream_report_time_seconds")
                       .Help("When this process last had the upstream's rate limit or credit "
                             "figures for the team's key (Unix seconds): how fresh the three "
                             "gauges above are.")
                       .LabelNames({"tenant", "team"})
                       .Register(registry),
                   {{"tenant", tenant}, {"team", team}}) {
  auto& requests = metrics::BuildCounter()
                       .Name("herald_upstream_requests_total")
                       .Help("Upstream API calls, by endpoint and outcome.")
                       .LabelNames({"endpoint", "outcome"})
                       .Register(registry);
  // 5ms to ~41s: uploads by URL take tens of seconds.
  auto& duration = metrics::BuildHistogram()
                       .Name("herald_upstream_request_duration_seconds")
                       .Help("Upstream API call latency, including connection set-up.")
                       .LabelNames({"endpoint"})
                       .Buckets(metrics::ExponentialBuckets(0.005, 2, 14))
                       .Register(registry);
  for (size_t e = 0; e < kEndpointCount; ++e) {
    endpoints_[e].name = EndpointName(static_cast<Endpoint>(e));
    const std::string name(endpoints_[e].name);
    endpoints_[e].duration = &duration.Add({{"endpoint", name}});
    for (size_t o = 0; o < kOutcomes.size(); ++o) {
      endpoints_[e].requests[o] =
          &requests.Add({{"endpoint", name}, {"outcome", std::string(kOutcomes[o])}});
    }
  }
}

std::string CodeLabel(int status) {
  static constexpr int kNamed[] = {200, 201, 202, 204, 400, 401, 402, 403, 404, 405, 408,
                                   409, 410, 413, 415, 422, 429, 500, 502, 503, 504};
  if (std::find(std::begin(kNamed), std::end(kNamed), status) != std::end(kNamed)) {
    return std::to_string(status);
  }
  if (status < 100 || status > 599) return "other";
  return StrCat(status / 100, "xx");
}

void ClientMetrics::Record(Endpoint endpoint, const absl::Status& status, absl::Duration elapsed,
                           const ResponseInfo& info) {
  PerEndpoint& e = endpoints_[static_cast<size_t>(endpoint)];
  e.requests[OutcomeIndex(OutcomeName(status))]->Increment();
  e.duration->Observe(absl::ToDoubleSeconds(elapsed));
  if (info.http_status != 0) {
    responses_.Add({{"endpoint", std::string(e.name)}, {"code", CodeLabel(info.http_status)}})
        .Increment();
  }
  if (info.retry_after.has_value() && (info.http_status == 429 || info.http_status >= 500)) {
    retry_after_.Observe(absl::ToDoubleSeconds(*info.retry_after));
  }
  bool reported = false;
  if (info.rate_limit_minute.has_value()) {
    rate_limit_limit_.Set(static_cast<double>(*info.rate_limit_minute));
    reported = true;
  }
  if (std::optional<int64_t> remaining = info.RemainingPerMinute()) {
    rate_limit_remaining_.Set(static_cast<double>(*remaining));
    reported = true;
  }
  if (std::optional<int64_t> balance = info.CreditsBalance()) {
    credits_balance_.Set(static_cast<double>(*balance));
    reported = true;
  }
  if (reported) report_time_.Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
}

void ReportedGauge::Set(double value) {
  metrics::Gauge* gauge = gauge_.load(std::memory_order_acquire);
  if (gauge == nullptr) {
    // Racing first reports make the same series (Add is idempotent and thread-safe).
    gauge = &family_.Add(labels_);
    gauge_.store(gauge, std::memory_order_release);
  }
  gauge->Set(value);
}

}  // namespace herald::upstream::internal
