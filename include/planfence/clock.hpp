// planfence/clock.hpp: the clock concept, the default steady clock and a manual clock.
//
// Leases expire and enactors back off against a clock. Production code uses the monotonic
// `steady_clock`; tests and the deterministic simulator use `manual_clock`, whose time moves only
// when told to, so that a lease expiry happens at exactly the step a test chooses.
//
//     planfence::manual_clock clock;
//     planfence::local_lease_authority authority{clock};
//     clock.advance(std::chrono::seconds{30});   // every lease with a shorter TTL has now lapsed
//
// The clock is a template parameter of everything that reads time, never a global.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>

#include "config.hpp"

namespace planfence {
inline namespace v1 {

/// A clock planfence can read: `c.now()` returns a `time_point` whose `duration` can be
/// converted to nanoseconds. Time must never go backwards for one clock object (a monotonic
/// clock); it need not be related to wall-clock time. See docs/concepts.md.
template <class C>
concept clock = requires(const C& c) {
  typename C::time_point;
  typename C::duration;
  { c.now() } -> std::convertible_to<typename C::time_point>;
  std::chrono::duration_cast<std::chrono::nanoseconds>(c.now().time_since_epoch());
};

/// std::chrono::steady_clock as an object (the default clock). Reading it takes a vDSO call,
/// about 20 ns; it never allocates or blocks.
struct steady_clock {
  using duration = std::chrono::steady_clock::duration;
  using time_point = std::chrono::steady_clock::time_point;
  [[nodiscard]] time_point now() const noexcept { return std::chrono::steady_clock::now(); }
};

/// A clock that moves only when `advance` or `set` is called. Thread-safe: time is one atomic
/// word, read with acquire and written with release so that whatever a thread did before moving
/// time is visible to any thread that sees the new time (C1).
class manual_clock {
 public:
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<manual_clock, duration>;

  explicit manual_clock(duration start = duration{1'000'000'000}) noexcept
      : now_ns_(start.count()) {}

  /// (C1) acquire: pairs with the release in advance/set.
  [[nodiscard]] time_point now() const noexcept {
    return time_point{duration{now_ns_.load(std::memory_order_acquire)}};
  }
  /// Moves time forward by `by` (never backwards).
  void advance(duration by) noexcept {
    PLANFENCE_ASSERT(by.count() >= 0);
    now_ns_.fetch_add(by.count(), std::memory_order_release);  // (C1) release
  }
  /// Sets time to `to`, which must not be earlier than now.
  void set(time_point to) noexcept {
    PLANFENCE_ASSERT(to >= now());
    now_ns_.store(to.time_since_epoch().count(), std::memory_order_release);  // (C1) release
  }

 private:
  std::atomic<std::int64_t> now_ns_;
};

static_assert(clock<steady_clock>);
static_assert(clock<manual_clock>);

}  // namespace v1
}  // namespace planfence
