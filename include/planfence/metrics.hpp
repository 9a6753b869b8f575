// planfence/metrics.hpp: Prometheus metrics from enactors' events, stores and registries.
//
// What it is: what an operator watches, in Prometheus's text exposition format (version 0.0.4),
// with no dependency. docs/metrics.md lists every metric, its meaning and the alerts worth
// setting (docs/alerts/planfence.rules.yml).
//  - `enactor_metrics`: one per enactor, fed by its events (a `metrics_sink` in front of the
//    embedder's own sink): whether it holds the lease, its fence token, the generation it applies
//    and the one it last applied fully, refusals by reason, store errors, endpoints written, the
//    duration of each complete run and the endpoints it wrote.
//  - `scan_store(store, registry)`: a store read as a whole: the endpoints that serve no records
//    or whose stamp names a plan the registry no longer has (the 2025 outage state: must be 0),
//    computed with effective generations (store.hpp), the apply marks, the fence floor and
//    whether an operator holds the store (recovery.hpp's operator fences).
//  - `metrics_collector`: the enactors, stores and registries to export, each with a label
//    value; `render()` writes the exposition (serve it as `text/plain; version=0.0.4`).
//
//     planfence::metrics_collector metrics;
//     auto& az1 = metrics.add_enactor("az1", registry);           // registry: published generation
//     metrics.add_store("main", store, registry);                  // scanned at each render
//     metrics.add_registry("main", registry);
//     planfence::enactor zone{store, authority, registry, clock, {.name = "az1"},
//                             planfence::metrics_sink<my_sink>{&az1, my_sink{}}};
//     ... on GET /metrics:  std::string body = metrics.render();
//
// Names follow Prometheus's conventions: the prefix planfence_, units last and in base units
// (seconds), `_total` for counters. Labels are bounded: `enactor`, `store`, `registry` (one value
// per thing the embedder adds), `reason` and `outcome` (fixed sets); an endpoint becomes a label
// only when the embedder asks for it (store_metrics_options::per_endpoint), and then at most
// endpoint_labels_max of them.
//
// Cost and memory orders. The event path (metrics_sink, enactor_metrics::record) never
// allocates, never blocks and takes no lock: per event, a switch and one or two relaxed atomic
// operations on the enactor's own cache lines (a counter's fetch_add, or a gauge's store), plus,
// at the end of a complete run, two histogram observations (a short scan of the bucket bounds
// and two relaxed fetch_adds each). Relaxed is enough because nothing is published through these
// words: each is a number read on its own by render(). The run's own bookkeeping (its start time
// and endpoint count) is plain memory touched only by the enactor's thread, so one
// enactor_metrics must be fed by one enactor (the sink is called on the enactor's thread).
// render() runs on the scraper's thread: relaxed loads of each word, so each value is one the
// word held during the render, not a snapshot of all of them at one instant; a histogram's
// `_count` and `+Inf` bucket are both the sum of its buckets (always equal), its `_sum` may miss
// or include the one observation made during the render. render() allocates, takes the
// collector's mutex (held also by add_*), and scans each store it was given: O(endpoints) store
// reads and registry pins per store per scrape, a remote store's I/O included. Scrape every few
// seconds, not in a loop.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "events.hpp"
#include "generation.hpp"
#include "ids.hpp"
#include "plan.hpp"
#include "registry.hpp"
#include "result.hpp"
#include "store.hpp"

namespace planfence {
inline namespace v1 {

// --- the text exposition format -----------------------------------------------------------------

/// The Content-Type of render()'s output.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// A label value escaped for the exposition format: backslash, double quote and line feed
/// become \\, \" and \n.
[[nodiscard]] inline std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

/// HELP text escaped for the exposition format: backslash and line feed become \\ and \n.
[[nodiscard]] inline std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

enum class metric_type : std::uint8_t { counter, gauge, histogram };

[[nodiscard]] constexpr std::string_view to_string(metric_type t) noexcept {
  switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
  }
  return "untyped";
}

/// One label of a sample: a name (a fixed identifier) and a value (escaped when written).
struct metric_label {
  std::string_view name;
  std::string_view value;
};

/// Writes the exposition format into a string: a family's `# HELP` and `# TYPE` lines, then
/// its samples (all of a family's samples must follow its header, before the next family).
/// Embedders may add their own families to a render with it. Allocates as the string grows.
class exposition_writer {
 public:
  explicit exposition_writer(std::string& out) noexcept : out_(&out) {}

  void family(std::string_view name, std::string_view help, metric_type type) {
    *out_ += "# HELP ";
    *out_ += name;
    *out_ += ' ';
    *out_ += escape_help(help);
    *out_ += "\n# TYPE ";
    *out_ += name;
    *out_ += ' ';
    *out_ += to_string(type);
    *out_ += '\n';
  }

  void sample(std::string_view name, std::initializer_list<metric_label> labels, std::uint64_t value) {
    sample_name(name, labels, {});
    append_number(*out_, value);
    *out_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<metric_label> labels, double value) {
    sample_name(name, labels, {});
    append_double(*out_, value);
    *out_ += '\n';
  }

  /// A histogram's samples: `bounds` are the buckets' upper bounds (ascending), `counts` the
  /// observations in each bucket and one more beyond the last bound (bounds.size() + 1, not
  /// cumulative); written cumulative with `le`, then `_sum` and `_count` (the total).
  template <class Bound>
  void histogram(std::string_view name, std::initializer_list<metric_label> labels, std::span<const Bound> bounds,
                 std::span<const std::uint64_t> counts, double sum) {
    PLANFENCE_ASSERT(counts.size() == bounds.size() + 1);
    std::uint64_t cumulative = 0;
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
      cumulative += counts[i];
      std::string le;
      if (i == bounds.size()) {
        le = "+Inf";
      } else if constexpr (std::floating_point<Bound>) {
        append_double(le, static_cast<double>(bounds[i]));
      } else {
        append_number(le, static_cast<std::uint64_t>(bounds[i]));
      }
      sample_name(bucket, labels, metric_label{"le", le});
      append_number(*out_, cumulative);
      *out_ += '\n';
    }
    sample(std::string(name) + "_sum", labels, sum);
    sample(std::string(name) + "_count", labels, cumulative);
  }

 private:
  void sample_name(std::string_view name, std::initializer_list<metric_label> labels, metric_label extra) {
    *out_ += name;
    if (labels.size() == 0 && extra.name.empty()) {
      *out_ += ' ';
      return;
    }
    *out_ += '{';
    bool first = true;
    auto one = [&](const metric_label& l) {
      if (!first) *out_ += ',';
      first = false;
      *out_ += l.name;
      *out_ += "=\"";
      *out_ += escape_label_value(l.value);
      *out_ += '"';
    };
    for (const metric_label& l : labels) one(l);
    if (!extra.name.empty()) one(extra);
    *out_ += "} ";
  }
  static void append_number(std::string& out, std::uint64_t value) {
    std::array<char, 24> buffer{};
    const auto done = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    out.append(buffer.data(), done.ptr);
  }
  static void append_double(std::string& out, double value) {
    if (value != value) {
      out += "NaN";
    } else if (value == std::numeric_limits<double>::infinity()) {
      out += "+Inf";
    } else if (value == -std::numeric_limits<double>::infinity()) {
      out += "-Inf";
    } else {
      std::array<char, 32> buffer{};
      const auto done = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
      out.append(buffer.data(), done.ptr);
    }
  }

  std::string* out_;
};

// --- per enactor --------------------------------------------------------------------------------

/// Why an enactor refused to write (the `reason` label of planfence_enactor_refusals_total).
enum class refusal_reason : std::uint8_t {
  stale,         ///< event_kind::stale: the endpoint (or the store's begun mark) is newer (S1)
  fenced,        ///< event_kind::fenced: a newer lease holder, or an operator, fenced it out (S2)
  conflict,      ///< event_kind::conflict: the stamp moved; read again
  blast_radius,  ///< event_kind::refused_blast_radius (S4)
  digest,        ///< event_kind::plan_invalid: the plan failed its digest check (S7)
};
inline constexpr std::size_t refusal_reason_count = 5;

[[nodiscard]] constexpr std::string_view to_string(refusal_reason r) noexcept {
  switch (r) {
    case refusal_reason::stale: return "stale";
    case refusal_reason::fenced: return "fenced";
    case refusal_reason::conflict: return "conflict";
    case refusal_reason::blast_radius: return "blast_radius";
    case refusal_reason::digest: return "digest";
  }
  return "?";
}

/// Upper bounds of planfence_enactor_apply_duration_seconds's buckets.
inline constexpr std::array<double, 12> apply_duration_bounds_seconds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                         0.1,   0.25,   0.5,   1.0,  5.0,   30.0};
/// Upper bounds of planfence_enactor_run_endpoints_written's buckets.
inline constexpr std::array<std::uint64_t, 7> run_endpoints_bounds = {0, 1, 10, 100, 1'000, 10'000, 100'000};

/// What one enactor did, fed by its events (record), read by render. One per enactor: the run
/// bookkeeping is written by the enactor's thread alone (see the header comment). Not movable
/// (hand out its address; metrics_collector::add_enactor keeps it at a stable one).
class enactor_metrics {
 public:
  /// A run: from plan_pinned to plan_applied (complete) or to the next plan_pinned or
  /// lease_lost before it (abandoned: a store outage, a conflict bound, a newer plan, fencing).
  enum class run_outcome : std::uint8_t { complete, abandoned };

  explicit enactor_metrics(std::string name) : name_(std::move(name)) {}
  enactor_metrics(const enactor_metrics&) = delete;
  enactor_metrics& operator=(const enactor_metrics&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  /// Counts one event. Called on the enactor's thread. Never allocates, never blocks.
  void record(const event& e) noexcept {
    switch (e.kind) {
      case event_kind::lease_gained:
        lease_held_.store(1, std::memory_order_relaxed);
        fence_.store(e.fence.value(), std::memory_order_relaxed);
        add(leases_gained_);
        return;
      case event_kind::lease_lost:
        lease_held_.store(0, std::memory_order_relaxed);
        add(leases_lost_);
        end_run(run_outcome::abandoned, e.time);
        return;
      case event_kind::plan_pinned:
        end_run(run_outcome::abandoned, e.time);
        applying_.store(e.gen.value(), std::memory_order_relaxed);
        run_open_ = true;
        run_started_ = e.time;
        run_written_ = 0;
        return;
      case event_kind::applied:
        add(written_);
        ++run_written_;
        return;
      case event_kind::stale: add(refusals_[static_cast<std::size_t>(refusal_reason::stale)]); return;
      case event_kind::fenced: add(refusals_[static_cast<std::size_t>(refusal_reason::fenced)]); return;
      case event_kind::conflict: add(refusals_[static_cast<std::size_t>(refusal_reason::conflict)]); return;
      case event_kind::refused_blast_radius:
        add(refusals_[static_cast<std::size_t>(refusal_reason::blast_radius)]);
        return;
      case event_kind::plan_invalid: add(refusals_[static_cast<std::size_t>(refusal_reason::digest)]); return;
      case event_kind::unknown_endpoint: add(unknown_endpoints_); return;
      case event_kind::store_error: add(store_errors_); return;
      case event_kind::plan_applied:
        if (e.gen.value() > applied_.load(std::memory_order_relaxed)) applied_.store(e.gen.value(), std::memory_order_relaxed);
        end_run(run_outcome::complete, e.time);
        return;
      case event_kind::collected: add(collected_); return;
      case event_kind::protected_from_collection: add(protected_); return;
    }
  }

  /// The enactor gave its lease back (enactor::release() emits no event): call after release(),
  /// on the thread that drives the enactor (or once it stopped), as record() is.
  void lease_released() noexcept {
    lease_held_.store(0, std::memory_order_relaxed);
    end_run(run_outcome::abandoned, run_started_);
  }

  /// What render() exports, read with relaxed loads (see the header comment).
  struct values {
    bool lease_held = false;
    fence_token fence{};
    generation applying{};
    generation applied{};
    std::array<std::uint64_t, refusal_reason_count> refusals{};
    std::uint64_t store_errors = 0, unknown_endpoints = 0, endpoints_written = 0;
    std::uint64_t leases_gained = 0, leases_lost = 0, plans_collected = 0, plans_protected = 0;
    std::uint64_t runs_complete = 0, runs_abandoned = 0;
    std::array<std::uint64_t, apply_duration_bounds_seconds.size() + 1> duration_buckets{};
    double duration_sum_seconds = 0;
    std::array<std::uint64_t, run_endpoints_bounds.size() + 1> endpoints_buckets{};
    std::uint64_t endpoints_sum = 0;
  };
  [[nodiscard]] values read() const noexcept {
    values v;
    v.lease_held = lease_held_.load(std::memory_order_relaxed) != 0;
    v.fence = fence_token{fence_.load(std::memory_order_relaxed)};
    v.applying = generation{applying_.load(std::memory_order_relaxed)};
    v.applied = generation{applied_.load(std::memory_order_relaxed)};
    for (std::size_t i = 0; i < refusal_reason_count; ++i) v.refusals[i] = refusals_[i].load(std::memory_order_relaxed);
    v.store_errors = store_errors_.load(std::memory_order_relaxed);
    v.unknown_endpoints = unknown_endpoints_.load(std::memory_order_relaxed);
    v.endpoints_written = written_.load(std::memory_order_relaxed);
    v.leases_gained = leases_gained_.load(std::memory_order_relaxed);
    v.leases_lost = leases_lost_.load(std::memory_order_relaxed);
    v.plans_collected = collected_.load(std::memory_order_relaxed);
    v.plans_protected = protected_.load(std::memory_order_relaxed);
    v.runs_complete = runs_[0].load(std::memory_order_relaxed);
    v.runs_abandoned = runs_[1].load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < v.duration_buckets.size(); ++i) v.duration_buckets[i] = duration_buckets_[i].load(std::memory_order_relaxed);
    v.duration_sum_seconds = static_cast<double>(duration_sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    for (std::size_t i = 0; i < v.endpoints_buckets.size(); ++i) v.endpoints_buckets[i] = endpoints_buckets_[i].load(std::memory_order_relaxed);
    v.endpoints_sum = endpoints_sum_.load(std::memory_order_relaxed);
    return v;
  }

 private:
  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
    counter.fetch_add(n, std::memory_order_relaxed);
  }

  /// Ends the open run, if any: a complete one is observed in both histograms.
  void end_run(run_outcome outcome, std::chrono::nanoseconds now) noexcept {
    if (!run_open_) return;
    run_open_ = false;
    applying_.store(0, std::memory_order_relaxed);
    add(runs_[static_cast<std::size_t>(outcome)]);
    if (outcome != run_outcome::complete) return;
    const std::int64_t elapsed_ns = std::max<std::int64_t>(0, (now - run_started_).count());
    const double seconds = static_cast<double>(elapsed_ns) / 1e9;
    std::size_t bucket = 0;
    while (bucket < apply_duration_bounds_seconds.size() && seconds > apply_duration_bounds_seconds[bucket]) ++bucket;
    add(duration_buckets_[bucket]);
    add(duration_sum_ns_, static_cast<std::uint64_t>(elapsed_ns));
    bucket = 0;
    while (bucket < run_endpoints_bounds.size() && run_written_ > run_endpoints_bounds[bucket]) ++bucket;
    add(endpoints_buckets_[bucket]);
    add(endpoints_sum_, run_written_);
  }

  std::string name_;
  // Written by the enactor's thread only (record), read by no one else.
  bool run_open_ = false;
  std::chrono::nanoseconds run_started_{0};
  std::uint64_t run_written_ = 0;
  // Read by render() (relaxed; see the header comment). On their own cache lines, away from the
  // name and the thread-local bookkeeping above only by being together: the render is rare.
  alignas(64) std::atomic<std::uint64_t> lease_held_{0};
  std::atomic<std::uint64_t> fence_{0};
  std::atomic<std::uint64_t> applying_{0};
  std::atomic<std::uint64_t> applied_{0};
  std::array<std::atomic<std::uint64_t>, refusal_reason_count> refusals_{};
  std::atomic<std::uint64_t> store_errors_{0}, unknown_endpoints_{0}, written_{0};
  std::atomic<std::uint64_t> leases_gained_{0}, leases_lost_{0}, collected_{0}, protected_{0};
  std::array<std::atomic<std::uint64_t>, 2> runs_{};
  std::array<std::atomic<std::uint64_t>, apply_duration_bounds_seconds.size() + 1> duration_buckets_{};
  std::atomic<std::uint64_t> duration_sum_ns_{0};
  std::array<std::atomic<std::uint64_t>, run_endpoints_bounds.size() + 1> endpoints_buckets_{};
  std::atomic<std::uint64_t> endpoints_sum_{0};
};

/// A sink that counts each event in an enactor_metrics, then hands it to `inner` (the
/// embedder's own sink; null_sink by default). Copyable: it holds the metrics' address.
template <event_sink Inner = null_sink>
struct metrics_sink {
  enactor_metrics* metrics = nullptr;
  Inner inner{};
  void operator()(const event& e) {
    PLANFENCE_ASSERT(metrics != nullptr);
    metrics->record(e);
    inner(e);
  }
};
static_assert(event_sink<metrics_sink<>>);

// --- per store ----------------------------------------------------------------------------------

/// What scan_store asks for beyond the counts.
struct store_metrics_options {
  /// Also export, per endpoint, its effective generation and whether it is empty (label
  /// `endpoint`): one series per endpoint, so only for small stores (bounded below).
  bool per_endpoint = false;
  /// At most this many endpoints get labels (the first ones in the store's order).
  std::size_t endpoint_labels_max = 256;
};

/// One endpoint as scan_store saw it (per_endpoint only).
struct endpoint_health {
  std::string name;
  generation effective{};  ///< max(stamp, applied mark); generation_none: never written
  bool empty = false;      ///< serves no records (unintended), or its plan is gone
};

/// A store read as a whole.
struct store_health {
  std::size_t endpoints = 0;
  /// Endpoints written by a plan that serve no records the plan did not mean to remove (intent
  /// empty), or whose effective generation names a plan the registry no longer has: the 2025
  /// outage state, which S3 and S4 exclude. Must be 0.
  std::size_t endpoints_empty = 0;
  /// The part of endpoints_empty whose effective generation names a plan that is gone.
  std::size_t endpoints_plan_missing = 0;
  /// Endpoints no plan has written yet.
  std::size_t endpoints_unwritten = 0;
  apply_marks marks{};  ///< zero for a store without apply marks
  fence_token fence_floor{};
  /// The floor is an operator fence (a non-zero multiple of 1024, recovery.hpp's
  /// operator_fence_stride): automation is held out.
  bool operator_hold = false;
  std::vector<endpoint_health> per_endpoint;  ///< store_metrics_options::per_endpoint only
};

namespace detail {
/// recovery.hpp's operator_fence_stride (tests/unit/metrics_test.cpp checks they agree; this
/// header must not include recovery.hpp, which does file I/O).
inline constexpr std::uint64_t metrics_operator_fence_stride = 1024;

template <class Store>
result<fence_token> own_fence_floor(const Store& store) {
  if constexpr (requires { { store.fence_floor() } -> std::same_as<result<fence_token>>; }) {
    auto own = store.fence_floor();
    if (own) return *own;
    if (own.error().code == errc::not_found) return fence_token{};
    return unexpected_error(std::move(own).error());
  } else if constexpr (requires { { store.fence_floor() } -> std::same_as<fence_token>; }) {
    return store.fence_floor();
  } else {
    return fence_token{};
  }
}
}  // namespace detail

/// Reads `store` as a whole and judges each endpoint against `registry` (any enactor_registry:
/// a plan is gone when registry.pin fails). An endpoint found empty or with its plan gone is
/// read once more (its stamp, the marks, its records) and counted only when it is still so: an
/// endpoint that moved on during the scan is not a false alarm. The fence floor is the larger
/// of the store's own (a `fence_floor()` member) and the largest fence in any stamp, as
/// recovery.hpp's store_fence_floor reads it.
/// Blocking: O(endpoints) store reads (batched when the store can) and registry pins; allocates.
template <inspectable_store Store, enactor_registry Registry>
[[nodiscard]] result<store_health> scan_store(const Store& store, const Registry& registry,
                                              const store_metrics_options& options = {}) {
  store_health health;
  auto floor = detail::own_fence_floor(store);
  if (!floor) return unexpected_error(std::move(floor).error());
  health.fence_floor = *floor;
  auto read_marks = [&]() -> result<apply_marks> {
    if constexpr (change_following_store<Store>) {
      return store.read_marks();
    } else {
      return apply_marks{};
    }
  };
  auto marks = read_marks();
  if (!marks) return unexpected_error(std::move(marks).error());
  health.marks = *marks;
  auto names = store.endpoint_names();
  if (!names) return unexpected_error(std::move(names).error());
  std::vector<endpoint_handle> handles;
  handles.reserve(names->size());
  for (const std::string& name : *names) {
    auto handle = store.resolve(name);
    if (!handle) return unexpected_error(std::move(handle).error());
    handles.push_back(*handle);
  }
  std::vector<endpoint_state> states(handles.size());
  if (auto read = inspect_endpoints(store, std::span<const endpoint_handle>(handles), std::span<endpoint_state>(states));
      !read) {
    return unexpected_error(std::move(read).error());
  }
  // 0: fine; 1: serves nothing it should; 2: its plan is gone.
  auto judge = [&](const std::string& name, const endpoint_state& state, const apply_marks& m) -> int {
    if (state.st.gen == generation_none) return 0;
    const generation effective = effective_generation(state.st.gen, m);
    auto pinned = registry.pin(effective);
    if (!pinned) return 2;
    if (!state.records.empty()) return 0;
    const endpoint_entry* entry = (*pinned)->find(name);
    return entry != nullptr && entry->records.empty() && entry->records.intended_empty() ? 0 : 1;
  };
  health.endpoints = handles.size();
  for (std::size_t i = 0; i < handles.size(); ++i) {
    const std::string& name = (*names)[i];
    health.fence_floor = std::max(health.fence_floor, states[i].st.fence);
    if (states[i].st.gen == generation_none) ++health.endpoints_unwritten;
    int verdict = judge(name, states[i], health.marks);
    if (verdict != 0) {
      // Once more, from a fresh read: count it only if it is still broken.
      auto again_marks = read_marks();
      std::array<endpoint_state, 1> again{};
      auto read = inspect_endpoints(store, std::span<const endpoint_handle>(&handles[i], 1), std::span<endpoint_state>(again));
      if (again_marks && read) verdict = judge(name, again[0], *again_marks);
    }
    if (verdict != 0) ++health.endpoints_empty;
    if (verdict == 2) ++health.endpoints_plan_missing;
    if (options.per_endpoint && health.per_endpoint.size() < options.endpoint_labels_max) {
      const generation effective =
          states[i].st.gen == generation_none ? generation_none : effective_generation(states[i].st.gen, health.marks);
      health.per_endpoint.push_back(endpoint_health{name, effective, verdict != 0});
    }
  }
  health.operator_hold =
      health.fence_floor.value() != 0 && health.fence_floor.value() % detail::metrics_operator_fence_stride == 0;
  return health;
}

// --- the collector ------------------------------------------------------------------------------

/// The enactors, stores and registries to export. add_* and render() may be called from any
/// thread (a mutex serialises them); the enactors feed their enactor_metrics without it.
class metrics_collector {
 public:
  metrics_collector() = default;
  metrics_collector(const metrics_collector&) = delete;
  metrics_collector& operator=(const metrics_collector&) = delete;

  /// A new enactor_metrics labelled enactor="name", at an address stable for the collector's
  /// life. `registry` (optional) gives planfence_enactor_published_generation: the newest plan
  /// in the registry the enactor applies from, read at each render (pin_latest).
  template <enactor_registry Registry>
  enactor_metrics& add_enactor(std::string name, const Registry& registry) {
    std::lock_guard lock(mutex_);
    auto& added = enactors_.emplace_back(std::make_unique<enactor_metrics>(std::move(name)), nullptr);
    added.second = [&registry] {
      auto newest = registry.pin_latest();
      return newest ? newest->gen() : generation_none;
    };
    return *added.first;
  }
  enactor_metrics& add_enactor(std::string name) {
    std::lock_guard lock(mutex_);
    return *enactors_.emplace_back(std::make_unique<enactor_metrics>(std::move(name)), nullptr).first;
  }

  /// A store labelled store="name", scanned against `registry` at each render (scan_store).
  /// Both must outlive the collector's renders.
  template <inspectable_store Store, enactor_registry Registry>
  void add_store(std::string name, const Store& store, const Registry& registry, store_metrics_options options = {}) {
    std::lock_guard lock(mutex_);
    stores_.push_back(store_entry{std::move(name), [&store, &registry, options] { return scan_store(store, registry, options); }});
  }

  /// A registry labelled registry="name" (one with stats(): plan_registry), read at each render.
  template <class Registry>
    requires requires(const Registry& r) { { r.stats() } -> std::same_as<registry_stats>; }
  void add_registry(std::string name, const Registry& registry) {
    std::lock_guard lock(mutex_);
    registries_.push_back(registry_entry{std::move(name), [&registry] { return registry.stats(); }});
  }

  /// The exposition of everything added: the families in a fixed order, each with one sample
  /// per enactor, store or registry (and per reason, outcome or endpoint where it has those
  /// labels). A store whose scan fails exports planfence_store_scan_success 0 and none of its
  /// other samples. Blocking (the mutex, the scans); allocates.
  [[nodiscard]] std::string render() const {
    std::string out;
    render(out);
    return out;
  }
  void render(std::string& out) const {
    std::lock_guard lock(mutex_);
    exposition_writer w(out);
    render_enactors(w);
    render_stores(w);
    render_registries(w);
  }

 private:
  struct store_entry {
    std::string name;
    std::function<result<store_health>()> scan;
  };
  struct registry_entry {
    std::string name;
    std::function<registry_stats()> stats;
  };

  void render_enactors(exposition_writer& w) const {
    if (enactors_.empty()) return;
    std::vector<enactor_metrics::values> v;
    std::vector<generation> published;
    for (const auto& [metrics, newest] : enactors_) {
      v.push_back(metrics->read());
      published.push_back(newest ? newest() : generation_none);
    }
    auto each = [&](std::string_view family, std::string_view help, metric_type type, auto&& value) {
      w.family(family, help, type);
      for (std::size_t i = 0; i < v.size(); ++i) {
        w.sample(family, {{"enactor", enactors_[i].first->name()}}, static_cast<std::uint64_t>(value(v[i], i)));
      }
    };
    using V = const enactor_metrics::values&;
    each("planfence_enactor_lease_held", "1 while the enactor holds the lease (from its lease_gained and lease_lost events), else 0.",
         metric_type::gauge, [](V x, std::size_t) { return x.lease_held ? 1 : 0; });
    each("planfence_enactor_fence_token", "The fence token of the enactor's newest lease (kept after the lease is lost).",
         metric_type::gauge, [](V x, std::size_t) { return x.fence.value(); });
    each("planfence_enactor_applying_generation", "The generation of the plan the enactor's current run applies (0 between runs).",
         metric_type::gauge, [](V x, std::size_t) { return x.applying.value(); });
    each("planfence_enactor_applied_generation", "The newest generation the enactor applied fully (every endpoint serves it or newer).",
         metric_type::gauge, [](V x, std::size_t) { return x.applied.value(); });
    bool any_published = false;
    for (const auto& e : enactors_) any_published = any_published || static_cast<bool>(e.second);
    if (any_published) {
      w.family("planfence_enactor_published_generation",
               "The newest generation published in the registry the enactor applies from (lag: this minus applied).",
               metric_type::gauge);
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (enactors_[i].second) w.sample("planfence_enactor_published_generation", {{"enactor", enactors_[i].first->name()}}, published[i].value());
      }
    }
    w.family("planfence_enactor_refusals_total",
             "Writes the enactor refused or had refused, by reason: stale (S1), fenced (S2), conflict, blast_radius (S4), digest (S7).",
             metric_type::counter);
    for (std::size_t i = 0; i < v.size(); ++i) {
      for (std::size_t r = 0; r < refusal_reason_count; ++r) {
        w.sample("planfence_enactor_refusals_total",
                 {{"enactor", enactors_[i].first->name()}, {"reason", to_string(static_cast<refusal_reason>(r))}}, v[i].refusals[r]);
      }
    }
    each("planfence_enactor_store_errors_total", "Store calls that failed (unavailable, or an item the store refused).",
         metric_type::counter, [](V x, std::size_t) { return x.store_errors; });
    each("planfence_enactor_unknown_endpoints_total", "Endpoints a plan names that the store does not have.", metric_type::counter,
         [](V x, std::size_t) { return x.unknown_endpoints; });
    each("planfence_enactor_endpoints_written_total", "Endpoints the enactor committed.", metric_type::counter,
         [](V x, std::size_t) { return x.endpoints_written; });
    each("planfence_enactor_leases_gained_total", "Leases the enactor acquired.", metric_type::counter,
         [](V x, std::size_t) { return x.leases_gained; });
    each("planfence_enactor_leases_lost_total", "Leases that lapsed, were superseded or fenced out while the enactor held them.",
         metric_type::counter, [](V x, std::size_t) { return x.leases_lost; });
    each("planfence_enactor_plans_collected_total", "Old plans the enactor collected.", metric_type::counter,
         [](V x, std::size_t) { return x.plans_collected; });
    each("planfence_enactor_plans_protected_total", "Collections refused because the plan was live, pinned or the newest (S3).",
         metric_type::counter, [](V x, std::size_t) { return x.plans_protected; });
    w.family("planfence_enactor_runs_total",
             "Runs (one plan applied) by outcome: complete, or abandoned (lease lost, newer plan, store trouble, conflicts).",
             metric_type::counter);
    for (std::size_t i = 0; i < v.size(); ++i) {
      w.sample("planfence_enactor_runs_total", {{"enactor", enactors_[i].first->name()}, {"outcome", "complete"}}, v[i].runs_complete);
      w.sample("planfence_enactor_runs_total", {{"enactor", enactors_[i].first->name()}, {"outcome", "abandoned"}}, v[i].runs_abandoned);
    }
    w.family("planfence_enactor_apply_duration_seconds", "Duration of each complete run, from pinning the plan to every endpoint serving it.",
             metric_type::histogram);
    for (std::size_t i = 0; i < v.size(); ++i) {
      w.histogram("planfence_enactor_apply_duration_seconds", {{"enactor", enactors_[i].first->name()}},
                  std::span<const double>(apply_duration_bounds_seconds), std::span<const std::uint64_t>(v[i].duration_buckets),
                  v[i].duration_sum_seconds);
    }
    w.family("planfence_enactor_run_endpoints_written", "Endpoints written by each complete run (the plan's changes, or all of it).",
             metric_type::histogram);
    for (std::size_t i = 0; i < v.size(); ++i) {
      w.histogram("planfence_enactor_run_endpoints_written", {{"enactor", enactors_[i].first->name()}},
                  std::span<const std::uint64_t>(run_endpoints_bounds), std::span<const std::uint64_t>(v[i].endpoints_buckets),
                  static_cast<double>(v[i].endpoints_sum));
    }
  }

  void render_stores(exposition_writer& w) const {
    if (stores_.empty()) return;
    std::vector<result<store_health>> scans;
    for (const store_entry& s : stores_) scans.push_back(s.scan());
    w.family("planfence_store_scan_success", "1 when the last scan of the store read every endpoint, else 0 (its other samples are then missing).",
             metric_type::gauge);
    for (std::size_t i = 0; i < stores_.size(); ++i) {
      w.sample("planfence_store_scan_success", {{"store", stores_[i].name}}, std::uint64_t{scans[i] ? 1u : 0u});
    }
    auto each = [&](std::string_view family, std::string_view help, auto&& value) {
      w.family(family, help, metric_type::gauge);
      for (std::size_t i = 0; i < stores_.size(); ++i) {
        if (scans[i]) w.sample(family, {{"store", stores_[i].name}}, static_cast<std::uint64_t>(value(*scans[i])));
      }
    };
    using H = const store_health&;
    each("planfence_store_endpoints", "Endpoints the store holds.", [](H h) { return h.endpoints; });
    each("planfence_store_endpoints_empty",
         "Written endpoints that serve no records the plan meant them to, or whose stamp names a plan that is gone (the 2025 outage: must be 0).",
         [](H h) { return h.endpoints_empty; });
    each("planfence_store_endpoints_plan_missing", "Endpoints whose effective generation names a plan the registry no longer has (part of endpoints_empty).",
         [](H h) { return h.endpoints_plan_missing; });
    each("planfence_store_endpoints_unwritten", "Endpoints no plan has written yet.", [](H h) { return h.endpoints_unwritten; });
    each("planfence_store_applied_generation", "The store's applied mark: every endpoint serves this plan or a newer one (0 without marks).",
         [](H h) { return h.marks.applied.value(); });
    each("planfence_store_begun_generation", "The store's begun mark: the newest plan whose apply has begun (0 without marks).",
         [](H h) { return h.marks.begun.value(); });
    each("planfence_store_fence_floor", "The store's fence floor: commits under a smaller fence token are refused (S2).",
         [](H h) { return h.fence_floor.value(); });
    each("planfence_store_operator_hold", "1 while the fence floor is an operator fence (planfence-ctl override): automation is held out.",
         [](H h) { return h.operator_hold ? 1 : 0; });
    bool per_endpoint = false;
    for (const auto& s : scans) per_endpoint = per_endpoint || (s && !s->per_endpoint.empty());
    if (!per_endpoint) return;
    w.family("planfence_endpoint_effective_generation", "The generation an endpoint serves: its stamp's, or the applied mark when newer.",
             metric_type::gauge);
    for (std::size_t i = 0; i < stores_.size(); ++i) {
      if (!scans[i]) continue;
      for (const endpoint_health& e : scans[i]->per_endpoint) {
        w.sample("planfence_endpoint_effective_generation", {{"store", stores_[i].name}, {"endpoint", e.name}}, e.effective.value());
      }
    }
    w.family("planfence_endpoint_empty", "1 when the endpoint counts in planfence_store_endpoints_empty.", metric_type::gauge);
    for (std::size_t i = 0; i < stores_.size(); ++i) {
      if (!scans[i]) continue;
      for (const endpoint_health& e : scans[i]->per_endpoint) {
        w.sample("planfence_endpoint_empty", {{"store", stores_[i].name}, {"endpoint", e.name}}, std::uint64_t{e.empty ? 1u : 0u});
      }
    }
  }

  void render_registries(exposition_writer& w) const {
    if (registries_.empty()) return;
    std::vector<registry_stats> stats;
    for (const registry_entry& r : registries_) stats.push_back(r.stats());
    auto each = [&](std::string_view family, std::string_view help, metric_type type, auto&& value) {
      w.family(family, help, type);
      for (std::size_t i = 0; i < registries_.size(); ++i) {
        w.sample(family, {{"registry", registries_[i].name}}, static_cast<std::uint64_t>(value(stats[i])));
      }
    };
    using S = const registry_stats&;
    each("planfence_registry_plans_retained", "Plans published and not collected.", metric_type::gauge, [](S s) { return s.retained; });
    each("planfence_registry_plans_pinned", "Retained plans an apply holds now.", metric_type::gauge, [](S s) { return s.pinned; });
    each("planfence_registry_plans_collected_total", "Plans collected.", metric_type::counter, [](S s) { return s.collected; });
    each("planfence_registry_reclamation_backlog", "Collected plans whose memory is not reclaimed yet (process-wide, bounded by backlog_max).",
         metric_type::gauge, [](S s) { return s.backlog; });
    each("planfence_registry_latest_generation", "The newest published generation.", metric_type::gauge,
         [](S s) { return s.latest.value(); });
  }

  mutable std::mutex mutex_;
  std::vector<std::pair<std::unique_ptr<enactor_metrics>, std::function<generation()>>> enactors_;
  std::vector<store_entry> stores_;
  std::vector<registry_entry> registries_;
};

}  // namespace v1
}  // namespace planfence
