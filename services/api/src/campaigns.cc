// CampaignService: campaigns, their deliveries and state changes, and WatchCampaign.

#include <algorithm>
#include <set>

#include <absl/strings/numbers.h>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <google/protobuf/util/field_mask_util.h>

#include <herald/campaign/analytics.h>
#include <herald/campaign/workflow.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/store/audit.h>
#include <herald/v1/campaign.grpc.pb.h>

#include "bridge.h"
#include "convert.h"
#include "names.h"
#include "paging.h"
#include "services.h"
#include "stream.h"

namespace herald::api {
namespace {

namespace asio = boost::asio;
using campaign::Caller;
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

// The states a list request filters by, each once; INVALID_ARGUMENT for 0 or a value the enum
// (`valid`) does not have.
absl::StatusOr<std::set<int>> StateFilter(const google::protobuf::RepeatedField<int>& states,
                                          bool (*valid)(int)) {
  std::set<int> out;
  for (const int s : states) {
    if (s == 0 || !valid(s)) return absl::InvalidArgumentError(StrCat("states: unknown state ", s));
    out.insert(s);
  }
  return out;
}

class CampaignServiceImpl final : public v1::CampaignService::CallbackService {
 public:
  // `analytics` gives WatchCampaign the campaign's figures.
  CampaignServiceImpl(Bridge& bridge, campaign::Analytics& analytics, absl::Duration watch_poll)
      : bridge_(bridge),
        service_(bridge.service()),
        analytics_(analytics),
        watch_poll_(watch_poll) {}

  ServerUnaryReactor* CreateCampaign(CallbackServerContext* ctx,
                                     const v1::CreateCampaignRequest* req,
                                     v1::Campaign* resp) override {
    return bridge_.Unary(
        ctx, "CreateCampaign", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Campaign> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(store::RequestId request_id, CreateRequestId(*req));
          absl::StatusOr<store::Campaign> parsed =
              ParseCampaign(c.tenant, req->campaign(), absl::Now());
          if (!parsed.ok()) {
            // A retry of a create that was taken gets the first answer, though the request may no
            // longer pass a check of the time (its send time has passed since).
            if (!request_id.empty()) {
              HERALD_CO_ASSIGN_OR_RETURN(
                  std::optional<campaign::CampaignView> replay,
                  co_await service_.ReplayCreateCampaign(c.tenant, std::move(request_id)));
              if (replay) co_return ToProto(*replay);
            }
            co_return parsed.status();
          }
          HERALD_CO_RETURN_IF_ERROR(campaign::CheckUpstreamLeadHasSendTime(*parsed));
          HERALD_CO_ASSIGN_OR_RETURN(auto view, co_await service_.CreateCampaign(
                                                    *std::move(parsed), std::move(request_id)));
          co_return ToProto(view);
        });
  }

  ServerUnaryReactor* GetCampaign(CallbackServerContext* ctx, const v1::GetCampaignRequest* req,
                                  v1::Campaign* resp) override {
    return bridge_.Unary(ctx, "GetCampaign", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::Campaign> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string id, OwnId(c.tenant, "name", req->name(), "campaigns"));
                           HERALD_CO_ASSIGN_OR_RETURN(auto v,
                                                      co_await service_.GetCampaign(c.tenant, id));
                           co_return ToProto(v);
                         });
  }

  ServerUnaryReactor* ListCampaigns(CallbackServerContext* ctx, const v1::ListCampaignsRequest* req,
                                    v1::ListCampaignsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListCampaigns", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListCampaignsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(int size, ParsePageSize(req->page_size(), 50, 1000));
          // A token is good for the request it came from only: the same tenant and filters.
          // A bound set to the epoch is not an unset one (both 0.0 before, kept so that tokens
          // outlive a rolling deploy).
          const auto bound = [](bool set, const google::protobuf::Timestamp& t) {
            const bool epoch = set && t.seconds() == 0 && t.nanos() == 0;
            return StrCat(epoch ? "=" : "", t.seconds(), ".", t.nanos());
          };
          std::string filter =
              StrCat(c.tenant, "/", bound(req->has_create_time_after(), req->create_time_after()),
                     "/", bound(req->has_create_time_before(), req->create_time_before()), "/");
          HERALD_CO_ASSIGN_OR_RETURN(std::set<int> states,
                                     StateFilter(req->states(), v1::Campaign::State_IsValid));
          for (int s : states) StrAppend(&filter, s, ",");
          const uint64_t fingerprint = Fingerprint(filter);
          // Campaigns come newest first, ties by id (descending); the token is the position of
          // the last one returned, "create_ms:id".
          HERALD_CO_ASSIGN_OR_RETURN(std::string token,
                                     DecodePageToken(req->page_token(), fingerprint));
          std::optional<int64_t> cursor_ms;
          std::string cursor_id;
          if (!token.empty()) {
            const size_t colon = token.find(':');
            int64_t ms = 0;
            if (colon == std::string::npos ||
                !absl::SimpleAtoi(ToAbsl(std::string_view(token).substr(0, colon)), &ms)) {
              co_return absl::InvalidArgumentError("page_token: malformed");
            }
            cursor_ms = ms;
            cursor_id = token.substr(colon + 1);
          }
          std::optional<double> before;
          // In double: a token's milliseconds are the client's bytes and may be INT64_MAX.
          if (cursor_ms) before = static_cast<double>(*cursor_ms) + 1;
          // Create times are kept in whole milliseconds: a bound between two of them rounds up,
          // so "at or after" and "before" hold to the nanosecond.
          int64_t after_ms = 0;
          if (req->has_create_time_after()) {
            HERALD_CO_ASSIGN_OR_RETURN(
                after_ms, ParseTimestampBoundMillis("create_time_after", req->create_time_after()));
          }
          if (req->has_create_time_before()) {
            HERALD_CO_ASSIGN_OR_RETURN(
                int64_t before_ms,
                ParseTimestampBoundMillis("create_time_before", req->create_time_before()));
            const google::protobuf::Timestamp& from = req->create_time_after();
            const google::protobuf::Timestamp& to = req->create_time_before();
            if (req->has_create_time_after() && std::make_pair(to.seconds(), to.nanos()) <=
                                                    std::make_pair(from.seconds(), from.nanos())) {
              co_return absl::InvalidArgumentError(
                  "create_time_before: must be after create_time_after");
            }
            const double b = static_cast<double>(before_ms);
            before = before ? std::min(*before, b) : b;
          }
          v1::ListCampaignsResponse out;
          // Filters apply after the index read; keep reading until the page is full and one
          // more campaign matches (else this page is the last, and says so with no token).
          std::string last_position;  // of the page's last campaign
          bool more = false;
          while (true) {
            HERALD_CO_ASSIGN_OR_RETURN(auto page,
                                       co_await service_.ListCampaigns(c.tenant, before, size + 1));
            bool past_range = false;
            for (const auto& v : page.first) {
              const int64_t t = v.campaign.create_time_ms;
              if (cursor_ms &&
                  (t > *cursor_ms || (t == *cursor_ms && v.campaign.id >= cursor_id))) {
                continue;  // returned on an earlier page
              }
              if (t < after_ms) {
                past_range = true;
                break;
              }
              v1::Campaign proto = ToProto(v);
              if (!states.empty() && !states.contains(proto.state())) continue;
              if (out.campaigns_size() == size) {
                more = true;
                break;
              }
              *out.add_campaigns() = std::move(proto);
              last_position = StrCat(t, ":", v.campaign.id);
            }
            if (more || past_range || !page.second) break;
            before = page.second;
          }
          if (more) out.set_next_page_token(EncodePageToken(last_position, fingerprint));
          co_return out;
        });
  }

  ServerUnaryReactor* UpdateCampaign(CallbackServerContext* ctx,
                                     const v1::UpdateCampaignRequest* req,
                                     v1::Campaign* resp) override {
    return bridge_.Unary(
        ctx, "UpdateCampaign", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Campaign> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "campaign.name",
                                                           req->campaign().name(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto fields,
              ParseMask(req->campaign(), req->update_mask(),
                        {"display_name", "content", "content.text", "content.price_cents",
                         "content.media", "content.previews", "content.locked_text", "targets",
                         "send_time", "grace_period", "upstream_lead"}));
          // Merge the masked fields into the current campaign and check the result whole, with
          // the same rules as a create.
          HERALD_CO_ASSIGN_OR_RETURN(auto current, co_await service_.GetCampaign(c.tenant, id));
          v1::Campaign merged = ToProto(current);
          google::protobuf::FieldMask mask;
          for (const std::string& field : fields) mask.add_paths(field);
          google::protobuf::util::FieldMaskUtil::MergeOptions options;
          // A masked field is replaced whole, as AIP-134 has it: `content` sets every field of
          // the content (an unset one is cleared), and an unset `send_time`, `grace_period` or
          // `upstream_lead` clears it.
          options.set_replace_repeated_fields(true);
          options.set_replace_message_fields(true);
          google::protobuf::util::FieldMaskUtil::MergeMessageTo(req->campaign(), mask, options,
                                                                &merged);
          const bool send_time_changed =
              std::find(fields.begin(), fields.end(), "send_time") != fields.end();
          if (!send_time_changed) merged.clear_send_time();
          HERALD_CO_ASSIGN_OR_RETURN(store::Campaign parsed,
                                     ParseCampaign(c.tenant, merged, absl::Now()));
          parsed.id = id;
          if (!send_time_changed) parsed.send_time_ms = current.campaign.send_time_ms;
          if (req->campaign().revision() < 0) {
            co_return absl::InvalidArgumentError("campaign.revision: must not be negative");
          }
          HERALD_CO_ASSIGN_OR_RETURN(auto v,
                                     co_await service_.UpdateCampaign(std::move(parsed), fields,
                                                                      req->campaign().revision()));
          co_return ToProto(v);
        });
  }

  ServerUnaryReactor* LaunchCampaign(CallbackServerContext* ctx,
                                     const v1::LaunchCampaignRequest* req,
                                     v1::Campaign* resp) override {
    return Simple(ctx, "LaunchCampaign", req->name(), resp, [this](std::string t, std::string id) {
      return service_.LaunchCampaign(std::move(t), std::move(id));
    });
  }

  ServerUnaryReactor* PauseCampaign(CallbackServerContext* ctx, const v1::PauseCampaignRequest* req,
                                    v1::Campaign* resp) override {
    return Simple(ctx, "PauseCampaign", req->name(), resp, [this](std::string t, std::string id) {
      return service_.PauseCampaign(std::move(t), std::move(id));
    });
  }

  ServerUnaryReactor* ResumeCampaign(CallbackServerContext* ctx,
                                     const v1::ResumeCampaignRequest* req,
                                     v1::Campaign* resp) override {
    return Simple(ctx, "ResumeCampaign", req->name(), resp, [this](std::string t, std::string id) {
      return service_.ResumeCampaign(std::move(t), std::move(id));
    });
  }

  ServerUnaryReactor* CancelCampaign(CallbackServerContext* ctx,
                                     const v1::CancelCampaignRequest* req,
                                     v1::CancelCampaignResponse* resp) override {
    return bridge_.Unary(
        ctx, "CancelCampaign", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::CancelCampaignResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "name", req->name(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(auto result, co_await service_.CancelCampaign(c.tenant, id));
          const std::string resource = req->name();
          const std::string detail = StrCat(result.not_undone.size(), " deliveries not undone");
          co_await service_.Audit(c, "campaign.cancel", c.tenant, resource, detail);
          v1::CancelCampaignResponse out;
          *out.mutable_campaign() = ToProto(result.campaign);
          for (const auto& d : result.not_undone) *out.add_not_undone() = ToProto(c.tenant, id, d);
          co_return out;
        });
  }

  ServerUnaryReactor* ListDeliveries(CallbackServerContext* ctx,
                                     const v1::ListDeliveriesRequest* req,
                                     v1::ListDeliveriesResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListDeliveries", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListDeliveriesResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "parent", req->parent(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(std::set<int> states,
                                     StateFilter(req->states(), v1::Delivery::State_IsValid));
          HERALD_CO_ASSIGN_OR_RETURN(auto all, co_await service_.ListDeliveries(c.tenant, id));
          // A token is good for the same filter only (without one, as before filters existed).
          std::string filter = req->parent();
          if (!states.empty()) {
            std::erase_if(all, [&states](const store::Delivery& d) {
              return !states.contains(ToProto(d.state));
            });
            StrAppend(&filter, "/states:");
            for (int s : states) StrAppend(&filter, s, ",");
          }
          co_return ListPage<v1::ListDeliveriesResponse>(
              *req, std::move(all), [](const store::Delivery& d) { return d.account; },
              Fingerprint(filter),
              [&](v1::ListDeliveriesResponse& out, const store::Delivery& d) {
                *out.add_deliveries() = ToProto(c.tenant, id, d);
              });
        });
  }

  ServerUnaryReactor* GetDelivery(CallbackServerContext* ctx, const v1::GetDeliveryRequest* req,
                                  v1::Delivery* resp) override {
    return bridge_.Unary(
        ctx, "GetDelivery", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Delivery> {
          HERALD_CO_ASSIGN_OR_RETURN(DeliveryName name, OwnDelivery(c.tenant, req->name()));
          HERALD_CO_ASSIGN_OR_RETURN(store::Delivery d, co_await service_.GetDelivery(
                                                            c.tenant, name.campaign, name.account));
          co_return ToProto(c.tenant, name.campaign, d);
        });
  }

  ServerUnaryReactor* SendTestMessage(CallbackServerContext* ctx,
                                      const v1::SendTestMessageRequest* req,
                                      v1::SendTestMessageResponse* resp) override {
    return bridge_.Unary(
        ctx, "SendTestMessage", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::SendTestMessageResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "campaign", req->campaign(), "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(std::string account,
                                     OwnId(c.tenant, "account", req->account(), "accounts"));
          if (req->fan_ids_size() < 1 || req->fan_ids_size() > 10) {
            co_return absl::InvalidArgumentError("fan_ids: give 1-10 fan ids");
          }
          std::vector<int64_t> fans;
          for (int i = 0; i < req->fan_ids_size(); ++i) {
            if (req->fan_ids(i) <= 0) {
              co_return absl::InvalidArgumentError(StrCat("fan_ids[", i, "]: must be > 0"));
            }
            if (std::find(fans.begin(), fans.end(), req->fan_ids(i)) != fans.end()) {
              co_return absl::InvalidArgumentError(
                  StrCat("fan_ids[", i, "]: fan ", req->fan_ids(i), " is listed twice"));
            }
            fans.push_back(req->fan_ids(i));
          }
          HERALD_CO_ASSIGN_OR_RETURN(int64_t message, co_await service_.SendTestMessage(
                                                          c.tenant, id, account, std::move(fans)));
          v1::SendTestMessageResponse out;
          out.set_upstream_message_id(message);
          co_return out;
        });
  }

  ServerUnaryReactor* ListUpstreamQueue(CallbackServerContext* ctx,
                                        const v1::ListUpstreamQueueRequest* req,
                                        v1::ListUpstreamQueueResponse* resp) override {
    return bridge_.Unary(ctx, "ListUpstreamQueue", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::ListUpstreamQueueResponse> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string account,
                               OwnId(c.tenant, "account", req->account(), "accounts"));
                           HERALD_CO_ASSIGN_OR_RETURN(
                               auto items, co_await service_.ListUpstreamQueue(c.tenant, account));
                           v1::ListUpstreamQueueResponse out;
                           for (const auto& e : items) {
                             v1::UpstreamQueueItem* item = out.add_items();
                             item->set_id(e.id);
                             item->set_date(e.date);
                             item->set_is_ready(e.is_ready);
                             item->set_is_done(e.is_done);
                             item->set_is_canceled(e.is_canceled);
                             item->set_has_error(e.has_error);
                             item->set_pending(e.pending);
                             item->set_total(e.total);
                             item->set_can_unsend(e.can_unsend);
                             item->set_test_message(e.test);
                             if (!e.campaign.empty())
                               item->set_campaign(ChildNameOf(c.tenant, "campaigns", e.campaign));
                           }
                           co_return out;
                         });
  }

  grpc::ServerWriteReactor<v1::WatchCampaignResponse>* WatchCampaign(
      CallbackServerContext* ctx, const v1::WatchCampaignRequest* req) override {
    auto* reactor = new WatchReactor(*this, ctx, req->name(), req->follow_revenue());
    reactor->Begin(bridge_, "WatchCampaign");
    return reactor;
  }

 private:
  template <typename Fn>
  ServerUnaryReactor* Simple(CallbackServerContext* ctx, std::string_view method,
                             const std::string& name, v1::Campaign* resp, Fn fn) {
    return bridge_.Unary(
        ctx, method, resp, Access::kTenant, [name, fn](const Caller& c) -> Op<v1::Campaign> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", name, "campaigns"));
          HERALD_CO_ASSIGN_OR_RETURN(auto v, co_await fn(c.tenant, id));
          co_return ToProto(v);
        });
  }

  // Streams the campaign, its deliveries and its figures: everything first, then, every
  // watch_poll_, the deliveries and the campaign when the campaign's revision moved, and the
  // figures when any of them changed. Ends when the campaign is final (unless follow_revenue:
  // then only when the client goes away), when the client goes away, or with the first failed
  // read.
  // A client that reads slower than the changes come gets them merged: nothing is read while
  // the last batch waits for gRPC, and the next read sends what changed since, each delivery,
  // the campaign and the figures at their latest. What waits for a client is one batch at most,
  // however long it stops reading.
  class WatchReactor final : public StreamReactor<v1::WatchCampaignResponse> {
   public:
    WatchReactor(CampaignServiceImpl& owner, CallbackServerContext* ctx, std::string name,
                 bool follow_revenue)
        : StreamReactor(ctx),
          owner_(owner),
          name_(std::move(name)),
          follow_revenue_(follow_revenue),
          timer_(owner.bridge_.executor()) {}

   private:
    asio::awaitable<absl::Status> Run(const Caller& c) override {
      HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", name_, "campaigns"));
      // Delivery -> the last one sent, serialized: a delivery is sent again when anything in it
      // changed, its update time or not (a send refused and taken back, say).
      std::map<std::string, std::string> sent;
      std::string campaign_sent;  // the last campaign message, serialized
      int64_t revision = -1;
      // A campaign's view also says what holds it that its revision does not follow (a team or
      // account paused or resumed, a key refused): until it is final, it is read again (without
      // its deliveries) every so many polls regardless.
      constexpr absl::Duration kViewRefresh = absl::Seconds(5);
      const int64_t refresh_polls = std::max<int64_t>(1, kViewRefresh / owner_.watch_poll_);
      int64_t polls_since_view = 0;
      bool final_seen = false;
      std::optional<campaign::CampaignFigures> figures_sent;
      while (true) {
        if (cancelled()) co_return absl::CancelledError("the client went away");
        HERALD_CO_RETURN_IF_ERROR(co_await StillAuthenticated());
        if (backlog() > 0) {
          co_await Pause();
          continue;
        }
        std::vector<v1::WatchCampaignResponse> batch;
        bool ended = false;
        HERALD_CO_ASSIGN_OR_RETURN(int64_t now_revision,
                                   co_await owner_.service_.CampaignRevision(c.tenant, id));
        const bool changed = now_revision != revision;
        const bool refresh = !final_seen && ++polls_since_view >= refresh_polls;
        if (changed || refresh) {
          revision = now_revision;
          polls_since_view = 0;
          HERALD_CO_ASSIGN_OR_RETURN(auto view, co_await owner_.service_.GetCampaign(c.tenant, id));
          bool unsettled = false;
          if (changed) {
            HERALD_CO_ASSIGN_OR_RETURN(auto deliveries,
                                       co_await owner_.service_.ListDeliveries(c.tenant, id));
            for (const auto& d : deliveries) {
              v1::WatchCampaignResponse r;
              *r.mutable_delivery() = ToProto(c.tenant, id, d);
              std::string now_sent = r.delivery().SerializeAsString();
              std::string& last = sent[d.account];
              if (last == now_sent) continue;
              last = std::move(now_sent);
              batch.push_back(std::move(r));
            }
            unsettled =
                std::any_of(deliveries.begin(), deliveries.end(), campaign::CancelUnsettled);
          }
          v1::WatchCampaignResponse r;
          *r.mutable_campaign() = ToProto(view);
          if (std::string now_sent = r.campaign().SerializeAsString(); now_sent != campaign_sent) {
            campaign_sent = std::move(now_sent);
            batch.push_back(std::move(r));
          }
          final_seen = campaign::IsFinal(view.state);
          ended = changed && final_seen && !unsettled;
        }
        // Read after the campaign, so the last figures of a stream that ends are at least as
        // recent as its final state.
        HERALD_CO_ASSIGN_OR_RETURN(campaign::CampaignFigures figures,
                                   co_await owner_.analytics_.CampaignStats(c.tenant, id));
        if (!figures_sent || *figures_sent != figures) {
          v1::WatchCampaignResponse r;
          *r.mutable_stats() = ToProto(c.tenant, id, figures);
          batch.push_back(std::move(r));
          figures_sent = std::move(figures);
        }
        Push(batch);
        if (ended && !follow_revenue_) co_return absl::OkStatus();
        co_await Pause();
      }
    }

    asio::awaitable<void> Pause() {
      timer_.expires_after(absl::ToChronoNanoseconds(owner_.watch_poll_));
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }

    CampaignServiceImpl& owner_;
    const std::string name_;
    const bool follow_revenue_;
    asio::steady_timer timer_;
  };

  Bridge& bridge_;
  campaign::Service& service_;
  campaign::Analytics& analytics_;
  const absl::Duration watch_poll_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeCampaignService(Bridge& bridge, campaign::Analytics& analytics,
                                                   absl::Duration watch_poll) {
  return std::make_unique<CampaignServiceImpl>(bridge, analytics, watch_poll);
}

}  // namespace herald::api
