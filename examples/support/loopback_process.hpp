// examples/support/loopback_process.hpp: what the loopback launchers share (knot_server.hpp,
// pdns_server.hpp, etcd_member.hpp): finding a server binary, a free loopback port, a random TSIG
// secret, a fresh temporary directory, starting a server process that dies with its parent,
// stopping it, asking a DNS server whether it answers for a zone, and reading its log.
//
// What it is for. Each launcher starts a real server on 127.0.0.1 for tests, benchmarks and
// examples; the process plumbing is the same for all of them and lives here once, so that a fix
// (a signal, a race on a port) reaches every launcher. Like them, it is here and not under tests/
// because an installed example cannot include a test header.
//
//   const std::string knotd = planfence_example::find_binary("PLANFENCE_KNOTD", "knotd");
//   const std::uint16_t port = planfence_example::free_dns_port("knot_server").value();
//   pid_t pid = planfence_example::spawn_logged({knotd, "-c", config}, log);
//   while (!planfence_example::soa_answers(port, "example.test.", 0x1234)) ...
//   planfence_example::stop_process(pid);                       // SIGTERM, SIGKILL after 5 s
//
// When not to use it. Not part of the library: nothing under include/ may include it. Linux only
// (PR_SET_PDEATHSIG). Blocking; not thread-safe beyond what each function says.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <planfence/detail/socket.hpp>
#include <planfence/result.hpp>

namespace planfence_example {

/// The executable `name`: $`environment` when set (empty when that is not executable), else the
/// first of /usr/sbin, /usr/local/sbin, /usr/bin, /usr/local/bin, /sbin and PATH that has it;
/// empty when none does.
[[nodiscard]] inline std::string find_binary(const char* environment, const std::string& name) {
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

/// `bytes` random bytes (std::random_device) in base64 with '=' padding (none when `bytes` is a
/// multiple of 3), for a TSIG secret.
[[nodiscard]] inline std::string random_secret_base64(std::size_t bytes) {
  std::random_device device;
  std::vector<std::uint8_t> secret(bytes);
  for (std::uint8_t& b : secret) b = static_cast<std::uint8_t>(device() & 0xff);
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < secret.size(); i += 3) {
    const unsigned n = static_cast<unsigned>(secret[i]) << 16 |
                       (i + 1 < secret.size() ? static_cast<unsigned>(secret[i + 1]) << 8 : 0u) |
                       (i + 2 < secret.size() ? static_cast<unsigned>(secret[i + 2]) : 0u);
    out += alphabet[n >> 18 & 63];
    out += alphabet[n >> 12 & 63];
    out += i + 1 < secret.size() ? alphabet[n >> 6 & 63] : '=';
    out += i + 2 < secret.size() ? alphabet[n & 63] : '=';
  }
  return out;
}

/// A free TCP port on 127.0.0.1: bound, read and closed again, so another program may take it
/// before the server binds it (the server then exits at start; a caller may retry with fresh ports).
[[nodiscard]] inline planfence::result<std::uint16_t> free_loopback_port() {
  auto address = planfence::detail::resolve_address("127.0.0.1", 0);
  if (!address) return planfence::unexpected_error(address.error());
  auto fd = planfence::detail::bind_socket(*address, SOCK_STREAM);
  if (!fd) return planfence::unexpected_error(fd.error());
  return planfence::detail::local_port(fd->get());
}

/// A port on 127.0.0.1 free for both TCP and UDP, as a DNS server needs: the kernel picks one for
/// a TCP socket, then UDP must be free on it too (20 tries). Both sockets are closed before the
/// server binds, so another process could take the port meanwhile. `who` starts the message of
/// the errc::io_error when no port is found.
[[nodiscard]] inline planfence::result<std::uint16_t> free_dns_port(const std::string& who) {
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
  return planfence::fail(planfence::errc::io_error, who + ": no free port found");
}

/// A fresh directory $TMPDIR/`prefix`XXXXXX (mkdtemp). Error: errc::io_error "`who`: mkdtemp failed".
[[nodiscard]] inline planfence::result<std::filesystem::path> make_temp_directory(const std::string& prefix,
                                                                                 const std::string& who) {
  std::error_code ec;
  std::string pattern = (std::filesystem::temp_directory_path(ec) / (prefix + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) return planfence::fail(planfence::errc::io_error, who + ": mkdtemp failed");
  return std::filesystem::path(pattern);
}

/// Removes `directory` with everything in it and clears it, unless $`keep_environment` is set and
/// not "0": then prints "`who`: kept DIRECTORY" to stderr and leaves it. Nothing when empty.
inline void remove_directory_unless_kept(std::filesystem::path& directory, const char* keep_environment,
                                         const char* who) noexcept {
  if (directory.empty()) return;
  if (const char* keep = std::getenv(keep_environment); keep != nullptr && *keep != '\0' && *keep != '0') {
    std::fprintf(stderr, "%s: kept %s\n", who, directory.c_str());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(directory, ec);
  }
  directory.clear();
}

/// Forks and executes `argv` (argv[0] is the executable's path), its standard output and error
/// appended to `log`; returns the child's pid, -1 when fork failed, without waiting for it. The
/// child gets PR_SET_PDEATHSIG SIGKILL, so it dies with the caller even if the caller is killed
/// outright; Linux sends that signal when the *thread* that forked ends, so spawn from a thread
/// that outlives the child. Allocates before forking; the child allocates nothing before exec.
[[nodiscard]] inline pid_t spawn_logged(std::vector<std::string> argv, const std::string& log) {
  std::vector<char*> pointers;
  for (std::string& a : argv) pointers.push_back(a.data());
  pointers.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();
  if (child == 0) {
    // Only async-signal-safe calls between fork and exec.
    static_cast<void>(::prctl(PR_SET_PDEATHSIG, SIGKILL));
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      static_cast<void>(::dup2(fd, 1));
      static_cast<void>(::dup2(fd, 2));
    }
    ::execv(pointers[0], pointers.data());
    ::_exit(127);
  }
  return child;  // -1 when fork failed
}

/// Whether the process `pid` has exited: then it is reaped and `pid` becomes -1. False for pid <= 0.
[[nodiscard]] inline bool reap_if_exited(pid_t& pid) noexcept {
  int status = 0;
  if (pid > 0 && ::waitpid(pid, &status, WNOHANG) == pid) {
    pid = -1;
    return true;
  }
  return false;
}

/// Stops the process `pid` (SIGTERM, then SIGKILL after 5 s), reaps it and sets `pid` to -1.
/// Nothing when pid <= 0.
inline void stop_process(pid_t& pid) noexcept {
  if (pid <= 0) return;
  static_cast<void>(::kill(pid, SIGTERM));
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > give_up) {
      static_cast<void>(::kill(pid, SIGKILL));
      static_cast<void>(::waitpid(pid, &status, 0));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid = -1;
}

/// Runs `command` through the shell, its output appended to `log`; its exit status, -1 if it did
/// not exit normally.
[[nodiscard]] inline int run_logged(const std::string& command, const std::string& log) {
  const std::string line = command + " >>'" + log + "' 2>&1";
  const int status = std::system(line.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// The last `lines` lines of the file at `path`, each ending in "\n" (for failure messages).
[[nodiscard]] inline std::string log_tail_of(const std::string& path, std::size_t lines) {
  std::ifstream file(path);
  std::vector<std::string> all;
  for (std::string line; std::getline(file, line);) all.push_back(line);
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += all[i] + "\n";
  return out;
}

/// Whether the DNS server on 127.0.0.1:`port` answers an authoritative NOERROR with at least one
/// answer to a SOA query for `origin` ("example.test.") over TCP, within 500 ms; `id` is the
/// query's ID. A raw query built here, so the harness does not depend on the DNS code it helps
/// to test.
[[nodiscard]] inline bool soa_answers(std::uint16_t port, const std::string& origin, std::uint16_t id) {
  using namespace planfence::detail;
  const auto id_high = static_cast<std::uint8_t>(id >> 8);
  const auto id_low = static_cast<std::uint8_t>(id & 0xff);
  std::vector<std::uint8_t> query = {0, 0, id_high, id_low, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  std::size_t start = 0;
  while (start < origin.size()) {
    const std::size_t dot = origin.find('.', start);
    const std::size_t end = dot == std::string::npos ? origin.size() : dot;
    query.push_back(static_cast<std::uint8_t>(end - start));
    for (std::size_t i = start; i < end; ++i) query.push_back(static_cast<std::uint8_t>(origin[i]));
    start = end + 1;
  }
  query.insert(query.end(), {0, 0, 6, 0, 1});
  const std::size_t length = query.size() - 2;
  query[0] = static_cast<std::uint8_t>(length >> 8);
  query[1] = static_cast<std::uint8_t>(length & 0xff);
  const socket_deadline deadline = deadline_after(std::chrono::milliseconds(500));
  auto fd = tcp_connect("127.0.0.1", port, deadline);
  if (!fd) return false;
  if (!send_all(fd->get(), query, deadline)) return false;
  std::array<std::uint8_t, 14> head{};
  if (!receive_exactly(fd->get(), head, deadline)) return false;
  const bool authoritative = (head[4] & 0x04) != 0;
  const unsigned rcode = head[5] & 0x0f;
  const unsigned answers = static_cast<unsigned>(head[8]) << 8 | head[9];
  return head[2] == id_high && head[3] == id_low && authoritative && rcode == 0 && answers > 0;
}

}  // namespace planfence_example
