// The management thread's side of P2P recognition: the signature database (loaded at start,
// replaced by a reload that compiles, kept when one does not) and the policies, global and per
// subscriber, published to the workers as one table by subscriber pipe. A subscriber's own
// policy is part of its plan (QosControl keeps it); this table follows every change there.
#pragma once

#include "classify/p2p_dataplane.h"
#include "classify/p2p_signatures.h"
#include "config/config.h"
#include "qos/hierarchy.h"

#include <filesystem>
#include <string>
#include <vector>

namespace fairgate {

class P2pControl {
 public:
  // `loader` holds the database the workers start with.
  P2pControl(P2pDataplane& dataplane, P2pSignatureLoader loader, std::filesystem::path signatures);

  const P2pPolicy& global_policy() const { return global_; }
  // A new global policy; subscribers with their own keep theirs.
  void set_global_policy(const P2pPolicy& policy);
  // Rebuilds the table for these subscribers and publishes it.
  void follow(const std::vector<LiveSubscriber>& subscribers);

  // Reads and compiles the signature file again; on success the workers scan with the new
  // database from their next burst, on failure `error` says why and nothing changes.
  bool reload(std::string& error);
  const P2pSignatureLoader& loader() const { return loader_; }
  const std::filesystem::path& signatures_path() const { return signatures_; }
  P2pDataplane& dataplane() { return dataplane_; }
  const P2pDataplane& dataplane() const { return dataplane_; }

 private:
  void publish();

  P2pDataplane& dataplane_;
  P2pSignatureLoader loader_;
  std::filesystem::path signatures_;
  P2pPolicy global_;
  std::vector<LiveSubscriber> subscribers_;
};

// Compiles the configuration's signature file (a relative path is resolved against
// `config_dir`; none given: the shipped set);
// a FieldError naming p2p.signatures when it does not load or compile.
P2pSignatureLoader load_configured_signatures(const P2pConfig& config, const std::filesystem::path& config_dir,
                                              std::filesystem::path* resolved);

}  // namespace fairgate
