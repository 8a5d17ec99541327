#include "config/qos_parse.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>
#include <utility>

namespace fairgate {
namespace {

constexpr uint64_t kMinRateBps = 8000;                 // 8 kbit/s: below, a link is not one
constexpr uint64_t kMaxRateBps = 400'000'000'000ull;   // 400 Gbit/s
constexpr std::size_t kMaxSubscribers = 65536;

struct RateUnit {
  std::string_view name;
  double bits_per_second;
};
// tc's units, as FairNAT documents them: "kbit" is 1000 bit/s, "kbps" 1000 bytes/s.
constexpr RateUnit kRateUnits[] = {{"bit", 1},   {"kbit", 1e3},  {"mbit", 1e6},  {"gbit", 1e9},
                                   {"bps", 8},   {"kbps", 8e3},  {"mbps", 8e6},  {"gbps", 8e9}};

struct FramingPreset {
  std::string_view name;
  int32_t overhead;
  uint16_t mpu;
  LinkFraming::Cells cells;
};
// Bytes beyond the Ethernet frame without FCS (what the mbuf holds) that the link carries.
constexpr FramingPreset kFramingPresets[] = {
    {"ethernet", 24, 0, LinkFraming::Cells::kNone},  // preamble+SFD 8, FCS 4, inter-frame gap 12
    {"pppoe", 32, 0, LinkFraming::Cells::kNone},     // Ethernet + PPPoE 6 + PPP 2
    // ADSL, PPPoE over LLC/SNAP: PPPoE+PPP 8, LLC/SNAP 10, AAL5 trailer 8; no Ethernet FCS.
    {"atm", 22, 0, LinkFraming::Cells::kAtm},
    // VDSL2 PTM with PPPoE: FCS 4, PPPoE+PPP 8, PTM 64/65 encoding.
    {"vdsl", 12, 0, LinkFraming::Cells::kPtm},
    // DOCSIS: the Ethernet FCS only; the cable modem counts frames of at least 64 bytes.
    {"docsis", 4, 64, LinkFraming::Cells::kNone},
};


}  // namespace

PlanRates parse_plan(const JsonField& field) {
  PlanRates plan;
  field.reject_unknown({"rate", "ceil"});
  if (auto f = field.find("rate")) plan.rate_bps = parse_rate(*f);
  if (auto f = field.find("ceil")) plan.ceil_bps = parse_rate(*f);
  if (plan.rate_bps && plan.ceil_bps && plan.rate_bps > plan.ceil_bps)
    field.at("ceil").fail(format_rate(plan.ceil_bps) + " is below the guaranteed rate " + format_rate(plan.rate_bps));
  return plan;
}

uint64_t parse_rate(const JsonField& field) {
  double value = 0;
  double scale = 1e3;  // a bare number is kbit/s, FairNAT's default unit
  std::string text;
  if (field.raw().is_number()) {
    value = field.raw().get<double>();
    text = field.raw().dump();
  } else {
    text = field.string();
    std::size_t end = 0;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
    char* parsed_end = nullptr;
    std::string number = text.substr(0, end);
    value = std::strtod(number.c_str(), &parsed_end);
    if (number.empty() || *parsed_end != '\0')
      field.fail("\"" + text + "\" is not a rate (a number with kbit, mbit, gbit, bit, kbps, mbps, gbps or bps)");
    // tc takes units in any case ("2Mbit").
    std::string unit_text = text.substr(end);
    for (auto& c : unit_text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view unit = unit_text;
    if (!unit.empty()) {
      bool known = false;
      for (const auto& candidate : kRateUnits)
        if (unit == candidate.name) {
          scale = candidate.bits_per_second;
          known = true;
        }
      if (!known)
        field.fail("\"" + text + "\": unknown unit \"" + std::string(unit) +
                   "\" (kbit, mbit, gbit, bit, kbps, mbps, gbps, bps)");
    }
  }
  double bps = value * scale;
  if (!std::isfinite(bps) || bps < static_cast<double>(kMinRateBps) || bps > static_cast<double>(kMaxRateBps))
    field.fail(text + " is out of range 8kbit..400gbit");
  return static_cast<uint64_t>(std::llround(bps));
}

std::string format_rate(uint64_t bps) {
  if (bps % 1'000'000'000 == 0 && bps != 0) return std::to_string(bps / 1'000'000'000) + "gbit";
  if (bps % 1'000'000 == 0 && bps != 0) return std::to_string(bps / 1'000'000) + "mbit";
  if (bps % 1'000 == 0 && bps != 0) return std::to_string(bps / 1'000) + "kbit";
  return std::to_string(bps) + "bit";
}

void parse_port_shaping(const JsonField& field, PortConfig& port) {
  bool wan = port.role == PortRole::kWan;
  if (auto f = field.find("rate")) {
    if (wan) f->fail("a wan port has rate_down and rate_up instead");
    port.rate_bps = parse_rate(*f);
  }
  for (const char* key : {"rate_down", "rate_up"})
    if (auto f = field.find(key)) {
      if (!wan) f->fail("only wan ports have it (a lan port's link rate is \"rate\")");
      (std::string_view(key) == "rate_down" ? port.rate_down_bps : port.rate_up_bps) = parse_rate(*f);
    }
  if (auto f = field.find("overhead")) {
    if (f->raw().is_number()) {
      // Read as a double first: a huge unsigned would wrap into range as an int64_t.
      double value = f->raw().get<double>();
      if (!f->raw().is_number_integer()) f->fail(f->raw().dump() + " is not a whole number of bytes");
      if (value < -64 || value > 256) f->fail(f->raw().dump() + " is out of range -64..256");
      port.framing.preset = "custom";
      port.framing.overhead = static_cast<int32_t>(value);
      port.framing.cells = LinkFraming::Cells::kNone;
    } else {
      auto name = f->string();
      bool known = false;
      for (const auto& preset : kFramingPresets)
        if (name == preset.name) {
          port.framing = LinkFraming{std::string(preset.name), preset.overhead, preset.mpu, preset.cells};
          known = true;
        }
      if (!known) f->fail("\"" + name + "\" is not a byte count or one of ethernet, pppoe, atm, vdsl, docsis");
    }
  }
  if (auto f = field.find("mpu")) port.framing.mpu = static_cast<uint16_t>(f->unsigned_in(0, 256));
}

QosConfig parse_qos(const JsonField& field) {
  field.reject_unknown({"download", "upload", "rate_sub_percent", "rate_local_percent", "borrow", "user_ceil_down",
                        "user_ceil_up", "unknown_hosts", "idle_s", "max_subscribers", "bulk_after_bytes",
                        "interactive_ports", "interactive_packet_bytes", "aqm", "count_download_drops"});
  QosConfig qos;
  qos.download = qos.upload = true;
  if (auto f = field.find("download")) qos.download = f->boolean();
  if (auto f = field.find("upload")) qos.upload = f->boolean();
  if (auto f = field.find("rate_sub_percent")) qos.rate_sub_percent = static_cast<uint32_t>(f->unsigned_in(0, 50));
  if (auto f = field.find("rate_local_percent")) qos.rate_local_percent = static_cast<uint32_t>(f->unsigned_in(0, 50));
  if (auto f = field.find("borrow")) qos.borrow = f->boolean();
  if (auto f = field.find("user_ceil_down")) qos.user_ceil_down_bps = parse_rate(*f);
  if (auto f = field.find("user_ceil_up")) qos.user_ceil_up_bps = parse_rate(*f);
  if (auto f = field.find("unknown_hosts")) {
    auto mode = f->string();
    if (mode == "own") qos.unknown_hosts = QosConfig::UnknownHosts::kOwn;
    else if (mode == "shared") qos.unknown_hosts = QosConfig::UnknownHosts::kShared;
    else f->fail("must be \"own\" (a subscriber per host) or \"shared\" (one subscriber \"unknown\")");
  }
  if (auto f = field.find("idle_s")) qos.idle_s = static_cast<uint32_t>(f->unsigned_in(10, 86400));
  if (auto f = field.find("max_subscribers"))
    qos.max_subscribers = static_cast<uint32_t>(f->unsigned_in(1, kMaxSubscribers));
  if (auto f = field.find("bulk_after_bytes")) qos.bulk_after_bytes = f->unsigned_in(1500, uint64_t{1} << 40);
  if (auto f = field.find("interactive_ports")) {
    qos.interactive_ports.clear();
    if (f->size() > 64) f->fail("at most 64 ports");
    for (std::size_t i = 0; i < f->size(); ++i)
      qos.interactive_ports.push_back(static_cast<uint16_t>(f->at(i).unsigned_in(1, 65535)));
  }
  if (auto f = field.find("interactive_packet_bytes"))
    qos.interactive_packet_bytes = static_cast<uint16_t>(f->unsigned_in(40, 1500));
  if (auto f = field.find("aqm")) {
    auto aqm = f->string();
    if (aqm == "pie") qos.aqm = QosConfig::Aqm::kPie;
    else if (aqm == "red") qos.aqm = QosConfig::Aqm::kRed;
    else f->fail("must be \"pie\" or \"red\"");
  }
  if (auto f = field.find("count_download_drops")) qos.count_download_drops = f->boolean();
  return qos;
}

SubscriberConfig parse_subscriber(const JsonField& field, const std::vector<Ipv4Prefix>& lan_prefixes) {
  field.reject_unknown({"name", "addresses", "down", "up", "p2p"});
  SubscriberConfig subscriber;
  if (auto p2p = field.find("p2p")) subscriber.p2p = parse_p2p_policy(*p2p);
  auto name = field.at("name");
  subscriber.name = name.string();
  if (subscriber.name.empty() || subscriber.name.size() > 32 ||
      subscriber.name.find_first_of(" \t\n\"") != std::string::npos)
    name.fail("must be 1 to 32 characters without spaces or quotes");
  if (subscriber.name == kUnknownSubscriber) name.fail("\"unknown\" is kept for the hosts no subscriber covers");
  auto addresses = field.at("addresses");
  if (addresses.size() == 0) addresses.fail("must list at least one address or prefix");
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    auto entry = addresses.at(i);
    auto text = entry.string();
    std::optional<Ipv4Prefix> prefix = parse_host_or_prefix(text);
    if (!prefix) entry.fail("\"" + text + "\" is not an IPv4 address or prefix (10.10.0.7, 10.10.0.32/28)");
    bool on_lan = false;
    for (const auto& lan : lan_prefixes) on_lan |= lan.length <= prefix->length && lan.contains(prefix->network());
    if (!on_lan) entry.fail(text + " is not inside a LAN port's prefix");
    // A single host must be one; a prefix may cover the whole LAN (one shared subscriber).
    for (const auto& lan : lan_prefixes)
      if (prefix->length == 32 && (prefix->address == lan.address || prefix->address == lan.network() ||
                                   prefix->address == lan.broadcast()))
        entry.fail(text + " is the gateway's own, the network or the broadcast address of " + format_prefix(lan));
    for (std::size_t j = 0; j < subscriber.addresses.size(); ++j)
      if (prefixes_overlap(*prefix, subscriber.addresses[j]))
        entry.fail(text + " overlaps " + addresses.path() + "[" + std::to_string(j) + "]");
    subscriber.addresses.push_back(*prefix);
  }
  if (auto f = field.find("down")) subscriber.down = parse_plan(*f);
  if (auto f = field.find("up")) subscriber.up = parse_plan(*f);
  return subscriber;
}

std::vector<SubscriberConfig> parse_subscribers(const JsonField& field, const std::vector<Ipv4Prefix>& lan_prefixes) {
  if (field.size() > kMaxSubscribers) field.fail("at most " + std::to_string(kMaxSubscribers) + " subscribers");
  std::vector<SubscriberConfig> subscribers;
  std::set<std::string> names;
  for (std::size_t i = 0; i < field.size(); ++i) {
    auto entry = field.at(i);
    auto subscriber = parse_subscriber(entry, lan_prefixes);
    if (!names.insert(subscriber.name).second)
      entry.at("name").fail("\"" + subscriber.name + "\" names two subscribers");
    for (std::size_t a = 0; a < subscriber.addresses.size(); ++a)
      for (std::size_t other = 0; other < subscribers.size(); ++other)
        for (std::size_t b = 0; b < subscribers[other].addresses.size(); ++b)
          if (prefixes_overlap(subscriber.addresses[a], subscribers[other].addresses[b]))
            entry.at("addresses").at(a).fail(format_prefix(subscriber.addresses[a]) + " overlaps " + field.path() +
                                             "[" + std::to_string(other) + "].addresses[" + std::to_string(b) +
                                             "] (" + format_prefix(subscribers[other].addresses[b]) + ")");
    subscribers.push_back(std::move(subscriber));
  }
  return subscribers;
}

void check_qos(const JsonField& root, const Config& config) {
  const QosConfig& qos = config.qos;
  if (!qos.enabled()) {
    if (!config.subscribers.empty()) root.at("subscribers").fail("needs a qos section: subscribers are shaped");
    return;
  }
  // One pipe stays for hosts no subscriber covers ("unknown").
  if (config.subscribers.size() + 1 > qos.max_subscribers)
    root.at("qos").fail("max_subscribers (" + std::to_string(qos.max_subscribers) + ") leaves no room for the " +
                        std::to_string(config.subscribers.size()) + " subscribers and the \"unknown\" one");
  if (qos.rate_sub_percent + qos.rate_local_percent >= 100)
    root.at("qos").fail("rate_sub_percent and rate_local_percent leave nothing for the subscribers");
  uint64_t down = 0, up_min = UINT64_MAX;
  auto ports = root.at("ports");
  for (std::size_t i = 0; i < config.ports.size(); ++i) {
    const auto& port = config.ports[i];
    if (port.role != PortRole::kWan) continue;
    if (qos.download && port.rate_down_bps == 0)
      throw FieldError(ports.at(i).path() + ".rate_down", "required when qos.download is on");
    if (qos.upload && port.rate_up_bps == 0)
      throw FieldError(ports.at(i).path() + ".rate_up", "required when qos.upload is on");
    up_min = std::min(up_min, port.rate_up_bps);
  }
  // Downloads arrive over the link the default route uses.
  if (int wan = config.default_route_port(); wan >= 0) down = config.ports[static_cast<std::size_t>(wan)].rate_down_bps;
  // What subscribers share: the link less the margin and the gateway's own share. Upload
  // guarantees must fit the smallest WAN, since a subscriber may be moved to any of them.
  uint64_t down_share = qos.subscriber_share_bps(down);
  uint64_t up_share = up_min == UINT64_MAX ? 0 : qos.subscriber_share_bps(up_min);
  uint64_t down_sum = 0, up_sum = 0;
  auto subscribers = root.find("subscribers");
  for (std::size_t i = 0; i < config.subscribers.size(); ++i) {
    const auto& s = config.subscribers[i];
    down_sum += s.down.rate_bps;
    up_sum += s.up.rate_bps;
    // A guarantee the default ceil would cap could never be met.
    if (s.down.ceil_bps == 0 && qos.user_ceil_down_bps && s.down.rate_bps > qos.user_ceil_down_bps)
      subscribers->at(i).at("down").at("rate").fail(format_rate(s.down.rate_bps) + " is above qos.user_ceil_down (" +
                                                   format_rate(qos.user_ceil_down_bps) + "); give it its own ceil");
    if (s.up.ceil_bps == 0 && qos.user_ceil_up_bps && s.up.rate_bps > qos.user_ceil_up_bps)
      subscribers->at(i).at("up").at("rate").fail(format_rate(s.up.rate_bps) + " is above qos.user_ceil_up (" +
                                                 format_rate(qos.user_ceil_up_bps) + "); give it its own ceil");
  }
  if (qos.download && down_sum > down_share)
    subscribers->fail("download guarantees add up to " + format_rate(down_sum) + ", more than the " +
                      format_rate(down_share) + " the default route's WAN link leaves for subscribers");
  if (qos.upload && up_sum > up_share)
    subscribers->fail("upload guarantees add up to " + format_rate(up_sum) + ", more than the " +
                      format_rate(up_share) + " the smallest WAN uplink leaves for subscribers");
}

}  // namespace fairgate
