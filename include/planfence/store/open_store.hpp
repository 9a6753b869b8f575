// planfence/store/open_store.hpp: the stores planfence ships, by URI scheme.
//
// What it is: the table `open_store` (any_store.hpp) dispatches on, for tools that take a store
// on the command line (planfence-ctl). Each entry is one line: the scheme, the function that opens
// a store from a URI of that scheme (the store's own `open_uri`, through open_as), and an example
// for help texts. Adding a store is adding its include and its line.
//
//     auto store = planfence::open_store(uri, planfence::known_store_schemes(), plan_names).value();
//
// When not to use it: in automation that knows its store type: embed the concrete store (no
// virtual calls, no table). Including this header includes every store planfence ships.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../detail/uri.hpp"
#include "any_store.hpp"
#include "../etcd/store.hpp"
#include "../rfc2136/store.hpp"
#include "../zonefile/store.hpp"

namespace planfence {
inline namespace v1 {

namespace detail {
/// Opens `uri` with Store::open_uri and wraps the store, named by its URI with the secrets taken
/// out (detail/uri.hpp): the name ends up in messages.
template <class Store>
[[nodiscard]] result<any_store> open_as(std::string_view uri, std::span<const std::string>) {
  return make_any_store(Store::open_uri(uri), redact_uri(uri));
}
/// As open_as, for a store that serves the endpoints it is given at open.
template <class Store>
[[nodiscard]] result<any_store> open_with_endpoints(std::string_view uri, std::span<const std::string> endpoints) {
  return make_any_store(Store::open_uri(uri, std::vector<std::string>(endpoints.begin(), endpoints.end())),
                        redact_uri(uri));
}
}  // namespace detail

/// Every store scheme planfence ships, in the order help texts list them.
[[nodiscard]] inline std::span<const store_scheme> known_store_schemes() noexcept {
  static const store_scheme schemes[] = {
      {"zonefile", &detail::open_as<zonefile_store>, "zonefile:///absolute/dir (one ZONE.zone file per zone)"},
      {"rfc2136", &detail::open_with_endpoints<rfc2136_store>, "rfc2136://HOST[:PORT]/ZONE?tsig-file=PATH (docs/rfc2136.md)"},
      {"etcd", &detail::open_as<etcd_store>, "etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?fence=floor&user=NAME&password-file=PATH] (docs/etcd.md)"},
      {"etcds", &detail::open_as<etcd_store>, "etcds://HOST:PORT[,...]/PREFIX?ca-file=PATH[&cert-file=PATH&key-file=PATH] (TLS, docs/etcd.md)"},
  };
  return schemes;
}

}  // namespace v1
}  // namespace planfence
