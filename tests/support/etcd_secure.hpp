// tests/support/etcd_secure.hpp: an etcd member secured as production clusters run it, for the
// authentication and TLS tests (tests/etcd/auth_test.cpp, tests/etcd_tls/).
//
// `secured_etcd` starts one etcd member (or a cluster of `members`) on loopback with, as asked:
//   - authentication: `etcdctl user add root`, a role `planfence-rw` granted readwrite on the
//     prefix `/pf/` only (`role grant-permission --prefix=true planfence-rw readwrite /pf/`), a
//     user `planfence` with that role, a user `outsider` whose role may use `/other/` only, then
//     `etcdctl auth enable`: the commands docs/etcd.md gives, run as an operator would;
//   - TLS (`tls`): certificates made by `openssl` in the member's temporary directory (pki()):
//     a CA, a server certificate for 127.0.0.1 and localhost, a client certificate, the same
//     client key certified by a second CA (stranger.pem) and an expired client certificate
//     (`openssl x509 -days -1`), and etcd run with --client-cert-auth, --trusted-ca-file,
//     --cert-file and --key-file;
//   - `auth_token_ttl_seconds`: etcd's --auth-token-ttl (a simple token expires that long after
//     its last use).
// Passwords are in owner-only files (password_file(user)); the URIs uri() builds name them by
// path only. The member is stopped and its directory removed when the object goes out of scope.
// Needs the etcd, etcdctl and openssl binaries; a TLS member needs a test executable compiled
// with PLANFENCE_ETCD_OPENSSL (to probe it).
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <planfence/etcd/client.hpp>

#include "etcd_server.hpp"
#include "examples/support/etcd_member.hpp"

namespace planfence_test {

struct secure_etcd_options {
  bool tls = false;
  int auth_token_ttl_seconds = 0;  // 0: etcd's default (300 s)
  int members = 1;                 // a cluster of this many members (m0, m1, ...)
};

/// Runs `command` through the shell with its output to `log`; throws with the log's end when it
/// fails. For set-up steps (openssl, etcdctl), which print no secret a test checks for.
inline void run_setup_step(const std::string& command, const std::filesystem::path& log) {
  const std::string line = "timeout -s KILL 60 " + command + " >>'" + log.string() + "' 2>&1";
  const int status = std::system(line.c_str());
  if (status != 0) {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > 2000) text = text.substr(text.size() - 2000);
    throw std::runtime_error("set-up step failed (" + std::to_string(status) + "): " + command + "\n" + text);
  }
}

/// Writes `text` to `path` with mode `mode`.
inline void write_file(const std::filesystem::path& path, const std::string& text, mode_t mode) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
  }
  if (::chmod(path.c_str(), mode) != 0) throw std::runtime_error("chmod " + path.string());
}

class secured_etcd {
 public:
  static constexpr const char* prefix_root = "/pf";  ///< the planfence user's prefix (readwrite on /pf/)

  explicit secured_etcd(secure_etcd_options options) : options_(options), dir_(make_temp_dir("planfence-etcd-secure")) {
    try {
      if (options_.tls) make_pki();
      for (const char* user : {"root", "planfence", "outsider"}) {
        write_file(password_file(user), std::string(password(user)) + "\n", 0600);
      }
      start();
      set_up_auth();
    } catch (...) {
      stop();
      std::error_code ignored;
      std::filesystem::remove_all(dir_, ignored);
      throw;
    }
  }
  secured_etcd(const secured_etcd&) = delete;
  secured_etcd& operator=(const secured_etcd&) = delete;
  ~secured_etcd() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  [[nodiscard]] bool tls() const noexcept { return options_.tls; }
  /// Every member's client address, comma-separated ("127.0.0.1:P0,127.0.0.1:P1,...").
  [[nodiscard]] std::string address() const {
    std::string out;
    for (const std::uint16_t port : client_ports_) out += (out.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
    return out;
  }
  [[nodiscard]] std::string member_address(std::size_t i) const { return "127.0.0.1:" + std::to_string(client_ports_.at(i)); }
  /// SIGKILL of member `i` (a crash); reaped.
  void kill_member(std::size_t i) noexcept {
    pid_t& pid = pids_.at(i);
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
  }
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }
  /// A file made by make_pki(): "ca.pem", "client.pem", "client.key", "other-ca.pem",
  /// "stranger.pem", "expired.pem".
  [[nodiscard]] std::string pki(const char* name) const { return (dir_ / name).string(); }
  [[nodiscard]] std::string password_file(const std::string& user) const { return (dir_ / (user + ".password")).string(); }
  /// The passwords (distinctive, so that a test can look for them in any output).
  [[nodiscard]] static const char* password(const std::string& user) {
    if (user == "root") return "r00t-Secret-4d1c";
    if (user == "planfence") return "pf-Secret-9b7e2a";
    return "outsider-Secret-51f0";
  }

  /// "etcd[s]://127.0.0.1:PORT/PREFIX?user=USER&password-file=PATH[&ca-file=...&cert-file=...&key-file=...]";
  /// `query` is appended ("&fence=floor"). `user` empty: no credentials.
  [[nodiscard]] std::string uri(const std::string& prefix, const std::string& user = "planfence",
                                const std::string& query = "") const {
    std::string out = std::string(options_.tls ? "etcds://" : "etcd://") + address() + prefix;
    std::string q;
    if (!user.empty()) q += "&user=" + user + "&password-file=" + password_file(user);
    if (options_.tls) q += "&ca-file=" + pki("ca.pem") + "&cert-file=" + pki("client.pem") + "&key-file=" + pki("client.key");
    q += query;
    if (!q.empty()) out += "?" + q.substr(1);
    return out;
  }

  /// A client_config for the member (TLS as the member speaks it), optionally authenticated.
  [[nodiscard]] planfence::etcd::client_config config(const std::string& user = "planfence") const {
    auto config = planfence::etcd::parse_endpoints(address()).value();
    if (!user.empty()) config.auth = planfence::etcd::credentials{user, password(user)};
    if (options_.tls) {
      config.tls.enabled = true;
      config.tls.ca_file = pki("ca.pem");
      config.tls.cert_file = pki("client.pem");
      config.tls.key_file = pki("client.key");
    }
    config.key_prefix = prefix_root;
    return config;
  }

  /// etcdctl against the member, as root when `as_root` (the password from its file through the
  /// shell, never on a command line that a test prints).
  [[nodiscard]] std::string etcdctl(bool as_root = true) const {
    std::string out = "etcdctl --endpoints=" + std::string(options_.tls ? "https://" : "http://") + member_address(0);
    if (options_.tls) out += " --cacert=" + pki("ca.pem") + " --cert=" + pki("client.pem") + " --key=" + pki("client.key");
    if (as_root) out += " --user=root:\"$(cat " + password_file("root") + ")\"";
    return out;
  }

  [[nodiscard]] std::string log_tail() const {
    std::ifstream in(dir_ / "m0.log");  // the first member's
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
  }

 private:
  void make_pki() {
    const std::filesystem::path log = dir_ / "openssl.log";
    const std::string d = dir_.string() + "/";
    const std::string newkey = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    write_file(dir_ / "server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n", 0600);
    write_file(dir_ / "client.ext", "extendedKeyUsage=clientAuth\n", 0600);
    for (const char* ca : {"ca", "other-ca"}) {
      run_setup_step("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=planfence-test-" +
                         std::string(ca) + " -keyout " + d + ca + ".key -out " + d + ca + ".pem",
                     log);
    }
    run_setup_step(newkey + "-subj /CN=etcd-test-server -keyout " + d + "server.key -out " + d + "server.csr", log);
    // No CommonName: etcd's JSON gateway refuses client certificates that have one (etcd 3.4).
    run_setup_step(newkey + "-subj /O=planfence -keyout " + d + "client.key -out " + d + "client.csr", log);
    const std::string sign = "openssl x509 -req -CAcreateserial ";
    run_setup_step(sign + "-in " + d + "server.csr -CA " + d + "ca.pem -CAkey " + d + "ca.key -days 2 -extfile " + d +
                       "server.ext -out " + d + "server.pem",
                   log);
    run_setup_step(sign + "-in " + d + "client.csr -CA " + d + "ca.pem -CAkey " + d + "ca.key -days 2 -extfile " + d +
                       "client.ext -out " + d + "client.pem",
                   log);
    // Expired: its notAfter is a day before its notBefore (OpenSSL 3.0 takes -days -1).
    run_setup_step(sign + "-in " + d + "client.csr -CA " + d + "ca.pem -CAkey " + d + "ca.key -days -1 -extfile " + d +
                       "client.ext -out " + d + "expired.pem",
                   log);
    run_setup_step(sign + "-in " + d + "client.csr -CA " + d + "other-ca.pem -CAkey " + d + "other-ca.key -days 2 -extfile " +
                       d + "client.ext -out " + d + "stranger.pem",
                   log);
    for (const char* key : {"ca.key", "other-ca.key", "server.key", "client.key"}) {
      if (::chmod((dir_ / key).c_str(), 0600) != 0) throw std::runtime_error("chmod");
    }
  }

  void start() {
    const std::string binary = etcd_binary();
    if (binary.empty()) throw std::runtime_error("no etcd binary");
    const std::size_t n = static_cast<std::size_t>(options_.members);
    for (int attempt = 0;; ++attempt) {
      client_ports_.clear();
      std::vector<std::uint16_t> peer_ports;
      std::string initial;
      for (std::size_t i = 0; i < n; ++i) {
        client_ports_.push_back(free_port());
        peer_ports.push_back(free_port());
        initial += (i == 0 ? "" : ",") + std::string("m") + std::to_string(i) + "=http://127.0.0.1:" + std::to_string(peer_ports[i]);
      }
      std::vector<std::string> extra;
      if (options_.tls) {
        extra = {"--client-cert-auth", "--trusted-ca-file", pki("ca.pem"), "--cert-file", pki("server.pem"),
                 "--key-file", pki("server.key")};
      }
      if (options_.auth_token_ttl_seconds > 0) {
        extra.push_back("--auth-token-ttl");
        extra.push_back(std::to_string(options_.auth_token_ttl_seconds));
      }
      pids_.assign(n, -1);
      for (std::size_t i = 0; i < n; ++i) {
        pids_[i] = planfence_example::launch_etcd_member({.binary = binary, .name = "m" + std::to_string(i), .directory = dir_,
                                                          .client_port = client_ports_[i], .peer_port = peer_ports[i],
                                                          .initial_cluster = initial, .extra_args = extra,
                                                          .client_tls = options_.tls});
        if (pids_[i] < 0) throw std::runtime_error("fork failed");
      }
      bool all = true;
      for (std::size_t i = 0; i < n && all; ++i) {
        auto probe_config = config("");
        probe_config.members = {probe_config.members[i]};
        probe_config.request_timeout = std::chrono::milliseconds{500};
        planfence::etcd::client probe{probe_config};
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds{15};
        bool answered = false;
        while (!answered && std::chrono::steady_clock::now() < until) {
          if (probe.range("/planfence-probe")) {
            answered = true;
            break;
          }
          if (planfence_example::reap_if_exited(pids_[i])) break;
          std::this_thread::sleep_for(std::chrono::milliseconds{50});
        }
        all = answered;
      }
      if (all) return;
      stop();
      for (std::size_t i = 0; i < n; ++i) {
        std::error_code ignored;
        std::filesystem::remove_all(dir_ / ("m" + std::to_string(i) + ".etcd"), ignored);
      }
      if (attempt == 2) throw std::runtime_error("secured etcd did not start: " + log_tail());
    }
  }

  void set_up_auth() {
    const std::filesystem::path log = dir_ / "etcdctl.log";
    const std::string as_operator = etcdctl(false);
    auto password_of = [&](const char* user) { return "--new-user-password=\"$(cat " + password_file(user) + ")\""; };
    run_setup_step(as_operator + " user add root " + password_of("root"), log);
    run_setup_step(as_operator + " user grant-role root root", log);
    run_setup_step(as_operator + " role add planfence-rw", log);
    run_setup_step(as_operator + " role grant-permission --prefix=true planfence-rw readwrite " + std::string(prefix_root) + "/", log);
    run_setup_step(as_operator + " user add planfence " + password_of("planfence"), log);
    run_setup_step(as_operator + " user grant-role planfence planfence-rw", log);
    run_setup_step(as_operator + " role add outsider-rw", log);
    run_setup_step(as_operator + " role grant-permission --prefix=true outsider-rw readwrite /other/", log);
    run_setup_step(as_operator + " user add outsider " + password_of("outsider"), log);
    run_setup_step(as_operator + " user grant-role outsider outsider-rw", log);
    run_setup_step(as_operator + " auth enable", log);
  }

  void stop() noexcept {
    for (pid_t& pid : pids_) {
      if (pid <= 0) continue;
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 100 && pid > 0; ++i) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) pid = -1;
        else std::this_thread::sleep_for(std::chrono::milliseconds{50});
      }
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        pid = -1;
      }
    }
  }

  secure_etcd_options options_;
  std::filesystem::path dir_;
  std::vector<std::uint16_t> client_ports_;
  std::vector<pid_t> pids_;
};

/// "/pf/<pid>-<n>": a prefix under the planfence user's grant that no other test case uses.
inline std::string secured_prefix() {
  static std::atomic<int> counter{0};
  return std::string(secured_etcd::prefix_root) + "/" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

}  // namespace planfence_test
