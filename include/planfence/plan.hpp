// planfence/plan.hpp: immutable DNS plans, their digest, and their text form.
//
// What it is: a plan assigns a record set to each of its endpoints and carries the generation
// that orders it among plans. A plan never changes after it is built: enactors on many threads
// read it without synchronisation, and its SHA-256 digest over a canonical encoding (the text form
// below, without its digest line) names its content, which is what S5 (one generation, one plan)
// and S7 (integrity) compare. Successive generations built with `plan_builder::based_on` share
// every unchanged endpoint (name and record set) instead of copying it.
//
//     auto builder = planfence::plan_builder{planfence::generation{7}, created_unix_ms};
//     auto set = planfence::record_set::make({planfence::make_record(
//         planfence::record_type::a, 60, "192.0.2.10").value()});
//     builder.set("db.us-east-1.example.", std::move(*set)).value();
//     planfence::plan plan = std::move(builder).build().value();
//     std::string text = planfence::format_plan(plan);       // round-trips exactly:
//     planfence::plan again = planfence::parse_plan(text).value();
//
// The text form (canonical; the parser also accepts comments starting with '#', blank lines,
// upper-case names and records in any order, and reports line and column for every error):
//
//     planfence-plan 1
//     generation 7
//     created-unix-ms 1761200000000
//     intent bulk-change                       (only when the plan means a large change, S4)
//     endpoint db.us-east-1.example.
//       A 60 192.0.2.10
//       A 60 weight=10 192.0.2.11
//     endpoint old.example. intent=empty       (a deliberately emptied endpoint, S4)
//     digest sha256:<64 lower-case hex digits>
//
// Endpoints appear sorted by name and records in canonical order (record.hpp).
//
// Structure: a plan is two persistent trees (detail::index_node, detail::sequence_node): an
// index, a hash array mapped trie keyed by the name hash that owns the plan's reference-counted
// entries and serves find(); and a sequence, a B-tree-like tree of one word per endpoint in
// name order (the name's hash, or a pointer to its entry when another name shares its index
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
// cache misses overlap); `endpoints()[i]` adds an O(log n) descent.
//
// When not to use it: a plan is a value for automation, not a database: it never changes in
// place, and every generation costs at least its changed entries and their index paths.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "detail/sha256.hpp"
#include "generation.hpp"
#include "ids.hpp"
#include "record.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

/// planfence's bound on endpoints per plan (a regional plan covers hundreds of thousands).
inline constexpr std::size_t plan_endpoints_max = std::size_t{1} << 24;
/// planfence's bound on the length of one line of plan text.
inline constexpr std::size_t plan_line_length_max = 8192;

/// FNV-1a over a canonical name: stores precompute it per endpoint so that finding an endpoint
/// in a plan walks the plan's trie without hashing the name again.
[[nodiscard]] constexpr std::uint64_t endpoint_name_hash(std::string_view name) noexcept {
  std::uint64_t hash = 14695981039346656037ULL;
  for (char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

/// One endpoint of a plan: its canonical name and its record set. Shared between plans.
/// One endpoint of a plan: its canonical name and its record set. Shared between plans.
struct endpoint_entry {
  std::string name;
  std::uint64_t name_hash = 0;
  record_set records;
};

class plan;
class plan_builder;
namespace detail {
template <class Sink>
void write_plan_body(const plan& p, Sink&& sink);

// ---------------------------------------------------------------------------------------------
// The shared structure of plans.
//
// A plan is two persistent (immutable, shared) trees:
//  - the *index*, a hash array mapped trie keyed by the name hash without its lowest bit
//    (index_key), 4 bits per level, whose branch nodes hold a 16-bit bitmap and only the
//    children present. It owns the plan's entries (reference-counted endpoint_entry objects)
//    and gives find().
//  - the *sequence*, a B-tree-like tree of one 64-bit word per endpoint in name order (leaves
//    of up to sequence_fanout words, inner nodes of up to sequence_fanout children, every leaf
//    at the same depth, each node knowing how many endpoints lie below it), which gives
//    iteration in name order, the canonical text and so the digest, and access by position.
//    A word names an endpoint by its hash (index_key << 1, low bit 0) whenever no other name
//    of the plan has the same index key, and by a pointer to its entry (low bit 1) otherwise,
//    so that the word alone finds the entry in the plan's index.
// A new generation copies only the nodes on the paths to what changed (path copying); every
// other node, and every unchanged entry, is shared with the plan it was based on. Because a
// word does not change when an endpoint's records change, a generation that only changes
// records copies no sequence node at all: only entries and index paths.
// Nodes are immutable once published; reference counts are the only thing written after that,
// and they are atomic because plans sharing a node are destroyed on any thread (epoch
// reclamation in the registry).

/// An entry with the count of index slots (and builders) holding it.
struct entry_block {
  explicit entry_block(endpoint_entry e) noexcept : entry(std::move(e)) { alive.fetch_add(1, std::memory_order_relaxed); }
  entry_block(const entry_block&) = delete;
  entry_block& operator=(const entry_block&) = delete;
  ~entry_block() { alive.fetch_sub(1, std::memory_order_relaxed); }

  endpoint_entry entry;
  mutable std::atomic<std::uint32_t> references{1};
  /// Entries in existence, process-wide: lets tests prove that entries are shared and freed.
  static inline std::atomic<std::int64_t> alive{0};
};

inline void retain(const entry_block* block) noexcept { block->references.fetch_add(1, std::memory_order_relaxed); }
PLANFENCE_ALWAYS_INLINE void release(const entry_block* block) noexcept {
  // acq_rel: the last release sees every use made through the other references.
  if (block->references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete block;
}

/// An owned reference to an entry (the builder's).
class entry_ref {
 public:
  entry_ref() noexcept = default;
  explicit entry_ref(const entry_block* adopted) noexcept : block_(adopted) {}
  entry_ref(entry_ref&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  entry_ref& operator=(entry_ref&& other) noexcept {
    if (this != &other) {
      if (block_ != nullptr) release(block_);
      block_ = std::exchange(other.block_, nullptr);
    }
    return *this;
  }
  entry_ref(const entry_ref&) = delete;
  entry_ref& operator=(const entry_ref&) = delete;
  ~entry_ref() {
    if (block_ != nullptr) release(block_);
  }
  [[nodiscard]] const entry_block* get() const noexcept { return block_; }

 private:
  const entry_block* block_ = nullptr;
};

// --- the index ---------------------------------------------------------------------------------

/// What the index is keyed by: the name hash without its lowest bit (the sequence's words use
/// that bit to tell a hash from a pointer).
[[nodiscard]] constexpr std::uint64_t index_key(std::uint64_t name_hash) noexcept { return name_hash >> 1; }

/// A slot is 0 (nothing), an entry_block* with its low bit set, or an index_node*.
using index_slot = std::uintptr_t;
inline constexpr index_slot index_entry_tag = 1;
static_assert(alignof(entry_block) > 1, "the index tags entry pointers in their low bit");

[[nodiscard]] inline bool is_entry(index_slot slot) noexcept { return (slot & index_entry_tag) != 0; }
[[nodiscard]] inline index_slot index_slot_of(const entry_block* block) noexcept {
  return reinterpret_cast<index_slot>(block) | index_entry_tag;
}
[[nodiscard]] inline const entry_block* index_entry(index_slot slot) noexcept {
  PLANFENCE_ASSERT(is_entry(slot));
  return reinterpret_cast<const entry_block*>(slot & ~index_entry_tag);
}

/// An index node, followed in the same allocation by its slots. A branch node at depth d looks
/// at bits 4d .. 4d + 3 of the key and has one slot per bit set in its bitmap; a collision node
/// holds the entries (two or more) of one key, sorted by name.
struct alignas(void*) index_node {
  mutable std::atomic<std::uint32_t> references{1};
  std::uint32_t info = 0;  // branch: the bitmap; collision: collision_flag | count; table: table_flag | bits
  static constexpr std::uint32_t collision_flag = std::uint32_t{1} << 31;
  static constexpr std::uint32_t table_flag = std::uint32_t{1} << 30;

  [[nodiscard]] bool collision() const noexcept { return (info & collision_flag) != 0; }
  [[nodiscard]] bool table() const noexcept { return (info & table_flag) != 0; }
  /// A table's width: it is indexed by the key's lowest table_bits() bits.
  [[nodiscard]] unsigned table_bits() const noexcept { return info & ~table_flag; }
  [[nodiscard]] std::size_t count() const noexcept {
    if (collision()) return info & ~collision_flag;
    if (table()) return std::size_t{1} << table_bits();
    return static_cast<std::size_t>(std::popcount(info));
  }
  [[nodiscard]] const index_slot* slots() const noexcept { return reinterpret_cast<const index_slot*>(this + 1); }
};
static_assert(sizeof(index_node) == 8);
inline constexpr unsigned index_bits = 4;
inline constexpr unsigned index_key_bits = 64;

[[nodiscard]] inline const index_node* index_node_of(index_slot slot) noexcept {
  PLANFENCE_ASSERT(slot != 0);
  PLANFENCE_ASSERT(!is_entry(slot));
  return reinterpret_cast<const index_node*>(slot);
}

inline void retain(index_slot slot) noexcept {
  if (slot == 0) return;
  if (is_entry(slot)) {
    retain(index_entry(slot));
  } else {
    index_node_of(slot)->references.fetch_add(1, std::memory_order_relaxed);
  }
}
inline void free_index_node(const index_node* node) noexcept;
/// Drops one reference. Inline up to the decrement, which is all that dropping a shared node
/// costs (a plan built with based_on shares nearly all of its nodes, so destroying it mostly
/// drops references); freeing the last one, which recurses, is out of line.
PLANFENCE_ALWAYS_INLINE void release(index_slot slot) noexcept {
  if (slot == 0) return;
  if (is_entry(slot)) {
    release(index_entry(slot));
    return;
  }
  const index_node* node = index_node_of(slot);
  // acq_rel: the last release sees every use made through the other references.
  if (node->references.fetch_sub(1, std::memory_order_acq_rel) == 1) [[unlikely]] free_index_node(node);
}
inline void free_index_node(const index_node* node) noexcept {
  const std::size_t count = node->count();
  for (std::size_t i = 0; i < count; ++i) release(node->slots()[i]);
  node->~index_node();
  ::operator delete(const_cast<index_node*>(node));
}

/// A new index node with `info` over `slots` (owned references, adopted).
[[nodiscard]] inline index_slot make_index_node(std::uint32_t info, std::span<const index_slot> slots) {
  void* raw = ::operator new(sizeof(index_node) + slots.size() * sizeof(index_slot));
  auto* node = new (raw) index_node{};
  node->info = info;
  auto* out = reinterpret_cast<index_slot*>(node + 1);
  for (std::size_t i = 0; i < slots.size(); ++i) new (&out[i]) index_slot(slots[i]);
  PLANFENCE_ASSERT(node->count() == slots.size());
  return reinterpret_cast<index_slot>(node);
}

/// Where a search for `key` below `slot` ends: 0, an entry (of this key or another: the caller
/// checks), or a collision node (of this key). Never allocates.
[[nodiscard]] inline index_slot index_lookup(index_slot slot, std::uint64_t key) noexcept {
  unsigned shift = 0;
  if (slot != 0 && !is_entry(slot) && index_node_of(slot)->table()) {
    // The root of a large plan: a flat table replaces its first levels (one load, not three).
    const index_node* table = index_node_of(slot);
    shift = table->table_bits();
    slot = table->slots()[key & ((std::uint64_t{1} << shift) - 1)];
  }
  for (; slot != 0 && !is_entry(slot); shift += index_bits) {
    const index_node* node = index_node_of(slot);
    if (node->collision()) return slot;
    PLANFENCE_ASSERT(shift < index_key_bits);
    const std::uint32_t bit = std::uint32_t{1} << ((key >> shift) & 15);
    if ((node->info & bit) == 0) return 0;
    slot = node->slots()[std::popcount(node->info & (bit - 1))];
  }
  return slot;
}

/// The key of what `slot` holds (an entry or a collision node).
[[nodiscard]] inline std::uint64_t key_of(index_slot slot) noexcept {
  const entry_block* block = is_entry(slot) ? index_entry(slot) : index_entry(index_node_of(slot)->slots()[0]);
  return index_key(block->entry.name_hash);
}

/// The entries of `key` below `root`, as a span of slots (empty, one entry, or a collision
/// node's). Never allocates; `storage` holds the single-entry case.
[[nodiscard]] inline std::span<const index_slot> index_bucket(index_slot root, std::uint64_t key, index_slot& storage) noexcept {
  const index_slot found = index_lookup(root, key);
  if (found == 0 || key_of(found) != key) return {};
  if (is_entry(found)) {
    storage = found;
    return {&storage, 1};
  }
  return {index_node_of(found)->slots(), index_node_of(found)->count()};
}

/// Whether `e` is the endpoint `name` of hash `hash`: the hash, then the length, then the bytes
/// (one memcmp; string_view's operator== goes through compare(), an out-of-line call that
/// orders the names, about twice the instructions for the equality find() needs).
[[nodiscard]] inline bool is_endpoint(const endpoint_entry& e, std::string_view name, std::uint64_t hash) noexcept {
  return e.name_hash == hash && e.name.size() == name.size() &&
         (name.empty() || std::memcmp(e.name.data(), name.data(), name.size()) == 0);
}

/// The endpoint `name` (hash `hash`) below `root`, or nullptr. Never allocates.
[[nodiscard]] inline const endpoint_entry* index_find(index_slot root, std::string_view name, std::uint64_t hash) noexcept {
  const index_slot found = index_lookup(root, index_key(hash));
  if (found == 0) return nullptr;
  if (is_entry(found)) {
    const endpoint_entry& e = index_entry(found)->entry;
    return is_endpoint(e, name, hash) ? &e : nullptr;
  }
  const index_node* node = index_node_of(found);
  for (std::size_t i = 0; i < node->count(); ++i) {
    const endpoint_entry& e = index_entry(node->slots()[i])->entry;
    if (is_endpoint(e, name, hash)) return &e;
  }
  return nullptr;
}

/// The key with its 4-bit groups in reverse order: sorting changes by it groups them by the
/// trie's first level, then its second, and so on.
[[nodiscard]] constexpr std::uint64_t index_order(std::uint64_t key) noexcept {
  std::uint64_t out = 0;
  for (unsigned i = 0; i < index_key_bits / index_bits; ++i) {
    out = (out << index_bits) | (key & 15);
    key >>= index_bits;
  }
  return out;
}

/// One change to the index: the entry for `name` (of key `key`), or its removal (entry ==
/// nullptr). The entry is borrowed: the index takes its own reference.
struct index_change {
  std::uint64_t order = 0;  // index_order(key)
  std::uint64_t key = 0;
  std::string_view name;
  const entry_block* entry = nullptr;
};

/// Merges the entries of one key (`current`: nothing, an entry or a collision node, borrowed)
/// with `changes` (all of that key, sorted by name). Returns an owned reference.
[[nodiscard]] inline index_slot merge_same_key(index_slot current, std::span<const index_change> changes) {
  // The common cases, without allocating: a new entry alone, or an entry replaced or removed.
  if (changes.size() == 1 && (current == 0 || (is_entry(current) && index_entry(current)->entry.name == changes[0].name))) {
    if (changes[0].entry == nullptr) return 0;
    retain(changes[0].entry);
    return index_slot_of(changes[0].entry);
  }
  std::span<const index_slot> existing;
  if (current != 0) existing = is_entry(current) ? std::span<const index_slot>(&current, 1)
                                                 : std::span<const index_slot>(index_node_of(current)->slots(), index_node_of(current)->count());
  std::vector<index_slot> merged;
  merged.reserve(existing.size() + changes.size());
  const auto take = [&](const entry_block* block) {
    retain(block);
    merged.push_back(index_slot_of(block));
  };
  std::size_t c = 0;
  for (const index_slot slot : existing) {
    const entry_block* e = index_entry(slot);
    for (; c < changes.size() && changes[c].name < e->entry.name; ++c) {
      if (changes[c].entry != nullptr) take(changes[c].entry);
    }
    if (c < changes.size() && changes[c].name == e->entry.name) {
      if (changes[c].entry != nullptr) take(changes[c].entry);
      ++c;
      continue;
    }
    take(e);
  }
  for (; c < changes.size(); ++c) {
    if (changes[c].entry != nullptr) take(changes[c].entry);
  }
  if (merged.empty()) return 0;
  if (merged.size() == 1) return merged[0];
  PLANFENCE_ASSERT(merged.size() <= plan_endpoints_max);
  return make_index_node(index_node::collision_flag | static_cast<std::uint32_t>(merged.size()), merged);
}

/// `current` (borrowed) with `changes` applied (sorted by index_order of the key, then by name;
/// all agree with the key bits below `shift`). Returns an owned reference. Subtrees without
/// changes are shared; a branch left with a single entry is replaced by the entry.
[[nodiscard]] inline index_slot update_index(index_slot current, unsigned shift, std::span<const index_change> changes) {
  if (changes.empty()) {
    retain(current);
    return current;
  }
  const bool current_is_branch = current != 0 && !is_entry(current) && !index_node_of(current)->collision();
  // Changes all of one key meeting nothing, or an entry or a collision node of that key: no
  // branch is needed (this is where almost every change of a large plan ends).
  const std::uint64_t key = changes.front().key;
  if (changes.back().key == key && (current == 0 || (!current_is_branch && key_of(current) == key))) {
    return merge_same_key(current, changes);
  }
  PLANFENCE_ASSERT(shift < index_key_bits);  // keys that agree on every bit are one key

  // A branch: the current one, or a new one holding what was here.
  index_slot old_children[16] = {};
  std::uint32_t old_bitmap = 0;
  if (current_is_branch) {
    const index_node* node = index_node_of(current);
    old_bitmap = node->info;
    std::size_t k = 0;
    for (unsigned nibble = 0; nibble < 16; ++nibble) {
      if ((node->info & (std::uint32_t{1} << nibble)) != 0) old_children[nibble] = node->slots()[k++];
    }
  } else if (current != 0) {
    old_children[(key_of(current) >> shift) & 15] = current;
  }
  index_slot packed[16];
  std::uint32_t bitmap = 0;
  std::size_t count = 0;
  bool same = current_is_branch;
  std::size_t c = 0;
  for (unsigned nibble = 0; nibble < 16; ++nibble) {
    std::size_t end = c;
    while (end < changes.size() && ((changes[end].key >> shift) & 15) == nibble) ++end;
    const index_slot child = update_index(old_children[nibble], shift + index_bits, changes.subspan(c, end - c));
    c = end;
    same = same && child == old_children[nibble];
    if (child == 0) continue;
    bitmap |= std::uint32_t{1} << nibble;
    packed[count++] = child;
  }
  PLANFENCE_ASSERT(c == changes.size());  // the changes were sorted by index_order
  if (same && bitmap == old_bitmap) {
    // Nothing changed here (removals of absent names): keep the node.
    for (std::size_t i = 0; i < count; ++i) release(packed[i]);
    retain(current);
    return current;
  }
  if (count == 0) return 0;
  if (count == 1 && is_entry(packed[0])) return packed[0];
  return make_index_node(bitmap, std::span<const index_slot>(packed, count));
}

/// Table widths a root may have (multiples of index_bits, so that changes sorted by
/// index_order are grouped by table slot), and the smallest plan that gets each: a table of
/// 2^b slots once a plan has 8 * 2^b endpoints (4,096 slots, 32 KB, at 10^5 endpoints; 65,536
/// slots at 10^6), about 8 endpoints a slot, so a lookup is the table and one or two levels.
inline constexpr unsigned index_table_bits_max = 16;
static_assert(index_table_bits_max % index_bits == 0);

[[nodiscard]] inline unsigned table_bits_of(index_slot root) noexcept {
  return root != 0 && !is_entry(root) && index_node_of(root)->table() ? index_node_of(root)->table_bits() : 0;
}

/// The table width for a plan of `endpoints` whose root now has `current` bits: the widest that
/// the size warrants, kept while the size warrants one step less (so that a plan whose size
/// hovers around a threshold does not rebuild its index every generation).
[[nodiscard]] constexpr unsigned wanted_table_bits(std::size_t endpoints, unsigned current) noexcept {
  unsigned wanted = 0;
  while (wanted < index_table_bits_max && (std::size_t{8} << (wanted + index_bits)) <= endpoints) wanted += index_bits;
  return current == wanted || current == wanted + index_bits ? current : wanted;
}

/// `root` (borrowed) with `changes` applied, as update_index, for a root that may be a table.
[[nodiscard]] inline index_slot update_root(index_slot root, std::span<const index_change> changes) {
  if (table_bits_of(root) == 0) return update_index(root, 0, changes);
  const index_node* table = index_node_of(root);
  const unsigned bits = table->table_bits();
  const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
  std::vector<index_slot> slots(table->slots(), table->slots() + table->count());
  for (const index_slot slot : slots) retain(slot);
  for (std::size_t c = 0; c < changes.size();) {
    const std::uint64_t at = changes[c].key & mask;
    std::size_t end = c;
    while (end < changes.size() && (changes[end].key & mask) == at) ++end;
    const index_slot child = update_index(table->slots()[at], bits, changes.subspan(c, end - c));
    release(slots[at]);
    slots[at] = child;
    c = end;
  }
  return make_index_node(index_node::table_flag | bits, slots);
}

/// A new index of `bits` table width holding `changes` (sorted by index_order, then name).
[[nodiscard]] inline index_slot retable_changes(std::span<const index_change> changes, unsigned bits) {
  if (bits == 0) return update_index(0, 0, changes);
  const std::vector<index_slot> empty(std::size_t{1} << bits, 0);
  const index_slot table = make_index_node(index_node::table_flag | bits, empty);
  const index_slot filled = update_root(table, changes);
  release(table);
  return filled;
}

/// An index of `bits` table width holding every entry below `root` (borrowed).
[[nodiscard]] inline index_slot retable(index_slot root, unsigned bits) {
  std::vector<index_change> all;
  std::vector<index_slot> stack{root};
  while (!stack.empty()) {
    const index_slot slot = stack.back();
    stack.pop_back();
    if (slot == 0) continue;
    if (is_entry(slot)) {
      const entry_block* block = index_entry(slot);
      const std::uint64_t key = index_key(block->entry.name_hash);
      all.push_back({index_order(key), key, block->entry.name, block});
      continue;
    }
    const index_node* node = index_node_of(slot);
    stack.insert(stack.end(), node->slots(), node->slots() + node->count());
  }
  std::sort(all.begin(), all.end(), [](const index_change& x, const index_change& y) {
    return x.order != y.order ? x.order < y.order : x.name < y.name;
  });
  return retable_changes(all, bits);
}

// --- the sequence --------------------------------------------------------------------------

/// A sequence word: index_key(hash) << 1 when the endpoint's key is unique in its plan, else
/// its entry's address with the low bit set.
using sequence_word = std::uint64_t;
inline constexpr sequence_word sequence_pointer_tag = 1;

[[nodiscard]] inline sequence_word hash_word(std::uint64_t name_hash) noexcept { return index_key(name_hash) << 1; }
[[nodiscard]] inline sequence_word pointer_word(const entry_block* block) noexcept {
  return static_cast<sequence_word>(reinterpret_cast<std::uintptr_t>(block)) | sequence_pointer_tag;
}
/// The entry a word names in the plan whose index is `index`. Never allocates.
[[nodiscard]] inline const entry_block* word_entry(index_slot index, sequence_word word) noexcept {
  if ((word & sequence_pointer_tag) != 0) {
    return reinterpret_cast<const entry_block*>(static_cast<std::uintptr_t>(word & ~sequence_pointer_tag));
  }
  const index_slot found = index_lookup(index, word >> 1);
  PLANFENCE_ASSERT(found != 0);
  PLANFENCE_ASSERT(is_entry(found));  // a hash word's key is unique in its plan
  PLANFENCE_ASSERT(index_key(index_entry(found)->entry.name_hash) == word >> 1);
  return index_entry(found);
}

/// Words per leaf and children per inner node at most. Eight keeps the copy of a leaf small
/// (80 bytes) while keeping the tree shallow (8 levels at 2^24 endpoints).
inline constexpr std::size_t sequence_fanout = 8;
/// Sequence depth at most (the iterator's stack). A tree deeper than its size needs by more
/// than sequence_height_slack levels (possible after many removals) is rebuilt.
inline constexpr std::size_t sequence_height_max = 16;
inline constexpr std::size_t sequence_height_slack = 2;

[[nodiscard]] constexpr std::size_t sequence_height_needed(std::size_t entries) noexcept {
  std::size_t height = 0;
  for (std::size_t reach = sequence_fanout; reach < entries; reach *= sequence_fanout) ++height;
  return height;
}
static_assert(sequence_height_needed(std::size_t{1} << 24) + sequence_height_slack < sequence_height_max,
              "the sequence iterator's stack must hold the deepest tree a plan can have");

/// A sequence node, followed in the same allocation by `count` slots: words in a leaf,
/// sequence_node pointers in an inner node.
struct alignas(std::uint64_t) sequence_node {
  mutable std::atomic<std::uint32_t> references{1};
  std::uint16_t count = 0;
  std::uint16_t height = 0;  // 0: a leaf
  std::uint32_t size = 0;    // endpoints below

  [[nodiscard]] const std::uint64_t* slots() const noexcept { return reinterpret_cast<const std::uint64_t*>(this + 1); }
  [[nodiscard]] sequence_word word(std::size_t i) const noexcept {
    PLANFENCE_ASSERT(height == 0);
    PLANFENCE_ASSERT(i < count);
    return slots()[i];
  }
  [[nodiscard]] const sequence_node* child(std::size_t i) const noexcept {
    PLANFENCE_ASSERT(height > 0);
    PLANFENCE_ASSERT(i < count);
    return reinterpret_cast<const sequence_node*>(static_cast<std::uintptr_t>(slots()[i]));
  }
};
static_assert(sizeof(sequence_node) % alignof(std::uint64_t) == 0);

[[nodiscard]] inline std::uint64_t sequence_slot_of(const sequence_node* node) noexcept {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(node));
}

inline void retain(const sequence_node* node) noexcept { node->references.fetch_add(1, std::memory_order_relaxed); }
inline void free_sequence_node(const sequence_node* node) noexcept;
/// Drops one reference; inline up to the decrement, as release(index_slot).
PLANFENCE_ALWAYS_INLINE void release(const sequence_node* node) noexcept {
  // acq_rel: the last release sees every use made through the other references.
  if (node->references.fetch_sub(1, std::memory_order_acq_rel) == 1) [[unlikely]] free_sequence_node(node);
}
inline void free_sequence_node(const sequence_node* node) noexcept {
  if (node->height > 0) {
    for (std::size_t i = 0; i < node->count; ++i) release(node->child(i));
  }
  node->~sequence_node();
  ::operator delete(const_cast<sequence_node*>(node));
}

/// A new node of `height` over `slots` (words for a leaf; children, which it takes a new
/// reference to, for an inner node).
[[nodiscard]] inline const sequence_node* make_sequence_node(std::uint16_t height, std::span<const std::uint64_t> slots) {
  PLANFENCE_ASSERT(!slots.empty());
  PLANFENCE_ASSERT(slots.size() <= sequence_fanout);
  void* raw = ::operator new(sizeof(sequence_node) + slots.size() * sizeof(std::uint64_t));
  auto* node = new (raw) sequence_node{};
  node->count = static_cast<std::uint16_t>(slots.size());
  node->height = height;
  auto* out = reinterpret_cast<std::uint64_t*>(node + 1);
  std::uint64_t size = 0;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    new (&out[i]) std::uint64_t(slots[i]);
    if (height == 0) {
      size += 1;
    } else {
      const sequence_node* child = node->child(i);
      PLANFENCE_ASSERT(child->height + 1 == height);
      retain(child);
      size += child->size;
    }
  }
  PLANFENCE_ASSERT(size <= plan_endpoints_max);
  node->size = static_cast<std::uint32_t>(size);
  return node;
}

/// Appends to `out` nodes of `height` over `slots`, at most sequence_fanout each and as evenly
/// filled as possible.
inline void chunk_sequence(std::uint16_t height, std::span<const std::uint64_t> slots, std::vector<const sequence_node*>& out) {
  if (slots.empty()) return;
  const std::size_t nodes = (slots.size() + sequence_fanout - 1) / sequence_fanout;
  std::size_t begin = 0;
  for (std::size_t k = 0; k < nodes; ++k) {
    const std::size_t end = slots.size() * (k + 1) / nodes;
    out.push_back(make_sequence_node(height, slots.subspan(begin, end - begin)));
    begin = end;
  }
}

/// One change to a sequence: the word for `name` (inserted or replacing its word), or its
/// removal.
struct sequence_change {
  std::string_view name;
  sequence_word word = 0;
  bool present = true;
};

/// Resolves the words of one plan's sequence to names, through that plan's index.
struct sequence_names {
  index_slot index = 0;
  [[nodiscard]] std::string_view operator()(sequence_word word) const noexcept { return word_entry(index, word)->entry.name; }
};

/// The name of the first endpoint below `node`.
[[nodiscard]] inline std::string_view first_name(const sequence_node* node, const sequence_names& names) noexcept {
  while (node->height > 0) node = node->child(0);
  return names(node->word(0));
}

/// Appends to `out` the nodes (of node->height) that replace `node` once `changes` (sorted by
/// name, none equal, all within the part of the name space the parent gave `node`) are
/// applied. Nodes without changes are shared; the others are copied. Each appended node is an
/// owned reference.
inline void update_sequence(const sequence_node* node, std::span<const sequence_change> changes, const sequence_names& names,
                            std::vector<const sequence_node*>& out) {
  if (changes.empty()) {
    retain(node);
    out.push_back(node);
    return;
  }
  std::vector<std::uint64_t> slots;
  if (node->height == 0) {
    // Merge the leaf's words with the changes.
    slots.reserve(node->count + changes.size());
    std::size_t c = 0;
    for (std::size_t i = 0; i < node->count; ++i) {
      const sequence_word existing = node->word(i);
      const std::string_view name = names(existing);
      for (; c < changes.size() && changes[c].name < name; ++c) {
        if (changes[c].present) slots.push_back(changes[c].word);
      }
      if (c < changes.size() && changes[c].name == name) {
        if (changes[c].present) slots.push_back(changes[c].word);
        ++c;
        continue;
      }
      slots.push_back(existing);
    }
    for (; c < changes.size(); ++c) {
      if (changes[c].present) slots.push_back(changes[c].word);
    }
    chunk_sequence(0, slots, out);
    return;
  }
  // Give each child the changes below the first name of the next child.
  std::vector<const sequence_node*> replaced;
  std::size_t c = 0;
  for (std::size_t i = 0; i < node->count; ++i) {
    std::size_t end = changes.size();
    if (i + 1 < node->count) {
      const std::string_view next = first_name(node->child(i + 1), names);
      end = c;
      while (end < changes.size() && changes[end].name < next) ++end;
    }
    update_sequence(node->child(i), changes.subspan(c, end - c), names, replaced);
    c = end;
  }
  slots.reserve(replaced.size());
  for (const sequence_node* r : replaced) slots.push_back(sequence_slot_of(r));
  chunk_sequence(node->height, slots, out);
  for (const sequence_node* r : replaced) release(r);  // the new parents hold them now
}

/// One root over `level` (nodes of one height, owned references, consumed), or nullptr.
[[nodiscard]] inline const sequence_node* sequence_root(std::vector<const sequence_node*> level) {
  while (level.size() > 1) {
    const auto height = static_cast<std::uint16_t>(level[0]->height + 1);
    PLANFENCE_ASSERT(height < sequence_height_max);
    std::vector<std::uint64_t> slots;
    slots.reserve(level.size());
    for (const sequence_node* n : level) slots.push_back(sequence_slot_of(n));
    std::vector<const sequence_node*> parents;
    chunk_sequence(height, slots, parents);
    for (const sequence_node* n : level) release(n);
    level = std::move(parents);
  }
  if (level.empty()) return nullptr;
  const sequence_node* root = level[0];
  // After removals the root may have a single child: drop the level.
  while (root->height > 0 && root->count == 1) {
    const sequence_node* only = root->child(0);
    retain(only);
    release(root);
    root = only;
  }
  return root;
}

/// A sequence of `words` (in name order), built from nothing.
[[nodiscard]] inline const sequence_node* build_sequence(std::span<const std::uint64_t> words) {
  std::vector<const sequence_node*> leaves;
  chunk_sequence(0, words, leaves);
  return sequence_root(std::move(leaves));
}

/// Appends the words below `node` to `out`, in name order.
inline void collect_words(const sequence_node* node, std::vector<std::uint64_t>& out) {
  for (std::size_t i = 0; i < node->count; ++i) {
    if (node->height == 0) {
      out.push_back(node->word(i));
    } else {
      collect_words(node->child(i), out);
    }
  }
}

/// `root` (borrowed; its words resolve through `names`) with `changes` applied (sorted by name,
/// distinct). Returns an owned reference, or nullptr for an empty sequence.
[[nodiscard]] inline const sequence_node* apply_sequence(const sequence_node* root, std::span<const sequence_change> changes,
                                                         const sequence_names& names) {
  if (changes.empty()) {
    if (root != nullptr) retain(root);
    return root;
  }
  if (root == nullptr) {
    std::vector<std::uint64_t> words;
    words.reserve(changes.size());
    for (const sequence_change& c : changes) {
      if (c.present) words.push_back(c.word);
    }
    return build_sequence(words);
  }
  std::vector<const sequence_node*> level;
  update_sequence(root, changes, names, level);
  const sequence_node* updated = sequence_root(std::move(level));
  if (updated != nullptr && updated->height > sequence_height_needed(updated->size) + sequence_height_slack) {
    // Many removals left the tree deeper than its size needs: rebuild it over the same words.
    std::vector<std::uint64_t> words;
    words.reserve(updated->size);
    collect_words(updated, words);
    const sequence_node* rebuilt = build_sequence(words);
    release(updated);
    updated = rebuilt;
  }
  return updated;
}

/// Forward iterator over a plan's endpoints in name order. Dereferences to
/// `const endpoint_entry*` (a word resolved through the plan's index).
class endpoint_iterator {
 public:
  using iterator_concept = std::forward_iterator_tag;
  using iterator_category = std::forward_iterator_tag;
  using value_type = const endpoint_entry*;
  using difference_type = std::ptrdiff_t;
  using reference = const endpoint_entry*;
  using pointer = void;

  endpoint_iterator() noexcept = default;
  endpoint_iterator(const sequence_node* root, index_slot index) noexcept : index_(index) {
    if (root == nullptr) return;
    depth_ = 0;
    path_[0] = {root, 0};
    descend();
  }

  [[nodiscard]] const endpoint_entry* operator*() const noexcept {
    PLANFENCE_ASSERT(depth_ >= 0);
    const frame& leaf = path_[static_cast<std::size_t>(depth_)];
    PLANFENCE_ASSERT(resolved_[leaf.at] != nullptr);  // resolve_leaf checked each key
    return &resolved_[leaf.at]->entry;
  }
  endpoint_iterator& operator++() noexcept {
    PLANFENCE_ASSERT(depth_ >= 0);
    for (;;) {
      frame& f = path_[static_cast<std::size_t>(depth_)];
      if (++f.at < f.node->count) break;
      if (--depth_ < 0) return *this;  // the end
    }
    descend();
    return *this;
  }
  endpoint_iterator operator++(int) noexcept {
    endpoint_iterator before = *this;
    ++*this;
    return before;
  }
  friend bool operator==(const endpoint_iterator& x, const endpoint_iterator& y) noexcept {
    if (x.depth_ < 0 || y.depth_ < 0) return x.depth_ < 0 && y.depth_ < 0;
    const frame& a = x.path_[static_cast<std::size_t>(x.depth_)];
    const frame& b = y.path_[static_cast<std::size_t>(y.depth_)];
    return a.node == b.node && a.at == b.at;
  }

 private:
  struct frame {
    const sequence_node* node = nullptr;
    std::uint16_t at = 0;
  };
  // From path_[depth_] down its current child to the first word of a leaf.
  void descend() noexcept {
    for (;;) {
      const frame& f = path_[static_cast<std::size_t>(depth_)];
      if (f.node->height == 0) {
        if (f.at == 0) resolve_leaf(f.node);
        return;
      }
      const sequence_node* child = f.node->child(f.at);
      ++depth_;
      PLANFENCE_ASSERT(static_cast<std::size_t>(depth_) < sequence_height_max);
      path_[static_cast<std::size_t>(depth_)] = {child, 0};
    }
  }
  // Resolves every word of `leaf` through the index at once, the lookups interleaved level by
  // level: their loads are independent, so their cache misses overlap instead of following one
  // another (a large plan's index does not fit in cache, and iterating is what the digest,
  // the text form and the enactor do).
  void resolve_leaf(const sequence_node* leaf) noexcept {
    index_slot at[sequence_fanout];
    std::uint64_t keys[sequence_fanout];
    std::size_t pending = 0;
    const unsigned table_bits = table_bits_of(index_);
    const std::uint64_t table_mask = (std::uint64_t{1} << table_bits) - 1;
    for (std::size_t i = 0; i < leaf->count; ++i) {
      const sequence_word word = leaf->word(i);
      if ((word & sequence_pointer_tag) != 0) {
        resolved_[i] = word_entry(index_, word);
      } else {
        resolved_[i] = nullptr;
        keys[i] = word >> 1;
        at[i] = table_bits == 0 ? index_ : index_node_of(index_)->slots()[keys[i] & table_mask];
        ++pending;
      }
    }
    for (unsigned shift = table_bits; pending > 0; shift += index_bits) {
      for (std::size_t i = 0; i < leaf->count; ++i) {
        if (resolved_[i] != nullptr) continue;
        PLANFENCE_ASSERT(at[i] != 0);
        if (is_entry(at[i])) {
          resolved_[i] = index_entry(at[i]);
          PLANFENCE_ASSERT(index_key(resolved_[i]->entry.name_hash) == keys[i]);
          --pending;
          continue;
        }
        const index_node* node = index_node_of(at[i]);
        PLANFENCE_ASSERT(!node->collision());  // a hash word's key is unique in its plan
        PLANFENCE_ASSERT(shift < index_key_bits);
        const std::uint32_t bit = std::uint32_t{1} << ((keys[i] >> shift) & 15);
        PLANFENCE_ASSERT((node->info & bit) != 0);
        at[i] = node->slots()[std::popcount(node->info & (bit - 1))];
      }
    }
  }

  frame path_[sequence_height_max];
  int depth_ = -1;  // the leaf's frame; -1 at the end
  index_slot index_ = 0;
  const entry_block* resolved_[sequence_fanout] = {};  // the current leaf's entries
};

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
        digest_(other.digest_) {}
  plan& operator=(plan&& other) noexcept {
    if (this != &other) {
      clear();
      gen_ = other.gen_;
      created_unix_ms_ = other.created_unix_ms_;
      bulk_change_ = other.bulk_change_;
      sequence_ = std::exchange(other.sequence_, nullptr);
      index_ = std::exchange(other.index_, 0);
      digest_ = other.digest_;
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

  /// Recomputes the digest from the content and compares (S7). O(size of the plan).
  [[nodiscard]] result<void> verify() const {
    if (compute_digest() != digest_) return fail(errc::digest_mismatch, "plan content does not match its digest");
    return ok();
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
  friend struct plan_structure_access;  // tests/unit/plan_test.cpp: plans with chosen name hashes
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
  }

  generation gen_{};
  std::uint64_t created_unix_ms_ = 0;
  bool bulk_change_ = false;
  const detail::sequence_node* sequence_ = nullptr;  // owned reference
  detail::index_slot index_ = 0;                     // owned reference
  detail::sha256_digest digest_{};
};

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

/// The canonical text form of `p`, digest line included. parse_plan(format_plan(p)) equals p,
/// and format_plan(parse_plan(t)) == t for every canonical text t.
[[nodiscard]] inline std::string format_plan(const plan& p) {
  std::string out;
  detail::write_plan_body(p, [&](std::string_view piece) { out += piece; });
  out += "digest sha256:";
  out += p.digest_hex();
  out += '\n';
  return out;
}

/// Options for parse_plan.
struct parse_plan_options {
  /// Refuse text without a digest line (stored plan history must carry one). A digest that is
  /// present is always checked (S7).
  bool require_digest = true;
};

namespace detail {

struct plan_line_reader {
  std::string_view text;
  std::size_t pos = 0;
  std::uint32_t line_number = 0;

  /// The next line without its newline, or false at the end.
  bool next(std::string_view& line) {
    if (pos >= text.size()) return false;
    const std::size_t end = text.find('\n', pos);
    line = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    ++line_number;
    return true;
  }
};

[[nodiscard]] inline bool parse_decimal(std::string_view digits, std::uint64_t& out) noexcept {
  if (digits.empty() || digits.size() > 20) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc{} && end == digits.data() + digits.size();
}

}  // namespace detail

/// Parses the text form. Every error is errc::parse_error (or the validation code of what was
/// wrong: invalid_name, invalid_ttl, invalid_rdata, invalid_plan, digest_mismatch) with the 1-based
/// line and column where it was found and a sentence saying what was expected. Nothing is
/// returned unless the whole text is valid.
[[nodiscard]] inline result<plan> parse_plan(std::string_view text, parse_plan_options options = {}) {
  using detail::parse_decimal;
  detail::plan_line_reader reader{text};
  std::string_view line;
  auto column_of = [&](std::string_view part) {
    return static_cast<std::uint32_t>(part.data() - line.data() + 1);
  };
  auto error_at = [&](errc code, std::string_view part, std::string detail_text) {
    return fail_at(code, reader.line_number, column_of(part), std::move(detail_text));
  };

  // Reads the next significant line (skipping blank lines and comments).
  auto next_line = [&]() -> bool {
    while (reader.next(line)) {
      if (line.size() > plan_line_length_max) return true;  // reported by the caller
      const std::size_t first = line.find_first_not_of(' ');
      if (first == std::string_view::npos || line[first] == '#') continue;
      return true;
    }
    return false;
  };
  auto split_word = [](std::string_view& rest) {
    const std::size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) {
      rest = rest.substr(rest.size());
      return rest;
    }
    rest.remove_prefix(start);
    const std::size_t end = rest.find(' ');
    const std::string_view word = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    return word;
  };
  auto check_line = [&]() -> result<void> {
    if (line.size() > plan_line_length_max) return error_at(errc::parse_error, line, "line longer than 8192 characters");
    if (auto cr = line.find('\r'); cr != std::string_view::npos) {
      return error_at(errc::parse_error, line.substr(cr), "carriage return: plan text uses \\n line ends");
    }
    if (auto tab = line.find('\t'); tab != std::string_view::npos) {
      return error_at(errc::parse_error, line.substr(tab), "tab: plan text separates fields with spaces");
    }
    return ok();
  };
  auto end_of_input_error = [&](const char* expected) {
    return fail_at(errc::parse_error, reader.line_number + 1, 1, std::string("unexpected end of input: expected ") + expected);
  };

  // Header: three fixed lines and an optional intent line.
  auto header_number = [&](std::string_view keyword, std::uint64_t& out) -> result<void> {
    if (!next_line()) return end_of_input_error(std::string(keyword).c_str());
    if (auto c = check_line(); !c) return c;
    std::string_view rest = line;
    const std::string_view word = split_word(rest);
    if (word != keyword) return error_at(errc::parse_error, word.empty() ? line : word, "expected '" + std::string(keyword) + "'");
    const std::string_view number = split_word(rest);
    if (number.empty()) return error_at(errc::parse_error, rest, "expected a number after '" + std::string(keyword) + "'");
    if (!parse_decimal(number, out)) return error_at(errc::parse_error, number, "expected a decimal number without leading zeros");
    if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after the number");
    return ok();
  };

  std::uint64_t version = 0;
  if (!next_line()) return end_of_input_error("'planfence-plan 1'");
  {
    if (auto c = check_line(); !c) return unexpected_error(c.error());
    std::string_view rest = line;
    const std::string_view word = split_word(rest);
    if (word != "planfence-plan") return error_at(errc::parse_error, word.empty() ? line : word, "expected 'planfence-plan 1' (is this a plan file?)");
    const std::string_view number = split_word(rest);
    if (!parse_decimal(number, version) || version != 1) return error_at(errc::parse_error, number.empty() ? rest : number, "unsupported plan format version: this planfence reads version 1");
    if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after the version");
  }
  std::uint64_t gen = 0;
  std::uint64_t created = 0;
  if (auto r = header_number("generation", gen); !r) return unexpected_error(r.error());
  if (gen == 0 || gen > generation_max.value()) {
    std::string_view rest = line;
    split_word(rest);
    return error_at(errc::parse_error, split_word(rest), "generation must be between 1 and 2^40 - 1");
  }
  if (auto r = header_number("created-unix-ms", created); !r) return unexpected_error(r.error());

  plan_builder builder{generation{gen}, created};
  std::string current_name;
  std::uint32_t current_line = 0;
  std::uint32_t current_column = 0;
  bool current_empty_intent = false;
  bool have_endpoint = false;
  std::vector<record> current_records;
  std::map<std::string, std::uint32_t, std::less<>> seen;  // name -> line of first definition
  std::size_t endpoint_count = 0;
  bool saw_endpoint_or_digest = false;
  bool bulk_seen = false;

  auto finish_endpoint = [&]() -> result<void> {
    if (!have_endpoint) return ok();
    auto set = record_set::make(std::move(current_records), current_empty_intent);
    current_records.clear();
    if (!set) return fail_at(set.error().code, current_line, current_column, set.error().detail + " in endpoint " + current_name);
    auto added = builder.set(current_name, std::move(*set));
    PLANFENCE_ASSERT(added.has_value());  // the name was validated when the line was read
    have_endpoint = false;
    return ok();
  };

  std::string_view digest_hex;
  std::uint32_t digest_line = 0;
  std::uint32_t digest_column = 0;
  while (next_line()) {
    if (auto c = check_line(); !c) return unexpected_error(c.error());
    if (!digest_hex.empty()) return error_at(errc::parse_error, line, "nothing may follow the digest line");
    std::string_view rest = line;
    const bool indented = !line.empty() && line[0] == ' ';
    const std::string_view word = split_word(rest);
    if (!indented && word == "intent") {
      const std::string_view what = split_word(rest);
      if (saw_endpoint_or_digest) return error_at(errc::parse_error, word, "'intent bulk-change' belongs in the header, before the first endpoint");
      if (what != "bulk-change") return error_at(errc::parse_error, what.empty() ? rest : what, "expected 'intent bulk-change'");
      if (bulk_seen) return error_at(errc::parse_error, word, "'intent bulk-change' given twice");
      if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after 'intent bulk-change'");
      bulk_seen = true;
      builder.intend_bulk_change();
      continue;
    }
    if (!indented && word == "endpoint") {
      saw_endpoint_or_digest = true;
      if (auto r = finish_endpoint(); !r) return unexpected_error(r.error());
      const std::string_view name = split_word(rest);
      if (name.empty()) return error_at(errc::parse_error, rest, "expected an endpoint name");
      auto canonical = canonical_name(name);
      if (!canonical) return error_at(errc::invalid_name, name, canonical.error().detail);
      if (name.back() != '.') return error_at(errc::invalid_name, name, "endpoint names must be absolute (end with '.')");
      const std::string_view option = split_word(rest);
      current_empty_intent = false;
      if (!option.empty()) {
        if (option != "intent=empty") return error_at(errc::parse_error, option, "expected 'intent=empty' or the end of the line");
        current_empty_intent = true;
      }
      if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after the endpoint");
      if (auto [it, inserted] = seen.emplace(*canonical, reader.line_number); !inserted) {
        return error_at(errc::invalid_plan, name, "endpoint " + *canonical + " already defined at line " + std::to_string(it->second));
      }
      if (++endpoint_count > plan_endpoints_max) return error_at(errc::invalid_plan, name, "more than 2^24 endpoints");
      current_name = std::move(*canonical);
      current_line = reader.line_number;
      current_column = column_of(name);
      have_endpoint = true;
      continue;
    }
    if (!indented && word == "digest") {
      saw_endpoint_or_digest = true;
      if (auto r = finish_endpoint(); !r) return unexpected_error(r.error());
      const std::string_view value = split_word(rest);
      constexpr std::string_view prefix = "sha256:";
      if (value.substr(0, prefix.size()) != prefix) return error_at(errc::parse_error, value.empty() ? rest : value, "expected 'sha256:' and 64 hex digits");
      const std::string_view hex = value.substr(prefix.size());
      if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
        return error_at(errc::parse_error, hex.empty() ? value : hex, "expected 64 lower-case hex digits");
      }
      if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after the digest");
      digest_hex = hex;
      digest_line = reader.line_number;
      digest_column = column_of(hex);
      continue;
    }
    if (!indented) {
      return error_at(errc::parse_error, word, "expected 'endpoint', 'digest' or an indented record");
    }
    // A record line: TYPE TTL [weight=W] RDATA
    if (!have_endpoint) return error_at(errc::parse_error, word, "record outside an endpoint: put it under an 'endpoint NAME' line");
    if (current_empty_intent) return error_at(errc::invalid_plan, word, "endpoint marked intent=empty has a record");
    const auto type = parse_record_type(word);
    if (!type) return error_at(errc::parse_error, word, "expected a record type: A, AAAA, CNAME or TXT");
    const std::string_view ttl_text = split_word(rest);
    std::uint64_t ttl = 0;
    if (ttl_text.empty()) return error_at(errc::parse_error, rest, "expected a TTL");
    if (!parse_decimal(ttl_text, ttl)) return error_at(errc::invalid_ttl, ttl_text, "expected a TTL in seconds");
    if (ttl > ttl_max) return error_at(errc::invalid_ttl, ttl_text, "TTL above 2147483647 (RFC 2181 section 8)");
    std::optional<std::uint8_t> weight;
    const std::size_t data_start = rest.find_first_not_of(' ');
    if (data_start == std::string_view::npos) return error_at(errc::parse_error, rest, "expected record data");
    rest.remove_prefix(data_start);
    if (rest.substr(0, 7) == "weight=") {
      std::string_view copy = rest;
      const std::string_view weight_word = split_word(copy);
      std::uint64_t w = 0;
      if (!parse_decimal(weight_word.substr(7), w) || w > 255) return error_at(errc::parse_error, weight_word, "expected weight=0..255");
      weight = static_cast<std::uint8_t>(w);
      const std::size_t after = copy.find_first_not_of(' ');
      if (after == std::string_view::npos) return error_at(errc::parse_error, copy, "expected record data after the weight");
      rest = copy.substr(after);
    }
    if (*type != record_type::txt) {
      // One word of data; trailing spaces are ignored as on every other line, and the column of
      // an error is that of the extra text, not of the space before it.
      const std::size_t space = rest.find(' ');
      if (space != std::string_view::npos) {
        const std::size_t extra = rest.find_first_not_of(' ', space);
        if (extra != std::string_view::npos) return error_at(errc::parse_error, rest.substr(extra), "unexpected text after the record data");
        rest = rest.substr(0, space);
      }
    }
    auto made = make_record(*type, ttl, rest, weight);
    if (!made) return error_at(made.error().code, rest, made.error().detail);
    if (current_records.size() >= records_per_set_max) return error_at(errc::invalid_plan, word, "more than 1024 records for one endpoint");
    current_records.push_back(std::move(*made));
  }
  if (auto r = finish_endpoint(); !r) return unexpected_error(r.error());
  if (digest_hex.empty() && options.require_digest) return end_of_input_error("'digest sha256:...'");
  auto built = std::move(builder).build();
  if (!built) return unexpected_error(built.error());
  if (!digest_hex.empty() && built->digest_hex() != digest_hex) {
    return fail_at(errc::digest_mismatch, digest_line, digest_column,
                   "the plan's content hashes to sha256:" + built->digest_hex() + " (S7: refusing a plan that does not match its digest)");
  }
  return built;
}

}  // namespace v1
}  // namespace planfence
