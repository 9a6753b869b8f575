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
// Not thread-safe: one thread owns a pdns_server (the thread that started it should live longest:
// PR_SET_PDEATHSIG fires when the thread that forked exits).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <planfence/detail/socket.hpp>
#include <planfence/result.hpp>

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
    out.secret_base64_ = random_secret_base64();
    std::error_code ec;
    std::string pattern = (std::filesystem::temp_directory_path(ec) / "planfence-pdns-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return fail(errc::io_error, "pdns_server: mkdtemp failed");
    out.directory_ = pattern;
    const std::string database = (out.directory_ / "pdns.db").string();
    if (out.run(sqlite3 + " '" + database + "' < " + schema_path) != 0) {
      return fail(errc::io_error, "pdns_server: creating the SQLite database failed:\n" + out.log_tail());
    }
    std::string last_failure;
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto port = pick_free_port();
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
  [[nodiscard]] std::string log_tail(std::size_t lines = 20) const {
    std::ifstream file(log_path());
    std::vector<std::string> all;
    for (std::string line; std::getline(file, line);) all.push_back(line);
    std::string out;
    for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += all[i] + "\n";
    return out;
  }

  /// Stops pdns_server (SIGTERM, SIGKILL after 5 s). The directory stays until destruction.
  void stop() noexcept {
    if (pid_ <= 0) return;
    static_cast<void>(::kill(pid_, SIGTERM));
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > give_up) {
        static_cast<void>(::kill(pid_, SIGKILL));
        static_cast<void>(::waitpid(pid_, &status, 0));
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }

  /// Runs `pdnsutil --config-dir DIR ARGS` (output to the log); its exit status, -1 if it did not run.
  [[nodiscard]] int pdnsutil(const std::string& args) const {
    return run(pdnsutil_ + " --config-dir='" + directory_.string() + "' " + args);
  }

 private:
  pdns_server() = default;

  [[nodiscard]] int run(const std::string& command) const {
    const std::string line = command + " >>'" + log_path() + "' 2>&1";
    const int status = std::system(line.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  [[nodiscard]] static std::string find_binary(const char* environment, const std::string& name) {
    if (const char* given = std::getenv(environment); given != nullptr && *given != '\0') {
      return ::access(given, X_OK) == 0 ? std::string(given) : std::string();
    }
    for (const std::string dir : {"/usr/sbin/", "/usr/local/sbin/", "/usr/bin/", "/usr/local/bin/", "/sbin/"}) {
      if (::access((dir + name).c_str(), X_OK) == 0) return dir + name;
    }
    if (const char* path = std::getenv("PATH"); path != nullptr) {
      std::stringstream stream(path);
      for (std::string dir; std::getline(stream, dir, ':');) {
        if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return dir + "/" + name;
      }
    }
    return {};
  }

  [[nodiscard]] static std::string random_secret_base64() {
    std::random_device device;
    std::array<std::uint8_t, 33> secret{};  // a multiple of 3: no padding, no '=' on the command line
    for (std::uint8_t& b : secret) b = static_cast<std::uint8_t>(device() & 0xff);
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < secret.size(); i += 3) {
      const unsigned n = static_cast<unsigned>(secret[i]) << 16 | static_cast<unsigned>(secret[i + 1]) << 8 |
                         static_cast<unsigned>(secret[i + 2]);
      for (int shift = 18; shift >= 0; shift -= 6) out += alphabet[n >> shift & 63];
    }
    return out;
  }

  [[nodiscard]] static planfence::result<std::uint16_t> pick_free_port() {
    using namespace planfence::detail;
    for (int attempt = 0; attempt < 20; ++attempt) {
      auto any = resolve_address("127.0.0.1", 0);
      if (!any) return planfence::unexpected_error(any.error());
      auto tcp = bind_socket(*any, SOCK_STREAM);
      if (!tcp) return planfence::unexpected_error(tcp.error());
      auto port = local_port(tcp->get());
      if (!port) return planfence::unexpected_error(port.error());
      auto same = resolve_address("127.0.0.1", *port);
      if (!same) continue;
      if (auto udp = bind_socket(*same, SOCK_DGRAM); udp) return *port;
    }
    return planfence::fail(planfence::errc::io_error, "pdns_server: no free port found");
  }

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
    const std::string config_dir = "--config-dir=" + directory_.string();
    const std::string log = log_path();
    const pid_t parent = ::getpid();
    const pid_t child = ::fork();
    if (child < 0) return planfence::fail(planfence::errc::io_error, "pdns_server: fork failed");
    if (child == 0) {
      // Only async-signal-safe calls between fork and exec.
      static_cast<void>(::prctl(PR_SET_PDEATHSIG, SIGKILL));
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        static_cast<void>(::dup2(fd, 1));
        static_cast<void>(::dup2(fd, 2));
      }
      const char* argv[] = {server_.c_str(), config_dir.c_str(), nullptr};
      ::execv(server_.c_str(), const_cast<char* const*>(argv));
      ::_exit(127);
    }
    pid_ = child;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!soa_answers()) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return planfence::fail(planfence::errc::io_error, "pdns_server exited at start; pdns.log:\n" + log_tail());
      }
      if (std::chrono::steady_clock::now() > give_up) {
        return planfence::fail(planfence::errc::io_error, "pdns_server not ready for " + zone_ + "; pdns.log:\n" + log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return planfence::ok();
  }

  /// Whether the server answers an authoritative NOERROR with an answer to a SOA query for the
  /// zone over TCP (a raw query, as knot_server does: the harness does not use the code it tests).
  [[nodiscard]] bool soa_answers() const {
    using namespace planfence::detail;
    std::vector<std::uint8_t> query = {0, 0, 0x43, 0x21, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    std::size_t start = 0;
    while (start < zone_.size()) {
      const std::size_t dot = zone_.find('.', start);
      const std::size_t end = dot == std::string::npos ? zone_.size() : dot;
      query.push_back(static_cast<std::uint8_t>(end - start));
      for (std::size_t i = start; i < end; ++i) query.push_back(static_cast<std::uint8_t>(zone_[i]));
      start = end + 1;
    }
    query.insert(query.end(), {0, 0, 6, 0, 1});
    const std::size_t length = query.size() - 2;
    query[0] = static_cast<std::uint8_t>(length >> 8);
    query[1] = static_cast<std::uint8_t>(length & 0xff);
    const socket_deadline deadline = deadline_after(std::chrono::milliseconds(500));
    auto fd = tcp_connect("127.0.0.1", port_, deadline);
    if (!fd) return false;
    if (!send_all(fd->get(), query, deadline)) return false;
    std::array<std::uint8_t, 14> head{};
    if (!receive_exactly(fd->get(), head, deadline)) return false;
    const bool authoritative = (head[4] & 0x04) != 0;
    const unsigned rcode = head[5] & 0x0f;
    const unsigned answers = static_cast<unsigned>(head[8]) << 8 | head[9];
    return head[2] == 0x43 && head[3] == 0x21 && authoritative && rcode == 0 && answers > 0;
  }

  void cleanup() noexcept {
    stop();
    if (directory_.empty()) return;
    if (const char* keep = std::getenv("PLANFENCE_KEEP_PDNS_DIR"); keep != nullptr && *keep != '\0' && *keep != '0') {
      std::fprintf(stderr, "pdns_server: kept %s\n", directory_.c_str());
    } else {
      std::error_code ec;
      std::filesystem::remove_all(directory_, ec);
    }
    directory_.clear();
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
