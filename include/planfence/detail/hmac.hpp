// planfence/detail/hmac.hpp: HMAC-SHA256 (RFC 2104) and a constant-time comparison for MACs.
//
// What it is for. The RFC 2136 store signs each DNS UPDATE with TSIG (RFC 8945), whose MAC is
// HMAC-SHA256 over the message and the TSIG variables, and checks the MAC on the server's answer.
// A one-shot function covers short inputs; the streaming state lets the TSIG code feed the pieces
// of a message without first copying them into one buffer.
//
//   const auto mac = planfence::detail::hmac_sha256(key, message);        // one shot
//
//   planfence::detail::hmac_sha256_state state(key);                     // streaming
//   state.update(request_mac);
//   state.update(response_without_tsig);
//   state.update(tsig_variables);
//   if (!planfence::detail::constant_time_equal(state.finish(), received_mac)) { /* BADSIG */ }
//
// What it costs. No allocation, no exceptions. Keying compresses two SHA-256 blocks (plus the
// key's own blocks when it is longer than 64 bytes) and finish() two or three more, so a MAC
// over n bytes costs about as much as hashing n + 256 bytes: about 2.8 us for 300 bytes under a
// 32-byte key on the machine sha256.hpp describes (g++-12 -O2). A keyed state is 248 bytes and
// trivially copyable: key one state per TSIG key and copy it for each message to skip the two
// keying blocks.
//
// What it is not. Comparing MACs must use constant_time_equal, never ==, or the comparison leaks
// how many leading bytes of a forged MAC were right. Beyond that the code is only as hard against
// side channels as sha256.hpp (its work depends on lengths, not on key or message bytes), and it
// does not wipe key material from memory: a state holds SHA-256 states derived from the key, not
// the key itself, but those are enough to compute MACs. It is not a key-derivation function.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "../config.hpp"
#include "sha256.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

/// Length of an HMAC-SHA256 value in bytes (before any truncation the protocol may apply).
inline constexpr std::size_t hmac_sha256_size = sha256_digest_size;

/// An HMAC-SHA256 value.
using hmac_sha256_mac = std::array<std::uint8_t, hmac_sha256_size>;

/// A streaming HMAC-SHA256 computation under one key (RFC 2104): construct it with the key, feed
/// the message with update() in pieces of any size, then call finish() once. The MAC depends only
/// on the key and the concatenation of the pieces. A state is spent after finish(); updating or
/// finishing it again stops the program (PLANFENCE_ASSERT). Copy a freshly keyed state to MAC
/// several messages under the same key.
class hmac_sha256_state {
 public:
  /// Keys the computation. A key longer than the SHA-256 block (64 bytes) is first replaced by
  /// its digest, as RFC 2104 requires. Any length, including empty, is accepted: RFC 2104
  /// discourages keys shorter than the 32-byte output, but that is the caller's key policy to
  /// enforce. Wait-free, does not allocate, O(key.size()).
  constexpr explicit hmac_sha256_state(std::span<const std::uint8_t> key) noexcept {
    // K0: the key padded with zeros to the block size, or its digest padded so (RFC 2104).
    std::array<std::uint8_t, sha256_block_size> padded_key{};
    if (key.size() > sha256_block_size) {
      const sha256_digest key_digest = sha256_of(key);
      for (std::size_t i = 0; i < key_digest.size(); ++i) {
        padded_key[i] = key_digest[i];
      }
    } else {
      for (std::size_t i = 0; i < key.size(); ++i) {
        padded_key[i] = key[i];
      }
    }

    // Hash K0 ^ ipad into the inner hasher and K0 ^ opad into the outer one now, so that
    // neither the key nor the pads need to be kept until finish().
    std::array<std::uint8_t, sha256_block_size> pad{};
    for (std::size_t i = 0; i < sha256_block_size; ++i) {
      pad[i] = static_cast<std::uint8_t>(padded_key[i] ^ inner_pad_byte);
    }
    inner_.update(pad);
    for (std::size_t i = 0; i < sha256_block_size; ++i) {
      pad[i] = static_cast<std::uint8_t>(padded_key[i] ^ outer_pad_byte);
    }
    outer_.update(pad);
  }

  /// Appends `bytes` to the message. Wait-free, does not allocate, O(bytes.size()).
  constexpr void update(std::span<const std::uint8_t> bytes) noexcept {
    PLANFENCE_ASSERT(!finished_);
    inner_.update(bytes);
  }

  /// Appends the bytes of `text` to the message. Wait-free, does not allocate, O(text.size()).
  constexpr void update(std::string_view text) noexcept {
    PLANFENCE_ASSERT(!finished_);
    inner_.update(text);
  }

  /// Returns H((K0 ^ opad) || H((K0 ^ ipad) || message)) and spends the state. Wait-free, does
  /// not allocate, O(1).
  [[nodiscard]] constexpr hmac_sha256_mac finish() noexcept {
    PLANFENCE_ASSERT(!finished_);
    finished_ = true;
    const sha256_digest inner_digest = inner_.finish();
    outer_.update(inner_digest);
    return outer_.finish();
  }

 private:
  static constexpr std::uint8_t inner_pad_byte = 0x36;
  static constexpr std::uint8_t outer_pad_byte = 0x5c;

  sha256 inner_;  // has absorbed K0 ^ ipad, then the message
  sha256 outer_;  // has absorbed K0 ^ opad; takes the inner digest in finish()
  bool finished_ = false;
};

static_assert(std::is_trivially_copyable_v<hmac_sha256_state>);

/// HMAC-SHA256 of `message` under `key` (RFC 2104). Wait-free, does not allocate,
/// O(key.size() + message.size()).
[[nodiscard]] constexpr hmac_sha256_mac hmac_sha256(
    std::span<const std::uint8_t> key, std::span<const std::uint8_t> message) noexcept {
  hmac_sha256_state state(key);
  state.update(message);
  return state.finish();
}

/// Whether `a` and `b` hold the same bytes, taking a time that depends only on their lengths,
/// never on where they differ. Use it to compare a received MAC with the computed one (to check
/// a truncated MAC, pass the matching prefix of the computed one). Lengths are not secret:
/// spans of different lengths compare unequal at once. Wait-free, does not allocate, O(size).
[[nodiscard]] inline bool constant_time_equal(std::span<const std::uint8_t> a,
                                              std::span<const std::uint8_t> b) noexcept {
  if (a.size() != b.size()) {
    return false;
  }
  // OR together the differences of every byte pair instead of returning at the first one.
  // The accumulator is volatile so that the optimizer cannot turn the loop back into an early
  // exit (it could otherwise stop once every bit of the accumulator is set).
  volatile std::uint8_t difference = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference = static_cast<std::uint8_t>(difference | (a[i] ^ b[i]));
  }
  return difference == 0;
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
