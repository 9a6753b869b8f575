// planfence/sim/trace.hpp: what a simulated run reports: violations, the trace hash, the timeline.
//
// What it is: the vocabulary the simulator, the demo and the tests share.
//  - `guarantee` names S1..S7 (README "The guarantees", docs/design.md); `violation` is the first breach of one, with
//    the step, the virtual time, the actor whose step revealed it and a sentence saying what
//    happened.
//  - `run_report` is the outcome of one run: the violations, how many of each, whether the
//    endpoints converged after the faults healed (S6), what each endpoint serves at the end, and
//    the trace hash: FNV-1a over every event and decision, so that "same seed, same run" is a
//    comparison of two integers.
//  - `timeline` is the optional human-readable record: one lane (column) per actor, rendered as
//    swimlanes by `render`.
//  - `run_trace` collects all of it while the run goes; `trace_sink` is the event sink the
//    enactors (fixed and naive) write to.
//
// Cost: hashing every event is a few nanoseconds per byte; the timeline (strings) is only built
// when asked for, so seed sweeps do not pay for it.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../events.hpp"
#include "../ids.hpp"
#include "checked_build.hpp"
#include "random.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

/// The guarantees S1..S7 (README "The guarantees", docs/design.md).
enum class guarantee : std::uint8_t { s1, s2, s3, s4, s5, s6, s7 };
inline constexpr std::size_t guarantee_count = 7;

/// "S1" .. "S7".
[[nodiscard]] constexpr std::string_view to_string(guarantee g) noexcept {
  constexpr std::string_view names[] = {"S1", "S2", "S3", "S4", "S5", "S6", "S7"};
  return names[static_cast<std::size_t>(g)];
}
/// The guarantee's name in words.
[[nodiscard]] constexpr std::string_view title(guarantee g) noexcept {
  constexpr std::string_view titles[] = {"no regression", "fencing", "live data is never collected",
                                         "no accidental blackout", "one generation, one plan", "liveness",
                                         "integrity"};
  return titles[static_cast<std::size_t>(g)];
}

/// A set of guarantees, bit i for S(i+1).
using guarantee_mask = std::uint32_t;
[[nodiscard]] constexpr guarantee_mask bit(guarantee g) noexcept { return guarantee_mask{1} << static_cast<unsigned>(g); }

/// "S1, S3, S4" (empty when none).
[[nodiscard]] inline std::string to_string(guarantee_mask mask) {
  std::string out;
  for (std::size_t i = 0; i < guarantee_count; ++i) {
    if ((mask & (guarantee_mask{1} << i)) == 0) continue;
    if (!out.empty()) out += ", ";
    out += to_string(static_cast<guarantee>(i));
  }
  return out;
}

/// "0x2a": how seeds are printed everywhere.
[[nodiscard]] inline std::string format_seed(std::uint64_t seed) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%llx", static_cast<unsigned long long>(seed));
  return buffer;
}

/// The first breach of one guarantee in a run.
struct violation {
  guarantee id{};
  std::uint64_t step = 0;
  std::int64_t time_ns = 0;  ///< virtual time since the run began
  std::string actor;         ///< whose step revealed it ("planner", "az2", ...)
  std::string detail;        ///< what happened, in a sentence
};

/// What an endpoint serves when the run ends.
struct endpoint_outcome {
  std::string name;
  generation gen{};
  std::size_t records = 0;
  bool plan_missing = false;  ///< its stamp names a plan that was collected
};

/// The outcome of one run.
struct run_report {
  std::uint64_t seed = 0;
  std::string system;                  ///< "naive", "fixed", or a broken variant's name
  std::vector<violation> violations;   ///< the first of each guarantee broken, in the order found
  std::array<std::uint64_t, guarantee_count> counts{};  ///< breaches of each guarantee
  bool converged = false;              ///< S6: every endpoint reached the final plan after healing
  std::uint64_t steps = 0;             ///< scheduler steps in the whole run
  std::uint64_t steps_to_converge = 0; ///< steps after healing until convergence
  std::int64_t virtual_ns = 0;         ///< virtual time the run took
  std::uint64_t trace_hash = 0;        ///< FNV-1a over every event and decision
  generation final_gen{};              ///< the plan published when faults healed
  std::vector<endpoint_outcome> endpoints;
  std::uint32_t enactors_stopped = 0;  ///< naive enactors that stopped on a deleted plan
  std::uint64_t plans_published = 0;

  [[nodiscard]] guarantee_mask mask() const noexcept {
    guarantee_mask m = 0;
    for (std::size_t i = 0; i < guarantee_count; ++i) {
      if (counts[i] != 0) m |= guarantee_mask{1} << i;
    }
    return m;
  }
  [[nodiscard]] bool failed() const noexcept { return mask() != 0; }
  [[nodiscard]] bool broke(guarantee g) const noexcept { return counts[static_cast<std::size_t>(g)] != 0; }
};

/// The human-readable record of a run: lanes (columns) and entries.
struct timeline {
  enum class kind : std::uint8_t { cell, narration, violation };
  struct entry {
    kind what = kind::cell;
    std::uint64_t step = 0;
    std::int64_t time_ns = 0;
    std::uint32_t lane = 0;
    std::string text;
  };
  std::vector<std::string> lanes;  ///< column titles: planner, each enactor, store
  std::vector<entry> entries;

  /// Swimlanes, `width` columns wide: one column per lane, one row per step that did something,
  /// narration and violations across the whole width.
  [[nodiscard]] std::string render(std::size_t width = 116) const;
};

namespace text {

/// Word-wraps `s` into lines of at most `width` characters (long words are cut).
inline std::vector<std::string> wrap(std::string_view s, std::size_t width) {
  std::vector<std::string> lines;
  std::string line;
  while (!s.empty()) {
    const std::size_t start = s.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    s.remove_prefix(start);
    std::size_t end = s.find(' ');
    std::string_view word = s.substr(0, end);
    s.remove_prefix(end == std::string_view::npos ? s.size() : end);
    while (word.size() > width) {
      if (!line.empty()) lines.push_back(std::move(line));
      line.clear();
      lines.emplace_back(word.substr(0, width));
      word.remove_prefix(width);
    }
    if (line.size() + (line.empty() ? 0 : 1) + word.size() > width) {
      lines.push_back(std::move(line));
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
  }
  if (!line.empty()) lines.push_back(std::move(line));
  if (lines.empty()) lines.emplace_back();
  return lines;
}

inline std::string seconds(std::int64_t ns) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%8.3fs", static_cast<double>(ns) / 1e9);
  return buffer;
}

inline void pad(std::string& out, std::string_view cell, std::size_t width) {
  out += cell;
  if (cell.size() < width) out.append(width - cell.size(), ' ');
}

}  // namespace text

inline std::string timeline::render(std::size_t width) const {
  const std::size_t lane_count = lanes.size();
  PLANFENCE_ASSERT(lane_count >= 2);
  constexpr std::size_t time_width = 9;
  constexpr std::size_t gap = 2;
  const std::size_t enactor_count = lane_count - 2;
  std::vector<std::size_t> widths(lane_count, 0);
  widths.front() = 16;
  widths.back() = 24;
  const std::size_t fixed = time_width + widths.front() + widths.back() + gap * lane_count;
  const std::size_t per_enactor =
      enactor_count == 0 ? 0 : std::clamp<std::size_t>(width > fixed ? (width - fixed) / enactor_count : 0, 16, 26);
  for (std::size_t i = 1; i + 1 < lane_count; ++i) widths[i] = per_enactor;
  std::size_t total = time_width;
  for (std::size_t w : widths) total += gap + w;

  std::string out;
  auto finish_line = [&](std::string& line) {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  {
    std::string header;
    text::pad(header, "    time", time_width);
    for (std::size_t i = 0; i < lane_count; ++i) {
      header.append(gap, ' ');
      text::pad(header, std::string_view(lanes[i]).substr(0, widths[i]), widths[i]);
    }
    finish_line(header);
    std::string rule;
    text::pad(rule, std::string(time_width, '-'), time_width);
    for (std::size_t i = 0; i < lane_count; ++i) {
      rule.append(gap, ' ');
      rule.append(widths[i], '-');
    }
    finish_line(rule);
  }
  auto full_width = [&](std::string_view prefix, std::string_view body) {
    const auto lines = text::wrap(body, total > prefix.size() ? total - prefix.size() : 40);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      std::string line = i == 0 ? std::string(prefix) : std::string(prefix.size(), ' ');
      line += lines[i];
      finish_line(line);
    }
  };

  std::size_t i = 0;
  while (i < entries.size()) {
    const entry& first = entries[i];
    if (first.what == kind::narration) {
      out += '\n';
      full_width("  -- ", first.text);
      ++i;
      continue;
    }
    if (first.what == kind::violation) {
      full_width("  !! ", first.text);
      ++i;
      continue;
    }
    // One row: every cell entry of this step.
    std::vector<std::string> cells(lane_count);
    std::size_t j = i;
    for (; j < entries.size() && entries[j].what == kind::cell && entries[j].step == first.step; ++j) {
      std::string& cell = cells[std::min<std::size_t>(entries[j].lane, lane_count - 1)];
      if (!cell.empty()) cell += "; ";
      cell += entries[j].text;
    }
    std::vector<std::vector<std::string>> wrapped(lane_count);
    std::size_t height = 1;
    for (std::size_t lane = 0; lane < lane_count; ++lane) {
      if (cells[lane].empty()) continue;
      wrapped[lane] = text::wrap(cells[lane], widths[lane]);
      height = std::max(height, wrapped[lane].size());
    }
    for (std::size_t row = 0; row < height; ++row) {
      std::string line;
      text::pad(line, row == 0 ? text::seconds(first.time_ns) : std::string(), time_width);
      for (std::size_t lane = 0; lane < lane_count; ++lane) {
        line.append(gap, ' ');
        text::pad(line, row < wrapped[lane].size() ? wrapped[lane][row] : std::string(), widths[lane]);
      }
      finish_line(line);
    }
    i = j;
  }
  return out;
}

/// Collects the trace hash, per-enactor progress and (optionally) the timeline of one run.
class run_trace {
 public:
  run_trace(bool keep_timeline, std::vector<std::string> endpoint_names, std::vector<std::string> endpoint_labels)
      : keep_(keep_timeline), names_(std::move(endpoint_names)), labels_(std::move(endpoint_labels)) {}

  void set_lanes(std::vector<std::string> lanes) {
    progress_.assign(lanes.size(), lane_progress{});
    timeline_.lanes = std::move(lanes);
  }
  /// The step and virtual time (since the run began) that following entries belong to.
  void at(std::uint64_t step, std::int64_t time_ns) noexcept {
    step_ = step;
    time_ns_ = time_ns;
  }
  [[nodiscard]] bool keeping() const noexcept { return keep_; }

  /// An enactor's event (called through trace_sink).
  void on_event(std::uint32_t lane, const event& e, bool naive) {
    hasher_.add(step_);
    hasher_.add(lane);
    hasher_.add(static_cast<std::uint64_t>(e.kind));
    hasher_.add(e.gen.value());
    hasher_.add(e.fence.value());
    hasher_.add_text(e.endpoint);
    hasher_.add(static_cast<std::uint64_t>(e.time.count()));
    lane_progress& p = progress_[lane];
    switch (e.kind) {
      case event_kind::plan_pinned: p.endpoints_done = 0; break;
      case event_kind::applied:
      case event_kind::stale:
      case event_kind::refused_blast_radius:
      case event_kind::unknown_endpoint:
        if (!e.endpoint.empty()) ++p.endpoints_done;  // not the plan-wide refusals
        break;
      case event_kind::lease_lost: p.endpoints_done = 0; break;
      default: break;
    }
    if (!keep_) return;
    const std::string label(this->label(e.endpoint));
    const std::string gen = "g" + std::to_string(e.gen.value());
    const std::string fence = "f" + std::to_string(e.fence.value());
    switch (e.kind) {
      case event_kind::lease_gained: cell(lane, "lease " + fence); break;
      case event_kind::lease_lost: cell(lane, "lost lease " + fence); break;
      case event_kind::plan_pinned: cell(lane, naive ? "start " + gen + " (one-time check: newer)" : "pin " + gen); break;
      case event_kind::applied: cell(lane, gen + " -> " + label); break;
      case event_kind::stale:
        if (e.endpoint.empty()) {
          cell(lane, gen + " stale: a newer plan's apply has begun");
        } else {
          cell(lane, naive ? gen + " not newer than " + label + ": skip" : label + " stale for " + gen);
        }
        break;
      case event_kind::fenced:
        cell(lane, e.endpoint.empty() ? gen + " marks REFUSED: fenced (" + fence + ")"
                                      : gen + " -> " + label + " REFUSED: fenced (" + fence + ")");
        break;
      case event_kind::conflict: cell(lane, e.endpoint.empty() ? "apply marks moved, re-read" : label + " conflict, re-read"); break;
      case event_kind::refused_blast_radius:
        cell(lane, e.endpoint.empty() ? gen + " REFUSED: S4 zone guard" : gen + " -> " + label + " REFUSED: S4 empty");
        break;
      case event_kind::unknown_endpoint: cell(lane, label + " unknown"); break;
      case event_kind::store_error: cell(lane, e.endpoint.empty() ? "store error" : "store error at " + label); break;
      case event_kind::plan_applied: cell(lane, gen + " done"); break;
      case event_kind::collected: merge_or_add(lane, naive ? "delete" : "collect", gen); break;
      case event_kind::protected_from_collection: merge_or_add(lane, "keep", gen); break;
      case event_kind::plan_invalid: cell(lane, gen + " REFUSED: bad digest"); break;
    }
  }

  /// Mixes a decision that is not an enactor event (a fault, a publish) into the hash.
  void mix(std::uint64_t value) noexcept { hasher_.add(value); }
  [[nodiscard]] std::uint64_t hash() const noexcept { return hasher_.value(); }

  /// A timeline cell (only kept when keeping the timeline).
  void cell(std::uint32_t lane, std::string body) {
    if (!keep_) return;
    timeline_.entries.push_back({timeline::kind::cell, step_, time_ns_, lane, std::move(body)});
  }
  void narrate(std::string body) {
    if (!keep_) return;
    timeline_.entries.push_back({timeline::kind::narration, step_, time_ns_, 0, std::move(body)});
  }
  void violation_line(std::string body) {
    if (!keep_) return;
    timeline_.entries.push_back({timeline::kind::violation, step_, time_ns_, 0, std::move(body)});
  }

  /// Endpoints the lane's current run has finished (applied, stale or refused) since it pinned.
  [[nodiscard]] std::uint32_t endpoints_done(std::uint32_t lane) const noexcept { return progress_[lane].endpoints_done; }

  /// The short label of an endpoint name (the name itself when unknown).
  [[nodiscard]] std::string_view label(std::string_view name) const noexcept {
    for (std::size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return labels_[i];
    }
    return name;
  }

  [[nodiscard]] const timeline& recorded() const noexcept { return timeline_; }
  [[nodiscard]] timeline take_record() { return std::move(timeline_); }

 private:
  struct lane_progress {
    std::uint32_t endpoints_done = 0;
  };

  void merge_or_add(std::uint32_t lane, std::string_view verb, const std::string& gen) {
    if (!timeline_.entries.empty()) {
      timeline::entry& last = timeline_.entries.back();
      if (last.what == timeline::kind::cell && last.step == step_ && last.lane == lane &&
          std::string_view(last.text).substr(0, verb.size()) == verb) {
        last.text += " " + gen;
        return;
      }
    }
    cell(lane, std::string(verb) + " " + gen);
  }

  bool keep_;
  std::vector<std::string> names_;
  std::vector<std::string> labels_;
  std::vector<lane_progress> progress_;
  timeline timeline_;
  trace_hasher hasher_;
  std::uint64_t step_ = 0;
  std::int64_t time_ns_ = 0;
};

/// The event sink every simulated enactor writes to: forwards to the run's trace.
struct trace_sink {
  run_trace* trace = nullptr;
  std::uint32_t lane = 0;
  bool naive = false;
  void operator()(const event& e) const { trace->on_event(lane, e, naive); }
};
static_assert(event_sink<trace_sink>);

}  // namespace sim
}  // namespace v1
}  // namespace planfence
