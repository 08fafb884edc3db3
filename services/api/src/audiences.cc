// AudienceService: an account's upstream lists and Herald segments.

#include <algorithm>

#include <absl/strings/ascii.h>
#include <absl/strings/numbers.h>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/v1/audience.grpc.pb.h>

#include "bridge.h"
#include "convert.h"
#include "names.h"
#include "paging.h"
#include "services.h"

namespace herald::api {
namespace {

using campaign::Caller;
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

class AudienceServiceImpl final : public v1::AudienceService::CallbackService {
 public:
  explicit AudienceServiceImpl(Bridge& bridge) : bridge_(bridge), service_(bridge.service()) {}

  ServerUnaryReactor* ListUserLists(CallbackServerContext* ctx, const v1::ListUserListsRequest* req,
                                    v1::ListUserListsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListUserLists", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListUserListsResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string account,
                                     OwnId(c.tenant, "account", req->account(), "accounts"));
          HERALD_CO_ASSIGN_OR_RETURN(
              const int limit, ParsePageSize(req->page_size(), campaign::Service::kMaxUserListPage,
                                             campaign::Service::kMaxUserListPage));
          const uint64_t fingerprint = Fingerprint(StrCat("lists/", req->account()));
          HERALD_CO_ASSIGN_OR_RETURN(std::string after,
                                     DecodePageToken(req->page_token(), fingerprint));
          int offset = 0;
          if (!after.empty() && (!absl::SimpleAtoi(after, &offset) || offset < 0)) {
            co_return absl::InvalidArgumentError("page_token: malformed");
          }
          HERALD_CO_ASSIGN_OR_RETURN(
              auto page, co_await service_.ListUserLists(c.tenant, account, offset, limit));
          v1::ListUserListsResponse out;
          for (const auto& l : page.first) {
            v1::UserList* list = out.add_user_lists();
            list->set_id(l.id);
            list->set_display_name(l.name);
            list->set_type(l.type);
            list->set_fan_count(l.users_count);
          }
          if (page.second) {
            out.set_next_page_token(EncodePageToken(
                std::to_string(offset + static_cast<int>(page.first.size())), fingerprint));
          }
          co_return out;
        });
  }

  ServerUnaryReactor* CreateUserList(CallbackServerContext* ctx,
                                     const v1::CreateUserListRequest* req,
                                     v1::UserList* resp) override {
    return bridge_.Unary(
        ctx, "CreateUserList", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::UserList> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string account,
                                     OwnId(c.tenant, "account", req->account(), "accounts"));
          // The upstream refuses a blank name only after the call has been paid for.
          HERALD_CO_RETURN_IF_ERROR(ValidateListName("display_name", req->display_name()));
          HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(req->request_id()));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto l, co_await service_.CreateUserList(c.tenant, account, req->display_name(),
                                                       req->request_id()));
          v1::UserList out;
          out.set_id(l.id);
          out.set_display_name(l.name);
          out.set_type(l.type);
          out.set_fan_count(l.users_count);
          co_return out;
        });
  }

  ServerUnaryReactor* AddFansToUserList(CallbackServerContext* ctx,
                                        const v1::AddFansToUserListRequest* req,
                                        v1::AddFansToUserListResponse* resp) override {
    return bridge_.Unary(
        ctx, "AddFansToUserList", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::AddFansToUserListResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string account,
                                     OwnId(c.tenant, "account", req->account(), "accounts"));
          if (!IsCustomListId(req->user_list_id())) {
            co_return absl::InvalidArgumentError(
                StrCat("user_list_id: a custom list's numeric id is required (got '",
                       Utf8Prefix(req->user_list_id(), 40), "')"));
          }
          if (req->fan_ids_size() < 1 || req->fan_ids_size() > 10000) {
            co_return absl::InvalidArgumentError("fan_ids: give 1-10000 fan ids");
          }
          std::vector<int64_t> fans;
          for (int i = 0; i < req->fan_ids_size(); ++i) {
            if (req->fan_ids(i) <= 0) {
              co_return absl::InvalidArgumentError(StrCat("fan_ids[", i, "]: must be > 0"));
            }
            fans.push_back(req->fan_ids(i));
          }
          HERALD_CO_ASSIGN_OR_RETURN(auto added,
                                     co_await service_.AddFansToUserList(
                                         c.tenant, account, req->user_list_id(), std::move(fans)));
          v1::AddFansToUserListResponse out;
          out.set_batches(added.first);
          out.set_fans_added(added.second);
          co_return out;
        });
  }

  ServerUnaryReactor* CreateSegment(CallbackServerContext* ctx, const v1::CreateSegmentRequest* req,
                                    v1::Segment* resp) override {
    return bridge_.Unary(
        ctx, "CreateSegment", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Segment> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(store::RequestId request_id, CreateRequestId(*req));
          HERALD_CO_ASSIGN_OR_RETURN(store::Segment segment,
                                     ParseSegment(c.tenant, req->segment()));
          HERALD_CO_ASSIGN_OR_RETURN(auto created, co_await service_.CreateSegment(
                                                       std::move(segment), std::move(request_id)));
          co_return ToProto(created.value);
        });
  }

  ServerUnaryReactor* GetSegment(CallbackServerContext* ctx, const v1::GetSegmentRequest* req,
                                 v1::Segment* resp) override {
    return bridge_.Unary(
        ctx, "GetSegment", resp, Access::kTenant, [this, req](const Caller& c) -> Op<v1::Segment> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id,
                                     OwnId(c.tenant, "name", req->name(), "segments"));
          HERALD_CO_ASSIGN_OR_RETURN(auto s, co_await service_.GetSegment(c.tenant, id));
          co_return ToProto(s);
        });
  }

  ServerUnaryReactor* ListSegments(CallbackServerContext* ctx, const v1::ListSegmentsRequest* req,
                                   v1::ListSegmentsResponse* resp) override {
    return bridge_.Unary(ctx, "ListSegments", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::ListSegmentsResponse> {
                           HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
                           HERALD_CO_ASSIGN_OR_RETURN(auto all,
                                                      co_await service_.ListSegments(c.tenant));
                           co_return ListPage<v1::ListSegmentsResponse>(
                               *req, std::move(all), [](const store::Segment& s) { return s.id; },
                               Fingerprint(StrCat("segments/", c.tenant)),
                               [](v1::ListSegmentsResponse& out, const store::Segment& s) {
                                 *out.add_segments() = ToProto(s);
                               });
                         });
  }

  ServerUnaryReactor* UpdateSegment(CallbackServerContext* ctx, const v1::UpdateSegmentRequest* req,
                                    v1::Segment* resp) override {
    return bridge_.Unary(
        ctx, "UpdateSegment", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::Segment> {
          HERALD_CO_ASSIGN_OR_RETURN(SegmentUpdate update, ParseSegmentUpdate(c.tenant, *req));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto s,
              co_await service_.UpdateSegment(std::move(update.segment), std::move(update.fields)));
          co_return ToProto(s);
        });
  }

  ServerUnaryReactor* DeleteSegment(CallbackServerContext* ctx, const v1::DeleteSegmentRequest* req,
                                    v1::DeleteSegmentResponse* resp) override {
    return bridge_.Unary(ctx, "DeleteSegment", resp, Access::kTenant,
                         [this, req](const Caller& c) -> Op<v1::DeleteSegmentResponse> {
                           HERALD_CO_ASSIGN_OR_RETURN(
                               std::string id, OwnId(c.tenant, "name", req->name(), "segments"));
                           auto deleted = co_await service_.DeleteSegment(c.tenant, id);
                           HERALD_CO_RETURN_IF_ERROR(deleted.status());
                           co_return v1::DeleteSegmentResponse();
                         });
  }

 private:
  Bridge& bridge_;
  campaign::Service& service_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeAudienceService(Bridge& bridge) {
  return std::make_unique<AudienceServiceImpl>(bridge);
}

}  // namespace herald::api
