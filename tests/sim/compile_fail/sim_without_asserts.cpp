// expect: planfence/sim needs PLANFENCE_ASSERT
#ifdef PLANFENCE_COMPILE_FAIL_CONTROL
#include <planfence/sim/simulator.hpp>
#else
#define PLANFENCE_DISABLE_ASSERTS
#include <planfence/sim/simulator.hpp>
#endif
// Proves that the simulator refuses to build with assertions compiled out: half of what it
// checks is checked by PLANFENCE_ASSERT inside the library, so a simulator built with
// PLANFENCE_DISABLE_ASSERTS would report clean runs that corrupted state silently. The control
// variant includes the same header with assertions on and must compile.
int main() { return 0; }
