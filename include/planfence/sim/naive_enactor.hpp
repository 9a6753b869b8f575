// planfence/sim/naive_enactor.hpp: THE BROKEN REFERENCE. The 2025 enactor design, rebuilt so the
// simulator and the tests can watch it fail. Never embed it; use planfence::enactor (enactor.hpp).
//
// What it is: a faithful model of the DNS Enactor described in the provider's post-event summary
// of the October 2025 us-east-1 outage (README; docs/simulator.md), written as an explicit step
// machine with the same step() shape as the fixed enactor, so that one scheduler drives both:
//  - a ONE-TIME freshness check at the start of a run: the plan must be newer than the plan the
//    store says was applied (the generation its first endpoint serves), and is never checked
//    again (fault 1: time of check to time of use);
//  - per-endpoint writes that are atomic but UNCONDITIONAL (it is meant to run over
//    basic_memory_store<..., commit_rule::unconditional>), carrying no fence token (fault 2);
//  - endpoints that refer to plan-owned record sets: the memory store serves an endpoint from the
//    plan its stamp names, so deleting that plan empties the endpoint;
//  - a CLEAN-UP after each run that deletes every plan more than `cleanup_threshold` generations
//    older than the one it just applied, looking at generations only (it is meant to run over
//    basic_plan_registry<collection_check::none>; fault 3);
//  - no blast-radius guard, no digest check, no self-healing: when it finds an endpoint whose
//    plan is gone it STOPS, and stays stopped (fault 4: the automation wedges).
//
//     using naive_registry = planfence::basic_plan_registry<planfence::collection_check::none>;
//     using naive_store = planfence::basic_memory_store<naive_registry, planfence::commit_rule::unconditional>;
//     planfence::sim::naive_enactor<naive_store, naive_registry, planfence::manual_clock> e{store, registry, clock, {}};
//     while (!e.stopped()) e.step();
//
// It pins the plan it applies only so that reading it is memory-safe in C++: the broken registry
// ignores pins when it collects (as the 2025 clean-up ignored the delayed enactor), and the last
// unpin frees the memory. The 2025 design had no such pins; they change nothing it decides.
//
// Retries: a write the store refuses as unavailable is retried forever with capped exponential
// backoff, as the delayed 2025 enactor "kept retrying".
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "../clock.hpp"
#include "../config.hpp"
#include "../enactor.hpp"
#include "../events.hpp"
#include "../ids.hpp"
#include "../registry.hpp"
#include "../result.hpp"
#include "../store.hpp"
#include "checked_build.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

/// Tuning of the naive enactor.
struct naive_config {
  std::string name = "naive";
  /// How long an idle enactor waits before looking for a newer plan.
  std::chrono::milliseconds poll_interval{100};
  /// Backoff after a failed write, doubled per attempt up to 2^retry_doublings_max times.
  std::chrono::milliseconds retry_backoff{50};
  std::uint32_t retry_doublings_max = 4;
  /// The clean-up deletes plans more than this many generations older than the one just applied.
  std::uint64_t cleanup_threshold = 3;
};

/// Where a naive enactor is in its cycle.
enum class naive_state : std::uint8_t {
  pick_plan,       ///< next step takes the newest plan
  check_fresh,     ///< next step makes the one-time freshness check
  read_endpoint,   ///< next step reads the current endpoint (and stops if its plan is gone)
  write_endpoint,  ///< next step writes the current endpoint, unconditionally
  clean_up,        ///< next step deletes plans older than applied - threshold
  stopped,         ///< found an endpoint whose plan is gone: does nothing, forever
};

[[nodiscard]] constexpr std::string_view to_string(naive_state s) noexcept {
  switch (s) {
    case naive_state::pick_plan: return "pick_plan";
    case naive_state::check_fresh: return "check_fresh";
    case naive_state::read_endpoint: return "read_endpoint";
    case naive_state::write_endpoint: return "write_endpoint";
    case naive_state::clean_up: return "clean_up";
    case naive_state::stopped: return "stopped";
  }
  return "?";
}

/// What the naive enactor needs from a store: the record_store operations plus a read of what an
/// endpoint serves (to notice that its plan is gone).
template <class S>
concept naive_store = record_store<S> && requires(const S& s, endpoint_handle h) {
  { s.read(h).plan_missing() } -> std::convertible_to<bool>;
  { s.read(h).gen() } -> std::same_as<generation>;
  { s.read(h).fence() } -> std::same_as<fence_token>;
};

/// The broken 2025 enactor (see the header comment). Never embed it.
template <naive_store Store, class Registry, clock Clock, event_sink Sink = null_sink>
class naive_enactor {
 public:
  naive_enactor(Store& store, Registry& registry, const Clock& clock, naive_config config = {}, Sink sink = {})
      : store_(&store), registry_(&registry), clock_(&clock), config_(std::move(config)), sink_(std::move(sink)) {
    PLANFENCE_ASSERT(config_.poll_interval.count() > 0);
    PLANFENCE_ASSERT(config_.retry_doublings_max < 16);
  }

  /// Performs the next step: at most one store or registry interaction.
  step_result step() {
    switch (state_) {
      case naive_state::pick_plan: return step_pick();
      case naive_state::check_fresh: return step_check();
      case naive_state::read_endpoint: return step_read();
      case naive_state::write_endpoint: return step_write();
      case naive_state::clean_up: return step_clean_up();
      case naive_state::stopped: return {false, config_.poll_interval};
    }
    return {};
  }

  /// Forgets everything volatile, as a crash and restart would. (A restarted 2025 enactor found
  /// the same deleted plan again: restarting does not repair the store.)
  void crash() noexcept {
    plan_.reset();
    state_ = naive_state::pick_plan;
    applied_ = generation_none;
    checked_ = generation_none;
    attempts_ = 0;
    stopped_endpoint_.clear();
    stopped_on_ = generation_none;
  }

  [[nodiscard]] naive_state state() const noexcept { return state_; }
  [[nodiscard]] bool stopped() const noexcept { return state_ == naive_state::stopped; }
  /// The endpoint whose missing plan stopped it, and that plan's generation.
  [[nodiscard]] std::string_view stopped_endpoint() const noexcept { return stopped_endpoint_; }
  [[nodiscard]] generation stopped_on_generation() const noexcept { return stopped_on_; }
  /// True when no step can ever change anything again unless a plan newer than `newest` is
  /// published: it stopped, or it is waiting for a plan and has applied or dismissed `newest`.
  [[nodiscard]] bool idle_for_good(generation newest) const noexcept {
    if (state_ == naive_state::stopped) return true;
    return state_ == naive_state::pick_plan && (newest <= applied_ || newest == checked_);
  }
  [[nodiscard]] generation applied_generation() const noexcept { return applied_; }
  [[nodiscard]] generation applying_generation() const noexcept { return plan_ ? plan_->gen() : generation_none; }
  /// The endpoint the current run reads or writes next (empty outside a run).
  [[nodiscard]] std::string_view current_endpoint() const noexcept {
    if (!plan_ || cursor_ >= plan_->size()) return {};
    return plan_->endpoints()[cursor_]->name;
  }
  [[nodiscard]] const enactor_counters& counters() const noexcept { return counters_; }
  [[nodiscard]] const naive_config& config() const noexcept { return config_; }

 private:
  [[nodiscard]] std::chrono::nanoseconds now_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_->now().time_since_epoch());
  }
  void emit(event_kind kind, generation gen, std::string_view endpoint = {}) {
    counters_.count(kind);
    sink_(event{kind, gen, fence_token{}, endpoint, now_ns(), config_.name, {}});
  }

  step_result step_pick() {
    pinned_plan newest = registry_->pin_latest();
    if (!newest || newest->gen() <= applied_ || newest->gen() == checked_) return {false, config_.poll_interval};
    plan_ = std::move(newest);
    state_ = naive_state::check_fresh;
    return {};
  }

  // The one-time check: is this plan newer than the one the store says was applied? The store
  // keeps no such marker of its own, so, like a TXT marker record, the first endpoint's stamp
  // stands for it. Nothing later looks again.
  step_result step_check() {
    if (plan_->size() == 0) return finish_run();
    const std::string_view first = plan_->endpoints()[0]->name;
    auto handle = store_->resolve(first);
    if (!handle) return skip_plan(first);
    auto seen = store_->read_stamp(*handle);
    if (!seen) return retry_later(first);
    attempts_ = 0;
    if (seen->gen >= plan_->gen()) return skip_plan(first);
    emit(event_kind::plan_pinned, plan_->gen());
    cursor_ = 0;
    state_ = naive_state::read_endpoint;
    return {};
  }

  step_result step_read() {
    const endpoint_entry& entry = *plan_->endpoints()[cursor_];
    auto handle = store_->resolve(entry.name);
    if (!handle) {
      emit(event_kind::unknown_endpoint, plan_->gen(), entry.name);
      return next_endpoint();
    }
    const auto served = store_->read(*handle);
    if (served.plan_missing()) {
      // The 2025 enactors could not reconcile an endpoint whose plan was deleted: they stopped.
      stopped_endpoint_ = entry.name;
      stopped_on_ = served.gen();
      plan_.reset();
      state_ = naive_state::stopped;
      return {false, config_.poll_interval};
    }
    handle_ = *handle;
    seen_ = stamp{served.gen(), served.fence(), 0};
    state_ = naive_state::write_endpoint;
    return {};
  }

  step_result step_write() {
    const endpoint_entry& entry = *plan_->endpoints()[cursor_];
    // Atomic, but unconditional: whatever the endpoint serves now is overwritten.
    auto written = store_->commit(handle_, seen_, stamp{plan_->gen(), fence_token{}, 0}, entry.records);
    if (!written) {
      if (written.error().code == errc::store_unavailable) return retry_later(entry.name);
      emit(event_kind::stale, plan_->gen(), entry.name);  // only a conditional store says no
      return next_endpoint();
    }
    attempts_ = 0;
    emit(event_kind::applied, plan_->gen(), entry.name);
    return next_endpoint();
  }

  step_result step_clean_up() {
    // Deletes every plan "significantly older than the one it just applied", by generation only.
    const std::uint64_t applied = applied_.value();
    for (generation g : registry_->retained()) {
      if (g.value() + config_.cleanup_threshold >= applied) break;
      if (registry_->collect_one(g, [&] { return store_->live_generations(); })) emit(event_kind::collected, g);
    }
    state_ = naive_state::pick_plan;
    return {};
  }

  step_result next_endpoint() {
    if (++cursor_ < plan_->size()) {
      state_ = naive_state::read_endpoint;
      return {};
    }
    return finish_run();
  }

  step_result finish_run() {
    applied_ = plan_->gen();
    emit(event_kind::plan_applied, applied_);
    plan_.reset();
    state_ = naive_state::clean_up;
    return {};
  }

  step_result skip_plan(std::string_view first) {
    emit(event_kind::stale, plan_->gen(), first);
    checked_ = plan_->gen();
    plan_.reset();
    state_ = naive_state::pick_plan;
    return {false, config_.poll_interval};
  }

  step_result retry_later(std::string_view endpoint) {
    emit(event_kind::store_error, plan_->gen(), endpoint);
    const std::uint32_t doublings = std::min(attempts_, config_.retry_doublings_max);
    ++attempts_;
    return {false, config_.retry_backoff * (1 << doublings)};
  }

  Store* store_;
  Registry* registry_;
  const Clock* clock_;
  naive_config config_;
  Sink sink_;
  enactor_counters counters_;

  naive_state state_ = naive_state::pick_plan;
  pinned_plan plan_;
  std::size_t cursor_ = 0;
  endpoint_handle handle_{};
  stamp seen_{};
  std::uint32_t attempts_ = 0;
  generation applied_ = generation_none;
  generation checked_ = generation_none;
  std::string stopped_endpoint_;
  generation stopped_on_ = generation_none;
};

}  // namespace sim
}  // namespace v1
}  // namespace planfence
