// String helpers over std::string_view.
//
// Debian's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW=0: absl::string_view is its own
// type, and absl::StrCat, absl::StrJoin and friends do not accept std::string_view. Herald's
// interfaces use std::string_view, so these few helpers stand in for the Abseil ones, and
// ToAbsl/ToStd convert at the places that call Abseil directly.
//
//   std::string s = StrCat("--", flag, " must be in [", min, ", ", max, "]");
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/strings/string_view.h>

namespace herald {

inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }

// One argument of StrCat: text, or a number formatted into an inline buffer (integers in
// decimal, doubles in shortest round-trip form).
class StrPiece {
 public:
  StrPiece(std::string_view s) : data_(s.data()), size_(s.size()) {}   // NOLINT: implicit
  StrPiece(const char* s) : StrPiece(std::string_view(s)) {}           // NOLINT
  StrPiece(const std::string& s) : StrPiece(std::string_view(s)) {}    // NOLINT
  StrPiece(absl::string_view s) : data_(s.data()), size_(s.size()) {}  // NOLINT
  StrPiece(char c) : size_(1), in_buffer_(true) { buffer_[0] = c; }    // NOLINT
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) StrPiece(T v)
      : in_buffer_(true) {  // NOLINT
    size_ = static_cast<size_t>(std::to_chars(buffer_, buffer_ + sizeof(buffer_), v).ptr - buffer_);
  }
  StrPiece(double v) : in_buffer_(true) {  // NOLINT
    size_ = static_cast<size_t>(std::to_chars(buffer_, buffer_ + sizeof(buffer_), v).ptr - buffer_);
  }

  std::string_view view() const {
    return in_buffer_ ? std::string_view(buffer_, size_) : std::string_view(data_, size_);
  }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
  bool in_buffer_ = false;
  char buffer_[32];
};

namespace strings_internal {
void Append(std::string& out, std::initializer_list<StrPiece> pieces);
}  // namespace strings_internal

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  strings_internal::Append(out, {StrPiece(args)...});
  return out;
}

template <typename... Args>
void StrAppend(std::string* out, const Args&... args) {
  strings_internal::Append(*out, {StrPiece(args)...});
}

// Joins the elements of `range` (anything a StrPiece accepts) with `separator`.
template <typename Range>
std::string StrJoin(const Range& range, std::string_view separator) {
  std::string out;
  bool first = true;
  for (const auto& element : range) {
    if (!first) out.append(separator);
    first = false;
    out.append(StrPiece(element).view());
  }
  return out;
}

// Splits on every occurrence of `separator`; "" gives one empty piece. Views point into `s`.
std::vector<std::string_view> StrSplit(std::string_view s, char separator);

// Appends `s` to `out` as a quoted JSON string: quotes, backslashes and control characters
// escaped, every other byte (UTF-8 included) as it is.
void AppendJsonString(std::string& out, std::string_view s);

// RFC 3986 percent-encoding of everything but unreserved characters (letters, digits, "-._~"),
// for query values and path segments.
std::string PercentEncode(std::string_view s);

std::string AsciiLower(std::string_view s);
std::string AsciiUpper(std::string_view s);

// Characters (code points) in UTF-8 text: bytes that are not continuation bytes. Limits stated
// in characters are checked with this, never with size().
size_t Utf8Length(std::string_view s);

// Whether `s` has an ASCII control character (0x00-0x1f, 0x7f) other than those in `allowed`
// (e.g. "\t\n" for multi-line text).
bool HasControlCharacter(std::string_view s, std::string_view allowed = {});

// The first / last `n` characters of UTF-8 text (all of it when it is shorter), never cutting a
// character in two. Views point into `s`.
std::string_view Utf8Prefix(std::string_view s, size_t n);
std::string_view Utf8Suffix(std::string_view s, size_t n);

// Parses the whole of `s` as a base-10 integer; nullopt on any junk or overflow.
template <std::integral T>
std::optional<T> ParseInt(std::string_view s) {
  T value{};
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return value;
}

}  // namespace herald
