// expect: event_sink
//
// Proves that an event sink must accept a planfence::event: a sink taking something else is a
// compile error at the enactor, not a silent drop of every event. The control variant uses a
// lambda taking const event&, which must compile.
#include <planfence/planfence.hpp>

int main() {
  planfence::manual_clock clock;
  planfence::local_lease_authority<planfence::manual_clock> authority{clock};
  planfence::plan_registry registry;
  auto store = planfence::memory_store::make(registry, {"a.example."}).value();
#ifdef PLANFENCE_COMPILE_FAIL_CONTROL
  auto sink = [](const planfence::event&) {};
#else
  auto sink = [](const std::string&) {};
#endif
  planfence::enactor<planfence::memory_store, planfence::local_lease_authority<planfence::manual_clock>,
                     planfence::plan_registry, planfence::manual_clock, decltype(sink)>
      e{store, authority, registry, clock, {}, sink};
  return e.applied_generation() == planfence::generation_none ? 0 : 1;
}
