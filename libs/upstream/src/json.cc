#include "json.h"

#include <bit>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

#include <herald/common/strings.h>
#include <herald/upstream/money.h>

namespace herald::upstream::internal {

namespace json = boost::json;

// Builds the document's value exactly as boost::json::parse would (same value_stack calls), and
// also records the source text of every non-integer number.
struct JsonDocumentHandler {
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  explicit JsonDocumentHandler(JsonDocument* doc) : doc(doc) {}

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return true; }
  bool on_object_end(std::size_t n, json::error_code&) {
    st.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    st.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    st.push_string(s);
    return true;
  }
  // A number split across input chunks arrives in parts; the last part comes with its value.
  bool on_number_part(json::string_view s, json::error_code&) {
    number.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    number.clear();
    st.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    number.clear();
    st.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view s, json::error_code&) {
    number.append(s.data(), s.size());
    std::vector<std::string>& texts = doc->number_texts_[std::bit_cast<uint64_t>(d)];
    bool known = false;
    for (const std::string& t : texts) known = known || t == number;
    if (!known) texts.push_back(number);
    number.clear();
    st.push_double(d);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

  JsonDocument* doc;
  json::value_stack st;
  std::string number;
};

absl::StatusOr<JsonDocument> JsonDocument::Parse(std::string_view text) {
  JsonDocument doc;
  json::parse_options options;
  options.max_depth = 64;
  json::basic_parser<JsonDocumentHandler> parser(options, &doc);
  parser.handler().st.reset();
  json::error_code ec;
  const size_t consumed = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && consumed != text.size()) ec = json::error::extra_data;
  if (ec) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("invalid JSON at byte ", consumed, ": ", ec.message())));
  }
  doc.root_ = parser.handler().st.release();
  return doc;
}

const std::vector<std::string>& JsonDocument::NumberTexts(double d) const {
  static const std::vector<std::string> kNone;
  const auto it = number_texts_.find(std::bit_cast<uint64_t>(d));
  return it == number_texts_.end() ? kNone : it->second;
}

// --- JsonReader ---

namespace {

const json::value& NullValue() {
  static const json::value kNull;
  return kNull;
}

std::string_view KindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

}  // namespace

JsonReader::JsonReader(const JsonDocument& doc, std::string path)
    : doc_(&doc),
      value_(&doc.root()),
      path_(std::move(path)),
      error_(std::make_shared<absl::Status>()) {}

JsonReader::JsonReader(const JsonReader& parent, const json::value* value, std::string path)
    : doc_(parent.doc_), value_(value), path_(std::move(path)), error_(parent.error_) {}

void JsonReader::Fail(std::string_view what) {
  if (!error_->ok()) return;
  const std::string where = path_.empty() ? "response" : path_;
  *error_ = absl::InvalidArgumentError(ToAbsl(StrCat(where, ": ", what)));
}

ObjectReader JsonReader::Object() {
  if (value_->is_object()) return ObjectReader(JsonReader(*this, value_, path_));
  Fail(StrCat("expected an object, got ", KindName(*value_)));
  return ObjectReader(JsonReader(*this, &NullValue(), path_));
}

ArrayReader JsonReader::Array() {
  if (value_->is_array()) return ArrayReader(JsonReader(*this, value_, path_));
  Fail(StrCat("expected an array, got ", KindName(*value_)));
  return ArrayReader(JsonReader(*this, &NullValue(), path_));
}

int64_t JsonReader::Int() {
  if (value_->is_int64()) return value_->get_int64();
  if (value_->is_uint64()) {
    Fail("integer out of range");
    return 0;
  }
  if (value_->is_string()) {
    const json::string& s = value_->get_string();
    if (auto v = ParseInt<int64_t>(std::string_view(s.data(), s.size()))) return *v;
    Fail(StrCat("expected an integer, got string \"", std::string_view(s.data(), s.size()), "\""));
    return 0;
  }
  Fail(StrCat("expected an integer, got ", KindName(*value_)));
  return 0;
}

std::string JsonReader::String() {
  if (value_->is_string()) return std::string(value_->get_string());
  Fail(StrCat("expected a string, got ", KindName(*value_)));
  return {};
}

std::string JsonReader::IdText() {
  if (value_->is_string()) return std::string(value_->get_string());
  if (value_->is_int64()) return StrCat(value_->get_int64());
  if (value_->is_uint64()) return StrCat(value_->get_uint64());
  Fail(StrCat("expected an id (string or integer), got ", KindName(*value_)));
  return {};
}

bool JsonReader::Bool() {
  if (value_->is_bool()) return value_->get_bool();
  Fail(StrCat("expected a boolean, got ", KindName(*value_)));
  return false;
}

int64_t JsonReader::MoneyCents(MoneyParseOptions options) {
  absl::StatusOr<int64_t> cents = absl::InvalidArgumentError("");
  if (value_->is_int64()) {
    cents = ParseMoneyCents(StrCat(value_->get_int64()), options);
  } else if (value_->is_uint64()) {
    cents = ParseMoneyCents(StrCat(value_->get_uint64()), options);
  } else if (value_->is_string()) {
    const json::string& s = value_->get_string();
    cents = ParseMoneyCents(std::string_view(s.data(), s.size()), options);
  } else if (value_->is_double()) {
    // Every text that produced this double must name the same amount.
    const std::vector<std::string>& texts = doc_->NumberTexts(value_->get_double());
    if (texts.empty()) {
      Fail("number without source text");
      return 0;
    }
    for (const std::string& text : texts) {
      absl::StatusOr<int64_t> c = ParseMoneyCents(text, options);
      if (!c.ok() || (cents.ok() && *cents != *c)) {
        cents = c.ok() ? absl::InvalidArgumentError(
                             ToAbsl(StrCat("ambiguous amount: ", StrJoin(texts, " and "),
                                           " are the same binary number")))
                       : c;
        break;
      }
      cents = c;
    }
  } else {
    Fail(StrCat("expected a money amount, got ", KindName(*value_)));
    return 0;
  }
  if (!cents.ok()) {
    Fail(ToStd(cents.status().message()));
    return 0;
  }
  return *cents;
}

// --- ObjectReader ---

std::optional<JsonReader> ObjectReader::Get(std::string_view key) {
  if (!value_->is_object()) return std::nullopt;
  const json::value* member =
      value_->get_object().if_contains(json::string_view(key.data(), key.size()));
  if (member == nullptr || member->is_null()) return std::nullopt;
  return JsonReader(*this, member, path_.empty() ? std::string(key) : StrCat(path_, ".", key));
}

bool ObjectReader::Has(std::string_view key) const {
  if (!value_->is_object()) return false;
  const json::value* member =
      value_->get_object().if_contains(json::string_view(key.data(), key.size()));
  return member != nullptr && !member->is_null();
}

int64_t ObjectReader::Int(std::string_view key, int64_t fallback) {
  std::optional<JsonReader> member = Get(key);
  return member.has_value() ? member->Int() : fallback;
}

std::optional<int64_t> ObjectReader::OptionalInt(std::string_view key) {
  std::optional<JsonReader> member = Get(key);
  if (!member.has_value()) return std::nullopt;
  return member->Int();
}

std::string ObjectReader::String(std::string_view key) {
  std::optional<JsonReader> member = Get(key);
  return member.has_value() ? member->String() : std::string();
}

bool ObjectReader::Bool(std::string_view key, bool fallback) {
  std::optional<JsonReader> member = Get(key);
  return member.has_value() ? member->Bool() : fallback;
}

std::optional<int64_t> ObjectReader::OptionalMoneyCents(std::string_view key,
                                                        MoneyParseOptions options) {
  std::optional<JsonReader> member = Get(key);
  if (!member.has_value()) return std::nullopt;
  return member->MoneyCents(options);
}

JsonReader ObjectReader::Required(std::string_view key) {
  std::optional<JsonReader> member = Get(key);
  if (member.has_value()) return *std::move(member);
  JsonReader missing(*this, &NullValue(),
                     path_.empty() ? std::string(key) : StrCat(path_, ".", key));
  missing.Fail("required field is missing");
  return missing;
}

int64_t ObjectReader::RequiredId(std::string_view key) {
  JsonReader member = Required(key);
  if (member.is_null()) return 0;
  const int64_t id = member.Int();
  if (id < 0) member.Fail("ids are never negative");
  return id;
}

std::string ObjectReader::RequiredIdText(std::string_view key) {
  JsonReader member = Required(key);
  if (member.is_null()) return {};
  std::string id = member.IdText();
  if (id.empty() && member.status().ok()) member.Fail("empty id");
  return id;
}

std::string ObjectReader::RequiredString(std::string_view key) {
  JsonReader member = Required(key);
  return member.is_null() ? std::string() : member.String();
}

// --- ArrayReader ---

size_t ArrayReader::size() const { return value_->is_array() ? value_->get_array().size() : 0; }

JsonReader ArrayReader::At(size_t i) {
  return JsonReader(*this, &value_->get_array().at(i), StrCat(path_, "[", i, "]"));
}

}  // namespace herald::upstream::internal
