// tx: hands forwarded packets to the worker's TX buffer of their egress port. The buffer
// calls the driver once per full burst; the worker flushes it when idle or on a timer.
#pragma once

#include "pipeline/stage.h"
#include "pipeline/worker_state.h"

namespace fairgate {

class TxStage final : public Stage {
 public:
  TxStage(WorkerTx& tx, WorkerCounters& counters) : tx_(tx), counters_(counters) {}
  std::string_view name() const override { return "tx"; }
  void process(Burst& burst) override;

 private:
  WorkerTx& tx_;
  WorkerCounters& counters_;
};

}  // namespace fairgate
