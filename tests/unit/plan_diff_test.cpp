// Proves for_each_difference (plan.hpp), the structural diff of two plans:
//  - it reports exactly what a brute-force diff (iterate both plans, find each name in the
//    other, compare records) reports, each name once, with the right entries, over seeded random
//    generations built with based_on (sets with new or equal records, removals of present and
//    absent names, additions), across the root table's width thresholds (none, 16 slots at 128
//    endpoints, 256 at 2,048) and back, between any two versions, in both directions;
//  - the same with chosen name hashes: names colliding on one index key (collision nodes),
//    sharing a key but not the hash, agreeing on all but the deepest key bits, and masked hashes
//    that crowd the table's slots;
//  - equal content reports nothing: a plan against itself, both empty, a based_on successor
//    with no changes, plans built independently (different entry objects, equal records), and
//    a set that re-sets equal records;
//  - it exploits sharing: through a counting hook (detail::index_diff with a Counts that
//    counts), a 100,000-endpoint plan against its based_on successor with 10 changes compares
//    at most 10 record sets and visits a few dozen positions, while the same diff against an
//    independently built copy compares all 100,000; across a retable, shared entries are still
//    compared by pointer;
//  - it is noexcept exactly when the callback is.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <planfence/plan.hpp>

#include "../support/plan_structure_access.hpp"

using namespace planfence;

namespace {

record_set one_a(std::uint64_t variant) {
  std::string address = "192.0.2.";
  address += std::to_string(variant % 256);
  auto r = make_record(record_type::a, 60, address);
  if (!r) FAIL("make_record failed: " << r.error().message());
  auto s = record_set::make({*r});
  if (!s) FAIL("record_set::make failed: " << s.error().message());
  return *s;
}

plan build(plan_builder&& builder) {
  auto p = std::move(builder).build();
  if (!p) FAIL("build failed: " << p.error().message());
  return std::move(*p);
}

std::string name_of(std::size_t i) {
  std::string name = "n";
  name += std::to_string(i);
  name += ".example.";
  return name;
}

/// xorshift64: the tests' only randomness, seeded, so that every run checks the same plans.
struct random_source {
  std::uint64_t state;
  std::uint64_t operator()(std::uint64_t bound) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % bound;
  }
};

struct counting {
  std::size_t visits = 0;
  std::size_t compares = 0;
  void visit() noexcept { ++visits; }
  void compare() noexcept { ++compares; }
};

using difference = std::pair<const endpoint_entry*, const endpoint_entry*>;
using differences = std::map<std::string, difference>;

/// What for_each_difference reports, by name. Fails on a name reported twice, a call with two
/// nullptrs, or two entries of different names. With `counts`, runs the same walk through the
/// detail function with the counting hook.
differences diff(const plan& before, const plan& after, counting* counts = nullptr) {
  differences out;
  auto f = [&](const endpoint_entry* b, const endpoint_entry* a) {
    REQUIRE((b != nullptr || a != nullptr));
    if (b != nullptr && a != nullptr) REQUIRE(b->name == a->name);
    const std::string& name = b != nullptr ? b->name : a->name;
    INFO("reported twice: " << name);
    REQUIRE(out.emplace(name, difference{b, a}).second);
  };
  if (counts != nullptr) {
    detail::index_diff(plan_structure_access::index(before), plan_structure_access::index(after), f, *counts);
  } else {
    for_each_difference(before, after, f);
  }
  return out;
}

/// The obvious diff: every endpoint of each plan looked up in the other.
differences brute_force(const plan& before, const plan& after) {
  differences out;
  for (const endpoint_entry* e : before.endpoints()) {
    const endpoint_entry* other = after.find(e->name, e->name_hash);
    if (other == nullptr || !(other->records == e->records)) out.emplace(e->name, difference{e, other});
  }
  for (const endpoint_entry* e : after.endpoints()) {
    if (before.find(e->name, e->name_hash) == nullptr) out.emplace(e->name, difference{nullptr, e});
  }
  return out;
}

std::string describe(const differences& d) {
  std::string out;
  std::size_t shown = 0;
  for (const auto& [name, entries] : d) {
    if (++shown > 12) {
      out += " ...";
      break;
    }
    out += ' ';
    out += name;
    out += entries.first == nullptr ? "(added)" : entries.second == nullptr ? "(removed)" : "(changed)";
  }
  return out.empty() ? " none" : out;
}

/// for_each_difference of (before, after) and (after, before) against the brute force.
void check_against_brute_force(const plan& before, const plan& after) {
  const differences expected = brute_force(before, after);
  const differences actual = diff(before, after);
  INFO("expected:" << describe(expected));
  INFO("reported:" << describe(actual));
  CHECK(actual == expected);
  const differences reverse = diff(after, before);
  std::size_t mirrored = 0;
  for (const auto& [name, entries] : expected) {
    const auto it = reverse.find(name);
    if (it != reverse.end() && it->second == difference{entries.second, entries.first}) ++mirrored;
  }
  CHECK(reverse.size() == expected.size());
  CHECK(mirrored == expected.size());
}

unsigned table_bits(const plan& p) { return detail::table_bits_of(plan_structure_access::index(p)); }

}  // namespace

TEST_CASE("for_each_difference reports nothing between plans of equal content", "[plan][diff]") {
  const plan empty = build(plan_builder{generation{1}, 0});
  counting counts;
  CHECK(diff(empty, empty, &counts).empty());
  CHECK(diff(empty, build(plan_builder{generation{2}, 0})).empty());
  CHECK(counts.visits == 0);

  for (const std::size_t size : {std::size_t{1}, std::size_t{2}, std::size_t{100}, std::size_t{300}, std::size_t{3000}}) {
    CAPTURE(size);
    plan_builder first{generation{1}, 0};
    plan_builder second{generation{2}, 0};
    for (std::size_t i = 0; i < size; ++i) {
      REQUIRE(first.set(name_of(i), one_a(i)));
      REQUIRE(second.set(name_of(size - 1 - i), one_a(size - 1 - i)));  // another build order
    }
    const plan p = build(std::move(first));
    const plan independent = build(std::move(second));

    counts = {};
    CHECK(diff(p, p, &counts).empty());
    CHECK(counts.visits == 0);
    CHECK(counts.compares == 0);

    const plan unchanged = build(plan_builder::based_on(p, generation{3}, 0));
    counts = {};
    CHECK(diff(p, unchanged, &counts).empty());
    CHECK(counts.visits == 0);

    // Built independently: no entry is shared, every record set is compared, none differs.
    counts = {};
    CHECK(diff(p, independent, &counts).empty());
    CHECK(diff(independent, p).empty());
    CHECK(counts.compares == size);

    // Equal records set again: new entries, nothing to report.
    auto again = plan_builder::based_on(p, generation{4}, 0);
    for (std::size_t i = 0; i < size; i += 7) REQUIRE(again.set(name_of(i), one_a(i)));
    const plan reset = build(std::move(again));
    CHECK_FALSE(reset.shares_entry_with(p, name_of(0)));
    CHECK(diff(p, reset).empty());

    // Against nothing: everything, on the side it is on.
    const differences added = diff(empty, p);
    const differences removed = diff(p, empty);
    CHECK(added.size() == size);
    CHECK(removed.size() == size);
    for (std::size_t i = 0; i < size; ++i) {
      const endpoint_entry* e = p.find(name_of(i));
      CHECK(added.at(name_of(i)) == difference{nullptr, e});
      CHECK(removed.at(name_of(i)) == difference{e, nullptr});
    }
  }
}

// Generations built with based_on, from nothing up across both table thresholds and down again
// (10 -> 5,000 -> 50 -> 0 -> 300), with random churn besides the growth: sets of present names
// to new or to equal records, removals of present and of absent names. Each generation is
// diffed against the one before it, against a random older one, and now and then against an
// independent build of its content.
TEST_CASE("for_each_difference agrees with a brute-force diff over random generations", "[plan][diff]") {
  random_source next{0x9e3779b97f4a7c15ULL};
  constexpr std::size_t universe = 6000;
  struct phase {
    std::size_t target;
    int rounds;
  };
  const std::vector<phase> phases = {{10, 4},  {126, 6}, {129, 4},  {140, 4}, {2046, 6}, {2050, 3}, {5000, 6},
                                     {4990, 6}, {600, 5}, {50, 4}, {120, 4},  {0, 2},    {300, 6}};
  std::deque<plan> versions;
  std::vector<std::uint64_t> variant(universe, 0);  // the records each present name has
  std::vector<bool> present(universe, false);
  std::size_t size = 0;
  versions.push_back(build(plan_builder{generation{1}, 0}));
  std::uint64_t gen = 1;
  std::set<unsigned> widths_seen;
  for (const phase& ph : phases) {
    for (int round = 0; round < ph.rounds; ++round) {
      CAPTURE(ph.target, round, size);
      auto builder = plan_builder::based_on(versions.back(), generation{++gen}, 0);
      const std::size_t step = (ph.target > size ? ph.target - size : size - ph.target) /
                               static_cast<std::size_t>(ph.rounds - round);
      std::size_t changes = 0;
      for (std::size_t i = 0; i < universe && changes < step; ++i) {
        const std::size_t k = (i * 7919 + static_cast<std::size_t>(gen) * 104729) % universe;
        if (ph.target > size && !present[k]) {
          variant[k] = next(4);
          REQUIRE(builder.set(name_of(k), one_a(variant[k])));
          present[k] = true;
          ++size;
          ++changes;
        } else if (ph.target < size && present[k]) {
          REQUIRE(builder.remove(name_of(k)));
          present[k] = false;
          --size;
          ++changes;
        }
      }
      const std::size_t churn = next(12);
      for (std::size_t c = 0; c < churn; ++c) {
        const std::size_t k = next(universe);
        if (!present[k]) {
          REQUIRE(builder.remove(name_of(k)));  // absent: changes nothing
          continue;
        }
        switch (next(3)) {
          case 0:
            REQUIRE(builder.set(name_of(k), one_a(variant[k])));  // equal records, new entry
            break;
          case 1:
            variant[k] = (variant[k] + 1 + next(3)) % 4;
            REQUIRE(builder.set(name_of(k), one_a(variant[k])));
            break;
          default:
            REQUIRE(builder.remove(name_of(k)));
            present[k] = false;
            --size;
        }
      }
      versions.push_back(build(std::move(builder)));
      const plan& now = versions.back();
      REQUIRE(now.size() == size);
      widths_seen.insert(table_bits(now));
      check_against_brute_force(versions[versions.size() - 2], now);
      check_against_brute_force(versions[next(versions.size())], now);
      if (next(4) == 0) {
        plan_builder independent{generation{1}, 0};
        for (const endpoint_entry* e : now.endpoints()) REQUIRE(independent.set(e->name, e->records));
        const plan copy = build(std::move(independent));
        CHECK(diff(now, copy).empty());
        check_against_brute_force(versions[next(versions.size())], copy);
      }
      if (versions.size() > 24) versions.erase(versions.begin() + static_cast<std::ptrdiff_t>(1 + next(20)));
    }
  }
  // The schedule crossed every width it was meant to (none, 16 slots, 256 slots).
  CHECK(widths_seen == std::set<unsigned>{0, 4, 8});
}

// Chosen name hashes (tests/support/plan_structure_access.hpp), as in plan_test.cpp's collision
// test: a name's hash is one of a few tiny values (6 and 7 share an index key: collision nodes;
// 0, 1 and 2 too), a value agreeing with others on all but the top key bits (the deepest
// branches), a masked real hash (many names per table slot, some sharing keys), or its real hash.
// Plans grow past both table thresholds and shrink back; any two versions are diffed, as are
// rebuilt copies holding the same entry objects (compared by pointer: no record comparison) or
// equal copies of them.
TEST_CASE("for_each_difference agrees with a brute-force diff when names collide", "[plan][diff]") {
  random_source next{0x2545f4914f6cdd1dULL};
  const std::uint64_t deep = 0x0fff'ffff'ffff'fff0ULL;
  const std::vector<std::uint64_t> tiny = {6, 7, 7, 6, deep, deep ^ (std::uint64_t{1} << 63), deep ^ (std::uint64_t{1} << 62),
                                           deep ^ (std::uint64_t{1} << 60), 0, 1, 2};
  const auto hash_of = [&](const std::string& name) -> std::uint64_t {
    const std::uint64_t h = endpoint_name_hash(name);
    switch ((h >> 40) % 8) {
      case 0: return tiny[(h >> 8) % tiny.size()];
      case 1:
      case 2: return h & 0x7ff;                                   // 1,024 keys: crowded slots, collisions
      case 3: return (h & 0xf000'0000'0000'00ffULL) | 0x0123'4567'89ab'cd00ULL;  // deep, a few top bits apart
      default: return h;
    }
  };
  constexpr std::size_t universe = 3000;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < universe; ++i) names.push_back(name_of(i));
  std::vector<std::unique_ptr<detail::entry_ref>> owned;
  std::map<std::string, std::uint64_t> variants;  // the records each name was last given
  const auto make_entry = [&](const std::string& name, std::uint64_t variant) {
    endpoint_entry e;
    e.name = name;
    e.name_hash = hash_of(name);
    e.records = one_a(variant);
    owned.push_back(std::make_unique<detail::entry_ref>(new detail::entry_block(std::move(e))));
    variants[name] = variant;
    return owned.back()->get();
  };
  const auto successor = [](const plan& p) { return build(plan_builder::based_on(p, generation{1}, 0)); };
  struct version {
    std::unique_ptr<plan> p;
    std::map<std::string, const detail::entry_block*> holds;
  };
  std::vector<version> versions;
  versions.push_back({std::make_unique<plan>(plan_structure_access::empty()), {}});
  std::set<unsigned> widths_seen;
  const std::vector<std::size_t> targets = {20, 20, 140, 140, 2100, 2100, 2500, 700, 100, 100, 5, 0, 40};
  for (std::size_t round = 0; round < targets.size() * 6; ++round) {
    const std::size_t target = targets[round / 6];
    CAPTURE(round, target);
    std::map<std::string, const detail::entry_block*> holds = versions.back().holds;
    std::map<std::string, const detail::entry_block*> changes;
    const std::size_t growth = target > holds.size() ? (target - holds.size() + 1) / 2 : 0;
    const std::size_t shrink = target < holds.size() ? (holds.size() - target + 1) / 2 : 0;
    for (std::size_t g = 0; g < growth; ++g) {
      const std::string& name = names[next(universe)];
      if (holds.count(name) != 0 || changes.count(name) != 0) continue;
      changes[name] = make_entry(name, next(3));
      holds[name] = changes[name];
    }
    for (std::size_t s = 0; s < shrink && !holds.empty(); ++s) {
      auto it = holds.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(next(holds.size())));
      changes[it->first] = nullptr;
      holds.erase(it);
    }
    const std::size_t churn = 1 + next(round % 5 == 0 ? 40 : 6);
    for (std::size_t c = 0; c < churn; ++c) {
      const std::string& name = names[next(universe)];
      if (next(3) == 0) {
        changes[name] = nullptr;  // present or not
        holds.erase(name);
      } else {
        // Half of the sets of a present name keep its records (a new entry, equal records).
        const bool keep = holds.count(name) != 0 && next(2) == 0;
        const std::uint64_t variant = keep ? variants[name] : next(3);
        changes[name] = make_entry(name, variant);
        holds[name] = changes[name];
      }
    }
    auto p = std::make_unique<plan>(versions.size() == 1 ? plan_structure_access::empty() : successor(*versions.back().p));
    plan_structure_access::apply(*p, changes, hash_of);
    REQUIRE(p->size() == holds.size());
    widths_seen.insert(table_bits(*p));
    versions.push_back({std::move(p), std::move(holds)});
    const plan& now = *versions.back().p;
    check_against_brute_force(*versions[versions.size() - 2].p, now);
    check_against_brute_force(*versions[next(versions.size())].p, now);
    check_against_brute_force(now, *versions[next(versions.size())].p);

    if (round % 4 == 0) {
      // Rebuilt from nothing with the same entry objects: another shape (built at once, not by
      // updates), nothing to report, and no record set compared (the entries are shared).
      std::map<std::string, const detail::entry_block*> same = versions.back().holds;
      plan rebuilt = plan_structure_access::empty();
      plan_structure_access::apply(rebuilt, same, hash_of);
      counting counts;
      CHECK(diff(now, rebuilt, &counts).empty());
      CHECK(diff(rebuilt, now).empty());
      CHECK(counts.compares == 0);
      // And from equal copies of them: every common name compared, none reported.
      std::map<std::string, const detail::entry_block*> copies;
      for (const auto& [name, block] : same) {
        owned.push_back(std::make_unique<detail::entry_ref>(new detail::entry_block(endpoint_entry(block->entry))));
        copies[name] = owned.back()->get();
      }
      plan copied = plan_structure_access::empty();
      plan_structure_access::apply(copied, copies, hash_of);
      counts = {};
      CHECK(diff(now, copied, &counts).empty());
      CHECK(counts.compares == same.size());
      check_against_brute_force(*versions[next(versions.size())].p, copied);
    }
  }
  CHECK(widths_seen == std::set<unsigned>{0, 4, 8});
}

// The point of the diff: a plan built from another with based_on and c changes is diffed in
// about O(c log n), not O(n). At 100,000 endpoints with 10 changes, the counting hook sees at
// most 10 record comparisons (one per set; additions and removals need none) and a few dozen
// positions; the same diff against an independently built copy of the successor, which shares
// nothing, compares every one of the 100,000. Across a retable (2,047 -> 2,049 endpoints: the
// root table goes from 16 slots to 256 and the index is rebuilt) the walk is O(n), but the
// entries are still shared, so only the changed names' records are compared.
TEST_CASE("for_each_difference skips what two plans share", "[plan][diff][sharing]") {
  constexpr std::size_t n = 100'000;
  plan_builder first{generation{1}, 0};
  for (std::size_t i = 0; i < n; ++i) REQUIRE(first.set(name_of(i), one_a(i)));
  const plan base = build(std::move(first));
  REQUIRE(table_bits(base) == 12);

  auto next_builder = plan_builder::based_on(base, generation{2}, 0);
  for (std::size_t i : {11u, 22'222u, 33'333u, 44'444u}) REQUIRE(next_builder.set(name_of(i), one_a(i + 1)));  // changed
  for (std::size_t i : {5u, 77'777u}) REQUIRE(next_builder.set(name_of(i), one_a(i)));  // equal records
  for (std::size_t i : {n, n + 1}) REQUIRE(next_builder.set(name_of(i), one_a(i)));     // added
  for (std::size_t i : {0u, 99'999u}) REQUIRE(next_builder.remove(name_of(i)));          // removed
  const plan successor = build(std::move(next_builder));

  counting counts;
  const differences found = diff(base, successor, &counts);
  CHECK(found == brute_force(base, successor));
  CHECK(found.size() == 8);
  CHECK(counts.compares == 6);  // the four changed and the two re-set with equal records
  INFO("visits: " << counts.visits);
  CHECK(counts.visits <= 10 * 8);
  CHECK(counts.visits >= 10);

  plan_builder independent{generation{2}, 0};
  for (const endpoint_entry* e : successor.endpoints()) REQUIRE(independent.set(e->name, e->records));
  const plan copy = build(std::move(independent));
  counts = {};
  CHECK(diff(successor, copy, &counts).empty());
  CHECK(counts.compares == successor.size());
  counts = {};
  CHECK(diff(base, copy, &counts) == brute_force(base, copy));
  CHECK(counts.compares >= n - 2);

  // Across a retable.
  plan_builder small{generation{1}, 0};
  for (std::size_t i = 0; i < 2047; ++i) REQUIRE(small.set(name_of(i), one_a(i)));
  const plan before = build(std::move(small));
  auto grow = plan_builder::based_on(before, generation{2}, 0);
  REQUIRE(grow.set(name_of(5000), one_a(1)));
  REQUIRE(grow.set(name_of(5001), one_a(1)));
  REQUIRE(grow.set(name_of(7), one_a(8)));
  const plan after = build(std::move(grow));
  REQUIRE(table_bits(before) == 4);
  REQUIRE(table_bits(after) == 8);
  counts = {};
  const differences across = diff(before, after, &counts);
  CHECK(across == brute_force(before, after));
  CHECK(across.size() == 3);
  CHECK(counts.compares == 1);
}

TEST_CASE("for_each_difference is noexcept exactly when its callback is", "[plan][diff]") {
  const plan p = build(plan_builder{generation{1}, 0});
  auto quiet = [](const endpoint_entry*, const endpoint_entry*) noexcept {};
  auto loud = [](const endpoint_entry*, const endpoint_entry*) { throw std::runtime_error("stop"); };
  STATIC_REQUIRE(noexcept(for_each_difference(p, p, quiet)));
  STATIC_REQUIRE_FALSE(noexcept(for_each_difference(p, p, loud)));

  // A callback that throws stops the walk, and the exception reaches the caller.
  plan_builder b{generation{2}, 0};
  REQUIRE(b.set("a.example.", one_a(1)));
  const plan one = build(std::move(b));
  CHECK_THROWS_AS(for_each_difference(p, one, loud), std::runtime_error);
}
