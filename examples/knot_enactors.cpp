// examples/knot_enactors.cpp: the 2025 race against a real DNS server, and why it cannot happen
// with planfence's RFC 2136 store.
//
// What it shows. One knotd on loopback (started here, in a temporary directory), a planner and
// three enactor PROCESSES (fork), each with its own connection to the server, as in 2025:
//   - the planner writes a new plan generation every 250 ms into a directory (plan text files,
//     planfence::format_plan), each giving db.<zone> and api.<zone> a new address;
//   - enactors az1 and az2 take the newest plan and apply it, endpoint by endpoint;
//   - enactor az3 takes generation 2, reads the stamps, and then stalls for 2.5 seconds, the
//     delayed enactor of 2025; when it wakes it commits generation 2 against the stamps it read.
// A monitor in the parent asks the server for every endpoint's stamp every 20 ms and prints
// when the generation changes; it flags any decrease (S1).
//
// It runs twice, in two zones of the same server:
//   naive.test.  the updates carry no prerequisite (rfc2136_options::broken_omit_prerequisites,
//                how popular RFC 2136 tools send them): az3's late write lands and the endpoint
//                goes back from the newest generation to 2: the monitor prints REGRESSION;
//   safe.test.   planfence's store: the UPDATE's prerequisite is the stamp az3 read, the server
//                answers NXRRSET, the store reads the stamp again and reports errc::stale; the
//                endpoint keeps its newest generation.
// Exit status 0 when the safe run never regressed (and the naive one did, as it should).
//
//   cmake --build build --target knot_enactors && build/examples/knot_enactors
//
// Needs knotd (Debian: apt-get install knot). Fencing (S2) is not part of this demo: all
// enactors use fence token 1; see tests/rfc2136/race_test.cpp for the fence floor under a race.
#include <planfence/planfence.hpp>
#include <planfence/rfc2136/store.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/knot_server.hpp"

namespace {

using namespace planfence;
using namespace std::chrono_literals;

constexpr std::uint64_t generations = 10;
constexpr auto planner_period = 250ms;
constexpr auto stall = 2500ms;

std::vector<std::string> endpoints_of(const std::string& zone) { return {"db." + zone, "api." + zone}; }

/// The planner: generation g gives every endpoint 10.0.<zone index>.g.
void run_planner(const std::filesystem::path& dir, const std::string& zone) {
  for (std::uint64_t g = 1; g <= generations; ++g) {
    plan_builder builder{generation{g}, 1'761'200'000'000 + g};
    for (const std::string& name : endpoints_of(zone)) {
      auto set = record_set::make({make_record(record_type::a, 60, "10.0.0." + std::to_string(g)).value()});
      static_cast<void>(builder.set(name, std::move(*set)));
    }
    const plan p = std::move(builder).build().value();
    const auto tmp = dir / ("plan-" + std::to_string(g) + ".tmp");
    std::ofstream(tmp) << format_plan(p);
    std::filesystem::rename(tmp, dir / ("plan-" + std::to_string(g) + ".txt"));  // atomic publish
    // Generation 1 settles everywhere first, so that az3 reads it when it takes generation 2.
    std::this_thread::sleep_for(g == 1 ? 3 * planner_period : planner_period);
  }
}

/// The newest plan in `dir` at or below `at_most` (0: any).
std::optional<plan> newest_plan(const std::filesystem::path& dir, std::uint64_t at_most = 0) {
  std::optional<plan> best;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".txt") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    auto p = parse_plan(text.str());
    if (!p) continue;
    if (at_most != 0 && p->gen().value() > at_most) continue;
    if (!best || p->gen() > best->gen()) best = std::move(*p);
  }
  return best;
}

void say(const char* who, const std::string& text) {
  std::printf("  %-8s %s\n", who, text.c_str());
  std::fflush(stdout);
}

/// One enactor process. `delayed`: take generation 2, read the stamps, stall, then commit.
int run_enactor(const char* name, const std::string& uri, const std::string& zone, const std::filesystem::path& dir,
                bool naive, bool delayed) {
  auto options = rfc2136_store::parse_uri(uri).value();
  options.broken_omit_prerequisites = naive;
  auto store = rfc2136_store::open(std::move(options), endpoints_of(zone));
  if (!store) {
    say(name, "cannot open the store: " + store.error().message());
    return 1;
  }
  if (delayed) {
    // Waits for generation 2 (a loop over optional assignment trips GCC 12's
    // -Wmaybe-uninitialized, a false positive).
    const auto wait_for_generation_2 = [&]() -> plan {
      for (;;) {
        if (auto q = newest_plan(dir, 2); q && q->gen() == generation{2}) return std::move(*q);
        std::this_thread::sleep_for(2ms);
      }
    };
    const plan two = wait_for_generation_2();
    const plan* p = &two;
    std::vector<stamp> seen;
    for (const auto& entry : p->endpoints()) seen.push_back(store->read_stamp(store->resolve(entry->name).value()).value());
    say(name, "pinned generation 2, read the stamps (gen " + std::to_string(seen[0].gen.value()) + "), and stalls...");
    std::this_thread::sleep_for(stall);
    std::size_t i = 0;
    for (const auto& entry : p->endpoints()) {
      const endpoint_handle h = store->resolve(entry->name).value();
      auto done = store->commit(h, seen[i++], stamp{generation{2}, fence_token{1}, 0}, entry->records);
      say(name, "wakes up, commits generation 2 to " + entry->name + ": " +
                    (done ? std::string("APPLIED (no prerequisite stopped it)")
                          : "REFUSED, " + done.error().message()));
    }
    return 0;
  }
  std::uint64_t applied = 0;
  const auto give_up = std::chrono::steady_clock::now() + planner_period * (generations + 6) + stall;
  while (applied < generations && std::chrono::steady_clock::now() < give_up) {
    auto p = newest_plan(dir);
    if (!p || p->gen().value() <= applied) {
      std::this_thread::sleep_for(50ms);
      continue;
    }
    for (const auto& entry : p->endpoints()) {
      const endpoint_handle h = store->resolve(entry->name).value();
      for (int attempt = 0; attempt < 4; ++attempt) {
        auto seen = store->read_stamp(h);
        if (!seen) break;
        if (seen->gen >= p->gen()) break;  // someone got there first
        auto done = store->commit(h, *seen, stamp{p->gen(), fence_token{1}, 0}, entry->records);
        if (done || done.error().code != errc::conflict) break;  // conflict: read again, decide again
      }
    }
    applied = p->gen().value();
  }
  return 0;
}

/// Runs one scenario in `zone`; returns the number of regressions the monitor saw.
int scenario(const planfence_example::knot_server& knot, const std::string& zone, bool naive) {
  std::printf("\n%s: %s\n", zone.c_str(),
              naive ? "updates without prerequisites (the 2025 design)" : "planfence's RFC 2136 store (compare-and-swap by prerequisite)");
  const std::string uri = knot.uri(zone);
  std::error_code ec;
  const auto dir = knot.directory() / ("plans-" + zone);
  std::filesystem::create_directories(dir, ec);

  std::vector<pid_t> children;
  auto spawn = [&](auto body) {
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(body());
    children.push_back(pid);
  };
  spawn([&] { run_planner(dir, zone); return 0; });
  spawn([&] { return run_enactor("az1", uri, zone, dir, naive, false); });
  spawn([&] { return run_enactor("az2", uri, zone, dir, naive, false); });
  spawn([&] { return run_enactor("az3", uri, zone, dir, naive, true); });

  // The monitor: what the server answers, polled.
  auto monitor = rfc2136_store::open_uri(uri, endpoints_of(zone)).value();
  std::vector<std::uint64_t> last(monitor.size(), 0), highest(monitor.size(), 0);
  int regressions = 0;
  const auto end = std::chrono::steady_clock::now() + planner_period * (generations + 4) + stall + 1s;
  while (std::chrono::steady_clock::now() < end) {
    for (std::uint32_t i = 0; i < monitor.size(); ++i) {
      auto s = monitor.read_stamp(endpoint_handle{i});
      if (!s || s->gen.value() == last[i]) continue;
      const bool regressed = s->gen.value() < highest[i];
      regressions += regressed ? 1 : 0;
      say("server", std::string(monitor.name(endpoint_handle{i})) + " serves generation " + std::to_string(s->gen.value()) +
                        (regressed ? "   <-- REGRESSION from " + std::to_string(highest[i]) + " (S1 broken)" : ""));
      last[i] = s->gen.value();
      highest[i] = std::max(highest[i], s->gen.value());
    }
    std::this_thread::sleep_for(20ms);
  }
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  for (std::uint32_t i = 0; i < monitor.size(); ++i) {
    auto served = monitor.served(endpoint_handle{i});
    std::string addresses;
    if (served) for (const record& r : *served) addresses += " " + r.rdata;
    say("final", std::string(monitor.name(endpoint_handle{i})) + " gen " +
                     std::to_string(monitor.read_stamp(endpoint_handle{i})->gen.value()) + ", serves" + addresses);
  }
  return regressions;
}

}  // namespace

int main() {
  auto knot = planfence_example::knot_server::start({{"naive.test.", ""}, {"safe.test.", ""}});
  if (!knot) {
    std::fprintf(stderr, "knot_enactors: %s\n", knot.error().message().c_str());
    return 2;
  }
  std::printf("knotd on 127.0.0.1:%u, zones naive.test. and safe.test., TSIG key %s\n", knot->port(),
              knot->key_name().c_str());
  const int naive_regressions = scenario(*knot, "naive.test.", true);
  const int safe_regressions = scenario(*knot, "safe.test.", false);
  std::printf("\nnaive.test.: %d regression(s); safe.test.: %d regression(s)\n", naive_regressions, safe_regressions);
  if (safe_regressions != 0) return 1;
  if (naive_regressions == 0) std::printf("(the naive run happened not to regress this time: timing)\n");
  return 0;
}
