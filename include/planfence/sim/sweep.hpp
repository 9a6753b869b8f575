// planfence/sim/sweep.hpp: many seeds, on every core, with a deterministic result.
//
// What it is: runs seeds first_seed .. first_seed + seeds - 1 under one or more variants (by
// default the naive and the fixed enactor, each seed under both), spreading seeds over `jobs`
// threads. Every seed is an independent simulation, so the result does not depend on the number
// of threads or on their timing: the counts, the first failing seed and the example failures are
// the same on one core or sixteen. Only the epoch domain (process-wide) is shared.
//
//     planfence::sim::sweep_options options;
//     options.seeds = 10'000;
//     auto result = planfence::sim::sweep(options);
//     for (const auto& v : result.variants) std::printf("%s: %llu failing\n", ..., v.failing);
//
// `progress` (optional) is called on the calling thread about ten times a second while the
// workers run, and once at the end. Example failures are produced by running the first failing
// seeds again after the sweep (runs are deterministic), so a million-seed soak keeps only one
// 32-bit mask per seed and variant in memory.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "../config.hpp"
#include "checked_build.hpp"
#include "scenario.hpp"
#include "simulator.hpp"
#include "trace.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

/// Progress of a running sweep.
struct sweep_progress {
  std::uint64_t done = 0;   ///< seeds finished (under every variant)
  std::uint64_t total = 0;
  std::vector<std::uint64_t> failing;  ///< failing seeds so far, per variant (in options order)
  double wall_seconds = 0;
};

struct sweep_options {
  std::uint64_t first_seed = 1;
  std::uint64_t seeds = 1'000;
  unsigned jobs = 0;  ///< threads; 0: one per hardware thread
  std::vector<variant> variants{variant::naive, variant::fixed};
  scenario_overrides overrides{};
  std::size_t examples_max = 3;  ///< failing runs to report in full, per variant
  std::function<void(const sweep_progress&)> progress{};
};

/// The outcome of one variant over the sweep.
struct variant_sweep {
  variant system = variant::fixed;
  std::uint64_t failing = 0;
  std::array<std::uint64_t, guarantee_count> by_guarantee{};  ///< seeds that broke each guarantee
  std::optional<std::uint64_t> first_failing_seed;
  std::vector<run_report> examples;  ///< the first failing seeds, run again in full
  std::uint64_t steps = 0;           ///< scheduler steps over all seeds
  std::uint64_t steps_to_converge_max = 0;
  std::vector<guarantee_mask> masks;  ///< per seed (index = seed - first_seed)
};

struct sweep_result {
  std::uint64_t first_seed = 0;
  std::uint64_t seeds = 0;
  unsigned jobs = 1;
  double wall_seconds = 0;
  double cpu_seconds = 0;  ///< process CPU time (all threads): seeds per CPU-second stays honest on a busy machine
  std::vector<variant_sweep> variants;

  [[nodiscard]] const variant_sweep& of(variant v) const {
    for (const variant_sweep& s : variants) {
      if (s.system == v) return s;
    }
    PLANFENCE_ASSERT(!"variant not in this sweep");
    return variants.front();
  }
};

[[nodiscard]] inline sweep_result sweep(const sweep_options& options) {
  PLANFENCE_ASSERT(!options.variants.empty());
  PLANFENCE_ASSERT(options.seeds > 0);
  PLANFENCE_ASSERT(options.first_seed + options.seeds > options.first_seed);  // no wrap
  unsigned jobs = options.jobs != 0 ? options.jobs : std::max(1u, std::thread::hardware_concurrency());
  jobs = static_cast<unsigned>(std::min<std::uint64_t>(jobs, options.seeds));
  const std::size_t variant_total = options.variants.size();

  sweep_result result;
  result.first_seed = options.first_seed;
  result.seeds = options.seeds;
  result.jobs = jobs;
  result.variants.resize(variant_total);
  for (std::size_t v = 0; v < variant_total; ++v) {
    result.variants[v].system = options.variants[v];
    result.variants[v].masks.assign(options.seeds, 0);
  }
  struct alignas(64) worker_totals {
    std::vector<std::uint64_t> steps;
    std::vector<std::uint64_t> converge_max;
  };
  std::vector<worker_totals> totals(jobs);
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> done{0};
  std::vector<std::atomic<std::uint64_t>> failing(variant_total);
  for (auto& f : failing) f.store(0, std::memory_order_relaxed);
  constexpr std::uint64_t chunk = 8;

  const auto wall_start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  auto work = [&](unsigned worker) {
    worker_totals& mine = totals[worker];
    mine.steps.assign(variant_total, 0);
    mine.converge_max.assign(variant_total, 0);
    for (;;) {
      const std::uint64_t begin = next.fetch_add(chunk, std::memory_order_relaxed);
      if (begin >= options.seeds) break;
      const std::uint64_t end = std::min(begin + chunk, options.seeds);
      for (std::uint64_t i = begin; i < end; ++i) {
        for (std::size_t v = 0; v < variant_total; ++v) {
          const run_report r = run_seed(options.variants[v], options.first_seed + i, options.overrides);
          // Each index is written by exactly one worker; the join below publishes it.
          result.variants[v].masks[i] = r.mask();
          mine.steps[v] += r.steps;
          if (r.converged) mine.converge_max[v] = std::max(mine.converge_max[v], r.steps_to_converge);
          if (r.failed()) failing[v].fetch_add(1, std::memory_order_relaxed);
        }
        done.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  auto report_progress = [&] {
    if (!options.progress) return;
    sweep_progress p;
    p.done = done.load(std::memory_order_relaxed);
    p.total = options.seeds;
    for (const auto& f : failing) p.failing.push_back(f.load(std::memory_order_relaxed));
    p.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    options.progress(p);
  };

  std::vector<std::thread> threads;
  for (unsigned w = 1; w < jobs; ++w) threads.emplace_back(work, w);
  if (options.progress && jobs > 1) {
    // The calling thread reports; the others work.
    std::thread last(work, 0u);
    while (done.load(std::memory_order_relaxed) < options.seeds) {
      report_progress();
      std::this_thread::sleep_for(std::chrono::milliseconds{100});
    }
    last.join();
  } else {
    work(0);
  }
  for (std::thread& t : threads) t.join();
  report_progress();
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  result.cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;

  for (std::size_t v = 0; v < variant_total; ++v) {
    variant_sweep& out = result.variants[v];
    for (const worker_totals& t : totals) {
      out.steps += t.steps[v];
      out.steps_to_converge_max = std::max(out.steps_to_converge_max, t.converge_max[v]);
    }
    for (std::uint64_t i = 0; i < options.seeds; ++i) {
      const guarantee_mask m = out.masks[i];
      if (m == 0) continue;
      ++out.failing;
      if (!out.first_failing_seed) out.first_failing_seed = options.first_seed + i;
      for (std::size_t k = 0; k < guarantee_count; ++k) out.by_guarantee[k] += (m >> k) & 1;
      if (out.examples.size() < options.examples_max) {
        out.examples.push_back(run_seed(out.system, options.first_seed + i, options.overrides));
      }
    }
  }
  return result;
}

}  // namespace sim
}  // namespace v1
}  // namespace planfence
