// The "p2p" section (FairNAT's IPP2P_* settings) and the P2P policy objects it and each
// subscriber may carry.
#include "classify/p2p_signatures.h"
#include "config/json_path.h"
#include "config/p2p_parse.h"

#include <stdexcept>

namespace fairgate {

std::string_view p2p_action_name(P2pPolicy::Action action) {
  switch (action) {
    case P2pPolicy::Action::kAllow: return "allow";
    case P2pPolicy::Action::kCap: return "cap";
    case P2pPolicy::Action::kDrop: return "drop";
  }
  return "";
}

P2pPolicy parse_p2p_policy(const JsonField& field) {
  field.reject_unknown({"action", "down", "up", "drop_marked"});
  P2pPolicy policy;
  policy.action = field.at("action").one_of<P2pPolicy::Action>(
      {{"allow", P2pPolicy::Action::kAllow}, {"cap", P2pPolicy::Action::kCap}, {"drop", P2pPolicy::Action::kDrop}},
      "must be \"allow\" (the P2P class), \"cap\" (the P2P class, at most down/up) or \"drop\"");
  auto down = field.find("down"), up = field.find("up");
  if (policy.action == P2pPolicy::Action::kCap) {
    if (!down && !up) field.fail("a cap needs \"down\", \"up\" or both");
    if (down) policy.cap_down_bps = parse_rate(*down);
    if (up) policy.cap_up_bps = parse_rate(*up);
  } else if (down || up) {
    (down ? *down : *up).fail("only a \"cap\" policy has rates");
  }
  if (auto marked = field.find("drop_marked")) {
    policy.drop_marked = marked->boolean();
    if (policy.drop_marked && policy.action != P2pPolicy::Action::kDrop)
      marked->fail("applies to a \"drop\" policy only");
  }
  return policy;
}

nlohmann::ordered_json p2p_policy_json(const P2pPolicy& policy) {
  nlohmann::ordered_json json = {{"action", p2p_action_name(policy.action)}};
  if (policy.action == P2pPolicy::Action::kCap) {
    // Only the capped directions, so that what is shown can be given back as it is.
    if (policy.cap_down_bps) json["down"] = format_rate(policy.cap_down_bps);
    if (policy.cap_up_bps) json["up"] = format_rate(policy.cap_up_bps);
  }
  if (policy.action == P2pPolicy::Action::kDrop) json["drop_marked"] = policy.drop_marked;
  return json;
}

P2pConfig parse_p2p(const JsonField& field) {
  field.reject_unknown({"signatures", "protocols", "udp", "packets_per_flow", "peer_cache", "policy"});
  P2pConfig p2p;
  p2p.enabled = true;
  p2p.protocols = kAllP2pProtocols;
  if (auto f = field.find("signatures")) {
    p2p.signatures = f->string();
    if (p2p.signatures.empty()) f->fail("must name the signature file");
  }
  if (auto f = field.find("protocols")) {
    // IPP2P_OPTIONS as FairNAT wrote it ("--edk --bit"), or a list of names.
    std::string list;
    if (f->is_array()) {
      for (std::size_t i = 0; i < f->size(); ++i) list += f->at(i).string() + " ";
    } else {
      list = f->string();
    }
    try {
      p2p.protocols = parse_p2p_protocols(list);
    } catch (const std::invalid_argument& error) {
      f->fail(error.what());
    }
    if (p2p.protocols == 0) f->fail("names no protocol; leave the p2p section out to recognise none");
  }
  if (auto f = field.find("udp")) p2p.udp = f->boolean();
  if (auto f = field.find("packets_per_flow")) p2p.packets_per_direction = static_cast<uint8_t>(f->unsigned_in(1, 255));
  if (auto cache = field.find("peer_cache")) {
    cache->reject_unknown({"peers", "lifetime_s"});
    if (auto f = cache->find("peers")) p2p.peer_cache_peers = static_cast<uint32_t>(f->unsigned_in(1, 1u << 22));
    if (auto f = cache->find("lifetime_s")) p2p.peer_cache_lifetime_s = static_cast<uint32_t>(f->unsigned_in(1, 86400 * 7));
  }
  if (auto f = field.find("policy")) p2p.policy = parse_p2p_policy(*f);
  return p2p;
}

}  // namespace fairgate
