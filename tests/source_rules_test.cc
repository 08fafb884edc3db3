// Rules Herald's C++ sources keep because the toolchain they are built with (g++ 12, Debian 12)
// miscompiles what they forbid. Each rule names the failure it prevents.
//
// In a statement that co_awaits, g++ 12 destroys some temporaries wrongly once the coroutine
// resumes, corrupting the heap; the process crashes some time later, far from the cause:
// - a conditional operator's (`co_await f(x ? s : std::string())` frees the callee's parameter,
//   which was never allocated): no conditional operator in such a statement;
// - a lambda's that captures by copy (`co_await Update([s](T& t) {...})` frees `s`'s copy
//   twice): lambdas created there capture by reference only, or `this`;
// - a braced temporary's of a named class type (`co_await Put(t, id, doc,
//   store::CreateRequest{}.request_id_ttl)` crashed the API process): none there.
// Name the value, or the lambda, in a statement of its own first.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace herald {
namespace {

namespace fs = std::filesystem;

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Whether the `'` at `at` separates digits (1'000, 0xFF'FF): the token it is in starts with one.
bool IsDigitSeparator(const std::string& text, size_t at) {
  size_t start = at;
  while (start > 0 && (IsWordChar(text[start - 1]) || text[start - 1] == '\'')) --start;
  return start < at && std::isdigit(static_cast<unsigned char>(text[start]));
}

// Whether the `R"` at `at` opens a raw string literal: R alone or after an encoding prefix (u8,
// u, U, L), with nothing of a word before.
bool IsRawStringStart(const std::string& text, size_t at) {
  size_t start = at;
  if (start >= 2 && text.compare(start - 2, 2, "u8") == 0) {
    start -= 2;
  } else if (start >= 1 &&
             (text[start - 1] == 'u' || text[start - 1] == 'U' || text[start - 1] == 'L')) {
    start -= 1;
  }
  return start == 0 || !IsWordChar(text[start - 1]);
}

// `text` with comments and the contents of string and character literals blanked (newlines kept),
// so that what is left is code.
std::string CodeOnly(const std::string& text) {
  std::string out = text;
  enum class In { kCode, kLineComment, kBlockComment, kString, kChar, kRawString } in = In::kCode;
  std::string raw_end;  // `)delimiter"` of the raw string being read
  const auto blank = [&](size_t at) {
    if (at < out.size() && out[at] != '\n') out[at] = ' ';
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    switch (in) {
      case In::kCode:
        if (c == '/' && next == '/') {
          in = In::kLineComment;
          blank(i);
        } else if (c == '/' && next == '*') {
          in = In::kBlockComment;
          blank(i);
        } else if (c == 'R' && next == '"' && IsRawStringStart(text, i)) {
          // R"delim( ... )delim": the delimiter is at most 16 characters.
          const size_t open = text.find('(', i + 2);
          if (open != std::string::npos && open - (i + 2) <= 16) {
            raw_end = ")" + text.substr(i + 2, open - (i + 2)) + "\"";
            in = In::kRawString;
            i = open;
          }
        } else if (c == '"') {
          in = In::kString;
        } else if (c == '\'' && !IsDigitSeparator(text, i)) {
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

// The last non-space position before `at`, or npos.
size_t Before(const std::string& code, size_t at) {
  while (at > 0) {
    if (!std::isspace(static_cast<unsigned char>(code[--at]))) return at;
  }
  return std::string::npos;
}

// The word that ends at `end` (exclusive).
std::string WordBefore(const std::string& code, size_t end) {
  size_t start = end;
  while (start > 0 && IsWordChar(code[start - 1])) --start;
  return code.substr(start, end - start);
}

// The position of the bracket that matches the one at `at` (an opening one is matched forward, a
// closing one backward), or npos.
size_t Matching(const std::string& code, size_t at) {
  static constexpr std::string_view kOpen = "([{", kClose = ")]}";
  const bool forward = kOpen.find(code[at]) != std::string_view::npos;
  const char self = code[at];
  const char other = forward ? kClose[kOpen.find(self)] : kOpen[kClose.find(self)];
  for (size_t i = at, depth = 0; forward ? ++i < code.size() : i-- > 0;) {
    if (code[i] == self) ++depth;
    if (code[i] == other) {
      if (depth == 0) return i;
      --depth;
    }
  }
  return std::string::npos;
}

bool IsControlHead(const std::string& code, size_t open_paren) {
  const size_t before = Before(code, open_paren);
  if (before == std::string::npos) return false;
  const std::string word = WordBefore(code, before + 1);
  return word == "if" || word == "while" || word == "for" || word == "switch" || word == "catch" ||
         word == "constexpr";  // if constexpr (...)
}

// Whether the `{` at `open` starts a lambda's body: after its captures or parameters, its
// specifiers, or its return type.
bool IsLambdaBody(const std::string& code, size_t open) {
  size_t p = Before(code, open);
  if (p == std::string::npos) return false;
  if (code[p] == ']') return true;
  if (IsWordChar(code[p]) || code[p] == '>') {
    // A return type (`-> T`, `-> asio::awaitable<T>`) or specifiers (mutable, noexcept): back to
    // the parameters' `)`.
    size_t q = p + 1;
    while (q > 0 && (IsWordChar(code[q - 1]) || std::strchr(":<>,*& \n\t-", code[q - 1]))) --q;
    if (q == 0 || code[q - 1] != ')') return false;
    const std::string between = code.substr(q, p + 1 - q);
    const bool lambda_tail = between.find("->") != std::string::npos ||
                             between.find("mutable") != std::string::npos ||
                             between.find("noexcept") != std::string::npos;
    if (!lambda_tail) return false;
    p = q - 1;
  }
  if (code[p] != ')') return false;
  const size_t params = Matching(code, p);
  if (params == std::string::npos) return false;
  const size_t captures = Before(code, params);
  return captures != std::string::npos && code[captures] == ']';
}

// Whether the `{` at `open` belongs to an expression (a lambda's body or a braced list) rather
// than opening a block.
bool IsExpressionBrace(const std::string& code, size_t open) {
  if (IsLambdaBody(code, open)) return true;
  const size_t p = Before(code, open);
  if (p == std::string::npos) return false;
  if (std::strchr("=(,[", code[p]) != nullptr) return true;
  if (IsWordChar(code[p]) || code[p] == '>') {  // Type{...}, Type<T>{...}; not else { or do {
    const std::string word = WordBefore(code, p + 1);
    return word != "else" && word != "do" && word != "try" && word != "const" &&
           word != "override" && word != "noexcept";
  }
  return false;
}

// A statement that co_awaits: its line, and its text with the bodies of the lambdas it creates
// blanked (what they run is not part of the statement's evaluation).
struct AwaitingStatement {
  size_t line;
  std::string text;
};

std::vector<AwaitingStatement> AwaitingStatements(const std::string& code) {
  std::vector<AwaitingStatement> statements;
  std::set<size_t> begins;
  const std::string word = "co_await";
  for (size_t at = code.find(word); at != std::string::npos; at = code.find(word, at + 1)) {
    if ((at > 0 && IsWordChar(code[at - 1])) || IsWordChar(code[at + word.size()])) continue;
    // Back to the statement's start: a ';', a block's brace, or the end of a control head
    // (`if (c) co_await f();`) or its start (`if (co_await f()) {`).
    size_t begin = at;
    while (begin > 0) {
      const size_t i = begin - 1;
      const char c = code[i];
      if (c == ';') break;
      if (c == ')' || c == ']') {
        const size_t open = Matching(code, i);
        if (open == std::string::npos) break;
        if (c == ')' && IsControlHead(code, open)) break;
        begin = open;
        continue;
      }
      if (c == '}') {
        const size_t open = Matching(code, i);
        if (open == std::string::npos || !IsExpressionBrace(code, open)) break;
        begin = open;
        continue;
      }
      if (c == '(' && IsControlHead(code, i)) break;
      // A block's brace, or a lambda's: the statement is inside its body.
      if (c == '{' && (IsLambdaBody(code, i) || !IsExpressionBrace(code, i))) break;
      --begin;
    }
    // On to its end: a ';' outside brackets, or the end of the head or block it is in. Lambda
    // bodies are blanked; braced lists are kept.
    std::string text;
    size_t end = begin;
    for (int depth = 0; end < code.size(); ++end) {
      const char c = code[end];
      if (c == '{' && IsLambdaBody(code, end)) {
        const size_t close = Matching(code, end);
        if (close == std::string::npos) break;
        text += "{}";
        end = close;
        continue;
      }
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') --depth;
      if (depth < 0 || (depth == 0 && c == ';')) break;
      text += c == '\n' ? ' ' : c;
    }
    if (!begins.insert(begin).second) continue;  // another co_await of the same statement
    const size_t line = 1 + std::count(code.begin(), code.begin() + static_cast<long>(at), '\n');
    statements.push_back({line, std::move(text)});
  }
  return statements;
}

// What in `code` (CodeOnly) breaks the rules above, as "line N: why: statement".
std::vector<std::string> Problems(const std::string& code) {
  // A lambda's captures: `[...]` not after a word, a `)` or a `]` (a subscript), unless that word
  // is a keyword an expression follows; then parameters, a template head, specifiers or a body.
  static const std::regex kLambda(
      R"((^|[^\w)\]\s]|\b(?:co_await|co_return|co_yield|return)\b)\s*\[([^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*)\]\s*(\(|\{|<|mutable|noexcept|constexpr|static|->))");
  // A braced temporary of a named class type: `T{...}`, `ns::T{...}`, `T<U>{...}`.
  static const std::regex kBracedTemporary(
      R"(\b([A-Z]\w*|\w+::[A-Z]\w*|std::\w+)(<[^;{}()]*>)?\{)");
  std::vector<std::string> found;
  for (const AwaitingStatement& s : AwaitingStatements(code)) {
    const std::string where = "line " + std::to_string(s.line) + ": ";
    if (s.text.find('?') != std::string::npos) {
      found.push_back(where + "a conditional operator: " + s.text);
    }
    for (auto m = std::sregex_iterator(s.text.begin(), s.text.end(), kBracedTemporary);
         m != std::sregex_iterator(); ++m) {
      found.push_back(where + "a braced temporary '" + (*m)[0].str() + "': " + s.text);
    }
    for (auto m = std::sregex_iterator(s.text.begin(), s.text.end(), kLambda);
         m != std::sregex_iterator(); ++m) {
      std::stringstream captures((*m)[2].str());
      for (std::string capture; std::getline(captures, capture, ',');) {
        capture.erase(0, capture.find_first_not_of(" \t"));
        capture.erase(capture.find_last_not_of(" \t") + 1);
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
  // Around the co_await, in braced lists, before a lambda passed along, in other lambda forms.
  for (const char* bad : {
           "auto v = c ? Wrap(co_await f()) : 0;\n",
           "co_return x ? y : Make(co_await f());\n",
           "co_await f(opts, {.x = c ? a : b});\n",
           "co_await Send({.reason = e ? r : \"\"});\n",
           "HERALD_CO_ASSIGN_OR_RETURN(auto x, co_await f(a ? b : c));\n",
           "Combine([s] { return s; }, co_await f());\n",
           "co_await [s]() -> asio::awaitable<void> { co_return; }();\n",
           "co_await Run([s]<typename T>(T t) { return t; });\n",
           "co_await Run([s] mutable { return s; });\n",
           "co_await Run([x = v[0]](int) {});\n",
           "co_await f(LR\"(a\")\", c ? 1 : 2);\n",
           "co_await Put(id, store::CreateRequest{}.request_id_ttl);\n",
           "HERALD_CO_ASSIGN_OR_RETURN(auto r, co_await c.Exec(redis::Command{\"GET\", k}));\n",
           "co_await f(Options{.limit = 2});\n",
           "co_await f(std::vector<int>{1, 2});\n",
       }) {
    EXPECT_THAT(Problems(CodeOnly(bad)), ::testing::SizeIs(1)) << bad;
  }
  // Code elsewhere, what a lambda runs, captures by reference, subscripts, comments and literals
  // are not the statement's.
  EXPECT_THAT(
      Problems(CodeOnly("const int s = e ? 1 : 0;\nco_await f(s);  // e ? [x]() : b\n"
                        "co_await Update([&, this](T& t) { return t.x ? A([y] {}) : B(); });\n"
                        "co_await handlers[kind](job);\n"
                        "auto [a, b] = co_await f();\n"
                        "if (a ? b : c) co_await f();\n"
                        "if (any_of(v, [s](int x) { return x; })) co_await f();\n"
                        "co_spawn(ex, [s]() -> awaitable<void> { co_await f(); }, d);\n"
                        "const int n = 1'000; char q = '\"'; co_await f(n);\n"
                        "co_await f(u8'\"'); auto t = x ? 1 : 2;\n"
                        "co_await Log(\"ready?\", '?', R\"(a ? [b]() : c)\");\n"
                        "const Options o{.limit = 2}; co_await f(o);\n"
                        "if (auto s = co_await f(); !s.ok()) return Result{s};\n")),
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
