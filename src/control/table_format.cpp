#include "control/table_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace fairgate::ctl {

namespace {

std::string compact_json(const Json& value) {
  // replace: a reply with invalid UTF-8 in a string still prints rather than throwing.
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Cells and lines must stay on one line each.
std::string one_line(const std::string& text) {
  std::string out = text;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

std::string format_float(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e21) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  return compact_json(Json(v));
}

bool is_inline(const Json& value) {
  if (value.is_object()) return value.empty();
  return !is_table(value);
}

void pad_to(std::string& out, const std::string& text, std::size_t width, bool right) {
  const std::size_t w = display_width(text);
  const std::size_t fill = w < width ? width - w : 0;
  if (right) out.append(fill, ' ');
  out += text;
  if (!right) out.append(fill, ' ');
}

void trim_trailing_spaces(std::string& line) {
  while (!line.empty() && line.back() == ' ') line.pop_back();
}

}  // namespace

std::string format_value(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "-";
    case Json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
      return std::to_string(value.get<std::int64_t>());
    case Json::value_t::number_unsigned:
      return std::to_string(value.get<std::uint64_t>());
    case Json::value_t::number_float:
      return format_float(value.get<double>());
    case Json::value_t::string:
      return one_line(value.get_ref<const std::string&>());
    default:
      return one_line(compact_json(value));
  }
}

bool is_table(const Json& value) {
  if (!value.is_array() || value.empty()) return false;
  return std::all_of(value.begin(), value.end(), [](const Json& row) { return row.is_object(); });
}

std::size_t display_width(const std::string& text) {
  std::size_t width = 0;
  for (char c : text) {
    // Continuation bytes (10xxxxxx) belong to the code point before them.
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++width;
  }
  return width;
}

std::string format_table(const Json& rows, std::size_t indent) {
  const std::string prefix(indent, ' ');
  if (!is_table(rows)) {
    return prefix + (rows.is_array() && rows.empty() ? std::string("(none)") : format_value(rows)) +
           "\n";
  }

  std::vector<std::string> columns;
  for (const Json& row : rows) {
    for (const auto& item : row.items()) {
      if (std::find(columns.begin(), columns.end(), item.key()) == columns.end()) {
        columns.push_back(item.key());
      }
    }
  }

  // A column is numeric when every value present (null aside) is a number.
  std::vector<bool> numeric(columns.size());
  std::vector<std::size_t> width(columns.size());
  for (std::size_t c = 0; c < columns.size(); ++c) {
    bool any_number = false;
    bool all_numbers = true;
    width[c] = display_width(columns[c]);
    for (const Json& row : rows) {
      auto it = row.find(columns[c]);
      if (it == row.end()) continue;
      if (it->is_number()) {
        any_number = true;
      } else if (!it->is_null()) {
        all_numbers = false;
      }
      width[c] = std::max(width[c], display_width(format_value(*it)));
    }
    numeric[c] = any_number && all_numbers;
  }

  std::string out;
  auto emit_row = [&](auto&& cell_text) {
    std::string line = prefix;
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (c > 0) line += "  ";
      pad_to(line, cell_text(c), width[c], numeric[c]);
    }
    trim_trailing_spaces(line);
    out += line;
    out += '\n';
  };
  emit_row([&](std::size_t c) { return columns[c]; });
  emit_row([&](std::size_t c) { return std::string(width[c], '-'); });
  for (const Json& row : rows) {
    emit_row([&](std::size_t c) {
      auto it = row.find(columns[c]);
      return it == row.end() ? std::string() : format_value(*it);
    });
  }
  return out;
}

std::string format_object(const Json& object, std::size_t indent) {
  const std::string prefix(indent, ' ');
  if (!object.is_object()) return format_table(object, indent);
  if (object.empty()) return prefix + "(none)\n";

  std::size_t key_width = 0;
  std::size_t value_width = 0;
  bool all_numbers = true;
  for (const auto& [key, value] : object.items()) {
    if (!is_inline(value)) continue;
    key_width = std::max(key_width, display_width(one_line(key)));
    value_width = std::max(value_width, display_width(format_value(value)));
    if (!value.is_number()) all_numbers = false;
  }

  std::string out;
  for (const auto& [key, value] : object.items()) {
    const std::string name = one_line(key);
    if (value.is_object() && !value.empty()) {
      out += prefix + name + ":\n" + format_object(value, indent + 2);
    } else if (is_table(value)) {
      out += prefix + name + ":\n" + format_table(value, indent + 2);
    } else {
      std::string line = prefix + name + ":";
      line.append(key_width - display_width(name) + 1, ' ');
      pad_to(line, format_value(value), all_numbers ? value_width : 0, all_numbers);
      trim_trailing_spaces(line);
      out += line;
      out += '\n';
    }
  }
  return out;
}

std::string format_result(const Json& result) {
  if (result.is_null()) return "ok\n";
  if ((result.is_array() || result.is_object()) && result.empty()) return "(none)\n";
  if (result.is_string()) {
    // A text result (a report, a graph) is printed as the server wrote it, newlines included.
    std::string text = result.get<std::string>();
    if (text.empty() || text.back() != '\n') text += '\n';
    return text;
  }
  if (result.is_object()) return format_object(result);
  if (is_table(result)) return format_table(result);
  if (result.is_array()) {
    std::string out;
    for (const Json& element : result) out += format_value(element) + "\n";
    return out;
  }
  return format_value(result) + "\n";
}

}  // namespace fairgate::ctl
