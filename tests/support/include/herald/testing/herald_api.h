// Client-side steps end-to-end tests repeat against a running herald: authenticated contexts,
// a tenant with a key, a team on one of the simulator's teams with its accounts imported, a media
// asset, and the usual PPV campaign request.
//
//   auto key = CreateTenant(channel, kAdminKey, "acme");          // ASSERT_TRUE(key.ok())
//   auto team = CreateTeamWithAccounts(channel, *key, "acme", {.sim_team = 2});
//   team->accounts;                                                // "tenants/acme/accounts/…"
//
// Every call is blocking and carries its own deadline. Failures are values: a failed RPC comes
// back as an absl::Status with the RPC's code and message, prefixed with the step that failed;
// the tests decide whether that is an EXPECT or an ASSERT.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <herald/v1/account.pb.h>
#include <herald/v1/campaign.pb.h>
#include <herald/v1/media.pb.h>

namespace herald::testing {

// The deadline tests give one unary RPC.
inline constexpr absl::Duration kRpcTimeout = absl::Seconds(20);

// A context carrying `authorization: Bearer <key>` (no authorization at all when `key` is empty,
// for tests of unauthenticated calls) and a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> BearerContext(std::string_view key,
                                                   absl::Duration timeout = kRpcTimeout);

// Calls `method` ("/herald.v1.CampaignService/GetCampaign") with an empty request message, as a
// raw stream that a method of any kind accepts, reads whatever it answers, and returns the status
// the call ends with. For tests that try every method alike.
grpc::Status CallWithEmptyRequest(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::string& method, grpc::ClientContext& context);

// An insecure channel to `target` ("host:port") whose receive window stays small (16 KiB, no
// bandwidth probing): once its client stops reading a stream, the server's writes wait, as they
// would for a client on a slow network.
std::shared_ptr<grpc::Channel> SmallWindowChannel(const std::string& target);

// The last segment of a resource name: "acct_3" of "tenants/acme/accounts/acct_3" (for accounts,
// the upstream's id).
std::string ShortId(std::string_view name);

// Creates tenant `tenant_id` (with `display_name` when not empty) and an API key of it, with the
// platform admin's key. Returns the key's secret; an error if either call fails or no secret came
// back.
absl::StatusOr<std::string> CreateTenant(const std::shared_ptr<grpc::Channel>& channel,
                                         std::string_view admin_key, std::string_view tenant_id,
                                         std::string_view display_name = "",
                                         absl::Duration timeout = kRpcTimeout);

// Which simulator team a test team stands for, and how Herald may use it.
struct TeamSpec {
  std::string team_id = "main";
  int sim_team = 1;  // upstream key "sim-key-<sim_team>" (the simulator's teams count from 1)
  int32_t rate_limit_per_minute = 60000;  // 0 leaves it to Herald's default
  int32_t burst = 0;                      // 0 leaves it to Herald's default
  // The secret the team's webhooks are signed with, as for a webhook set up outside Herald; empty
  // leaves it to Herald.
  std::string webhook_signing_secret;
};

struct TeamWithAccounts {
  v1::Team team;                      // as CreateTeam returned it (webhook_id when registered)
  std::vector<std::string> accounts;  // account resource names, in SyncAccounts' order
};

// Creates team `spec.team_id` of tenant `tenant_id` with tenant key `key`, then SyncAccounts to
// import the upstream team's accounts.
absl::StatusOr<TeamWithAccounts> CreateTeamWithAccounts(
    const std::shared_ptr<grpc::Channel>& channel, std::string_view key, std::string_view tenant_id,
    const TeamSpec& spec = {}, absl::Duration timeout = kRpcTimeout);

// Creates a media asset of tenant `tenant_id` from `source_url`; returns its resource name.
absl::StatusOr<std::string> CreateMediaAsset(const std::shared_ptr<grpc::Channel>& channel,
                                             std::string_view key, std::string_view tenant_id,
                                             v1::MediaAsset::Type type,
                                             std::string_view source_url);

// A CreateCampaignRequest of tenant `tenant_id`: `text` priced `price_cents` with `media`, sent to
// the "fans" list of each of `accounts` (resource names). Callers add whatever else they test.
v1::CreateCampaignRequest CampaignToFans(std::string_view tenant_id,
                                         const std::vector<std::string>& accounts,
                                         std::string_view text, int64_t price_cents,
                                         std::string_view media);

// PauseCampaign and ResumeCampaign of campaign `name` (a resource name); the campaign the call
// answered.
absl::StatusOr<v1::Campaign> PauseCampaign(const std::shared_ptr<grpc::Channel>& channel,
                                           std::string_view key, std::string_view name);
absl::StatusOr<v1::Campaign> ResumeCampaign(const std::shared_ptr<grpc::Channel>& channel,
                                            std::string_view key, std::string_view name);

}  // namespace herald::testing
