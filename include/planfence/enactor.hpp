// planfence/enactor.hpp: the fixed enactor, an explicit step machine.
//
// What it is: the component that takes the newest published plan and makes every endpoint serve
// it, safely alongside any number of other enactors. Compared with the 2025 design it
//  - checks freshness at commit time, in the store's conditional commit, not once at the start
//    of a run (S1);
//  - writes only under a lease whose fence token it first raises at the store, and stops at the
//    first fence rejection (S2);
//  - pins the plan it applies and collects old plans only as the lease holder, against what is
//    live, through the registry's atomic check (S3);
//  - refuses to empty an endpoint, or to change more than a configured share of an endpoint or of
//    the zone, unless the plan says it means it (S4);
//  - never waits for an old plan: an endpoint serving a plan that is gone is simply overwritten by
//    a newer one, so nothing wedges (S6); and it applies only plans whose digest checks (S7).
//
// It is an explicit step machine: `step()` performs at most one interaction with shared state (one
// lease call, one registry call or one store call) and returns. A thread drives it with
// `run_until`, and the deterministic simulator interleaves the steps of many enactors in any
// order: both run this same code.
//
//     planfence::enactor e{store, authority, registry, clock, {.name = "az1"}, sink};
//     std::atomic<bool> stop{false};
//     std::thread t{[&] { e.run_until(stop); }};
//
// Cost: one step is one store, lease or registry operation plus bookkeeping; the apply path
// (read_stamp and commit steps) never allocates, never throws and never blocks; collection
// allocates and takes the registry's mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "clock.hpp"
#include "config.hpp"
#include "endpoint_sequence.hpp"
#include "events.hpp"
#include "ids.hpp"
#include "lease.hpp"
#include "plan.hpp"
#include "registry.hpp"
#include "result.hpp"
#include "store.hpp"

namespace planfence {
inline namespace v1 {

/// Tuning of an enactor. Every bound is explicit.
struct enactor_config {
  std::string name = "enactor";                       ///< holder name in events
  std::chrono::milliseconds lease_ttl{10'000};
  /// Renew when less than this remains (must be below lease_ttl).
  std::chrono::milliseconds renew_margin{5'000};
  /// Re-reads of one endpoint after conflicts before the run leaves it for the next run.
  std::uint32_t conflict_retries_max = 8;
  /// Attempts of one store call that reports store_unavailable before the run ends early.
  std::uint32_t store_retries_max = 3;
  /// Backoff after an unavailable store, doubled per attempt.
  std::chrono::milliseconds store_backoff{50};
  /// How long an idle enactor waits before looking for a newer plan.
  std::chrono::milliseconds poll_interval{100};
  /// S4: the largest share (0..1] of an endpoint's records one commit may remove. An empty
  /// result is refused regardless, unless the plan marks the endpoint intent=empty.
  double endpoint_change_share_max = 1.0;
  /// S4: the largest share (0..1] of the previous plan's endpoints a plan may change, unless it
  /// is marked intent bulk-change.
  double zone_change_share_max = 0.5;
  /// Collect old plans after each complete run (as lease holder only).
  bool collect = true;
  retention_policy retention{};
  /// Recompute each plan's digest before applying it (S7). O(plan size) per new plan.
  bool verify_digest = true;
};

/// Where an enactor is in its cycle. Names match docs/design.md and the Spin models.
enum class enactor_state : std::uint8_t {
  acquire_lease,  ///< next step asks for a lease
  raise_fence,    ///< next step raises the store's fence floor to our token
  pin_plan,       ///< next step pins the newest plan
  read_stamp,     ///< next step reads the current endpoint's stamp
  commit,         ///< next step commits the current endpoint
  collect,        ///< next step collects old plans
  idle,           ///< waiting for a newer plan (or for the lease to be free)
};

[[nodiscard]] constexpr std::string_view to_string(enactor_state s) noexcept {
  switch (s) {
    case enactor_state::acquire_lease: return "acquire_lease";
    case enactor_state::raise_fence: return "raise_fence";
    case enactor_state::pin_plan: return "pin_plan";
    case enactor_state::read_stamp: return "read_stamp";
    case enactor_state::commit: return "commit";
    case enactor_state::collect: return "collect";
    case enactor_state::idle: return "idle";
  }
  return "?";
}

/// What a step did, and when the next one is worth taking.
struct step_result {
  bool progressed = true;                 ///< false: nothing to do now
  std::chrono::nanoseconds wait{0};       ///< suggested pause before the next step
};

/// The fixed enactor. `Registry` is any enactor_registry (registry.hpp): plan_registry,
/// durable_history, etcd::etcd_enactor_registry.
///
/// Thread safety: one enactor is driven by one thread at a time; any number of enactors may
/// share a store, an authority and a registry.
template <record_store Store, lease_authority Authority, enactor_registry Registry, clock Clock, event_sink Sink = null_sink>
class enactor {
 public:
  /// The S4 zone guard reads the plans between the last applied one and a new one, at most this
  /// many (beyond it the chain is unknown and the change is not refused for that reason).
  static constexpr std::uint64_t zone_guard_scan_max = 1024;

  enactor(Store& store, Authority& authority, Registry& registry, const Clock& clock, enactor_config config = {},
          Sink sink = {})
      : store_(&store), authority_(&authority), registry_(&registry), clock_(&clock), config_(std::move(config)),
        sink_(std::move(sink)) {
    PLANFENCE_ASSERT(config_.renew_margin < config_.lease_ttl);
    PLANFENCE_ASSERT(config_.endpoint_change_share_max > 0.0 && config_.endpoint_change_share_max <= 1.0);
    PLANFENCE_ASSERT(config_.zone_change_share_max > 0.0 && config_.zone_change_share_max <= 1.0);
    PLANFENCE_ASSERT(config_.retention.keep_newest >= 1);
  }

  /// Performs the next step. Never throws; allocates only in the collect step.
  step_result step() {
    // Lease upkeep comes first and is a step of its own.
    if (lease_ && state_ != enactor_state::acquire_lease) {
      const auto now = now_ns();
      if (now >= lease_->expires) {
        lose_lease();
        return {};
      }
      if (lease_->expires - now < config_.renew_margin) {
        auto renewed = authority_->renew(*lease_, config_.lease_ttl);
        if (!renewed) {
          lose_lease();
        } else {
          lease_ = *renewed;
        }
        return {};
      }
    }
    switch (state_) {
      case enactor_state::acquire_lease: return step_acquire();
      case enactor_state::raise_fence: return step_raise_fence();
      case enactor_state::pin_plan: return step_pin();
      case enactor_state::read_stamp: return step_read();
      case enactor_state::commit: return step_commit();
      case enactor_state::collect: return step_collect();
      case enactor_state::idle:
        // A lease whose token the store has not yet accepted as its fence floor must not commit:
        // a superseded holder could still write endpoints this one has not reached (S2).
        state_ = !lease_ ? enactor_state::acquire_lease : fence_raised_ ? enactor_state::pin_plan : enactor_state::raise_fence;
        return {};
    }
    return {};
  }

  /// Drives the enactor on the calling thread until `stop` becomes true, sleeping as the steps
  /// suggest. Blocking.
  void run_until(const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_acquire)) {
      const step_result r = step();
      if (!r.progressed || r.wait.count() > 0) {
        std::this_thread::sleep_for(r.wait.count() > 0 ? r.wait : std::chrono::nanoseconds{config_.poll_interval});
      }
    }
    release();
  }

  /// Gives the lease back and drops the pinned plan (for a clean shutdown).
  void release() {
    plan_.reset();
    if (lease_) static_cast<void>(authority_->release(*lease_));
    lease_.reset();
    fence_raised_ = false;
    state_ = enactor_state::acquire_lease;
  }

  /// Forgets everything but configuration, as a crash and restart would (the simulator uses it).
  void crash() noexcept {
    plan_.reset();
    lease_.reset();
    fence_raised_ = false;
    state_ = enactor_state::acquire_lease;
    applied_ = generation_none;
    refused_ = generation_none;
  }

  [[nodiscard]] enactor_state state() const noexcept { return state_; }
  [[nodiscard]] const std::optional<lease>& current_lease() const noexcept { return lease_; }
  /// The newest generation this enactor saw fully applied.
  [[nodiscard]] generation applied_generation() const noexcept { return applied_; }
  /// The generation being applied (generation_none when idle).
  [[nodiscard]] generation applying_generation() const noexcept { return plan_ ? plan_->gen() : generation_none; }
  [[nodiscard]] const enactor_counters& counters() const noexcept { return counters_; }
  [[nodiscard]] const enactor_config& config() const noexcept { return config_; }
  [[nodiscard]] Sink& sink() noexcept { return sink_; }

 private:
  [[nodiscard]] std::chrono::nanoseconds now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->now().time_since_epoch());
  }
  void emit(event_kind kind, generation gen, std::string_view endpoint = {}, std::string_view detail = {}) {
    counters_.count(kind);
    sink_(event{kind, gen, lease_ ? lease_->fence : fence_token{}, endpoint, now_ns(), config_.name, detail});
  }
  void lose_lease() {
    emit(event_kind::lease_lost, applying_generation());
    plan_.reset();
    lease_.reset();
    fence_raised_ = false;
    state_ = enactor_state::acquire_lease;
  }

  step_result step_acquire() {
    auto granted = authority_->acquire(config_.lease_ttl);
    if (!granted) {
      state_ = enactor_state::acquire_lease;
      return {false, config_.poll_interval};
    }
    lease_ = *granted;
    fence_raised_ = false;
    emit(event_kind::lease_gained, generation_none);
    state_ = enactor_state::raise_fence;
    return {};
  }

  step_result step_raise_fence() {
    auto raised = store_->raise_fence(lease_->fence);
    if (!raised) return store_trouble(enactor_state::raise_fence, raised.error());
    fence_raised_ = true;
    store_attempts_ = 0;
    state_ = enactor_state::pin_plan;
    return {};
  }

  step_result step_pin() {
    pinned_plan newest = registry_->pin_latest();
    if (!newest || newest->gen() <= applied_ || newest->gen() == refused_) {
      state_ = enactor_state::idle;
      return {false, config_.poll_interval};
    }
    const generation gen = newest->gen();
    if (config_.verify_digest && !newest->verify()) {
      emit(event_kind::plan_invalid, gen);
      refused_ = gen;
      state_ = enactor_state::idle;
      return {};
    }
    if (!zone_share_allowed(*newest)) {
      emit(event_kind::refused_blast_radius, gen);
      refused_ = gen;
      state_ = enactor_state::idle;
      return {};
    }
    plan_ = std::move(newest);
    emit(event_kind::plan_pinned, gen);
    cursor_ = 0;
    position_ = plan_->endpoints().begin();
    conflicts_ = 0;
    run_complete_ = true;
    state_ = plan_->size() == 0 ? finish_run() : enactor_state::read_stamp;
    return {};
  }

  const endpoint_entry& current_entry() const noexcept {
    PLANFENCE_ASSERT(plan_);
    PLANFENCE_ASSERT(cursor_ < plan_->size());
    return **position_;
  }

  step_result step_read() {
    const endpoint_entry& entry = current_entry();
    auto handle = store_->resolve(entry.name);
    if (!handle) {
      emit(event_kind::unknown_endpoint, plan_->gen(), entry.name, handle.error().detail.view());
      return next_endpoint();
    }
    auto seen = store_->read_stamp(*handle);
    if (!seen) return store_trouble(enactor_state::read_stamp, seen.error());
    store_attempts_ = 0;
    handle_ = *handle;
    seen_ = *seen;
    if (seen_.gen >= plan_->gen()) {
      emit(event_kind::stale, plan_->gen(), entry.name);  // S1: never move an endpoint backwards
      return next_endpoint();
    }
    if (seen_.fence > lease_->fence) {
      emit(event_kind::fenced, plan_->gen(), entry.name);  // S2: someone newer holds the lease
      lose_lease();
      return {};
    }
    state_ = enactor_state::commit;
    return {};
  }

  step_result step_commit() {
    const endpoint_entry& entry = current_entry();
    if (!endpoint_change_allowed(entry)) {
      emit(event_kind::refused_blast_radius, plan_->gen(), entry.name);
      run_complete_ = false;
      return next_endpoint();
    }
    auto committed = store_->commit(handle_, seen_, stamp{plan_->gen(), lease_->fence, 0}, entry.records);
    if (committed) {
      emit(event_kind::applied, plan_->gen(), entry.name);
      return next_endpoint();
    }
    switch (committed.error().code) {
      case errc::stale:
        emit(event_kind::stale, plan_->gen(), entry.name);
        return next_endpoint();
      case errc::fenced:
        emit(event_kind::fenced, plan_->gen(), entry.name, committed.error().detail.view());
        lose_lease();
        return {};
      case errc::conflict:
        emit(event_kind::conflict, plan_->gen(), entry.name);
        if (++conflicts_ > config_.conflict_retries_max) {
          run_complete_ = false;  // leave it to the next run
          return next_endpoint();
        }
        state_ = enactor_state::read_stamp;
        return {};
      case errc::store_unavailable:
        return store_trouble(enactor_state::commit, committed.error());
      default: {
        const std::string message = committed.error().message();
        emit(event_kind::store_error, plan_->gen(), entry.name, message);
        run_complete_ = false;
        return next_endpoint();
      }
    }
  }

  step_result step_collect() {
    // Only the current lease holder collects.
    if (!lease_ || !authority_->check(*lease_)) {
      lose_lease();
      return {};
    }
    const auto now_unix_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                            std::chrono::system_clock::now().time_since_epoch())
                                                            .count());
    // The filling form when the store has one (the memory store): no allocation per collect.
    collection_report report = [&] {
      if constexpr (requires(std::vector<generation>& out) { store_->live_generations(out); }) {
        return registry_->collect(config_.retention, now_unix_ms,
                                  [&](std::vector<generation>& out) { store_->live_generations(out); });
      } else {
        return registry_->collect(config_.retention, now_unix_ms, [&] { return store_->live_generations(); });
      }
    }();
    // The store could not give its live set: nothing was collected (S3); the next run tries again.
    if (report.live_unavailable) emit(event_kind::store_error, applying_generation(), "live set");
    for (generation g : report.collected) emit(event_kind::collected, g);
    for (generation g : report.protected_live) emit(event_kind::protected_from_collection, g);
    for (generation g : report.protected_pinned) emit(event_kind::protected_from_collection, g);
    state_ = enactor_state::idle;
    return {};
  }

  step_result next_endpoint() {
    store_attempts_ = 0;
    conflicts_ = 0;
    ++position_;
    if (++cursor_ < plan_->size()) {
      state_ = enactor_state::read_stamp;
      return {};
    }
    state_ = finish_run();
    return {};
  }

  enactor_state finish_run() {
    const generation gen = plan_->gen();
    if (run_complete_) {
      applied_ = gen;
      emit(event_kind::plan_applied, gen);
    }
    plan_.reset();
    return config_.collect && run_complete_ ? enactor_state::collect : enactor_state::idle;
  }

  step_result store_trouble(enactor_state retry_in, const error& cause) {
    // Formatting the cause allocates: this is the store's error path, never the apply path's.
    const std::string message = cause.message();
    emit(event_kind::store_error, applying_generation(),
         plan_ && cursor_ < plan_->size() ? std::string_view(current_entry().name) : std::string_view{}, message);
    if (++store_attempts_ > config_.store_retries_max) {
      store_attempts_ = 0;
      if (plan_) {
        plan_.reset();  // end the run; the next one starts over with the newest plan
      }
      state_ = enactor_state::idle;
      return {false, config_.poll_interval};
    }
    state_ = retry_in;
    return {false, config_.store_backoff * (1 << (store_attempts_ - 1))};
  }

  /// S4 zone guard: compares with the plan this enactor last applied, when still retained.
  bool zone_share_allowed(const plan& next) const {
    if (next.bulk_change_intended() || applied_ == generation_none) return true;
    auto previous = registry_->pin(applied_);
    if (!previous) return true;  // nothing to compare with; the endpoint guard still applies
    std::size_t changed = 0;
    for (const endpoint_entry* entry : (*previous)->endpoints()) {
      // An unmarked empty entry was never served: the endpoint guard refuses to commit it, so a
      // run can only have counted it done because the endpoint already served something newer.
      // Measuring against it would call the zone's real state a large change and refuse every
      // later plan while holding the lease (S6; simulator seed 0x1da7e, docs/simulator.md).
      if (entry->records.empty() && !entry->records.intended_empty()) continue;
      const endpoint_entry* now = next.find(entry->name, entry->name_hash);
      if (now == nullptr || (now != entry && !(now->records == entry->records))) ++changed;
    }
    const std::size_t total = (*previous)->size();
    if (total == 0 || static_cast<double>(changed) <= config_.zone_change_share_max * static_cast<double>(total)) {
      return true;
    }
    // Large compared with what this enactor last applied; still intended if a plan in between
    // marks it. An enactor that missed the marked plan (a planner burst, a pause) would otherwise
    // refuse every later plan while it holds the lease, and nothing would ever converge (S6;
    // found by the simulator, seed 0x7f, docs/simulator.md).
    return bulk_change_between(applied_, next.gen());
  }

  /// Whether a plan strictly between `after` and `before` is marked bulk-change. A generation
  /// that is not retained (collected, or never published) counts as unknown and is given the
  /// benefit of the doubt, as a collected base plan is above. Lock-free, O(before - after) pins,
  /// at most zone_guard_scan_max; never allocates.
  bool bulk_change_between(generation after, generation before) const noexcept {
    PLANFENCE_ASSERT(after < before);
    if (before.value() - after.value() > zone_guard_scan_max) return true;  // cannot read the chain
    for (std::uint64_t g = after.value() + 1; g < before.value(); ++g) {
      auto between = registry_->pin(generation{g});
      if (!between || (*between)->bulk_change_intended()) return true;
    }
    return false;
  }

  /// S4 endpoint guard: never empty an endpoint by accident; bound the share of records removed.
  bool endpoint_change_allowed(const endpoint_entry& entry) const {
    if (entry.records.empty()) return entry.records.intended_empty();
    if (config_.endpoint_change_share_max >= 1.0 || seen_.gen == generation_none) return true;
    detail::epoch_guard guard = detail::epoch_domain::pin();
    const plan* before = registry_->find(seen_.gen, guard);
    const endpoint_entry* old = before == nullptr ? nullptr : before->find(entry.name, entry.name_hash);
    if (old == nullptr || old->records.empty()) return true;
    const std::size_t removed = records_removed(old->records, entry.records);
    return static_cast<double>(removed) <= config_.endpoint_change_share_max * static_cast<double>(old->records.size());
  }

  Store* store_;
  Authority* authority_;
  Registry* registry_;
  const Clock* clock_;
  enactor_config config_;
  Sink sink_;
  enactor_counters counters_;

  enactor_state state_ = enactor_state::acquire_lease;
  std::optional<lease> lease_;
  bool fence_raised_ = false;  // the store accepted lease_->fence as its floor
  pinned_plan plan_;
  std::size_t cursor_ = 0;                // the endpoint of plan_ being applied, by position
  detail::endpoint_iterator position_{};  // and by iterator (O(1) per step, no tree descent)
  endpoint_handle handle_{};
  stamp seen_{};
  std::uint32_t conflicts_ = 0;
  std::uint32_t store_attempts_ = 0;
  bool run_complete_ = true;
  generation applied_ = generation_none;
  generation refused_ = generation_none;
};

}  // namespace v1
}  // namespace planfence
