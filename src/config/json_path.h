// A JSON value together with its path in the document ("ports[1].address"), so every error
// about configuration or command arguments names the field it is about.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace fairgate {

// Thrown by the control plane only (config loading, commands), never on the packet path.
class FieldError : public std::runtime_error {
 public:
  FieldError(std::string field, const std::string& reason)
      : std::runtime_error(field + ": " + reason), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

class JsonField {
 public:
  JsonField(const nlohmann::json& value, std::string path) : value_(&value), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  const nlohmann::json& raw() const { return *value_; }

  // Member `key` of an object; absent is an error naming the path.
  JsonField at(std::string_view key) const;
  std::optional<JsonField> find(std::string_view key) const;
  JsonField at(std::size_t index) const;
  std::size_t size() const;  // elements of an array (the value must be one)
  bool is_array() const { return value_->is_array(); }
  bool is_number() const { return value_->is_number_integer(); }

  std::string string() const;
  bool boolean() const;
  uint64_t unsigned_in(uint64_t min, uint64_t max) const;
  // The value paired with the field's string in `choices`; any other string or type fails
  // with `reason` (which should list the choices).
  template <typename T>
  T one_of(std::initializer_list<std::pair<std::string_view, T>> choices, const std::string& reason) const {
    if (value_->is_string())
      for (const auto& [name, value] : choices)
        if (value_->get_ref<const std::string&>() == name) return value;
    fail(reason);
  }

  // Fails on members other than `known`: a misspelt option must not be silently ignored.
  void reject_unknown(std::initializer_list<std::string_view> known) const {
    reject_unknown(std::span<const std::string_view>(known.begin(), known.size()));
  }
  // For commands whose members are assembled: a shared set (a flow filter's) plus their own.
  void reject_unknown(std::span<const std::string_view> known) const;
  [[noreturn]] void fail(const std::string& reason) const { throw FieldError(path_, reason); }

 private:
  void expect_object() const;
  const nlohmann::json* value_;
  std::string path_;
};

// A whole JSON document; text that does not parse is a FieldError naming `what` ("config").
nlohmann::json parse_json_document(std::string_view text, const std::string& what);
// A file's whole text; a file that cannot be read is a FieldError naming `what`.
std::string read_text_file(const std::filesystem::path& path, const std::string& what);

}  // namespace fairgate
