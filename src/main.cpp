// fairgate --config FILE [--workers N] [--pipelines-dir DIR] [--check | --qos-tree]
#include "app/gateway.h"
#include "config/json_path.h"
#include "ports/eal_args.h"
#include "qos/hierarchy.h"

#include <rte_eal.h>
#include <rte_errno.h>

#include <sys/signalfd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: fairgate --config FILE [--workers N] [--pipelines-dir DIR] [--check | --qos-tree]\n"
               "  --config FILE        JSON configuration (see conf/)\n"
               "  --workers N          run N workers, worker w polling queue w of every port\n"
               "  --pipelines-dir DIR  where pipeline names are looked up (default %s/pipelines)\n"
               "  --check              validate the configuration and pipeline, then exit\n"
               "  --qos-tree           validate, print the scheduling hierarchy as JSON (as qos-tree does), exit\n"
               "environment: FAIRGATE_IDLE_BACKOFF=1 turns on the workers' idle back-off\n",
               FAIRGATE_SOURCE_DIR);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, pipelines_dir = std::string(FAIRGATE_SOURCE_DIR) + "/pipelines";
  unsigned workers = 0;
  bool check_only = false;
  bool print_qos_tree = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "fairgate: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--config") {
      config_path = value();
    } else if (arg == "--workers") {
      auto text = value();
      char* end = nullptr;
      unsigned long parsed = std::strtoul(text.c_str(), &end, 10);
      if (*end != '\0' || parsed == 0 || parsed > 16) {
        std::fprintf(stderr, "fairgate: --workers: \"%s\" is not a number from 1 to 16\n", text.c_str());
        return 2;
      }
      workers = static_cast<unsigned>(parsed);
    } else if (arg == "--pipelines-dir") {
      pipelines_dir = value();
    } else if (arg == "--check") {
      check_only = true;
    } else if (arg == "--qos-tree") {
      print_qos_tree = true;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("fairgate %s\n", FAIRGATE_VERSION);
      return 0;
    } else {
      std::fprintf(stderr, "fairgate: unknown argument \"%s\"\n", arg.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (config_path.empty()) {
    usage(stderr);
    return 2;
  }

  fairgate::Config config;
  fairgate::PipelineSpec pipeline;
  try {
    config = fairgate::load_config(config_path, workers);
    auto config_dir = std::filesystem::absolute(config_path).parent_path();
    pipeline = fairgate::load_pipeline_spec(fairgate::resolve_pipeline_path(config.pipeline, config_dir, pipelines_dir));
    fairgate::check_pipeline_fits(pipeline, config);
    if (config.p2p.enabled) {
      // Compiled here so that --check reports a bad signature file; the gateway loads it again.
      std::filesystem::path signatures;
      fairgate::load_configured_signatures(config.p2p, config_dir, &signatures);
      config.p2p.signatures = signatures.string();
    }
  } catch (const fairgate::FieldError& error) {
    std::fprintf(stderr, "fairgate: configuration error: %s\n", error.what());
    return 2;
  }
  if (const char* backoff = std::getenv("FAIRGATE_IDLE_BACKOFF"); backoff && std::strcmp(backoff, "1") == 0)
    config.dataplane.idle_backoff = true;
  if (print_qos_tree) {
    std::printf("%s\n", fairgate::hierarchy_json(fairgate::build_hierarchy(config)).dump(2).c_str());
    return 0;
  }
  if (check_only) {
    std::printf("fairgate: configuration %s is valid (pipeline %s, %zu ports, %zu workers)\n", config_path.c_str(),
                pipeline.name.c_str(), config.ports.size(), config.workers.size());
    return 0;
  }

  // Signals are taken through a signalfd by the management loop; blocked before EAL starts its
  // threads so that none of them is interrupted instead.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);

  std::string note;
  auto eal_args = fairgate::build_eal_args(config, fairgate::allowed_cpus(config), fairgate::read_hugepage_info(), note);
  if (!note.empty()) std::fprintf(stderr, "fairgate: %s\n", note.c_str());
  std::vector<char*> eal_argv;
  for (auto& arg : eal_args) eal_argv.push_back(arg.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "fairgate: EAL initialisation failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }

  int exit_code = 0;
  {
    fairgate::Gateway gateway(std::move(config), std::move(pipeline));
    try {
      gateway.start();
      gateway.run(signal_fd);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "fairgate: %s\n", error.what());
      exit_code = 1;
    }
    uint32_t size = gateway.config().dataplane.mbufs;
    uint32_t missing = gateway.stop();
    std::fprintf(stderr, "fairgate: stopped; mbufs back in pool: %u of %u, missing: %u\n", size - missing, size, missing);
    if (missing != 0 && exit_code == 0) exit_code = 3;
  }
  rte_eal_cleanup();
  return exit_code;
}
