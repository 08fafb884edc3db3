// The public API's .proto files keep the conventions clients rely on: every field and enum value
// carries a comment (on the line before it, or at its end); every service, rpc, message (nested
// ones included), enum and oneof carries a leading comment, as buf lint's COMMENT_* rules want it;
// and every enum's zero value is <ENUM>_UNSPECIFIED (AIP-126), so an unset field never reads as a
// meaningful value.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace herald {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> ProtoFiles() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(fs::path(HERALD_PROTO_DIR) / "herald" / "v1")) {
    if (entry.path().extension() == ".proto") files.push_back(entry.path());
  }
  return files;
}

std::vector<std::string> Lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Whether the line before lines[i] is a `//` comment. For a declaration that is its leading
// comment, as protoc reads it (SourceCodeInfo.Location.leading_comments): a blank line between
// the two would leave the comment detached, and a comment at the end of the line does not count.
bool CommentAbove(const std::vector<std::string>& lines, size_t i) {
  if (i == 0) return false;
  const std::string& above = lines[i - 1];
  const size_t start = above.find_first_not_of(' ');
  return start != std::string::npos && above.substr(start).starts_with("//");
}

// What breaks the conventions in `lines` (of file `name`); empty when nothing does.
std::vector<std::string> Lint(const std::string& name, const std::vector<std::string>& lines) {
  static const std::regex kField(R"(^\s+(repeated |optional )?[\w.]+ \w+ = \d+;)");
  static const std::regex kEnumValue(R"(^\s+(\w+) = (\d+);)");
  static const std::regex kEnum(R"(^\s*enum (\w+) \{)");
  // A service, rpc, message (top-level or nested), enum or oneof. A map field's entry message
  // has no declaration of its own, so it is not asked for a comment.
  static const std::regex kDeclaration(R"(^\s*(service|rpc|message|enum|oneof) (\w+)\s*[{(])");
  std::vector<std::string> problems;
  std::string current_enum;
  bool first_value = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string where = name + ":" + std::to_string(i + 1);
    std::smatch m;
    if (std::regex_search(line, m, kDeclaration) && !CommentAbove(lines, i)) {
      problems.push_back(where + ": no leading comment: " + m[1].str() + " " + m[2].str());
    }
    if (std::regex_search(line, m, kEnum)) {
      current_enum = m[1];
      first_value = true;
      continue;
    }
    const bool value = std::regex_search(line, m, kEnumValue);
    if (value && first_value) {
      first_value = false;
      // Campaign.State -> STATE_UNSPECIFIED; Trigger -> TRIGGER_UNSPECIFIED.
      std::string upper;
      for (char c : current_enum) {
        if (std::isupper(static_cast<unsigned char>(c)) && !upper.empty()) upper += '_';
        upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      if (m[1] != upper + "_UNSPECIFIED" || m[2] != "0") {
        problems.push_back(where + ": enum " + current_enum + " starts with " + m[1].str() + " = " +
                           m[2].str() + ", not " + upper + "_UNSPECIFIED = 0");
      }
    }
    if (!value && !std::regex_search(line, kField)) continue;
    const bool trailing = line.find("//") != std::string::npos;
    if (!trailing && !CommentAbove(lines, i)) problems.push_back(where + ": no comment: " + line);
  }
  return problems;
}

TEST(ProtoStyleTest, EverythingIsCommentedAndEnumsStartUnspecified) {
  const std::vector<fs::path> files = ProtoFiles();
  ASSERT_GE(files.size(), 9u);
  for (const fs::path& f : files) {
    EXPECT_THAT(Lint(f.filename().string(), Lines(f)), ::testing::IsEmpty());
  }
}

TEST(ProtoStyleTest, TheLintFindsWhatItLooksFor) {
  const std::vector<std::string> bad = {"message M {",
                                        "  string uncommented = 1;",
                                        "  // Said.",
                                        "  int32 said = 2;",
                                        "  enum Color {",
                                        "    RED = 0;",
                                        "  }",
                                        "}"};
  EXPECT_THAT(
      Lint("x.proto", bad),
      ::testing::ElementsAre(::testing::HasSubstr("x.proto:1: no leading comment: message M"),
                             ::testing::HasSubstr("x.proto:2: no comment"),
                             ::testing::HasSubstr("x.proto:5: no leading comment: enum Color"),
                             ::testing::HasSubstr("enum Color starts with RED = 0"),
                             ::testing::HasSubstr("x.proto:6: no comment")));
}

TEST(ProtoStyleTest, TheLintWantsALeadingCommentOnEveryDeclaration) {
  const std::vector<std::string> lines = {
      "// Said.",
      "service S {",
      "  rpc Bare(M) returns (M);",
      "  // Said.",
      "  rpc Said(M) returns (M);",
      "}",
      "",
      "// Detached: the blank line below parts it from the message.",
      "",
      "message M {",
      "  message Nested {}",
      "  // Said.",
      "  oneof said {",
      "    // Said.",
      "    int32 a = 1;",
      "  }",
      "  oneof bare {  // At the end of the line: not a leading comment.",
      "    // Said.",
      "    int32 b = 2;",
      "  }",
      "  // Said.",
      "  enum Said {",
      "    // Said.",
      "    SAID_UNSPECIFIED = 0;",
      "  }",
      "}"};
  EXPECT_THAT(
      Lint("x.proto", lines),
      ::testing::ElementsAre(::testing::HasSubstr("x.proto:3: no leading comment: rpc Bare"),
                             ::testing::HasSubstr("x.proto:10: no leading comment: message M"),
                             ::testing::HasSubstr("x.proto:11: no leading comment: message Nested"),
                             ::testing::HasSubstr("x.proto:17: no leading comment: oneof bare")));
}

}  // namespace
}  // namespace herald
