// The public API's .proto files keep the conventions clients rely on: every field and enum value
// carries a comment (on the line before it, or at its end), and every enum's zero value is
// <ENUM>_UNSPECIFIED (AIP-126), so an unset field never reads as a meaningful value.
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

// What breaks the conventions in `lines` (of file `name`); empty when nothing does.
std::vector<std::string> Lint(const std::string& name, const std::vector<std::string>& lines) {
  static const std::regex kField(R"(^\s+(repeated |optional )?[\w.]+ \w+ = \d+;)");
  static const std::regex kEnumValue(R"(^\s+(\w+) = (\d+);)");
  static const std::regex kEnum(R"(^\s*enum (\w+) \{)");
  std::vector<std::string> problems;
  std::string current_enum;
  bool first_value = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string where = name + ":" + std::to_string(i + 1);
    std::smatch m;
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
    const bool above = i > 0 && lines[i - 1].find_first_not_of(' ') != std::string::npos &&
                       lines[i - 1].substr(lines[i - 1].find_first_not_of(' ')).starts_with("//");
    if (!trailing && !above) problems.push_back(where + ": no comment: " + line);
  }
  return problems;
}

TEST(ProtoStyleTest, EveryFieldAndEnumValueIsCommentedAndEnumsStartUnspecified) {
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
  EXPECT_THAT(Lint("x.proto", bad),
              ::testing::ElementsAre(::testing::HasSubstr("x.proto:2: no comment"),
                                     ::testing::HasSubstr("enum Color starts with RED = 0"),
                                     ::testing::HasSubstr("x.proto:6: no comment")));
}

}  // namespace
}  // namespace herald
