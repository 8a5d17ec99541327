#include "stages/tx/tx_stage.h"

#include "core/packet_meta.h"

namespace fairgate {

void TxStage::process(Burst& burst) {
  for (uint16_t i = 0; i < burst.count; ++i) {
    if (burst.action[i] != Action::kForward) continue;
    rte_mbuf* mbuf = burst.pkts[i];
    uint16_t port = packet_meta(mbuf)->egress_port;
    auto& counters = counters_.ports[port];
    counters.tx_packets.add();
    counters.tx_bytes.add(rte_pktmbuf_pkt_len(mbuf));
    tx_.send(port, mbuf);
    burst.action[i] = Action::kSent;
  }
}

}  // namespace fairgate
