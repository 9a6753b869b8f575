// The record store conformance suite (tests/support/store_conformance.inc), run against the
// RFC 2136 store on a real knotd: every property the memory store is held to, checked from what
// the DNS server answers. Each case starts its own knotd (about 20 ms).
#include <catch2/catch.hpp>

#include "knot_fixture.hpp"

// The suite's tags are [conformance]; [knotd] marks that these need the server.
#define PLANFENCE_CONFORMANCE_FIXTURES std::tuple<planfence_test::rfc2136_fixture>
#include "support/store_conformance.inc"
