// sim_soak: the long seed sweep, not run in CI (docs/simulator.md).
//
//   planfence_sim_soak [--seeds N] [--first-seed S] [--jobs J] [--with-naive] [--enactors K]
//
// Runs N seeds (default 1,000,000) of the fixed planfence::enactor through the deterministic
// simulator, S1..S7 checked after every step, and prints every failing seed with the command
// that replays it. Exit status 0 when no seed failed, 1 otherwise, 2 for bad usage. Built as the
// target planfence_sim_soak; `cmake --build <build> --target sim_soak` builds and runs it.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <planfence/sim/sim.hpp>

namespace sim = planfence::sim;

namespace {

[[noreturn]] void usage(const char* message) {
  std::fprintf(stderr,
               "sim_soak: %s\nusage: planfence_sim_soak [--seeds N] [--first-seed S] [--jobs J] [--with-naive] "
               "[--enactors K]\n",
               message);
  std::exit(2);
}

std::uint64_t number(int& i, int argc, char** argv) {
  if (i + 1 >= argc) usage("a flag needs a value");
  const std::string text = argv[++i];
  char* end = nullptr;
  const int base = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X') ? 16 : 10;
  const unsigned long long value = std::strtoull(text.c_str(), &end, base);
  if (text.empty() || text[0] == '-' || end != text.c_str() + text.size()) usage("expected a number");
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  sim::sweep_options options;
  options.seeds = 1'000'000;
  options.variants = {sim::variant::fixed};
  options.examples_max = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--seeds") {
      options.seeds = number(i, argc, argv);
      if (options.seeds == 0) usage("--seeds must be positive");
    } else if (arg == "--first-seed") {
      options.first_seed = number(i, argc, argv);
    } else if (arg == "--jobs") {
      options.jobs = static_cast<unsigned>(number(i, argc, argv));
    } else if (arg == "--enactors") {
      const std::uint64_t k = number(i, argc, argv);
      if (k < 1 || k > 16) usage("--enactors must be 1..16");
      options.overrides.enactors = static_cast<std::uint32_t>(k);
    } else if (arg == "--with-naive") {
      options.variants = {sim::variant::naive, sim::variant::fixed};
    } else {
      usage("unknown flag");
    }
  }
  const std::size_t fixed_index = options.variants.size() - 1;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  options.progress = [&](const sim::sweep_progress& p) {
    const double rate = p.wall_seconds > 0 ? static_cast<double>(p.done) / p.wall_seconds : 0.0;
    if (tty) {
      std::fprintf(stderr, "\r  %llu/%llu seeds, fixed failing %llu, %.0f seeds/s ", static_cast<unsigned long long>(p.done),
                   static_cast<unsigned long long>(p.total), static_cast<unsigned long long>(p.failing[fixed_index]), rate);
    }
  };
  std::printf("soak: seeds %s..%s, %s\n", sim::format_seed(options.first_seed).c_str(),
              sim::format_seed(options.first_seed + options.seeds - 1).c_str(),
              options.variants.size() == 2 ? "naive and fixed" : "fixed enactor");
  std::fflush(stdout);
  const sim::sweep_result result = sim::sweep(options);
  if (tty) std::fprintf(stderr, "\n");
  int status = 0;
  for (const sim::variant_sweep& v : result.variants) {
    std::printf("%s: %llu of %llu seeds failing", std::string(sim::to_string(v.system)).c_str(),
                static_cast<unsigned long long>(v.failing), static_cast<unsigned long long>(result.seeds));
    for (std::size_t g = 0; g < sim::guarantee_count; ++g) {
      if (v.by_guarantee[g] != 0) {
        std::printf(" %s:%llu", std::string(sim::to_string(static_cast<sim::guarantee>(g))).c_str(),
                    static_cast<unsigned long long>(v.by_guarantee[g]));
      }
    }
    std::printf("; %.1f steps/seed; slowest convergence %llu steps\n",
                static_cast<double>(v.steps) / static_cast<double>(result.seeds),
                static_cast<unsigned long long>(v.steps_to_converge_max));
    if (v.system != sim::variant::naive) {
      for (const sim::run_report& r : v.examples) std::printf("%s\n", sim::failure_message(r, v.system, "build/examples/outage_replay", options.overrides).c_str());
      if (v.failing != 0) status = 1;
    }
  }
  std::printf("%.1f s wall, %.1f s CPU, %u thread(s): %.0f seeds per CPU-second\n", result.wall_seconds,
              result.cpu_seconds, result.jobs,
              result.cpu_seconds > 0 ? static_cast<double>(result.seeds * result.variants.size()) / result.cpu_seconds : 0.0);
  return status;
}
