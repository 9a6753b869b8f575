// planfence/rfc2136/transport.hpp: the two DNS transports the RFC 2136 store uses: UDP (the
// caller retries and falls back to TCP) and TCP with the two-octet length prefix.
//
// What it is for. Sending one encoded message (wire.hpp) and returning the raw bytes of the
// answer with the request's ID; decoding and TSIG verification are the caller's. Kept apart
// from wire.hpp so that the codec (and its fuzz target) needs no sockets.
//
// When not to use it: as a resolver. There is no retry, no server selection and no EDNS here.
//
// Costs. One socket per UDP exchange; TCP runs on a connection the caller holds. Blocking calls
// bounded by the caller's deadline (detail/socket.hpp), allocating the answer buffer.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "../config.hpp"
#include "../detail/socket.hpp"
#include "../result.hpp"
#include "wire.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

// Transports. Both send one request and return the raw bytes of the first answer whose ID is
// the request's (other datagrams are dropped, as a resolver does against blind spoofing); the
// caller decodes and verifies it (TSIG).

/// Sends `request` over UDP and waits for the answer until `deadline`. The caller retries.
[[nodiscard]] inline result<std::vector<std::uint8_t>> exchange_udp(const socket_address& server,
                                                                    std::span<const std::uint8_t> request,
                                                                    socket_deadline deadline) {
  PLANFENCE_ASSERT(request.size() >= dns_header_size);
  if (request.size() > dns_udp_payload_max) return fail(errc::io_error, "request too large for UDP");
  auto fd = udp_connect(server);
  if (!fd) return unexpected_error(fd.error());
  if (auto sent = send_datagram(fd->get(), request, deadline); !sent) return unexpected_error(sent.error());
  // Without EDNS an answer is at most 512 octets; a larger datagram is not a valid answer, but
  // read a full 64 KiB so that it is seen whole and refused by its length rather than cut.
  std::vector<std::uint8_t> buffer(dns_message_size_max);
  for (;;) {
    auto n = receive_datagram(fd->get(), buffer, deadline);
    if (!n) return unexpected_error(n.error());
    if (*n < dns_header_size || buffer[0] != request[0] || buffer[1] != request[1]) continue;
    buffer.resize(*n);
    return buffer;
  }
}

/// Sends `request` on a connected TCP socket with the two-octet length prefix (RFC 1035 section
/// 4.2.2) and reads one length-prefixed answer with the request's ID until `deadline`. Answers
/// with another ID are skipped (at most 16), as a late answer to an abandoned request may be.
[[nodiscard]] inline result<std::vector<std::uint8_t>> exchange_tcp(int fd, std::span<const std::uint8_t> request,
                                                                    socket_deadline deadline) {
  PLANFENCE_ASSERT(request.size() >= dns_header_size);
  if (request.size() > dns_message_size_max) return fail(errc::capacity_exceeded, "DNS message over 65535 octets");
  std::vector<std::uint8_t> framed;
  framed.reserve(request.size() + 2);
  framed.push_back(static_cast<std::uint8_t>(request.size() >> 8));
  framed.push_back(static_cast<std::uint8_t>(request.size() & 0xff));
  framed.insert(framed.end(), request.begin(), request.end());
  if (auto sent = send_all(fd, framed, deadline); !sent) return unexpected_error(sent.error());
  for (int skipped = 0; skipped < 16; ++skipped) {
    std::array<std::uint8_t, 2> prefix{};
    if (auto got = receive_exactly(fd, prefix, deadline); !got) return unexpected_error(got.error());
    const std::size_t length = static_cast<std::size_t>(prefix[0]) << 8 | prefix[1];
    if (length < dns_header_size) return fail(errc::io_error, "TCP answer shorter than a DNS header");
    std::vector<std::uint8_t> answer(length);
    if (auto got = receive_exactly(fd, answer, deadline); !got) return unexpected_error(got.error());
    if (answer[0] == request[0] && answer[1] == request[1]) return answer;
  }
  return fail(errc::io_error, "no TCP answer with the request's ID");
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
