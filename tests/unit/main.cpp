// The unit suite's entry point: brings EAL up once without hugepages, PCI devices or shared
// files (so it runs on any machine, several at a time), creates the shared test pool, runs
// the tests. --in-memory would be the usual way to leave no files, but EAL 22.11 refuses it
// together with --no-huge; --no-shconf does the same job here.
#include "test_packets.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>

#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace fairgate::test {
namespace {
rte_mempool* pool = nullptr;

// The first CPU this process may run on: every lcore is pinned there, so the suite needs one
// CPU whatever the machine (the worker tests only need lcores 1 and 2 to exist).
unsigned first_allowed_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) return cpu;
  return 0;
}
}  // namespace

rte_mempool* test_pool() { return pool; }

}  // namespace fairgate::test

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);

  std::string cpu = std::to_string(fairgate::test::first_allowed_cpu());
  std::vector<std::string> args = {"unit_tests",
                                   "--no-huge",
                                   "--no-pci",
                                   "--no-shconf",
                                   "--no-telemetry",
                                   "-m",
                                   "512",
                                   "--log-level=*:warning",
                                   "--file-prefix",
                                   "fgunit" + std::to_string(getpid()),
                                   "--lcores",
                                   "0@" + cpu + ",1@" + cpu + ",2@" + cpu};
  std::vector<char*> eal_argv;
  for (auto& arg : args) eal_argv.push_back(arg.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "unit_tests: EAL initialisation failed: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  fairgate::test::pool = rte_pktmbuf_pool_create("fgunit_pool", fairgate::test::kTestPoolSize, 0,
                                                 fairgate::kMbufPrivSize, RTE_MBUF_DEFAULT_BUF_SIZE,
                                                 static_cast<int>(rte_socket_id()));
  if (fairgate::test::pool == nullptr) {
    std::fprintf(stderr, "unit_tests: cannot create the test pool: %s\n", rte_strerror(rte_errno));
    return 1;
  }
  int result = RUN_ALL_TESTS();
  rte_mempool_free(fairgate::test::pool);
  std::string runtime_dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  rmdir(runtime_dir.c_str());  // EAL makes it even with --no-shconf; it is empty by now
  return result;
}
