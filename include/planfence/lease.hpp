// planfence/lease.hpp: fenced leases and a local, lock-free lease authority.
//
// What it is: a lease gives one enactor the right to write for a while. Every grant carries a
// fence token larger than every earlier grant's, and stores remember the largest token they have
// accepted, so a writer whose lease lapsed and was granted to someone else is refused by the
// store however late it wakes up (S2). The lease alone is never trusted: clocks drift and
// processes pause. The token is what makes a lapsed holder harmless.
//
//     planfence::manual_clock clock;
//     planfence::local_lease_authority<planfence::manual_clock> authority{clock};
//     auto lease = authority.acquire(std::chrono::seconds{10});   // fence 1
//     ...
//     if (auto ok = authority.check(*lease); !ok) { /* lapsed or superseded: stop writing */ }
//
// When not to use it: `local_lease_authority` coordinates threads of one process. Enactors on
// several hosts need a lease from a consensus system (the etcd lease authority).
//
// Cost: every operation is one acquire load and, when it changes state, one CAS (about 6 ns
// uncontended, docs/benchmarks.md). Progress: lock-free (a CAS loop that retries only when another
// thread changed the lease). Never allocates, never blocks.
//
// Limits: the whole lease is one 64-bit word: 24 bits of fence token (16,777,215 grants; renewals
// do not consume tokens) and 40 bits of expiry in milliseconds since the authority was created
// (34 years). `acquire` refuses with errc::capacity_exceeded rather than wrap the token.
// Expiry has millisecond granularity.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>

#include "clock.hpp"
#include "config.hpp"
#include "ids.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

/// Number of bits of a fence token in packed words (the lease word and the memory store stamp).
inline constexpr unsigned fence_bits = 24;
/// The largest fence token any component issues or accepts.
inline constexpr fence_token fence_max{(std::uint64_t{1} << fence_bits) - 1};
static_assert(fence_bits + 40 == 64, "a fence token and a 40-bit field share one 64-bit word");

/// One grant of the right to write. `expires` is in the authority's clock, as time since that
/// clock's epoch; the holder must stop writing before then and renew to go on.
struct lease {
  lease_id id{};
  fence_token fence{};
  std::chrono::nanoseconds expires{};
  friend bool operator==(const lease&, const lease&) noexcept = default;
};

/// What every lease authority provides (docs/concepts.md gives the meaning):
///  - `acquire(ttl)`: a new grant with a fence token larger than every earlier grant, or
///    errc::lease_held while another holder's grant has not expired;
///  - `renew(lease, ttl)`: extends a grant that is still current (same token, not expired), or
///    tells the holder it lapsed (errc::lease_lapsed) or was superseded (errc::lease_superseded);
///  - `release(lease)`: ends a current grant early so that another holder can acquire at once;
///  - `check(lease)`: whether the grant is still current, without changing anything.
template <class A>
concept lease_authority = requires(A& a, const lease& l, std::chrono::milliseconds ttl) {
  { a.acquire(ttl) } -> std::same_as<result<lease>>;
  { a.renew(l, ttl) } -> std::same_as<result<lease>>;
  { a.release(l) } -> std::same_as<result<void>>;
  { a.check(l) } -> std::same_as<result<void>>;
};

/// A lock-free lease authority for the threads of one process.
///
/// Thread safety: every member may be called concurrently. Progress: lock-free.
template <clock Clock = steady_clock>
class local_lease_authority {
 public:
  /// `clock` must outlive the authority.
  explicit local_lease_authority(const Clock& clock) noexcept
      : clock_(&clock), epoch_(clock.now()) {}

  /// Grants the lease when it is free or expired. Lock-free, never allocates.
  [[nodiscard]] result<lease> acquire(std::chrono::milliseconds ttl) noexcept {
    PLANFENCE_ASSERT(ttl.count() > 0);
    const std::uint64_t now = now_ms();
    // (L1) acquire: pairs with the release half of the CAS (L2) of whoever granted, renewed or
    // released last, so this thread sees a consistent (token, expiry) pair.
    std::uint64_t word = word_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t token = token_of(word);
      if (expiry_of(word) > now) return fail(errc::lease_held);
      if (token >= fence_max.value()) {
        return fail(errc::capacity_exceeded, "fence token space (2^24 - 1 grants) exhausted");
      }
      const std::uint64_t expiry = expiry_at(now, ttl);
      const std::uint64_t next = pack(token + 1, expiry);
      // (L2) acq_rel: release publishes the grant; acquire on failure reloads (L1)'s pairing.
      if (word_.compare_exchange_weak(word, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return to_lease(token + 1, expiry);
      }
    }
  }

  /// Extends a current grant to now + ttl. Lock-free, never allocates.
  [[nodiscard]] result<lease> renew(const lease& held, std::chrono::milliseconds ttl) noexcept {
    PLANFENCE_ASSERT(ttl.count() > 0);
    const std::uint64_t now = now_ms();
    std::uint64_t word = word_.load(std::memory_order_acquire);  // (L1)
    for (;;) {
      if (auto current = classify(word, held, now); !current) return unexpected_error(current.error());
      const std::uint64_t expiry = expiry_at(now, ttl);
      if (word_.compare_exchange_weak(word, pack(held.fence.value(), expiry),  // (L2)
                                      std::memory_order_acq_rel, std::memory_order_acquire)) {
        return to_lease(held.fence.value(), expiry);
      }
    }
  }

  /// Ends a current grant now. Lock-free, never allocates.
  [[nodiscard]] result<void> release(const lease& held) noexcept {
    const std::uint64_t now = now_ms();
    std::uint64_t word = word_.load(std::memory_order_acquire);  // (L1)
    for (;;) {
      if (auto current = classify(word, held, now); !current) return current;
      if (word_.compare_exchange_weak(word, pack(held.fence.value(), 0),  // (L2)
                                      std::memory_order_acq_rel, std::memory_order_acquire)) {
        return ok();
      }
    }
  }

  /// Whether `held` is still the current, unexpired grant. Wait-free: one acquire load (L1).
  [[nodiscard]] result<void> check(const lease& held) const noexcept {
    return classify(word_.load(std::memory_order_acquire), held, now_ms());
  }

  /// The token of the latest grant (0 before the first).
  [[nodiscard]] fence_token current_fence() const noexcept {
    return fence_token{token_of(word_.load(std::memory_order_acquire))};
  }

 private:
  static constexpr unsigned expiry_bits = 64 - fence_bits;
  static constexpr std::uint64_t expiry_mask = (std::uint64_t{1} << expiry_bits) - 1;

  static constexpr std::uint64_t pack(std::uint64_t token, std::uint64_t expiry_ms) noexcept {
    PLANFENCE_ASSERT(token <= fence_max.value());
    PLANFENCE_ASSERT(expiry_ms <= expiry_mask);
    return (token << expiry_bits) | expiry_ms;
  }
  static constexpr std::uint64_t token_of(std::uint64_t word) noexcept { return word >> expiry_bits; }
  static constexpr std::uint64_t expiry_of(std::uint64_t word) noexcept { return word & expiry_mask; }

  [[nodiscard]] std::uint64_t now_ms() const noexcept {
    const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(clock_->now() - epoch_);
    PLANFENCE_ASSERT(since.count() >= 0);  // the clock is monotonic
    // Expiry 0 means "released"; time starts at 1 ms so that a fresh grant is never mistaken
    // for a released one.
    return static_cast<std::uint64_t>(since.count()) + 1;
  }
  static std::uint64_t expiry_at(std::uint64_t now, std::chrono::milliseconds ttl) noexcept {
    const std::uint64_t expiry = now + static_cast<std::uint64_t>(ttl.count());
    PLANFENCE_ASSERT(expiry <= expiry_mask);  // 34 years of uptime
    return expiry;
  }
  [[nodiscard]] lease to_lease(std::uint64_t token, std::uint64_t expiry) const noexcept {
    const auto expires = std::chrono::duration_cast<std::chrono::nanoseconds>(
        epoch_.time_since_epoch() + std::chrono::milliseconds{expiry - 1});
    return lease{lease_id{token}, fence_token{token}, expires};
  }
  static result<void> classify(std::uint64_t word, const lease& held, std::uint64_t now) noexcept {
    PLANFENCE_ASSERT(held.fence.value() != 0);
    if (token_of(word) != held.fence.value()) return fail(errc::lease_superseded);
    if (expiry_of(word) <= now) return fail(errc::lease_lapsed);
    return ok();
  }

  const Clock* clock_;
  typename Clock::time_point epoch_;
  std::atomic<std::uint64_t> word_{0};
};

static_assert(lease_authority<local_lease_authority<steady_clock>>);
static_assert(lease_authority<local_lease_authority<manual_clock>>);

}  // namespace v1
}  // namespace planfence
