// planfence/generation.hpp: issuing generations, and mapping them to DNS SOA serials.
//
// What it is: `sequencer` hands out plan generations in strictly increasing order, from any
// number of threads, and can resume from a persisted high-water mark after a restart so that a
// restarted planner never reissues a generation (which S5 would then refuse). `soa_serial` maps a
// 64-bit generation to the 32-bit SOA serial of RFC 1982, and `serial_compare` compares serials
// under RFC 1982 serial-number arithmetic.
//
//     planfence::sequencer seq{planfence::generation{41}};   // resume: 41 was the last issued
//     auto next = seq.next();                                  // generation 42
//     auto serial = planfence::soa_serial(*next, 2025102000);  // RFC 1982 serial for the zone
//
// When not to use it: across processes or hosts a local counter cannot be monotonic; use a
// sequencer backed by a consensus store (the etcd sequencer) instead.
//
// Cost: `next()` is one relaxed fetch-add when nothing is near the limit, about the cost of a CAS
// (docs/benchmarks.md). Progress: wait-free. Never allocates.
//
// Limits: generations are capped at `generation_max` (2^40 - 1), the width the memory store packs
// into its 64-bit stamp word; `next()` refuses with errc::capacity_exceeded instead of wrapping.
// RFC 1982 serials are only ordered while two compared serials are less than 2^31 apart, so a
// zone must never see generations more than 2^31 - 1 apart between two SOA reads.
#pragma once

#include <atomic>
#include <cstdint>

#include "config.hpp"
#include "ids.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

/// Number of bits a generation may use. The memory store packs a generation and a fence token
/// into one 64-bit word (docs/benchmarks.md): 40 bits of generation, 24 of fence.
inline constexpr unsigned generation_bits = 40;
/// The largest generation any component accepts.
inline constexpr generation generation_max{(std::uint64_t{1} << generation_bits) - 1};
/// "Nothing applied yet": the generation of an endpoint that has never been written.
inline constexpr generation generation_none{0};

/// Issues generations in strictly increasing order.
///
/// Thread safety: every member may be called concurrently. Progress: wait-free.
class sequencer {
 public:
  /// Starts after `last_issued` (generation_none for a fresh system): the first `next()` returns
  /// last_issued + 1. Pass the persisted high-water mark when resuming.
  explicit sequencer(generation last_issued = generation_none) noexcept
      : last_(last_issued.value()) {
    PLANFENCE_ASSERT(last_issued <= generation_max);
  }

  /// The next generation, or errc::capacity_exceeded once generation_max was issued (nothing
  /// wraps, and the sequencer stays exhausted). Wait-free, never allocates.
  [[nodiscard]] result<generation> next() noexcept {
    // (1) relaxed: the counter only needs atomicity; publication of a plan carrying the
    // generation is ordered by the registry's own release (registry.hpp (R1)).
    const std::uint64_t issued = last_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (issued > generation_max.value()) {
      // Undo is not needed: every later call also lands beyond the limit.
      return fail(errc::capacity_exceeded, "generation space (2^40 - 1) exhausted");
    }
    return generation{issued};
  }

  /// The last generation handed out (the high-water mark to persist).
  [[nodiscard]] generation last_issued() const noexcept {
    const std::uint64_t last = last_.load(std::memory_order_relaxed);
    return generation{last > generation_max.value() ? generation_max.value() : last};
  }

  /// Moves the sequencer past `seen` if it is behind (a planner learning of a generation another
  /// source published). Never moves backwards. Lock-free.
  void observe(generation seen) noexcept {
    PLANFENCE_ASSERT(seen <= generation_max);
    std::uint64_t current = last_.load(std::memory_order_relaxed);
    while (current < seen.value() &&
           !last_.compare_exchange_weak(current, seen.value(), std::memory_order_relaxed)) {
    }
  }

 private:
  std::atomic<std::uint64_t> last_;
};

/// A 32-bit DNS SOA serial (RFC 1035 section 3.3.13), compared under RFC 1982 arithmetic.
struct soa_serial_number {
  std::uint32_t value = 0;
  friend constexpr bool operator==(soa_serial_number, soa_serial_number) noexcept = default;
};

/// The SOA serial for generation `gen` in a zone whose serials start at `base` (the serial the
/// zone had when planfence took it over): base + gen modulo 2^32 (RFC 1982 section 3.1 addition,
/// valid for increments below 2^31 between two observations of the zone).
[[nodiscard]] constexpr soa_serial_number soa_serial(generation gen,
                                                     std::uint32_t base = 0) noexcept {
  return soa_serial_number{static_cast<std::uint32_t>(base + gen.value())};
}

/// RFC 1982 section 3.2 comparison of serials. Returns -1 when a < b, 0 when equal, 1 when a > b,
/// and 2 when the comparison is undefined (the two are exactly 2^31 apart).
[[nodiscard]] constexpr int serial_compare(soa_serial_number a, soa_serial_number b) noexcept {
  constexpr std::uint32_t half = std::uint32_t{1} << 31;
  if (a.value == b.value) return 0;
  const std::uint32_t forward = b.value - a.value;  // distance from a up to b, modulo 2^32
  if (forward == half) return 2;
  return forward < half ? -1 : 1;
}

/// RFC 1982 addition: `s + n` for 0 <= n <= 2^31 - 1.
[[nodiscard]] constexpr soa_serial_number serial_add(soa_serial_number s, std::uint32_t n) noexcept {
  PLANFENCE_ASSERT(n < (std::uint32_t{1} << 31));
  return soa_serial_number{static_cast<std::uint32_t>(s.value + n)};
}

}  // namespace v1
}  // namespace planfence
