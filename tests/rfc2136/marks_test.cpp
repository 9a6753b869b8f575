// Proves rfc2136_store as a change_following_store (store.hpp) on each real server installed
// here: Knot, BIND and PowerDNS (servers.hpp). The apply marks "begun=B applied=A" are one TXT
// record at `_apply._planfence.<home zone>` (dns/zone_layout.hpp), read back with kdig as well as
// through the store. begin_apply is one UPDATE conditional on the floor and on the marks: stale
// expected marks are a conflict and write nothing; marks changed behind the store's back with
// knsupdate make the *server* refuse the UPDATE (one message sent, the other writer's text kept;
// sent without prerequisites the same UPDATE lands, so it is the prerequisite that refused it);
// a token below the floor is fenced, without sending when the store knows the floor and by the
// server's floor prerequisite when another store raised it, for begin_apply and finish_apply
// alike, once raise_fence has returned. finish_apply takes the max, is idempotent (no UPDATE when
// nothing changes) and survives writers racing it. The live set maps stamps below A onto A and
// holds A and B. On knotd also: malformed, out-of-range and doubled marks are parse errors naming
// the owner; the marks owner is never an endpoint, and commits leave the marks alone;
// with two zones on one server, each store's marks are in its own zone.
#include <catch2/catch.hpp>

#include <atomic>
#include <sstream>
#include <thread>

#include "refusal_checks.hpp"
#include "servers.hpp"

using namespace planfence;
using planfence_rfc2136_test::command_output;
using planfence_rfc2136_test::contains;
using planfence_rfc2136_test::txt_at;

namespace {

const std::string zone = "example.test.";
const std::string owner = dns::marks_owner(zone);  // "_apply._planfence.example.test."

apply_marks marks(std::uint64_t begun, std::uint64_t applied) { return apply_marks{generation{begun}, generation{applied}, 1}; }
stamp at(std::uint64_t gen, std::uint64_t fence) { return stamp{generation{gen}, fence_token{fence}, 0}; }

rfc2136_store open(const std::string& uri, const std::vector<std::string>& names = {"www.example.test."}) {
  auto store = rfc2136_store::open_uri(uri, names);
  if (!store) FAIL("rfc2136_store: " << store.error().message());
  return std::move(*store);
}

/// Replaces the TXT RRset at `name` by `texts` (none: deletes it), with knsupdate: another writer.
template <class Server>
void write_txt(const Server& server, const std::string& name, const std::vector<std::string>& texts) {
  std::string script = "server 127.0.0.1 " + std::to_string(server.port()) + "\nzone " + zone + "\nupdate delete " +
                       name + " TXT\n";
  for (const std::string& text : texts) script += "update add " + name + " 0 TXT \"" + text + "\"\n";
  script += "send\nanswer\n";
  const std::string out = command_output("printf '%s' '" + script + "' | knsupdate -y " + server.key_argument() + " 2>&1");
  INFO(out);
  REQUIRE(contains(out, "NOERROR"));
}

/// The error of a refused write of the marks, after checking its code.
std::string refused(const result<apply_marks>& r, errc code) {
  if (r) FAIL("written: begun " << r->begun.value() << " applied " << r->applied.value());
  INFO(r.error().message());
  CHECK(r.error().code == code);
  return r.error().message();
}

/// The marks a read or a write returned, after checking it succeeded.
apply_marks written(const result<apply_marks>& r) {
  if (!r) FAIL(r.error().message());
  return *r;
}

/// The live set, after checking it was read.
std::vector<generation> live_set(const rfc2136_store& store) {
  auto live = store.live_generations();
  if (!live) FAIL(live.error().message());
  return *live;
}

std::vector<generation> gens(std::initializer_list<std::uint64_t> values) {
  std::vector<generation> out;
  for (const std::uint64_t v : values) out.push_back(generation{v});
  return out;
}

}  // namespace

TEMPLATE_LIST_TEST_CASE("rfc2136 marks: a fresh zone reads none, begin then finish leave one TXT with the marks",
                        "[marks][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  auto store = open(server.uri());
  CHECK(store.marks_name() == owner);
  CHECK(written(store.read_marks()) == apply_marks{});
  CHECK(txt_at(server, owner).empty());

  const std::uint64_t sent = store.updates_sent();
  auto begun = store.begin_apply(apply_marks{}, generation{3}, fence_token{1});
  REQUIRE(begun);
  CHECK(*begun == marks(3, 0));
  CHECK(store.updates_sent() - sent == 1);
  CHECK(written(store.read_marks()) == marks(3, 0));
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=3 applied=0"});

  auto finished = store.finish_apply(generation{3}, fence_token{1});
  REQUIRE(finished);
  CHECK(*finished == marks(3, 3));
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=3 applied=3"});
  // Another store on the zone reads what this one wrote; the next apply begins from it.
  auto other = open(server.uri());
  CHECK(written(other.read_marks()) == marks(3, 3));
  auto next = other.begin_apply(*finished, generation{5}, fence_token{1});
  REQUIRE(next);
  CHECK(*next == marks(5, 3));
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=5 applied=3"});
  CHECK(written(store.read_marks()) == marks(5, 3));
}

TEMPLATE_LIST_TEST_CASE("rfc2136 marks: begin_apply with stale expected marks is a conflict and writes nothing",
                        "[marks][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  auto store = open(server.uri());
  auto other = open(server.uri());
  const apply_marks now = written(store.begin_apply(apply_marks{}, generation{2}, fence_token{1}));
  REQUIRE(now == marks(2, 0));

  // Each of these is what `other` might believe: never written, an older B, the right B with
  // another A. Each goes to the server (one UPDATE), which refuses it.
  for (const apply_marks& stale : {apply_marks{}, marks(1, 0), marks(1, 1), marks(2, 1)}) {
    INFO("expected " << dns::format_marks(stale));
    const std::uint64_t sent = other.updates_sent();
    const std::string why = refused(other.begin_apply(stale, generation{4}, fence_token{1}), errc::conflict);
    CHECK(other.updates_sent() - sent == 1);
    CHECK(contains(why, owner));
    CHECK(contains(why, "\"begun=2 applied=0\""));
    CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=2 applied=0"});
    CHECK(written(store.read_marks()) == now);
  }
  // From the marks as they are, it begins.
  CHECK(written(other.begin_apply(now, generation{4}, fence_token{1})) == marks(4, 0));
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=4 applied=0"});
}

TEMPLATE_LIST_TEST_CASE("rfc2136 marks: a token below the fence floor is fenced and writes nothing once raise_fence returned",
                        "[marks][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  auto store = open(server.uri());
  // Stores that read the floor (none) at open and not since: they pin "no floor".
  auto late_begin = open(server.uri());
  auto late_finish = open(server.uri());
  auto late_nothing = open(server.uri());
  auto late_both = open(server.uri());
  auto raiser = open(server.uri());
  REQUIRE(store.begin_apply(apply_marks{}, generation{2}, fence_token{3}));
  const apply_marks m = written(store.finish_apply(generation{2}, fence_token{3}));
  REQUIRE(m == marks(2, 2));

  // A newer holder raises the floor to 5 through another store.
  REQUIRE(raiser.raise_fence(fence_token{5}));

  // Sent against the old floor: the server's floor prerequisite refuses it; fenced.
  std::uint64_t sent = late_begin.updates_sent();
  std::string why = refused(late_begin.begin_apply(m, generation{3}, fence_token{4}), errc::fenced);
  CHECK(late_begin.updates_sent() - sent == 1);
  CHECK(contains(why, "floor of example.test. is 5"));
  sent = late_finish.updates_sent();
  why = refused(late_finish.finish_apply(generation{3}, fence_token{4}), errc::fenced);
  CHECK(late_finish.updates_sent() - sent == 1);
  // A finish that would change nothing still says fenced (it reads the floor instead of writing).
  sent = late_nothing.updates_sent();
  refused(late_nothing.finish_apply(generation{2}, fence_token{4}), errc::fenced);
  CHECK(late_nothing.updates_sent() - sent == 0);
  // The floor above the token and the marks moved too: fenced first (the holder must stop).
  why = refused(late_both.begin_apply(marks(1, 1), generation{3}, fence_token{4}), errc::fenced);
  CHECK(contains(why, "the server refused the prerequisite"));
  // Now that they know the floor, nothing is even sent.
  sent = late_begin.updates_sent();
  why = refused(late_begin.begin_apply(m, generation{3}, fence_token{4}), errc::fenced);
  CHECK(contains(why, "nothing sent"));
  refused(late_begin.finish_apply(generation{3}, fence_token{4}), errc::fenced);
  CHECK(late_begin.updates_sent() - sent == 0);
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=2 applied=2"});

  // The new holder's token (at the floor), from a store that still pins the old floor: refused
  // once by the server, the floor read again (not above the token, the marks as expected), sent
  // again: written.
  sent = store.updates_sent();
  CHECK(written(store.begin_apply(m, generation{3}, fence_token{5})) == marks(3, 2));
  CHECK(store.updates_sent() - sent == 2);
  CHECK(written(store.finish_apply(generation{3}, fence_token{5})) == marks(3, 3));
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=3 applied=3"});
}

TEMPLATE_LIST_TEST_CASE("rfc2136 marks: marks changed behind the store's back make the server refuse begin_apply",
                        "[marks][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  auto store = open(server.uri());
  const apply_marks m = written(store.begin_apply(apply_marks{}, generation{2}, fence_token{1}));

  // Another writer (knsupdate) changes the marks; the store still believes "begun=2 applied=0".
  write_txt(server, owner, {"begun=4 applied=2"});
  std::uint64_t sent = store.updates_sent();
  std::string why = refused(store.begin_apply(m, generation{3}, fence_token{1}), errc::conflict);
  CHECK(store.updates_sent() - sent == 1);  // sent: the server refused it
  CHECK(contains(why, "the server refused the prerequisite"));
  CHECK(contains(why, "\"begun=4 applied=2\""));
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=4 applied=2"});

  // Written where the store believes there are none: "RRset does not exist" fails at the server.
  write_txt(server, owner, {"begun=7 applied=7"});
  sent = store.updates_sent();
  refused(store.begin_apply(apply_marks{}, generation{8}, fence_token{1}), errc::conflict);
  CHECK(store.updates_sent() - sent == 1);
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=7 applied=7"});

  // The same UPDATE without prerequisites (as popular tools send them) lands over the other
  // writer's marks: it was the server's prerequisite that refused it above.
  auto options = rfc2136_store::parse_uri(server.uri()).value();
  options.broken_omit_prerequisites = true;
  auto unguarded = rfc2136_store::open(options, {"www.example.test."}).value();
  REQUIRE(unguarded.begin_apply(m, generation{3}, fence_token{1}));
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=3 applied=0"});
}

TEMPLATE_LIST_TEST_CASE("rfc2136 marks: finish_apply takes the max, is idempotent and survives racing writers",
                        "[marks][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  auto store = open(server.uri());
  REQUIRE(store.begin_apply(apply_marks{}, generation{5}, fence_token{1}));
  std::uint64_t sent = store.updates_sent();
  CHECK(written(store.finish_apply(generation{5}, fence_token{1})) == marks(5, 5));
  CHECK(store.updates_sent() - sent == 1);
  // Again, and older: nothing changes, nothing is sent.
  sent = store.updates_sent();
  CHECK(written(store.finish_apply(generation{5}, fence_token{1})) == marks(5, 5));
  CHECK(written(store.finish_apply(generation{3}, fence_token{1})) == marks(5, 5));
  CHECK(store.updates_sent() - sent == 0);
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=5 applied=5"});
  // Newer than B: both rise.
  CHECK(written(store.finish_apply(generation{8}, fence_token{1})) == marks(8, 8));
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=8 applied=8"});
  // B above A stays; A rises to the target.
  write_txt(server, owner, {"begun=12 applied=8"});
  CHECK(written(store.finish_apply(generation{10}, fence_token{1})) == marks(12, 10));
  CHECK(txt_at(server, owner) == std::vector<std::string>{"begun=12 applied=10"});

  // Writers racing: each store finishes its own targets while the others write the marks under
  // it; every call succeeds (a refused UPDATE is read again and sent again) and the marks end at
  // the largest target.
  constexpr int writers = 3;
  constexpr int per_writer = 5;
  std::vector<rfc2136_store> stores;
  for (int w = 0; w < writers; ++w) stores.push_back(open(server.uri()));
  std::atomic<int> failures{0};
  std::atomic<bool> go{false};
  std::vector<std::string> errors(writers);
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      while (!go.load()) std::this_thread::yield();
      for (int k = 0; k < per_writer; ++k) {
        const generation target{static_cast<std::uint64_t>(13 + k * writers + w)};
        auto done = stores[static_cast<std::size_t>(w)].finish_apply(target, fence_token{1});
        if (!done) {
          errors[static_cast<std::size_t>(w)] = done.error().message();
          ++failures;
        } else if (done->applied < target || done->begun < done->applied) {
          errors[static_cast<std::size_t>(w)] = "finish_apply returned marks below its target";
          ++failures;
        }
      }
    });
  }
  go = true;
  for (std::thread& t : threads) t.join();
  std::string said;
  for (const std::string& e : errors) said += e.empty() ? "" : e + "\n";
  INFO(said);
  CHECK(failures.load() == 0);
  const std::uint64_t last = 13 + per_writer * writers - 1;
  CHECK(written(store.read_marks()) == marks(last, last));
  std::uint64_t updates = 0;
  for (const rfc2136_store& s : stores) updates += s.updates_sent();
  UNSCOPED_INFO(TestType::name << ": " << updates << " UPDATEs for " << writers * per_writer << " finish_apply calls");
}

TEMPLATE_LIST_TEST_CASE("rfc2136 marks: the live set maps stamps below A onto A and holds A and B",
                        "[marks][knotd][bind][pdns]", planfence_test::rfc2136_targets) {
  TestType server;
  INFO(TestType::name);
  auto store = open(server.uri(), {"e0.example.test.", "e1.example.test.", "e2.example.test.", "e3.example.test."});
  const auto records = planfence_test::a_records({"192.0.2.1"});
  REQUIRE(store.commit(endpoint_handle{0}, stamp{}, at(1, 1), records));
  REQUIRE(store.commit(endpoint_handle{1}, stamp{}, at(2, 1), records));
  REQUIRE(store.commit(endpoint_handle{2}, stamp{}, at(4, 1), records));  // e3 never written
  CHECK(live_set(store) == gens({1, 2, 4}));
  // A = 3 (e0 and e1 were left unwritten by the apply of 3: they serve plan 3's records), B = 5.
  REQUIRE(store.begin_apply(apply_marks{}, generation{3}, fence_token{1}));
  REQUIRE(store.finish_apply(generation{3}, fence_token{1}));
  REQUIRE(store.begin_apply(marks(3, 3), generation{5}, fence_token{1}));
  CHECK(live_set(store) == gens({3, 4, 5}));
  // Marks it cannot read: no live set (the registry then collects nothing).
  write_txt(server, owner, {"begun=5 applied=x"});
  auto live = store.live_generations();
  REQUIRE(!live);
  CHECK(live.error().code == errc::store_unavailable);
  CHECK(contains(live.error().message(), owner));
}

TEST_CASE("rfc2136 marks: malformed, out-of-range or doubled marks are parse errors naming the owner",
          "[marks][knotd]") {
  auto knot = planfence_test::start_knot();
  auto store = open(knot.uri(zone));
  struct bad_marks {
    std::vector<std::string> texts;
    std::string says;
  };
  for (const bad_marks& bad : std::vector<bad_marks>{
           {{"begun=x applied=0"}, "malformed apply marks"},
           {{"applied=1 begun=1"}, "malformed apply marks"},
           {{"begun=1099511627776 applied=0"}, "1 to 1099511627775"},  // 2^40
           {{"begun=5 applied=18446744073709551616"}, "1 to 1099511627775"},
           {{"begun=1 applied=2"}, "applied is above begun"},
           {{"begun=2 applied=1", "begun=3 applied=1"}, "several records"}}) {
    write_txt(knot, owner, bad.texts);
    INFO(bad.texts.front());
    auto read = store.read_marks();
    REQUIRE(!read);
    INFO(read.error().message());
    CHECK(read.error().code == errc::parse_error);
    CHECK(contains(read.error().message(), owner));
    CHECK(contains(read.error().message(), bad.says));
    // Never taken as marks by a write either: finish reads them, begin reads them after the
    // server refused its prerequisite.
    refused(store.finish_apply(generation{9}, fence_token{1}), errc::parse_error);
    refused(store.begin_apply(apply_marks{}, generation{9}, fence_token{1}), errc::parse_error);
    CHECK(txt_at(knot, owner).size() == bad.texts.size());
  }
  // The largest generation is marks like any other.
  write_txt(knot, owner, {"begun=1099511627775 applied=0"});
  CHECK(written(store.read_marks()) == apply_marks{generation_max, generation_none, 1});
}

TEST_CASE("rfc2136 marks: the marks owner is never an endpoint, and commits leave the marks alone", "[marks][knotd]") {
  auto knot = planfence_test::start_knot();
  auto refused_open = rfc2136_store::open_uri(knot.uri(zone), {"www.example.test.", owner});
  REQUIRE(!refused_open);
  CHECK(refused_open.error().code == errc::invalid_name);
  CHECK(contains(refused_open.error().message(), "reserved"));

  auto store = open(knot.uri(zone), {"www.example.test.", "db.example.test."});
  REQUIRE(store.begin_apply(apply_marks{}, generation{1}, fence_token{1}));
  CHECK(store.endpoint_names().value() == std::vector<std::string>{"www.example.test.", "db.example.test."});
  CHECK(live_set(store) == gens({1}));  // B only: no endpoint stamped
  // A batch replacing every RRset of its endpoints (TXT included) leaves the marks as they are.
  const auto text = record_set::make({make_record(record_type::txt, 60, "\"hello\"").value()}).value();
  std::vector<commit_item> items = {{endpoint_handle{0}, stamp{}, at(2, 1), &text}, {endpoint_handle{1}, stamp{}, at(2, 1), &text}};
  REQUIRE(store.commit_batch(items));
  CHECK(items[0].outcome == commit_outcome::written);
  CHECK(items[1].outcome == commit_outcome::written);
  CHECK(txt_at(knot, "www.example.test.") == std::vector<std::string>{"hello"});
  CHECK(txt_at(knot, owner) == std::vector<std::string>{"begun=1 applied=0"});
  CHECK(written(store.read_marks()) == marks(1, 0));
  CHECK(live_set(store) == gens({1, 2}));
}

TEST_CASE("rfc2136 marks: two zones on one server each keep their own store's marks", "[marks][knotd]") {
  auto knot = planfence_example::knot_server::start({{"example.test.", ""}, {"other.test.", ""}});
  REQUIRE(knot);
  auto here = open(knot->uri("example.test."), {"www.example.test."});
  auto there = open(knot->uri("other.test."), {"www.other.test."});
  CHECK(there.marks_name() == "_apply._planfence.other.test.");
  REQUIRE(there.begin_apply(apply_marks{}, generation{4}, fence_token{1}));
  CHECK(txt_at(*knot, "_apply._planfence.other.test.") == std::vector<std::string>{"begun=4 applied=0"});
  CHECK(txt_at(*knot, owner).empty());
  CHECK(written(here.read_marks()) == apply_marks{});
  REQUIRE(here.begin_apply(apply_marks{}, generation{2}, fence_token{1}));
  CHECK(written(there.read_marks()) == marks(4, 0));
  CHECK(txt_at(*knot, owner) == std::vector<std::string>{"begun=2 applied=0"});
}
