// The change-following apply (docs/design.md, "Batches, and a cost that follows the change"): on
// a change_following_store the enactor writes only the endpoints its plan changes, under the
// store's apply marks. Proves that the cost follows the change (counted store reads and writes),
// that unchanged endpoints serve the new plan without a write (effective generation), also once
// their stamps' plans are collected, that a begun but unfinished apply is part of the next diff
// (the broken variant that forgets it is caught), that a delayed enactor holding an intermediate
// plan writes nothing, that a missing diff input falls back to writing the whole plan, and that a
// fenced enactor cannot move the marks.
#include <catch2/catch.hpp>

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "../support/fixtures.hpp"

using namespace planfence;
using namespace std::chrono_literals;
using planfence_test::a_records;
using planfence_test::endpoint_names;
using planfence_test::generation_plan;
using planfence_test::make_plan;
using planfence_test::recorded_event;
using planfence_test::recording_sink;

namespace {

/// The memory store, counting every endpoint read or written and every marks call.
struct counting_store {
  memory_store* inner;
  std::size_t stamps_read = 0;
  std::size_t items_committed = 0;
  std::size_t marks_calls = 0;

  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const { return inner->resolve(name); }
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const {
    ++const_cast<counting_store*>(this)->stamps_read;
    return inner->read_stamp(h);
  }
  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired, const record_set& r) {
    ++items_committed;
    return inner->commit(h, expected, desired, r);
  }
  [[nodiscard]] result<void> read_stamps(std::span<const endpoint_handle> handles, std::span<stamp> out) const {
    const_cast<counting_store*>(this)->stamps_read += handles.size();
    return inner->read_stamps(handles, out);
  }
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items) {
    items_committed += items.size();
    return inner->commit_batch(items);
  }
  [[nodiscard]] result<void> raise_fence(fence_token f) { return inner->raise_fence(f); }
  [[nodiscard]] std::vector<generation> live_generations() const { return inner->live_generations(); }
  [[nodiscard]] result<apply_marks> read_marks() const {
    ++const_cast<counting_store*>(this)->marks_calls;
    return inner->read_marks();
  }
  [[nodiscard]] result<apply_marks> begin_apply(const apply_marks& m, generation g, fence_token f) {
    ++marks_calls;
    return inner->begin_apply(m, g, f);
  }
  [[nodiscard]] result<apply_marks> finish_apply(generation g, fence_token f) {
    ++marks_calls;
    return inner->finish_apply(g, f);
  }
  void reset() { stamps_read = items_committed = marks_calls = 0; }
};
static_assert(change_following_store<counting_store> && batched_store<counting_store>);

template <apply_variant Variant = apply_variant::fixed>
using enactor_of = enactor<counting_store, local_lease_authority<manual_clock>, plan_registry, manual_clock, recording_sink, Variant>;

struct world {
  explicit world(std::vector<std::string> endpoint_set) : names(std::move(endpoint_set)) {}
  std::vector<std::string> names;
  manual_clock clock;
  local_lease_authority<manual_clock> authority{clock};
  plan_registry registry;
  memory_store store = memory_store::make(registry, names).value();
  counting_store counted{&store};

  template <apply_variant Variant = apply_variant::fixed>
  enactor_of<Variant> make(std::vector<recorded_event>& events, enactor_config config = {}) {
    if (config.name == enactor_config{}.name) config.name = "az1";
    return enactor_of<Variant>{counted, authority, registry, clock, std::move(config), recording_sink{&events}};
  }
  generation stamped(const std::string& name) { return store.read_stamp(store.resolve(name).value())->gen; }
  std::vector<std::string> answer(const std::string& name) {
    std::vector<std::string> out;
    auto snapshot = store.read(store.resolve(name).value());
    for (const record& r : snapshot.records()) out.push_back(r.rdata);
    return out;
  }
  /// Every endpoint of plan `gen` answers with that plan's records.
  bool serves(generation gen) {
    detail::epoch_guard guard = detail::epoch_domain::pin();
    const plan* p = registry.find(gen, guard);
    if (p == nullptr) return false;
    for (const endpoint_entry* e : p->endpoints()) {
      std::vector<std::string> wanted;
      for (const record& r : e->records.records()) wanted.push_back(r.rdata);
      if (answer(e->name) != wanted) return false;
    }
    return true;
  }
};

template <class E>
void run_until_idle(E& e, int steps_max = 100'000) {
  for (int i = 0; i < steps_max; ++i) {
    static_cast<void>(e.step());
    if (e.state() == enactor_state::idle) return;
  }
  FAIL("the enactor did not reach idle");
}

/// Plan `gen` based on `previous`, with the endpoints in `changed` given address `address`.
plan changed_plan(const plan& previous, std::uint64_t gen, const std::vector<std::string>& changed,
                  const std::string& address) {
  auto builder = plan_builder::based_on(previous, generation{gen}, 1'761'200'000'000 + gen);
  for (const std::string& name : changed) REQUIRE(builder.set(name, a_records({address})));
  return std::move(builder).build().value();
}

}  // namespace

TEST_CASE("change-following: a plan changing 1% of 10,000 endpoints reads and writes only those", "[enactor][change]") {
  world w{endpoint_names(10'000)};
  std::vector<recorded_event> events;
  auto e = w.make(events);
  pinned_plan first = w.registry.publish(generation_plan(1, w.names)).value();
  run_until_idle(e);
  REQUIRE(e.applied_generation() == generation{1});
  CHECK_FALSE(e.run_follows_changes());  // nothing applied before: the whole plan
  CHECK(w.counted.items_committed == 10'000);
  CHECK(w.store.read_marks()->applied == generation{1});

  std::vector<std::string> changed;
  for (std::size_t i = 0; i < 10'000; i += 100) changed.push_back(w.names[i]);
  { auto p = w.registry.publish(changed_plan(*first, 2, changed, "192.0.2.2")); }
  w.counted.reset();
  run_until_idle(e);
  REQUIRE(e.applied_generation() == generation{2});
  CHECK(e.run_follows_changes());
  CHECK(e.run_endpoints() == 100);
  // The target: at most 2% of the full plan's writes, and no read of an unchanged endpoint.
  CHECK(w.counted.items_committed == 100);
  CHECK(w.counted.stamps_read == 100);
  CHECK(w.counted.marks_calls == 3);  // read, begin, finish
  CHECK(w.stamped(w.names[0]) == generation{2});
  CHECK(w.stamped(w.names[1]) == generation{1});  // unchanged: not written
  CHECK(*w.store.read_marks() == apply_marks{generation{2}, generation{2}, 0});
  CHECK(w.serves(generation{2}));
}

TEST_CASE("change-following: unchanged endpoints serve the applied plan after their stamps' plan is collected",
          "[enactor][change][S3]") {
  world w{endpoint_names(200)};
  std::vector<recorded_event> events;
  auto e = w.make(events, {.retention = {.keep_newest = 1}});
  pinned_plan first = w.registry.publish(generation_plan(1, w.names)).value();
  run_until_idle(e);
  { auto p = w.registry.publish(changed_plan(*first, 2, {w.names[0]}, "192.0.2.2")); }
  first.reset();
  run_until_idle(e);
  REQUIRE(e.applied_generation() == generation{2});
  // 199 endpoints still stamped 1, yet their effective generation is 2: the live set says 2 only,
  // and the enactor's collection removed plan 1.
  CHECK(w.store.live_generations() == std::vector<generation>{generation{2}});
  CHECK_FALSE(w.registry.pin(generation{1}).has_value());
  CHECK(w.stamped(w.names[1]) == generation{1});
  planfence_test::reclaim_all();
  CHECK(w.serves(generation{2}));  // through plan 2, the applied mark's plan
  CHECK(w.answer(w.names[1]) == std::vector<std::string>{"10.0.0.1"});
}

TEST_CASE("change-following: an apply that began and did not finish is part of the next diff", "[enactor][change][S1]") {
  // u: X at 1, Y at 2, X at 3. An enactor begins plan 2, writes u := Y and crashes. Plan 3 does
  // not differ from the applied plan 1 at u, but plan 2, begun, did: the next apply must write u
  // (docs/model.md, BROKEN_NO_UNION). The broken variant, which diffs against plan 1 alone,
  // leaves u answering Y under an applied mark of 3.
  auto run = [](auto variant_tag) {
    constexpr apply_variant variant = decltype(variant_tag)::value;
    world w{{"u.example.", "v.example."}};
    std::vector<recorded_event> events;
    pinned_plan p1 = w.registry.publish(make_plan(1, {{"u.example.", {"192.0.2.10"}}, {"v.example.", {"192.0.2.20"}}})).value();
    auto first = w.make<variant>(events, {.name = "first", .batch_max = 1});
    run_until_idle(first);
    REQUIRE(w.store.read_marks()->applied == generation{1});
    pinned_plan p2 = w.registry.publish(changed_plan(*p1, 2, {"u.example."}, "192.0.2.11")).value();
    // Pin 2, read marks, diff, begin (B = 2), read u, commit u: then the crash.
    for (int i = 0; i < 40 && w.stamped("u.example.") != generation{2}; ++i) static_cast<void>(first.step());
    REQUIRE(w.stamped("u.example.") == generation{2});
    REQUIRE(w.store.read_marks()->begun == generation{2});
    first.crash();
    { auto p = w.registry.publish(changed_plan(*p2, 3, {"u.example."}, "192.0.2.10")); }  // u back to X
    p1.reset();
    p2.reset();
    w.clock.advance(20'000ms);  // the crashed holder's lease lapses
    auto second = w.make<variant>(events, {.name = "second"});
    run_until_idle(second);
    REQUIRE(w.store.read_marks()->applied == generation{3});
    return w.answer("u.example.");
  };
  CHECK(run(std::integral_constant<apply_variant, apply_variant::fixed>{}) == std::vector<std::string>{"192.0.2.10"});
  // The broken variant is caught: u answers plan 2's record although plan 3 is applied.
  CHECK(run(std::integral_constant<apply_variant, apply_variant::diff_without_begun>{}) ==
        std::vector<std::string>{"192.0.2.11"});
}

TEST_CASE("change-following: a delayed enactor holding an intermediate plan writes nothing", "[enactor][change][S1][S2]") {
  world w{endpoint_names(50)};
  std::vector<recorded_event> slow_events, fast_events;
  pinned_plan p1 = w.registry.publish(generation_plan(1, w.names)).value();
  auto fast = w.make(fast_events, {.name = "fast"});
  run_until_idle(fast);
  fast.release();
  // The slow enactor pins plan 2 (which changes ep0), reads the marks and diffs, then stalls
  // before it begins. Plan 3 changes ep1 only; the fast enactor applies it.
  pinned_plan p2 = w.registry.publish(changed_plan(*p1, 2, {w.names[0]}, "192.0.2.2")).value();
  manual_clock frozen;
  auto slow = enactor_of<>{w.counted, w.authority, w.registry, frozen,
                           {.name = "slow", .lease_ttl = 60'000ms, .renew_margin = 1'000ms}, recording_sink{&slow_events}};
  for (int i = 0; i < 20 && slow.state() != enactor_state::begin_apply; ++i) static_cast<void>(slow.step());
  REQUIRE(slow.state() == enactor_state::begin_apply);
  w.clock.advance(61'000ms);
  { auto p = w.registry.publish(changed_plan(*p2, 3, {w.names[1]}, "192.0.2.3")); }
  auto fast2 = w.make(fast_events, {.name = "fast2"});
  run_until_idle(fast2);
  REQUIRE(w.store.read_marks()->applied == generation{3});
  const std::size_t before = w.counted.items_committed;
  for (int i = 0; i < 50; ++i) static_cast<void>(slow.step());
  CHECK(w.counted.items_committed == before);  // fenced at its begin, before any endpoint
  CHECK(planfence_test::count_kind(slow_events, event_kind::applied) == 0);
  CHECK(w.store.read_marks()->applied == generation{3});
  CHECK(w.serves(generation{3}));
}

TEST_CASE("change-following: a plan already applied by another enactor costs one read of the marks",
          "[enactor][change]") {
  world w{endpoint_names(100)};
  std::vector<recorded_event> a_events, b_events;
  { auto p = w.registry.publish(generation_plan(1, w.names)); }
  auto a = w.make(a_events, {.name = "a"});
  run_until_idle(a);
  a.release();
  w.counted.reset();
  auto b = w.make(b_events, {.name = "b"});
  run_until_idle(b);
  CHECK(b.applied_generation() == generation{1});
  CHECK(planfence_test::count_kind(b_events, event_kind::plan_applied) == 1);
  CHECK(w.counted.items_committed == 0);
  CHECK(w.counted.stamps_read == 0);
  CHECK(w.counted.marks_calls == 1);
}

TEST_CASE("change-following: a begun plan that is gone is left out of the diff, the applied plan gone means the whole plan",
          "[enactor][change][S6]") {
  world w{endpoint_names(30)};
  std::vector<recorded_event> events;
  pinned_plan p1 = w.registry.publish(generation_plan(1, w.names)).value();
  auto first = w.make(events, {.name = "first", .batch_max = 1});
  run_until_idle(first);
  // Plans 2 and 3 published; the apply of 3 begun (B = 3) by an enactor that then crashed before
  // writing anything. Plan 2 was never begun, serves nowhere, and is collected.
  { auto p = w.registry.publish(changed_plan(*p1, 2, {w.names[0]}, "192.0.2.2")); }
  { auto p = w.registry.publish(changed_plan(*p1, 3, {w.names[1]}, "192.0.2.3")); }
  for (int i = 0; i < 40 && w.store.read_marks()->begun != generation{3}; ++i) static_cast<void>(first.step());
  REQUIRE(w.store.read_marks()->begun == generation{3});
  REQUIRE(w.stamped(w.names[1]) == generation{1});
  first.crash();
  REQUIRE(w.registry.collect_one(generation{2}, [&] { return w.store.live_generations(); }));
  { auto p = w.registry.publish(changed_plan(*p1, 4, {w.names[2]}, "192.0.2.4")); }
  w.clock.advance(20'000ms);
  w.counted.reset();
  auto second = w.make(events, {.name = "second"});
  run_until_idle(second);
  // Diffed against 1 and the begun 3 (2 left out): names[1] (3's change) and names[2] (4's).
  CHECK(second.run_follows_changes());
  CHECK(w.counted.items_committed == 2);
  CHECK(w.serves(generation{4}));
  // Now the applied plan (4) removed behind the protocol's back (a live set that forgot the
  // applied mark): the next apply has nothing to diff against and writes its whole plan.
  { auto p = w.registry.publish(changed_plan(*p1, 5, {w.names[3]}, "192.0.2.5")); }
  p1.reset();
  REQUIRE(w.registry.collect_one(generation{4}, [] { return std::vector<generation>{}; }));
  w.counted.reset();
  run_until_idle(second);
  CHECK_FALSE(second.run_follows_changes());
  CHECK(w.counted.items_committed == 30);
  CHECK(w.store.read_marks()->applied == generation{5});
  CHECK(w.serves(generation{5}));
}

TEST_CASE("change-following: the marks refuse a fenced writer and a moved expectation", "[memory_store][change][S2]") {
  plan_registry registry;
  auto store = memory_store::make(registry, endpoint_names(4)).value();
  const apply_marks none{};
  CHECK(*store.read_marks() == none);
  REQUIRE(store.raise_fence(fence_token{5}));
  CHECK(store.begin_apply(none, generation{3}, fence_token{4}).error().code == errc::fenced);
  CHECK(*store.read_marks() == none);  // nothing written
  auto begun = store.begin_apply(none, generation{3}, fence_token{5});
  REQUIRE(begun);
  CHECK(begun->begun == generation{3});
  CHECK(store.begin_apply(none, generation{4}, fence_token{5}).error().code == errc::conflict);
  CHECK(store.finish_apply(generation{3}, fence_token{4}).error().code == errc::fenced);
  CHECK(store.read_marks()->applied == generation_none);
  REQUIRE(store.finish_apply(generation{3}, fence_token{5}));
  REQUIRE(store.finish_apply(generation{2}, fence_token{6}));  // never lowers
  CHECK(*store.read_marks() == apply_marks{generation{3}, generation{3}, 0});
  // The live set: A and B, and every stamp below A read as A.
  auto p1 = registry.publish(generation_plan(1, endpoint_names(4))).value();
  const endpoint_handle h = store.resolve("ep0.example.").value();
  REQUIRE(store.commit(h, store.read_stamp(h).value(), stamp{generation{1}, fence_token{6}, 0}, p1->find("ep0.example.")->records));
  CHECK(store.live_generations() == std::vector<generation>{generation{3}});
  REQUIRE(store.begin_apply(*store.read_marks(), generation{5}, fence_token{6}));
  CHECK(store.live_generations() == std::vector<generation>{generation{3}, generation{5}});
}

TEST_CASE("change-following: an enactor back in charge diffs against the applied mark, not the plan it applied last",
          "[enactor][change][S1]") {
  // The zone guard walks the new plan against what this enactor applied last; the run's diff
  // must be against what the marks say is applied. They differ when another enactor applied a
  // plan in between: here that plan changed ep0, and the new plan puts ep0 back as this enactor
  // left it, so ep0 differs from the applied plan but not from this enactor's last one. A run
  // that reused the guard's walk would leave ep0 serving the other enactor's records.
  world w{endpoint_names(40)};
  std::vector<recorded_event> a_events, b_events;
  pinned_plan p1 = w.registry.publish(generation_plan(1, w.names)).value();
  auto a = w.make(a_events, {.name = "a"});
  run_until_idle(a);
  REQUIRE(a.applied_generation() == generation{1});
  a.release();
  const std::vector<std::string> ep0_at_1 = w.answer(w.names[0]);
  pinned_plan p2 = w.registry.publish(changed_plan(*p1, 2, {w.names[0]}, "192.0.2.2")).value();
  auto b = w.make(b_events, {.name = "b"});
  run_until_idle(b);
  REQUIRE(w.store.read_marks()->applied == generation{2});
  b.release();
  // Plan 3: ep0 as plan 1 had it, ep1 changed.
  auto builder = plan_builder::based_on(*p2, generation{3}, 1'761'200'000'003);
  REQUIRE(builder.set(w.names[0], p1->find(w.names[0])->records));
  REQUIRE(builder.set(w.names[1], a_records({"192.0.2.3"})));
  { auto p = w.registry.publish(std::move(builder).build().value()); REQUIRE(p); }
  w.counted.reset();
  run_until_idle(a);
  CHECK(a.applied_generation() == generation{3});
  CHECK(w.store.read_marks()->applied == generation{3});
  CHECK(w.answer(w.names[0]) == ep0_at_1);
  CHECK(w.serves(generation{3}));
  CHECK(w.counted.items_committed == 2);  // ep0 and ep1: the diff against plan 2, nothing else
}
