// fairgate's configuration as plain structs, filled by a pure function from JSON text so it can
// be unit-tested from a string. Every rejection names the field (a FieldError).
#pragma once

#include "core/ipv4.h"

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fairgate {

class JsonField;

enum class PortRole : uint8_t { kLan, kWan };
std::string_view port_role_name(PortRole role);

// How a link counts a packet against its rate: `overhead` bytes added to every frame (Ethernet
// header included, FCS not: what the mbuf holds), at least `mpu` bytes per frame, and the cell
// framing of the link layer below. Presets: ethernet, pppoe, atm (ADSL), vdsl (PTM), docsis.
struct LinkFraming {
  enum class Cells : uint8_t { kNone, kAtm, kPtm };  // ATM: 48 of every 53 bytes; PTM: 64 of 65
  std::string preset = "ethernet";  // or "custom" when overhead was given in bytes (mpu may override any)
  int32_t overhead = 24;            // bytes per frame: preamble and SFD 8, FCS 4, inter-frame gap 12
  uint16_t mpu = 0;                 // minimum bytes a frame is counted as (after the overhead)
  Cells cells = Cells::kNone;
};

struct PortConfig {
  std::string name;         // operator's name, e.g. "lan0"; shown by `ports`
  PortRole role = PortRole::kLan;
  std::string device;       // PCI address ("0000:03:00.0") or vdev args ("net_af_packet0,iface=lan0")
  Ipv4Prefix address;       // the gateway's own address on this port and the connected prefix
  uint32_t gateway = 0;     // WAN next hop, host byte order; 0 on LAN ports
  uint16_t mtu = 1500;      // bytes of IPv4 packet (not counting the Ethernet header)
  uint16_t vlan = 0;        // 802.1Q id the port's frames carry; 0 = untagged
  uint64_t rate_bps = 0;       // LAN: the LAN link's rate (FairNAT's RATE_LAN); 0 = not given
  uint64_t rate_down_bps = 0;  // WAN: the internet link's download rate (RATE_DOWN), bits/s
  uint64_t rate_up_bps = 0;    // WAN: its upload rate (RATE_UP), bits/s
  LinkFraming framing;
  uint16_t rx_queues = 0;   // derived: number of RX queues the workers poll
  uint16_t tx_queues = 0;   // derived: one per worker

  bool is_vdev() const { return device.rfind("net_", 0) == 0; }
  bool is_af_packet() const { return device.rfind("net_af_packet", 0) == 0; }
};

struct RxQueueRef {
  uint16_t port = 0;   // index into Config::ports
  uint16_t queue = 0;
};

struct WorkerConfig {
  std::vector<RxQueueRef> rx;
};

struct DataplaneConfig {
  uint32_t mbufs = 16383;          // mbufs in the packet pool (best as 2^n - 1)
  uint16_t mbuf_size = 2176;       // bytes of data room per mbuf, headroom (128) included
  uint16_t rx_descriptors = 1024;  // per RX queue
  uint16_t tx_descriptors = 1024;  // per TX queue
  bool idle_backoff = false;       // sleep when idle instead of spinning (labs, CI, shared cores)
  uint32_t max_sleep_us = 200;     // longest idle sleep, microseconds
};

struct EalConfig {
  uint32_t memory_mb = 512;            // memory EAL reserves
  std::string hugepages = "auto";      // "auto": use them if free, else --no-huge; "yes"; "no"
  std::string file_prefix = "fairgate";
  std::vector<uint32_t> cpus;          // CPUs to run lcores on; empty = the process's affinity
  std::vector<std::string> extra_args; // passed to rte_eal_init as they are
};

struct NeighborConfig {
  uint32_t reachable_s = 300;   // an entry lives this long after its last ARP confirmation
  uint32_t max_entries = 4096;  // neighbours across all ports
  uint32_t hold_packets = 8;    // packets kept per unresolved neighbour
  uint32_t retry_ms = 1000;     // between ARP requests for an unresolved neighbour
  uint32_t retries = 3;         // requests before the neighbour is declared unreachable
};

// A static port forward: traffic to the WAN address on `external_first..external_last` goes to
// `internal` on the same offsets from `internal_first`.
struct PortForwardRule {
  bool tcp = false, udp = false;
  uint16_t external_first = 0, external_last = 0;
  uint32_t internal = 0;  // host order
  uint16_t internal_first = 0;

  bool overlaps(const PortForwardRule& other) const {
    return ((tcp && other.tcp) || (udp && other.udp)) && external_first <= other.external_last &&
           other.external_first <= external_last;
  }
};

struct NatConfig {
  uint32_t max_sessions = 1u << 20;      // table-wide limit, split evenly between the workers
  uint32_t sessions_per_subscriber = 4096;
  uint16_t port_min = 1024, port_max = 65535;  // external ports NAT allocates
  bool endpoint_independent_filtering = false;  // default: address-and-port-dependent
  uint32_t tcp_established_s = 7440;     // RFC 7857 section 2.2
  uint32_t tcp_transitory_s = 240;
  uint32_t udp_s = 300;
  uint32_t icmp_s = 60;
  uint16_t mss_clamp = 0;                // clamp TCP MSS on SYNs to this; 0 = off
  bool mss_clamp_to_mtu = false;         // clamp to egress MTU - 40 instead
  uint8_t ttl_set = 0;                   // set the TTL of packets leaving by a WAN; 0 = leave it
  std::vector<PortForwardRule> port_forwards;
};

// Parses one port-forward rule object (also used by the portfwd-add command).
PortForwardRule parse_port_forward(const JsonField& field, const std::vector<Ipv4Prefix>& lan_prefixes);

// A subscriber's rates in one direction, bits per second: `rate` is guaranteed, `ceil` is the most
// it may borrow up to. 0 = the default (an equal share of the link; qos.user_ceil_*).
struct PlanRates {
  uint64_t rate_bps = 0;
  uint64_t ceil_bps = 0;
};

// The subscriber of LAN hosts no configured or automatic subscriber covers.
inline constexpr const char* kUnknownSubscriber = "unknown";

// What happens to a subscriber's peer-to-peer flows once they are recognised (FairNAT's IPP2P
// settings).
struct P2pPolicy {
  enum class Action : uint8_t {
    kAllow,  // in the subscriber's P2P class, below everything else (the default)
    kCap,    // also no more than cap_down_bps / cap_up_bps of P2P for the subscriber
    kDrop,   // new P2P flows are dropped (IPP2P_DROP_ALL)
  };
  Action action = Action::kAllow;
  uint64_t cap_down_bps = 0, cap_up_bps = 0;  // kCap: bits/s of P2P per subscriber and direction
  // kDrop: flows recognised before the policy became drop are dropped too (IPP2P_DROP_MARKED);
  // otherwise they finish in the P2P class.
  bool drop_marked = false;

  bool operator==(const P2pPolicy&) const = default;
};
std::string_view p2p_action_name(P2pPolicy::Action action);

// P2P recognition (FairNAT's IPP2P_* settings); on when the "p2p" section exists.
struct P2pConfig {
  bool enabled = false;
  // The signature file, relative to the configuration file's directory; empty: the set fairgate
  // ships (conf/p2p_signatures.json in its source tree, as pipelines/ is found there).
  std::string signatures;
  uint16_t protocols = 0xffff;          // P2pProtocolMask of the protocols recognised, all bits: every one (IPP2P_OPTIONS)
  bool udp = true;                      // inspect UDP flows too (IPP2P_UDP)
  uint8_t packets_per_direction = 8;    // payload packets scanned from each side of a flow
  uint32_t peer_cache_peers = 16384;    // remote peers remembered, per worker
  uint32_t peer_cache_lifetime_s = 1800;  // a remembered peer is forgotten this long after it was last seen
  P2pPolicy policy;                     // for subscribers without their own
};

// One subscriber: one or more addresses or prefixes on the LAN (FairNAT's "7:9:12" user).
struct SubscriberConfig {
  std::string name;
  std::vector<Ipv4Prefix> addresses;  // host addresses are /32 prefixes
  PlanRates down, up;
  std::optional<P2pPolicy> p2p;       // its own P2P policy; none: p2p.policy
};

// Fair sharing (FairNAT's QOS_DOWN, QOS_UP and their settings).
struct QosConfig {
  bool download = false;            // shape the LAN egress (downloads); on when the section exists
  bool upload = false;              // shape every WAN egress (uploads)
  uint32_t rate_sub_percent = 5;    // shape this far below the link so the queue is ours
  uint32_t rate_local_percent = 5;  // of the link, reserved for the gateway's own traffic
  bool borrow = true;               // false: every guarantee is a hard cap (BORROW=0)
  uint64_t user_ceil_down_bps = 0;  // default ceil of a subscriber; 0 = the link's rate
  uint64_t user_ceil_up_bps = 0;
  // A LAN host no subscriber covers becomes one of its own (kOwn) or joins the one subscriber
  // "unknown" (kShared); its own subscriber expires after idle_s without a packet.
  enum class UnknownHosts : uint8_t { kOwn, kShared } unknown_hosts = UnknownHosts::kOwn;
  uint32_t idle_s = 300;
  uint32_t max_subscribers = 1024;   // configured plus automatic; pipes are reserved for this many
  // A flow that has sent more is bulk. Strict priority lets a flow still in the normal class
  // starve its subscriber's bulk flows for bulk_after_bytes / the subscriber's share: past TCP's
  // 200 ms minimum RTO they time out together and restart in one burst that queues in the modem,
  // upstream of fairgate, where no shaping reaches it (at 1 MB and a 9 Mbit/s share: 0.9 s, and
  // 10 ms ping spikes for other subscribers). 128 KiB keeps it under 120 ms from 9 Mbit/s up.
  uint64_t bulk_after_bytes = 131'072;
  std::vector<uint16_t> interactive_ports{22, 23};  // small packets to or from these are interactive
  uint16_t interactive_packet_bytes = 256;          // "small": IPv4 total length up to this
  enum class Aqm : uint8_t { kPie, kRed } aqm = Aqm::kPie;  // active queue management on every queue
  // Downloads are shaped after the modem: a download fairgate drops has used the modem's link
  // all the same. Counting its bytes against the download rate (cake's "ingress" mode) makes
  // senders that keep sending through loss (BBR) see less delivered and slow down before their
  // excess queues in the modem, where no shaping reaches it. Only drops that take what arrives
  // past the link less 4/5 of the margin are counted (see QosDataplane).
  bool count_download_drops = true;

  bool enabled() const { return download || upload; }
  // Of a link of `link_bps`: what the subscribers share (less the margin and the gateway's
  // share), and the gateway's own share. Rates up to 400 gbit times 100 fit 64 bits.
  uint64_t subscriber_share_bps(uint64_t link_bps) const {
    return link_bps * (100 - rate_sub_percent - rate_local_percent) / 100;
  }
  uint64_t local_share_bps(uint64_t link_bps) const { return link_bps * rate_local_percent / 100; }
  // What fairgate sends at most: the link less the margin (the gateway's share is lent to the
  // subscribers while the gateway does not use it, as HTB classes borrow from their parent).
  uint64_t shaped_bps(uint64_t link_bps) const { return link_bps * (100 - rate_sub_percent) / 100; }
};

// Two (or more) WAN links: health probes, which subscribers leave by which WAN, and the modems'
// Link Property Advertisements. On when the "wan" section exists.
struct WanLinkConfig {
  uint16_t port = 0;               // index into Config::ports, a WAN port
  std::vector<uint32_t> targets;   // probe targets, host order; at least one
  uint32_t weight = 1;             // share of balanced subscribers, 0: only when no other WAN works
  // The modem on this link that sends LPA (none: advertisements about this WAN are ignored).
  bool has_modem = false;
  uint32_t modem_id = 0;
  uint32_t modem_interface = 0;
  uint32_t modem_source = 0;       // address it sends from, host order; 0: any on the port's prefix
};

struct WanPolicyRule {
  std::vector<Ipv4Prefix> subscribers;  // LAN addresses or prefixes
  int preferred = -1;                   // index into WanConfig::links; -1: balanced by weight
};

struct WanConfig {
  bool enabled = false;
  std::vector<WanLinkConfig> links;
  std::vector<WanPolicyRule> policy;  // first match wins; no match: `default_preferred`
  int default_preferred = -1;         // index into links; -1: balanced by weight
  // Probes (times in ms, counts in rounds): see WanProbeSettings.
  uint32_t interval_ms = 500, timeout_ms = 500, down_after = 2, up_after = 3, reliability = 1, window = 10;
  uint32_t loss_degraded_percent = 20, loss_recovered_percent = 10;
  uint32_t latency_degraded_ms = 300, latency_recovered_ms = 150;
  uint32_t hold_down_ms = 10000;  // a WAN that came back gets new flows again after this
  // LPA.
  uint16_t lpa_port = 4950;
  uint32_t lpa_margin_percent = 2;  // shape this far below the advertised rate
  uint32_t lpa_hold_down_ms = 200;  // rate changes are applied at most this often (damping)
  uint32_t lpa_min_window_ms = 0;   // > 0: apply the minimum rate advertised over this window
  uint32_t lpa_period_ms = 1000;    // the modems' advertisement period; 3 missed: expired
  uint32_t lpa_max_per_second = 50;  // advertisements taken per second and modem; more are dropped
};

// Flow monitoring: accounting in the workers (always, with a flow stage in the pipeline),
// IPFIX or NetFlow v9 export to collectors, and the control socket's live flow streams.
struct FlowCollectorConfig {
  uint32_t address = 0;  // host order; reached through the gateway's own ports, like any host
  uint16_t port = 4739;  // UDP
  bool netflow_v9 = false;  // false: IPFIX
};

struct FlowConfig {
  bool configured = false;            // the "flows" section exists (it needs the flow stage)
  uint32_t inactive_timeout_s = 15;   // a flow idle this long is exported (and restarts)
  uint32_t active_timeout_s = 1800;   // a long flow is exported at least this often
  uint32_t ring_records = 4096;       // records each worker's ring to the management thread holds
  std::vector<FlowCollectorConfig> collectors;
  uint32_t observation_domain = 1;
  uint32_t template_refresh_s = 60;       // templates resent at least this often...
  uint32_t template_refresh_messages = 100;  // ...and after this many messages
  uint32_t max_records_per_s = 50000;     // export rate limit per collector; beyond it records are counted and dropped
  uint16_t source_port = 4739;            // UDP source port of the export
  bool nat_events = true;                 // RFC 8158 NAT event records in the export
  uint32_t max_watchers = 8;              // flow-watch streams at once
  uint32_t watch_buffer_bytes = 1 << 20;  // a watcher whose unread output passes this is dropped
};

struct ControlConfig {
  std::string socket = "/run/fairgate/fairgate.sock";
};

struct Config {
  std::string name = "fairgate";
  std::string pipeline = "forward";  // name in pipelines/ or a path relative to the config file
  EalConfig eal;
  DataplaneConfig dataplane;
  std::vector<PortConfig> ports;
  std::vector<WorkerConfig> workers;
  NeighborConfig neighbors;
  NatConfig nat;
  QosConfig qos;
  std::vector<SubscriberConfig> subscribers;
  P2pConfig p2p;
  WanConfig wan;
  FlowConfig flows;
  ControlConfig control;

  // Index of the first port with this role, or -1.
  int first_port(PortRole role) const;
  // The WAN port the default route leaves through (the first WAN with a gateway), or -1: the
  // link that carries the subscribers' internet traffic.
  int default_route_port() const;
  std::vector<Ipv4Prefix> lan_prefixes() const;
};

// A rate in FairNAT's (and tc's) units: a number is kbit/s; a string is a number with one of
// bit, kbit, mbit, gbit (10^3 steps) or bps, kbps, mbps, gbps (bytes/s). Returns bits/s.
uint64_t parse_rate(const JsonField& field);
// Bits/s in the largest unit that keeps it whole: "2mbit", "1500kbit", "800bit".
std::string format_rate(uint64_t bps);
// {"rate": RATE, "ceil": RATE}, either optional (also used by the subscriber-set command).
PlanRates parse_plan(const JsonField& field);
// Parses one subscriber object (also used by the subscriber-add command); its addresses must lie
// in `lan_prefixes`.
SubscriberConfig parse_subscriber(const JsonField& field, const std::vector<Ipv4Prefix>& lan_prefixes);

// A P2P policy object: {"action": "allow" | "cap" | "drop", "down": RATE, "up": RATE,
// "drop_marked": BOOL}; a cap needs at least one of down and up (also used by p2p-policy).
P2pPolicy parse_p2p_policy(const JsonField& field);
nlohmann::ordered_json p2p_policy_json(const P2pPolicy& policy);

// Parses and validates; throws FieldError naming the first bad field.
// `workers_override` > 0 replaces dataplane.workers (the --workers flag).
Config parse_config(std::string_view json_text, unsigned workers_override = 0);

// Reads and parses a file; a missing file or bad JSON is a FieldError too.
Config load_config(const std::filesystem::path& path, unsigned workers_override = 0);

}  // namespace fairgate
