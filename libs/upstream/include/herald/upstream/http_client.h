// An HTTP/1.1 client for the upstream API, on Boost.Beast and Asio C++20 coroutines.
//
//   upstream::HttpClient http(executor, {.max_connections_per_host = 8});
//   absl::StatusOr<upstream::HttpResponse> res = co_await http.Send(
//       {.method = upstream::HttpMethod::kGet, .url = "https://app.onlyfansapi.com/api/accounts",
//        .headers = {{"Authorization", "Bearer ..."}}});
//
// - http:// and https:// URLs. TLS uses OpenSSL with certificate verification, SNI and host-name
//   verification on by default; `ca_file` replaces the system trust store with one CA bundle;
//   `insecure_skip_tls_verify` turns verification off and exists for tests only.
// - Keep-alive connection pool per origin (scheme, host, port), at most
//   `max_connections_per_host` connections each. Idle connections are reused, most recently
//   used first; a call that finds the pool full waits for a connection within its deadline.
// - An idle connection the server has closed (or that idled past `idle_timeout`) is detected
//   before the request is written and replaced by a fresh one, transparently. A written request
//   is never sent again: any failure after the request was written is kUnknownOutcome.
// - Every call has a total deadline (`HttpRequest::timeout`, else `request_timeout`), and
//   connecting (DNS, TCP, TLS handshake) has its own, shorter one (`connect_timeout`).
// - Responses larger than `max_response_bytes` (headers and body together) are refused.
// - Cancelling the awaiting coroutine (e.g. `co_await (http.Send(r) || timer.async_wait(...))`)
//   aborts the call promptly with kCancelled; its connection is closed, never returned to the
//   pool, and the pool stays usable.
//
// Errors carry an UpstreamError payload (see error.h). Send() classifies transport failures
// only; an HTTP error status is a successful Send() with that status, which the typed Client
// classifies.
//
// Thread safety: Send() may be called from any thread and awaited from coroutines on any
// executor; it resumes on the awaiting coroutine's executor. All connection work of one client
// runs on one strand of the executor given at construction: the upstream's rate limits (a few
// thousand calls a minute per team) are far below what one strand handles.
// Lifetime: the client must outlive every Send() it started. Destroying it closes idle
// connections.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <absl/time/time.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace herald::upstream {

enum class HttpMethod { kGet, kPost, kPut, kDelete };

std::string_view HttpMethodName(HttpMethod method);  // "GET", ...

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string url;  // absolute http:// or https:// URL; no user info
  // Extra headers. Host, Content-Length and User-Agent are set by the client.
  HttpHeaders headers;
  std::string body;
  // Total deadline for this call, from Send() to the last byte of the response; unset means
  // HttpClientConfig::request_timeout.
  std::optional<absl::Duration> timeout;
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;  // as received
  std::string body;

  // The first header named `name` (case-insensitive); nullopt when absent.
  std::optional<std::string_view> Header(std::string_view name) const;
};

struct HttpClientConfig {
  absl::Duration connect_timeout = absl::Seconds(5);   // DNS + TCP + TLS handshake
  absl::Duration request_timeout = absl::Seconds(30);  // default total deadline per call
  absl::Duration idle_timeout = absl::Seconds(30);     // idle connections older than this close
  int max_connections_per_host = 8;
  int64_t max_response_bytes = 8 << 20;  // headers + body
  std::string ca_file;  // PEM bundle to trust instead of the system store; empty: system store
  bool insecure_skip_tls_verify = false;  // tests only: accept any certificate
  std::string user_agent = "herald";
};

// Checks every field; errors name the field ("http.connect_timeout must be positive").
absl::Status ValidateHttpClientConfig(const HttpClientConfig& config);

class HttpClient {
 public:
  // `executor` runs the client's I/O (its strand is derived from it). Fails with
  // kInvalidArgument when the config is invalid or `ca_file` cannot be loaded.
  static absl::StatusOr<std::unique_ptr<HttpClient>> Create(boost::asio::any_io_executor executor,
                                                            HttpClientConfig config);
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Performs one request. Fails only for transport reasons (see error.h); any HTTP status is a
  // response.
  boost::asio::awaitable<absl::StatusOr<HttpResponse>> Send(HttpRequest request);

  const HttpClientConfig& config() const;

 private:
  class Impl;
  explicit HttpClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace herald::upstream
