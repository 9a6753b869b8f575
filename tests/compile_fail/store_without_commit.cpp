// expect: record_store
//
// Proves that the enactor refuses, at compile time, a store that cannot commit conditionally.
// `half_store` can resolve and read stamps but has no commit(endpoint, expected, desired,
// records): plugging it into planfence::enactor must fail on the record_store concept, not deep
// inside the enactor. The control variant plugs in the memory store, which must compile.
#include <planfence/planfence.hpp>

struct half_store {
  planfence::result<planfence::endpoint_handle> resolve(std::string_view) const { return planfence::endpoint_handle{}; }
  planfence::result<planfence::stamp> read_stamp(planfence::endpoint_handle) const { return planfence::stamp{}; }
  planfence::result<void> raise_fence(planfence::fence_token) { return planfence::ok(); }
  std::vector<planfence::generation> live_generations() const { return {}; }
};

int main() {
  planfence::manual_clock clock;
  planfence::local_lease_authority<planfence::manual_clock> authority{clock};
  planfence::plan_registry registry;
#ifdef PLANFENCE_COMPILE_FAIL_CONTROL
  using store_type = planfence::memory_store;
  auto store = store_type::make(registry, {"a.example."}).value();
#else
  using store_type = half_store;
  half_store store;
#endif
  planfence::enactor<store_type, planfence::local_lease_authority<planfence::manual_clock>, planfence::plan_registry,
                     planfence::manual_clock>
      e{store, authority, registry, clock};
  return e.applied_generation() == planfence::generation_none ? 0 : 1;
}
