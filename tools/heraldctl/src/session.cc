#include "session.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <herald/common/grpc_status.h>
#include <herald/common/strings.h>
#include <herald/heraldctl/values.h>

namespace herald::heraldctl {

Session::Session(const ParsedCommand& command, EnvLookup env, std::ostream& out, std::ostream& err,
                 const Terminal& terminal)
    : global_(command.global),
      names_(command.global.tenant),
      out_(out),
      err_(err),
      terminal_(terminal),
      env_(std::move(env)) {}

absl::StatusOr<std::pair<std::string, std::string>> ParentAndId(const Names& names,
                                                                std::string_view collection,
                                                                std::string_view arg) {
  absl::StatusOr<std::string> name = names.Resolve(collection, arg);
  if (!name.ok()) return name.status();
  const std::string marker = StrCat("/", collection, "/");
  const size_t at = name->rfind(marker);
  if (at == std::string::npos || name->find('/', at + marker.size()) != std::string::npos) {
    return absl::InvalidArgumentError(StrCat("'", arg, "' is not a ", collection,
                                             " name (tenants/{tenant}/", collection,
                                             "/{id}) or a short id"));
  }
  return std::make_pair(name->substr(0, at), name->substr(at + marker.size()));
}

absl::StatusOr<std::optional<std::string>> ReadSecretFlags(Session& session,
                                                           const ParsedCommand& command,
                                                           std::string_view flag) {
  const std::string file_flag = StrCat(flag, "-file");
  const std::string env_flag = StrCat(flag, "-env");
  if (command.Has(file_flag) && command.Has(env_flag)) {
    return absl::InvalidArgumentError(
        StrCat("give --", file_flag, " or --", env_flag, ", not both"));
  }
  if (command.Has(file_flag)) {
    absl::StatusOr<std::string> text = ReadFile(command.Get(file_flag));
    if (!text.ok()) return text.status();
    return TrimSecret(StrCat("--", file_flag, " ", command.Get(file_flag)), *std::move(text));
  }
  if (command.Has(env_flag)) {
    const std::string variable = command.Get(env_flag);
    std::optional<std::string> value = session.Env(variable);
    if (!value) {
      return absl::InvalidArgumentError(StrCat("--", env_flag, ": $", variable, " is not set"));
    }
    return TrimSecret(StrCat("$", variable), *std::move(value));
  }
  return std::optional<std::string>();
}

std::shared_ptr<grpc::Channel> Session::channel() {
  if (!channel_) {
    // A page of whole campaigns across thousands of accounts can pass gRPC's 4 MiB default.
    grpc::ChannelArguments arguments;
    arguments.SetMaxReceiveMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(
        global_.server,
        global_.UsesTls() ? grpc::SslCredentials(tls_) : grpc::InsecureChannelCredentials(),
        arguments);
  }
  return channel_;
}

absl::Status Session::LoadCredentials() {
  if (global_.tls_cert_file.empty() != global_.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert-file and --tls-key-file go together");
  }
  const std::pair<const std::string*, std::string*> pems[] = {
      {&global_.tls_ca_file, &tls_.pem_root_certs},
      {&global_.tls_cert_file, &tls_.pem_cert_chain},
      {&global_.tls_key_file, &tls_.pem_private_key}};
  for (const auto& [file, pem] : pems) {
    if (file->empty()) continue;
    absl::StatusOr<std::string> text = ReadFile(*file);
    if (!text.ok()) return text.status();
    *pem = *std::move(text);
  }
  if (!global_.key.empty() || global_.key_file.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> text = ReadFile(global_.key_file);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::string> key = TrimSecret(StrCat("--key-file ", global_.key_file), *text);
  if (!key.ok()) return key.status();
  global_.key = *std::move(key);
  return absl::OkStatus();
}

std::unique_ptr<grpc::ClientContext> Session::Context(bool with_deadline) {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!global_.key.empty()) context->AddMetadata("authorization", StrCat("Bearer ", global_.key));
  if (with_deadline) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(global_.timeout_seconds));
  }
  return context;
}

int Session::Fail(const grpc::Status& grpc_status) {
  const absl::Status status = FromGrpcStatus(grpc_status);
  const absl::StatusCode code = status.code();
  err_ << "heraldctl: " << absl::StatusCodeToString(code) << ": " << status.message();
  if (code == absl::StatusCode::kUnavailable) err_ << " (server " << global_.server << ")";
  if (code == absl::StatusCode::kUnauthenticated && global_.key.empty()) {
    err_ << " (no key: pass --key or set HERALD_API_KEY)";
  }
  if (const std::optional<absl::Duration> delay = RetryDelayOf(status)) {
    err_ << " (retry in " << absl::FormatDuration(*delay) << ")";
  }
  err_ << "\n";
  return ExitCodeFor(status);
}

int Session::Usage(const absl::Status& status) {
  err_ << "heraldctl: " << status.message() << "\n";
  return kExitUsage;
}

int Session::Print(const google::protobuf::Message& message) {
  out_ << (global_.json ? ToJson(message) + "\n" : RenderDetail(message));
  out_.flush();
  return kExitOk;
}

int Session::PrintList(const google::protobuf::Message& response, const Table& table) {
  out_ << (global_.json ? ToJson(response) + "\n" : RenderTable(table));
  out_.flush();
  return kExitOk;
}

int Session::PrintDone(const google::protobuf::Message& message, std::string_view text) {
  if (global_.json) {
    out_ << ToJson(message) << "\n";
  } else {
    out_ << text << "\n";
  }
  out_.flush();
  return kExitOk;
}

}  // namespace herald::heraldctl
