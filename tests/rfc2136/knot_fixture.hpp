// tests/rfc2136/knot_fixture.hpp: the RFC 2136 store over a fresh knotd, as the conformance
// suite's fixture (tests/support/store_conformance.inc) and for the other knotd tests.
#pragma once

#include <planfence/rfc2136/store.hpp>

#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "examples/support/knot_server.hpp"
#include "support/store_fixtures.hpp"

namespace planfence_test {

using planfence_example::knot_server;

/// A knotd serving example.test. (fails the test loudly when it cannot start).
inline knot_server start_knot() {
  auto knot = knot_server::start({{"example.test.", ""}});
  if (!knot) {
    std::fprintf(stderr, "knot_server: %s\n", knot.error().message().c_str());
    PLANFENCE_ASSERT(knot.has_value());
  }
  return std::move(*knot);
}

struct rfc2136_fixture {
  static constexpr const char* name = "rfc2136";

  explicit rfc2136_fixture(const std::vector<std::string>& names)
      : knot(start_knot()), store(open(knot, names)) {}

  static planfence::rfc2136_store open(const knot_server& server, const std::vector<std::string>& names) {
    auto s = planfence::rfc2136_store::open_uri(server.uri("example.test."), names);
    if (!s) std::fprintf(stderr, "rfc2136_store: %s\n", s.error().message().c_str());
    PLANFENCE_ASSERT(s.has_value());
    return std::move(*s);
  }

  knot_server knot;  // declared first: destroyed after the store
  planfence::rfc2136_store store;

  /// Generation `gen` gives every endpoint the one A record address_of(gen).
  const planfence::record_set& records(planfence::generation gen, const std::string&) {
    std::lock_guard lock(mutex_);
    auto it = sets_.find(gen.value());
    if (it == sets_.end()) it = sets_.emplace(gen.value(), a_records({address_of(gen.value())})).first;
    return it->second;
  }

  /// The addresses knotd answers for the endpoint (signed queries, verified).
  std::vector<std::string> served(planfence::endpoint_handle h) const { return planfence_test::served_addresses(store, h); }

 private:
  std::mutex mutex_;
  std::map<std::uint64_t, planfence::record_set> sets_;
};

}  // namespace planfence_test
