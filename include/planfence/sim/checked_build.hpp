// planfence/sim/checked_build.hpp: the simulator refuses to build with assertions compiled out.
//
// The deterministic simulator hunts for schedules that break S1..S7. Half of what it checks is
// checked by PLANFENCE_ASSERT inside the library itself (a packed field about to wrap, a pin count
// going negative, a registry freed under a pin): a simulator built with PLANFENCE_DISABLE_ASSERTS
// would report "no violation" for runs that corrupted state silently. So every header in
// planfence/sim/ includes this one, and a build that turned the assertions off stops here.
#pragma once

#include "../config.hpp"

#if !defined(PLANFENCE_ASSERTS_ENABLED) || PLANFENCE_ASSERTS_ENABLED == 0
#error "planfence/sim needs PLANFENCE_ASSERT: remove PLANFENCE_DISABLE_ASSERTS for simulator builds"
#endif
static_assert(PLANFENCE_ASSERTS_ENABLED == 1, "planfence/sim needs PLANFENCE_ASSERT enabled");
