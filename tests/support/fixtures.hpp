// tests/support/fixtures.hpp: small builders shared by the tests.
//
// Plans in tests are built from a compact description: endpoint name -> list of IPv4 addresses.
// Everything here asserts through Catch2-free PLANFENCE_ASSERT, so a broken fixture stops the
// test binary loudly instead of producing a test that passes for the wrong reason.
#pragma once

#include <planfence/planfence.hpp>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace planfence_test {

using planfence::generation;

/// A record set of A records with the given addresses.
inline planfence::record_set a_records(const std::vector<std::string>& addresses, std::uint32_t ttl = 60) {
  std::vector<planfence::record> records;
  for (const std::string& address : addresses) {
    auto r = planfence::make_record(planfence::record_type::a, ttl, address);
    PLANFENCE_ASSERT(r.has_value());
    records.push_back(std::move(*r));
  }
  auto set = planfence::record_set::make(std::move(records));
  PLANFENCE_ASSERT(set.has_value());
  return std::move(*set);
}

/// A plan of generation `gen` assigning each endpoint its addresses.
inline planfence::plan make_plan(std::uint64_t gen, const std::map<std::string, std::vector<std::string>>& endpoints,
                                 bool bulk_change = false) {
  planfence::plan_builder builder{generation{gen}, 1'761'200'000'000 + gen};
  for (const auto& [name, addresses] : endpoints) {
    auto set = builder.set(name, a_records(addresses));
    PLANFENCE_ASSERT(set.has_value());
  }
  if (bulk_change) builder.intend_bulk_change();
  auto built = std::move(builder).build();
  PLANFENCE_ASSERT(built.has_value());
  return std::move(*built);
}

/// A plan of generation `gen` where every endpoint in `names` gets the address 10.0.<gen/256>.<gen%256>,
/// so the served address tells which generation an answer came from.
inline planfence::plan generation_plan(std::uint64_t gen, const std::vector<std::string>& names) {
  std::map<std::string, std::vector<std::string>> endpoints;
  const std::string address = "10." + std::to_string(gen / 65536 % 256) + "." + std::to_string(gen / 256 % 256) + "." +
                              std::to_string(gen % 256);
  for (const std::string& name : names) endpoints[name] = {address};
  return make_plan(gen, endpoints);
}

/// Endpoint names ep0.example. .. ep<n-1>.example.
inline std::vector<std::string> endpoint_names(std::size_t n) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) names.push_back("ep" + std::to_string(i) + ".example.");
  return names;
}

/// Records every event an enactor emits (copying the endpoint name).
struct recorded_event {
  planfence::event_kind kind;
  std::uint64_t gen;
  std::uint64_t fence;
  std::string endpoint;
};
struct recording_sink {
  std::vector<recorded_event>* out;
  void operator()(const planfence::event& e) const {
    out->push_back({e.kind, e.gen.value(), e.fence.value(), std::string(e.endpoint)});
  }
};

inline std::size_t count_kind(const std::vector<recorded_event>& events, planfence::event_kind kind) {
  std::size_t n = 0;
  for (const auto& e : events) n += e.kind == kind ? 1 : 0;
  return n;
}

/// Frees everything the epoch domain can free (no guard may be held by the caller).
inline void reclaim_all() {
  for (int i = 0; i < 4; ++i) planfence::detail::epoch_domain::global().reclaim();
}

}  // namespace planfence_test
