// Human-readable rendering of control-socket results, as fairgatectl prints them without --json.
//
//   array of objects  -> table: one column per key (union of the rows' keys, first-seen order),
//                        a header row underlined with dashes, text left-aligned, numeric columns
//                        right-aligned, nested arrays/objects as compact one-line JSON
//   object            -> "key: value" lines with the values lined up; a value that is an array
//                        of objects becomes a table indented under its key, a nested object
//                        indented "key: value" lines
//   scalar            -> as is (strings without quotes, multi-line text kept as sent)
//
// Values are taken as ordered_json so tables keep the server's key order; plain nlohmann::json
// converts to it implicitly (but has already sorted its keys alphabetically).
// Every function returns complete lines, each ending in '\n'.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

namespace fairgate::ctl {

using Json = nlohmann::ordered_json;

// One value as text on one line: strings without quotes (control characters become spaces),
// integers in full with no exponent (also a float with an integral value below 1e21, so a byte
// count sent as 1.5e10 prints as 15000000000), other floats in shortest round-trip form,
// true/false, null as "-", arrays and objects as compact JSON.
std::string format_value(const Json& value);

// True for a non-empty array whose elements are all objects: what renders as a table.
bool is_table(const Json& value);

// Terminal columns a UTF-8 string takes, counting one per code point.
std::size_t display_width(const std::string& text);

// Table of `rows` (an array of objects), every line prefixed by `indent` spaces. A key missing
// from a row leaves its cell blank. An empty array renders as "(none)".
std::string format_table(const Json& rows, std::size_t indent = 0);

// "key: value" lines of `object`, every line prefixed by `indent` spaces; nested tables and
// objects are indented two more spaces under their key. When every inline value is a number,
// the numbers are right-aligned.
std::string format_object(const Json& object, std::size_t indent = 0);

// A whole result: a table, an object's lines, an array's elements one per line, or a scalar.
// A string result is printed verbatim (newlines kept). Empty arrays and objects render as
// "(none)", a null result as "ok".
std::string format_result(const Json& result);

}  // namespace fairgate::ctl
