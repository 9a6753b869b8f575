// planfence/store.hpp: the record store concept: what every store provides.
//
// A store holds, for each endpoint, the records it serves and a *stamp*: the generation it
// serves, the largest fence token it accepted, and a store-specific version. The enactor is
// written once on top of two operations (docs/concepts.md gives their full meaning):
//
//   read_stamp(endpoint)                         -> result<stamp>
//   commit(endpoint, expected, desired, records) -> result<stamp>
//
// `commit` writes the records and the desired stamp in one atomic step if and only if the
// endpoint's stamp is still `expected`; it refuses (writing nothing) with
//   errc::stale     when the endpoint serves desired.gen or newer           (S1)
//   errc::fenced    when the endpoint or store accepted a larger fence token (S2)
//   errc::conflict  when the stamp moved otherwise: read again and decide again
// and errc::store_unavailable when it cannot tell (nothing was written, or the commit is
// idempotent to retry). A store never writes a stamp whose generation is not larger than the
// one it replaces, never accepts a fence below its fence floor, and never needs to know about
// plans or leases.
//
//   raise_fence(token)     after it returns, the store refuses every commit with a smaller token
//   live_generations()     the generations its endpoints serve now (for S3 collection): a
//                          std::vector, or a result of one for a store that can fail to read
//                          (collection then collects nothing)
//   resolve(name)          an endpoint_handle for a canonical name, or errc::unknown_endpoint
//
// batched_store adds the same two operations for many endpoints in one store call, so that a
// remote store pays one round trip (one UPDATE, one transaction, one rewrite of a zone file) for
// many endpoints instead of one each:
//
//   read_stamps(handles, out)   the stamps of several endpoints (out[i] for handles[i])
//   commit_batch(items)         each item committed under its own condition, exactly as `commit`
//                               would; its outcome written into the item
//
// Each item of a batch is decided by its own expected stamp and the store's fence floor (S1,
// S2), never by the other items. A store may split a batch into units it applies atomically (a
// DNS message, an etcd transaction, one rewrite of a zone); when an item of a unit fails its
// condition, the store marks it refused and submits the rest of the unit again, so the outcome
// of one item never depends on another's. On an error return, items still `pending` are not
// known to be written (read them again); items already decided keep their outcome.
//
// change_following_store adds the two *apply marks* that let an enactor write only the endpoints
// a plan changes (docs/design.md, "Batches, and a cost that follows the change"):
//
//   read_marks()                          -> result<apply_marks>  {begun B, applied A, version}
//   begin_apply(expected, target, token)  -> result<apply_marks>  B := target, if the marks are
//                                            still `expected` and token >= the fence floor
//   finish_apply(target, token)           -> result<apply_marks>  A := max(A, target) (and B :=
//                                            max(B, target)), if token >= the fence floor
//
// Both writes are refused with errc::fenced below the floor (nothing written); begin_apply with
// errc::conflict when the marks moved. An endpoint's *effective* generation is max(its stamp's
// generation, A): an endpoint an apply left unwritten because the plan did not change it serves
// plan A's records. Such a store's live_generations() is the set of effective generations plus A
// and B themselves, so that collection keeps what the endpoints serve and the inputs of the next
// apply's diff (S3).
//
// inspectable_store adds what recovery tools need to compare a store with a plan (drift):
//   served(endpoint)       the records the endpoint serves now
//   endpoint_names()       every endpoint the store holds records or a stamp for
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "ids.hpp"
#include "record.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

/// What an endpoint serves, as far as commits are concerned.
struct stamp {
  generation gen{};        ///< generation_none: never written
  fence_token fence{};     ///< largest token accepted for this endpoint
  std::uint64_t version = 0;  ///< store-specific (the packed word, an etcd mod revision, ...)
  friend constexpr bool operator==(const stamp&, const stamp&) noexcept = default;
};

/// What became of one item of a batched commit.
enum class commit_outcome : std::uint8_t {
  pending,   ///< not decided: the batch ended with an error before it (read the stamp again)
  written,   ///< the records and the desired stamp are stored; `now` is the stamp stored
  stale,     ///< refused: the endpoint serves desired.gen or newer (S1)
  fenced,    ///< refused: the endpoint or store accepted a larger fence token (S2)
  conflict,  ///< refused: the stamp moved otherwise; read again and decide again
};

[[nodiscard]] constexpr std::string_view to_string(commit_outcome o) noexcept {
  switch (o) {
    case commit_outcome::pending: return "pending";
    case commit_outcome::written: return "written";
    case commit_outcome::stale: return "stale";
    case commit_outcome::fenced: return "fenced";
    case commit_outcome::conflict: return "conflict";
  }
  return "?";
}

/// One endpoint of a batched commit. The caller fills the first four fields; the store fills
/// `outcome` and `now`. `records` must outlive the call. An endpoint appears at most once in a
/// batch (a programmer error otherwise).
struct commit_item {
  endpoint_handle endpoint{};
  stamp expected{};
  stamp desired{};
  const record_set* records = nullptr;
  commit_outcome outcome = commit_outcome::pending;
  /// written: the stamp now stored (with the store's version). Refused: the stamp the store
  /// found, when it read one (else the expected stamp).
  stamp now{};
};

/// What live_generations() may return: the set, or, for a store whose reads can fail, the set
/// or the error (the registry then collects nothing rather than trust a guess, S3).
template <class T>
concept live_set_result = std::same_as<T, std::vector<generation>> || std::same_as<T, result<std::vector<generation>>>;

/// A store the enactor can apply plans to. See the header comment and docs/concepts.md.
template <class S>
concept record_store = requires(S& s, const S& cs, endpoint_handle h, std::string_view name,
                                const stamp& st, const record_set& records, fence_token f) {
  { cs.resolve(name) } -> std::same_as<result<endpoint_handle>>;
  { cs.read_stamp(h) } -> std::same_as<result<stamp>>;
  { s.commit(h, st, st, records) } -> std::same_as<result<stamp>>;
  { s.raise_fence(f) } -> std::same_as<result<void>>;
  { cs.live_generations() } -> live_set_result;
};

/// A record store that reads and commits many endpoints per call (the header comment and
/// docs/concepts.md). `read_stamps` fills `out` (same size as the handles) or fails as a whole;
/// `commit_batch` decides every item as `commit` would and returns an error only when the store
/// itself failed (store_unavailable, capacity_exceeded, ...), leaving undecided items `pending`.
template <class S>
concept batched_store = record_store<S> && requires(S& s, const S& cs, std::span<const endpoint_handle> handles,
                                                    std::span<stamp> out, std::span<commit_item> items) {
  { cs.read_stamps(handles, out) } -> std::same_as<result<void>>;
  { s.commit_batch(items) } -> std::same_as<result<void>>;
};

/// Endpoints per store call for a store that does not say what suits it (enactor_config::batch_max
/// 0): small, so that the enactor's batch arrays stay small and a cheap store's batches stop soon.
inline constexpr std::uint32_t default_batch_max = 64;
/// The largest batch an enactor takes (enactor_config::batch_max).
inline constexpr std::uint32_t batch_max_limit = 65536;

/// The batch size a store asks for, when an embedder leaves enactor_config::batch_max at 0: its
/// `preferred_batch_max()` (clamped to 1..batch_max_limit) when it has one, else
/// default_batch_max. A store says it when a batch costs it about the same whatever its size up
/// to some limit: a zone-file rewrite writes the whole zone anyway (so one batch per plan is
/// best), an etcd transaction holds max-txn-ops operations, an RFC 2136 batch is one pipelined
/// read and a few UPDATEs. Constant time, no I/O.
template <class S>
[[nodiscard]] std::uint32_t preferred_batch_max(const S& store) noexcept {
  if constexpr (requires {
                  { store.preferred_batch_max() } -> std::convertible_to<std::uint32_t>;
                }) {
    return std::clamp<std::uint32_t>(static_cast<std::uint32_t>(store.preferred_batch_max()), 1, batch_max_limit);
  } else {
    return default_batch_max;
  }
}

/// commit_batch for a store whose commits are cheap and independent (the memory store: one CAS
/// each): every item through the store's own `commit`, in order. Stops at the first error that
/// is not a refusal, leaving the rest `pending`.
template <record_store S>
[[nodiscard]] result<void> commit_each(S& store, std::span<commit_item> items) {
  for (commit_item& item : items) {
    PLANFENCE_ASSERT(item.records != nullptr);
    auto done = store.commit(item.endpoint, item.expected, item.desired, *item.records);
    if (done) {
      item.outcome = commit_outcome::written;
      item.now = *done;
      continue;
    }
    item.now = item.expected;
    switch (done.error().code) {
      case errc::stale: item.outcome = commit_outcome::stale; break;
      case errc::fenced: item.outcome = commit_outcome::fenced; break;
      case errc::conflict: item.outcome = commit_outcome::conflict; break;
      default: item.outcome = commit_outcome::pending; return unexpected_error(done.error());
    }
  }
  return ok();
}

/// read_stamps for a store whose reads are cheap: every handle through `read_stamp`.
template <record_store S>
[[nodiscard]] result<void> read_each(const S& store, std::span<const endpoint_handle> handles, std::span<stamp> out) {
  PLANFENCE_ASSERT(handles.size() == out.size());
  for (std::size_t i = 0; i < handles.size(); ++i) {
    auto seen = store.read_stamp(handles[i]);
    if (!seen) return unexpected_error(seen.error());
    out[i] = *seen;
  }
  return ok();
}

/// The apply marks of a change_following_store. applied <= begun, both monotonic, both written
/// only under the fence floor.
struct apply_marks {
  generation begun{};    ///< B: the newest generation whose apply has begun (generation_none: never)
  generation applied{};  ///< A: the newest generation fully applied (generation_none: never)
  std::uint64_t version = 0;  ///< store-specific (an etcd mod revision, ...); begin_apply compares it
  friend constexpr bool operator==(const apply_marks&, const apply_marks&) noexcept = default;
};

/// An endpoint's effective generation: the newer of its stamp and the store's applied mark.
[[nodiscard]] constexpr generation effective_generation(generation stamped, const apply_marks& marks) noexcept {
  return stamped > marks.applied ? stamped : marks.applied;
}

/// A record store that keeps apply marks, so that an apply writes only what its plan changes
/// (the header comment, docs/concepts.md and docs/design.md).
///   begin_apply(expected, target, token): precondition target > expected.begun. Writes B :=
///     target in one atomic step iff the marks are still `expected` and token >= the floor.
///     errc::fenced, errc::conflict (the marks moved: read again), errc::store_unavailable.
///   finish_apply(target, token): A := max(A, target), B := max(B, target), in one atomic step
///     iff token >= the floor (idempotent; a store retries its own conditional write when the
///     marks moved under it). errc::fenced, errc::store_unavailable.
/// Both return the marks as stored after the call.
template <class S>
concept change_following_store = record_store<S> && requires(S& s, const S& cs, const apply_marks& m, generation g,
                                                             fence_token f) {
  { cs.read_marks() } -> std::same_as<result<apply_marks>>;
  { s.begin_apply(m, g, f) } -> std::same_as<result<apply_marks>>;
  { s.finish_apply(g, f) } -> std::same_as<result<apply_marks>>;
};

/// The apply marks a batch may carry (marks_batch_store): a begin_apply before its items and a
/// finish_apply after them, each written with the store's write of the items where it can be
/// (one rewrite of a zone file holds the begun mark, the records and the applied mark).
struct batch_marks {
  /// In: begin_apply(*begin, target, token) before any item of the batch is written.
  const apply_marks* begin = nullptr;
  /// In: finish_apply(target, token) after the items, only if every item of the batch came out
  /// written or stale (the caller asks for it with the last batch of a run that decided every
  /// other endpoint). A store may decline (finished stays false): the caller finishes on its own.
  bool finish = false;
  generation target{};
  fence_token token{};
  /// Out: the begun mark was raised (or found at target: nothing to write), before any write.
  bool began = false;
  /// Out: the begin was refused (errc::fenced or errc::conflict, returned): nothing was written.
  bool begin_refused = false;
  /// Out: the applied mark was raised after every item.
  bool finished = false;
  /// Out: the marks as stored, when began or finished.
  apply_marks marks{};
};

/// A change-following store that can write the apply marks with a batch's items:
///   commit_batch(items, marks)  exactly begin_apply (if marks.begin), then commit_batch(items),
///     then finish_apply (if marks.finish and every item came out written or stale), except
///     that the begin may be written atomically with the first part of the batch and the finish
///     atomically with the last. Merging two steps into one atomic step only removes
///     interleavings, so every guarantee of the separate calls holds (docs/design.md). A refused
///     begin returns its error with begin_refused set and writes nothing.
template <class S>
concept marks_batch_store = change_following_store<S> && batched_store<S> &&
                            requires(S& s, std::span<commit_item> items, batch_marks& m) {
                              { s.commit_batch(items, m) } -> std::same_as<result<void>>;
                            };

/// commit_batch(items, marks) for a change-following batched store that writes its apply marks on
/// their own: begin_apply (if marks.begin), commit_batch(items), then finish_apply (if
/// marks.finish and every item came out written or stale): the definition of marks_batch_store's
/// call, in up to three store calls. A begin refused (fenced, conflict) sets begin_refused and
/// writes nothing; a begin that fails otherwise writes nothing either. A finish that fails is
/// declined (finished stays false, the call still succeeds): the caller finishes on its own and
/// meets the error there. any_store uses it for the stores that do not fold the marks.
template <class S>
  requires change_following_store<S> && batched_store<S>
[[nodiscard]] result<void> commit_batch_then_marks(S& store, std::span<commit_item> items, batch_marks& marks) {
  marks.began = marks.begin_refused = marks.finished = false;
  if (marks.begin != nullptr) {
    PLANFENCE_ASSERT(marks.target > marks.begin->begun);
    auto begun = store.begin_apply(*marks.begin, marks.target, marks.token);
    if (!begun) {
      marks.begin_refused = begun.error().code == errc::fenced || begun.error().code == errc::conflict;
      return unexpected_error(std::move(begun).error());
    }
    marks.began = true;
    marks.marks = *begun;
  }
  if (auto done = store.commit_batch(items); !done) return done;
  if (marks.finish && std::all_of(items.begin(), items.end(), [](const commit_item& item) {
        return item.outcome == commit_outcome::written || item.outcome == commit_outcome::stale;
      })) {
    if (auto finished = store.finish_apply(marks.target, marks.token)) {
      marks.finished = true;
      marks.marks = *finished;
    }
  }
  return ok();
}

/// Whether every item of a batch decided so far is written or stale (`pending`: not decided yet):
/// whether a marks_batch_store may still send the finish with the batch's last write.
[[nodiscard]] inline bool batch_settled(std::span<const commit_item> items) noexcept {
  return std::all_of(items.begin(), items.end(), [](const commit_item& item) {
    return item.outcome == commit_outcome::pending || item.outcome == commit_outcome::written ||
           item.outcome == commit_outcome::stale;
  });
}

/// A refused begin of a marks_batch_store's commit_batch(items, marks): nothing of the batch was
/// written, so every item is `pending` again; `why` (fenced or conflict) is returned with
/// begin_refused set.
[[nodiscard]] inline result<void> refuse_batch_begin(std::span<commit_item> items, batch_marks& marks, error why) {
  for (commit_item& item : items) {
    item.outcome = commit_outcome::pending;
    item.now = item.expected;
  }
  marks.begin_refused = true;
  return unexpected_error(std::move(why));
}

/// The begin of a marks_batch_store's commit_batch(items, marks) when none of its writes carried
/// it: the store's own begin_apply (a refusal as refuse_batch_begin, other errors returned as they
/// are, items untouched).
template <change_following_store S>
[[nodiscard]] result<void> begin_batch_separately(S& store, std::span<commit_item> items, batch_marks& marks) {
  auto begun = store.begin_apply(*marks.begin, marks.target, marks.token);
  if (!begun) {
    if (begun.error().code == errc::fenced || begun.error().code == errc::conflict) {
      return refuse_batch_begin(items, marks, std::move(begun).error());
    }
    return unexpected_error(std::move(begun).error());
  }
  marks.began = true;
  marks.marks = *begun;
  return ok();
}

/// The apply marks one unit (a transaction, a message) of a marks_batch_store's batch carries: a
/// begin, a finish, or both, as one condition (the marks exactly as `expected`) and one write of
/// desired(). Stores extend it with what their units need.
struct batch_unit_marks {
  bool begin = false;   ///< in: the begin (B := target), conditional on `expected`
  bool finish = false;  ///< in: the finish (A, B := max(A, target), max(B, target)); dropped after a refusal
  apply_marks expected{};
  generation target{};
  fence_token token{};
  bool landed = false;  ///< out: written with the unit's items, as `stored`
  apply_marks stored{};
  bool refused = false;  ///< out: the begin was refused (the error returned says fenced or conflict)
  /// The marks the unit writes (with `version`, store-specific).
  [[nodiscard]] apply_marks desired(std::uint64_t version = 0) const noexcept {
    if (finish) return apply_marks{std::max(expected.begun, target), std::max(expected.applied, target), version};
    return apply_marks{target, expected.applied, version};
  }
};

/// After one unit (transaction, message) of a marks_batch_store's commit_batch(items, marks) was
/// sent: `carried` (the store's own record of the marks that unit carried: begin, finish,
/// landed, stored, refused) said in `marks`, a refused begin returned (refuse_batch_begin),
/// another error returned as it is, and after the `first` unit the begin by begin_apply when no
/// write of that unit carried it (every item refused).
template <change_following_store S>
[[nodiscard]] result<void> settle_marks_unit(S& store, std::span<commit_item> items, batch_marks& marks,
                                             const batch_unit_marks& carried, result<void> done, bool first) {
  if (carried.landed) {
    marks.began = marks.began || carried.begin;
    marks.finished = carried.finish;
    marks.marks = carried.stored;
  }
  if (!done) {
    if (carried.refused) return refuse_batch_begin(items, marks, std::move(done).error());
    return done;
  }
  if (first && marks.begin != nullptr && !marks.began) return begin_batch_separately(store, items, marks);
  return ok();
}

/// A record store whose contents can be read back and listed: what `planfence-ctl diff` and the
/// recovery drill need. Not on any hot path: both may allocate and, for a remote store, do I/O.
template <class S>
concept inspectable_store = record_store<S> && requires(const S& cs, endpoint_handle h) {
  { cs.served(h) } -> std::same_as<result<std::vector<record>>>;
  { cs.endpoint_names() } -> std::same_as<result<std::vector<std::string>>>;
};

/// One endpoint as an inspection reads it: its stamp and the records it serves.
struct endpoint_state {
  stamp st{};
  std::vector<record> records;
};

/// An inspectable store that reads many endpoints' stamps and records in one call, so that a
/// drift check or a read-back pays one read per zone (or request) rather than one per endpoint:
///   inspect(handles, out)   out[i] = the stamp and records of handles[i], read now; all or nothing
template <class S>
concept batch_inspectable_store = inspectable_store<S> && requires(const S& cs, std::span<const endpoint_handle> h,
                                                                    std::span<endpoint_state> out) {
  { cs.inspect(h, out) } -> std::same_as<result<void>>;
};

/// inspect for any inspectable store: natively when it has it, else read_stamp and served per
/// endpoint. Stops at the first error.
template <inspectable_store S>
[[nodiscard]] result<void> inspect_endpoints(const S& store, std::span<const endpoint_handle> handles,
                                             std::span<endpoint_state> out) {
  PLANFENCE_ASSERT(handles.size() == out.size());
  if constexpr (batch_inspectable_store<S>) {
    return store.inspect(handles, out);
  } else {
    for (std::size_t i = 0; i < handles.size(); ++i) {
      auto seen = store.read_stamp(handles[i]);
      if (!seen) return unexpected_error(seen.error());
      auto records = store.served(handles[i]);
      if (!records) return unexpected_error(records.error());
      out[i] = endpoint_state{*seen, std::move(*records)};
    }
    return ok();
  }
}

}  // namespace v1
}  // namespace planfence
