// bench/bench_fixtures.hpp: the endpoint names and record sets every planfence benchmark builds
// its plans from, so that apply_bench and scale_bench measure the same shape of data (a regional
// plan: long endpoint names, two weighted A records each). Benchmarks only; not installed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

/// The thread counts of every multi-threaded benchmark: 1 and 2 (the targets are stated at
/// these), then the powers of two below `machine_threads`, then `machine_threads` itself, never
/// more than threads_cap. So a 2-CPU machine runs 1 and 2, a 12-CPU one 1, 2, 4, 8 and 12.
/// The cap keeps each thread's slice of BM_SnapshotReadManyEndpoints' 16,384 endpoints larger
/// than the 64-entry read cache (at 256 threads a slice of 64 would fit it, and every read would
/// hit), and far below the epoch domain's 512 thread slots.
inline constexpr unsigned threads_cap = 128;
inline std::vector<int> thread_counts(unsigned machine_threads) {
  const unsigned top = machine_threads < threads_cap ? machine_threads : threads_cap;
  std::vector<int> out{1, 2};
  for (unsigned n = 4; n < top; n *= 2) out.push_back(static_cast<int>(n));
  if (top > 2) out.push_back(static_cast<int>(top));
  return out;
}

/// How many threads the multi-threaded benchmarks go up to: the environment variable
/// PLANFENCE_BENCH_MAX_THREADS when set (above the machine's CPUs to see
/// oversubscription, below them to keep a run short), else `machine_threads`
/// (std::thread::hardware_concurrency(); 0, which means unknown, counts as 2). A value that is
/// not an integer from 1 to threads_cap stops the program with a message: a benchmark run must
/// not quietly measure something other than what was asked.
inline unsigned max_threads(unsigned machine_threads) {
  const char* text = std::getenv("PLANFENCE_BENCH_MAX_THREADS");
  if (text == nullptr || *text == '\0') return machine_threads == 0 ? 2 : machine_threads;
  char* end = nullptr;
  const unsigned long value = std::strtoul(text, &end, 10);
  if (*end != '\0' || value == 0 || value > threads_cap || std::string_view(text).find('-') != std::string_view::npos) {
    std::fprintf(stderr, "PLANFENCE_BENCH_MAX_THREADS must be an integer from 1 to %u, not \"%s\"\n", threads_cap, text);
    std::exit(2);
  }
  return static_cast<unsigned>(value);
}

}  // namespace planfence_bench
