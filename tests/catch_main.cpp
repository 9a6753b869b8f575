// The main() of planfence_unit_tests and planfence_concurrent_tests, compiled once for both.
// Test files include <catch2/catch.hpp> and define only test cases; run an executable with
// --help for Catch2's options (e.g. a test name or a [tag] to run just that).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
