// examples/support/knot_server.hpp: a real Knot DNS server (knotd) on loopback, for tests,
// benchmarks and examples (here, not under tests/, because an installed example cannot include
// a test header; tests and benchmarks find it from the source root).
//
// What it is for. The RFC 2136 store's tests, the recovery drill, the benchmarks and
// examples/knot_enactors.cpp need a real
// authoritative server that applies UPDATE messages. A knot_server starts `knotd` on 127.0.0.1
// on a free port, in a fresh temporary directory with a generated configuration, one TSIG key
// (hmac-sha256, a random 32-byte secret) allowed to update every zone, and the zones the test
// gives. Its destructor stops knotd (SIGTERM, then SIGKILL after 5 s) and removes the directory,
// also when a test fails by an exception (Catch2's REQUIRE). knotd is started with
// PR_SET_PDEATHSIG, so it dies with the test process even when the process crashes.
//
//   auto knot = planfence_example::knot_server::start({{"example.test.", "www 60 A 192.0.2.1\n"}});
//   if (!knot) { FAIL(knot.error().message()); }              // says when knotd is missing
//   knot->port();                                              // e.g. 40331
//   knot->key_name(), knot->secret_base64();                   // the TSIG key
//   knot->uri("example.test.");                                // rfc2136://127.0.0.1:40331/example.test.?tsig=...
//
// Zones. Each zone is an origin and zone-file lines that follow a generated
// `$ORIGIN`, `$TTL 60`, SOA (serial 1) and `NS ns` / `ns A 127.0.0.1`: give only your records.
// Updates go to knotd's journal; the zone file is not rewritten (zonefile-sync: -1) unless
// knot_server_options::sync_zone_file is set, which makes knotd flush after every update
// (slower; for drills that read the file). restart() stops and starts knotd on the same port and
// directory: the zones keep their updates (the journal survives).
//
// Where knotd is found: $PLANFENCE_KNOTD, else /usr/sbin/knotd, else `knotd` on PATH (also
// /usr/sbin/knotc for knotc()). A missing knotd is an errc::not_found result whose message says
// how to install it (Debian: apt-get install knot). Use knot_server::available() to skip.
// Set PLANFENCE_KEEP_KNOT_DIR=1 to keep the directory (config, zone files, knotd.log) after the
// test for a post-mortem; its path is printed to stderr then.
//
// Costs: starting takes about 50 to 200 ms (knotd start, then a SOA query per zone until each
// answers); stopping about 10 to 50 ms. Start one per TEST_CASE, not per SECTION, when you can.
//
// The process plumbing (spawn, stop, free port, readiness query, log tail) is in
// loopback_process.hpp, shared with pdns_server.hpp and etcd_member.hpp.
//
// Not thread-safe: one thread owns a knot_server (the one that started it should also be the one
// that lives longest: PR_SET_PDEATHSIG fires when the *thread* that forked exits).
#pragma once

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <planfence/result.hpp>

#include "loopback_process.hpp"

namespace planfence_example {

/// One zone for knotd: its origin and the records after the generated SOA and NS.
struct knot_zone {
  std::string origin;         ///< "example.test." (the final dot is added if missing)
  std::string records = {};   ///< zone-file lines, relative to the origin, e.g. "www 60 A 192.0.2.1\n"
};

struct knot_server_options {
  std::vector<knot_zone> zones;
  bool sync_zone_file = false;     ///< flush the zone file after every update (zonefile-sync: 0)
  std::string key_name = "planfence-test-key.";
  std::chrono::milliseconds ready_timeout{10'000};
};

class knot_server {
 public:
  /// Whether a knotd binary can be found (for tests that skip without one).
  [[nodiscard]] static bool available() { return !find_binary("PLANFENCE_KNOTD", "knotd").empty(); }

  /// Starts knotd with `zones` (see the header comment). Errors: errc::not_found (no knotd),
  /// errc::io_error (could not start, or not ready in time: the message quotes knotd.log).
  [[nodiscard]] static planfence::result<knot_server> start(std::vector<knot_zone> zones) {
    knot_server_options options;
    options.zones = std::move(zones);
    return start_with_options(std::move(options));
  }

  /// As start(zones), with the other options (a separate name: a braced list of one zone would
  /// otherwise be ambiguous between the two).
  [[nodiscard]] static planfence::result<knot_server> start_with_options(knot_server_options options) {
    using planfence::errc;
    using planfence::fail;
    knot_server out;
    out.knotd_ = find_binary("PLANFENCE_KNOTD", "knotd");
    if (out.knotd_.empty()) {
      return fail(errc::not_found,
                  "knotd not found (set PLANFENCE_KNOTD, or install Knot DNS: apt-get install knot)");
    }
    out.knotc_ = find_binary("PLANFENCE_KNOTC", "knotc");
    for (knot_zone& zone : options.zones) {
      if (zone.origin.empty()) return fail(errc::invalid_name, "knot_server: empty zone origin");
      if (zone.origin.back() != '.') zone.origin += '.';
    }
    out.options_ = std::move(options);
    out.secret_base64_ = random_secret_base64(32);
    auto directory = make_temp_directory("planfence-knot-", "knot_server");
    if (!directory) return planfence::unexpected_error(directory.error());
    out.directory_ = std::move(*directory);
    std::error_code ec;
    std::filesystem::create_directories(out.directory_ / "zones", ec);
    std::filesystem::create_directories(out.directory_ / "db", ec);
    if (ec) return fail(errc::io_error, "knot_server: cannot create " + out.directory_.string());
    for (const knot_zone& zone : out.options_.zones) {
      std::ofstream file(out.zone_file(zone.origin));
      file << "$ORIGIN " << zone.origin << "\n$TTL 60\n"
           << "@ SOA ns." << zone.origin << " hostmaster." << zone.origin << " 1 3600 600 86400 60\n"
           << "@ NS ns\nns A 127.0.0.1\n"
           << zone.records << "\n";
      if (!file) return fail(errc::io_error, "knot_server: cannot write " + out.zone_file(zone.origin));
    }
    // A free port: the kernel picks one for a TCP socket, then UDP must be free on it too. The
    // sockets are closed before knotd binds, so another process could take the port meanwhile:
    // then knotd is not ready in time and we try another port.
    std::string last_failure;
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto port = free_dns_port("knot_server");
      if (!port) return planfence::unexpected_error(port.error());
      out.port_ = *port;
      if (auto written = out.write_config(); !written) return planfence::unexpected_error(written.error());
      auto started = out.launch();
      if (started) return out;
      last_failure = started.error().message();
      out.stop();
    }
    return fail(errc::io_error, "knot_server: knotd did not start: " + last_failure);
  }

  knot_server(knot_server&& other) noexcept { *this = std::move(other); }
  knot_server& operator=(knot_server&& other) noexcept {
    if (this != &other) {
      cleanup();
      options_ = std::move(other.options_);
      knotd_ = std::move(other.knotd_);
      knotc_ = std::move(other.knotc_);
      directory_ = std::exchange(other.directory_, {});
      secret_base64_ = std::move(other.secret_base64_);
      port_ = other.port_;
      pid_ = std::exchange(other.pid_, -1);
    }
    return *this;
  }
  knot_server(const knot_server&) = delete;
  knot_server& operator=(const knot_server&) = delete;
  ~knot_server() { cleanup(); }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::string host() const { return "127.0.0.1"; }
  [[nodiscard]] const std::string& key_name() const noexcept { return options_.key_name; }
  [[nodiscard]] const std::string& secret_base64() const noexcept { return secret_base64_; }
  /// "hmac-sha256:NAME:SECRET", as `knsupdate -y` and `kdig -y` take it.
  [[nodiscard]] std::string key_argument() const { return "hmac-sha256:" + key_name() + ":" + secret_base64_; }
  /// The store URI for `zone` with the key inline.
  [[nodiscard]] std::string uri(std::string zone) const {
    if (!zone.empty() && zone.back() != '.') zone += '.';
    return "rfc2136://127.0.0.1:" + std::to_string(port_) + "/" + zone + "?tsig=" + key_argument();
  }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  [[nodiscard]] std::string zone_file(const std::string& origin) const {
    std::string name = origin;
    if (!name.empty() && name.back() != '.') name += '.';
    return (directory_ / "zones" / (name + "zone")).string();
  }
  [[nodiscard]] std::string log_path() const { return (directory_ / "knotd.log").string(); }
  /// The last lines of knotd's log (for failure messages).
  [[nodiscard]] std::string log_tail(std::size_t lines = 20) const { return log_tail_of(log_path(), lines); }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

  /// Stops knotd (SIGTERM, SIGKILL after 5 s). The directory stays until destruction.
  void stop() noexcept { stop_process(pid_); }

  /// Stops and starts knotd again on the same port and directory (zones keep their updates).
  [[nodiscard]] planfence::result<void> restart() {
    stop();
    return launch();
  }

  /// Runs `knotc -c <config> ARGS` (e.g. "zone-flush example.test."); returns its exit status,
  /// or -1 when knotc is missing.
  [[nodiscard]] int knotc(const std::string& args) const {
    if (knotc_.empty()) return -1;
    return run_logged(knotc_ + " -c '" + config_path() + "' " + args, log_path());
  }

  [[nodiscard]] std::string config_path() const { return (directory_ / "knot.conf").string(); }

 private:
  knot_server() = default;

  [[nodiscard]] planfence::result<void> write_config() const {
    std::ofstream file(config_path());
    const std::string dir = directory_.string();
    file << "server:\n"
         << "    rundir: \"" << dir << "\"\n"
         << "    listen: 127.0.0.1@" << port_ << "\n"
         << "    udp-workers: 1\n    tcp-workers: 2\n    background-workers: 1\n"
         << "control:\n    listen: \"" << dir << "/knot.sock\"\n"
         << "log:\n  - target: stderr\n    any: info\n"
         << "database:\n    storage: \"" << dir << "/db\"\n    journal-db-mode: asynchronous\n"
         << "key:\n  - id: " << options_.key_name << "\n    algorithm: hmac-sha256\n    secret: " << secret_base64_ << "\n"
         << "acl:\n  - id: planfence_update\n    key: " << options_.key_name << "\n    action: update\n"
         << "template:\n  - id: default\n    storage: \"" << dir << "/zones\"\n    file: \"%s.zone\"\n"
         << "    zonefile-sync: " << (options_.sync_zone_file ? "0" : "-1") << "\n"
         << "    acl: planfence_update\n"
         << "zone:\n";
    for (const knot_zone& zone : options_.zones) file << "  - domain: " << zone.origin << "\n";
    file.flush();
    if (!file) return planfence::fail(planfence::errc::io_error, "knot_server: cannot write " + config_path());
    return planfence::ok();
  }

  /// Forks knotd and waits until every zone answers a SOA query over TCP.
  [[nodiscard]] planfence::result<void> launch() {
    const pid_t child = spawn_logged({knotd_, "-c", config_path()}, log_path());
    if (child < 0) return planfence::fail(planfence::errc::io_error, "knot_server: fork failed");
    pid_ = child;
    const auto give_up = std::chrono::steady_clock::now() + options_.ready_timeout;
    for (const knot_zone& zone : options_.zones) {
      for (;;) {
        if (soa_answers(port_, zone.origin, 0x1234)) break;
        if (reap_if_exited(pid_)) {
          return planfence::fail(planfence::errc::io_error, "knotd exited at start; knotd.log:\n" + log_tail());
        }
        if (std::chrono::steady_clock::now() > give_up) {
          return planfence::fail(planfence::errc::io_error, "knotd not ready for " + zone.origin + "; knotd.log:\n" + log_tail());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    if (options_.zones.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return planfence::ok();
  }

  void cleanup() noexcept {
    stop();
    remove_directory_unless_kept(directory_, "PLANFENCE_KEEP_KNOT_DIR", "knot_server");
  }

  knot_server_options options_{};
  std::string knotd_{};
  std::string knotc_{};
  std::filesystem::path directory_{};
  std::string secret_base64_{};
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace planfence_example
