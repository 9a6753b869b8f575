// The etcd store as a change_following_store against real etcd: the apply marks (P/apply-marks,
// "begun=B applied=A") read as never marked on a fresh prefix; begin_apply writes B under the
// fence and the caller's expected marks (conflict when they moved, fenced below the floor or
// without the holder key, nothing written either way, whether the floor key exists or not);
// finish_apply raises A (and B) idempotently, never lowers them, refuses a fenced token even when
// there is nothing to write, and follows marks moved by another store; the marks survive
// reopening; a corrupt marks value is refused naming the key; live_generations() is the effective
// live set (stamps below A count as A, plus A and B); and the etcd registry collects by the same
// rule, deciding in its transaction that the marks did not move since the live set was read.
#include <catch2/catch.hpp>

#include <planfence/etcd/lease_authority.hpp>
#include <planfence/etcd/registry.hpp>
#include <planfence/etcd/store.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "../support/store_fixtures.hpp"
#include "etcd_support.hpp"

namespace {

using namespace planfence;
using namespace std::chrono_literals;
using planfence_test::a_records;
using planfence_test::generation_plan;
using planfence_test::shared_etcd;
using planfence_test::unique_prefix;

bool mentions(const error& e, const std::string& text) { return e.message().find(text) != std::string::npos; }

/// The code a call was refused with, or "written" when it was not refused (so that a broken store
/// fails the CHECK instead of aborting on error() of a value).
template <class T>
std::string outcome(const result<T>& r) {
  return r ? std::string("written") : std::string(to_string(r.error().code));
}

etcd_store floor_store(const std::string& prefix) {
  return etcd_store::make(shared_etcd().config(), prefix, {}, etcd::fence_mode::floor_only).value();
}

/// The marks key as etcd holds it, read behind the store's back: (value, mod revision), or
/// ("", 0) when it does not exist.
std::pair<std::string, std::int64_t> raw_marks(const etcd_store& store) {
  etcd::client c{shared_etcd().config()};
  auto got = c.range(store.keys().marks());
  REQUIRE(got);
  if (got->kvs.empty()) return {"", 0};
  return {got->kvs[0].value, got->kvs[0].mod_revision};
}

/// The cluster's revision now: it moves with every write anywhere in the cluster, so an unchanged
/// revision proves that nothing was written (test cases of one process run one at a time).
std::int64_t cluster_revision() {
  etcd::client c{shared_etcd().config()};
  auto got = c.range("/");
  REQUIRE(got);
  return got->revision;
}

apply_marks marks(std::uint64_t begun, std::uint64_t applied, std::uint64_t version) {
  return apply_marks{generation{begun}, generation{applied}, version};
}

}  // namespace

TEST_CASE("etcd marks: a fresh prefix reads none, then begin_apply and finish_apply write one key each in one txn",
          "[etcd][marks]") {
  auto store = floor_store(unique_prefix());
  const std::int64_t before = cluster_revision();
  const apply_marks none = store.read_marks().value();
  CHECK(none == apply_marks{generation_none, generation_none, 0});
  CHECK(cluster_revision() == before);  // reading writes nothing
  CHECK(raw_marks(store).second == 0);

  const apply_marks begun = store.begin_apply(none, generation{3}, fence_token{10}).value();
  CHECK(begun.begun == generation{3});
  CHECK(begun.applied == generation_none);
  CHECK(cluster_revision() == before + 1);  // one transaction (which also created the floor key)
  CHECK(raw_marks(store) == std::pair<std::string, std::int64_t>{"begun=3 applied=0", static_cast<std::int64_t>(begun.version)});
  CHECK(store.fence_floor().value() == fence_token{0});  // created as pad(0) in the same step
  etcd::client c{shared_etcd().config()};
  CHECK(c.range(store.keys().fence_floor())->kvs.at(0).value == etcd::padded(0));
  CHECK(store.read_marks().value() == begun);

  const apply_marks finished = store.finish_apply(generation{3}, fence_token{10}).value();
  CHECK(finished == marks(3, 3, finished.version));
  CHECK(finished.version > begun.version);
  CHECK(cluster_revision() == before + 2);  // one transaction: the store knew the marks it wrote
  CHECK(raw_marks(store) == std::pair<std::string, std::int64_t>{"begun=3 applied=3", static_cast<std::int64_t>(finished.version)});
  CHECK(store.read_marks().value() == finished);

  // The next apply: B moves ahead of A, then A catches up.
  const apply_marks next = store.begin_apply(finished, generation{4}, fence_token{10}).value();
  CHECK(next == marks(4, 3, next.version));
  CHECK(store.finish_apply(generation{4}, fence_token{10}).value() == marks(4, 4, next.version + 1));
}

TEST_CASE("etcd marks: begin_apply with marks that moved is a conflict and writes nothing", "[etcd][marks]") {
  auto store = floor_store(unique_prefix());
  auto other = floor_store(store.keys().prefix);  // another enactor's store
  const apply_marks none = store.read_marks().value();
  const apply_marks mine = other.begin_apply(none, generation{2}, fence_token{10}).value();

  // Expected "never written", but the key exists now.
  std::int64_t before = cluster_revision();
  auto refused = store.begin_apply(none, generation{5}, fence_token{10});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::conflict);
  CHECK(mentions(refused.error(), store.keys().marks() + " moved"));
  CHECK(cluster_revision() == before);
  CHECK(raw_marks(store) == std::pair<std::string, std::int64_t>{"begun=2 applied=0", static_cast<std::int64_t>(mine.version)});

  // Expected marks read before another begin_apply moved them.
  const apply_marks seen = store.read_marks().value();
  CHECK(seen == mine);
  const apply_marks theirs = other.begin_apply(seen, generation{3}, fence_token{10}).value();
  before = cluster_revision();
  refused = store.begin_apply(seen, generation{4}, fence_token{10});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::conflict);
  CHECK(cluster_revision() == before);
  CHECK(raw_marks(store) == std::pair<std::string, std::int64_t>{"begun=3 applied=0", static_cast<std::int64_t>(theirs.version)});

  // The same target with the same stale expectation from the other side: a conflict too (only
  // the version decides, not the values).
  CHECK(outcome(other.begin_apply(seen, generation{4}, fence_token{10})) == "conflict");
  // Read again, decide again: it goes through.
  CHECK(store.begin_apply(store.read_marks().value(), generation{4}, fence_token{10}).value().begun == generation{4});
}

TEST_CASE("etcd marks: after raise_fence returned, begin_apply and finish_apply with a smaller token are fenced and write nothing",
          "[etcd][marks][S2]") {
  auto store = floor_store(unique_prefix());
  const apply_marks one = store.begin_apply(store.read_marks().value(), generation{2}, fence_token{10}).value();
  REQUIRE(store.raise_fence(fence_token{20}));
  const std::int64_t before = cluster_revision();
  const auto value_before = raw_marks(store);

  auto begun = store.begin_apply(one, generation{3}, fence_token{10});
  REQUIRE_FALSE(begun);
  CHECK(begun.error().code == errc::fenced);
  CHECK(mentions(begun.error(), store.keys().fence_floor() + " is 20, above begin_apply's token 10"));
  auto finished = store.finish_apply(generation{2}, fence_token{10});
  REQUIRE_FALSE(finished);
  CHECK(finished.error().code == errc::fenced);
  CHECK(mentions(finished.error(), store.keys().fence_floor() + " is 20, above finish_apply's token 10"));
  // Even with nothing to write (A is not below the target): still refused, still nothing written.
  CHECK(outcome(store.finish_apply(generation{2}, fence_token{10})) == "fenced");
  REQUIRE(store.finish_apply(generation{2}, fence_token{20}));
  const std::int64_t after_finish = cluster_revision();
  CHECK(outcome(store.finish_apply(generation{1}, fence_token{10})) == "fenced");
  CHECK(outcome(store.finish_apply(generation{2}, fence_token{19})) == "fenced");
  CHECK(cluster_revision() == after_finish);
  CHECK(after_finish == before + 1);  // only the finish with token 20 wrote
  CHECK(raw_marks(store).first == "begun=2 applied=2");
  CHECK(value_before.first == "begun=2 applied=0");

  // A stale token, and marks that moved too: fenced wins (the same round trip decides).
  CHECK(outcome(store.begin_apply(one, generation{3}, fence_token{10})) == "fenced");
  // The new holder's token passes.
  CHECK(store.begin_apply(store.read_marks().value(), generation{3}, fence_token{20}).value().begun == generation{3});
}

TEST_CASE("etcd marks: the floor key appearing or vanishing after the store opened is compared as commits compare it",
          "[etcd][marks][S2]") {
  const std::string prefix = unique_prefix();
  auto store = floor_store(prefix);  // opened with no floor key: it sends create_revision == 0 first
  auto other = floor_store(prefix);
  REQUIRE(other.raise_fence(fence_token{5}));  // creates the floor behind the store's back
  const apply_marks none = store.read_marks().value();
  // Below the floor the store did not know about: fenced, nothing written.
  const std::int64_t before = cluster_revision();
  auto low = store.begin_apply(none, generation{1}, fence_token{4});
  REQUIRE_FALSE(low);
  CHECK(low.error().code == errc::fenced);
  CHECK(cluster_revision() == before);
  // At the floor: the other form is sent, and it goes through.
  const apply_marks b = store.begin_apply(none, generation{1}, fence_token{5}).value();
  CHECK(b.begun == generation{1});

  // The floor key deleted by hand (a floor of 0 again): the store sends the missing form next.
  etcd::client c{shared_etcd().config()};
  REQUIRE(c.delete_range(store.keys().fence_floor()).value() == 1);
  const apply_marks a = store.finish_apply(generation{1}, fence_token{0}).value();
  CHECK(a == marks(1, 1, a.version));
  CHECK(c.range(store.keys().fence_floor())->kvs.at(0).value == etcd::padded(0));  // created again
}

TEST_CASE("etcd marks: in holder-key mode only the token of the live holder key writes the marks", "[etcd][marks][S2]") {
  steady_clock clock;
  const std::string prefix = unique_prefix();
  auto store = etcd_store::make(shared_etcd().config(), prefix).value();
  REQUIRE(store.mode() == etcd::fence_mode::holder_key);
  const apply_marks none = store.read_marks().value();
  auto refused = store.begin_apply(none, generation{1}, fence_token{1024});
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::fenced);
  CHECK(mentions(refused.error(), "holder-key mode: begin_apply's token 1024 is not the create revision of a live holder key"));
  CHECK(raw_marks(store).second == 0);

  auto authority = etcd::etcd_lease_authority<>::make(shared_etcd().config(), prefix, clock, {.holder_name = "az1"}).value();
  const auto held = authority.acquire(5s).value();
  const apply_marks b = store.begin_apply(none, generation{1}, held.fence).value();
  CHECK(b.begun == generation{1});
  CHECK(outcome(store.finish_apply(generation{1}, fence_token{held.fence.value() + 1})) == "fenced");
  CHECK(store.finish_apply(generation{1}, held.fence).value().applied == generation{1});
  REQUIRE(authority.release(held));
  CHECK(outcome(store.finish_apply(generation{1}, held.fence)) == "fenced");  // the holder key is gone
}

TEST_CASE("etcd marks: finish_apply is idempotent and only raises the marks", "[etcd][marks]") {
  auto store = floor_store(unique_prefix());
  const apply_marks five = store.begin_apply(store.read_marks().value(), generation{5}, fence_token{1}).value();
  const apply_marks done = store.finish_apply(generation{5}, fence_token{1}).value();
  CHECK(done == marks(5, 5, done.version));
  CHECK(done.version > five.version);

  // Again, and with an older target: the marks stay, and nothing is written.
  const std::int64_t before = cluster_revision();
  CHECK(store.finish_apply(generation{5}, fence_token{1}).value() == done);
  CHECK(store.finish_apply(generation{3}, fence_token{1}).value() == done);
  CHECK(cluster_revision() == before);
  CHECK(raw_marks(store).first == "begun=5 applied=5");

  // A target beyond B raises both.
  const apply_marks seven = store.finish_apply(generation{7}, fence_token{1}).value();
  CHECK(seven == marks(7, 7, seven.version));
  // B ahead of the target stays.
  const apply_marks nine = store.begin_apply(seven, generation{9}, fence_token{1}).value();
  const apply_marks eight = store.finish_apply(generation{8}, fence_token{1}).value();
  CHECK(eight == marks(9, 8, nine.version + 1));
  CHECK(raw_marks(store).first == "begun=9 applied=8");

  // Another store moved the marks since this one last saw them: the compare fails, the failure
  // branch tells the new marks, and the write goes again against them.
  auto other = floor_store(store.keys().prefix);
  const apply_marks twelve = other.begin_apply(other.read_marks().value(), generation{12}, fence_token{1}).value();
  const apply_marks ten = store.finish_apply(generation{10}, fence_token{1}).value();
  CHECK(ten == marks(12, 10, twelve.version + 1));
  // A store that never saw the marks reads them first; an older target then writes nothing.
  auto fresh = floor_store(store.keys().prefix);
  const std::int64_t quiet = cluster_revision();
  CHECK(fresh.finish_apply(generation{9}, fence_token{1}).value() == ten);
  CHECK(cluster_revision() == quiet);
  CHECK(fresh.finish_apply(generation{12}, fence_token{1}).value() == marks(12, 12, ten.version + 1));
}

TEST_CASE("etcd marks: the marks survive reopening the store", "[etcd][marks]") {
  const std::string prefix = unique_prefix();
  apply_marks kept{};
  {
    auto store = floor_store(prefix);
    REQUIRE(store.begin_apply(store.read_marks().value(), generation{6}, fence_token{3}));
    REQUIRE(store.finish_apply(generation{4}, fence_token{3}));
    kept = store.read_marks().value();
  }
  CHECK(kept == marks(6, 4, kept.version));
  auto reopened = etcd_store::open_uri("etcd://" + shared_etcd().client_address() + prefix + "?fence=floor",
                                       {.must_exist = true})
                      .value();
  CHECK(reopened.read_marks().value() == kept);
  // The reopened store continues from them: a begin against them goes through.
  CHECK(reopened.begin_apply(kept, generation{7}, fence_token{3}).value() == marks(7, 4, kept.version + 1));
}

TEST_CASE("etcd marks: a prefix holding only the marks key exists", "[etcd][marks]") {
  const std::string prefix = unique_prefix();
  etcd::client c{shared_etcd().config()};
  REQUIRE(c.put(etcd::layout{prefix}.marks(), "begun=1 applied=1"));
  auto store = etcd_store::open_uri("etcd://" + shared_etcd().client_address() + prefix, {.must_exist = true});
  REQUIRE(store);
  CHECK(store->read_marks().value().applied == generation{1});
}

TEST_CASE("etcd marks: a corrupt marks value is refused with an error naming the key", "[etcd][marks][errors]") {
  auto store = floor_store(unique_prefix());
  const std::string key = store.keys().marks();
  const record_set one = a_records({"192.0.2.1"});
  const auto www = store.resolve("www.example.test.").value();
  REQUIRE(store.commit(www, stamp{}, stamp{generation{1}, fence_token{1}, 0}, one));
  etcd::client c{shared_etcd().config()};
  const std::vector<std::pair<std::string, std::string>> corrupt = {
      {"banana", "not \"begun=B applied=A\""},
      {"", "not \"begun=B applied=A\""},
      {"begun=3 applied=5", "applied above begun"},
      {"begun=-1 applied=0", "in decimal"},
      {"begun=3 applied=2 ", "in decimal"},
      {"begun=3  applied=2", "not \"begun=B applied=A\""},
      {"begun=1099511627776 applied=0", "begun beyond generation_max 1099511627775"},
      {"begun=5 applied=99999999999999999999999", "applied beyond generation_max"},
      {"begun=0x5 applied=0", "in decimal"},
  };
  for (const auto& [value, why] : corrupt) {
    INFO("value '" << value << "'");
    REQUIRE(c.put(key, value));
    auto read = store.read_marks();
    REQUIRE_FALSE(read);
    CHECK(read.error().code == errc::parse_error);
    CHECK(mentions(read.error(), "corrupt apply marks: " + key + " holds '" + value + "'"));
    CHECK(mentions(read.error(), why));
    CHECK(mentions(read.error(), "repair it with etcdctl"));
    // Every reader of the marks refuses it the same way: nothing is decided on a guess.
    auto live = store.live_generations();
    REQUIRE_FALSE(live);
    CHECK(live.error().code == errc::parse_error);
    CHECK(mentions(live.error(), key));
    auto finished = store.finish_apply(generation{2}, fence_token{1});
    REQUIRE_FALSE(finished);
    CHECK(finished.error().code == errc::parse_error);
    CHECK(mentions(finished.error(), key));
    auto begun = store.begin_apply(apply_marks{}, generation{2}, fence_token{1});
    REQUIRE_FALSE(begun);
    CHECK(begun.error().code == errc::parse_error);
    CHECK(mentions(begun.error(), key));
    CHECK(c.range(key)->kvs.at(0).value == value);  // never overwritten
  }
  // Repaired by hand: read again.
  REQUIRE(c.put(key, "begun=4 applied=2"));
  CHECK(store.read_marks().value().begun == generation{4});
}

TEST_CASE("etcd marks: live_generations is the effective live set (stamps below A count as A, plus A and B)",
          "[etcd][marks][S3]") {
  auto store = floor_store(unique_prefix());
  const record_set one = a_records({"192.0.2.1"});
  const auto e1 = store.resolve("e1.example.test.").value();
  const auto e2 = store.resolve("e2.example.test.").value();
  const auto e3 = store.resolve("e3.example.test.").value();
  REQUIRE(store.commit(e1, stamp{}, stamp{generation{2}, fence_token{1}, 0}, one));
  REQUIRE(store.commit(e2, stamp{}, stamp{generation{6}, fence_token{1}, 0}, one));
  REQUIRE(store.commit(e3, stamp{}, stamp{generation{4}, fence_token{1}, 0}, one));
  // Never marked: the stamps, as before.
  CHECK(store.live_generations().value() == std::vector<generation>{generation{2}, generation{4}, generation{6}});

  // A = 4, B = 7: e1 (stamped 2) serves plan 4's records; 7 has begun.
  REQUIRE(store.begin_apply(store.read_marks().value(), generation{4}, fence_token{1}));
  REQUIRE(store.finish_apply(generation{4}, fence_token{1}));
  REQUIRE(store.begin_apply(store.read_marks().value(), generation{7}, fence_token{1}));
  CHECK(store.live_generations().value() == std::vector<generation>{generation{4}, generation{6}, generation{7}});

  // read_all carries the marks of the same revision, and snapshot::serves the same rule.
  const auto all = store.read_all().value();
  CHECK(all.marks == store.read_marks().value());
  CHECK(all.revision >= static_cast<std::int64_t>(all.marks.version));
  CHECK_FALSE(all.serves(generation{2}));
  CHECK(all.serves(generation{4}));
  CHECK_FALSE(all.serves(generation{5}));
  CHECK(all.serves(generation{6}));
  CHECK(all.serves(generation{7}));
  CHECK_FALSE(all.serves(generation_none));

  // The stamps themselves are what the endpoints carry: read_stamp, read_stamps and inspect are
  // not effective generations.
  CHECK(store.read_stamp(e1).value().gen == generation{2});
  const std::vector<endpoint_handle> handles = {e1, e2, e3};
  std::vector<stamp> stamps(3);
  REQUIRE(store.read_stamps(handles, stamps));
  CHECK(stamps[0].gen == generation{2});
  std::vector<endpoint_state> states(3);
  REQUIRE(store.inspect(handles, states));
  CHECK(states[0].st.gen == generation{2});

  // A passes every stamp: only A and B are left.
  REQUIRE(store.finish_apply(generation{7}, fence_token{1}));
  CHECK(store.live_generations().value() == std::vector<generation>{generation{7}});
}

TEST_CASE("etcd marks: registry collection keeps A, B and effective-live plans, and collects a plan only old stamps name",
          "[etcd][marks][registry][S3]") {
  const std::string prefix = unique_prefix();
  const std::vector<std::string> names = {"www.example.test.", "db.example.test."};
  auto history = etcd::etcd_plan_registry::make(shared_etcd().config(), prefix).value();
  auto store = etcd_store::make(shared_etcd().config(), prefix, names, etcd::fence_mode::floor_only).value();
  for (std::uint64_t g = 1; g <= 8; ++g) REQUIRE(history.publish(generation_plan(g, names)));
  const auto www = store.resolve(names[0]).value();
  const auto db = store.resolve(names[1]).value();
  // www last written by plan 2 (below A: it serves plan 4's records), db by plan 5 (above A).
  REQUIRE(store.commit(www, stamp{}, stamp{generation{2}, fence_token{1}, 0}, history.lookup(generation{2})->find(names[0])->records));
  REQUIRE(store.commit(db, stamp{}, stamp{generation{5}, fence_token{1}, 0}, history.lookup(generation{5})->find(names[1])->records));
  REQUIRE(store.begin_apply(store.read_marks().value(), generation{4}, fence_token{1}));
  REQUIRE(store.finish_apply(generation{4}, fence_token{1}));  // A = 4
  REQUIRE(store.begin_apply(store.read_marks().value(), generation{6}, fence_token{1}));  // B = 6

  auto report = history.collect({.keep_newest = 1}, 0, store);
  REQUIRE(report);
  // 2 is named only by www's stamp, which is below A; 1, 3 and 7 by nothing.
  CHECK(report->collected == std::vector<generation>{generation{1}, generation{2}, generation{3}, generation{7}});
  CHECK(report->protected_live == std::vector<generation>{generation{4}, generation{5}, generation{6}});
  CHECK(history.retained().value() == std::vector<generation>{generation{4}, generation{5}, generation{6}, generation{8}});
}

namespace {

/// Collection while an enactor begins an apply of the plan about to be collected, between the
/// collector's live-set read and its delete (B moves to that plan). Returns what was collected.
template <class Registry>
std::vector<generation> collect_while_an_apply_begins() {
  const std::string prefix = unique_prefix();
  const std::vector<std::string> names = {"www.example.test."};
  auto history = Registry::make(shared_etcd().config(), prefix).value();
  auto store = etcd_store::make(shared_etcd().config(), prefix, names, etcd::fence_mode::floor_only).value();
  for (std::uint64_t g = 1; g <= 4; ++g) REQUIRE(history.publish(generation_plan(g, names)));
  const auto www = store.resolve(names[0]).value();
  REQUIRE(store.commit(www, stamp{}, stamp{generation{1}, fence_token{1}, 0}, history.lookup(generation{1})->find(names[0])->records));
  bool begun = false;
  history.set_collect_hook([&](generation gen) {
    if (gen != generation{3} || begun) return;
    begun = true;  // B := 3 right now: plan 3 becomes live
    REQUIRE(store.begin_apply(store.read_marks().value(), generation{3}, fence_token{1}));
  });
  auto report = history.collect({.keep_newest = 1}, 0, store);
  REQUIRE(report);
  REQUIRE(begun);
  return report->collected.to_vector();
}

}  // namespace

TEST_CASE("etcd marks: marks moving between the registry's live-set read and its delete protect the plan (S3)",
          "[etcd][marks][registry][S3]") {
  // The delete transaction compares the marks' mod revision with the live set's revision: a
  // begin_apply after the read fails it, the live set is read again, and plan 3 (now B) stays.
  // The broken registry (no live check in the transaction) deletes it: the test has teeth.
  const auto collected = collect_while_an_apply_begins<etcd::etcd_plan_registry>();
  CHECK(collected == std::vector<generation>{generation{2}});  // 1 is live (www's stamp), 3 became B
  const auto broken = collect_while_an_apply_begins<etcd::basic_etcd_plan_registry<collection_check::ignore_live>>();
  CHECK(std::find(broken.begin(), broken.end(), generation{3}) != broken.end());
}
