// The record store conformance suite: every store planfence ships runs these same cases
// (TEMPLATE_LIST_TEST_CASE over tests/support/store_fixtures.hpp). They pin down the meaning of
// the record_store concept written in docs/concepts.md: a first commit from the empty stamp; a
// stale or fenced commit refused with nothing written; a conflict when the stamp moved; the fence
// floor; the live set; and endpoints independent of each other.
#include <catch2/catch.hpp>

#include "../support/store_fixtures.hpp"

using namespace planfence;
using planfence_test::address_of;

namespace {
const std::vector<std::string> names = {"www.example.test.", "db.example.test.", "api.example.test."};
stamp at(std::uint64_t gen, std::uint64_t fence) { return stamp{generation{gen}, fence_token{fence}, 0}; }
}  // namespace

TEMPLATE_LIST_TEST_CASE("conformance: resolve names the store's endpoints only", "[conformance]",
                        planfence_test::store_fixtures) {
  TestType f{names};
  static_assert(record_store<std::remove_cvref_t<decltype(f.store)>>);
  for (const auto& n : names) CHECK(f.store.resolve(n).has_value());
  CHECK(f.store.resolve("missing.example.test.").error().code == errc::unknown_endpoint);
}

TEMPLATE_LIST_TEST_CASE("conformance: a first commit, then every refusal writes nothing", "[conformance][S1][S2]",
                        planfence_test::store_fixtures) {
  TestType f{names};
  const endpoint_handle www = f.store.resolve("www.example.test.").value();
  const stamp empty = f.store.read_stamp(www).value();
  CHECK(empty.gen == generation_none);
  CHECK(f.served(www).empty());

  auto first = f.store.commit(www, empty, at(10, 1), f.records(generation{10}, "www.example.test."));
  REQUIRE(first);
  CHECK(first->gen == generation{10});
  const stamp after = f.store.read_stamp(www).value();
  CHECK(after.gen == generation{10});
  CHECK(after.fence == fence_token{1});
  CHECK(f.served(www) == std::vector<std::string>{address_of(10)});

  const std::vector<std::string> expected_answer{address_of(10)};
  SECTION("same generation: stale") {
    CHECK(f.store.commit(www, after, at(10, 1), f.records(generation{10}, "www.example.test.")).error().code == errc::stale);
  }
  SECTION("older generation: stale (S1)") {
    CHECK(f.store.commit(www, after, at(9, 1), f.records(generation{9}, "www.example.test.")).error().code == errc::stale);
  }
  SECTION("older generation with a newer fence: still stale (S1)") {
    CHECK(f.store.commit(www, after, at(9, 2), f.records(generation{9}, "www.example.test.")).error().code == errc::stale);
  }
  SECTION("newer generation under a smaller fence: fenced (S2)") {
    REQUIRE(f.store.commit(www, after, at(11, 3), f.records(generation{11}, "www.example.test.")));
    const stamp now = f.store.read_stamp(www).value();
    CHECK(f.store.commit(www, now, at(12, 2), f.records(generation{12}, "www.example.test.")).error().code == errc::fenced);
    CHECK(f.served(www) == std::vector<std::string>{address_of(11)});
    return;
  }
  SECTION("an outdated expected stamp: conflict") {
    CHECK(f.store.commit(www, empty, at(11, 1), f.records(generation{11}, "www.example.test.")).error().code == errc::conflict);
  }
  CHECK(f.store.read_stamp(www).value() == after);
  CHECK(f.served(www) == expected_answer);
}

TEMPLATE_LIST_TEST_CASE("conformance: the fence floor refuses smaller tokens everywhere (S2)", "[conformance][S2]",
                        planfence_test::store_fixtures) {
  TestType f{names};
  REQUIRE(f.store.raise_fence(fence_token{4}));
  const endpoint_handle db = f.store.resolve("db.example.test.").value();
  CHECK(f.store.commit(db, stamp{}, at(1, 3), f.records(generation{1}, "db.example.test.")).error().code == errc::fenced);
  CHECK(f.store.read_stamp(db)->gen == generation_none);
  CHECK(f.store.commit(db, f.store.read_stamp(db).value(), at(1, 4), f.records(generation{1}, "db.example.test.")));
  REQUIRE(f.store.raise_fence(fence_token{2}));  // lowering is a no-op
  const stamp now = f.store.read_stamp(db).value();
  CHECK(f.store.commit(db, now, at(2, 3), f.records(generation{2}, "db.example.test.")).error().code == errc::fenced);
}

TEMPLATE_LIST_TEST_CASE("conformance: endpoints are independent and the live set is exact", "[conformance][S3]",
                        planfence_test::store_fixtures) {
  TestType f{names};
  CHECK(f.store.live_generations().empty());
  const endpoint_handle www = f.store.resolve("www.example.test.").value();
  const endpoint_handle api = f.store.resolve("api.example.test.").value();
  REQUIRE(f.store.commit(www, stamp{}, at(3, 1), f.records(generation{3}, "www.example.test.")));
  REQUIRE(f.store.commit(api, stamp{}, at(5, 1), f.records(generation{5}, "api.example.test.")));
  CHECK(f.store.live_generations() == std::vector<generation>{generation{3}, generation{5}});
  CHECK(f.served(www) == std::vector<std::string>{address_of(3)});
  CHECK(f.served(api) == std::vector<std::string>{address_of(5)});
  CHECK(f.served(f.store.resolve("db.example.test.").value()).empty());
  const stamp www_now = f.store.read_stamp(www).value();
  REQUIRE(f.store.commit(www, www_now, at(5, 1), f.records(generation{5}, "www.example.test.")));
  CHECK(f.store.live_generations() == std::vector<generation>{generation{5}});
}
