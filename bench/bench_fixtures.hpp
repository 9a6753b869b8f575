// bench/bench_fixtures.hpp: the endpoint names and record sets every planfence benchmark builds
// its plans from, so that apply_bench and scale_bench measure the same shape of data (a regional
// plan: long endpoint names, two weighted A records each). Benchmarks only; not installed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include "planfence/planfence.hpp"

namespace planfence_bench {

/// A realistic endpoint name (34 characters, like a regional database endpoint).
inline std::string endpoint_name(std::size_t i) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "svc-%07zu.us-east-1.example.com.", i);
  return buffer;
}

/// Two weighted A records, as a DNS plan assigns them to one endpoint; `variant` changes the
/// addresses (a new plan for the endpoint).
inline planfence::record_set weighted_records(std::size_t i, std::uint32_t variant) {
  auto address = [&](std::size_t host) {
    return std::to_string(10 + variant % 200) + "." + std::to_string((i >> 8) & 255) + "." +
           std::to_string(i & 255) + "." + std::to_string(host);
  };
  auto set = planfence::record_set::make({
      planfence::make_record(planfence::record_type::a, 60, address(1), std::uint8_t{10}).value(),
      planfence::make_record(planfence::record_type::a, 60, address(2), std::uint8_t{20}).value(),
  });
  return std::move(set).value();
}

}  // namespace planfence_bench
