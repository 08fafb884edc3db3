// Network helpers for tests: free ports and a minimal blocking HTTP/1.1 client.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <absl/status/statusor.h>
#include <absl/time/time.h>

namespace herald::testing {

// A TCP port on 127.0.0.1 for programs that cannot report the port they bound. It is free when
// picked and reserved for this process until it exits: ports come from below the kernel's
// ephemeral range, so no outgoing connection takes one, and each is held under a lock file
// that other test processes respect, so two tests running side by side never pick the same.
uint16_t PickFreePort();
// The file whose lock reserves `port` (for tests of the reservation itself).
std::string PortReservationPath(uint16_t port);

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
