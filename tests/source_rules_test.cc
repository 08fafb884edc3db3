// Rules Herald's C++ sources keep because the toolchain they are built with (g++ 12, Debian 12)
// miscompiles what they forbid. Each rule names the failure it prevents.
//
// In a statement that co_awaits, g++ 12 destroys some temporaries wrongly once the coroutine
// resumes, corrupting the heap; the process crashes some time later, far from the cause:
// - a conditional operator's (`co_await f(x ? s : std::string())` frees the callee's parameter,
//   which was never allocated): no conditional operator in such a statement;
// - a lambda's that captures by copy (`co_await Update([s](T& t) {...})` frees `s`'s copy
//   twice): lambdas created there capture by reference only, or `this`.
// Name the value, or the lambda, in a statement of its own first.
#include <algorithm>
#include <cctype>
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

// `text` with comments and the contents of string and character literals blanked (newlines kept),
// so that what is left is code.
std::string CodeOnly(const std::string& text) {
  std::string out = text;
  enum class In { kCode, kLineComment, kBlockComment, kString, kChar, kRawString } in = In::kCode;
  std::string raw_end;  // `)delimiter"` of the raw string being read
  for (size_t i = 0; i < out.size(); ++i) {
    const char c = text[i];
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    const auto blank = [&](size_t at) {
      if (out[at] != '\n') out[at] = ' ';
    };
    switch (in) {
      case In::kCode:
        if (c == '/' && next == '/') {
          in = In::kLineComment;
          blank(i);
        } else if (c == '/' && next == '*') {
          in = In::kBlockComment;
          blank(i);
        } else if (c == 'R' && next == '"' && (i == 0 || !std::isalnum(text[i - 1]))) {
          const size_t open = text.find('(', i + 2);
          raw_end = ")" + text.substr(i + 2, open - (i + 2)) + "\"";
          in = In::kRawString;
          i = open;
        } else if (c == '"') {
          in = In::kString;
        } else if (c == '\'' && (i == 0 || !std::isxdigit(text[i - 1]))) {  // not 1'000
          in = In::kChar;
        }
        break;
      case In::kLineComment:
        if (c == '\n') {
          in = In::kCode;
        } else {
          blank(i);
        }
        break;
      case In::kBlockComment:
        blank(i);
        if (c == '*' && next == '/') {
          blank(i + 1);
          ++i;
          in = In::kCode;
        }
        break;
      case In::kString:
      case In::kChar:
        if (c == '\\') {
          blank(i);
          blank(++i);
        } else if (c == (in == In::kString ? '"' : '\'')) {
          in = In::kCode;
        } else {
          blank(i);
        }
        break;
      case In::kRawString:
        if (text.compare(i, raw_end.size(), raw_end) == 0) {
          i += raw_end.size() - 1;
          in = In::kCode;
        } else {
          blank(i);
        }
        break;
    }
  }
  return out;
}

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// A statement that co_awaits: its line, and its text with the bodies of the lambdas it creates
// blanked (what they run is not part of the statement's evaluation).
struct AwaitingStatement {
  size_t line;
  std::string text;
};

std::vector<AwaitingStatement> AwaitingStatements(const std::string& code) {
  std::vector<AwaitingStatement> statements;
  const std::string word = "co_await";
  for (size_t at = code.find(word); at != std::string::npos; at = code.find(word, at + 1)) {
    if ((at > 0 && IsWordChar(code[at - 1])) || IsWordChar(code[at + word.size()])) continue;
    // Back to the statement's start: a ';', '{' or '}', or the '(' of an if or a while.
    size_t begin = at;
    for (int depth = 0; begin > 0; --begin) {
      const char c = code[begin - 1];
      if (c == ')' || c == ']') ++depth;
      if (c == '(' || c == '[') {
        if (depth == 0) break;
        --depth;
      }
      if (depth == 0 && (c == ';' || c == '{' || c == '}')) break;
    }
    // On to its end.
    std::string text = code.substr(begin, at - begin);
    for (int depth = 0, braces = 0; at < code.size(); ++at) {
      const char c = code[at];
      if (c == '{') ++braces;
      if (c == '}') --braces;
      if (c == '(' || c == '[') ++depth;
      if (c == ')' || c == ']') --depth;
      if (depth < 0 || braces < 0 || (depth == 0 && braces == 0 && c == ';')) break;
      text += braces == 0 || (braces == 1 && c == '{') ? c : ' ';
    }
    std::replace(text.begin(), text.end(), '\n', ' ');
    const size_t line = 1 + std::count(code.begin(), code.begin() + static_cast<long>(begin), '\n');
    statements.push_back({line, std::move(text)});
  }
  return statements;
}

// What in `code` (CodeOnly) breaks the rules above, as "line N: why: statement".
std::vector<std::string> Problems(const std::string& code) {
  static const std::regex kLambda(R"(([^\w\s)\]]|^)\s*\[([^\[\]]*)\]\s*(\(|\{|mutable|->))");
  std::vector<std::string> found;
  for (const AwaitingStatement& s : AwaitingStatements(code)) {
    const std::string where = "line " + std::to_string(s.line) + ": ";
    if (s.text.find('?') != std::string::npos) {
      found.push_back(where + "a conditional operator: " + s.text);
    }
    for (auto m = std::sregex_iterator(s.text.begin(), s.text.end(), kLambda);
         m != std::sregex_iterator(); ++m) {
      std::stringstream captures((*m)[2].str());
      for (std::string capture; std::getline(captures, capture, ',');) {
        capture.erase(0, capture.find_first_not_of(' '));
        capture.erase(capture.find_last_not_of(' ') + 1);
        if (capture.empty() || capture == "this" || capture.front() == '&') continue;
        found.push_back(where + "a lambda capturing '" + capture + "' by copy: " + s.text);
      }
    }
  }
  return found;
}

TEST(SourceRulesTest, TheCheckFindsWhatTheRulesForbidInAwaitingStatementsOnly) {
  EXPECT_THAT(
      Problems(CodeOnly("  co_return co_await fail(reason, e ? e->code : std::string());\n")),
      ::testing::SizeIs(1));
  EXPECT_THAT(Problems(CodeOnly("auto v = ok ? co_await a() : 0;\n")), ::testing::SizeIs(1));
  EXPECT_THAT(Problems(CodeOnly("if (co_await Ready(x ? 1 : 2)) {\n")), ::testing::SizeIs(1));
  EXPECT_THAT(Problems(CodeOnly("co_await Update(id, [s](T& t) { t.s = s; });\n")),
              ::testing::SizeIs(1));
  EXPECT_THAT(Problems(CodeOnly("co_await Update(id, [&, copy = s](T& t) { t.s = copy; });\n")),
              ::testing::SizeIs(1));
  // Code elsewhere, what a lambda runs, captures by reference, subscripts, comments and literals
  // are not the statement's.
  EXPECT_THAT(
      Problems(CodeOnly("const int s = e ? 1 : 0;\nco_await f(s);  // e ? [x]() : b\n"
                        "co_await Update([&, this](T& t) { return t.x ? A([y] {}) : B(); });\n"
                        "co_await handlers[kind](job);\n"
                        "co_await Log(\"ready?\", '?', R\"(a ? [b]() : c)\");\n")),
      ::testing::IsEmpty());
}

TEST(SourceRulesTest, NoStatementThatAwaitsBreaksTheRules) {
  std::vector<std::string> problems;
  int files = 0;
  for (const char* top : {"libs", "services", "tools", "tests"}) {
    const fs::path dir = fs::path(HERALD_SOURCE_DIR) / top;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
         ++it) {
      if (it->is_directory() && it->path().filename() == "node_modules") {
        it.disable_recursion_pending();
        continue;
      }
      const std::string ext = it->path().extension().string();
      if (!it->is_regular_file() || (ext != ".cc" && ext != ".h")) continue;
      if (it->path().filename() == "source_rules_test.cc") continue;  // its own examples
      ++files;
      std::ifstream in(it->path());
      std::stringstream text;
      text << in.rdbuf();
      for (const std::string& p : Problems(CodeOnly(text.str()))) {
        problems.push_back(fs::relative(it->path(), HERALD_SOURCE_DIR).string() + " " + p);
      }
    }
  }
  EXPECT_GT(files, 100);
  EXPECT_THAT(problems, ::testing::IsEmpty())
      << "g++ 12 miscompiles these in a statement that co_awaits (see the top of this file): "
         "name the value or the lambda in a statement of its own first";
}

}  // namespace
}  // namespace herald
