// tests/support/store_fixtures.hpp: one fixture per record store, for the typed conformance
// suite (tests/unit/store_conformance_test.cpp and tests/concurrent/store_race_test.cpp).
//
// A fixture owns a store over a fixed set of endpoint names and provides what the suite needs
// beyond the record_store concept:
//   records(gen, endpoint)  the record set plan `gen` assigns to `endpoint` (each generation gets
//                           its own address, 10.x.y.z from the generation number), kept alive by
//                           the fixture for as long as the store may serve it;
//   served(handle)          the addresses the store serves for an endpoint, read back the way a
//                           resolver would.
// A store joins the suite by adding its fixture to `store_fixtures` below.
#pragma once

#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "fixtures.hpp"

namespace planfence_test {

struct memory_store_fixture {
  static constexpr const char* name = "memory";

  explicit memory_store_fixture(const std::vector<std::string>& names)
      : store(planfence::memory_store::make(registry, names).value()), names_(names) {}

  // Declared first so that it is destroyed last: the store and the pins refer to it.
  planfence::plan_registry registry;
  planfence::memory_store store;

  const planfence::record_set& records(planfence::generation gen, const std::string& endpoint) {
    std::lock_guard lock(mutex_);
    auto pinned = registry.pin(gen);
    if (!pinned) {
      auto published = registry.publish(generation_plan(gen.value(), names_));
      PLANFENCE_ASSERT(published.has_value());
      pins_.push_back(std::move(*published));
      return pins_.back()->find(endpoint)->records;
    }
    const planfence::endpoint_entry* entry = (*pinned)->find(endpoint);
    PLANFENCE_ASSERT(entry != nullptr);
    return entry->records;  // the plan stays pinned by pins_
  }

  std::vector<std::string> served(planfence::endpoint_handle h) const {
    std::vector<std::string> out;
    auto snapshot = store.read(h);
    for (const planfence::record& r : snapshot.records()) out.push_back(r.rdata);
    return out;
  }

 private:
  std::vector<std::string> names_;
  std::mutex mutex_;
  std::vector<planfence::pinned_plan> pins_;
};

/// What an inspectable_store serves for an endpoint, as the rdata of its records: the
/// conformance suite's `served` for stores read back through the concept.
template <class Store>
std::vector<std::string> served_addresses(const Store& store, planfence::endpoint_handle h) {
  std::vector<std::string> out;
  auto records = store.served(h);
  PLANFENCE_ASSERT(records.has_value());
  for (const planfence::record& r : *records) out.push_back(r.rdata);
  return out;
}

/// A store's live set, for stores whose live_generations returns the set and for those that
/// return a result of it (which must then hold one: a test that expects an error checks it).
template <class Store>
std::vector<planfence::generation> live_of(const Store& store) {
  auto live = store.live_generations();
  if constexpr (requires { live.has_value(); }) {
    PLANFENCE_ASSERT(live.has_value());
    return std::move(*live);
  } else {
    return live;
  }
}

/// The address generation_plan gives every endpoint of generation `gen`.
inline std::string address_of(std::uint64_t gen) {
  return "10." + std::to_string(gen / 65536 % 256) + "." + std::to_string(gen / 256 % 256) + "." + std::to_string(gen % 256);
}

using store_fixtures = std::tuple<memory_store_fixture>;

}  // namespace planfence_test
