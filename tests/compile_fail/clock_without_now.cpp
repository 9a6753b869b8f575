// expect: clock
//
// Proves that a type without now() is refused as a clock where planfence reads time (leases
// expire against it). The control variant uses manual_clock, which must compile.
#include <planfence/planfence.hpp>

struct sundial {
  using duration = std::chrono::milliseconds;
  using time_point = std::chrono::time_point<sundial, duration>;
};

int main() {
#ifdef PLANFENCE_COMPILE_FAIL_CONTROL
  planfence::manual_clock clock;
  planfence::local_lease_authority<planfence::manual_clock> authority{clock};
#else
  sundial clock;
  planfence::local_lease_authority<sundial> authority{clock};
#endif
  return authority.current_fence() == planfence::fence_token{} ? 0 : 1;
}
