// The record store conformance suite for the in-process stores (tests/support/store_fixtures.hpp).
// The cases live in tests/support/store_conformance.inc, so that test executables for stores that
// need a real server (knotd, etcd) run the very same cases against them.
#include <catch2/catch.hpp>

#include "../support/store_fixtures.hpp"

#define PLANFENCE_CONFORMANCE_FIXTURES planfence_test::store_fixtures
#include "../support/store_conformance.inc"
