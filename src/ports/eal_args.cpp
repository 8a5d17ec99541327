#include "ports/eal_args.h"

#include <sched.h>

#include <fstream>

namespace fairgate {

HugepageInfo read_hugepage_info() {
  HugepageInfo info;
  std::ifstream free_pages("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  free_pages >> info.free_2mb_pages;
  return info;
}

std::vector<unsigned> allowed_cpus(const Config& config) {
  if (!config.eal.cpus.empty()) return {config.eal.cpus.begin(), config.eal.cpus.end()};
  std::vector<unsigned> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

std::vector<std::string> build_eal_args(const Config& config, const std::vector<unsigned>& cpus,
                                        const HugepageInfo& hugepages, std::string& note) {
  std::vector<std::string> args = {"fairgate"};
  std::string lcores;
  for (std::size_t lcore = 0; lcore <= config.workers.size(); ++lcore) {
    if (!lcores.empty()) lcores += ",";
    lcores += std::to_string(lcore) + "@" + std::to_string(cpus[lcore % cpus.size()]);
  }
  args.insert(args.end(), {"--lcores", lcores, "--main-lcore", "0"});
  args.insert(args.end(), {"--file-prefix", config.eal.file_prefix});
  args.insert(args.end(), {"-m", std::to_string(config.eal.memory_mb)});
  bool enough_hugepages = hugepages.free_2mb_pages * 2 >= config.eal.memory_mb;
  bool use_hugepages = config.eal.hugepages == "yes" || (config.eal.hugepages == "auto" && enough_hugepages);
  if (use_hugepages) {
    // No hugepage files to leave behind, and several instances (lab, tests) coexist. EAL
    // refuses --in-memory together with --no-huge.
    args.push_back("--in-memory");
  } else {
    args.push_back("--no-huge");
    note = config.eal.hugepages == "no" ? "hugepages off by configuration"
                                        : "only " + std::to_string(hugepages.free_2mb_pages) +
                                              " free 2 MB hugepages for " + std::to_string(config.eal.memory_mb) +
                                              " MB: running with --no-huge";
  }
  bool any_pci = false;
  for (const auto& port : config.ports) {
    if (port.is_vdev()) {
      args.insert(args.end(), {"--vdev", port.device});
    } else {
      args.insert(args.end(), {"-a", port.device});
      any_pci = true;
    }
  }
  if (!any_pci) args.push_back("--no-pci");
  args.push_back("--log-level=*:notice");
  args.insert(args.end(), config.eal.extra_args.begin(), config.eal.extra_args.end());
  return args;
}

}  // namespace fairgate
