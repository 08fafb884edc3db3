#include <herald/common/strings.h>
#include <herald/redis/reply.h>

namespace herald::redis {
namespace {

std::string_view TypeName(Reply::Type type) {
  switch (type) {
    case Reply::Type::kNil:
      return "nil";
    case Reply::Type::kString:
      return "string";
    case Reply::Type::kStatus:
      return "status";
    case Reply::Type::kError:
      return "error";
    case Reply::Type::kInteger:
      return "integer";
    case Reply::Type::kArray:
      return "array";
  }
  return "unknown";
}

absl::Status WrongType(const Reply& reply, std::string_view wanted) {
  return absl::FailedPreconditionError(
      StrCat("redis reply is ", TypeName(reply.type()), ", not ", wanted));
}

void AppendQuoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      out.append("\\x");
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void AppendDebug(std::string& out, const Reply& r) {
  switch (r.type()) {
    case Reply::Type::kNil:
      out.append("nil");
      break;
    case Reply::Type::kString:
    case Reply::Type::kStatus:
      AppendQuoted(out, r.str());
      break;
    case Reply::Type::kError:
      StrAppend(&out, "(error) ", r.str());
      break;
    case Reply::Type::kInteger:
      StrAppend(&out, r.integer());
      break;
    case Reply::Type::kArray:
      out.push_back('[');
      for (size_t i = 0; i < r.elements().size(); ++i) {
        if (i > 0) out.append(", ");
        AppendDebug(out, r.elements()[i]);
      }
      out.push_back(']');
      break;
  }
}

}  // namespace

Reply Reply::Integer(int64_t v) {
  Reply r(Type::kInteger);
  r.integer_ = v;
  return r;
}

Reply Reply::Array(std::vector<Reply> elements) {
  Reply r(Type::kArray);
  r.elements_ = std::move(elements);
  return r;
}

absl::StatusOr<std::string> Reply::AsString() const {
  if (type_ == Type::kString || type_ == Type::kStatus) return str_;
  if (type_ == Type::kError) return ToStatus();
  return WrongType(*this, "a string");
}

absl::StatusOr<int64_t> Reply::AsInteger() const {
  if (type_ == Type::kInteger) return integer_;
  if (type_ == Type::kString) {
    if (std::optional<int64_t> v = ParseInt<int64_t>(str_)) return *v;
    return absl::FailedPreconditionError("redis string reply does not hold an integer");
  }
  if (type_ == Type::kError) return ToStatus();
  return WrongType(*this, "an integer");
}

std::optional<std::string> Reply::AsOptionalString() const {
  if (type_ == Type::kString || type_ == Type::kStatus) return str_;
  return std::nullopt;
}

absl::Status Reply::ToStatus() const {
  if (type_ != Type::kError) return absl::OkStatus();
  const std::string_view prefix = std::string_view(str_).substr(0, str_.find(' '));
  const std::string& message = str_;
  if (prefix == "LOADING" || prefix == "BUSY" || prefix == "MASTERDOWN" || prefix == "READONLY" ||
      prefix == "TRYAGAIN" || prefix == "CLUSTERDOWN") {
    return absl::UnavailableError(message);
  }
  // A cluster slot being migrated, still so when the caller's deadline came: transient.
  if (prefix == "ASK") return absl::UnavailableError(StrCat("redis: slot migrating: ", message));
  // A redirect the client did not follow: on a Redis Cluster, Herald needs --redis_cluster.
  if (prefix == "MOVED") {
    return absl::FailedPreconditionError(
        StrCat("redis: ", message, " (a Redis Cluster node: run Herald with --redis_cluster)"));
  }
  if (prefix == "OOM") return absl::ResourceExhaustedError(message);
  if (prefix == "NOAUTH" || prefix == "WRONGPASS") return absl::UnauthenticatedError(message);
  if (prefix == "NOPERM") return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

std::string Reply::DebugString() const {
  std::string out;
  AppendDebug(out, *this);
  return out;
}

bool operator==(const Reply& a, const Reply& b) {
  return a.type_ == b.type_ && a.str_ == b.str_ && a.integer_ == b.integer_ &&
         a.elements_ == b.elements_;
}

}  // namespace herald::redis
