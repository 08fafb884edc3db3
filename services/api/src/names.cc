#include "names.h"

#include <absl/strings/ascii.h>

#include <herald/common/strings.h>
#include <herald/upstream/ids.h>

namespace herald::api {
namespace {

// Server-made ids (ULIDs) and client-chosen ones share this alphabet.
bool IsIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
}

absl::Status ValidateIdSegment(std::string_view field, std::string_view id) {
  if (id.empty() || id.size() > 80 || !std::all_of(id.begin(), id.end(), IsIdChar)) {
    return absl::InvalidArgumentError(StrCat(field, ": '", id, "' is not a valid id"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ParseTenantName(std::string_view field, std::string_view name) {
  constexpr std::string_view kPrefix = "tenants/";
  if (name.empty()) return absl::InvalidArgumentError(StrCat(field, " is required"));
  if (!name.starts_with(kPrefix) || name.find('/', kPrefix.size()) != std::string_view::npos) {
    return absl::InvalidArgumentError(
        StrCat(field, ": '", name, "' is not a tenant name (tenants/{tenant})"));
  }
  std::string_view id = name.substr(kPrefix.size());
  if (absl::Status s = ValidateIdSegment(field, id); !s.ok()) return s;
  return std::string(id);
}

absl::StatusOr<ChildName> ParseChildName(std::string_view field, std::string_view name,
                                         std::string_view collection) {
  if (name.empty()) return absl::InvalidArgumentError(StrCat(field, " is required"));
  const std::string bad = StrCat(
      field, ": '", name, "' is not a name of the form tenants/{tenant}/", collection, "/{id}");
  std::vector<std::string_view> parts = StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "tenants" || parts[2] != collection) {
    return absl::InvalidArgumentError(bad);
  }
  if (!ValidateIdSegment(field, parts[1]).ok() || !ValidateIdSegment(field, parts[3]).ok()) {
    return absl::InvalidArgumentError(bad);
  }
  return ChildName{std::string(parts[1]), std::string(parts[3])};
}

absl::StatusOr<std::string> OwnId(std::string_view caller_tenant, std::string_view field,
                                  std::string_view name, std::string_view collection) {
  absl::StatusOr<ChildName> parsed = ParseChildName(field, name, collection);
  if (!parsed.ok()) return parsed.status();
  if (parsed->tenant != caller_tenant) return absl::NotFoundError(StrCat("'", name, "' not found"));
  return std::move(parsed->id);
}

absl::StatusOr<DeliveryName> OwnDelivery(std::string_view caller_tenant, std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("name is required");
  std::vector<std::string_view> parts = StrSplit(name, '/');
  if (parts.size() != 6 || parts[0] != "tenants" || parts[2] != "campaigns" ||
      parts[4] != "deliveries" || !ValidateIdSegment("name", parts[1]).ok() ||
      !ValidateIdSegment("name", parts[3]).ok() || !ValidateAccountId("name", parts[5]).ok()) {
    return absl::InvalidArgumentError(
        StrCat("name: '", name,
               "' is not a name of the form tenants/{tenant}/campaigns/{campaign}/deliveries/"
               "{account}"));
  }
  if (parts[1] != caller_tenant) return absl::NotFoundError(StrCat("'", name, "' not found"));
  return DeliveryName{std::string(parts[3]), std::string(parts[5])};
}

absl::Status OwnParent(std::string_view caller_tenant, std::string_view parent) {
  absl::StatusOr<std::string> tenant = ParseTenantName("parent", parent);
  if (!tenant.ok()) return tenant.status();
  if (*tenant != caller_tenant) return absl::NotFoundError(StrCat("'", parent, "' not found"));
  return absl::OkStatus();
}

std::string TenantName(std::string_view tenant) { return StrCat("tenants/", tenant); }

std::string ChildNameOf(std::string_view tenant, std::string_view collection, std::string_view id) {
  return StrCat("tenants/", tenant, "/", collection, "/", id);
}

absl::Status ValidateSlug(std::string_view field, std::string_view id) {
  const bool ok = !id.empty() && id.size() <= 40 && absl::ascii_islower(id[0]) &&
                  std::all_of(id.begin(), id.end(), [](char c) {
                    return absl::ascii_islower(static_cast<unsigned char>(c)) ||
                           absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-';
                  });
  if (!ok) {
    return absl::InvalidArgumentError(StrCat(
        field, ": '", id, "' must be 1-40 characters of a-z, 0-9 and '-', starting with a letter"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAccountId(std::string_view field, std::string_view id) {
  if (!upstream::IsAccountId(id)) {
    return absl::InvalidArgumentError(
        StrCat(field, ": '", id,
               "' is not an upstream account id (acct_ then 1-64 letters or "
               "digits)"));
  }
  return absl::OkStatus();
}

}  // namespace herald::api
