// planfence/recovery.hpp: the manual recovery operations: drift, apply, operator override.
//
// What it is: the library half of planfence-ctl (examples/planfence_ctl.cpp, docs/runbook.md).
//  - `diff_store(store, plan)`: what a store serves that a plan does not, and the reverse, and
//    the endpoints whose stamp names another generation than the plan's (drift).
//  - `apply_plan(store, history, gen, fence)`: applies one retained generation through the fixed
//    enactor itself (not a copy of its rules): the store's conditional commit (S1), the fence
//    raised before the first commit (S2: a raise that fails is an error, nothing is applied), the
//    endpoint guard (S4: an endpoint is never emptied unless the plan says intent=empty), the
//    digest check (S7). It reports every endpoint, with the store's own words for a failure, then
//    reads every endpoint back: `complete` is the read-back's verdict, never the commits' word.
//  - `recovery_hooks`: progress and a stop flag (a signal handler's) for diff_store and apply_plan.
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
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
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
/// stamp (0 when none). Each store range-checks what it reads (a zone file's or a DNS server's
/// stamps hold 24-bit tokens; etcd's holder-key tokens are revisions, wider). Blocking, allocates.
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

// --- progress and interruption ----------------------------------------------------------------

struct endpoint_outcome;

/// What an operator's tool can watch and stop. Every hook is optional.
struct recovery_hooks {
  /// Read between two endpoints (apply: between two enactor steps); once true, the operation
  /// stops and reports how far it got (`interrupted`). A signal handler may set it.
  const std::atomic<bool>* stop = nullptr;
  /// Called after each endpoint with (endpoints done, endpoints in all).
  std::function<void(std::size_t, std::size_t)> progress{};
  /// apply_plan: called with each endpoint's outcome once it is final (before `progress`).
  std::function<void(const endpoint_outcome&)> on_endpoint{};
  [[nodiscard]] bool stopped() const noexcept { return stop != nullptr && stop->load(std::memory_order_relaxed); }
};

// --- drift -----------------------------------------------------------------------------------

/// One endpoint on which a store and a plan disagree.
struct endpoint_drift {
  std::string name;
  stamp served_stamp{};                  ///< the store's stamp (gen 0: never written, or unknown)
  /// The plan names the endpoint and the store's stamp names another generation: the records
  /// may agree, but the next apply decides from the stamp (S1), so this is drift.
  bool stamp_differs = false;
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
  bool interrupted = false;  ///< stopped by recovery_hooks::stop before every endpoint was compared
  [[nodiscard]] bool agrees() const noexcept { return drifted.empty() && !interrupted; }
};

/// Whether a served record is the plan's record. Weights are compared only when the store reports
/// one: a zone file, like a plain DNS answer, has no place for a weight.
[[nodiscard]] inline bool same_record(const record& planned, const record& served) noexcept {
  if (planned.type != served.type || planned.ttl != served.ttl || planned.rdata != served.rdata) return false;
  return !served.weight || served.weight == planned.weight;
}

namespace detail {

/// Resolves all[begin, end) (handles[i - begin]: none for a name the store does not know) and
/// inspects the resolved ones in one call (states, in the order of `resolved`): the chunk step of
/// diff_store and survey_store. Errors: resolve's other than unknown_endpoint, and inspect's.
template <class Store>
[[nodiscard]] result<void> inspect_names(Store& store, const std::vector<std::string>& all, std::size_t begin,
                                         std::size_t end, std::vector<std::optional<endpoint_handle>>& handles,
                                         std::vector<endpoint_handle>& resolved, std::vector<endpoint_state>& states) {
  handles.clear();
  resolved.clear();
  for (std::size_t i = begin; i < end; ++i) {
    auto handle = store.resolve(all[i]);
    if (handle) {
      handles.emplace_back(*handle);
      resolved.push_back(*handle);
    } else if (handle.error().code == errc::unknown_endpoint) {
      handles.emplace_back(std::nullopt);
    } else {
      return unexpected_error(std::move(handle).error());
    }
  }
  states.assign(resolved.size(), endpoint_state{});
  return inspect_endpoints(store, resolved, states);
}
/// The store's apply marks (none for a store that keeps none: every stamp is then effective).
template <record_store Store>
[[nodiscard]] result<apply_marks> marks_of(const Store& store) {
  if constexpr (change_following_store<Store>) {
    return store.read_marks();
  } else {
    return apply_marks{};
  }
}
/// `st` with its generation effective: the applied mark's when the stamp is older (an endpoint a
/// change-following apply left unwritten serves the applied plan's records).
[[nodiscard]] constexpr stamp effective_stamp(stamp st, const apply_marks& marks) noexcept {
  if (st.gen != generation_none) st.gen = effective_generation(st.gen, marks);
  return st;
}

/// The records a plan gives an endpoint (`planned`, or none) against those it serves: what is
/// missing and what is extra, each record matched once.
inline void compare_records(const endpoint_entry* planned, const std::vector<record>& served, endpoint_drift& drift) {
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
}
}  // namespace detail

/// Compares every endpoint the plan names or the store holds a stamp for (names the store serves
/// without a stamp and the plan does not name are listed as unmanaged): records both ways, and
/// the stamp (an endpoint of the plan must serve the plan's generation: its stamp's, or the
/// store's applied mark when that is newer, endpoint_drift::served_stamp holding the effective
/// generation). Errors: those of the store. Blocking, allocates; O(endpoints x records per
/// endpoint + endpoints log endpoints) plus the store's reads.
template <inspectable_store Store>
[[nodiscard]] result<drift_report> diff_store(const Store& store, const plan& p, const recovery_hooks& hooks = {}) {
  drift_report report;
  report.plan_gen = p.gen();
  // The marks before the stamps: a stamp read later is never older than the marks make it.
  auto marks = detail::marks_of(store);
  if (!marks) return unexpected_error(std::move(marks).error());
  auto names = store.endpoint_names();
  if (!names) return unexpected_error(std::move(names).error());
  std::vector<std::string> all = *names;
  std::vector<std::string> stored = *names;  // sorted, for in_store
  std::sort(stored.begin(), stored.end());
  for (const auto& entry : p.endpoints()) all.push_back(entry->name);
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  // In chunks: every name of a chunk resolved, the resolved ones read in one inspection (one
  // read per zone file for the zone-file store), then compared in order.
  constexpr std::size_t chunk_max = 1024;
  std::vector<std::optional<endpoint_handle>> handles;
  std::vector<endpoint_handle> resolved;
  std::vector<endpoint_state> states;
  for (std::size_t begin = 0; begin < all.size(); begin += chunk_max) {
    if (hooks.stopped()) {
      report.interrupted = true;
      break;
    }
    if (hooks.progress && begin > 0) hooks.progress(begin, all.size());
    const std::size_t end = std::min(all.size(), begin + chunk_max);
    if (auto read = detail::inspect_names(store, all, begin, end, handles, resolved, states); !read) {
      return unexpected_error(std::move(read).error());
    }
    std::size_t next = 0;
    for (std::size_t i = begin; i < end; ++i) {
      const std::string& name = all[i];
      endpoint_drift drift;
      drift.name = name;
      drift.in_store = std::binary_search(stored.begin(), stored.end(), name);
      const endpoint_entry* planned = p.find(name);
      drift.in_plan = planned != nullptr;
      std::vector<record> served;
      if (handles[i - begin]) {
        drift.served_stamp = detail::effective_stamp(states[next].st, *marks);
        served = std::move(states[next].records);
        ++next;
      }
      detail::compare_records(planned, served, drift);
      if (!drift.in_plan && drift.served_stamp.gen == generation_none) {
        report.unmanaged.push_back(name);
        continue;
      }
      drift.stamp_differs = drift.in_plan && drift.served_stamp.gen != p.gen();
      if (drift.missing.empty() && drift.extra.empty() && !drift.stamp_differs && (drift.in_plan || served.empty())) {
        ++report.endpoints_agreeing;
      } else {
        report.drifted.push_back(std::move(drift));
      }
    }
  }
  if (hooks.progress && !report.interrupted) hooks.progress(all.size(), all.size());
  return report;
}

// --- apply -----------------------------------------------------------------------------------

/// What happened to one endpoint in apply_plan.
struct endpoint_outcome {
  std::string name;
  event_kind outcome{};  ///< applied, stale, refused_blast_radius, unknown_endpoint, conflict, ...
  std::string detail{};  ///< the store's own words, for store_error, unknown_endpoint and fenced
};

/// An endpoint of the plan that, read back after the run, does not serve the plan (or newer).
struct endpoint_unverified {
  std::string name;
  std::string why;  ///< "serves g2", "serves other records than the plan", the store's error...
};

/// What apply_plan did.
struct apply_report {
  generation gen{};
  fence_token fence{};
  /// Verified by reading back: every endpoint of the plan serves `gen` or newer, and those on
  /// `gen` serve exactly its records. Never true when something was refused, not reached,
  /// unknown to the store, or the run was interrupted.
  bool complete = false;
  bool fenced = false;       ///< the store accepted a larger token: someone superseded this fence
  bool invalid = false;      ///< the plan failed its digest check (S7)
  bool interrupted = false;  ///< recovery_hooks::stop ended the run early
  std::vector<endpoint_outcome> endpoints;    ///< in plan order, each endpoint's last word
  std::vector<endpoint_unverified> unverified;  ///< the read-back's findings (plan order)
  std::vector<std::string> store_errors;      ///< errors not tied to one endpoint (raising the fence)
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
static_assert(enactor_registry<one_generation_registry>);

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

/// Collects the operator enactor's events into an apply_report: one outcome per endpoint, its
/// last word (a conflict followed by a retry reports the endpoint once, with the retry's word).
/// The enactor works in batches, so an endpoint's events need not be contiguous: each endpoint
/// is found by name. `hooks.on_endpoint` and `hooks.progress` hear of an endpoint when its word
/// is final (anything but a conflict, which is read again). `finish` puts the report in plan order.
class apply_report_sink {
 public:
  apply_report_sink(apply_report& report, const recovery_hooks& hooks, std::size_t endpoint_count) noexcept
      : report_(&report), hooks_(&hooks), endpoint_count_(endpoint_count) {}

  void operator()(const event& e) {
    switch (e.kind) {
      case event_kind::applied:
      case event_kind::stale:
      case event_kind::refused_blast_radius:
      case event_kind::unknown_endpoint:
      case event_kind::conflict:
      case event_kind::fenced:
      case event_kind::store_error:
        if (e.endpoint.empty()) {
          // Not tied to one endpoint: the fence, the apply marks, or the whole plan superseded
          // ("a newer plan's apply has begun").
          if (e.kind == event_kind::store_error) report_->store_errors.emplace_back(e.detail);
          if (e.kind == event_kind::stale) report_->store_errors.push_back("plan not applied: " + std::string(e.detail));
          if (e.kind == event_kind::fenced) report_->store_errors.push_back("fenced: " + std::string(e.detail));
        } else {
          record(e);
        }
        if (e.kind == event_kind::fenced) report_->fenced = true;
        break;
      case event_kind::plan_invalid: report_->invalid = true; break;
      default: break;
    }
  }

  /// The report's endpoints in the order of `p` (those the enactor reported on).
  void finish(const plan& p) {
    std::vector<endpoint_outcome> ordered;
    ordered.reserve(report_->endpoints.size());
    for (const endpoint_entry* entry : p.endpoints()) {
      const auto it = index_.find(entry->name);
      if (it != index_.end()) ordered.push_back(std::move(report_->endpoints[it->second]));
    }
    report_->endpoints = std::move(ordered);
    index_.clear();
  }

 private:
  void record(const event& e) {
    std::vector<endpoint_outcome>& all = report_->endpoints;
    auto [it, added] = index_.try_emplace(std::string(e.endpoint), all.size());
    if (added) all.push_back({std::string(e.endpoint), e.kind, std::string(e.detail)});
    endpoint_outcome& outcome = all[it->second];
    outcome.outcome = e.kind;
    outcome.detail = std::string(e.detail);
    if (e.kind == event_kind::conflict) return;  // read again: not its last word
    ++final_;
    if (hooks_->on_endpoint) hooks_->on_endpoint(outcome);
    if (hooks_->progress) hooks_->progress(final_, endpoint_count_);
  }
  apply_report* report_;
  const recovery_hooks* hooks_;
  std::size_t endpoint_count_;
  std::size_t final_ = 0;
  std::unordered_map<std::string, std::size_t> index_;
};

/// Why an endpoint read back does not serve `p`, or nothing when it does: a stamp of p's
/// generation or newer and, at p's generation, exactly p's records (`served`, when the store can
/// be inspected).
inline std::optional<std::string> read_back_verdict(const endpoint_entry& entry, const plan& p, const stamp& seen,
                                                    const std::vector<record>* served) {
  if (seen.gen < p.gen()) {
    return seen.gen == generation_none ? std::string("never written")
                                       : "serves generation " + std::to_string(seen.gen.value());
  }
  if (served == nullptr || seen.gen != p.gen()) return std::nullopt;  // newer: not this plan's records
  const auto& planned = entry.records.records();
  std::vector<bool> matched(served->size(), false);
  bool same = served->size() == planned.size();
  for (std::size_t i = 0; same && i < planned.size(); ++i) {
    bool found = false;
    for (std::size_t j = 0; j < served->size() && !found; ++j) {
      if (!matched[j] && same_record(planned[i], (*served)[j])) matched[j] = found = true;
    }
    same = found;
  }
  if (same) return std::nullopt;
  return "stamped generation " + std::to_string(p.gen().value()) + " but serves other records than the plan";
}

/// One endpoint read back on its own (after a batched read failed: each endpoint then gets its
/// own error in the store's words).
template <record_store Store>
[[nodiscard]] std::optional<std::string> read_back_one(const Store& store, const endpoint_entry& entry,
                                                       endpoint_handle handle, const plan& p, const apply_marks& marks) {
  auto seen = store.read_stamp(handle);
  if (!seen) return "cannot read its stamp back: " + seen.error().message();
  *seen = effective_stamp(*seen, marks);
  if constexpr (inspectable_store<Store>) {
    if (seen->gen == p.gen()) {
      auto served = store.served(handle);
      if (!served) return "cannot read its records back: " + served.error().message();
      return read_back_verdict(entry, p, *seen, &*served);
    }
  }
  return read_back_verdict(entry, p, *seen, nullptr);
}

/// Reads every endpoint of `p` back from the store after an apply (see apply_report::complete),
/// up to read_back_chunk endpoints per store call (inspect_endpoints: one read per zone file per
/// chunk; read_stamps for a store that cannot be inspected). A chunk whose read fails is read
/// again endpoint by endpoint, so that each endpoint's line says its own cause. Plan order.
inline constexpr std::size_t read_back_chunk = 1024;

template <record_store Store>
[[nodiscard]] std::vector<endpoint_unverified> read_back(const Store& store, const plan& p, const recovery_hooks& hooks) {
  std::vector<endpoint_unverified> out;
  // The marks first (an endpoint below the applied mark serves that plan: effective_stamp).
  const result<apply_marks> marks = marks_of(store);
  if (!marks) {
    for (const auto& entry : p.endpoints()) {
      out.push_back({entry->name, "cannot read the store's apply marks back: " + marks.error().message()});
    }
    return out;
  }
  std::vector<const endpoint_entry*> entries;
  std::vector<endpoint_handle> handles;
  std::vector<endpoint_state> states;
  auto flush = [&] {
    if (entries.empty()) return;
    states.assign(entries.size(), endpoint_state{});
    const result<void> read = [&]() -> result<void> {
      if constexpr (inspectable_store<Store>) {
        return inspect_endpoints(store, handles, states);
      } else {
        std::vector<stamp> seen(handles.size());
        result<void> r = [&] {
          if constexpr (batched_store<Store>) {
            return store.read_stamps(handles, seen);
          } else {
            return read_each(store, handles, seen);
          }
        }();
        for (std::size_t i = 0; r && i < seen.size(); ++i) states[i].st = seen[i];
        return r;
      }
    }();
    for (std::size_t i = 0; i < entries.size(); ++i) {
      std::optional<std::string> why =
          read ? read_back_verdict(*entries[i], p, effective_stamp(states[i].st, *marks),
                                   inspectable_store<Store> ? &states[i].records : nullptr)
               : read_back_one(store, *entries[i], handles[i], p, *marks);
      if (why) out.push_back({entries[i]->name, std::move(*why)});
    }
    entries.clear();
    handles.clear();
  };
  for (const auto& entry : p.endpoints()) {
    if (hooks.stopped()) {
      flush();
      out.push_back({entry->name, "not read back: interrupted"});
      continue;
    }
    auto handle = store.resolve(entry->name);
    if (!handle) {
      flush();
      out.push_back({entry->name, "the store has no such endpoint: " + std::string(handle.error().detail.view())});
      continue;
    }
    entries.push_back(entry);
    handles.push_back(*handle);
    if (entries.size() == read_back_chunk) flush();
  }
  flush();
  return out;
}

}  // namespace detail

/// Endpoints per store call in apply_plan by default (enactor_config::batch_max).
inline constexpr std::uint32_t apply_plan_batch_max = 4096;

/// Applies retained generation `gen` of `history` to `store` with fence `fence`, through the
/// fixed enactor (see the header comment), then reads every endpoint back (apply_report::complete
/// is the read-back's verdict, never the enactor's word alone). The fence is raised first, on
/// its own: when that fails, nothing is applied and the store's error is returned. `fence` must
/// be at least the store's floor (else the whole apply is fenced). Errors: errc::not_found (no
/// such retained generation), the store's errors raising the fence. Refusals per endpoint are in
/// the report, not errors. Blocking, allocates; stops between two steps once `hooks.stop` is set.
/// `batch_max`: endpoints per store call (1 to enactor batch_max_limit, 65,536): on a zone file
/// one rewrite of each zone a call touches; smaller batches stop sooner after `hooks.stop`.
template <record_store Store>
[[nodiscard]] result<apply_report> apply_plan(Store& store, const durable_history& history, generation gen,
                                              fence_token fence, const recovery_hooks& hooks = {},
                                              std::uint32_t batch_max = apply_plan_batch_max) {
  PLANFENCE_ASSERT(batch_max >= 1 && batch_max <= batch_max_limit);
  auto chosen = history.pin(gen);
  if (!chosen) {
    return fail(errc::not_found, "generation " + std::to_string(gen.value()) + " is not in the history at " +
                                     history.directory().string());
  }
  if (auto raised = store.raise_fence(fence); !raised) return unexpected_error(std::move(raised).error());
  const std::size_t endpoint_count = (*chosen)->size();
  apply_report report;
  report.gen = gen;
  report.fence = fence;
  steady_clock clock;
  detail::one_generation_registry registry{history, gen};
  detail::single_token_authority<steady_clock> authority{clock, fence};
  detail::apply_report_sink sink{report, hooks, endpoint_count};
  bool plan_applied = false;
  auto forward = [&](const event& e) {
    if (e.kind == event_kind::plan_applied) plan_applied = true;
    sink(e);
  };
  enactor_config config;
  config.name = "operator";
  config.collect = false;
  config.lease_ttl = std::chrono::milliseconds{3'600'000};
  config.renew_margin = std::chrono::milliseconds{60'000};
  config.store_backoff = std::chrono::milliseconds{20};
  // A repair: every endpoint of the plan is written, not only what it changes (still under the
  // store's apply marks, so that automation's next change-following apply sees it).
  config.follow_changes = false;
  // Large batches: on a zone file each batch is one rewrite of each zone it touches (with the
  // apply marks in the first and last: marks_batch_store), so a zone of 10,000 endpoints takes 3
  // rewrites instead of 157; remote stores split a batch into UPDATEs and transactions that fit.
  // An interrupt still lands between two store calls.
  config.batch_max = batch_max;
  enactor<Store, detail::single_token_authority<steady_clock>, detail::one_generation_registry, steady_clock,
          decltype(forward)>
      operator_enactor{store, authority, registry, clock, config, forward};
  // One run: acquire, raise the fence, pin, then read and commit each endpoint (with bounded
  // retries), then idle. The bound is generous; a run that reaches it is reported incomplete.
  const std::size_t steps_max =
      16 + endpoint_count * 2 * (config.conflict_retries_max + config.store_retries_max + 2);
  bool pinned = false;
  for (std::size_t i = 0; i < steps_max; ++i) {
    if (hooks.stopped()) {
      report.interrupted = true;
      break;
    }
    const step_result r = operator_enactor.step();
    if (operator_enactor.state() == enactor_state::read_stamp || operator_enactor.state() == enactor_state::commit) {
      pinned = true;
    }
    if (report.fenced || report.invalid) break;
    if (operator_enactor.state() == enactor_state::idle && (pinned || plan_applied)) break;
    if (!r.progressed && r.wait.count() > 0 && operator_enactor.state() != enactor_state::idle) {
      std::this_thread::sleep_for(r.wait);
    }
  }
  sink.finish(**chosen);
  // After an interrupt the operator wants out: the outcomes say what was written.
  if (!report.invalid && !report.interrupted) report.unverified = detail::read_back(store, **chosen, hooks);
  report.complete = plan_applied && !report.interrupted && !report.fenced && !report.invalid &&
                    report.unverified.empty();
  return report;
}

// --- status ----------------------------------------------------------------------------------

/// One managed endpoint as survey_store found it.
struct endpoint_status {
  std::string name;
  stamp stored{};           ///< its stamp as stored (gen 0: never written, or the store has no place for it)
  generation serves{};      ///< the generation it serves: the stamp's, or the applied mark when newer
  std::size_t records = 0;  ///< records served
  bool in_store = false;    ///< the store resolves the name (false: no zone or key for it)
  bool in_newest = false;   ///< the newest retained plan names it
  /// Serves no records, and no retained plan says it should (the plan of `serves`, or of the
  /// newest generation for an endpoint never written, gives it none: intent=empty).
  bool serves_nothing = false;
  /// `serves` names a generation the history does not retain (collected, or never published):
  /// the 2025 state, in which nothing can tell what the endpoint should serve.
  bool plan_missing = false;
};

/// A store as a whole, for the operator on call (planfence-ctl status).
struct store_survey {
  apply_marks marks{};
  fence_token stamp_fence_max{};  ///< the largest fence in any stamp read
  generation newest{};            ///< the newest retained generation (generation_none: no history)
  bool history_known = false;     ///< a history was given: plan_missing and newest mean something
  std::vector<endpoint_status> endpoints;  ///< every managed endpoint, sorted by name
  std::vector<std::string> unmanaged;      ///< names the store serves with no stamp that the newest plan does not name
  bool interrupted = false;                ///< stopped by recovery_hooks::stop; `endpoints` holds those read
  /// No endpoint serves nothing and no stamp names a missing plan.
  [[nodiscard]] bool healthy() const noexcept {
    return std::none_of(endpoints.begin(), endpoints.end(),
                        [](const endpoint_status& e) { return e.serves_nothing || e.plan_missing; });
  }
};

/// Reads every endpoint the store lists (and every endpoint of the newest retained plan of
/// `history`, when given: a store that cannot list its endpoints, such as a DNS server, is opened
/// with them) and says what each serves, by effective generation (detail::effective_stamp), and
/// which serve nothing or name a plan `history` no longer retains. Reads the apply marks first,
/// then the endpoints read_back_chunk at a time (inspect_endpoints: one read per zone file, one
/// etcd request, per chunk), so it costs O(endpoints / 1,024) store calls. Writes nothing.
/// Errors: those of the store. Blocking, allocates.
template <inspectable_store Store>
[[nodiscard]] result<store_survey> survey_store(const Store& store, const durable_history* history,
                                                const recovery_hooks& hooks = {}) {
  store_survey out;
  auto marks = detail::marks_of(store);
  if (!marks) return unexpected_error(std::move(marks).error());
  out.marks = *marks;
  std::vector<generation> retained;
  pinned_plan newest;
  if (history != nullptr) {
    out.history_known = true;
    retained = history->retained();
    std::sort(retained.begin(), retained.end());
    out.newest = history->latest();
    if (out.newest != generation_none) {
      if (auto p = history->pin(out.newest)) newest = std::move(*p);
    }
  }
  auto names = store.endpoint_names();
  if (!names) return unexpected_error(std::move(names).error());
  std::vector<std::string> all = std::move(*names);
  if (newest) {
    for (const auto& entry : newest->endpoints()) all.push_back(entry->name);
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::map<generation, pinned_plan> plans;  // pinned once each, for the intent=empty check
  auto planned_empty = [&](generation g, const std::string& name) {
    if (history == nullptr || g == generation_none) return false;
    auto found = plans.find(g);
    if (found == plans.end()) {
      auto p = history->pin(g);
      found = plans.emplace(g, p ? std::move(*p) : pinned_plan{}).first;
    }
    if (!found->second) return false;
    const endpoint_entry* entry = found->second->find(name);
    return entry != nullptr && entry->records.empty();
  };
  std::vector<std::optional<endpoint_handle>> handles;
  std::vector<endpoint_handle> resolved;
  std::vector<endpoint_state> states;
  for (std::size_t begin = 0; begin < all.size(); begin += detail::read_back_chunk) {
    if (hooks.stopped()) {
      out.interrupted = true;
      break;
    }
    if (hooks.progress && begin > 0) hooks.progress(begin, all.size());
    const std::size_t end = std::min(all.size(), begin + detail::read_back_chunk);
    if (auto read = detail::inspect_names(store, all, begin, end, handles, resolved, states); !read) {
      return unexpected_error(std::move(read).error());
    }
    std::size_t next = 0;
    for (std::size_t i = begin; i < end; ++i) {
      endpoint_status e;
      e.name = all[i];
      e.in_newest = newest && newest->find(e.name) != nullptr;
      if (handles[i - begin]) {
        e.in_store = true;
        e.stored = states[next].st;
        e.records = states[next].records.size();
        ++next;
      }
      if (e.stored.gen == generation_none && !e.in_newest) {
        out.unmanaged.push_back(e.name);  // a zone's name servers and glue: never written by planfence
        continue;
      }
      out.stamp_fence_max = std::max(out.stamp_fence_max, e.stored.fence);
      e.serves = detail::effective_stamp(e.stored, out.marks).gen;
      e.plan_missing = out.history_known && e.serves != generation_none &&
                       !std::binary_search(retained.begin(), retained.end(), e.serves);
      e.serves_nothing = e.records == 0 && !planned_empty(e.serves == generation_none ? out.newest : e.serves, e.name);
      out.endpoints.push_back(std::move(e));
    }
  }
  if (hooks.progress && !out.interrupted) hooks.progress(all.size(), all.size());
  return out;
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
