// planfence/plan.hpp: immutable DNS plans, their builder and their digest.
//
// What it is: a plan assigns a record set to each of its endpoints and carries the generation
// that orders it among plans. A plan never changes after it is built: enactors on many threads
// read it without synchronisation, and its SHA-256 digest over a canonical encoding (the text
// form of plan_text.hpp, without its digest line) names its content, which is what S5 (one
// generation, one plan) and S7 (integrity) compare. Successive generations built with
// `plan_builder::based_on` share every unchanged endpoint (name and record set) instead of
// copying it.
//
//     auto builder = planfence::plan_builder{planfence::generation{7}, created_unix_ms};
//     auto set = planfence::record_set::make({planfence::make_record(
//         planfence::record_type::a, 60, "192.0.2.10").value()});
//     builder.set("db.us-east-1.example.", std::move(*set)).value();
//     planfence::plan plan = std::move(builder).build().value();
//
// The text form, format_plan and parse_plan, is in plan_text.hpp. This header keeps only the
// canonical encoding the digest is computed over (detail::write_plan_body), since a plan's
// digest is part of its value.
//
// Structure: a plan is two persistent trees: an index (endpoint_index.hpp), a hash array
// mapped trie keyed by the name hash that owns the plan's reference-counted entries and serves
// find(); and a sequence (endpoint_sequence.hpp), a B-tree-like tree of one word per endpoint
// in name order (the name's hash, or a pointer to its entry when another name shares its index
// key) that serves iteration, the text form and the digest. A generation built with
// `based_on` copies only the nodes on the paths to what changed; everything else is shared
// with its base, and a change of records alone changes no sequence word.
//
// Cost (bench/scale_bench.cpp, 100,000 endpoints of two weighted A records): a plan built from
// nothing costs about 28 bytes of structure per endpoint beside its entries (about 230 bytes
// each); a generation changing 1% of the endpoints costs about 0.4 MB: the 1,000 new entries,
// the copied index paths and the index's root table, so 100 retained generations are 2.53x
// one. `based_on` is O(1); `build` applies c changes in O(c log n), then hashes the
// canonical encoding, O(n). find() is a flat root table of n/8 to n/128 slots (for plans of
// 128 endpoints and more: 4,096 slots, 32 KB, at 10^5, copied by every generation) and one to
// three trie levels, one dependent load each, then one name compare; it never allocates.
// Iteration costs about a find() per endpoint (a leaf's lookups are interleaved so that their
// cache misses overlap); `endpoints()[i]` adds an O(log n) descent. for_each_difference(before,
// after, f) finds what changed between two plans by walking their indexes side by side and
// skipping every subtree and entry they share: O(c log n) for a generation built with
// based_on and c changes, not O(n); it never allocates.
//
// The S7 check: verify() recomputes the digest from the content, O(n), and remembers the answer;
// verify_once() gives the remembered answer in O(1) when there is one. A plan is immutable, so a
// second computation could only repeat the first unless its memory was damaged. The enactor
// checks with verify_once, and plan_registry::publish makes the first check, on the publishing
// thread, so the enactors that pin the plan afterwards pay O(1) instead of O(n) each. The answer
// is a relaxed atomic byte (P1): any thread that can see the plan sees its content, and both
// answers it may read (not yet known, or the final one) are correct to act on.
//
// When not to use it: a plan is a value for automation, not a database: it never changes in
// place, and every generation costs at least its changed entries and their index paths.
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "config.hpp"
#include "detail/sha256.hpp"
#include "endpoint_index.hpp"
#include "endpoint_sequence.hpp"
#include "generation.hpp"
#include "ids.hpp"
#include "record.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

class plan;
class plan_builder;
namespace detail {
template <class Sink>
void write_plan_body(const plan& p, Sink&& sink);
}  // namespace detail

/// A plan's endpoints in name order: a view of the plan's shared structure, valid while the
/// plan lives. Iterating yields `const endpoint_entry*` (never null). Never allocates.
class endpoint_range {
 public:
  using iterator = detail::endpoint_iterator;
  using const_iterator = detail::endpoint_iterator;

  [[nodiscard]] iterator begin() const noexcept { return iterator(sequence_, index_); }
  [[nodiscard]] iterator end() const noexcept { return iterator(); }
  [[nodiscard]] std::size_t size() const noexcept { return sequence_ == nullptr ? 0 : sequence_->size; }
  [[nodiscard]] bool empty() const noexcept { return sequence_ == nullptr; }
  /// The endpoint at position `i` in name order. O(log n): it walks down both trees.
  [[nodiscard]] const endpoint_entry* operator[](std::size_t i) const noexcept {
    PLANFENCE_ASSERT(i < size());
    const detail::sequence_node* node = sequence_;
    while (node->height > 0) {
      std::size_t k = 0;
      for (; i >= node->child(k)->size; ++k) i -= node->child(k)->size;
      node = node->child(k);
    }
    return &detail::word_entry(index_, node->word(i))->entry;
  }

 private:
  friend class plan;
  endpoint_range(const detail::sequence_node* sequence, detail::index_slot index) noexcept : sequence_(sequence), index_(index) {}
  const detail::sequence_node* sequence_ = nullptr;
  detail::index_slot index_ = 0;
};
static_assert(std::forward_iterator<endpoint_range::iterator>);

/// An immutable plan. Build it with plan_builder or parse_plan.
///
/// Thread safety: every const member may be called concurrently. Lookups never allocate.
class plan {
 public:
  plan(plan&& other) noexcept
      : gen_(other.gen_),
        created_unix_ms_(other.created_unix_ms_),
        bulk_change_(other.bulk_change_),
        sequence_(std::exchange(other.sequence_, nullptr)),
        index_(std::exchange(other.index_, 0)),
        digest_(other.digest_),
        checked_(other.checked_.load(std::memory_order_relaxed)) {}  // (P1)
  plan& operator=(plan&& other) noexcept {
    if (this != &other) {
      clear();
      gen_ = other.gen_;
      created_unix_ms_ = other.created_unix_ms_;
      bulk_change_ = other.bulk_change_;
      sequence_ = std::exchange(other.sequence_, nullptr);
      index_ = std::exchange(other.index_, 0);
      digest_ = other.digest_;
      checked_.store(other.checked_.load(std::memory_order_relaxed), std::memory_order_relaxed);  // (P1)
    }
    return *this;
  }
  plan(const plan&) = delete;
  plan& operator=(const plan&) = delete;
  PLANFENCE_ALWAYS_INLINE ~plan() { clear(); }

  [[nodiscard]] generation gen() const noexcept { return gen_; }
  [[nodiscard]] std::uint64_t created_unix_ms() const noexcept { return created_unix_ms_; }
  /// The plan says a large change is intended (the S4 zone share guard lets it through).
  [[nodiscard]] bool bulk_change_intended() const noexcept { return bulk_change_; }
  /// Endpoints sorted by name (`for (const endpoint_entry* e : p.endpoints())`). Iteration
  /// costs about a find() per endpoint, `endpoints()[i]` O(log n) more; neither allocates.
  [[nodiscard]] endpoint_range endpoints() const noexcept { return endpoint_range(sequence_, index_); }
  [[nodiscard]] std::size_t size() const noexcept { return sequence_ == nullptr ? 0 : sequence_->size; }

  /// The endpoint with this canonical name, or nullptr. Never allocates.
  [[nodiscard]] const endpoint_entry* find(std::string_view name) const noexcept {
    return find(name, endpoint_name_hash(name));
  }
  /// As find(name), with the hash precomputed by endpoint_name_hash. Wait-free, never
  /// allocates: the root table (plans of 128 endpoints or more) and one to three trie levels,
  /// one dependent load each (none for a plan of one endpoint), then one hash and one name
  /// compare.
  [[nodiscard]] const endpoint_entry* find(std::string_view name, std::uint64_t hash) const noexcept {
    return detail::index_find(index_, name, hash);
  }

  /// SHA-256 of the canonical encoding (the text form without its digest line).
  [[nodiscard]] const detail::sha256_digest& digest() const noexcept { return digest_; }
  [[nodiscard]] std::string digest_hex() const { return detail::to_hex(digest_); }

  /// Recomputes the digest from the content and compares (S7). O(size of the plan), every call.
  [[nodiscard]] result<void> verify() const {
    const bool matches = compute_digest() == digest_;
    checked_.store(matches ? check_matches : check_differs, std::memory_order_relaxed);  // (P1)
    if (!matches) return fail(errc::digest_mismatch, "plan content does not match its digest");
    return ok();
  }
  /// verify(), once per plan object: the first call (or a verify() before it) recomputes, later
  /// calls on any thread return that answer in O(1). What the enactor checks before it applies a
  /// plan; plan_registry::publish makes the first call. Content damaged in memory after that
  /// check is not seen by it (verify() sees it): see docs/design.md, S7.
  [[nodiscard]] result<void> verify_once() const {
    const std::uint8_t known = checked_.load(std::memory_order_relaxed);  // (P1)
    if (known == check_unknown) return verify();
    if (known == check_differs) return fail(errc::digest_mismatch, "plan content does not match its digest");
    return ok();
  }
  /// Whether verify_once() would answer without recomputing.
  [[nodiscard]] bool verified_before() const noexcept {
    return checked_.load(std::memory_order_relaxed) != check_unknown;  // (P1)
  }

  /// Whether this plan and `other` hold the same entry object for endpoint `name` (they share
  /// it rather than each holding a copy). For tests and diagnostics; never allocates.
  [[nodiscard]] bool shares_entry_with(const plan& other, std::string_view name) const noexcept {
    const endpoint_entry* mine = find(name);
    return mine != nullptr && mine == other.find(name);
  }

 private:
  friend class plan_builder;
  friend struct plan_access;            // fault injection: planfence/sim/corrupt_plan.hpp
  friend struct plan_structure_access;  // tests/support/plan_structure_access.hpp: chosen name hashes
  template <class F>
  friend void for_each_difference(const plan& before, const plan& after, F&& f) noexcept(
      std::is_nothrow_invocable_v<F&, const endpoint_entry*, const endpoint_entry*>);
  plan() = default;

  PLANFENCE_ALWAYS_INLINE void clear() noexcept {
    if (sequence_ != nullptr) detail::release(sequence_);
    if (index_ != 0) detail::release(index_);
    sequence_ = nullptr;
    index_ = 0;
  }

  [[nodiscard]] detail::sha256_digest compute_digest() const {
    detail::sha256 hasher;
    detail::write_plan_body(*this, [&](std::string_view piece) { hasher.update(piece); });
    return hasher.finish();
  }

  /// A change given to apply(): the entry for `name` (whose hash is `name_hash`), or its
  /// removal (entry == nullptr).
  struct change {
    std::string_view name;
    std::uint64_t name_hash = 0;
    const detail::entry_block* entry = nullptr;  // borrowed
  };

  /// Applies `changes` (sorted by name, distinct names) to both trees, sharing what did not
  /// change. The digest is not touched: build() computes it, fault injection keeps the old one.
  void apply(std::span<const change> changes) {
    if (changes.empty()) return;
    // 1. The index.
    std::vector<detail::index_change> by_key;
    by_key.reserve(changes.size());
    for (const change& c : changes) {
      PLANFENCE_ASSERT(c.entry == nullptr || c.entry->entry.name_hash == c.name_hash);
      const std::uint64_t key = detail::index_key(c.name_hash);
      by_key.push_back({detail::index_order(key), key, c.name, c.entry});
    }
    std::sort(by_key.begin(), by_key.end(), [](const detail::index_change& x, const detail::index_change& y) {
      return x.order != y.order ? x.order < y.order : x.name < y.name;
    });
    const detail::index_slot old_index = index_;
    detail::index_slot new_index = 0;
    if (old_index == 0) {
      // From nothing: build the index at the width its size wants.
      std::size_t endpoints = 0;
      for (const change& c : changes) endpoints += c.entry != nullptr ? 1 : 0;
      new_index = detail::retable_changes(by_key, detail::wanted_table_bits(endpoints, 0));
    } else {
      new_index = detail::update_root(old_index, by_key);
    }

    // 2. The sequence changes: for every name whose key a change touched, its word before and
    // after. A name's word is its hash while its key is unique in the plan, else a pointer to
    // its entry; so a change of records alone changes no word, while an insertion, a removal,
    // or any change among names sharing a key may change several.
    std::vector<detail::sequence_change> words;
    words.reserve(changes.size());
    if (old_index == 0) {
      // From nothing (a plan built from scratch): every change is an insertion, already in name
      // order.
      for (const change& c : changes) {
        if (c.entry == nullptr) continue;
        detail::index_slot storage = 0;
        const std::size_t sharing = detail::index_bucket(new_index, detail::index_key(c.name_hash), storage).size();
        PLANFENCE_ASSERT(sharing >= 1);
        words.push_back({c.name, sharing == 1 ? detail::hash_word(c.name_hash) : detail::pointer_word(c.entry), true});
      }
      PLANFENCE_ASSERT(sequence_ == nullptr);
      sequence_ = detail::apply_sequence(nullptr, words, detail::sequence_names{});
      index_ = new_index;
      PLANFENCE_ASSERT(detail::wanted_table_bits(size(), detail::table_bits_of(index_)) == detail::table_bits_of(index_));
      return;
    }
    std::uint64_t previous_key = 0;
    for (std::size_t k = 0; k < by_key.size(); ++k) {
      const std::uint64_t key = by_key[k].key;
      if (k > 0 && key == previous_key) continue;  // one pass per key
      previous_key = key;
      detail::index_slot before_storage = 0;
      detail::index_slot after_storage = 0;
      const std::span<const detail::index_slot> before = detail::index_bucket(old_index, key, before_storage);
      const std::span<const detail::index_slot> after = detail::index_bucket(new_index, key, after_storage);
      const auto word_in = [](std::span<const detail::index_slot> bucket, const detail::entry_block* block) {
        return bucket.size() == 1 ? detail::hash_word(block->entry.name_hash) : detail::pointer_word(block);
      };
      // Both buckets are sorted by name: merge them.
      std::size_t b = 0;
      std::size_t a = 0;
      while (b < before.size() || a < after.size()) {
        const detail::entry_block* old_block = b < before.size() ? detail::index_entry(before[b]) : nullptr;
        const detail::entry_block* new_block = a < after.size() ? detail::index_entry(after[a]) : nullptr;
        if (new_block == nullptr || (old_block != nullptr && old_block->entry.name < new_block->entry.name)) {
          words.push_back({old_block->entry.name, 0, false});  // removed
          ++b;
        } else if (old_block == nullptr || new_block->entry.name < old_block->entry.name) {
          words.push_back({new_block->entry.name, word_in(after, new_block), true});  // inserted
          ++a;
        } else {
          const detail::sequence_word was = word_in(before, old_block);
          const detail::sequence_word now = word_in(after, new_block);
          if (was != now) words.push_back({new_block->entry.name, now, true});
          ++b;
          ++a;
        }
      }
    }
    std::sort(words.begin(), words.end(),
              [](const detail::sequence_change& x, const detail::sequence_change& y) { return x.name < y.name; });
    const detail::sequence_node* new_sequence = detail::apply_sequence(sequence_, words, detail::sequence_names{old_index});
    clear();  // the old trees (and the entries only they held) go only now: the names above lived in them
    sequence_ = new_sequence;
    index_ = new_index;
    const unsigned bits = detail::table_bits_of(index_);
    if (const unsigned wanted = detail::wanted_table_bits(size(), bits); wanted != bits) {
      // The plan grew or shrank past a threshold: rebuild the index at the new width (the same
      // entries; the words do not depend on the width).
      const detail::index_slot rebuilt = detail::retable(index_, wanted);
      detail::release(index_);
      index_ = rebuilt;
    }
  }

  /// Fault injection (planfence::plan_access): endpoint `i` gets `records`, the digest stays.
  void replace_records_keeping_digest(std::size_t i, record_set records) {
    PLANFENCE_ASSERT(i < size());
    endpoint_entry changed = *endpoints()[i];
    changed.records = std::move(records);
    const detail::entry_ref block(new detail::entry_block(std::move(changed)));
    const change one{block.get()->entry.name, block.get()->entry.name_hash, block.get()};
    apply(std::span<const change>(&one, 1));
    checked_.store(check_unknown, std::memory_order_relaxed);  // the content changed: check again
  }

  generation gen_{};
  std::uint64_t created_unix_ms_ = 0;
  bool bulk_change_ = false;
  const detail::sequence_node* sequence_ = nullptr;  // owned reference
  detail::index_slot index_ = 0;                     // owned reference
  detail::sha256_digest digest_{};
  static constexpr std::uint8_t check_unknown = 0, check_matches = 1, check_differs = 2;
  /// verify()'s answer for this content, once computed (P1: relaxed; see the header comment).
  mutable std::atomic<std::uint8_t> checked_{check_unknown};
};

/// Calls f(const endpoint_entry* before_entry, const endpoint_entry* after_entry) once for every
/// canonical name whose entries differ between `before` and `after`: present in only one of
/// them (the other argument nullptr), or present in both with records that are not equal
/// (record_set's operator==). Names whose records are equal are never reported, whether the
/// two plans share the entry or hold equal copies; two plans of equal content, built
/// independently or not, and a plan against itself, report nothing. The generation, creation
/// time and bulk-change intent of the plans are not compared.
///
/// What it is for: writing only what a new plan changes. An enactor that applied `before`
/// and now applies `after` (usually built from it with plan_builder::based_on) visits the
/// endpoints the new plan changes, not all of them.
///
/// Order: unspecified (it follows the index, by name hash: not name order, and it may change
/// with the plans' table widths). Each differing name is reported exactly once. The entries
/// passed live as long as their plans. If f throws, the walk stops there and the exception
/// reaches the caller.
///
/// Cost: the two plans' indexes are walked side by side, and whatever they share (an entry,
/// a subtree of the trie) is one pointer compare, never entered: for `after` built from
/// `before` by based_on (over any number of generations) with c names set or removed in
/// between, O(c log n) node visits and at most c record comparisons (only names set to a new
/// entry have two entries to compare), plus one linear scan of the root table when both have
/// one of the same width (n/8 to n/128 slots, 4,096 at 10^5 endpoints, compared eight at a
/// time). At 1% churn that is 0.02x (10^4 endpoints) to 0.03x (10^5) of the time to iterate
/// the plan (bench/apply_bench.cpp, BM_PlanDiff_OnePercent against BM_Baseline_PlanIterate).
/// Plans built independently share nothing and cost O(n + m) visits and a record comparison
/// per common name; plans whose root tables differ in width (the size crossed a width
/// threshold between them, and the index was rebuilt) cost O(n + m) visits too, but their
/// shared entries are still compared by pointer. Never allocates; the recursion is one frame
/// per trie level (at most 16); noexcept when f is. Thread safety: plans are immutable, so any
/// number of diffs may run at once, on any threads.
template <class F>
void for_each_difference(const plan& before, const plan& after, F&& f) noexcept(
    std::is_nothrow_invocable_v<F&, const endpoint_entry*, const endpoint_entry*>) {
  detail::index_diff_uncounted counts;
  detail::index_diff(before.index_, after.index_, f, counts);
}

/// Builds a plan, optionally starting from an earlier one whose unchanged endpoints it shares.
class plan_builder {
 public:
  plan_builder(generation gen, std::uint64_t created_unix_ms) : gen_(gen), created_(created_unix_ms) {}
  plan_builder(plan_builder&& other) noexcept
      : gen_(other.gen_),
        created_(other.created_),
        bulk_change_(other.bulk_change_),
        base_sequence_(std::exchange(other.base_sequence_, nullptr)),
        base_index_(std::exchange(other.base_index_, 0)),
        changes_(std::move(other.changes_)) {}
  plan_builder& operator=(plan_builder&&) = delete;
  plan_builder(const plan_builder&) = delete;
  plan_builder& operator=(const plan_builder&) = delete;
  ~plan_builder() {
    if (base_sequence_ != nullptr) detail::release(base_sequence_);
    detail::release(base_index_);
  }

  /// Starts from `previous`: every endpoint not set or removed later is shared, not copied, and
  /// so is every part of `previous`'s structure that the changes do not touch. O(1).
  [[nodiscard]] static plan_builder based_on(const plan& previous, generation gen, std::uint64_t created_unix_ms) {
    plan_builder builder(gen, created_unix_ms);
    builder.base_sequence_ = previous.sequence_;
    builder.base_index_ = previous.index_;
    if (builder.base_sequence_ != nullptr) detail::retain(builder.base_sequence_);
    detail::retain(builder.base_index_);
    return builder;
  }

  /// Assigns `records` to the endpoint `name` (any case, with or without the final dot).
  [[nodiscard]] result<void> set(std::string_view name, record_set records) {
    auto canonical = canonical_name(name);
    if (!canonical) return unexpected_error(canonical.error());
    endpoint_entry entry;
    entry.name_hash = endpoint_name_hash(*canonical);
    entry.name = std::move(*canonical);
    entry.records = std::move(records);
    std::string key = entry.name;
    changes_[std::move(key)] = detail::entry_ref(new detail::entry_block(std::move(entry)));
    return ok();
  }
  /// Removes the endpoint `name` from the plan being built (the plan then says nothing about it).
  [[nodiscard]] result<void> remove(std::string_view name) {
    auto canonical = canonical_name(name);
    if (!canonical) return unexpected_error(canonical.error());
    changes_[*canonical] = detail::entry_ref();
    return ok();
  }
  /// Marks the plan as an intended large change (S4 zone guard).
  void intend_bulk_change() noexcept { bulk_change_ = true; }

  /// The plan. Errors: errc::invalid_plan (generation 0 or above generation_max, too many
  /// endpoints). Cost: O(c log n) for c changes to a plan of n endpoints and, in memory, the
  /// changed entries and the copied paths; then the digest, O(n).
  [[nodiscard]] result<plan> build() && {
    if (gen_ == generation_none || gen_ > generation_max) {
      return fail(errc::invalid_plan, "generation must be between 1 and 2^40 - 1");
    }
    // Refuse before building: the endpoints after the changes, counted without building.
    std::size_t count = base_sequence_ == nullptr ? 0 : base_sequence_->size;
    for (const auto& [name, entry] : changes_) {
      const bool present = detail::index_find(base_index_, name, endpoint_name_hash(name)) != nullptr;
      if (present && entry.get() == nullptr) --count;
      if (!present && entry.get() != nullptr) ++count;
    }
    if (count > plan_endpoints_max) return fail(errc::invalid_plan, "more than 2^24 endpoints");
    plan out;
    out.gen_ = gen_;
    out.created_unix_ms_ = created_;
    out.bulk_change_ = bulk_change_;
    out.sequence_ = std::exchange(base_sequence_, nullptr);
    out.index_ = std::exchange(base_index_, 0);
    std::vector<plan::change> changes;
    changes.reserve(changes_.size());
    for (const auto& [name, entry] : changes_) changes.push_back({name, endpoint_name_hash(name), entry.get()});
    out.apply(changes);
    PLANFENCE_ASSERT(out.size() == count);
    out.digest_ = out.compute_digest();
    changes_.clear();
    return out;
  }

 private:
  generation gen_;
  std::uint64_t created_;
  bool bulk_change_ = false;
  const detail::sequence_node* base_sequence_ = nullptr;  // owned reference
  detail::index_slot base_index_ = 0;                     // owned reference
  std::map<std::string, detail::entry_ref, std::less<>> changes_;
};

namespace detail {

inline void append_decimal(std::string& out, std::uint64_t value) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  PLANFENCE_ASSERT(ec == std::errc{});
  out.append(buffer, end);
}

/// Writes the canonical encoding (every line of the text form but the digest) piece by piece.
template <class Sink>
void write_plan_body(const plan& p, Sink&& sink) {
  std::string line;
  line = "planfence-plan 1\ngeneration ";
  append_decimal(line, p.gen().value());
  line += "\ncreated-unix-ms ";
  append_decimal(line, p.created_unix_ms());
  line += '\n';
  if (p.bulk_change_intended()) line += "intent bulk-change\n";
  sink(std::string_view(line));
  for (const auto& entry : p.endpoints()) {
    line = "endpoint ";
    line += entry->name;
    if (entry->records.intended_empty()) line += " intent=empty";
    line += '\n';
    for (const record& r : entry->records.records()) {
      line += "  ";
      line += to_string(r.type);
      line += ' ';
      append_decimal(line, r.ttl);
      if (r.weight) {
        line += " weight=";
        append_decimal(line, *r.weight);
      }
      line += ' ';
      line += r.rdata;
      line += '\n';
    }
    sink(std::string_view(line));
  }
}

}  // namespace detail

}  // namespace v1
}  // namespace planfence
