// planfence/sim/sim.hpp: the deterministic simulator, all of it. Not part of planfence.hpp: it
// is a test and demonstration tool, and it refuses to build with assertions compiled out.
//
//   checked_build.hpp   refuses PLANFENCE_DISABLE_ASSERTS
//   random.hpp          splitmix64, xoshiro256**, the trace hash: portable randomness
//   skewed_clock.hpp    an enactor's clock: offset, drift, stalls
//   lease_client.hpp    an enactor's view of the shared lease authority, on its own clock
//   fault_store.hpp     a store wrapper with named fault points and the S2 ledger
//   corrupt_plan.hpp    plans whose content does not match their digest; damaged plan text (S7)
//   naive_enactor.hpp   THE BROKEN REFERENCE: the 2025 enactor, never to embed
//   scenario.hpp        what a seed decides
//   trace.hpp           guarantees, violations, reports, the timeline
//   simulator.hpp       the world, the scheduler and the S1..S7 oracle
//   scripted.hpp        the October 2025 interleaving, step by step
//   sweep.hpp           many seeds on every core
//
// docs/simulator.md explains how it works, what a seed decides and how to reproduce a failure.
#pragma once

#include "checked_build.hpp"
#include "corrupt_plan.hpp"
#include "fault_store.hpp"
#include "lease_client.hpp"
#include "naive_enactor.hpp"
#include "random.hpp"
#include "scenario.hpp"
#include "scripted.hpp"
#include "simulator.hpp"
#include "skewed_clock.hpp"
#include "sweep.hpp"
#include "trace.hpp"
