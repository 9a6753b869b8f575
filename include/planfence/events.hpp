// planfence/events.hpp: what enactors decide, as events and counters.
//
// Every decision an enactor makes (a plan applied to an endpoint, a stale or fenced commit
// refused, a conflict, an S4 refusal, a plan collected or protected, a lease gained or lost) is an
// `event` delivered to a sink the embedder chooses, and counted in `enactor_counters`.
//
//     struct log_sink {
//       void operator()(const planfence::event& e) const {
//         std::printf("%s gen=%llu %.*s\n", planfence::to_string(e.kind).data(), ...);
//       }
//     };
//
// A sink is called on the enactor's own thread, synchronously, on the apply path: it must not
// block for long, and the enactor's "never allocates" promise holds only if the sink keeps it.
// Event fields that are views (`endpoint`, `holder`, `detail`) are valid only during the call.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ids.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

enum class event_kind : std::uint8_t {
  lease_gained,       ///< acquired a lease; `fence` is its token
  lease_lost,         ///< lapsed, superseded or fenced out; the enactor stops writing
  plan_pinned,        ///< started applying generation `gen`
  applied,            ///< committed `gen` to `endpoint`
  stale,              ///< `endpoint` already serves `gen` or newer: nothing to do (S1)
  fenced,             ///< the store refused `fence` (S2)
  conflict,           ///< the stamp moved; read again (or gave up after the bound)
  refused_blast_radius,  ///< S4 refused a commit (endpoint set) or a plan (endpoint empty)
  unknown_endpoint,   ///< the store has no such endpoint
  store_error,        ///< the store was unavailable; retried with backoff
  plan_applied,       ///< every endpoint of `gen` serves `gen` or newer
  collected,          ///< plan `gen` was collected
  protected_from_collection,  ///< plan `gen` was kept: live, pinned or newest (S3)
  plan_invalid,       ///< plan `gen` failed its digest check (S7) and was not applied
};
inline constexpr std::size_t event_kind_count = 14;

[[nodiscard]] constexpr std::string_view to_string(event_kind kind) noexcept {
  switch (kind) {
    case event_kind::lease_gained: return "lease_gained";
    case event_kind::lease_lost: return "lease_lost";
    case event_kind::plan_pinned: return "plan_pinned";
    case event_kind::applied: return "applied";
    case event_kind::stale: return "stale";
    case event_kind::fenced: return "fenced";
    case event_kind::conflict: return "conflict";
    case event_kind::refused_blast_radius: return "refused_blast_radius";
    case event_kind::unknown_endpoint: return "unknown_endpoint";
    case event_kind::store_error: return "store_error";
    case event_kind::plan_applied: return "plan_applied";
    case event_kind::collected: return "collected";
    case event_kind::protected_from_collection: return "protected_from_collection";
    case event_kind::plan_invalid: return "plan_invalid";
  }
  return "?";
}

/// One decision. `time` is the enactor clock's time since its epoch.
struct event {
  event_kind kind{};
  generation gen{};
  fence_token fence{};
  std::string_view endpoint{};
  std::chrono::nanoseconds time{};
  std::string_view holder{};  ///< the enactor's name
  /// What the store said, in its own words (file and errno, DNS RCODE, etcd's error), for
  /// store_error, unknown_endpoint and fenced when the store gave a reason; empty otherwise.
  std::string_view detail{};
};

/// Anything callable with a const event&.
template <class S>
concept event_sink = std::invocable<S&, const event&>;

/// The default sink: drops events (the counters still count them).
struct null_sink {
  void operator()(const event&) const noexcept {}
};

/// Per-kind event counts. Relaxed atomics: monotonic counters read for monitoring only.
class enactor_counters {
 public:
  void count(event_kind kind) noexcept {
    counts_[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t operator[](event_kind kind) const noexcept {
    return counts_[static_cast<std::size_t>(kind)].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<std::uint64_t>, event_kind_count> counts_{};
};

static_assert(static_cast<std::size_t>(event_kind::plan_invalid) + 1 == event_kind_count);
static_assert(event_sink<null_sink>);

}  // namespace v1
}  // namespace planfence
