// planfence/sim/scripted.hpp: the October 2025 interleaving, replayed step by step.
//
// What it is: the race from the provider's post-event summary (README; docs/simulator.md), scripted on top
// of the simulator so that exactly the same sequence of actor steps runs twice: once with the
// naive 2025 enactor and once with the fixed planfence::enactor. Three enactors (az1..az3, one
// per availability zone), a planner, and three endpoints of which the regional endpoint
// dynamodb.us-east-1.amazonaws.com. is the one that matters:
//
//   1. the planner publishes generation 1 and az1 applies it;
//   2. the planner publishes generation 2; az1 starts applying it and, just before it writes the
//      regional endpoint, is delayed (its process and its clock stall);
//   3. the planner publishes generations 3 to 8;
//   4. az2 applies generation 8 to every endpoint;
//   5. az1 wakes up and writes generation 2 to the regional endpoint;
//   6. az2 runs its clean-up;
//   7. the planner publishes generations 9 and 10 and every enactor keeps running.
//
// With the naive enactor, step 5 overwrites generation 8 (S1), step 6 deletes generation 2, which
// the endpoint now serves, and the endpoint serves nothing (S3, S4); the enactors never repair it
// (S6). With the fixed enactor, step 5 is refused by the store (fenced), step 6 deletes only what
// nothing serves, and the endpoint ends on generation 10.
//
//     auto naive = planfence::sim::replay_2025(planfence::sim::variant::naive);
//     std::fputs(naive.lines.render().c_str(), stdout);
//     std::puts(naive.explanation.c_str());
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../ids.hpp"
#include "checked_build.hpp"
#include "scenario.hpp"
#include "simulator.hpp"
#include "trace.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

/// The endpoint the 2025 outage emptied.
inline constexpr std::string_view regional_endpoint = "dynamodb.us-east-1.amazonaws.com.";

/// What one scripted replay ended with.
struct scripted_outcome {
  run_report report;
  timeline lines;
  std::string endpoint = std::string(regional_endpoint);
  generation endpoint_gen{};        ///< what the regional endpoint serves at the end
  std::size_t endpoint_records = 0;
  bool endpoint_plan_missing = false;
  bool stuck = false;               ///< it never converged to the newest plan after the script
  generation newest{};              ///< the newest plan published
  std::string explanation;          ///< why it serves what it serves, in sentences
  std::vector<std::pair<generation, std::string>> history;  ///< every plan's text form
};

/// The scripted world: no random faults (the script is the fault), 2..16 enactors.
[[nodiscard]] inline scenario scripted_scenario(std::uint32_t enactors = 3) {
  PLANFENCE_ASSERT(enactors >= 2 && enactors <= 16);
  scenario s;
  s.seed = 2025;
  // Sorted, so that plan order (by name) is store order, and the regional endpoint comes last.
  s.endpoint_names = {"dax.us-east-1.amazonaws.com.", "dynamodb-fips.us-east-1.amazonaws.com.",
                      std::string(regional_endpoint)};
  s.endpoint_labels = {"dax", "fips", "regional"};
  for (std::uint32_t i = 0; i < enactors; ++i) s.enactors.push_back({"az" + std::to_string(i + 1)});
  s.hot_endpoints = 1;  // load-balancer weights behind the regional endpoint move every plan
  s.lease_ttl = std::chrono::seconds{10};
  s.renew_margin = std::chrono::seconds{5};
  s.poll_interval = std::chrono::seconds{1};
  s.store_backoff = std::chrono::milliseconds{200};
  s.keep_newest = 3;
  s.step_cost_max = std::chrono::microseconds{40'000};
  s.heal_steps_max = 2'000;
  return s;
}

template <class System>
[[nodiscard]] scripted_outcome replay_2025(std::uint32_t enactors = 3, bool keep_history = false,
                                           std::string system_name = System::naive ? "naive" : "fixed") {
  constexpr bool naive = System::naive;
  constexpr std::size_t az1 = 0;
  constexpr std::size_t az2 = 1;
  constexpr std::uint32_t regional = 2;
  sim_options options;
  options.keep_timeline = true;
  options.watched_endpoint = regional;
  options.store_lane_title = "regional endpoint serves";
  options.keep_history = keep_history;
  options.system_name = std::move(system_name);
  simulation<System> sim{scripted_scenario(enactors), std::move(options)};
  using std::chrono::milliseconds;
  using std::chrono::seconds;

  auto finished = [&](std::size_t i, generation g) {
    auto& e = sim.enactor_at(i);
    if constexpr (naive) {
      return e.applied_generation() == g && e.state() == naive_state::pick_plan;
    } else {
      return e.applied_generation() == g && e.state() == enactor_state::idle;
    }
  };
  auto about_to_write_regional = [&](std::size_t i) {
    auto& e = sim.enactor_at(i);
    if constexpr (naive) {
      return e.state() == naive_state::write_endpoint && e.current_endpoint() == regional_endpoint;
    } else {
      // The regional endpoint sorts last, in the whole plan and in its changes alike.
      return e.state() == enactor_state::commit && sim.endpoints_done(i) + 1 == e.run_endpoints();
    }
  };
  auto about_to_clean_up = [&](std::size_t i, generation g) {
    auto& e = sim.enactor_at(i);
    if constexpr (naive) {
      return e.state() == naive_state::clean_up && e.applied_generation() == g;
    } else {
      return e.state() == enactor_state::collect && e.applied_generation() == g;
    }
  };
  // A core broken on purpose may not reach a scripted state; say so and go on with the script.
  auto script_step_ok = [&](bool reached) {
    if (!reached) sim.narrate("(the run did not reach the state this step of the script waits for; the script goes on)");
  };

  sim.narrate(naive ? "THE NAIVE 2025 ENACTOR. Generation 1: the Planner publishes the first plan; az1 applies it."
                    : "THE FIXED planfence::enactor. Generation 1: the Planner publishes the first plan; az1 takes the "
                      "lease (fence token f1), raises the store's fence floor to it and applies the plan.");
  const generation g1 = sim.publish_step(plan_kind::good);
  script_step_ok(sim.run_enactor_until(az1, [&] { return finished(az1, g1); }));

  sim.advance(seconds{2});
  sim.narrate(naive ? "The Planner publishes generation 2. az1 makes its ONE-TIME check (2 is newer than the g1 that dax "
                      "serves), then writes the endpoints one by one; the regional endpoint comes last."
                    : "The Planner publishes generation 2. az1 pins it (no clean-up can delete a pinned plan), finds "
                      "that only the regional endpoint changes, marks the apply of 2 as begun and commits it; each "
                      "commit re-checks generation and fence atomically.");
  const generation g2 = sim.publish_step(plan_kind::good);
  script_step_ok(sim.run_enactor_until(az1, [&] { return about_to_write_regional(az1); }));
  sim.narrate("az1 is delayed just before it writes the regional endpoint (in 2025: retries against lock contention). "
              "Its process stalls, and its clock with it: when it wakes up it will believe no time has passed.");
  sim.pause_until_resumed(az1, true);

  sim.narrate("Meanwhile the Planner keeps working: generations 3 to 8.");
  generation newest = g2;
  for (int i = 0; i < 6; ++i) {
    sim.advance(milliseconds{2'500});
    newest = sim.publish_step(plan_kind::good);
  }
  const generation g8 = newest;

  sim.narrate(naive ? "az2 takes the newest plan, generation 8. Its one-time check passes (dax serves g2) and it writes "
                      "every endpoint."
                    : "az1's 10 s lease has lapsed. az2 acquires the lease with a larger fence token (f2), raises the "
                      "store's fence floor to f2, pins generation 8 and applies it: what 8 changes since the applied 1, and "
                      "what the begun, unfinished apply of 2 may have touched.");
  script_step_ok(sim.run_enactor_until(az2, [&] { return about_to_clean_up(az2, g8); }));

  sim.narrate(naive ? "az1 wakes up and finishes what it started 15 s ago: it writes generation 2 to the regional "
                      "endpoint. Its freshness check is stale, and the write is unconditional."
                    : "az1 wakes up and finishes what it started 15 s ago: it commits generation 2 to the regional "
                      "endpoint. Its clock stalled, so it believes its lease is still valid; the store decides.");
  sim.resume(az1);
  sim.step_enactor(az1);
  script_step_ok(sim.run_enactor_until(az1, [&] {
    if constexpr (naive) {
      return sim.enactor_at(az1).state() == naive_state::pick_plan;
    } else {
      return sim.enactor_at(az1).state() == enactor_state::acquire_lease;
    }
  }, 10));

  sim.narrate(naive ? "az2 runs its clean-up: it deletes every plan more than 3 generations older than the one it just "
                      "applied (8), by number alone: generations 1 to 4. Generation 2 is what the regional endpoint "
                      "now serves."
                    : "az2 collects old plans as lease holder: only plans that no endpoint serves, that no apply holds, "
                      "and that are not among the newest 3; the live set is read after each plan is closed to pins.");
  sim.step_enactor(az2);

  sim.advance(milliseconds{2'500});
  sim.narrate("The automation goes on: the Planner publishes generations 9 and 10, and every enactor keeps running "
              "(seeded scheduler). S6 asks every endpoint to reach generation 10 within " +
              std::to_string(sim.scene().heal_steps_max) + " steps.");
  sim.publish_step(plan_kind::good);
  sim.heal_and_converge(false);

  scripted_outcome out;
  out.report = sim.report();
  out.lines = sim.take_timeline();
  out.history = sim.history();
  const endpoint_outcome& end = out.report.endpoints[regional];
  out.endpoint_gen = end.gen;
  out.endpoint_records = end.records;
  out.endpoint_plan_missing = end.plan_missing;
  out.stuck = !out.report.converged;
  out.newest = out.report.final_gen;

  const std::string gen_text = "generation " + std::to_string(end.gen.value());
  const std::string newest_text = "generation " + std::to_string(out.newest.value());
  if (end.plan_missing || end.records == 0) {
    out.explanation = out.endpoint + " serves " + std::to_string(end.records) + " records. Its stamp names " + gen_text +
                      (end.plan_missing ? ", a plan that was deleted" : "") + ".";
    if (out.report.broke(guarantee::s1)) {
      out.explanation += " az1's delayed write put " + gen_text + " there after az2 had applied generation " +
                         std::to_string(g8.value()) + " (S1: the endpoint went backwards).";
    }
    if (out.report.broke(guarantee::s3)) {
      out.explanation += " az2's clean-up then deleted " + gen_text + " because it was more than 3 generations older "
                         "than the plan az2 had applied, not because nothing served it (S3).";
    }
    if (out.stuck) {
      std::string stopped;
      if constexpr (naive) {
        for (std::size_t i = 0; i < enactors; ++i) {
          if (!sim.enactor_at(i).stopped()) continue;
          if (!stopped.empty()) stopped += ", ";
          stopped += "az" + std::to_string(i + 1);
        }
      }
      out.explanation += " Nothing repairs it: " +
                         (stopped.empty() ? std::string("no enactor") : stopped) +
                         " stopped on finding an endpoint that refers to a deleted plan, and the others' one-time check "
                         "sees that dax already serves " + newest_text + " and finds nothing to do (S6). In 2025 operators "
                         "repaired the zone by hand.";
    }
  } else {
    out.explanation = out.endpoint + " serves " + std::to_string(end.records) + " records of " + gen_text +
                      (end.gen == out.newest ? ", the newest plan." : ".");
    out.explanation += " az1's late commit of generation 2 was refused by the store: it carried fence f1 after the "
                       "store had raised its floor to az2's f2, and the endpoint already served a newer generation "
                       "(S1, S2). Clean-up removed only plans that nothing served or held (S3), and the lease holder "
                       "went on to the newest plan (S6).";
  }
  if (!out.report.failed()) {
    out.explanation += " No guarantee was broken.";
  } else {
    out.explanation += " Guarantees broken: " + to_string(out.report.mask()) + ".";
  }
  return out;
}

/// The scripted replay under `v` (naive or fixed; a broken variant replays with the fixed script).
[[nodiscard]] inline scripted_outcome replay_2025(variant v, std::uint32_t enactors = 3, bool keep_history = false) {
  return with_system(v, [&](auto tag) {
    using system = typename decltype(tag)::type;
    return replay_2025<system>(enactors, keep_history, std::string(to_string(v)));
  });
}

}  // namespace sim
}  // namespace v1
}  // namespace planfence
