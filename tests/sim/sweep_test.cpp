// Proves the headline claims over many random schedules: 10,000 seeds of the fixed
// planfence::enactor break no guarantee (each seed: enactors, endpoints, delays, crashes, clock
// skew, store faults and planner faults decided by the seed, S1..S7 checked after every step,
// S6 after healing), and a sweep of the naive 2025 enactor finds violations of S1, S3, S4, S6
// and S7, so the same oracle is seen to have teeth. A failure prints every failing seed found with
// the command that replays it. Under a sanitizer the sweeps run a tenth of the seeds.
#include <catch2/catch.hpp>

#include <string>

#include "sim_test_support.hpp"

using namespace planfence;
using namespace planfence::sim;
using planfence_sim_test::seeds;

TEST_CASE("sweep: 10,000 seeds of the fixed enactor break no guarantee", "[sim][sweep]") {
  sweep_options options;
  options.seeds = seeds(10'000);
  options.variants = {variant::fixed};
  options.examples_max = 10;
  const sweep_result result = sweep(options);
  const variant_sweep& fixed = result.of(variant::fixed);
  for (const run_report& r : fixed.examples) UNSCOPED_INFO(failure_message(r, variant::fixed));
  CHECK(fixed.failing == 0);
  CHECK(fixed.steps > options.seeds * 100);  // the runs did work
  WARN(std::to_string(options.seeds) + " fixed seeds in " + std::to_string(result.wall_seconds) + " s wall, " +
       std::to_string(result.cpu_seconds) + " s CPU on " + std::to_string(result.jobs) + " thread(s); the slowest " +
       "convergence after healing took " + std::to_string(fixed.steps_to_converge_max) + " steps");
}

TEST_CASE("sweep: the naive enactor breaks S1, S3, S4, S6 and S7 on the same kind of seeds", "[sim][sweep]") {
  sweep_options options;
  options.seeds = seeds(2'000);
  options.variants = {variant::naive};
  const sweep_result result = sweep(options);
  const variant_sweep& naive = result.of(variant::naive);
  CHECK(naive.failing > options.seeds / 10);
  for (guarantee g : {guarantee::s1, guarantee::s3, guarantee::s4, guarantee::s6, guarantee::s7}) {
    CAPTURE(to_string(g));
    CHECK(naive.by_guarantee[static_cast<std::size_t>(g)] > 0);
  }
  // The naive design has no fence to break, and the registry it shares refuses equivocation.
  CHECK(naive.by_guarantee[static_cast<std::size_t>(guarantee::s2)] == 0);
  CHECK(naive.by_guarantee[static_cast<std::size_t>(guarantee::s5)] == 0);
  REQUIRE(naive.first_failing_seed.has_value());
  REQUIRE_FALSE(naive.examples.empty());
  const std::string message = failure_message(naive.examples.front(), variant::naive);
  CHECK(message.find("--seed " + format_seed(*naive.first_failing_seed)) != std::string::npos);
}

TEST_CASE("sweep: fixed scenarios with many enactors break no guarantee", "[sim][sweep]") {
  // The seed decides 1..5 enactors; force 8 to stress lease hand-overs and fencing.
  sweep_options options;
  options.seeds = seeds(1'000);
  options.first_seed = 1'000'001;
  options.variants = {variant::fixed};
  options.overrides.enactors = 8;
  const sweep_result result = sweep(options);
  for (const run_report& r : result.of(variant::fixed).examples) UNSCOPED_INFO(failure_message(r, variant::fixed, "build/examples/outage_replay", options.overrides));
  CHECK(result.of(variant::fixed).failing == 0);
}
