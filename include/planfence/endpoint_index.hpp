// planfence/endpoint_index.hpp: a plan's endpoints and the index that finds them by name.
//
// What it is for: the first of the two persistent trees a plan is made of (plan.hpp; the other
// is endpoint_sequence.hpp). It defines `endpoint_entry` (one endpoint: its canonical name, the
// name's hash and its record set), `endpoint_name_hash`, and, in planfence::detail, the
// reference-counted entries (entry_block) and the *index*: a hash array mapped trie keyed by
// the name hash without its lowest bit (index_key), 4 bits per level, whose branch nodes hold a
// 16-bit bitmap and only the children present, and whose root is a flat table for plans of 128
// endpoints and more. The index owns the plan's entries and serves plan::find(), and
// index_diff, the walk of two indexes side by side that serves for_each_difference.
//
// When not to use it: directly, never. Build and read plans through plan.hpp (plan,
// plan_builder, plan::find); the detail:: parts here are the plan's representation and change
// with it. Only plan.hpp and endpoint_sequence.hpp use them.
//
// Guarantees: nodes and entries are immutable once published: reference counts are the only
// thing written after that, and they are atomic (acq_rel on the last release) because plans
// sharing a node are destroyed on any thread (epoch reclamation in the registry). Updating an
// index (update_root) copies only the nodes on the paths to what changed and shares every other
// node and entry with the index it started from (path copying). Lookups never allocate.
//
// Cost: index_find is the root table (n/8 to n/128 slots, at most 2^16) and one to three trie
// levels, one dependent load each, then one hash and one name compare; wait-free. An update of
// c changes to an index of n entries is O(c log n) nodes copied; a root table is copied whole
// by every update (32 KB at 10^5 endpoints), and retable rebuilds the index when the plan's
// size crosses a table-width threshold (O(n), rare: a width is kept until the size warrants
// one step less or two more). Per entry: the entry_block (name, hash, record set, count).
// index_diff enters only the subtrees that are not the same node in both indexes: after c
// changes, O(c log n) nodes and a scan of the root table (if both have one of the same width;
// O(n) otherwise); it never allocates.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "config.hpp"
#include "record.hpp"

namespace planfence {
inline namespace v1 {

/// planfence's bound on endpoints per plan (a regional plan covers hundreds of thousands).
inline constexpr std::size_t plan_endpoints_max = std::size_t{1} << 24;

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
struct endpoint_entry {
  std::string name;
  std::uint64_t name_hash = 0;
  record_set records;
};

namespace detail {

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

// --- the difference of two indexes --------------------------------------------------------------

/// What index_diff reports about its own work. The default counts nothing and compiles to
/// nothing; tests/unit/plan_diff_test.cpp passes one that counts, to prove that subtrees two
/// indexes share are skipped.
struct index_diff_uncounted {
  /// Two positions that are not the same slot were looked at (or one node of a subtree that
  /// only one index has was walked).
  void visit() noexcept {}
  /// Two record sets were compared (two entries of one name that are different objects).
  void compare() noexcept {}
};

/// Walks two indexes side by side, by key prefix, and calls f(before, after) for every name
/// whose entries differ (see plan.hpp, for_each_difference). Never allocates: positions live
/// on the stack, and the recursion is one frame per trie level (at most 16, key bits / 4).
template <class F, class Counts>
class index_differ {
  static constexpr bool nothrow = std::is_nothrow_invocable_v<F&, const endpoint_entry*, const endpoint_entry*>;

 public:
  index_differ(F& f, Counts& counts) noexcept : f_(f), counts_(counts) {}

  void run(index_slot before, index_slot after) noexcept(nothrow) {
    if (before == after) return;
    const unsigned bits = table_bits_of(before);
    if (bits != 0 && bits == table_bits_of(after)) {
      // Two root tables of one width (a plan and its based_on successor, unless the size
      // crossed a width threshold in between): slot by slot, and a slot both share is one
      // compare, eight at a time.
      const index_slot* x = index_node_of(before)->slots();
      const index_slot* y = index_node_of(after)->slots();
      const std::size_t slots = std::size_t{1} << bits;
      static_assert((std::size_t{1} << index_bits) % 8 == 0);
      for (std::size_t i = 0; i < slots; i += 8) {
        index_slot any = 0;
        for (std::size_t k = i; k < i + 8; ++k) any |= x[k] ^ y[k];
        if (any == 0) continue;
        for (std::size_t k = i; k < i + 8; ++k) {
          if (x[k] != y[k]) walk(position{x[k], nullptr}, position{y[k], nullptr}, bits, k);
        }
      }
      return;
    }
    // Otherwise (different widths, or no table on one side) both are walked down from the
    // root, a table standing for the first levels of a trie: correct for any two shapes.
    walk(root_position(before), root_position(after), 0, 0);
  }

 private:
  /// A place in one index where the keys agree with a prefix: a slot (table == nullptr), or,
  /// above a root table's width, the region of that table's slots sharing the prefix.
  struct position {
    index_slot slot = 0;
    const index_node* table = nullptr;
  };
  enum class kind { empty, leaf, branch, region };

  static position root_position(index_slot root) noexcept {
    if (table_bits_of(root) != 0) return {0, index_node_of(root)};
    return {root, nullptr};
  }
  static kind kind_of(position p) noexcept {
    if (p.table != nullptr) return kind::region;
    if (p.slot == 0) return kind::empty;
    if (is_entry(p.slot) || index_node_of(p.slot)->collision()) return kind::leaf;
    return kind::branch;
  }
  /// The 4-bit groups at `shift` under which `p` has something (a bit set per group).
  static std::uint32_t children_of(position p, kind k, unsigned shift) noexcept {
    switch (k) {
      case kind::region: return 0xffff;
      case kind::branch: return index_node_of(p.slot)->info;
      case kind::leaf: return std::uint32_t{1} << ((key_of(p.slot) >> shift) & 15);
      case kind::empty: break;
    }
    return 0;
  }
  /// What `p` (of kind `k`, at `shift`, under `prefix`) has under group `nibble`.
  static position child(position p, kind k, unsigned shift, std::uint64_t prefix, unsigned nibble) noexcept {
    switch (k) {
      case kind::region: {
        if (shift + index_bits < p.table->table_bits()) return p;
        return {p.table->slots()[prefix | (std::uint64_t{nibble} << shift)], nullptr};
      }
      case kind::branch: {
        const index_node* node = index_node_of(p.slot);
        const std::uint32_t bit = std::uint32_t{1} << nibble;
        if ((node->info & bit) == 0) return {};
        return {node->slots()[std::popcount(node->info & (bit - 1))], nullptr};
      }
      case kind::leaf:
        return ((key_of(p.slot) >> shift) & 15) == nibble ? p : position{};
      case kind::empty: break;
    }
    return {};
  }

  /// Both positions hold the keys agreeing with `prefix` on their `shift` lowest bits.
  void walk(position a, position b, unsigned shift, std::uint64_t prefix) noexcept(nothrow) {
    if (a.table == nullptr && b.table == nullptr && a.slot == b.slot) return;  // shared (or both empty)
    if (a.table != nullptr && a.table == b.table) return;                      // one table's region
    counts_.visit();
    const kind ka = kind_of(a);
    const kind kb = kind_of(b);
    if (ka == kind::empty) return all(b, shift, prefix, false);
    if (kb == kind::empty) return all(a, shift, prefix, true);
    if (ka == kind::leaf && kb == kind::leaf) return leaves(a.slot, b.slot);
    if (ka == kind::branch && kb == kind::branch && index_node_of(a.slot)->info == index_node_of(b.slot)->info) {
      // The common case below a change: one node copied on the path to it, the same children
      // present. Children are paired by position, and only those that differ are entered.
      const index_slot* xs = index_node_of(a.slot)->slots();
      const index_slot* ys = index_node_of(b.slot)->slots();
      std::uint32_t groups = index_node_of(a.slot)->info;
      for (std::size_t i = 0; groups != 0; ++i, groups &= groups - 1) {
        if (xs[i] == ys[i]) continue;
        const auto nibble = static_cast<unsigned>(std::countr_zero(groups));
        walk(position{xs[i], nullptr}, position{ys[i], nullptr}, shift + index_bits, prefix | (std::uint64_t{nibble} << shift));
      }
      return;
    }
    // A branch or a table region on one side at least: one level down on both. No branch lies
    // below the key's last group (keys agreeing on every bit are one collision node).
    PLANFENCE_ASSERT(shift < index_key_bits);
    std::uint32_t groups = children_of(a, ka, shift) | children_of(b, kb, shift);
    while (groups != 0) {
      const auto nibble = static_cast<unsigned>(std::countr_zero(groups));
      groups &= groups - 1;
      walk(child(a, ka, shift, prefix, nibble), child(b, kb, shift, prefix, nibble), shift + index_bits,
           prefix | (std::uint64_t{nibble} << shift));
    }
  }

  /// Every entry under `p`, which only one index has (`removed`: the before one).
  void all(position p, unsigned shift, std::uint64_t prefix, bool removed) noexcept(nothrow) {
    if (p.table == nullptr) return all(p.slot, removed);
    const unsigned bits = p.table->table_bits();
    for (std::uint64_t j = 0; j < (std::uint64_t{1} << (bits - shift)); ++j) {
      all(p.table->slots()[prefix | (j << shift)], removed);
    }
  }
  void all(index_slot slot, bool removed) noexcept(nothrow) {
    if (slot == 0) return;
    if (is_entry(slot)) return one_sided(index_entry(slot), removed);
    counts_.visit();
    const index_node* node = index_node_of(slot);
    for (std::size_t i = 0; i < node->count(); ++i) all(node->slots()[i], removed);
  }
  void one_sided(const entry_block* block, bool removed) noexcept(nothrow) {
    if (removed) {
      f_(&block->entry, static_cast<const endpoint_entry*>(nullptr));
    } else {
      f_(static_cast<const endpoint_entry*>(nullptr), &block->entry);
    }
  }

  /// Two leaves (an entry or a collision node each, both sorted by name): merged by name. Of
  /// keys that differ no name is in both, so each entry is then reported on its own side.
  void leaves(index_slot a, index_slot b) noexcept(nothrow) {
    if (is_entry(a) && is_entry(b)) {
      // Two entries (nearly every leaf): of different hashes they are different names, told
      // apart without reading either name.
      const entry_block* x = index_entry(a);
      const entry_block* y = index_entry(b);
      if (x->entry.name_hash != y->entry.name_hash || x->entry.name != y->entry.name) {
        one_sided(x, true);
        one_sided(y, false);
        return;
      }
      counts_.compare();
      if (!(x->entry.records == y->entry.records)) f_(&x->entry, &y->entry);
      return;
    }
    const std::span<const index_slot> xs = is_entry(a) ? std::span<const index_slot>(&a, 1)
                                                       : std::span<const index_slot>(index_node_of(a)->slots(), index_node_of(a)->count());
    const std::span<const index_slot> ys = is_entry(b) ? std::span<const index_slot>(&b, 1)
                                                       : std::span<const index_slot>(index_node_of(b)->slots(), index_node_of(b)->count());
    std::size_t i = 0;
    std::size_t j = 0;
    while (i < xs.size() || j < ys.size()) {
      if (j == ys.size()) {
        one_sided(index_entry(xs[i++]), true);
        continue;
      }
      if (i == xs.size()) {
        one_sided(index_entry(ys[j++]), false);
        continue;
      }
      const entry_block* x = index_entry(xs[i]);
      const entry_block* y = index_entry(ys[j]);
      if (x == y) {
        ++i;
        ++j;
        continue;
      }
      const int order = x->entry.name.compare(y->entry.name);
      if (order < 0) {
        one_sided(x, true);
        ++i;
      } else if (order > 0) {
        one_sided(y, false);
        ++j;
      } else {
        counts_.compare();
        if (!(x->entry.records == y->entry.records)) f_(&x->entry, &y->entry);
        ++i;
        ++j;
      }
    }
  }

  F& f_;
  Counts& counts_;
};

/// Calls f(before_entry, after_entry) for every name whose entries differ between the indexes
/// `before` and `after` (plan.hpp, for_each_difference, says what and at what cost); `counts`
/// hears of the work done (index_diff_uncounted: nothing). Never allocates.
template <class F, class Counts = index_diff_uncounted>
void index_diff(index_slot before, index_slot after, F& f, Counts& counts) noexcept(
    std::is_nothrow_invocable_v<F&, const endpoint_entry*, const endpoint_entry*>) {
  index_differ<F, Counts>(f, counts).run(before, after);
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
