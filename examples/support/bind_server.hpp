// examples/support/bind_server.hpp: a real BIND 9 (`named`) on loopback, for the RFC 2136
// store's tests and benchmarks (beside knot_server.hpp and pdns_server.hpp, which it follows).
//
// What it is for. The RFC 2136 store must keep its compare-and-swap on every server it claims to
// support, and BIND checks UPDATE prerequisites with its own code. A bind_server starts `named`
// in the foreground (-g: logs to stderr, which goes to named.log) on 127.0.0.1 on a free port,
// in a fresh temporary directory holding named.conf, one primary zone file (the zone's journal
// is written beside it) and one TSIG key (hmac-sha256, a random 32-byte secret) allowed to
// update every name of the zone: `update-policy { grant KEY zonesub ANY; };`. No recursion, no
// control channel, no IPv6 listener. Its destructor stops named (SIGTERM, then SIGKILL after
// 5 s) and removes the directory; named is started with PR_SET_PDEATHSIG, so it dies with the
// test process.
//
//   auto bind = planfence_example::bind_server::start("example.test.");
//   if (!bind) { FAIL(bind.error().message()); }      // says when named is missing
//   bind->uri("example.test.");                        // rfc2136://127.0.0.1:PORT/example.test.?tsig=...
//
// What it needs (Debian 12): bind9 (named; found as $PLANFENCE_NAMED, else /usr/sbin/named or on
// PATH). available() says whether it is there; start() returns errc::not_found naming the
// package. Set PLANFENCE_KEEP_BIND_DIR=1 to keep the directory (named.conf, the zone, its
// journal, named.log).
//
// Costs: starting takes about 0.2 to 1 s (named loads, then a SOA query every 20 ms until the
// zone answers); stopping about 10 to 200 ms. Start one per TEST_CASE.
//
// Not thread-safe: one thread owns a bind_server (the thread that started it should live
// longest: PR_SET_PDEATHSIG fires when the thread that forked exits).
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

#include <planfence/result.hpp>

#include "loopback_process.hpp"

namespace planfence_example {

class bind_server {
 public:
  static constexpr const char* packages = "apt-get install bind9";

  /// Whether a named binary can be found.
  [[nodiscard]] static bool available() { return !find_binary("PLANFENCE_NAMED", "named").empty(); }

  /// Starts named serving `zone` (a SOA, `NS ns`, `ns A 127.0.0.1`, then `records`: zone-file
  /// lines relative to the origin), updatable with the key. Errors: errc::not_found (no named),
  /// errc::io_error (a file could not be written, or named was not ready in time: the message
  /// quotes named.log).
  [[nodiscard]] static planfence::result<bind_server> start(std::string zone, std::string records = {},
                                                             std::string key_name = "planfence-test-key.") {
    using planfence::errc;
    using planfence::fail;
    bind_server out;
    out.named_ = find_binary("PLANFENCE_NAMED", "named");
    if (out.named_.empty()) return fail(errc::not_found, std::string("named (BIND 9) not found: ") + packages);
    if (zone.empty()) return fail(errc::invalid_name, "bind_server: empty zone");
    if (zone.back() != '.') zone += '.';
    out.zone_ = std::move(zone);
    out.key_name_ = std::move(key_name);
    out.secret_base64_ = random_secret_base64(33);
    auto directory = make_temp_directory("planfence-bind-", "bind_server");
    if (!directory) return planfence::unexpected_error(directory.error());
    out.directory_ = std::move(*directory);
    {
      std::ofstream file(out.zone_file());
      file << "$ORIGIN " << out.zone_ << "\n$TTL 60\n"
           << "@ SOA ns." << out.zone_ << " hostmaster." << out.zone_ << " 1 3600 600 86400 60\n"
           << "@ NS ns\nns A 127.0.0.1\n"
           << records << "\n";
      if (!file) return fail(errc::io_error, "bind_server: cannot write " + out.zone_file());
    }
    std::string last_failure;
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto port = free_dns_port("bind_server");
      if (!port) return planfence::unexpected_error(port.error());
      out.port_ = *port;
      if (auto written = out.write_config(); !written) return planfence::unexpected_error(written.error());
      auto started = out.launch();
      if (started) return out;
      last_failure = started.error().message();
      out.stop();
    }
    return fail(errc::io_error, "bind_server: named did not start: " + last_failure);
  }

  bind_server(bind_server&& other) noexcept { *this = std::move(other); }
  bind_server& operator=(bind_server&& other) noexcept {
    if (this != &other) {
      cleanup();
      named_ = std::move(other.named_);
      zone_ = std::move(other.zone_);
      key_name_ = std::move(other.key_name_);
      secret_base64_ = std::move(other.secret_base64_);
      directory_ = std::exchange(other.directory_, {});
      port_ = other.port_;
      pid_ = std::exchange(other.pid_, -1);
    }
    return *this;
  }
  bind_server(const bind_server&) = delete;
  bind_server& operator=(const bind_server&) = delete;
  ~bind_server() { cleanup(); }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] const std::string& zone() const noexcept { return zone_; }
  [[nodiscard]] const std::string& key_name() const noexcept { return key_name_; }
  [[nodiscard]] const std::string& secret_base64() const noexcept { return secret_base64_; }
  /// "hmac-sha256:NAME:SECRET", as `knsupdate -y` and `kdig -y` take it.
  [[nodiscard]] std::string key_argument() const { return "hmac-sha256:" + key_name_ + ":" + secret_base64_; }
  /// The store URI for the zone with the key inline (`zone` must be the served one).
  [[nodiscard]] std::string uri(std::string zone = {}) const {
    if (zone.empty()) zone = zone_;
    if (zone.back() != '.') zone += '.';
    return "rfc2136://127.0.0.1:" + std::to_string(port_) + "/" + zone + "?tsig=" + key_argument();
  }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  [[nodiscard]] std::string zone_file() const { return (directory_ / "zone.db").string(); }
  [[nodiscard]] std::string config_path() const { return (directory_ / "named.conf").string(); }
  [[nodiscard]] std::string log_path() const { return (directory_ / "named.log").string(); }
  /// The last lines of named's log (for failure messages).
  [[nodiscard]] std::string log_tail(std::size_t lines = 20) const { return log_tail_of(log_path(), lines); }

  /// Stops named (SIGTERM, SIGKILL after 5 s). The directory stays until destruction.
  void stop() noexcept { stop_process(pid_); }

 private:
  bind_server() = default;

  [[nodiscard]] planfence::result<void> write_config() const {
    std::ofstream file(config_path());
    const std::string dir = directory_.string();
    file << "options {\n"
         << "  directory \"" << dir << "\";\n"
         << "  pid-file none;\n"
         << "  session-keyfile \"" << dir << "/session.key\";\n"
         << "  managed-keys-directory \"" << dir << "\";\n"
         << "  listen-on port " << port_ << " { 127.0.0.1; };\n"
         << "  listen-on-v6 { none; };\n"
         << "  recursion no;\n"
         << "  notify no;\n"
         << "  dnssec-validation no;\n"
         << "};\n"
         << "controls { };\n"
         << "key \"" << key_name_ << "\" {\n  algorithm hmac-sha256;\n  secret \"" << secret_base64_ << "\";\n};\n"
         << "zone \"" << zone_ << "\" {\n"
         << "  type primary;\n"
         << "  file \"" << zone_file() << "\";\n"
         << "  update-policy { grant " << key_name_ << " zonesub ANY; };\n"
         << "};\n";
    file.flush();
    if (!file) return planfence::fail(planfence::errc::io_error, "bind_server: cannot write " + config_path());
    return planfence::ok();
  }

  /// Forks named in the foreground and waits until the zone answers a SOA query over TCP.
  [[nodiscard]] planfence::result<void> launch() {
    const pid_t child = spawn_logged({named_, "-g", "-c", config_path(), "-n", "1"}, log_path());
    if (child < 0) return planfence::fail(planfence::errc::io_error, "bind_server: fork failed");
    pid_ = child;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!soa_answers(port_, zone_, 0x5432)) {
      if (reap_if_exited(pid_)) {
        return planfence::fail(planfence::errc::io_error, "named exited at start; named.log:\n" + log_tail());
      }
      if (std::chrono::steady_clock::now() > give_up) {
        return planfence::fail(planfence::errc::io_error, "named not ready for " + zone_ + "; named.log:\n" + log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return planfence::ok();
  }

  void cleanup() noexcept {
    stop();
    remove_directory_unless_kept(directory_, "PLANFENCE_KEEP_BIND_DIR", "bind_server");
  }

  std::string named_{};
  std::string zone_{};
  std::string key_name_{};
  std::string secret_base64_{};
  std::filesystem::path directory_{};
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace planfence_example
