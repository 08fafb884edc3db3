#include <herald/common/strings.h>
#include <herald/upstream_sim/multipart.h>

namespace herald::upstream_sim {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// The value of `param` in a header such as `form-data; name="file"; filename="a.mp4"`.
std::string HeaderParam(std::string_view header, std::string_view param) {
  for (std::string_view piece : StrSplit(header, ';')) {
    piece = Trim(piece);
    const size_t eq = piece.find('=');
    if (eq == std::string_view::npos) continue;
    if (AsciiLower(Trim(piece.substr(0, eq))) != param) continue;
    std::string_view value = Trim(piece.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return std::string(value);
  }
  return "";
}

}  // namespace

absl::StatusOr<std::string> MultipartBoundary(std::string_view content_type) {
  const std::string_view type = Trim(content_type.substr(0, content_type.find(';')));
  if (AsciiLower(type) != "multipart/form-data") {
    return absl::InvalidArgumentError("not multipart/form-data");
  }
  std::string boundary = HeaderParam(content_type, "boundary");
  if (boundary.empty()) return absl::InvalidArgumentError("multipart body without a boundary");
  return boundary;
}

absl::StatusOr<std::vector<FormPart>> ParseMultipart(std::string_view boundary,
                                                     std::string_view body) {
  const std::string delimiter = StrCat("--", boundary);
  size_t pos = body.find(delimiter);
  if (pos == std::string_view::npos) return absl::InvalidArgumentError("no opening boundary");
  std::vector<FormPart> parts;
  const std::string next_delimiter = StrCat("\r\n", delimiter);
  while (true) {
    pos += delimiter.size();
    if (body.substr(pos, 2) == "--") return parts;  // closing boundary
    if (body.substr(pos, 2) != "\r\n") return absl::InvalidArgumentError("malformed boundary line");
    pos += 2;
    const size_t headers_end = body.find("\r\n\r\n", pos);
    if (headers_end == std::string_view::npos) {
      return absl::InvalidArgumentError("part without a blank line after its headers");
    }
    FormPart part;
    for (std::string_view line : StrSplit(body.substr(pos, headers_end - pos), '\n')) {
      line = Trim(line);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string name = AsciiLower(Trim(line.substr(0, colon)));
      const std::string_view value = Trim(line.substr(colon + 1));
      if (name == "content-disposition") {
        part.name = HeaderParam(value, "name");
        part.filename = HeaderParam(value, "filename");
      } else if (name == "content-type") {
        part.content_type = std::string(value);
      }
    }
    if (part.name.empty()) return absl::InvalidArgumentError("part without a name");
    const size_t data_start = headers_end + 4;
    const size_t data_end = body.find(next_delimiter, data_start);
    if (data_end == std::string_view::npos)
      return absl::InvalidArgumentError("no closing boundary");
    part.data = body.substr(data_start, data_end - data_start);
    parts.push_back(std::move(part));
    pos = data_end + 2;
  }
}

}  // namespace herald::upstream_sim
