// Reading upstream JSON: a document that keeps the source text of its numbers, and a reader
// that extracts typed fields with errors naming the JSON path.
//
// Why the number text: money must be exact. Boost.JSON 1.81 turns 15.2 into a binary double,
// has no option to keep the text of numbers (later releases added parse_options::numbers), and
// its conversion is not always correctly rounded (115886693330064.09 parses to ...064.08).
// Re-printing the double in shortest form would inherit that error. So the document is
// built with a basic_parser handler that records the text of every non-integer number, keyed by
// the double it produced; money is then parsed from that decimal text (money.h), never from the
// double. Integers are exact in Boost.JSON already.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>
#include <boost/json/value.hpp>

#include <herald/upstream/money.h>

namespace herald::upstream::internal {

class JsonDocument {
 public:
  // Parses `text` (one JSON value; no comments, no trailing commas, at most 64 levels deep).
  static absl::StatusOr<JsonDocument> Parse(std::string_view text);

  const boost::json::value& root() const { return root_; }

  // The source texts that produced the double `d` somewhere in this document. Distinct texts
  // can round to the same double ("0.1" and "0.10", or "1.0" and "1.00000000000000001"), so
  // there may be several; empty when `d` did not come from this document.
  const std::vector<std::string>& NumberTexts(double d) const;

 private:
  friend struct JsonDocumentHandler;

  boost::json::value root_;
  std::unordered_map<uint64_t, std::vector<std::string>> number_texts_;  // by the double's bits
};

// A view of one JSON value of a document, with its path ("data.items[3]") for error messages.
// Extraction errors are sticky: the first one is kept in status(), later reads return defaults,
// so a response struct is filled field by field and checked once at the end:
//
//   ObjectReader o = JsonReader(doc, "data").Object();
//   item.id = o.RequiredId("id");
//   item.pending = o.Int("pending");
//   HERALD_RETURN_IF_ERROR(o.status());
class ObjectReader;
class ArrayReader;

class JsonReader {
 public:
  // The document's root, named `path` in errors.
  JsonReader(const JsonDocument& doc, std::string path);

  const std::string& path() const { return path_; }
  const boost::json::value& value() const { return *value_; }
  bool is_null() const { return value_->is_null(); }

  // Conversions record an error (on the reader's sticky status) when the type is wrong.
  ObjectReader Object();
  ArrayReader Array();
  int64_t Int();         // a JSON integer, or a string holding one ("123")
  std::string String();  // a JSON string
  std::string IdText();  // a string, or an integer written in decimal
  bool Bool();
  // A number or string, dollars to exact cents; negative only when `options` allow it.
  int64_t MoneyCents(MoneyParseOptions options = {});

  // The first error of this reader and of every reader derived from it (and its parents).
  const absl::Status& status() const { return *error_; }

 protected:
  friend class ObjectReader;
  friend class ArrayReader;

  // A reader of `value`, a part of `parent`'s value, sharing its document and error.
  JsonReader(const JsonReader& parent, const boost::json::value* value, std::string path);
  void Fail(std::string_view what);

  const JsonDocument* doc_;
  const boost::json::value* value_;
  std::string path_;
  std::shared_ptr<absl::Status> error_;  // shared by a reader and those derived from it
};

class ObjectReader : public JsonReader {
 public:
  bool Has(std::string_view key) const;  // present and not null

  // Optional fields: absent or null gives the default; a wrong type is an error.
  int64_t Int(std::string_view key, int64_t fallback = 0);
  std::optional<int64_t> OptionalInt(std::string_view key);
  std::string String(std::string_view key);
  bool Bool(std::string_view key, bool fallback = false);
  std::optional<int64_t> OptionalMoneyCents(std::string_view key, MoneyParseOptions options = {});

  // Required fields: absent or null is an error.
  int64_t RequiredId(std::string_view key);          // integer or numeric string, >= 0
  std::string RequiredIdText(std::string_view key);  // string or integer, non-empty
  std::string RequiredString(std::string_view key);
  JsonReader Required(std::string_view key);  // any type

  // The member `key`, or nullopt when absent or null.
  std::optional<JsonReader> Get(std::string_view key);

 private:
  friend class JsonReader;
  explicit ObjectReader(JsonReader&& base) : JsonReader(std::move(base)) {}
};

class ArrayReader : public JsonReader {
 public:
  size_t size() const;
  JsonReader At(size_t i);  // path "<array>[i]"

 private:
  friend class JsonReader;
  explicit ArrayReader(JsonReader&& base) : JsonReader(std::move(base)) {}
};

}  // namespace herald::upstream::internal
