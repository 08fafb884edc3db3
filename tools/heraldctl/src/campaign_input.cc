#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <absl/strings/str_format.h>
#include <absl/time/time.h>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <herald/common/strings.h>
#include <herald/heraldctl/campaign_input.h>
#include <herald/heraldctl/values.h>
#include <herald/v1/campaign.pb.h>

namespace herald::heraldctl {
namespace {

// The field a key names: protobuf reads a field by its name or by its name in lowerCamelCase, so
// "displayName" and "display_name" are one field.
std::string FieldName(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c >= 'A' && c <= 'Z') {
      out.push_back('_');
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// How a repeated key is reported, in a JSON object or a YAML mapping.
std::string RepeatedKey(std::string_view first, std::string_view again, std::string_view in) {
  if (first == again) return StrCat("'", again, "' appears twice in one ", in);
  return StrCat("'", again, "' repeats '", first, "' (one field) in one ", in);
}

// Reads JSON for CheckJson: only the keys matter, to find one an object repeats (protobuf's
// parser takes the last and says nothing). "displayName" and "display_name" name one field.
class JsonKeyChecker {
 public:
  static constexpr size_t max_object_size = static_cast<size_t>(-1);
  static constexpr size_t max_array_size = static_cast<size_t>(-1);
  static constexpr size_t max_key_size = static_cast<size_t>(-1);
  static constexpr size_t max_string_size = static_cast<size_t>(-1);

  using ec = boost::json::error_code;
  using sv = boost::json::string_view;

  // Once the parser stopped at a repeated key: how it was written the first time and now.
  struct Repeat {
    std::string first;
    std::string again;
  };
  const std::optional<Repeat>& repeated() const { return repeated_; }

  bool on_document_begin(ec&) { return true; }
  bool on_document_end(ec&) { return true; }
  bool on_object_begin(ec&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(size_t, ec&) {
    keys_.pop_back();
    return true;
  }
  bool on_array_begin(ec&) { return true; }
  bool on_array_end(size_t, ec&) { return true; }
  bool on_key_part(sv s, size_t, ec&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(sv s, size_t, ec& error) {
    key_.append(s.data(), s.size());
    auto [it, added] = keys_.back().emplace(FieldName(key_), key_);
    if (!added) {
      repeated_ = Repeat{.first = it->second, .again = std::move(key_)};
      error = boost::json::error::syntax;
      return false;
    }
    key_.clear();
    return true;
  }
  bool on_string_part(sv, size_t, ec&) { return true; }
  bool on_string(sv, size_t, ec&) { return true; }
  bool on_number_part(sv, ec&) { return true; }
  bool on_int64(int64_t, sv, ec&) { return true; }
  bool on_uint64(uint64_t, sv, ec&) { return true; }
  bool on_double(double, sv, ec&) { return true; }
  bool on_bool(bool, ec&) { return true; }
  bool on_null(ec&) { return true; }
  bool on_comment_part(sv, ec&) { return true; }
  bool on_comment(sv, ec&) { return true; }

 private:
  // Of each object open, innermost last: its keys as field names, each as first written.
  std::vector<std::map<std::string, std::string>> keys_;
  std::string key_;
  std::optional<Repeat> repeated_;
};

// `offset` of `text` as an editor counts it (from 1).
std::string Where(std::string_view text, size_t offset) {
  const std::string_view before = text.substr(0, offset);
  const size_t newline = before.rfind('\n');
  const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
  return StrCat("line ", std::count(before.begin(), before.end(), '\n') + 1, ", column ",
                Utf8Length(before.substr(line_start)) + 1);
}

// Strict JSON (RFC 8259: no trailing commas, no comments), one value, no key twice in one
// object; the error says where the file goes wrong, as YamlToJson's do.
absl::Status CheckJson(std::string_view text) {
  boost::json::basic_parser<JsonKeyChecker> parser(boost::json::parse_options{});
  boost::json::error_code error;
  size_t at = parser.write_some(false, text.data(), text.size(), error);
  if (!error) {
    at = text.find_first_not_of(" \t\r\n", at);
    if (at == std::string_view::npos) return absl::OkStatus();
    error = boost::json::error::extra_data;
  }
  const auto& repeated = parser.handler().repeated();
  if (!repeated) {
    return absl::InvalidArgumentError(
        StrCat("not valid JSON: ", Where(text, at), ": ", error.message()));
  }
  // The parser stopped at the key's closing quote (or just past it); point at its opening one.
  size_t quote = std::min(at, text.size() - 1);
  if (text[quote] != '"' && quote > 0) --quote;
  if (quote > 0) --quote;
  while (quote > 0 && !(text[quote] == '"' && text[quote - 1] != '\\')) --quote;
  return absl::InvalidArgumentError(
      StrCat("not valid JSON: ", Where(text, quote), ": ",
             RepeatedKey(repeated->first, repeated->again, "object")));
}

// Aliases let a few bytes of YAML repeat a node any number of times, or put a node inside
// itself. The JSON is bounded so that neither runs away: in depth (a campaign nests four levels;
// a node inside itself nests forever) and in size (a file without aliases yields at most about
// three bytes of JSON per byte).
constexpr int kMaxYamlDepth = 64;
constexpr size_t kMaxJsonBytesPerYamlByte = 16;
constexpr size_t kJsonSlackBytes = 64 << 10;

// Where `node` starts in the file, as an editor counts (from 1).
std::string Where(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return StrCat("line ", mark.line + 1, ", column ", mark.column + 1);
}

// Whether the quoted scalar that starts at `pos` of `source` (at its quote) closes. yaml-cpp 0.7
// takes an unclosed quote as running to the end of the file, swallowing the fields after it.
bool QuoteCloses(std::string_view source, size_t pos) {
  const char quote = source[pos];
  for (size_t i = pos + 1; i < source.size(); ++i) {
    if (quote == '"' && source[i] == '\\') {
      ++i;  // an escape: the next character is not the closing quote
    } else if (source[i] == quote) {
      if (quote == '\'' && i + 1 < source.size() && source[i + 1] == '\'') {
        ++i;  // '' is a quote inside a single-quoted value
      } else {
        return true;
      }
    }
  }
  return false;
}

absl::Status AppendJson(std::string& out, const YAML::Node& node, std::string_view source,
                        int depth, size_t max_bytes) {
  if (depth > kMaxYamlDepth) {
    return absl::InvalidArgumentError(StrCat("YAML nested deeper than ", kMaxYamlDepth,
                                             " levels (an alias inside its own anchor?)"));
  }
  if (out.size() > max_bytes) {
    return absl::InvalidArgumentError(
        StrCat("YAML aliases expand to more than ", max_bytes, " bytes of JSON"));
  }
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      out.push_back('{');
      bool first = true;
      std::map<std::string, std::string> keys;  // field name -> the key as first written
      for (const auto& entry : node) {
        const std::string& key = entry.first.Scalar();
        if (auto [it, added] = keys.emplace(FieldName(key), key); !added) {
          return absl::InvalidArgumentError(
              StrCat(Where(entry.first), ": ", RepeatedKey(it->second, key, "mapping")));
        }
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(out, entry.first.Scalar());
        out.push_back(':');
        if (absl::Status s = AppendJson(out, entry.second, source, depth + 1, max_bytes); !s.ok()) {
          return s;
        }
      }
      out.push_back('}');
      break;
    }
    case YAML::NodeType::Sequence: {
      out.push_back('[');
      bool first = true;
      for (const auto& element : node) {
        if (!first) out.push_back(',');
        first = false;
        if (absl::Status s = AppendJson(out, element, source, depth + 1, max_bytes); !s.ok()) {
          return s;
        }
      }
      out.push_back(']');
      break;
    }
    case YAML::NodeType::Scalar: {
      const std::string& value = node.Scalar();
      const size_t pos = static_cast<size_t>(node.Mark().pos);
      if (node.Tag() == "!" && pos < source.size() && (source[pos] == '"' || source[pos] == '\'') &&
          !QuoteCloses(source, pos)) {
        return absl::InvalidArgumentError(StrCat(Where(node),
                                                 ": a quoted value that never closes (its ",
                                                 source[pos], " has no match)"));
      }
      // Plain (unquoted) scalars have the non-specific tag "?"; quoted ones "!".
      if (node.Tag() == "?" && (value == "true" || value == "false")) {
        out.append(value);
      } else if (node.Tag() == "?" && (value == "null" || value == "~")) {
        out.append("null");
      } else {
        AppendJsonString(out, value);
      }
      break;
    }
    default:
      out.append("null");
  }
  return absl::OkStatus();
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

// The JSON mapping's text of `d` ("1800s", "1.5s"), or nullopt beyond what it can hold here.
std::optional<std::string> JsonDuration(absl::Duration d) {
  if (d < absl::ZeroDuration() || d > absl::Hours(24 * 365 * 100)) return std::nullopt;
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  if (nanos == 0) return StrCat(seconds, "s");
  return absl::StrFormat("%d.%09ds", seconds, nanos);
}

// A campaign file's durations and send time may be written as the flags take them ("30m",
// "2030-05-01T20:00:00+02:00"): they are turned into the JSON mapping's forms ("1800s", UTC),
// which are all protobuf reads. Anything else is left for protobuf to judge.
std::string WithJsonMappingTimes(std::string json) {
  boost::system::error_code ec;
  boost::json::value root = boost::json::parse(json, ec);
  if (ec || !root.is_object()) return json;
  bool changed = false;
  for (auto& [key, value] : root.as_object()) {
    if (!value.is_string()) continue;
    const std::string_view text(value.as_string().data(), value.as_string().size());
    std::optional<std::string> converted;
    if (key == "grace_period" || key == "gracePeriod" || key == "upstream_lead" ||
        key == "upstreamLead") {
      if (absl::StatusOr<absl::Duration> d = ParseDurationFlag(key, text); d.ok()) {
        converted = JsonDuration(*d);
      }
    } else if (key == "send_time" || key == "sendTime") {
      if (absl::StatusOr<absl::Time> t = ParseTime(key, text); t.ok()) {
        converted = absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", *t, absl::UTCTimeZone());
      }
    }
    if (converted && *converted != text) {
      value = *converted;
      changed = true;
    }
  }
  return changed ? boost::json::serialize(root) : json;
}

// The line (from 1) where a second YAML document begins, if one does: a `---` or `...` marker at
// the start of a line after content (markers end any scalar, block or not), or content after a
// `...`.
std::optional<int> SecondDocumentLine(std::string_view yaml) {
  const auto marker = [](std::string_view line, std::string_view m) {
    return line.starts_with(m) &&
           (line.size() == m.size() || line[m.size()] == ' ' || line[m.size()] == '\t');
  };
  const auto content = [](std::string_view rest) {
    const size_t at = rest.find_first_not_of(" \t");
    return at != std::string_view::npos && rest[at] != '#';
  };
  bool seen_content = false;
  bool ended = false;  // a `...` closed the document
  int number = 0;
  for (std::string_view rest = yaml; !rest.empty();) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    ++number;
    if (marker(line, "---")) {
      if (seen_content || ended) return number;
      seen_content = content(line.substr(3));
    } else if (marker(line, "...")) {
      ended = true;
      if (content(line.substr(3))) return number;
    } else if (content(line) && !line.starts_with('%')) {
      if (ended) return number;
      seen_content = true;
    }
  }
  return std::nullopt;
}

// The line (from 1) where `text` (YAML or JSON) first writes `key` as a mapping's key: the key,
// quoted or not, then a colon, after a line's indentation, a `- `, `{` or `,`.
std::optional<int> KeyLine(std::string_view text, std::string_view key) {
  if (key.empty()) return std::nullopt;
  for (size_t at = text.find(key); at != std::string_view::npos; at = text.find(key, at + 1)) {
    size_t before = at;
    if (before > 0 && (text[before - 1] == '"' || text[before - 1] == '\'')) --before;
    size_t after = at + key.size();
    if (after < text.size() && (text[after] == '"' || text[after] == '\'')) ++after;
    while (after < text.size() && (text[after] == ' ' || text[after] == '\t')) ++after;
    if (after >= text.size() || text[after] != ':') continue;
    while (before > 0 && (text[before - 1] == ' ' || text[before - 1] == '\t')) --before;
    if (before > 0 && text[before - 1] != '\n' && text[before - 1] != '{' &&
        text[before - 1] != ',' && text[before - 1] != '-') {
      continue;
    }
    return 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::string> YamlToJson(std::string_view yaml) {
  try {
    // One document: a second one is refused rather than silently left out (yaml-cpp reads the
    // first alone).
    if (const std::optional<int> second = SecondDocumentLine(yaml); second.has_value()) {
      return absl::InvalidArgumentError(StrCat("not valid YAML: line ", *second,
                                               ": a second document; a campaign file holds one"));
    }
    const YAML::Node root = YAML::Load(std::string(yaml));
    std::string out;
    const size_t max_bytes = yaml.size() * kMaxJsonBytesPerYamlByte + kJsonSlackBytes;
    if (absl::Status s = AppendJson(out, root, yaml, 0, max_bytes); !s.ok()) {
      return absl::InvalidArgumentError(StrCat("not valid YAML: ", s.message()));
    }
    return out;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("not valid YAML: ", e.what()));
  }
}

absl::Status ParseCampaignFile(std::string_view text, v1::Campaign* campaign,
                               std::vector<std::string>* paths) {
  size_t start = 0;
  while (start < text.size() && (text[start] == ' ' || text[start] == '\n' || text[start] == '\r' ||
                                 text[start] == '\t')) {
    ++start;
  }
  std::string json;
  if (start < text.size() && text[start] == '{') {
    if (absl::Status s = CheckJson(text); !s.ok()) return s;
    json = std::string(text);
  } else {
    absl::StatusOr<std::string> converted = YamlToJson(text);
    if (!converted.ok()) return converted.status();
    json = *std::move(converted);
    if (json == "null") json = "{}";
    if (json.empty() || json.front() != '{') {
      return absl::InvalidArgumentError("a campaign file must hold a mapping (Campaign fields)");
    }
  }
  json = WithJsonMappingTimes(std::move(json));
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(json, campaign, options);
  if (!status.ok()) {
    const std::string message(status.message());
    // An unknown key is named by protobuf ("(targets[2]) acount: Cannot find field."); the file's
    // line of it is worth more to whoever wrote the file.
    std::string where;
    constexpr std::string_view kUnknown = ": Cannot find field.";
    if (const size_t end = message.find(kUnknown); end != std::string::npos) {
      const size_t space = message.find_last_of(" )", end);
      const size_t from = space == std::string::npos ? 0 : space + 1;
      const std::string_view key = std::string_view(message).substr(from, end - from);
      if (const std::optional<int> line = KeyLine(text, key); line.has_value()) {
        where = StrCat("line ", *line, ": ");
      }
    }
    return absl::InvalidArgumentError(
        StrCat("campaign file does not match the Campaign message: ", where, message));
  }
  if (paths != nullptr) {
    std::vector<const google::protobuf::FieldDescriptor*> fields;
    campaign->GetReflection()->ListFields(*campaign, &fields);
    for (const auto* field : fields) paths->push_back(field->name());
  }
  return absl::OkStatus();
}

std::vector<FlagSpec> CampaignFlagSpecs() {
  return {
      {"file", "FILE", "campaign fields from a YAML or JSON file (see README); flags override"},
      {"display-name", "TEXT", "name for operators"},
      {"text", "TEXT", "message text (HTML allowed)"},
      {"price", "DOLLARS", "price, e.g. 15.00 (0 or 3.00-200.00; priced messages need media)"},
      {"price-cents", "CENTS", "price in cents, e.g. 1500"},
      {"media", "IDS", "media assets to attach, comma separated"},
      {"previews", "IDS", "free previews: a subset of --media"},
      {"locked-text", "", "hide the text until the message is unlocked"},
      {"accounts", "IDS",
       "target accounts (acct_...), comma separated; each gets the targets "
       "below"},
      {"all-accounts", "", "target every account of the tenant (of --team when given)"},
      {"team", "TEAM", "with --all-accounts: only the accounts of this team"},
      {"lists", "IDS", "upstream lists to send to: fans, recent, expired, or custom list ids"},
      {"fans", "IDS", "upstream fan ids, comma separated"},
      {"fans-file", "FILE", "fan ids from a file (comma, space or newline separated; - for stdin)"},
      {"exclude-lists", "IDS", "upstream lists whose fans are excluded"},
      {"segment", "ID", "a Herald segment, turned into a list on each account"},
      {"send-at", "TIME",
       "send time, RFC 3339 (2026-05-01T20:00:00Z); unset sends now, and an empty one "
       "(--send-at=) clears it on update, sending a scheduled campaign now"},
      {"grace-period", "DURATION", "how late a scheduled send may still go out (15m, 2h)"},
      {"upstream-lead", "DURATION",
       "hand the message to the upstream this long before --send-at, to hold until then (2h)"},
  };
}

absl::Status ApplyCampaignFlags(const ParsedCommand& command, const Names& names,
                                v1::Campaign* campaign, std::vector<std::string>* paths) {
  if (command.Has("display-name")) {
    campaign->set_display_name(command.Get("display-name"));
    paths->push_back("display_name");
  }
  v1::MessageContent* content = campaign->mutable_content();
  if (command.Has("text")) {
    content->set_text(command.Get("text"));
    paths->push_back("content.text");
  }
  if (command.Has("price") && command.Has("price-cents")) {
    return absl::InvalidArgumentError("give --price or --price-cents, not both");
  }
  if (command.Has("price")) {
    absl::StatusOr<int64_t> cents = ParsePriceCents("price", command.Get("price"));
    if (!cents.ok()) return cents.status();
    content->set_price_cents(*cents);
    paths->push_back("content.price_cents");
  }
  if (command.Has("price-cents")) {
    const std::optional<int64_t> cents = ParseInt<int64_t>(command.Get("price-cents"));
    if (!cents || *cents < 0) {
      return absl::InvalidArgumentError(
          StrCat("--price-cents: '", command.Get("price-cents"), "' is not a number of cents"));
    }
    content->set_price_cents(*cents);
    paths->push_back("content.price_cents");
  }
  if (command.Has("media")) {
    content->clear_media();
    for (const std::string& id : ParseList(command.Get("media"))) content->add_media(id);
    paths->push_back("content.media");
  }
  if (command.Has("previews")) {
    content->clear_previews();
    for (const std::string& id : ParseList(command.Get("previews"))) content->add_previews(id);
    paths->push_back("content.previews");
  }
  if (command.Has("locked-text")) {
    content->set_locked_text(command.GetBool("locked-text"));
    paths->push_back("content.locked_text");
  }

  const bool any_target_flag = command.Has("lists") || command.Has("fans") ||
                               command.Has("fans-file") || command.Has("exclude-lists") ||
                               command.Has("segment");
  if (any_target_flag && !command.Has("accounts")) {
    return absl::InvalidArgumentError(
        "--lists, --fans, --fans-file, --exclude-lists and --segment need --accounts or "
        "--all-accounts");
  }
  if (command.Has("fans") && command.Has("fans-file")) {
    return absl::InvalidArgumentError("give --fans or --fans-file, not both");
  }
  if (command.Has("accounts")) {
    const std::vector<std::string> accounts = ParseList(command.Get("accounts"));
    if (accounts.empty()) return absl::InvalidArgumentError("--accounts: no account ids");
    v1::AccountTarget prototype;
    for (const std::string& list : ParseList(command.Get("lists"))) prototype.add_user_lists(list);
    for (const std::string& list : ParseList(command.Get("exclude-lists"))) {
      prototype.add_excluded_lists(list);
    }
    if (command.Has("segment")) prototype.set_segment(command.Get("segment"));
    std::string fans_text;
    std::string fans_flag;
    if (command.Has("fans")) {
      fans_text = command.Get("fans");
      fans_flag = "fans";
    } else if (command.Has("fans-file")) {
      absl::StatusOr<std::string> text = ReadFile(command.Get("fans-file"));
      if (!text.ok()) return text.status();
      fans_text = *std::move(text);
      fans_flag = "fans-file";
    }
    if (!fans_flag.empty()) {
      absl::StatusOr<std::vector<int64_t>> ids = ParseFanIds(fans_flag, fans_text);
      if (!ids.ok()) return ids.status();
      for (int64_t id : *ids) prototype.add_fan_ids(id);
    }
    if (prototype.user_lists().empty() && prototype.fan_ids().empty() &&
        prototype.segment().empty()) {
      prototype.add_user_lists("fans");  // the upstream's list of every active fan
    }
    campaign->clear_targets();
    for (const std::string& account : accounts) {
      v1::AccountTarget* target = campaign->add_targets();
      *target = prototype;
      target->set_account(account);
    }
    paths->push_back("targets");
  }
  if (command.Has("send-at")) {
    if (command.Get("send-at").empty()) {
      campaign->clear_send_time();
    } else {
      absl::StatusOr<absl::Time> t = ParseTime("send-at", command.Get("send-at"));
      if (!t.ok()) return t.status();
      SetTimestamp(*t, campaign->mutable_send_time());
    }
    paths->push_back("send_time");
  }
  // Duration flags: each sets its field and names it in the mask.
  const struct {
    std::string_view flag, path;
    google::protobuf::Duration* (v1::Campaign::*field)();
  } durations[] = {{"grace-period", "grace_period", &v1::Campaign::mutable_grace_period},
                   {"upstream-lead", "upstream_lead", &v1::Campaign::mutable_upstream_lead}};
  for (const auto& [flag, path, field] : durations) {
    if (!command.Has(flag)) continue;
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(flag, command.Get(flag));
    if (!d.ok()) return d.status();
    SetDuration(*d, (campaign->*field)());
    paths->emplace_back(path);
  }
  return ResolveCampaignNames(names, campaign);
}

absl::Status ResolveCampaignNames(const Names& names, v1::Campaign* campaign) {
  const auto resolve = [&](std::string_view collection, std::string* value) -> absl::Status {
    if (value->empty()) return absl::OkStatus();
    absl::StatusOr<std::string> name = names.Resolve(collection, *value);
    if (!name.ok()) return name.status();
    *value = *std::move(name);
    return absl::OkStatus();
  };
  v1::MessageContent* content = campaign->mutable_content();
  for (std::string& media : *content->mutable_media()) {
    if (absl::Status s = resolve("media", &media); !s.ok()) return s;
  }
  for (std::string& media : *content->mutable_previews()) {
    if (absl::Status s = resolve("media", &media); !s.ok()) return s;
  }
  for (v1::AccountTarget& target : *campaign->mutable_targets()) {
    if (absl::Status s = resolve("accounts", target.mutable_account()); !s.ok()) return s;
    if (absl::Status s = resolve("segments", target.mutable_segment()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace herald::heraldctl
