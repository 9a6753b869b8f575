// Proves the plan registry's contract: publish refuses equivocation (S5) and is idempotent for
// identical content; pins and lookups see exactly what was published; collection keeps what S3
// protects (pinned, live, newest) and the retention policy; collected memory is freed, and never
// while a reader can still see it. The broken collection variants are built here too, and the
// same checks are shown to catch them.
#include <catch2/catch.hpp>

#include <memory>

#include "../support/fixtures.hpp"

using namespace planfence;
using planfence_test::generation_plan;
using planfence_test::make_plan;

namespace {
const std::vector<std::string> two = {"a.example.", "b.example."};
auto no_live = [] { return std::vector<generation>{}; };
}  // namespace

TEST_CASE("publish, latest, pin and find see what was published", "[registry]") {
  plan_registry registry;
  CHECK(registry.latest() == generation_none);
  CHECK_FALSE(registry.pin_latest());
  CHECK(registry.pin(generation{1}).error().code == errc::not_found);

  auto p1 = registry.publish(generation_plan(1, two));
  REQUIRE(p1);
  CHECK((*p1)->gen() == generation{1});
  auto p3 = registry.publish(generation_plan(3, two));
  REQUIRE(p3);
  // Out-of-order publication is allowed; latest stays the newest.
  auto p2 = registry.publish(generation_plan(2, two));
  REQUIRE(p2);
  CHECK(registry.latest() == generation{3});
  CHECK(registry.pin_latest()->gen() == generation{3});
  CHECK(registry.retained() == std::vector<generation>{generation{1}, generation{2}, generation{3}});

  auto guard = detail::epoch_domain::pin();
  const plan* found = registry.find(generation{2}, guard);
  REQUIRE(found != nullptr);
  CHECK(found->digest() == (*p2)->digest());
  CHECK(registry.find(generation{4}, guard) == nullptr);
}

TEST_CASE("retains says whether a generation found earlier is still linked", "[registry]") {
  // A registry of 4 slots, so that generation 5 takes generation 1's slot once 1 is collected:
  // retains(1) must then be false, though the slot links a node again (possibly at the freed
  // node's address, plan_node_spares).
  plan_registry registry{4};
  auto p1 = registry.publish(generation_plan(1, two));
  auto p2 = registry.publish(generation_plan(2, two));
  auto p3 = registry.publish(generation_plan(3, two));
  REQUIRE((p1 && p2 && p3));
  {
    auto guard = detail::epoch_domain::pin();
    CHECK(registry.retains(generation{1}, guard));
    CHECK(registry.retains(generation{2}, guard));
    CHECK_FALSE(registry.retains(generation{4}, guard));  // an empty slot
    CHECK_FALSE(registry.retains(generation{5}, guard));  // generation 1's slot, another generation
  }
  p1->reset();
  const collection_report report = registry.collect(retention_policy{.keep_newest = 2}, 0, no_live);
  REQUIRE(report.collected == std::vector<generation>{generation{1}});
  {
    auto guard = detail::epoch_domain::pin();
    CHECK_FALSE(registry.retains(generation{1}, guard));  // collected: its slot is empty
    CHECK(registry.retains(generation{2}, guard));
  }
  detail::epoch_domain::global().reclaim();
  REQUIRE(registry.publish(generation_plan(5, two)));  // into generation 1's slot
  auto guard = detail::epoch_domain::pin();
  CHECK(registry.retains(generation{5}, guard));
  CHECK_FALSE(registry.retains(generation{1}, guard));  // the slot links generation 5, not 1
  CHECK(registry.find(generation{1}, guard) == nullptr);
}

TEST_CASE("S5: a used generation refuses different content and accepts the same again", "[registry][S5]") {
  plan_registry registry;
  auto first = registry.publish(make_plan(5, {{"a.example.", {"192.0.2.1"}}}));
  REQUIRE(first);
  auto same = registry.publish(make_plan(5, {{"a.example.", {"192.0.2.1"}}}));
  REQUIRE(same);
  CHECK(same->get() == first->get());  // the existing plan, not a copy
  auto other = registry.publish(make_plan(5, {{"a.example.", {"192.0.2.2"}}}));
  REQUIRE_FALSE(other);
  CHECK(other.error().code == errc::equivocation);
  CHECK(registry.pin_latest()->find("a.example.")->records.records()[0].rdata == "192.0.2.1");
}

TEST_CASE("a generation that was collected can never be published again", "[registry][S5]") {
  plan_registry registry;
  { auto p = registry.publish(generation_plan(1, two)); }
  { auto p = registry.publish(generation_plan(2, two)); }
  REQUIRE(registry.collect_one(generation{1}, no_live));
  auto again = registry.publish(generation_plan(1, two));
  REQUIRE_FALSE(again);
  CHECK(again.error().code == errc::collected);
}

TEST_CASE("a full slot table refuses to publish until old plans are collected", "[registry]") {
  plan_registry registry{4};
  for (std::uint64_t g = 1; g <= 4; ++g) { auto p = registry.publish(generation_plan(g, two)); REQUIRE(p); }
  auto fifth = registry.publish(generation_plan(5, two));  // slot of generation 1
  REQUIRE_FALSE(fifth);
  CHECK(fifth.error().code == errc::registry_full);
  auto report = registry.collect({.keep_newest = 2}, 0, no_live);
  CHECK(report.collected == std::vector<generation>{generation{1}, generation{2}});
  CHECK(registry.publish(generation_plan(5, two)));
}

TEST_CASE("S3: collection keeps pinned, live and newest plans, and the policy's", "[registry][S3]") {
  plan_registry registry;
  for (std::uint64_t g = 1; g <= 6; ++g) { auto p = registry.publish(generation_plan(g, two)); }
  auto pinned = registry.pin(generation{2});
  REQUIRE(pinned);
  auto live = [] { return std::vector<generation>{generation{3}}; };
  auto report = registry.collect({.keep_newest = 2}, 0, live);
  CHECK(report.collected == std::vector<generation>{generation{1}, generation{4}});
  CHECK(report.protected_pinned == std::vector<generation>{generation{2}});
  CHECK(report.protected_live == std::vector<generation>{generation{3}});
  CHECK(report.kept_by_policy == 2);
  CHECK(registry.retained() == std::vector<generation>{generation{2}, generation{3}, generation{5}, generation{6}});
  // A protected plan can still be pinned afterwards (the closing was undone).
  CHECK(registry.pin(generation{3}));
  CHECK(registry.pin(generation{2}));
  // The newest is never collected, even when asked directly.
  auto newest = registry.collect_one(generation{6}, no_live);
  REQUIRE_FALSE(newest);
  CHECK(newest.error().code == errc::protected_plan);
  // Once unpinned, 2 can go.
  pinned->reset();
  CHECK(registry.collect_one(generation{2}, no_live));
}

TEST_CASE("S3: a live set given by filling the registry's buffer protects the same plans", "[registry][S3]") {
  // The filling form (fills_live_set) must mean exactly what the returning form means, in any
  // order and with repeats, and the buffer must arrive empty however the last call left it.
  plan_registry registry;
  for (std::uint64_t g = 1; g <= 6; ++g) { auto p = registry.publish(generation_plan(g, two)); }
  std::size_t calls = 0;
  auto live = [&](std::vector<generation>& out) {
    CHECK(out.empty());
    ++calls;
    out.push_back(generation{4});
    out.push_back(generation{2});
    out.push_back(generation{4});
  };
  static_assert(fills_live_set<decltype(live)>);
  static_assert(!fills_live_set<decltype(no_live)>);
  auto report = registry.collect({.keep_newest = 1}, 0, live);
  CHECK(calls == 1);  // once per collect, however many candidates
  CHECK(report.collected == std::vector<generation>{generation{1}, generation{3}, generation{5}});
  CHECK(report.protected_live == std::vector<generation>{generation{2}, generation{4}});
  CHECK(report.kept_by_policy == 1);
  CHECK(registry.collect_one(generation{2}, live).error().code == errc::protected_plan);
  CHECK(calls == 2);
  CHECK(registry.collect_one(generation{2}, [](std::vector<generation>& out) { out.push_back(generation{4}); }));
  CHECK(registry.retained() == std::vector<generation>{generation{4}, generation{6}});
}

TEST_CASE("S3: a live set that cannot be read collects nothing and reopens every candidate", "[registry][S3]") {
  // A remote store that cannot read its endpoints must not be trusted with a guess (a stale set
  // may lack a plan that became live since): both forms of `live` can say so, and then nothing
  // is collected, the report says why, and the closed candidates take pins again.
  plan_registry registry;
  for (std::uint64_t g = 1; g <= 4; ++g) { auto p = registry.publish(generation_plan(g, two)); }
  std::size_t calls = 0;
  auto unreadable = [&]() -> result<std::vector<generation>> {
    ++calls;
    return fail(errc::store_unavailable, "server down");
  };
  auto unreadable_filling = [&](std::vector<generation>& out) -> result<void> {
    ++calls;
    out.push_back(generation{1});  // a partial set must not count either
    return fail(errc::store_unavailable, "server down");
  };
  SECTION("the returning form") {
    auto report = registry.collect({.keep_newest = 1}, 0, unreadable);
    CHECK(calls == 1);
    REQUIRE(report.live_unavailable.has_value());
    CHECK(report.live_unavailable->code == errc::store_unavailable);
    CHECK(report.live_unavailable->detail == "server down");
    CHECK(report.collected.empty());
    CHECK(registry.collect_one(generation{1}, unreadable).error().code == errc::store_unavailable);
  }
  SECTION("the filling form") {
    auto report = registry.collect({.keep_newest = 1}, 0, unreadable_filling);
    CHECK(calls == 1);
    REQUIRE(report.live_unavailable.has_value());
    CHECK(report.live_unavailable->code == errc::store_unavailable);
    CHECK(report.live_unavailable->detail == "server down");
    CHECK(report.collected.empty());
    CHECK(registry.collect_one(generation{2}, unreadable_filling).error().code == errc::store_unavailable);
  }
  CHECK(registry.retained() == std::vector<generation>{generation{1}, generation{2}, generation{3}, generation{4}});
  for (std::uint64_t g = 1; g <= 3; ++g) CHECK(registry.pin(generation{g}));  // reopened
  // Once the set can be read, collection proceeds as usual.
  auto report = registry.collect({.keep_newest = 1}, 0, [] { return result<std::vector<generation>>(std::vector<generation>{}); });
  CHECK_FALSE(report.live_unavailable.has_value());
  CHECK(report.collected == std::vector<generation>{generation{1}, generation{2}, generation{3}});
}

TEST_CASE("the age rule keeps young plans", "[registry]") {
  plan_registry registry;
  for (std::uint64_t g = 1; g <= 4; ++g) { auto p = registry.publish(generation_plan(g, two)); }
  // Plans are created at 1761200000000 + gen (fixtures.hpp): ages 9, 8, 7 and 6 ms.
  const std::uint64_t now = 1'761'200'000'000 + 10;
  auto report = registry.collect({.keep_newest = 1, .keep_younger_than = std::chrono::milliseconds{9}}, now, no_live);
  CHECK(report.collected == std::vector<generation>{generation{1}});
  CHECK(report.kept_by_policy == 3);
}

TEMPLATE_TEST_CASE_SIG("the S3 checks catch the broken collection variants", "[registry][S3][broken]",
                       ((collection_check Check), Check), collection_check::full, collection_check::ignore_live,
                       collection_check::ignore_pins, collection_check::none) {
  basic_plan_registry<Check> registry;
  for (std::uint64_t g = 1; g <= 4; ++g) { auto p = registry.publish(generation_plan(g, two)); }
  auto pinned = registry.pin(generation{1});
  REQUIRE(pinned);
  auto live = [] { return std::vector<generation>{generation{2}}; };
  auto report = registry.collect({.keep_newest = 1}, 0, live);
  const auto collected = [&](std::uint64_t g) {
    return std::find(report.collected.begin(), report.collected.end(), generation{g}) != report.collected.end();
  };
  const bool pinned_collected = collected(1);
  const bool live_collected = collected(2);
  CHECK(collected(3));
  if constexpr (Check == collection_check::full) {
    CHECK_FALSE(pinned_collected);
    CHECK_FALSE(live_collected);
  } else if constexpr (Check == collection_check::ignore_live) {
    CHECK_FALSE(pinned_collected);
    CHECK(live_collected);  // the S3 violation this variant exists to show
  } else if constexpr (Check == collection_check::ignore_pins) {
    CHECK(pinned_collected);  // the S3 violation this variant exists to show
    CHECK_FALSE(live_collected);
    // The pin holder still reads valid memory: the last unpin retires the plan.
    CHECK(pinned->get()->gen() == generation{1});
  } else {
    CHECK(pinned_collected);
    CHECK(live_collected);
  }
}

TEST_CASE("collected plans are freed, and never while a reader can see them", "[registry][reclamation]") {
  planfence_test::reclaim_all();
  plan_registry registry;
  // Entries are counted process-wide (detail::entry_block::alive): plan 1's single entry is
  // the one that disappears when plan 1 is freed.
  const auto entries_alive = [] { return detail::entry_block::alive.load(); };
  const std::int64_t alive_before = entries_alive();
  {
    auto p = registry.publish(make_plan(1, {{"only-in-1.example.", {"192.0.2.1"}}}));
    REQUIRE(p);
  }
  { auto p = registry.publish(make_plan(2, {{"other.example.", {"192.0.2.2"}}})); }
  REQUIRE(entries_alive() == alive_before + 2);

  const std::size_t backlog_before = registry.backlog();
  {
    auto reader = detail::epoch_domain::pin();
    const plan* seen = registry.find(generation{1}, reader);
    REQUIRE(seen != nullptr);
    REQUIRE(registry.collect_one(generation{1}, no_live));
    // Unlinked: new lookups miss it ...
    {
      auto other = detail::epoch_domain::pin();
      CHECK(registry.find(generation{1}, other) == nullptr);
    }
    // ... but the reader inside its guard still holds valid memory, whatever reclaim does.
    detail::epoch_domain::global().reclaim();
    detail::epoch_domain::global().reclaim();
    CHECK(entries_alive() == alive_before + 2);
    CHECK(seen->gen() == generation{1});
    CHECK(seen->find("only-in-1.example.")->records.records()[0].rdata == "192.0.2.1");
    CHECK(registry.backlog() >= backlog_before + 1);
  }
  planfence_test::reclaim_all();
  CHECK(entries_alive() == alive_before + 1);  // plan 2's entry remains
  CHECK(registry.backlog() == 0);
}

TEST_CASE("destroying the registry frees every retained plan", "[registry][reclamation]") {
  planfence_test::reclaim_all();
  const std::int64_t alive_before = detail::entry_block::alive.load();
  {
    plan_registry registry;
    auto p = registry.publish(make_plan(1, {{"x.example.", {"192.0.2.1"}}}));
    CHECK(detail::entry_block::alive.load() == alive_before + 1);
  }
  planfence_test::reclaim_all();
  CHECK(detail::entry_block::alive.load() == alive_before);
}

TEST_CASE("successive generations share unchanged endpoints", "[registry][plan]") {
  plan_registry registry;
  auto first = registry.publish(make_plan(1, {{"a.example.", {"192.0.2.1"}}, {"b.example.", {"192.0.2.2"}}}));
  auto builder = plan_builder::based_on(**first, generation{2}, 0);
  REQUIRE(builder.set("b.example.", planfence_test::a_records({"192.0.2.3"})));
  auto second = registry.publish(std::move(builder).build().value());
  REQUIRE(second);
  CHECK((*second)->find("a.example.") == (*first)->find("a.example."));
  CHECK((*second)->find("b.example.") != (*first)->find("b.example."));
}
