// planfence/detail/socket.hpp: small POSIX socket helpers with deadlines and result values.
//
// What it is for. The remote stores (the RFC 2136 store's DNS client, the etcd store's HTTP
// client) and their test harnesses need the same few socket operations: connect over TCP with a
// deadline, send everything, receive exactly n bytes or whatever is there, send and receive UDP
// datagrams, and listen on loopback for fake servers in tests. Each blocks at most until a
// deadline (a std::chrono::steady_clock time point), retries EINTR, never raises SIGPIPE, and
// reports failure as a planfence::result instead of errno or an exception.
//
//   using namespace planfence::detail;
//   const socket_deadline deadline = deadline_after(std::chrono::milliseconds(2000));
//   auto address = resolve_address("127.0.0.1", 5353);               // result<socket_address>
//   auto fd = tcp_connect(*address, deadline);                       // result<unique_fd>
//   if (auto sent = send_all(fd->get(), request, deadline); !sent) return sent.error();
//   std::array<std::uint8_t, 2> length{};
//   if (auto got = receive_exactly(fd->get(), length, deadline); !got) ...
//
// When not to use it. It is a thin layer for request/response clients with one outstanding
// request per socket; it has no event loop, no TLS, no connection pool. Hot paths that must not
// block must not call it: every operation here may block (up to its deadline).
//
// What it costs. One system call per operation plus one poll() each time the socket is not
// ready; nothing allocates except resolve_address (getaddrinfo) and the error texts. Sockets are
// non-blocking from creation (SOCK_NONBLOCK | SOCK_CLOEXEC), so a deadline is enforced by poll()
// and never by a signal or a socket option.
//
// Errors. Every failure is errc::io_error with a detail naming the operation and the cause
// ("connect 127.0.0.1:53: Connection refused", "receive: timed out"); timeouts are also
// recognisable with is_timeout(error), since callers often retry those and not the others. An
// orderly close by the peer during receive_exactly is errc::io_error "connection closed by peer".
//
// Guarantees. A unique_fd closes its descriptor exactly once. send_all either sends every byte or
// fails; receive_exactly either fills the whole buffer or fails (the bytes already read are then
// lost: close the connection). No operation here writes outside the span it is given.
//
// Interface stability: the declarations below are used by other components (the etcd client);
// add to them, do not change them.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "../config.hpp"
#include "../result.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

/// When an operation must give up. Always steady: wall-clock jumps never shorten or extend it.
using socket_clock = std::chrono::steady_clock;
using socket_deadline = socket_clock::time_point;

/// The deadline `timeout` from now.
[[nodiscard]] inline socket_deadline deadline_after(std::chrono::milliseconds timeout) noexcept {
  return socket_clock::now() + timeout;
}

/// The detail text of every timeout, so is_timeout() can recognise one.
inline constexpr std::string_view socket_timeout_text = "timed out";

/// Whether `e` is a timeout reported by these helpers.
[[nodiscard]] inline bool is_timeout(const error& e) noexcept {
  return e.code == errc::io_error && e.detail.find(socket_timeout_text) != std::string::npos;
}

/// An owned file descriptor: closed once, by the destructor or reset(). Movable, not copyable.
class unique_fd {
 public:
  unique_fd() noexcept = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  /// Gives up ownership without closing.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the current descriptor (if any) and owns `fd`.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) static_cast<void>(::close(fd_));  // close errors on a socket lose nothing we can act on
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// A resolved socket address (IPv4 or IPv6) and its printable form.
struct socket_address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text{};  ///< "127.0.0.1:53" or "[::1]:53", for error messages

  [[nodiscard]] const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  [[nodiscard]] int family() const noexcept { return storage.ss_family; }
};

namespace socket_internal {

[[nodiscard]] inline unexpected_error errno_failure(std::string_view what, int code) {
  std::string text(what);
  text += ": ";
  text += std::strerror(code);
  return fail(errc::io_error, std::move(text));
}

[[nodiscard]] inline unexpected_error timeout_failure(std::string_view what) {
  std::string text(what);
  text += ": ";
  text += socket_timeout_text;
  return fail(errc::io_error, std::move(text));
}

[[nodiscard]] inline std::string format_address(const sockaddr* address) {
  char host[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(v4->sin_port));
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
  ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
  return "[" + std::string(host) + "]:" + std::to_string(ntohs(v6->sin6_port));
}

/// Waits until `fd` is ready for `events` or the deadline passes. ok() when ready.
[[nodiscard]] inline result<void> wait_ready(int fd, short events, socket_deadline deadline, std::string_view what) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - socket_clock::now());
    if (left.count() <= 0) return timeout_failure(what);
    pollfd entry{fd, events, 0};
    // Round up so that a sub-millisecond remainder waits once instead of spinning.
    const int ms = left.count() > 60'000 ? 60'000 : static_cast<int>(left.count()) + 1;
    const int n = ::poll(&entry, 1, ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_failure(what, errno);
    }
    if (n == 0) continue;  // the loop re-checks the deadline
    if ((entry.revents & (events | POLLERR | POLLHUP)) != 0) return ok();
    if ((entry.revents & POLLNVAL) != 0) return fail(errc::io_error, std::string(what) + ": not an open descriptor");
  }
}

[[nodiscard]] inline result<unique_fd> open_socket(int family, int type) {
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_failure("socket", errno);
  return unique_fd(fd);
}

}  // namespace socket_internal

/// Resolves `host` (an IPv4 or IPv6 literal, or a name) and `port`. Blocking: a name is resolved
/// by getaddrinfo without a deadline, so pass a literal where that matters. The first address
/// returned is used. Allocates.
[[nodiscard]] inline result<socket_address> resolve_address(std::string_view host, std::uint16_t port) {
  // Accept "[::1]" as well as "::1".
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return fail(errc::io_error, "resolve: empty host");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string host_text(host);
  const std::string port_text = std::to_string(port);
  const int status = ::getaddrinfo(host_text.c_str(), port_text.c_str(), &hints, &found);
  if (status != 0 || found == nullptr) {
    return fail(errc::io_error, "resolve " + host_text + ": " + ::gai_strerror(status));
  }
  socket_address out;
  PLANFENCE_ASSERT(found->ai_addrlen <= sizeof out.storage);
  std::memcpy(&out.storage, found->ai_addr, found->ai_addrlen);
  out.length = found->ai_addrlen;
  ::freeaddrinfo(found);
  out.text = socket_internal::format_address(out.get());
  return out;
}

/// A TCP connection to `address`, established before `deadline`. Nagle is off (request/response
/// traffic). The descriptor is non-blocking; use the functions below on it.
[[nodiscard]] inline result<unique_fd> tcp_connect(const socket_address& address, socket_deadline deadline) {
  auto fd = socket_internal::open_socket(address.family(), SOCK_STREAM);
  if (!fd) return unexpected_error(fd.error());
  const std::string what = "connect " + address.text;
  if (::connect(fd->get(), address.get(), address.length) != 0) {
    if (errno != EINPROGRESS && errno != EINTR) return socket_internal::errno_failure(what, errno);
    if (auto ready = socket_internal::wait_ready(fd->get(), POLLOUT, deadline, what); !ready) {
      return unexpected_error(ready.error());
    }
    int status = 0;
    socklen_t length = sizeof status;
    if (::getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, &status, &length) != 0) {
      return socket_internal::errno_failure(what, errno);
    }
    if (status != 0) return socket_internal::errno_failure(what, status);
  }
  const int one = 1;
  static_cast<void>(::setsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));  // best effort
  return std::move(*fd);
}

/// Resolves and connects (resolve_address's blocking note applies to names).
[[nodiscard]] inline result<unique_fd> tcp_connect(std::string_view host, std::uint16_t port, socket_deadline deadline) {
  auto address = resolve_address(host, port);
  if (!address) return unexpected_error(address.error());
  return tcp_connect(*address, deadline);
}

/// Sends every byte of `bytes` on a stream socket before `deadline`, or fails.
[[nodiscard]] inline result<void> send_all(int fd, std::span<const std::uint8_t> bytes, socket_deadline deadline) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto ready = socket_internal::wait_ready(fd, POLLOUT, deadline, "send"); !ready) return ready;
      continue;
    }
    return socket_internal::errno_failure("send", n < 0 ? errno : EPIPE);
  }
  return ok();
}

namespace socket_internal {
/// One recv() of at most buffer.size() bytes, waiting for readiness until `deadline`; 0 means an
/// orderly close (stream) or an empty datagram. `what` names the operation in errors.
[[nodiscard]] inline result<std::size_t> receive_once(int fd, std::span<std::uint8_t> buffer, socket_deadline deadline,
                                                      const char* what) {
  PLANFENCE_ASSERT(!buffer.empty());
  for (;;) {
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
#ifdef TCP_QUICKACK
    // Acknowledge at once (Linux's quick-ack mode ends after a few segments, so it is set again
    // after every read): a server that does not disable Nagle's algorithm holds its next answer
    // until our ACK, and a delayed ACK (up to 40 ms) then stalls a pipeline of DNS queries at its
    // end. Measured: 10,000 pipelined stamp reads on Knot in batches of 500 took 800 ms, 170 ms
    // with this. Best effort: an error (not a TCP socket) changes nothing.
    if (n > 0) {
      const int one = 1;
      static_cast<void>(::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one));
    }
#endif
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto ready = wait_ready(fd, POLLIN, deadline, what); !ready) return unexpected_error(ready.error());
      continue;
    }
    return errno_failure(what, errno);
  }
}
}  // namespace socket_internal

/// Receives whatever arrives first (at least one byte, at most `buffer.size()`), waiting until
/// `deadline`. Returns 0 when the peer closed the connection in order. For clients that parse a
/// stream of unknown length (HTTP).
[[nodiscard]] inline result<std::size_t> receive_some(int fd, std::span<std::uint8_t> buffer, socket_deadline deadline) {
  return socket_internal::receive_once(fd, buffer, deadline, "receive");
}

/// Fills all of `buffer` from a stream socket before `deadline`, or fails (a close by the peer
/// before the buffer is full is a failure).
[[nodiscard]] inline result<void> receive_exactly(int fd, std::span<std::uint8_t> buffer, socket_deadline deadline) {
  std::size_t done = 0;
  while (done < buffer.size()) {
    auto n = receive_some(fd, buffer.subspan(done), deadline);
    if (!n) return unexpected_error(n.error());
    if (*n == 0) return fail(errc::io_error, "receive: connection closed by peer");
    done += *n;
  }
  return ok();
}

/// A UDP socket connected to `address`: send_datagram and receive_datagram then talk to that
/// peer only (the kernel drops datagrams from other sources).
[[nodiscard]] inline result<unique_fd> udp_connect(const socket_address& address) {
  auto fd = socket_internal::open_socket(address.family(), SOCK_DGRAM);
  if (!fd) return unexpected_error(fd.error());
  if (::connect(fd->get(), address.get(), address.length) != 0) {
    return socket_internal::errno_failure("connect udp " + address.text, errno);
  }
  return std::move(*fd);
}

/// Sends one datagram on a connected UDP socket.
[[nodiscard]] inline result<void> send_datagram(int fd, std::span<const std::uint8_t> bytes, socket_deadline deadline) {
  for (;;) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      if (static_cast<std::size_t>(n) != bytes.size()) return fail(errc::io_error, "send datagram: truncated");
      return ok();
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto ready = socket_internal::wait_ready(fd, POLLOUT, deadline, "send datagram"); !ready) return ready;
      continue;
    }
    return socket_internal::errno_failure("send datagram", errno);
  }
}

/// Receives one datagram into `buffer` before `deadline`; returns its length. A datagram longer
/// than the buffer is cut to it (the caller sizes the buffer to the protocol's maximum).
[[nodiscard]] inline result<std::size_t> receive_datagram(int fd, std::span<std::uint8_t> buffer, socket_deadline deadline) {
  // A connected UDP socket reports an ICMP port unreachable as ECONNREFUSED.
  return socket_internal::receive_once(fd, buffer, deadline, "receive datagram");
}

/// A socket bound to `address` (port 0: the kernel picks one; read it with local_port), for
/// servers: tests' fake responders and harnesses that need a free port. `type` is SOCK_STREAM
/// (then listening, backlog 16) or SOCK_DGRAM.
[[nodiscard]] inline result<unique_fd> bind_socket(const socket_address& address, int type) {
  auto fd = socket_internal::open_socket(address.family(), type);
  if (!fd) return unexpected_error(fd.error());
  const int one = 1;
  static_cast<void>(::setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  if (::bind(fd->get(), address.get(), address.length) != 0) {
    return socket_internal::errno_failure("bind " + address.text, errno);
  }
  if (type == SOCK_STREAM && ::listen(fd->get(), 16) != 0) return socket_internal::errno_failure("listen", errno);
  return std::move(*fd);
}

/// The local port a socket is bound to.
[[nodiscard]] inline result<std::uint16_t> local_port(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return socket_internal::errno_failure("getsockname", errno);
  }
  if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

/// Accepts one connection on a listening socket before `deadline` (non-blocking descriptor).
[[nodiscard]] inline result<unique_fd> accept_connection(int listener, socket_deadline deadline) {
  for (;;) {
    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return unique_fd(fd);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto ready = socket_internal::wait_ready(listener, POLLIN, deadline, "accept"); !ready) {
        return unexpected_error(ready.error());
      }
      continue;
    }
    return socket_internal::errno_failure("accept", errno);
  }
}

/// One datagram received on an unconnected (bound) UDP socket, with its sender, for servers.
struct received_datagram {
  std::size_t length = 0;
  sockaddr_storage from{};
  socklen_t from_length = 0;
};

/// Receives one datagram on a bound UDP socket before `deadline`, remembering the sender.
[[nodiscard]] inline result<received_datagram> receive_datagram_from(int fd, std::span<std::uint8_t> buffer,
                                                                     socket_deadline deadline) {
  PLANFENCE_ASSERT(!buffer.empty());
  for (;;) {
    received_datagram out;
    out.from_length = sizeof out.from;
    const ssize_t n = ::recvfrom(fd, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&out.from), &out.from_length);
    if (n >= 0) {
      out.length = static_cast<std::size_t>(n);
      return out;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto ready = socket_internal::wait_ready(fd, POLLIN, deadline, "receive datagram"); !ready) {
        return unexpected_error(ready.error());
      }
      continue;
    }
    return socket_internal::errno_failure("receive datagram", errno);
  }
}

/// Sends one datagram from a bound UDP socket to the sender of `to` (a reply).
[[nodiscard]] inline result<void> send_datagram_to(int fd, std::span<const std::uint8_t> bytes, const received_datagram& to) {
  for (;;) {
    const ssize_t n = ::sendto(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&to.from),
                               to.from_length);
    if (n >= 0) return ok();
    if (errno == EINTR) continue;
    return socket_internal::errno_failure("send datagram", errno);
  }
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
