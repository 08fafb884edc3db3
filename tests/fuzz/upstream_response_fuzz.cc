// libFuzzer target: the decoders of upstream responses (upstream/src/responses.h): every success
// body parser, the envelope's metadata, and the error body read for an HTTP error. Whatever the
// bytes, they never crash; a decoded value keeps the invariants the callers rely on (ids not
// negative or empty, money not negative), and an error's message is bounded printable text that
// carries its classification.
//
// Input: one response body. It is decoded by every endpoint's parser, as a 2xx response, and as
// the body of an HTTP error (status and Retry-After from the body's length, so all classes occur).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <herald/upstream/error.h>
#include <herald/upstream/http_client.h>
#include <herald/upstream/types.h>

#include "json.h"
#include "responses.h"

namespace {

using namespace herald::upstream;            // NOLINT
using namespace herald::upstream::internal;  // NOLINT

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

// A status from the decoders: an error names what failed and is not OK.
void CheckStatus(const absl::Status& status) { Check(!status.ok() && !status.message().empty()); }

template <typename T>
void Decode(const JsonDocument& doc, BodyParser<T> parse) {
  absl::StatusOr<T> value = parse(doc);
  if (!value.ok()) CheckStatus(value.status());
}

void CheckFans(const std::vector<Fan>& fans) {
  for (const Fan& f : fans) Check(f.id >= 0);
}

void DecodeEveryBody(const JsonDocument& doc) {
  if (auto r = ParseQueueItemBody(doc); r.ok()) Check(r->id >= 0);
  if (auto r = ParseQueueListBody(doc); r.ok()) {
    for (const QueueItem& q : *r) Check(q.id >= 0);
  }
  if (auto r = ParseStatsPageBody(doc); r.ok()) {
    for (const MassMessageStats& s : r->items) {
      Check(s.id >= 0);
      Check(s.price_cents.value_or(0) >= 0 && s.revenue_cents.value_or(0) >= 0);
    }
    Check(!r->next_page.has_value() || !r->next_page->empty());
  }
  if (auto r = ParseQueueDetailBody(doc); r.ok()) Check(r->queue.id >= 0);
  if (auto r = ParseUploadBody(doc); r.ok()) {
    Check(!r->prefixed_id.empty() || !r->polling_url.empty());
  }
  // What the client's uploads return always names the media a message will attach.
  if (auto r = ParseSyncUploadBody(doc); r.ok()) Check(!r->prefixed_id.empty());
  if (auto r = ParseUserListsBody(doc); r.ok()) {
    for (const UserList& l : *r) Check(!l.id.empty());
  }
  if (auto r = ParseUserListBody(doc); r.ok()) Check(!r->id.empty());
  Decode(doc, &ParseAddUsersBody);
  if (auto r = ParseUserListUsersBody(doc); r.ok()) CheckFans(r->users);
  if (auto r = ParseTopMessageBody(doc); r.ok() && r->has_value()) {
    Check((*r)->id >= 0 && (*r)->price_cents >= 0 && (*r)->total_revenue_cents >= 0);
  }
  if (auto r = ParseBuyersBody(doc); r.ok()) CheckFans(r->buyers);
  if (auto r = ParseAccountsBody(doc); r.ok()) {
    for (const Account& a : *r) Check(!a.id.empty());
  }
  if (auto r = ParseWebhooksBody(doc); r.ok()) {
    for (const Webhook& w : *r) Check(!w.id.empty());
  }
  if (auto r = ParseWebhookBody(doc); r.ok()) Check(!r->id.empty());
  (void)ReadBodyMeta(doc);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(body);
  if (doc.ok()) {
    DecodeEveryBody(*doc);
  } else {
    CheckStatus(doc.status());
  }

  // The same body behind a whole response: success, and an HTTP error of some class.
  constexpr int kStatuses[] = {200, 400, 401, 402, 403, 404, 408, 422, 429, 500, 502, 503, 504};
  const int status = kStatuses[size % std::size(kStatuses)];
  HttpResponse response{.status = status,
                        .headers = {{"retry-after", std::to_string(size % 7 - 1)},
                                    {"X-OFAPI-Credits-Balance", std::to_string(size)}},
                        .body = body};
  Result<std::vector<Account>> accounts = Interpret<std::vector<Account>>(
      "accounts", HttpMethod::kPost, response, &ParseAccountsBody, absl::Seconds(5));
  Check(accounts.info.http_status == status);
  if (status != 200) {
    const absl::Status& error = accounts.value.status();
    Check(!error.ok());
    const std::optional<UpstreamError> classified = GetUpstreamError(error);
    Check(classified.has_value() && classified->http_status == status);
    Check(classified->kind != ErrorKind::kRateLimited ||
          classified->retry_after >= absl::Seconds(0));
    // The upstream's message and code are quoted: bounded, and never a line break or a control
    // character that could forge a log line.
    for (const char c : error.message()) Check(static_cast<unsigned char>(c) >= 0x20);
    Check(error.message().size() < 1000);
  } else if (!accounts.value.ok()) {
    const std::optional<UpstreamError> classified = GetUpstreamError(accounts.value.status());
    Check(classified.has_value() && classified->kind == ErrorKind::kUnknownOutcome);
  }
  return 0;
}
