// planfence/planfence.hpp: the whole library. Include this, or the one header you need.
//
// A map of the headers:
//   config.hpp       PLANFENCE_ASSERT, version
//   result.hpp       result<T>, errc, error (expected outcomes as values)
//   ids.hpp          generation, fence_token, lease_id, endpoint_handle
//   generation.hpp   sequencer, RFC 1982 SOA serials
//   clock.hpp        the clock concept, steady_clock, manual_clock
//   lease.hpp        lease, the lease_authority concept, local_lease_authority
//   record.hpp       records, record sets, name and rdata validation
//   plan.hpp         immutable plans, digests, the text form and its parser
//   registry.hpp     publish, pin, look up and collect plans (S3, S5)
//   store.hpp        stamps and the record_store concept
//   store/memory_store.hpp   the lock-free in-memory store
//   events.hpp       events, sinks and counters
//   enactor.hpp      the fixed enactor step machine (S1 to S7)
#pragma once

#include "clock.hpp"
#include "config.hpp"
#include "enactor.hpp"
#include "events.hpp"
#include "generation.hpp"
#include "ids.hpp"
#include "lease.hpp"
#include "plan.hpp"
#include "record.hpp"
#include "registry.hpp"
#include "result.hpp"
#include "store.hpp"
#include "store/memory_store.hpp"
