// planfence/registry.hpp: the plan registry: publish, look up, pin, and collect safely.
//
// What it is: where published plans live until they are collected. Planners publish; enactors
// pin the newest plan for the length of an apply; readers (the memory store's snapshots) look a
// plan up by generation without pinning; the lease holder collects old plans under a retention
// policy. It keeps three guarantees:
//  - S5 one generation, one plan: publishing different content under a used generation is
//    refused (errc::equivocation); publishing the same content again is harmless.
//  - S3 live data is never collected: a plan is collected only when no apply holds it (pins),
//    no endpoint serves it (the live set, read *after* the plan was closed to new pins, so the
//    check is atomic with respect to commits, see collect_one), and it is not among the newest
//    retained generations. Memory is reclaimed through epoch-based reclamation (detail/epoch.hpp),
//    so no reader ever touches freed memory.
//  - the backlog of collected-but-unreclaimed plans is bounded (`backlog_max`) and observable.
// What the enactor needs of any registry is the concept `enactor_registry` (below; its meaning,
// costs and thread safety per registry are in docs/concepts.md).
//
//     planfence::plan_registry registry;
//     registry.publish(std::move(plan)).value();
//     if (auto pinned = registry.pin_latest()) { apply(*pinned); }   // unpinned when it ends
//     registry.collect({.keep_newest = 3}, now_unix_ms, [&] { return store.live_generations(); });
//
// When not to use it: it lives in one process. Plans that must survive a restart belong in the
// durable history; plans shared by several hosts in the etcd registry.
//
// Cost: pin and lookup are lock-free (one epoch guard, one acquire load, one CAS for a pin);
// publish and collect take a mutex (they are rare and off the apply path; detail::registry_mutex,
// whose uncontended lock and unlock are one CAS and one exchange, inline). Per plan, publish
// makes the node holding the plan (a plan's own structure is shared and built by plan_builder)
// in the storage of a node the same thread freed before, when it kept one (plan_node_spares: a
// steady publish/collect cycle allocates nothing; otherwise one allocation), and collection
// retires the node to the epoch domain through the hook it embeds (no box, no allocation).
// collect reuses its buffers, reads the live set once per call however many plans it collects
// (into the registry's buffer when `live` has the filling form, fills_live_set, so that the
// memory store's live set allocates nothing either), and returns a report whose lists keep their
// first 8 generations inline, unwritten beyond their size. What remains per plan
// (bench/apply_bench.cpp, BM_RetireReclaim, about 4.5x one new + delete on the 2-CPU VM of
// docs/benchmarks.md, down from 6x) is about 620 instructions for the whole cycle (callgrind;
// the endpoint lookup and the commit included) and eleven locked instructions: the two mutex
// sections' four, the unpin, the close CAS, the epoch domain's retire (one counter add and one
// push), the two reference counts the freed plan drops, and the commit's CAS; plus the
// reclaimer's membarrier (about 0.5 microseconds) shared by 64 plans.
//
// Memory orders:
//  (R1) publish: release store of the node into its slot; pairs with the acquire loads (R2).
//  (R2) lookup: acquire load of a slot or of `latest_`, inside an epoch guard (E1).
//  (R3) unpin: release decrement; pairs with the acquire of the closing CAS (R4), so a commit
//       made while the plan was pinned happens-before the collector's live-set read.
//  (R4) close: acq_rel CAS of the pin word from 0 to `closed`; new pins fail from then on.
//  (R5) pin: acq_rel CAS increment, refused when `closed` or `removed` is set.
//  (R6) remove (full variant): release store of `closed | removed` over the word (R4) left at
//       `closed`: nothing else writes a closed word with no pin (pins are refused, and there is
//       none to release), so a plain store marks it. The variants that do not check pins use
//       an acq_rel fetch_or instead and leave the retire to the last unpin when a pin is held.
//  (R7) a slot's generation word: publish stores it (relaxed) before linking the node (R1),
//       collection clears it (relaxed) before the release store that unlinks the node, so that
//       a reader inside a guard that reads gen there read it before the unlink, exactly as a
//       reader that loaded the node pointer before the unlink (E4 protects both); retains()
//       reads it with an acquire load.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "config.hpp"
#include "detail/epoch.hpp"
#include "generation.hpp"
#include "ids.hpp"
#include "plan.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

/// Which checks collection makes. Only `full` keeps S3; the others are the broken variants that
/// the tests build on purpose to show the S3 tests catching them, and that the naive (2025)
/// enactor uses. Never embed a broken variant.
enum class collection_check : std::uint8_t {
  full,         ///< pins, the live set and the newest retained generations (S3)
  ignore_live,  ///< broken: collects a plan that an endpoint serves
  ignore_pins,  ///< broken: collects a plan that an in-flight apply holds
  none,         ///< broken: the 2025 clean-up, which only looks at generations
};

/// Which plans collection keeps, besides the ones S3 protects.
struct retention_policy {
  /// The newest generations always kept (at least one: the newest is what enactors apply).
  std::size_t keep_newest = 3;
  /// Plans created less than this long ago are kept (0: no age rule).
  std::chrono::milliseconds keep_younger_than{0};
};

/// A short list of generations that keeps its first `inline_capacity` elements inside itself,
/// so that a collection report costs no allocation unless one collection touches more plans
/// than that (an enactor collecting after each run touches one or two).
class generation_list {
 public:
  static constexpr std::size_t inline_capacity = 8;

  generation_list() noexcept {}  // leaves the inline elements unwritten (see inline_)
  void push_back(generation g) {
    if (spilled_.empty() && size_ < inline_capacity) {
      inline_.items[size_++] = g;
      return;
    }
    if (spilled_.empty()) spilled_.assign(inline_.items, inline_.items + inline_capacity);
    spilled_.push_back(g);
    ++size_;
  }
  [[nodiscard]] const generation* begin() const noexcept { return data(); }
  [[nodiscard]] const generation* end() const noexcept { return data() + size_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] generation operator[](std::size_t i) const noexcept {
    PLANFENCE_ASSERT(i < size_);
    return data()[i];
  }
  [[nodiscard]] const generation* data() const noexcept { return spilled_.empty() ? inline_.items : spilled_.data(); }
  [[nodiscard]] std::vector<generation> to_vector() const { return {begin(), end()}; }
  friend bool operator==(const generation_list& x, const generation_list& y) noexcept {
    return std::equal(x.begin(), x.end(), y.begin(), y.end());
  }
  friend bool operator==(const generation_list& x, const std::vector<generation>& y) noexcept {
    return std::equal(x.begin(), x.end(), y.begin(), y.end());
  }

 private:
  // Only the first size_ elements are ever written or read: a report is made on every collect,
  // and writing its three lists' inline elements first would cost more than the collect's own
  // bookkeeping. (Copying the union copies bytes: generation is trivially copyable.)
  union inline_storage {
    inline_storage() noexcept {}
    generation items[inline_capacity];
  } inline_;
  static_assert(std::is_trivially_copyable_v<generation> && std::is_trivially_destructible_v<generation>);
  std::size_t size_ = 0;
  std::vector<generation> spilled_;  // every element once more than inline_capacity were added
};

/// What one collection did. Lists are in ascending generation order.
struct collection_report {
  generation_list collected;
  generation_list protected_live;    ///< an endpoint serves it
  generation_list protected_pinned;  ///< an in-flight apply holds it
  std::size_t kept_by_policy = 0;    ///< newest K or younger than T
  bool stopped_at_backlog = false;   ///< the reclamation backlog reached backlog_max
  /// The live set could not be read (a remote store was unavailable): nothing was collected and
  /// every candidate was reopened, since a partial or stale live set could name too few plans (S3).
  std::optional<error> live_unavailable;
};

/// A live-set function of the filling form, which collect prefers: `live(out)` puts the
/// generations endpoints serve now into `out` (a buffer the registry keeps between calls, empty
/// when `live` is called), so that reading the live set allocates nothing once the buffer has
/// grown. The other form, `live()` returning any range of generation, is accepted as well.
/// Either form may also report that the live set is unknown: the filling form by returning a
/// failed result<void>, the other by returning a failed result of a range (a remote store's
/// live_generations does). Collection then collects nothing (collection_report::live_unavailable).
///
///     registry.collect(policy, now_unix_ms, [&](std::vector<planfence::generation>& out) {
///       store.live_generations(out);
///     });
template <class LiveGenerations>
concept fills_live_set = std::invocable<LiveGenerations&, std::vector<generation>&>;

namespace detail {
template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<result<T>> : std::true_type {};

/// Turns a live-set function of any of its four forms (filling or returning, each with or
/// without a result) into one: fill `out` (empty on entry) or fail. So that collection reads
/// the live set one way, whatever the caller gave it.
template <class LiveGenerations>
[[nodiscard]] result<void> fill_live_set(LiveGenerations& live, std::vector<generation>& out) {
  if constexpr (fills_live_set<LiveGenerations>) {
    using filled = std::invoke_result_t<LiveGenerations&, std::vector<generation>&>;
    if constexpr (is_result<filled>::value) {
      return live(out);  // into the caller's buffer: no allocation once it has grown
    } else {
      live(out);
      return {};
    }
  } else {
    auto got = live();
    if constexpr (is_result<decltype(got)>::value) {
      if (!got) return unexpected_error(std::move(got).error());
      for (generation g : *got) out.push_back(g);
    } else {
      for (generation g : got) out.push_back(g);
    }
    return {};
  }
}
}  // namespace detail

template <collection_check Check>
class basic_plan_registry;

namespace detail {
struct plan_node;

/// The registry's mutex: an uncontended lock is one CAS and an unlock one exchange, inline,
/// where std::mutex pays two calls into pthread (about 50 instructions a pair, twice per
/// published and collected plan). Contended, it sleeps on the word (atomic wait, a futex on
/// Linux). The three states are Drepper's ("Futexes are tricky", mutex 2): 0 free, 1 held,
/// 2 held and maybe waited for, so that an unlock with nobody waiting makes no system call.
/// Not recursive; BasicLockable (std::lock_guard).
class registry_mutex {
 public:
  void lock() noexcept {
    std::uint32_t expected = 0;
    // acquire: the previous holder's section (its unlock, release) happens-before ours.
    if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) [[unlikely]] {
      lock_contended(expected);
    }
  }
  void unlock() noexcept {
    if (state_.exchange(0, std::memory_order_release) == 2) [[unlikely]] state_.notify_one();
  }

 private:
  void lock_contended(std::uint32_t seen) noexcept {
    if (seen != 2) seen = state_.exchange(2, std::memory_order_acquire);
    while (seen != 0) {
      state_.wait(2, std::memory_order_relaxed);
      seen = state_.exchange(2, std::memory_order_acquire);
    }
  }
  std::atomic<std::uint32_t> state_{0};
};

/// Storage of freed plan nodes kept by the thread that freed them, for its next publishes.
/// Reclamation frees nodes in batches (epoch_domain::reclaim_batch at a time, usually on the
/// thread that collects, which is usually the one that publishes), and a batch of frees
/// overflows the allocator's own per-thread cache; keeping up to `spare_max` of them here
/// makes a steady publish/collect cycle allocate nothing. No atomics: each thread touches only
/// its own list. Memory: at most spare_max nodes per thread, freed when the thread exits.
/// Trivially destructible and constant-initialised, so it can be used during other
/// thread_local destructors (a registry destroyed at exit); the spares are freed at thread exit
/// by a separate object, after which storage is freed at once.
/// Under AddressSanitizer nothing is kept, so that a reader touching a reclaimed node (an S3 or
/// epoch bug) is reported as a use after free instead of reading a newer plan's node.
#if defined(__SANITIZE_ADDRESS__)
#define PLANFENCE_KEEP_SPARE_NODES 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PLANFENCE_KEEP_SPARE_NODES 0
#endif
#endif
#if !defined(PLANFENCE_KEEP_SPARE_NODES)
#define PLANFENCE_KEEP_SPARE_NODES 1
#endif
struct plan_node_spares {
  static constexpr std::size_t spare_max = PLANFENCE_KEEP_SPARE_NODES ? 2 * epoch_domain::reclaim_batch : 0;
  struct spare {
    spare* next;
  };
  spare* head = nullptr;
  std::size_t count = 0;
  bool registered = false;  // the release at thread exit is registered
  bool released = false;    // the thread is exiting: free, do not keep

  /// Storage for one plan_node: a spare, or a new allocation. Allocates when no spare is kept.
  [[nodiscard]] static void* take(std::size_t bytes);
  /// Keeps the storage of a destroyed plan_node, or frees it when spare_max are kept already.
  static void give(void* storage) noexcept;
};

inline constinit thread_local plan_node_spares plan_node_spares_local{};

inline void* plan_node_spares::take(std::size_t bytes) {
  plan_node_spares& spares = plan_node_spares_local;
  if (spares.head == nullptr) return ::operator new(bytes);
  spare* s = spares.head;
  spares.head = s->next;
  --spares.count;
  return s;
}

inline void plan_node_spares::give(void* storage) noexcept {
  plan_node_spares& spares = plan_node_spares_local;
  if (spares.count >= spare_max || spares.released) {
    ::operator delete(storage);  // unsized: clang before 19 has no sized delete by default
    return;
  }
  if (!spares.registered) [[unlikely]] {
    // Frees the spares when the thread exits; from then on storage is freed at once.
    struct release_at_exit {
      ~release_at_exit() {
        plan_node_spares& spares = plan_node_spares_local;
        while (spares.head != nullptr) {
          spare* next = spares.head->next;
          ::operator delete(static_cast<void*>(spares.head));
          spares.head = next;
        }
        spares.count = 0;
        spares.released = true;
      }
    };
    thread_local release_at_exit release;
    static_cast<void>(release);
    spares.registered = true;
  }
  spares.head = ::new (storage) spare{spares.head};
  ++spares.count;
}

/// A published plan. It embeds the epoch domain's hook (retired_hook), so that retiring it
/// neither allocates nor takes a box: the hook's `reclaim` destroys the node and hands its
/// storage to plan_node_spares. Made with make(), never with new.
struct plan_node : retired_hook {
  /// A node holding `p`, in a spare node's storage when the thread has one. Allocates otherwise.
  [[nodiscard]] static plan_node* make(plan&& p) {
    return ::new (plan_node_spares::take(sizeof(plan_node))) plan_node(std::move(p));
  }
  explicit plan_node(plan&& p) noexcept : content(std::move(p)) { reclaim = &plan_node::destroy; }
  plan content;
  // Low bits: pin count. closed: collection in progress, no new pins. removed: unlinked.
  std::atomic<std::uint64_t> pins{0};
  static constexpr std::uint64_t closed = std::uint64_t{1} << 62;
  static constexpr std::uint64_t removed = std::uint64_t{1} << 63;
  static constexpr std::uint64_t count_mask = closed - 1;

  /// Hands the (unlinked) node to the epoch domain, which deletes it once no reader can hold
  /// it. Lock-free, never allocates.
  void retire() noexcept { epoch_domain::global().retire(this); }

  static void destroy(retired_hook* hook) noexcept {
    auto* node = static_cast<plan_node*>(hook);
    node->~plan_node();
    plan_node_spares::give(node);
  }
};
static_assert(alignof(plan_node) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__ && sizeof(plan_node) >= sizeof(plan_node_spares::spare),
              "a spare's storage must fit a plan_node, and a plain operator new must align one");
}  // namespace detail

/// A plan held by an in-flight apply: while it exists the plan cannot be collected (S3).
/// Movable RAII handle; never allocates.
class pinned_plan {
 public:
  pinned_plan() noexcept = default;
  pinned_plan(pinned_plan&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
  pinned_plan& operator=(pinned_plan&& other) noexcept {
    if (this != &other) {
      reset();
      node_ = std::exchange(other.node_, nullptr);
    }
    return *this;
  }
  pinned_plan(const pinned_plan&) = delete;
  pinned_plan& operator=(const pinned_plan&) = delete;
  ~pinned_plan() { reset(); }

  explicit operator bool() const noexcept { return node_ != nullptr; }
  [[nodiscard]] const plan& operator*() const noexcept { PLANFENCE_ASSERT(node_); return node_->content; }
  [[nodiscard]] const plan* operator->() const noexcept { PLANFENCE_ASSERT(node_); return &node_->content; }
  [[nodiscard]] const plan* get() const noexcept { return node_ ? &node_->content : nullptr; }

  /// Releases the pin now. (R3) release: see the header comment.
  void reset() noexcept {
    if (node_ == nullptr) return;
    const std::uint64_t before = node_->pins.fetch_sub(1, std::memory_order_acq_rel);
    PLANFENCE_ASSERT((before & detail::plan_node::count_mask) > 0);
    // Only the broken variants remove a pinned plan; the last pin then retires it.
    if (before == (detail::plan_node::removed | 1) || before == (detail::plan_node::removed | detail::plan_node::closed | 1)) {
      node_->retire();
    }
    node_ = nullptr;
  }

 private:
  template <collection_check>
  friend class basic_plan_registry;
  explicit pinned_plan(detail::plan_node* node) noexcept : node_(node) {}
  detail::plan_node* node_ = nullptr;
};

namespace detail {
/// Stand-ins for the live-set functions the enactor hands to collect (enactor_registry): the
/// filling form when its store has one (the memory store), else one returning what the store's
/// live_generations() returns (live_set_result). Only their types matter.
struct live_set_filler {
  void operator()(std::vector<generation>&) const noexcept {}
};
struct live_set_vector {
  std::vector<generation> operator()() const { return {}; }
};
struct live_set_result_of {
  result<std::vector<generation>> operator()() const { return std::vector<generation>{}; }
};
}  // namespace detail

/// What planfence::enactor needs of a registry: exactly the calls it makes, on a non-const
/// registry. docs/concepts.md says what each must mean (which guarantee the enactor builds on
/// it), what it costs in each registry planfence ships, and its thread safety.
///   pin_latest()                     the newest plan, pinned (S3), or an empty handle
///   pin(gen)                         generation `gen`'s plan, pinned, or an error (S4 zone guard)
///   find(gen, guard)                 generation `gen`'s plan for a reader inside an epoch
///                                    guard, or nullptr (S4 endpoint guard); never allocates
///   collect(policy, now_unix_ms, live)   collect old plans under S3, with `live` in the filling
///                                    form or returning the store's live set
template <class R>
concept enactor_registry = requires(R& r, generation gen, detail::epoch_guard& guard, const retention_policy& policy,
                                    std::uint64_t now_unix_ms) {
  { r.pin_latest() } -> std::same_as<pinned_plan>;
  { r.pin(gen) } -> std::same_as<result<pinned_plan>>;
  { r.find(gen, guard) } -> std::same_as<const plan*>;
  { r.collect(policy, now_unix_ms, detail::live_set_filler{}) } -> std::same_as<collection_report>;
  { r.collect(policy, now_unix_ms, detail::live_set_vector{}) } -> std::same_as<collection_report>;
  { r.collect(policy, now_unix_ms, detail::live_set_result_of{}) } -> std::same_as<collection_report>;
};

/// What a registry holds, at one instant (metrics.hpp exports it).
struct registry_stats {
  std::size_t retained = 0;       ///< plans retained (published and not collected)
  std::size_t pinned = 0;         ///< retained plans an apply (or any holder of a pin) holds now
  std::uint64_t collected = 0;    ///< plans collected since the registry was made
  std::size_t backlog = 0;        ///< collected plans whose memory is not reclaimed yet (process-wide)
  generation latest{};            ///< the newest published generation (generation_none if none)
};

/// The plan registry. `plan_registry` (Check = full) is the one to embed.
///
/// Thread safety: every member may be called concurrently.
template <collection_check Check = collection_check::full>
class basic_plan_registry {
 public:
  /// Default bound on retained plans (the slot table) and on the reclamation backlog.
  static constexpr std::size_t capacity_default = 1024;
  static constexpr std::size_t backlog_max = 4096;
  static_assert(backlog_max < detail::epoch_domain::retired_max,
                "the registry must stop collecting before the domain's hard bound");

  /// `capacity`: retained plans at most (a power of two). A generation g lives in slot
  /// g mod capacity, so the retained generations must span less than `capacity`.
  explicit basic_plan_registry(std::size_t capacity = capacity_default)
      : slots_(capacity), linked_gens_(capacity), slot_mask_(capacity - 1) {
    PLANFENCE_ASSERT(capacity >= 2);
    PLANFENCE_ASSERT((capacity & (capacity - 1)) == 0);
  }
  basic_plan_registry(const basic_plan_registry&) = delete;
  basic_plan_registry& operator=(const basic_plan_registry&) = delete;

  /// Frees every retained plan. No pin may outlive the registry (asserted).
  ~basic_plan_registry() {
    for (auto& s : slots_) {
      detail::plan_node* node = s.load(std::memory_order_acquire);
      if (node == nullptr) continue;
      PLANFENCE_ASSERT((node->pins.load(std::memory_order_acquire) & detail::plan_node::count_mask) == 0);
      s.store(nullptr, std::memory_order_release);
      node->retire();
    }
  }

  /// Publishes `p` and returns it pinned. Errors: errc::equivocation (S5: the generation holds
  /// other content), errc::collected (the generation was already collected: it can never come
  /// back), errc::registry_full (the slot belongs to another retained generation; collect
  /// first). Publishing identical content again returns the existing plan. Blocking; allocates
  /// the node unless the thread kept a freed node's storage (plan_node_spares), and the text of
  /// a refusal.
  [[nodiscard]] result<pinned_plan> publish(plan p) {
    const generation gen = p.gen();
    PLANFENCE_ASSERT(gen != generation_none);
    // S7's digest check, here on the publishing thread and outside the lock, once per plan: the
    // plan remembers the answer, so each enactor's check before it applies costs O(1). A plan
    // that fails it is still published (and refused by every enactor, which reports it).
    static_cast<void>(p.verify_once());
    std::lock_guard lock(mutex_);
    if (gen <= collected_high_water_) {
      return fail(errc::collected, "generation " + std::to_string(gen.value()) + " was already collected");
    }
    auto& s = slot_of(gen);
    detail::plan_node* existing = s.load(std::memory_order_acquire);
    if (existing != nullptr) {
      if (existing->content.gen() != gen) {
        return fail(errc::registry_full, "generation " + std::to_string(existing->content.gen().value()) +
                                             " still occupies the slot: collect old plans first");
      }
      if (existing->content.digest() != p.digest()) {
        return fail(errc::equivocation, "generation " + std::to_string(gen.value()) + " is already sha256:" +
                                            existing->content.digest_hex() + ", refusing sha256:" + p.digest_hex());
      }
      const bool pinned = try_pin(existing);
      PLANFENCE_ASSERT(pinned);  // only collection closes a node, and it holds the mutex
      return pinned_plan(existing);
    }
    auto* node = detail::plan_node::make(std::move(p));
    node->pins.store(1, std::memory_order_relaxed);  // the caller's pin
    linked_gen_of(gen).store(gen.value(), std::memory_order_relaxed);  // (R7) before (R1)
    s.store(node, std::memory_order_release);                          // (R1)
    if (retained_.empty() || retained_.back() < gen) {
      retained_.push_back(gen);  // the usual case: generations are published in order
    } else {
      retained_.insert(std::upper_bound(retained_.begin(), retained_.end(), gen), gen);
    }
    detail::plan_node* latest = latest_.load(std::memory_order_relaxed);
    if (latest == nullptr || latest->content.gen() < gen) latest_.store(node, std::memory_order_release);  // (R1)
    return pinned_plan(node);
  }

  /// The newest plan, pinned, or an empty handle when nothing is published. Lock-free.
  [[nodiscard]] pinned_plan pin_latest() const noexcept {
    for (;;) {
      detail::epoch_guard guard = detail::epoch_domain::pin();
      detail::plan_node* node = latest_.load(std::memory_order_acquire);  // (R2)
      if (node == nullptr) return {};
      if (try_pin(node)) return pinned_plan(node);
      // Only a broken variant removes the newest plan; retry with what replaced it.
    }
  }

  /// The plan of generation `gen`, pinned. Errors: errc::not_found. Lock-free.
  [[nodiscard]] result<pinned_plan> pin(generation gen) const noexcept {
    detail::epoch_guard guard = detail::epoch_domain::pin();
    detail::plan_node* node = find_node(gen);
    if (node == nullptr || !try_pin(node)) return fail(errc::not_found);
    return pinned_plan(node);
  }

  /// The plan of generation `gen` for a reader inside an epoch guard, or nullptr. The pointer is
  /// valid until `guard` ends. Wait-free: one acquire load (R2), never allocates.
  [[nodiscard]] const plan* find(generation gen, const detail::epoch_guard& guard) const noexcept {
    PLANFENCE_ASSERT(guard.active());
    detail::plan_node* node = find_node(gen);
    return node == nullptr ? nullptr : &node->content;
  }

  /// Whether generation `gen` is still linked, so that a plan a reader found for `gen` under an
  /// earlier guard (memory_store's read cache) is still `gen`'s plan and may be used under this
  /// one: a generation has one plan for the registry's life (S5; a collected generation is
  /// never published again), and a plan seen linked inside a guard is not freed before the
  /// guard ends. Reads the slot's generation word, not the node: the node's address does not
  /// tell it from a later generation's node built in its freed storage in the same slot
  /// (plan_node_spares), and reading the node's own generation would be a load that waits
  /// for the slot's. Wait-free: one acquire load (R7) and a compare.
  [[nodiscard]] bool retains(generation gen, const detail::epoch_guard& guard) const noexcept {
    PLANFENCE_ASSERT(guard.active());
    return linked_gen_of(gen).load(std::memory_order_acquire) == gen.value();  // (R7)
  }

  /// The newest published generation (generation_none if none). Wait-free.
  [[nodiscard]] generation latest() const noexcept {
    detail::epoch_guard guard = detail::epoch_domain::pin();
    detail::plan_node* node = latest_.load(std::memory_order_acquire);  // (R2)
    return node == nullptr ? generation_none : node->content.gen();
  }

  /// Retained generations, oldest first. Blocking, allocates.
  [[nodiscard]] std::vector<generation> retained() const {
    std::lock_guard lock(mutex_);
    return retained_;
  }

  /// Collected plans whose memory is not yet reclaimed (process-wide).
  [[nodiscard]] std::size_t backlog() const noexcept { return detail::epoch_domain::global().backlog(); }

  /// Retained, pinned and collected plans, the backlog and the newest generation, read under the
  /// mutex (one consistent view of the retained set; the pin counts are acquire loads, so a pin
  /// taken or dropped meanwhile may or may not be counted). Blocking, O(retained), never
  /// allocates. For monitoring (metrics.hpp), not the apply path.
  [[nodiscard]] registry_stats stats() const noexcept {
    registry_stats out;
    std::lock_guard lock(mutex_);
    out.retained = retained_.size();
    for (generation gen : retained_) {
      const detail::plan_node* node = slot_of(gen).load(std::memory_order_acquire);
      if (node != nullptr && (node->pins.load(std::memory_order_acquire) & detail::plan_node::count_mask) != 0) ++out.pinned;
    }
    out.collected = collected_total_;
    out.backlog = backlog();
    out.latest = retained_.empty() ? generation_none : retained_.back();
    return out;
  }

  /// Collects one generation if S3 allows it. `live` is called after the plan is closed to new
  /// pins and must give the generations endpoints serve now: either filling the vector it is
  /// passed (fills_live_set) or returning any range of generation. Errors: errc::not_found,
  /// errc::protected_plan (pinned, live or the newest), errc::registry_full (backlog at
  /// backlog_max), or the error `live` reported (the live set is unknown: nothing collected).
  /// Blocking; allocates only what `live` allocates (and the registry's live-set buffer when it
  /// must grow).
  template <class LiveGenerations>
  [[nodiscard]] result<void> collect_one(generation gen, LiveGenerations&& live) {
    std::lock_guard lock(mutex_);
    detail::plan_node* node = find_node(gen);
    if (node == nullptr) return fail(errc::not_found);
    constexpr bool check_pins = Check == collection_check::full || Check == collection_check::ignore_live;
    constexpr bool check_live = Check == collection_check::full || Check == collection_check::ignore_pins;
    if (check_pins || check_live) {
      if (retained_.back() == gen) return fail(errc::protected_plan, "the newest plan is never collected");
    }
    if (!backlog_has_room(1)) return fail(errc::registry_full, "the reclamation backlog is at backlog_max");
    collection_report report;
    closing_.clear();
    if (!close(node)) return fail(errc::protected_plan, "an in-flight apply holds it");
    closing_.push_back(node);
    finish_collection(live, report);
    if (report.live_unavailable) return unexpected_error(std::move(*report.live_unavailable));
    if (!report.protected_live.empty()) return fail(errc::protected_plan, "an endpoint serves it");
    PLANFENCE_ASSERT(report.collected.size() == 1);
    return ok();
  }

  /// Collects every plan the policy does not keep and S3 does not protect.
  /// `now_unix_ms` is compared with plans' creation times for keep_younger_than. `live` is called
  /// once, after every candidate was closed to new pins, in either form (see collect_one and
  /// fills_live_set). Blocking; allocates only what `live` allocates, when the registry's
  /// live-set buffer must grow, and when more than generation_list::inline_capacity plans land
  /// in one list of the report. O(r + c log l) for r retained plans, c candidates and l live
  /// generations (no sort when `live` gives them in order), plus one epoch-domain retire per
  /// collected plan.
  template <class LiveGenerations>
  [[nodiscard]] collection_report collect(const retention_policy& policy, std::uint64_t now_unix_ms,
                                          LiveGenerations&& live) {
    PLANFENCE_ASSERT(policy.keep_newest >= 1);
    std::lock_guard lock(mutex_);
    collection_report report;
    closing_.clear();
    const std::size_t retained = retained_.size();
    const std::size_t keep_from = retained > policy.keep_newest ? retained - policy.keep_newest : 0;
    for (std::size_t i = 0; i < retained; ++i) {
      if (i >= keep_from) {  // the newest keep_newest, all kept
        report.kept_by_policy += retained - i;
        break;
      }
      const generation gen = retained_[i];
      detail::plan_node* node = slot_of(gen).load(std::memory_order_acquire);
      PLANFENCE_ASSERT(node != nullptr);
      const auto age = static_cast<std::int64_t>(now_unix_ms) - static_cast<std::int64_t>(node->content.created_unix_ms());
      if (policy.keep_younger_than.count() > 0 && age < policy.keep_younger_than.count()) {
        ++report.kept_by_policy;
        continue;
      }
      // Each collected plan adds one to the backlog until the epoch domain frees it.
      if (!backlog_has_room(closing_.size() + 1)) {
        report.stopped_at_backlog = true;
        break;
      }
      if (!close(node)) {
        report.protected_pinned.push_back(gen);
        continue;
      }
      closing_.push_back(node);
    }
    finish_collection(live, report);
    return report;
  }

 private:
  using slot = std::atomic<detail::plan_node*>;

  slot& slot_of(generation gen) noexcept { return slots_[gen.value() & slot_mask_]; }
  const slot& slot_of(generation gen) const noexcept { return slots_[gen.value() & slot_mask_]; }
  std::atomic<std::uint64_t>& linked_gen_of(generation gen) noexcept { return linked_gens_[gen.value() & slot_mask_]; }
  const std::atomic<std::uint64_t>& linked_gen_of(generation gen) const noexcept {
    return linked_gens_[gen.value() & slot_mask_];
  }

  detail::plan_node* find_node(generation gen) const noexcept {
    detail::plan_node* node = slot_of(gen).load(std::memory_order_acquire);  // (R2)
    return node != nullptr && node->content.gen() == gen ? node : nullptr;
  }

  static bool try_pin(detail::plan_node* node) noexcept {
    std::uint64_t pins = node->pins.load(std::memory_order_acquire);
    for (;;) {
      if ((pins & (detail::plan_node::closed | detail::plan_node::removed)) != 0) return false;
      // (R5) acq_rel increment, refused once closed or removed.
      if (node->pins.compare_exchange_weak(pins, pins + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        return true;
      }
    }
  }

  /// Whether `more` plans can be retired without the backlog passing backlog_max (after freeing
  /// what can be freed, when it is close). Under mutex_.
  bool backlog_has_room(std::size_t more) {
    if (backlog() + more <= backlog_max) return true;
    detail::epoch_domain::global().reclaim();
    return backlog() + more <= backlog_max;
  }

  /// Closes `node` to new pins, the first half of S3's atomic check. false: an apply holds it
  /// (only in the variants that check pins). Under mutex_.
  static bool close(detail::plan_node* node) noexcept {
    constexpr bool check_pins = Check == collection_check::full || Check == collection_check::ignore_live;
    if constexpr (check_pins) {
      std::uint64_t expected = 0;
      // (R4) acq_rel: close to new pins; pairs with the release of every unpin (R3).
      return node->pins.compare_exchange_strong(expected, detail::plan_node::closed, std::memory_order_acq_rel);
    } else {
      node->pins.fetch_or(detail::plan_node::closed, std::memory_order_acq_rel);  // (R4)
      return true;
    }
  }

  /// The second half: reads the live set once, now that every plan in closing_ is closed (so no
  /// apply can start committing one of them, and the set cannot gain one later: this read is
  /// the atomic check S3 asks for), reopens the live ones, and unlinks and retires the others.
  /// closing_ is in ascending generation order. Under mutex_.
  template <class LiveGenerations>
  void finish_collection(LiveGenerations& live, collection_report& report) {
    if (closing_.empty()) return;
    constexpr bool check_pins = Check == collection_check::full || Check == collection_check::ignore_live;
    constexpr bool check_live = Check == collection_check::full || Check == collection_check::ignore_pins;
    if constexpr (check_live) {
      live_sorted_.clear();
      // Into the registry's buffer: no allocation once it has grown.
      if (result<void> got = detail::fill_live_set(live, live_sorted_); !got) {
        return reopen_all(report, got.error());
      }
      if (!std::is_sorted(live_sorted_.begin(), live_sorted_.end())) std::sort(live_sorted_.begin(), live_sorted_.end());
    }
    bool latest_collected = false;
    for (detail::plan_node* node : closing_) {
      const generation gen = node->content.gen();
      if constexpr (check_live) {
        if (std::binary_search(live_sorted_.begin(), live_sorted_.end(), gen)) {
          node->pins.fetch_and(~detail::plan_node::closed, std::memory_order_acq_rel);
          report.protected_live.push_back(gen);
          continue;
        }
      }
      // Unlink, then retire: readers inside a guard may still hold it (E4 orders the two).
      linked_gen_of(gen).store(0, std::memory_order_relaxed);  // (R7): the release below orders it
      slot_of(gen).store(nullptr, std::memory_order_release);
      latest_collected = latest_collected || latest_.load(std::memory_order_relaxed) == node;
      collected_high_water_ = std::max(collected_high_water_, gen);
      ++collected_total_;
      report.collected.push_back(gen);
      if constexpr (check_pins) {
        // (R6) release store: close() swapped the word from 0 to `closed`, and nothing writes it
        // after that (a pin is refused, and no pin is held to release).
        node->pins.store(detail::plan_node::closed | detail::plan_node::removed, std::memory_order_release);
        node->retire();
      } else {
        const std::uint64_t before = node->pins.fetch_or(detail::plan_node::removed, std::memory_order_acq_rel);
        if ((before & detail::plan_node::count_mask) == 0) {
          node->retire();
        }  // else (broken variants only) the last unpin retires it
      }
    }
    closing_.clear();
    if (report.collected.empty()) return;
    // Drop the collected generations from retained_. Usually they are its oldest ones (nothing
    // older was protected): one erase at the front. Otherwise, by their now empty slots (a
    // retained generation's slot holds its node).
    const std::size_t collected = report.collected.size();
    if (collected <= retained_.size() && std::equal(report.collected.begin(), report.collected.end(), retained_.begin())) {
      retained_.erase(retained_.begin(), retained_.begin() + static_cast<std::ptrdiff_t>(collected));
    } else {
      std::erase_if(retained_, [&](generation g) { return slot_of(g).load(std::memory_order_relaxed) == nullptr; });
    }
    if (latest_collected) {  // only the broken variant `none` collects the newest plan
      detail::plan_node* newest = retained_.empty() ? nullptr : slot_of(retained_.back()).load(std::memory_order_relaxed);
      latest_.store(newest, std::memory_order_release);
    }
  }

  /// The live set is unknown: every candidate is opened to pins again and nothing is collected.
  /// Under mutex_.
  void reopen_all(collection_report& report, error why) noexcept {
    for (detail::plan_node* node : closing_) node->pins.fetch_and(~detail::plan_node::closed, std::memory_order_acq_rel);
    closing_.clear();
    report.live_unavailable = std::move(why);
  }

  std::vector<slot> slots_;
  // Beside each slot, the generation of the node it links (0: none); written only under mutex_,
  // before the node is linked and before it is unlinked (R7). Read by retains().
  std::vector<std::atomic<std::uint64_t>> linked_gens_;
  const std::uint64_t slot_mask_;  // slots_.size() - 1 (a power of two less one)
  std::atomic<detail::plan_node*> latest_{nullptr};
  mutable detail::registry_mutex mutex_;
  std::vector<generation> retained_;  // sorted
  // Reused by every collection (under mutex_), so that collecting does not allocate once they
  // have grown: the plans closed for this collection, and the live set (filled by `live` in
  // the filling form), sorted.
  std::vector<detail::plan_node*> closing_;
  std::vector<generation> live_sorted_;
  generation collected_high_water_ = generation_none;
  std::uint64_t collected_total_ = 0;  // plans collected (under mutex_; stats())
};

/// The registry to embed: collection keeps S3.
using plan_registry = basic_plan_registry<collection_check::full>;
// Every variant plugs into the enactor: the broken ones too, so that the simulator and the S3
// tests can run the enactor over them and watch it fail.
static_assert(enactor_registry<basic_plan_registry<collection_check::full>>);
static_assert(enactor_registry<basic_plan_registry<collection_check::ignore_live>>);
static_assert(enactor_registry<basic_plan_registry<collection_check::ignore_pins>>);
static_assert(enactor_registry<basic_plan_registry<collection_check::none>>);

}  // namespace v1
}  // namespace planfence
