// P2P inspection costs: P2pInspector with the shipped signature set (conf/p2p_signatures.json)
// on the first payload packet of new flows, 64-byte and 1400-byte payloads, and on packets of
// flows that already have a verdict.
//
//   build/perf/p2p_bench --benchmark_counters_tabular=true
//
// Each iteration inspects a burst of 32 payloads, each the first payload packet of a new flow
// (its 8-byte state zeroed outside the timed region). Payloads come from a pool of 4096 per
// kind, walked in order, so the burst is not the same bytes every time:
//   random: uniformly random bytes, what encrypted traffic (TLS, QUIC, BitTorrent's MSE) looks
//           like, the bulk of a gateway's first packets; no signature matches;
//   http:   an HTTP GET of a web page with browser headers, padded with text; text gives the
//           literal matchers partial hits (GET, Host:, User-Agent:) and no signature matches;
//   p2p:    a BitTorrent handshake, which matches and stops the scan at once.
// BM_P2pClassified runs the same loop over flows that already have a verdict (what every later
// packet of a recognised flow costs): the reference for the inspection itself.
// BM_P2pPastLimit: flows not recognised after their 8 packets each way, which are not scanned
// again. Cycles are TSC cycles read around the 32 inspect() calls only; Mpps per core is the
// TSC rate divided by them, Gbps per core that rate times the payload size.
#include "bench_common.h"
#include "classify/p2p_inspector.h"
#include "classify/p2p_signatures.h"

#include <benchmark/benchmark.h>
#include <hs/hs_runtime.h>
#include <rte_cycles.h>
#include <rte_eal.h>

#include <array>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace fairgate;

namespace {

constexpr int kBurst = 32;
constexpr std::size_t kPoolSize = 4096;

enum Kind { kRandom, kHttp, kP2p };
const char* const kKindNames[] = {"random", "http", "p2p"};

P2pDatabase& database() {
  static std::unique_ptr<P2pDatabase> db =
      P2pDatabase::compile(load_p2p_signatures(std::string(FAIRGATE_SOURCE_DIR) + "/conf/p2p_signatures.json"));
  return *db;
}

std::vector<std::vector<uint8_t>> make_pool(Kind kind, std::size_t size) {
  std::mt19937_64 random(size * 31 + kind);
  std::vector<std::vector<uint8_t>> pool(kPoolSize, std::vector<uint8_t>(size));
  for (std::size_t i = 0; i < kPoolSize; ++i) {
    auto& p = pool[i];
    std::string text;
    if (kind == kHttp) {
      text = "GET /articles/" + std::to_string(random() % 100000) +
             "/index.html?ref=home HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; "
             "rv:128.0) Gecko/20100101 Firefox/128.0\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: "
             "en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: session=";
      while (text.size() < size) text += static_cast<char>('a' + random() % 26);
    } else if (kind == kP2p) {
      text = std::string("\x13") + "BitTorrent protocol" + std::string(8, '\0');
      while (text.size() < size) text += static_cast<char>(random());
    }
    for (std::size_t b = 0; b < size; ++b)
      p[b] = kind == kRandom ? static_cast<uint8_t>(random()) : static_cast<uint8_t>(text[b]);
  }
  return pool;
}

void report(benchmark::State& state, uint64_t cycles, uint64_t packets, std::size_t size) {
  double per_packet = packets ? static_cast<double>(cycles) / static_cast<double>(packets) : 0.0;
  double mpps = per_packet > 0 ? static_cast<double>(rte_get_tsc_hz()) / per_packet / 1e6 : 0.0;
  state.counters["cycles_per_packet"] = per_packet;
  state.counters["Mpps_per_core"] = mpps;
  state.counters["Gbps_per_core"] = mpps * static_cast<double>(size) * 8 / 1e3;
}

using Flows = std::array<P2pFlowState, kBurst>;

// Times inspect() over bursts of kBurst payloads walked in order through `pool`, payload i of
// a burst on flows[i], and reports the counters. `fresh_flows` zeroes the flows before every
// burst (outside the timed region); `alternate` sends even flows' packets from the client and
// odd flows' from the server, else all from the client. Returns the packets recognised.
uint64_t timed_bursts(benchmark::State& state, P2pInspector& inspector, Flows& flows,
                      const std::vector<std::vector<uint8_t>>& pool, std::size_t size, bool fresh_flows, bool alternate) {
  uint64_t cycles = 0, packets = 0, recognised = 0;
  std::size_t next = 0;
  for (auto _ : state) {
    if (fresh_flows) flows.fill(P2pFlowState{});
    uint64_t start = rte_rdtsc_precise();
    for (int i = 0; i < kBurst; ++i) {
      const auto& payload = pool[(next + static_cast<std::size_t>(i)) % kPoolSize];
      recognised += inspector.inspect(flows[static_cast<std::size_t>(i)], payload.data(), static_cast<uint32_t>(size),
                                      P2pTransport::kTcp, !alternate || i % 2 == 0) != P2pProtocol::kNone;
    }
    cycles += rte_rdtsc_precise() - start;
    packets += kBurst;
    next = (next + kBurst) % kPoolSize;
  }
  benchmark::DoNotOptimize(recognised);
  report(state, cycles, packets, size);
  return recognised;
}

// args: payload bytes, kind
void BM_P2pFirstPacket(benchmark::State& state) {
  auto size = static_cast<std::size_t>(state.range(0));
  auto kind = static_cast<Kind>(state.range(1));
  state.SetLabel(kKindNames[kind]);
  auto pool = make_pool(kind, size);
  P2pInspector inspector(database(), {});
  Flows flows{};
  uint64_t recognised = timed_bursts(state, inspector, flows, pool, size, true, false);
  uint64_t packets = static_cast<uint64_t>(state.iterations()) * kBurst;
  state.counters["recognised_share"] = packets ? static_cast<double>(recognised) / static_cast<double>(packets) : 0.0;
}

// The same loop over flows that already have a verdict: the cost of every later packet of a
// recognised flow, and the reference for the scans above.
void BM_P2pClassified(benchmark::State& state) {
  auto size = static_cast<std::size_t>(state.range(0));
  auto pool = make_pool(kRandom, size);
  P2pInspector inspector(database(), {});
  Flows flows{};
  for (auto& flow : flows) P2pInspector::label(flow, P2pProtocol::kBitTorrent);
  timed_bursts(state, inspector, flows, pool, size, false, false);
}

// Flows past their 8 packets each way without a verdict: inspection has ended.
void BM_P2pPastLimit(benchmark::State& state) {
  auto size = static_cast<std::size_t>(state.range(0));
  auto pool = make_pool(kRandom, size);
  P2pInspector inspector(database(), {});
  Flows flows{};
  for (auto& flow : flows)
    for (int i = 0; i < 16; ++i) inspector.inspect(flow, pool[0].data(), static_cast<uint32_t>(size), P2pTransport::kTcp, i % 2 == 0);
  timed_bursts(state, inspector, flows, pool, size, false, true);
}

BENCHMARK(BM_P2pFirstPacket)
    ->ArgNames({"bytes", "kind"})
    ->Args({64, kRandom})
    ->Args({1400, kRandom})
    ->Args({64, kHttp})
    ->Args({1400, kHttp})
    ->Args({64, kP2p})
    ->Args({1400, kP2p});
BENCHMARK(BM_P2pClassified)->ArgName("bytes")->Arg(64)->Arg(1400);
BENCHMARK(BM_P2pPastLimit)->ArgName("bytes")->Arg(64)->Arg(1400);

}  // namespace

int main(int argc, char** argv) {
  if (!fairgate::bench::init_eal("p2p_bench", 64)) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  P2pDatabase& db = database();
  hs_scratch_t* scratch = nullptr;
  std::size_t scratch_bytes = 0;
  if (hs_alloc_scratch(db.database(), &scratch) == HS_SUCCESS) hs_scratch_size(scratch, &scratch_bytes);
  hs_free_scratch(scratch);
  std::printf("signatures: %zu, database %zu bytes, scratch per worker %zu bytes, flow state %zu bytes\n", db.size(),
              db.bytes(), scratch_bytes, sizeof(P2pFlowState));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
