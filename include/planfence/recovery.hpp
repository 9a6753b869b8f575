// planfence/recovery.hpp: the manual recovery operations: drift, apply, operator override.
//
// What it is: the library half of planfence-ctl (examples/planfence_ctl.cpp, docs/runbook.md).
//  - `diff_store(store, plan)`: what a store serves that a plan does not, and the reverse (drift).
//  - `apply_plan(store, history, gen, fence)`: applies one retained generation through the fixed
//    enactor itself (not a copy of its rules): the store's conditional commit (S1), the fence
//    raised before the first commit (S2), the endpoint guard (S4: an endpoint is never emptied
//    unless the plan says intent=empty), the digest check (S7). It reports every endpoint.
//  - operator fences: an operator takes control by raising the store's fence to an *operator
//    fence*, a multiple of `operator_fence_stride` above everything automation was granted, so
//    every automation commit is refused from then on (S2), however late it wakes up; it hands
//    control back by raising the fence once more, to the operator fence + 1.
//  - `fence_floor_authority`: how automation gets back in. It wraps automation's lease authority
//    and, at each acquire, reads the store's fence floor: while the floor is an operator fence it
//    refuses (errc::lease_held, "operator hold"); otherwise it issues tokens above the floor (and
//    never a multiple of the stride, which would look like a hold). A plain authority whose tokens
//    are below the operator fence stays fenced out until it climbs past it; embed automation with
//    fence_floor_authority so that `planfence-ctl release` lets it in at once.
//
//     auto report = planfence::apply_plan(store, *history, planfence::generation{10}, fence).value();
//     planfence::fence_floor_authority automation{inner, [&] { return planfence::store_fence_floor(store); }};
//
// The store's fence floor is read as the largest fence in any endpoint's stamp (raise_fence
// raises every endpoint's stamp, docs/concepts.md), so the hold is recorded in the store itself:
// no side file, nothing that can disagree with what the store enforces.
//
// When not to use it: on the apply path of automation (use the enactor). These functions are
// for an operator and for drills.
//
// Cost: each is O(endpoints) store calls, blocking, and allocates. store_fence_floor reads every
// endpoint's stamp: fine for an acquire every lease TTL, not per commit.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "config.hpp"
#include "enactor.hpp"
#include "events.hpp"
#include "history.hpp"
#include "ids.hpp"
#include "lease.hpp"
#include "plan.hpp"
#include "record.hpp"
#include "registry.hpp"
#include "result.hpp"
#include "store.hpp"

namespace planfence {
inline namespace v1 {

/// Operator fences are the multiples of this; automation's tokens (through
/// fence_floor_authority) never are. 16383 operator takeovers fit in the 24-bit token space.
inline constexpr std::uint64_t operator_fence_stride = 1024;
static_assert(operator_fence_stride < fence_max.value() / 1024, "room for many operator takeovers");

/// The store's fence floor: the larger of the floor the store keeps itself (a `fence_floor()`
/// member, as the zone-file store and any_store have) and the largest fence in any endpoint's
/// stamp (0 when none). Blocking, allocates.
template <inspectable_store Store>
[[nodiscard]] result<fence_token> store_fence_floor(const Store& store) {
  fence_token floor{};
  if constexpr (requires { { store.fence_floor() } -> std::same_as<result<fence_token>>; }) {
    auto own = store.fence_floor();
    if (own) floor = *own;
    else if (own.error().code != errc::not_found) return unexpected_error(std::move(own).error());
  }
  auto names = store.endpoint_names();
  if (!names) return unexpected_error(std::move(names).error());
  for (const std::string& name : *names) {
    auto handle = store.resolve(name);
    if (!handle) return unexpected_error(std::move(handle).error());
    auto seen = store.read_stamp(*handle);
    if (!seen) return unexpected_error(std::move(seen).error());
    floor = std::max(floor, seen->fence);
  }
  return floor;
}

/// Whether a fence floor is an operator's hold (automation must stay out).
[[nodiscard]] constexpr bool is_operator_fence(fence_token floor) noexcept {
  return floor.value() != 0 && floor.value() % operator_fence_stride == 0;
}

/// The operator fence that supersedes `floor`: the next multiple of the stride above it.
/// Errors: errc::capacity_exceeded when the token space is used up.
[[nodiscard]] inline result<fence_token> next_operator_fence(fence_token floor) {
  const std::uint64_t next = (floor.value() / operator_fence_stride + 1) * operator_fence_stride;
  if (next > fence_max.value()) return fail(errc::capacity_exceeded, "no operator fence left below 2^24");
  return fence_token{next};
}

// --- drift -----------------------------------------------------------------------------------

/// One endpoint on which a store and a plan disagree.
struct endpoint_drift {
  std::string name;
  stamp served_stamp{};                  ///< the store's stamp (gen 0: never written, or unknown)
  bool in_plan = false;                  ///< the plan names the endpoint
  bool in_store = false;                 ///< the store holds records or a stamp for it
  std::vector<record> missing{};         ///< in the plan, not served
  std::vector<record> extra{};           ///< served, not in the plan
};

/// What diff_store found.
struct drift_report {
  generation plan_gen{};
  std::size_t endpoints_agreeing = 0;
  std::vector<endpoint_drift> drifted;  ///< sorted by name
  /// Names the store serves that planfence never wrote (no stamp) and the plan does not name:
  /// a zone's name servers and glue, say. Listed, not counted as drift.
  std::vector<std::string> unmanaged;
  [[nodiscard]] bool agrees() const noexcept { return drifted.empty(); }
};

/// Whether a served record is the plan's record. Weights are compared only when the store reports
/// one: a zone file, like a plain DNS answer, has no place for a weight.
[[nodiscard]] inline bool same_record(const record& planned, const record& served) noexcept {
  if (planned.type != served.type || planned.ttl != served.ttl || planned.rdata != served.rdata) return false;
  return !served.weight || served.weight == planned.weight;
}

/// Compares every endpoint the plan names or the store holds a stamp for (names the store serves
/// without a stamp and the plan does not name are listed as unmanaged). Errors: those of the store.
/// Blocking, allocates; O(endpoints x records per endpoint).
template <inspectable_store Store>
[[nodiscard]] result<drift_report> diff_store(const Store& store, const plan& p) {
  drift_report report;
  report.plan_gen = p.gen();
  auto names = store.endpoint_names();
  if (!names) return unexpected_error(std::move(names).error());
  std::vector<std::string> all = *names;
  for (const auto& entry : p.endpoints()) all.push_back(entry->name);
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  for (const std::string& name : all) {
    endpoint_drift drift;
    drift.name = name;
    drift.in_store = std::binary_search(names->begin(), names->end(), name) ||
                     std::find(names->begin(), names->end(), name) != names->end();
    const endpoint_entry* planned = p.find(name);
    drift.in_plan = planned != nullptr;
    std::vector<record> served;
    if (auto handle = store.resolve(name)) {
      auto seen = store.read_stamp(*handle);
      if (!seen) return unexpected_error(std::move(seen).error());
      drift.served_stamp = *seen;
      auto records = store.served(*handle);
      if (!records) return unexpected_error(std::move(records).error());
      served = std::move(*records);
    } else if (handle.error().code != errc::unknown_endpoint) {
      return unexpected_error(std::move(handle).error());
    }
    std::vector<bool> matched(served.size(), false);
    if (planned != nullptr) {
      for (const record& r : planned->records.records()) {
        bool found = false;
        for (std::size_t i = 0; i < served.size() && !found; ++i) {
          if (!matched[i] && same_record(r, served[i])) matched[i] = found = true;
        }
        if (!found) drift.missing.push_back(r);
      }
    }
    for (std::size_t i = 0; i < served.size(); ++i) {
      if (!matched[i]) drift.extra.push_back(served[i]);
    }
    if (!drift.in_plan && drift.served_stamp.gen == generation_none) {
      report.unmanaged.push_back(name);
      continue;
    }
    if (drift.missing.empty() && drift.extra.empty() && (drift.in_plan || served.empty())) {
      ++report.endpoints_agreeing;
    } else {
      report.drifted.push_back(std::move(drift));
    }
  }
  return report;
}

// --- apply -----------------------------------------------------------------------------------

/// What happened to one endpoint in apply_plan.
struct endpoint_outcome {
  std::string name;
  event_kind outcome{};  ///< applied, stale, refused_blast_radius, unknown_endpoint, conflict, ...
};

/// What apply_plan did.
struct apply_report {
  generation gen{};
  fence_token fence{};
  bool complete = false;  ///< every endpoint serves `gen` or newer (plan_applied)
  bool fenced = false;    ///< the store accepted a larger token: someone superseded this fence
  bool invalid = false;   ///< the plan failed its digest check (S7)
  std::vector<endpoint_outcome> endpoints;
};

namespace detail {

/// The registry the operator's enactor sees: the chosen generation as "the newest", every other
/// retained plan for the S4 lookups, and no collection (an operator apply never collects).
class one_generation_registry {
 public:
  one_generation_registry(const durable_history& history, generation chosen) noexcept
      : history_(&history), chosen_(chosen) {}
  [[nodiscard]] pinned_plan pin_latest() const noexcept {
    auto pinned = history_->pin(chosen_);
    return pinned ? std::move(*pinned) : pinned_plan{};
  }
  [[nodiscard]] result<pinned_plan> pin(generation gen) const noexcept { return history_->pin(gen); }
  [[nodiscard]] const plan* find(generation gen, const epoch_guard& guard) const noexcept {
    return history_->find(gen, guard);
  }
  template <class LiveGenerations>
  [[nodiscard]] collection_report collect(const retention_policy&, std::uint64_t, LiveGenerations&&) const {
    return {};
  }

 private:
  const durable_history* history_;
  generation chosen_;
};

/// A lease authority that grants one fixed token: the operator's (or apply's) fence.
template <clock Clock>
class single_token_authority {
 public:
  single_token_authority(const Clock& clock, fence_token token) noexcept : clock_(&clock), token_(token) {
    PLANFENCE_ASSERT(token.value() != 0);
  }
  [[nodiscard]] result<lease> acquire(std::chrono::milliseconds ttl) noexcept { return grant(ttl); }
  [[nodiscard]] result<lease> renew(const lease&, std::chrono::milliseconds ttl) noexcept { return grant(ttl); }
  [[nodiscard]] result<void> release(const lease&) noexcept { return ok(); }
  [[nodiscard]] result<void> check(const lease&) const noexcept { return ok(); }

 private:
  [[nodiscard]] result<lease> grant(std::chrono::milliseconds ttl) const noexcept {
    const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->now().time_since_epoch());
    return lease{lease_id{token_.value()}, token_, now + ttl};
  }
  const Clock* clock_;
  fence_token token_;
};

}  // namespace detail

/// Applies retained generation `gen` of `history` to `store` with fence `fence`, through the
/// fixed enactor (see the header comment). `fence` must be at least the store's floor (else the
/// whole apply is fenced). Errors: errc::not_found (no such retained generation). Refusals per
/// endpoint are in the report, not errors. Blocking, allocates.
template <record_store Store>
[[nodiscard]] result<apply_report> apply_plan(Store& store, const durable_history& history, generation gen,
                                              fence_token fence) {
  auto chosen = history.pin(gen);
  if (!chosen) {
    return fail(errc::not_found, "generation " + std::to_string(gen.value()) + " is not in the history at " +
                                     history.directory().string());
  }
  const std::size_t endpoint_count = (*chosen)->size();
  chosen->reset();
  apply_report report;
  report.gen = gen;
  report.fence = fence;
  steady_clock clock;
  detail::one_generation_registry registry{history, gen};
  detail::single_token_authority<steady_clock> authority{clock, fence};
  auto sink = [&report](const event& e) {
    switch (e.kind) {
      case event_kind::applied:
      case event_kind::stale:
      case event_kind::refused_blast_radius:
      case event_kind::unknown_endpoint:
      case event_kind::store_error:
        if (!e.endpoint.empty()) {
          // A conflict followed by a retry reports the endpoint again: keep the last word.
          auto same = std::find_if(report.endpoints.begin(), report.endpoints.end(),
                                   [&](const endpoint_outcome& o) { return o.name == e.endpoint; });
          if (same != report.endpoints.end()) same->outcome = e.kind;
          else report.endpoints.push_back({std::string(e.endpoint), e.kind});
        }
        break;
      case event_kind::conflict:
        if (std::none_of(report.endpoints.begin(), report.endpoints.end(),
                         [&](const endpoint_outcome& o) { return o.name == e.endpoint; })) {
          report.endpoints.push_back({std::string(e.endpoint), e.kind});
        }
        break;
      case event_kind::fenced: report.fenced = true; break;
      case event_kind::plan_invalid: report.invalid = true; break;
      case event_kind::plan_applied: report.complete = true; break;
      default: break;
    }
  };
  enactor_config config;
  config.name = "operator";
  config.collect = false;
  config.lease_ttl = std::chrono::milliseconds{3'600'000};
  config.renew_margin = std::chrono::milliseconds{60'000};
  config.store_backoff = std::chrono::milliseconds{20};
  enactor<Store, detail::single_token_authority<steady_clock>, detail::one_generation_registry, steady_clock,
          decltype(sink)>
      operator_enactor{store, authority, registry, clock, config, sink};
  // One run: acquire, raise the fence, pin, then read and commit each endpoint (with bounded
  // retries), then idle. The bound is generous; a run that reaches it is reported incomplete.
  const std::size_t steps_max =
      16 + endpoint_count * 2 * (config.conflict_retries_max + config.store_retries_max + 2);
  bool pinned = false;
  for (std::size_t i = 0; i < steps_max; ++i) {
    const step_result r = operator_enactor.step();
    if (operator_enactor.state() == enactor_state::read_stamp || operator_enactor.state() == enactor_state::commit) {
      pinned = true;
    }
    if (report.fenced || report.invalid) break;
    if (operator_enactor.state() == enactor_state::idle && (pinned || report.complete)) break;
    if (!r.progressed && r.wait.count() > 0 && operator_enactor.state() != enactor_state::idle) {
      std::this_thread::sleep_for(r.wait);
    }
  }
  return report;
}

// --- automation back in ------------------------------------------------------------------------

/// Wraps automation's lease authority so that its tokens stay above the store's fence floor and
/// it stays out while an operator holds the store (see the header comment). `Floor` is a
/// callable returning result<fence_token> (e.g. store_fence_floor of the store), called at each
/// acquire. Thread safety: every member may be called concurrently (a mutex guards the offset;
/// lease calls are rare). acquire is blocking while Floor does I/O.
template <lease_authority Authority, class Floor>
class fence_floor_authority {
 public:
  fence_floor_authority(Authority& inner, Floor floor) : inner_(&inner), floor_(std::move(floor)) {}

  /// A grant whose token is above the floor. Errors: errc::lease_held (another holder, or an
  /// operator hold: the message says which), errc::capacity_exceeded, the floor's errors.
  [[nodiscard]] result<lease> acquire(std::chrono::milliseconds ttl) {
    std::lock_guard guard(mutex_);
    result<fence_token> floor = floor_();
    if (!floor) return unexpected_error(std::move(floor).error());
    if (is_operator_fence(*floor)) {
      return fail(errc::lease_held, "operator hold at fence " + std::to_string(floor->value()) +
                                        " (planfence-ctl release hands control back)");
    }
    auto granted = inner_->acquire(ttl);
    if (!granted) return granted;
    std::uint64_t token = granted->fence.value() + offset_;
    if (token <= floor->value()) {
      offset_ += floor->value() + 1 - token;
      token = floor->value() + 1;
    }
    if (token % operator_fence_stride == 0) {
      ++offset_;
      ++token;
    }
    if (token > fence_max.value()) return fail(errc::capacity_exceeded, "fence token space exhausted");
    current_ = grant_pair{fence_token{token}, granted->fence};
    granted->fence = fence_token{token};
    return granted;
  }
  [[nodiscard]] result<lease> renew(const lease& held, std::chrono::milliseconds ttl) {
    auto inner = unlift(held);
    if (!inner) return unexpected_error(std::move(inner).error());
    auto renewed = inner_->renew(*inner, ttl);
    if (!renewed) return renewed;
    renewed->fence = held.fence;
    return renewed;
  }
  [[nodiscard]] result<void> release(const lease& held) {
    auto inner = unlift(held);
    if (!inner) return unexpected_error(std::move(inner).error());
    return inner_->release(*inner);
  }
  [[nodiscard]] result<void> check(const lease& held) const {
    auto inner = unlift(held);
    if (!inner) return unexpected_error(std::move(inner).error());
    return inner_->check(*inner);
  }

 private:
  struct grant_pair {
    fence_token lifted;
    fence_token inner;
  };
  /// The inner authority's view of the current grant; an earlier grant was superseded.
  [[nodiscard]] result<lease> unlift(const lease& held) const {
    std::lock_guard guard(mutex_);
    if (!current_ || current_->lifted != held.fence) return fail(errc::lease_superseded);
    lease inner = held;
    inner.fence = current_->inner;
    return inner;
  }
  Authority* inner_;
  Floor floor_;
  std::uint64_t offset_ = 0;
  std::optional<grant_pair> current_;
  mutable std::mutex mutex_;
};

}  // namespace v1
}  // namespace planfence
