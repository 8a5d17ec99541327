// classify-pcap: runs fairgate's P2P recognition (the signature database, P2pInspector and
// P2pPeerCache, the code the gateway runs) over capture files offline, prints each flow's
// verdict and, given another classifier's per-flow labels (--truth), a confusion table, the
// recall per protocol and the false positives over the captures of ordinary traffic.
//
//   classify-pcap [options] FILE|DIR...
//
// Flows are bidirectional 5-tuples (and the outer VLAN id) of TCP and UDP over IPv4 and IPv6,
// kept for the whole capture; the client is the sender of the flow's first packet (of the SYN
// when the capture starts with the SYN-ACK). Each file is a capture of its own: flows and the
// peer cache start empty, and the cache's clock is the capture's timestamps. The peer cache
// holds the server endpoint of every flow the payload recognised (IPv4, port 1024 and above:
// well-known ports serve everyone) and labels later flows whose server it holds.
#include "classify/p2p_inspector.h"
#include "classify/p2p_signatures.h"
#include "classify/peer_cache.h"
#include "config/json_path.h"
#include "tools/ground_truth.h"
#include "tools/packet_decode.h"

#include <netinet/in.h>
#include <pcap/pcap.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace fairgate;
using namespace fairgate::tools;

namespace {

constexpr const char* kUsage = R"(usage: classify-pcap [options] FILE|DIR...

Runs fairgate's P2P recognition over pcap and pcapng files (directories: every .pcap, .pcapng
and .cap file under them) and prints each flow's verdict.

  --signatures FILE  the signature set (default: conf/p2p_signatures.json of the source tree)
  --truth FILE       per-flow labels (ground_truth_flows.tsv): adds a confusion table, the
                     recall per protocol over the flows labelled from their payload ("DPI"),
                     and the false positives over every flow of the captures in nonp2p/
  --packets N        payload packets scanned per direction of a flow, 1..255 (default 8)
  --protocols LIST   protocols to recognise, IPP2P_OPTIONS style ("bit edk gnu"; default all)
  --no-udp           do not inspect UDP flows (IPP2P_UDP off)
  --no-peer-cache    label flows from their own payload only
  --flows WHICH      per-flow lines: all (default), p2p, misses (verdict and --truth label
                     disagree), none
  --json             one JSON document on stdout instead of text
  -h, --help         this text

Exit status: 0 done, 1 a file could not be read, 2 bad options, signatures or truth file.
)";

struct Options {
  fs::path signatures = fs::path(FAIRGATE_SOURCE_DIR) / "conf" / "p2p_signatures.json";
  std::optional<fs::path> truth;
  P2pInspectorConfig inspector;
  bool peer_cache = true;
  std::string flows = "all";
  bool json = false;
  std::vector<fs::path> inputs;
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Options parse_options(int argc, char** argv) {
  Options options;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) throw UsageError(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--signatures") {
      options.signatures = value(i);
    } else if (arg == "--truth") {
      options.truth = value(i);
    } else if (arg == "--packets") {
      std::string text = value(i);
      if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(text) < 1 || std::stoul(text) > 255)
        throw UsageError("--packets: \"" + text + "\" is not a number between 1 and 255");
      options.inspector.packets_per_direction = static_cast<uint8_t>(std::stoul(text));
    } else if (arg == "--protocols") {
      try {
        options.inspector.protocols = parse_p2p_protocols(value(i));
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--protocols: ") + e.what());
      }
    } else if (arg == "--no-udp") {
      options.inspector.udp = false;
    } else if (arg == "--no-peer-cache") {
      options.peer_cache = false;
    } else if (arg == "--flows") {
      options.flows = value(i);
      if (options.flows != "all" && options.flows != "p2p" && options.flows != "misses" && options.flows != "none")
        throw UsageError("--flows: \"" + options.flows + "\" is not all, p2p, misses or none");
    } else if (arg == "--json") {
      options.json = true;
    } else if (!arg.empty() && arg[0] == '-') {
      throw UsageError("unknown option " + arg);
    } else {
      options.inputs.emplace_back(arg);
    }
  }
  if (options.inputs.empty()) throw UsageError("no capture file given");
  if (options.flows == "misses" && !options.truth) throw UsageError("--flows misses needs --truth");
  return options;
}

std::vector<fs::path> capture_files(const std::vector<fs::path>& inputs) {
  std::vector<fs::path> files;
  for (const auto& input : inputs) {
    if (!fs::is_directory(input)) {
      files.push_back(input);
      continue;
    }
    std::vector<fs::path> found;
    for (const auto& entry : fs::recursive_directory_iterator(input)) {
      auto ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".pcap" || ext == ".pcapng" || ext == ".cap")) found.push_back(entry.path());
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

// A bidirectional flow's identity: the two endpoints in a fixed order.
struct FlowId {
  uint8_t protocol;
  uint16_t vlan;
  Endpoint low, high;
  bool operator<(const FlowId& other) const {
    if (protocol != other.protocol) return protocol < other.protocol;
    if (vlan != other.vlan) return vlan < other.vlan;
    if (!(low == other.low)) return low < other.low;
    return high < other.high;
  }
};

FlowId flow_id(uint8_t protocol, uint16_t vlan, const Endpoint& x, const Endpoint& y) {
  return y < x ? FlowId{protocol, vlan, y, x} : FlowId{protocol, vlan, x, y};
}

struct Flow {
  Endpoint client, server;
  uint8_t protocol = 0;
  uint16_t vlan = 0;
  uint64_t packets[2] = {0, 0};          // [0] from the client
  uint64_t payload_packets[2] = {0, 0};
  P2pFlowState state;
  std::string decided_by;                // signature name, "peer cache", or empty
  const TruthFlow* truth = nullptr;
};

struct FileResult {
  fs::path path;
  std::string dir;  // the folder the truth file gives for it, else its parent folder's name
  std::string error;
  uint64_t packets = 0;
  std::map<std::string, uint64_t> ignored;  // packets not of a TCP/UDP flow, by reason
  std::vector<std::unique_ptr<Flow>> flows;  // in order of their first packet
};

class Classifier {
 public:
  Classifier(const Options& options, const P2pDatabase& database)
      : options_(options), database_(database), inspector_(database, options.inspector) {}

  FileResult run(const fs::path& path) {
    FileResult result;
    result.path = path;
    char error[PCAP_ERRBUF_SIZE] = "";
    pcap_t* capture = pcap_open_offline(path.c_str(), error);
    if (capture == nullptr) {
      result.error = error;
      return result;
    }
    int linktype = pcap_datalink(capture);
    std::map<FlowId, Flow*> index;
    P2pPeerCache cache(65536);
    std::optional<long> start_s;
    pcap_pkthdr* header = nullptr;
    const u_char* data = nullptr;
    int status;
    while ((status = pcap_next_ex(capture, &header, &data)) == 1) {
      ++result.packets;
      if (!start_s) start_s = header->ts.tv_sec;
      // The cache's clock: seconds since the capture's first packet (captures merged from
      // several recordings jump; the clock never runs backwards).
      long elapsed = header->ts.tv_sec - *start_s;
      uint32_t now_s = elapsed > 0 ? static_cast<uint32_t>(elapsed) : 0;
      DecodedPacket packet;
      DecodeResult decoded = decode_packet(linktype, data, header->caplen, packet);
      if (decoded != DecodeResult::kTransport) {
        ++result.ignored[decoded == DecodeResult::kOtherIp ? "ip protocol " + std::to_string(packet.protocol)
                                                           : decode_result_name(decoded)];
        continue;
      }
      FlowId id = flow_id(packet.protocol, packet.vlan, packet.source, packet.destination);
      auto [it, inserted] = index.try_emplace(id, nullptr);
      if (inserted) {
        result.flows.push_back(std::make_unique<Flow>());
        Flow& flow = *result.flows.back();
        it->second = &flow;
        bool syn_ack = packet.protocol == IPPROTO_TCP && (packet.tcp_flags & 0x12) == 0x12;
        flow.client = syn_ack ? packet.destination : packet.source;
        flow.server = syn_ack ? packet.source : packet.destination;
        flow.protocol = packet.protocol;
        flow.vlan = packet.vlan;
        if (options_.peer_cache && flow.server.family == 4) {
          P2pProtocol cached = cache.find(flow.server.ipv4(), flow.server.port, now_s);
          if (cached != P2pProtocol::kNone) {
            P2pInspector::label(flow.state, cached);
            flow.decided_by = "peer cache";
          }
        }
      }
      Flow& flow = *it->second;
      bool from_client = packet.source == flow.client;
      unsigned side = from_client ? 0 : 1;
      ++flow.packets[side];
      if (packet.payload_length > 0) ++flow.payload_packets[side];
      unsigned signature = 0;
      P2pTransport transport = packet.protocol == IPPROTO_TCP ? P2pTransport::kTcp : P2pTransport::kUdp;
      bool had_verdict = flow.state.protocol != P2pProtocol::kNone;
      P2pProtocol verdict = inspector_.inspect(flow.state, packet.payload, packet.payload_length, transport,
                                               from_client, &signature);
      if (verdict != P2pProtocol::kNone && !had_verdict) {
        flow.decided_by = database_.name(signature);
        ++signature_hits_[flow.decided_by];
        if (options_.peer_cache && flow.server.family == 4 && flow.server.port >= 1024)
          cache.insert(flow.server.ipv4(), flow.server.port, verdict, now_s);
      }
    }
    if (status == -1) result.error = pcap_geterr(capture);
    pcap_close(capture);
    return result;
  }

  const std::map<std::string, uint64_t>& signature_hits() const { return signature_hits_; }
  const P2pInspectorCounters& counters() const { return inspector_.counters(); }

 private:
  const Options& options_;
  const P2pDatabase& database_;
  P2pInspector inspector_;
  std::map<std::string, uint64_t> signature_hits_;
};

// The truth rows of one capture file, found by the flow's endpoints.
struct TruthIndex {
  std::map<std::string, std::map<FlowId, const TruthFlow*>> by_file;
  std::map<std::string, std::string> dir_of_file;

  explicit TruthIndex(const std::vector<TruthFlow>& flows) {
    for (const auto& flow : flows) {
      dir_of_file.emplace(flow.pcap, flow.dir);
      if (flow.protocol != 0 && flow.endpoints_valid) by_file[flow.pcap][flow_id(flow.protocol, flow.vlan, flow.a, flow.b)] = &flow;
    }
  }
};

std::string protocol_name(P2pProtocol protocol) {
  return protocol == P2pProtocol::kNone ? "none" : std::string(p2p_protocol_name(protocol));
}
std::string truth_name(P2pProtocol protocol) {
  return protocol == P2pProtocol::kNone ? "not p2p" : std::string(p2p_protocol_name(protocol));
}

bool wanted(const Options& options, const Flow& flow) {
  if (options.flows == "all") return true;
  if (options.flows == "p2p") return flow.state.protocol != P2pProtocol::kNone;
  if (options.flows == "misses")
    return flow.truth != nullptr && flow.truth->payload_evidence() && flow.truth->label != flow.state.protocol;
  return false;
}

nlohmann::json flow_json(const FileResult& file, const Flow& flow) {
  nlohmann::json j = {{"file", file.path.filename().string()},
                      {"l4", flow.protocol == IPPROTO_TCP ? "TCP" : "UDP"},
                      {"client", flow.client.to_string()},
                      {"server", flow.server.to_string()},
                      {"vlan", flow.vlan},
                      {"packets", {flow.packets[0], flow.packets[1]}},
                      {"payload_packets", {flow.payload_packets[0], flow.payload_packets[1]}},
                      {"verdict", protocol_name(flow.state.protocol)},
                      {"decided_by", flow.decided_by}};
  if (flow.truth != nullptr)
    j["truth"] = {{"ndpi_proto", flow.truth->ndpi_proto}, {"confidence", flow.truth->confidence}, {"label", truth_name(flow.truth->label)}};
  return j;
}

std::string flow_line(const FileResult& file, const Flow& flow) {
  char line[512];
  std::snprintf(line, sizeof line, "%-36s %s %s -> %s%s  pkts %llu/%llu  %-12s %s", file.path.filename().c_str(),
                flow.protocol == IPPROTO_TCP ? "TCP" : "UDP", flow.client.to_string().c_str(),
                flow.server.to_string().c_str(), flow.vlan ? (" vlan " + std::to_string(flow.vlan)).c_str() : "",
                static_cast<unsigned long long>(flow.packets[0]), static_cast<unsigned long long>(flow.packets[1]),
                protocol_name(flow.state.protocol).c_str(), flow.decided_by.empty() ? "-" : flow.decided_by.c_str());
  std::string text = line;
  if (flow.truth != nullptr) text += "  [nDPI " + flow.truth->ndpi_proto + ", " + flow.truth->confidence + "]";
  return text;
}

// What the truth file says against the verdicts.
struct Evaluation {
  // Confusion over the flows labelled from their payload: truth label -> verdict -> flows.
  // The verdict "not seen" counts truth flows the captures did not yield (or ICMP and the like).
  std::map<P2pProtocol, std::map<std::string, uint64_t>> confusion;
  std::map<P2pProtocol, uint64_t> truth_flows, recognised;
  uint64_t nonp2p_flows = 0, nonp2p_labelled = 0;
  std::vector<std::pair<const FileResult*, const Flow*>> false_positives;
  uint64_t weak_p2p_flows = 0, weak_p2p_recognised = 0;  // P2P by cache, port or address in the truth
  std::map<std::string, uint64_t> unconfirmed;           // verdicts on flows the truth calls unknown
  uint64_t unmatched_flows = 0;                          // tool flows with no truth row
};

Evaluation evaluate(const std::vector<TruthFlow>& truth, const TruthIndex& index, std::vector<FileResult>& files) {
  Evaluation e;
  std::set<std::string> processed;
  for (auto& file : files) {
    std::string name = file.path.filename().string();
    processed.insert(name);
    auto dir = index.dir_of_file.find(name);
    file.dir = dir != index.dir_of_file.end() ? dir->second : file.path.parent_path().filename().string();
    auto rows = index.by_file.find(name);
    for (auto& flow : file.flows) {
      if (rows != index.by_file.end()) {
        auto row = rows->second.find(flow_id(flow->protocol, flow->vlan, flow->client, flow->server));
        if (row != rows->second.end()) flow->truth = row->second;
      }
      if (flow->truth == nullptr) {
        ++e.unmatched_flows;
        if (file.dir == "nonp2p") {
          ++e.nonp2p_flows;  // a flow the other classifier did not list still counts
          if (flow->state.protocol != P2pProtocol::kNone) {
            ++e.nonp2p_labelled;
            e.false_positives.emplace_back(&file, flow.get());
          }
        }
      }
    }
  }
  // Truth rows by their flows as this tool saw them.
  std::map<const TruthFlow*, std::pair<const FileResult*, const Flow*>> seen;
  for (const auto& file : files)
    for (const auto& flow : file.flows)
      if (flow->truth != nullptr) seen[flow->truth] = {&file, flow.get()};
  for (const auto& row : truth) {
    if (!processed.count(row.pcap)) continue;
    auto it = seen.find(&row);
    const Flow* flow = it != seen.end() ? it->second.second : nullptr;
    P2pProtocol verdict = flow != nullptr ? flow->state.protocol : P2pProtocol::kNone;
    if (row.payload_evidence()) {
      ++e.confusion[row.label][flow != nullptr ? protocol_name(verdict) : "not seen"];
      ++e.truth_flows[row.label];
      if (row.label != P2pProtocol::kNone && verdict == row.label) ++e.recognised[row.label];
    } else if (row.label != P2pProtocol::kNone) {
      ++e.weak_p2p_flows;
      if (verdict == row.label) ++e.weak_p2p_recognised;
    } else if (verdict != P2pProtocol::kNone) {
      ++e.unconfirmed[protocol_name(verdict)];
    }
    if (row.dir == "nonp2p") {
      ++e.nonp2p_flows;
      if (verdict != P2pProtocol::kNone) {
        ++e.nonp2p_labelled;
        e.false_positives.emplace_back(it->second.first, flow);
      }
    }
  }
  return e;
}

double ratio(uint64_t part, uint64_t whole) { return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0.0; }

std::vector<std::string> verdict_columns(const Evaluation& e) {
  std::vector<std::string> columns = {"none"};
  std::set<std::string> used;
  for (const auto& [label, row] : e.confusion)
    for (const auto& [verdict, count] : row) used.insert(verdict);
  for (std::size_t i = 1; i < kP2pProtocolCount; ++i) {
    std::string name = protocol_name(static_cast<P2pProtocol>(i));
    if (used.count(name)) columns.push_back(name);
  }
  if (used.count("not seen")) columns.push_back("not seen");
  return columns;
}

void print_text(const Options& options, const std::vector<FileResult>& files, const Evaluation* e,
                const Classifier& classifier, const P2pDatabase& database) {
  std::printf("signatures: %s (%zu, %zu bytes compiled); %u payload packets per direction; protocols: %s; udp %s; "
              "peer cache %s\n",
              options.signatures.c_str(), database.size(), database.bytes(), options.inspector.packets_per_direction,
              format_p2p_protocols(options.inspector.protocols).c_str(), options.inspector.udp ? "on" : "off",
              options.peer_cache ? "on" : "off");
  uint64_t flows = 0, p2p = 0;
  for (const auto& file : files) {
    if (!file.error.empty()) std::printf("%s: cannot read: %s\n", file.path.c_str(), file.error.c_str());
    for (const auto& flow : file.flows) {
      ++flows;
      if (flow->state.protocol != P2pProtocol::kNone) ++p2p;
      if (wanted(options, *flow)) std::printf("%s\n", flow_line(file, *flow).c_str());
    }
  }
  std::printf("\n%zu files, %llu TCP/UDP flows, %llu recognised as P2P\n", files.size(),
              static_cast<unsigned long long>(flows), static_cast<unsigned long long>(p2p));
  std::map<std::string, uint64_t> ignored;
  for (const auto& file : files)
    for (const auto& [reason, count] : file.ignored) ignored[reason] += count;
  if (!ignored.empty()) {
    std::printf("packets outside TCP/UDP flows:");
    for (const auto& [reason, count] : ignored) std::printf(" %s %llu;", reason.c_str(), static_cast<unsigned long long>(count));
    std::printf("\n");
  }
  std::printf("verdicts by signature:");
  for (const auto& [name, count] : classifier.signature_hits()) std::printf(" %s %llu;", name.c_str(), static_cast<unsigned long long>(count));
  std::printf("\n");
  if (e == nullptr) return;

  auto columns = verdict_columns(*e);
  std::printf("\nConfusion over the flows labelled from their payload (truth confidence \"DPI\"); rows: truth, "
              "columns: verdict\n%-14s", "truth");
  for (const auto& c : columns) std::printf(" %11s", c.c_str());
  std::printf(" %8s %8s\n", "flows", "recall");
  for (const auto& [label, row] : e->confusion) {
    std::printf("%-14s", truth_name(label).c_str());
    for (const auto& c : columns) {
      auto it = row.find(c);
      std::printf(" %11llu", static_cast<unsigned long long>(it != row.end() ? it->second : 0));
    }
    uint64_t total = e->truth_flows.at(label);
    if (label == P2pProtocol::kNone) {
      auto none = row.find("none");
      auto unseen = row.find("not seen");
      uint64_t negative = (none != row.end() ? none->second : 0) + (unseen != row.end() ? unseen->second : 0);
      std::printf(" %8llu %7.1f%% not labelled\n", static_cast<unsigned long long>(total), 100 * ratio(negative, total));
    } else {
      uint64_t hit = e->recognised.count(label) ? e->recognised.at(label) : 0;
      std::printf(" %8llu %7.1f%%\n", static_cast<unsigned long long>(total), 100 * ratio(hit, total));
    }
  }
  std::printf("\nFalse positives over every flow of the nonp2p captures: %llu of %llu (%.2f%%)\n",
              static_cast<unsigned long long>(e->nonp2p_labelled), static_cast<unsigned long long>(e->nonp2p_flows),
              100 * ratio(e->nonp2p_labelled, e->nonp2p_flows));
  for (const auto& [file, flow] : e->false_positives) std::printf("  %s\n", flow_line(*file, *flow).c_str());
  std::printf("P2P flows the truth labels without payload evidence (cache, port, address): %llu, recognised %llu\n",
              static_cast<unsigned long long>(e->weak_p2p_flows), static_cast<unsigned long long>(e->weak_p2p_recognised));
  if (!e->unconfirmed.empty()) {
    std::printf("verdicts on flows the truth does not call P2P (outside nonp2p too):");
    for (const auto& [name, count] : e->unconfirmed) std::printf(" %s %llu;", name.c_str(), static_cast<unsigned long long>(count));
    std::printf("\n");
  }
  std::printf("flows with no truth row: %llu\n", static_cast<unsigned long long>(e->unmatched_flows));
}

nlohmann::json report_json(const Options& options, const std::vector<FileResult>& files, const Evaluation* e,
                           const Classifier& classifier, const P2pDatabase& database) {
  nlohmann::json j;
  j["signatures"] = {{"file", options.signatures.string()}, {"count", database.size()}, {"bytes", database.bytes()}};
  j["inspector"] = {{"packets_per_direction", options.inspector.packets_per_direction},
                    {"protocols", format_p2p_protocols(options.inspector.protocols)},
                    {"udp", options.inspector.udp},
                    {"peer_cache", options.peer_cache},
                    {"scanned_packets", classifier.counters().scanned_packets},
                    {"scanned_bytes", classifier.counters().scanned_bytes},
                    {"scan_errors", classifier.counters().scan_errors}};
  j["files"] = nlohmann::json::array();
  j["flows"] = nlohmann::json::array();
  uint64_t flows = 0, p2p = 0;
  for (const auto& file : files) {
    nlohmann::json f = {{"path", file.path.string()}, {"packets", file.packets}, {"flows", file.flows.size()}, {"ignored", file.ignored}};
    if (!file.error.empty()) f["error"] = file.error;
    j["files"].push_back(f);
    for (const auto& flow : file.flows) {
      ++flows;
      if (flow->state.protocol != P2pProtocol::kNone) ++p2p;
      if (wanted(options, *flow)) j["flows"].push_back(flow_json(file, *flow));
    }
  }
  j["totals"] = {{"flows", flows}, {"p2p", p2p}};
  j["verdicts_by_signature"] = classifier.signature_hits();
  if (e == nullptr) return j;
  nlohmann::json truth;
  for (const auto& [label, row] : e->confusion) truth["confusion"][truth_name(label)] = row;
  for (const auto& [label, total] : e->truth_flows) {
    if (label == P2pProtocol::kNone) continue;
    uint64_t hit = e->recognised.count(label) ? e->recognised.at(label) : 0;
    truth["recall"][protocol_name(label)] = {{"flows", total}, {"recognised", hit}, {"recall", ratio(hit, total)}};
  }
  nlohmann::json listed = nlohmann::json::array();
  for (const auto& [file, flow] : e->false_positives) listed.push_back(flow_json(*file, *flow));
  truth["false_positives"] = {{"flows", e->nonp2p_flows},
                              {"labelled_p2p", e->nonp2p_labelled},
                              {"rate", ratio(e->nonp2p_labelled, e->nonp2p_flows)},
                              {"list", listed}};
  truth["without_payload_evidence"] = {{"flows", e->weak_p2p_flows}, {"recognised", e->weak_p2p_recognised}};
  truth["unconfirmed_verdicts"] = e->unconfirmed;
  truth["flows_without_truth"] = e->unmatched_flows;
  j["truth"] = truth;
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "classify-pcap: %s\n%s", e.what(), kUsage);
    return 2;
  }
  std::unique_ptr<P2pDatabase> database;
  try {
    database = P2pDatabase::compile(load_p2p_signatures(options.signatures));
  } catch (const FieldError& e) {
    std::fprintf(stderr, "classify-pcap: %s: %s\n", options.signatures.c_str(), e.what());
    return 2;
  }
  std::vector<TruthFlow> truth;
  if (options.truth) {
    std::ifstream in(*options.truth);
    if (!in) {
      std::fprintf(stderr, "classify-pcap: cannot read %s\n", options.truth->c_str());
      return 2;
    }
    try {
      truth = read_ground_truth(in, options.truth->string());
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "classify-pcap: %s\n", e.what());
      return 2;
    }
  }

  Classifier classifier(options, *database);
  std::vector<FileResult> files;
  bool unreadable = false;
  for (const auto& path : capture_files(options.inputs)) {
    files.push_back(classifier.run(path));
    if (!files.back().error.empty()) {
      unreadable = true;
      std::fprintf(stderr, "classify-pcap: %s: %s\n", path.c_str(), files.back().error.c_str());
    }
  }
  std::optional<TruthIndex> index;
  std::optional<Evaluation> evaluation;
  if (options.truth) {
    index.emplace(truth);
    evaluation = evaluate(truth, *index, files);
  }
  const Evaluation* e = evaluation ? &*evaluation : nullptr;
  if (options.json)
    std::cout << report_json(options, files, e, classifier, *database).dump(2) << "\n";
  else
    print_text(options, files, e, classifier, *database);
  return unreadable ? 1 : 0;
}
