// Resource names of the API ("tenants/acme/campaigns/01h…") and the ids inside them.
#pragma once

#include <string>
#include <string_view>

#include <absl/status/statusor.h>

namespace herald::api {

// "tenants/{tenant}" -> tenant. kInvalidArgument naming `field` otherwise.
absl::StatusOr<std::string> ParseTenantName(std::string_view field, std::string_view name);

struct ChildName {
  std::string tenant;
  std::string id;
};
// "tenants/{tenant}/{collection}/{id}".
absl::StatusOr<ChildName> ParseChildName(std::string_view field, std::string_view name,
                                         std::string_view collection);

// The id of resource `name` in `collection` of `caller_tenant`; a name of another tenant is
// kNotFound, exactly like a missing one (tenants never learn of each other's resources).
absl::StatusOr<std::string> OwnId(std::string_view caller_tenant, std::string_view field,
                                  std::string_view name, std::string_view collection);
struct DeliveryName {
  std::string campaign;
  std::string account;
};
// "tenants/{caller_tenant}/campaigns/{campaign}/deliveries/{account}" (field "name") -> the
// campaign and account ids; kInvalidArgument for another shape, kNotFound for another tenant.
absl::StatusOr<DeliveryName> OwnDelivery(std::string_view caller_tenant, std::string_view name);

// OK when `parent` is "tenants/{caller_tenant}"; kNotFound for another tenant.
absl::Status OwnParent(std::string_view caller_tenant, std::string_view parent);

std::string TenantName(std::string_view tenant);
std::string ChildNameOf(std::string_view tenant, std::string_view collection, std::string_view id);

// Ids a client chooses: tenants and teams: 1-40 of [a-z0-9-], starting with a letter; accounts:
// "acct_" then 1-64 letters or digits.
absl::Status ValidateSlug(std::string_view field, std::string_view id);
absl::Status ValidateAccountId(std::string_view field, std::string_view id);

}  // namespace herald::api
