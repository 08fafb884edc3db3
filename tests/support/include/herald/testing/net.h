// Network helpers for tests: free ports and a minimal blocking HTTP/1.1 client.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <absl/status/statusor.h>
#include <absl/time/time.h>

namespace herald::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released). For
// programs that cannot report the port they bound.
uint16_t PickFreePort();

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// One request over a fresh connection to 127.0.0.1:`port`.
absl::StatusOr<HttpResponse> HttpRequest(uint16_t port, std::string_view method,
                                         std::string_view target, std::string_view body = "",
                                         const std::map<std::string, std::string>& headers = {},
                                         absl::Duration timeout = absl::Seconds(10));

inline absl::StatusOr<HttpResponse> HttpGet(uint16_t port, std::string_view target) {
  return HttpRequest(port, "GET", target);
}

// True when something accepts TCP connections on 127.0.0.1:`port`.
bool PortAcceptsConnections(uint16_t port);

}  // namespace herald::testing
