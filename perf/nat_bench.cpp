// NAT44 costs on synthetic mbufs: the nat stage's fast path at 1k, 100k and 1M established
// sessions, session creation through the slow path, and memory per session; the p2p stage
// after it on the same established sessions (what recognition costs a flow that has its verdict);
// and flow accounting: the flow stage after nat, and session creation with the NAT create event
// each new session puts into the accounting's ring.
//
//   build/perf/nat_bench --benchmark_counters_tabular=true
//
// Cycles are TSC cycles measured with rte_rdtsc_precise() around the timed stages only; frames
// are written (and parsed, for BM_NatNewSessions) outside the timed region. Mpps per core and
// sessions per second are derived from those cycles (TSC rate / cycles), so they describe the
// timed work alone. The reference for the fast path is BM_NoNat: the same frames through parse
// and l3, as the "forward" pipeline does, without the nat stage. BM_NatP2p adds the p2p stage
// after nat; its reference is BM_NatFastPath at the same table size. BM_NatFlow adds the flow
// stage after nat, its reference is BM_NatFastPath at the same size too; every benchmark of
// run_fast_path reads the clock around the p2p and flow slots, used or not, so the references
// pay the same timer cost. BM_NatNewSessions/flows:1 is session creation with flow accounting;
// its reference is flows:0.
//
// Before the benchmarks it prints the memory of one 1M-session table: what
// SessionTable::bytes_per_session() declares and the DPDK (rte_malloc) and C++ heap it takes,
// and checks that filling it to capacity takes no more; then the same for the flow accounting
// a worker keeps beside such a table (--skip_memory leaves both out).
#include "bench_common.h"
#include "classify/p2p_control.h"
#include "classify/p2p_dataplane.h"
#include "config/config.h"
#include "core/checksum.h"
#include "core/packet_meta.h"
#include "core/rcu_published.h"
#include "flow/flow_accounting.h"
#include "nat/flow_key.h"
#include "nat/session_table.h"
#include "neigh/neighbor_table.h"
#include "pipeline/stage.h"
#include "pipeline/worker_state.h"
#include "ports/ports.h"
#include "stages/flow/flow_stage.h"
#include "stages/l3/l3_stage.h"
#include "stages/nat/nat_stage.h"
#include "stages/p2p/p2p_stage.h"
#include "stages/parse/parse_stage.h"

#include <benchmark/benchmark.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace fairgate;

namespace {

// One worker, the default table size (nat.sessions 1M), timeouts as long as the config allows
// (about 12 days) so that nothing can expire or be reclaimed during a run.
constexpr const char* kConfig = R"({
  "pipeline": "gateway",
  "nat": {
    "sessions": 1048576, "sessions_per_subscriber": 4096, "ports": "1024-65535",
    "timeouts": {"tcp_established_s": 1048576, "tcp_transitory_s": 1048576, "udp_s": 1048576, "icmp_s": 1048576}
  },
  "ports": [
    {"name": "lan0", "role": "lan", "device": "net_ring0", "address": "10.0.0.1/8"},
    {"name": "wan0", "role": "wan", "device": "net_ring1", "address": "198.51.100.2/25", "gateway": "198.51.100.1"}
  ]})";

constexpr uint32_t kCapacity = 1u << 20;
constexpr uint16_t kLan = 0, kWan = 1;  // port indices in kConfig

// Session i of a table: UDP from inside endpoint i / remotes to remote i % remotes. One WAN
// address has 64512 UDP ports and endpoint-independent mapping gives every inside endpoint one
// of them, so 1M sessions need endpoints that talk to several remotes (32 here). Inside
// endpoints: 8 source ports per host, hosts 10.1.0.1 upwards (at most 256 sessions per host,
// well under the per-subscriber quota). Remotes: 192.0.2.1 upwards, port 443.
constexpr uint32_t kRemotes = 32;
constexpr uint32_t kPortsPerHost = 8;

FlowKey session_key(uint32_t i, uint32_t remotes) {
  uint32_t endpoint = i / remotes, remote = i % remotes;
  FlowKey key;
  key.proto = IPPROTO_UDP;
  key.src = 0x0a010001 + endpoint / kPortsPerHost;
  key.sport = static_cast<uint16_t>(20000 + endpoint % kPortsPerHost);
  key.dst = 0xc0000201 + remote;
  key.dport = 443;
  return key;
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint32_t now_s() { return static_cast<uint32_t>(rte_rdtsc() / rte_get_tsc_hz()); }

struct Env {
  Config config;
  PortTable ports;
  rte_mempool* pool = nullptr;
  RcuPublished<NeighborSnapshot> neighbors;
  WorkerCounters counters;
  uint32_t wan_address = 0;

  Env() {
    config = parse_config(kConfig);
    ports = make_port_table(config);
    wan_address = ports.ports[kWan].prefix.address;
    pool = rte_pktmbuf_pool_create("nat_bench_pool", 1023, 0, kMbufPrivSize, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
    if (pool == nullptr) throw std::runtime_error("cannot create the mbuf pool");
    NeighborTable table(config.neighbors);
    table.add_static(kWan, 0xc6336401, rte_ether_addr{{0x02, 0, 0, 0, 0x99, 0x01}});  // WAN gateway
    neighbors.publish(table.snapshot());
  }
};

Env& env() {
  static Env instance;
  return instance;
}

// The SessionTable of the running benchmark, kept between the calls Google Benchmark makes for
// one argument so the (slow) fill is done once; one table at a time.
struct Tables {
  std::unique_ptr<SessionTable> table;
  std::string purpose;
};

Tables& tables() {
  static Tables instance;
  return instance;
}

// As a worker makes it (src/pipeline/worker.cpp): WAN ids are port indices.
std::unique_ptr<SessionTable> new_table() {
  return std::make_unique<SessionTable>(env().config.nat, kCapacity, 0, 1, rte_socket_id(),
                                        static_cast<uint8_t>(env().ports.ports.size()));
}

// Creates sessions 0..count-1 as the slow path would. False if one was refused.
bool fill(SessionTable& table, uint32_t count, uint32_t remotes) {
  uint32_t now = now_s();
  for (uint32_t i = 0; i < count; ++i) {
    NatRefusal refusal;
    if (table.create_outbound(session_key(i, remotes), kWan, env().wan_address, now, &refusal) ==
        SessionTable::kNone)
      return false;
  }
  return true;
}

SessionTable* established_table(uint32_t sessions) {
  Tables& t = tables();
  std::string purpose = "established " + std::to_string(sessions);
  if (t.purpose != purpose) {
    t.table.reset();
    t.purpose.clear();
    auto table = new_table();
    if (!fill(*table, sessions, kRemotes)) return nullptr;
    t.table = std::move(table);
    t.purpose = purpose;
  }
  return t.table.get();
}


struct Frames {
  std::vector<rte_mbuf*> pkts;
  Frames() : pkts(kBurstSize) {
    if (rte_pktmbuf_alloc_bulk(env().pool, pkts.data(), kBurstSize) != 0) throw std::runtime_error("no mbufs");
  }
  ~Frames() { rte_pktmbuf_free_bulk(pkts.data(), kBurstSize); }
};

// Checks one translated and routed frame: source is the WAN address and the session's external
// port, checksums still valid. Empty when fine.
std::string check_translated(rte_mbuf* mbuf, const SessionTable& table, const FlowKey& original) {
  auto* ip = rte_pktmbuf_mtod_offset(mbuf, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
  auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
  bool reply = false;
  uint32_t index = table.lookup(original, &reply);
  if (index == SessionTable::kNone) return "no session for the frame";
  if (rte_be_to_cpu_32(ip->src_addr) != env().wan_address) return "source address not translated";
  if (rte_be_to_cpu_16(udp->src_port) != table.session(index).translated.sport) return "source port not translated";
  if (checksum::compute(ip, sizeof *ip) != 0) return "bad IPv4 header checksum";
  uint16_t carried = udp->dgram_cksum;
  udp->dgram_cksum = 0;
  uint16_t expected = rte_ipv4_udptcp_cksum(ip, udp);  // already 0xffff for a computed 0
  udp->dgram_cksum = carried;
  if (carried != expected) return "bad UDP checksum";
  return "";
}

void report(benchmark::State& state, uint64_t total_cycles, uint64_t nat_cycles, uint64_t p2p_cycles,
            uint64_t flow_cycles) {
  double packets = static_cast<double>(state.iterations()) * kBurstSize;
  double hz = static_cast<double>(rte_get_tsc_hz());
  double per_packet = static_cast<double>(total_cycles) / packets;
  double nat_per_packet = static_cast<double>(nat_cycles) / packets;
  state.counters["cycles_per_packet"] = per_packet;
  state.counters["Mpps_per_core"] = hz / per_packet / 1e6;
  state.counters["nat_cycles_per_packet"] = nat_per_packet;
  state.counters["nat_Mpps_per_core"] = nat_cycles ? hz / nat_per_packet / 1e6 : 0.0;
  state.counters["p2p_cycles_per_packet"] = static_cast<double>(p2p_cycles) / packets;
  state.counters["flow_cycles_per_packet"] = static_cast<double>(flow_cycles) / packets;
}

// Bursts of 32 frames of random existing sessions (a new draw every burst, uniform over the
// table) through parse, nat and l3; `with_nat` false leaves the nat stage out (reference);
// `p2p` and `flow`, when given, run after nat in that order, as in a pipeline (each timed on
// its own).
void run_fast_path(benchmark::State& state, SessionTable* table, uint32_t sessions, bool with_nat,
                   P2pStage* p2p = nullptr, FlowStage* flow = nullptr) {
  Env& e = env();
  Frames frames;
  ParseStage parse(e.ports);
  L3Stage l3(e.ports, e.neighbors);
  std::unique_ptr<NatStage> nat;
  if (with_nat) nat = std::make_unique<NatStage>(e.config, e.ports, *table, e.counters, 0, 1);
  Burst burst;
  FlowKey keys[kBurstSize];
  uint64_t rng = 12345;
  uint64_t total_cycles = 0, nat_cycles = 0, p2p_cycles = 0, flow_cycles = 0;
  bool checked = false;
  for (auto _ : state) {
    for (uint16_t i = 0; i < kBurstSize; ++i) {
      keys[i] = session_key(static_cast<uint32_t>(splitmix64(rng) % sessions), kRemotes);
      fairgate::bench::write_udp_frame(frames.pkts[i], env().ports.ports[kLan].mac, keys[i]);
    }
    uint64_t t0 = rte_rdtsc_precise();
    burst.reset(kLan, kBurstSize);
    std::copy(frames.pkts.begin(), frames.pkts.end(), burst.pkts);
    parse.process(burst);
    uint64_t t1 = rte_rdtsc_precise();
    if (nat) nat->process(burst);
    uint64_t t2 = rte_rdtsc_precise();
    if (p2p) p2p->process(burst);
    uint64_t t3 = rte_rdtsc_precise();
    if (flow) flow->process(burst);
    uint64_t t4 = rte_rdtsc_precise();
    l3.process(burst);
    uint64_t t5 = rte_rdtsc_precise();
    total_cycles += t5 - t0;
    nat_cycles += t2 - t1;
    p2p_cycles += t3 - t2;
    flow_cycles += t4 - t3;
    for (uint16_t i = 0; i < kBurstSize; ++i)
      if (burst.action[i] != Action::kForward) {
        state.SkipWithError("a frame was not forwarded");
        return;
      }
    if (nat && !checked) {
      for (uint16_t i = 0; i < kBurstSize; ++i)
        if (auto error = check_translated(burst.pkts[i], *table, keys[i]); !error.empty()) {
          state.SkipWithError(error.c_str());
          return;
        }
      checked = true;
    }
  }
  // The empty slots' cycles are reported too: what the clock reads around a stage cost.
  report(state, total_cycles, nat ? nat_cycles : 0, p2p_cycles, flow_cycles);
}

void BM_NatFastPath(benchmark::State& state) {
  auto sessions = static_cast<uint32_t>(state.range(0));
  SessionTable* table = established_table(sessions);
  if (table == nullptr || table->size() != sessions) {
    state.SkipWithError("could not create the sessions");
    return;
  }
  run_fast_path(state, table, sessions, true);
  state.counters["sessions"] = table->size();
}
BENCHMARK(BM_NatFastPath)->Arg(1000)->Arg(100000)->Arg(1000000)->ArgName("sessions");

// The p2p stage after nat on established sessions whose inspection is over: range(1) 0 = no
// verdict (ordinary flows past their first packets), 1 = BitTorrent under the allow policy
// (every packet is counted and put in the P2P class).
void BM_NatP2p(benchmark::State& state) {
  auto sessions = static_cast<uint32_t>(state.range(0));
  SessionTable* table = established_table(sessions);
  if (table == nullptr || table->size() != sessions) {
    state.SkipWithError("could not create the sessions");
    return;
  }
  P2pConfig config;
  config.enabled = true;
  P2pSignatureLoader signatures = load_configured_signatures(config, ".", nullptr);
  P2pDataplane dataplane(config, 1, 0, signatures.current());
  P2pStage p2p(env().ports, dataplane, *table, nullptr, env().counters, 0);
  P2pFlowState state_of_flows;
  state_of_flows.flags = P2pFlowState::kDone | P2pFlowState::kPeerLooked;
  state_of_flows.protocol = state.range(1) ? P2pProtocol::kBitTorrent : P2pProtocol::kNone;
  for (uint32_t i = 0; i < table->capacity(); ++i) table->p2p(i) = state_of_flows;
  run_fast_path(state, table, sessions, true, &p2p);
  for (uint32_t i = 0; i < table->capacity(); ++i) table->p2p(i) = P2pFlowState{};
  state.counters["sessions"] = table->size();
}
BENCHMARK(BM_NatP2p)->ArgsProduct({{1000, 1000000}, {0, 1}})->ArgNames({"sessions", "bittorrent"});

// Flow accounting as a worker keeps it beside its table: FlowAccounting of the table's capacity
// with the default ring (flows.ring_records), as src/pipeline/worker.cpp makes it.
std::unique_ptr<FlowAccounting> new_flow_accounting() {
  FlowConfig defaults;
  return std::make_unique<FlowAccounting>(kCapacity, 0, rte_socket_id(),
                                          FlowTimeouts{defaults.inactive_timeout_s, defaults.active_timeout_s},
                                          defaults.ring_records);
}

// Attaches flow accounting to a table for a scope: the table outlives the accounting and must
// not report to it afterwards, on whichever path the benchmark ends.
class AttachedFlows {
 public:
  AttachedFlows(SessionTable& table, FlowAccounting* flows) : table_(table) { table_.set_flow_accounting(flows); }
  ~AttachedFlows() { table_.set_flow_accounting(nullptr); }
  AttachedFlows(const AttachedFlows&) = delete;
  AttachedFlows& operator=(const AttachedFlows&) = delete;

 private:
  SessionTable& table_;
};

// The flow stage after nat on established sessions: every packet is counted into its
// session's 64-byte accounting record (a second table beside the sessions, as p2p's states).
// The accounting is attached after the sessions were created, so their creation put no NAT
// events in the ring; and packets of established flows emit nothing (records leave only when
// a session is created or ends, or from the expiry scan, none of which runs here), so the ring
// stays empty and costs nothing in the timed loop; the benchmark fails if a record appears.
void BM_NatFlow(benchmark::State& state) {
  auto sessions = static_cast<uint32_t>(state.range(0));
  SessionTable* table = established_table(sessions);
  if (table == nullptr || table->size() != sessions) {
    state.SkipWithError("could not create the sessions");
    return;
  }
  auto flows = new_flow_accounting();
  AttachedFlows attached(*table, flows.get());
  FlowStage flow(*flows);
  run_fast_path(state, table, sessions, true, nullptr, &flow);
  if (rte_ring_count(flows->ring()) != 0) state.SkipWithError("the fast path put records in the flow ring");
  state.counters["sessions"] = table->size();
}
BENCHMARK(BM_NatFlow)->Arg(1000)->Arg(1000000)->ArgName("sessions");

void BM_NoNat(benchmark::State& state) {
  tables().table.reset();  // no table in memory: nothing of the NAT runs here
  tables().purpose.clear();
  run_fast_path(state, nullptr, 1000000, false);
  state.counters["sessions"] = 0;
}
BENCHMARK(BM_NoNat);

// New sessions through the nat stage: bursts of 32 frames of 5-tuples it has not seen, so each
// is a lookup miss and a session creation (and with remotes:1 a new mapping and external port
// each). Only NatStage::process is timed; frames are written and parsed outside. Every 32768
// sessions the table (capacity 1M, so it never fills) is cleared, outside the timed region.
//
// flows:1 attaches flow accounting: each creation also resets the session's accounting record
// and puts a NAT create event (128 bytes) into the ring. The ring is drained after every burst,
// outside the timed region, as the management thread would drain it from another core: it then
// never holds more than one burst's 32 events, so every event is written, none is lost (a full
// ring would make an event cheaper: a failed enqueue and a counter). The accounting is
// detached while the table is cleared: the delete events of that clearing are the benchmark's.
void BM_NatNewSessions(benchmark::State& state) {
  constexpr uint32_t kBatch = 32768;
  auto remotes = static_cast<uint32_t>(state.range(0));
  Env& e = env();
  Tables& t = tables();
  if (t.purpose != "new sessions") {
    t.table.reset();
    t.table = new_table();
    t.purpose = "new sessions";
  }
  SessionTable& table = *t.table;
  table.clear();
  std::unique_ptr<FlowAccounting> flows;
  if (state.range(1) != 0) flows = new_flow_accounting();
  AttachedFlows attached(table, flows.get());
  FlowRecord drained[kBurstSize];
  Frames frames;
  ParseStage parse(e.ports);
  NatStage nat(e.config, e.ports, table, e.counters, 0, 1);
  Burst burst;
  uint32_t next = 0;
  uint64_t cycles = 0, created = 0;
  NatCounters before = table.counters();
  for (auto _ : state) {
    if (next == kBatch) {
      state.PauseTiming();
      bool complete = table.size() == kBatch;
      table.set_flow_accounting(nullptr);
      table.clear();
      table.set_flow_accounting(flows.get());
      next = 0;
      state.ResumeTiming();
      if (!complete) {
        state.SkipWithError("sessions were refused");
        return;
      }
    }
    for (uint16_t i = 0; i < kBurstSize; ++i) fairgate::bench::write_udp_frame(frames.pkts[i], env().ports.ports[kLan].mac, session_key(next + i, remotes));
    burst.reset(kLan, kBurstSize);
    std::copy(frames.pkts.begin(), frames.pkts.end(), burst.pkts);
    parse.process(burst);
    uint64_t t0 = rte_rdtsc_precise();
    nat.process(burst);
    cycles += rte_rdtsc_precise() - t0;
    if (flows) rte_ring_dequeue_burst_elem(flows->ring(), drained, sizeof(FlowRecord), kBurstSize, nullptr);
    next += kBurstSize;
    for (uint16_t i = 0; i < kBurstSize; ++i)
      if (burst.action[i] != Action::kContinue) {
        state.SkipWithError("a new session was refused");
        return;
      }
  }
  created = table.counters().created - before.created;
  double per_session = static_cast<double>(cycles) / static_cast<double>(created);
  state.counters["cycles_per_session"] = per_session;
  state.counters["Msessions_per_s"] = static_cast<double>(rte_get_tsc_hz()) / per_session / 1e6;
  state.counters["mappings_per_session"] = 1.0 / remotes;
  table.set_flow_accounting(nullptr);
  table.clear();
  if (flows && (flows->counters().nat_events.get() != created || flows->counters().lost.get() != 0))
    state.SkipWithError("not every creation put its NAT event in the flow ring");
}
BENCHMARK(BM_NatNewSessions)->ArgsProduct({{1, kRemotes}, {0, 1}})->ArgNames({"remotes", "flows"});

// Memory ---------------------------------------------------------------------------------------

// Must run before anything else allocates from the rte_malloc heap, so the heap's growth is the
// table's. (Resident memory says nothing here: hugepages are reserved before the table exists.)
bool report_memory() {
  env();  // the mbuf pool and neighbour snapshot are not the table's
  std::size_t heap0 = bench::heap_allocated(), cxx0 = bench::cxx_heap_allocated();
  auto table = new_table();
  std::size_t heap1 = bench::heap_allocated(), cxx1 = bench::cxx_heap_allocated();
  if (!fill(*table, kCapacity, kRemotes) || table->size() != kCapacity) {
    std::fprintf(stderr, "nat_bench: could not fill the table to its capacity\n");
    return false;
  }
  std::size_t heap2 = bench::heap_allocated();
  auto per = [](std::size_t bytes) { return static_cast<double>(bytes) / kCapacity; };
  std::printf("Memory of one SessionTable of capacity %u (%u sessions when full, %u mappings)\n", kCapacity,
              kCapacity, kCapacity / kRemotes);
  std::printf("  %-58s %8zu bytes/session\n", "SessionTable::bytes_per_session() (declared)",
              table->bytes_per_session());
  std::printf("  %-58s %8.1f bytes/session (%.1f MiB)\n", "DPDK heap: records, flow index, hashes",
              per(heap1 - heap0), static_cast<double>(heap1 - heap0) / (1 << 20));
  std::printf("  %-58s %8.1f bytes/session (%.1f MiB)\n", "C++ heap: port and subscriber arrays",
              per(cxx1 - cxx0), static_cast<double>(cxx1 - cxx0) / (1 << 20));
  std::printf("  %-58s %8.1f bytes/session (%.1f MiB)\n", "both heaps: memory the table reserves",
              per(heap1 - heap0 + cxx1 - cxx0), static_cast<double>(heap1 - heap0 + cxx1 - cxx0) / (1 << 20));
  if (heap2 != heap1) std::printf("  (filling it allocated %zu more heap bytes)\n", heap2 - heap1);
  // What flow accounting adds beside that table: a record per session and the ring.
  auto flows = new_flow_accounting();
  std::size_t heap3 = bench::heap_allocated();
  std::printf("Flow accounting beside it (flow stage in the pipeline), ring of %u records\n", FlowConfig{}.ring_records);
  std::printf("  %-58s %8zu bytes/session\n", "FlowAccounting::bytes_per_session() (declared)",
              flows->bytes_per_session());
  std::printf("  %-58s %8.1f bytes/session (%.1f MiB)\n", "DPDK heap: accounting records and the ring",
              per(heap3 - heap2), static_cast<double>(heap3 - heap2) / (1 << 20));
  std::printf("\n");
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // A 1M-session table takes a few hundred MiB.
  if (!fairgate::bench::init_eal("nat_bench", 512)) return 1;
  benchmark::Initialize(&argc, argv);
  bool memory = true;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--skip_memory") {
      memory = false;
    } else {
      std::fprintf(stderr, "nat_bench: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (memory && !report_memory()) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  tables().table.reset();
  rte_eal_cleanup();
  return 0;
}
