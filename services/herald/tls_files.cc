#include "tls_files.h"

#include <filesystem>
#include <system_error>

#include <boost/asio/ssl/context.hpp>

#include <herald/common/log.h>
#include <herald/common/strings.h>

namespace herald {
namespace {

namespace ssl = boost::asio::ssl;

// "<mtime>:<size>" of `path`, or empty when it cannot be read.
std::string FileStamp(const std::string& path) {
  std::error_code ec;
  const auto time = std::filesystem::last_write_time(path, ec);
  if (ec) return "";
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return "";
  return StrCat(time.time_since_epoch().count(), ":", size);
}

}  // namespace

absl::Status CheckCaFile(std::string_view flag, const std::string& path) {
  ssl::context context(ssl::context::tls_server);
  boost::system::error_code ec;
  context.load_verify_file(path, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        StrCat("--", flag, ": cannot load '", path, "' as PEM certificates: ", ec.message()));
  }
  return absl::OkStatus();
}

TlsFiles::TlsFiles(std::string flag_prefix, std::string cert_file, std::string key_file,
                   absl::Duration reload_interval)
    : flag_prefix_(std::move(flag_prefix)),
      cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      reload_interval_(reload_interval) {}

absl::StatusOr<std::shared_ptr<TlsFiles>> TlsFiles::Load(std::string flag_prefix,
                                                         std::string cert_file,
                                                         std::string key_file,
                                                         absl::Duration reload_interval) {
  std::shared_ptr<TlsFiles> files(new TlsFiles(std::move(flag_prefix), std::move(cert_file),
                                               std::move(key_file), reload_interval));
  files->stamp_ = files->Stamp();
  auto context = files->Read();
  if (!context.ok()) return context.status();
  files->current_ = *std::move(context);
  files->checked_ = absl::Now();
  return files;
}

std::string TlsFiles::Stamp() const {
  return StrCat(FileStamp(cert_file_), "/", FileStamp(key_file_));
}

absl::StatusOr<std::shared_ptr<ssl::context>> TlsFiles::Read() const {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  // TLS 1.2 and later only.
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert_file_, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        StrCat("--", flag_prefix_, "_cert_file: cannot load '", cert_file_, "': ", ec.message()));
  }
  context->use_private_key_file(key_file_, ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        StrCat("--", flag_prefix_, "_key_file: cannot load '", key_file_,
               "' (or it does not match the certificate): ", ec.message()));
  }
  return context;
}

std::shared_ptr<ssl::context> TlsFiles::Current() {
  std::lock_guard lock(mu_);
  const absl::Time now = absl::Now();
  if (now - checked_ < reload_interval_) return current_;
  checked_ = now;
  std::string stamp = Stamp();
  if (stamp == stamp_) return current_;
  auto context = Read();
  if (!context.ok()) {
    log::Error("TLS files changed but do not load; serving with the previous ones",
               {{"error", context.status().message()}});
    return current_;
  }
  current_ = *std::move(context);
  stamp_ = std::move(stamp);
  log::Info("TLS certificate reloaded", {{"cert_file", cert_file_}});
  return current_;
}

}  // namespace herald
