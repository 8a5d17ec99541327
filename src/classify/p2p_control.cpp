#include "classify/p2p_control.h"

#include "config/json_path.h"

namespace fairgate {

P2pControl::P2pControl(P2pDataplane& dataplane, P2pSignatureLoader loader, std::filesystem::path signatures)
    : dataplane_(dataplane),
      loader_(std::move(loader)),
      signatures_(std::move(signatures)),
      global_(dataplane.config().policy) {
  publish();
}

void P2pControl::set_global_policy(const P2pPolicy& policy) {
  global_ = policy;
  publish();
}

void P2pControl::follow(const std::vector<LiveSubscriber>& subscribers) {
  subscribers_ = subscribers;
  publish();
}

void P2pControl::publish() {
  auto table = std::make_unique<P2pPolicyTable>();
  table->global = global_;
  table->by_pipe.assign(dataplane_.pipes(), global_);
  for (const auto& subscriber : subscribers_)
    if (subscriber.plan.p2p && subscriber.pipe < table->by_pipe.size()) table->by_pipe[subscriber.pipe] = *subscriber.plan.p2p;
  dataplane_.policies().publish(std::move(table));
}

bool P2pControl::reload(std::string& error) {
  if (!loader_.reload_file(signatures_, error)) return false;
  dataplane_.database().publish(std::make_unique<P2pDatabaseVersion>(
      P2pDatabaseVersion{loader_.current(), loader_.generation()}));
  return true;
}

P2pSignatureLoader load_configured_signatures(const P2pConfig& config, const std::filesystem::path& config_dir,
                                              std::filesystem::path* resolved) {
  std::filesystem::path path(config.signatures);
  if (config.signatures.empty())
    path = std::filesystem::path(FAIRGATE_SOURCE_DIR) / "conf" / "p2p_signatures.json";
  else if (path.is_relative())
    path = config_dir / path;
  P2pSignatureLoader loader;
  std::string error;
  if (!loader.reload_file(path, error)) throw FieldError("p2p.signatures", path.string() + ": " + error);
  if (resolved != nullptr) *resolved = path;
  return loader;
}

}  // namespace fairgate
