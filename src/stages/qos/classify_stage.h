// classify: finds each IPv4 packet's class inside its subscriber's pipe (ClassRules), the hash
// of its flow (which bulk queue it takes) and the LAN host it belongs to, for the sched stage.
// Place it where the LAN host's address is in the header: before nat on packets from the LAN
// (the source), after nat on packets from the WAN (the translated destination).
#pragma once

#include "pipeline/stage.h"
#include "ports/ports.h"
#include "qos/traffic_class.h"

namespace fairgate {

class ClassifyStage final : public Stage {
 public:
  ClassifyStage(const PortTable& ports, const QosConfig& qos) : ports_(ports), rules_(qos) {}
  std::string_view name() const override { return "classify"; }
  void process(Burst& burst) override;

 private:
  const PortTable& ports_;
  ClassRules rules_;
  FlowMeter meter_;
};

}  // namespace fairgate
