// Proves that the epoch domain (detail/epoch.hpp) never frees an object while a reader that may
// hold it is inside a guard, and that it does free retired objects (the backlog drains), in
// whichever fence scheme the process runs: asymmetric (membarrier, the default on Linux) or
// symmetric (the fallback; ctest runs this file a second time with
// PLANFENCE_EPOCH_FENCE=symmetric, label concurrent, prefix concurrent-symmetric/).
//
// How: a writer keeps replacing a shared pointer to a node and retires the old node, through
// both retire overloads (the intrusive retired_hook and the (object, deleter) box). A node is
// never given back to the allocator during the test: its "free" poisons it and parks it, so a
// reader that dereferences a freed node sees the poison instead of undefined behaviour, and the
// test fails. Readers pin, load the pointer (acquire), and check the node twice, with a pause
// between, so that a free racing with the read lands inside the guard.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include <planfence/detail/epoch.hpp>

using planfence::detail::epoch_domain;
using planfence::detail::epoch_fence;
using planfence::detail::retired_hook;

namespace {

constexpr std::uint64_t live_mark = 0x11fe11fe11fe11feULL;
constexpr std::uint64_t freed_mark = 0xdeadbeefdeadbeefULL;

struct node {
  retired_hook hook;  // first member: the hook's address is the node's
  std::atomic<std::uint64_t> mark{live_mark};
  std::uint64_t serial = 0;
};

/// Freed nodes, kept until the end of the test so that a premature free is observable.
struct graveyard {
  std::mutex mutex;
  std::vector<node*> nodes;
  std::atomic<std::uint64_t> freed{0};
  void bury(node* n) {
    n->mark.store(freed_mark, std::memory_order_relaxed);
    std::lock_guard lock(mutex);
    nodes.push_back(n);
    freed.fetch_add(1, std::memory_order_relaxed);
  }
  ~graveyard() {
    for (node* n : nodes) delete n;
  }
};

graveyard* the_graveyard = nullptr;

void free_by_hook(retired_hook* hook) { the_graveyard->bury(reinterpret_cast<node*>(hook)); }
void free_by_deleter(void* object) { the_graveyard->bury(static_cast<node*>(object)); }

}  // namespace

TEST_CASE("epoch: the fence scheme is the one the environment asks for", "[epoch]") {
  const char* forced = std::getenv("PLANFENCE_EPOCH_FENCE");
  const epoch_fence fence = epoch_domain::global().fence();
  INFO("fence scheme: " << (fence == epoch_fence::asymmetric ? "asymmetric (membarrier)" : "symmetric"));
  if (forced != nullptr && std::string_view(forced) == "symmetric") {
    CHECK(fence == epoch_fence::symmetric);
  } else {
#if PLANFENCE_HAVE_MEMBARRIER
    // Linux: asymmetric unless the kernel (or a sandbox) refuses membarrier; either is allowed,
    // but say which one ran.
    WARN("fence scheme: " << (fence == epoch_fence::asymmetric ? "asymmetric (membarrier)" : "symmetric (membarrier refused)"));
#else
    CHECK(fence == epoch_fence::symmetric);
#endif
  }
}

TEST_CASE("epoch: a retired object is never freed while a reader may hold it, and is freed after",
          "[epoch][S3]") {
  graveyard yard;
  the_graveyard = &yard;
  epoch_domain& domain = epoch_domain::global();
  domain.reclaim();
  const std::uint64_t freed_before = domain.freed_total();

  std::atomic<node*> shared{new node{}};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> poisoned_reads{0};
  std::atomic<std::uint64_t> reads{0};

  std::atomic<int> readers_started{0};
  std::atomic<std::uint64_t> reads_so_far{0};
  auto reader = [&] {
    std::uint64_t local_reads = 0;
    std::uint64_t local_poisoned = 0;
    readers_started.fetch_add(1, std::memory_order_relaxed);
    while (!stop.load(std::memory_order_relaxed)) {
      auto guard = domain.pin();
      const node* n = shared.load(std::memory_order_acquire);
      if (n->mark.load(std::memory_order_relaxed) != live_mark) ++local_poisoned;
      for (int spin = 0; spin < 64; ++spin) std::atomic_signal_fence(std::memory_order_seq_cst);
      if (n->mark.load(std::memory_order_relaxed) != live_mark) ++local_poisoned;
      ++local_reads;
      if (local_reads % 256 == 0) reads_so_far.fetch_add(256, std::memory_order_relaxed);
    }
    reads.fetch_add(local_reads, std::memory_order_relaxed);
    poisoned_reads.fetch_add(local_poisoned, std::memory_order_relaxed);
  };

  // At least this many replacements, and on a loaded machine more, until the readers have
  // overlapped them for a while (a reader scheduled only after the writer finished proves
  // nothing); capped in time.
  constexpr std::uint64_t replacements_min = 20000;
  constexpr std::uint64_t overlapping_reads_min = 100000;
  std::thread r1(reader);
  std::thread r2(reader);
  while (readers_started.load(std::memory_order_relaxed) < 2) std::this_thread::yield();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::uint64_t replacements = 0;
  for (std::uint64_t i = 1;
       i <= replacements_min || (reads_so_far.load(std::memory_order_relaxed) < overlapping_reads_min &&
                                 std::chrono::steady_clock::now() < deadline);
       ++i) {
    replacements = i;
    node* fresh = new node{};
    fresh->serial = i;
    node* old = shared.exchange(fresh, std::memory_order_acq_rel);  // the unlink
    if (i % 2 == 0) {
      old->hook.reclaim = &free_by_hook;
      domain.retire(&old->hook);
    } else {
      domain.retire(old, &free_by_deleter);
    }
    REQUIRE(domain.backlog() < epoch_domain::retired_max);
  }
  stop.store(true, std::memory_order_relaxed);
  r1.join();
  r2.join();

  CHECK(poisoned_reads.load() == 0);
  CHECK(reads.load() > 0);
  // With no reader left, one reclaim frees everything retired (two advances, E5).
  domain.reclaim();
  CHECK(domain.backlog() == 0);
  CHECK(domain.freed_total() - freed_before == replacements);
  CHECK(yard.freed.load() == replacements);
  node* last = shared.load();
  CHECK(last->mark.load() == live_mark);
  delete last;
  the_graveyard = nullptr;
}

TEST_CASE("epoch: a thread's slot is given back when it exits, so more threads than slots read in turn",
          "[epoch]") {
  // A thread claims one of thread_slots_max slots on its first guard and gives it back at exit
  // (thread_release). Were a slot kept, the thread after the last free slot would stop the
  // program on claim_slot's assertion; were an exiting thread's announcement left behind,
  // nothing retired afterwards could be reclaimed.
  graveyard yard;
  the_graveyard = &yard;
  epoch_domain& domain = epoch_domain::global();
  constexpr std::size_t threads = epoch_domain::thread_slots_max + 16;
  std::size_t guarded = 0;
  for (std::size_t i = 0; i < threads; ++i) {
    bool active = false;
    std::thread reader([&] {
      const auto guard = epoch_domain::pin();
      active = guard.active();
    });
    reader.join();
    guarded += active ? 1 : 0;
  }
  CHECK(guarded == threads);
  node* n = new node{};
  n->hook.reclaim = &free_by_hook;
  domain.retire(&n->hook);
  domain.reclaim();
  CHECK(yard.freed.load() == 1);
  the_graveyard = nullptr;
}

TEST_CASE("epoch: a reader inside a guard holds back reclamation, and leaving releases it", "[epoch][S3]") {
  graveyard yard;
  the_graveyard = &yard;
  epoch_domain& domain = epoch_domain::global();
  domain.reclaim();

  std::atomic<bool> pinned{false};
  std::atomic<bool> release{false};
  std::thread holder([&] {
    auto guard = domain.pin();
    pinned.store(true, std::memory_order_release);
    while (!release.load(std::memory_order_acquire)) std::this_thread::yield();
  });
  while (!pinned.load(std::memory_order_acquire)) std::this_thread::yield();

  node* n = new node{};
  n->hook.reclaim = &free_by_hook;
  domain.retire(&n->hook);
  for (int i = 0; i < 4; ++i) domain.reclaim();
  CHECK(yard.freed.load() == 0);  // the holder may have seen it
  CHECK(domain.backlog() >= 1);
  CHECK(n->mark.load() == live_mark);

  release.store(true, std::memory_order_release);
  holder.join();
  domain.reclaim();
  CHECK(yard.freed.load() == 1);
  CHECK(domain.backlog() == 0);
  the_graveyard = nullptr;
}

TEST_CASE("epoch: nested guards end in any order, and the section lasts until the last ends", "[epoch][S3]") {
  graveyard yard;
  the_graveyard = &yard;
  epoch_domain& domain = epoch_domain::global();
  domain.reclaim();

  // The holder's steps, each waited for by the main thread: 1 both guards taken, 2 the first
  // (outer) ended, 3 the second ended.
  std::atomic<int> step{0};
  std::atomic<int> go{0};
  std::thread holder([&] {
    auto outer = epoch_domain::pin();
    auto inner = epoch_domain::pin();
    step.store(1, std::memory_order_release);
    while (go.load(std::memory_order_acquire) < 1) std::this_thread::yield();
    outer.reset();  // not the last: as a snapshot moved-assigned over an older one
    step.store(2, std::memory_order_release);
    while (go.load(std::memory_order_acquire) < 2) std::this_thread::yield();
    inner.reset();
    step.store(3, std::memory_order_release);
  });
  auto wait_for = [&](int n) {
    while (step.load(std::memory_order_acquire) < n) std::this_thread::yield();
  };
  wait_for(1);
  node* n = new node{};
  n->hook.reclaim = &free_by_hook;
  domain.retire(&n->hook);
  for (int i = 0; i < 4; ++i) domain.reclaim();
  CHECK(yard.freed.load() == 0);
  go.store(1, std::memory_order_release);
  wait_for(2);
  for (int i = 0; i < 4; ++i) domain.reclaim();
  CHECK(yard.freed.load() == 0);  // the inner guard is still active: the section has not ended
  CHECK(n->mark.load() == live_mark);
  go.store(2, std::memory_order_release);
  wait_for(3);
  holder.join();
  domain.reclaim();
  CHECK(yard.freed.load() == 1);
  CHECK(domain.backlog() == 0);

  // And in the order of their taking, on this thread: the section ends with the outer guard.
  node* m = new node{};
  m->hook.reclaim = &free_by_hook;
  {
    auto outer = epoch_domain::pin();
    {
      auto inner = epoch_domain::pin();
      domain.retire(&m->hook);
    }
    CHECK(yard.freed.load() == 1);  // this thread's own outer guard still holds it back
  }
  domain.reclaim();
  domain.reclaim();
  CHECK(yard.freed.load() == 2);
  the_graveyard = nullptr;
}

TEST_CASE("epoch: rare retires are reclaimed at once, bursts in batches", "[epoch]") {
  graveyard yard;
  the_graveyard = &yard;
  epoch_domain& domain = epoch_domain::global();
  domain.reclaim();
  // After a pause longer than reclaim_interval, a retire reclaims by itself (no reader holds
  // anything), so a control plane that collects one plan a minute frees it at once.
  std::this_thread::sleep_for(epoch_domain::reclaim_interval * 2);
  node* n = new node{};
  n->hook.reclaim = &free_by_hook;
  domain.retire(&n->hook);
  CHECK(yard.freed.load() == 1);
  // A burst never leaves more than reclaim_batch objects unscanned.
  for (std::size_t i = 0; i < 10 * epoch_domain::reclaim_batch; ++i) {
    node* m = new node{};
    m->hook.reclaim = &free_by_hook;
    domain.retire(&m->hook);
    CHECK(domain.backlog() <= epoch_domain::reclaim_batch);
  }
  domain.reclaim();
  CHECK(domain.backlog() == 0);
  CHECK(yard.freed.load() == 1 + 10 * epoch_domain::reclaim_batch);
  the_graveyard = nullptr;
}
