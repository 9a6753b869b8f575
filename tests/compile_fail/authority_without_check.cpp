// expect: lease_authority
//
// Proves that the enactor refuses a lease authority that cannot tell a holder whether its lease
// is still current: without check(lease) a lapsed holder could not learn it lapsed (S2). The
// control variant uses the local lease authority, which must compile.
#include <planfence/planfence.hpp>

struct forgetful_authority {
  planfence::result<planfence::lease> acquire(std::chrono::milliseconds) { return planfence::lease{}; }
  planfence::result<planfence::lease> renew(const planfence::lease& l, std::chrono::milliseconds) { return l; }
  planfence::result<void> release(const planfence::lease&) { return planfence::ok(); }
};

int main() {
  planfence::manual_clock clock;
  planfence::plan_registry registry;
  auto store = planfence::memory_store::make(registry, {"a.example."}).value();
#ifdef PLANFENCE_COMPILE_FAIL_CONTROL
  using authority_type = planfence::local_lease_authority<planfence::manual_clock>;
  authority_type authority{clock};
#else
  using authority_type = forgetful_authority;
  forgetful_authority authority;
#endif
  planfence::enactor<planfence::memory_store, authority_type, planfence::plan_registry, planfence::manual_clock> e{
      store, authority, registry, clock};
  return e.applied_generation() == planfence::generation_none ? 0 : 1;
}
