// planfence/sim/random.hpp: the simulator's portable pseudo-random numbers.
//
// What it is: splitmix64 (to expand one 64-bit seed) and xoshiro256** (Blackman and Vigna, 2018)
// for every random decision the simulator makes, with integer-only helpers for ranges and
// probabilities. Nothing here touches std::uniform_int_distribution or any other standard
// distribution: their output is implementation-defined, and a seed must give the same run with
// libstdc++, libc++ and MSVC alike. Integer arithmetic with fixed widths gives exactly that.
//
//     planfence::sim::xoshiro256 rng{seed};
//     if (rng.chance(per_million{2'500})) { ... }      // 0.25 %
//     auto pause_ms = rng.between(10, 5'000);           // inclusive
//
// Cost: a few nanoseconds per draw, no allocation. Not for cryptography.
#pragma once

#include <cstdint>

#include "../config.hpp"
#include "checked_build.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

/// A probability in parts per million (1'000'000 = always).
struct per_million {
  std::uint32_t value = 0;
};

/// splitmix64 (Steele, Lea and Flood, 2014): turns any 64-bit seed, including 0, into a stream
/// of well-mixed words. Used to seed xoshiro256** and to derive independent streams.
class splitmix64 {
 public:
  constexpr explicit splitmix64(std::uint64_t seed) noexcept : state_(seed) {}
  constexpr std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

/// xoshiro256** 1.0: the simulator's generator.
class xoshiro256 {
 public:
  constexpr explicit xoshiro256(std::uint64_t seed) noexcept {
    splitmix64 expand{seed};
    for (auto& word : state_) word = expand.next();
  }

  constexpr std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform in [0, bound), bound > 0, without modulo bias (rejection of the short last block).
  constexpr std::uint64_t below(std::uint64_t bound) noexcept {
    PLANFENCE_ASSERT(bound > 0);
    const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    for (;;) {
      const std::uint64_t r = next();
      if (r >= threshold) return r % bound;
    }
  }

  /// Uniform in [low, high], inclusive.
  constexpr std::uint64_t between(std::uint64_t low, std::uint64_t high) noexcept {
    PLANFENCE_ASSERT(low <= high);
    if (high - low == ~std::uint64_t{0}) return next();
    return low + below(high - low + 1);
  }

  /// True with probability p.
  constexpr bool chance(per_million p) noexcept {
    PLANFENCE_ASSERT(p.value <= 1'000'000);
    return below(1'000'000) < p.value;
  }

  /// An independent generator for a named sub-stream (e.g. the store's fault decisions), so
  /// that adding draws in one part of the simulation does not shift every other part.
  [[nodiscard]] constexpr xoshiro256 fork(std::uint64_t stream) noexcept {
    return xoshiro256{next() ^ splitmix64{stream}.next()};
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t state_[4]{};
};

/// FNV-1a, 64 bits: the simulator's trace hash (portable, byte-order independent because it is
/// fed explicit little-endian bytes).
class trace_hasher {
 public:
  constexpr void add_byte(std::uint8_t byte) noexcept {
    hash_ ^= byte;
    hash_ *= 1099511628211ULL;
  }
  constexpr void add(std::uint64_t value) noexcept {
    for (int i = 0; i < 8; ++i) add_byte(static_cast<std::uint8_t>(value >> (8 * i)));
  }
  template <class Bytes>
  constexpr void add_text(const Bytes& text) noexcept {
    add(text.size());
    for (char c : text) add_byte(static_cast<std::uint8_t>(c));
  }
  [[nodiscard]] constexpr std::uint64_t value() const noexcept { return hash_; }

 private:
  std::uint64_t hash_ = 14695981039346656037ULL;
};

}  // namespace sim
}  // namespace v1
}  // namespace planfence
