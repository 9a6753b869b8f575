// planfence/sim/fault_store.hpp: a record store wrapper with named fault points and an S2 ledger.
//
// What it is: wraps any record store (in the simulator, a memory store) and, when told to, makes
// chosen operations fail with errc::store_unavailable, the one error the store concept allows for
// "could not tell". Every fault point is named, off by default and switched on per seed with a
// probability; an outage switch makes every call fail. heal() switches everything off.
//
//   fault point            what the caller sees                     what the store did
//   read_stamp             store_unavailable                        nothing
//   commit_before_write    store_unavailable                        nothing
//   commit_after_write     store_unavailable                        the commit (the answer was lost)
//   raise_fence            store_unavailable                        nothing (floor unchanged)
//
// A wrapped change_following_store's marks go through the same points: read_marks through
// read_stamp, begin_apply and finish_apply through commit_before_write (nothing written) and
// commit_after_write (written, answer lost); an accepted marks write below an accepted token is
// an S2 violation as a commit is.
//
// It also keeps the ledger the S2 oracle reads: the largest fence token the store has accepted
// (through raise_fence or an accepted commit). A commit accepted with a smaller token than one the
// store had already accepted is recorded as an S2 violation: "a commit carrying fence token f fails
// once the target has accepted a token f' > f" (S2, docs/design.md), the target being the store.
//
//     auto inner = planfence::memory_store::make(registry, names).value();
//     planfence::sim::fault_store store{std::move(inner), fault_seed};
//     store.set_fault(planfence::sim::fault_point::commit_after_write, {50'000});  // 5 %
//
// Not thread-safe: the simulator drives it from one thread. Decisions come from its own
// xoshiro256 stream, so they depend only on the seed and on the order of calls.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../record.hpp"
#include "../result.hpp"
#include "../store.hpp"
#include "checked_build.hpp"
#include "random.hpp"

namespace planfence {
inline namespace v1 {
namespace sim {

/// The store's named fault points (see the header comment).
enum class fault_point : std::uint8_t { read_stamp, commit_before_write, commit_after_write, raise_fence };
inline constexpr std::size_t fault_point_count = 4;

[[nodiscard]] constexpr std::string_view to_string(fault_point point) noexcept {
  switch (point) {
    case fault_point::read_stamp: return "read_stamp";
    case fault_point::commit_before_write: return "commit_before_write";
    case fault_point::commit_after_write: return "commit_after_write";
    case fault_point::raise_fence: return "raise_fence";
  }
  return "?";
}

/// One write-side operation as the store saw it (the simulator turns these into its timeline).
struct store_operation {
  enum class kind : std::uint8_t { commit, raise_fence, injected_fault, marks };
  kind what{};
  endpoint_handle endpoint{};
  generation gen{};           ///< commit: the desired generation
  fence_token fence{};        ///< the token carried
  fence_token accepted_max{};  ///< the store's largest accepted token before this operation
  bool succeeded = false;     ///< what the store did (for commit_after_write: true)
  errc outcome = errc::stale; ///< when the caller saw a failure: why
  fault_point fault{};        ///< injected_fault: which point
  bool s2_violation = false;  ///< accepted although a larger token had been accepted
};

template <class Inner>
class fault_store {
 public:
  fault_store(Inner inner, std::uint64_t fault_seed) : inner_(std::move(inner)), rng_(fault_seed) {}

  /// Switches a fault point on with probability `p` per call (0: off, the default).
  void set_fault(fault_point point, per_million p) noexcept { faults_[static_cast<std::size_t>(point)] = p; }
  [[nodiscard]] per_million fault(fault_point point) const noexcept { return faults_[static_cast<std::size_t>(point)]; }
  /// While on, every operation fails with store_unavailable.
  void set_outage(bool on) noexcept { outage_ = on; }
  [[nodiscard]] bool outage() const noexcept { return outage_; }
  /// Every fault off: from now on the store behaves as the wrapped one.
  void heal() noexcept {
    faults_ = {};
    outage_ = false;
  }

  [[nodiscard]] Inner& inner() noexcept { return inner_; }
  [[nodiscard]] const Inner& inner() const noexcept { return inner_; }

  // --- record_store ---------------------------------------------------------------------------

  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const noexcept { return inner_.resolve(name); }

  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const noexcept {
    if (inject(fault_point::read_stamp, h)) return fail(errc::store_unavailable);
    return inner_.read_stamp(h);
  }

  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired,
                                     const record_set& records) noexcept {
    if (inject(fault_point::commit_before_write, h)) return fail(errc::store_unavailable);
    const fence_token before = accepted_max_;
    auto committed = inner_.commit(h, expected, desired, records);
    store_operation op{store_operation::kind::commit, h, desired.gen, desired.fence, before};
    op.succeeded = committed.has_value();
    if (!committed) op.outcome = committed.error().code;
    if (committed) {
      op.s2_violation = desired.fence < accepted_max_;
      if (op.s2_violation) ++s2_violations_;
      if (accepted_max_ < desired.fence) accepted_max_ = desired.fence;
    }
    operations_.push_back(op);
    if (committed && inject(fault_point::commit_after_write, h)) return fail(errc::store_unavailable);
    return committed;
  }

  [[nodiscard]] result<void> raise_fence(fence_token token) noexcept {
    if (inject(fault_point::raise_fence, endpoint_handle{})) return fail(errc::store_unavailable);
    const fence_token before = accepted_max_;
    auto raised = inner_.raise_fence(token);
    store_operation op{store_operation::kind::raise_fence, endpoint_handle{}, generation_none, token, before};
    op.succeeded = raised.has_value();
    if (!raised) op.outcome = raised.error().code;
    if (raised && accepted_max_ < token) accepted_max_ = token;
    operations_.push_back(op);
    return raised;
  }

  [[nodiscard]] std::vector<generation> live_generations() const { return inner_.live_generations(); }

  // --- change_following_store, when the wrapped store is one ----------------------------------
  [[nodiscard]] result<apply_marks> read_marks() const noexcept
    requires change_following_store<Inner>
  {
    if (inject(fault_point::read_stamp, endpoint_handle{})) return fail(errc::store_unavailable);
    return inner_.read_marks();
  }
  [[nodiscard]] result<apply_marks> begin_apply(const apply_marks& expected, generation target, fence_token token) noexcept
    requires change_following_store<Inner>
  {
    return write_marks(target, token, [&] { return inner_.begin_apply(expected, target, token); });
  }
  [[nodiscard]] result<apply_marks> finish_apply(generation target, fence_token token) noexcept
    requires change_following_store<Inner>
  {
    return write_marks(target, token, [&] { return inner_.finish_apply(target, token); });
  }

  // --- beyond the concept -----------------------------------------------------------------------

  /// What the endpoint serves now (the naive enactor reads records, not only stamps). No faults:
  /// in the 2025 design this read was part of the per-endpoint transaction.
  [[nodiscard]] auto read(endpoint_handle h) const noexcept { return inner_.read(h); }
  [[nodiscard]] std::size_t size() const noexcept { return inner_.size(); }
  [[nodiscard]] std::string_view name(endpoint_handle h) const noexcept { return inner_.name(h); }

  /// The largest fence token the store has accepted (S2 ledger).
  [[nodiscard]] fence_token accepted_fence_max() const noexcept { return accepted_max_; }
  /// Commits accepted although a larger token had been accepted before (S2 violations).
  [[nodiscard]] std::uint64_t s2_violations() const noexcept { return s2_violations_; }
  /// Operations since the last clear_operations(), oldest first.
  [[nodiscard]] const std::vector<store_operation>& operations() const noexcept { return operations_; }
  void clear_operations() noexcept { operations_.clear(); }

 private:
  template <class Write>
  result<apply_marks> write_marks(generation target, fence_token token, Write&& write) noexcept {
    if (inject(fault_point::commit_before_write, endpoint_handle{})) return fail(errc::store_unavailable);
    const fence_token before = accepted_max_;
    result<apply_marks> written = write();
    store_operation op{store_operation::kind::marks, endpoint_handle{}, target, token, before};
    op.succeeded = written.has_value();
    if (!written) op.outcome = written.error().code;
    if (written) {
      op.s2_violation = token < accepted_max_;
      if (op.s2_violation) ++s2_violations_;
      if (accepted_max_ < token) accepted_max_ = token;
    }
    operations_.push_back(op);
    if (written && inject(fault_point::commit_after_write, endpoint_handle{})) return fail(errc::store_unavailable);
    return written;
  }

  bool inject(fault_point point, endpoint_handle h) const noexcept {
    const per_million p = outage_ ? per_million{1'000'000} : faults_[static_cast<std::size_t>(point)];
    if (p.value == 0 || !rng_.chance(p)) return false;
    store_operation op{store_operation::kind::injected_fault, h};
    op.fault = point;
    op.outcome = errc::store_unavailable;
    operations_.push_back(op);
    return true;
  }

  Inner inner_;
  // Fault decisions are not part of the store's logical state: read_stamp is const.
  mutable xoshiro256 rng_;
  mutable std::vector<store_operation> operations_;
  std::array<per_million, fault_point_count> faults_{};
  bool outage_ = false;
  fence_token accepted_max_{};
  std::uint64_t s2_violations_ = 0;
};

}  // namespace sim
}  // namespace v1
}  // namespace planfence
