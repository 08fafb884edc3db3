#include <fstream>

#include <absl/strings/match.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include <herald/common/strings.h>
#include <herald/testing/net.h>
#include <herald/testing/redis_server.h>
#include <herald/testing/wait.h>

namespace herald::testing {
namespace {

void Render(const redisReply* r, std::string& out) {
  // Debian 12 ships hiredis 0.14: RESP2 reply types only.
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.append(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      StrAppend(&out, "(error) ", std::string_view(r->str, r->len));
      break;
    case REDIS_REPLY_INTEGER:
      StrAppend(&out, r->integer);
      break;
    case REDIS_REPLY_NIL:
      out.append("(nil)");
      break;
    case REDIS_REPLY_ARRAY:
      for (size_t i = 0; i < r->elements; ++i) {
        if (i > 0) out.push_back('\n');
        Render(r->element[i], out);
      }
      break;
    default:
      out.append("(unknown)");
  }
}

}  // namespace

RedisServer::RedisServer(Options options, std::string dir, uint16_t port)
    : options_(std::move(options)), dir_(std::move(dir)), port_(port) {}

RedisServer::~RedisServer() {
  if (process_) process_->Kill();
}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(Options options) {
  // A port picked free can be taken by someone else before redis binds it: try a few.
  absl::Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::unique_ptr<RedisServer> server(
        new RedisServer(options, MakeTempDir("redis"), PickFreePort()));
    last = server->Launch();
    if (last.ok()) return server;
  }
  return last;
}

absl::Status RedisServer::Launch() {
  const std::string conf = dir_ + "/redis.conf";
  {
    std::ofstream out(conf);
    out << "port " << port_ << "\n"
        << "bind 127.0.0.1\n"
        << "dir " << dir_ << "\n"
        << "save \"\"\n"
        << "daemonize no\n"
        << "protected-mode no\n"
        << "logfile " << dir_ << "/redis.log\n";
    if (options_.appendonly) out << "appendonly yes\nappendfsync always\n";
    if (!options_.password.empty()) out << "requirepass " << options_.password << "\n";
    for (const auto& line : options_.extra) out << line << "\n";
  }
  auto process = Subprocess::Start({.argv = {"/usr/bin/redis-server", conf}});
  if (!process.ok()) return process.status();
  process_ = std::make_unique<Subprocess>(std::move(*process));
  const bool up = WaitFor(
      [&] {
        if (!process_->running()) return true;  // exited: give up at once
        // PING answers once the data is loaded; the server answering must be this one, not one
        // another process started on the port.
        auto replies = Commands({{"PING"}, {"INFO", "server"}});
        return replies.ok() && (*replies)[0] == "PONG" &&
               absl::StrContains((*replies)[1], StrCat("process_id:", process_->pid(), "\r\n"));
      },
      absl::Seconds(10));
  if (!up || !process_->running()) {
    std::string log;
    std::ifstream in(dir_ + "/redis.log");
    log.assign(std::istreambuf_iterator<char>(in), {});
    process_->Kill();
    process_.reset();
    return absl::UnavailableError(StrCat("redis-server did not start on port ", port_, ":\n", log));
  }
  return absl::OkStatus();
}

absl::Status RedisServer::Stop(bool graceful) {
  if (!process_) return absl::OkStatus();
  if (graceful) {
    (void)Command({"SHUTDOWN"});  // the connection drops as the server exits
    if (!process_->Wait(absl::Seconds(10))) process_->Kill();
  } else {
    process_->Kill();
  }
  process_.reset();
  return absl::OkStatus();
}

absl::Status RedisServer::Restart(bool graceful) {
  if (absl::Status s = Stop(graceful); !s.ok()) return s;
  return Launch();
}

absl::StatusOr<std::string> RedisServer::Command(const std::vector<std::string>& argv) {
  auto replies = Commands(std::vector<std::vector<std::string>>{argv});
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

absl::StatusOr<std::vector<std::string>> RedisServer::Commands(
    const std::vector<std::vector<std::string>>& commands) {
  const timeval timeout{.tv_sec = 2, .tv_usec = 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeout);
  if (c == nullptr || c->err) {
    std::string err = c ? c->errstr : "allocation failed";
    if (c) redisFree(c);
    return absl::UnavailableError(err);
  }
  auto run = [c](const std::vector<std::string>& args) -> absl::StatusOr<std::string> {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), ptrs.data(), lens.data()));
    if (reply == nullptr) return absl::UnavailableError(c->errstr);
    std::string out;
    Render(reply, out);
    freeReplyObject(reply);
    return out;
  };
  absl::StatusOr<std::vector<std::string>> replies = std::vector<std::string>();
  if (!options_.password.empty()) {
    if (auto auth = run({"AUTH", options_.password}); !auth.ok()) replies = auth.status();
  }
  for (size_t i = 0; i < commands.size() && replies.ok(); ++i) {
    auto reply = run(commands[i]);
    if (reply.ok()) {
      replies->push_back(*std::move(reply));
    } else {
      replies = reply.status();
    }
  }
  redisFree(c);
  return replies;
}

}  // namespace herald::testing
