// Rules Herald's C++ sources keep because the toolchain they are built with (g++ 12, Debian 12)
// miscompiles what they forbid. Each rule names the failure it prevents.
//
// No conditional operator in a statement that co_awaits: g++ 12 destroys the conditional's
// temporary wrongly once the coroutine resumes (`co_await f(x ? s : std::string())` frees the
// callee's parameter, which was never allocated), corrupting the heap. A job that failed that way
// crashed the worker some time later, far from the cause. Name the value first.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
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

// The statements of `code` (CodeOnly) that co_await and hold a conditional operator outside the
// lambda bodies they pass on, as "line N: statement".
std::vector<std::string> AwaitsWithConditionals(const std::string& code) {
  std::vector<std::string> found;
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
    // On to its end, looking for a '?' outside nested braces (lambda bodies).
    bool conditional = false;
    size_t end = at;
    for (int depth = 0, braces = 0; end < code.size(); ++end) {
      const char c = code[end];
      if (c == '{') ++braces;
      if (c == '}') --braces;
      if (c == '(' || c == '[') ++depth;
      if (c == ')' || c == ']') --depth;
      if (depth < 0 || braces < 0 || (depth == 0 && braces == 0 && c == ';')) break;
      if (c == '?' && braces == 0) conditional = true;
    }
    for (size_t i = begin; i < at && !conditional; ++i) conditional = code[i] == '?';
    if (!conditional) continue;
    const size_t line = 1 + std::count(code.begin(), code.begin() + static_cast<long>(at), '\n');
    std::string statement = code.substr(begin, end - begin);
    std::replace(statement.begin(), statement.end(), '\n', ' ');
    found.push_back("line " + std::to_string(line) + ": " + statement);
  }
  return found;
}

TEST(SourceRulesTest, TheCheckFindsConditionalsInAwaitingStatementsOnly) {
  EXPECT_THAT(AwaitsWithConditionals(
                  CodeOnly("  co_return co_await fail(reason, e ? e->code : std::string());\n")),
              ::testing::SizeIs(1));
  EXPECT_THAT(AwaitsWithConditionals(CodeOnly("auto v = ok ? co_await a() : 0;\n")),
              ::testing::SizeIs(1));
  EXPECT_THAT(AwaitsWithConditionals(CodeOnly("if (co_await Ready(x ? 1 : 2)) {\n")),
              ::testing::SizeIs(1));
  // Code elsewhere, a lambda passed on, comments and literals are not the statement's.
  EXPECT_THAT(
      AwaitsWithConditionals(CodeOnly("const int s = e ? 1 : 0;\nco_await f(s);  // e ? a : b\n"
                                      "co_await Update([&](T& t) { return t.x ? A() : B(); });\n"
                                      "co_await Log(\"ready?\", '?', R\"(a ? b : c)\");\n")),
      ::testing::IsEmpty());
}

TEST(SourceRulesTest, NoStatementThatAwaitsHoldsAConditionalOperator) {
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
      for (const std::string& p : AwaitsWithConditionals(CodeOnly(text.str()))) {
        problems.push_back(fs::relative(it->path(), HERALD_SOURCE_DIR).string() + " " + p);
      }
    }
  }
  EXPECT_GT(files, 100);
  EXPECT_THAT(problems, ::testing::IsEmpty())
      << "g++ 12 miscompiles a conditional operator in a statement that co_awaits (see the "
         "top of this file): name the value in a statement of its own first";
}

}  // namespace
}  // namespace herald
