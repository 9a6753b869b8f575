// bench/change_fixture.hpp: what a plan costs through the enactor when it changes all of a store's
// endpoints, and when it changes 1% of them (the change-following apply, docs/design.md), on any
// store: the same code measures the memory store (apply_bench), etcd (etcd_bench) and the RFC 2136
// servers (rfc2136_bench). Benchmarks only; not installed.
//
// One measurement: a fresh plan registry and lease authority; the enactor (default config, its
// batch the store's preferred_batch_max unless told) applies a plan that gives every endpoint new records (the "full" plan: every
// endpoint written, whatever the store's marks say), then a plan built from it with
// plan_builder::based_on that changes every 100th endpoint (the "1%" plan). Each is timed from the
// publish to the enactor's idle state; the store writes are the enactor's `applied` events.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "bench_fixtures.hpp"

namespace planfence_bench {

struct change_costs {
  double full_seconds = 0;
  double change_seconds = 0;
  std::uint64_t full_writes = 0;
  std::uint64_t change_writes = 0;
  bool followed = false;  ///< the 1% run wrote only the plan's changes
  std::uint32_t batch_max = 0;  ///< the enactor's batch (enactor::batch_max(): the store's preferred one at 0)
  std::string error;      ///< not empty: the run did not complete (the enactor's last store error)
};

/// The costs of several measurements, and the counters every change benchmark reports: full_ms,
/// change_ms, full_writes, change_writes (per iteration), time_ratio and write_ratio (change over
/// full). `State` is benchmark::State (a template, so that this header needs no benchmark.h).
struct change_totals {
  double full_seconds = 0, change_seconds = 0, full_writes = 0, change_writes = 0;
  void add(const change_costs& c) noexcept {
    full_seconds += c.full_seconds;
    change_seconds += c.change_seconds;
    full_writes += static_cast<double>(c.full_writes);
    change_writes += static_cast<double>(c.change_writes);
  }
  template <class State>
  void report(State& state) const {
    const double iterations = static_cast<double>(state.iterations());
    state.counters["full_ms"] = 1000 * full_seconds / iterations;
    state.counters["change_ms"] = 1000 * change_seconds / iterations;
    state.counters["full_writes"] = full_writes / iterations;
    state.counters["change_writes"] = change_writes / iterations;
    state.counters["time_ratio"] = change_seconds / full_seconds;
    state.counters["write_ratio"] = change_writes / full_writes;
  }
};

/// Errors only (the events of a benchmark run are counted, not printed).
struct last_error_sink {
  std::string* out;
  void operator()(const planfence::event& e) const {
    if (e.kind == planfence::event_kind::store_error) *out = std::string(e.detail);
  }
};

/// Applies a full plan, then a 1% plan, to the endpoints `names` of `store` (generations from
/// `first_gen`, which must be above every generation the store has seen) and returns their costs.
/// `variant` picks the full plan's addresses (a different one per call, so that every endpoint
/// changes); `records(i, variant)` gives endpoint i's records (weighted_records unless told).
/// `batch_max` 0 (the default) leaves the enactor at the store's preferred batch
/// (planfence::preferred_batch_max); the batch used is returned in change_costs::batch_max.
/// `between`, when given, is called after the full plan and before the 1% plan. Blocking.
template <class Store>
change_costs measure_change(Store& store, const std::vector<std::string>& names, std::uint64_t first_gen,
                            std::uint32_t variant, std::uint32_t batch_max = 0, bool verify_digest = true,
                            const std::function<void()>& between = {},
                            const std::function<planfence::record_set(std::size_t, std::uint32_t)>& records = weighted_records) {
  using namespace planfence;
  change_costs out;
  plan_registry registry;
  steady_clock clock;
  local_lease_authority<steady_clock> authority{clock};
  std::string last_error;
  enactor_config config;
  config.name = "bench";
  config.batch_max = batch_max;
  config.collect = false;
  config.poll_interval = std::chrono::milliseconds{1};
  config.store_backoff = std::chrono::milliseconds{1};
  config.zone_change_share_max = 1.0;
  config.verify_digest = verify_digest;
  enactor<Store, local_lease_authority<steady_clock>, plan_registry, steady_clock, last_error_sink> e{
      store, authority, registry, clock, config, last_error_sink{&last_error}};
  out.batch_max = e.batch_max();
  auto run = [&](generation gen) {
    const auto began = std::chrono::steady_clock::now();
    const std::uint64_t before = e.counters()[event_kind::applied];
    for (int steps = 0; steps < 10'000'000; ++steps) {
      static_cast<void>(e.step());
      if (e.state() == enactor_state::idle && e.applied_generation() == gen) break;
      if (e.state() == enactor_state::idle && !last_error.empty()) break;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    if (e.applied_generation() != gen && out.error.empty()) {
      out.error = "generation " + std::to_string(gen.value()) + " not applied: " + last_error;
    }
    return std::pair{seconds, e.counters()[event_kind::applied] - before};
  };
  plan_builder full{generation{first_gen}, 1'761'200'000'000};
  for (std::size_t i = 0; i < names.size(); ++i) static_cast<void>(full.set(names[i], records(i, variant)));
  full.intend_bulk_change();
  pinned_plan first = registry.publish(std::move(full).build().value()).value();
  std::tie(out.full_seconds, out.full_writes) = run(generation{first_gen});
  if (between) between();  // e.g. a store's own counters, between the two plans
  auto changed = plan_builder::based_on(*first, generation{first_gen + 1}, 1'761'200'000'001);
  for (std::size_t i = 0; i < names.size(); i += 100) static_cast<void>(changed.set(names[i], records(i, variant + 1)));
  first.reset();
  { auto p = registry.publish(std::move(changed).build().value()); }
  std::tie(out.change_seconds, out.change_writes) = run(generation{first_gen + 1});
  out.followed = e.run_follows_changes();
  e.release();
  return out;
}

}  // namespace planfence_bench
