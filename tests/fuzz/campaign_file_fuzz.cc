// libFuzzer target: heraldctl's campaign file reader (heraldctl/campaign_input.h): YAML or JSON
// text onto the Campaign message, then its short names resolved. Whatever the bytes, it never
// crashes or runs away; YAML that loads always becomes valid JSON; a file that parses names only
// fields it sets, and the campaign it yields reads back the same from its own JSON.
//
// Input: the text of one campaign file.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/parse.hpp>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <herald/heraldctl/campaign_input.h>
#include <herald/heraldctl/names.h>
#include <herald/v1/campaign.pb.h>

namespace {

void Check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (absl::StatusOr<std::string> json = herald::heraldctl::YamlToJson(text); json.ok()) {
    // The converter's output is JSON (bytes of the file that are not UTF-8 pass through as is).
    boost::json::parse_options options;
    options.allow_invalid_utf8 = true;
    options.max_depth = size + 1;  // as deep as the file nests
    boost::json::error_code ec;
    (void)boost::json::parse(*json, ec, {}, options);
    Check(!ec);
  }

  herald::v1::Campaign campaign;
  std::vector<std::string> paths;
  if (!herald::heraldctl::ParseCampaignFile(text, &campaign, &paths).ok()) return 0;
  for (const std::string& path : paths) {
    Check(campaign.GetDescriptor()->FindFieldByName(path) != nullptr);
  }

  // What the file set reads back identically from the campaign's own JSON.
  std::string json;
  Check(google::protobuf::util::MessageToJsonString(campaign, &json).ok());
  herald::v1::Campaign again;
  std::vector<std::string> again_paths;
  Check(herald::heraldctl::ParseCampaignFile(json, &again, &again_paths).ok());
  Check(google::protobuf::util::MessageDifferencer::Equals(campaign, again));

  (void)herald::heraldctl::ResolveCampaignNames(herald::heraldctl::Names("acme"), &campaign);
  return 0;
}
