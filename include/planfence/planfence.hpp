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
//   endpoint_index.hpp, endpoint_sequence.hpp   a plan's two persistent trees (plan.hpp's parts)
//   plan.hpp         immutable plans, their builder and digests
//   plan_text.hpp    the text form of a plan: format_plan, parse_plan
//   registry.hpp     publish, pin, look up and collect plans (S3, S5); the enactor_registry concept
//   store.hpp        stamps, the record_store and batched_store concepts
//   memory_store.hpp   the lock-free in-memory store
//   events.hpp       events, sinks and counters
//   enactor.hpp      the fixed enactor step machine (S1 to S7)
//   metrics.hpp      Prometheus metrics: per enactor (from its events), store scans, registries
//
// Not included here, because they do file or network I/O through POSIX (include the one you use):
//   history.hpp                  durable plan history in a directory (crash-safe)
//   recovery.hpp                 drift, one-generation apply, operator fences (planfence-ctl)
//   dns/zone_layout.hpp          planfence's records in a DNS zone, shared by the two DNS stores
//   zonefile/syntax.hpp          RFC 1035 zone files: parser, writer
//   zonefile/zone.hpp            a plan as a zone (export), a zone read back as endpoints
//   zonefile/store.hpp           one master file per zone, flock + fsync + rename
//   rfc2136/wire.hpp, transport.hpp, tsig.hpp   DNS messages, UDP/TCP, TSIG signatures
//   rfc2136/store.hpp            DNS UPDATE with TSIG against an authoritative server
//   etcd/json.hpp, http.hpp, client.hpp         the etcd v3 JSON gateway client
//   etcd/store.hpp               one etcd key per endpoint, fenced by etcd transactions
//   etcd/lease_authority.hpp, etcd/sequencer.hpp, etcd/registry.hpp   leases, generations and
//                                plan history on etcd
//   store/any_store.hpp, store/open_store.hpp   type-erased stores opened by URI (tools only)
//
// Each adapter (zonefile/, rfc2136/, etcd/) is one folder with its codec, transport and store;
// the store of each is planfence::<adapter>_store. docs/design.md, "The source tree", gives the
// layers (checked by tests/headers/check_layers.cmake).
#pragma once

#include "clock.hpp"
#include "config.hpp"
#include "enactor.hpp"
#include "events.hpp"
#include "generation.hpp"
#include "ids.hpp"
#include "lease.hpp"
#include "metrics.hpp"
#include "plan.hpp"
#include "plan_text.hpp"
#include "record.hpp"
#include "registry.hpp"
#include "result.hpp"
#include "store.hpp"
#include "memory_store.hpp"
