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

// The value of `param` in a header such as `form-data; name="file"; filename="a.mp4"`. A quoted
// value runs to the next quote and may hold ';' (a file name such as "a; b.mp4"); clients
// percent-encode quotes and line breaks in it (RFC 7578 4.2) rather than escape them.
std::string HeaderParam(std::string_view header, std::string_view param) {
  size_t pos = 0;
  while (pos < header.size()) {
    const size_t eq = header.find_first_of("=;", pos);
    if (eq == std::string_view::npos) return "";
    const std::string_view key = Trim(header.substr(pos, eq - pos));
    if (header[eq] == ';') {  // a piece without a value, such as "form-data"
      pos = eq + 1;
      continue;
    }
    size_t start = eq + 1;
    while (start < header.size() && (header[start] == ' ' || header[start] == '\t')) ++start;
    std::string_view value;
    size_t next = std::string_view::npos;  // the ';' after the value
    if (start < header.size() && header[start] == '"') {
      const size_t close = header.find('"', start + 1);
      value = header.substr(
          start + 1, close == std::string_view::npos ? std::string_view::npos : close - start - 1);
      if (close != std::string_view::npos) next = header.find(';', close + 1);
    } else {
      next = header.find(';', start);
      value = Trim(header.substr(start, next == std::string_view::npos ? next : next - start));
    }
    if (AsciiLower(key) == param) return std::string(value);
    if (next == std::string_view::npos) return "";
    pos = next + 1;
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
