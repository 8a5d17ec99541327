#include "config/json_path.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace fairgate {
namespace {
std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
const char* type_name(const nlohmann::json& value) { return value.type_name(); }
}  // namespace

void JsonField::expect_object() const {
  if (!value_->is_object()) fail(std::string("must be an object, not ") + type_name(*value_));
}

JsonField JsonField::at(std::string_view key) const {
  auto field = find(key);
  if (!field) throw FieldError(join(path_, key), "required");
  return *field;
}

std::optional<JsonField> JsonField::find(std::string_view key) const {
  expect_object();
  auto it = value_->find(key);
  if (it == value_->end()) return std::nullopt;
  return JsonField(*it, join(path_, key));
}

JsonField JsonField::at(std::size_t index) const {
  return JsonField((*value_)[index], path_ + "[" + std::to_string(index) + "]");
}

std::size_t JsonField::size() const {
  if (!value_->is_array()) fail(std::string("must be an array, not ") + type_name(*value_));
  return value_->size();
}

std::string JsonField::string() const {
  if (!value_->is_string()) fail(std::string("must be a string, not ") + type_name(*value_));
  return value_->get<std::string>();
}

bool JsonField::boolean() const {
  if (!value_->is_boolean()) fail(std::string("must be true or false, not ") + type_name(*value_));
  return value_->get<bool>();
}

uint64_t JsonField::unsigned_in(uint64_t min, uint64_t max) const {
  if (!value_->is_number_integer() || (value_->is_number_integer() && !value_->is_number_unsigned() &&
                                       value_->get<int64_t>() < 0))
    fail("must be an integer between " + std::to_string(min) + " and " + std::to_string(max));
  auto value = value_->get<uint64_t>();
  if (value < min || value > max)
    fail(std::to_string(value) + " is out of range " + std::to_string(min) + ".." + std::to_string(max));
  return value;
}

void JsonField::reject_unknown(std::span<const std::string_view> known) const {
  expect_object();
  for (const auto& [key, value] : value_->items()) {
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw FieldError(join(path_, key), "unknown field");
  }
}

nlohmann::json parse_json_document(std::string_view text, const std::string& what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    throw FieldError(what, std::string("not valid JSON: ") + error.what());
  }
}

std::string read_text_file(const std::filesystem::path& path, const std::string& what) {
  std::ifstream file(path);
  if (!file) throw FieldError(what, "cannot read " + path.string());
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace fairgate
