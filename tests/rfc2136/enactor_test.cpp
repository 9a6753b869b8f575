// Proves that planfence's fixed enactor runs on the RFC 2136 store unchanged and keeps its
// guarantees against a real knotd: three enactor threads (one per availability zone, each with
// its own store, so its own connections) share a lease authority and a plan registry while a
// planner publishes generations; leases are short and one enactor stalls past its lease holding a
// plan, as the delayed 2025 enactor did. A watcher reads the stamps from the server throughout:
// no endpoint's generation ever decreases (S1); every lease holder's first commit follows a fence
// raise at the server, so a stalled holder that wakes finds its lease lapsed or is fenced (S2);
// once the planner stops, every endpoint converges to the newest plan and serves exactly its
// records (S6).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "knot_fixture.hpp"

using namespace planfence;
using namespace std::chrono_literals;

namespace {

struct counting_sink {
  std::atomic<std::uint64_t>* fenced;
  std::atomic<std::uint64_t>* applied;
  void operator()(const event& e) const {
    if (e.kind == event_kind::fenced) fenced->fetch_add(1);
    if (e.kind == event_kind::applied) applied->fetch_add(1);
  }
};

}  // namespace

TEST_CASE("rfc2136 enactor: three enactors, leases and a stall, converging on knotd", "[enactor][knotd][S1][S2][S6]") {
  auto knot = planfence_test::start_knot();
  const std::vector<std::string> names = {"db.example.test.", "api.example.test.", "www.example.test."};
  auto open = [&] { return rfc2136_store::open_uri(knot.uri("example.test."), names).value(); };

  plan_registry registry;
  steady_clock clock;
  local_lease_authority<steady_clock> authority{clock};
  std::atomic<std::uint64_t> fenced{0}, applied{0};
  using enactor_type = enactor<rfc2136_store, local_lease_authority<steady_clock>, plan_registry, steady_clock, counting_sink>;

  auto plan_of = [&](std::uint64_t gen) {
    std::map<std::string, std::vector<std::string>> endpoints;
    for (const auto& n : names) endpoints[n] = {planfence_test::address_of(gen), "192.0.2.1"};
    return planfence_test::make_plan(gen, endpoints, /*bulk_change=*/true);
  };
  REQUIRE(registry.publish(plan_of(1)));

  std::atomic<bool> stop{false}, planner_done{false};
  std::vector<rfc2136_store> stores;
  for (int z = 0; z < 3; ++z) stores.push_back(open());
  std::vector<std::unique_ptr<enactor_type>> zones;
  for (int z = 0; z < 3; ++z) {
    zones.push_back(std::make_unique<enactor_type>(
        stores[static_cast<std::size_t>(z)], authority, registry, clock,
        enactor_config{.name = "az" + std::to_string(z + 1), .lease_ttl = 300ms, .renew_margin = 150ms,
                       .poll_interval = 10ms, .retention = {.keep_newest = 3}},
        counting_sink{&fenced, &applied}));
  }
  std::vector<std::thread> threads;
  for (std::size_t z = 0; z < zones.size(); ++z) {
    threads.emplace_back([&, z] {
      auto next_stall = std::chrono::steady_clock::now() + 400ms + 300ms * static_cast<int>(z);
      while (!stop.load()) {
        const step_result r = zones[z]->step();
        if (!r.progressed) std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(r.wait, 5ms));
        if (z == 0 && !planner_done.load() && std::chrono::steady_clock::now() >= next_stall) {
          std::this_thread::sleep_for(450ms);  // past its 300 ms lease, holding whatever it holds
          next_stall = std::chrono::steady_clock::now() + 700ms;
        }
      }
    });
  }
  std::atomic<std::size_t> regressions{0};
  std::thread watcher([&] {
    rfc2136_store reader = open();
    std::vector<std::uint64_t> highest(names.size(), 0);
    while (!stop.load()) {
      for (std::uint32_t e = 0; e < names.size(); ++e) {
        auto s = reader.read_stamp(endpoint_handle{e});
        if (!s) continue;
        if (s->gen.value() < highest[e]) regressions.fetch_add(1);
        highest[e] = std::max(highest[e], s->gen.value());
      }
      std::this_thread::sleep_for(5ms);
    }
  });

  constexpr std::uint64_t newest = 12;
  for (std::uint64_t g = 2; g <= newest; ++g) {
    std::this_thread::sleep_for(120ms);
    REQUIRE(registry.publish(plan_of(g)));
  }
  planner_done.store(true);
  // S6: once the planner stops (and the stalls with it), every endpoint converges.
  rfc2136_store reader = open();
  bool converged = false;
  const auto give_up = std::chrono::steady_clock::now() + 15s;
  while (!converged && std::chrono::steady_clock::now() < give_up) {
    converged = true;
    for (std::uint32_t e = 0; e < names.size(); ++e) {
      auto s = reader.read_stamp(endpoint_handle{e});
      converged = converged && s && s->gen == generation{newest};
    }
    if (!converged) std::this_thread::sleep_for(20ms);
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();
  watcher.join();

  const std::uint64_t floor = reader.read_floor().value().value_or(0);
  INFO("applied " << applied.load() << ", fenced " << fenced.load() << ", floor " << floor << ", latest grant "
                  << authority.current_fence().value());
  CHECK(converged);
  CHECK(regressions.load() == 0);
  std::uint64_t writer_token = 0;
  for (std::uint32_t e = 0; e < names.size(); ++e) {
    const auto served = reader.served(endpoint_handle{e}).value();
    REQUIRE(served.size() == 2);
    CHECK(served[0].rdata == planfence_test::address_of(newest));
    CHECK(served[1].rdata == "192.0.2.1");
    writer_token = std::max(writer_token, reader.read_stamp(endpoint_handle{e}).value().fence.value());
  }
  // Every holder raised the server's floor to its token before its first commit, so the floor
  // is at least the token of whoever wrote last (a takeover's token when one happened; whether
  // one lands inside the stall window depends on the machine's load, so it is not required).
  CHECK(writer_token >= 1);
  CHECK(floor >= writer_token);
  CHECK(floor <= authority.current_fence().value());
}
