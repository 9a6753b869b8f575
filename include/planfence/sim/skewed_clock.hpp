// planfence/sim/skewed_clock.hpp: one enactor's view of the simulator's virtual time.
//
// What it is: a planfence clock (clock.hpp) that reads the simulator's manual_clock through an
// offset, a rate and optional stalls. The lease authority keeps the true (manual) time; each
// enactor judges its own lease with its skewed clock, exactly as a real enactor on another host
// judges a lease with a clock that drifts, runs fast or slow, or stands still while its process
// is paused. That is the situation fencing exists for (S2): an enactor that *believes* its lease
// is still valid must still be refused by the store.
//
//     planfence::manual_clock world{std::chrono::seconds{1000}};
//     planfence::sim::skewed_clock az1{world, -std::chrono::milliseconds{300}, 1'050};  // 5 % fast
//     az1.freeze();  ... world.advance(30s) ...  az1.thaw();   // az1 missed those 30 s
//
// Monotonic by construction: the rate is positive and a stall only stops time, never rewinds it.
// Not thread-safe (the simulator is single-threaded per run). Cost: a load, a multiply, a divide.
#pragma once

#include <chrono>
#include <cstdint>

#include "../clock.hpp"
#include "../config.hpp"
#include "checked_build.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

class skewed_clock {
 public:
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<skewed_clock, duration>;

  /// Rate in parts per thousand of real time (1'000: no drift). The offset must leave the local
  /// time positive.
  skewed_clock(const manual_clock& world, duration offset = duration{0}, std::uint32_t rate_per_mille = 1'000) noexcept
      : world_(&world), rate_per_mille_(rate_per_mille) {
    PLANFENCE_ASSERT(rate_per_mille > 0);
    anchor_world_ns_ = world_now_ns();
    anchor_local_ns_ = anchor_world_ns_ + offset.count();
    PLANFENCE_ASSERT(anchor_local_ns_ > 0);
  }

  [[nodiscard]] time_point now() const noexcept { return time_point{duration{local_ns()}}; }

  /// Stops this clock where it is (a paused process whose clock does not catch up).
  void freeze() noexcept {
    if (frozen_) return;
    anchor_local_ns_ = local_ns();
    anchor_world_ns_ = world_now_ns();
    frozen_ = true;
  }
  /// Lets it run again from where it stopped.
  void thaw() noexcept {
    if (!frozen_) return;
    anchor_world_ns_ = world_now_ns();
    frozen_ = false;
  }
  [[nodiscard]] bool frozen() const noexcept { return frozen_; }
  [[nodiscard]] std::uint32_t rate_per_mille() const noexcept { return rate_per_mille_; }
  /// Local minus world time, now (negative: this clock is behind).
  [[nodiscard]] duration skew() const noexcept { return duration{local_ns() - world_now_ns()}; }

 private:
  [[nodiscard]] std::int64_t world_now_ns() const noexcept { return world_->now().time_since_epoch().count(); }
  [[nodiscard]] std::int64_t local_ns() const noexcept {
    if (frozen_) return anchor_local_ns_;
    const std::int64_t elapsed = world_now_ns() - anchor_world_ns_;
    PLANFENCE_ASSERT(elapsed >= 0);
    // Virtual runs last minutes at most: elapsed * rate stays far below 2^63.
    return anchor_local_ns_ + elapsed / 1'000 * static_cast<std::int64_t>(rate_per_mille_) +
           elapsed % 1'000 * static_cast<std::int64_t>(rate_per_mille_) / 1'000;
  }

  const manual_clock* world_;
  std::uint32_t rate_per_mille_;
  std::int64_t anchor_world_ns_ = 0;
  std::int64_t anchor_local_ns_ = 0;
  bool frozen_ = false;
};

static_assert(clock<skewed_clock>);

}  // namespace sim
}  // namespace v1
}  // namespace planfence
