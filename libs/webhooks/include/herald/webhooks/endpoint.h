// The webhook endpoint of a team: the last segment of its ingest path,
// POST /webhooks/<tenant>.<team>. Kept apart from ingest.h so the API can name it without the
// receiver's dependencies.
#pragma once

#include <string>
#include <string_view>

#include <herald/common/strings.h>

namespace herald::webhooks {

// Ids of tenants and teams never contain '.'.
inline std::string EndpointId(std::string_view tenant, std::string_view team) {
  return StrCat(tenant, ".", team);
}

}  // namespace herald::webhooks
