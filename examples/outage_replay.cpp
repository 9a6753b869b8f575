// outage_replay: the October 2025 DynamoDB DNS race, replayed with the 2025 design and with
// planfence, then hunted for in thousands of random schedules.
//
//   outage_replay                      scripted replay (naive, then fixed) + a 3000-seed sweep
//   outage_replay --seed 0x2a          one random scenario, with its timeline, naive and fixed
//   outage_replay --json               the same as the first, as one JSON object on stdout
//
// Run with --help for every flag. The simulator behind it is include/planfence/sim/ and
// docs/simulator.md explains it. Exit status: 0 when no run of the fixed enactor broke a
// guarantee, 1 when one did (or a file could not be written), 2 for bad flags.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <planfence/sim/sim.hpp>

namespace {

namespace sim = planfence::sim;

constexpr std::uint64_t default_seeds = 3'000;
constexpr std::size_t timeline_width = 116;

const char* const usage_text = R"(usage: outage_replay [options]

Replays the race behind the October 2025 us-east-1 DynamoDB DNS outage step by step, once with
the naive 2025 enactor design and once with planfence's fixed enactor, then runs a seed sweep:
thousands of random scenarios (enactors, endpoints, delays, crashes, clock skew, store errors,
planner bursts, bad plans), each decided by one 64-bit seed, under both designs, checking the
guarantees S1..S7 after every step.

options:
  --seeds N        seeds in the sweep (default 3000; 0 skips the sweep)
  --first-seed S   first seed of the sweep (default 1)
  --seed S         replay one random scenario with its timeline instead (decimal or 0x hex)
  --variant V      with --seed: which system to replay (default: naive, then fixed); one of
                   naive, fixed, and the fixed enactor over a core broken on purpose:
                   unconditional, check_then_write, ignore_fence, ignore_live, ignore_pins
  --enactors K     enactors in the scripted replay and in every seed (2..16; default 3 in the
                   replay, decided by each seed in the sweep)
  --jobs J         threads for the sweep (default: one per hardware thread)
  --history DIR    write every plan of the scripted naive run to DIR, one file per generation
                   (DIR/<generation>.plan, the planfence text form), to practise recovery on
  --json           print one JSON object on stdout instead of text
  --help           this text

exit status: 0 when no run of the fixed enactor broke a guarantee, 1 when one did or a file
could not be written, 2 for bad usage.
)";

struct options {
  std::uint64_t seeds = default_seeds;
  std::uint64_t first_seed = 1;
  std::optional<std::uint64_t> seed;
  std::optional<sim::variant> only;
  std::optional<std::uint32_t> enactors;
  unsigned jobs = 0;
  std::optional<std::string> history;
  bool json = false;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "outage_replay: %s\nRun 'outage_replay --help' for the options.\n", message.c_str());
  std::exit(2);
}

/// Decimal or 0x-prefixed hex, the whole text, no sign.
std::optional<std::uint64_t> parse_number(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  if (text.empty() || text.size() > 20) return std::nullopt;
  for (char c : text) {
    const bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(c)) != 0 : (c >= '0' && c <= '9');
    if (!ok) return std::nullopt;
  }
  const std::string copy(text);
  errno = 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(copy.c_str(), &end, base);
  if (errno != 0 || end != copy.c_str() + copy.size()) return std::nullopt;
  return static_cast<std::uint64_t>(value);
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](std::string_view flag) -> std::string_view {
      if (i + 1 >= argc) usage_error(std::string(flag) + " needs a value");
      return argv[++i];
    };
    auto number = [&](std::string_view flag, std::uint64_t low, std::uint64_t high) {
      const std::string_view text = value(flag);
      const auto parsed = parse_number(text);
      if (!parsed || *parsed < low || *parsed > high) {
        usage_error(std::string(flag) + " expects a number from " + std::to_string(low) + " to " + std::to_string(high) +
                    ", got '" + std::string(text) + "'");
      }
      return *parsed;
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else if (arg == "--seeds") {
      o.seeds = number(arg, 0, 10'000'000);
    } else if (arg == "--first-seed") {
      o.first_seed = number(arg, 0, ~std::uint64_t{0} - 100'000'000);
    } else if (arg == "--seed") {
      o.seed = number(arg, 0, ~std::uint64_t{0});
    } else if (arg == "--variant") {
      const std::string_view name = value(arg);
      o.only = sim::parse_variant(name);
      if (!o.only) {
        usage_error("unknown --variant '" + std::string(name) +
                    "': use naive, fixed, unconditional, check_then_write, ignore_fence, ignore_live or ignore_pins");
      }
    } else if (arg == "--enactors") {
      o.enactors = static_cast<std::uint32_t>(number(arg, 2, 16));
    } else if (arg == "--jobs") {
      o.jobs = static_cast<unsigned>(number(arg, 1, 256));
    } else if (arg == "--history") {
      const std::string_view dir = value(arg);
      if (dir.empty()) usage_error("--history needs a directory");
      o.history = std::string(dir);
    } else if (arg == "--json") {
      o.json = true;
    } else {
      usage_error("unknown option '" + std::string(arg) + "'");
    }
  }
  if (o.only && !o.seed) usage_error("--variant only applies to --seed");
  if (o.seed && o.history) usage_error("--history writes the scripted replay's plans; it does not combine with --seed");
  return o;
}

// --- JSON ---------------------------------------------------------------------------------------

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_violations(const sim::run_report& r) {
  std::string ids = "[";
  std::string details = "[";
  for (std::size_t i = 0; i < sim::guarantee_count; ++i) {
    if (r.counts[i] == 0) continue;
    if (ids.size() > 1) ids += ", ";
    ids += json_string(sim::to_string(static_cast<sim::guarantee>(i)));
  }
  for (const sim::violation& v : r.violations) {
    if (details.size() > 1) details += ", ";
    details += "{\"id\": " + json_string(sim::to_string(v.id)) + ", \"step\": " + std::to_string(v.step) +
               ", \"actor\": " + json_string(v.actor) + ", \"detail\": " + json_string(v.detail) +
               ", \"count\": " + std::to_string(r.counts[static_cast<std::size_t>(v.id)]) + "}";
  }
  return "\"violations\": " + ids + "], \"violation_details\": " + details + "]";
}

std::string json_run(const sim::run_report& r) {
  std::string endpoints = "[";
  for (const sim::endpoint_outcome& e : r.endpoints) {
    if (endpoints.size() > 1) endpoints += ", ";
    endpoints += "{\"name\": " + json_string(e.name) + ", \"generation\": " + std::to_string(e.gen.value()) +
                 ", \"records\": " + std::to_string(e.records) + ", \"plan_missing\": " + (e.plan_missing ? "true" : "false") + "}";
  }
  return json_violations(r) + ", \"converged\": " + (r.converged ? "true" : "false") +
         ", \"final_generation\": " + std::to_string(r.final_gen.value()) + ", \"steps\": " + std::to_string(r.steps) +
         ", \"enactors_stopped\": " + std::to_string(r.enactors_stopped) + ", \"endpoints\": " + endpoints + "]" +
         ", \"trace_hash\": " + json_string(sim::format_seed(r.trace_hash));
}

std::string json_scripted(const sim::scripted_outcome& o) {
  return "{\"endpoint_records_after\": " + std::to_string(o.endpoint_records) +
         ", \"endpoint_generation_after\": " + std::to_string(o.endpoint_gen.value()) +
         ", \"endpoint_plan_missing\": " + (o.endpoint_plan_missing ? "true" : "false") +
         ", \"stuck\": " + (o.stuck ? "true" : "false") + ", " + json_run(o.report) +
         ", \"explanation\": " + json_string(o.explanation) + "}";
}

std::string json_by_guarantee(const sim::variant_sweep& v) {
  std::string out = "{";
  for (std::size_t i = 0; i < sim::guarantee_count; ++i) {
    if (i != 0) out += ", ";
    out += json_string(sim::to_string(static_cast<sim::guarantee>(i))) + ": " + std::to_string(v.by_guarantee[i]);
  }
  return out + "}";
}

std::string json_optional_seed(const std::optional<std::uint64_t>& seed) {
  return seed ? std::to_string(*seed) : std::string("null");
}

// --- text ---------------------------------------------------------------------------------------

std::string guarantee_counts(const sim::variant_sweep& v) {
  std::string out;
  for (std::size_t i = 0; i < sim::guarantee_count; ++i) {
    if (v.by_guarantee[i] == 0) continue;
    out += out.empty() ? "" : ", ";
    out += std::string(sim::to_string(static_cast<sim::guarantee>(i))) + " " + std::to_string(v.by_guarantee[i]);
  }
  return out;
}

void print_run_summary(const sim::run_report& r, sim::variant v, const char* program,
                       const sim::scenario_overrides& overrides) {
  if (!r.failed()) {
    std::printf("No guarantee broken. Every endpoint reached the final generation %llu %llu steps after healing.\n",
                static_cast<unsigned long long>(r.final_gen.value()), static_cast<unsigned long long>(r.steps_to_converge));
    return;
  }
  std::printf("Guarantees broken: %s\n", sim::to_string(r.mask()).c_str());
  for (const sim::violation& x : r.violations) {
    std::printf("  %s (%s), first at step %llu by %s, %llu time(s): %s\n", std::string(sim::to_string(x.id)).c_str(),
                std::string(sim::title(x.id)).c_str(), static_cast<unsigned long long>(x.step), x.actor.c_str(),
                static_cast<unsigned long long>(r.counts[static_cast<std::size_t>(x.id)]), x.detail.c_str());
  }
  std::printf("Reproduce: %s\n", sim::repro_command(r.seed, v, program, overrides).c_str());
}

// --- plan history ------------------------------------------------------------------------------

/// Writes `text` to `path` atomically: a temporary file in the same directory, fsync, rename.
bool write_atomically(const std::filesystem::path& path, const std::string& text, std::string& error) {
  const std::filesystem::path temporary = path.parent_path() / ("." + path.filename().string() + ".tmp");
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot create " + temporary.string() + ": " + std::strerror(errno);
    return false;
  }
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = "cannot write " + temporary.string() + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    error = "cannot flush " + temporary.string() + ": " + std::strerror(errno);
    return false;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    error = "cannot rename " + temporary.string() + " to " + path.string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool write_history(const std::string& directory, const std::vector<std::pair<planfence::generation, std::string>>& plans,
                   std::string& error) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) {
    error = "cannot create " + directory + ": " + ec.message();
    return false;
  }
  for (const auto& [gen, text] : plans) {
    char name[32];
    std::snprintf(name, sizeof name, "%010llu.plan", static_cast<unsigned long long>(gen.value()));
    if (!write_atomically(std::filesystem::path(directory) / name, text, error)) return false;
  }
  // The renames are durable once the directory itself is.
  const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || ::fsync(dir) != 0) {
    error = "cannot flush directory " + directory + ": " + std::strerror(errno);
    if (dir >= 0) ::close(dir);
    return false;
  }
  ::close(dir);
  return true;
}

// --- the modes ----------------------------------------------------------------------------------

int replay_one_seed(const options& o, const char* program) {
  const std::uint64_t seed = *o.seed;
  sim::scenario_overrides overrides;
  overrides.enactors = o.enactors;
  std::vector<sim::variant> variants;
  if (o.only) {
    variants.push_back(*o.only);
  } else {
    variants = {sim::variant::naive, sim::variant::fixed};
  }
  const sim::scenario described = sim::make_scenario(seed, overrides);
  bool fixed_failed = false;
  std::string json = "{\"seed\": " + std::to_string(seed) + ", \"seed_hex\": " + json_string(sim::format_seed(seed)) +
                     ", \"scenario\": " + json_string(described.describe()) + ", \"runs\": {";
  if (!o.json) std::printf("%s\n", described.describe().c_str());
  for (std::size_t k = 0; k < variants.size(); ++k) {
    const sim::variant v = variants[k];
    sim::timeline lines;
    const sim::run_report r = sim::run_seed(v, seed, overrides, &lines);
    if (v == sim::variant::fixed && r.failed()) fixed_failed = true;
    if (o.json) {
      json += (k == 0 ? "" : ", ") + json_string(sim::to_string(v)) + ": {" + json_run(r) + "}";
      continue;
    }
    std::printf("=== seed %s under %s ===\n\n", sim::format_seed(seed).c_str(), std::string(sim::describe(v)).c_str());
    std::fputs(lines.render(timeline_width).c_str(), stdout);
    std::printf("\n");
    print_run_summary(r, v, program, overrides);
    std::printf("\n");
  }
  if (o.json) std::printf("%s}}\n", json.c_str());
  return fixed_failed ? 1 : 0;
}

int replay_and_sweep(const options& o, const char* program) {
  const std::uint32_t enactors = o.enactors.value_or(3);
  const sim::scripted_outcome naive = sim::replay_2025(sim::variant::naive, enactors, o.history.has_value());
  const sim::scripted_outcome fixed = sim::replay_2025(sim::variant::fixed, enactors, false);
  bool failed = fixed.report.failed();

  std::string history_note;
  if (o.history) {
    std::string error;
    if (!write_history(*o.history, naive.history, error)) {
      std::fprintf(stderr, "outage_replay: --history: %s\n", error.c_str());
      return 1;
    }
    history_note = "Wrote " + std::to_string(naive.history.size()) + " plans (generations 1.." +
                   std::to_string(naive.history.empty() ? 0 : naive.history.back().first.value()) + ") to " + *o.history +
                   "/, one file per generation in the planfence plan text form.";
  }

  if (!o.json) {
    std::printf(
        "planfence outage_replay: the race behind the October 2025 us-east-1 DynamoDB DNS outage.\n\n"
        "A Planner publishes DNS plans numbered by generation (g1, g2, ...). %u Enactors, az1..az%u (one per\n"
        "availability zone), each apply the newest plan endpoint by endpoint: dax (dax.us-east-1.amazonaws.com.),\n"
        "fips (dynamodb-fips.us-east-1.amazonaws.com.) and regional (%s), the endpoint\n"
        "that went dark. The rightmost column shows what it serves. fN is a fence token (fixed enactor only).\n"
        "The same steps run twice: first with the 2025 design, then with planfence::enactor.\n\n",
        enactors, enactors, std::string(sim::regional_endpoint).c_str());
    std::printf("=== 1. The 2025 design (the naive enactor) ===\n\n");
    std::fputs(naive.lines.render(timeline_width).c_str(), stdout);
    std::printf("\nOutcome: %s\n\n", naive.explanation.c_str());
    std::printf("=== 2. The same steps with planfence::enactor ===\n\n");
    std::fputs(fixed.lines.render(timeline_width).c_str(), stdout);
    std::printf("\nOutcome: %s\n\n", fixed.explanation.c_str());
    if (!history_note.empty()) std::printf("%s\n\n", history_note.c_str());
    std::fflush(stdout);
  }

  sim::sweep_result swept;
  sim::sweep_options so;
  if (o.seeds > 0) {
    so.first_seed = o.first_seed;
    so.seeds = o.seeds;
    so.jobs = o.jobs;
    so.overrides.enactors = o.enactors;
    if (::isatty(STDERR_FILENO) != 0) {
      so.progress = [](const sim::sweep_progress& p) {
        std::fprintf(stderr, "\r  sweep: %llu/%llu seeds   naive failing %llu   fixed failing %llu   %.1f s ",
                     static_cast<unsigned long long>(p.done), static_cast<unsigned long long>(p.total),
                     static_cast<unsigned long long>(p.failing[0]), static_cast<unsigned long long>(p.failing[1]),
                     p.wall_seconds);
        std::fflush(stderr);
      };
    }
    if (!o.json) {
      std::printf("=== 3. Seed sweep: %llu random scenarios (seeds %s..%s), each under both designs ===\n\n",
                  static_cast<unsigned long long>(o.seeds), sim::format_seed(o.first_seed).c_str(),
                  sim::format_seed(o.first_seed + o.seeds - 1).c_str());
      std::fflush(stdout);
    }
    swept = sim::sweep(so);
    if (so.progress) std::fprintf(stderr, "\r%78s\r", "");
    failed = failed || swept.of(sim::variant::fixed).failing != 0;
  }

  if (o.json) {
    std::string out = "{\"scripted\": {\"endpoint\": " + json_string(sim::regional_endpoint) +
                      ", \"enactors\": " + std::to_string(enactors) +
                      ", \"newest_generation\": " + std::to_string(naive.newest.value()) +
                      ", \"naive\": " + json_scripted(naive) + ", \"fixed\": " + json_scripted(fixed) + "}";
    if (o.seeds > 0) {
      const sim::variant_sweep& n = swept.of(sim::variant::naive);
      const sim::variant_sweep& f = swept.of(sim::variant::fixed);
      out += ", \"sweep\": {\"seeds\": " + std::to_string(swept.seeds) + ", \"first_seed\": " + std::to_string(swept.first_seed) +
             ", \"jobs\": " + std::to_string(swept.jobs) + ", \"naive_failing_seeds\": " + std::to_string(n.failing) +
             ", \"fixed_failing_seeds\": " + std::to_string(f.failing) +
             ", \"first_naive_failing_seed\": " + json_optional_seed(n.first_failing_seed) +
             ", \"first_fixed_failing_seed\": " + json_optional_seed(f.first_failing_seed) +
             ", \"naive_by_guarantee\": " + json_by_guarantee(n) + ", \"fixed_by_guarantee\": " + json_by_guarantee(f) +
             ", \"wall_seconds\": " + std::to_string(swept.wall_seconds) +
             ", \"cpu_seconds\": " + std::to_string(swept.cpu_seconds) + "}";
    } else {
      out += ", \"sweep\": {\"seeds\": 0, \"naive_failing_seeds\": 0, \"fixed_failing_seeds\": 0, "
             "\"first_naive_failing_seed\": null, \"first_fixed_failing_seed\": null}";
    }
    if (o.history) out += ", \"history\": {\"directory\": " + json_string(*o.history) + ", \"plans\": " + std::to_string(naive.history.size()) + "}";
    std::printf("%s}\n", out.c_str());
    return failed ? 1 : 0;
  }

  if (o.seeds > 0) {
    const double per_second = swept.cpu_seconds > 0 ? static_cast<double>(swept.seeds) / swept.cpu_seconds : 0.0;
    for (const sim::variant_sweep& v : swept.variants) {
      const bool is_naive = v.system == sim::variant::naive;
      std::printf("%-20s %llu of %llu seeds break a guarantee%s%s%s\n", is_naive ? "naive 2025 enactor:" : "planfence::enactor:",
                  static_cast<unsigned long long>(v.failing), static_cast<unsigned long long>(swept.seeds),
                  v.failing != 0 ? " (seeds per guarantee: " : "", guarantee_counts(v).c_str(), v.failing != 0 ? ")" : "");
      if (v.first_failing_seed) {
        // The first failing seed, its breaches and the command that replays it, indented.
        const std::string message = sim::failure_message(v.examples.front(), v.system, program, so.overrides);
        std::size_t start = 0;
        while (start < message.size()) {
          const std::size_t end = message.find('\n', start);
          const std::string line = message.substr(start, end == std::string::npos ? std::string::npos : end - start);
          std::printf("    %s\n", line.c_str());
          start = end == std::string::npos ? message.size() : end + 1;
        }
      }
    }
    std::printf("\n%llu seeds x 2 designs in %.1f s on %u thread(s) (%.0f seeds per CPU-second, both designs).\n",
                static_cast<unsigned long long>(swept.seeds), swept.wall_seconds, swept.jobs, per_second);
    std::printf("Replay any seed with its timeline: %s --seed <seed>\n", program);
  }
  if (failed) std::printf("\nThe FIXED enactor broke a guarantee: that is a bug in planfence. Please report the seed.\n");
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse_options(argc, argv);
  const char* program = argc > 0 ? argv[0] : "outage_replay";
  if (o.seed) return replay_one_seed(o, program);
  return replay_and_sweep(o, program);
}
