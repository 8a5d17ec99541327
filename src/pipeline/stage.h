// The stage interface. A stage is a class with a burst function: it looks at the packets of a
// burst that still have no final verdict and either leaves them to the next stage or gives
// them one (VPP's next[] array). The worker acts on the verdicts once, after the last stage.
#pragma once

#include "core/reasons.h"

#include <rte_mbuf.h>

#include <cstdint>
#include <string_view>

namespace fairgate {

inline constexpr uint16_t kBurstSize = 32;  // packets per RX poll and per stage call

enum class Action : uint8_t {
  kContinue,  // no verdict yet: the next stage looks at it
  kForward,   // routed and rewritten; a TX stage sends it to PacketMeta::egress_port
  kSent,      // taken: handed to a TX buffer, or held by a stage (reassembly); not the worker's now
  kPunt,      // to the management thread, PacketMeta::punt_reason says why
  kHandoff,   // to the worker that owns its state, PacketMeta::handoff_worker
  kDrop,      // freed and counted under drop_reason
};

struct Burst {
  rte_mbuf* pkts[kBurstSize];
  Action action[kBurstSize];
  DropReason drop_reason[kBurstSize];
  uint16_t count = 0;
  uint16_t rx_port = 0;  // port index (Config::ports) the burst arrived on

  void reset(uint16_t port, uint16_t n) {
    rx_port = port;
    count = n;
    for (uint16_t i = 0; i < n; ++i) action[i] = Action::kContinue;
  }
  void drop(uint16_t i, DropReason reason) {
    action[i] = Action::kDrop;
    drop_reason[i] = reason;
  }
};

class Stage {
 public:
  virtual ~Stage() = default;
  virtual std::string_view name() const = 0;
  // Gives packets whose action is kContinue (or kForward, for a TX stage) their next action.
  virtual void process(Burst& burst) = 0;
};

// A stage whose feature the configuration leaves off (p2p without a "p2p" section): it passes
// every packet on, so one pipeline definition serves configurations with and without it.
class SwitchedOffStage final : public Stage {
 public:
  explicit SwitchedOffStage(std::string_view name) : name_(name) {}
  std::string_view name() const override { return name_; }
  void process(Burst&) override {}

 private:
  std::string_view name_;
};

}  // namespace fairgate
