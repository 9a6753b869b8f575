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
// Batches: endpoints go to the store enactor_config::batch_max at a time, one read_stamps and one
// commit_batch per batch (a store that is not a batched_store gets one read and one commit per
// endpoint). Every endpoint of a batch is still decided on its own: S1 and S2 by the store's
// per-item conditions, S4 by the endpoint guard before the batch is sent.
//
// Cost: one step is one store, lease or registry operation plus bookkeeping; the apply path
// (read_stamp and commit steps) never allocates (the batch's arrays are sized at construction, up
// to 1,024 slots; a larger batch_max grows them once, at the first batch of a run that needs
// more), never throws, and blocks only as long as the store's call; collection allocates and takes the
// registry's mutex.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

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
  /// Endpoints read and committed per store call (read_stamps, commit_batch), 1 to 65,536, or 0
  /// (the default) for what the store asks for (planfence::preferred_batch_max: every endpoint of
  /// a zone-file plan in one rewrite per zone, up to 65,536; an etcd transaction's worth; 500 for
  /// RFC 2136; 64 for a store that does not say, such as the memory store). A remote store pays
  /// one round trip per batch instead of one per endpoint, and splits a batch further to fit its
  /// own limits. 1 gives the one-endpoint-per-step machine of the simulator's scripted replays.
  /// Memory: about 100 bytes per slot, for up to 1,024 slots at construction; beyond that the
  /// arrays grow at the first batch of a run that needs more, never past the run's size.
  std::uint32_t batch_max = 0;
  /// Re-reads of one batch's conflicting endpoints before the run leaves them for the next run.
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
  /// Check each plan's digest before applying it (S7): plan::verify_once, O(plan size) the first
  /// time a plan object is checked and O(1) after (plan_registry::publish checks it on the
  /// publishing thread, so an enactor pinning it from there pays O(1)).
  bool verify_digest = true;
  /// With a change_following_store: write only the endpoints the plan changes (the diff against
  /// the store's applied plan and the plans whose apply has begun since), so that an apply costs
  /// O(changed) store writes. false: write every endpoint of the plan (a repair; planfence-ctl's
  /// applies), still under the store's apply marks. Ignored by other stores (every endpoint).
  bool follow_changes = true;
  /// With follow_changes: when more than this many plans lie between the applied and the begun
  /// mark (applies begun and never finished), the plan is written whole instead of diffed
  /// against each of them (each is pinned and diffed: O(this) registry calls).
  std::uint32_t diff_inputs_max = 64;
};

/// Where an enactor is in its cycle. Names match docs/design.md and the Spin models.
enum class enactor_state : std::uint8_t {
  acquire_lease,  ///< next step asks for a lease
  raise_fence,    ///< next step raises the store's fence floor to our token
  pin_plan,       ///< next step pins the newest plan
  read_marks,     ///< next step reads the store's apply marks (change_following_store)
  plan_diff,      ///< next step pins the diff's input plans and lists the endpoints to write
  begin_apply,    ///< next step raises the store's begun mark to the plan
  read_stamp,     ///< next step reads the stamps of the current batch of endpoints
  commit,         ///< next step commits the current batch
  finish_apply,   ///< next step raises the store's applied mark to the plan
  collect,        ///< next step collects old plans
  idle,           ///< waiting for a newer plan (or for the lease to be free)
};

[[nodiscard]] constexpr std::string_view to_string(enactor_state s) noexcept {
  switch (s) {
    case enactor_state::acquire_lease: return "acquire_lease";
    case enactor_state::raise_fence: return "raise_fence";
    case enactor_state::pin_plan: return "pin_plan";
    case enactor_state::read_marks: return "read_marks";
    case enactor_state::plan_diff: return "plan_diff";
    case enactor_state::begin_apply: return "begin_apply";
    case enactor_state::read_stamp: return "read_stamp";
    case enactor_state::commit: return "commit";
    case enactor_state::finish_apply: return "finish_apply";
    case enactor_state::collect: return "collect";
    case enactor_state::idle: return "idle";
  }
  return "?";
}

/// Which change-following apply an enactor makes. Only `fixed` keeps S1 with unchanged endpoints;
/// the other is the broken variant the tests build on purpose to show them catching it. Never
/// embed a broken variant.
enum class apply_variant : std::uint8_t {
  fixed,               ///< the diff covers the applied plan and every plan whose apply has begun
  diff_without_begun,  ///< broken: diffs against the applied plan only, so an endpoint a begun
                       ///< (unfinished) apply wrote keeps that plan's records under a newer
                       ///< effective generation (docs/design.md)
};

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
template <record_store Store, lease_authority Authority, enactor_registry Registry, clock Clock, event_sink Sink = null_sink,
          apply_variant Variant = apply_variant::fixed>
class enactor {
 public:
  /// The S4 zone guard reads the plans between the last applied one and a new one, at most this
  /// many (beyond it the chain is unknown and the change is not refused for that reason).
  static constexpr std::uint64_t zone_guard_scan_max = 1024;
  /// The largest enactor_config::batch_max.
  static constexpr std::uint32_t batch_max_limit = planfence::batch_max_limit;
  /// Batch slots allocated at construction; a larger batch_max grows them when a run needs it.
  static constexpr std::uint32_t batch_slots_at_construction = 1024;

  enactor(Store& store, Authority& authority, Registry& registry, const Clock& clock, enactor_config config = {},
          Sink sink = {})
      : store_(&store), authority_(&authority), registry_(&registry), clock_(&clock), config_(std::move(config)),
        sink_(std::move(sink)) {
    PLANFENCE_ASSERT(config_.renew_margin < config_.lease_ttl);
    PLANFENCE_ASSERT(config_.endpoint_change_share_max > 0.0 && config_.endpoint_change_share_max <= 1.0);
    PLANFENCE_ASSERT(config_.zone_change_share_max > 0.0 && config_.zone_change_share_max <= 1.0);
    PLANFENCE_ASSERT(config_.retention.keep_newest >= 1);
    if (config_.batch_max == 0) config_.batch_max = preferred_batch_max(store);
    PLANFENCE_ASSERT(config_.batch_max >= 1 && config_.batch_max <= batch_max_limit);
    grow_batch(std::min(config_.batch_max, batch_slots_at_construction));
  }

  /// The batch size in use: enactor_config::batch_max, or the store's preferred_batch_max when
  /// that was 0.
  [[nodiscard]] std::uint32_t batch_max() const noexcept { return config_.batch_max; }

  /// Performs the next step. Never throws; allocates only in the collect step, on a store's
  /// error path, and when a run needs more batch slots than any run before (batch_max above 1,024).
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
      case enactor_state::read_marks: return step_read_marks();
      case enactor_state::plan_diff: return step_plan_diff();
      case enactor_state::begin_apply: return step_begin_apply();
      case enactor_state::read_stamp: return step_read();
      case enactor_state::commit: return step_commit();
      case enactor_state::finish_apply: return step_finish_apply();
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
    end_plan();
    if (lease_) static_cast<void>(authority_->release(*lease_));
    lease_.reset();
    fence_raised_ = false;
    batch_size_ = 0;
    state_ = enactor_state::acquire_lease;
  }

  /// Forgets everything but configuration, as a crash and restart would (the simulator uses it).
  void crash() noexcept {
    end_plan();
    lease_.reset();
    fence_raised_ = false;
    batch_size_ = 0;
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
  /// Endpoints the current (or last) run writes: the plan's changes, or all of it.
  [[nodiscard]] std::size_t run_endpoints() const noexcept { return run_total(); }
  /// Whether the current (or last) run writes only the plan's changes.
  [[nodiscard]] bool run_follows_changes() const noexcept { return !full_; }
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
    end_plan();
    lease_.reset();
    fence_raised_ = false;
    batch_size_ = 0;
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
    if (config_.verify_digest && !newest->verify_once()) {
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
    full_ = true;
    start_writes();
    if constexpr (change_following_store<Store>) {
      marks_conflicts_ = 0;
      state_ = enactor_state::read_marks;
      return {};
    }
    state_ = run_total() == 0 ? finish_run() : enactor_state::read_stamp;
    return {};
  }

  /// The run's write cursor at its start: every endpoint of the plan (full_) or of changes_.
  void start_writes() noexcept {
    cursor_ = 0;
    position_ = plan_->endpoints().begin();
    batch_size_ = 0;
    items_size_ = 0;
    conflicts_ = 0;
    run_complete_ = true;
  }
  [[nodiscard]] std::size_t run_total() const noexcept {
    return full_ ? (plan_ ? plan_->size() : 0) : changes_.size();
  }
  /// Drops the plan and the diff's input plans (their pins).
  void end_plan() noexcept {
    plan_.reset();
    inputs_.clear();
  }

  // --- the apply marks (change_following_store; docs/design.md) ---------------------------------

  /// One store call: the marks. The plan is already applied (nothing to write), superseded by a
  /// begun newer one (stale as a whole), or to be diffed.
  step_result step_read_marks() {
    if constexpr (change_following_store<Store>) {
      auto marks = store_->read_marks();
      if (!marks) return store_trouble(enactor_state::read_marks, marks.error());
      store_attempts_ = 0;
      marks_ = *marks;
      const generation gen = plan_->gen();
      // Applied: every endpoint serves it or newer (effective generations). A repair run
      // (follow_changes off) still writes a plan equal to the applied mark: its records are
      // what the endpoints already serve, so nothing moves backwards.
      if (marks_.applied > gen || (marks_.applied == gen && config_.follow_changes)) {
        full_ = true;
        state_ = finish_run();
        return {};
      }
      if (marks_.begun > gen) {
        // A newer plan's apply has begun: this one is stale as a whole (S1), and writing any of
        // its endpoints could put older records under a newer effective generation.
        emit(event_kind::stale, gen, {}, "a newer plan's apply has begun");
        end_plan();
        state_ = enactor_state::idle;
        return {false, config_.poll_interval};
      }
      state_ = enactor_state::plan_diff;
    }
    return {};
  }

  /// Registry calls and local work: pins the diff's inputs (the applied plan and every plan whose
  /// apply may have begun since) and lists the endpoints of the plan that differ from the applied
  /// plan in it or in any of them. A begun plan that is gone is left out (see below); the applied
  /// plan gone, none applied yet, or too many plans between the marks: the whole plan is written
  /// instead, which needs no input.
  /// Allocates (the list, once grown to the largest change; the inputs' handles).
  step_result step_plan_diff() {
    const generation gen = plan_->gen();
    const generation base = marks_.applied;
    // The zone guard walked this plan against `base` when it pinned it (the usual case: the marks
    // say applied what this enactor applied last): changes_ holds that walk's list.
    const bool walked = changes_against_ == base && changes_of_ == gen;
    changes_against_ = generation_none;
    inputs_.clear();
    if (!walked) changes_.clear();
    bool full = !config_.follow_changes || base == generation_none ||
                marks_.begun.value() - base.value() > config_.diff_inputs_max;
    for (std::uint64_t g = base.value(); !full && g <= marks_.begun.value() && g < gen.value(); ++g) {
      auto input = registry_->pin(generation{g});
      if (input) {
        inputs_.push_back(std::move(*input));
      } else if (g == base.value()) {
        full = true;  // the applied plan itself: without it there is nothing to diff against
      }
      // A plan between the marks that is gone is left out: it was never begun, or collection
      // found no endpoint serving it (the live set holds every effective generation), so every
      // endpoint its apply wrote holds a newer plan's records since. Verified by Spin
      // (tests/spin/change.pml, SKIP_MISSING_INPUT, docs/model.md).
    }
    full_ = full;
    if (full) {
      inputs_.clear();
      changes_.clear();
    } else {
      const plan& applied = *inputs_.front();
      if (!walked) {
        for_each_difference(applied, *plan_, [&](const endpoint_entry*, const endpoint_entry* now) {
          if (now != nullptr) changes_.push_back(now);
        });
      }
      const std::size_t begun_inputs = Variant == apply_variant::fixed ? inputs_.size() : 1;
      for (std::size_t i = 1; i < begun_inputs; ++i) {
        // What a begun apply of this plan may have written: the plan's own record for it now.
        for_each_difference(applied, *inputs_[i], [&](const endpoint_entry* before, const endpoint_entry* begun) {
          const endpoint_entry& named = begun != nullptr ? *begun : *before;
          if (const endpoint_entry* now = plan_->find(named.name, named.name_hash)) changes_.push_back(now);
        });
      }
      // In name order (deterministic batches), each endpoint once.
      std::sort(changes_.begin(), changes_.end(),
                [](const endpoint_entry* x, const endpoint_entry* y) { return x->name < y->name; });
      changes_.erase(std::unique(changes_.begin(), changes_.end()), changes_.end());
    }
    start_writes();
    // Joining an apply of this plan already begun, or beginning it before the first commit (or
    // before finishing, when nothing is left to write): the begin comes as late as it can, so
    // that a run that resolves no endpoint (a store without the plan's zones) reports each of
    // them before it touches the marks.
    begun_ = marks_.begun >= gen;
    finished_ = false;
    state_ = run_total() == 0 ? next_after_writes() : enactor_state::read_stamp;
    return {};
  }

  /// Once every endpoint of the run is decided: the applied mark, after the begun one.
  enactor_state next_after_writes() const noexcept {
    return begun_ ? enactor_state::finish_apply : enactor_state::begin_apply;
  }

  /// One store call: the begun mark raised to the plan, so that a later apply diffs against it
  /// too (what this one writes before it finishes). The marks moved: read them again.
  step_result step_begin_apply() {
    if constexpr (change_following_store<Store>) {
      const generation gen = plan_->gen();
      auto begun = store_->begin_apply(marks_, gen, lease_->fence);
      if (!begun) return begin_refused(begun.error());
      store_attempts_ = 0;
      marks_ = *begun;
      begun_ = true;
      // The batch read before the begin is committed now (stamps only grow: its stale and
      // fenced decisions still hold, and each commit is conditional on the stamp it read).
      state_ = items_size_ > 0 ? enactor_state::commit : enactor_state::finish_apply;
    }
    return {};
  }

  /// The begin was refused (by begin_apply, or with a batch): fenced loses the lease; conflict
  /// (the marks moved) reads them again, bounded; another error is the store's trouble.
  step_result begin_refused(const error& why) {
    const generation gen = plan_->gen();
    switch (why.code) {
      case errc::fenced:
        emit(event_kind::fenced, gen, {}, "apply marks");
        lose_lease();
        return {};
      case errc::conflict:
        if (++marks_conflicts_ > config_.conflict_retries_max) {
          emit(event_kind::conflict, gen, {}, "apply marks: giving up for this run");
          end_plan();
          state_ = enactor_state::idle;
          return {false, config_.poll_interval};
        }
        emit(event_kind::conflict, gen, {}, "apply marks");
        inputs_.clear();
        state_ = enactor_state::read_marks;
        return {};
      default: return store_trouble(enactor_state::begin_apply, why);
    }
  }

  /// One store call: the applied mark raised to the plan, once every endpoint to write was written
  /// or found newer. From then on the endpoints the plan did not change serve it (effective
  /// generation) without having been written.
  step_result step_finish_apply() {
    if constexpr (change_following_store<Store>) {
      const generation gen = plan_->gen();
      auto done = store_->finish_apply(gen, lease_->fence);
      if (!done) {
        if (done.error().code == errc::fenced) {
          emit(event_kind::fenced, gen, {}, "apply marks");
          lose_lease();
          return {};
        }
        return store_trouble(enactor_state::finish_apply, done.error());
      }
      store_attempts_ = 0;
      marks_ = *done;
      state_ = finish_run();
    }
    return {};
  }

  /// Takes the next endpoints of the plan into the batch, up to batch_max, resolving each name
  /// (a name the store does not know is reported and skipped). Local: no store round trip.
  void gather() {
    PLANFENCE_ASSERT(batch_size_ == 0);
    const std::size_t total = run_total();
    // Beyond the slots taken at construction, only as many as the rest of this run needs.
    if (batch_.size() < config_.batch_max && batch_.size() < total - cursor_) {
      grow_batch(static_cast<std::uint32_t>(std::min<std::size_t>(config_.batch_max, total - cursor_)));
    }
    while (cursor_ < total && batch_size_ < config_.batch_max) {
      const endpoint_entry& entry = full_ ? **position_ : *changes_[cursor_];
      if (full_) ++position_;
      ++cursor_;
      auto handle = store_->resolve(entry.name);
      if (!handle) {
        emit(event_kind::unknown_endpoint, plan_->gen(), entry.name, handle.error().detail.view());
        continue;
      }
      PLANFENCE_ASSERT(batch_size_ < batch_.size());  // grown above for this run
      batch_[batch_size_] = &entry;
      handles_[batch_size_] = *handle;
      ++batch_size_;
    }
    conflicts_ = 0;
  }

  /// One store call: the stamps of the batch. Decides each endpoint as a single read would:
  /// stale (S1), fenced (S2, the lease is lost), refused by the endpoint guard (S4), or to commit.
  step_result step_read() {
    if (batch_size_ == 0) gather();
    if (batch_size_ == 0) return end_of_batch();
    const std::span<const endpoint_handle> handles(handles_.data(), batch_size_);
    const std::span<stamp> seen(seen_.data(), batch_size_);
    result<void> read = [&] {
      if constexpr (batched_store<Store>) {
        return store_->read_stamps(handles, seen);
      } else {
        return read_each(*store_, handles, seen);
      }
    }();
    if (!read) return store_trouble(enactor_state::read_stamp, read.error());
    store_attempts_ = 0;
    const generation gen = plan_->gen();
    items_size_ = 0;
    for (std::size_t i = 0; i < batch_size_; ++i) {
      const endpoint_entry& entry = *batch_[i];
      if (seen[i].gen >= gen) {
        emit(event_kind::stale, gen, entry.name);  // S1: never move an endpoint backwards
        continue;
      }
      if (seen[i].fence > lease_->fence) {
        emit(event_kind::fenced, gen, entry.name);  // S2: someone newer holds the lease
        lose_lease();
        return {};
      }
      // What the endpoint serves: its stamp's plan, or the applied plan when the stamp is older
      // (effective generation; the same records, and that plan is retained).
      const generation serving = follows_marks() ? effective_generation(seen[i].gen, marks_) : seen[i].gen;
      if (!endpoint_change_allowed(entry, serving)) {
        emit(event_kind::refused_blast_radius, gen, entry.name);
        run_complete_ = false;
        continue;
      }
      items_[items_size_] = commit_item{handles_[i], seen[i], stamp{gen, lease_->fence, 0}, &entry.records};
      batch_[items_size_] = &entry;  // the batch now lists the items' entries, in item order
      ++items_size_;
    }
    batch_size_ = items_size_;
    if (items_size_ == 0) return end_of_batch();
    // A store that writes the marks with a batch begins with the first commit instead.
    state_ = follows_marks() && !begun_ && !folds_marks() ? enactor_state::begin_apply : enactor_state::commit;
    return {};
  }

  /// One store call: the batch committed, each item under its own condition. Conflicting items
  /// are read again (bounded by conflict_retries_max per batch), items left pending by a store
  /// error are retried with backoff (store_retries_max).
  step_result step_commit() {
    const std::span<commit_item> items(items_.data(), items_size_);
    const generation gen = plan_->gen();
    [[maybe_unused]] batch_marks marks{};
    result<void> done = [&] {
      if constexpr (marks_batch_store<Store>) {
        // The begin with the first batch; the finish with the last, when every endpoint before
        // it was decided (the store writes it only if every item of this one is too).
        marks.begin = begun_ ? nullptr : &marks_;
        marks.finish = run_complete_ && cursor_ >= run_total();
        marks.target = gen;
        marks.token = lease_->fence;
        return store_->commit_batch(items, marks);
      } else if constexpr (batched_store<Store>) {
        return store_->commit_batch(items);
      } else {
        return commit_each(*store_, items);
      }
    }();
    if constexpr (marks_batch_store<Store>) {
      if (marks.begin_refused) return begin_refused(done.error());
      if (marks.began || marks.finished) {
        marks_ = marks.marks;
        begun_ = true;
        finished_ = marks.finished;
      }
    }
    std::size_t again = 0;  // the batch's next working set: conflicting and pending items
    bool fenced = false, conflicted = false;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const endpoint_entry& entry = *batch_[i];
      switch (items[i].outcome) {
        case commit_outcome::written: emit(event_kind::applied, gen, entry.name); continue;
        case commit_outcome::stale: emit(event_kind::stale, gen, entry.name); continue;
        case commit_outcome::fenced:
          emit(event_kind::fenced, gen, entry.name);
          fenced = true;
          continue;
        case commit_outcome::conflict: emit(event_kind::conflict, gen, entry.name); conflicted = true; break;
        case commit_outcome::pending: break;
      }
      batch_[again] = &entry;
      handles_[again] = items[i].endpoint;
      items_[again] = items[i];
      ++again;
    }
    if (fenced) {
      lose_lease();
      return {};
    }
    batch_size_ = again;
    items_size_ = again;
    if (!done) {
      if (done.error().code == errc::store_unavailable) return store_trouble(enactor_state::read_stamp, done.error());
      // Nothing is written before the begun mark: without it, the begin on its own first (then
      // the commit again, which goes one by one if it fails the same way).
      if (follows_marks() && !begun_) {
        state_ = enactor_state::begin_apply;
        return {};
      }
      // Not an outage but something the store cannot take (an item too large for any message or
      // transaction, a value it refuses), which may hold back the whole batch: one at a time, so
      // that only that item fails and the others are not held back run after run (S6).
      if (again > 1) return commit_one_by_one();
      // The one item left undecided waits for the next run; the run is incomplete.
      const std::string message = done.error().message();
      emit(event_kind::store_error, gen, batch_size_ > 0 ? std::string_view(batch_[0]->name) : std::string_view{},
           message);
      run_complete_ = false;
      batch_size_ = 0;
      return end_of_batch();
    }
    store_attempts_ = 0;
    if (conflicted && ++conflicts_ > config_.conflict_retries_max) {
      run_complete_ = false;  // leave them to the next run
      batch_size_ = 0;
    }
    return end_of_batch();
  }

  /// The undecided items of a batch the store failed on (not an outage), committed one by one
  /// with `commit`. Error path only: several store calls in one step. Conflicting items and items
  /// the store could not reach are read again; an item the store refuses alone is reported as a
  /// store_error naming it, and the run is incomplete.
  step_result commit_one_by_one() {
    const generation gen = plan_->gen();
    std::size_t again = 0;
    std::optional<error> outage;
    for (std::size_t i = 0; i < items_size_; ++i) {
      const commit_item item = items_[i];
      const endpoint_entry& entry = *batch_[i];
      auto one = store_->commit(item.endpoint, item.expected, item.desired, *item.records);
      if (one) {
        emit(event_kind::applied, gen, entry.name);
        continue;
      }
      switch (one.error().code) {
        case errc::stale: emit(event_kind::stale, gen, entry.name); continue;
        case errc::fenced:
          emit(event_kind::fenced, gen, entry.name, one.error().detail.view());
          lose_lease();
          return {};
        case errc::conflict: emit(event_kind::conflict, gen, entry.name); break;
        case errc::store_unavailable: outage = one.error(); break;
        default: {
          const std::string message = one.error().message();
          emit(event_kind::store_error, gen, entry.name, message);
          run_complete_ = false;
          continue;
        }
      }
      batch_[again] = &entry;
      handles_[again] = item.endpoint;
      ++again;
    }
    batch_size_ = again;
    if (outage) return store_trouble(enactor_state::read_stamp, *outage);
    if (again > 0 && ++conflicts_ > config_.conflict_retries_max) {
      run_complete_ = false;
      batch_size_ = 0;
    }
    return end_of_batch();
  }

  /// After a read or commit step: the batch's working set next, else the next batch, else the
  /// end of the run.
  step_result end_of_batch() {
    if (batch_size_ == 0 && cursor_ >= run_total()) {
      if (follows_marks() && run_complete_ && !finished_) {
        items_size_ = 0;
        state_ = next_after_writes();
        return {};
      }
      state_ = finish_run();
      return {};
    }
    state_ = enactor_state::read_stamp;
    return {};
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

  enactor_state finish_run() {
    const generation gen = plan_->gen();
    if (run_complete_) {
      applied_ = gen;
      emit(event_kind::plan_applied, gen);
    }
    end_plan();
    return config_.collect && run_complete_ ? enactor_state::collect : enactor_state::idle;
  }

  step_result store_trouble(enactor_state retry_in, const error& cause) {
    // Formatting the cause allocates: this is the store's error path, never the apply path's.
    const std::string message = cause.message();
    emit(event_kind::store_error, applying_generation(),
         plan_ && batch_size_ > 0 ? std::string_view(batch_[0]->name) : std::string_view{}, message);
    if (++store_attempts_ > config_.store_retries_max) {
      store_attempts_ = 0;
      end_plan();  // end the run; the next one starts over with the newest plan
      batch_size_ = 0;
      state_ = enactor_state::idle;
      return {false, config_.poll_interval};
    }
    state_ = retry_in;
    return {false, config_.store_backoff * (1 << (store_attempts_ - 1))};
  }

  /// Whether the store keeps apply marks (the runs then begin and finish under them).
  static constexpr bool follows_marks() noexcept { return change_following_store<Store>; }
  /// Whether the store writes the marks with a batch (the begin with the first commit, the
  /// finish with the last).
  static constexpr bool folds_marks() noexcept { return marks_batch_store<Store>; }

  /// S4 zone guard: compares with the plan this enactor last applied, when still retained. With
  /// a store that keeps apply marks, the walk also lists the endpoints of `next` that differ from
  /// that plan (changes_, for step_plan_diff: usually its applied plan too, and then not walked
  /// again).
  bool zone_share_allowed(const plan& next) {
    changes_against_ = generation_none;
    if (next.bulk_change_intended() || applied_ == generation_none) return true;
    auto previous = registry_->pin(applied_);
    if (!previous) return true;  // nothing to compare with; the endpoint guard still applies
    // The endpoints of the previous plan that the next one removes or changes, from the plans'
    // structural diff (what they share is skipped: O(changes log n) for a plan built from it).
    std::size_t changed = 0;
    if constexpr (change_following_store<Store>) changes_.clear();
    for_each_difference(**previous, next, [&](const endpoint_entry* entry, const endpoint_entry* now) {
      if constexpr (change_following_store<Store>) {
        if (now != nullptr) changes_.push_back(now);
      }
      if (entry == nullptr) return;  // added: not a change to what was applied
      // An unmarked empty entry was never served: the endpoint guard refuses to commit it, so a
      // run can only have counted it done because the endpoint already served something newer.
      // Measuring against it would call the zone's real state a large change and refuse every
      // later plan while holding the lease (S6; simulator seed 0x1da7e, docs/simulator.md).
      if (entry->records.empty() && !entry->records.intended_empty()) return;
      ++changed;
    });
    if constexpr (change_following_store<Store>) {
      changes_against_ = applied_;
      changes_of_ = next.gen();
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
  bool endpoint_change_allowed(const endpoint_entry& entry, generation serving) const {
    if (entry.records.empty()) return entry.records.intended_empty();
    if (config_.endpoint_change_share_max >= 1.0 || serving == generation_none) return true;
    detail::epoch_guard guard = detail::epoch_domain::pin();
    const plan* before = registry_->find(serving, guard);
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
  std::size_t cursor_ = 0;                // the next endpoint of plan_ to gather, by position
  detail::endpoint_iterator position_{};  // and by iterator (O(1) per endpoint, no tree descent)
  /// Makes the batch arrays `slots` long (never shorter): at construction, and in gather() before
  /// a batch's first endpoint, when nothing points into them.
  void grow_batch(std::uint32_t slots) {
    if (batch_.size() >= slots) return;
    batch_.resize(slots);
    handles_.resize(slots);
    seen_.resize(slots);
    items_.resize(slots);
  }

  // The batch (min(batch_max, 1,024) slots at construction, grown by gather() up to batch_max
  // when a run needs more; never shrunk): its endpoints, their handles, the stamps read, and the
  // commit items built from them.
  std::vector<const endpoint_entry*> batch_;
  std::vector<endpoint_handle> handles_;
  std::vector<stamp> seen_;
  std::vector<commit_item> items_;
  std::size_t batch_size_ = 0;
  std::size_t items_size_ = 0;
  // The apply marks as last read or written, and the run's diff: its input plans (pinned: the
  // applied plan first, then the begun ones) and the plan's endpoints to write, in name order.
  // full_: the run writes every endpoint of the plan instead.
  apply_marks marks_{};
  std::vector<pinned_plan> inputs_;
  std::vector<const endpoint_entry*> changes_;
  // changes_ as the zone guard left it: the endpoints of plan changes_of_ that differ from plan
  // changes_against_ (generation_none: it left nothing to use).
  generation changes_against_ = generation_none;
  generation changes_of_ = generation_none;
  bool full_ = true;
  bool begun_ = false;  // the begun mark is at this run's plan (raised by it, or joined)
  bool finished_ = false;  // the applied mark was raised with the last batch (marks_batch_store)
  std::uint32_t marks_conflicts_ = 0;
  std::uint32_t conflicts_ = 0;
  std::uint32_t store_attempts_ = 0;
  bool run_complete_ = true;
  generation applied_ = generation_none;
  generation refused_ = generation_none;
};

}  // namespace v1
}  // namespace planfence
