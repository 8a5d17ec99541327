#include "tools/ground_truth.h"

#include <netinet/in.h>

#include <map>
#include <stdexcept>

namespace fairgate::tools {
namespace {

struct NdpiName {
  std::string_view ndpi;
  P2pProtocol protocol;
};
// nDPI's names for the protocols the signatures cover. nDPI 4.10 replaced PPStream by iQIYI
// under the same protocol id (54): the same client family, so one protocol here.
constexpr NdpiName kNdpiNames[] = {
    {"BitTorrent", P2pProtocol::kBitTorrent},      {"eDonkey", P2pProtocol::kEdonkey},
    {"Gnutella", P2pProtocol::kGnutella},          {"FastTrack", P2pProtocol::kFastTrack},
    {"DirectConnect", P2pProtocol::kDirectConnect}, {"AppleJuice", P2pProtocol::kAppleJuice},
    {"Soulseek", P2pProtocol::kSoulSeek},          {"WinMX", P2pProtocol::kWinMx},
    {"PPStream", P2pProtocol::kPpStream},          {"iQIYI", P2pProtocol::kPpStream},
    {"Kontiki", P2pProtocol::kKontiki},            {"Aimini", P2pProtocol::kAimini},
};

P2pProtocol by_ndpi_name(std::string_view name) {
  for (const auto& entry : kNdpiNames)
    if (name == entry.ndpi) return entry.protocol;
  return P2pProtocol::kNone;
}

std::vector<std::string> split(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::size_t at = 0;
  while (true) {
    std::size_t end = line.find(separator, at);
    fields.push_back(line.substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) return fields;
    at = end + 1;
  }
}

}  // namespace

P2pProtocol p2p_protocol_of_ndpi(std::string_view ndpi_proto) {
  // "<ids>/<names>": the names part is "Master" or "Master.App"; the application decides
  // ("HTTP.BitTorrent" is a tracker announce), else the master ("BitTorrent").
  std::size_t slash = ndpi_proto.find('/');
  std::string_view names = slash == std::string_view::npos ? ndpi_proto : ndpi_proto.substr(slash + 1);
  std::size_t dot = names.find('.');
  if (dot != std::string_view::npos) {
    P2pProtocol app = by_ndpi_name(names.substr(dot + 1));
    if (app != P2pProtocol::kNone) return app;
    return by_ndpi_name(names.substr(0, dot));
  }
  return by_ndpi_name(names);
}

std::vector<TruthFlow> read_ground_truth(std::istream& in, const std::string& source) {
  std::string line;
  if (!std::getline(in, line)) throw std::runtime_error(source + ": empty, no header line");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::map<std::string, std::size_t> column;
  auto header = split(line, '\t');
  for (std::size_t i = 0; i < header.size(); ++i) column[header[i]] = i;
  for (const char* name : {"dir", "pcap", "flow_no", "l4", "endpoint_a", "endpoint_b", "vlan", "ndpi_proto", "confidence"})
    if (!column.count(name)) throw std::runtime_error(source + ":1: no column \"" + name + "\"");

  std::vector<TruthFlow> flows;
  for (std::size_t number = 2; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto fields = split(line, '\t');
    auto where = source + ":" + std::to_string(number) + ": ";
    if (fields.size() < header.size())
      throw std::runtime_error(where + std::to_string(fields.size()) + " columns, the header has " +
                               std::to_string(header.size()));
    auto get = [&](const char* name) { return fields[column[name]]; };
    TruthFlow flow;
    flow.dir = get("dir");
    flow.pcap = get("pcap");
    flow.flow_no = get("flow_no");
    flow.l4 = get("l4");
    flow.protocol = flow.l4 == "TCP" ? IPPROTO_TCP : flow.l4 == "UDP" ? IPPROTO_UDP : 0;
    flow.ndpi_proto = get("ndpi_proto");
    flow.confidence = get("confidence");
    flow.label = p2p_protocol_of_ndpi(flow.ndpi_proto);
    std::string vlan = get("vlan");
    if (!vlan.empty()) {
      if (vlan.size() > 4 || vlan.find_first_not_of("0123456789") != std::string::npos || std::stoul(vlan) > 4095)
        throw std::runtime_error(where + "vlan \"" + vlan + "\" is not a VLAN id");
      flow.vlan = static_cast<uint16_t>(std::stoul(vlan));
    }
    // Endpoints of flows without ports (ICMP, IGMP) are listed with port 0 and matter to no
    // lookup. nDPI prints some IPv6 addresses wrongly ("...::19::"): such a row stays, to be
    // counted, but no flow can match it.
    flow.endpoints_valid = parse_endpoint(get("endpoint_a"), flow.a) && parse_endpoint(get("endpoint_b"), flow.b);
    flows.push_back(std::move(flow));
  }
  return flows;
}

}  // namespace fairgate::tools
