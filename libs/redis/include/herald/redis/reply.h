// A Redis reply (RESP2): a value type that owns its text and elements.
//
// Replies are built by the client's parser (hiredis' reader) or, in tests and fakes, with the
// factory functions below. Copying a reply copies its whole tree; prefer moving.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

namespace herald::redis {

namespace internal {
struct ReplyBuilder;  // the parser's access to a reply under construction
}  // namespace internal

class Reply {
 public:
  enum class Type { kNil, kString, kStatus, kError, kInteger, kArray };

  Reply() = default;  // nil

  static Reply Nil() { return Reply(Type::kNil); }
  static Reply String(std::string s) { return Reply(Type::kString, std::move(s)); }
  static Reply Status(std::string s) { return Reply(Type::kStatus, std::move(s)); }
  static Reply Error(std::string s) { return Reply(Type::kError, std::move(s)); }
  static Reply Integer(int64_t v);
  static Reply Array(std::vector<Reply> elements);

  Type type() const { return type_; }
  bool is_nil() const { return type_ == Type::kNil; }
  bool is_error() const { return type_ == Type::kError; }

  // The text of a string, status or error reply; empty for other types.
  std::string_view str() const { return str_; }
  // The value of an integer reply; 0 for other types.
  int64_t integer() const { return integer_; }
  // The elements of an array reply; empty for other types.
  const std::vector<Reply>& elements() const { return elements_; }

  // Typed access with a clear error when the reply has another type. An error reply yields its
  // own status (ToStatus()), so `HERALD_ASSIGN_OR_RETURN(auto n, reply.AsInteger())` reports
  // Redis' message rather than a type mismatch.
  absl::StatusOr<std::string> AsString() const;  // string or status
  absl::StatusOr<int64_t> AsInteger() const;     // integer, or a string holding one
  // A string or status reply's text; nullopt for nil and every other type.
  std::optional<std::string> AsOptionalString() const;

  // For error replies, the status Client::Exec returns for them; OK for every other type.
  // The code comes from the error's first word: LOADING, BUSY, MASTERDOWN, READONLY, TRYAGAIN,
  // CLUSTERDOWN -> kUnavailable (transient server states); OOM -> kResourceExhausted; NOAUTH,
  // WRONGPASS -> kUnauthenticated; NOPERM -> kPermissionDenied; anything else (ERR, WRONGTYPE,
  // NOSCRIPT, a script's own error, ...) -> kInternal. The message is Redis' text, unchanged.
  absl::Status ToStatus() const;

  // Debug rendering, e.g. `["OK", 3, nil, (error) ERR unknown command]`. Strings are quoted
  // with non-printable bytes escaped; never log replies that may carry secrets.
  std::string DebugString() const;

  friend bool operator==(const Reply& a, const Reply& b);

 private:
  friend struct internal::ReplyBuilder;

  explicit Reply(Type type, std::string s = {}) : type_(type), str_(std::move(s)) {}

  Type type_ = Type::kNil;
  std::string str_;
  int64_t integer_ = 0;
  std::vector<Reply> elements_;
};

}  // namespace herald::redis
