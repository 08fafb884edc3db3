#include <hiredis/hiredis.h>

#include <herald/common/strings.h>
#include <herald/testing/redis_sync.h>

namespace herald::testing {
namespace {

SyncReply Convert(const redisReply* r) {
  SyncReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = SyncReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = SyncReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = SyncReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = SyncReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = SyncReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = SyncReply::Type::kNil;
  }
  return out;
}

}  // namespace

std::string SyncReply::DebugString() const {
  switch (type) {
    case Type::kNil:
      return "nil";
    case Type::kString:
      return StrCat("\"", str, "\"");
    case Type::kStatus:
      return str;
    case Type::kError:
      return StrCat("(error) ", str);
    case Type::kInteger:
      return StrCat(integer);
    case Type::kArray: {
      std::string out = "[";
      for (size_t i = 0; i < elements.size(); ++i) {
        if (i > 0) out += ", ";
        out += elements[i].DebugString();
      }
      return out + "]";
    }
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<SyncRedis>> SyncRedis::Connect(uint16_t port, std::string password) {
  std::unique_ptr<SyncRedis> conn(new SyncRedis(port, std::move(password)));
  if (absl::Status s = conn->EnsureConnected(); !s.ok()) return s;
  return conn;
}

SyncRedis::~SyncRedis() {
  if (context_ != nullptr) redisFree(static_cast<redisContext*>(context_));
}

absl::Status SyncRedis::EnsureConnected() {
  if (context_ != nullptr) return absl::OkStatus();
  const timeval timeout{.tv_sec = 5, .tv_usec = 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeout);
  if (c == nullptr || c->err) {
    std::string err = c ? c->errstr : "allocation failed";
    if (c) redisFree(c);
    return absl::UnavailableError(StrCat("connect to redis on port ", port_, ": ", err));
  }
  context_ = c;
  if (!password_.empty()) {
    auto auth = Command({"AUTH", password_});
    if (!auth.ok()) return auth.status();
    if (auth->is_error()) return absl::PermissionDeniedError(auth->str);
  }
  return absl::OkStatus();
}

absl::StatusOr<SyncReply> SyncRedis::Command(const std::vector<std::string>& argv) {
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  auto* c = static_cast<redisContext*>(context_);
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data()));
  if (reply == nullptr) {
    absl::Status err = absl::UnavailableError(c->errstr);
    redisFree(c);
    context_ = nullptr;
    return err;
  }
  SyncReply out = Convert(reply);
  freeReplyObject(reply);
  return out;
}

absl::StatusOr<SyncReply> SyncRedis::Eval(const std::string& source,
                                          const std::vector<std::string>& keys,
                                          const std::vector<std::string>& args) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto it = shas_.find(source);
    if (it == shas_.end()) {
      auto loaded = Command({"SCRIPT", "LOAD", source});
      if (!loaded.ok()) return loaded.status();
      if (loaded->is_error()) return absl::InternalError(StrCat("SCRIPT LOAD: ", loaded->str));
      it = shas_.emplace(source, loaded->str).first;
    }
    std::vector<std::string> argv = {"EVALSHA", it->second, StrCat(keys.size())};
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), args.begin(), args.end());
    auto reply = Command(argv);
    if (!reply.ok()) return reply;
    if (reply->is_error() && reply->str.starts_with("NOSCRIPT")) {
      shas_.erase(it);
      continue;
    }
    return reply;
  }
  return absl::InternalError("script vanished twice");
}

}  // namespace herald::testing
