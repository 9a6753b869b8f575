// tests/rfc2136/servers.hpp: the three servers the RFC 2136 store is tested against, behind one
// face, so that a test case can run on each (TEMPLATE_LIST_TEST_CASE over rfc2136_targets):
//   knot_target  knotd      (examples/support/knot_server.hpp)
//   bind_target  BIND named (examples/support/bind_server.hpp), when PLANFENCE_TEST_BIND is 1
//   pdns_target  PowerDNS   (examples/support/pdns_server.hpp), when PLANFENCE_TEST_PDNS is 1
// tests/rfc2136/CMakeLists.txt sets the two macros where the servers are installed (and makes a
// missing one an error under PLANFENCE_REQUIRE_TEST_DEPS). Each target serves example.test. with
// a TSIG key allowed to update it; server_fixture<T> is the conformance suite's fixture over it.
#pragma once

#include <planfence/rfc2136/store.hpp>

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "examples/support/bind_server.hpp"
#include "examples/support/pdns_server.hpp"
#include "knot_fixture.hpp"

#ifndef PLANFENCE_TEST_BIND
#define PLANFENCE_TEST_BIND 0
#endif
#ifndef PLANFENCE_TEST_PDNS
#define PLANFENCE_TEST_PDNS 0
#endif

namespace planfence_test {

template <class Started>
Started started_or_abort(planfence::result<Started> server, const char* who) {
  if (!server) std::fprintf(stderr, "%s: %s\n", who, server.error().message().c_str());
  PLANFENCE_ASSERT(server.has_value());
  return std::move(*server);
}

struct knot_target {
  static constexpr const char* name = "knot";
  planfence_example::knot_server server = start_knot();
  [[nodiscard]] std::string uri() const { return server.uri("example.test."); }
  [[nodiscard]] std::uint16_t port() const { return server.port(); }
  [[nodiscard]] std::string key_argument() const { return server.key_argument(); }
};

struct bind_target {
  static constexpr const char* name = "bind";
  planfence_example::bind_server server =
      started_or_abort(planfence_example::bind_server::start("example.test."), "bind_server");
  /// A long per-attempt timeout: a large UPDATE may take PowerDNS's SQLite backend seconds on a
  /// busy machine, and a timed-out attempt is sent again.
  [[nodiscard]] std::string uri() const { return server.uri() + "&timeout-ms=20000"; }
  [[nodiscard]] std::uint16_t port() const { return server.port(); }
  [[nodiscard]] std::string key_argument() const { return server.key_argument(); }
};

struct pdns_target {
  static constexpr const char* name = "pdns";
  planfence_example::pdns_server server =
      started_or_abort(planfence_example::pdns_server::start("example.test."), "pdns_server");
  /// A long per-attempt timeout: a large UPDATE may take PowerDNS's SQLite backend seconds on a
  /// busy machine, and a timed-out attempt is sent again.
  [[nodiscard]] std::string uri() const { return server.uri() + "&timeout-ms=20000"; }
  [[nodiscard]] std::uint16_t port() const { return server.port(); }
  [[nodiscard]] std::string key_argument() const { return server.key_argument(); }
};

template <class A, class B>
struct tuple_concat;
template <class... A, class... B>
struct tuple_concat<std::tuple<A...>, std::tuple<B...>> {
  using type = std::tuple<A..., B...>;
};
/// std::tuple<Knot, BIND, PowerDNS> of `Wrap<target>`, less the servers not installed here.
template <template <class> class Wrap>
using per_server = typename tuple_concat<
    typename tuple_concat<std::tuple<Wrap<knot_target>>,
                          std::conditional_t<PLANFENCE_TEST_BIND != 0, std::tuple<Wrap<bind_target>>, std::tuple<>>>::type,
    std::conditional_t<PLANFENCE_TEST_PDNS != 0, std::tuple<Wrap<pdns_target>>, std::tuple<>>>::type;

template <class T>
using as_is = T;

/// The RFC 2136 store over a fresh `Target`, as the conformance suite's fixture.
template <class Target>
struct server_fixture {
  static constexpr const char* name = Target::name;

  explicit server_fixture(const std::vector<std::string>& endpoints) : store(open(target, endpoints)) {}

  static planfence::rfc2136_store open(const Target& t, const std::vector<std::string>& endpoints) {
    auto s = planfence::rfc2136_store::open_uri(t.uri(), endpoints);
    if (!s) std::fprintf(stderr, "rfc2136_store (%s): %s\n", Target::name, s.error().message().c_str());
    PLANFENCE_ASSERT(s.has_value());
    return std::move(*s);
  }

  Target target;  // declared first: destroyed after the store
  planfence::rfc2136_store store;

  /// Generation `gen` gives every endpoint the one A record address_of(gen).
  const planfence::record_set& records(planfence::generation gen, const std::string&) {
    std::lock_guard lock(mutex_);
    auto it = sets_.find(gen.value());
    if (it == sets_.end()) it = sets_.emplace(gen.value(), a_records({address_of(gen.value())})).first;
    return it->second;
  }

  /// The addresses the server answers for the endpoint (signed queries, verified).
  std::vector<std::string> served(planfence::endpoint_handle h) const { return planfence_test::served_addresses(store, h); }

 private:
  std::mutex mutex_;
  std::map<std::uint64_t, planfence::record_set> sets_;
};

/// The targets installed here, for TEMPLATE_LIST_TEST_CASE.
using rfc2136_targets = per_server<as_is>;
/// The conformance fixtures over them.
using rfc2136_fixtures = per_server<server_fixture>;

}  // namespace planfence_test
