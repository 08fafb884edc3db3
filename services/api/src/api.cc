// The API: the services over one bridge, with its metrics and tenant quota.
#include <herald/api/api.h>
#include <herald/campaign/analytics.h>
#include <herald/v1/account.grpc.pb.h>
#include <herald/v1/analytics.grpc.pb.h>
#include <herald/v1/audience.grpc.pb.h>
#include <herald/v1/automation.grpc.pb.h>
#include <herald/v1/campaign.grpc.pb.h>
#include <herald/v1/events.grpc.pb.h>
#include <herald/v1/media.grpc.pb.h>
#include <herald/v1/tenant.grpc.pb.h>

#include "automations.h"
#include "bridge.h"
#include "events.h"
#include "quota.h"
#include "services.h"

namespace herald::api {
namespace {

namespace asio = boost::asio;

class ApiImpl final : public Api {
 public:
  ApiImpl(asio::any_io_executor executor, campaign::Service& service,
          campaign::Analytics& analytics, automation::Automations& automations, ApiConfig config,
          metrics::Registry* registry)
      : metrics_(MakeRpcMetrics(registry)),
        quota_({.per_second = config.tenant_calls_per_second, .burst = config.tenant_burst},
               SystemClock::Get()),
        bridge_(std::move(executor), service, *metrics_, quota_.enabled() ? &quota_ : nullptr,
                StreamLimits{.max = config.max_streams,
                             .max_per_tenant = config.max_streams_per_tenant}),
        tenants_(MakeTenantService(bridge_)),
        accounts_(MakeAccountService(bridge_)),
        media_(MakeMediaService(bridge_, config.media_max_bytes, config.media_buffer_bytes)),
        audiences_(MakeAudienceService(bridge_)),
        campaigns_(MakeCampaignService(bridge_, analytics, config.watch_poll)),
        analytics_(MakeAnalyticsService(bridge_, analytics)),
        events_(MakeEventService(bridge_, analytics.messages())),
        automations_(MakeAutomationService(bridge_, automations)) {}

  std::vector<grpc::Service*> services() override {
    return {tenants_.get(),   accounts_.get(),  media_.get(),  audiences_.get(),
            campaigns_.get(), analytics_.get(), events_.get(), automations_.get()};
  }

  std::vector<std::string> service_names() const override {
    return {v1::TenantService::service_full_name(),   v1::AccountService::service_full_name(),
            v1::MediaService::service_full_name(),    v1::AudienceService::service_full_name(),
            v1::CampaignService::service_full_name(), v1::AnalyticsService::service_full_name(),
            v1::EventService::service_full_name(),    v1::AutomationService::service_full_name()};
  }

  asio::awaitable<void> Close(absl::Time deadline) override { co_await bridge_.Close(deadline); }

 private:
  std::unique_ptr<RpcMetrics> metrics_;
  TenantQuota quota_;
  Bridge bridge_;
  std::unique_ptr<grpc::Service> tenants_;
  std::unique_ptr<grpc::Service> accounts_;
  std::unique_ptr<grpc::Service> media_;
  std::unique_ptr<grpc::Service> audiences_;
  std::unique_ptr<grpc::Service> campaigns_;
  std::unique_ptr<grpc::Service> analytics_;
  std::unique_ptr<grpc::Service> events_;
  std::unique_ptr<grpc::Service> automations_;
};

}  // namespace

std::unique_ptr<Api> MakeApi(asio::any_io_executor executor, campaign::Service& service,
                             campaign::Analytics& analytics, automation::Automations& automations,
                             ApiConfig config, metrics::Registry* registry) {
  return std::make_unique<ApiImpl>(std::move(executor), service, analytics, automations, config,
                                   registry);
}

}  // namespace herald::api
