// libFuzzer target: the request bodies Herald sends upstream and the simulator's parsing of them,
// both ways round.
//   - Herald's uploads (multipart/form-data, upstream/src/multipart.h through RequestFactory) and
//     mass message bodies (JSON) are read back by the simulator's parsers
//     (upstream_sim/multipart.h, validation.h): the simulator sees exactly the parts and fields
//     Herald meant, and Herald's JSON is always JSON.
//   - The simulator's parsers of its own untrusted input take the raw bytes as a multipart body
//     (its first line the Content-Type) and as every JSON body it accepts; they never crash, and
//     the parts they return lie inside the body.
//
// Input: the raw bytes are used as they are for the second, and read with FuzzedDataProvider
// for the first (file name, content type, bytes, message text, lists, price).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include <herald/upstream/http_client.h>
#include <herald/upstream/types.h>
#include <herald/upstream_sim/multipart.h>
#include <herald/upstream_sim/validation.h>

#include "requests.h"

namespace {

using namespace herald;  // NOLINT

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

const upstream::internal::RequestFactory& Factory() {
  static const auto* factory = new upstream::internal::RequestFactory(
      *upstream::internal::ParseOrigin("base_url", "https://app.onlyfansapi.com"), "key",
      absl::Minutes(5));
  return *factory;
}

std::string_view Header(const upstream::HttpRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return {};
}

// The parts of an upload as the simulator reads them.
std::vector<upstream_sim::FormPart> SimParts(const upstream::HttpRequest& request) {
  absl::StatusOr<std::string> boundary =
      upstream_sim::MultipartBoundary(Header(request, "Content-Type"));
  Check(boundary.ok());
  absl::StatusOr<std::vector<upstream_sim::FormPart>> parts =
      upstream_sim::ParseMultipart(*boundary, request.body);
  Check(parts.ok());
  return *std::move(parts);
}

// Well-formed UTF-8 as protobuf and JSON parsers take it (RFC 3629): no overlong forms (C0, C1;
// E0 or F0 with too small a second byte), no surrogates (ED A0..BF), nothing past U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    const auto second = static_cast<unsigned char>(n > 1 ? s[i + 1] : 0);
    if ((c == 0xE0 && second < 0xA0) || (c == 0xED && second > 0x9F) ||
        (c == 0xF0 && second < 0x90) || (c == 0xF4 && second > 0x8F)) {
      return false;
    }
    i += n;
  }
  return true;
}

void HeraldToSimulator(FuzzedDataProvider& in) {
  // A file upload.
  upstream::MediaFile file;
  file.file_name = in.ConsumeRandomLengthString(64);
  file.content_type = in.ConsumeRandomLengthString(64);
  file.data = in.ConsumeRandomLengthString(256);
  absl::StatusOr<upstream::HttpRequest> upload = Factory().UploadMediaFile("acct_1", file);
  if (upload.ok()) {
    const std::vector<upstream_sim::FormPart> parts = SimParts(*upload);
    Check(parts.size() == 1);
    Check(parts[0].name == "file" && parts[0].data == file.data);
    // Header values lose their surrounding spaces.
    std::string_view type = file.content_type;
    while (!type.empty() && type.front() == ' ') type.remove_prefix(1);
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    Check(parts[0].content_type == (file.content_type.empty() ? "application/octet-stream" : type));
    // Quotes and line breaks in the name are escaped; anything else arrives as it was.
    if (file.file_name.find_first_of("\"\r\n") == std::string::npos) {
      Check(parts[0].filename == file.file_name);
    }
  }

  // An upload from a URL.
  const std::string url = in.ConsumeRandomLengthString(128);
  if (absl::StatusOr<upstream::HttpRequest> r = Factory().UploadMediaFromUrl("acct_1", url);
      r.ok()) {
    const std::vector<upstream_sim::FormPart> parts = SimParts(*r);
    Check(parts.size() == 1 && parts[0].name == "file_url" && parts[0].data == url);
  }

  // A mass message.
  upstream::MassMessage m;
  m.text = in.ConsumeRandomLengthString(128);
  for (int i = in.ConsumeIntegralInRange(0, 3); i > 0; --i) {
    m.user_lists.push_back(in.ConsumeRandomLengthString(16));
  }
  for (int i = in.ConsumeIntegralInRange(0, 2); i > 0; --i) {
    m.user_ids.push_back(in.ConsumeIntegral<int64_t>());
  }
  for (int i = in.ConsumeIntegralInRange(0, 2); i > 0; --i) {
    m.media_files.push_back(in.ConsumeRandomLengthString(24));
  }
  if (in.ConsumeBool() && !m.media_files.empty()) m.previews.push_back(m.media_files[0]);
  m.price_cents = in.ConsumeIntegral<int64_t>();
  m.locked_text = in.ConsumeBool();
  absl::StatusOr<upstream::HttpRequest> send = Factory().SendMassMessage("acct_1", m);
  if (!send.ok()) return;
  const auto parsed = upstream_sim::ParseMassMessageBody(send->body, /*update=*/false);
  if (!IsValidUtf8(m.text)) return;  // protobuf strings, where texts come from, are UTF-8
  for (const std::string& s : m.user_lists) {
    if (!IsValidUtf8(s)) return;
  }
  for (const std::string& s : m.media_files) {
    if (!IsValidUtf8(s)) return;
  }
  // Always JSON; a rule of the simulator's own (a banned word, a blank text) may refuse it.
  Check(parsed.ok() || parsed.error().code != "invalid_json");
  if (parsed.ok()) {
    Check(parsed.value().text == m.text);
    Check(parsed.value().price_cents.value_or(0) == m.price_cents);
  }
}

void SimulatorInput(std::string_view raw) {
  const size_t eol = raw.find('\n');
  if (eol != std::string_view::npos) {
    if (absl::StatusOr<std::string> boundary = upstream_sim::MultipartBoundary(raw.substr(0, eol));
        boundary.ok()) {
      const std::string_view body = raw.substr(eol + 1);
      if (auto parts = upstream_sim::ParseMultipart(*boundary, body); parts.ok()) {
        for (const upstream_sim::FormPart& p : *parts) {
          Check(!p.name.empty());
          Check(p.data.data() >= body.data() &&
                p.data.data() + p.data.size() <= body.data() + body.size());
        }
      }
    }
  }
  (void)upstream_sim::ParseMassMessageBody(raw, /*update=*/false);
  (void)upstream_sim::ParseMassMessageBody(raw, /*update=*/true);
  (void)upstream_sim::ParseCreateListBody(raw);
  (void)upstream_sim::ParseUpdateListBody(raw);
  (void)upstream_sim::ParseAddUsersBody(raw, 1000);
  (void)upstream_sim::ParseIntParam("limit", raw.substr(0, 24), 10, 50, 10);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SimulatorInput(std::string_view(reinterpret_cast<const char*>(data), size));
  FuzzedDataProvider in(data, size);
  HeraldToSimulator(in);
  return 0;
}
