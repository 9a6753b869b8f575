// Proves rfc2136_store as a batched_store (store.hpp) on each real server installed here: Knot,
// BIND and PowerDNS (servers.hpp). Each item of a batch is decided by its own prerequisite: a
// batch mixing fresh, stale, fenced and conflicting endpoints (and one never written, whose
// "RRset does not exist" prerequisite another writer broke) writes the fresh ones and refuses
// each other one with its own outcome, which takes two UPDATEs: so the server itself refused the
// first (value-dependent prerequisites and "RRset does not exist" are enforced, RFC 2136 section
// 3.2). A batch larger than one message is split (several UPDATEs, counted) and lands whole; an
// endpoint too large for any message is refused before anything is sent; two stores racing
// batches with different generations leave the newer generation everywhere (S1). Also, on knotd:
// every record type written and read back, pipelined stamp reads that fall back to read_stamp's
// error on a malformed stamp, and a live set that fails rather than guesses.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "refusal_checks.hpp"
#include "servers.hpp"

using namespace planfence;

namespace {
std::vector<std::string> endpoint_names(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back("e" + std::to_string(i) + ".example.test.");
  return out;
}
/// Whether commit_batch returned success; its error otherwise, shown.
bool committed(rfc2136_store& store, std::span<commit_item> items) {
  auto done = store.commit_batch(items);
  if (!done) UNSCOPED_INFO("commit_batch: " << done.error().message());
  return done.has_value();
}
stamp at(std::uint64_t gen, std::uint64_t fence) { return stamp{generation{gen}, fence_token{fence}, 0}; }
endpoint_handle h(std::uint32_t i) { return endpoint_handle{i}; }

/// Several records per endpoint (`n` A records and an AAAA, weighted): about 400 octets of update.
record_set several_records(std::uint64_t gen, std::size_t n) {
  std::vector<record> rs;
  for (std::size_t k = 0; k < n; ++k) {
    rs.push_back(make_record(record_type::a, 60, "10." + std::to_string(gen % 250) + ".0." + std::to_string(k + 1),
                             static_cast<std::uint8_t>(k + 1))
                     .value());
  }
  rs.push_back(make_record(record_type::aaaa, 60, "2001:db8::" + std::to_string(gen % 9999)).value());
  return record_set::make(std::move(rs)).value();
}
}  // namespace

TEMPLATE_LIST_TEST_CASE("rfc2136 batch: fresh, stale, fenced and conflicting items each get their own outcome",
                        "[batch][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  const auto names = endpoint_names(7);
  auto store = rfc2136_store::open_uri(server.uri(), names).value();
  auto other = rfc2136_store::open_uri(server.uri(), names).value();  // another writer
  const auto v1 = planfence_test::a_records({"10.0.0.1"});
  const auto v2 = planfence_test::a_records({"10.0.0.2"});
  const auto v3 = planfence_test::a_records({"10.0.0.3"});
  // e0..e4 at gen 1 in one batch (each from "RRset does not exist"); e5, e6 never written.
  std::vector<commit_item> first;
  for (std::uint32_t i = 0; i < 5; ++i) first.push_back({h(i), stamp{}, at(1, 1), &v1});
  REQUIRE(committed(store, first));
  for (const commit_item& item : first) {
    CHECK(item.outcome == commit_outcome::written);
    CHECK(item.now.gen == generation{1});
  }
  // The other writer moves e1 past us (stale), e2 on a little (conflict), e3 under a larger fence
  // (fenced), and writes e6, which we believe never written (conflict: "RRset does not exist").
  std::vector<commit_item> moves = {{h(1), at(1, 1), at(7, 1), &v2},
                                    {h(2), at(1, 1), at(2, 1), &v2},
                                    {h(3), at(1, 1), at(2, 9), &v2},
                                    {h(6), stamp{}, at(1, 1), &v2}};
  REQUIRE(committed(other, moves));
  for (const commit_item& item : moves) CHECK(item.outcome == commit_outcome::written);

  // Our batch, built on what we read before: e0, e4 fresh, e5 fresh from nothing.
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < 5; ++i) items.push_back({h(i), at(1, 1), at(3, 2), &v3});
  items.push_back({h(5), stamp{}, at(3, 2), &v3});
  items.push_back({h(6), stamp{}, at(3, 2), &v3});
  // One UPDATE for all seven, each with its own prerequisite, the floor pinned once.
  const auto preview = store.preview_update(items).value();
  REQUIRE(preview.size() == 1);
  const auto message = detail::decode_message(preview[0]).value();
  CHECK(message.answers.size() == 7 + 2);
  const std::uint64_t sent_before = store.updates_sent();
  REQUIRE(committed(store, items));
  // The server refused the first message (two UPDATEs: the refused one, then the rest): it
  // enforces the value-dependent and the "does not exist" prerequisites.
  CHECK(store.updates_sent() - sent_before == 2);
  CHECK(items[0].outcome == commit_outcome::written);
  CHECK(items[1].outcome == commit_outcome::stale);
  CHECK(items[1].now.gen == generation{7});
  CHECK(items[2].outcome == commit_outcome::conflict);
  CHECK(items[2].now.gen == generation{2});
  CHECK(items[3].outcome == commit_outcome::fenced);
  CHECK(items[3].now.fence == fence_token{9});
  CHECK(items[4].outcome == commit_outcome::written);
  CHECK(items[5].outcome == commit_outcome::written);
  CHECK(items[6].outcome == commit_outcome::conflict);
  CHECK(items[6].now.gen == generation{1});
  // Read back from the server: the fresh ones serve gen 3, the refused ones what the other wrote.
  std::vector<endpoint_handle> all;
  for (std::uint32_t i = 0; i < 7; ++i) all.push_back(h(i));
  std::vector<stamp> now(7);
  REQUIRE(store.read_stamps(all, now));
  const std::uint64_t expected_gen[] = {3, 7, 2, 2, 3, 3, 1};
  for (std::uint32_t i = 0; i < 7; ++i) {
    INFO("e" << i);
    CHECK(now[i].gen == generation{expected_gen[i]});
    CHECK(now[i] == store.read_stamp(h(i)).value());
    CHECK(store.served(h(i))->at(0).rdata == (expected_gen[i] == 3 ? "10.0.0.3" : "10.0.0.2"));
  }
  // A batch that is all stale: the server refuses it, nothing is written, each item stale.
  std::vector<commit_item> stale = {{h(0), at(1, 1), at(4, 2), &v1}, {h(4), at(1, 1), at(4, 2), &v1}};
  REQUIRE(committed(store, stale));
  CHECK(stale[0].outcome == commit_outcome::conflict);  // it serves gen 3 now: moved, not past gen 4
  CHECK(stale[1].outcome == commit_outcome::conflict);
  std::vector<commit_item> past = {{h(1), at(1, 1), at(5, 2), &v1}};
  const std::uint64_t before_stale = store.updates_sent();
  REQUIRE(committed(store, past));
  CHECK(store.updates_sent() - before_stale == 1);  // sent, refused by the server
  CHECK(past[0].outcome == commit_outcome::stale);
  CHECK(store.read_stamp(h(0))->gen == generation{3});
  CHECK(store.read_stamp(h(1))->gen == generation{7});
  CHECK(store.served(h(1))->at(0).rdata == "10.0.0.2");
  // A single commit says the same, with the server's word.
  auto single = store.commit(h(1), at(1, 1), at(5, 2), v1);
  REQUIRE(!single);
  CHECK(single.error().code == errc::stale);
  CHECK(single.error().detail.find("e1.example.test.") != std::string::npos);
}

TEMPLATE_LIST_TEST_CASE("rfc2136 batch: 400 endpoints with several records each are split into several UPDATEs",
                        "[batch][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  // 400 endpoints of 5 records make 5 or more UPDATEs: enough to split, small enough that the
  // three servers' cases do not load a 2-core CI machine running other server tests beside them.
  constexpr std::uint32_t n = 400;
  constexpr std::uint32_t moved = 217;
  const auto names = endpoint_names(n);
  auto store = rfc2136_store::open_uri(server.uri(), names).value();
  const record_set r1 = several_records(1, 4);
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < n; ++i) items.push_back({h(i), stamp{}, at(1, 1), &r1});
  const auto preview = store.preview_update(items).value();
  REQUIRE(preview.size() >= 3);
  std::size_t endpoints_in_messages = 0;
  for (const auto& m : preview) {
    CHECK(m.size() <= detail::dns_message_size_max - 100);  // room for TSIG
    endpoints_in_messages += detail::decode_message(m).value().answers.size() - 2;
  }
  CHECK(endpoints_in_messages == n);
  REQUIRE(committed(store, items));
  CHECK(store.updates_sent() == preview.size());
  for (const commit_item& item : items) REQUIRE(item.outcome == commit_outcome::written);
  std::vector<endpoint_handle> all;
  for (std::uint32_t i = 0; i < n; ++i) all.push_back(h(i));
  std::vector<stamp> now(n);
  REQUIRE(store.read_stamps(all, now));
  for (std::uint32_t i = 0; i < n; ++i) REQUIRE(now[i].gen == generation{1});
  CHECK(store.served(h(0))->size() == 5);
  CHECK(store.served(h(n - 1))->size() == 5);
  CHECK(store.served(h(n - 1))->at(0).weight == std::optional<std::uint8_t>{1});
  // Gen 2 for all, with one endpoint in the middle moved past us by another writer: it alone is
  // stale, in whichever message it is, and the others land.
  auto other = rfc2136_store::open_uri(server.uri(), names).value();
  REQUIRE(other.commit(h(moved), at(1, 1), at(9, 1), r1));
  const record_set r2 = several_records(2, 4);
  for (commit_item& item : items) item = commit_item{item.endpoint, at(1, 1), at(2, 1), &r2};
  REQUIRE(committed(store, items));
  REQUIRE(store.read_stamps(all, now));
  for (std::uint32_t i = 0; i < n; ++i) {
    INFO("e" << i);
    CHECK(items[i].outcome == (i == moved ? commit_outcome::stale : commit_outcome::written));
    CHECK(now[i].gen == generation{i == moved ? 9u : 2u});
  }
  CHECK(store.served(h(n - 1))->at(0).rdata == "10.2.0.1");
}

TEMPLATE_LIST_TEST_CASE("rfc2136 batch: an endpoint too large for one UPDATE is refused by name, nothing sent",
                        "[batch][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  auto store = rfc2136_store::open_uri(server.uri(), endpoint_names(2)).value();
  // 300 TXT records of 250 octets: about 80 KB of updates for one endpoint.
  std::vector<record> big;
  for (int k = 0; k < 300; ++k) {
    big.push_back(make_record(record_type::txt, 60, '"' + std::to_string(k) + std::string(240, 'x') + '"').value());
  }
  const record_set large = record_set::make(std::move(big)).value();
  const record_set small = planfence_test::a_records({"192.0.2.1"});
  std::vector<commit_item> items = {{h(0), stamp{}, at(1, 1), &small}, {h(1), stamp{}, at(1, 1), &large}};
  auto done = store.commit_batch(items);
  REQUIRE(!done);
  CHECK(done.error().code == errc::capacity_exceeded);
  CHECK(done.error().detail.find("e1.example.test.") != std::string::npos);
  CHECK(store.updates_sent() == 0);
  CHECK(items[0].outcome == commit_outcome::pending);
  CHECK(items[1].outcome == commit_outcome::pending);
  CHECK(store.read_stamp(h(0))->gen == generation_none);
}

TEMPLATE_LIST_TEST_CASE("rfc2136 batch: two stores racing batches, the newer generation wins everywhere (S1)",
                        "[batch][race][S1][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  constexpr std::uint32_t n = 40;
  const auto names = endpoint_names(n);
  // Writer w commits generations 10 + 2k + w for k = 0..rounds-1: writer 1's last is the newest.
  constexpr int rounds = 6;
  std::atomic<int> errors{0};
  auto writer = [&](int w) {
    auto store = rfc2136_store::open_uri(server.uri(), names).value();
    std::vector<endpoint_handle> all;
    for (std::uint32_t i = 0; i < n; ++i) all.push_back(h(i));
    for (int k = 0; k < rounds; ++k) {
      const std::uint64_t gen = 10 + 2 * static_cast<std::uint64_t>(k) + static_cast<std::uint64_t>(w);
      const record_set records = planfence_test::a_records({planfence_test::address_of(gen)});
      std::vector<endpoint_handle> todo = all;
      for (int attempt = 0; attempt < 20 && !todo.empty(); ++attempt) {
        std::vector<stamp> seen(todo.size());
        if (!store.read_stamps(todo, seen)) {
          ++errors;
          return;
        }
        std::vector<commit_item> items;
        for (std::size_t i = 0; i < todo.size(); ++i) items.push_back({todo[i], seen[i], at(gen, 1), &records});
        if (!store.commit_batch(items)) {
          ++errors;
          return;
        }
        todo.clear();
        for (const commit_item& item : items) {
          if (item.outcome == commit_outcome::conflict || item.outcome == commit_outcome::pending) todo.push_back(item.endpoint);
        }
      }
      if (!todo.empty()) ++errors;
    }
  };
  std::thread a(writer, 0), b(writer, 1);
  a.join();
  b.join();
  CHECK(errors.load() == 0);
  auto store = rfc2136_store::open_uri(server.uri(), names).value();
  const std::uint64_t newest = 10 + 2 * (rounds - 1) + 1;
  for (std::uint32_t i = 0; i < n; ++i) {
    INFO("e" << i);
    CHECK(store.read_stamp(h(i))->gen == generation{newest});
    CHECK(planfence_test::served_addresses(store, h(i)) == std::vector<std::string>{planfence_test::address_of(newest)});
  }
}

TEST_CASE("rfc2136 read_stamps: pipelined reads equal read_stamp, and a malformed stamp is read_stamp's error",
          "[batch][knotd]") {
  auto knot = planfence_test::start_knot();
  const auto names = endpoint_names(300);
  auto store = rfc2136_store::open_uri(knot.uri("example.test."), names).value();
  const auto v1 = planfence_test::a_records({"10.0.0.1"});
  std::vector<commit_item> items;
  for (std::uint32_t i = 0; i < 300; i += 2) items.push_back({h(i), stamp{}, at(i + 1, 1), &v1});
  REQUIRE(committed(store, items));
  std::vector<endpoint_handle> all;
  for (std::uint32_t i = 0; i < 300; ++i) all.push_back(h(i));
  std::vector<stamp> now(300);
  REQUIRE(store.read_stamps(all, now));
  for (std::uint32_t i = 0; i < 300; ++i) {
    INFO("e" << i);
    CHECK(now[i].gen == generation{i % 2 == 0 ? i + 1 : 0});
    CHECK(now[i] == store.read_stamp(h(i)).value());
  }
  // Generation 0 written by hand at e101: never taken as a value, in a batch read or alone.
  const std::string script = "server 127.0.0.1 " + std::to_string(knot.port()) +
                             "\nzone example.test.\nupdate add _planfence.e101.example.test. 60 TXT \"gen=0 fence=1\"\nsend\n";
  REQUIRE(std::system(("printf '" + script + "' | knsupdate -y " + knot.key_argument()).c_str()) == 0);
  auto read = store.read_stamps(all, now);
  REQUIRE(!read);
  CHECK(read.error().code == errc::parse_error);
  CHECK(read.error().detail.find("_planfence.e101.example.test.") != std::string::npos);
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
  // The first read that failed: the apply marks, read before the stamps.
  CHECK(live.error().detail.find("_apply._planfence.example.test.") != std::string::npos);
}
