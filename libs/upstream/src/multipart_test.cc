#include "multipart.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace herald::upstream::internal {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(Multipart, EncodesTextAndFileParts) {
  const std::vector<FormPart> parts = {
      {.name = "file_url", .value = "https://cdn.example.com/a.mp4"},
      {.name = "file",
       .value = std::string("\x00\x01\xff bytes\r\n", 10),
       .file_name = "teaser.mp4",
       .content_type = "video/mp4"},
  };
  const MultipartBody body = EncodeMultipart(parts, "B0UNDARY");
  EXPECT_EQ(body.content_type, "multipart/form-data; boundary=B0UNDARY");
  EXPECT_EQ(body.body,
            "--B0UNDARY\r\n"
            "Content-Disposition: form-data; name=\"file_url\"\r\n"
            "\r\n"
            "https://cdn.example.com/a.mp4\r\n"
            "--B0UNDARY\r\n"
            "Content-Disposition: form-data; name=\"file\"; filename=\"teaser.mp4\"\r\n"
            "Content-Type: video/mp4\r\n"
            "\r\n" +
                std::string("\x00\x01\xff bytes\r\n", 10) +
                "\r\n"
                "--B0UNDARY--\r\n");
}

TEST(Multipart, FilePartDefaultsToOctetStream) {
  const MultipartBody body =
      EncodeMultipart({{.name = "file", .value = "x", .file_name = "a.bin"}}, "b");
  EXPECT_THAT(body.body, HasSubstr("Content-Type: application/octet-stream\r\n"));
}

TEST(Multipart, EscapesQuotesAndLineBreaksInNames) {
  const MultipartBody body = EncodeMultipart(
      {{.name = "file", .value = "x", .file_name = "a\"b\r\nContent-Type: evil.mp4"}}, "b");
  EXPECT_THAT(body.body, HasSubstr("filename=\"a%22b%0D%0AContent-Type: evil.mp4\""));
  EXPECT_THAT(body.body, Not(HasSubstr("\r\nContent-Type: evil")));
}

TEST(Multipart, BoundaryNeverOccursInTheParts) {
  const std::vector<FormPart> parts = {{.name = "file_url", .value = "https://x/y"}};
  const std::string boundary = PickBoundary(parts);
  EXPECT_THAT(boundary, StartsWith("herald-"));
  EXPECT_EQ(boundary.size(), 39u);
  EXPECT_NE(boundary, PickBoundary(parts));
  // Data that contains a boundary candidate's prefix still gets a boundary not in the data.
  const std::vector<FormPart> tricky = {{.name = "file", .value = "--herald-herald-herald-"}};
  EXPECT_EQ(tricky[0].value.find(PickBoundary(tricky)), std::string::npos);
}

}  // namespace
}  // namespace herald::upstream::internal
