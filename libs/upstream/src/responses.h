// Interpreting upstream responses: error classification (error.h), limits and credits, and the
// parsing of every success body into Herald's types. Pure functions, tested without sockets.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

#include <herald/upstream/http_client.h>
#include <herald/upstream/types.h>

#include "json.h"

namespace herald::upstream::internal {

// Rate-limit, credit and Retry-After headers; values that do not parse are left unset.
ResponseInfo ReadResponseInfo(const HttpResponse& response);

// The body's `_meta`, read leniently: malformed metadata never fails a call.
std::optional<BodyMeta> ReadBodyMeta(const JsonDocument& doc);

// OK for 2xx; otherwise the classified error with the upstream's message and code. `method`
// matters for 502 and 504 (see error.h).
absl::Status ClassifyHttpStatus(std::string_view endpoint, HttpMethod method,
                                const HttpResponse& response, absl::Duration default_retry_after);

// A 2xx response whose body cannot be read: kUnknown, kind kUnknownOutcome.
absl::Status BadResponseBody(std::string_view endpoint, int http_status, const absl::Status& why);

// The steps every endpoint shares: a transport failure or an HTTP error status is returned as
// is; a 2xx body is parsed as JSON. `info` is filled from whatever response arrived.
absl::StatusOr<JsonDocument> OpenResponse(std::string_view endpoint, HttpMethod method,
                                          const absl::StatusOr<HttpResponse>& response,
                                          absl::Duration default_retry_after, ResponseInfo& info);

template <typename T>
using BodyParser = absl::StatusOr<T> (*)(const JsonDocument&);

// A transport result turned into a typed result.
template <typename T>
Result<T> Interpret(std::string_view endpoint, HttpMethod method,
                    const absl::StatusOr<HttpResponse>& response, BodyParser<T> parse,
                    absl::Duration default_retry_after) {
  Result<T> result;
  absl::StatusOr<JsonDocument> doc =
      OpenResponse(endpoint, method, response, default_retry_after, result.info);
  if (!doc.ok()) {
    result.value = doc.status();
    return result;
  }
  absl::StatusOr<T> value = parse(*doc);
  if (value.ok()) {
    result.value = std::move(value);
  } else {
    result.value = BadResponseBody(endpoint, result.info.http_status, value.status());
  }
  return result;
}

// Success bodies of the upstream's REST API. Each fails with kInvalidArgument naming the JSON path
// of the first field that does not match.
absl::StatusOr<QueueItem> ParseQueueItemBody(const JsonDocument& doc);
absl::StatusOr<std::vector<QueueItem>> ParseQueueListBody(const JsonDocument& doc);
absl::StatusOr<MassMessageStatsPage> ParseStatsPageBody(const JsonDocument& doc);
absl::StatusOr<QueueDetailResult> ParseQueueDetailBody(const JsonDocument& doc);
absl::StatusOr<UploadedMedia> ParseUploadBody(const JsonDocument& doc);
// An upload Herald asked for synchronously: as ParseUploadBody, and the media's id is required
// even beside a polling URL (a message cannot attach media that has no id yet).
absl::StatusOr<UploadedMedia> ParseSyncUploadBody(const JsonDocument& doc);
absl::StatusOr<UploadStatus> ParseUploadStatusBody(const JsonDocument& doc);
absl::StatusOr<MassMessageChart> ParseChartBody(const JsonDocument& doc);
absl::StatusOr<std::vector<UserList>> ParseUserListsBody(const JsonDocument& doc);
absl::StatusOr<UserList> ParseUserListBody(const JsonDocument& doc);
absl::StatusOr<AddUsersResult> ParseAddUsersBody(const JsonDocument& doc);
absl::StatusOr<UserListUsersPage> ParseUserListUsersBody(const JsonDocument& doc);
// {success} of a delete or a pin.
absl::StatusOr<bool> ParseSuccessBody(const JsonDocument& doc);
absl::StatusOr<RemovedListUser> ParseRemovedListUserBody(const JsonDocument& doc);
absl::StatusOr<std::optional<TopMessage>> ParseTopMessageBody(const JsonDocument& doc);
absl::StatusOr<BuyersPage> ParseBuyersBody(const JsonDocument& doc);
absl::StatusOr<std::vector<Account>> ParseAccountsBody(const JsonDocument& doc);
absl::StatusOr<std::vector<Webhook>> ParseWebhooksBody(const JsonDocument& doc);
absl::StatusOr<Webhook> ParseWebhookBody(const JsonDocument& doc);
absl::StatusOr<std::vector<WebhookCatalogueEntry>> ParseWebhookEventsBody(const JsonDocument& doc);
absl::StatusOr<std::vector<WebhookDelivery>> ParseWebhookDeliveriesBody(const JsonDocument& doc);
// The redelivery's id (redelivery_id).
absl::StatusOr<std::string> ParseRedeliveryBody(const JsonDocument& doc);

}  // namespace herald::upstream::internal
