// The enactor applying plans in batches (enactor_config::batch_max): one read_stamps and one
// commit_batch per batch, each endpoint still decided on its own. Proves that a batch mixing
// fresh, stale, conflicting and fenced endpoints gives each its own outcome (S1, S2), that the
// endpoint guard stays per endpoint (S4), that a store failing in the middle of a batch leaves the
// enactor converging afterwards, and that a plan larger than a batch takes one batch after another.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>

#include <planfence/store/any_store.hpp>

#include "../support/fixtures.hpp"

using namespace planfence;
using namespace std::chrono_literals;
using planfence_test::endpoint_names;
using planfence_test::generation_plan;
using planfence_test::recorded_event;
using planfence_test::recording_sink;

namespace {

/// A memory store whose batches can be made to fail after some items (as a remote store whose
/// connection drops after some of its transactions), and which counts its batch calls.
struct flaky_batch_store {
  memory_store* inner;
  std::size_t fail_after = SIZE_MAX;  ///< items committed before the next batch fails
  /// An endpoint the store cannot take (as an endpoint too large for any DNS message): a batch
  /// holding it fails whole with capacity_exceeded, a commit of it alone too.
  std::optional<endpoint_handle> poison{};
  std::size_t batch_calls = 0;
  std::size_t read_calls = 0;

  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const { return inner->resolve(name); }
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const { return inner->read_stamp(h); }
  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& e, const stamp& d, const record_set& r) {
    if (poison == h) return fail(errc::capacity_exceeded, "too large for one message");
    return inner->commit(h, e, d, r);
  }
  [[nodiscard]] result<void> raise_fence(fence_token f) { return inner->raise_fence(f); }
  [[nodiscard]] std::vector<generation> live_generations() const { return inner->live_generations(); }
  [[nodiscard]] result<void> read_stamps(std::span<const endpoint_handle> h, std::span<stamp> out) const {
    ++const_cast<flaky_batch_store*>(this)->read_calls;
    return inner->read_stamps(h, out);
  }
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items) {
    ++batch_calls;
    for (const commit_item& item : items) {
      if (poison == item.endpoint) return fail(errc::capacity_exceeded, "an endpoint too large for one message");
    }
    if (fail_after >= items.size()) return inner->commit_batch(items);
    auto done = inner->commit_batch(items.first(fail_after));
    REQUIRE(done);
    fail_after = SIZE_MAX;  // fails once
    return fail(errc::store_unavailable, "connection reset after " + std::to_string(items.size()) + " items sent");
  }
};
static_assert(batched_store<flaky_batch_store>);

struct batch_world {
  explicit batch_world(std::size_t n) : names(endpoint_names(n)), store(memory_store::make(registry, names).value()) {}
  manual_clock clock;
  local_lease_authority<manual_clock> authority{clock};
  plan_registry registry;
  std::vector<std::string> names;
  memory_store store;
  flaky_batch_store flaky{&store};

  using enactor_type = enactor<flaky_batch_store, local_lease_authority<manual_clock>, plan_registry, manual_clock,
                               recording_sink>;
  enactor_type make(std::vector<recorded_event>& events, enactor_config config) {
    return enactor_type{flaky, authority, registry, clock, std::move(config), recording_sink{&events}};
  }
  generation served(std::size_t i) const { return store.read_stamp(store.resolve(names[i]).value())->gen; }
  endpoint_handle handle(std::size_t i) const { return store.resolve(names[i]).value(); }
  /// Another writer moves endpoint i to generation `gen` of `p` (under fence 1, the first lease's).
  bool put(std::size_t i, const pinned_plan& p) {
    const endpoint_handle h = handle(i);
    return store.commit(h, store.read_stamp(h).value(), stamp{p->gen(), fence_token{1}, 0}, p->find(names[i])->records)
        .has_value();
  }
};

template <class E>
void run_steps(E& e, int steps) {
  for (int i = 0; i < steps; ++i) static_cast<void>(e.step());
}

}  // namespace

TEST_CASE("batches: a plan is applied with one read and one commit per batch", "[enactor][batch]") {
  batch_world w{200};
  std::vector<recorded_event> events;
  auto e = w.make(events, {.name = "az1", .batch_max = 64, .collect = false});
  { auto p = w.registry.publish(generation_plan(1, w.names)); }
  // acquire, raise fence, pin, then 4 batches (64, 64, 64, 8) of a read and a commit each.
  run_steps(e, 3 + 4 * 2);
  CHECK(e.applied_generation() == generation{1});
  CHECK(w.flaky.read_calls == 4);
  CHECK(w.flaky.batch_calls == 4);
  CHECK(e.counters()[event_kind::applied] == 200);
  for (std::size_t i = 0; i < w.names.size(); ++i) CHECK(w.served(i) == generation{1});
}

TEST_CASE("batches: fresh, stale and conflicting endpoints in one batch each get their own outcome",
          "[enactor][batch][S1]") {
  batch_world w{4};
  std::vector<recorded_event> events;
  auto e = w.make(events, {.name = "az1", .batch_max = 64, .collect = false});
  auto p2 = w.registry.publish(generation_plan(2, w.names)).value();
  { auto p = w.registry.publish(generation_plan(4, w.names)); }
  run_steps(e, 3);  // acquire, raise fence, pin 4
  REQUIRE(e.state() == enactor_state::read_stamp);
  // Before the read, endpoint 0 moves to generation 5 (a newer plan applied by someone else).
  auto p5 = w.registry.publish(generation_plan(5, w.names)).value();
  REQUIRE(w.put(0, p5));
  run_steps(e, 1);  // read the batch: endpoint 0 is stale, 1..3 go to the commit
  REQUIRE(e.state() == enactor_state::commit);
  CHECK(e.counters()[event_kind::stale] == 1);
  // Between read and commit, endpoint 1 moves to generation 2 (an older plan, so the enactor's
  // expected stamp no longer holds: a conflict), and endpoint 2 to generation 5 (stale).
  REQUIRE(w.put(1, p2));
  REQUIRE(w.put(2, p5));
  run_steps(e, 1);  // one commit_batch
  CHECK(w.flaky.batch_calls == 1);
  CHECK(e.counters()[event_kind::applied] == 1);  // endpoint 3
  CHECK(e.counters()[event_kind::stale] == 2);    // endpoints 0 and 2
  CHECK(e.counters()[event_kind::conflict] == 1);  // endpoint 1, read again
  CHECK(w.served(3) == generation{4});
  CHECK(w.served(2) == generation{5});
  CHECK(e.state() == enactor_state::read_stamp);
  run_steps(e, 2);  // read endpoint 1 again (generation 2 < 4), commit it
  CHECK(w.served(1) == generation{4});
  CHECK(e.counters()[event_kind::applied] == 2);
  CHECK(w.served(0) == generation{5});
}

TEST_CASE("batches: a batch meeting a larger fence stops the enactor and writes nothing after",
          "[enactor][batch][S2]") {
  batch_world w{8};
  std::vector<recorded_event> events;
  manual_clock paused;
  auto e = batch_world::enactor_type{w.flaky, w.authority, w.registry, paused,
                                     {.name = "paused", .lease_ttl = 10'000ms, .renew_margin = 1'000ms, .batch_max = 64},
                                     recording_sink{&events}};
  { auto p = w.registry.publish(generation_plan(1, w.names)); }
  run_steps(e, 4);  // lease, raise fence, pin, read the batch
  REQUIRE(e.state() == enactor_state::commit);
  w.clock.advance(11'000ms);
  auto newer = w.authority.acquire(10'000ms);
  REQUIRE(newer);
  REQUIRE(w.store.raise_fence(newer->fence));
  run_steps(e, 1);  // the commit_batch: every item fenced
  CHECK(e.counters()[event_kind::fenced] == 8);
  CHECK(e.counters()[event_kind::applied] == 0);
  CHECK(e.counters()[event_kind::lease_lost] == 1);
  for (std::size_t i = 0; i < w.names.size(); ++i) CHECK(w.served(i) == generation_none);
}

TEST_CASE("batches: the endpoint guard refuses one endpoint of a batch, not the batch", "[enactor][batch][S4]") {
  batch_world w{5};
  std::vector<recorded_event> events;
  auto e = w.make(events, {.name = "az1", .batch_max = 64, .zone_change_share_max = 1.0, .collect = false});
  { auto p = w.registry.publish(generation_plan(1, w.names)); }
  run_steps(e, 5);
  REQUIRE(e.applied_generation() == generation{1});
  {
    plan_builder b = plan_builder::based_on(*w.registry.pin_latest(), generation{2}, 0);
    for (const std::string& n : w.names) REQUIRE(b.set(n, planfence_test::a_records({"10.0.0.2"})));
    REQUIRE(b.set(w.names[2], record_set{}));  // emptied, not marked
    auto p = w.registry.publish(std::move(b).build().value());
  }
  run_steps(e, 4);  // idle to pin, pin, read (the guard refuses endpoint 2), commit the other four
  CHECK(e.counters()[event_kind::refused_blast_radius] == 1);
  CHECK(w.served(2) == generation{1});
  for (std::size_t i : {0u, 1u, 3u, 4u}) CHECK(w.served(i) == generation{2});
  CHECK(e.applied_generation() == generation{1});  // incomplete: endpoint 2 was refused
}

TEST_CASE("batches: a store failing in the middle of a batch leaves the enactor converging", "[enactor][batch][S6]") {
  batch_world w{100};
  std::vector<recorded_event> events;
  auto e = w.make(events, {.name = "az1", .batch_max = 50, .store_backoff = 1ms, .collect = false});
  { auto p = w.registry.publish(generation_plan(1, w.names)); }
  w.flaky.fail_after = 20;  // the first batch's connection drops after 20 of its 50 items
  run_steps(e, 4);          // acquire, raise fence, pin, read
  run_steps(e, 1);          // the commit fails part-way
  CHECK(e.counters()[event_kind::store_error] == 1);
  CHECK(e.counters()[event_kind::applied] == 20);
  std::size_t written = 0;
  for (std::size_t i = 0; i < 50; ++i) written += w.served(i) == generation{1} ? 1 : 0;
  CHECK(written == 20);  // exactly what the store applied before it failed: nothing half-written
  run_steps(e, 12);
  CHECK(e.applied_generation() == generation{1});
  for (std::size_t i = 0; i < w.names.size(); ++i) CHECK(w.served(i) == generation{1});
  CHECK(e.counters()[event_kind::applied] == 100);
}

TEST_CASE("batches: an endpoint the store cannot take does not hold back the rest of its batch", "[enactor][batch][S6]") {
  batch_world w{10};
  std::vector<recorded_event> events;
  auto e = w.make(events, {.name = "az1", .batch_max = 64, .collect = false});
  { auto p = w.registry.publish(generation_plan(1, w.names)); }
  w.flaky.poison = w.handle(3);
  run_steps(e, 5);  // acquire, raise fence, pin, read, commit: the batch fails whole, then one by one
  CHECK(e.counters()[event_kind::applied] == 9);
  CHECK(e.counters()[event_kind::store_error] == 1);
  const auto error = std::find_if(events.begin(), events.end(),
                                  [](const recorded_event& r) { return r.kind == event_kind::store_error; });
  REQUIRE(error != events.end());
  CHECK(error->endpoint == w.names[3]);
  for (std::size_t i = 0; i < w.names.size(); ++i) CHECK(w.served(i) == (i == 3 ? generation_none : generation{1}));
  CHECK(e.applied_generation() == generation_none);  // incomplete: endpoint 3 is not served
}

namespace {

/// A memory store that asks for batches of `preferred` endpoints (preferred_batch_max), as the
/// zone-file, etcd and RFC 2136 stores do, and counts its batch calls and their largest size.
struct preferring_store {
  memory_store* inner;
  std::uint32_t preferred;
  std::size_t batch_calls = 0;
  std::size_t largest_batch = 0;

  [[nodiscard]] std::uint32_t preferred_batch_max() const noexcept { return preferred; }
  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const { return inner->resolve(name); }
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const { return inner->read_stamp(h); }
  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& e, const stamp& d, const record_set& r) {
    return inner->commit(h, e, d, r);
  }
  [[nodiscard]] result<void> raise_fence(fence_token f) { return inner->raise_fence(f); }
  [[nodiscard]] std::vector<generation> live_generations() const { return inner->live_generations(); }
  [[nodiscard]] result<void> read_stamps(std::span<const endpoint_handle> h, std::span<stamp> out) const {
    return inner->read_stamps(h, out);
  }
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items) {
    ++batch_calls;
    largest_batch = std::max(largest_batch, items.size());
    return inner->commit_batch(items);
  }
  [[nodiscard]] result<std::vector<record>> served(endpoint_handle h) const { return inner->served(h); }
  [[nodiscard]] result<std::vector<std::string>> endpoint_names() const { return inner->endpoint_names(); }
};
static_assert(inspectable_store<preferring_store> && batched_store<preferring_store>);

template <class Store>
void apply_to_idle(enactor<Store, local_lease_authority<manual_clock>, plan_registry, manual_clock>& e, generation gen) {
  for (int steps = 0; steps < 100'000 && e.applied_generation() != gen; ++steps) static_cast<void>(e.step());
  REQUIRE(e.applied_generation() == gen);
}

}  // namespace

TEST_CASE("batches: batch_max 0 takes the store's preferred batch, growing the arrays to the run's size",
          "[enactor][batch]") {
  // 1,200: more than the 1,024 slots an enactor takes at construction.
  batch_world w{3000};
  preferring_store store{&w.store, 1200};
  using E = enactor<preferring_store, local_lease_authority<manual_clock>, plan_registry, manual_clock>;
  SECTION("a store that says: its batch") {
    E e{store, w.authority, w.registry, w.clock, {.name = "az1", .zone_change_share_max = 1.0, .collect = false}};
    CHECK(e.batch_max() == 1200);
    // A first plan of 10 endpoints, then every endpoint: the arrays grow for the second run.
    { auto p = w.registry.publish(generation_plan(1, std::vector<std::string>(w.names.begin(), w.names.begin() + 10))); }
    apply_to_idle(e, generation{1});
    CHECK(store.batch_calls == 1);
    { auto p = w.registry.publish(generation_plan(2, w.names)); }
    apply_to_idle(e, generation{2});
    CHECK(store.batch_calls == 1 + 3);  // 1,200, 1,200, 600
    CHECK(store.largest_batch == 1200);
    for (std::size_t i = 0; i < w.names.size(); ++i) CHECK(w.served(i) == generation{2});
  }
  SECTION("an explicit batch_max wins") {
    E e{store, w.authority, w.registry, w.clock, {.name = "az1", .batch_max = 3000, .collect = false}};
    CHECK(e.batch_max() == 3000);
    { auto p = w.registry.publish(generation_plan(1, w.names)); }
    apply_to_idle(e, generation{1});
    CHECK(store.batch_calls == 1);
    CHECK(store.largest_batch == 3000);
  }
  SECTION("through any_store, as planfence-ctl opens stores") {
    any_store any(std::make_unique<preferring_store>(store), "preferring");
    CHECK(any.preferred_batch_max() == 1200);
    enactor<any_store, local_lease_authority<manual_clock>, plan_registry, manual_clock> e{
        any, w.authority, w.registry, w.clock, {.name = "az1", .zone_change_share_max = 1.0, .collect = false}};
    CHECK(e.batch_max() == 1200);
    { auto p = w.registry.publish(generation_plan(1, w.names)); }
    apply_to_idle(e, generation{1});
    const preferring_store* inside = any.get_if<preferring_store>();
    REQUIRE(inside != nullptr);
    CHECK(inside->batch_calls == 3);
    CHECK(inside->largest_batch == 1200);
  }
  SECTION("a store that does not say: 64") {
    enactor<memory_store, local_lease_authority<manual_clock>, plan_registry, manual_clock> e{
        w.store, w.authority, w.registry, w.clock, {.name = "az1", .zone_change_share_max = 1.0, .collect = false}};
    CHECK(e.batch_max() == default_batch_max);
    CHECK(preferred_batch_max(w.store) == 64);
    CHECK(preferred_batch_max(any_store(std::make_unique<preferring_store>(preferring_store{&w.store, 0}), "x")) == 1);
    CHECK(preferred_batch_max(preferring_store{&w.store, 1'000'000}) == batch_max_limit);
  }
}
