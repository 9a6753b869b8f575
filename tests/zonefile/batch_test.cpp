// zonefile_store as a batched_store (include/planfence/zonefile/store.hpp, "Batches"):
//  - a batch mixing fresh, stale, fenced and conflicting items gets each item's own outcome and
//    `now`, the fresh ones are written (read back), in ONE rewrite of the zone (the SOA serial
//    advances by one), and read_stamps agrees with read_stamp;
//  - a batch over several zones rewrites each once; a zone that cannot be locked leaves its items
//    pending while the other zone's are written;
//  - an item that would make the zone unloadable (a CNAME beside an MX, the zone's name server
//    made a CNAME) or exceed the record bound is refused by name and left pending, the rest of
//    its zone is written; a zone that already breaks a rule writes nothing;
//  - a large mixed batch (CNAMEs, weights, the apex, TXT) leaves a zone kzonecheck loads;
//  - two threads committing batches of different generations (drawn from a shared counter) to the
//    same endpoints: the newest generation ends everywhere (S1), and every write replaced exactly
//    the stamp the previous write left (no lost update; a store ignoring `expected` fails this);
//  - inspect (the batched read recovery's read-back and drift check use) gives exactly what
//    read_stamp and served give, endpoint by endpoint, and an unreadable zone is an error.
#include <catch2/catch.hpp>

#include <sys/file.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "zonefile_fixture.hpp"

using namespace planfence;
using namespace planfence_zonefile_test;

namespace {

std::string first_address(const zonefile_store& store, endpoint_handle h) {
  auto served = store.served(h);
  REQUIRE(served);
  return served->empty() ? std::string{} : served->front().rdata;
}

record_set cname_to(const std::string& target) {
  return record_set::make({make_record(record_type::cname, 60, target).value()}).value();
}

/// PREFIX<i>SUFFIX, appended piece by piece (GCC 12's -Wrestrict misfires on "x" + to_string(i) at -O3).
std::string numbered(std::string_view prefix, std::size_t i, std::string_view suffix) {
  std::string out(prefix);
  out += std::to_string(i);
  out += suffix;
  return out;
}

}  // namespace

TEST_CASE("zonefile batch: fresh, stale, fenced and conflicting items each get their own outcome", "[zonefile][batch]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  const auto v1 = planfence_test::a_records({"192.0.2.1"});
  const auto v2 = planfence_test::a_records({"192.0.2.2"});
  const auto v9 = planfence_test::a_records({"192.0.2.9"});
  std::vector<endpoint_handle> h;
  for (const char* name : {"fresh.example.test.", "stale.example.test.", "fenced.example.test.", "moved.example.test.",
                           "new.example.test."}) {
    h.push_back(store.resolve(name).value());
  }
  // The state before the batch: fresh at 1, stale already at 5, fenced at 1 with token 3, moved at 3.
  REQUIRE(store.commit(h[0], stamp{}, stamp_at(1, 1), v1));
  REQUIRE(store.commit(h[1], stamp{}, stamp_at(5, 1), v9));
  REQUIRE(store.commit(h[2], stamp{}, stamp_at(1, 3), v9));
  REQUIRE(store.commit(h[3], stamp{}, stamp_at(3, 1), v9));
  const std::uint32_t serial_before = serial_of(file, "example.test.");

  std::vector<commit_item> items = {
      {h[0], stamp_at(1, 1), stamp_at(4, 2), &v2},  // fresh
      {h[1], stamp_at(1, 1), stamp_at(4, 2), &v2},  // stale: serves 5
      {h[2], stamp_at(1, 1), stamp_at(4, 2), &v2},  // fenced: accepted token 3
      {h[3], stamp_at(1, 1), stamp_at(4, 2), &v2},  // conflict: expected 1, serves 3
      {h[4], stamp{}, stamp_at(4, 2), &v2},         // fresh, never written
  };
  REQUIRE(store.commit_batch(items));
  CHECK(items[0].outcome == commit_outcome::written);
  CHECK(items[0].now == stamp_at(4, 2));
  CHECK(items[1].outcome == commit_outcome::stale);
  CHECK(items[1].now == stamp_at(5, 1));
  CHECK(items[2].outcome == commit_outcome::fenced);
  CHECK(items[2].now == stamp_at(1, 3));
  CHECK(items[3].outcome == commit_outcome::conflict);
  CHECK(items[3].now == stamp_at(3, 1));
  CHECK(items[4].outcome == commit_outcome::written);

  // Read back, from a store opened afresh: the fresh ones written, the refused ones untouched.
  zonefile_store again = zonefile_store::open(dir.path()).value();
  auto read_back = [&](const char* name) { return again.resolve(name).value(); };
  CHECK(again.read_stamp(read_back("fresh.example.test.")).value() == stamp_at(4, 2));
  CHECK(first_address(again, read_back("fresh.example.test.")) == "192.0.2.2");
  CHECK(again.read_stamp(read_back("new.example.test.")).value() == stamp_at(4, 2));
  CHECK(first_address(again, read_back("new.example.test.")) == "192.0.2.2");
  for (const char* name : {"stale.example.test.", "fenced.example.test.", "moved.example.test."}) {
    INFO(name);
    CHECK(first_address(again, read_back(name)) == "192.0.2.9");
  }
  // Two items written, one rewrite.
  CHECK(serial_of(file, "example.test.") == serial_before + 1);

  // read_stamps: each as read_stamp gives it, the floor included.
  REQUIRE(store.raise_fence(fence_token{2}));
  std::vector<stamp> seen(h.size());
  REQUIRE(store.read_stamps(h, seen));
  for (std::size_t i = 0; i < h.size(); ++i) CHECK(seen[i] == store.read_stamp(h[i]).value());
  CHECK(seen[3] == stamp_at(3, 2));  // the stamp's fence raised to the floor

  // A batch below the floor: every item fenced, nothing written.
  const std::string before = read_text(file);
  std::vector<commit_item> low = {{h[0], seen[0], stamp_at(9, 1), &v1}, {h[4], seen[4], stamp_at(9, 1), &v1}};
  REQUIRE(store.commit_batch(low));
  CHECK(low[0].outcome == commit_outcome::fenced);
  CHECK(low[1].outcome == commit_outcome::fenced);
  CHECK(read_text(file) == before);
}

TEST_CASE("zonefile batch: several zones, each rewritten once, a locked zone's items left pending", "[zonefile][batch]") {
  temp_directory dir;
  zonefile_store store = open_with_zones(dir.path(), {"a.test.", "b.test.", "c.test."});
  const auto v1 = planfence_test::a_records({"198.51.100.1"});
  std::vector<commit_item> items;
  std::vector<std::string> names;
  for (const char* zone : {"a.test.", "b.test.", "c.test."}) {
    for (int i = 0; i < 4; ++i) names.push_back(numbered("e", static_cast<std::size_t>(i), std::string(".") + zone));
  }
  for (const std::string& name : names) items.push_back({store.resolve(name).value(), stamp{}, stamp_at(1, 1), &v1});
  std::map<std::string, std::uint32_t> serials;
  for (const char* zone : {"a.test.", "b.test.", "c.test."}) serials[zone] = serial_of(store.zone_file(zone), zone);
  REQUIRE(store.commit_batch(items));
  for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
  for (const char* zone : {"a.test.", "b.test.", "c.test."}) {
    INFO(zone);
    CHECK(serial_of(store.zone_file(zone), zone) == serials[zone] + 1);  // four endpoints, one rewrite
  }
  std::vector<endpoint_handle> handles;
  for (const commit_item& item : items) handles.push_back(item.endpoint);
  std::vector<stamp> seen(handles.size());
  REQUIRE(store.read_stamps(handles, seen));
  for (const stamp& s : seen) CHECK(s == stamp_at(1, 1));

  // b.test. locked by another writer past the timeout: its items stay pending, a.test. and
  // c.test. are written, and the error names the lock file.
  zonefile_options patient;
  patient.lock_timeout_ms = 50;
  zonefile_store impatient = zonefile_store::open(dir.path(), patient).value();
  const auto v2 = planfence_test::a_records({"198.51.100.2"});
  for (commit_item& item : items) {
    item = commit_item{impatient.resolve(store.name(item.endpoint)).value(), stamp_at(1, 1), stamp_at(2, 1), &v2};
  }
  const std::string b_before = read_text(store.zone_file("b.test."));
  const int fd = ::open((dir.path() / "b.test.zone.lock").c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  auto done = impatient.commit_batch(items);
  ::close(fd);
  REQUIRE_FALSE(done);
  CHECK(done.error().code == errc::store_unavailable);
  CHECK(contains(done.error().detail.str(), "b.test.zone.lock: still locked by another writer"));
  for (std::size_t i = 0; i < items.size(); ++i) {
    INFO(names[i]);
    const bool in_b = names[i].ends_with(".b.test.");
    CHECK(items[i].outcome == (in_b ? commit_outcome::pending : commit_outcome::written));
    CHECK(impatient.read_stamp(items[i].endpoint).value() == (in_b ? stamp_at(1, 1) : stamp_at(2, 1)));
  }
  CHECK(read_text(store.zone_file("b.test.")) == b_before);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "b.test.zone.tmp"));
  // Read again and retried, as the enactor does: the pending ones go through, the others are stale.
  for (commit_item& item : items) item.expected = impatient.read_stamp(item.endpoint).value();
  REQUIRE(impatient.commit_batch(items));
  for (std::size_t i = 0; i < items.size(); ++i) {
    CHECK(items[i].outcome == (names[i].ends_with(".b.test.") ? commit_outcome::written : commit_outcome::stale));
  }
}

TEST_CASE("zonefile batch: an item that would break the zone is refused by name, the rest of its zone written", "[zonefile][batch][rules]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  write_text(file, read_text(file) + "mx.example.test. 300 IN MX 10 mail.example.net.\n");
  const auto v1 = planfence_test::a_records({"192.0.2.1"});
  const auto alias = cname_to("lb.example.net.");
  std::vector<commit_item> items;
  for (int i = 0; i < 20; ++i) {
    items.push_back({store.resolve(numbered("e", static_cast<std::size_t>(i), ".example.test.")).value(), stamp{}, stamp_at(1, 1), &v1});
  }
  // Two bad items among good ones: a CNAME beside the MX, and the zone's name server made a CNAME.
  items.insert(items.begin() + 5, commit_item{store.resolve("mx.example.test.").value(), stamp{}, stamp_at(1, 1), &alias});
  items.insert(items.begin() + 13, commit_item{store.resolve("ns1.example.test.").value(), stamp{}, stamp_at(1, 1), &alias});
  items.push_back({store.resolve("www.example.test.").value(), stamp{}, stamp_at(1, 1), &alias});  // a fine CNAME
  const std::uint32_t serial_before = serial_of(file, "example.test.");

  auto done = store.commit_batch(items);
  REQUIRE_FALSE(done);
  INFO(done.error().message());
  CHECK(done.error().code == errc::invalid_plan);
  CHECK(contains(done.error().detail.str(), "the commit of mx.example.test. at generation 1 is refused, nothing was written for it"));
  CHECK(contains(done.error().detail.str(), "beside MX data"));
  CHECK(contains(done.error().detail.str(), "the commit of ns1.example.test. at generation 1 is refused"));
  CHECK(contains(done.error().detail.str(), "is a CNAME, so it has no A or AAAA"));
  for (const commit_item& item : items) {
    const std::string name = store.name(item.endpoint);
    INFO(name);
    const bool bad = name == "mx.example.test." || name == "ns1.example.test.";
    CHECK(item.outcome == (bad ? commit_outcome::pending : commit_outcome::written));
    CHECK(store.read_stamp(item.endpoint).value().gen == (bad ? generation_none : generation{1}));
  }
  CHECK(serial_of(file, "example.test.") == serial_before + 1);
  CHECK(first_address(store, store.resolve("ns1.example.test.").value()) == "127.0.0.1");  // the glue is kept
  CHECK(check_zone_loadable(parse_zone(read_text(file), zone_parse_options{"example.test."}).value(), "example.test."));

  SECTION("a zone that already breaks a rule writes nothing of the batch") {
    write_text(file, read_text(file) + "old.example.test. 300 IN CNAME a.example.net.\nold.example.test. 300 IN CNAME b.example.net.\n");
    const std::string before = read_text(file);
    std::vector<commit_item> more = {{store.resolve("x.example.test.").value(), stamp{}, stamp_at(2, 1), &v1},
                                     {store.resolve("y.example.test.").value(), stamp{}, stamp_at(2, 1), &v1}};
    auto refused = store.commit_batch(more);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::invalid_plan);
    CHECK(contains(refused.error().detail.str(), "old.example.test.: 2 CNAME records"));
    CHECK(contains(refused.error().detail.str(), "x.example.test."));
    CHECK(contains(refused.error().detail.str(), "y.example.test."));
    CHECK(more[0].outcome == commit_outcome::pending);
    CHECK(more[1].outcome == commit_outcome::pending);
    CHECK(read_text(file) == before);
  }
  SECTION("the record bound: items admitted in batch order while the zone stays within it") {
    zonefile_options small;
    const std::size_t now = parse_zone(read_text(file), zone_parse_options{"example.test."}).value().size();
    small.records_max = now + 4;  // room for two new endpoints of one A and one stamp each
    zonefile_store bounded = zonefile_store::open(dir.path(), small).value();
    std::vector<commit_item> more;
    for (const char* name : {"p.example.test.", "q.example.test.", "r.example.test."}) {
      more.push_back({bounded.resolve(name).value(), stamp{}, stamp_at(2, 1), &v1});
    }
    auto refused = bounded.commit_batch(more);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::capacity_exceeded);
    CHECK(contains(refused.error().detail.str(), "the commit of r.example.test. at generation 2 is refused"));
    CHECK(more[0].outcome == commit_outcome::written);
    CHECK(more[1].outcome == commit_outcome::written);
    CHECK(more[2].outcome == commit_outcome::pending);
    CHECK(bounded.read_stamp(more[2].endpoint).value().gen == generation_none);
  }
}

TEST_CASE("zonefile batch: a zone written by large mixed batches loads in kzonecheck", "[zonefile][batch][kzonecheck]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  write_text(file, read_text(file) + "mail.example.test. 300 IN MX 10 mx.example.net.\n");
  std::deque<record_set> sets;
  std::vector<commit_item> items;
  for (int i = 0; i < 300; ++i) {
    const std::string name = numbered("h", static_cast<std::size_t>(i), ".example.test.");
    switch (i % 4) {
      case 0: sets.push_back(planfence_test::a_records({planfence_test::address_of(i), planfence_test::address_of(i + 1000)})); break;
      case 1: sets.push_back(cname_to("lb" + std::to_string(i) + ".example.net.")); break;
      case 2:
        sets.push_back(record_set::make({make_record(record_type::a, 60, planfence_test::address_of(i), 10).value(),
                                         make_record(record_type::a, 60, planfence_test::address_of(i + 1), 30).value()})
                           .value());
        break;
      default:
        sets.push_back(record_set::make({make_record(record_type::aaaa, 60, "2001:db8::" + std::to_string(i)).value(),
                                         make_record(record_type::txt, 60, "\"v=" + std::to_string(i) + "\"").value()})
                           .value());
    }
    items.push_back({store.resolve(name).value(), stamp{}, stamp_at(1, 1), &sets.back()});
  }
  sets.push_back(planfence_test::a_records({"192.0.2.25"}));
  items.push_back({store.resolve("mail.example.test.").value(), stamp{}, stamp_at(1, 1), &sets.back()});  // beside the MX
  items.push_back({store.resolve("example.test.").value(), stamp{}, stamp_at(1, 1), &sets.back()});       // the apex
  REQUIRE(store.commit_batch(items));
  // A second batch turns the CNAMEs into addresses and the addresses into CNAMEs.
  for (std::size_t i = 0; i < 300; ++i) {
    items[i].expected = items[i].now;
    items[i].desired = stamp_at(2, 1);
    items[i].records = i % 4 == 1 ? &sets[0] : &sets[1];
  }
  items.resize(300);
  REQUIRE(store.commit_batch(items));
  for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
  CHECK(store.served(items[1].endpoint).value() == std::vector<record>(sets[0].records().begin(), sets[0].records().end()));
  const std::string text = read_text(file);
  check_servers_load(text, "example.test.");
}

TEST_CASE("zonefile batch: two threads committing batches to the same endpoints, the newest generation wins (S1)", "[zonefile][batch][S1][concurrent]") {
  temp_directory dir;
  open_with_zone(dir.path());
  constexpr int endpoints = 40;
  constexpr std::uint64_t rounds = 12;
  std::vector<std::string> names;
  for (int i = 0; i < endpoints; ++i) names.push_back(numbered("n", static_cast<std::size_t>(i), ".example.test."));
  std::map<std::uint64_t, record_set> sets;
  for (std::uint64_t g = 1; g <= 2 * rounds; ++g) sets.emplace(g, planfence_test::a_records({planfence_test::address_of(g)}));

  struct write_log {
    std::string name;
    generation expected, desired;
  };
  std::mutex log_mutex;
  std::vector<write_log> log;
  std::atomic<bool> failed{false};
  // Each round a thread draws the next generation from a shared counter, so which thread holds the
  // newer generation changes from round to round, and commits it to every endpoint until each is
  // written or stale, conflicts read again. A pause between the read and the commit lets the other
  // thread write in between: a store that ignored `expected` would let a newer generation
  // overwrite a write it never saw (caught below).
  std::atomic<std::uint64_t> next_gen{1};
  auto run = [&](std::uint64_t) {
    zonefile_store store = zonefile_store::open(dir.path()).value();
    std::vector<endpoint_handle> handles;
    for (const std::string& name : names) handles.push_back(store.resolve(name).value());
    for (std::uint64_t r = 1; r <= rounds && !failed; ++r) {
      const std::uint64_t gen = next_gen.fetch_add(1);
      std::vector<endpoint_handle> todo = handles;
      for (int attempt = 0; !todo.empty(); ++attempt) {
        if (attempt > 1000) {
          failed = true;
          return;
        }
        std::vector<stamp> seen(todo.size());
        if (!store.read_stamps(todo, seen)) continue;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        std::vector<commit_item> items;
        for (std::size_t i = 0; i < todo.size(); ++i) items.push_back({todo[i], seen[i], stamp_at(gen, 1), &sets.at(gen)});
        (void)store.commit_batch(items);
        std::vector<endpoint_handle> next;
        for (const commit_item& item : items) {
          if (item.outcome == commit_outcome::written) {
            std::lock_guard guard(log_mutex);
            log.push_back({store.name(item.endpoint), item.expected.gen, item.desired.gen});
          } else if (item.outcome == commit_outcome::conflict || item.outcome == commit_outcome::pending) {
            next.push_back(item.endpoint);
          } else if (item.outcome == commit_outcome::fenced) {
            failed = true;
          }
        }
        todo = std::move(next);
      }
    }
  };
  std::thread a(run, 0), b(run, 1);  // (the argument: which thread, for a debugger)
  a.join();
  b.join();
  REQUIRE_FALSE(failed);
  zonefile_store store = zonefile_store::open(dir.path()).value();
  std::map<std::string, std::vector<write_log>> chains;
  for (const write_log& w : log) chains[w.name].push_back(w);
  for (const std::string& name : names) {
    INFO(name);
    const endpoint_handle h = store.resolve(name).value();
    // S1: the newest generation drawn ends at every endpoint, with its records.
    CHECK(store.read_stamp(h).value().gen == generation{2 * rounds});
    CHECK(first_address(store, h) == planfence_test::address_of(2 * rounds));
    // No lost update: in the order they landed (generations only grow), each write replaced
    // exactly the stamp the previous write left.
    auto& chain = chains[name];
    std::sort(chain.begin(), chain.end(), [](const write_log& x, const write_log& y) { return x.desired < y.desired; });
    REQUIRE_FALSE(chain.empty());
    CHECK(chain.front().expected == generation_none);
    for (std::size_t i = 1; i < chain.size(); ++i) CHECK(chain[i].expected == chain[i - 1].desired);
    CHECK(chain.back().desired == generation{2 * rounds});
  }
}

TEST_CASE("zonefile inspect: stamps and records of many endpoints in one read per zone, as read_stamp and served give them",
          "[zonefile][batch][inspect]") {
  temp_directory dir;
  zonefile_store store = open_with_zones(dir.path(), {"a.test.", "b.test."});
  std::vector<std::string> names;
  for (const char* zone : {"a.test.", "b.test."}) {
    for (std::size_t i = 0; i < 5; ++i) names.push_back(numbered("e", i, std::string(".") + zone));
  }
  const auto v1 = planfence_test::a_records({"198.51.100.1", "198.51.100.9"});
  std::vector<commit_item> items;
  // Every endpoint but the last of each zone written; those two stay never written.
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i % 5 != 4) items.push_back({store.resolve(names[i]).value(), stamp{}, stamp_at(1, 2), &v1});
  }
  REQUIRE(store.commit_batch(items));
  std::vector<endpoint_handle> handles;
  for (const std::string& name : names) handles.push_back(store.resolve(name).value());
  std::vector<endpoint_state> states(handles.size());
  REQUIRE(store.inspect(handles, states));
  for (std::size_t i = 0; i < handles.size(); ++i) {
    INFO(names[i]);
    CHECK(states[i].st == store.read_stamp(handles[i]).value());
    CHECK(states[i].records == store.served(handles[i]).value());
    CHECK(states[i].st.gen == (i % 5 == 4 ? generation_none : generation{1}));
    CHECK(states[i].records.size() == (i % 5 == 4 ? 0u : 2u));
  }
  // The generic path (read_stamp and served per endpoint) gives the same.
  std::vector<endpoint_state> generic(handles.size());
  for (std::size_t i = 0; i < handles.size(); ++i) {
    generic[i] = endpoint_state{store.read_stamp(handles[i]).value(), store.served(handles[i]).value()};
  }
  for (std::size_t i = 0; i < handles.size(); ++i) {
    CHECK(generic[i].st == states[i].st);
    CHECK(generic[i].records == states[i].records);
  }
  // A zone that cannot be read is an error for the whole call, never a guess.
  { std::ofstream(store.zone_file("b.test.")) << "$INCLUDE /etc/passwd\n"; }
  auto broken = store.inspect(handles, states);
  REQUIRE_FALSE(broken);
  CHECK(broken.error().code == errc::store_unavailable);
}
