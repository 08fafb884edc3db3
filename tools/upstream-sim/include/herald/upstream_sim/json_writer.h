// A small streaming JSON writer for the simulator's responses and webhook bodies.
//
// The upstream writes money as plain decimal numbers (9.99, 25); Boost.JSON would print doubles
// in exponent form, so responses are written here instead, with commas and escaping handled:
//
//   JsonWriter w;
//   w.BeginObject().Key("id").Int(12).Key("price").Money(999).EndObject();
//   std::string body = w.Take();   // {"id":12,"price":9.99}
//
// Not thread-safe; one writer per document. Misuse (a value where a key is due) is not
// detected: callers are the simulator's own renderers, covered by tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::upstream_sim {

class JsonWriter {
 public:
  JsonWriter() { out_.reserve(512); }

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);

  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& UInt(uint64_t value);
  JsonWriter& Double(double value);  // shortest round-trip, never in exponent form for money
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Dollars as a JSON number from cents: 999 -> 9.99, 2500 -> 25.
  JsonWriter& Money(int64_t cents);
  // Already-serialised JSON, inserted as one value.
  JsonWriter& Raw(std::string_view json);

  // Shorthands for `Key(k).<Value>(v)`.
  JsonWriter& Field(std::string_view key, std::string_view value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, const char* value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, const std::string& value) {
    return Key(key).String(value);
  }
  JsonWriter& Field(std::string_view key, bool value) { return Key(key).Bool(value); }
  JsonWriter& Field(std::string_view key, int64_t value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, int value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, uint32_t value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, uint64_t value) { return Key(key).UInt(value); }
  JsonWriter& NullField(std::string_view key) { return Key(key).Null(); }

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void BeforeValue();

  std::string out_;
  std::vector<bool> has_elements_;  // one entry per open container
  bool after_key_ = false;
};

}  // namespace herald::upstream_sim
