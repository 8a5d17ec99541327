// parse: validates Ethernet, 802.1Q and IPv4 headers and fills PacketMeta. Nothing past this
// stage reads a header that was not checked to lie inside the buffer. Malformed frames are
// dropped with a named reason; ARP is punted to the management thread.
#pragma once

#include "pipeline/stage.h"
#include "ports/ports.h"

namespace fairgate {

class ParseStage final : public Stage {
 public:
  explicit ParseStage(const PortTable& ports) : ports_(ports) {}
  std::string_view name() const override { return "parse"; }
  void process(Burst& burst) override;

 private:
  const PortTable& ports_;
};

}  // namespace fairgate
