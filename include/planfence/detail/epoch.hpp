// planfence/detail/epoch.hpp: epoch-based memory reclamation, written here (no dependency).
//
// What it is for: the plan registry unlinks collected plans while reader threads (enactors
// looking a plan up, resolvers reading an endpoint's records) may still hold a pointer to them.
// An unlinked object is *retired*, and freed only once every thread that could have seen it has
// left its read-side critical section. Readers pay one exchange and one store per critical
// section and never wait; reclamation happens on the (rare, blocking) retire path.
//
//     planfence::detail::epoch_guard guard = planfence::detail::epoch_domain::global().pin();
//     const node* n = slot.load(std::memory_order_acquire);   // safe to use until guard ends
//
// When not to use it: a reader that blocks for long inside a guard delays every reclamation
// (the backlog grows, bounded by retired_max, after which the registry stops collecting). Keep
// critical sections short and never hold a guard across I/O.
//
// The algorithm is the classic three-epoch scheme (Fraser, "Practical lock-freedom", 2004):
//  - a global epoch E; each thread announces the epoch it saw when it entered a critical section;
//  - an object retired while E == r is freed once E >= r + 2: E only moves from e to e + 1 when
//    every active thread announced e, so by then no thread can still be inside a section that
//    began before the object was unlinked.
// Memory orders (numbered, cross-referenced below and in docs/design.md):
//  (E1) enter: seq_cst exchange of the thread's slot. Orders the announcement before every load
//       in the section, and pairs with the reclaimer's seq_cst fence (E4): either the reclaimer
//       sees the announcement, or this thread sees the unlink that preceded the retire.
//  (E2) exit: release store of 0. Pairs with (E3): everything the reader did in the section
//       happens-before the reclaimer's decision to move the epoch, hence before the free.
//  (E3) scan: acquire load of each slot.
//  (E4) retire: seq_cst fence after the caller's unlink and before the scan.
//  (E5) advance: acq_rel CAS of the global epoch.
//  (E6) slots in use: a thread's first pin raises `slots_used_` past its slot with a seq_cst CAS,
//       sequenced before its first announcement (E1); the reclaimer loads it after (E4) and scans
//       only the slots below it. If that load misses the raise, the raise (and so the
//       announcement after it) follows the fence in the seq_cst order, and the reader sees the
//       unlink: the same case as an announcement the scan did not see. It keeps retire from
//       scanning all thread_slots_max cache lines when a handful of threads ever read.
//
// Progress: enter and exit are wait-free once the thread has a slot (the first enter of a thread
// claims one with a CAS: lock-free). retire and reclaim take a mutex (they run on collection,
// never on the apply or read paths). Memory: one cache line per thread slot, plus the backlog.
//
// Limits: thread_slots_max threads may hold a slot at once (a thread releases its slot when it
// exits); more is a programmer error and stops the program with a message.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include "../config.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

class epoch_domain;

/// RAII read-side critical section. Movable, not copyable; nests (inner guards are free).
class epoch_guard {
 public:
  epoch_guard() noexcept = default;
  epoch_guard(epoch_guard&& other) noexcept : domain_(other.domain_) { other.domain_ = nullptr; }
  epoch_guard& operator=(epoch_guard&& other) noexcept {
    if (this != &other) {
      reset();
      domain_ = other.domain_;
      other.domain_ = nullptr;
    }
    return *this;
  }
  epoch_guard(const epoch_guard&) = delete;
  epoch_guard& operator=(const epoch_guard&) = delete;
  ~epoch_guard() { reset(); }

  /// Leaves the critical section now.
  inline void reset() noexcept;
  [[nodiscard]] bool active() const noexcept { return domain_ != nullptr; }

 private:
  friend class epoch_domain;
  explicit epoch_guard(epoch_domain* domain) noexcept : domain_(domain) {}
  epoch_domain* domain_ = nullptr;
};

/// The reclamation domain. One process-wide instance (`global()`) serves every registry, so a
/// thread needs one slot however many registries it reads.
class epoch_domain {
 public:
  static constexpr std::size_t thread_slots_max = 512;
  /// Hard bound on retired, not yet freed objects. The registry refuses to collect when the
  /// backlog reaches its own, smaller bound (registry.hpp), so this one is never reached in
  /// correct use; reaching it is an assertion.
  static constexpr std::size_t retired_max = 1 << 16;

  /// The process-wide domain. Never destroyed (threads may outlive static destruction).
  static epoch_domain& global() noexcept {
    static epoch_domain* domain = new epoch_domain();  // intentionally leaked
    return *domain;
  }

  /// Enters a read-side critical section. Wait-free after the thread's first call.
  [[nodiscard]] epoch_guard pin() noexcept {
    thread_state& state = local();
    if (state.depth++ == 0) {
      const std::uint64_t e = epoch_.load(std::memory_order_relaxed);
      // (E1) seq_cst exchange: announce before any protected load.
      slots_[state.slot].announced.exchange((e << 1) | 1, std::memory_order_seq_cst);
    }
    return epoch_guard(this);
  }

  /// Hands `object` to the domain; `deleter(object)` runs once no reader can hold it. The
  /// caller must have unlinked it (no new reader can reach it). Blocking (a mutex); allocates.
  void retire(void* object, void (*deleter)(void*)) {
    std::lock_guard lock(mutex_);
    // (E4) seq_cst fence: orders the caller's unlink before the scan in try_advance.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    retired_.push_back(retired_object{object, deleter, epoch_.load(std::memory_order_relaxed)});
    PLANFENCE_ASSERT(retired_.size() <= retired_max);
    backlog_.store(retired_.size(), std::memory_order_relaxed);
    reclaim_locked();
  }

  /// Frees what can be freed now. With no thread inside a critical section, two calls free
  /// everything retired before them. Blocking (a mutex).
  void reclaim() {
    std::lock_guard lock(mutex_);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // (E4)
    reclaim_locked();
  }

  /// Retired objects not yet freed (observable backlog).
  [[nodiscard]] std::size_t backlog() const noexcept { return backlog_.load(std::memory_order_relaxed); }

  /// Objects freed since the domain was created.
  [[nodiscard]] std::uint64_t freed_total() const noexcept { return freed_.load(std::memory_order_relaxed); }

 private:
  friend class epoch_guard;
  struct alignas(64) slot {
    std::atomic<std::uint64_t> announced{0};  // 0: inactive; else (epoch << 1) | 1
    std::atomic<bool> owned{false};
  };
  struct retired_object {
    void* object;
    void (*deleter)(void*);
    std::uint64_t epoch;
  };
  struct thread_state {
    epoch_domain* domain = nullptr;
    std::size_t slot = 0;
    std::size_t depth = 0;
    ~thread_state() {
      if (domain != nullptr) {
        PLANFENCE_ASSERT(depth == 0);
        domain->slots_[slot].owned.store(false, std::memory_order_release);
      }
    }
  };

  epoch_domain() = default;

  thread_state& local() noexcept {
    thread_local thread_state state;
    if (state.domain == nullptr) {
      for (std::size_t i = 0; i < thread_slots_max; ++i) {
        bool expected = false;
        if (!slots_[i].owned.load(std::memory_order_relaxed) &&
            slots_[i].owned.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
          state.domain = this;
          state.slot = i;
          // (E6) seq_cst: a read-modify-write even when the mark is already past i (a plain
          // load would not order this thread's announcements after the reclaimer's fence).
          std::size_t used = slots_used_.load(std::memory_order_relaxed);
          while (!slots_used_.compare_exchange_weak(used, used > i ? used : i + 1, std::memory_order_seq_cst,
                                                    std::memory_order_relaxed)) {
          }
          return state;
        }
      }
      PLANFENCE_ASSERT(!"more than epoch_domain::thread_slots_max threads read planfence at once");
    }
    PLANFENCE_ASSERT(state.domain == this);  // one domain per process
    return state;
  }

  void exit() noexcept {
    thread_state& state = local();
    PLANFENCE_ASSERT(state.depth > 0);
    if (--state.depth == 0) {
      // (E2) release: the section's reads happen-before a reclaimer's acquire scan (E3).
      slots_[state.slot].announced.store(0, std::memory_order_release);
    }
  }

  bool try_advance() noexcept {
    std::uint64_t e = epoch_.load(std::memory_order_acquire);
    // (E6) after the caller's seq_cst fence (E4): no slot at or above this mark can hold an
    // announcement that matters.
    const std::size_t used = slots_used_.load(std::memory_order_acquire);
    PLANFENCE_ASSERT(used <= thread_slots_max);
    for (std::size_t i = 0; i < used; ++i) {
      const std::uint64_t a = slots_[i].announced.load(std::memory_order_acquire);  // (E3)
      if ((a & 1) != 0 && (a >> 1) != e) return false;
    }
    // (E5) acq_rel: only the reclaimer (under the mutex) moves the epoch.
    return epoch_.compare_exchange_strong(e, e + 1, std::memory_order_acq_rel);
  }

  void reclaim_locked() {
    // Two advances at most are useful: objects retired in epoch r need E >= r + 2.
    for (int i = 0; i < 2 && !retired_.empty(); ++i) {
      if (!try_advance()) break;
    }
    const std::uint64_t e = epoch_.load(std::memory_order_acquire);
    std::size_t kept = 0;
    std::uint64_t freed = 0;
    for (std::size_t i = 0; i < retired_.size(); ++i) {
      if (retired_[i].epoch + 2 <= e) {
        retired_[i].deleter(retired_[i].object);
        ++freed;
      } else {
        retired_[kept++] = retired_[i];
      }
    }
    retired_.resize(kept);
    backlog_.store(kept, std::memory_order_relaxed);
    freed_.fetch_add(freed, std::memory_order_relaxed);
  }

  std::atomic<std::uint64_t> epoch_{2};
  std::atomic<std::size_t> slots_used_{0};  // (E6) every slot ever claimed is below it
  slot slots_[thread_slots_max];
  std::mutex mutex_;
  std::vector<retired_object> retired_;
  std::atomic<std::size_t> backlog_{0};
  std::atomic<std::uint64_t> freed_{0};
};

inline void epoch_guard::reset() noexcept {
  if (domain_ != nullptr) {
    domain_->exit();
    domain_ = nullptr;
  }
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
