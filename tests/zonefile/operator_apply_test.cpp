// tests/zonefile/operator_apply_test.cpp: an operator's apply (recovery.hpp apply_plan, what
// `planfence-ctl apply` and `override` run) on a zone-file store opened by URI (any_store), and
// any_store's batch with the apply marks.
//
// What it proves: apply_plan writes a zone of 1,000 endpoints in ONE rewrite of the zone, with
// the begun and applied marks in it (any_store forwards the zone-file store's marks_batch_store,
// and apply_plan sends apply_plan_batch_max endpoints per call), where it used to take one rewrite
// per 64 endpoints plus one for each mark; and that for a store that does not fold the marks,
// any_store's commit_batch(items, marks) is exactly begin_apply, commit_batch, finish_apply
// (commit_batch_then_marks): a refused begin writes nothing, a finish is declined while an item is
// undecided.
#include <catch2/catch.hpp>

#include <planfence/history.hpp>
#include <planfence/planfence.hpp>
#include <planfence/recovery.hpp>
#include <planfence/store/any_store.hpp>
#include <planfence/zonefile/store.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "zonefile_fixture.hpp"

namespace {

using namespace planfence;
using planfence_zonefile_test::serial_of;

}  // namespace

TEST_CASE("apply_plan on a zone file through any_store: 1000 endpoints in one rewrite with the marks", "[zonefile][apply]") {
  planfence_zonefile_test::temp_directory zones;
  planfence_zonefile_test::temp_directory histories;
  const std::filesystem::path file = planfence_zonefile_test::open_with_zone(zones.path()).zone_file("example.test.");
  auto history = durable_history::open(histories.path()).value();
  std::map<std::string, std::vector<std::string>> endpoints;
  for (int i = 0; i < 1000; ++i) endpoints["ep" + std::to_string(i) + ".example.test."] = {"10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256)};
  REQUIRE(history->publish(planfence_test::make_plan(7, endpoints)).has_value());

  any_store store(std::make_unique<zonefile_store>(zonefile_store::open(zones.path()).value()), "zonefile://" + zones.path().string());
  REQUIRE(store.raise_fence(fence_token{5}).has_value());
  const std::uint32_t before = serial_of(file);
  const apply_report report = apply_plan(store, *history, generation{7}, fence_token{5}).value();
  CHECK(report.complete);
  CHECK(report.endpoints.size() == 1000);
  // One rewrite: the begun mark, the 1,000 endpoints and the applied mark together (it was 16
  // batches of 64 and a rewrite for each mark: 18).
  CHECK(serial_of(file) - before == 1);
  const apply_marks marks = store.read_marks().value();
  CHECK(marks.begun == generation{7});
  CHECK(marks.applied == generation{7});
  CHECK(diff_store(store, **history->pin(generation{7})).value().agrees());
}

namespace {

/// The memory store without its own marks batch: what any_store does for the RFC 2136 and etcd
/// stores, which write their marks on their own.
using history_store = basic_memory_store<durable_history>;
static_assert(change_following_store<history_store> && !marks_batch_store<history_store>);

struct marks_world {
  planfence_zonefile_test::temp_directory dir;
  std::unique_ptr<durable_history> history = durable_history::open(dir.path()).value();
  std::vector<std::string> names{"a.example.", "b.example."};
  any_store store;
  marks_world()
      : store([&] {
          REQUIRE(history->publish(planfence_test::make_plan(3, {{"a.example.", {"192.0.2.1"}}, {"b.example.", {"192.0.2.2"}}}))
                      .has_value());
          return any_store(std::make_unique<history_store>(history_store::make(*history, names).value()), "memory");
        }()) {}
  /// Items for both endpoints at generation 3, fence 1, as read now.
  std::vector<commit_item> items(const plan& p) {
    std::vector<commit_item> out;
    for (const std::string& n : names) {
      const endpoint_handle h = store.resolve(n).value();
      out.push_back(commit_item{h, store.read_stamp(h).value(), stamp{generation{3}, fence_token{1}, 0}, &p.find(n)->records});
    }
    return out;
  }
};

}  // namespace

TEST_CASE("any_store commit_batch with marks on a store that writes marks on their own", "[zonefile][apply][any_store]") {
  marks_world w;
  const pinned_plan p = w.history->pin(generation{3}).value();
  REQUIRE(w.store.raise_fence(fence_token{1}).has_value());
  const apply_marks none = w.store.read_marks().value();

  SECTION("begin, items and finish: the marks end at the target, every item written") {
    auto items = w.items(*p);
    batch_marks m{&none, true, generation{3}, fence_token{1}};
    REQUIRE(w.store.commit_batch(items, m).has_value());
    CHECK(m.began);
    CHECK(m.finished);
    CHECK_FALSE(m.begin_refused);
    CHECK(m.marks.begun == generation{3});
    CHECK(m.marks.applied == generation{3});
    CHECK(w.store.read_marks().value().applied == generation{3});
    for (const auto& item : items) CHECK(item.outcome == commit_outcome::written);
  }
  SECTION("a begin refused (the marks moved) writes nothing") {
    const apply_marks wrong{generation{2}, generation{1}, 0};
    auto items = w.items(*p);
    batch_marks m{&wrong, true, generation{3}, fence_token{1}};
    auto done = w.store.commit_batch(items, m);
    REQUIRE_FALSE(done.has_value());
    CHECK(done.error().code == errc::conflict);
    CHECK(m.begin_refused);
    CHECK_FALSE(m.began);
    CHECK(w.store.read_marks().value() == none);
    for (const auto& item : items) CHECK(item.outcome == commit_outcome::pending);
    for (const std::string& n : w.names) CHECK(w.store.read_stamp(w.store.resolve(n).value()).value().gen == generation_none);
  }
  SECTION("a begin with a fenced token (a newer holder raised the floor) writes nothing") {
    REQUIRE(w.store.raise_fence(fence_token{5}).has_value());
    auto items = w.items(*p);
    batch_marks m{&none, true, generation{3}, fence_token{1}};
    auto done = w.store.commit_batch(items, m);
    REQUIRE_FALSE(done.has_value());
    CHECK(done.error().code == errc::fenced);
    CHECK(m.begin_refused);
    CHECK_FALSE(m.began);
    CHECK_FALSE(m.finished);
    CHECK(w.store.read_marks().value() == none);
    for (const auto& item : items) CHECK(item.outcome == commit_outcome::pending);
    for (const std::string& n : w.names) CHECK(w.store.read_stamp(w.store.resolve(n).value()).value().gen == generation_none);
  }
  SECTION("a finish is declined while an item is undecided (a conflict), and the begin stays") {
    auto items = w.items(*p);
    items[1].expected = stamp{generation{1}, fence_token{1}, 0};  // not what the store holds
    batch_marks m{&none, true, generation{3}, fence_token{1}};
    REQUIRE(w.store.commit_batch(items, m).has_value());
    CHECK(m.began);
    CHECK_FALSE(m.finished);
    CHECK(items[0].outcome == commit_outcome::written);
    CHECK(items[1].outcome == commit_outcome::conflict);
    const apply_marks now = w.store.read_marks().value();
    CHECK(now.begun == generation{3});
    CHECK(now.applied == generation_none);
  }
}
