// planfence/store/open_store.hpp: the stores planfence ships, by URI scheme.
//
// What it is: the table `open_store` (any_store.hpp) dispatches on, for tools that take a store
// on the command line (planfence-ctl). Each entry is one line: the scheme, a function that opens
// a store from a URI of that scheme (the store's own `open_uri`), and an example for help texts.
// Adding a store is adding its include and its line.
//
//     auto store = planfence::open_store(uri, planfence::known_store_schemes()).value();
//
// When not to use it: in automation that knows its store type: embed the concrete store (no
// virtual calls, no table). Including this header includes every store planfence ships.
#pragma once

#include <array>
#include <span>
#include <string_view>

#include "any_store.hpp"
#if __has_include("zonefile_store.hpp")
#include "zonefile_store.hpp"
#define PLANFENCE_HAVE_ZONEFILE_STORE 1
#endif

namespace planfence {
inline namespace v1 {

namespace detail {
/// Opens `uri` with Store::open_uri and wraps the store, named by its URI.
template <class Store>
[[nodiscard]] result<any_store> open_as(std::string_view uri) {
  return make_any_store(Store::open_uri(uri), std::string(uri));
}
}  // namespace detail

/// Every store scheme planfence ships, in the order help texts list them.
[[nodiscard]] inline std::span<const store_scheme> known_store_schemes() noexcept {
  static const store_scheme schemes[] = {
#if defined(PLANFENCE_HAVE_ZONEFILE_STORE)
      {"zonefile", &detail::open_as<zonefile_store>, "zonefile:///absolute/dir (one ZONE.zone file per zone)"},
#endif
      {"", nullptr, ""},
  };
  return std::span<const store_scheme>(schemes, std::size(schemes) - 1);
}

}  // namespace v1
}  // namespace planfence
