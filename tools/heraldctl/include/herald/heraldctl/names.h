// Resource names from the command line.
//
// The rule: an argument containing '/' is a full resource name ("tenants/acme/campaigns/c1") and
// is used as is (it must start with "tenants/"); an argument without '/' is a short id, resolved
// in the tenant given by --tenant / HERALD_TENANT ("c1" -> "tenants/<tenant>/campaigns/c1").
// A short id without a tenant is a usage error that says so.
#pragma once

#include <string>
#include <string_view>

#include <absl/status/statusor.h>

namespace herald::heraldctl {

class Names {
 public:
  explicit Names(std::string tenant) : tenant_(std::move(tenant)) {}

  // "tenants/{tenant}" of --tenant.
  absl::StatusOr<std::string> Parent() const;
  // A tenant argument: "acme" or "tenants/acme" -> "tenants/acme".
  absl::StatusOr<std::string> Tenant(std::string_view arg) const;
  // `arg` in `collection` ("campaigns", "accounts", "teams", "media", "segments", "apiKeys").
  absl::StatusOr<std::string> Resolve(std::string_view collection, std::string_view arg) const;

 private:
  std::string tenant_;
};

// The last segment of a resource name: "tenants/acme/campaigns/c1" -> "c1".
std::string_view ShortId(std::string_view name);

}  // namespace herald::heraldctl
