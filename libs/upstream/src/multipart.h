// multipart/form-data encoding (RFC 7578) for media uploads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace herald::upstream::internal {

struct FormPart {
  std::string name;          // form field name, e.g. "file_url" or "file"
  std::string value;         // text value or file bytes
  std::string file_name;     // non-empty for a file part
  std::string content_type;  // file parts only; default application/octet-stream
};

struct MultipartBody {
  std::string content_type;  // "multipart/form-data; boundary=..."
  std::string body;
};

// Encodes `parts` with `boundary`, which must not occur in any part (see PickBoundary).
// Quotes and line breaks in names and file names are percent-escaped, as browsers do.
MultipartBody EncodeMultipart(const std::vector<FormPart>& parts, std::string_view boundary);

// A random boundary that occurs in none of `parts`.
std::string PickBoundary(const std::vector<FormPart>& parts);

}  // namespace herald::upstream::internal
