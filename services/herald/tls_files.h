// A server's TLS certificate and key from PEM files, read again when they change on disk (a
// renewed certificate is picked up by new connections without a restart), for the HTTP servers
// (http::ServerConfig::tls).
//
//   HERALD_ASSIGN_OR_RETURN(auto files, TlsFiles::Load("ingest_tls", cert, key, absl::Minutes(1)));
//   config.tls = [files] { return files->Current(); };
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace herald {

// OK when `path` holds at least one PEM certificate (a CA bundle); otherwise InvalidArgument
// naming `--<flag>`.
absl::Status CheckCaFile(std::string_view flag, const std::string& path);

class TlsFiles {
 public:
  // Reads the files now; an unreadable file or a certificate and key that do not load or do
  // not match is InvalidArgument, naming `--<flag_prefix>_cert_file` or `_key_file`.
  static absl::StatusOr<std::shared_ptr<TlsFiles>> Load(std::string flag_prefix,
                                                        std::string cert_file, std::string key_file,
                                                        absl::Duration reload_interval);

  // The context to serve a new connection with. At most once per reload interval it looks at
  // the files, and loads them again when they changed; files that no longer load leave the
  // previous context in use (and are logged). Thread-safe.
  std::shared_ptr<boost::asio::ssl::context> Current();

 private:
  TlsFiles(std::string flag_prefix, std::string cert_file, std::string key_file,
           absl::Duration reload_interval);
  // The files' modification times and sizes: what "changed" compares.
  std::string Stamp() const;
  // A context of the files as they are now.
  absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> Read() const;

  const std::string flag_prefix_;
  const std::string cert_file_;
  const std::string key_file_;
  const absl::Duration reload_interval_;
  std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;  // guarded by mu_
  std::string stamp_;                                   // guarded by mu_
  absl::Time checked_;                                  // guarded by mu_
};

}  // namespace herald
