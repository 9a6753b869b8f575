// planfence/etcd/http.hpp: a bounded HTTP/1.1 client for request/response JSON APIs.
//
// What it is: just enough HTTP/1.1 (RFC 9112) for the etcd JSON gateway: POST a body, read one
// response with a Content-Length body, a chunked body (trailers skipped) or a body delimited by
// the close of the connection; keep the connection alive between requests and reconnect when
// the server closed it. Two parts:
//  - `http_response_parser`: a pure, incremental parser (feed it bytes as they arrive). It has no
//    I/O, so the fuzz target (tests/fuzz/etcd_response_fuzz.cpp) and the unit tests drive it
//    with hostile input directly. Every dimension is bounded by `http_limits`.
//  - `http_connection`: one kept-alive TCP connection to one host (detail/socket.hpp), with a
//    deadline on every request; optionally wrapped by a `stream_wrapper` (TLS: etcd/tls.hpp,
//    compiled only when the embedder opts in), and with extra request headers per request
//    (etcd's `Authorization` token).
//
//     planfence::detail::http_connection c{"127.0.0.1", 2379, {}};
//     auto response = c.post("/v3/kv/range", R"({"key":"Zm9v"})", deadline_after(2000ms));
//     if (response && response->status == 200) use(response->body);
//
// When not to use it: no redirects, no proxies, no pipelining, one request at a time per
// connection; TLS only through a stream_wrapper. Not on any non-blocking path: every request blocks up to its deadline.
//
// Cost: one send and a few receives per request on a kept-alive connection; the response body
// is copied once out of a 16 KiB receive buffer. Allocates the body and the headers.
//
// Guarantees: a request that fails after any of its bytes may have been sent is never resent
// here (the caller decides, because a POST is not idempotent in general); a request that fails
// on a kept-alive connection before a single response byte arrived, because the server had
// closed it, is retried once on a fresh connection only when the caller allows it
// (`retry_idempotent`).
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../result.hpp"
#include "../detail/socket.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

/// Bounds on one response. Every one is checked before it could be exceeded.
struct http_limits {
  std::size_t line_bytes_max = 8192;                 ///< status line, one header line, a chunk-size line
  std::size_t headers_max = 64;                      ///< header lines (trailers included)
  std::size_t body_bytes_max = std::size_t{16} << 20;  ///< decoded body
};

/// One parsed response. Header names are lower-cased.
struct http_response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = true;  ///< the server did not ask to close (and the body was delimited)

  [[nodiscard]] const std::string* header(std::string_view name) const noexcept {
    for (const auto& [key, value] : headers) {
      if (key == name) return &value;
    }
    return nullptr;
  }
};

/// An incremental HTTP/1.1 response parser. Feed bytes with `feed`; `done()` says a whole
/// response was read (`take()` gives it); `feed_end()` tells it the connection closed.
class http_response_parser {
 public:
  explicit http_response_parser(http_limits limits = {}, bool head_request = false) noexcept
      : limits_(limits), head_request_(head_request) {}

  /// Consumes a prefix of `bytes`; returns how many bytes were used (fewer than given only once
  /// the response is complete: the rest belongs to the next response). Errors: errc::parse_error
  /// for malformed HTTP, errc::capacity_exceeded for a bound.
  [[nodiscard]] result<std::size_t> feed(std::string_view bytes) {
    std::size_t used = 0;
    while (used < bytes.size() && state_ != state::done) {
      if (state_ == state::body_length || state_ == state::chunk_data || state_ == state::body_until_close) {
        std::size_t want = bytes.size() - used;
        if (state_ != state::body_until_close) want = std::min<std::size_t>(want, remaining_);
        if (response_.body.size() + want > limits_.body_bytes_max) return fail(errc::capacity_exceeded, "HTTP body too large");
        response_.body.append(bytes.substr(used, want));
        used += want;
        if (state_ != state::body_until_close) {
          remaining_ -= want;
          if (remaining_ == 0) state_ = state_ == state::body_length ? state::done : state::chunk_data_end;
        }
        continue;
      }
      // Line-oriented states: collect a line ending in LF (CR LF expected, a bare LF tolerated).
      const std::size_t newline = bytes.find('\n', used);
      const std::size_t end = newline == std::string_view::npos ? bytes.size() : newline;
      if (line_.size() + (end - used) > limits_.line_bytes_max) return fail(errc::capacity_exceeded, "HTTP line too long");
      line_.append(bytes.substr(used, end - used));
      used = newline == std::string_view::npos ? bytes.size() : newline + 1;
      if (newline == std::string_view::npos) break;
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (auto r = on_line(); !r) return unexpected_error(r.error());
      line_.clear();
    }
    return used;
  }

  /// The connection closed. Completes a body delimited by the close; otherwise a response cut
  /// short is errc::io_error.
  [[nodiscard]] result<void> feed_end() {
    if (state_ == state::done) return ok();
    if (state_ == state::body_until_close) {
      state_ = state::done;
      response_.keep_alive = false;
      return ok();
    }
    return fail(errc::io_error, started() ? "connection closed in the middle of an HTTP response"
                                          : "connection closed before an HTTP response");
  }

  [[nodiscard]] bool done() const noexcept { return state_ == state::done; }
  /// Whether any byte of a response was consumed.
  [[nodiscard]] bool started() const noexcept { return state_ != state::status_line || !line_.empty(); }
  [[nodiscard]] http_response take() && {
    PLANFENCE_ASSERT(done());
    return std::move(response_);
  }

 private:
  enum class state : std::uint8_t {
    status_line, headers, body_length, body_until_close, chunk_size, chunk_data, chunk_data_end, trailers, done
  };

  static std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
  }
  static std::string_view trim(std::string_view text) noexcept {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
  }
  static bool has_token(std::string_view list, std::string_view token) {
    const std::string all = lower(list);
    std::string_view rest = all;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      if (trim(rest.substr(0, comma)) == token) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return false;
  }

  result<void> on_line() {
    switch (state_) {
      case state::status_line: return on_status_line();
      case state::headers: return on_header_line(false);
      case state::trailers: return on_header_line(true);
      case state::chunk_size: return on_chunk_size();
      case state::chunk_data_end:
        if (!line_.empty()) return fail(errc::parse_error, "expected CRLF after HTTP chunk data");
        state_ = state::chunk_size;
        return ok();
      default: PLANFENCE_ASSERT(false); return ok();
    }
  }

  result<void> on_status_line() {
    // HTTP/1.1 200 OK
    const std::string_view line = line_;
    if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || line[8] != ' ') return fail(errc::parse_error, "malformed HTTP status line");
    const std::string_view version = line.substr(5, 3);
    if (version != "1.1" && version != "1.0") return fail(errc::parse_error, "unsupported HTTP version");
    const std::string_view code = line.substr(9, 3);
    int status = 0;
    const auto [end, ec] = std::from_chars(code.data(), code.data() + 3, status);
    if (ec != std::errc{} || end != code.data() + 3 || status < 100 || status > 599 || (line.size() > 12 && line[12] != ' ')) {
      return fail(errc::parse_error, "malformed HTTP status code");
    }
    response_ = http_response{};
    response_.status = status;
    response_.keep_alive = version == "1.1";
    content_length_.reset();
    chunked_ = false;
    header_count_ = 0;
    state_ = state::headers;
    return ok();
  }

  result<void> on_header_line(bool trailer) {
    if (line_.empty()) return trailer ? finish() : on_headers_end();
    if (++header_count_ > limits_.headers_max) return fail(errc::capacity_exceeded, "too many HTTP header lines");
    if (line_.front() == ' ' || line_.front() == '\t') return fail(errc::parse_error, "obsolete HTTP header folding");
    const std::size_t colon = line_.find(':');
    if (colon == std::string::npos || colon == 0) return fail(errc::parse_error, "malformed HTTP header line");
    const std::string_view raw_name = std::string_view(line_).substr(0, colon);
    if (raw_name.find_first_of(" \t") != std::string_view::npos) return fail(errc::parse_error, "space in an HTTP header name");
    if (trailer) return ok();  // trailers are read and dropped
    std::string name = lower(raw_name);
    std::string value(trim(std::string_view(line_).substr(colon + 1)));
    if (name == "content-length") {
      std::uint64_t length = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (value.empty() || ec != std::errc{} || end != value.data() + value.size()) return fail(errc::parse_error, "malformed Content-Length");
      if (content_length_ && *content_length_ != length) return fail(errc::parse_error, "conflicting Content-Length headers");
      if (length > limits_.body_bytes_max) return fail(errc::capacity_exceeded, "HTTP body too large");
      content_length_ = length;
    } else if (name == "transfer-encoding") {
      if (!has_token(value, "chunked")) return fail(errc::parse_error, "unsupported Transfer-Encoding");
      chunked_ = true;
    } else if (name == "connection") {
      if (has_token(value, "close")) response_.keep_alive = false;
      if (has_token(value, "keep-alive")) response_.keep_alive = true;
    }
    response_.headers.emplace_back(std::move(name), std::move(value));
    return ok();
  }

  result<void> on_headers_end() {
    if (response_.status < 200) {  // 1xx: an interim response, the real one follows
      state_ = state::status_line;
      return ok();
    }
    if (chunked_ && content_length_) return fail(errc::parse_error, "both Content-Length and chunked");
    if (head_request_ || response_.status == 204 || response_.status == 304) return finish();
    if (chunked_) {
      state_ = state::chunk_size;
    } else if (content_length_) {
      remaining_ = *content_length_;
      state_ = remaining_ == 0 ? state::done : state::body_length;
    } else {
      state_ = state::body_until_close;
    }
    return ok();
  }

  result<void> on_chunk_size() {
    std::string_view text = line_;
    if (const std::size_t semicolon = text.find(';'); semicolon != std::string_view::npos) text = text.substr(0, semicolon);
    text = trim(text);
    std::uint64_t size = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), size, 16);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return fail(errc::parse_error, "malformed HTTP chunk size");
    if (size > limits_.body_bytes_max - response_.body.size()) return fail(errc::capacity_exceeded, "HTTP body too large");
    if (size == 0) {
      state_ = state::trailers;
      return ok();
    }
    remaining_ = size;
    state_ = state::chunk_data;
    return ok();
  }

  result<void> finish() {
    state_ = state::done;
    return ok();
  }

  http_limits limits_;
  bool head_request_;
  state state_ = state::status_line;
  std::string line_;
  http_response response_;
  std::optional<std::uint64_t> content_length_;
  bool chunked_ = false;
  std::size_t header_count_ = 0;
  std::uint64_t remaining_ = 0;
};

/// Parses one complete response held in `bytes` (tests and the fuzz target).
[[nodiscard]] inline result<http_response> http_parse_response(std::string_view bytes, http_limits limits = {}) {
  http_response_parser parser(limits);
  auto used = parser.feed(bytes);
  if (!used) return unexpected_error(used.error());
  if (!parser.done()) {
    if (auto end = parser.feed_end(); !end) return unexpected_error(end.error());
  }
  return std::move(parser).take();
}

/// A byte stream over a connected socket other than plain TCP (a TLS session: etcd/tls.hpp).
/// Same contracts as detail/socket.hpp's send_all and receive_some (0: the peer closed).
class secure_stream {
 public:
  virtual ~secure_stream() = default;
  [[nodiscard]] virtual result<void> send_all(std::span<const std::uint8_t> bytes, socket_deadline deadline) = 0;
  [[nodiscard]] virtual result<std::size_t> receive_some(std::span<std::uint8_t> buffer, socket_deadline deadline) = 0;
};

/// Turns a freshly connected socket into a secure_stream (the TLS handshake, with the peer
/// checked against `host`). Shared by the connections of one client; must be thread-safe.
/// Errors: errc::io_error whose detail starts with "connect" (nothing of a request was sent).
class stream_wrapper {
 public:
  virtual ~stream_wrapper() = default;
  [[nodiscard]] virtual result<std::unique_ptr<secure_stream>> wrap(int fd, std::string_view host, std::uint16_t port,
                                                                    socket_deadline deadline) = 0;
};

/// One kept-alive HTTP/1.1 connection to one server. Not thread-safe: one request at a time.
class http_connection {
 public:
  http_connection(std::string host, std::uint16_t port, http_limits limits = {},
                  std::shared_ptr<stream_wrapper> wrapper = nullptr)
      : host_(std::move(host)), port_(port), limits_(limits), wrapper_(std::move(wrapper)) {}

  [[nodiscard]] const std::string& host() const noexcept { return host_; }
  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] bool connected() const noexcept { return fd_.valid(); }
  /// Drops the connection (the next request reconnects).
  void close() noexcept {
    stream_.reset();  // before the descriptor it uses
    fd_.reset();
    pending_.clear();
  }

  /// POSTs `body` (application/json) to `path` and reads the response, all before `deadline`.
  /// Errors: errc::io_error (connect, send, receive, timeout, closed early), errc::parse_error and
  /// errc::capacity_exceeded (a bad response). After any error the connection is closed.
  /// `retry_idempotent`: resend once on a fresh connection when a reused one turns out closed
  /// before any response byte arrived. `headers`: extra header lines, each ending in CRLF (they
  /// may hold a secret: they are sent, never printed).
  [[nodiscard]] result<http_response> post(std::string_view path, std::string_view body, socket_deadline deadline,
                                           bool retry_idempotent = false, std::string_view headers = {}) {
    const bool reused = fd_.valid();
    auto first = attempt(path, body, deadline, headers);
    if (first || !reused || !retry_idempotent || !last_attempt_unanswered_) return first;
    return attempt(path, body, deadline, headers);
  }

 private:
  result<void> send_bytes(std::span<const std::uint8_t> bytes, socket_deadline deadline) {
    return stream_ ? stream_->send_all(bytes, deadline) : send_all(fd_.get(), bytes, deadline);
  }
  result<std::size_t> receive_bytes(std::span<std::uint8_t> buffer, socket_deadline deadline) {
    return stream_ ? stream_->receive_some(buffer, deadline) : receive_some(fd_.get(), buffer, deadline);
  }

  result<http_response> attempt(std::string_view path, std::string_view body, socket_deadline deadline,
                                std::string_view headers) {
    last_attempt_unanswered_ = false;
    if (!fd_.valid()) {
      auto fd = tcp_connect(host_, port_, deadline);
      if (!fd) return unexpected_error(fd.error());
      fd_ = std::move(*fd);
      pending_.clear();
      if (wrapper_) {
        auto stream = wrapper_->wrap(fd_.get(), host_, port_, deadline);
        if (!stream) {
          close();
          return unexpected_error(stream.error());
        }
        stream_ = std::move(*stream);
      }
    }
    std::string request;
    request.reserve(body.size() + 160);
    request += "POST ";
    request += path;
    request += " HTTP/1.1\r\nHost: ";
    request += host_;
    request += ':';
    request += std::to_string(port_);
    request += "\r\nContent-Type: application/json\r\nAccept: application/json\r\n";
    request += headers;
    request += "Content-Length: ";
    request += std::to_string(body.size());
    request += "\r\n\r\n";
    request += body;
    const auto* data = reinterpret_cast<const std::uint8_t*>(request.data());
    if (auto sent = send_bytes(std::span<const std::uint8_t>(data, request.size()), deadline); !sent) {
      last_attempt_unanswered_ = true;
      close();
      return unexpected_error(sent.error());
    }
    http_response_parser parser(limits_);
    std::array<std::uint8_t, 16384> buffer{};
    std::string_view leftover = pending_;
    for (;;) {
      if (!leftover.empty()) {
        auto used = parser.feed(leftover);
        if (!used) {
          close();
          return unexpected_error(used.error());
        }
        leftover.remove_prefix(*used);
      }
      if (parser.done()) break;
      auto got = receive_bytes(buffer, deadline);
      if (!got) {
        last_attempt_unanswered_ = !parser.started() && !is_timeout(got.error());
        close();
        return unexpected_error(got.error());
      }
      if (*got == 0) {
        last_attempt_unanswered_ = !parser.started();
        auto end = parser.feed_end();
        if (!end) {
          close();
          return unexpected_error(end.error());
        }
        break;
      }
      // Keep what was received but not used in pending_ so that it survives the loop.
      pending_.erase(0, pending_.size() - leftover.size());  // leftover is always a suffix of pending_
      pending_.append(reinterpret_cast<const char*>(buffer.data()), *got);
      leftover = pending_;
    }
    pending_.erase(0, pending_.size() - leftover.size());
    http_response response = std::move(parser).take();
    if (!response.keep_alive) close();
    return response;
  }

  std::string host_;
  std::uint16_t port_;
  http_limits limits_;
  std::shared_ptr<stream_wrapper> wrapper_;
  unique_fd fd_;
  std::unique_ptr<secure_stream> stream_;  // set when wrapper_ is
  std::string pending_;  // bytes received after the previous response (none from etcd)
  bool last_attempt_unanswered_ = false;
};

}  // namespace detail
}  // namespace v1
}  // namespace planfence
