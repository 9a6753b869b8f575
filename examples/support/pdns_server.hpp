// examples/support/pdns_server.hpp: a real PowerDNS Authoritative Server on loopback, for the RFC
// 2136 store's tests (here beside knot_server.hpp, which it follows, so that examples may use it).
//
// What it is for. PowerDNS answers some refusals differently from Knot (a request signed with a
// key it does not accept gets an UNSIGNED answer: NOTAUTH to a query, REFUSED to an UPDATE), and
// the store's messages must be right for both. A pdns_server starts `pdns_server` on 127.0.0.1 on
// a free port, in a fresh temporary directory, with the SQLite backend (launch=gsqlite3; the
// database is made from the schema the Debian package ships), dynamic updates on (dnsupdate=yes,
// from 127.0.0.0/8), one zone, and one TSIG key (hmac-sha256, a random 32-byte secret) imported
// with `pdnsutil import-tsig-key` and allowed to update the zone with
// `pdnsutil set-meta ZONE TSIG-ALLOW-DNSUPDATE KEY`. Its destructor stops pdns_server (SIGTERM,
// then SIGKILL after 5 s) and removes the directory. pdns_server is started with
// PR_SET_PDEATHSIG, so it dies with the test process.
//
//   auto pdns = planfence_example::pdns_server::start("example.test.");
//   if (!pdns) { FAIL(pdns.error().message()); }     // says which package is missing
//   pdns->uri("example.test.");                       // rfc2136://127.0.0.1:PORT/example.test.?tsig=...
//
// What it needs (Debian 12): pdns-server, pdns-backend-sqlite3 and sqlite3 (the sqlite3 command
// loads /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql). Found as $PLANFENCE_PDNS_SERVER,
// else /usr/sbin/pdns_server or on PATH; pdnsutil and sqlite3 likewise. available() says whether
// all of it is there; start() returns errc::not_found naming the missing piece and the packages.
// Set PLANFENCE_KEEP_PDNS_DIR=1 to keep the directory (pdns.conf, pdns.db, pdns.log).
//
// Costs: starting takes about 0.5 to 1.5 s (four pdnsutil runs, then pdns_server until the zone
// answers a SOA query); stopping about 10 to 100 ms. Start one per TEST_CASE.
//
// The process plumbing it shares with knot_server.hpp is in loopback_process.hpp.
//
// Not thread-safe: one thread owns a pdns_server (the thread that started it should live longest:
// PR_SET_PDEATHSIG fires when the thread that forked exits).
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

class pdns_server {
 public:
  static constexpr const char* schema_path = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";
  static constexpr const char* packages = "apt-get install pdns-server pdns-backend-sqlite3 sqlite3";

  /// Whether pdns_server, pdnsutil, sqlite3 and the SQLite schema are all on this machine.
  [[nodiscard]] static bool available() {
    return !find_binary("PLANFENCE_PDNS_SERVER", "pdns_server").empty() &&
           !find_binary("PLANFENCE_PDNSUTIL", "pdnsutil").empty() && !find_binary("PLANFENCE_SQLITE3", "sqlite3").empty() &&
           ::access(schema_path, R_OK) == 0;
  }

  /// Starts pdns_server serving `zone` (a SOA, `NS ns`, `ns A 127.0.0.1`), updatable with the
  /// key. Errors: errc::not_found (a missing program or schema), errc::io_error (a setup step
  /// failed, or the server was not ready in time: the message quotes the step's log).
  [[nodiscard]] static planfence::result<pdns_server> start(std::string zone,
                                                             std::string key_name = "planfence-test-key.") {
    using planfence::errc;
    using planfence::fail;
    pdns_server out;
    out.server_ = find_binary("PLANFENCE_PDNS_SERVER", "pdns_server");
    out.pdnsutil_ = find_binary("PLANFENCE_PDNSUTIL", "pdnsutil");
    const std::string sqlite3 = find_binary("PLANFENCE_SQLITE3", "sqlite3");
    if (out.server_.empty() || out.pdnsutil_.empty() || sqlite3.empty() || ::access(schema_path, R_OK) != 0) {
      return fail(errc::not_found, std::string("PowerDNS with the SQLite backend not found (need pdns_server, pdnsutil, "
                                               "sqlite3 and ") + schema_path + "): " + packages);
    }
    if (zone.empty()) return fail(errc::invalid_name, "pdns_server: empty zone");
    if (zone.back() != '.') zone += '.';
    out.zone_ = std::move(zone);
    out.key_name_ = std::move(key_name);
    out.secret_base64_ = random_secret_base64(33);  // a multiple of 3: no padding, no '=' on the command line
    auto directory = make_temp_directory("planfence-pdns-", "pdns_server");
    if (!directory) return planfence::unexpected_error(directory.error());
    out.directory_ = std::move(*directory);
    const std::string database = (out.directory_ / "pdns.db").string();
    if (out.run(sqlite3 + " '" + database + "' < " + schema_path) != 0) {
      return fail(errc::io_error, "pdns_server: creating the SQLite database failed:\n" + out.log_tail());
    }
    std::string last_failure;
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto port = free_dns_port("pdns_server");
      if (!port) return planfence::unexpected_error(port.error());
      out.port_ = *port;
      if (auto written = out.write_config(database); !written) return planfence::unexpected_error(written.error());
      if (attempt == 0) {
        for (const std::string& step :
             {"create-zone " + out.zone_ + " ns." + out.zone_, "add-record " + out.zone_ + " ns A 127.0.0.1",
              "import-tsig-key " + out.key_name_ + " hmac-sha256 " + out.secret_base64_,
              "set-meta " + out.zone_ + " TSIG-ALLOW-DNSUPDATE " + out.key_name_}) {
          if (out.pdnsutil(step) != 0) {
            // The step is not quoted: import-tsig-key carries the secret.
            return fail(errc::io_error, "pdns_server: pdnsutil " + step.substr(0, step.find(' ')) + " failed:\n" +
                                            out.log_tail());
          }
        }
      }
      auto started = out.launch();
      if (started) return out;
      last_failure = started.error().message();
      out.stop();
    }
    return fail(errc::io_error, "pdns_server: pdns_server did not start: " + last_failure);
  }

  pdns_server(pdns_server&& other) noexcept { *this = std::move(other); }
  pdns_server& operator=(pdns_server&& other) noexcept {
    if (this != &other) {
      cleanup();
      server_ = std::move(other.server_);
      pdnsutil_ = std::move(other.pdnsutil_);
      zone_ = std::move(other.zone_);
      key_name_ = std::move(other.key_name_);
      secret_base64_ = std::move(other.secret_base64_);
      directory_ = std::exchange(other.directory_, {});
      port_ = other.port_;
      pid_ = std::exchange(other.pid_, -1);
    }
    return *this;
  }
  pdns_server(const pdns_server&) = delete;
  pdns_server& operator=(const pdns_server&) = delete;
  ~pdns_server() { cleanup(); }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] const std::string& zone() const noexcept { return zone_; }
  [[nodiscard]] const std::string& key_name() const noexcept { return key_name_; }
  [[nodiscard]] const std::string& secret_base64() const noexcept { return secret_base64_; }
  /// "hmac-sha256:NAME:SECRET", as `knsupdate -y` takes it.
  [[nodiscard]] std::string key_argument() const { return "hmac-sha256:" + key_name_ + ":" + secret_base64_; }
  /// The store URI for the zone with the key inline.
  [[nodiscard]] std::string uri() const {
    return "rfc2136://127.0.0.1:" + std::to_string(port_) + "/" + zone_ + "?tsig=" + key_argument();
  }
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return directory_; }
  [[nodiscard]] std::string log_path() const { return (directory_ / "pdns.log").string(); }
  /// The last lines of the log (pdns_server's, sqlite3's and pdnsutil's output).
  [[nodiscard]] std::string log_tail(std::size_t lines = 20) const { return log_tail_of(log_path(), lines); }

  /// Stops pdns_server (SIGTERM, SIGKILL after 5 s). The directory stays until destruction.
  void stop() noexcept { stop_process(pid_); }

  /// Runs `pdnsutil --config-dir DIR ARGS` (output to the log); its exit status, -1 if it did not run.
  [[nodiscard]] int pdnsutil(const std::string& args) const {
    return run(pdnsutil_ + " --config-dir='" + directory_.string() + "' " + args);
  }

 private:
  pdns_server() = default;

  [[nodiscard]] int run(const std::string& command) const { return run_logged(command, log_path()); }

  [[nodiscard]] planfence::result<void> write_config(const std::string& database) const {
    const std::string path = (directory_ / "pdns.conf").string();
    std::ofstream file(path);
    file << "launch=gsqlite3\ngsqlite3-database=" << database << "\n"
         << "local-address=127.0.0.1\nlocal-port=" << port_ << "\n"
         << "dnsupdate=yes\nallow-dnsupdate-from=127.0.0.0/8\n"
         << "socket-dir=" << directory_.string() << "\n"
         << "daemon=no\nguardian=no\ndisable-syslog=yes\nwrite-pid=no\nwebserver=no\napi=no\n"
         << "loglevel=6\ncache-ttl=0\nnegquery-cache-ttl=0\nquery-cache-ttl=0\n";
    file.flush();
    if (!file) return planfence::fail(planfence::errc::io_error, "pdns_server: cannot write " + path);
    return planfence::ok();
  }

  /// Forks pdns_server and waits until the zone answers a SOA query over TCP.
  [[nodiscard]] planfence::result<void> launch() {
    const pid_t child = spawn_logged({server_, "--config-dir=" + directory_.string()}, log_path());
    if (child < 0) return planfence::fail(planfence::errc::io_error, "pdns_server: fork failed");
    pid_ = child;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!soa_answers(port_, zone_, 0x4321)) {
      if (reap_if_exited(pid_)) {
        return planfence::fail(planfence::errc::io_error, "pdns_server exited at start; pdns.log:\n" + log_tail());
      }
      if (std::chrono::steady_clock::now() > give_up) {
        return planfence::fail(planfence::errc::io_error, "pdns_server not ready for " + zone_ + "; pdns.log:\n" + log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return planfence::ok();
  }

  void cleanup() noexcept {
    stop();
    remove_directory_unless_kept(directory_, "PLANFENCE_KEEP_PDNS_DIR", "pdns_server");
  }

  std::string server_{};
  std::string pdnsutil_{};
  std::string zone_{};
  std::string key_name_{};
  std::string secret_base64_{};
  std::filesystem::path directory_{};
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace planfence_example
