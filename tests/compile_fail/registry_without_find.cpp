// expect: satisfaction of .enactor_registry<Registry>|does not satisfy .enactor_registry
//
// Proves that the enactor refuses, at compile time, a registry that can pin plans but cannot look
// one up inside an epoch guard: without find(gen, guard) the S4 endpoint guard could not compare
// a commit with the plan the endpoint serves now, except by pinning on the apply path. Plugging
// `pin_only_registry` into planfence::enactor must fail on the enactor_registry concept, not deep
// inside the enactor. The control variant is the same registry with find(), which must compile.
#include <planfence/planfence.hpp>

struct pin_only_registry {
  planfence::plan_registry* plans;

  planfence::pinned_plan pin_latest() { return plans->pin_latest(); }
  planfence::result<planfence::pinned_plan> pin(planfence::generation gen) { return plans->pin(gen); }
#ifdef PLANFENCE_COMPILE_FAIL_CONTROL
  const planfence::plan* find(planfence::generation gen, const planfence::detail::epoch_guard& guard) const noexcept {
    return plans->find(gen, guard);
  }
#else
  // no find(gen, guard): the one operation missing
#endif
  template <class LiveGenerations>
  planfence::collection_report collect(const planfence::retention_policy& policy, std::uint64_t now_unix_ms,
                                       LiveGenerations&& live) {
    return plans->collect(policy, now_unix_ms, live);
  }
};

int main() {
  planfence::manual_clock clock;
  planfence::local_lease_authority<planfence::manual_clock> authority{clock};
  planfence::plan_registry plans;
  auto store = planfence::memory_store::make(plans, {"a.example."}).value();
  pin_only_registry registry{&plans};
  planfence::enactor<planfence::memory_store, planfence::local_lease_authority<planfence::manual_clock>, pin_only_registry,
                     planfence::manual_clock>
      e{store, authority, registry, clock};
  return e.applied_generation() == planfence::generation_none ? 0 : 1;
}
