// Paging over a list read whole: opaque page tokens bound to the listing they came from.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/status/statusor.h>

#include <herald/common/status.h>

#include "convert.h"

namespace herald::api {

// Pages over a sorted vector by the id of the last element returned.
template <typename T, typename IdOf>
absl::StatusOr<std::pair<std::vector<T>, std::string>> Page(std::vector<T> all, IdOf id_of,
                                                            int32_t page_size,
                                                            const std::string& token,
                                                            uint64_t fingerprint) {
  HERALD_ASSIGN_OR_RETURN(int size, ParsePageSize(page_size, 100, 1000));
  HERALD_ASSIGN_OR_RETURN(std::string after, DecodePageToken(token, fingerprint));
  std::vector<T> out;
  std::string next;
  for (T& item : all) {
    if (!after.empty() && id_of(item) <= after) continue;
    if (static_cast<int>(out.size()) == size) {
      next = EncodePageToken(id_of(out.back()), fingerprint);
      break;
    }
    out.push_back(std::move(item));
  }
  return std::make_pair(std::move(out), std::move(next));
}

inline uint64_t Fingerprint(std::string_view s) { return std::hash<std::string_view>{}(s); }

// A List method's response: one page of `all` (sorted by `id_of`) as the request's page size and
// token ask, each item added to the response by `add(response, item)`, and the next page's
// token.
template <typename Response, typename Request, typename T, typename IdOf, typename Add>
absl::StatusOr<Response> ListPage(const Request& req, std::vector<T> all, IdOf id_of,
                                  uint64_t fingerprint, Add add) {
  HERALD_ASSIGN_OR_RETURN(
      auto page, Page(std::move(all), id_of, req.page_size(), req.page_token(), fingerprint));
  Response out;
  for (const T& item : page.first) add(out, item);
  out.set_next_page_token(std::move(page.second));
  return out;
}

}  // namespace herald::api
