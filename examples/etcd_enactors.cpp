// etcd_enactors: the 2025 race, replayed with real processes on etcd, and survived.
//
// What it shows. One program plays every part in its own process (it re-executes itself):
//  - a local etcd (started here on free loopback ports with a temporary data directory, or the
//    one named by --endpoints HOST:PORT[,HOST:PORT...]);
//  - a planner publishing a new plan of 8 endpoints every 700 ms (etcd sequencer and registry);
//  - three enactors az1, az2, az3 (the three zones) competing for one etcd lease and applying
//    plans through the etcd store, slowly (150 ms per endpoint), so faults land mid-apply.
// Then, as in 2025, an enactor is badly delayed: the lease holder is paused with SIGSTOP for
// longer than its lease (2 s) and resumed, and its clock is blind to the pause, so it wakes up
// believing its lease and its view are still fresh and goes on writing. etcd refuses its commits
// (the holder key no longer has its token as create revision): the output shows it "fenced by
// etcd". Then the next holder is killed with SIGKILL mid-apply and restarted. A monitor reads every
// endpoint throughout and reports any generation or fence that ever went backwards; at the end
// every endpoint must serve the newest plan. The local etcd and the stall-blind clock come from
// examples/support/etcd_member.hpp, which tests/etcd/fault_test.cpp shares: it replays the same
// race with assertions.
//
//   build/examples/etcd_enactors              # about 25 seconds; needs the etcd binary (etcd-server)
//   build/examples/etcd_enactors --endpoints 127.0.0.1:2379
//   build/examples/etcd_enactors --uri 'etcd://10.0.0.1:2379,10.0.0.2:2379/planfence?user=pf&password-file=pw'
//
// --uri takes an etcd URI as the library does (docs/etcd.md): a user with a password file or
// variable for a cluster with authentication. This example is built without TLS (it is the
// build's check that no TLS library is linked without PLANFENCE_ETCD_OPENSSL), so etcds:// is
// refused with how to enable it. The example works under PREFIX/example-PID.
//
// Exit status 0 when every endpoint converged and nothing went backwards, 1 otherwise, 2 when
// the etcd named cannot be used (its error is printed), 77 when no etcd could be found or started.
#include <planfence/enactor.hpp>
#include <planfence/etcd/registry.hpp>
#include <planfence/etcd/sequencer.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/etcd_member.hpp"

using namespace planfence;
using planfence_example::stall_blind_clock;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> endpoint_set = {"api.us-east-1.example.", "auth.us-east-1.example.", "db.us-east-1.example.",
                                               "feed.us-east-1.example.", "img.us-east-1.example.", "pay.us-east-1.example.",
                                               "queue.us-east-1.example.", "www.us-east-1.example."};
/// The orchestrator's start on the system-wide monotonic clock, passed to every child in
/// PLANFENCE_EXAMPLE_T0 so that all processes print times on one scale.
std::chrono::steady_clock::time_point start_time() {
  static const std::chrono::steady_clock::time_point t0 = [] {
    if (const char* env = std::getenv("PLANFENCE_EXAMPLE_T0")) {
      return std::chrono::steady_clock::time_point{std::chrono::nanoseconds{std::atoll(env)}};
    }
    const auto now = std::chrono::steady_clock::now();
    ::setenv("PLANFENCE_EXAMPLE_T0", std::to_string(now.time_since_epoch().count()).c_str(), 1);
    return now;
  }();
  return t0;
}

void say(const char* who, const std::string& what) {
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time()).count();
  std::printf("%6.2fs  %-8s %s\n", t, who, what.c_str());
  std::fflush(stdout);
}

std::atomic<bool> stop_requested{false};
extern "C" void on_term(int) { stop_requested.store(true); }

plan plan_for(generation gen) {
  plan_builder builder{gen, static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                           std::chrono::system_clock::now().time_since_epoch())
                                                           .count())};
  const std::string address = "198.51." + std::to_string(gen.value() / 256 % 256) + "." + std::to_string(gen.value() % 256);
  for (const std::string& name : endpoint_set) {
    auto set = record_set::make({make_record(record_type::a, 60, address, 10).value()}).value();
    builder.set(name, std::move(set)).value();
  }
  builder.intend_bulk_change();  // every plan moves every endpoint: say so (S4)
  return std::move(builder).build().value();
}

/// Where etcd is: "HOST:PORT[,...]" (--endpoints) or an etcd URI (--uri), as a client
/// configuration and the prefix the example works under; errors named with the URI redacted.
result<etcd::location> locate(const std::string& where) {
  if (where.starts_with("etcd://") || where.starts_with("etcds://")) return etcd::parse_uri(where);
  auto config = etcd::parse_endpoints(where);
  if (!config) return unexpected_error(std::move(config).error());
  return etcd::location{std::move(*config), "/planfence"};
}

int run_planner(const std::string& endpoints, const std::string& prefix, int plans) {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  ::signal(SIGTERM, on_term);
  auto config = locate(endpoints).value().config;
  auto history = etcd::etcd_plan_registry::make(config, prefix);
  auto sequencer = etcd::etcd_sequencer::make(config, prefix);
  if (!history || !sequencer) return 2;
  for (int i = 0; i < plans && !stop_requested.load(); ++i) {
    auto gen = sequencer->next();
    if (!gen) {
      say("planner", "sequencer: " + gen.error().message());
      continue;
    }
    const plan p = plan_for(*gen);
    auto published = history->publish(p);
    say("planner", published ? "published generation " + std::to_string(gen->value())
                             : "publish " + std::to_string(gen->value()) + ": " + published.error().message());
    std::this_thread::sleep_for(700ms);
  }
  return 0;
}

int run_enactor(const std::string& name, const std::string& endpoints, const std::string& prefix) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::signal(SIGTERM, on_term);
  auto config = locate(endpoints).value().config;
  config.request_timeout = 1000ms;
  stall_blind_clock clock;
  auto store = etcd_store::make(config, prefix);
  auto history = etcd::etcd_plan_registry::make(config, prefix);
  if (!store || !history) return 2;
  auto authority = etcd::etcd_lease_authority<stall_blind_clock>::make(config, prefix, clock, {.holder_name = name}).value();
  etcd::etcd_enactor_registry<stall_blind_clock> registry{*history, *store, authority, name};
  const std::string who = name;
  auto sink = [&who](const event& e) {
    const std::string gen = std::to_string(e.gen.value());
    const std::string fence = std::to_string(e.fence.value());
    switch (e.kind) {
      case event_kind::lease_gained: say(who.c_str(), "lease gained, fence " + fence + " (P/holder's create revision)"); break;
      case event_kind::lease_lost: say(who.c_str(), "lease lost (fence " + fence + "): stops writing"); break;
      case event_kind::plan_pinned: say(who.c_str(), "applying generation " + gen); break;
      case event_kind::plan_applied: say(who.c_str(), "generation " + gen + ": run complete (every endpoint serves it or newer)"); break;
      case event_kind::stale: say(who.c_str(), "skips " + std::string(e.endpoint) + ": it already serves newer than " + gen + " (S1)"); break;
      case event_kind::fenced:
        say(who.c_str(), "FENCED BY ETCD at " + std::string(e.endpoint) + ": generation " + gen + " with stale fence " + fence +
                             " refused, nothing written");
        break;
      case event_kind::applied: std::this_thread::sleep_for(150ms); break;  // a slow apply, so faults land mid-run
      case event_kind::collected: say(who.c_str(), "collected plan " + gen + " (S3 checked inside the etcd transaction)"); break;
      default: break;
    }
  };
  enactor<etcd_store, etcd::etcd_lease_authority<stall_blind_clock>, etcd::etcd_enactor_registry<stall_blind_clock>,
          stall_blind_clock, decltype(sink)>
      e{*store, authority, registry, clock,
        enactor_config{.name = name, .lease_ttl = 2000ms, .renew_margin = 1000ms, .poll_interval = 50ms,
                       .retention = {.keep_newest = 3}},
        sink};
  e.run_until(stop_requested);
  return 0;
}

// ---- the orchestrator ----------------------------------------------------------------------

struct child {
  std::string name;
  pid_t pid = -1;
};

pid_t spawn_self(const std::vector<std::string>& args) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  return pid;
}

void end(pid_t& pid, int signal_number) {
  if (pid <= 0) return;
  ::kill(pid, SIGCONT);
  ::kill(pid, signal_number);
  int status = 0;
  ::waitpid(pid, &status, 0);
  pid = -1;
}

std::string find_etcd() {
  if (const char* env = std::getenv("PLANFENCE_ETCD"); env != nullptr && *env != '\0') return env;
  for (const char* candidate : {"/usr/bin/etcd", "/usr/local/bin/etcd", "/usr/sbin/etcd"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

/// Starts a single-member etcd; returns its pid and client address.
bool start_etcd(const std::filesystem::path& dir, pid_t& pid, std::string& address) {
  const std::string binary = find_etcd();
  if (binary.empty()) return false;
  const planfence_example::etcd_member_spec member{.binary = binary,
                                                   .name = "m0",
                                                   .directory = dir,
                                                   .client_port = planfence_example::free_loopback_port().value(),
                                                   .peer_port = planfence_example::free_loopback_port().value(),
                                                   .initial_cluster = {},  // a cluster of this member alone
                                                   .extra_args = {}};
  pid = planfence_example::launch_etcd_member(member);
  address = member.client_address();
  return pid > 0 && planfence_example::wait_until_etcd_answers(address, pid, 10000ms) == planfence_example::etcd_readiness::answers;
}

std::string holder_of(etcd::client& c, const std::string& prefix) {
  auto got = c.range(prefix + "/holder");
  if (!got || got->kvs.empty()) return {};
  return got->kvs[0].value.substr(0, got->kvs[0].value.find('\n')) + " (fence " + std::to_string(got->kvs[0].create_revision) + ")";
}

int orchestrate(int argc, char** argv) {
  static_cast<void>(start_time());  // fixes t0 and exports it to the children
  std::string endpoints;  // HOST:PORT[,...] or an etcd URI: what every child process is given
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--endpoints" || std::string(argv[i]) == "--uri") endpoints = argv[i + 1];
  }
  if (!endpoints.empty()) {
    if (auto where = locate(endpoints); !where) {
      std::printf("etcd_enactors: %s\n", where.error().message().c_str());
      return 2;
    }
  }
  const auto dir = std::filesystem::temp_directory_path() / ("planfence-etcd-example-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  pid_t etcd_pid = -1;
  if (endpoints.empty()) {
    if (!start_etcd(dir, etcd_pid, endpoints)) {
      std::printf("etcd_enactors: no etcd could be started (install etcd-server or set PLANFENCE_ETCD)\n");
      end(etcd_pid, SIGKILL);
      std::filesystem::remove_all(dir);
      return 77;
    }
    say("etcd", "started on " + endpoints + " (data in " + dir.string() + ")");
  }
  const etcd::location where = locate(endpoints).value();
  const std::string prefix = where.prefix + "/example-" + std::to_string(::getpid());
  say("etcd", "everything lives under " + prefix + " (" +
                     (endpoints.find("://") != std::string::npos ? detail::redact_uri(endpoints) : endpoints) + ")");
  auto config = where.config;
  etcd::client c{config};
  // Reach etcd once before anything starts: a wrong password, a prefix the user may not write or
  // an unreachable cluster is said here, in etcd's words, instead of in every process.
  if (auto probe = etcd_store::make(config, prefix, endpoint_set, etcd::fence_mode::floor_only); !probe) {
    std::printf("etcd_enactors: %s\n", probe.error().message().c_str());
    end(etcd_pid, SIGKILL);
    std::filesystem::remove_all(dir);
    return 2;
  }

  // The monitor: S1 and S2 on every endpoint, throughout.
  std::atomic<bool> monitor_stop{false};
  std::atomic<int> backwards{0};
  std::thread monitor{[&] {
    auto store = etcd_store::make(config, prefix, endpoint_set, etcd::fence_mode::floor_only).value();
    std::map<std::string, stamp> last;
    while (!monitor_stop.load()) {
      if (auto all = store.read_all()) {
        for (const auto& e : all->endpoints) {
          stamp& seen = last[e.name];
          if (e.value.gen < seen.gen || e.value.fence < seen.fence) {
            ++backwards;
            say("monitor", "REGRESSION at " + e.name);
          }
          seen = stamp{e.value.gen, e.value.fence, 0};
        }
      }
      std::this_thread::sleep_for(25ms);
    }
  }};

  const std::string self = "/proc/self/exe";
  pid_t planner = spawn_self({self, "planner", endpoints, prefix, "18"});
  std::vector<child> zones = {{"az1"}, {"az2"}, {"az3"}};
  for (auto& z : zones) z.pid = spawn_self({self, "enactor", z.name, endpoints, prefix});
  auto zone_of = [&](const std::string& holder) -> child* {
    for (auto& z : zones) {
      if (holder.rfind(z.name, 0) == 0) return &z;
    }
    return nullptr;
  };

  std::this_thread::sleep_for(3000ms);
  std::string first = holder_of(c, prefix);
  child* paused = zone_of(first);
  if (paused != nullptr) {
    say("chaos", "SIGSTOP " + first + ": paused mid-apply, longer than its 2 s lease");
    ::kill(paused->pid, SIGSTOP);
    std::string next;
    for (int i = 0; i < 100; ++i) {
      std::this_thread::sleep_for(100ms);
      next = holder_of(c, prefix);
      if (!next.empty() && next != first) break;
    }
    say("chaos", "etcd expired its lease; the lease is now " + (next.empty() ? std::string("free") : "held by " + next));
    std::this_thread::sleep_for(300ms);  // the new holder is a few endpoints into its run
    say("chaos", "SIGCONT " + paused->name + ": it wakes up believing its lease is still current");
    ::kill(paused->pid, SIGCONT);
  }
  std::this_thread::sleep_for(2500ms);
  const std::string second = holder_of(c, prefix);
  if (child* victim = zone_of(second)) {
    say("chaos", "SIGKILL " + second + " mid-apply");
    end(victim->pid, SIGKILL);
    std::this_thread::sleep_for(1000ms);
    say("chaos", "restarting " + victim->name);
    victim->pid = spawn_self({self, "enactor", victim->name, endpoints, prefix});
  }

  int status = 0;
  ::waitpid(planner, &status, 0);
  say("planner", "done");
  auto history = etcd::etcd_plan_registry::make(config, prefix).value();
  const generation newest = history.latest_generation().value();
  auto reader = etcd_store::make(config, prefix, endpoint_set, etcd::fence_mode::floor_only).value();
  bool converged = false;
  for (int i = 0; i < 300 && !converged; ++i) {
    auto all = reader.read_all();
    converged = all && all->endpoints.size() == endpoint_set.size();
    if (converged) {
      for (const auto& e : all->endpoints) converged = converged && e.value.gen == newest;
    }
    if (!converged) std::this_thread::sleep_for(100ms);
  }
  monitor_stop = true;
  monitor.join();
  for (auto& z : zones) end(z.pid, SIGTERM);

  std::printf("\nWhat etcd holds now (etcdctl get --prefix %s/endpoints/ shows the same):\n", prefix.c_str());
  if (auto all = reader.read_all()) {
    for (const auto& e : all->endpoints) {
      std::printf("  %-26s generation %3llu  fence %5llu  %s\n", e.name.c_str(), static_cast<unsigned long long>(e.value.gen.value()),
                  static_cast<unsigned long long>(e.value.fence.value()),
                  e.value.records.empty() ? "EMPTY" : e.value.records.records()[0].rdata.c_str());
    }
  }
  const bool ok = converged && backwards.load() == 0;
  std::printf("\n%s: every endpoint %s generation %llu; %d regressions of a generation or fence seen.\n",
              ok ? "OK" : "FAILED", converged ? "converged to the newest plan," : "did NOT converge to",
              static_cast<unsigned long long>(newest.value()), backwards.load());
  end(etcd_pid, SIGTERM);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 5 && std::string(argv[1]) == "planner") return run_planner(argv[2], argv[3], std::atoi(argv[4]));
  if (argc >= 5 && std::string(argv[1]) == "enactor") return run_enactor(argv[2], argv[3], argv[4]);
  return orchestrate(argc, argv);
}
