// The etcd sequencer and plan registry against a real etcd: concurrent planners never issue the
// same generation; publish refuses equivocation (S5) and resurrection of a collected plan; a
// corrupt stored plan is refused (S7); collection keeps live, pinned and newest plans (S3); and
// the enactor, run unchanged on the etcd store, authority and registry, converges (S6).
#include <catch2/catch.hpp>

#include <planfence/enactor.hpp>
#include <planfence/etcd/registry.hpp>
#include <planfence/etcd/sequencer.hpp>
#include <planfence/plan_text.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "../support/store_fixtures.hpp"
#include "etcd_support.hpp"

using namespace planfence;
using namespace std::chrono_literals;
using planfence_test::generation_plan;
using planfence_test::make_plan;
using planfence_test::shared_etcd;
using planfence_test::unique_prefix;

TEST_CASE("etcd sequencer: concurrent planners never issue the same generation", "[etcd][sequencer][S5]") {
  // Four planners, each with its own client (as on four hosts), race for 25 generations each;
  // the union must be exactly 1..100, each issued once, and each planner's own sequence rising.
  const std::string prefix = unique_prefix();
  // Start the member on this thread: PR_SET_PDEATHSIG kills it when the thread that forked it
  // ends, and the planner threads below end first.
  const auto config = shared_etcd().config();
  constexpr int planners = 4;
  constexpr int each = 25;
  std::mutex mutex;
  std::vector<std::uint64_t> issued;
  std::atomic<int> failures{0};
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int p = 0; p < planners; ++p) {
    threads.emplace_back([&] {
      auto seq = etcd::etcd_sequencer::make(config, prefix).value();
      std::uint64_t previous = 0;
      for (int i = 0; i < each; ++i) {
        auto g = seq.next();
        if (!g || g->value() <= previous) {
          ++failures;
          std::lock_guard lock(mutex);
          errors.push_back(g ? "not increasing" : g.error().message());
          continue;
        }
        previous = g->value();
        std::lock_guard lock(mutex);
        issued.push_back(g->value());
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) UNSCOPED_INFO(e);
  CHECK(failures.load() == 0);
  std::sort(issued.begin(), issued.end());
  REQUIRE(issued.size() == planners * each);
  for (std::size_t i = 0; i < issued.size(); ++i) CHECK(issued[i] == i + 1);
  auto seq = etcd::etcd_sequencer::make(shared_etcd().config(), prefix).value();
  CHECK(seq.last_issued().value() == generation{100});
  REQUIRE(seq.observe(generation{90}));  // never backwards
  CHECK(seq.next().value() == generation{101});
  REQUIRE(seq.observe(generation{200}));
  CHECK(seq.next().value() == generation{201});
}

TEST_CASE("etcd registry: publish refuses equivocation and resurrection, and corrupt plans", "[etcd][registry][S5][S7]") {
  const std::string prefix = unique_prefix();
  auto history = etcd::etcd_plan_registry::make(shared_etcd().config(), prefix).value();
  CHECK(history.latest().error().code == errc::not_found);
  const plan one = make_plan(1, {{"www.example.test.", {"192.0.2.1"}}});
  REQUIRE(history.publish(one));
  REQUIRE(history.publish(one));  // the same content again: harmless
  const plan other = make_plan(1, {{"www.example.test.", {"192.0.2.99"}}});
  auto refused = history.publish(other);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::equivocation);
  CHECK(history.lookup(generation{1})->digest() == one.digest());  // the first content stays

  REQUIRE(history.publish(make_plan(2, {{"www.example.test.", {"192.0.2.2"}}})));
  CHECK(history.latest()->gen() == generation{2});
  CHECK(history.retained().value() == std::vector<generation>{generation{1}, generation{2}});

  // What etcdctl shows is the plan text form, digest included.
  etcd::client c{shared_etcd().config()};
  CHECK(c.range(history.keys().plan(1))->kvs.at(0).value == format_plan(one));

  // A stored plan altered behind planfence's back is refused (S7), not applied.
  std::string tampered = format_plan(make_plan(3, {{"www.example.test.", {"192.0.2.3"}}}));
  tampered.replace(tampered.find("192.0.2.3"), 9, "192.0.2.4");
  REQUIRE(c.put(history.keys().plan(3), tampered));
  CHECK(history.latest().error().code == errc::digest_mismatch);
  REQUIRE(c.put(history.keys().plan(4), "not a plan"));
  CHECK(history.lookup(generation{4}).error().code == errc::parse_error);
}

TEST_CASE("etcd registry: collection keeps live, pinned and newest plans, decided in transactions (S3)", "[etcd][registry][S3]") {
  const std::string prefix = unique_prefix();
  const std::vector<std::string> names = {"www.example.test.", "db.example.test."};
  auto history = etcd::etcd_plan_registry::make(shared_etcd().config(), prefix).value();
  auto store = etcd_store::make(shared_etcd().config(), prefix, names, etcd::fence_mode::floor_only).value();
  for (std::uint64_t g = 1; g <= 6; ++g) REQUIRE(history.publish(generation_plan(g, names)));
  // www serves 2, db serves 3; an apply of 4 is in flight (pinned under a lease); 6 is newest.
  const plan two = history.lookup(generation{2}).value();
  const plan three = history.lookup(generation{3}).value();
  const auto www = store.resolve("www.example.test.").value();
  const auto db = store.resolve("db.example.test.").value();
  REQUIRE(store.commit(www, stamp{}, stamp{generation{2}, fence_token{1}, 0}, two.find("www.example.test.")->records));
  REQUIRE(store.commit(db, stamp{}, stamp{generation{3}, fence_token{1}, 0}, three.find("db.example.test.")->records));
  etcd::client c{shared_etcd().config()};
  const auto pin_lease = c.grant(10).value();
  REQUIRE(history.pin(generation{4}, "az2", pin_lease.id));

  auto report = history.collect({.keep_newest = 1}, 0, store);
  REQUIRE(report);
  CHECK(report->collected == std::vector<generation>{generation{1}, generation{5}});
  CHECK(report->protected_live == std::vector<generation>{generation{2}, generation{3}});
  CHECK(report->protected_pinned == std::vector<generation>{generation{4}});
  CHECK(history.retained().value() == std::vector<generation>{generation{2}, generation{3}, generation{4}, generation{6}});
  // A collected generation never comes back, and cannot be pinned.
  CHECK(history.publish(generation_plan(1, names)).error().code == errc::collected);
  CHECK(history.pin(generation{5}, "az1", pin_lease.id).error().code == errc::not_found);

  // The pin ends with its holder's lease; the endpoints move on; now 2, 3 and 4 go.
  REQUIRE(c.revoke(pin_lease.id));
  const plan six = history.lookup(generation{6}).value();
  REQUIRE(store.commit(www, store.read_stamp(www).value(), stamp{generation{6}, fence_token{1}, 0}, six.find("www.example.test.")->records));
  REQUIRE(store.commit(db, store.read_stamp(db).value(), stamp{generation{6}, fence_token{1}, 0}, six.find("db.example.test.")->records));
  report = history.collect({.keep_newest = 1}, 0, store);
  REQUIRE(report);
  CHECK(report->collected == std::vector<generation>{generation{2}, generation{3}, generation{4}});
  CHECK(history.retained().value() == std::vector<generation>{generation{6}});

  // Only the lease holder collects: a stale fence stops collection.
  REQUIRE(history.publish(generation_plan(7, names)));
  REQUIRE(store.commit(www, store.read_stamp(www).value(), stamp{generation{7}, fence_token{1}, 0}, history.lookup(generation{7})->find("www.example.test.")->records));
  REQUIRE(store.commit(db, store.read_stamp(db).value(), stamp{generation{7}, fence_token{1}, 0}, history.lookup(generation{7})->find("db.example.test.")->records));
  CHECK(history.collect({.keep_newest = 1}, 0, store, fence_token{12345}).error().code == errc::lease_superseded);
  CHECK(history.retained().value().size() == 2);
}

TEST_CASE("etcd: the enactor, unchanged, applies plans through the etcd store, authority and registry (S1, S6)", "[etcd][enactor][S6]") {
  // Proves the pieces plug into planfence::enactor: two enactors (two zones) share the etcd
  // store; plans are published by a planner using the etcd sequencer; every endpoint ends on the
  // newest plan, and old plans are collected in etcd.
  const std::string prefix = unique_prefix();
  const std::vector<std::string> names = planfence_test::endpoint_names(4);
  steady_clock clock;
  const auto config = shared_etcd().config();
  auto history = etcd::etcd_plan_registry::make(config, prefix).value();
  auto sequencer = etcd::etcd_sequencer::make(config, prefix).value();

  struct zone {
    zone(const etcd::client_config& cfg, const std::string& p, etcd::etcd_plan_registry& h, steady_clock& c, std::string name)
        : store(etcd_store::make(cfg, p).value()),
          authority(etcd::etcd_lease_authority<>::make(cfg, p, c, {.holder_name = name}).value()),
          registry(h, store, authority, name),
          zone_enactor(store, authority, registry, c,
                  enactor_config{.name = name, .lease_ttl = 2000ms, .renew_margin = 1200ms, .poll_interval = 20ms,
                                 .zone_change_share_max = 1.0,  // every plan here changes every endpoint
                                 .retention = {.keep_newest = 2}}) {}
    etcd_store store;
    etcd::etcd_lease_authority<> authority;
    etcd::etcd_enactor_registry<> registry;
    enactor<etcd_store, etcd::etcd_lease_authority<>, etcd::etcd_enactor_registry<>, steady_clock> zone_enactor;
  };
  zone az1{config, prefix, history, clock, "az1"};
  zone az2{config, prefix, history, clock, "az2"};
  std::atomic<bool> stop{false};
  std::thread t1{[&] { az1.zone_enactor.run_until(stop); }};
  std::thread t2{[&] { az2.zone_enactor.run_until(stop); }};
  generation newest{};
  for (int i = 0; i < 5; ++i) {
    newest = sequencer.next().value();
    REQUIRE(history.publish(generation_plan(newest.value(), names)));
    std::this_thread::sleep_for(150ms);
  }
  auto reader = etcd_store::make(config, prefix, names).value();
  const auto until = std::chrono::steady_clock::now() + 20s;
  bool converged = false;
  while (!converged && std::chrono::steady_clock::now() < until) {
    converged = true;
    for (const auto& n : names) converged = converged && reader.read_stamp(reader.resolve(n).value())->gen == newest;
    if (!converged) std::this_thread::sleep_for(50ms);
  }
  // Collection runs after a complete run; give it a moment.
  const auto collect_until = std::chrono::steady_clock::now() + 5s;
  while (history.retained().value().size() > 2 && std::chrono::steady_clock::now() < collect_until) std::this_thread::sleep_for(50ms);
  stop = true;
  t1.join();
  t2.join();
  CHECK(converged);
  for (const auto& n : names) {
    const auto served = reader.served(reader.resolve(n).value()).value();
    REQUIRE(served.size() == 1);
    CHECK(served[0].rdata == planfence_test::address_of(newest.value()));
  }
  const auto retained = history.retained().value();
  CHECK(retained.size() <= 2);
  CHECK(retained.back() == newest);
  CHECK(az1.zone_enactor.counters()[event_kind::applied] + az2.zone_enactor.counters()[event_kind::applied] >= names.size());
}

namespace {

/// What collection does when an enactor commits a plan to an endpoint between the collector's
/// live-set read and its delete: the window the 2025 clean-up had. Returns (collected, live at
/// the end).
template <class Registry>
std::pair<std::vector<generation>, generation> collect_while_an_enactor_commits() {
  const std::string prefix = unique_prefix();
  const std::vector<std::string> names = {"www.example.test."};
  auto history = Registry::make(shared_etcd().config(), prefix).value();
  auto store = etcd_store::make(shared_etcd().config(), prefix, names, etcd::fence_mode::floor_only).value();
  for (std::uint64_t g = 1; g <= 3; ++g) REQUIRE(history.publish(generation_plan(g, names)));
  const auto www = store.resolve("www.example.test.").value();
  REQUIRE(store.commit(www, stamp{}, stamp{generation{1}, fence_token{1}, 0}, history.lookup(generation{1})->find(names[0])->records));
  bool committed = false;
  history.set_collect_hook([&](generation gen) {
    if (gen != generation{2} || committed) return;
    committed = true;  // a delayed enactor lands generation 2 right now
    auto two = history.lookup(generation{2});
    REQUIRE(two);
    REQUIRE(store.commit(www, store.read_stamp(www).value(), stamp{generation{2}, fence_token{1}, 0}, two->find(names[0])->records));
  });
  auto report = history.collect({.keep_newest = 1}, 0, store);
  REQUIRE(report);
  return {report->collected.to_vector(), store.read_stamp(www)->gen};
}

}  // namespace

TEST_CASE("etcd registry: a commit landing between the live-set read and the delete protects the plan (S3)", "[etcd][registry][S3]") {
  // Proves the S3 decision is made inside the delete transaction, not by the earlier read: the
  // endpoint moves to generation 2 after the collector read the live set (which said only 1 is
  // live), and the delete of 2 must then fail and be decided again. The broken variant, which
  // trusts the earlier read, deletes the plan the endpoint now serves: the test has teeth.
  const auto [collected, live] = collect_while_an_enactor_commits<etcd::etcd_plan_registry>();
  CHECK(live == generation{2});
  CHECK(collected.empty());  // 1 was live at the read, 2 became live before the delete

  const auto [broken_collected, broken_live] =
      collect_while_an_enactor_commits<etcd::basic_etcd_plan_registry<collection_check::ignore_live>>();
  CHECK(broken_live == generation{2});
  CHECK(std::find(broken_collected.begin(), broken_collected.end(), generation{2}) != broken_collected.end());
}
