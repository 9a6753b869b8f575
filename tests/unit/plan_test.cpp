// Proves the plan value and its builder (plan.hpp):
//  - based_on shares every unchanged endpoint with the earlier plan (the same endpoint_entry
//    object, checked by pointer) and gives set or removed endpoints new entries, leaving the
//    earlier plan untouched;
//  - endpoints come out sorted by name, find() locates each by name and by precomputed hash and
//    misses what is absent or not canonical;
//  - the digest changes with every change of content (generation, time, intent, names, records,
//    TTLs, weights) and not with spelling or build order; verify() recomputes it and catches
//    content that was altered behind the plan's back (S7);
//  - generations outside 1 .. 2^40 - 1 are refused.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <set>
#include <string>
#include <vector>

#include <planfence/plan.hpp>
#include <planfence/plan_text.hpp>

#include "../support/plan_structure_access.hpp"

using namespace planfence;

namespace {

record make(record_type type, std::string_view rdata, std::uint32_t ttl = 60,
            std::optional<std::uint8_t> weight = std::nullopt) {
  auto r = make_record(type, ttl, rdata, weight);
  if (!r) FAIL("make_record failed: " << r.error().message());
  return *r;
}

record_set set_of(std::vector<record> records, bool intended_empty = false) {
  auto s = record_set::make(std::move(records), intended_empty);
  if (!s) FAIL("record_set::make failed: " << s.error().message());
  return *s;
}

record_set one_a(std::string_view address) { return set_of({make(record_type::a, address)}); }

plan build(plan_builder&& builder) {
  auto p = std::move(builder).build();
  if (!p) FAIL("build failed: " << p.error().message());
  return std::move(*p);
}

// A plan of three endpoints, a/b/c.example., at generation `gen`.
plan three(std::uint64_t gen = 1) {
  plan_builder builder{generation{gen}, 1000};
  REQUIRE(builder.set("c.example.", one_a("192.0.2.3")));
  REQUIRE(builder.set("a.example.", one_a("192.0.2.1")));
  REQUIRE(builder.set("b.example.", one_a("192.0.2.2")));
  return build(std::move(builder));
}

std::vector<std::string> names_of(const plan& p) {
  std::vector<std::string> names;
  for (const auto& e : p.endpoints()) names.push_back(e->name);
  return names;
}

}  // namespace

TEST_CASE("a built plan has sorted endpoints and its header fields", "[plan]") {
  plan_builder builder{generation{9}, 1761200000000};
  REQUIRE(builder.set("zulu.example", one_a("192.0.2.26")));
  REQUIRE(builder.set("Alpha.Example.", one_a("192.0.2.1")));
  REQUIRE(builder.set("_svc.example.", set_of({make(record_type::txt, R"("x")")})));
  REQUIRE(builder.set("mike.example.", set_of({}, true)));
  plan p = build(std::move(builder));
  CHECK(p.gen() == generation{9});
  CHECK(p.created_unix_ms() == 1761200000000u);
  CHECK_FALSE(p.bulk_change_intended());
  CHECK(p.size() == 4);
  CHECK(names_of(p) == std::vector<std::string>{"_svc.example.", "alpha.example.", "mike.example.", "zulu.example."});
  for (const auto& e : p.endpoints()) CHECK(e->name_hash == endpoint_name_hash(e->name));
  CHECK(p.verify());

  plan_builder bulk{generation{10}, 0};
  bulk.intend_bulk_change();
  CHECK(build(std::move(bulk)).bulk_change_intended());
}

TEST_CASE("generations outside 1 .. 2^40 - 1 are refused", "[plan]") {
  for (std::uint64_t bad : {std::uint64_t{0}, generation_max.value() + 1, ~std::uint64_t{0}}) {
    CAPTURE(bad);
    plan_builder builder{generation{bad}, 0};
    REQUIRE(builder.set("a.example.", one_a("192.0.2.1")));
    auto refused = std::move(builder).build();
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::invalid_plan);
  }
  for (std::uint64_t good : {std::uint64_t{1}, generation_max.value()}) {
    CAPTURE(good);
    auto built = plan_builder{generation{good}, 0}.build();
    REQUIRE(built);
    CHECK(built->gen() == generation{good});
    CHECK(built->size() == 0);
  }
}

TEST_CASE("the builder refuses bad names and lets the last set win", "[plan]") {
  plan_builder builder{generation{1}, 0};
  auto bad_set = builder.set("a..example.", one_a("192.0.2.1"));
  REQUIRE_FALSE(bad_set);
  CHECK(bad_set.error().code == errc::invalid_name);
  auto bad_remove = builder.remove("bad name.");
  REQUIRE_FALSE(bad_remove);
  CHECK(bad_remove.error().code == errc::invalid_name);

  // Two spellings of one name are one endpoint; the later set replaces the earlier.
  REQUIRE(builder.set("WWW.example", one_a("192.0.2.1")));
  REQUIRE(builder.set("www.example.", one_a("192.0.2.2")));
  // Removing a name the plan never had changes nothing.
  REQUIRE(builder.remove("never.example."));
  plan p = build(std::move(builder));
  REQUIRE(p.size() == 1);
  CHECK(p.endpoints()[0]->records == one_a("192.0.2.2"));

  // remove then set: set wins; set then remove: remove wins.
  plan_builder order{generation{2}, 0};
  REQUIRE(order.remove("x.example."));
  REQUIRE(order.set("x.example.", one_a("192.0.2.9")));
  REQUIRE(order.set("y.example.", one_a("192.0.2.9")));
  REQUIRE(order.remove("Y.EXAMPLE"));
  CHECK(names_of(build(std::move(order))) == std::vector<std::string>{"x.example."});
}

TEST_CASE("based_on shares unchanged endpoints and replaces changed ones", "[plan]") {
  const plan p1 = three(1);
  const auto a1 = p1.endpoints()[0];
  const auto b1 = p1.endpoints()[1];
  const auto c1 = p1.endpoints()[2];
  REQUIRE(a1->name == "a.example.");

  auto builder = plan_builder::based_on(p1, generation{2}, 2000);
  REQUIRE(builder.set("b.example.", one_a("198.51.100.2")));  // changed
  REQUIRE(builder.remove("C.example"));                        // removed
  REQUIRE(builder.set("d.example.", one_a("192.0.2.4")));     // added after the base
  REQUIRE(builder.set("0.example.", one_a("192.0.2.0")));     // added before the base
  const plan p2 = build(std::move(builder));

  CHECK(names_of(p2) == std::vector<std::string>{"0.example.", "a.example.", "b.example.", "d.example."});
  // Unchanged: the very same entry object, not a copy.
  CHECK(p2.endpoints()[1]== a1);
  CHECK(p2.find("a.example.") == a1);
  // Changed: a new entry with the new records.
  CHECK(p2.endpoints()[2]!= b1);
  CHECK(p2.endpoints()[2]->records == one_a("198.51.100.2"));
  CHECK(p2.find("c.example.") == nullptr);
  CHECK(p2.gen() == generation{2});
  CHECK(p2.created_unix_ms() == 2000u);

  // The earlier plan is untouched: same entries, same content, same digest.
  CHECK(names_of(p1) == std::vector<std::string>{"a.example.", "b.example.", "c.example."});
  CHECK(p1.endpoints()[1]== b1);
  CHECK(p1.endpoints()[1]->records == one_a("192.0.2.2"));
  CHECK(p1.endpoints()[2]== c1);
  CHECK(p1.verify());
  CHECK(p2.verify());

  // A chain of generations with no changes shares everything.
  const plan p3 = build(plan_builder::based_on(p2, generation{3}, 3000));
  REQUIRE(p3.size() == p2.size());
  for (std::size_t i = 0; i < p3.size(); ++i) CHECK(p3.endpoints()[i] == p2.endpoints()[i]);
  CHECK(p3.find("a.example.") == a1);
  // p1, p2 and p3 hold one shared entry object, not three copies.
  CHECK(p3.shares_entry_with(p1, "a.example."));
  // Only the header differs, and the digest names the content, header included.
  CHECK(p3.digest() != p2.digest());

  // Re-setting an endpoint to identical content is a change of object, not of content.
  auto same_again = plan_builder::based_on(p3, generation{4}, 3000);
  REQUIRE(same_again.set("a.example.", one_a("192.0.2.1")));
  const plan p4 = build(std::move(same_again));
  CHECK(p4.find("a.example.") != a1);
  CHECK(p4.find("a.example.")->records == a1->records);
}

TEST_CASE("based_on an empty plan, and removing everything", "[plan]") {
  const plan empty = build(plan_builder{generation{1}, 0});
  CHECK(empty.size() == 0);
  CHECK(empty.find("a.example.") == nullptr);
  auto grow = plan_builder::based_on(empty, generation{2}, 0);
  REQUIRE(grow.set("a.example.", one_a("192.0.2.1")));
  const plan one = build(std::move(grow));
  CHECK(one.size() == 1);

  const plan p = three();
  auto shrink = plan_builder::based_on(p, generation{2}, 0);
  for (const auto& e : p.endpoints()) REQUIRE(shrink.remove(e->name));
  const plan none = build(std::move(shrink));
  CHECK(none.size() == 0);
  CHECK(none.find("a.example.") == nullptr);
  CHECK(format_plan(none) == "planfence-plan 1\ngeneration 2\ncreated-unix-ms 0\ndigest sha256:" + none.digest_hex() + "\n");
}

TEST_CASE("find() by name and by precomputed hash", "[plan]") {
  plan_builder builder{generation{1}, 0};
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) {
    names.push_back("host-" + std::to_string(i) + ".example.");
    REQUIRE(builder.set(names.back(), one_a("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256))));
  }
  const plan p = build(std::move(builder));
  REQUIRE(p.size() == 1000);
  CHECK(std::is_sorted(p.endpoints().begin(), p.endpoints().end(),
                       [](const auto& x, const auto& y) { return x->name < y->name; }));
  for (int i = 0; i < 1000; ++i) {
    const std::string& name = names[static_cast<std::size_t>(i)];
    const endpoint_entry* by_name = p.find(name);
    const endpoint_entry* by_hash = p.find(name, endpoint_name_hash(name));
    if (by_name == nullptr || by_hash != by_name || by_name->name != name ||
        by_name->records != one_a("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256))) {
      FAIL("find(" << name << ") is wrong");
    }
  }
  // Absent, or not in canonical form: not found (callers canonicalise first).
  CHECK(p.find("host-1000.example.") == nullptr);
  CHECK(p.find("HOST-1.example.") == nullptr);
  CHECK(p.find("host-1.example") == nullptr);
  CHECK(p.find("") == nullptr);
  // A wrong hash misses even for a present name: the hash must be the name's.
  CHECK(p.find("host-1.example.", endpoint_name_hash("host-2.example.")) == nullptr);
}

TEST_CASE("endpoint_name_hash is 64-bit FNV-1a", "[plan]") {
  // Published FNV-1a 64 test vectors.
  CHECK(endpoint_name_hash("") == 0xcbf29ce484222325ULL);
  CHECK(endpoint_name_hash("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(endpoint_name_hash("foobar") == 0x85944171f73967e8ULL);
  static_assert(endpoint_name_hash("a") == 0xaf63dc4c8601ec8cULL);
}

TEST_CASE("the digest changes with content, never with spelling", "[plan]") {
  const auto digest_of = [](const std::function<void(plan_builder&)>& fill, std::uint64_t gen = 5,
                            std::uint64_t created = 100) {
    plan_builder builder{generation{gen}, created};
    fill(builder);
    return build(std::move(builder)).digest();
  };
  const auto base_fill = [](plan_builder& b) {
    REQUIRE(b.set("www.example.", set_of({make(record_type::a, "192.0.2.1", 60, 1),
                                          make(record_type::aaaa, "2001:db8::1")})));
    REQUIRE(b.set("db.example.", set_of({make(record_type::txt, R"("k=v")")})));
  };
  const auto base = digest_of(base_fill);

  SECTION("spelling and order do not matter") {
    CHECK(digest_of([](plan_builder& b) {
            REQUIRE(b.set("DB.Example", set_of({make(record_type::txt, R"("\107=\118")")})));
            REQUIRE(b.set("WWW.EXAMPLE.", set_of({make(record_type::aaaa, "2001:0DB8:0:0:0:0:0:0001"),
                                                  make(record_type::a, "192.0.2.1", 60, 1)})));
          }) == base);
    // Built from an earlier plan rather than from scratch: same content, same digest.
    plan_builder first{generation{4}, 100};
    base_fill(first);
    REQUIRE(first.set("extra.example.", one_a("192.0.2.9")));
    const plan earlier = build(std::move(first));
    auto next = plan_builder::based_on(earlier, generation{5}, 100);
    REQUIRE(next.remove("extra.example."));
    CHECK(build(std::move(next)).digest() == base);
  }

  SECTION("every change of content changes it") {
    std::vector<detail::sha256_digest> digests = {base};
    digests.push_back(digest_of(base_fill, 6));        // generation
    digests.push_back(digest_of(base_fill, 5, 101));  // creation time
    digests.push_back(digest_of([&](plan_builder& b) {  // bulk-change intent
      base_fill(b);
      b.intend_bulk_change();
    }));
    digests.push_back(digest_of([](plan_builder& b) {  // endpoint name
      REQUIRE(b.set("www2.example.", set_of({make(record_type::a, "192.0.2.1", 60, 1),
                                             make(record_type::aaaa, "2001:db8::1")})));
      REQUIRE(b.set("db.example.", set_of({make(record_type::txt, R"("k=v")")})));
    }));
    digests.push_back(digest_of([&](plan_builder& b) {  // an added endpoint, even an empty one
      base_fill(b);
      REQUIRE(b.set("new.example.", set_of({})));
    }));
    digests.push_back(digest_of([&](plan_builder& b) {  // ... and intent=empty differs from empty
      base_fill(b);
      REQUIRE(b.set("new.example.", set_of({}, true)));
    }));
    digests.push_back(digest_of([&](plan_builder& b) {  // a removed endpoint
      base_fill(b);
      REQUIRE(b.remove("db.example."));
    }));
    const auto with_www = [&](std::vector<record> www) {
      return digest_of([&](plan_builder& b) {
        base_fill(b);
        REQUIRE(b.set("www.example.", set_of(std::move(www))));
      });
    };
    digests.push_back(with_www({make(record_type::a, "192.0.2.1", 61, 1), make(record_type::aaaa, "2001:db8::1")}));  // TTL
    digests.push_back(with_www({make(record_type::a, "192.0.2.1", 60, 2), make(record_type::aaaa, "2001:db8::1")}));  // weight
    digests.push_back(with_www({make(record_type::a, "192.0.2.1", 60), make(record_type::aaaa, "2001:db8::1")}));     // unweighted
    digests.push_back(with_www({make(record_type::a, "192.0.2.1", 60, 0), make(record_type::aaaa, "2001:db8::1")}));  // weight 0
    digests.push_back(with_www({make(record_type::a, "192.0.2.2", 60, 1), make(record_type::aaaa, "2001:db8::1")}));  // address
    digests.push_back(with_www({make(record_type::a, "192.0.2.1", 60, 1)}));  // a record fewer
    digests.push_back(digest_of([&](plan_builder& b) {  // TXT content
      base_fill(b);
      REQUIRE(b.set("db.example.", set_of({make(record_type::txt, R"("k=w")")})));
    }));
    digests.push_back(digest_of([&](plan_builder& b) {  // TXT split into two strings
      base_fill(b);
      REQUIRE(b.set("db.example.", set_of({make(record_type::txt, R"("k" "=v")")})));
    }));
    const std::set<detail::sha256_digest> distinct(digests.begin(), digests.end());
    CHECK(distinct.size() == digests.size());
  }
}

TEST_CASE("verify() recomputes the digest and catches altered content (S7)", "[plan]") {
  plan p = three();
  REQUIRE(p.verify());
  const std::string before = p.digest_hex();
  // Plans are immutable through their interface; simulate memory corruption or a bug that
  // writes through a shared entry. The entry object itself is not const (the builder created it
  // with new), so this write is well-defined.
  auto& entry = const_cast<endpoint_entry&>(*p.endpoints()[1]);
  entry.records = one_a("203.0.113.66");
  // verify_once (the enactor's check) answers from the check before the damage: it is made once
  // per plan, at publish (docs/design.md, S7). verify() recomputes, and its answer is remembered.
  CHECK(p.verify_once());
  auto refused = p.verify();
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::digest_mismatch);
  CHECK_FALSE(p.verify_once());
  CHECK(p.digest_hex() == before);  // the stored digest did not follow the content
  // And the text form of such a plan does not parse: the digest line no longer matches.
  auto reparsed = parse_plan(format_plan(p));
  REQUIRE_FALSE(reparsed);
  CHECK(reparsed.error().code == errc::digest_mismatch);

  entry.records = one_a("192.0.2.2");  // restored
  CHECK(p.verify());
}

TEST_CASE("a moved plan keeps its content and lookups", "[plan]") {
  plan original = three();
  const auto digest = original.digest();
  const endpoint_entry* b = original.find("b.example.");
  REQUIRE(b != nullptr);
  plan moved = std::move(original);
  CHECK(moved.find("b.example.") == b);
  CHECK(moved.digest() == digest);
  CHECK(moved.verify());
  plan assigned = three(2);
  assigned = std::move(moved);
  CHECK(assigned.find("b.example.") == b);
  CHECK(assigned.gen() == generation{1});
}

// Proves that path copying gives the same plan as building from scratch: a chain of
// generations, each based on the one before with random sets (new and existing names) and
// removals, is compared after every step with a plan built by a fresh builder from the same
// content: the same endpoints in the same order (iterated and by position), find() agreeing for
// every name ever used, and byte-identical text and digest. Sizes cross the sequence's fanout
// several times (growing and shrinking), so leaves and inner nodes split, empty and collapse.
TEST_CASE("path-copied generations equal plain rebuilds under random churn", "[plan][sharing]") {
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&](std::uint64_t bound) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % bound;
  };
  std::map<std::string, std::string> content;  // name -> address
  plan current = build(plan_builder{generation{1}, 0});
  std::vector<std::string> universe;
  for (int i = 0; i < 600; ++i) universe.push_back("n" + std::to_string(i * 7919 % 1000) + ".example.");
  for (std::uint64_t gen = 2; gen <= 60; ++gen) {
    CAPTURE(gen);
    auto builder = plan_builder::based_on(current, generation{gen}, gen);
    // Phases: grow, churn, shrink almost to nothing, grow again.
    const std::uint64_t phase = (gen / 15) % 4;
    const std::size_t changes = 1 + next(gen % 7 == 0 ? 300 : 40);
    for (std::size_t k = 0; k < changes; ++k) {
      const std::string& name = universe[next(universe.size())];
      const bool removing = phase == 2 ? next(10) < 9 : phase == 1 ? next(2) == 0 : next(10) == 0;
      if (removing) {
        REQUIRE(builder.remove(name));
        content.erase(name);
      } else {
        const std::string address = "10.0." + std::to_string(next(256)) + "." + std::to_string(next(256));
        REQUIRE(builder.set(name, one_a(address)));
        content[name] = address;
      }
    }
    plan next_plan = build(std::move(builder));
    plan_builder fresh{generation{gen}, gen};
    for (const auto& [name, address] : content) REQUIRE(fresh.set(name, one_a(address)));
    const plan rebuilt = build(std::move(fresh));

    REQUIRE(next_plan.size() == content.size());
    REQUIRE(next_plan.size() == rebuilt.size());
    CHECK(next_plan.digest() == rebuilt.digest());
    CHECK(format_plan(next_plan) == format_plan(rebuilt));
    std::size_t i = 0;
    auto expected = content.begin();
    for (const endpoint_entry* e : next_plan.endpoints()) {
      REQUIRE(expected != content.end());
      CHECK(e->name == expected->first);
      CHECK(e->records == one_a(expected->second));
      CHECK(next_plan.endpoints()[i] == e);
      ++expected;
      ++i;
    }
    CHECK(i == content.size());
    for (const std::string& name : universe) {
      const endpoint_entry* found = next_plan.find(name);
      const auto it = content.find(name);
      if (it == content.end()) {
        CHECK(found == nullptr);
      } else {
        REQUIRE(found != nullptr);
        CHECK(found->records == one_a(it->second));
        CHECK(found == next_plan.find(name, endpoint_name_hash(name)));
      }
    }
    CHECK(next_plan.verify());
    current = std::move(next_plan);
  }
}

// Proves that a generation costs its changes, not its size: based on a plan of 2,000
// endpoints, a generation that changes 20 creates exactly 20 entries (counted process-wide by
// detail::entry_block::alive) and shares the other 1,980 entry objects with its base, which
// stays as it was; freeing the base frees only the 20 entries the new plan replaced.
TEST_CASE("a generation shares every unchanged entry with its base", "[plan][sharing]") {
  const auto alive = [] { return detail::entry_block::alive.load(); };
  const std::int64_t before = alive();
  std::vector<std::string> names;
  plan_builder first{generation{1}, 0};
  for (int i = 0; i < 2000; ++i) {
    names.push_back("host-" + std::to_string(i) + ".example.");
    REQUIRE(first.set(names.back(), one_a("10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256))));
  }
  std::optional<plan> base = build(std::move(first));
  CHECK(alive() == before + 2000);
  const std::string base_text = format_plan(*base);

  auto builder = plan_builder::based_on(*base, generation{2}, 0);
  for (int i = 0; i < 2000; i += 100) REQUIRE(builder.set(names[static_cast<std::size_t>(i)], one_a("192.0.2.1")));
  const plan second = build(std::move(builder));
  CHECK(alive() == before + 2020);
  for (int i = 0; i < 2000; ++i) {
    const std::string& name = names[static_cast<std::size_t>(i)];
    CHECK(second.shares_entry_with(*base, name) == (i % 100 != 0));
  }
  CHECK(format_plan(*base) == base_text);
  base.reset();
  CHECK(alive() == before + 2000);
  CHECK(second.verify());
  CHECK(second.find(names[100])->records == one_a("192.0.2.1"));
  CHECK(second.find(names[101])->records == one_a("10.1.0.101"));
}

// Proves the index (a hash array mapped trie) and the sequence's words where real names cannot
// reach: entries are given chosen hashes from a tiny space, so that names share whole index
// keys (collisions, resolved by name; the sequence then names them by pointer) or share a key
// but not the hash (the lowest bit), or agree on all but the top bits (the deepest branches).
// Random sets and removals are applied generation after generation; every version is checked
// against a map of what it must hold (iteration order, entries, find by name and hash, absent
// names), and every earlier version is checked again at the end: path copying left it intact.
TEST_CASE("plans keep colliding and deep hashes apart", "[plan][sharing]") {
  std::uint64_t state = 0x2545f4914f6cdd1dULL;
  auto next = [&](std::uint64_t bound) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state % bound;
  };
  const std::uint64_t deep = 0x0fff'ffff'ffff'fff0ULL;
  const std::vector<std::uint64_t> hashes = {6, 7, 7, 6, deep, deep ^ (std::uint64_t{1} << 63), deep ^ (std::uint64_t{1} << 62), 0, 1, 2};
  std::vector<std::string> universe;
  for (int i = 0; i < 40; ++i) universe.push_back("k" + std::to_string(i) + ".");
  const auto hash_of = [&](const std::string& name) { return hashes[std::hash<std::string>{}(name) % hashes.size()]; };
  std::vector<std::unique_ptr<detail::entry_ref>> owned;
  struct version {
    std::unique_ptr<plan> p;
    std::map<std::string, const detail::entry_block*> holds;
  };
  std::vector<version> versions;
  versions.push_back({std::make_unique<plan>(plan_structure_access::empty()), {}});
  for (int gen = 1; gen <= 120; ++gen) {
    CAPTURE(gen);
    std::map<std::string, const detail::entry_block*> changes;
    std::map<std::string, const detail::entry_block*> holds = versions.back().holds;
    const std::size_t count = 1 + next(gen % 10 == 0 ? 30 : 4);
    for (std::size_t k = 0; k < count; ++k) {
      const std::string& name = universe[next(universe.size())];
      if (next(3) == 0) {
        changes[name] = nullptr;
        holds.erase(name);
      } else {
        endpoint_entry e;
        e.name = name;
        e.name_hash = hash_of(name);
        e.records = one_a("192.0.2." + std::to_string(next(256)));
        owned.push_back(std::make_unique<detail::entry_ref>(new detail::entry_block(std::move(e))));
        changes[name] = owned.back()->get();
        holds[name] = owned.back()->get();
      }
    }
    auto p = std::make_unique<plan>(plan_structure_access::empty());
    if (!versions.back().holds.empty() || versions.size() > 1) {
      // Start from the previous version's structure, as based_on does.
      auto builder = plan_builder::based_on(*versions.back().p, generation{1}, 0);
      *p = std::move(builder).build().value();
    }
    plan_structure_access::apply(*p, changes, hash_of);
    versions.push_back({std::move(p), std::move(holds)});
  }
  for (const version& v : versions) {
    REQUIRE(v.p->size() == v.holds.size());
    auto expected = v.holds.begin();
    std::size_t i = 0;
    for (const endpoint_entry* e : v.p->endpoints()) {
      REQUIRE(expected != v.holds.end());
      CHECK(e == &expected->second->entry);
      CHECK(v.p->endpoints()[i] == e);
      ++expected;
      ++i;
    }
    CHECK(expected == v.holds.end());
    for (const std::string& name : universe) {
      const auto it = v.holds.find(name);
      const endpoint_entry* found = v.p->find(name, hash_of(name));
      CHECK(found == (it == v.holds.end() ? nullptr : &it->second->entry));
      CHECK(v.p->find(name, hash_of(name) ^ 1) == nullptr);  // same key, other hash
      CHECK(v.p->find(name, hash_of(name) ^ 8) == nullptr);
    }
  }
}

// Proves that the index's root table follows the plan's size: a plan grown generation by
// generation from 0 to 6,000 endpoints and shrunk back to 10 crosses the table widths (none,
// 16 slots at 128 endpoints, 256 at 2,048), and every generation finds every endpoint it holds
// and none it does not, and hashes to the digest of the same content built from scratch.
TEST_CASE("the index's root table is rebuilt as a plan grows and shrinks", "[plan][sharing]") {
  std::vector<std::string> names;
  for (int i = 0; i < 6000; ++i) names.push_back("grow-" + std::to_string(i) + ".example.");
  plan current = build(plan_builder{generation{1}, 0});
  std::size_t held = 0;
  std::uint64_t gen = 1;
  const std::vector<std::size_t> sizes = {100, 200, 1500, 2500, 6000, 3000, 1000, 100, 10};
  for (const std::size_t target : sizes) {
    CAPTURE(target);
    auto builder = plan_builder::based_on(current, generation{++gen}, 0);
    for (std::size_t i = held; i < target; ++i) REQUIRE(builder.set(names[i], one_a("192.0.2.7")));
    for (std::size_t i = target; i < held; ++i) REQUIRE(builder.remove(names[i]));
    current = build(std::move(builder));
    held = target;
    REQUIRE(current.size() == held);
    plan_builder fresh{generation{gen}, 0};
    for (std::size_t i = 0; i < held; ++i) REQUIRE(fresh.set(names[i], one_a("192.0.2.7")));
    CHECK(build(std::move(fresh)).digest() == current.digest());
    std::size_t found = 0;
    for (std::size_t i = 0; i < names.size(); ++i) found += current.find(names[i]) != nullptr ? 1 : 0;
    CHECK(found == held);
    for (std::size_t i = 0; i < held; ++i) {
      if (current.find(names[i]) == nullptr) FAIL("missing " << names[i]);
    }
  }
}
