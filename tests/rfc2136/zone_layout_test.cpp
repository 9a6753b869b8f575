// Proves that the two DNS stores share one layout of planfence's records in a zone
// (include/planfence/dns/zone_layout.hpp): a zone file written by the zone-file store, loaded into
// a real knotd, is continued by the RFC 2136 store with the same fence floor, stamps and weighted
// records; the floor keeps fencing there, refused by the SERVER for an UPDATE that pinned the
// floor as it was before (a store opened before the zone was loaded); and a zone with the legacy
// floor owner `_planfence-floor.<zone>` is read and migrated to `_fence._planfence.<zone>` in one
// UPDATE that pins both owners.
#include <catch2/catch.hpp>

#include <planfence/rfc2136/store.hpp>
#include <planfence/zonefile/store.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "knot_fixture.hpp"
#include "refusal_checks.hpp"
#include "support/temporary_directory.hpp"

using namespace planfence;
using planfence_rfc2136_test::command_output;
using planfence_rfc2136_test::contains;

namespace {

const std::vector<std::string> names = {"www.example.test.", "db.example.test."};

record make(record_type type, std::string_view rdata, std::optional<std::uint8_t> weight = std::nullopt, std::uint32_t ttl = 60) {
  return make_record(type, ttl, rdata, weight).value();
}

std::vector<record> all(const record_set& set) { return {set.records().begin(), set.records().end()}; }

stamp at(std::uint64_t gen, std::uint64_t fence) { return stamp{generation{gen}, fence_token{fence}, 0}; }

/// The TXT strings knotd answers at `owner` (kdig, signed with the server's key).
std::string txt_at(const planfence_example::knot_server& knot, const std::string& owner) {
  return command_output("kdig @127.0.0.1 -p " + std::to_string(knot.port()) + " -y " + knot.key_argument() +
                        " +short TXT " + owner + " 2>&1");
}

}  // namespace

TEST_CASE("zone layout: a zone written by the zone-file store is continued on knotd by the RFC 2136 store",
          "[layout][knotd]") {
  auto knot = planfence_test::start_knot();
  // Opened on the empty zone, before the zone file with its floor is loaded: it pins "no floor".
  auto stale = rfc2136_store::open_uri(knot.uri("example.test."), names).value();

  planfence_test::temporary_directory dir("planfence-layout");
  REQUIRE(zonefile_store::create_zone(dir.path, "example.test."));
  auto files = zonefile_store::open(dir.path).value();
  const record_set www_records = record_set::make({make(record_type::a, "192.0.2.10", 10), make(record_type::a, "192.0.2.11", 30),
                                                   make(record_type::aaaa, "2001:db8::1")}).value();
  const record_set db_records = record_set::make({make(record_type::aaaa, "2001:db8::2", 5, 120)}).value();
  const endpoint_handle www_file = files.resolve("www.example.test.").value();
  const endpoint_handle db_file = files.resolve("db.example.test.").value();
  REQUIRE(files.commit(www_file, stamp{}, at(3, 2), www_records));
  REQUIRE(files.commit(db_file, stamp{}, at(4, 2), db_records));
  constexpr std::uint64_t floor = 7;
  REQUIRE(files.raise_fence(fence_token{floor}));

  std::filesystem::copy_file(files.zone_file("example.test."), knot.zone_file("example.test."),
                             std::filesystem::copy_options::overwrite_existing);
  auto restarted = knot.restart();
  INFO((restarted ? std::string() : restarted.error().message() + "\n" + knot.log_tail()));
  REQUIRE(restarted);

  auto store = rfc2136_store::open_uri(knot.uri("example.test."), names).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  const endpoint_handle db = store.resolve("db.example.test.").value();
  // The floor, the stamps and the weighted records carry over.
  CHECK(store.read_floor().value() == std::optional<std::uint64_t>{floor});
  CHECK(store.read_stamp(www).value() == at(3, 2));
  CHECK(store.read_stamp(db).value() == at(4, 2));
  CHECK(store.served(www).value() == files.served(www_file).value());
  CHECK(store.served(www).value() == all(www_records));
  CHECK(store.served(db).value() == all(db_records));
  CHECK(store.served(db).value()[0].weight == std::optional<std::uint8_t>{5});

  // A token below the floor, sent by a store that pinned the floor as absent: the SERVER refuses
  // the UPDATE (its prerequisite on _fence._planfence fails), and nothing is written.
  const record_set moved = record_set::make({make(record_type::a, "192.0.2.99", 1)}).value();
  auto refused = stale.commit(stale.resolve("www.example.test.").value(), at(3, 2), at(5, 5), moved);
  REQUIRE(!refused);
  INFO(refused.error().message());
  CHECK(refused.error().code == errc::fenced);
  CHECK(contains(refused.error().message(), "the server refused the prerequisite"));
  CHECK(contains(refused.error().message(), "floor 7"));
  CHECK(store.read_stamp(www).value() == at(3, 2));
  CHECK(store.served(www).value() == all(www_records));
  // The store that read the floor refuses it before sending.
  auto local = store.commit(www, at(3, 2), at(5, floor - 1), moved);
  REQUIRE(!local);
  CHECK(local.error().code == errc::fenced);
  CHECK(contains(local.error().message(), "nothing sent"));

  // A token at the floor lands, weights and all, and reads back.
  REQUIRE(store.commit(www, store.read_stamp(www).value(), at(5, floor), moved));
  CHECK(store.read_stamp(www).value() == at(5, floor));
  CHECK(store.served(www).value() == all(moved));
  CHECK(contains(txt_at(knot, "_weight._planfence.www.example.test."), "\"A 192.0.2.99 1\""));
  CHECK(contains(txt_at(knot, "_planfence.www.example.test."), "\"gen=5 fence=7\""));
}

TEST_CASE("zone layout: the RFC 2136 store continues a zone with the legacy floor owner _planfence-floor",
          "[layout][knotd]") {
  auto knot_started = planfence_example::knot_server::start(
      {{"example.test.", "_planfence-floor 0 TXT \"floor=9\"\nwww 60 A 192.0.2.1\n_planfence.www 0 TXT \"gen=3 fence=2\"\n"}});
  REQUIRE(knot_started);
  auto& knot = *knot_started;
  const std::vector<std::string> www_only = {"www.example.test."};
  auto store = rfc2136_store::open_uri(knot.uri("example.test."), www_only).value();
  // Opened now, so it pins the legacy floor 9 and no canonical floor.
  auto before_raise = rfc2136_store::open_uri(knot.uri("example.test."), www_only).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  CHECK(store.read_floor().value() == std::optional<std::uint64_t>{9});
  const record_set records = planfence_test::a_records({"192.0.2.2"});
  auto refused = store.commit(www, store.read_stamp(www).value(), at(4, 5), records);
  REQUIRE(!refused);
  CHECK(refused.error().code == errc::fenced);

  // raise_fence writes the canonical owner and removes the legacy one in the same UPDATE.
  REQUIRE(store.raise_fence(fence_token{12}));
  CHECK(contains(txt_at(knot, "_fence._planfence.example.test."), "\"floor=12\""));
  CHECK(!contains(txt_at(knot, "_planfence-floor.example.test."), "floor="));
  CHECK(store.read_floor().value() == std::optional<std::uint64_t>{12});

  // A commit pinning the floors as they were (legacy 9, no canonical) is refused by the server.
  auto stale = before_raise.commit(before_raise.resolve("www.example.test.").value(), at(3, 2), at(4, 10), records);
  REQUIRE(!stale);
  INFO(stale.error().message());
  CHECK(stale.error().code == errc::fenced);
  CHECK(contains(stale.error().message(), "the server refused the prerequisite"));

  REQUIRE(store.commit(www, store.read_stamp(www).value(), at(4, 12), records));
  CHECK(store.read_stamp(www).value() == at(4, 12));
  CHECK(store.served(www).value() == all(records));
}
