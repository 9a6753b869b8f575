// metrics.hpp under real threads: three enactors apply a planner's plans through one memory store,
// each feeding its enactor_metrics from its own thread, while a scraper thread renders the
// exposition (scanning the store and reading the registry) over and over. Under ThreadSanitizer
// this checks the header comment's claim that the event path and the render share only relaxed
// atomics (and the collector's mutex on the render side). The values must hold up too: counters
// never go backwards between renders, the store never shows an empty endpoint, and at the end each
// enactor's metrics equal its own enactor_counters.
#include <catch2/catch.hpp>

#include <planfence/metrics.hpp>

#include <atomic>
#include <map>
#include <sstream>
#include <thread>

#include "../support/fixtures.hpp"

using namespace planfence;
using namespace std::chrono_literals;

namespace {

/// The value of every sample line of an exposition, by its name and labels.
std::map<std::string, double> samples_of(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

}  // namespace

TEST_CASE("metrics rendered while enactors run stay consistent", "[metrics]") {
  const std::vector<std::string> names = planfence_test::endpoint_names(16);
  steady_clock clock;
  local_lease_authority<steady_clock> authority{clock};
  plan_registry registry{256};
  memory_store store = memory_store::make(registry, names).value();
  metrics_collector metrics;
  metrics.add_store("main", store, registry);
  metrics.add_registry("main", registry);
  using enactor_type = enactor<memory_store, local_lease_authority<steady_clock>, plan_registry, steady_clock, metrics_sink<>>;
  std::vector<std::unique_ptr<enactor_type>> zones;
  for (int z = 1; z <= 3; ++z) {
    enactor_metrics& m = metrics.add_enactor("az" + std::to_string(z), registry);
    zones.push_back(std::make_unique<enactor_type>(
        store, authority, registry, clock,
        enactor_config{.name = "az" + std::to_string(z), .lease_ttl = 30ms, .renew_margin = 15ms, .poll_interval = 1ms,
                       .retention = {.keep_newest = 4}},
        metrics_sink<>{&m}));
  }

  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& zone : zones) threads.emplace_back([&stop, &zone] { zone->run_until(stop); });
  std::atomic<std::uint64_t> renders{0};
  std::atomic<std::uint64_t> went_back{0}, empty_seen{0};
  std::thread scraper([&] {
    std::map<std::string, double> previous;
    while (!stop.load(std::memory_order_acquire)) {
      const auto now = samples_of(metrics.render());
      for (const auto& [key, value] : now) {
        const bool counter = key.find("_total{") != std::string::npos || key.find("_count{") != std::string::npos ||
                             key.find("_bucket{") != std::string::npos;
        if (counter && previous.count(key) != 0 && value < previous[key]) went_back.fetch_add(1);
        if (key.rfind("planfence_store_endpoints_empty{", 0) == 0 && value != 0) empty_seen.fetch_add(1);
      }
      previous = now;
      renders.fetch_add(1);
    }
  });

  for (std::uint64_t gen = 1; gen <= 150; ++gen) {
    plan_builder builder = [&] {
      auto latest = registry.pin_latest();
      return latest ? plan_builder::based_on(*latest, generation{gen}, 0) : plan_builder{generation{gen}, 0};
    }();
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (gen == 1 || (i + gen) % 16 == 0) {
        REQUIRE(builder.set(names[i], planfence_test::a_records({"10.2." + std::to_string(gen / 256 % 256) + "." + std::to_string(gen % 256)})));
      }
    }
    REQUIRE(registry.publish(std::move(builder).build().value()));
    std::this_thread::sleep_for(1ms);
  }
  const auto until = std::chrono::steady_clock::now() + 20s;
  // Waits for the newest plan through the metrics (what a scraper sees): the enactors' own
  // state belongs to their threads.
  for (;;) {
    const auto now = samples_of(metrics.render());
    double best = 0;
    for (int z = 1; z <= 3; ++z) best = std::max(best, now.at("planfence_enactor_applied_generation{enactor=\"az" + std::to_string(z) + "\"}"));
    if (best == 150 || std::chrono::steady_clock::now() > until) break;
    std::this_thread::sleep_for(5ms);
  }
  stop = true;
  for (auto& t : threads) t.join();
  scraper.join();

  CHECK(renders.load() > 0);
  CHECK(went_back.load() == 0);
  CHECK(empty_seen.load() == 0);
  const auto last = samples_of(metrics.render());
  double best = 0;
  for (std::size_t z = 0; z < zones.size(); ++z) {
    const std::string label = "{enactor=\"az" + std::to_string(z + 1) + "\"}";
    const enactor_counters& counters = zones[z]->counters();
    CHECK(last.at("planfence_enactor_endpoints_written_total" + label) == static_cast<double>(counters[event_kind::applied]));
    CHECK(last.at("planfence_enactor_leases_gained_total" + label) == static_cast<double>(counters[event_kind::lease_gained]));
    CHECK(last.at("planfence_enactor_runs_total{enactor=\"az" + std::to_string(z + 1) + "\",outcome=\"complete\"}") ==
          static_cast<double>(counters[event_kind::plan_applied]));
    CHECK(last.at("planfence_enactor_refusals_total{enactor=\"az" + std::to_string(z + 1) + "\",reason=\"fenced\"}") ==
          static_cast<double>(counters[event_kind::fenced]));
    best = std::max(best, last.at("planfence_enactor_applied_generation" + label));
  }
  CHECK(best == 150);
  CHECK(last.at("planfence_store_endpoints_empty{store=\"main\"}") == 0);
  CHECK(last.at("planfence_registry_latest_generation{registry=\"main\"}") == 150);
}
