#include <herald/common/strings.h>
#include <herald/heraldctl/names.h>

namespace herald::heraldctl {
namespace {

absl::Status CheckFull(std::string_view name) {
  if (name.rfind("tenants/", 0) != 0 || name.back() == '/') {
    return absl::InvalidArgumentError(
        StrCat("'", name, "' is not a resource name (tenants/{tenant}/...) or a short id"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> Names::Parent() const {
  if (tenant_.empty()) {
    return absl::InvalidArgumentError(
        "no tenant: pass --tenant=ID or set HERALD_TENANT (or give full resource names)");
  }
  if (tenant_.find('/') != std::string::npos) return Tenant(tenant_);
  return StrCat("tenants/", tenant_);
}

absl::StatusOr<std::string> Names::Tenant(std::string_view arg) const {
  if (arg.empty()) return absl::InvalidArgumentError("empty tenant id");
  if (arg.find('/') == std::string_view::npos) return StrCat("tenants/", arg);
  if (absl::Status status = CheckFull(arg); !status.ok()) return status;
  if (arg.find('/', 8) != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat("'", arg, "' is not a tenant name (tenants/{id})"));
  }
  return std::string(arg);
}

absl::StatusOr<std::string> Names::Resolve(std::string_view collection,
                                           std::string_view arg) const {
  if (arg.empty()) return absl::InvalidArgumentError(StrCat("empty ", collection, " id"));
  if (arg.find('/') != std::string_view::npos) {
    if (absl::Status status = CheckFull(arg); !status.ok()) return status;
    return std::string(arg);
  }
  absl::StatusOr<std::string> parent = Parent();
  if (!parent.ok()) {
    return absl::InvalidArgumentError(
        StrCat("short name '", arg, "' needs a tenant: pass --tenant=ID or set HERALD_TENANT"));
  }
  return StrCat(*parent, "/", collection, "/", arg);
}

std::string_view ShortId(std::string_view name) {
  const size_t slash = name.rfind('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

}  // namespace herald::heraldctl
