#include <gtest/gtest.h>

#include <herald/upstream_sim/multipart.h>

namespace herald::upstream_sim {
namespace {

TEST(MultipartTest, ReadsFieldsAndFiles) {
  using namespace std::string_literals;
  auto boundary = MultipartBoundary(R"(multipart/form-data; boundary="XyZ")");
  ASSERT_TRUE(boundary.ok());
  EXPECT_EQ(*boundary, "XyZ");
  const std::string body =
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"file_url\"\r\n\r\n"
      "https://cdn.example.com/a.mp4\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n"
      "Content-Type: video/mp4\r\n\r\n"
      "\x00\x01"
      "binary\r\nwith crlf\r\n"
      "--XyZ--\r\n"s;
  auto parts = ParseMultipart(*boundary, std::string_view(body.data(), body.size()));
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "file_url");
  EXPECT_EQ((*parts)[0].data, "https://cdn.example.com/a.mp4");
  EXPECT_EQ((*parts)[1].name, "file");
  EXPECT_EQ((*parts)[1].filename, "clip.mp4");
  EXPECT_EQ((*parts)[1].content_type, "video/mp4");
  EXPECT_EQ((*parts)[1].data, std::string_view("\x00\x01"
                                               "binary\r\nwith crlf",
                                               19));
}

TEST(MultipartTest, QuotedValuesMayHoldSemicolons) {
  // As Herald sends a file named `a; name="x".mp4`: quotes percent-encoded, ';' as is.
  const std::string body =
      "--b\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"a; name=%22x%22.mp4\"\r\n"
      "Content-Type: video/mp4\r\n\r\n"
      "DATA\r\n"
      "--b--\r\n";
  auto parts = ParseMultipart("b", body);
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].name, "file");
  EXPECT_EQ((*parts)[0].filename, "a; name=%22x%22.mp4");
  EXPECT_EQ((*parts)[0].data, "DATA");
  EXPECT_EQ(*MultipartBoundary("multipart/form-data; charset=utf-8; boundary=\"x;y\""), "x;y");
}

TEST(MultipartTest, RejectsBrokenFraming) {
  EXPECT_FALSE(MultipartBoundary("application/json").ok());
  EXPECT_FALSE(MultipartBoundary("multipart/form-data").ok());
  EXPECT_FALSE(ParseMultipart("b", "no boundary here").ok());
  EXPECT_FALSE(
      ParseMultipart("b", "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv").ok());
  EXPECT_FALSE(ParseMultipart("b", "--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--").ok());
}

}  // namespace
}  // namespace herald::upstream_sim
