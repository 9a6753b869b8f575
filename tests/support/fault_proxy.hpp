// tests/support/fault_proxy.hpp: a loopback TCP proxy that loses the answer to one chosen request,
// for the tests of a store failing in the middle of a batch (an UPDATE or a transaction that
// reached the server and was applied, whose answer never came back).
//
// The proxy listens on 127.0.0.1 (a port the kernel picks), opens one connection to the server
// for each client connection, and forwards bytes both ways. It splits what the client sends into
// requests (`framing`: HTTP/1.1 with a Content-Length body, as the etcd client sends them; or DNS
// over TCP, each message behind its two-octet length) and counts the requests that `matches`.
// cut_answer(n, matches, on_cut) arms one cut: the n-th matching request from then on is
// forwarded to the server; when the server's answer to it starts to arrive (the server answers
// only after applying the request: etcd after the transaction's commit, a DNS server after the
// UPDATE), that answer is dropped, `on_cut` runs (still before the client sees anything: a test
// lets "another writer" act there), and both sides of that connection are closed. The client
// then sees its connection closed with no answer. cut_answer(n, matches, {}, k) loses the
// answers to the k matching requests from the n-th on (a client that sends again meets the
// same fault). Every other byte is forwarded untouched, so
// the proxy is deterministic: what is cut is named by the requests' contents, not by timing.
//
// One thread polls every socket; nothing is buffered beyond what one read returns (64 KiB),
// except the client's bytes kept to find request boundaries. The destructor stops the thread
// and closes every socket. Standard library and POSIX sockets only. Tests only.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace planfence_test {

class fault_proxy {
 public:
  /// How the client's bytes split into requests.
  enum class framing {
    http,     ///< "METHOD PATH HTTP/1.1", headers, an optional Content-Length body (no chunked bodies)
    dns_tcp,  ///< a two-octet big-endian length, then that many octets (RFC 1035 section 4.2.2)
  };
  /// Whether a request (its whole bytes: HTTP head and body, or one DNS message without its
  /// length) is one of those counted for a cut.
  using matcher = std::function<bool(std::string_view request)>;

  /// Forwards 127.0.0.1:port() to 127.0.0.1:`server_port`. Throws std::runtime_error when it
  /// cannot listen.
  fault_proxy(std::uint16_t server_port, framing how) : server_port_(server_port), framing_(how) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0) throw std::runtime_error("fault_proxy: socket");
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr = loopback(0);
    if (::bind(listener_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener_, 64) != 0) {
      ::close(listener_);
      throw std::runtime_error("fault_proxy: bind or listen on 127.0.0.1");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      ::close(listener_);
      throw std::runtime_error("fault_proxy: pipe");
    }
    wake_read_ = pipe_fds[0];
    wake_write_ = pipe_fds[1];
    thread_ = std::thread([this] { run(); });
  }

  fault_proxy(const fault_proxy&) = delete;
  fault_proxy& operator=(const fault_proxy&) = delete;

  ~fault_proxy() {
    stop_.store(true);
    const char byte = 0;
    const ssize_t woken = ::write(wake_write_, &byte, 1);  // a full pipe wakes the thread as well
    static_cast<void>(woken);
    thread_.join();
    for (const pair& p : pairs_) {
      ::close(p.client);
      ::close(p.server);
    }
    ::close(listener_);
    ::close(wake_read_);
    ::close(wake_write_);
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }

  /// Arms a cut: the `nth` (1-based) request matching `matches` from now on loses its answer,
  /// and `on_cut` (may be empty) runs on the proxy's thread before the client's connection closes
  /// (once, at the first cut). With `times` above 1, the next `times - 1` matching requests lose
  /// theirs too (a client that sends the same request again meets the same fault).
  void cut_answer(std::size_t nth, matcher matches, std::function<void()> on_cut = {}, std::size_t times = 1) {
    std::lock_guard lock(mutex_);
    if (nth == 0 || times == 0) throw std::logic_error("fault_proxy: requests are counted from 1");
    remaining_ = nth;
    more_ = times - 1;
    matches_ = std::move(matches);
    on_cut_ = std::move(on_cut);
    matched_.store(0);
    cuts_.store(0);
  }

  /// How many answers were cut since the cut was armed.
  [[nodiscard]] std::size_t cuts() const noexcept { return cuts_.load(); }
  /// How many forwarded requests matched the last armed matcher (from when it was armed,
  /// including the one whose answer was cut and any sent again after it).
  [[nodiscard]] std::size_t matched() const noexcept { return matched_.load(); }

 private:
  struct pair {
    int client = -1;
    int server = -1;
    std::string from_client;  // bytes of an incomplete request
    bool cut_next_answer = false;
    bool closed = false;
  };

  static sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }

  static bool send_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
      const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
      if (n <= 0) return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }

  /// The length of the first complete request in `buffer`, or 0 when it is not complete yet.
  [[nodiscard]] std::size_t request_length(std::string_view buffer) const {
    if (framing_ == framing::dns_tcp) {
      if (buffer.size() < 2) return 0;
      const std::size_t length =
          (static_cast<std::size_t>(static_cast<unsigned char>(buffer[0])) << 8) | static_cast<unsigned char>(buffer[1]);
      return buffer.size() >= 2 + length ? 2 + length : 0;
    }
    const std::size_t head_end = buffer.find("\r\n\r\n");
    if (head_end == std::string_view::npos) return 0;
    std::string head(buffer.substr(0, head_end));
    std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::size_t body = 0;
    if (const std::size_t at = head.find("\r\ncontent-length:"); at != std::string::npos) {
      body = static_cast<std::size_t>(std::stoull(head.substr(at + 17)));
    }
    const std::size_t total = head_end + 4 + body;
    return buffer.size() >= total ? total : 0;
  }

  /// Splits the client's buffered bytes into requests, forwards each, and arms the cut on this
  /// connection when the armed request goes by. False when the server side failed.
  bool forward_requests(pair& p) {
    for (;;) {
      const std::size_t length = request_length(p.from_client);
      if (length == 0) return true;
      const std::string_view request(p.from_client.data(), length);
      {
        std::lock_guard lock(mutex_);
        if (matches_) {
          const std::string_view message = framing_ == framing::dns_tcp ? request.substr(2) : request;
          if (matches_(message)) {
            matched_.fetch_add(1);
            if (remaining_ > 0 && --remaining_ == 0) {
              p.cut_next_answer = true;
              if (more_ > 0) {
                --more_;
                remaining_ = 1;
              }
            }
          }
        }
      }
      if (!send_all(p.server, request.data(), request.size())) return false;
      p.from_client.erase(0, length);
    }
  }

  void cut(pair& p) {
    std::function<void()> hook;
    {
      std::lock_guard lock(mutex_);
      hook = std::move(on_cut_);
      on_cut_ = {};
    }
    if (hook) hook();
    cuts_.fetch_add(1);
    p.closed = true;
  }

  void run() {
    std::vector<char> buffer(65536);
    while (!stop_.load()) {
      std::vector<pollfd> fds;
      fds.push_back({wake_read_, POLLIN, 0});
      fds.push_back({listener_, POLLIN, 0});
      for (const pair& p : pairs_) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 1000) < 0) continue;
      if (fds[0].revents != 0) break;
      const std::size_t polled = pairs_.size();  // a pair accepted now is polled next round
      if ((fds[1].revents & POLLIN) != 0) accept_one();
      for (std::size_t i = 0; i < polled; ++i) {
        pair& p = pairs_[i];
        const short client_events = fds[2 + 2 * i].revents;
        const short server_events = fds[3 + 2 * i].revents;
        if (!p.closed && client_events != 0) {
          const ssize_t n = ::recv(p.client, buffer.data(), buffer.size(), 0);
          if (n <= 0) {
            p.closed = true;
          } else {
            p.from_client.append(buffer.data(), static_cast<std::size_t>(n));
            if (!forward_requests(p)) p.closed = true;
          }
        }
        if (!p.closed && server_events != 0) {
          const ssize_t n = ::recv(p.server, buffer.data(), buffer.size(), 0);
          if (n <= 0) {
            p.closed = true;
          } else if (p.cut_next_answer) {
            cut(p);  // the answer is dropped, never forwarded
          } else if (!send_all(p.client, buffer.data(), static_cast<std::size_t>(n))) {
            p.closed = true;
          }
        }
      }
      // Closed pairs: both sides shut at once, so the client sees the end with no answer.
      for (auto it = pairs_.begin(); it != pairs_.end();) {
        if (it->closed) {
          ::close(it->client);
          ::close(it->server);
          it = pairs_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  void accept_one() {
    const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return;
    const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_in addr = loopback(server_port_);
    if (server < 0 || ::connect(server, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      if (server >= 0) ::close(server);
      ::close(client);
      return;
    }
    const int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pairs_.push_back(pair{client, server, {}, false, false});
  }

  std::uint16_t server_port_;
  framing framing_;
  std::uint16_t port_ = 0;
  int listener_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> cuts_{0};
  std::atomic<std::size_t> matched_{0};
  mutable std::mutex mutex_;
  std::size_t remaining_ = 0;  // matching requests until the next cut (0: none armed)
  std::size_t more_ = 0;       // cuts after that one
  matcher matches_;
  std::function<void()> on_cut_;
  std::vector<pair> pairs_;  // the proxy thread's own
  std::thread thread_;
};

}  // namespace planfence_test
