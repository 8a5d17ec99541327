// flow: counts every packet of a NAT session into the worker's flow accounting (packets,
// bytes, TCP flags, times, class, the port it arrived on), for the flow records the management
// thread exports and streams. Place it after nat (it needs the session), classify and p2p (it
// records the class they chose and leaves out what p2p dropped), before l3.
#pragma once

#include "flow/flow_accounting.h"
#include "pipeline/stage.h"

#include <cstdint>

namespace fairgate {

class FlowStage final : public Stage {
 public:
  explicit FlowStage(FlowAccounting& flows);
  std::string_view name() const override { return "flow"; }
  void process(Burst& burst) override;

 private:
  FlowAccounting& flows_;
  uint64_t tsc_per_ms_;
};

}  // namespace fairgate
