// planfence/sim/scenario.hpp: everything one 64-bit seed decides.
//
// What it is: the description of one simulated run: how many enactors and endpoints, how the
// enactors are tuned, how their clocks drift, how the planner behaves, and which faults are
// switched on and how often. make_scenario(seed) derives all of it from the seed through
// xoshiro256** (random.hpp), so a seed names a whole scenario on every platform; the scheduler's
// own choices during the run come from the same seed (simulator.hpp).
//
//     planfence::sim::scenario s = planfence::sim::make_scenario(0x2a);
//     std::puts(s.describe().c_str());
//
// Every fault class is off unless the seed switches it on (each with its own probability), so
// the sweep covers quiet runs, single faults and mixtures. The knobs and their ranges are listed
// in docs/simulator.md; change them there too.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "../config.hpp"
#include "checked_build.hpp"
#include "fault_store.hpp"
#include "random.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

using std::chrono::milliseconds;

/// One enactor's host: its clock and how slow it is.
struct enactor_profile {
  std::string name;
  std::chrono::nanoseconds clock_offset{0};  ///< local minus true time at the start
  std::uint32_t clock_rate_per_mille = 1'000;  ///< 1'000: no drift
  milliseconds jitter_max{0};                ///< extra delay after each step, uniform in [0, max]
};

/// The faults a scenario switches on. A zero probability means off.
struct fault_mix {
  // Enactor hosts (per scheduler step).
  per_million pause{};                 ///< a random enactor stops taking steps for a while
  milliseconds pause_min{0}, pause_max{0};
  per_million pause_stalls_clock{};    ///< share of pauses during which its clock stands still
  per_million crash{};                 ///< a random enactor crashes (forgets volatile state)
  milliseconds down_min{0}, down_max{0};
  per_million clock_jump{};            ///< true time leaps forward (every lease may lapse)
  milliseconds jump_min{0}, jump_max{0};
  // The store.
  std::array<per_million, fault_point_count> store{};  ///< per call, by fault_point
  per_million outage{};                ///< per step: the store becomes unavailable for a while
  milliseconds outage_min{0}, outage_max{0};
  // The planner (per published plan).
  per_million burst{};                 ///< the next plans follow each other at once
  std::uint32_t burst_length_max = 0;
  per_million bulk_change{};           ///< an intended change of every endpoint (marked)
  per_million intended_empty{};        ///< an endpoint deliberately emptied (marked intent=empty)
  per_million accidental_empty{};      ///< a plan empties an endpoint by mistake (S4 must refuse)
  per_million corrupt_in_memory{};     ///< a published plan's content no longer matches its digest (S7)
  per_million corrupt_in_transit{};    ///< the plan text is damaged on its way (the parser must refuse, S7)
  per_million equivocation{};          ///< the planner tries to reuse a generation for other content (S5)
  /// An ordinary plan gives one changed endpoint back the records it had in the plan before
  /// (a flap: what a change-following apply must not mistake for "unchanged" while an apply of
  /// the plan in between has begun and not finished). Its own random stream: no other draw moves.
  per_million revert{};
};

/// One simulated run (see the header comment).
struct scenario {
  std::uint64_t seed = 0;
  std::vector<std::string> endpoint_names;   ///< canonical; the store's order
  std::vector<std::string> endpoint_labels;  ///< short names for the timeline
  std::vector<enactor_profile> enactors;
  std::uint32_t hot_endpoints = 1;  ///< ordinary plans change only these (the first ones)
  std::uint32_t generations = 10;   ///< plans the planner publishes during the fault phase
  milliseconds publish_interval_min{50}, publish_interval_max{300};
  // Enactor tuning (both kinds).
  milliseconds lease_ttl{1'000};
  milliseconds renew_margin{500};
  milliseconds poll_interval{100};
  milliseconds store_backoff{20};
  std::uint32_t store_retries_max = 3;
  std::uint32_t conflict_retries_max = 8;
  /// Fixed enactor: endpoints per store call (enactor_config::batch_max). 1 in half the seeds,
  /// so that interleavings endpoint by endpoint stay as likely as before batches existed.
  std::uint32_t batch_max = 1;
  /// Fixed enactor: the retention policy keeps the newest `keep_newest`. Naive enactor: the
  /// clean-up deletes plans more than `keep_newest` generations older than the one it applied.
  std::uint32_t keep_newest = 3;
  std::chrono::microseconds step_cost_max{2'000};  ///< virtual time one step takes, at most
  milliseconds fault_tail{500};  ///< faults go on this long after the planner's last plan
  fault_mix faults{};
  std::uint64_t fault_steps_max = 20'000;  ///< hard bound on the fault phase
  /// S6: once faults are healed and the final plan is published, every endpoint must serve it
  /// within this many steps.
  std::uint64_t heal_steps_max = 4'000;

  [[nodiscard]] std::string describe() const;
};

/// What a caller may force on top of what the seed decides.
struct scenario_overrides {
  std::optional<std::uint32_t> enactors;   ///< 1..16
  std::optional<std::uint32_t> endpoints;  ///< 1..64
  bool no_faults = false;                  ///< switch every fault off (a quiet run)
};

namespace text {
inline std::string format_ms(milliseconds d) { return std::to_string(d.count()) + " ms"; }
inline std::string format_share(per_million p) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f%%", static_cast<double>(p.value) / 10'000.0);
  return buffer;
}
}  // namespace text

/// The scenario seed `seed` names (see docs/simulator.md for the ranges).
[[nodiscard]] inline scenario make_scenario(std::uint64_t seed, const scenario_overrides& overrides = {}) {
  xoshiro256 rng{seed};
  scenario s;
  s.seed = seed;
  auto ms_between = [&](std::int64_t low, std::int64_t high) {
    return milliseconds{static_cast<std::int64_t>(rng.between(static_cast<std::uint64_t>(low), static_cast<std::uint64_t>(high)))};
  };
  auto share = [&](std::uint32_t low, std::uint32_t high) {
    return per_million{static_cast<std::uint32_t>(rng.between(low, high))};
  };
  auto switched_on = [&](std::uint32_t per_mille) { return rng.chance(per_million{per_mille * 1'000}); };

  // Shape. Three enactors (one per availability zone, as in 2025) is the most likely.
  static constexpr std::uint32_t enactor_weights[] = {10, 25, 40, 15, 10};  // 1..5 enactors
  std::uint32_t pick = static_cast<std::uint32_t>(rng.below(100));
  std::uint32_t enactors = 1;
  for (std::uint32_t w : enactor_weights) {
    if (pick < w) break;
    pick -= w;
    ++enactors;
  }
  std::uint32_t endpoints = static_cast<std::uint32_t>(rng.between(2, 8));
  if (overrides.enactors) enactors = *overrides.enactors;
  if (overrides.endpoints) endpoints = *overrides.endpoints;
  PLANFENCE_ASSERT(enactors >= 1 && enactors <= 16);
  PLANFENCE_ASSERT(endpoints >= 1 && endpoints <= 64);
  for (std::uint32_t i = 0; i < endpoints; ++i) {
    s.endpoint_names.push_back("e" + std::to_string(i) + ".db.sim.example.");
    s.endpoint_labels.push_back("e" + std::to_string(i));
  }
  // The S4 zone guard refuses an unmarked plan that changes more than half the endpoints an
  // enactor last applied; ordinary plans stay within half so that only marked plans are large.
  s.hot_endpoints = endpoints / 2 == 0 ? 1 : endpoints / 2;
  s.generations = static_cast<std::uint32_t>(rng.between(3, 30));
  s.publish_interval_min = ms_between(5, 100);
  s.publish_interval_max = s.publish_interval_min + ms_between(0, 400);

  // Tuning.
  s.lease_ttl = ms_between(300, 3'000);
  s.renew_margin = milliseconds{s.lease_ttl.count() / 2};
  s.poll_interval = ms_between(20, 200);
  s.store_backoff = ms_between(5, 50);
  s.store_retries_max = static_cast<std::uint32_t>(rng.between(1, 4));
  s.conflict_retries_max = static_cast<std::uint32_t>(rng.between(1, 8));
  s.keep_newest = static_cast<std::uint32_t>(rng.between(1, 4));
  s.step_cost_max = std::chrono::microseconds{static_cast<std::int64_t>(rng.between(0, 3'000))};
  s.fault_tail = ms_between(0, 2 * s.lease_ttl.count());

  // Hosts: clock offsets and drift, slow machines.
  const std::int64_t ttl_ms = s.lease_ttl.count();
  for (std::uint32_t i = 0; i < enactors; ++i) {
    enactor_profile p;
    p.name = "az" + std::to_string(i + 1);
    if (switched_on(300)) {
      const auto offset_ms = static_cast<std::int64_t>(rng.between(0, 2 * static_cast<std::uint64_t>(ttl_ms))) - ttl_ms;
      p.clock_offset = milliseconds{offset_ms};
    }
    if (switched_on(300)) p.clock_rate_per_mille = static_cast<std::uint32_t>(rng.between(500, 2'000));
    if (switched_on(200)) p.jitter_max = ms_between(0, 2 * ttl_ms);
    s.enactors.push_back(std::move(p));
  }

  // Faults: each class on or off by the seed, then how often.
  fault_mix& f = s.faults;
  if (switched_on(500)) {
    f.pause = share(1'000, 30'000);
    f.pause_min = ms_between(10, 100);
    f.pause_max = f.pause_min + ms_between(0, 4 * ttl_ms);
    f.pause_stalls_clock = share(0, 1'000'000);
  }
  if (switched_on(350)) {
    f.crash = share(500, 10'000);
    f.down_min = ms_between(10, 100);
    f.down_max = f.down_min + ms_between(0, 3 * ttl_ms);
  }
  if (switched_on(200)) {
    f.clock_jump = share(500, 5'000);
    f.jump_min = ms_between(ttl_ms / 2, ttl_ms);
    f.jump_max = f.jump_min + ms_between(0, 2 * ttl_ms);
  }
  for (auto& point : f.store) {
    if (switched_on(250)) point = share(5'000, 200'000);
  }
  if (switched_on(200)) {
    f.outage = share(500, 5'000);
    f.outage_min = ms_between(10, 100);
    f.outage_max = f.outage_min + ms_between(0, 2 * ttl_ms);
  }
  if (switched_on(500)) {
    f.burst = share(100'000, 500'000);
    f.burst_length_max = static_cast<std::uint32_t>(rng.between(2, 8));
  }
  if (switched_on(200)) f.bulk_change = share(50'000, 300'000);
  if (switched_on(200)) f.intended_empty = share(50'000, 300'000);
  if (switched_on(250)) f.accidental_empty = share(50'000, 300'000);
  if (switched_on(200)) f.corrupt_in_memory = share(50'000, 300'000);
  if (switched_on(200)) f.corrupt_in_transit = share(50'000, 500'000);
  if (switched_on(200)) f.equivocation = share(50'000, 500'000);
  // Drawn last, so that every earlier draw (and so every seed's scenario before batches) is kept.
  if (switched_on(500)) s.batch_max = static_cast<std::uint32_t>(rng.between(2, 8));
  // After it, for the same reason.
  if (switched_on(500)) f.revert = share(200'000, 800'000);
  if (overrides.no_faults) {
    f = fault_mix{};
    for (auto& p : s.enactors) {
      p.clock_offset = {};
      p.clock_rate_per_mille = 1'000;
      p.jitter_max = {};
    }
  }
  return s;
}

inline std::string scenario::describe() const {
  using text::format_ms;
  using text::format_share;
  char seed_text[32];
  std::snprintf(seed_text, sizeof seed_text, "0x%llx", static_cast<unsigned long long>(seed));
  std::string out = "seed " + std::string(seed_text) + ": " + std::to_string(enactors.size()) + " enactor(s), " +
                    std::to_string(endpoint_names.size()) + " endpoint(s) (" + std::to_string(hot_endpoints) +
                    " changed by ordinary plans), " + std::to_string(generations) + " plans every " +
                    format_ms(publish_interval_min) + ".." + format_ms(publish_interval_max) + "\n";
  out += "  lease ttl " + format_ms(lease_ttl) + ", renew margin " + format_ms(renew_margin) + ", poll " +
         format_ms(poll_interval) + ", store retries " + std::to_string(store_retries_max) + ", keep newest " +
         std::to_string(keep_newest) + ", batches of " + std::to_string(batch_max) + "\n";
  for (const enactor_profile& p : enactors) {
    if (p.clock_offset.count() == 0 && p.clock_rate_per_mille == 1'000 && p.jitter_max.count() == 0) continue;
    out += "  " + p.name + ": clock offset " +
           std::to_string(std::chrono::duration_cast<milliseconds>(p.clock_offset).count()) + " ms, rate " +
           std::to_string(p.clock_rate_per_mille) + "/1000, slowness up to " + format_ms(p.jitter_max) + " a step\n";
  }
  const fault_mix& f = faults;
  std::string on;
  auto add = [&](const std::string& text) { on += (on.empty() ? "" : ", ") + text; };
  if (f.pause.value) add("pauses " + format_share(f.pause) + "/step (" + format_ms(f.pause_min) + ".." + format_ms(f.pause_max) + ", clock stalls in " + format_share(f.pause_stalls_clock) + ")");
  if (f.crash.value) add("crashes " + format_share(f.crash) + "/step (down " + format_ms(f.down_min) + ".." + format_ms(f.down_max) + ")");
  if (f.clock_jump.value) add("clock jumps " + format_share(f.clock_jump) + "/step (" + format_ms(f.jump_min) + ".." + format_ms(f.jump_max) + ")");
  for (std::size_t i = 0; i < fault_point_count; ++i) {
    if (f.store[i].value) add("store " + std::string(to_string(static_cast<fault_point>(i))) + " " + format_share(f.store[i]));
  }
  if (f.outage.value) add("store outages " + format_share(f.outage) + "/step (" + format_ms(f.outage_min) + ".." + format_ms(f.outage_max) + ")");
  if (f.burst.value) add("planner bursts " + format_share(f.burst) + " (up to " + std::to_string(f.burst_length_max) + ")");
  if (f.bulk_change.value) add("bulk changes " + format_share(f.bulk_change));
  if (f.intended_empty.value) add("intended empties " + format_share(f.intended_empty));
  if (f.accidental_empty.value) add("accidental empties " + format_share(f.accidental_empty));
  if (f.corrupt_in_memory.value) add("corrupt plans " + format_share(f.corrupt_in_memory));
  if (f.corrupt_in_transit.value) add("damaged plan text " + format_share(f.corrupt_in_transit));
  if (f.equivocation.value) add("equivocation attempts " + format_share(f.equivocation));
  if (f.revert.value) add("flapping endpoints " + format_share(f.revert));
  out += "  faults: " + (on.empty() ? std::string("none") : on) + "\n";
  return out;
}

}  // namespace sim
}  // namespace v1
}  // namespace planfence
