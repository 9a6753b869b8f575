// Proves the fixed enactor's decisions, one guarantee at a time, by driving its step machine by
// hand with a manual clock: it applies the newest plan everywhere; a delayed enactor holding an
// old plan cannot move an endpoint backwards (S1); a writer whose lease was superseded is refused
// by the store even when its own clock says the lease is fine (S2); collection spares what is live
// (S3); the blast-radius guard refuses accidental emptying and large changes unless the plan
// says it means them (S4); an endpoint serving a vanished plan does not wedge it (S6); and a plan
// whose content does not match its digest is never applied (S7).
#include <catch2/catch.hpp>

#include "../support/fixtures.hpp"

namespace planfence {
inline namespace v1 {
/// Test-only access to a plan's internals (declared a friend in plan.hpp): lets the S7 test
/// build a plan whose content no longer matches its digest, as storage corruption would.
struct plan_access {
  static void replace_first_records(plan& p, record_set records) {
    p.replace_records_keeping_digest(0, std::move(records));
  }
};
}  // namespace v1
}  // namespace planfence

using namespace planfence;
using namespace std::chrono_literals;
using planfence_test::a_records;
using planfence_test::count_kind;
using planfence_test::generation_plan;
using planfence_test::make_plan;
using planfence_test::recorded_event;
using planfence_test::recording_sink;

namespace {

const std::vector<std::string> names = {"a.example.", "b.example.", "c.example."};

/// The memory store without its apply marks: these tests script interleavings endpoint by
/// endpoint over every endpoint of a plan, the protocol of a store that is not a
/// change_following_store. The change-following apply is tested in enactor_change_test.cpp.
template <class Store>
struct without_marks {
  Store* store;
  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const { return store->resolve(name); }
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const { return store->read_stamp(h); }
  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired, const record_set& r) {
    return store->commit(h, expected, desired, r);
  }
  [[nodiscard]] result<void> raise_fence(fence_token f) { return store->raise_fence(f); }
  [[nodiscard]] std::vector<generation> live_generations() const { return store->live_generations(); }
};
static_assert(record_store<without_marks<memory_store>> && !change_following_store<without_marks<memory_store>>);

template <class Registry = plan_registry>
struct world {
  manual_clock clock;
  local_lease_authority<manual_clock> authority{clock};
  Registry registry;
  basic_memory_store<Registry> store = basic_memory_store<Registry>::make(registry, names).value();

  without_marks<basic_memory_store<Registry>> plain{&store};

  using enactor_type = enactor<without_marks<basic_memory_store<Registry>>, local_lease_authority<manual_clock>, Registry,
                               manual_clock, recording_sink>;
  // These tests script interleavings endpoint by endpoint ("read a.example., then ..."), so
  // their enactors take one endpoint per batch unless a test asks otherwise; batches of many
  // endpoints are proven in enactor_batch_test.cpp.
  static enactor_config one_by_one(enactor_config config) {
    if (config.batch_max == enactor_config{}.batch_max) config.batch_max = 1;
    return config;
  }
  enactor_type make_enactor(std::vector<recorded_event>& events, enactor_config config = {}) {
    return enactor_type{plain, authority, registry, clock, one_by_one(std::move(config)), recording_sink{&events}};
  }
  enactor_type make_enactor_with_clock(const manual_clock& own, std::vector<recorded_event>& events,
                                       enactor_config config = {}) {
    return enactor_type{plain, authority, registry, own, one_by_one(std::move(config)), recording_sink{&events}};
  }
  generation served(const std::string& name) { return store.read_stamp(store.resolve(name).value())->gen; }
  std::vector<std::string> answer(const std::string& name) {
    std::vector<std::string> out;
    auto snapshot = store.read(store.resolve(name).value());
    for (const record& r : snapshot.records()) out.push_back(r.rdata);
    return out;
  }
};

template <class E>
void run_steps(E& e, int steps) {
  for (int i = 0; i < steps; ++i) static_cast<void>(e.step());
}

}  // namespace

TEST_CASE("an enactor applies the newest plan to every endpoint", "[enactor]") {
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events, {.name = "az1"});
  { auto p = w.registry.publish(generation_plan(1, names)); }
  { auto p = w.registry.publish(generation_plan(2, names)); }
  run_steps(e, 20);
  for (const auto& n : names) CHECK(w.served(n) == generation{2});
  CHECK(w.answer("b.example.") == std::vector<std::string>{"10.0.0.2"});
  CHECK(e.applied_generation() == generation{2});
  CHECK(e.counters()[event_kind::applied] == 3);
  CHECK(e.counters()[event_kind::lease_gained] == 1);
  CHECK(count_kind(events, event_kind::plan_applied) == 1);
  CHECK(e.state() == enactor_state::idle);
}

TEST_CASE("S1: the 2025 interleaving: a delayed enactor's old plan never overwrites a newer one", "[enactor][S1][S2]") {
  // The delayed enactor pinned generation 1 and read a stamp, then stalled; meanwhile another
  // enactor applied generation 2 everywhere. When the delayed one wakes, its commit is refused at
  // commit time (by the fence floor first, and by the generation check were the fence equal).
  world w;
  std::vector<recorded_event> slow_events, fast_events;
  manual_clock frozen;  // the delayed enactor's own view of time does not move
  auto slow = w.make_enactor_with_clock(frozen, slow_events, {.name = "slow", .lease_ttl = 60'000ms, .renew_margin = 1'000ms});
  { auto p = w.registry.publish(generation_plan(1, names)); }
  run_steps(slow, 4);  // acquire, raise fence, pin 1, read a.example.
  REQUIRE(slow.state() == enactor_state::commit);
  REQUIRE(slow.applying_generation() == generation{1});
  w.clock.advance(61'000ms);  // its lease runs out on the authority's clock
  { auto p = w.registry.publish(generation_plan(2, names)); }
  auto fast = w.make_enactor(fast_events, {.name = "fast"});
  run_steps(fast, 12);
  for (const auto& n : names) REQUIRE(w.served(n) == generation{2});
  run_steps(slow, 10);
  for (const auto& n : names) CHECK(w.served(n) == generation{2});
  CHECK(w.answer("a.example.") == std::vector<std::string>{"10.0.0.2"});
  CHECK(slow.counters()[event_kind::applied] == 0);
}

TEST_CASE("S1: a commit that finds a newer generation landed is stale, never a win", "[enactor][S1]") {
  // The enactor has read the stamp of a.example. for generation 2 when generation 3 lands there
  // (another writer of the same holder). Its commit is refused as stale at commit time.
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events);
  { auto p = w.registry.publish(generation_plan(2, names)); }
  run_steps(e, 4);  // acquire, raise fence, pin 2, read a.example.
  REQUIRE(e.state() == enactor_state::commit);
  auto p3 = w.registry.publish(generation_plan(3, names)).value();
  const endpoint_handle a = w.store.resolve("a.example.").value();
  REQUIRE(w.store.commit(a, w.store.read_stamp(a).value(), stamp{generation{3}, fence_token{1}, 0}, p3->find("a.example.")->records));
  run_steps(e, 1);
  CHECK(e.counters()[event_kind::stale] == 1);
  CHECK(e.counters()[event_kind::applied] == 0);
  CHECK(w.served("a.example.") == generation{3});
}

TEST_CASE("a conflict makes the enactor read again and decide again", "[enactor]") {
  // The stamp moves to an older generation between read and commit: the CAS fails on the
  // changed stamp, the enactor re-reads, sees it is still newer, and commits.
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events);
  auto p2 = w.registry.publish(generation_plan(2, names)).value();
  { auto p = w.registry.publish(generation_plan(3, names)); }
  run_steps(e, 4);  // acquire, raise fence, pin 3, read a.example.
  REQUIRE(e.state() == enactor_state::commit);
  const endpoint_handle a = w.store.resolve("a.example.").value();
  REQUIRE(w.store.commit(a, w.store.read_stamp(a).value(), stamp{generation{2}, fence_token{1}, 0}, p2->find("a.example.")->records));
  run_steps(e, 1);
  CHECK(e.counters()[event_kind::conflict] == 1);
  CHECK(e.state() == enactor_state::read_stamp);
  run_steps(e, 2);
  CHECK(e.counters()[event_kind::applied] == 1);
  CHECK(w.served("a.example.") == generation{3});
}

TEST_CASE("S2: a superseded holder learns it was fenced out from the stamps it reads", "[enactor][S2]") {
  world w;
  std::vector<recorded_event> old_events, new_events;
  manual_clock paused;  // the old holder's clock does not move while it is paused
  auto old_holder = w.make_enactor_with_clock(paused, old_events, {.name = "paused", .lease_ttl = 10'000ms, .renew_margin = 1'000ms});
  { auto p = w.registry.publish(generation_plan(1, names)); }
  run_steps(old_holder, 2);  // lease (fence 1), raise fence
  REQUIRE(old_holder.state() == enactor_state::pin_plan);
  // The holder pauses (GC, VM migration) past its lease; a new holder gets fence 2 and applies 1.
  w.clock.advance(11'000ms);
  auto new_holder = w.make_enactor(new_events, {.name = "new"});
  run_steps(new_holder, 12);
  REQUIRE(w.store.fence_floor() == fence_token{2});
  REQUIRE(new_holder.applied_generation() == generation{1});
  { auto p = w.registry.publish(generation_plan(2, names)); }
  // The paused holder resumes believing its lease is fine, pins generation 2 and reads a stamp
  // carrying fence 2: it stops, commits nothing, and knows it lost the lease.
  run_steps(old_holder, 3);
  CHECK(old_holder.counters()[event_kind::applied] == 0);
  CHECK(old_holder.counters()[event_kind::fenced] == 1);
  CHECK(old_holder.counters()[event_kind::lease_lost] == 1);
  CHECK_FALSE(old_holder.current_lease().has_value());
  for (const auto& n : names) CHECK(w.served(n) == generation{1});
}

TEST_CASE("S2: a commit attempt with a superseded fence is refused at the store", "[enactor][S2]") {
  world w;
  std::vector<recorded_event> events;
  manual_clock paused;
  auto old_holder = w.make_enactor_with_clock(paused, events, {.name = "paused", .lease_ttl = 10'000ms, .renew_margin = 1'000ms});
  { auto p = w.registry.publish(generation_plan(1, names)); }
  run_steps(old_holder, 4);  // lease, raise fence, pin 1, read a.example.
  REQUIRE(old_holder.state() == enactor_state::commit);
  w.clock.advance(11'000ms);
  auto newer = w.authority.acquire(10'000ms);
  REQUIRE(newer);
  REQUIRE(w.store.raise_fence(newer->fence));
  run_steps(old_holder, 1);  // the commit step
  CHECK(old_holder.counters()[event_kind::fenced] == 1);
  CHECK(old_holder.counters()[event_kind::applied] == 0);
  CHECK(w.served("a.example.") == generation_none);
}

TEST_CASE("S3: the enactor's collection keeps the live plan", "[enactor][S3]") {
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events, {.name = "az1", .retention = {.keep_newest = 1}});
  { auto p = w.registry.publish(generation_plan(1, names)); }
  run_steps(e, 10);
  // Plan 2 leaves c.example. out, so c keeps serving generation 1 and plan 1 stays live.
  { auto p = w.registry.publish(make_plan(2, {{"a.example.", {"10.0.0.2"}}, {"b.example.", {"10.0.0.2"}}}, true)); }
  run_steps(e, 10);
  REQUIRE(w.served("a.example.") == generation{2});
  REQUIRE(w.served("c.example.") == generation{1});
  CHECK(w.registry.retained() == std::vector<generation>{generation{1}, generation{2}});
  CHECK(count_kind(events, event_kind::protected_from_collection) >= 1);
  CHECK(w.answer("c.example.") == std::vector<std::string>{"10.0.0.1"});
  // Once c moves on, plan 1 is collected by the next run.
  { auto p = w.registry.publish(make_plan(3, {{"a.example.", {"10.0.0.3"}}, {"b.example.", {"10.0.0.3"}}, {"c.example.", {"10.0.0.3"}}}, true)); }
  run_steps(e, 12);
  CHECK(w.registry.retained() == std::vector<generation>{generation{3}});
  CHECK(count_kind(events, event_kind::collected) == 2);
}

TEST_CASE("S4: an accidental empty endpoint is refused, an intended one applied", "[enactor][S4]") {
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events);
  { auto p = w.registry.publish(generation_plan(1, names)); }
  run_steps(e, 10);
  {
    plan_builder b = plan_builder::based_on(*w.registry.pin_latest(), generation{2}, 0);
    REQUIRE(b.set("a.example.", record_set{}));  // empty, not marked
    auto p = w.registry.publish(std::move(b).build().value());
  }
  // One run: pin, read a (refused by the guard), read b, commit b, read c, commit c; then idle.
  run_steps(e, 7);
  CHECK(w.served("a.example.") == generation{1});
  CHECK(w.answer("a.example.") == std::vector<std::string>{"10.0.0.1"});
  CHECK(w.served("b.example.") == generation{2});
  CHECK(e.counters()[event_kind::refused_blast_radius] == 1);
  CHECK(e.state() == enactor_state::idle);  // the run is incomplete: it did not collect
  {
    plan_builder b = plan_builder::based_on(*w.registry.pin_latest(), generation{3}, 0);
    REQUIRE(b.set("a.example.", record_set::make({}, true).value()));
    auto p = w.registry.publish(std::move(b).build().value());
  }
  run_steps(e, 10);
  CHECK(w.served("a.example.") == generation{3});
  CHECK(w.answer("a.example.").empty());
}

TEST_CASE("S4: a plan changing too much of the zone is refused unless marked bulk-change", "[enactor][S4]") {
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events, {.zone_change_share_max = 0.5});
  { auto p = w.registry.publish(generation_plan(1, names)); }
  run_steps(e, 10);
  { auto p = w.registry.publish(generation_plan(2, names)); }  // all three endpoints change
  run_steps(e, 10);
  CHECK(w.served("a.example.") == generation{1});
  CHECK(e.counters()[event_kind::refused_blast_radius] == 1);
  { auto p = w.registry.publish(make_plan(3, {{"a.example.", {"10.0.0.3"}}, {"b.example.", {"10.0.0.3"}}, {"c.example.", {"10.0.0.3"}}}, true)); }
  run_steps(e, 10);
  CHECK(w.served("a.example.") == generation{3});
}

TEST_CASE("S4: removing too large a share of an endpoint's records is refused", "[enactor][S4]") {
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events, {.endpoint_change_share_max = 0.5, .zone_change_share_max = 1.0});
  { auto p = w.registry.publish(make_plan(1, {{"a.example.", {"192.0.2.1", "192.0.2.2", "192.0.2.3"}}})); }
  run_steps(e, 6);
  REQUIRE(w.served("a.example.") == generation{1});
  { auto p = w.registry.publish(make_plan(2, {{"a.example.", {"192.0.2.1"}}})); }  // removes 2 of 3
  run_steps(e, 6);
  CHECK(w.served("a.example.") == generation{1});
  { auto p = w.registry.publish(make_plan(3, {{"a.example.", {"192.0.2.1", "192.0.2.2"}}})); }  // removes 1 of 3
  run_steps(e, 6);
  CHECK(w.served("a.example.") == generation{3});
}

TEST_CASE("S6: an endpoint serving a vanished plan does not wedge the fixed enactor", "[enactor][S6]") {
  // Build the 2025 end state with the broken registry: the live plan was collected.
  world<basic_plan_registry<collection_check::none>> w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events, {.collect = false});
  { auto p = w.registry.publish(generation_plan(1, names)); }
  run_steps(e, 10);
  { auto p = w.registry.publish(generation_plan(2, names)); }
  REQUIRE(w.registry.collect_one(generation{1}, [] { return std::vector<generation>{}; }));
  REQUIRE(w.store.read(w.store.resolve("a.example.").value()).plan_missing());
  // The fixed enactor still makes progress: it overwrites with the newer plan.
  run_steps(e, 10);
  for (const auto& n : names) CHECK(w.served(n) == generation{2});
  CHECK_FALSE(w.store.read(w.store.resolve("a.example.").value()).plan_missing());
}

TEST_CASE("S7: a plan whose content does not match its digest is never applied", "[enactor][S7]") {
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events);
  plan corrupt = generation_plan(1, names);
  plan_access::replace_first_records(corrupt, a_records({"203.0.113.66"}));
  REQUIRE_FALSE(corrupt.verify());
  { auto p = w.registry.publish(std::move(corrupt)); }
  run_steps(e, 10);
  CHECK(w.served("a.example.") == generation_none);
  CHECK(e.counters()[event_kind::plan_invalid] == 1);
  CHECK(e.counters()[event_kind::applied] == 0);
  // A good newer plan is applied: one bad plan does not wedge anything.
  { auto p = w.registry.publish(generation_plan(2, names)); }
  run_steps(e, 10);
  CHECK(w.served("a.example.") == generation{2});
}

TEST_CASE("S7: publish checks the digest once and the enactor's check reuses the answer", "[enactor][S7]") {
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events);
  plan good = generation_plan(1, names);
  CHECK_FALSE(good.verified_before());
  pinned_plan published = w.registry.publish(std::move(good)).value();
  // The check ran on the publishing thread: pinning the plan costs the enactor O(1).
  CHECK(published->verified_before());
  CHECK(published->verify_once());
  published.reset();
  run_steps(e, 10);
  CHECK(w.served("a.example.") == generation{1});
  CHECK(e.counters()[event_kind::plan_invalid] == 0);

  // A plan damaged after its check is checked again: the remembered answer is forgotten.
  plan damaged = generation_plan(2, names);
  REQUIRE(damaged.verify_once());
  CHECK(damaged.verified_before());
  plan_access::replace_first_records(damaged, a_records({"203.0.113.66"}));
  CHECK_FALSE(damaged.verified_before());
  { auto p = w.registry.publish(std::move(damaged)); }
  run_steps(e, 10);
  CHECK(w.served("a.example.") == generation{1});
  CHECK(e.counters()[event_kind::plan_invalid] == 1);
  // The answer moves with the plan (a moved plan keeps it) and stays the same when asked again.
  plan moved_from = generation_plan(3, names);
  REQUIRE(moved_from.verify_once());
  plan moved = std::move(moved_from);
  CHECK(moved.verified_before());
  CHECK(moved.verify_once());
}

TEST_CASE("only one enactor holds the lease, and the other takes over when it lapses", "[enactor][lease]") {
  world w;
  std::vector<recorded_event> a_events, b_events;
  auto a = w.make_enactor(a_events, {.name = "a", .lease_ttl = 1'000ms, .renew_margin = 500ms});
  auto b = w.make_enactor(b_events, {.name = "b", .lease_ttl = 1'000ms, .renew_margin = 500ms});
  { auto p = w.registry.publish(generation_plan(1, names)); }
  run_steps(a, 1);
  run_steps(b, 3);
  CHECK(a.current_lease().has_value());
  CHECK_FALSE(b.current_lease().has_value());
  w.clock.advance(1'500ms);  // a never renewed: lapsed
  run_steps(b, 2);
  REQUIRE(b.current_lease().has_value());
  CHECK(b.current_lease()->fence == fence_token{2});
  run_steps(a, 1);
  CHECK_FALSE(a.current_lease().has_value());
  CHECK(a.counters()[event_kind::lease_lost] == 1);
}

TEST_CASE("a renewing enactor keeps its lease across time", "[enactor][lease]") {
  world w;
  std::vector<recorded_event> events;
  auto e = w.make_enactor(events, {.lease_ttl = 1'000ms, .renew_margin = 600ms});
  run_steps(e, 1);
  REQUIRE(e.current_lease());
  for (int i = 0; i < 20; ++i) {
    w.clock.advance(300ms);
    run_steps(e, 2);
  }
  CHECK(e.current_lease().has_value());
  CHECK(e.current_lease()->fence == fence_token{1});
  CHECK(e.counters()[event_kind::lease_lost] == 0);
}
