// The EAL command line fairgate builds from its configuration.
#pragma once

#include "config/config.h"

#include <string>
#include <vector>

namespace fairgate {

struct HugepageInfo {
  uint64_t free_2mb_pages = 0;  // from /sys/kernel/mm/hugepages
};
HugepageInfo read_hugepage_info();

// lcore 0 is the management thread; lcores 1..N are the workers. They are placed on `cpus`
// (the config's, else the process's affinity), the management thread on the first, workers
// on the next ones, wrapping when there are fewer CPUs than lcores.
std::vector<std::string> build_eal_args(const Config& config, const std::vector<unsigned>& cpus,
                                        const HugepageInfo& hugepages, std::string& note);

std::vector<unsigned> allowed_cpus(const Config& config);

}  // namespace fairgate
