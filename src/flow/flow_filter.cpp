#include "flow/flow_filter.h"

#include "core/ipv4.h"
#include "qos/hierarchy.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <span>
#include <utility>

namespace fairgate {
namespace {

using Json = nlohmann::ordered_json;

std::string in_quotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

// A member's values: the member itself, or each element when it is an array. Strings are
// always accepted, numbers with `numbers_too`. An empty array is refused: as a criterion it
// would match no flow, as fields it would show nothing.
template <typename Each>
void for_each_value(const JsonField& field, bool numbers_too, Each each) {
  auto value = [&](const JsonField& value, bool in_array) {
    if (value.raw().is_string() || (numbers_too && value.raw().is_number())) return each(value);
    const std::string kinds = in_array ? (numbers_too ? "a number or a string" : "a string")
                                       : (numbers_too ? "a number, a string or an array of them"
                                                      : "a string or an array of them");
    value.fail("must be " + kinds + ", not " + value.raw().type_name());
  };
  if (!field.is_array()) return value(field, false);
  if (field.size() == 0) field.fail("empty list");
  for (std::size_t i = 0; i < field.size(); ++i) value(field.at(i), true);
}

// The items of a comma-separated list ("80,443,8000-8100"); `example` shows the operator one.
template <typename Each>
void for_each_item(const JsonField& field, std::string_view text, std::string_view example, Each each) {
  if (text.empty()) field.fail("empty; give e.g. " + in_quotes(example));
  for (std::string_view rest = text;;) {
    auto comma = rest.find(',');
    auto item = rest.substr(0, comma);
    if (item.empty()) field.fail(in_quotes(text) + " has an empty item");
    each(item);
    if (comma == std::string_view::npos) return;
    rest.remove_prefix(comma + 1);
  }
}

// "a.b.c.d", "a.b.c.d/len" or "a.b.c.d/m.m.m.m", as the network it names.
Ipv4Prefix parse_address(const JsonField& field) {
  const std::string text = field.string();
  const auto slash = text.find('/');
  const std::string_view address = std::string_view(text).substr(0, slash);
  if (!parse_ipv4(address)) {
    if (slash == std::string::npos) field.fail(in_quotes(text) + " is not an IPv4 address");
    field.fail(in_quotes(text) + ": " + in_quotes(address) + " is not an IPv4 address");
  }
  std::string prefix_text = text;
  if (slash != std::string::npos) {
    const std::string_view mask_text = std::string_view(text).substr(slash + 1);
    if (mask_text.find('.') != std::string_view::npos) {
      auto mask = parse_ipv4(mask_text);
      if (!mask) field.fail(in_quotes(text) + ": " + in_quotes(mask_text) + " is not a dotted mask");
      const auto length = static_cast<uint8_t>(std::popcount(*mask));
      if (Ipv4Prefix{0, length}.mask() != *mask)
        field.fail(in_quotes(text) + ": mask " + std::string(mask_text) + " is not contiguous (ones, then zeros)");
      // Written as its length, so that one parser (the subscribers' and WAN policies') decides
      // what a prefix with host bits means.
      prefix_text = std::string(address) + "/" + std::to_string(length);
    }
  }
  auto prefix = parse_host_or_prefix(prefix_text);
  if (!prefix) field.fail(in_quotes(text) + ": the prefix length must be 0 to 32, or a dotted mask");
  return *prefix;
}

// What the items of a port or protocol criterion are.
struct NumberKind {
  std::string_view noun;  // "port"
  uint32_t max;
  std::span<const std::pair<std::string_view, uint8_t>> names;  // accepted for a number
  std::string_view hint;  // after "is not a <noun> number"
  std::string_view example;
};

constexpr std::pair<std::string_view, uint8_t> kProtocolNames[] = {{"tcp", 6}, {"udp", 17}, {"icmp", 1}};
constexpr NumberKind kPort{"port", 65535, {}, " (0-65535)", "80,443,8000-8100"};
constexpr NumberKind kProtocol{"protocol", 255, kProtocolNames, " (0-255) or name (tcp, udp, icmp)", "tcp,udp,50-51"};

struct NumberRange {
  uint32_t first, last;
};

// One end of a range, or a single value: digits or, for protocols, a name. `item` is the whole
// item, named in the error when it is a range.
uint32_t parse_number(const JsonField& field, std::string_view text, std::string_view item, const NumberKind& kind) {
  const std::string context = text == item ? "" : in_quotes(item) + ": ";
  for (const auto& [name, value] : kind.names)
    if (text == name) return value;
  if (text.empty() || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    field.fail(context + in_quotes(text) + " is not a " + std::string(kind.noun) + " number" + std::string(kind.hint));
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || value > kind.max)  // too many digits for 64 bits is over too
    field.fail(context + std::string(kind.noun) + " " + std::string(text) + " is over " + std::to_string(kind.max));
  return static_cast<uint32_t>(value);
}

// A number, "first-last", or a list of those in a string; sorted and merged, so that a match
// stops at the first range past the value and the echo shows each value once.
std::vector<NumberRange> parse_ranges(const JsonField& field, const NumberKind& kind) {
  std::vector<NumberRange> ranges;
  for_each_value(field, true, [&](const JsonField& value) {
    if (value.raw().is_number()) {
      auto number = static_cast<uint32_t>(value.unsigned_in(0, kind.max));
      ranges.push_back({number, number});
      return;
    }
    for_each_item(value, value.string(), kind.example, [&](std::string_view item) {
      const auto dash = item.find('-');
      const uint32_t first = parse_number(value, item.substr(0, dash), item, kind);
      const uint32_t last =
          dash == std::string_view::npos ? first : parse_number(value, item.substr(dash + 1), item, kind);
      if (first > last)
        value.fail("range " + in_quotes(item) + " runs backwards: " + std::to_string(first) + " is above " +
                   std::to_string(last));
      ranges.push_back({first, last});
    });
  });
  std::sort(ranges.begin(), ranges.end(), [](const NumberRange& a, const NumberRange& b) { return a.first < b.first; });
  std::vector<NumberRange> merged;
  for (const NumberRange& range : ranges) {
    if (!merged.empty() && range.first <= merged.back().last + 1)
      merged.back().last = std::max(merged.back().last, range.last);
    else
      merged.push_back(range);
  }
  return merged;
}

// A range's echo: the single value as a number (or its name), else "first-last".
Json range_json(const NumberRange& range, std::span<const std::pair<std::string_view, uint8_t>> names) {
  if (range.first != range.last) return std::to_string(range.first) + "-" + std::to_string(range.last);
  for (const auto& [name, value] : names)
    if (value == range.first) return name;
  return range.first;
}

std::vector<std::string> parse_names(const JsonField& field) {
  std::vector<std::string> names;
  for_each_value(field, false, [&](const JsonField& value) {
    names.push_back(value.string());
    if (names.back().empty()) value.fail("empty name");
  });
  return names;
}

std::vector<std::string> parse_classes(const JsonField& field) {
  std::vector<std::string> classes;
  for_each_value(field, false, [&](const JsonField& value) {
    auto name = value.string();
    if (std::none_of(kTrafficClasses.begin(), kTrafficClasses.end(),
                     [&](const TrafficClassSpec& spec) { return spec.name == name; })) {
      std::string known;
      for (const auto& spec : kTrafficClasses) known += (known.empty() ? "" : ", ") + std::string(spec.name);
      value.fail(in_quotes(name) + " is not a class: " + known);
    }
    classes.push_back(name);
  });
  return classes;
}

// An absent criterion (empty) admits every flow.
bool admits(const std::vector<std::string>& names, const std::string& name) {
  return names.empty() || std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

FlowFilter FlowFilter::parse(const JsonField& args) {
  FlowFilter filter;
  auto addresses = [](const JsonField& field) {
    std::vector<AddressMask> masks;
    for_each_value(field, false, [&](const JsonField& value) {
      const Ipv4Prefix prefix = parse_address(value);
      masks.push_back({prefix.network(), prefix.mask()});
    });
    return masks;
  };
  auto ports = [](const JsonField& field) {
    std::vector<PortRange> ranges;
    for (const auto& range : parse_ranges(field, kPort))
      ranges.push_back({static_cast<uint16_t>(range.first), static_cast<uint16_t>(range.last)});
    return ranges;
  };
  if (auto f = args.find("src")) filter.src_ = addresses(*f);
  if (auto f = args.find("dst")) filter.dst_ = addresses(*f);
  if (auto f = args.find("sport")) filter.sport_ = ports(*f);
  if (auto f = args.find("dport")) filter.dport_ = ports(*f);
  if (auto f = args.find("proto")) {
    filter.proto_.emplace();
    for (const auto& range : parse_ranges(*f, kProtocol))
      for (uint32_t proto = range.first; proto <= range.last; ++proto) filter.proto_->set(proto);
  }
  if (auto f = args.find("subscriber")) filter.subscribers_ = parse_names(*f);
  if (auto f = args.find("wan")) filter.wans_ = parse_names(*f);
  if (auto f = args.find("class")) filter.classes_ = parse_classes(*f);
  return filter;
}

bool FlowFilter::matches(const FlowReport& report) const {
  auto in_addresses = [](const std::vector<AddressMask>& masks, uint32_t address) {
    return masks.empty() || std::any_of(masks.begin(), masks.end(), [address](const AddressMask& m) {
             return (address & m.mask) == m.network;
           });
  };
  auto in_ranges = [](const std::vector<PortRange>& ranges, uint16_t port) {
    if (ranges.empty()) return true;
    for (const PortRange& range : ranges) {
      if (port < range.first) return false;  // sorted: the rest start higher still
      if (port <= range.last) return true;
    }
    return false;
  };
  const FlowKey& key = report.original;
  return in_addresses(src_, key.src) && in_addresses(dst_, key.dst) && in_ranges(sport_, key.sport) &&
         in_ranges(dport_, key.dport) && (!proto_ || proto_->test(key.proto)) &&
         admits(subscribers_, report.subscriber) && admits(wans_, report.wan) &&
         admits(classes_, report.traffic_class);
}

Json FlowFilter::to_json() const {
  Json json = Json::object();
  auto addresses = [](const std::vector<AddressMask>& masks) {
    Json list = Json::array();
    for (const AddressMask& m : masks)
      list.push_back(format_prefix({m.network, static_cast<uint8_t>(std::popcount(m.mask))}));
    return list;
  };
  auto ports = [](const std::vector<PortRange>& ranges) {
    Json list = Json::array();
    for (const PortRange& range : ranges) list.push_back(range_json({range.first, range.last}, {}));
    return list;
  };
  if (!src_.empty()) json["src"] = addresses(src_);
  if (!dst_.empty()) json["dst"] = addresses(dst_);
  if (!sport_.empty()) json["sport"] = ports(sport_);
  if (!dport_.empty()) json["dport"] = ports(dport_);
  if (proto_) {
    Json list = Json::array();
    for (uint32_t first = 0; first < 256; ++first) {
      if (!proto_->test(first)) continue;
      uint32_t last = first;
      while (last < 255 && proto_->test(last + 1)) ++last;
      list.push_back(range_json({first, last}, kProtocolNames));
      first = last;
    }
    json["proto"] = list;
  }
  if (!subscribers_.empty()) json["subscriber"] = subscribers_;
  if (!wans_.empty()) json["wan"] = wans_;
  if (!classes_.empty()) json["class"] = classes_;
  return json;
}

namespace {

// The record's fields after "event", in kFlowFieldNames' order.
struct FieldRenderer {
  std::string_view name;
  Json (*value)(const FlowReport&);
};
constexpr FieldRenderer kRenderers[] = {
    {"src", [](const FlowReport& r) -> Json { return format_ipv4(r.original.src); }},
    {"sport", [](const FlowReport& r) -> Json { return r.original.sport; }},
    {"dst", [](const FlowReport& r) -> Json { return format_ipv4(r.original.dst); }},
    {"dport", [](const FlowReport& r) -> Json { return r.original.dport; }},
    {"proto", [](const FlowReport& r) -> Json { return r.original.proto; }},
    {"nat_src", [](const FlowReport& r) -> Json { return format_ipv4(r.translated.src); }},
    {"nat_sport", [](const FlowReport& r) -> Json { return r.translated.sport; }},
    {"nat_dst", [](const FlowReport& r) -> Json { return format_ipv4(r.translated.dst); }},
    {"nat_dport", [](const FlowReport& r) -> Json { return r.translated.dport; }},
    {"subscriber", [](const FlowReport& r) -> Json { return r.subscriber; }},
    {"wan", [](const FlowReport& r) -> Json { return r.wan; }},
    {"in", [](const FlowReport& r) -> Json { return r.ingress_name; }},
    {"out", [](const FlowReport& r) -> Json { return r.egress_name; }},
    {"class", [](const FlowReport& r) -> Json { return r.traffic_class; }},
    {"application", [](const FlowReport& r) -> Json { return r.application; }},
    {"first_ms", [](const FlowReport& r) -> Json { return r.first_ms; }},
    {"last_ms", [](const FlowReport& r) -> Json { return r.last_ms; }},
    // The wall clock can step back between a flow's first and last packet.
    {"duration_ms", [](const FlowReport& r) -> Json { return r.last_ms > r.first_ms ? r.last_ms - r.first_ms : 0; }},
    {"packets", [](const FlowReport& r) -> Json { return r.packets[0]; }},
    {"bytes", [](const FlowReport& r) -> Json { return r.bytes[0]; }},
    {"reply_packets", [](const FlowReport& r) -> Json { return r.packets[1]; }},
    {"reply_bytes", [](const FlowReport& r) -> Json { return r.bytes[1]; }},
    {"tcp_flags", [](const FlowReport& r) -> Json { return tcp_flags_text(r.tcp_flags[0]); }},
    {"reply_tcp_flags", [](const FlowReport& r) -> Json { return tcp_flags_text(r.tcp_flags[1]); }},
    {"end_reason", [](const FlowReport& r) -> Json { return flow_end_reason_name(r.end_reason); }},
};

constexpr bool renderers_follow_field_names() {
  if (std::size(kRenderers) + 1 != kFlowFieldNames.size() || kFlowFieldNames[0] != "event") return false;
  for (std::size_t i = 0; i < std::size(kRenderers); ++i)
    if (kRenderers[i].name != kFlowFieldNames[i + 1]) return false;
  return true;
}
static_assert(renderers_follow_field_names(), "kRenderers must list kFlowFieldNames after \"event\", in order");

}  // namespace

FlowFieldSelection FlowFieldSelection::parse(const JsonField& args) {
  FlowFieldSelection selection;
  auto fields = args.find("fields");
  if (!fields) {
    selection.selected_.set();
    return selection;
  }
  selection.selected_.set(0);  // event
  for_each_value(*fields, false, [&](const JsonField& value) {
    for_each_item(value, value.string(), "src,dst,bytes", [&](std::string_view name) {
      auto it = std::find(kFlowFieldNames.begin(), kFlowFieldNames.end(), name);
      if (it == kFlowFieldNames.end()) {
        std::string known;
        for (auto field_name : kFlowFieldNames) known += (known.empty() ? "" : ", ") + std::string(field_name);
        value.fail(in_quotes(name) + " is not a field; the fields: " + known);
      }
      selection.selected_.set(static_cast<std::size_t>(it - kFlowFieldNames.begin()));
    });
  });
  return selection;
}

Json FlowFieldSelection::render(const FlowReport& report, std::string_view event) const {
  Json record = {{"event", event}};
  for (std::size_t i = 0; i < std::size(kRenderers); ++i)
    if (selected_.test(i + 1)) record[std::string(kRenderers[i].name)] = kRenderers[i].value(report);
  return record;
}

Json FlowFieldSelection::to_json() const {
  Json names = Json::array();
  for (std::size_t i = 0; i < kFlowFieldNames.size(); ++i)
    if (selected_.test(i)) names.push_back(kFlowFieldNames[i]);
  return names;
}

std::string tcp_flags_text(uint8_t flags) {
  static constexpr char kLetters[] = "CEUAPRSF";
  std::string text(8, '.');
  for (int bit = 0; bit < 8; ++bit)
    if (flags & (0x80 >> bit)) text[bit] = kLetters[bit];
  return text;
}

}  // namespace fairgate
