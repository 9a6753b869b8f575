// planfence/sim/lease_client.hpp: one enactor's view of a shared lease authority, on its own clock.
//
// What it is: an adapter that satisfies the lease_authority concept (lease.hpp) by forwarding to a
// shared authority, and that re-expresses every granted or renewed lease's expiry on the
// enactor's local clock: expires = (local time just before the request) + ttl. This is what any
// client of a lease service on another host has to do (an etcd client gets a TTL, not an instant
// on the server's clock), and it is what the simulator needs to make clock skew meaningful: the
// enactor (enactor.hpp) compares `lease.expires` with ITS clock, so an expiry on the authority's
// clock would mix two clock domains.
//
// With it, an offset between clocks is harmless (as it is in reality), and what remains is what
// fencing exists for: a clock that runs slow, or stands still while the process is paused, makes
// the enactor believe in a lease that has already lapsed, and only the store's fence check can
// stop its writes (S2).
//
//     planfence::local_lease_authority<planfence::manual_clock> shared{world_clock};
//     planfence::sim::lease_client az1_authority{shared, az1_clock};
//     planfence::enactor e{store, az1_authority, registry, az1_clock, config};
//
// check, release and renew identify the grant by its fence token, which the adapter leaves as is.
// Cost: one extra clock read per call. Not thread-safe beyond what the shared authority offers.
#pragma once

#include <chrono>

#include "../clock.hpp"
#include "../config.hpp"
#include "../lease.hpp"
#include "../result.hpp"
#include "checked_build.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

template <lease_authority Authority, clock LocalClock>
class lease_client {
 public:
  /// Both must outlive the client.
  lease_client(Authority& shared, const LocalClock& local) noexcept : shared_(&shared), local_(&local) {}

  [[nodiscard]] result<lease> acquire(std::chrono::milliseconds ttl) noexcept {
    const auto asked = local_now();
    auto granted = shared_->acquire(ttl);
    if (granted) granted->expires = asked + ttl;
    return granted;
  }
  [[nodiscard]] result<lease> renew(const lease& held, std::chrono::milliseconds ttl) noexcept {
    const auto asked = local_now();
    auto renewed = shared_->renew(held, ttl);
    if (renewed) renewed->expires = asked + ttl;
    return renewed;
  }
  [[nodiscard]] result<void> release(const lease& held) noexcept { return shared_->release(held); }
  [[nodiscard]] result<void> check(const lease& held) const noexcept { return shared_->check(held); }

 private:
  [[nodiscard]] std::chrono::nanoseconds local_now() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(local_->now().time_since_epoch());
  }
  Authority* shared_;
  const LocalClock* local_;
};

}  // namespace sim
}  // namespace v1
}  // namespace planfence
