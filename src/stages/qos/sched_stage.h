// sched: hands forwarded packets that leave through a shaped port to that port's scheduler:
// downloads (WAN in, LAN out; in the subport of the WAN they came by) and uploads (LAN in, WAN
// out). Each is tagged with its subscriber's pipe (SubscriberMap, by the LAN host the classify
// stage found) and its class, and put on the scheduler's inbox for the worker that owns it. A
// LAN host no subscriber covers goes to the "unknown" pipe and, with qos.unknown_hosts "own", is
// reported to the management thread, which makes it a subscriber of its own. Other packets go
// on to the tx stage.
#pragma once

#include "pipeline/stage.h"
#include "pipeline/worker_state.h"
#include "ports/ports.h"
#include "qos/qos_dataplane.h"

#include <array>

namespace fairgate {

class SchedStage final : public Stage {
 public:
  SchedStage(const PortTable& ports, QosDataplane* qos, WorkerCounters& counters)
      : ports_(ports), qos_(qos), counters_(counters) {}
  std::string_view name() const override { return "sched"; }
  void process(Burst& burst) override;

 private:
  void report_unknown(uint32_t host, uint64_t now);

  const PortTable& ports_;
  QosDataplane* qos_;  // null when nothing is shaped
  WorkerCounters& counters_;
  // Hosts reported lately, so a busy unknown host is reported once, not per packet.
  static constexpr uint64_t kReportAgainMs = 100;
  struct Reported {
    uint32_t host = 0;
    uint64_t at = 0;  // TSC
  };
  std::array<Reported, 64> reported_{};
};

}  // namespace fairgate
