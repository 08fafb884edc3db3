#include "multipart.h"

#include <absl/random/random.h>

#include <herald/common/strings.h>

namespace herald::upstream::internal {
namespace {

// Field and file names go inside a quoted string: escape what would end it or the header line.
std::string QuoteParameter(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "%22";
        break;
      case '\r':
        out += "%0D";
        break;
      case '\n':
        out += "%0A";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace

MultipartBody EncodeMultipart(const std::vector<FormPart>& parts, std::string_view boundary) {
  MultipartBody out;
  out.content_type = StrCat("multipart/form-data; boundary=", boundary);
  for (const FormPart& part : parts) {
    StrAppend(&out.body, "--", boundary, "\r\nContent-Disposition: form-data; name=\"",
              QuoteParameter(part.name), "\"");
    if (!part.file_name.empty()) {
      StrAppend(&out.body, "; filename=\"", QuoteParameter(part.file_name), "\"\r\nContent-Type: ",
                part.content_type.empty() ? std::string_view("application/octet-stream")
                                          : std::string_view(part.content_type));
    }
    StrAppend(&out.body, "\r\n\r\n", part.value, "\r\n");
  }
  StrAppend(&out.body, "--", boundary, "--\r\n");
  return out;
}

std::string PickBoundary(const std::vector<FormPart>& parts) {
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  absl::BitGen gen;
  while (true) {
    std::string boundary = "herald-";
    for (int i = 0; i < 32; ++i) {
      boundary.push_back(kAlphabet[absl::Uniform<size_t>(gen, 0, kAlphabet.size())]);
    }
    bool clash = false;
    for (const FormPart& part : parts) {
      clash = clash || part.value.find(boundary) != std::string::npos;
    }
    if (!clash) return boundary;
  }
}

}  // namespace herald::upstream::internal
