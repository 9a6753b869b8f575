// The record store conformance suite (tests/support/store_conformance.inc), run against the
// RFC 2136 store on each real server installed here: knotd, BIND's named and PowerDNS
// (tests/rfc2136/servers.hpp): every property the memory store is held to, checked from what
// the DNS server answers. Each case starts its own server (knotd about 20 ms, named about
// 0.2 s, PowerDNS about 1 s). The cases are numbered by server: "- 0" Knot, then BIND and
// PowerDNS when installed (servers.hpp, rfc2136_fixtures).
#include <catch2/catch.hpp>

#include "servers.hpp"

// The suite's tags are [conformance].
#define PLANFENCE_CONFORMANCE_FIXTURES planfence_test::rfc2136_fixtures
#include "support/store_conformance.inc"
