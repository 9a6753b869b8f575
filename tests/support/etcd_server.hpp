// tests/support/etcd_server.hpp: real etcd members on loopback, for tests and benchmarks.
//
// `etcd_member` starts one `etcd` process (the binary on PATH, or $PLANFENCE_ETCD) on free
// loopback ports with a temporary data directory (and extra flags, e.g. --max-txn-ops 16), waits until it answers, and stops it (SIGTERM,
// then SIGKILL) and removes the directory when it goes out of scope, so a failing test (Catch2
// unwinds) leaves nothing behind. The child also gets PR_SET_PDEATHSIG, so etcd dies with the
// test process even if that process is killed outright. (Linux sends that signal when the
// *thread* that forked ends: start members from a thread that outlives them, e.g. the test's.)
// A test process that aborts (a failed PLANFENCE_ASSERT) runs no destructors: its etcd members
// still die, but their temporary directories stay behind under $TMPDIR/planfence-etcd-*. Faults: kill() (SIGKILL), pause()
// (SIGSTOP), resume(), start() again on the same data directory and ports.
//
// `etcd_cluster` starts `n` members that form one cluster (names m0..m<n-1>), finds the leader,
// and offers the same faults per member.
//
// Elections are tuned fast (heartbeat 50 ms, election timeout 500 ms) so that a killed leader is
// replaced within about a second; etcd's smallest lease TTL is then 1 s.
//
// available() says whether an etcd binary exists; tests that need one SKIP cleanly without it
// (Catch2 v2 has no SKIP: they WARN and return).
//
// The fork and exec of one member, its command line and its readiness probe come from
// examples/support/etcd_member.hpp, which examples/etcd_enactors.cpp uses too (an installed
// example cannot include this header); a target that includes this header needs the source root
// on its include path (tests/etcd/ and bench/ add it).
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <planfence/etcd/client.hpp>

#include "examples/support/etcd_member.hpp"

namespace planfence_test {

/// The etcd binary to run: $PLANFENCE_ETCD, else the first `etcd` on PATH; empty if none.
inline std::string etcd_binary() {
  if (const char* env = std::getenv("PLANFENCE_ETCD"); env != nullptr && *env != '\0') return env;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const std::size_t colon = dirs.find(':', start);
    const std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/etcd";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
#ifdef PLANFENCE_ETCD_DEFAULT
  return PLANFENCE_ETCD_DEFAULT;  // the one CMake found
#else
  return {};
#endif
}

inline bool etcd_available() { return !etcd_binary().empty(); }

/// A free TCP port on 127.0.0.1 (bound, read, closed: a race with other programs is possible
/// but unlikely, and start() fails loudly if it happens).
inline std::uint16_t free_port() {
  auto port = planfence_example::free_loopback_port();
  if (!port) throw std::runtime_error("free port on 127.0.0.1: " + port.error().message());
  return *port;
}

/// A fresh directory under $TMPDIR (or /tmp), removed by the owner.
inline std::filesystem::path make_temp_dir(const char* stem) {
  std::string pattern = (std::filesystem::temp_directory_path() / (std::string(stem) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

/// Removes a directory when it goes out of scope (also when a test fails and unwinds).
struct temp_dir_guard {
  std::filesystem::path path;
  explicit temp_dir_guard(std::filesystem::path p) : path(std::move(p)) {}
  temp_dir_guard(const temp_dir_guard&) = delete;
  temp_dir_guard& operator=(const temp_dir_guard&) = delete;
  ~temp_dir_guard() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

/// One etcd process.
class etcd_member {
 public:
  struct ports {
    std::uint16_t client = 0;
    std::uint16_t peer = 0;
  };

  /// A single-member cluster on free ports.
  etcd_member() : etcd_member(std::vector<std::string>{}) {}

  /// A single-member cluster on free ports, with `extra_args` on etcd's command line (kept for
  /// restarts), e.g. {"--max-txn-ops", "16"}.
  explicit etcd_member(std::vector<std::string> extra_args)
      : etcd_member("m0", {free_port(), free_port()}, {}, make_temp_dir("planfence-etcd")) {
    extra_args_ = std::move(extra_args);
    owns_dir_ = true;
    for (int attempt = 0;; ++attempt) {
      try {
        start();
        return;
      } catch (const std::exception&) {
        if (attempt == 2) throw;
        kill();
        ports_ = {free_port(), free_port()};  // a port was taken meanwhile: try fresh ones
        initial_cluster_ = name_ + "=" + peer_url();
        std::error_code ignored;
        std::filesystem::remove_all(dir_ / (name_ + ".etcd"), ignored);
      }
    }
  }

  /// A member of a cluster: `initial_cluster` is "m0=http://127.0.0.1:P0,m1=...".
  etcd_member(std::string name, ports p, std::string initial_cluster, std::filesystem::path dir)
      : name_(std::move(name)), ports_(p), initial_cluster_(std::move(initial_cluster)), dir_(std::move(dir)) {
    if (initial_cluster_.empty()) initial_cluster_ = name_ + "=" + peer_url();
  }

  etcd_member(const etcd_member&) = delete;
  etcd_member& operator=(const etcd_member&) = delete;

  ~etcd_member() {
    stop();
    if (owns_dir_) {
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
    }
  }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] std::uint16_t client_port() const noexcept { return ports_.client; }
  [[nodiscard]] std::string client_address() const { return "127.0.0.1:" + std::to_string(ports_.client); }
  [[nodiscard]] std::string peer_url() const { return "http://127.0.0.1:" + std::to_string(ports_.peer); }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] planfence::etcd::client_config config() const {
    return planfence::etcd::parse_endpoints(client_address()).value();
  }

  /// Starts the process (again, on the same data directory, after kill() or stop()) without
  /// waiting for it to answer.
  void launch() {
    if (pid_ > 0) return;
    const std::string binary = etcd_binary();
    if (binary.empty()) throw std::runtime_error("no etcd binary (set PLANFENCE_ETCD or install etcd-server)");
    const pid_t child = planfence_example::launch_etcd_member(
        {.binary = binary, .name = name_, .directory = dir_, .client_port = ports_.client, .peer_port = ports_.peer,
         .initial_cluster = initial_cluster_, .extra_args = extra_args_});
    if (child < 0) throw std::runtime_error("fork failed");
    pid_ = child;
  }

  /// launch() and wait until the member answers a read (a cluster member needs a quorum for
  /// that: start the others first with launch()).
  void start(std::chrono::milliseconds timeout = std::chrono::milliseconds{15000}) {
    launch();
    wait_ready(timeout);
  }

  void wait_ready(std::chrono::milliseconds timeout = std::chrono::milliseconds{15000}) {
    switch (planfence_example::wait_until_etcd_answers(client_address(), pid_, timeout)) {
      case planfence_example::etcd_readiness::answers: return;
      case planfence_example::etcd_readiness::exited: throw std::runtime_error("etcd " + name_ + " exited at start: " + log_tail());
      case planfence_example::etcd_readiness::silent: break;
    }
    throw std::runtime_error("etcd " + name_ + " did not answer in time: " + log_tail());
  }

  /// The end of the member's log (for failure messages: the directory is removed afterwards).
  [[nodiscard]] std::string log_tail() const {
    std::FILE* f = std::fopen((dir_ / (name_ + ".log")).c_str(), "r");
    if (f == nullptr) return "(no log)";
    std::string text;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) text.append(buffer, n);
    std::fclose(f);
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
  }

  /// SIGTERM, then SIGKILL after 5 s; reaps the process.
  void stop() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);  // a paused member cannot act on SIGTERM
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    kill();
  }

  /// SIGKILL (a crash); reaps the process.
  void kill() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  void pause() noexcept {
    if (pid_ > 0) ::kill(pid_, SIGSTOP);
  }
  void resume() noexcept {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

 private:
  std::string name_;
  ports ports_;
  std::string initial_cluster_;
  std::filesystem::path dir_;
  std::vector<std::string> extra_args_;
  bool owns_dir_ = false;
  pid_t pid_ = -1;
};

/// `n` members forming one cluster on loopback.
class etcd_cluster {
 public:
  /// Starts the members; a start that fails (a free port taken meanwhile by another program)
  /// is retried twice with fresh ports and a fresh directory.
  explicit etcd_cluster(std::size_t n) {
    for (int attempt = 0;; ++attempt) {
      try {
        start_all(n);
        return;
      } catch (const std::exception&) {
        members_.clear();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
        if (attempt == 2) throw;
      }
    }
  }
  etcd_cluster(const etcd_cluster&) = delete;
  etcd_cluster& operator=(const etcd_cluster&) = delete;
  ~etcd_cluster() {
    members_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }
  [[nodiscard]] etcd_member& member(std::size_t i) { return *members_.at(i); }

  /// Every member's client address, comma-separated (for parse_endpoints and etcd:// URIs).
  [[nodiscard]] std::string endpoints() const {
    std::string out;
    for (const auto& m : members_) {
      if (!out.empty()) out += ',';
      out += m->client_address();
    }
    return out;
  }
  [[nodiscard]] planfence::etcd::client_config config() const {
    return planfence::etcd::parse_endpoints(endpoints()).value();
  }

  /// The index of the member that is leader now, asked of the running members; nullopt when
  /// none knows one.
  [[nodiscard]] std::optional<std::size_t> leader() {
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (!members_[i]->running()) continue;
      auto cfg = members_[i]->config();
      cfg.request_timeout = std::chrono::milliseconds{500};
      planfence::etcd::client c{cfg};
      auto status = c.status();
      if (!status || status->leader == 0) continue;
      for (std::size_t j = 0; j < members_.size(); ++j) {
        if (!members_[j]->running()) continue;
        auto cfg_j = members_[j]->config();
        cfg_j.request_timeout = std::chrono::milliseconds{500};
        planfence::etcd::client cj{cfg_j};
        auto sj = cj.status();
        if (sj && sj->member_id == status->leader) return j;
      }
    }
    return std::nullopt;
  }

 private:
  void start_all(std::size_t n) {
    dir_ = make_temp_dir("planfence-etcd-cluster");
    std::vector<etcd_member::ports> ports;
    std::string initial;
    for (std::size_t i = 0; i < n; ++i) {
      ports.push_back({free_port(), free_port()});
      if (i != 0) initial += ',';
      initial += "m" + std::to_string(i) + "=http://127.0.0.1:" + std::to_string(ports.back().peer);
    }
    for (std::size_t i = 0; i < n; ++i) {
      members_.push_back(std::make_unique<etcd_member>("m" + std::to_string(i), ports[i], initial, dir_));
    }
    for (auto& m : members_) m->launch();
    for (auto& m : members_) m->wait_ready();
  }

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<etcd_member>> members_;
};

}  // namespace planfence_test
