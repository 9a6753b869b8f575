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
// inspectable_store adds what recovery tools need to compare a store with a plan (drift):
//   served(endpoint)       the records the endpoint serves now
//   endpoint_names()       every endpoint the store holds records or a stamp for
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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

/// A record store whose contents can be read back and listed: what `planfence-ctl diff` and the
/// recovery drill need. Not on any hot path: both may allocate and, for a remote store, do I/O.
template <class S>
concept inspectable_store = record_store<S> && requires(const S& cs, endpoint_handle h) {
  { cs.served(h) } -> std::same_as<result<std::vector<record>>>;
  { cs.endpoint_names() } -> std::same_as<result<std::vector<std::string>>>;
};

}  // namespace v1
}  // namespace planfence
