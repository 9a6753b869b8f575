// examples/support/etcd_member.hpp: what examples/etcd_enactors.cpp shares with the etcd tests: a
// clock blind to SIGSTOP, and starting one etcd member on loopback.
//
// What it is for. The example and tests/etcd/ both replay the 2025 race against real etcd
// processes: they start etcd members on free loopback ports, and they pause an enactor with
// SIGSTOP while its clock does not notice, so that only etcd's fencing stops it. An installed
// example cannot include test headers, so those pieces live here, beside the example;
// tests/support/etcd_server.hpp builds its `etcd_member` and `etcd_cluster` on them (retries,
// exceptions, faults, clusters, clean-up). free_loopback_port() and the process spawning come
// from loopback_process.hpp, which the DNS server launchers share.
//
//   const planfence_example::etcd_member_spec member{.binary = "/usr/bin/etcd", .name = "m0",
//       .directory = dir, .client_port = free_loopback_port().value(), .peer_port = free_loopback_port().value()};
//   pid_t pid = planfence_example::launch_etcd_member(member);
//   if (pid > 0 && wait_until_etcd_answers(member.client_address(), pid, 10s) == etcd_readiness::answers) ...
//
// When not to use it. Not part of the library: nothing under include/ may include it, and it is
// not installed. Not a way to run etcd for real: elections are tuned for loopback (heartbeat
// 50 ms, election timeout 500 ms, so etcd's smallest lease TTL is 1 s) and nothing here stops
// or removes what it started. A test wants tests/support/etcd_server.hpp instead, which does.
// Linux only (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <planfence/etcd/client.hpp>
#include <planfence/result.hpp>

#include "loopback_process.hpp"

namespace planfence_example {

/// A clock that does not notice that its process was stopped: a ticker thread advances an offset
/// in steps of at most 50 ms, so a SIGSTOP of seconds looks like 50 ms. It models the delayed
/// 2025 enactor that believed its view was fresh; the lease and the store must not trust it, and
/// only fencing at etcd stops it. now() is wait-free and does not allocate; the ticker wakes every
/// 5 ms for the clock's lifetime.
class stall_blind_clock {
 public:
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<stall_blind_clock, duration>;
  stall_blind_clock() : last_(std::chrono::steady_clock::now()) {
    ticker_ = std::thread([this] {
      using namespace std::chrono_literals;
      while (!stop_.load(std::memory_order_acquire)) {
        std::this_thread::sleep_for(5ms);
        const auto now = std::chrono::steady_clock::now();
        const auto step = std::min<std::chrono::nanoseconds>(now - last_, 50ms);
        last_ = now;
        now_ns_.fetch_add(step.count(), std::memory_order_acq_rel);
      }
    });
  }
  stall_blind_clock(const stall_blind_clock&) = delete;
  stall_blind_clock& operator=(const stall_blind_clock&) = delete;
  ~stall_blind_clock() {
    stop_.store(true, std::memory_order_release);
    ticker_.join();
  }
  [[nodiscard]] time_point now() const noexcept { return time_point{duration{now_ns_.load(std::memory_order_acquire)}}; }

 private:
  std::chrono::steady_clock::time_point last_;  // the ticker's alone once it runs
  std::atomic<std::int64_t> now_ns_{1'000'000'000};
  std::atomic<bool> stop_{false};
  std::thread ticker_;
};

/// One etcd member on loopback: which binary, where it listens, where it keeps its data
/// (`directory`/<name>.etcd) and its log (`directory`/<name>.log), and the cluster it joins.
struct etcd_member_spec {
  std::string binary;  // the etcd executable
  std::string name;    // m0, m1, ...
  std::filesystem::path directory;
  std::uint16_t client_port = 0;
  std::uint16_t peer_port = 0;
  std::string initial_cluster;  // "m0=http://127.0.0.1:P0,m1=..."; empty: this member alone
  std::vector<std::string> extra_args;  // appended to the command line, e.g. {"--max-txn-ops", "16"}
  bool client_tls = false;  // clients speak https (give --cert-file and --key-file in extra_args)

  [[nodiscard]] std::string client_address() const { return "127.0.0.1:" + std::to_string(client_port); }
  [[nodiscard]] std::string client_url() const { return (client_tls ? "https://" : "http://") + client_address(); }
  [[nodiscard]] std::string peer_url() const { return "http://127.0.0.1:" + std::to_string(peer_port); }
  [[nodiscard]] std::filesystem::path data_directory() const { return directory / (name + ".etcd"); }
  [[nodiscard]] std::filesystem::path log_path() const { return directory / (name + ".log"); }
};

/// Forks and executes the member's etcd, its output appended to spec.log_path(), and returns its
/// pid (-1 when fork failed) without waiting for it to answer. The child gets PR_SET_PDEATHSIG
/// SIGKILL, so etcd dies with the caller even if the caller is killed outright; Linux sends that
/// signal when the *thread* that forked ends, so launch from a thread that outlives the member.
/// Blocking (fork); allocates before forking, and the child allocates nothing before exec.
[[nodiscard]] inline pid_t launch_etcd_member(const etcd_member_spec& spec) {
  const std::string client_url = spec.client_url();
  const std::string peer_url = spec.peer_url();
  std::vector<std::string> args = {spec.binary,
                                   "--name", spec.name,
                                   "--data-dir", spec.data_directory().string(),
                                   "--listen-client-urls", client_url,
                                   "--advertise-client-urls", client_url,
                                   "--listen-peer-urls", peer_url,
                                   "--initial-advertise-peer-urls", peer_url,
                                   "--initial-cluster", spec.initial_cluster.empty() ? spec.name + "=" + peer_url : spec.initial_cluster,
                                   "--initial-cluster-token", "planfence-loopback",
                                   "--initial-cluster-state", "new",
                                   "--heartbeat-interval", "50",
                                   "--election-timeout", "500",
                                   "--log-level", "error"};
  args.insert(args.end(), spec.extra_args.begin(), spec.extra_args.end());
  return spawn_logged(std::move(args), spec.log_path().string());  // -1 when fork failed
}

/// How a member's start ended: it answers reads, its process exited (reaped), or it stayed silent.
enum class etcd_readiness { answers, exited, silent };

/// Waits up to `timeout` until the member at `client_address` ("127.0.0.1:PORT") answers a read,
/// polling every 50 ms. When the process `pid` exits meanwhile (a port taken, a bad flag), it is
/// reaped, `pid` becomes -1, and the answer is `exited` at once. A cluster member needs a quorum
/// to answer: launch the others first. Blocking; allocates.
[[nodiscard]] inline etcd_readiness wait_until_etcd_answers(const std::string& client_address, pid_t& pid,
                                                            std::chrono::milliseconds timeout) {
  auto config = planfence::etcd::parse_endpoints(client_address).value();
  config.request_timeout = std::chrono::milliseconds{500};
  planfence::etcd::client probe{config};
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (probe.range("/planfence-probe")) return etcd_readiness::answers;
    if (reap_if_exited(pid)) return etcd_readiness::exited;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  return etcd_readiness::silent;
}

}  // namespace planfence_example
