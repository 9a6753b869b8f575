// Proves that the RFC 2136 store refuses stamps and fence floors that planfence cannot represent,
// as a real server hands them out. knsupdate (not the store) writes each bad record on a fresh
// knotd, as a hand edit or another tool would; the store must then refuse to read it with
// errc::parse_error and a message naming the owner name, the value and the allowed range
// (generation 1..2^40-1, fence 0..2^24-1), and never take it as a stamp or floor: a generation
// of 2^64-1 would make every later plan "stale" for good, a fence beyond 24 bits would raise the
// operator's floor out of reach. The largest representable values are still accepted, and the
// store itself refuses to write a stamp or a floor it would refuse to read back.
#include <catch2/catch.hpp>

#include <planfence/rfc2136/store.hpp>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "knot_fixture.hpp"
#include "refusal_checks.hpp"

using namespace planfence;
using planfence_rfc2136_test::command_output;
using planfence_rfc2136_test::contains;

namespace {

/// Replaces the TXT RRset at `owner` by one string `text`, with knsupdate and the server's key.
void write_txt(const planfence_example::knot_server& knot, const std::string& owner, const std::string& text) {
  const std::string script = "server 127.0.0.1 " + std::to_string(knot.port()) + "\nzone example.test.\n" +
                             "update delete " + owner + " TXT\n" + "update add " + owner + " 0 TXT \"" + text +
                             "\"\nsend\nanswer\n";
  const std::string out = command_output("printf '%s' '" + script + "' | knsupdate -y " + knot.key_argument() + " 2>&1");
  INFO(out);
  REQUIRE(out.find("NOERROR") != std::string::npos);
}

}  // namespace

TEST_CASE("stamp range: out-of-range stamps on knotd are refused, naming the record, value and range",
          "[stamp-range][knotd]") {
  auto knot = planfence_test::start_knot();
  auto store = rfc2136_store::open_uri(knot.uri("example.test."), {"www.example.test."}).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  const std::string owner = "_planfence.www.example.test.";

  struct bad_stamp {
    std::string text, value, range;
  };
  for (const bad_stamp& bad : std::vector<bad_stamp>{
           {"gen=18446744073709551615 fence=1", "18446744073709551615", "1 to 1099511627775"},
           {"gen=18446744073709551616 fence=1", "18446744073709551616", "1 to 1099511627775"},  // beyond 64 bits
           {"gen=1099511627776 fence=1", "1099511627776", "1 to 1099511627775"},              // 2^40
           {"gen=0 fence=1", "generation 0", "1 to 1099511627775"},
           {"gen=5 fence=16777216", "16777216", "0 to 16777215"},                              // 2^24
           {"gen=5 fence=18446744073709551615", "18446744073709551615", "0 to 16777215"}}) {
    write_txt(knot, owner, bad.text);
    auto seen = store.read_stamp(www);
    INFO(bad.text);
    REQUIRE(!seen);
    INFO(seen.error().message());
    CHECK(seen.error().code == errc::parse_error);
    CHECK(contains(seen.error().message(), owner));
    CHECK(contains(seen.error().message(), bad.value));
    CHECK(contains(seen.error().message(), bad.range));
    // Nor does a commit or the live set take it: the endpoint is never "left alone" as newer.
    auto committed = store.commit(www, stamp{}, stamp{generation{7}, fence_token{1}, 0}, planfence_test::a_records({"192.0.2.1"}));
    REQUIRE(!committed);
    CHECK(committed.error().code == errc::parse_error);
    CHECK(!store.live_generations());
  }

  // The largest representable values are a stamp like any other.
  write_txt(knot, owner, "gen=1099511627775 fence=16777215");
  auto top = store.read_stamp(www);
  REQUIRE(top);
  CHECK(top->gen == generation_max);
  CHECK(top->fence == fence_max);
}

TEST_CASE("stamp range: an out-of-range fence floor on knotd is refused at open and when read",
          "[stamp-range][knotd]") {
  auto knot = planfence_test::start_knot();
  const std::string owner = "_fence._planfence.example.test.";
  auto store = rfc2136_store::open_uri(knot.uri("example.test."), {"www.example.test."}).value();
  for (const std::string value : {"16777216", "18446744073709551615", "99999999999999999999999"}) {
    write_txt(knot, owner, "floor=" + value);
    INFO(value);
    auto floor = store.read_floor();
    REQUIRE(!floor);
    INFO(floor.error().message());
    CHECK(floor.error().code == errc::parse_error);
    CHECK(contains(floor.error().message(), owner));
    CHECK(contains(floor.error().message(), value));
    CHECK(contains(floor.error().message(), "0 to 16777215"));
    auto reopened = rfc2136_store::open_uri(knot.uri("example.test."), {"www.example.test."});
    REQUIRE(!reopened);
    CHECK(reopened.error().code == errc::parse_error);
    CHECK(contains(reopened.error().message(), owner));
    // raise_fence reads the floor first: it must not decide from the bad value either.
    auto raised = store.raise_fence(fence_token{5});
    REQUIRE(!raised);
    CHECK(raised.error().code == errc::parse_error);
  }
  write_txt(knot, owner, "floor=16777215");
  auto top = store.read_floor();
  REQUIRE(top);
  CHECK(*top == std::optional<std::uint64_t>{fence_max.value()});
}

TEST_CASE("stamp range: the store never writes a stamp or floor it would refuse to read", "[stamp-range][knotd]") {
  auto knot = planfence_test::start_knot();
  auto store = rfc2136_store::open_uri(knot.uri("example.test."), {"www.example.test."}).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  const auto records = planfence_test::a_records({"192.0.2.1"});
  auto too_new = store.commit(www, stamp{}, stamp{generation{generation_max.value() + 1}, fence_token{1}, 0}, records);
  REQUIRE(!too_new);
  CHECK(too_new.error().code == errc::capacity_exceeded);
  auto too_fenced = store.commit(www, stamp{}, stamp{generation{1}, fence_token{fence_max.value() + 1}, 0}, records);
  REQUIRE(!too_fenced);
  CHECK(too_fenced.error().code == errc::capacity_exceeded);
  auto floor = store.raise_fence(fence_token{fence_max.value() + 1});
  REQUIRE(!floor);
  CHECK(floor.error().code == errc::capacity_exceeded);
  CHECK(store.read_stamp(www)->gen == generation_none);
  CHECK(!store.read_floor()->has_value());
}
