// Campaigns from the command line: a YAML or JSON file mapped onto the Campaign message, and
// flags applied over it. Pure: files are read by the caller.
//
// A campaign file holds a Campaign message in protobuf's JSON mapping; field names may be
// snake_case (as in the .proto) or lowerCamelCase. YAML is converted to JSON first: a plain
// scalar `true`/`false` is a boolean, `null`/`~` is null, every other scalar is a string (the
// JSON mapping accepts numbers as strings), so `price_cents: 1500` works and a text that looks
// like a boolean must be quoted.
//
//   display_name: Friday drop
//   content: {text: "New video, 50% off", price_cents: 1500, media: [teaser]}
//   targets:
//     - {account: acct_a, user_lists: [fans]}
//     - {account: acct_b, user_lists: [fans], excluded_lists: ["123"]}
//   send_time: 2026-05-01T20:00:00Z
//
// Short names in the file (media "teaser", account "acct_a", segment "top") are resolved like
// command-line arguments (see names.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include <herald/heraldctl/args.h>
#include <herald/heraldctl/names.h>

namespace herald::v1 {
class Campaign;
}  // namespace herald::v1

namespace herald::heraldctl {

// YAML (1.2 is a superset of JSON) to JSON text, with the scalar rule above. Aliases are
// expanded; kInvalidArgument when the result would nest deeper than 64 levels (an alias inside
// its own anchor) or outgrow 16 bytes per byte of YAML plus 64 KiB (aliases of aliases).
absl::StatusOr<std::string> YamlToJson(std::string_view yaml);

// Parses a campaign file's text (JSON when it starts with '{', YAML otherwise) into `campaign`.
// Appends the top-level fields the file sets to `paths` (for an update mask) when not null.
absl::Status ParseCampaignFile(std::string_view text, v1::Campaign* campaign,
                               std::vector<std::string>* paths);

// The flags of `campaigns create` and `campaigns update` that describe a campaign.
std::vector<FlagSpec> CampaignFlagSpecs();

// Applies the campaign flags of `command` over `campaign` and appends the update-mask paths they
// set to `paths` (content.text, content.price_cents, targets, ...). Reads --fans-file itself.
absl::Status ApplyCampaignFlags(const ParsedCommand& command, const Names& names,
                                v1::Campaign* campaign, std::vector<std::string>* paths);

// Resolves the short names in `campaign` (media, previews, targets' account and segment).
absl::Status ResolveCampaignNames(const Names& names, v1::Campaign* campaign);

}  // namespace herald::heraldctl
