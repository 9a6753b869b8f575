// Proves the simulator's parts do what the oracle relies on: the fault store's fault points are
// off by default, fire when switched on, heal, and its S2 ledger flags a commit accepted below a
// fence token the store had accepted; skewed clocks drift, stall and stay monotonic; the lease
// client states expiry on the enactor's own clock; a plan corrupted after its digest fails
// verify() and damaged plan text fails to parse with digest_mismatch (S7); and the naive enactor,
// driven by hand, overwrites a newer generation and then stops on the deleted plan.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <planfence/sim/sim.hpp>
#include <planfence/plan_text.hpp>

using namespace planfence;
using namespace planfence::sim;
using namespace std::chrono_literals;

namespace {

plan one_endpoint_plan(std::uint64_t gen, const char* address) {
  plan_builder builder{generation{gen}, 1'760'918'400'000};
  auto set = record_set::make({make_record(record_type::a, 60, address).value()});
  REQUIRE(builder.set("db.example.", std::move(*set)));
  return std::move(builder).build().value();
}

}  // namespace

TEST_CASE("fault_store: faults are off by default, fire when on, and heal", "[sim][parts]") {
  plan_registry registry;
  auto p1 = registry.publish(one_endpoint_plan(1, "192.0.2.1"));
  REQUIRE(p1);
  fault_store store{memory_store::make(registry, {"db.example."}).value(), 7};
  const endpoint_handle h = store.resolve("db.example.").value();
  const record_set& records = (*p1)->endpoints()[0]->records;

  CHECK(store.read_stamp(h).has_value());
  store.set_fault(fault_point::read_stamp, per_million{1'000'000});
  CHECK(store.read_stamp(h).error().code == errc::store_unavailable);

  store.set_fault(fault_point::commit_after_write, per_million{1'000'000});
  REQUIRE(store.raise_fence(fence_token{1}));
  // raise_fence also raised the endpoint's stamp (memory_store.hpp (M5)): read it past the fault.
  auto lost = store.commit(h, store.inner().read_stamp(h).value(), stamp{generation{1}, fence_token{1}, 0}, records);
  CHECK(lost.error().code == errc::store_unavailable);           // the caller is told it failed ...
  CHECK(store.inner().read_stamp(h)->gen == generation{1});      // ... but the write happened

  store.heal();
  CHECK(store.read_stamp(h).has_value());
  store.set_outage(true);
  CHECK(store.raise_fence(fence_token{2}).error().code == errc::store_unavailable);
  store.heal();
  CHECK_FALSE(store.outage());
  CHECK(store.s2_violations() == 0);
  CHECK(store.accepted_fence_max() == fence_token{1});
}

TEST_CASE("fault_store: the S2 ledger flags a commit below an accepted fence", "[sim][parts][S2]") {
  plan_registry registry;
  auto p1 = registry.publish(one_endpoint_plan(1, "192.0.2.1"));
  auto p2 = registry.publish(one_endpoint_plan(2, "192.0.2.2"));
  // A store that ignores fences (broken on purpose) lets the stale writer through; the ledger sees it.
  fault_store store{basic_memory_store<plan_registry, commit_rule::ignore_fence>::make(registry, {"db.example."}).value(), 1};
  const endpoint_handle h = store.resolve("db.example.").value();
  REQUIRE(store.raise_fence(fence_token{5}));
  REQUIRE(store.commit(h, stamp{}, stamp{generation{2}, fence_token{3}, 0}, (*p2)->endpoints()[0]->records));
  CHECK(store.s2_violations() == 1);
  bool flagged = false;
  for (const store_operation& op : store.operations()) flagged = flagged || op.s2_violation;
  CHECK(flagged);
}

TEST_CASE("skewed_clock: offset, drift and stalls, always monotonic", "[sim][parts]") {
  manual_clock world{std::chrono::seconds{1000}};
  skewed_clock behind{world, -500ms, 1'000};
  skewed_clock fast{world, 0ns, 2'000};
  CHECK(behind.skew() == -500ms);
  const auto before = fast.now();
  world.advance(1s);
  CHECK(fast.now() - before == 2s);
  behind.freeze();
  const auto frozen_at = behind.now();
  world.advance(30s);
  CHECK(behind.now() == frozen_at);  // a paused process's clock stands still
  behind.thaw();
  world.advance(1s);
  CHECK(behind.now() - frozen_at == 1s);  // and resumes from where it stopped: never backwards
}

TEST_CASE("lease_client: a lease's expiry is on the enactor's clock", "[sim][parts]") {
  manual_clock world{std::chrono::seconds{1000}};
  local_lease_authority<manual_clock> shared{world};
  skewed_clock ahead{world, 3s, 1'000};
  lease_client client{shared, ahead};
  const lease granted = client.acquire(10s).value();
  CHECK(granted.expires == std::chrono::duration_cast<std::chrono::nanoseconds>(ahead.now().time_since_epoch()) + 10s);
  CHECK(client.check(granted).has_value());
  world.advance(11s);
  CHECK(client.check(granted).error().code == errc::lease_lapsed);  // the shared authority decides
}

TEST_CASE("S7 fault injection: corrupted plans fail verify, damaged text fails to parse", "[sim][parts][S7]") {
  plan p = one_endpoint_plan(3, "192.0.2.3");
  CHECK(p.verify().has_value());
  const std::string text = format_plan(p);
  std::string damaged = text;
  REQUIRE(damage_plan_text(damaged));
  CHECK(damaged != text);
  auto parsed = parse_plan(damaged);
  REQUIRE_FALSE(parsed.has_value());
  CHECK(parsed.error().code == errc::digest_mismatch);

  corrupt_after_digest(p, 0, record_set::make({make_record(record_type::a, 60, "192.0.2.99").value()}).value());
  CHECK(p.verify().error().code == errc::digest_mismatch);
}

TEST_CASE("naive enactor by hand: a stale overwrite, then the clean-up empties the endpoint, then it stops",
          "[sim][parts][naive]") {
  using naive_registry = basic_plan_registry<collection_check::none>;
  using naive_store_t = basic_memory_store<naive_registry, commit_rule::unconditional>;
  manual_clock clock;
  naive_registry registry;
  naive_store_t store = naive_store_t::make(registry, {"db.example."}).value();
  naive_config config;
  config.cleanup_threshold = 1;
  naive_enactor<naive_store_t, naive_registry, manual_clock> slow{store, registry, clock, config};
  naive_enactor<naive_store_t, naive_registry, manual_clock> quick{store, registry, clock, config};
  const endpoint_handle h = store.resolve("db.example.").value();

  REQUIRE(registry.publish(one_endpoint_plan(1, "192.0.2.1")));
  slow.step();  // pick g1
  slow.step();  // the one-time check: g1 is newer than nothing
  slow.step();  // read the endpoint
  REQUIRE(slow.state() == naive_state::write_endpoint);
  // slow is delayed here; meanwhile g2 and g3 appear and quick applies g3.
  REQUIRE(registry.publish(one_endpoint_plan(2, "192.0.2.2")));
  REQUIRE(registry.publish(one_endpoint_plan(3, "192.0.2.3")));
  for (int i = 0; i < 4; ++i) quick.step();  // pick, check, read, write
  REQUIRE(store.read(h).gen() == generation{3});
  REQUIRE(quick.state() == naive_state::clean_up);

  slow.step();  // the delayed write: unconditional, g1 over g3
  CHECK(store.read(h).gen() == generation{1});  // S1 broken
  quick.step();  // clean-up: everything more than 1 generation older than g3, i.e. g1
  CHECK(store.read(h).plan_missing());  // S3 broken: the endpoint serves a deleted plan
  CHECK(store.read(h).records().empty());

  REQUIRE(registry.publish(one_endpoint_plan(4, "192.0.2.4")));
  for (int i = 0; i < 3 && !quick.stopped(); ++i) quick.step();  // pick g4, check, read -> stop
  CHECK(quick.stopped());
  CHECK(quick.stopped_endpoint() == "db.example.");
  CHECK(quick.stopped_on_generation() == generation{1});
  for (int i = 0; i < 10; ++i) static_cast<void>(quick.step());
  CHECK(quick.stopped());  // it never recovers by itself
}
