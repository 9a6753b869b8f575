// planfence/sim/simulator.hpp: the deterministic simulator (docs/simulator.md).
//
// What it is: a single-threaded world in which a planner, K enactors and one memory store (behind
// a fault_store) interact one step at a time, with every source of nondeterminism owned by the
// simulator:
//  - time is a manual_clock; each enactor reads it through its own skewed_clock (offset, drift,
//    stalls), the lease authority reads the true time;
//  - order is a seeded scheduler: among the actors that are due, it picks one uniformly and lets
//    it take exactly one step (one lease, registry or store interaction: enactor::step());
//  - faults (pauses, crashes and restarts, clock jumps, store errors at named fault points, store
//    outages, planner bursts, bulk and empty plans, corrupt plans, equivocation attempts) are
//    switched on per seed (scenario.hpp) and drawn from the same seed.
// After EVERY step an oracle reads the store and the registry and checks S1..S5 and S7; then all
// faults heal, the planner publishes one final plan, and S6 requires every endpoint to serve it
// within scenario::heal_steps_max steps.
//
// For the fixed runs the simulator drives planfence::enactor itself (enactor.hpp), the class users
// embed, not a copy; the naive runs drive sim::naive_enactor, the broken 2025 reference. Broken
// variants of the core (a store without the conditional commit or without fencing, a registry
// that ignores the live set or pins) can be plugged in under the fixed enactor to show that the
// oracle catches them (`variant`).
//
//     planfence::sim::run_report r = planfence::sim::run_seed(planfence::sim::variant::fixed, 0x2a);
//     if (r.failed()) std::puts(planfence::sim::failure_message(r).c_str());   // seed + command
//
// What the oracle checks (the first breach of each is reported, all are counted):
//   S1  no endpoint's served generation ever decreases;
//   S2  no commit is accepted with a fence token below one the store already accepted (the
//       fault_store's ledger);
//   S3  no endpoint serves a plan that was collected; no plan an in-flight apply holds is
//       collected; the newest `keep_newest` published plans are retained;
//   S4  no written endpoint serves an empty record set unless its plan marks it intent=empty;
//   S5  the registry refuses every equivocation attempt, and every served plan has the digest
//       first published under its generation;
//   S6  after healing, every endpoint serves the final plan within the bound;
//   S7  damaged plan text is refused by the parser, and no endpoint serves a plan whose content
//       does not match its digest.
//
// It refuses to build with PLANFENCE_DISABLE_ASSERTS (checked_build.hpp). Not thread-safe: one
// simulation per thread (sweep.hpp runs many in parallel; they share only the epoch domain).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../clock.hpp"
#include "../config.hpp"
#include "../detail/epoch.hpp"
#include "../detail/sha256.hpp"
#include "../enactor.hpp"
#include "../events.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../lease.hpp"
#include "../plan.hpp"
#include "../plan_text.hpp"
#include "../record.hpp"
#include "../registry.hpp"
#include "../result.hpp"
#include "../store.hpp"
#include "../memory_store.hpp"
#include "checked_build.hpp"
#include "corrupt_plan.hpp"
#include "fault_store.hpp"
#include "lease_client.hpp"
#include "naive_enactor.hpp"
#include "random.hpp"
#include "scenario.hpp"
#include "skewed_clock.hpp"
#include "trace.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

/// Which system a run simulates: the naive 2025 enactor, the fixed one, or the fixed enactor over
/// a deliberately broken core (to show the oracle catching it).
enum class variant : std::uint8_t {
  naive,             ///< sim::naive_enactor over the 2025 store and clean-up
  fixed,             ///< planfence::enactor over memory_store and plan_registry (what users embed)
  unconditional,     ///< fixed enactor, store with commit_rule::unconditional (breaks S1, S2)
  check_then_write,  ///< fixed enactor, store with commit_rule::check_then_write (a threads-only hole)
  ignore_fence,      ///< fixed enactor, store with commit_rule::ignore_fence (breaks S2)
  ignore_live,       ///< fixed enactor, registry with collection_check::ignore_live (breaks S3)
  ignore_pins,       ///< fixed enactor, registry with collection_check::ignore_pins (breaks S3)
  diff_without_begun,  ///< fixed enactor with apply_variant::diff_without_begun (breaks S1 on flaps)
};
inline constexpr std::size_t variant_count = 8;

[[nodiscard]] constexpr std::string_view to_string(variant v) noexcept {
  switch (v) {
    case variant::naive: return "naive";
    case variant::fixed: return "fixed";
    case variant::unconditional: return "unconditional";
    case variant::check_then_write: return "check_then_write";
    case variant::ignore_fence: return "ignore_fence";
    case variant::ignore_live: return "ignore_live";
    case variant::ignore_pins: return "ignore_pins";
    case variant::diff_without_begun: return "diff_without_begun";
  }
  return "?";
}

/// A sentence on what the variant is.
[[nodiscard]] constexpr std::string_view describe(variant v) noexcept {
  switch (v) {
    case variant::naive: return "the naive 2025 enactor (one-time check, unconditional writes, generation-only clean-up)";
    case variant::fixed: return "the fixed planfence::enactor over memory_store and plan_registry";
    case variant::unconditional: return "the fixed enactor over a store that writes unconditionally (broken on purpose)";
    case variant::check_then_write: return "the fixed enactor over a store that checks, then writes (broken on purpose)";
    case variant::ignore_fence: return "the fixed enactor over a store that ignores fence tokens (broken on purpose)";
    case variant::ignore_live: return "the fixed enactor over a registry that collects live plans (broken on purpose)";
    case variant::ignore_pins: return "the fixed enactor over a registry that collects pinned plans (broken on purpose)";
    case variant::diff_without_begun:
      return "the fixed enactor diffing against the applied plan only, forgetting begun applies (broken on purpose)";
  }
  return "?";
}

[[nodiscard]] inline std::optional<variant> parse_variant(std::string_view name) noexcept {
  for (std::size_t i = 0; i < variant_count; ++i) {
    if (to_string(static_cast<variant>(i)) == name) return static_cast<variant>(i);
  }
  return std::nullopt;
}

/// The fixed enactor over a memory store with `Rule` and a registry with `Check`.
template <commit_rule Rule = commit_rule::conditional, collection_check Check = collection_check::full,
          apply_variant Apply = apply_variant::fixed>
struct fixed_system {
  static constexpr bool naive = false;
  using registry_type = basic_plan_registry<Check>;
  using store_type = fault_store<basic_memory_store<registry_type, Rule>>;
  using authority_type = local_lease_authority<manual_clock>;        // shared, on the true clock
  using client_type = lease_client<authority_type, skewed_clock>;    // each enactor's view of it
  using enactor_type = enactor<store_type, client_type, registry_type, skewed_clock, trace_sink, Apply>;
};

/// The naive enactor over the 2025 store (unconditional writes) and clean-up (generations only).
struct naive_system {
  static constexpr bool naive = true;
  using registry_type = basic_plan_registry<collection_check::none>;
  using store_type = fault_store<basic_memory_store<registry_type, commit_rule::unconditional>>;
  using authority_type = local_lease_authority<manual_clock>;  // present, never consulted
  using client_type = lease_client<authority_type, skewed_clock>;
  using enactor_type = naive_enactor<store_type, registry_type, skewed_clock, trace_sink>;
};

/// Calls f(std::type_identity<System>{}) with the system type of `v`.
template <class F>
decltype(auto) with_system(variant v, F&& f) {
  switch (v) {
    case variant::naive: return f(std::type_identity<naive_system>{});
    case variant::fixed: return f(std::type_identity<fixed_system<>>{});
    case variant::unconditional: return f(std::type_identity<fixed_system<commit_rule::unconditional>>{});
    case variant::check_then_write: return f(std::type_identity<fixed_system<commit_rule::check_then_write>>{});
    case variant::ignore_fence: return f(std::type_identity<fixed_system<commit_rule::ignore_fence>>{});
    case variant::ignore_live:
      return f(std::type_identity<fixed_system<commit_rule::conditional, collection_check::ignore_live>>{});
    case variant::ignore_pins:
      return f(std::type_identity<fixed_system<commit_rule::conditional, collection_check::ignore_pins>>{});
    case variant::diff_without_begun:
      return f(std::type_identity<
               fixed_system<commit_rule::conditional, collection_check::full, apply_variant::diff_without_begun>>{});
  }
  PLANFENCE_ASSERT(!"unknown variant");
  return f(std::type_identity<fixed_system<>>{});
}

/// What the planner publishes next.
enum class plan_kind : std::uint8_t {
  good,               ///< changes some of the hot endpoints
  bulk_change,        ///< changes every endpoint, marked intent bulk-change
  intended_empty,     ///< empties one hot endpoint, marked intent=empty
  accidental_empty,   ///< empties one endpoint by mistake (not marked; not kept by the planner)
  corrupt_in_memory,  ///< content changed after the digest was taken (S7)
};

/// How a simulation records itself.
struct sim_options {
  bool keep_timeline = false;                     ///< build the human-readable timeline
  std::optional<std::uint32_t> watched_endpoint;  ///< its every change goes to the store lane
  std::string store_lane_title = "store / endpoints";
  bool keep_history = false;  ///< keep the text form of every published plan
  std::string system_name = "fixed";
};

/// Everything a simulated world is and does that does not depend on the store, registry and
/// enactor types: the clocks, the scheduler's state, the planner, the oracle's bookkeeping and
/// every sentence the timeline and the reports contain. Kept out of the class template so that
/// each variant compiles only what is really its own (one simulator, seven variants: docs/simulator.md).
class simulation_base {
 public:
  static constexpr std::uint32_t planner_lane = 0;
  /// The true clock starts here, so that skewed clocks may run behind it.
  static constexpr std::chrono::seconds time_origin{1'000};
  /// Plans' created-unix-ms: virtual time 0 is 2025-10-20T00:00:00Z.
  static constexpr std::uint64_t unix_ms_origin = 1'760'918'400'000;

  simulation_base(const simulation_base&) = delete;
  simulation_base& operator=(const simulation_base&) = delete;

  /// Enactor `i` stops taking steps until resume(i); with `stall_clock` its clock stops too.
  void pause_until_resumed(std::size_t i, bool stall_clock) {
    pause(i, std::chrono::nanoseconds{std::numeric_limits<std::int64_t>::max() / 4}, stall_clock, false);
  }
  void resume(std::size_t i) {
    slots_[i].paused_until_ns = -1;
    slots_[i].wake_ns = now_ns();
  }
  /// True time moves forward (no step is taken).
  void advance(std::chrono::nanoseconds by) {
    PLANFENCE_ASSERT(by.count() >= 0);
    clock_.advance(by);
  }
  /// A full-width sentence in the timeline.
  void narrate(std::string text) {
    trace_.at(step_, now_ns());
    trace_.narrate(std::move(text));
  }

  [[nodiscard]] const timeline& recorded() const noexcept { return trace_.recorded(); }
  [[nodiscard]] timeline take_timeline() { return trace_.take_record(); }
  [[nodiscard]] const scenario& scene() const noexcept { return scenario_; }
  [[nodiscard]] std::int64_t now_ns() const noexcept { return clock_.now().time_since_epoch().count() - origin_ns_; }
  /// Endpoints enactor `i`'s current run has finished (from its events).
  [[nodiscard]] std::uint32_t endpoints_done(std::size_t i) const noexcept { return trace_.endpoints_done(lane_of(i)); }
  /// Every published plan's text form, by generation (with sim_options::keep_history).
  [[nodiscard]] const std::vector<std::pair<generation, std::string>>& history() const noexcept { return history_; }

 protected:
  struct enactor_slot {
    std::int64_t wake_ns = 0;
    std::int64_t paused_until_ns = -1;
    std::int64_t down_until_ns = -1;
    bool down = false;
    bool stop_noted = false;
    generation collected_under_flagged{};
  };
  struct endpoint_watch {
    generation gen{};
    bool missing = false;
    bool empty = false;
    bool corrupt = false;
    bool foreign = false;
  };
  struct planner_state {
    std::vector<record_set> intended;  // what ordinary plans say, per endpoint
    std::vector<record_set> previous;  // what they said before the last ordinary change
    std::uint64_t next_gen = 1;
    std::uint32_t published = 0;       // plans of the fault phase
    std::int64_t next_publish_ns = 0;
    std::int64_t last_publish_ns = 0;
    std::uint32_t burst_left = 0;
    std::uint64_t address_counter = 0;
  };
  /// What the oracle read of one endpoint.
  struct endpoint_reading {
    generation gen{};
    bool missing = false;
    std::size_t records = 0;
    bool intended_empty = false;                   // its plan entry is marked intent=empty
    const detail::sha256_digest* digest = nullptr;  // the served plan's digest, if it is retained
    bool foreign_records = false;  // answers other records than its effective plan gives it
  };
  /// A plan the planner is about to publish.
  struct plan_draft {
    plan content;
    std::string note;
    bool corrupt = false;
  };
  /// A host fault decided on this step that needs the enactor itself.
  struct crash_decision {
    std::size_t enactor = 0;
    std::int64_t down_ns = 0;
  };

  simulation_base(scenario s, sim_options options)
      : scenario_(std::move(s)),
        options_(std::move(options)),
        root_rng_(scenario_.seed ^ 0x243f6a8885a308d3ULL),
        rng_(root_rng_.fork(1)),
        planner_rng_(root_rng_.fork(2)),
        store_seed_(root_rng_.fork(3).next()),
        revert_rng_(root_rng_.fork(4)),
        clock_(time_origin),
        origin_ns_(clock_.now().time_since_epoch().count()),
        trace_(options_.keep_timeline, scenario_.endpoint_names, scenario_.endpoint_labels) {
    const std::size_t endpoints = scenario_.endpoint_names.size();
    const std::size_t enactors = scenario_.enactors.size();
    PLANFENCE_ASSERT(endpoints >= 1);
    PLANFENCE_ASSERT(enactors >= 1);
    PLANFENCE_ASSERT(scenario_.hot_endpoints >= 1 && scenario_.hot_endpoints <= endpoints);
    for (const std::string& name : scenario_.endpoint_names) name_hashes_.push_back(endpoint_name_hash(name));
    watch_.assign(endpoints, endpoint_watch{});
    std::vector<std::string> lanes{"planner"};
    for (const enactor_profile& p : scenario_.enactors) lanes.push_back(p.name);
    lanes.push_back(options_.store_lane_title);
    trace_.set_lanes(std::move(lanes));
    clocks_.reserve(enactors);  // enactors keep pointers to their clocks: never reallocate
    for (const enactor_profile& p : scenario_.enactors) clocks_.emplace_back(clock_, p.clock_offset, p.clock_rate_per_mille);
    slots_.assign(enactors, enactor_slot{});
    for (std::size_t i = 0; i < endpoints; ++i) planner_.intended.push_back(random_records(static_cast<std::uint32_t>(i)));
  }
  ~simulation_base() = default;

  static constexpr std::int64_t ns(std::chrono::nanoseconds d) noexcept { return d.count(); }
  static std::uint32_t lane_of(std::size_t enactor) noexcept { return static_cast<std::uint32_t>(enactor + 1); }
  [[nodiscard]] std::uint32_t store_lane() const noexcept { return static_cast<std::uint32_t>(slots_.size() + 1); }
  [[nodiscard]] std::string lane_name(std::uint32_t lane) const {
    if (lane == planner_lane) return "planner";
    if (lane <= slots_.size()) return scenario_.enactors[lane - 1].name;
    return "world";
  }
  [[nodiscard]] const std::string& label(std::size_t endpoint) const { return scenario_.endpoint_labels[endpoint]; }
  static std::string g(generation gen) { return "g" + std::to_string(gen.value()); }
  static std::string ms_text(std::int64_t ns_value) { return std::to_string(ns_value / 1'000'000) + " ms"; }

  // --- steps -------------------------------------------------------------------------------------

  /// The bookkeeping before enactor `i`'s step; returns its lane.
  std::uint32_t begin_enactor_step(std::size_t i) {
    enactor_slot& slot = slots_[i];
    PLANFENCE_ASSERT(!slot.down);
    if (clocks_[i].frozen()) clocks_[i].thaw();  // a stalled clock resumes with its process
    slot.paused_until_ns = -1;
    const std::uint32_t lane = lane_of(i);
    trace_.at(step_, now_ns());
    trace_.mix(lane);
    return lane;
  }
  /// The end of every step, after the oracle: the step's virtual cost.
  void finish_step() {
    const auto cost_max = static_cast<std::uint64_t>(scenario_.step_cost_max.count());
    if (cost_max > 0) clock_.advance(std::chrono::microseconds{static_cast<std::int64_t>(rng_.between(0, cost_max))});
    ++step_;
  }
  /// When enactor `i` is due again after a step that returned `r`.
  void schedule_wake(std::size_t i, const step_result& r) {
    std::int64_t wait_ns = r.wait.count() > 0 ? static_cast<std::int64_t>(r.wait.count())
                           : r.progressed     ? 0
                                              : ns(scenario_.poll_interval);
    const auto jitter = scenario_.enactors[i].jitter_max;
    if (!healed_ && jitter.count() > 0) wait_ns += static_cast<std::int64_t>(rng_.between(0, static_cast<std::uint64_t>(ns(jitter))));
    slots_[i].wake_ns = now_ns() + wait_ns;
  }
  void begin_planner_step() {
    trace_.at(step_, now_ns());
    trace_.mix(planner_lane);
  }
  /// After the planner's step in the fault phase: counts, bursts and the next plan's time.
  void after_planner_step() {
    const fault_mix& f = scenario_.faults;
    ++planner_.published;
    planner_.last_publish_ns = now_ns();
    if (planner_.burst_left == 0 && f.burst.value != 0 && planner_rng_.chance(f.burst)) {
      planner_.burst_left = static_cast<std::uint32_t>(planner_rng_.between(1, std::max<std::uint32_t>(f.burst_length_max, 2) - 1));
    }
    if (planner_.burst_left > 0) {
      --planner_.burst_left;
      planner_.next_publish_ns = now_ns() + static_cast<std::int64_t>(planner_rng_.between(0, 2'000'000));
    } else {
      planner_.next_publish_ns = now_ns() + publish_interval();
    }
  }

  // --- the scheduler -------------------------------------------------------------------------------

  void begin_fault_phase() {
    planner_.next_publish_ns = now_ns() + publish_interval();
    planner_.last_publish_ns = now_ns();
  }
  [[nodiscard]] bool planner_busy() const noexcept { return planner_.published < scenario_.generations; }
  [[nodiscard]] bool fault_phase_over() const noexcept {
    return step_ >= scenario_.fault_steps_max ||
           (!planner_busy() && now_ns() >= planner_.last_publish_ns + ns(scenario_.fault_tail));
  }
  /// The lane to step next in the fault phase, or none (time moved to the next wake-up instead).
  std::optional<std::uint32_t> pick_due_lane() {
    const bool busy = planner_busy();
    candidates_.clear();
    if (busy && planner_.next_publish_ns <= now_ns()) candidates_.push_back(planner_lane);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (!slots_[i].down && slots_[i].wake_ns <= now_ns()) candidates_.push_back(lane_of(i));
    }
    if (candidates_.empty()) {
      std::int64_t next = busy ? planner_.next_publish_ns : planner_.last_publish_ns + ns(scenario_.fault_tail);
      for (const enactor_slot& s : slots_) next = std::min(next, s.down ? s.down_until_ns : s.wake_ns);
      if (outage_until_ns_ >= 0) next = std::min(next, outage_until_ns_);
      clock_.advance(std::chrono::nanoseconds{std::max<std::int64_t>(next - now_ns(), 1)});
      return std::nullopt;
    }
    return candidates_[rng_.below(candidates_.size())];
  }
  /// A due enactor after healing, or none (time moved to the next wake-up instead).
  std::optional<std::size_t> pick_due_enactor() {
    candidates_.clear();
    std::int64_t next = std::numeric_limits<std::int64_t>::max();
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].down) continue;
      if (slots_[i].wake_ns <= now_ns()) candidates_.push_back(static_cast<std::uint32_t>(i));
      next = std::min(next, slots_[i].wake_ns);
    }
    if (candidates_.empty()) {
      PLANFENCE_ASSERT(next != std::numeric_limits<std::int64_t>::max());
      clock_.advance(std::chrono::nanoseconds{std::max<std::int64_t>(next - now_ns(), 1)});
      return std::nullopt;
    }
    return candidates_[rng_.below(candidates_.size())];
  }

  std::int64_t publish_interval() {
    return static_cast<std::int64_t>(planner_rng_.between(static_cast<std::uint64_t>(ns(scenario_.publish_interval_min)),
                                                          static_cast<std::uint64_t>(ns(scenario_.publish_interval_max))));
  }

  plan_kind choose_kind() {
    const fault_mix& f = scenario_.faults;
    if (f.bulk_change.value != 0 && planner_rng_.chance(f.bulk_change)) return plan_kind::bulk_change;
    if (f.intended_empty.value != 0 && planner_rng_.chance(f.intended_empty)) return plan_kind::intended_empty;
    if (f.accidental_empty.value != 0 && planner_rng_.chance(f.accidental_empty)) return plan_kind::accidental_empty;
    if (f.corrupt_in_memory.value != 0 && planner_rng_.chance(f.corrupt_in_memory)) return plan_kind::corrupt_in_memory;
    return plan_kind::good;
  }

  // --- host and store faults -----------------------------------------------------------------------

  /// Draws this step's host faults: pauses and time jumps happen here; a crash is returned for
  /// the caller to apply to the enactor, then `then_jump_and_outage` finishes the draws.
  std::optional<crash_decision> draw_pause_and_crash() {
    const fault_mix& f = scenario_.faults;
    trace_.at(step_, now_ns());
    if (f.pause.value != 0 && rng_.chance(f.pause)) {
      if (auto i = pick_running_enactor()) {
        const auto d = static_cast<std::int64_t>(rng_.between(static_cast<std::uint64_t>(ns(f.pause_min)), static_cast<std::uint64_t>(ns(f.pause_max))));
        pause(*i, std::chrono::nanoseconds{d}, rng_.chance(f.pause_stalls_clock), true);
      }
    }
    if (f.crash.value != 0 && rng_.chance(f.crash)) {
      if (auto i = pick_running_enactor()) {
        const auto d = static_cast<std::int64_t>(rng_.between(static_cast<std::uint64_t>(ns(f.down_min)), static_cast<std::uint64_t>(ns(f.down_max))));
        return crash_decision{*i, d};
      }
    }
    return std::nullopt;
  }
  /// The rest of this step's faults; true when a store outage starts now (the caller switches
  /// the store's outage on).
  bool draw_jump_and_outage() {
    const fault_mix& f = scenario_.faults;
    if (f.clock_jump.value != 0 && rng_.chance(f.clock_jump)) {
      const auto d = static_cast<std::int64_t>(rng_.between(static_cast<std::uint64_t>(ns(f.jump_min)), static_cast<std::uint64_t>(ns(f.jump_max))));
      clock_.advance(std::chrono::nanoseconds{d});
      trace_.mix(0xc10c);
      trace_.mix(static_cast<std::uint64_t>(d));
      trace_.cell(store_lane(), "true time jumps +" + ms_text(d));
    }
    if (f.outage.value != 0 && outage_until_ns_ < 0 && rng_.chance(f.outage)) {
      const auto d = static_cast<std::int64_t>(rng_.between(static_cast<std::uint64_t>(ns(f.outage_min)), static_cast<std::uint64_t>(ns(f.outage_max))));
      outage_until_ns_ = now_ns() + d;
      trace_.mix(0x0a7a);
      trace_.cell(store_lane(), "STORE OUTAGE for " + ms_text(d));
      return true;
    }
    return false;
  }

  std::optional<std::size_t> pick_running_enactor() {
    std::size_t running = 0;
    for (const enactor_slot& s : slots_) running += s.down ? 0 : 1;
    if (running == 0) return std::nullopt;
    std::size_t pick = rng_.below(running);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].down) continue;
      if (pick-- == 0) return i;
    }
    return std::nullopt;
  }

  void pause(std::size_t i, std::chrono::nanoseconds d, bool stall_clock, bool show_length) {
    enactor_slot& slot = slots_[i];
    slot.paused_until_ns = now_ns() + d.count();
    slot.wake_ns = std::max(slot.wake_ns, slot.paused_until_ns);
    if (stall_clock) clocks_[i].freeze();
    trace_.mix(0x9a05e);
    trace_.mix(i);
    trace_.mix(static_cast<std::uint64_t>(d.count()));
    trace_.cell(lane_of(i), std::string("PAUSED") + (show_length ? " " + ms_text(d.count()) : std::string()) +
                                (stall_clock ? ", its clock stalled" : ""));
  }

  /// After the enactor itself forgot its volatile state.
  void mark_crashed(const crash_decision& c) {
    clocks_[c.enactor].thaw();
    enactor_slot& slot = slots_[c.enactor];
    slot.down = true;
    slot.down_until_ns = now_ns() + c.down_ns;
    slot.paused_until_ns = -1;
    trace_.mix(0xc4a5);
    trace_.mix(c.enactor);
    trace_.cell(lane_of(c.enactor), "CRASH, down " + ms_text(c.down_ns));
  }

  void restart(std::size_t i) {
    enactor_slot& slot = slots_[i];
    slot.down = false;
    slot.down_until_ns = -1;
    slot.wake_ns = now_ns();
    trace_.mix(0x4e57);
    trace_.mix(i);
    trace_.cell(lane_of(i), "restarted");
  }

  /// Restarts crashed enactors whose time has come; true when the store outage is over now
  /// (the caller switches the store's outage off).
  bool settle_hosts() {
    trace_.at(step_, now_ns());
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].down && slots_[i].down_until_ns <= now_ns()) restart(i);
    }
    if (outage_until_ns_ >= 0 && outage_until_ns_ <= now_ns()) {
      outage_until_ns_ = -1;
      trace_.mix(0xbac);
      trace_.cell(store_lane(), "store back");
      return true;
    }
    return false;
  }

  /// Every host fault off (the caller heals the store).
  void heal_hosts(bool narrate_heal) {
    healed_ = true;
    outage_until_ns_ = -1;
    trace_.at(step_, now_ns());
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].down) restart(i);
      if (slots_[i].paused_until_ns >= 0) resume(i);
      clocks_[i].thaw();
    }
    if (narrate_heal) {
      narrate("Faults healed: store faults off, every enactor up, no slow hosts (clock drift stays). The planner publishes a final plan and goes quiet; S6 "
              "requires every endpoint to serve it within " + std::to_string(scenario_.heal_steps_max) + " steps.");
    }
  }

  // --- the planner -------------------------------------------------------------------------------

  record_set random_records(std::uint32_t endpoint) {
    static constexpr const char* blocks[] = {"192.0.2.", "198.51.100.", "203.0.113."};
    const auto count = planner_rng_.between(1, 3);
    std::vector<record> records;
    for (std::uint64_t k = 0; k < count; ++k) {
      const std::uint64_t c = planner_.address_counter++ + endpoint * 17;
      const std::string address = std::string(blocks[(c / 254) % 3]) + std::to_string(c % 254 + 1);
      const auto weight = static_cast<std::uint8_t>(planner_rng_.between(1, 100));
      records.push_back(make_record(record_type::a, 60, address, weight).value());
    }
    auto set = record_set::make(std::move(records));
    PLANFENCE_ASSERT(set.has_value());
    return std::move(*set);
  }

  /// Changes at least one of the hot endpoints (the last hot_endpoints ones).
  void change_hot(std::vector<record_set>& content) {
    const std::size_t n = content.size();
    const std::size_t hot = scenario_.hot_endpoints;
    const std::size_t always = n - hot + planner_rng_.below(hot);
    for (std::size_t i = n - hot; i < n; ++i) {
      if (i == always || planner_rng_.below(2) == 0) content[i] = random_records(static_cast<std::uint32_t>(i));
    }
  }

  plan build_plan(generation gen, const std::vector<record_set>& content, bool bulk) {
    plan_builder builder{gen, unix_ms_origin + static_cast<std::uint64_t>(now_ns() / 1'000'000)};
    for (std::size_t i = 0; i < content.size(); ++i) {
      auto set = builder.set(scenario_.endpoint_names[i], content[i]);
      PLANFENCE_ASSERT(set.has_value());
    }
    if (bulk) builder.intend_bulk_change();
    auto built = std::move(builder).build();
    PLANFENCE_ASSERT(built.has_value());
    return std::move(*built);
  }

  /// The next plan of `kind`, with its faults applied (and, when drawn, its text damaged in
  /// transit and checked to be refused by the parser).
  plan_draft draft_plan(plan_kind kind) {
    const generation gen{planner_.next_gen++};
    std::vector<record_set> content = planner_.intended;
    std::string note;
    bool bulk = false;
    switch (kind) {
      case plan_kind::good:
        change_hot(content);
        if (!healed_ && scenario_.faults.revert.value != 0 && revert_rng_.chance(scenario_.faults.revert) &&
            !planner_.previous.empty()) {
          // A flap: one hot endpoint gets back what it had before the last ordinary change.
          const std::size_t hot = scenario_.hot_endpoints;
          const std::size_t i = content.size() - hot + revert_rng_.below(hot);
          content[i] = planner_.previous[i];
          note = " (" + label(i) + " flaps back)";
        }
        planner_.previous = planner_.intended;
        planner_.intended = content;
        break;
      case plan_kind::bulk_change:
        for (std::size_t i = 0; i < content.size(); ++i) content[i] = random_records(static_cast<std::uint32_t>(i));
        planner_.intended = content;
        bulk = true;
        note = " (bulk change, marked)";
        break;
      case plan_kind::intended_empty: {
        const std::size_t i = content.size() - 1 - planner_rng_.below(scenario_.hot_endpoints);
        content[i] = record_set::make({}, true).value();
        planner_.intended = content;
        note = " (" + label(i) + " emptied, marked intent=empty)";
        break;
      }
      case plan_kind::accidental_empty: {
        const std::size_t i = planner_rng_.below(content.size());
        content[i] = record_set{};
        note = " (" + label(i) + " EMPTY by mistake)";
        break;
      }
      case plan_kind::corrupt_in_memory:
        change_hot(content);
        break;
    }
    plan_draft draft{build_plan(gen, content, bulk), std::move(note), false};
    if (kind == plan_kind::corrupt_in_memory) {
      const std::size_t i = planner_rng_.below(draft.content.size());
      corrupt_after_digest(draft.content, i, random_records(static_cast<std::uint32_t>(i)));
      draft.corrupt = !draft.content.verify();
      if (draft.corrupt) draft.note = " (CORRUPT: content does not match its digest)";
    }
    if (!healed_ && scenario_.faults.corrupt_in_transit.value != 0 && planner_rng_.chance(scenario_.faults.corrupt_in_transit)) {
      send_damaged_text(draft.content);
    }
    if (options_.keep_history) history_.emplace_back(gen, format_plan(draft.content));
    return draft;
  }

  /// After the registry accepted the plan.
  void record_publish(generation gen, const detail::sha256_digest& digest, bool corrupt, plan_kind kind,
                      const std::string& note) {
    const std::size_t at = static_cast<std::size_t>(gen.value());
    if (digests_.size() <= at) {
      digests_.resize(at + 1);
      corrupt_.resize(at + 1, false);
      digest_flagged_.resize(at + 1, false);
      newest_flagged_.resize(at + 1, false);
    }
    digests_[at] = digest;
    corrupt_[at] = corrupt;
    published_.push_back(gen);
    trace_.mix(0x9b15);
    trace_.mix(gen.value());
    trace_.mix(static_cast<std::uint64_t>(kind));
    trace_.cell(planner_lane, "publish " + g(gen) + note);
  }

  // S7 at the parser: the text form of `p`, damaged in transit, must not parse.
  void send_damaged_text(const plan& p) {
    std::string text = format_plan(p);
    if (!damage_plan_text(text)) return;
    auto parsed = parse_plan(text);
    trace_.mix(0x7e47);
    trace_.mix(parsed.has_value() ? 1 : 0);
    if (parsed) {
      violate(planner_lane, guarantee::s7, "the parser accepted damaged text of " + g(p.gen()));
    } else {
      trace_.cell(planner_lane, g(p.gen()) + " text damaged in transit, parser refused: " +
                                    std::string(to_string(parsed.error().code)) + "; resent");
    }
  }

  // S5: whether the planner tries, now, to publish other content under a used generation, and
  // what: a plan for a random used generation (none when it happens to equal the original).
  [[nodiscard]] bool wants_equivocation() {
    return !healed_ && scenario_.faults.equivocation.value != 0 && planner_rng_.chance(scenario_.faults.equivocation);
  }
  std::optional<plan> draft_equivocation() {
    const generation target = published_[planner_rng_.below(published_.size())];
    std::vector<record_set> content = planner_.intended;
    change_hot(content);
    plan other = build_plan(target, content, false);
    if (other.digest() == digests_[static_cast<std::size_t>(target.value())]) return std::nullopt;
    return other;
  }
  void record_equivocation(generation target, bool accepted, errc code) {
    trace_.mix(0xe9);
    trace_.mix(target.value());
    trace_.mix(accepted ? 1 : 0);
    if (accepted) {
      violate(planner_lane, guarantee::s5, "the registry accepted different content under the used generation " + g(target));
    } else {
      trace_.cell(planner_lane, "equivocate on " + g(target) + ": refused (" + std::string(to_string(code)) + ")");
    }
  }

  // --- the oracle ---------------------------------------------------------------------------------

  void violate(std::uint32_t lane, guarantee id, std::string detail) {
    const auto index = static_cast<std::size_t>(id);
    trace_.mix(0x5100 + index);
    if (report_.counts[index]++ == 0) report_.violations.push_back({id, step_, now_ns(), lane_name(lane), detail});
    if (trace_.keeping()) {
      trace_.violation_line(std::string(to_string(id)) + " (" + std::string(title(id)) + ") BROKEN: " + detail);
    }
  }

  void note_store_operations(std::uint32_t lane, const std::vector<store_operation>& operations) {
    for (const store_operation& op : operations) {
      trace_.mix(static_cast<std::uint64_t>(op.what));
      trace_.mix(op.succeeded ? 1 : 0);
      if (op.what == store_operation::kind::raise_fence && op.succeeded) {
        trace_.cell(lane, "store fence >= f" + std::to_string(op.fence.value()));
      }
      if (op.s2_violation) {
        violate(lane, guarantee::s2,
                lane_name(lane) + " committed " + g(op.gen) + " to " + label(op.endpoint.index()) + " with fence f" +
                    std::to_string(op.fence.value()) + " after the store had accepted f" +
                    std::to_string(op.accepted_max.value()));
      }
    }
  }

  void note_stopped(std::size_t i, bool stopped, std::string_view endpoint, generation on) {
    enactor_slot& slot = slots_[i];
    if (stopped && !slot.stop_noted) {
      trace_.mix(0x5709);
      trace_.cell(lane_of(i), "STOPPED: " + std::string(trace_.label(endpoint)) + " names " + g(on) + ", a deleted plan");
    }
    slot.stop_noted = stopped;
  }

  [[nodiscard]] bool is_corrupt(generation gen) const noexcept {
    const auto at = static_cast<std::size_t>(gen.value());
    return at < corrupt_.size() && corrupt_[at];
  }

  /// S1, S3 (served), S4, S5 (served content) and S7 (served) for endpoint `i`.
  void observe_endpoint(std::uint32_t lane, std::uint32_t i, const endpoint_reading& r) {
    const generation gen = r.gen;
    endpoint_watch& w = watch_[i];
    const bool empty = gen != generation_none && r.records == 0 && !r.intended_empty;
    const bool corrupt = gen != generation_none && is_corrupt(gen);
    const bool changed = gen != w.gen || r.missing != w.missing;
    if (changed) {
      trace_.mix(i);
      trace_.mix(gen.value());
      trace_.mix(r.missing ? 1 : 0);
    }
    if (trace_.keeping() && changed) {
      if (options_.watched_endpoint && *options_.watched_endpoint == i) {
        trace_.cell(store_lane(), r.missing ? g(gen) + ": plan GONE, 0 records"
                                            : g(gen) + ", " + std::to_string(r.records) + (r.records == 1 ? " record" : " records"));
      } else if ((r.missing && !w.missing) || (empty && !w.empty)) {
        trace_.cell(store_lane(), label(i) + " " + g(gen) + (r.missing ? ": plan GONE" : ": EMPTY"));
      }
    }
    if (gen < w.gen) {
      violate(lane, guarantee::s1, label(i) + " went from " + g(w.gen) + " back to " + g(gen));
    }
    if (r.foreign_records && !w.foreign) {
      violate(lane, guarantee::s1,
              label(i) + " answers records that are not " + g(gen) + "'s, its effective generation (an older plan's, left by a skipped write)");
    }
    if (r.missing && !w.missing) {
      violate(lane, guarantee::s3, label(i) + " serves " + g(gen) + ", a plan that was collected: it serves no records");
    }
    if (empty && !w.empty) {
      violate(lane, guarantee::s4,
              label(i) + " serves no records" +
                  (r.missing ? std::string(" (its plan ") + g(gen) + " is gone)" : " (" + g(gen) + " emptied it without intent=empty)"));
    }
    if (corrupt && !w.corrupt) {
      violate(lane, guarantee::s7, label(i) + " serves " + g(gen) + ", a plan whose content does not match its digest");
    }
    if (r.digest != nullptr) {
      const auto at = static_cast<std::size_t>(gen.value());
      if (at < digests_.size() && *r.digest != digests_[at] && !digest_flagged_[at]) {
        digest_flagged_[at] = true;
        violate(lane, guarantee::s5, label(i) + " serves content for " + g(gen) + " that is not the content first published under it");
      }
    }
    w = endpoint_watch{gen, r.missing, empty, corrupt, r.foreign_records};
  }

  /// S3: enactor `e` is applying `held`; `retained` says whether the registry still has it.
  void observe_held(std::uint32_t lane, std::size_t e, generation held, bool retained) {
    if (held == generation_none || retained) return;
    if (slots_[e].collected_under_flagged == held) return;
    slots_[e].collected_under_flagged = held;
    violate(lane, guarantee::s3, scenario_.enactors[e].name + " is applying " + g(held) + ", which was collected under it");
  }

  /// S3: the newest keep_newest published plans are retained; `retained(gen)` asks the registry.
  [[nodiscard]] std::size_t newest_protected() const noexcept {
    return std::min<std::size_t>(scenario_.keep_newest, published_.size());
  }
  void observe_newest(std::uint32_t lane, generation gen, bool retained) {
    const auto at = static_cast<std::size_t>(gen.value());
    if (newest_flagged_[at] || retained) return;
    newest_flagged_[at] = true;
    violate(lane, guarantee::s3, g(gen) + " is among the newest " + std::to_string(newest_protected()) + " plans and was collected");
  }

  [[nodiscard]] bool all_serve(generation gen) const {
    for (const endpoint_watch& w : watch_) {
      if (w.gen != gen || w.missing) return false;
    }
    return true;
  }

  [[nodiscard]] std::string unconverged_endpoints() const {
    std::string out = gave_up_early_ ? "no enactor can act any more (" + std::to_string(steps_to_converge_) + " steps after healing): "
                                     : "after " + std::to_string(scenario_.heal_steps_max) + " steps without faults, ";
    std::string behind;
    for (std::uint32_t i = 0; i < watch_.size(); ++i) {
      if (watch_[i].gen == final_gen_ && !watch_[i].missing) continue;
      if (!behind.empty()) behind += ", ";
      behind += label(i) + " serves " + g(watch_[i].gen) + (watch_[i].missing ? " (plan gone, no records)" : "");
    }
    return out + behind + " instead of the final " + g(final_gen_);
  }

  /// The report's fields the base knows.
  [[nodiscard]] run_report base_report() const {
    run_report r = report_;
    r.seed = scenario_.seed;
    r.system = options_.system_name;
    r.converged = converged_;
    r.steps = step_;
    r.steps_to_converge = steps_to_converge_;
    r.virtual_ns = now_ns();
    r.trace_hash = trace_.hash();
    r.final_gen = final_gen_;
    r.plans_published = published_.size();
    return r;
  }

  scenario scenario_;
  sim_options options_;
  xoshiro256 root_rng_;
  xoshiro256 rng_;          // scheduler and host faults
  xoshiro256 planner_rng_;  // the planner's choices
  std::uint64_t store_seed_;  // the store's fault decisions
  xoshiro256 revert_rng_;     // flapping endpoints (fault_mix::revert): a stream of its own
  manual_clock clock_;
  std::int64_t origin_ns_;
  run_trace trace_;
  std::vector<skewed_clock> clocks_;
  std::vector<enactor_slot> slots_;
  std::vector<std::uint64_t> name_hashes_;
  std::vector<endpoint_watch> watch_;
  std::vector<std::uint32_t> candidates_;
  planner_state planner_;
  std::vector<generation> published_;
  std::vector<detail::sha256_digest> digests_;  // by generation
  std::vector<bool> corrupt_;
  std::vector<bool> digest_flagged_;
  std::vector<bool> newest_flagged_;
  std::vector<std::pair<generation, std::string>> history_;
  run_report report_;
  std::uint64_t step_ = 0;
  std::int64_t outage_until_ns_ = -1;
  bool healed_ = false;
  bool converged_ = false;
  bool gave_up_early_ = false;
  std::uint64_t steps_to_converge_ = 0;
  generation final_gen_{};
};

/// One simulated world (see the header comment): the base plus what depends on `System`.
template <class System>
class simulation final : public simulation_base {
 public:
  using registry_type = typename System::registry_type;
  using store_type = typename System::store_type;
  using authority_type = typename System::authority_type;
  using client_type = typename System::client_type;
  using enactor_type = typename System::enactor_type;

  explicit simulation(scenario s, sim_options options = {})
      : simulation_base(std::move(s), std::move(options)),
        registry_(),
        store_(make_inner_store(registry_, scenario_.endpoint_names), store_seed_),
        authority_(clock_) {
    const std::size_t endpoints = scenario_.endpoint_names.size();
    const std::size_t enactors = scenario_.enactors.size();
    for (std::size_t i = 0; i < endpoints; ++i) {
      auto handle = store_.resolve(scenario_.endpoint_names[i]);
      PLANFENCE_ASSERT(handle.has_value());
      PLANFENCE_ASSERT(handle->index() == i);  // endpoint i is handle i throughout
    }
    clients_.reserve(enactors);  // enactors keep pointers to their clients: never reallocate
    for (std::size_t i = 0; i < enactors; ++i) clients_.emplace_back(authority_, clocks_[i]);
    for (std::size_t i = 0; i < enactors; ++i) {
      const enactor_profile& p = scenario_.enactors[i];
      trace_sink sink{&trace_, lane_of(i), System::naive};
      if constexpr (System::naive) {
        naive_config c;
        c.name = p.name;
        c.poll_interval = scenario_.poll_interval;
        c.retry_backoff = scenario_.store_backoff;
        c.cleanup_threshold = scenario_.keep_newest;
        enactors_.push_back(std::make_unique<enactor_type>(store_, registry_, clocks_[i], std::move(c), sink));
      } else {
        enactor_config c;
        c.name = p.name;
        c.lease_ttl = scenario_.lease_ttl;
        c.renew_margin = scenario_.renew_margin;
        c.conflict_retries_max = scenario_.conflict_retries_max;
        c.batch_max = scenario_.batch_max;
        c.store_retries_max = scenario_.store_retries_max;
        c.store_backoff = scenario_.store_backoff;
        c.poll_interval = scenario_.poll_interval;
        c.retention.keep_newest = scenario_.keep_newest;
        enactors_.push_back(std::make_unique<enactor_type>(store_, clients_[i], registry_, clocks_[i], std::move(c), sink));
      }
    }
  }

  /// The whole randomized run: the first plan, the fault phase, healing, the S6 check.
  run_report run() {
    publish_step(plan_kind::good);
    begin_fault_phase();
    while (!fault_phase_over()) {
      if (settle_hosts()) store_.set_outage(false);
      const auto lane = pick_due_lane();
      if (!lane) continue;
      if (*lane == planner_lane) {
        publish_step(choose_kind());
        after_planner_step();
      } else {
        step_enactor(*lane - 1);
      }
      inject_faults();
    }
    heal_and_converge();
    return report();
  }

  /// The planner publishes one plan of `kind` as a step of its own; returns its generation.
  generation publish_step(plan_kind kind) {
    begin_planner_step();
    const generation gen = publish(kind);
    end_step(planner_lane);
    return gen;
  }

  /// Enactor `i` takes one step; the oracle checks the world afterwards.
  void step_enactor(std::size_t i) {
    const std::uint32_t lane = begin_enactor_step(i);
    store_.clear_operations();
    const step_result r = enactors_[i]->step();
    note_store_operations(lane, store_.operations());
    if constexpr (System::naive) {
      const auto& e = *enactors_[i];
      note_stopped(i, e.stopped(), e.stopped_endpoint(), e.stopped_on_generation());
    }
    end_step(lane);
    schedule_wake(i, r);
  }

  /// Steps enactor `i` alone (time jumps to its next wake-up when it waits) until `done()` holds;
  /// false if `steps_max` steps did not get there.
  template <class Predicate>
  bool run_enactor_until(std::size_t i, Predicate done, std::uint64_t steps_max = 1'000) {
    for (std::uint64_t n = 0; n < steps_max; ++n) {
      if (done()) return true;
      if (slots_[i].wake_ns > now_ns()) advance(std::chrono::nanoseconds{slots_[i].wake_ns - now_ns()});
      step_enactor(i);
    }
    return done();
  }

  /// Heals every fault, publishes the final plan and runs the enactors until every endpoint
  /// serves it (S6) or the bound is reached, which is reported as an S6 violation.
  bool heal_and_converge(bool narrate_heal = true) {
    store_.heal();
    heal_hosts(narrate_heal);
    final_gen_ = publish_step(plan_kind::good);
    const std::uint64_t start = step_;
    bool converged = false;
    for (;;) {
      if (all_serve(final_gen_)) {
        converged = true;
        break;
      }
      if (step_ - start >= scenario_.heal_steps_max) break;
      if constexpr (System::naive) {
        // The naive reference only: once every enactor has stopped or has nothing left to do
        // (no plan comes after the final one), the outcome cannot change; skip the wait.
        bool frozen = true;
        for (const auto& e : enactors_) frozen = frozen && e->idle_for_good(final_gen_);
        if (frozen) {
          gave_up_early_ = true;
          break;
        }
      }
      if (const auto i = pick_due_enactor()) step_enactor(*i);
    }
    converged_ = converged;
    steps_to_converge_ = step_ - start;
    if (!converged) violate(planner_lane, guarantee::s6, unconverged_detail());
    return converged;
  }

  /// The report so far (complete after run() or heal_and_converge()).
  [[nodiscard]] run_report report() const {
    run_report r = base_report();
    const apply_marks marks = *store_.inner().read_marks();  // effective generations, as check() reads them
    for (std::uint32_t i = 0; i < scenario_.endpoint_names.size(); ++i) {
      const auto served = store_.inner().read(endpoint_handle{i});
      const generation gen = served.gen() == generation_none ? generation_none : effective_generation(served.gen(), marks);
      r.endpoints.push_back({scenario_.endpoint_names[i], gen, served.records().size(), served.plan_missing()});
    }
    if constexpr (System::naive) {
      for (const auto& e : enactors_) r.enactors_stopped += e->stopped() ? 1 : 0;
    }
    return r;
  }

  [[nodiscard]] enactor_type& enactor_at(std::size_t i) noexcept { return *enactors_[i]; }
  [[nodiscard]] const registry_type& registry() const noexcept { return registry_; }
  [[nodiscard]] const store_type& store() const noexcept { return store_; }

 private:
  template <class Registry>
  static auto make_inner_store(const Registry& registry, const std::vector<std::string>& names) {
    using inner = std::remove_cvref_t<decltype(std::declval<store_type&>().inner())>;
    auto made = inner::make(registry, names);
    PLANFENCE_ASSERT(made.has_value());
    return std::move(*made);
  }

  void end_step(std::uint32_t lane) {
    check(lane);
    finish_step();
  }

  generation publish(plan_kind kind) {
    plan_draft draft = draft_plan(kind);
    const generation gen = draft.content.gen();
    const detail::sha256_digest digest = draft.content.digest();
    auto published = registry_.publish(std::move(draft.content));
    PLANFENCE_ASSERT(published.has_value());  // fresh generations, retained span far below capacity
    record_publish(gen, digest, draft.corrupt, kind, draft.note);
    if (wants_equivocation()) {
      if (auto other = draft_equivocation()) {
        const generation target = other->gen();
        auto attempt = registry_.publish(std::move(*other));
        record_equivocation(target, attempt.has_value(), attempt.has_value() ? errc::stale : attempt.error().code);
      }
    }
    return gen;
  }

  void inject_faults() {
    if (healed_) return;
    if (const auto crash = draw_pause_and_crash()) {
      enactors_[crash->enactor]->crash();
      mark_crashed(*crash);
    }
    if (draw_jump_and_outage()) store_.set_outage(true);
  }

  /// Reads every endpoint, the in-flight applies and the retained plans; reports what breaks.
  void check(std::uint32_t lane) {
    detail::epoch_guard guard = detail::epoch_domain::pin();
    // An endpoint serves its effective generation: its stamp's, or the applied mark's when newer
    // (change-following applies leave unchanged endpoints unwritten). The marks first, as the
    // store's own live set reads them.
    const apply_marks marks = *store_.inner().read_marks();
    for (std::uint32_t i = 0; i < watch_.size(); ++i) {
      const auto served = store_.inner().read(endpoint_handle{i});
      endpoint_reading r;
      r.gen = served.gen() == generation_none ? generation_none : effective_generation(served.gen(), marks);
      r.missing = served.plan_missing();
      r.records = served.records().size();
      if (r.gen != generation_none) {
        if (const plan* p = registry_.find(r.gen, guard)) {
          const endpoint_entry* entry = p->find(scenario_.endpoint_names[i], name_hashes_[i]);
          r.intended_empty = entry != nullptr && entry->records.intended_empty();
          r.digest = &p->digest();
          // What the endpoint answers must be its effective plan's records: an unchanged endpoint
          // left unwritten holds what that plan says, or the apply that skipped it was wrong.
          if (entry != nullptr && !r.missing && !std::ranges::equal(served.records(), entry->records.records())) {
            r.foreign_records = true;
          }
        }
      }
      observe_endpoint(lane, i, r);
    }
    for (std::size_t e = 0; e < enactors_.size(); ++e) {
      const generation held = enactors_[e]->applying_generation();
      if (held != generation_none) observe_held(lane, e, held, registry_.find(held, guard) != nullptr);
    }
    for (std::size_t k = published_.size() - newest_protected(); k < published_.size(); ++k) {
      observe_newest(lane, published_[k], registry_.find(published_[k], guard) != nullptr);
    }
  }

  [[nodiscard]] std::string unconverged_detail() const {
    std::string out = unconverged_endpoints();
    if constexpr (System::naive) {
      std::string stopped;
      for (const auto& e : enactors_) {
        if (!e->stopped()) continue;
        if (!stopped.empty()) stopped += ", ";
        stopped += e->config().name;
      }
      if (!stopped.empty()) out += "; stopped enactors: " + stopped;
    } else {
      out += "; enactor states:";
      for (const auto& e : enactors_) out += " " + e->config().name + "=" + std::string(to_string(e->state()));
    }
    return out;
  }

  registry_type registry_;
  store_type store_;
  authority_type authority_;
  std::vector<client_type> clients_;
  std::vector<std::unique_ptr<enactor_type>> enactors_;  // after registry_: destroyed first
};

/// Runs seed `seed` under `v`. With `timeline_out`, also records the timeline.
[[nodiscard]] inline run_report run_seed(variant v, std::uint64_t seed, const scenario_overrides& overrides = {},
                                         timeline* timeline_out = nullptr) {
  return with_system(v, [&](auto tag) {
    using system = typename decltype(tag)::type;
    sim_options options;
    options.keep_timeline = timeline_out != nullptr;
    options.system_name = std::string(to_string(v));
    simulation<system> sim{make_scenario(seed, overrides), std::move(options)};
    run_report r = sim.run();
    if (timeline_out != nullptr) *timeline_out = sim.take_timeline();
    return r;
  });
}

/// The command that replays `seed` under `v` with its timeline.
[[nodiscard]] inline std::string repro_command(std::uint64_t seed, variant v,
                                               std::string_view program = "build/examples/outage_replay",
                                               const scenario_overrides& overrides = {}) {
  std::string out(program);
  out += " --seed " + format_seed(seed) + " --variant " + std::string(to_string(v));
  if (overrides.enactors) out += " --enactors " + std::to_string(*overrides.enactors);
  return out;
}

/// "seed 0x2a under the fixed enactor breaks S1 (first at step 12, ...). Reproduce: <command>"
[[nodiscard]] inline std::string failure_message(const run_report& r, variant v,
                                                 std::string_view program = "build/examples/outage_replay",
                                                 const scenario_overrides& overrides = {}) {
  std::string out = "seed " + format_seed(r.seed) + " under " + std::string(to_string(v)) + " breaks " + to_string(r.mask());
  for (const violation& x : r.violations) {
    out += "\n  " + std::string(to_string(x.id)) + " at step " + std::to_string(x.step) + " (" + x.actor + "): " + x.detail;
  }
  out += "\n  reproduce: " + repro_command(r.seed, v, program, overrides);
  return out;
}

}  // namespace sim
}  // namespace v1
}  // namespace planfence
