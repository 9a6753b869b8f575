// Proves the batch semantics of rfc2136_store::commit_batch against knotd: several endpoints
// in ONE UPDATE, each with its own prerequisite, applied all or nothing. When one endpoint's
// stamp moved, no endpoint of the batch is written, and each item says its own outcome; a batch
// of 100 endpoints goes in one message; the UPDATE on the wire carries one prerequisite per
// endpoint plus the floor's.
#include <catch2/catch.hpp>

#include "knot_fixture.hpp"
#include "refusal_checks.hpp"

using namespace planfence;

namespace {
std::vector<std::string> endpoint_names(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back("e" + std::to_string(i) + ".example.test.");
  return out;
}
}  // namespace

TEST_CASE("rfc2136 batch: all or nothing, each item with its own outcome", "[batch][knotd]") {
  auto knot = planfence_test::start_knot();
  const auto names = endpoint_names(3);
  auto store = rfc2136_store::open_uri(knot.uri("example.test."), names).value();
  const auto v1 = planfence_test::a_records({"10.0.0.1"});
  const auto v2 = planfence_test::a_records({"10.0.0.2"});
  std::vector<rfc2136_store::batch_item> items;
  for (std::uint32_t i = 0; i < 3; ++i) items.push_back({endpoint_handle{i}, stamp{}, stamp{generation{1}, fence_token{1}, 0}, &v1});

  // The UPDATE has one prerequisite per endpoint and one for each floor owner (the canonical and
  // the legacy one, dns/zone_layout.hpp).
  const auto preview = detail::decode_message(store.preview_update(items).value()).value();
  CHECK(preview.answers.size() == 3 + 2);
  // 4 RRset deletes, 1 add, the weights' delete (no adds: unweighted), stamp delete + add
  CHECK(preview.authority.size() == 3 * (4 + 1 + 1 + 2));
  REQUIRE(store.commit_batch(items));
  for (std::uint32_t i = 0; i < 3; ++i) {
    CHECK(store.read_stamp(endpoint_handle{i})->gen == generation{1});
    CHECK(store.served(endpoint_handle{i})->at(0).rdata == "10.0.0.1");
  }
  // Someone else moves e1 on; a batch built on the old stamps then writes nothing at all.
  const stamp e1 = store.read_stamp(endpoint_handle{1}).value();
  REQUIRE(store.commit(endpoint_handle{1}, e1, stamp{generation{5}, fence_token{1}, 0}, v2));
  for (auto& item : items) {
    item.expected = stamp{generation{1}, fence_token{1}, 0};
    item.desired = stamp{generation{2}, fence_token{1}, 0};
    item.records = &v2;
  }
  auto done = store.commit_batch(items);
  REQUIRE(!done);
  CHECK(done.error().code == errc::stale);
  CHECK(done.error().message().find("e1.example.test.") != std::string::npos);
  CHECK(!items[0].refused);
  CHECK(items[1].refused == errc::stale);
  CHECK(!items[2].refused);
  CHECK(store.read_stamp(endpoint_handle{0})->gen == generation{1});  // nothing of the batch landed
  CHECK(store.read_stamp(endpoint_handle{2})->gen == generation{1});
  CHECK(store.served(endpoint_handle{0})->at(0).rdata == "10.0.0.1");
  // Dropping the refused item, the rest goes through.
  items.erase(items.begin() + 1);
  REQUIRE(store.commit_batch(items));
  CHECK(store.read_stamp(endpoint_handle{2})->gen == generation{2});
}

TEST_CASE("rfc2136 batch: 100 endpoints in one UPDATE", "[batch][knotd]") {
  auto knot = planfence_test::start_knot();
  const auto names = endpoint_names(100);
  auto store = rfc2136_store::open_uri(knot.uri("example.test."), names).value();
  const auto records = planfence_test::a_records({"192.0.2.1", "192.0.2.2"});
  std::vector<rfc2136_store::batch_item> items;
  for (std::uint32_t i = 0; i < 100; ++i) items.push_back({endpoint_handle{i}, stamp{}, stamp{generation{9}, fence_token{1}, 0}, &records});
  REQUIRE(store.commit_batch(items));
  const auto live = store.live_generations();
  REQUIRE(live);
  CHECK(*live == std::vector<generation>{generation{9}});
  CHECK(store.served(endpoint_handle{99})->size() == 2);
}

TEST_CASE("rfc2136 records: A, AAAA, TXT and CNAME are written and read back as knotd serves them", "[records][knotd]") {
  auto knot = planfence_test::start_knot();
  auto store = rfc2136_store::open_uri(knot.uri("example.test."), {"www.example.test."}).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  auto mixed = record_set::make({make_record(record_type::a, 60, "192.0.2.1", std::uint8_t{10}).value(),
                                 make_record(record_type::aaaa, 120, "2001:DB8::1").value(),
                                 make_record(record_type::txt, 30, "\"v=1\" \"two words\"").value()})
                   .value();
  REQUIRE(store.commit(www, stamp{}, stamp{generation{1}, fence_token{1}, 0}, mixed));
  auto served = store.served(www).value();
  REQUIRE(served.size() == 3);
  // What knotd answers, with the weight kept beside it in _weight._planfence.www (DNS has no
  // place for one in the record itself): the same records, weights included.
  for (std::size_t i = 0; i < served.size(); ++i) {
    CHECK(served[i].type == mixed.records()[i].type);
    CHECK(served[i].rdata == mixed.records()[i].rdata);
    CHECK(served[i].ttl == mixed.records()[i].ttl);
    CHECK(served[i].weight == mixed.records()[i].weight);
  }
  CHECK(served[0].weight == std::optional<std::uint8_t>{10});
  const std::string weights = planfence_rfc2136_test::command_output(
      "kdig @127.0.0.1 -p " + std::to_string(knot.port()) + " -y " + knot.key_argument() + " +short TXT _weight._planfence.www.example.test. 2>&1");
  INFO(weights);
  CHECK(weights.find("\"A 192.0.2.1 10\"") != std::string::npos);
  // A CNAME replaces everything (the deletes come first in the same UPDATE), the weights too: a
  // weight left for A 192.0.2.1 would make served() refuse the endpoint.
  auto alias = record_set::make({make_record(record_type::cname, 60, "lb.example.test.").value()}).value();
  REQUIRE(store.commit(www, store.read_stamp(www).value(), stamp{generation{2}, fence_token{1}, 0}, alias));
  served = store.served(www).value();
  REQUIRE(served.size() == 1);
  CHECK(served[0].type == record_type::cname);
  CHECK(served[0].rdata == "lb.example.test.");
  CHECK(!served[0].weight);
  // Several (weighted) CNAMEs cannot exist in DNS: refused before sending, nothing written.
  auto weighted = record_set::make({make_record(record_type::cname, 60, "a.example.test.", std::uint8_t{1}).value(),
                                    make_record(record_type::cname, 60, "b.example.test.", std::uint8_t{2}).value()})
                      .value();
  auto refused = store.commit(www, store.read_stamp(www).value(), stamp{generation{3}, fence_token{1}, 0}, weighted);
  REQUIRE(!refused);
  CHECK(refused.error().code == errc::capacity_exceeded);
  CHECK(store.read_stamp(www)->gen == generation{2});
}

TEST_CASE("rfc2136 live set: a server that stops answering is an error, never a guess", "[live][knotd][S3]") {
  // The registry reads the live set after closing plans to pins; a set with a remembered
  // generation in place of a failed read could lack a plan that another enactor made live since,
  // and the registry would collect it (S3). So a failed read fails the whole set.
  auto knot = planfence_test::start_knot();
  auto store = rfc2136_store::open_uri(knot.uri("example.test.") + "&timeout-ms=100&attempts=2", {"www.example.test."}).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  REQUIRE(store.commit(www, stamp{}, stamp{generation{4}, fence_token{1}, 0}, planfence_test::a_records({"192.0.2.4"})));
  REQUIRE(store.live_generations());
  CHECK(*store.live_generations() == std::vector<generation>{generation{4}});
  knot.stop();
  auto live = store.live_generations();
  REQUIRE_FALSE(live);
  CHECK(live.error().code == errc::store_unavailable);
  CHECK(live.error().detail.find("www.example.test.") != std::string::npos);
}
