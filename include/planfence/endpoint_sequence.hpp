// planfence/endpoint_sequence.hpp: a plan's endpoints in name order, and the iterator over them.
//
// What it is for: the second of the two persistent trees a plan is made of (plan.hpp; the first,
// the index, is endpoint_index.hpp). The *sequence* is a B-tree-like tree of one 64-bit word per
// endpoint in name order (leaves of up to sequence_fanout words, inner nodes of up to
// sequence_fanout children, every leaf at the same depth, each node knowing how many endpoints
// lie below it). It gives iteration in name order (detail::endpoint_iterator, what
// plan::endpoints() returns), the canonical text and so the digest, and access by position. A
// word names an endpoint by its hash (index_key << 1, low bit 0) whenever no other name of the
// plan has the same index key, and by a pointer to its entry (low bit 1) otherwise, so that the
// word alone finds the entry in the plan's index; a change of records alone changes no word.
//
// When not to use it: directly, never. Iterate a plan with plan::endpoints() (plan.hpp); the
// detail:: parts here are the plan's representation and change with it. Only plan.hpp uses
// them (and the enactor keeps a detail::endpoint_iterator as its position in a pinned plan).
//
// Guarantees: nodes are immutable once published (atomic reference counts, as the index's);
// apply_sequence copies only the nodes on the paths to what changed and shares the others; a
// tree left deeper than its size needs by more than sequence_height_slack levels is rebuilt, so
// the iterator's fixed stack (sequence_height_max) always holds it. Iterating never allocates.
//
// Cost: 8 bytes per endpoint in leaves plus about a seventh of that in inner nodes (about 28
// bytes of structure per endpoint with the index, bench/scale_bench.cpp). Iteration costs about
// an index lookup per endpoint: a leaf's lookups are interleaved, so that their cache misses
// overlap. Position access is an O(log n) descent. An update of c changes is O(c log n) nodes.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <new>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "endpoint_index.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

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
}  // namespace v1
}  // namespace planfence
