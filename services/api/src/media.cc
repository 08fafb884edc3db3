// MediaService: media assets from a URL or uploaded bytes (client streaming).

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <utility>

#include <absl/container/flat_hash_map.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <herald/common/log.h>
#include <herald/common/status.h>
#include <herald/common/strings.h>
#include <herald/store/crypto.h>
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
  MediaServiceImpl(Bridge& bridge, int64_t max_bytes, int64_t buffer_bytes)
      : bridge_(bridge),
        service_(bridge.service()),
        max_bytes_(max_bytes),
        buffer_bytes_(buffer_bytes),
        tenant_share_(std::max(max_bytes, buffer_bytes / 2)) {}

  ServerUnaryReactor* CreateMediaAsset(CallbackServerContext* ctx,
                                       const v1::CreateMediaAssetRequest* req,
                                       v1::MediaAsset* resp) override {
    return bridge_.Unary(
        ctx, "CreateMediaAsset", resp, Access::kTenant,
        [this, req](const Caller& c) -> Op<v1::MediaAsset> {
          HERALD_CO_RETURN_IF_ERROR(OwnParent(c.tenant, req->parent()));
          HERALD_CO_ASSIGN_OR_RETURN(store::RequestId request_id, CreateRequestId(*req));
          HERALD_CO_ASSIGN_OR_RETURN(store::MediaAsset asset,
                                     ParseMediaAsset(c.tenant, req->media_asset(), false));
          HERALD_CO_ASSIGN_OR_RETURN(auto created,
                                     co_await service_.CreateMediaAsset(
                                         std::move(asset), std::move(request_id), std::nullopt));
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
              Fingerprint(StrCat("media/", c.tenant)),
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
  // Authenticates the caller, then reads and checks the metadata (its parent must be the
  // caller's), then chunks up to the limit, then stores the asset through the bridge: nothing is
  // buffered for a caller or metadata that is refused.
  class UploadReactor final : public grpc::ServerReadReactor<v1::UploadMediaAssetRequest> {
   public:
    UploadReactor(MediaServiceImpl* owner, CallbackServerContext* ctx, v1::MediaAsset* resp)
        : owner_(owner), ctx_(ctx), resp_(resp), start_(absl::Now()) {
      GateHolder hold(owner_->bridge_.gate());
      if (!hold) {
        End(ShuttingDownError());
        return;
      }
      hold_ = std::move(hold);
      asio::co_spawn(
          owner_->bridge_.executor(),
          [this, bearer = BearerOf(*ctx)]() -> asio::awaitable<void> {
            absl::StatusOr<Caller> caller =
                co_await owner_->bridge_.Admit(std::move(bearer), Access::kTenant);
            if (!caller.ok()) {
              End(caller.status());  // last use of `this`: OnDone may delete it at once
              co_return;
            }
            caller_ = *std::move(caller);
            StartRead(&request_);
          },
          asio::detached);
    }

    void OnReadDone(bool ok) override {
      if (!ok) {  // the client finished sending, or the call was cancelled
        if (Cancelled()) {
          End(absl::CancelledError("the upload was cancelled; nothing is stored"));
          return;
        }
        Store();
        return;
      }
      if (!have_metadata_) {
        if (!request_.has_metadata()) {
          End(absl::InvalidArgumentError("metadata: the first message must carry it"));
          return;
        }
        metadata_ = request_.metadata();
        have_metadata_ = true;
        if (absl::Status own = OwnParent(caller_.tenant, metadata_.parent()); !own.ok()) {
          End(own);
          return;
        }
        // Refused metadata ends the call before any byte is buffered.
        if (absl::Status id = ValidateRequestId(metadata_.request_id()); !id.ok()) {
          End(id);
          return;
        }
        absl::StatusOr<store::MediaAsset> asset =
            ParseMediaAsset(caller_.tenant, metadata_.media_asset(), true);
        if (!asset.ok()) {
          End(asset.status());
          return;
        }
        asset_ = *std::move(asset);
      } else {
        if (!request_.has_chunk() && request_.has_metadata()) {
          End(absl::InvalidArgumentError("metadata: only the first message carries it"));
          return;
        }
        const auto chunk = static_cast<int64_t>(request_.chunk().size());
        if (static_cast<int64_t>(bytes_.size()) + chunk > owner_->max_bytes_) {
          End(absl::ResourceExhaustedError(
              StrCat("chunk: the upload exceeds the limit of ", owner_->max_bytes_, " bytes")));
          return;
        }
        if (absl::Status taken = owner_->TakeBuffer(caller_.tenant, chunk); !taken.ok()) {
          End(WithRetryInfo(taken, absl::Seconds(1)));
          return;
        }
        taken_ += chunk;
        bytes_ += request_.chunk();
      }
      StartRead(&request_);
    }

    void OnCancel() override { cancelled_.store(true, std::memory_order_relaxed); }

    void OnDone() override {
      // Cancelled after this call stored the asset, before its answer reached the client (which
      // saw the call fail): the asset nobody was told of goes, unless the upload carried a
      // request_id, whose retry is answered with this asset. (A replayed request stored none.)
      if (!created_id_.empty() && metadata_.request_id().empty() && ctx_->IsCancelled()) {
        owner_->Forget(caller_.tenant, created_id_);
      }
      owner_->GiveBackBuffer(caller_.tenant, taken_);  // 0 once End has run
      delete this;
    }

   private:
    // Ends the call (the last use of `this`: OnDone may delete it at once).
    void End(const absl::Status& status) {
      // No read is pending and the bytes are no longer needed: the buffer they held is free
      // for the next upload now, not when gRPC is done with the call.
      owner_->GiveBackBuffer(caller_.tenant, std::exchange(taken_, 0));
      const grpc::Status api_status = ToGrpcStatus(status);
      owner_->bridge_.metrics().Record("UploadMediaAsset", api_status.error_code(),
                                       absl::Now() - start_);
      Finish(api_status);
    }

    void Store() {
      asio::co_spawn(
          owner_->bridge_.executor(),
          [this]() -> asio::awaitable<void> {
            const absl::Status status = co_await Run();
            End(status);
          },
          asio::detached);
    }

    asio::awaitable<absl::Status> Run() {
      if (!have_metadata_) co_return absl::InvalidArgumentError("metadata: required");
      if (bytes_.empty()) co_return absl::InvalidArgumentError("chunk: the file is empty");
      store::MediaAsset asset = std::move(asset_);
      HERALD_CO_RETURN_IF_ERROR(CheckUploadedBytes(bytes_, asset.type));
      // The bytes' digest is the asset's, and a retry must send the same bytes.
      asset.sha256 = store::Sha256Hex(bytes_);
      HERALD_CO_ASSIGN_OR_RETURN(store::RequestId request_id,
                                 CreateRequestId(metadata_, asset.sha256));
      if (Cancelled())
        co_return absl::CancelledError("the upload was cancelled; nothing is stored");
      HERALD_CO_ASSIGN_OR_RETURN(auto created,
                                 co_await owner_->service_.CreateMediaAsset(
                                     std::move(asset), std::move(request_id), std::move(bytes_)));
      if (!created.replayed) created_id_ = created.value.id;
      *resp_ = ToProto(created.value);
      co_return absl::OkStatus();
    }

    // Whether the client cancelled the call or its deadline passed. Either also ends the reads,
    // so that the bytes read may be cut short.
    bool Cancelled() const {
      return cancelled_.load(std::memory_order_relaxed) || ctx_->IsCancelled();
    }

    MediaServiceImpl* owner_;
    CallbackServerContext* ctx_;
    v1::MediaAsset* resp_;
    const absl::Time start_;
    // The API's gate, entered from the call's start until gRPC is done with it: a drain waits
    // for an upload in progress (until its deadline, when gRPC cancels the call) rather than
    // refusing it at the end.
    GateHolder hold_;
    Caller caller_;  // set before the first read
    v1::UploadMediaAssetRequest request_;
    v1::UploadMediaAssetRequest::Metadata metadata_;
    store::MediaAsset asset_;  // parsed from the metadata
    bool have_metadata_ = false;
    std::string bytes_;
    int64_t taken_ = 0;  // of the service's upload buffer, for bytes_
    std::atomic<bool> cancelled_{false};
    std::string created_id_;  // the asset this call stored, if it stored one
  };

  // Takes `n` bytes of the upload buffer for an upload of `tenant`, if the buffer and the
  // tenant's share of it (half, or one upload's limit if more) have that many left; otherwise
  // RESOURCE_EXHAUSTED saying which. A tenant's uploads left open never hold the whole buffer.
  absl::Status TakeBuffer(const std::string& tenant, int64_t n) {
    std::lock_guard lock(buffer_mu_);
    if (buffered_ + n > buffer_bytes_) {
      return absl::ResourceExhaustedError(
          StrCat("the uploads in progress on this server hold its ", buffer_bytes_,
                 " bytes of upload buffer; nothing is stored, retry later"));
    }
    auto [it, added] = held_by_tenant_.try_emplace(tenant, 0);
    if (it->second + n > tenant_share_) {
      if (added) held_by_tenant_.erase(it);
      return absl::ResourceExhaustedError(
          StrCat("the uploads of tenant '", tenant, "' in progress on this server hold its share (",
                 tenant_share_, " bytes) of the upload buffer; nothing is stored, retry later"));
    }
    it->second += n;
    buffered_ += n;
    return absl::OkStatus();
  }
  void GiveBackBuffer(const std::string& tenant, int64_t n) {
    if (n == 0) return;
    std::lock_guard lock(buffer_mu_);
    buffered_ -= n;
    auto it = held_by_tenant_.find(tenant);
    if (it != held_by_tenant_.end() && (it->second -= n) <= 0) held_by_tenant_.erase(it);
  }

  // Deletes asset `id` of `tenant`, which a cancelled upload stored. Called by the upload while
  // it holds its entry of the gate, so the deletion runs even while the API closes.
  void Forget(std::string tenant, std::string id) {
    GateHolder hold = GateHolder::Nested(bridge_.gate());
    asio::co_spawn(
        bridge_.executor(),
        [this, hold = std::move(hold), tenant = std::move(tenant),
         id = std::move(id)]() -> asio::awaitable<void> {
          absl::StatusOr<bool> deleted = co_await service_.DeleteMediaAsset(tenant, id);
          if (!deleted.ok()) {
            log::Warn("could not delete the asset of a cancelled upload",
                      {{"tenant", tenant}, {"media", id}, {"error", deleted.status().message()}});
          }
        },
        asio::detached);
  }

  Bridge& bridge_;
  campaign::Service& service_;
  const int64_t max_bytes_;
  const int64_t buffer_bytes_;
  const int64_t tenant_share_;  // of buffer_bytes_, the most one tenant's uploads hold at once
  std::mutex buffer_mu_;
  int64_t buffered_ = 0;  // held by the uploads in progress; guarded by buffer_mu_
  absl::flat_hash_map<std::string, int64_t> held_by_tenant_;  // guarded by buffer_mu_
};

}  // namespace

std::unique_ptr<grpc::Service> MakeMediaService(Bridge& bridge, int64_t max_bytes,
                                                int64_t buffer_bytes) {
  return std::make_unique<MediaServiceImpl>(bridge, max_bytes, buffer_bytes);
}

}  // namespace herald::api
