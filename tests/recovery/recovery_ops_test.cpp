// tests/recovery/recovery_ops_test.cpp: the recovery operations (include/planfence/recovery.hpp)
// over a memory store that serves plans straight from a durable history.
//
// What it proves: diff_store reports missing and extra records and agrees only when the store
// serves the plan; apply_plan goes through the fixed enactor's rules (S1: a newer endpoint is left
// alone; S4: an empty endpoint is refused; S2: a smaller fence is refused as a whole); an operator
// fence fences automation out (its commits are refused, however late), fence_floor_authority
// keeps automation out while the hold lasts and lets it back in above the floor after release,
// after which the fixed enactor converges again (S6); the any_store wrapper passes it all through.
#include <catch2/catch.hpp>

#include <planfence/history.hpp>
#include <planfence/planfence.hpp>
#include <planfence/recovery.hpp>
#include <planfence/store/any_store.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "../support/fixtures.hpp"
#include "../support/temporary_directory.hpp"

namespace {

using planfence::errc;
using planfence::fence_token;
using planfence::generation;
using planfence_test::make_plan;
using history_store = planfence::basic_memory_store<planfence::durable_history>;

using planfence_test::temporary_directory;

const std::vector<std::string> names = {"api.example.", "db.example."};

planfence::plan plan_of(std::uint64_t gen) {
  const std::string last = std::to_string(gen);
  // api never changes and db changes every generation, so the S4 zone guard lets each one through.
  return make_plan(gen, {{"api.example.", {"192.0.2.1"}}, {"db.example.", {"198.51.100." + last, "198.51.100.200"}}});
}

/// Commits `records` to `name` over whatever it serves, with `fence` (what a broken writer does).
void force(history_store& store, const std::string& name, std::uint64_t gen, std::uint64_t fence,
           const planfence::record_set& records) {
  const auto h = store.resolve(name).value();
  const auto seen = store.read_stamp(h).value();
  REQUIRE(store.commit(h, seen, {generation{gen}, fence_token{fence}, 0}, records).has_value());
}

}  // namespace

TEST_CASE("diff_store finds missing and extra records, and agrees only on the plan", "[recovery][drift]") {
  temporary_directory dir;
  auto history = planfence::durable_history::open(dir.path).value();
  for (std::uint64_t g = 1; g <= 3; ++g) REQUIRE(history->publish(plan_of(g)).has_value());
  auto store = history_store::make(*history, names).value();
  const auto p3 = history->pin(generation{3}).value();
  const auto p2 = history->pin(generation{2}).value();
  force(store, "api.example.", 3, 1, p3->find("api.example.")->records);
  force(store, "db.example.", 2, 1, p2->find("db.example.")->records);
  auto drift = planfence::diff_store(store, *p3).value();
  CHECK_FALSE(drift.agrees());
  CHECK(drift.endpoints_agreeing == 1);
  REQUIRE(drift.drifted.size() == 1);
  CHECK(drift.drifted[0].name == "db.example.");
  REQUIRE(drift.drifted[0].missing.size() == 1);
  CHECK(drift.drifted[0].missing[0].rdata == "198.51.100.3");
  REQUIRE(drift.drifted[0].extra.size() == 1);
  CHECK(drift.drifted[0].extra[0].rdata == "198.51.100.2");
  CHECK(drift.drifted[0].served_stamp.gen == generation{2});
  force(store, "db.example.", 3, 1, p3->find("db.example.")->records);
  CHECK(planfence::diff_store(store, *p3).value().agrees());
}

TEST_CASE("apply_plan keeps S1, S2 and S4, and repairs an emptied endpoint", "[recovery][apply]") {
  temporary_directory dir;
  auto history = planfence::durable_history::open(dir.path).value();
  for (std::uint64_t g = 1; g <= 4; ++g) REQUIRE(history->publish(plan_of(g)).has_value());
  auto store = history_store::make(*history, names).value();
  const auto p4 = history->pin(generation{4}).value();
  // The 2025 end state: api serves the newest plan, db serves generation 2, which a broken
  // clean-up (one that ignores the live set) deleted: the memory store then serves nothing.
  force(store, "api.example.", 4, 3, p4->find("api.example.")->records);
  force(store, "db.example.", 2, 3, planfence::record_set{});
  REQUIRE(history->collect_one(generation{2}, [] { return std::vector<generation>{}; }).has_value());
  CHECK(store.served(store.resolve("db.example.").value()).value().empty());

  SECTION("S2: a fence below the store's is refused as a whole") {
    auto report = planfence::apply_plan(store, *history, generation{4}, fence_token{2}).value();
    CHECK(report.fenced);
    CHECK_FALSE(report.complete);
    CHECK(store.served(store.resolve("db.example.").value()).value().empty());
  }
  SECTION("S1: an older generation does not overwrite a newer endpoint; the newest repairs db") {
    auto old = planfence::apply_plan(store, *history, generation{3}, fence_token{3}).value();
    REQUIRE(old.endpoints.size() == 2);
    CHECK(old.endpoints[0].outcome == planfence::event_kind::stale);    // api serves 4
    CHECK(old.endpoints[1].outcome == planfence::event_kind::applied);  // db served 2
    auto report = planfence::apply_plan(store, *history, generation{4}, fence_token{3}).value();
    CHECK(report.complete);
    CHECK(planfence::diff_store(store, *p4).value().agrees());
  }
  SECTION("S4: a plan that would empty an endpoint is refused for that endpoint") {
    planfence::plan_builder builder = planfence::plan_builder::based_on(*p4, generation{5}, 1'761'200'000'005);
    REQUIRE(builder.set("db.example.", planfence::record_set{}).has_value());
    REQUIRE(history->publish(std::move(builder).build().value()).has_value());
    auto report = planfence::apply_plan(store, *history, generation{5}, fence_token{3}).value();
    CHECK_FALSE(report.complete);
    REQUIRE(report.endpoints.size() == 2);
    CHECK(report.endpoints[1].outcome == planfence::event_kind::refused_blast_radius);
  }
  SECTION("an unknown generation is an error") {
    auto report = planfence::apply_plan(store, *history, generation{9}, fence_token{3});
    REQUIRE_FALSE(report.has_value());
    CHECK(report.error().code == errc::not_found);
  }
}

TEST_CASE("override fences automation out, and release lets fence_floor_authority back in (S2, S6)", "[recovery][override]") {
  temporary_directory dir;
  auto history = planfence::durable_history::open(dir.path).value();
  REQUIRE(history->publish(plan_of(1)).has_value());
  auto concrete = std::make_unique<history_store>(history_store::make(*history, names).value());
  history_store* raw = concrete.get();
  planfence::any_store store(std::move(concrete), "memory:test");
  CHECK(store.get_if<history_store>() == raw);

  planfence::manual_clock clock;
  planfence::local_lease_authority<planfence::manual_clock> inner{clock};
  auto floor = [&] { return planfence::store_fence_floor(store); };
  planfence::fence_floor_authority automation_authority{inner, floor};
  planfence::enactor automation{store, automation_authority, *history, clock,
                                {.name = "az1", .lease_ttl = std::chrono::milliseconds{1000},
                                 .renew_margin = std::chrono::milliseconds{500}}};
  auto run = [&](int steps) {
    for (int i = 0; i < steps; ++i) {
      (void)automation.step();
      clock.advance(std::chrono::milliseconds{10});
    }
  };
  run(20);
  REQUIRE(automation.applied_generation() == generation{1});
  const fence_token automation_fence = automation.current_lease()->fence;

  // The operator takes over with generation 1's content... as generation 2, published by hand.
  REQUIRE(history->publish(plan_of(2)).has_value());
  const auto operator_fence = planfence::next_operator_fence(planfence::store_fence_floor(store).value()).value();
  CHECK(planfence::is_operator_fence(operator_fence));
  CHECK(operator_fence > automation_fence);
  auto report = planfence::apply_plan(store, *history, generation{2}, operator_fence).value();
  REQUIRE(report.complete);

  // Automation, still believing in its lease, is refused by the store (S2)...
  REQUIRE(history->publish(plan_of(3)).has_value());
  run(50);
  CHECK(automation.applied_generation() == generation{1});
  CHECK(store.read_stamp(store.resolve("db.example.").value()).value().gen == generation{2});
  // ...and cannot get a lease while the hold lasts, even after its own lease expired.
  clock.advance(std::chrono::milliseconds{5000});
  run(50);
  CHECK(automation.counters()[planfence::event_kind::applied] == 2);  // only its first run
  auto held = automation_authority.acquire(std::chrono::milliseconds{1000});
  REQUIRE_FALSE(held.has_value());
  CHECK(held.error().code == errc::lease_held);

  // Release: one raise above the operator fence. Automation acquires above it and converges.
  REQUIRE(store.raise_fence(fence_token{operator_fence.value() + 1}).has_value());
  CHECK_FALSE(planfence::is_operator_fence(planfence::store_fence_floor(store).value()));
  run(100);
  CHECK(automation.applied_generation() == generation{3});
  CHECK(automation.current_lease()->fence > fence_token{operator_fence.value() + 1});
  CHECK(planfence::diff_store(store, *history->pin(generation{3}).value()).value().agrees());
  // The operator's fence is now refused too.
  REQUIRE(history->publish(plan_of(4)).has_value());
  auto late = planfence::apply_plan(store, *history, generation{4}, operator_fence).value();
  CHECK(late.fenced);
}

TEST_CASE("open_store names the scheme it does not know", "[recovery][any_store]") {
  const std::vector<planfence::store_scheme> none;
  auto bad = planfence::open_store("nosuch://x", none);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == errc::not_found);
  auto no_scheme = planfence::open_store("/just/a/path", none);
  REQUIRE_FALSE(no_scheme.has_value());
  CHECK(no_scheme.error().code == errc::parse_error);
}

namespace {

/// A store that lies: commits to `silent` report success and write nothing, and raise_fence
/// fails while `fence_broken` is set. Everything else is the memory store's.
struct lying_store {
  history_store* inner;
  std::string silent;
  bool fence_broken = false;
  [[nodiscard]] planfence::result<planfence::endpoint_handle> resolve(std::string_view name) const { return inner->resolve(name); }
  [[nodiscard]] planfence::result<planfence::stamp> read_stamp(planfence::endpoint_handle h) const { return inner->read_stamp(h); }
  [[nodiscard]] planfence::result<planfence::stamp> commit(planfence::endpoint_handle h, const planfence::stamp& expected,
                                                           const planfence::stamp& desired, const planfence::record_set& r) {
    if (auto lie = inner->resolve(silent); lie && *lie == h) return desired;
    return inner->commit(h, expected, desired, r);
  }
  [[nodiscard]] planfence::result<void> raise_fence(fence_token f) {
    if (fence_broken) return planfence::fail(errc::store_unavailable, "/zones/planfence.floor: No space left on device");
    return inner->raise_fence(f);
  }
  [[nodiscard]] planfence::result<std::vector<generation>> live_generations() const {
    std::vector<generation> out;
    inner->live_generations(out);
    return out;
  }
  [[nodiscard]] planfence::result<std::vector<planfence::record>> served(planfence::endpoint_handle h) const {
    return inner->served(h);
  }
  [[nodiscard]] planfence::result<std::vector<std::string>> endpoint_names() const { return inner->endpoint_names(); }
};
static_assert(planfence::inspectable_store<lying_store>);

}  // namespace

TEST_CASE("apply_plan's verdict is the store read back, not the commits' word", "[recovery][apply]") {
  // What it proves: a commit that reports success but wrote nothing leaves apply_plan incomplete,
  // with that endpoint listed and why; a fence that cannot be raised fails the whole apply before
  // any commit (the store's words in the error). Reporting complete from the enactor's events
  // alone, or raising the fence inside the run only, fails this test.
  temporary_directory dir;
  auto history = planfence::durable_history::open(dir.path).value();
  for (std::uint64_t g = 1; g <= 2; ++g) REQUIRE(history->publish(plan_of(g)).has_value());
  auto inner = history_store::make(*history, names).value();
  lying_store store{&inner, "db.example."};

  auto report = planfence::apply_plan(store, *history, generation{2}, fence_token{3}).value();
  CHECK_FALSE(report.complete);
  REQUIRE(report.unverified.size() == 1);
  CHECK(report.unverified[0].name == "db.example.");
  CHECK(report.unverified[0].why == "never written");
  REQUIRE(report.endpoints.size() == 2);
  CHECK(report.endpoints[1].outcome == planfence::event_kind::applied);  // what the store claimed

  store.silent = "none.example.";
  store.fence_broken = true;
  auto refused = planfence::apply_plan(store, *history, generation{2}, fence_token{4});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message().find("No space left on device") != std::string::npos);
  CHECK(inner.read_stamp(inner.resolve("db.example.").value()).value().gen == planfence::generation_none);

  store.fence_broken = false;
  auto repaired = planfence::apply_plan(store, *history, generation{2}, fence_token{4}).value();
  CHECK(repaired.complete);
  CHECK(repaired.unverified.empty());
}

TEST_CASE("diff_store reports a stamp that names another generation", "[recovery][drift]") {
  // The next apply decides from the stamp (S1): records of generation 3 under a stamp of 1 would
  // be overwritten by an apply of 2. Comparing records only calls this agreement.
  temporary_directory dir;
  auto history = planfence::durable_history::open(dir.path).value();
  for (std::uint64_t g = 1; g <= 3; ++g) REQUIRE(history->publish(plan_of(g)).has_value());
  auto store = history_store::make(*history, names).value();
  const auto p3 = history->pin(generation{3}).value();
  force(store, "api.example.", 3, 1, p3->find("api.example.")->records);
  force(store, "db.example.", 1, 1, p3->find("db.example.")->records);
  auto drift = planfence::diff_store(store, *p3).value();
  CHECK_FALSE(drift.agrees());
  REQUIRE(drift.drifted.size() == 1);
  CHECK(drift.drifted[0].name == "db.example.");
  CHECK(drift.drifted[0].stamp_differs);
  CHECK(drift.drifted[0].served_stamp.gen == generation{1});
  // (A memory store serves the records of the generation its stamp names, so here the records
  // differ too; tests/recovery/ctl_truth_test.cpp edits a zone file's stamp alone.)
}
