// A minimal multipart/form-data reader (RFC 7578) for the media upload endpoint.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace herald::upstream_sim {

struct FormPart {
  std::string name;          // from Content-Disposition
  std::string filename;      // empty for plain fields
  std::string content_type;  // empty when the part has none
  std::string_view data;     // points into the body passed to ParseMultipart
};

// The boundary parameter of a `multipart/form-data; boundary=...` Content-Type, quoted or not.
// InvalidArgument when the type is not multipart/form-data or has no boundary.
absl::StatusOr<std::string> MultipartBoundary(std::string_view content_type);

// Splits `body` into its parts. InvalidArgument when the framing is broken (no opening or closing
// boundary, a part without a blank line after its headers, a part without a name).
absl::StatusOr<std::vector<FormPart>> ParseMultipart(std::string_view boundary,
                                                     std::string_view body);

}  // namespace herald::upstream_sim
