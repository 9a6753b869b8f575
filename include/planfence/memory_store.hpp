// planfence/memory_store.hpp: a lock-free in-memory record store.
//
// What it is: the store for control planes that serve DNS answers from memory, for tests and for
// the simulator. Each endpoint is one 64-bit atomic word, its stamp: 40 bits of generation and 24
// bits of fence token (docs/benchmarks.md: a 16-byte atomic is a locked read-modify-write under
// GCC 12, even to load). An endpoint keeps no copy of its records: it serves the record set of
// the plan whose generation its stamp names, looked up in the plan registry, just as the 2025
// enactors' endpoints referred to plan-owned records. That is what makes S3 meaningful here:
// were a live plan ever collected, the endpoint would serve nothing.
//
//     planfence::plan_registry registry;
//     auto store = planfence::memory_store::make(registry, {"db.example.", "api.example."}).value();
//     auto handle = store.resolve("db.example.").value();        // resolve once, keep the handle
//     auto applied = store.commit(handle, seen, {plan_gen, my_fence}, records);
//     auto answer = store.read(handle);                           // wait-free snapshot
//     for (const planfence::record& r : answer.records()) { ... }
//
// Costs (bench/apply_bench.cpp, ratios in docs/benchmarks.md):
//  - refusing a stale or fenced commit: two acquire loads and compares, no read-modify-write
//    (M1, M2), so refusals scale with readers;
//  - a commit: those loads and one compare-and-swap (M3);
//  - a read: an epoch guard (two plain stores on Linux, where the reclaimer pays with
//    membarrier; one exchange elsewhere: detail/epoch.hpp), one acquire load (M2), and either a
//    hit in the calling thread's read cache (an endpoint this thread read before under the same
//    generation), checked with one load of the registry's word for that slot (retains), or, out
//    of line, a registry lookup and one probe of the plan's index (again only if the endpoint
//    moved and its old plan was collected during the read);
//  - resolve: the store's own name hash (8 bytes a step) and one 16-byte index slot per probe,
//    plus one compare of the name bytes when the slot's hash tag matches;
//  - 8 bytes of stamp state per endpoint, plus its name once.
// Progress: commit is lock-free (one CAS, no retry loop: a failed CAS is reported as the outcome
// it reveals); read is wait-free except when the endpoint is recommitted and its previous plan
// collected during the read (then lock-free, see read()); nothing on either path allocates or
// blocks.
//
// Limits: the endpoint set is fixed when the store is made (a plan naming another endpoint gets
// errc::unknown_endpoint for it); generations above 2^40 - 1 and fence tokens above 2^24 - 1 are
// refused with errc::capacity_exceeded before they could wrap a packed field.
//
// Memory orders:
//  (M1) acquire load of the fence floor; pairs with the release of raise_fence (M4).
//  (M2) acquire load of an endpoint's stamp; pairs with the release half of a commit's CAS (M3),
//       so a reader that sees a generation sees the plan that generation was committed from:
//       the committer held a pin on it, published with (R1) before.
//  (M3) acq_rel compare-and-swap of the stamp: the commit's linearisation point.
//  (M4) acq_rel CAS-max of the fence floor.
//  (M5) acq_rel CAS-max of each endpoint's fence in raise_fence: a commit that loaded the old
//       floor (M1) and the old stamp (M2) before the raise fails its CAS (M3) once the raise has
//       passed its endpoint, and its re-check then refuses it as fenced. So no commit with a
//       smaller token lands after raise_fence returns (S2, checked by tests/spin/fixed.pml).
//  (M6) release stores and acquire loads of the apply marks, written under the marks lock
//       (B before A, so a reader never sees applied above begun); live_generations loads them
//       before the stamps, so its set is never missing an effective generation (docs/design.md).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config.hpp"
#include "detail/epoch.hpp"
#include "generation.hpp"
#include "ids.hpp"
#include "lease.hpp"
#include "plan.hpp"
#include "record.hpp"
#include "registry.hpp"
#include "result.hpp"
#include "store.hpp"

namespace planfence {
inline namespace v1 {

namespace detail {

/// The memory store's own name hash, for its name index only (never stored, never compared
/// across processes; plans keep endpoint_name_hash). Eight bytes a step in two independent
/// lanes, so a 34-byte name is three short multiply chains instead of FNV-1a's 34 dependent
/// multiplies (bench/apply_bench.cpp, BM_ResolveName), then a final avalanche so that both the
/// low bits (the slot) and the high bits (the tag kept in the slot) are usable. The length is
/// mixed in first, so the overlapping read of the tail cannot make two names of different
/// lengths collide systematically. Reads the bytes in native order: the values differ between
/// byte orders, which nothing depends on.
/// Wait-free, O(size), never allocates.
/// Eight bytes at `at`, in native byte order (a memcpy the compiler turns into one load).
[[nodiscard]] inline std::uint64_t load_word(const char* at) noexcept {
  std::uint64_t w;
  std::memcpy(&w, at, sizeof w);
  return w;
}

[[nodiscard]] inline std::uint64_t store_name_hash(std::string_view name) noexcept {
  constexpr std::uint64_t k1 = 0x9e3779b97f4a7c15ULL;
  constexpr std::uint64_t k2 = 0xbf58476d1ce4e5b9ULL;
  constexpr std::uint64_t k3 = 0x94d049bb133111ebULL;
  const char* const begin = name.data();
  const std::size_t size = name.size();
  std::uint64_t a = k1 ^ size;
  std::uint64_t b = k2;
  std::size_t at = 0;
  for (; at + 16 <= size; at += 16) {
    a = (a ^ load_word(begin + at)) * k2;
    b = (b ^ load_word(begin + at + 8)) * k3;
    a ^= a >> 29;
    b ^= b >> 31;
  }
  if (at + 8 <= size) {
    a = (a ^ load_word(begin + at)) * k2;
    a ^= a >> 29;
    at += 8;
  }
  if (at < size) {
    // The last 1..7 bytes: the final 8 bytes of the name (overlapping what was hashed, so no
    // variable-length copy), or byte by byte for names shorter than 8.
    std::uint64_t tail = 0;
    if (size >= 8) {
      tail = load_word(begin + size - 8);
    } else {
      for (std::size_t i = at; i < size; ++i) tail = (tail << 8) | static_cast<unsigned char>(begin[i]);
    }
    b = (b ^ tail) * k3;
  }
  std::uint64_t h = a ^ (b >> 1) ^ (b << 63);
  h ^= h >> 32;
  h *= k3;
  h ^= h >> 29;
  h *= k2;
  h ^= h >> 32;
  return h;
}

/// Whether `size` bytes at `a` and `b` are equal, a word at a time (names are short: an inline
/// loop beats a call of memcmp). Never reads outside either range.
[[nodiscard]] inline bool same_bytes(const char* a, const char* b, std::size_t size) noexcept {
  if (size >= 8) {
    for (std::size_t at = 0; at + 8 <= size; at += 8) {
      if (load_word(a + at) != load_word(b + at)) return false;
    }
    return load_word(a + size - 8) == load_word(b + size - 8);
  }
  for (std::size_t at = 0; at < size; ++at) {
    if (a[at] != b[at]) return false;
  }
  return true;
}

/// One slot of the memory store's name index: which endpoint, the high half of its name hash
/// (so a probe rejects other names without touching them), and where its name lies in the
/// store's name bytes. 16 bytes: a probe reads one slot and, on a tag match, one run of name
/// bytes; nothing else.
struct store_index_slot {
  std::uint32_t handle_plus_one = 0;  // 0: empty
  std::uint32_t tag = 0;
  std::uint32_t name_begin = 0;
  std::uint32_t name_size = 0;
};
static_assert(sizeof(store_index_slot) == 16);

/// One entry of a thread's read cache: which record set store `store_id`'s endpoint `handle`
/// serves under generation `gen`. Exact, because nothing in the key ever names two different
/// things: store ids are never reused (read_cache_next_store_id), a store reads one registry for
/// its whole life, and a registry holds one plan per generation forever (S5; a collected
/// generation is never published again). So the entry is valid whenever the registry still has
/// plan `gen`: read() checks, inside its epoch guard, that the registry still retains `gen`
/// (plan_registry::retains) before it uses the entry.
///
/// It keeps the records' address and count rather than the record_set, so that a hit reads them
/// from the entry's own line instead of through two more dependent loads (the set, then its
/// vector's bounds) and a division by sizeof(record).
struct alignas(32) read_cache_entry {
  std::uint64_t key = 0;  // store_id << read_cache_handle_bits | handle; 0: empty (ids start at 1)
  std::uint64_t gen = 0;
  const record* data = nullptr;  // the records of plan `gen` for the endpoint
  std::uint32_t size = 0;
  bool named = false;  // false: plan `gen` does not name the endpoint (data null, size 0)
};
static_assert(sizeof(read_cache_entry) == 32, "two entries a cache line, none across two");
/// What read() returns when no plan answers: the endpoint was never written, or its plan is gone.
inline constexpr read_cache_entry read_cache_nothing{};
static_assert(records_per_set_max <= UINT32_MAX, "a record count fits the entry's size");
/// Handles are below 2^26 (basic_memory_store::endpoints_max); store ids use the other 38 bits.
inline constexpr unsigned read_cache_handle_bits = 26;
/// Entries per thread (a power of two): 2 KiB, direct-mapped by handle (stores share entries:
/// the key tells them apart).
inline constexpr std::size_t read_cache_entries = 64;
/// Each thread's cache. Trivially destructible and constant-initialised, so reaching it is one
/// thread-pointer-relative access with no initialisation check.
alignas(64) inline constinit thread_local read_cache_entry read_cache[read_cache_entries]{};
/// The next store id. Relaxed: ids only need to be distinct.
inline std::atomic<std::uint64_t> read_cache_next_store_id{1};
/// A new store's id: 2^38 stores per process at most (one a microsecond for three days), which
/// is asserted, so that no two stores' keys are ever equal.
[[nodiscard]] inline std::uint64_t read_cache_new_store_id() noexcept {
  const std::uint64_t id = read_cache_next_store_id.fetch_add(1, std::memory_order_relaxed);
  PLANFENCE_ASSERT(id < (std::uint64_t{1} << (64 - read_cache_handle_bits)));
  return id;
}

}  // namespace detail

/// How a memory store decides a commit. Only `conditional` keeps S1 and S2; the others are the
/// broken variants the tests build on purpose (and the naive 2025 enactor uses). Never embed one.
enum class commit_rule : std::uint8_t {
  conditional,       ///< check and write in one CAS
  check_then_write,  ///< broken: checks, then stores (the time-of-check to time-of-use hole)
  unconditional,     ///< broken: writes whatever it is given (the 2025 per-endpoint write)
  ignore_fence,      ///< broken: checks generations only (no fencing, S2)
};

/// The packed 64-bit stamp word: generation in the high 40 bits, fence token in the low 24.
struct packed_stamp {
  static_assert(generation_bits + fence_bits == 64);
  [[nodiscard]] static constexpr std::uint64_t pack(generation gen, fence_token fence) noexcept {
    PLANFENCE_ASSERT(gen <= generation_max);
    PLANFENCE_ASSERT(fence <= fence_max);
    return gen.value() << fence_bits | fence.value();
  }
  [[nodiscard]] static constexpr stamp unpack(std::uint64_t word) noexcept {
    return stamp{generation{word >> fence_bits}, fence_token{word & fence_max.value()}, word};
  }
};

/// An endpoint's records as a reader sees them at one instant. Holds an epoch guard: keep it
/// short-lived (a DNS answer), never across I/O. Movable.
class endpoint_snapshot {
 public:
  endpoint_snapshot(endpoint_snapshot&&) noexcept = default;
  endpoint_snapshot& operator=(endpoint_snapshot&&) noexcept = default;
  /// Leaves the epoch guard; inlined so that a reader's loop keeps the snapshot in registers.
  PLANFENCE_ALWAYS_INLINE ~endpoint_snapshot() = default;

  /// The records served; empty when the endpoint was never written or its plan is gone.
  [[nodiscard]] std::span<const record> records() const noexcept { return {data_, size_}; }
  [[nodiscard]] generation gen() const noexcept { return stamp_.gen; }
  [[nodiscard]] fence_token fence() const noexcept { return stamp_.fence; }
  /// The stamp names a plan the registry no longer has (or that lacks this endpoint): the
  /// endpoint serves nothing. Under S3 this never happens to a written endpoint.
  [[nodiscard]] bool plan_missing() const noexcept { return stamp_.gen != generation_none && !named_; }

 private:
  template <class, commit_rule>
  friend class basic_memory_store;
  endpoint_snapshot(detail::epoch_guard guard, stamp s, const detail::read_cache_entry& found) noexcept
      : guard_(std::move(guard)), stamp_(s), data_(found.data), size_(found.size), named_(found.named) {}
  detail::epoch_guard guard_;
  stamp stamp_;
  const record* data_;  // the plan's records for the endpoint (valid while guard_ is)
  std::uint32_t size_;
  bool named_;  // the stamp's plan was found and names the endpoint
};

/// The in-memory store. `memory_store` (the conditional rule) is the one to embed.
///
/// Thread safety: every member but the move operations may be called concurrently.
template <class Registry = plan_registry, commit_rule Rule = commit_rule::conditional>
class basic_memory_store {
 public:
  /// Bound on endpoints per store (handles are 32-bit).
  static constexpr std::size_t endpoints_max = std::size_t{1} << 26;
  static_assert(endpoints_max <= std::size_t{1} << detail::read_cache_handle_bits, "a handle fits its read cache key");

  /// A store serving `names` (any case, with or without the final dot), reading records from
  /// `registry`, which must outlive it. Errors: errc::invalid_name, errc::invalid_plan
  /// (a name given twice), errc::capacity_exceeded.
  [[nodiscard]] static result<basic_memory_store> make(const Registry& registry, const std::vector<std::string>& names) {
    if (names.size() > endpoints_max) return fail(errc::capacity_exceeded, "more than 2^26 endpoints");
    std::vector<std::string> canonical_names(names.size());
    std::size_t name_bytes = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
      auto canonical = canonical_name(names[i]);
      if (!canonical) return fail(errc::invalid_name, "endpoint '" + names[i] + "': " + canonical.error().detail);
      canonical_names[i] = std::move(*canonical);
      name_bytes += canonical_names[i].size();
    }
    if (name_bytes > std::numeric_limits<std::uint32_t>::max()) {
      return fail(errc::capacity_exceeded, "more than 4 GiB of endpoint names");
    }
    basic_memory_store out(registry, names.size());
    out.name_bytes_.reserve(name_bytes);
    for (std::size_t i = 0; i < names.size(); ++i) {
      out.name_begin_[i] = static_cast<std::uint32_t>(out.name_bytes_.size());
      out.name_bytes_ += canonical_names[i];
      out.hashes_[i] = endpoint_name_hash(canonical_names[i]);
    }
    out.name_begin_[names.size()] = static_cast<std::uint32_t>(out.name_bytes_.size());
    std::size_t capacity = 1;
    while (capacity < names.size() * 2) capacity <<= 1;
    out.index_.assign(capacity, detail::store_index_slot{});
    const std::size_t mask = capacity - 1;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string_view name = out.name(endpoint_handle{static_cast<std::uint32_t>(i)});
      const std::uint64_t hash = detail::store_name_hash(name);
      std::size_t slot = hash & mask;
      for (; out.index_[slot].handle_plus_one != 0; slot = (slot + 1) & mask) {
        if (out.name(endpoint_handle{out.index_[slot].handle_plus_one - 1}) == name) {
          return fail(errc::invalid_plan, "endpoint " + std::string(name) + " given twice");
        }
      }
      out.index_[slot] = detail::store_index_slot{static_cast<std::uint32_t>(i + 1), static_cast<std::uint32_t>(hash >> 32),
                                                  out.name_begin_[i], static_cast<std::uint32_t>(name.size())};
    }
    return out;
  }

  basic_memory_store(basic_memory_store&&) noexcept = default;
  basic_memory_store& operator=(basic_memory_store&&) noexcept = default;

  /// The handle of a canonical endpoint name. O(1) expected, never allocates. Errors:
  /// errc::unknown_endpoint. Costs the name's hash (store_name_hash, 8 bytes a step), one
  /// 16-byte index slot per probe (load factor at most 1/2) and one compare of the name bytes
  /// when the slot's 32-bit tag matches: two cache lines for a hit, usually one for a miss.
  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const noexcept {
    const std::uint64_t hash = detail::store_name_hash(name);
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    const std::size_t mask = index_.size() - 1;
    const detail::store_index_slot* const slots = index_.data();
    for (std::size_t slot = hash & mask;; slot = (slot + 1) & mask) {
      const detail::store_index_slot& at = slots[slot];
      if (at.handle_plus_one == 0) return result<endpoint_handle>(unexpect, errc::unknown_endpoint);
      if (at.tag == tag && at.name_size == name.size() &&
          detail::same_bytes(name_bytes_.data() + at.name_begin, name.data(), name.size())) {
        return endpoint_handle{at.handle_plus_one - 1};
      }
    }
  }

  /// The endpoint's stamp. Wait-free: one acquire load (M2). Never allocates.
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const noexcept {
    return packed_stamp::unpack(word(h).load(std::memory_order_acquire));
  }

  /// Writes `desired` if the endpoint's stamp is still `expected` (header comment for errors).
  /// `records` must be the record set that plan `desired.gen` assigns to this endpoint (the store
  /// serves it from the registry rather than copying it). Lock-free (one CAS); never allocates.
  [[nodiscard]] PLANFENCE_ALWAYS_INLINE result<stamp> commit(endpoint_handle h, const stamp& expected,
                                                             const stamp& desired,
                                                             const record_set& records) noexcept {
    static_cast<void>(records);
    if (desired.gen > generation_max || desired.fence > fence_max) {
      return fail(errc::capacity_exceeded);  // refuse before a packed field could wrap
    }
    PLANFENCE_ASSERT(desired.gen != generation_none);
    std::atomic<std::uint64_t>& target = word(h);
    const std::uint64_t next = packed_stamp::pack(desired.gen, desired.fence);
    if constexpr (Rule == commit_rule::unconditional) {
      target.store(next, std::memory_order_release);
      return packed_stamp::unpack(next);
    } else {
      constexpr bool check_fence = Rule != commit_rule::ignore_fence;
      if (check_fence && desired.fence.value() < floor_word().load(std::memory_order_acquire)) {  // (M1)
        return result<stamp>(unexpect, errc::fenced);
      }
      std::uint64_t current = target.load(std::memory_order_acquire);  // (M2)
      for (;;) {
        // The refusals first, on the loaded word alone: a stale or fenced commit touches nothing
        // of `expected`, so the refusal path keeps few values live (BM_RejectStale). Stale is
        // laid out as the fall-through: the read-only refusal is the path that must cost about
        // a load (a delayed enactor meets it on every endpoint), and one taken branch more is
        // lost in a success's CAS (measured: BM_RejectStale 1.24 -> 0.77 ns, BM_ApplyCommit
        // unchanged at 3.0 ns, GCC 12 on the 2-vCPU EPYC guest of docs/benchmarks.md).
        const stamp now = packed_stamp::unpack(current);
        if (now.gen >= desired.gen) [[likely]] return result<stamp>(unexpect, errc::stale);
        if (check_fence && now.fence > desired.fence) return result<stamp>(unexpect, errc::fenced);
        // Field by field, so an `expected` that no stamp can hold is a conflict, never a wrap;
        // when both fields are equal the word is the one the caller decided on, and the CAS
        // below compares exactly it.
        if (now.gen != expected.gen || now.fence != expected.fence) return result<stamp>(unexpect, errc::conflict);
        if constexpr (Rule == commit_rule::check_then_write) {
          // The broken variant: the write is not atomic with the check. The yield stands for the
          // work the 2025 enactor did between its check and its write, so tests see the window.
          std::this_thread::yield();
          target.store(next, std::memory_order_release);
          return packed_stamp::unpack(next);
        } else {
          // (M3) acq_rel CAS: the commit. On failure `current` is the newer word, and the next
          // iteration reports what it reveals (it can no longer equal `wanted`).
          if (target.compare_exchange_strong(current, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
            return packed_stamp::unpack(next);
          }
        }
      }
    }
  }

  /// The stamps of several endpoints: one acquire load each (M2). Never allocates.
  [[nodiscard]] result<void> read_stamps(std::span<const endpoint_handle> handles, std::span<stamp> out) const noexcept {
    return read_each(*this, handles, out);
  }

  /// Every item as `commit` would, one CAS each (a memory store gains nothing from grouping).
  /// Lock-free; never allocates.
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items) noexcept { return commit_each(*this, items); }

  /// The apply marks (change_following_store): two acquire loads (M6). version is unused (0).
  [[nodiscard]] result<apply_marks> read_marks() const noexcept {
    return apply_marks{generation{begun_word().load(std::memory_order_acquire)},
                       generation{applied_word().load(std::memory_order_acquire)}, 0};  // (M6)
  }

  /// B := target if the marks are still `expected` and `token` is not below the floor. Takes the
  /// marks lock (a spin lock held for a few loads and stores; raise_fence passes through it, so
  /// no begin with a smaller token lands after raise_fence returns). Never allocates.
  [[nodiscard]] result<apply_marks> begin_apply(const apply_marks& expected, generation target,
                                                fence_token token) noexcept {
    PLANFENCE_ASSERT(target > expected.begun);
    if (target > generation_max || token > fence_max) return fail(errc::capacity_exceeded);
    marks_lock guard(*this);
    if (fenced_out(token)) return result<apply_marks>(unexpect, errc::fenced);
    const apply_marks now = *read_marks();
    if (now.begun != expected.begun || now.applied != expected.applied) return result<apply_marks>(unexpect, errc::conflict);
    begun_word().store(target.value(), std::memory_order_release);  // (M6)
    return apply_marks{target, now.applied, 0};
  }

  /// A := max(A, target), B := max(B, target), if `token` is not below the floor. Under the marks
  /// lock, as begin_apply. Idempotent. Never allocates.
  [[nodiscard]] result<apply_marks> finish_apply(generation target, fence_token token) noexcept {
    if (target > generation_max || token > fence_max) return fail(errc::capacity_exceeded);
    marks_lock guard(*this);
    if (fenced_out(token)) return result<apply_marks>(unexpect, errc::fenced);
    apply_marks now = *read_marks();
    if (now.begun < target) now.begun = target;
    if (now.applied < target) now.applied = target;
    // B first: applied <= begun holds for every reader of the two words (M6).
    begun_word().store(now.begun.value(), std::memory_order_release);
    applied_word().store(now.applied.value(), std::memory_order_release);
    return now;
  }

  /// After this returns, every commit with a token below `token` is refused (S2), including a
  /// commit that passed its floor check (M1) before this call and had not yet swapped: the floor
  /// alone cannot stop that one, so every endpoint's stamp is raised to the token too (M5), which
  /// makes such a commit's CAS fail and its re-check see the larger fence. Never lowers anything.
  /// Lock-free; O(endpoints) CASes (about 6 ns each), once per lease takeover, never on the apply
  /// path. Never allocates.
  [[nodiscard]] result<void> raise_fence(fence_token token) noexcept {
    if (token > fence_max) return fail(errc::capacity_exceeded);
    std::uint64_t floor = floor_word().load(std::memory_order_acquire);
    while (floor < token.value() &&
           !floor_word().compare_exchange_weak(floor, token.value(), std::memory_order_acq_rel)) {  // (M4)
    }
    if constexpr (Rule == commit_rule::ignore_fence || Rule == commit_rule::unconditional) {
      return ok();  // the broken variants do no fencing at all
    }
    // A begin_apply or finish_apply that checked the old floor under the marks lock finishes
    // before this returns; any later one sees the new floor.
    { marks_lock pass(*this); }
    for (std::size_t i = 0; i < size_; ++i) {
      std::uint64_t current = stamps()[i].load(std::memory_order_acquire);  // (M2)
      for (;;) {
        const stamp now = packed_stamp::unpack(current);
        if (now.fence >= token) break;
        // (M5) acq_rel CAS: same generation, larger fence. The generation never changes here, so
        // S1 is untouched; readers see the same records.
        if (stamps()[i].compare_exchange_weak(current, packed_stamp::pack(now.gen, token), std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
          break;
        }
      }
    }
    return ok();
  }

  /// The store's fence floor.
  [[nodiscard]] fence_token fence_floor() const noexcept { return fence_token{floor_word().load(std::memory_order_acquire)}; }

  /// What the endpoint serves now. Never allocates. Progress: wait-free unless a commit lands
  /// on this endpoint during the read and the plan it replaced is collected at the same time;
  /// then the read starts again (lock-free: every retry means a newer commit landed). Without
  /// the retry a reader could pair the old stamp with the plan table after collection and
  /// answer empty for an endpoint that never was.
  ///
  /// Cost: an epoch guard and the stamp (M2). The endpoint's records come from the calling
  /// thread's read cache when this thread read the same endpoint under the same generation
  /// before (detail::read_cache, 64 entries per thread, direct-mapped by handle): then one load of
  /// the registry's generation word for that slot (R7, retains()) proves the entry's plan is
  /// still there. Otherwise (out of line, read_uncached) the registry's lookup and the plan's
  /// index probe and name compare, which then fill the entry (plain stores to thread-local
  /// memory: no shared line is written).
  [[nodiscard]] PLANFENCE_ALWAYS_INLINE endpoint_snapshot read(endpoint_handle h) const noexcept {
    detail::epoch_guard guard = detail::epoch_domain::pin();
    const std::uint64_t current = word(h).load(std::memory_order_acquire);  // (M2)
    const detail::read_cache_entry& cached = detail::read_cache[h.index() & (detail::read_cache_entries - 1)];
    // The hit: the registry lookup starts from the entry's generation, not from the stamp's, so
    // that it need not wait for the stamp load; the compare then says whether they agree.
    if (cached.key == (store_key_ | h.index()) && cached.gen == (current >> fence_bits) &&
        registry_->retains(generation{cached.gen}, guard)) [[likely]] {
      // The registry still holds the entry's plan, so the entry is still true (see its key).
      return endpoint_snapshot(std::move(guard), packed_stamp::unpack(current), cached);
    }
    // Out of line, so that the hit is one straight run of code; what it finds comes back in
    // two registers (the word and the entry filled, or read_cache_nothing), so the guard never
    // leaves them on either path.
    const uncached found = read_uncached(h, current);
    return endpoint_snapshot(std::move(guard), packed_stamp::unpack(found.word), *found.entry);
  }

  /// Distinct generations served now, ascending (for S3 collection). O(n + d log d) for n
  /// endpoints and d runs of endpoints (in handle order) serving the same generation; allocates.
  [[nodiscard]] std::vector<generation> live_generations() const {
    std::vector<generation> out;
    live_generations(out);
    return out;
  }

  /// As live_generations(), into `out` (replacing what it held) and reusing its capacity:
  /// allocates nothing once `out` has room for the d runs, so a registry's collect given
  /// `[&](std::vector<generation>& out) { store.live_generations(out); }` reads the live set
  /// without allocating (fills_live_set). No sort when the runs are already in order (one
  /// generation everywhere, or endpoints moved on in handle order).
  void live_generations(std::vector<generation>& out) const {
    out.clear();
    // The marks before the stamps (M6): an endpoint below the applied mark serves that plan's
    // records (its effective generation), and A and B are the next apply's diff inputs.
    const apply_marks marks = *read_marks();
    if (marks.applied != generation_none) out.push_back(marks.applied);
    for (std::size_t i = 0; i < size_; ++i) {
      const generation stamped = packed_stamp::unpack(stamps()[i].load(std::memory_order_acquire)).gen;  // (M2)
      const generation g = stamped == generation_none ? stamped : effective_generation(stamped, marks);
      // Neighbours mostly serve the same generation: keep one of each run.
      if (g != generation_none && (out.empty() || out.back() != g)) out.push_back(g);
    }
    if (marks.begun != generation_none && marks.begun != marks.applied) out.push_back(marks.begun);
    if (std::is_sorted(out.begin(), out.end(), std::less_equal<>{})) return;  // ascending and distinct
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }

  /// The records the endpoint serves now, copied (inspectable_store: drift checks, drills).
  /// Allocates; not for resolvers, which use read(). Never fails for this store.
  [[nodiscard]] result<std::vector<record>> served(endpoint_handle h) const {
    const endpoint_snapshot snapshot = read(h);
    return std::vector<record>(snapshot.records().begin(), snapshot.records().end());
  }
  /// Every endpoint of the store (the set it was made with), in the order of their handles.
  [[nodiscard]] result<std::vector<std::string>> endpoint_names() const {
    std::vector<std::string> out;
    out.reserve(size_);
    for (std::size_t i = 0; i < size_; ++i) out.emplace_back(name(endpoint_handle{static_cast<std::uint32_t>(i)}));
    return out;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::string_view name(endpoint_handle h) const noexcept {
    PLANFENCE_ASSERT(h.index() < size_);
    const std::uint32_t begin = name_begin_[h.index()];
    return std::string_view(name_bytes_.data() + begin, name_begin_[h.index() + 1] - begin);
  }
  /// Bytes of per-endpoint stamp state (the packed word).
  static constexpr std::size_t stamp_bytes_per_endpoint = sizeof(std::atomic<std::uint64_t>);

 private:
  /// The fence floor and the stamps share one allocation: the floor in word 0, the stamp of
  /// endpoint i in word stamps_begin + i. A commit reaches both from one base pointer (no second
  /// pointer to load), and the floor's cache line holds no stamp (new[] aligns to at least 16
  /// bytes, so the line holding word 0 ends before word 8), so commits never invalidate it.
  static constexpr std::size_t stamps_begin = 64 / sizeof(std::atomic<std::uint64_t>);

  basic_memory_store(const Registry& registry, std::size_t size)
      : registry_(&registry),
        size_(size),
        words_(std::make_unique<std::atomic<std::uint64_t>[]>(stamps_begin + size)),
        name_begin_(size + 1),
        hashes_(size),
        store_key_(detail::read_cache_new_store_id() << detail::read_cache_handle_bits) {}

  std::atomic<std::uint64_t>& word(endpoint_handle h) noexcept {
    PLANFENCE_ASSERT(h.index() < size_);
    return stamps()[h.index()];
  }
  const std::atomic<std::uint64_t>& word(endpoint_handle h) const noexcept {
    PLANFENCE_ASSERT(h.index() < size_);
    return stamps()[h.index()];
  }
  /// What read() past its cache found: the stamp word the records belong to, and the entry that
  /// says what it serves (the thread's cache entry just filled, or read_cache_nothing).
  struct uncached {
    std::uint64_t word;
    const detail::read_cache_entry* entry;
  };
  /// read() past its cache: the plan's index, then the entry filled. Called inside read()'s
  /// guard with the stamp word `current` it loaded; the guard taken here is nested in that one
  /// (a thread-local increment) and only satisfies find()'s contract.
  PLANFENCE_NOINLINE uncached read_uncached(endpoint_handle h, std::uint64_t current) const noexcept {
    const detail::epoch_guard guard = detail::epoch_domain::pin();
    const std::atomic<std::uint64_t>& target = word(h);
    for (;;) {
      const generation gen{current >> fence_bits};
      if (gen == generation_none) return {current, &detail::read_cache_nothing};
      const plan* p = registry_->find(gen, guard);
      std::uint64_t applied_seen = 0;
      if (p == nullptr) {
        // The stamp's plan is gone. An endpoint below the applied mark was left unwritten by the
        // applies since, because their plans did not change it: it serves the applied plan's
        // records (its effective generation, M6), and that plan is live. Read while the stamp
        // still says `gen`, so the two loads describe one moment.
        applied_seen = applied_word().load(std::memory_order_acquire);  // (M6)
        const generation applied{applied_seen};
        if (applied > gen && target.load(std::memory_order_acquire) == current) p = registry_->find(applied, guard);
      }
      if (p != nullptr) {
        const endpoint_entry* entry = p->find(name(h), hashes_[h.index()]);
        detail::read_cache_entry& slot = detail::read_cache[h.index() & (detail::read_cache_entries - 1)];
        slot = entry == nullptr ? detail::read_cache_entry{store_key_ | h.index(), gen.value(), nullptr, 0, false}
                                : detail::read_cache_entry{store_key_ | h.index(), gen.value(),
                                                           entry->records.records().data(),
                                                           static_cast<std::uint32_t>(entry->records.size()), true};
        return {current, &slot};
      }
      // The plans are gone. If the endpoint and the applied mark still name them, it really
      // serves nothing (only a broken collection does that: S3). Otherwise one of them moved on
      // while we looked (each only grows): read again.
      const std::uint64_t again = target.load(std::memory_order_acquire);  // (M2)
      if (again == current && applied_word().load(std::memory_order_acquire) == applied_seen) {  // (M6)
        return {current, &detail::read_cache_nothing};
      }
      current = again;
    }
  }

  std::atomic<std::uint64_t>* stamps() noexcept { return words_.get() + stamps_begin; }
  const std::atomic<std::uint64_t>* stamps() const noexcept { return words_.get() + stamps_begin; }
  std::atomic<std::uint64_t>& floor_word() noexcept { return words_[0]; }
  const std::atomic<std::uint64_t>& floor_word() const noexcept { return words_[0]; }
  // The apply marks and their lock share the floor's line: written once or twice per apply.
  std::atomic<std::uint64_t>& applied_word() noexcept { return words_[1]; }
  const std::atomic<std::uint64_t>& applied_word() const noexcept { return words_[1]; }
  std::atomic<std::uint64_t>& begun_word() noexcept { return words_[2]; }
  const std::atomic<std::uint64_t>& begun_word() const noexcept { return words_[2]; }
  std::atomic<std::uint64_t>& lock_word() noexcept { return words_[3]; }

  /// Holds the marks lock (a test-and-set lock on lock_word, waiting on the word when taken).
  class marks_lock {
   public:
    explicit marks_lock(basic_memory_store& store) noexcept : word_(&store.lock_word()) {
      while (word_->exchange(1, std::memory_order_acquire) != 0) word_->wait(1, std::memory_order_relaxed);
    }
    marks_lock(const marks_lock&) = delete;
    marks_lock& operator=(const marks_lock&) = delete;
    ~marks_lock() {
      word_->store(0, std::memory_order_release);
      word_->notify_one();
    }

   private:
    std::atomic<std::uint64_t>* word_;
  };

  /// Whether a marks write with `token` must be refused as fenced (under the marks lock).
  bool fenced_out(fence_token token) const noexcept {
    if constexpr (Rule == commit_rule::ignore_fence || Rule == commit_rule::unconditional) {
      return false;
    } else {
      return token.value() < floor_word().load(std::memory_order_acquire);  // (M1)
    }
  }

  const Registry* registry_;
  std::size_t size_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> words_;  // the floor, padding, then the stamps
  std::string name_bytes_;                 // every canonical name, back to back, in handle order
  std::vector<std::uint32_t> name_begin_;  // name i is [name_begin_[i], name_begin_[i + 1])
  std::vector<std::uint64_t> hashes_;      // endpoint_name_hash of each name (plan lookups in read)
  std::vector<detail::store_index_slot> index_;
  // This store's id, shifted into place: its part of every read cache key (never reused).
  std::uint64_t store_key_;
};

static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && std::atomic<std::uint64_t>::is_always_lock_free);

/// The store to embed.
using memory_store = basic_memory_store<plan_registry, commit_rule::conditional>;
static_assert(record_store<memory_store>);
static_assert(batched_store<memory_store>);
static_assert(inspectable_store<memory_store>);
static_assert(change_following_store<memory_store>);

}  // namespace v1
}  // namespace planfence
