// planfence/detail/epoch.hpp: epoch-based memory reclamation, written here (no dependency).
//
// What it is for: the plan registry unlinks collected plans while reader threads (enactors
// looking a plan up, resolvers reading an endpoint's records) may still hold a pointer to them.
// An unlinked object is *retired*, and freed only once every thread that could have seen it has
// left its read-side critical section. Readers pay two plain stores per critical section and
// never wait (on Linux with membarrier; elsewhere one exchange and one store); reclamation
// happens on the retire path, in batches.
//
//     planfence::detail::epoch_guard guard = planfence::detail::epoch_domain::pin();
//     const node* n = slot.load(std::memory_order_acquire);   // safe to use until guard ends
//
// When not to use it: a reader that blocks for long inside a guard delays every reclamation
// (the backlog grows, bounded by retired_max, after which the registry stops collecting). Keep
// critical sections short and never hold a guard across I/O.
//
// The algorithm is the classic three-epoch scheme (Fraser, "Practical lock-freedom", 2004):
//  - a global epoch E; each thread announces the epoch it saw when it entered a critical section;
//  - an object stamped with r (the epoch read after its unlink, see (E8)) is freed once
//    E >= r + 2: E only moves from e to e + 1 when every active thread announced e, so by then no
//    thread can still be inside a section that began before the object was unlinked.
//
// The fence between a reader's announcement and its first protected load is *asymmetric*
// (docs/design.md, "Epoch reclamation"): readers are many and frequent, reclaimers rare, so the
// reader's side is a plain store and a compiler-only barrier, and the reclaimer makes it a real
// fence on every CPU before it scans, with membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED): that
// call returns only after every running thread of the process has executed a full memory barrier
// (an interrupt on its CPU), and a thread not running executes one when it is switched out. Where
// membarrier is missing (not Linux, an old kernel, a seccomp filter, valgrind) or the
// environment variable PLANFENCE_EPOCH_FENCE=symmetric is set when the domain is first used, the
// domain falls back to the symmetric scheme: a seq_cst exchange on entry, a seq_cst fence in the
// reclaimer. The choice is made once, before any reader enters, and never changes.
//
// Memory orders (numbered, cross-referenced below and in docs/design.md):
//  (E1) enter. Asymmetric: relaxed store of the announcement, then a compiler-only barrier
//       (atomic_signal_fence), so the compiler cannot sink the store below the section's loads;
//       the CPU may, until the reclaimer's membarrier (E4) forces a full barrier on this CPU at
//       some point of this thread's execution. Symmetric: seq_cst exchange. Either way: for each
//       reclaim after an unlink, either the scan sees the announcement, or this thread's
//       protected loads see the unlink (proof in docs/design.md).
//       A guard taken while the thread is already announced (nested, read from its own slot,
//       which only it writes) announces nothing; it only counts itself in the thread's state.
//  (E2) exit of the thread's last active guard: release store of 0. Pairs with (E3):
//       everything the reader did in the section happens-before the reclaimer's decision to move
//       the epoch, hence before the free. Guards may end in any order: each end but the last
//       only uncounts one nested guard.
//  (E3) scan: acquire load of each slot.
//  (E4) the heavy fence, on the reclaim path only, after taking the retired objects (E8) and
//       before the scan: seq_cst fence, membarrier (asymmetric mode), seq_cst fence.
//  (E5) advance: acq_rel CAS of the global epoch.
//  (E6) slots in use: a thread's first pin raises `slots_used_` past its slot with a seq_cst CAS,
//       sequenced before its first announcement (E1); the reclaimer loads it after (E4) and scans
//       only the slots below it. If that load misses the raise, the raise (and so the
//       announcement after it) comes after the reclaimer's fence on that thread, and the reader
//       sees the unlink: the same case as an announcement the scan did not see. It keeps reclaim
//       from scanning all thread_slots_max cache lines when a handful of threads ever read.
//  (E7) retire: release CAS pushing the object on the lock-free retired stack. The caller's
//       unlink is sequenced before it.
//  (E8) take: acquire exchange of the retired stack by the reclaimer (under its mutex), before
//       the heavy fence (E4). Pairs with (E7): each taken object's unlink happens-before (E4), and
//       its stamp is the epoch loaded after (E4), exactly what a reclaimer that retired it itself
//       would have done.
//
// Progress: enter and exit are wait-free once the thread has a slot (the first enter of a thread
// claims one with a CAS: lock-free). retire is lock-free and never allocates for a
// `retired_hook` (the object embeds it, as the registry's plan nodes do): one relaxed add that
// counts the object in the backlog and the unscanned batch at once, and one CAS push (E7). The
// (object, deleter) overload takes a small box, recycled (allocated only when none is spare).
// Every `reclaim_batch`-th retire, or the first one after `reclaim_interval` without a reclaim,
// also reclaims if no other thread is reclaiming (try_lock: it never waits). reclaim() blocks
// on a mutex. None of it runs on the apply or read paths. Memory: one cache line per thread
// slot, plus the backlog (at most retired_max objects; between reclaims at most
// reclaim_batch - 1 objects wait without being scanned).
//
// Costs (bench/apply_bench.cpp, BM_EpochGuard; docs/benchmarks.md): entering and leaving a
// section is two plain stores in asymmetric mode (about a nanosecond), one locked exchange
// (about a CAS) in the symmetric one. A reclaim costs one membarrier (0.4 to 3 microseconds on
// the 2-CPU VM of docs/benchmarks.md) plus a scan of the slots in use, hence the batching.
//
// Limits: thread_slots_max threads may hold a slot at once (a thread releases its slot when it
// exits); more is a programmer error and stops the program with a message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string_view>

#include "../config.hpp"

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/membarrier.h>) && __has_include(<sys/syscall.h>) && __has_include(<unistd.h>)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__NR_membarrier)
#define PLANFENCE_HAVE_MEMBARRIER 1
#endif
#endif
#endif
#if !defined(PLANFENCE_HAVE_MEMBARRIER)
#define PLANFENCE_HAVE_MEMBARRIER 0
#endif

namespace planfence {
inline namespace v1 {
namespace detail {

class epoch_domain;

/// How the domain orders a reader's announcement before its protected loads (header comment).
enum class epoch_fence : std::uint8_t {
  symmetric,   ///< seq_cst exchange on entry, seq_cst fence in the reclaimer (portable)
  asymmetric,  ///< plain store on entry; membarrier in the reclaimer (Linux)
};

/// The global epoch word, alone on its cache line (epoch_domain::epoch_).
struct alignas(64) epoch_line {
  std::atomic<std::uint64_t> word{2};
};
static_assert(sizeof(epoch_line) == 64);

/// What a retired object embeds so that retiring it neither allocates nor locks. `reclaim`
/// frees the object (and with it the hook); the domain owns `next` and `epoch` from retire on.
struct retired_hook {
  retired_hook* next = nullptr;
  void (*reclaim)(retired_hook*) = nullptr;
  std::uint64_t epoch = 0;
};

/// A thread's entry in the domain: its slot, how many of its guards are nested, and the domain's fence
/// scheme, copied here when the slot is claimed so that entering a guard touches this thread's
/// own state and the epoch word, nothing else.
/// Trivially destructible and constant-initialised, so reaching it is one
/// thread-pointer-relative access with no initialisation check; the slot is released at thread
/// exit by a separate object. `announced` is null until the slot is claimed.
struct epoch_thread_state {
  std::atomic<std::uint64_t>* announced = nullptr;  // the claimed slot's word (of global())
  std::size_t slot = 0;
  /// Guards active beyond the first (the first is the announcement itself). Touched only when
  /// guards nest, so the common guard is not a read-modify-write of thread-local memory: a depth
  /// counter's increment and decrement chained every guard to the previous one through
  /// store-to-load forwarding, about 2 ns of a 4.5 ns read (BM_SnapshotRead).
  std::size_t nested = 0;
  bool asymmetric = false;
};

/// RAII read-side critical section. Movable, not copyable; nests, in any order of ending (the
/// section ends with the last guard; an inner guard costs a thread-local increment).
/// Ends on the thread that began it (a guard is not handed to another thread).
class epoch_guard {
 public:
  epoch_guard() noexcept = default;
  epoch_guard(epoch_guard&& other) noexcept : state_(other.state_) { other.state_ = nullptr; }
  epoch_guard& operator=(epoch_guard&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = other.state_;
      other.state_ = nullptr;
    }
    return *this;
  }
  epoch_guard(const epoch_guard&) = delete;
  epoch_guard& operator=(const epoch_guard&) = delete;
  PLANFENCE_ALWAYS_INLINE ~epoch_guard() { reset(); }

  /// Leaves the critical section now.
  PLANFENCE_ALWAYS_INLINE void reset() noexcept;
  [[nodiscard]] bool active() const noexcept { return state_ != nullptr; }

 private:
  friend class epoch_domain;
  explicit epoch_guard(epoch_thread_state* state) noexcept : state_(state) {}
  epoch_thread_state* state_ = nullptr;
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
  /// A retire reclaims when this many objects wait unscanned (amortises the heavy fence, E4)...
  static constexpr std::size_t reclaim_batch = 64;
  /// ... or when it is the first since a reclaim and none ran for this long (so rare retires
  /// are reclaimed at once).
  static constexpr std::chrono::microseconds reclaim_interval{1000};
  static_assert(reclaim_batch >= 1 && reclaim_batch * 8 <= retired_max,
                "a batch must stay far below the hard backlog bound");

  /// The process-wide domain. Never destroyed (threads may outlive static destruction).
  PLANFENCE_ALWAYS_INLINE static epoch_domain& global() noexcept {
    static epoch_domain* domain = new epoch_domain();  // intentionally leaked
    return *domain;
  }

  /// Enters a read-side critical section of the process-wide domain (static: a thread's state
  /// says which domain it belongs to, so the hot path never reaches global(), whose
  /// initialisation check would cost a load and a branch per guard). Wait-free after the
  /// thread's first call; never allocates. Cost on Linux: the thread's own slot and state, the
  /// epoch load and one store, with no taken branch, and nothing carried from one guard to the
  /// next (BM_EpochGuard).
  [[nodiscard]] PLANFENCE_ALWAYS_INLINE static epoch_guard pin() noexcept {
    epoch_thread_state& state = tls_state_;
    if (state.announced == nullptr) [[unlikely]] global().claim_slot(state);
    std::atomic<std::uint64_t>& announced = *state.announced;
    // Only this thread writes its slot, so the load reads its own last store; 0 means no guard
    // of this thread is active. The value feeds this branch alone (predicted), so the store the
    // previous guard's end made is not a dependency of this guard's work.
    if (announced.load(std::memory_order_relaxed) == 0) [[likely]] {
      const std::uint64_t e = epoch_.word.load(std::memory_order_relaxed);
      if (state.asymmetric) [[likely]] {
        // (E1) relaxed store + compiler barrier; the reclaimer's membarrier (E4) is the fence.
        announced.store((e << 1) | 1, std::memory_order_relaxed);
        std::atomic_signal_fence(std::memory_order_seq_cst);
      } else {
        // (E1) seq_cst exchange: announce before any protected load.
        announced.exchange((e << 1) | 1, std::memory_order_seq_cst);
      }
    } else {
      ++state.nested;  // already announced: the section lasts until the last guard ends
    }
    return epoch_guard(&state);
  }

  /// Hands `hook`'s object to the domain; `hook->reclaim(hook)` runs once no reader can hold
  /// it. The caller must have unlinked the object (no new reader can reach it) and set
  /// `hook->reclaim`. Lock-free (one CAS push, E7); never allocates; may reclaim a batch
  /// (never waiting for a reclaim another thread runs).
  void retire(retired_hook* hook) noexcept {
    PLANFENCE_ASSERT(hook != nullptr);
    PLANFENCE_ASSERT(hook->reclaim != nullptr);
    // Counted before the push, so a reclaimer that takes the hook at once never counts below 0.
    // One read-modify-write counts it in both halves of the word (see counts_).
    const std::uint64_t counts = counts_.fetch_add(backlog_one | unscanned_one, std::memory_order_relaxed) +
                                 (backlog_one | unscanned_one);
    PLANFENCE_ASSERT((counts >> backlog_shift) <= retired_max);
    const std::uint64_t waiting = counts & unscanned_mask;
    hook->next = retired_head_.load(std::memory_order_relaxed);
    // (E7) release: the caller's unlink happens-before the reclaimer's take (E8).
    while (!retired_head_.compare_exchange_weak(hook->next, hook, std::memory_order_release,
                                                std::memory_order_relaxed)) {
    }
    // The clock is read only by the first retire after a reclaim: a lone retire (a control plane
    // collecting now and then) is reclaimed at once, a burst pays one clock read per batch.
    if (waiting >= reclaim_batch || (waiting == 1 && reclaim_due())) {
      std::unique_lock lock(mutex_, std::try_to_lock);
      if (lock.owns_lock()) reclaim_locked();
    }
  }

  /// Hands `object` to the domain; `deleter(object)` runs once no reader can hold it. The
  /// caller must have unlinked it. Lock-free. The hook lives in a small box that the domain
  /// recycles: a thread allocates one only when its cache and the recycled stack are both
  /// empty (in steady state, never; the retired_hook overload never does).
  void retire(void* object, void (*deleter)(void*)) {
    PLANFENCE_ASSERT(deleter != nullptr);
    retire(take_box(object, deleter));
  }

  /// Frees what can be freed now. With no thread inside a critical section, one call frees
  /// everything retired before it. Blocking (a mutex).
  void reclaim() {
    std::lock_guard lock(mutex_);
    reclaim_locked();
  }

  /// Retired objects not yet freed (observable backlog).
  [[nodiscard]] std::size_t backlog() const noexcept {
    return static_cast<std::size_t>(counts_.load(std::memory_order_relaxed) >> backlog_shift);
  }

  /// Objects freed since the domain was created.
  [[nodiscard]] std::uint64_t freed_total() const noexcept { return freed_.load(std::memory_order_relaxed); }

  /// The fence scheme this process uses (chosen once, see the header comment).
  [[nodiscard]] epoch_fence fence() const noexcept { return fence_; }

 private:
  friend class epoch_guard;
  struct alignas(64) slot {
    std::atomic<std::uint64_t> announced{0};  // 0: inactive; else (epoch << 1) | 1
    std::atomic<bool> owned{false};
  };
  /// The hook of an object retired with a deleter. reclaim_locked recognises it by its
  /// `reclaim` and recycles it (recycled_) instead of calling `release`.
  struct boxed_object : retired_hook {
    static void release(retired_hook* hook) noexcept {
      auto* self = static_cast<boxed_object*>(hook);
      self->deleter(self->object);
      delete self;
    }
    void* object = nullptr;
    void (*deleter)(void*) = nullptr;
  };
  /// A thread's spare boxes; refilled from recycled_ by one exchange, freed when it exits.
  struct box_cache {
    retired_hook* head = nullptr;
    ~box_cache() {
      while (head != nullptr) {
        retired_hook* next = head->next;
        delete static_cast<boxed_object*>(head);
        head = next;
      }
    }
  };
  /// Releases the thread's slot when the thread exits (touched once, when the slot is claimed).
  struct thread_release {
    ~thread_release() {
      epoch_thread_state& state = tls_state_;
      if (state.announced != nullptr) {
        PLANFENCE_ASSERT(state.nested == 0 && state.announced->load(std::memory_order_relaxed) == 0);
        global().slots_[state.slot].owned.store(false, std::memory_order_release);
        state = epoch_thread_state{};
      }
    }
  };
  static inline constinit thread_local epoch_thread_state tls_state_{};

  epoch_domain() noexcept : fence_(choose_fence()) {}

  static std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  [[nodiscard]] bool reclaim_due() const noexcept {
    return now_ns() - last_reclaim_ns_.load(std::memory_order_relaxed) >=
           std::chrono::nanoseconds(reclaim_interval).count();
  }

  boxed_object* take_box(void* object, void (*deleter)(void*)) {
    thread_local box_cache cache;
    // Acquire: pairs with the release push in recycle(); the reclaimer's last use of the box
    // (its deleter call) happens-before this thread reuses it. Taking the whole stack with one
    // exchange has no ABA problem (nobody pops single boxes from the shared stack).
    if (cache.head == nullptr) cache.head = recycled_.exchange(nullptr, std::memory_order_acquire);
    boxed_object* box = nullptr;
    if (cache.head != nullptr) {
      box = static_cast<boxed_object*>(cache.head);
      cache.head = box->next;
    } else {
      box = new boxed_object();
    }
    box->next = nullptr;
    box->reclaim = &boxed_object::release;
    box->epoch = 0;
    box->object = object;
    box->deleter = deleter;
    return box;
  }

  void recycle(boxed_object* box) noexcept {
    box->next = recycled_.load(std::memory_order_relaxed);
    while (!recycled_.compare_exchange_weak(box->next, box, std::memory_order_release, std::memory_order_relaxed)) {
    }
  }

  /// Asymmetric if membarrier's private expedited command can be registered and the
  /// environment does not ask for the symmetric scheme. Runs once, before any reader.
  static epoch_fence choose_fence() noexcept {
    const char* forced = std::getenv("PLANFENCE_EPOCH_FENCE");
    if (forced != nullptr && std::string_view(forced) == "symmetric") return epoch_fence::symmetric;
#if PLANFENCE_HAVE_MEMBARRIER
    const long commands = ::syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
        ::syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) {
      return epoch_fence::asymmetric;
    }
#endif
    return epoch_fence::symmetric;
  }

  /// (E4) Orders every unlink taken so far (E8) before the scan, on every CPU.
  void heavy_fence() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
#if PLANFENCE_HAVE_MEMBARRIER
    if (fence_ == epoch_fence::asymmetric) {
      // Registered in choose_fence(), so it cannot fail with EPERM; any failure would leave
      // readers unordered, hence an assertion rather than a silent fallback.
      const long done = ::syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
      PLANFENCE_ASSERT(done == 0);
      std::atomic_thread_fence(std::memory_order_seq_cst);
    }
#endif
  }

  void claim_slot(epoch_thread_state& state) noexcept {
    // Only global() exists (the constructor is private), so a claimed slot is always its slot.
    PLANFENCE_ASSERT(this == &global() && state.announced == nullptr);
    thread_local thread_release release;  // registers the release at thread exit
    static_cast<void>(release);
    for (std::size_t i = 0; i < thread_slots_max; ++i) {
      bool expected = false;
      if (!slots_[i].owned.load(std::memory_order_relaxed) &&
          slots_[i].owned.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
        // (E6) seq_cst: a read-modify-write even when the mark is already past i (a plain
        // load would not order this thread's announcements after the reclaimer's fence).
        std::size_t used = slots_used_.load(std::memory_order_relaxed);
        while (!slots_used_.compare_exchange_weak(used, used > i ? used : i + 1, std::memory_order_seq_cst,
                                                  std::memory_order_relaxed)) {
        }
        state.slot = i;
        state.asymmetric = fence_ == epoch_fence::asymmetric;
        state.nested = 0;
        state.announced = &slots_[i].announced;
        return;
      }
    }
    PLANFENCE_ASSERT(!"more than epoch_domain::thread_slots_max threads read planfence at once");
  }

  PLANFENCE_ALWAYS_INLINE static void exit(epoch_thread_state* state) noexcept {
    PLANFENCE_ASSERT(state == &tls_state_);  // a guard ends on the thread that began it
    PLANFENCE_ASSERT(state->announced->load(std::memory_order_relaxed) != 0);  // a guard is active
    if (state->nested == 0) [[likely]] {
      // (E2) release: the section's reads happen-before a reclaimer's acquire scan (E3).
      state->announced->store(0, std::memory_order_release);
    } else {
      --state->nested;  // another guard of this thread is still active
    }
  }

  bool try_advance() noexcept {
    std::uint64_t e = epoch_.word.load(std::memory_order_acquire);
    // (E6) after the heavy fence (E4): no slot at or above this mark can hold an announcement
    // that matters.
    const std::size_t used = slots_used_.load(std::memory_order_acquire);
    PLANFENCE_ASSERT(used <= thread_slots_max);
    for (std::size_t i = 0; i < used; ++i) {
      const std::uint64_t a = slots_[i].announced.load(std::memory_order_acquire);  // (E3)
      if ((a & 1) != 0 && (a >> 1) != e) return false;
    }
    // (E5) acq_rel: only the reclaimer (under the mutex) moves the epoch.
    return epoch_.word.compare_exchange_strong(e, e + 1, std::memory_order_acq_rel);
  }

  void reclaim_locked() noexcept {
    last_reclaim_ns_.store(now_ns(), std::memory_order_relaxed);
    // (E8) acquire: every object taken here was unlinked before its retire (E7).
    retired_hook* fresh = retired_head_.exchange(nullptr, std::memory_order_acquire);
    heavy_fence();  // (E4)
    const std::uint64_t stamp = epoch_.word.load(std::memory_order_acquire);
    std::size_t taken = 0;
    while (fresh != nullptr) {
      retired_hook* next = fresh->next;
      fresh->epoch = stamp;  // read after (E4): as if retired by this reclaimer
      fresh->next = retired_;
      retired_ = fresh;
      fresh = next;
      ++taken;
    }
    counts_.fetch_sub(taken * unscanned_one, std::memory_order_relaxed);
    // Two advances at most are useful: objects stamped r need E >= r + 2.
    for (int i = 0; i < 2 && retired_ != nullptr; ++i) {
      if (!try_advance()) break;
    }
    const std::uint64_t e = epoch_.word.load(std::memory_order_acquire);
    std::uint64_t freed = 0;
    retired_hook** link = &retired_;
    while (*link != nullptr) {
      retired_hook* hook = *link;
      if (hook->epoch + 2 <= e) {
        *link = hook->next;
        if (hook->reclaim == &boxed_object::release) {
          auto* box = static_cast<boxed_object*>(hook);
          box->deleter(box->object);
          recycle(box);
        } else {
          hook->reclaim(hook);  // frees the hook too: nothing of it is read after this
        }
        ++freed;
      } else {
        link = &hook->next;
      }
    }
    if (freed != 0) counts_.fetch_sub(freed * backlog_one, std::memory_order_relaxed);
    freed_.fetch_add(freed, std::memory_order_relaxed);
  }

  // Read by every pin, on a line of its own (padded to the whole line, so no other global
  // shares it) that only an epoch advance writes. Static (there is one domain per process,
  // asserted in claim_slot), so a pin reaches it with one address-relative load instead of
  // through the domain's pointer.
  static inline constinit epoch_line epoch_{};
  const epoch_fence fence_;
  alignas(64) std::atomic<std::size_t> slots_used_{0};  // (E6) every slot ever claimed is below it
  slot slots_[thread_slots_max];
  // The retire side, on lines of its own.
  alignas(64) std::atomic<retired_hook*> retired_head_{nullptr};  // (E7)/(E8): lock-free stack
  // Two counters in one word, so that retire counts an object with one read-modify-write: the
  // backlog (retired, not yet freed) in the high half, the unscanned objects (retired since the
  // last take: a trigger only) in the low half. Neither half can carry into the other: both are
  // at most retired_max (asserted), and the low half never goes below zero (an object is counted
  // before it is pushed, so before any reclaimer can take it).
  static constexpr unsigned backlog_shift = 32;
  static constexpr std::uint64_t backlog_one = std::uint64_t{1} << backlog_shift;
  static constexpr std::uint64_t unscanned_one = 1;
  static constexpr std::uint64_t unscanned_mask = backlog_one - 1;
  static_assert(retired_max < unscanned_mask, "each half of counts_ must hold retired_max");
  std::atomic<std::uint64_t> counts_{0};
  std::atomic<std::int64_t> last_reclaim_ns_{0};
  std::atomic<std::uint64_t> freed_{0};
  std::atomic<retired_hook*> recycled_{nullptr};  // spare boxes (pushed by the reclaimer only)
  std::mutex mutex_;                            // one reclaimer at a time
  retired_hook* retired_ = nullptr;             // taken, stamped, not yet freed (under mutex_)
};

PLANFENCE_ALWAYS_INLINE void epoch_guard::reset() noexcept {
  if (state_ != nullptr) {
    epoch_domain::exit(state_);
    state_ = nullptr;
  }
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
