// guard: anti-spoofing (the Xen chapter's rule). A packet arriving on a LAN port must come
// from one of the LAN prefixes and not from one of the gateway's addresses; a packet arriving
// on a WAN port must not claim the gateway's own or a LAN address. Others are dropped and
// counted as spoofed_source.
#pragma once

#include "pipeline/stage.h"
#include "ports/ports.h"

#include <vector>

namespace fairgate {

class GuardStage final : public Stage {
 public:
  GuardStage(const PortTable& ports, std::vector<Ipv4Prefix> lan_prefixes);
  std::string_view name() const override { return "guard"; }
  void process(Burst& burst) override;

 private:
  bool on_lan(uint32_t address) const {
    for (const auto& prefix : lan_prefixes_)
      if (prefix.contains(address)) return true;
    return false;
  }
  bool own(uint32_t address) const {
    for (uint32_t own : own_addresses_)
      if (own == address) return true;
    return false;
  }

  const PortTable& ports_;
  std::vector<Ipv4Prefix> lan_prefixes_;
  std::vector<uint32_t> own_addresses_;
};

}  // namespace fairgate
