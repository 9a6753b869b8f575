// Faults against a three-member etcd cluster, with enactors in separate processes.
//
// What it proves: while a planner publishes a generation every 100 ms through the etcd
// sequencer and registry, and three enactor processes (three zones) apply them through the etcd
// store under etcd leases,
//  - the etcd leader is killed (SIGKILL) in the middle of commits and restarted;
//  - the enactor holding the lease is paused (SIGSTOP) past its lease and resumed, with a clock
//    that did not notice the pause, so it believes its lease is still current and tries to write;
//  - the next lease holder is killed (SIGKILL) mid-apply and restarted;
// and, checked continuously and after healing, on what etcd holds:
//  S1 no endpoint's generation ever decreases (a monitor polls every endpoint throughout);
//  S2 no endpoint's fence ever decreases, and the resumed enactor committed nothing after its
//     lease was taken over (its commits are refused by etcd: it logs `fenced`);
//  S3 every endpoint serves a plan etcd still retains;
//  S4 no endpoint is empty;
//  S5/S7 every retained plan parses with its digest and is the content the planner published
//     under that generation, and nothing published was lost (each generation is retained or
//     below the collected mark);
//  S6 once faults stop, every endpoint converges to the newest plan.
#include <catch2/catch.hpp>

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
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "etcd_support.hpp"
#include "examples/support/etcd_member.hpp"

using namespace planfence;
// The delayed 2025 enactor's clock: a SIGSTOP of seconds looks to it like 50 ms.
using planfence_example::stall_blind_clock;
using namespace std::chrono_literals;

namespace {

std::atomic<bool> child_stop{false};
extern "C" void on_term(int) { child_stop.store(true); }

/// The body of one enactor process: runs until SIGTERM, logging every decision to `log_path`.
[[noreturn]] void run_enactor_process(const std::string& endpoints, const std::string& prefix, const std::string& name,
                                      const std::string& log_path) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::signal(SIGTERM, on_term);
  FILE* log = std::fopen(log_path.c_str(), "a");
  if (log == nullptr) ::_exit(3);
  auto config = etcd::parse_endpoints(endpoints).value();
  config.request_timeout = 1000ms;
  stall_blind_clock clock;
  auto store = etcd_store::make(config, prefix);
  auto history = etcd::etcd_plan_registry::make(config, prefix);
  for (int i = 0; (!store || !history) && i < 50; ++i) {
    std::this_thread::sleep_for(100ms);
    store = etcd_store::make(config, prefix);
    history = etcd::etcd_plan_registry::make(config, prefix);
  }
  if (!store || !history) ::_exit(4);
  auto authority = etcd::etcd_lease_authority<stall_blind_clock>::make(config, prefix, clock, {.holder_name = name}).value();
  etcd::etcd_enactor_registry<stall_blind_clock> registry{*history, *store, authority, name};
  auto sink = [log](const event& e) {
    std::fprintf(log, "%s %llu %llu %.*s\n", to_string(e.kind).data(), static_cast<unsigned long long>(e.gen.value()),
                 static_cast<unsigned long long>(e.fence.value()), static_cast<int>(e.endpoint.size()), e.endpoint.data());
    std::fflush(log);
  };
  enactor<etcd_store, etcd::etcd_lease_authority<stall_blind_clock>, etcd::etcd_enactor_registry<stall_blind_clock>,
          stall_blind_clock, decltype(sink)>
      e{*store, authority, registry, clock,
        enactor_config{.name = name, .lease_ttl = 2000ms, .renew_margin = 1000ms, .store_retries_max = 3,
                       .store_backoff = 50ms, .poll_interval = 20ms, .zone_change_share_max = 1.0,
                       .retention = {.keep_newest = 3}},
        sink};
  e.run_until(child_stop);
  std::fclose(log);
  ::_exit(0);
}

struct enactor_process {
  std::string name;
  std::string log;
  pid_t pid = -1;
};

void spawn(enactor_process& p, const std::string& endpoints, const std::string& prefix) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) run_enactor_process(endpoints, prefix, p.name, p.log);
  p.pid = child;
}

void reap(enactor_process& p, int signal_number) {
  if (p.pid <= 0) return;
  ::kill(p.pid, SIGCONT);
  ::kill(p.pid, signal_number);
  int status = 0;
  ::waitpid(p.pid, &status, 0);
  p.pid = -1;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("etcd faults: leader killed, holder paused past its lease, holder killed mid-apply: S1-S7 hold", "[etcd][faults]") {
  planfence_test::etcd_cluster cluster(3);
  const std::string prefix = planfence_test::unique_prefix();
  const std::string endpoints = cluster.endpoints();
  const std::vector<std::string> names = planfence_test::endpoint_names(8);
  const auto dir = planfence_test::make_temp_dir("planfence-etcd-faults");
  const planfence_test::temp_dir_guard remove_dir{dir};
  std::vector<enactor_process> zones = {{"az1", (dir / "az1.log").string()},
                                        {"az2", (dir / "az2.log").string()},
                                        {"az3", (dir / "az3.log").string()}};
  // Fork before this process starts any thread of its own.
  for (auto& z : zones) spawn(z, endpoints, prefix);

  auto config = cluster.config();
  config.request_timeout = 1000ms;
  auto history = etcd::etcd_plan_registry::make(config, prefix).value();
  auto sequencer = etcd::etcd_sequencer::make(config, prefix).value();
  auto reader = etcd_store::make(config, prefix, names, etcd::fence_mode::floor_only).value();
  etcd::client holder_reader{config};

  // The monitor: S1 and S2 on every endpoint, throughout.
  std::atomic<bool> monitor_stop{false};
  std::atomic<int> regressions{0};
  std::atomic<int> fence_regressions{0};
  std::atomic<int> empties{0};
  std::thread monitor{[&] {
    auto mon = etcd_store::make(config, prefix, names, etcd::fence_mode::floor_only).value();
    std::map<std::string, stamp> last;
    while (!monitor_stop.load()) {
      auto all = mon.read_all();
      if (all) {
        for (const auto& e : all->endpoints) {
          stamp& seen = last[e.name];
          if (e.value.gen < seen.gen) ++regressions;
          if (e.value.fence < seen.fence) ++fence_regressions;
          if (e.value.records.empty()) ++empties;
          seen = stamp{e.value.gen, e.value.fence, 0};
        }
      }
      std::this_thread::sleep_for(20ms);
    }
  }};

  // The planner: a generation every 100 ms; records what it published.
  std::map<std::uint64_t, std::string> published;  // generation -> digest
  auto publish_one = [&] {
    auto gen = sequencer.next();
    if (!gen) return;
    const plan p = planfence_test::generation_plan(gen->value(), names);
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto r = history.publish(p);
      if (r || r.error().code == errc::equivocation) break;  // an unknown outcome retried: the same content is fine
      std::this_thread::sleep_for(100ms);
    }
    if (history.lookup(p.gen())) published[gen->value()] = p.digest_hex();
  };
  auto holder_name = [&]() -> std::string {
    auto got = holder_reader.range(history.keys().holder());
    if (!got || got->kvs.empty()) return {};
    return got->kvs[0].value.substr(0, got->kvs[0].value.find('\n'));
  };
  auto zone_named = [&](const std::string& n) -> enactor_process* {
    for (auto& z : zones) {
      if (z.name == n) return &z;
    }
    return nullptr;
  };
  auto run_planner_for = [&](std::chrono::milliseconds span) {
    const auto until = std::chrono::steady_clock::now() + span;
    while (std::chrono::steady_clock::now() < until) {
      publish_one();
      std::this_thread::sleep_for(100ms);
    }
  };

  run_planner_for(1500ms);
  // Fault 1: kill the leader in the middle of commits; restart it a second later.
  const auto leader = cluster.leader();
  REQUIRE(leader);
  cluster.member(*leader).kill();
  run_planner_for(1000ms);
  cluster.member(*leader).launch();
  run_planner_for(1000ms);

  // Fault 2: pause the lease holder past its lease (2 s), then resume it.
  std::string paused_name;
  for (int i = 0; i < 50 && paused_name.empty(); ++i) {
    paused_name = holder_name();
    if (paused_name.empty()) std::this_thread::sleep_for(100ms);
  }
  REQUIRE_FALSE(paused_name.empty());
  enactor_process* paused = zone_named(paused_name);
  REQUIRE(paused != nullptr);
  ::kill(paused->pid, SIGSTOP);
  std::string next_holder;
  const auto takeover_until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < takeover_until) {
    publish_one();
    next_holder = holder_name();
    if (!next_holder.empty() && next_holder != paused_name) break;
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE(next_holder != paused_name);
  run_planner_for(500ms);
  ::kill(paused->pid, SIGCONT);
  run_planner_for(1000ms);

  // Fault 3: kill the current holder mid-apply (SIGKILL), restart it.
  const std::string killed_name = holder_name();
  enactor_process* killed = zone_named(killed_name.empty() ? next_holder : killed_name);
  REQUIRE(killed != nullptr);
  reap(*killed, SIGKILL);
  run_planner_for(500ms);
  spawn(*killed, endpoints, prefix);
  run_planner_for(1000ms);

  // Heal: no more faults or plans; every endpoint must converge to the newest plan (S6).
  const std::uint64_t newest = published.rbegin()->first;
  bool converged = false;
  const auto converge_until = std::chrono::steady_clock::now() + 30s;
  while (!converged && std::chrono::steady_clock::now() < converge_until) {
    auto all = reader.read_all();
    converged = all && all->endpoints.size() == names.size();
    if (converged) {
      for (const auto& e : all->endpoints) converged = converged && e.value.gen == generation{newest};
    }
    if (!converged) std::this_thread::sleep_for(100ms);
  }
  monitor_stop = true;
  monitor.join();
  for (auto& z : zones) reap(z, SIGTERM);

  CHECK(converged);                       // S6
  CHECK(regressions.load() == 0);         // S1
  CHECK(fence_regressions.load() == 0);   // S2 at the store
  CHECK(empties.load() == 0);             // S4
  // S2 for the resumed holder: whatever it tried after its lease was taken over was refused.
  const std::string paused_log = read_file(paused->log);
  INFO("log of the paused enactor " << paused_name << ":\n" << paused_log.substr(paused_log.size() > 4000 ? paused_log.size() - 4000 : 0));
  CHECK((paused_log.find("fenced") != std::string::npos || paused_log.find("lease_lost") != std::string::npos));

  // S3, S5, S7 on what etcd holds.
  auto all = reader.read_all().value();
  const auto retained = history.retained().value();
  for (const auto& e : all.endpoints) {
    CHECK(std::find(retained.begin(), retained.end(), e.value.gen) != retained.end());  // S3
  }
  std::uint64_t collected_mark = 0;
  {
    auto mark = holder_reader.range(history.keys().plans_collected()).value();
    REQUIRE(mark.kvs.size() == 1);
    collected_mark = etcd::read_decimal(mark.kvs[0].value).value();
  }
  for (const auto& [gen, digest] : published) {
    auto stored = history.lookup(generation{gen});
    if (stored) {
      CHECK(stored->digest_hex() == digest);  // S5, S7
    } else {
      CHECK(stored.error().code == errc::not_found);
      CHECK(gen <= collected_mark);  // nothing published was lost: it was collected
    }
  }
  CHECK(published.size() >= 20);
  // A summary for the log: what each zone decided.
  for (const auto& z : zones) {
    const std::string text = read_file(z.log);
    auto count = [&](const std::string& kind) {
      std::size_t n = 0;
      for (std::size_t at = text.find(kind + " "); at != std::string::npos; at = text.find(kind + " ", at + 1)) {
        if (at == 0 || text[at - 1] == '\n') ++n;
      }
      return n;
    };
    std::printf("%s%s: applied %zu, stale %zu, fenced %zu, conflict %zu, lease_gained %zu, lease_lost %zu, collected %zu\n",
                z.name.c_str(), z.name == paused_name ? " (paused)" : "", count("applied"), count("stale"), count("fenced"),
                count("conflict"), count("lease_gained"), count("lease_lost"), count("collected"));
  }
  std::printf("published %zu generations, newest %llu, leader killed: m%zu\n", published.size(),
              static_cast<unsigned long long>(newest), *leader);
}

TEST_CASE("etcd client: fails over from a killed member and from a paused one", "[etcd][faults][client]") {
  // Proves the fail-over rules: reads move to the next member at once; a write whose outcome is
  // unknown is not resent but the next call goes elsewhere; so with one member of three killed
  // or paused (SIGSTOP: it still accepts connections, and never answers), reads keep working
  // and at most one write per fault fails, with store_unavailable.
  planfence_test::etcd_cluster cluster(3);
  auto config = cluster.config();
  config.request_timeout = 500ms;
  etcd::client c{config};
  REQUIRE(c.put("/failover/k", "0"));
  const std::size_t first = c.current_member();
  cluster.member(first).kill();
  // Reads need a leader: while the others elect one (if the killed member led) a read may fail
  // as a whole; it must succeed on another member within a few election timeouts.
  bool read = false;
  for (int i = 0; i < 30 && !read; ++i) {
    read = c.range("/failover/k").has_value();
    if (!read) std::this_thread::sleep_for(100ms);
  }
  CHECK(read);
  CHECK(c.current_member() != first);
  int failed_writes = 0;
  for (int i = 1; i <= 5; ++i) {
    if (!c.put("/failover/k", std::to_string(i))) ++failed_writes;
  }
  CHECK(failed_writes <= 1);
  cluster.member(first).start();  // back to three, so that pausing one leaves a quorum
  const std::size_t second = c.current_member();
  cluster.member(second).pause();
  // With the current member paused, the client must move on: every failure is store_unavailable
  // (the paused member's timeout, or a write caught while the other two elect a leader, when the
  // paused one led), and five writes succeed well within a few election timeouts. A client that
  // stayed on the paused member would fail every write until the deadline.
  failed_writes = 0;
  int succeeded = 0;
  int value = 5;
  int last_ok = 0;
  std::set<std::string> unknown;  // failed writes: their outcome is unknown, not "not applied"
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (succeeded < 5 && std::chrono::steady_clock::now() < deadline) {
    ++value;
    auto put = c.put("/failover/k", std::to_string(value));
    if (put) {
      ++succeeded;
      last_ok = value;
    } else {
      ++failed_writes;
      unknown.insert(std::to_string(value));
      CHECK(put.error().code == errc::store_unavailable);
    }
  }
  CHECK(succeeded == 5);
  CHECK(failed_writes <= 8);
  // The newest value is the last one written, or a failed write applied late (a failed write's
  // outcome is unknown, and a member may forward it after the election); never an older success.
  auto last = c.range("/failover/k");
  REQUIRE(last);
  REQUIRE(last->kvs.size() == 1);
  CHECK((last->kvs[0].value == std::to_string(last_ok) || unknown.count(last->kvs[0].value) == 1));
  cluster.member(second).resume();
  std::this_thread::sleep_for(200ms);
  bool healed = false;
  for (int i = 0; i < 20 && !healed; ++i) {
    healed = c.put("/failover/k", "healed").has_value();
    if (!healed) std::this_thread::sleep_for(100ms);
  }
  REQUIRE(healed);
  auto after = c.range("/failover/k");
  REQUIRE(after);
  REQUIRE(after->kvs.size() == 1);
  CHECK(after->kvs[0].value == "healed");
}
