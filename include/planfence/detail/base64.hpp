// planfence/detail/base64.hpp: standard base64 (RFC 4648 section 4, with padding), strict.
//
// Used by the etcd gateway client (every `bytes` field is base64) and by TSIG key parsing (the
// secret is base64 in knot/BIND key syntax and in rfc2136:// URIs). Decoding refuses white space,
// characters outside the alphabet, a length that is not a multiple of 4, misplaced padding and
// padding that hides non-zero bits, so every accepted text has exactly one decoding and re-encodes
// to itself (tests/fuzz/etcd_response_fuzz.cpp checks that). O(n), one allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "../result.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

/// Standard base64 (RFC 4648 section 4) with padding: the gateway's encoding of `bytes`.
[[nodiscard]] inline std::string base64_encode(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[n >> 18];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += alphabet[n >> 18];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

/// Decodes standard base64 with padding. Errors: errc::parse_error for any other character, a
/// length that is not a multiple of 4, misplaced padding or non-zero trailing bits.
[[nodiscard]] inline result<std::string> base64_decode(std::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return fail(errc::parse_error, "base64 length is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int padding = 0;
    for (int j = 0; j < 4; ++j) {
      const char c = text[i + static_cast<std::size_t>(j)];
      if (c == '=' && last && j >= 2) {
        v[j] = 0;
        ++padding;
        continue;
      }
      if (padding > 0) return fail(errc::parse_error, "base64 data after padding");
      v[j] = value_of(c);
      if (v[j] < 0) return fail(errc::parse_error, "not a base64 character");
    }
    const std::uint32_t n = static_cast<std::uint32_t>(v[0]) << 18 | static_cast<std::uint32_t>(v[1]) << 12 |
                            static_cast<std::uint32_t>(v[2]) << 6 | static_cast<std::uint32_t>(v[3]);
    out += static_cast<char>(n >> 16);
    if (padding < 2) out += static_cast<char>((n >> 8) & 0xFF);
    if (padding < 1) out += static_cast<char>(n & 0xFF);
    if ((padding == 1 && (n & 0xFF) != 0) || (padding == 2 && (n & 0xFFFF) != 0)) {
      return fail(errc::parse_error, "base64 padding hides non-zero bits");
    }
  }
  return out;
}

/// As base64_encode(std::string_view), for raw octets (TSIG secrets and MACs).
[[nodiscard]] inline std::string base64_encode(std::span<const std::uint8_t> bytes) {
  return base64_encode(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
