#include "core/rcu_published.h"

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <gtest/gtest.h>

#include <memory>

namespace fairgate {
namespace {

struct Tracked {
  static inline int alive = 0;
  int value;
  explicit Tracked(int v) : value(v) { ++alive; }
  ~Tracked() { --alive; }
};

TEST(RcuPublished, WithoutQsbrOldVersionsGoAtOnce) {
  Tracked::alive = 0;
  {
    RcuPublished<Tracked> published;
    EXPECT_EQ(published.current(), nullptr);
    published.publish(std::make_unique<Tracked>(1));
    published.publish(std::make_unique<Tracked>(2));
    EXPECT_EQ(Tracked::alive, 1);
    EXPECT_EQ(published.current()->value, 2);
  }
  EXPECT_EQ(Tracked::alive, 0);
}

TEST(RcuPublished, OldVersionLivesUntilEveryReaderIsQuiescent) {
  Tracked::alive = 0;
  auto* qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("unit_qsbr", rte_rcu_qsbr_get_memsize(2), RTE_CACHE_LINE_SIZE));
  ASSERT_NE(qsbr, nullptr);
  ASSERT_EQ(rte_rcu_qsbr_init(qsbr, 2), 0);
  // Two readers (thread ids 0 and 1) online; this thread reports for them.
  for (unsigned id : {0u, 1u}) {
    ASSERT_EQ(rte_rcu_qsbr_thread_register(qsbr, id), 0);
    rte_rcu_qsbr_thread_online(qsbr, id);
  }
  {
    RcuPublished<Tracked> published(qsbr);
    published.publish(std::make_unique<Tracked>(1));
    const Tracked* seen = published.current();
    published.publish(std::make_unique<Tracked>(2));
    published.reclaim();
    EXPECT_EQ(Tracked::alive, 2) << "a reader may still hold version 1";
    EXPECT_EQ(seen->value, 1);
    rte_rcu_qsbr_quiescent(qsbr, 0);
    published.reclaim();
    EXPECT_EQ(Tracked::alive, 2) << "reader 1 has not reported yet";
    rte_rcu_qsbr_quiescent(qsbr, 1);
    published.reclaim();
    EXPECT_EQ(Tracked::alive, 1);
    EXPECT_EQ(published.current()->value, 2);

    // An offline reader does not hold anything back.
    rte_rcu_qsbr_thread_offline(qsbr, 1);
    published.publish(std::make_unique<Tracked>(3));
    rte_rcu_qsbr_quiescent(qsbr, 0);
    published.reclaim();
    EXPECT_EQ(Tracked::alive, 1);

    // Unreclaimed versions are freed with the table.
    published.publish(std::make_unique<Tracked>(4));
    EXPECT_EQ(Tracked::alive, 2);
  }
  EXPECT_EQ(Tracked::alive, 0);
  rte_free(qsbr);
}

}  // namespace
}  // namespace fairgate
