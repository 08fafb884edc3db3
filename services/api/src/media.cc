// MediaService: media assets from a URL or uploaded bytes (client streaming).

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/v1/media.grpc.pb.h>

#include "bridge.h"
#include "convert.h"
#include "names.h"
#include "paging.h"
#include "services.h"

namespace herald::api {
namespace {

namespace asio = boost::asio;
using campaign::Caller;
using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

class MediaServiceImpl final : public v1::MediaService::CallbackService {
 public:
  MediaServiceImpl(Bridge& bridge, int64_t max_bytes)
      : bridge_(bridge), service_(bridge.service()), max_bytes_(max_bytes) {}

  ServerUnaryReactor* CreateMediaAsset(CallbackServerContext* ctx,
                                       const v1::CreateMediaAssetRequest* req,
                                       v1::MediaAsset* resp) override {
    return bridge_.Unary(
        ctx, "CreateMediaAsset", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::MediaAsset> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(req->request_id()));
          HERALD_CO_ASSIGN_OR_RETURN(store::MediaAsset asset,
                                     ParseMediaAsset(c.tenant, req->media_asset(), false));
          HERALD_CO_ASSIGN_OR_RETURN(
              auto created, co_await service_.CreateMediaAsset(std::move(asset), req->request_id(),
                                                               std::nullopt));
          co_return ToProto(created.value);
        });
  }

  grpc::ServerReadReactor<v1::UploadMediaAssetRequest>* UploadMediaAsset(
      CallbackServerContext* ctx, v1::MediaAsset* resp) override {
    return new UploadReactor(this, ctx, resp);
  }

  ServerUnaryReactor* GetMediaAsset(CallbackServerContext* ctx, const v1::GetMediaAssetRequest* req,
                                    v1::MediaAsset* resp) override {
    return bridge_.Unary(
        ctx, "GetMediaAsset", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::MediaAsset> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", req->name(), "media"));
          HERALD_CO_ASSIGN_OR_RETURN(auto m, co_await service_.GetMediaAsset(c.tenant, id));
          co_return ToProto(m);
        });
  }

  ServerUnaryReactor* ListMediaAssets(CallbackServerContext* ctx,
                                      const v1::ListMediaAssetsRequest* req,
                                      v1::ListMediaAssetsResponse* resp) override {
    return bridge_.Unary(
        ctx, "ListMediaAssets", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::ListMediaAssetsResponse> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(auto all, co_await service_.ListMediaAssets(c.tenant));
          co_return ListPage<v1::ListMediaAssetsResponse>(
              *req, std::move(all), [](const store::MediaAsset& m) { return m.id; },
              Fingerprint("media"),
              [](v1::ListMediaAssetsResponse& out, const store::MediaAsset& m) {
                *out.add_media_assets() = ToProto(m);
              });
        });
  }

  ServerUnaryReactor* DeleteMediaAsset(CallbackServerContext* ctx,
                                       const v1::DeleteMediaAssetRequest* req,
                                       v1::DeleteMediaAssetResponse* resp) override {
    return bridge_.Unary(
        ctx, "DeleteMediaAsset", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::DeleteMediaAssetResponse> {
          HERALD_CO_ASSIGN_OR_RETURN(std::string id, OwnId(c.tenant, "name", req->name(), "media"));
          HERALD_CO_RETURN_IF_ERROR((co_await service_.DeleteMediaAsset(c.tenant, id)).status());
          co_return v1::DeleteMediaAssetResponse();
        });
  }

 private:
  // Reads the metadata, then chunks up to the limit, then stores the asset through the bridge.
  class UploadReactor final : public grpc::ServerReadReactor<v1::UploadMediaAssetRequest> {
   public:
    UploadReactor(MediaServiceImpl* owner, CallbackServerContext* ctx, v1::MediaAsset* resp)
        : owner_(owner), ctx_(ctx), resp_(resp), bearer_(BearerOf(*ctx)) {
      StartRead(&request_);
    }

    void OnReadDone(bool ok) override {
      if (!ok) {  // the client finished sending
        Store();
        return;
      }
      if (!have_metadata_) {
        if (!request_.has_metadata()) {
          Fail(absl::InvalidArgumentError("the first message must carry metadata"));
          return;
        }
        metadata_ = request_.metadata();
        have_metadata_ = true;
      } else {
        if (!request_.has_chunk() && request_.has_metadata()) {
          Fail(absl::InvalidArgumentError("metadata may only come first"));
          return;
        }
        if (static_cast<int64_t>(bytes_.size() + request_.chunk().size()) > owner_->max_bytes_) {
          Fail(absl::ResourceExhaustedError(
              StrCat("the upload exceeds the limit of ", owner_->max_bytes_, " bytes")));
          return;
        }
        bytes_ += request_.chunk();
      }
      StartRead(&request_);
    }

    void OnDone() override { delete this; }

   private:
    void Fail(const absl::Status& status) { Finish(ToApiStatus(status)); }

    void Store() {
      GateHolder hold(owner_->bridge_.gate());
      if (!hold) return Fail(ShuttingDownError());
      asio::co_spawn(
          owner_->bridge_.executor(),
          [this, hold = std::move(hold)]() -> asio::awaitable<void> {
            absl::Status status = co_await Run();
            Finish(ToApiStatus(status));  // last use of `this`: OnDone may delete it at once
          },
          asio::detached);
    }

    asio::awaitable<absl::Status> Run() {
      if (!have_metadata_) co_return absl::InvalidArgumentError("metadata is required");
      HERALD_CO_ASSIGN_OR_RETURN(Caller c,
                                 co_await owner_->bridge_.Admit(bearer_, Access::kTenant));
      HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, metadata_.parent()));
      HERALD_CO_RETURN_IF_ERROR(ValidateRequestId(metadata_.request_id()));
      if (bytes_.empty()) co_return absl::InvalidArgumentError("chunk: the file is empty");
      HERALD_CO_ASSIGN_OR_RETURN(store::MediaAsset asset,
                                 ParseMediaAsset(c.tenant, metadata_.media_asset(), true));
      HERALD_CO_ASSIGN_OR_RETURN(auto created,
                                 co_await owner_->service_.CreateMediaAsset(
                                     std::move(asset), metadata_.request_id(), std::move(bytes_)));
      *resp_ = ToProto(created.value);
      co_return absl::OkStatus();
    }

    MediaServiceImpl* owner_;
    CallbackServerContext* ctx_;
    v1::MediaAsset* resp_;
    std::string bearer_;
    v1::UploadMediaAssetRequest request_;
    v1::UploadMediaAssetRequest::Metadata metadata_;
    bool have_metadata_ = false;
    std::string bytes_;
  };

  Bridge& bridge_;
  campaign::Service& service_;
  const int64_t max_bytes_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeMediaService(Bridge& bridge, int64_t max_bytes) {
  return std::make_unique<MediaServiceImpl>(bridge, max_bytes);
}

}  // namespace herald::api
