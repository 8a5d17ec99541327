// EAL for the stage benchmarks: one lcore, no PCI, ordinary memory (EAL refuses --in-memory
// with --no-huge), a file prefix of its own so benchmarks run beside the lab.
#pragma once

#include <rte_eal.h>

#include <iterator>
#include <string>
#include <unistd.h>

namespace fairgate::bench {

inline bool init_eal(const char* program, const char* memory_mb) {
  std::string prefix = std::string(program) + std::to_string(getpid());
  const char* eal_args[] = {program, "--no-huge", "--no-pci", "-m", memory_mb, "--log-level=*:warning",
                            "--file-prefix", prefix.c_str(), "--lcores", "0@0"};
  return rte_eal_init(static_cast<int>(std::size(eal_args)), const_cast<char**>(eal_args)) >= 0;
}

}  // namespace fairgate::bench
