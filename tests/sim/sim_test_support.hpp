// Shared by the simulator tests: how many seeds a sweep test runs, scaled down under sanitizers
// (an ASan+UBSan build runs the simulator about ten times slower), and a helper that turns a
// failing run into a Catch2 message carrying the seed and the command that reproduces it.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include <planfence/sim/sim.hpp>

namespace planfence_sim_test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(undefined_behavior_sanitizer)
inline constexpr bool sanitized = true;
#else
inline constexpr bool sanitized = false;
#endif
#else
inline constexpr bool sanitized = false;
#endif

/// `normal` seeds, or a tenth of them (at least 200) under a sanitizer.
inline constexpr std::uint64_t seeds(std::uint64_t normal) {
  return sanitized ? (normal / 10 < 200 ? 200 : normal / 10) : normal;
}

/// The first seed in [first, first + count) whose run under `v` breaks `g`, if any.
inline std::optional<planfence::sim::run_report> first_breaking(planfence::sim::variant v, planfence::sim::guarantee g,
                                                                std::uint64_t first, std::uint64_t count) {
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    planfence::sim::run_report r = planfence::sim::run_seed(v, seed);
    if (r.broke(g)) return r;
  }
  return std::nullopt;
}

}  // namespace planfence_sim_test
