// The zone-file store's batches with apply marks (marks_batch_store, include/planfence/store.hpp):
// commit_batch(items, marks) writes a requested begin in the home zone's rewrite, before any item,
// and a requested finish in the same rewrite as the last items, only when every item of the batch
// came out written or stale.
//  - a 1% plan of one zone, in one batch through the enactor, is ONE rewrite (it was three: begin,
//    the batch, finish), and leaves begun = applied = the plan;
//  - a refused begin (stale expected marks, or a token below the floor) writes nothing at all: the
//    file is unchanged byte for byte, and begin_refused says why the batch failed;
//  - an item that conflicts keeps the finish out (applied stays where it was), the begin still in;
//  - several zones: the begin goes first (in the home zone's rewrite, or on its own when the batch
//    does not write the home zone), a finish only in the last rewrite;
//  - the enactor converges when the marks move behind its back between its read and its batch.
// Also sort_records, which every rewrite runs, against the key-building sort it replaced.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <tuple>

#include <planfence/planfence.hpp>

#include "zonefile_fixture.hpp"

using namespace planfence;
using namespace planfence_zonefile_test;

namespace {

apply_marks marks_of(std::uint64_t begun, std::uint64_t applied) { return apply_marks{generation{begun}, generation{applied}, 0}; }

template <class Enactor>
void apply(Enactor& e, generation gen) {
  for (std::uint64_t steps = 0; e.applied_generation() != gen; ++steps) {
    REQUIRE(steps < 100'000);
    static_cast<void>(e.step());
  }
}


std::string name_of(std::size_t i, const std::string& zone = "example.test.") { return "ep" + std::to_string(i) + "." + zone; }

/// Items writing `records` at generation `gen` with token `token` to `handles`, expecting what
/// read_stamps reads now.
std::vector<commit_item> items_for(zonefile_store& store, const std::vector<endpoint_handle>& handles, std::uint64_t gen,
                                   std::uint64_t token, const record_set& records) {
  std::vector<stamp> seen(handles.size());
  REQUIRE(store.read_stamps(handles, seen));
  std::vector<commit_item> items;
  for (std::size_t i = 0; i < handles.size(); ++i) {
    items.push_back(commit_item{handles[i], seen[i], stamp_at(gen, token), &records});
  }
  return items;
}

/// The sort the store used before (keys built per record, then a stable sort): the reference.
void reference_sort(std::vector<zone_record>& records, std::string_view zone) {
  struct keyed {
    bool not_soa;
    std::string owner;
    int rank;
    std::size_t index;
  };
  std::vector<keyed> keys;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const zone_record& r = records[i];
    std::string owner;
    std::vector<std::string_view> l = detail::zone::labels(r.owner);
    for (auto it = l.rbegin(); it != l.rend(); ++it) {
      if (!owner.empty()) owner += '\1';
      owner += *it;
    }
    keys.push_back(keyed{r.type != "SOA" || r.owner != zone, std::move(owner), detail::zone::type_rank(r.type), i});
  }
  std::stable_sort(keys.begin(), keys.end(), [&](const keyed& x, const keyed& y) {
    return std::tie(x.not_soa, x.owner, x.rank, records[x.index].type) < std::tie(y.not_soa, y.owner, y.rank, records[y.index].type);
  });
  std::vector<zone_record> sorted;
  for (const keyed& k : keys) sorted.push_back(records[k.index]);
  records = std::move(sorted);
}

}  // namespace

TEST_CASE("zonefile sort_records orders as the key-building sort did", "[zonefile][sort]") {
  std::mt19937 random(20261207);
  const std::vector<std::string> labels{"a", "ab", "abc", "b", "ba", "_planfence", "_weight", "x-y", "ep1", "ep10", "ep2", "z"};
  const std::vector<std::string> types{"A", "AAAA", "TXT", "NS", "MX", "CNAME", "SOA"};
  for (int round = 0; round < 600; ++round) {
    std::vector<zone_record> records;
    // Small and large: the records appended are merged by binary search when few, else linearly.
    const std::size_t n = 1 + random() % (round % 3 == 0 ? 600 : 60);
    for (std::size_t i = 0; i < n; ++i) {
      std::string owner;
      const std::size_t depth = random() % 4;
      for (std::size_t d = 0; d < depth; ++d) owner += labels[random() % labels.size()] + ".";
      owner += "example.test.";
      // Distinct rdata: equal keys must keep their order (a stable sort), which the check sees.
      records.push_back(zone_record{owner, 60, types[random() % types.size()], std::to_string(i), {}, 0});
    }
    // A sorted zone with records appended (what a commit writes: few, or many, sometimes already
    // in order as a plan's endpoints are), or records in any order.
    std::size_t appended = 0;
    if (round % 2 == 0) {
      appended = random() % 4 == 0 ? random() % 4 : random() % (n + 1);
      std::vector<zone_record> head(records.begin(), records.end() - static_cast<std::ptrdiff_t>(appended));
      std::vector<zone_record> tail(records.end() - static_cast<std::ptrdiff_t>(appended), records.end());
      reference_sort(head, "example.test.");
      if (round % 4 == 0) reference_sort(tail, "example.test.");
      head.insert(head.end(), tail.begin(), tail.end());
      records = head;
    }
    std::vector<zone_record> expected = records;
    reference_sort(expected, "example.test.");
    // Without a hint, and with what a commit knows: a prefix sorted (up to the records appended,
    // or fewer), so not compared again.
    std::size_t hint = 0;
    if (round % 2 == 0) hint = random() % 2 == 0 ? n - appended : random() % (n - appended + 1);
    detail::zone::sort_records(records, "example.test.", hint);
    REQUIRE(records.size() == expected.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      INFO("round " << round << " hint " << hint << " position " << i);
      CHECK(records[i].owner == expected[i].owner);
      CHECK(records[i].type == expected[i].type);
      CHECK(records[i].rdata == expected[i].rdata);
    }
  }
  CHECK(detail::zone::compare_owner_keys("a.example.test.", "a.example.test.") == 0);
  CHECK(detail::zone::compare_owner_keys("example.test.", "a.example.test.") < 0);  // the parent first
  CHECK(detail::zone::compare_owner_keys("b.example.test.", "a.b.example.test.") < 0);
  CHECK(detail::zone::compare_owner_keys("ab.example.test.", "a.example.test.") > 0);
  CHECK(detail::zone::compare_owner_keys("a.example.test.", "ab.example.test.") < 0);
}

TEST_CASE("zonefile batch marks: a 1% plan of one zone through the enactor is one rewrite", "[zonefile][marks][batch]") {
  constexpr std::size_t endpoints = 300;
  enactor_rig rig{{.name = "fold", .batch_max = 1024, .collect = false}};
  zonefile_store& store = rig.store;
  const std::filesystem::path& file = rig.file;
  plan_registry& registry = rig.registry;
  enactor_rig::enactor_type& e = rig.e;
  std::map<std::string, std::vector<std::string>> first;
  for (std::size_t i = 0; i < endpoints; ++i) first[name_of(i)] = {"10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256)};
  REQUIRE(registry.publish(planfence_test::make_plan(1, first)));
  const std::uint32_t serial0 = serial_of(file);
  apply(e, generation{1});
  const std::uint32_t serial1 = serial_of(file);
  // The fence raised (the zone's first floor record), then the whole plan with both marks.
  CHECK(serial1 - serial0 == 2);
  CHECK(store.read_marks().value() == marks_of(1, 1));
  {
    plan_builder b = plan_builder::based_on(*registry.pin_latest(), generation{2}, 0);
    for (std::size_t i = 0; i < endpoints; i += 100) REQUIRE(b.set(name_of(i), planfence_test::a_records({"10.2.0.1"})));
    REQUIRE(registry.publish(std::move(b).build().value()));
  }
  apply(e, generation{2});
  CHECK(serial_of(file) - serial1 == 1);  // begin, the three endpoints and finish in one rewrite
  CHECK(store.read_marks().value() == marks_of(2, 2));
  const std::string text = read_text(file);
  CHECK(contains(text, "begun=2 applied=2"));
  CHECK(contains(text, "_planfence.ep100.example.test. 0 IN TXT \"gen=2 fence=1\""));
  CHECK(contains(text, "_planfence.ep101.example.test. 0 IN TXT \"gen=1 fence=1\""));  // unchanged: not written
  check_servers_load(text, "example.test.");
}

TEST_CASE("zonefile batch marks: an enactor left at the default batch_max applies a 3000-endpoint plan in one rewrite",
          "[zonefile][marks][batch]") {
  // batch_max 0 (the default) takes the store's preferred_batch_max, the whole plan: one rewrite
  // of the zone, not one per 64 endpoints of a growing zone.
  constexpr std::size_t endpoints = 3000;
  enactor_rig rig{{.name = "default", .collect = false}};
  zonefile_store& store = rig.store;
  const std::filesystem::path& file = rig.file;
  plan_registry& registry = rig.registry;
  enactor_rig::enactor_type& e = rig.e;
  CHECK(enactor_config{}.batch_max == 0);
  CHECK(e.batch_max() == batch_max_limit);
  std::map<std::string, std::vector<std::string>> first;
  for (std::size_t i = 0; i < endpoints; ++i) first[name_of(i)] = {"10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256)};
  REQUIRE(registry.publish(planfence_test::make_plan(1, first)));
  const std::uint32_t serial0 = serial_of(file);
  apply(e, generation{1});
  CHECK(serial_of(file) - serial0 == 2);  // the fence raised, then the plan with both marks
  CHECK(e.counters()[event_kind::applied] == endpoints);
  CHECK(store.read_marks().value() == marks_of(1, 1));
  const std::string text = read_text(file);
  CHECK(contains(text, "_planfence.ep2999.example.test. 0 IN TXT \"gen=1 fence=1\""));
  check_servers_load(text, "example.test.");
}

TEST_CASE("zonefile batch marks: a refused begin writes nothing", "[zonefile][marks][batch][S2]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  REQUIRE(store.begin_apply(apply_marks{}, generation{3}, fence_token{1}));
  REQUIRE(store.finish_apply(generation{3}, fence_token{1}));
  std::vector<endpoint_handle> handles;
  for (std::size_t i = 0; i < 4; ++i) handles.push_back(store.resolve(name_of(i)).value());
  const record_set records = planfence_test::a_records({"10.9.9.9"});

  SECTION("stale expected marks: conflict") {
    std::vector<commit_item> items = items_for(store, handles, 4, 1, records);
    const std::string before = read_text(file);
    const apply_marks stale = marks_of(2, 2);
    batch_marks m{&stale, true, generation{4}, fence_token{1}};
    auto done = store.commit_batch(items, m);
    REQUIRE_FALSE(done);
    CHECK(done.error().code == errc::conflict);
    CHECK(contains(done.error().detail, "begun=3 applied=3"));
    CHECK(m.begin_refused);
    CHECK_FALSE(m.began);
    CHECK_FALSE(m.finished);
    for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::pending);
    CHECK(read_text(file) == before);
  }
  SECTION("a token below the floor: fenced") {
    REQUIRE(store.raise_fence(fence_token{5}));
    std::vector<commit_item> items = items_for(store, handles, 4, 1, records);
    const std::string before = read_text(file);
    const apply_marks now = store.read_marks().value();
    batch_marks m{&now, true, generation{4}, fence_token{1}};
    auto done = store.commit_batch(items, m);
    REQUIRE_FALSE(done);
    CHECK(done.error().code == errc::fenced);
    CHECK(m.begin_refused);
    CHECK(read_text(file) == before);
  }
}

TEST_CASE("zonefile batch marks: an item that conflicts keeps the finish out", "[zonefile][marks][batch][S1]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  std::vector<endpoint_handle> handles;
  for (std::size_t i = 0; i < 4; ++i) handles.push_back(store.resolve(name_of(i)).value());
  const record_set records = planfence_test::a_records({"10.9.9.9"});
  std::vector<commit_item> items = items_for(store, handles, 4, 1, records);
  items[2].expected = stamp_at(1, 1);  // not what the store holds: a conflict
  const apply_marks none{};
  batch_marks m{&none, true, generation{4}, fence_token{1}};
  const std::uint32_t serial0 = serial_of(file);
  REQUIRE(store.commit_batch(items, m));
  CHECK(m.began);
  CHECK_FALSE(m.finished);
  CHECK(items[0].outcome == commit_outcome::written);
  CHECK(items[2].outcome == commit_outcome::conflict);
  CHECK(serial_of(file) - serial0 == 1);
  // The begun mark is in, the applied one is not: a later apply diffs against plan 4 too.
  CHECK(store.read_marks().value() == marks_of(4, 0));

  // The conflicting item again, with the finish: now every item is decided, and it is written.
  std::vector<commit_item> again = items_for(store, {handles[2]}, 4, 1, records);
  batch_marks finish{nullptr, true, generation{4}, fence_token{1}};
  REQUIRE(store.commit_batch(again, finish));
  CHECK(again[0].outcome == commit_outcome::written);
  CHECK(finish.finished);
  CHECK(store.read_marks().value() == marks_of(4, 4));
  CHECK(serial_of(file) - serial0 == 2);

  // A batch of stale items only, with the finish of a later plan's run: nothing to write but the marks.
  std::vector<commit_item> stale = items_for(store, {handles[0]}, 4, 1, records);
  batch_marks finish_only{nullptr, true, generation{4}, fence_token{1}};
  REQUIRE(store.commit_batch(stale, finish_only));
  CHECK(stale[0].outcome == commit_outcome::stale);
  CHECK(finish_only.finished);
  CHECK(serial_of(file) - serial0 == 2);  // the marks were there already: no rewrite
}

TEST_CASE("zonefile batch marks: several zones, the begin first and the finish last", "[zonefile][marks][batch]") {
  temp_directory dir;
  // a.test. is the home zone (the smallest name); b.test. is not.
  zonefile_store store = open_with_zones(dir.path(), {"a.test.", "b.test."});
  const std::filesystem::path home = store.zone_file("a.test."), other = store.zone_file("b.test.");
  const endpoint_handle in_home = store.resolve(name_of(0, "a.test.")).value();
  const endpoint_handle elsewhere = store.resolve(name_of(0, "b.test.")).value();
  const record_set records = planfence_test::a_records({"10.9.9.9"});

  SECTION("a batch that does not write the home zone: the begin on its own, no finish") {
    std::vector<commit_item> items = items_for(store, {elsewhere}, 2, 1, records);
    const apply_marks none{};
    batch_marks m{&none, true, generation{2}, fence_token{1}};
    const std::uint32_t home0 = serial_of(home, "a.test."), other0 = serial_of(other, "b.test.");
    REQUIRE(store.commit_batch(items, m));
    CHECK(m.began);
    CHECK_FALSE(m.finished);  // the home zone is not the batch's last rewrite
    CHECK(serial_of(home, "a.test.") - home0 == 1);
    CHECK(serial_of(other, "b.test.") - other0 == 1);
    CHECK(store.read_marks().value() == marks_of(2, 0));
  }
  SECTION("both zones with the begin: the home zone first, the finish left to the caller") {
    std::vector<commit_item> items = items_for(store, {elsewhere, in_home}, 2, 1, records);
    const apply_marks none{};
    batch_marks m{&none, true, generation{2}, fence_token{1}};
    REQUIRE(store.commit_batch(items, m));
    CHECK(m.began);
    CHECK_FALSE(m.finished);
    CHECK(store.read_marks().value() == marks_of(2, 0));
    REQUIRE(store.finish_apply(generation{2}, fence_token{1}));
  }
  SECTION("both zones with the finish only: the home zone last, holding it") {
    REQUIRE(store.begin_apply(apply_marks{}, generation{2}, fence_token{1}));
    std::vector<commit_item> items = items_for(store, {in_home, elsewhere}, 2, 1, records);
    batch_marks m{nullptr, true, generation{2}, fence_token{1}};
    const std::uint32_t home0 = serial_of(home, "a.test.");
    REQUIRE(store.commit_batch(items, m));
    CHECK(m.finished);
    CHECK(items[0].outcome == commit_outcome::written);
    CHECK(items[1].outcome == commit_outcome::written);
    CHECK(serial_of(home, "a.test.") - home0 == 1);
    CHECK(store.read_marks().value() == marks_of(2, 2));
  }
}

TEST_CASE("zonefile batch marks: the enactor converges when the marks move between its read and its batch",
          "[zonefile][marks][batch]") {
  enactor_rig rig{{.name = "fold", .batch_max = 64, .collect = false}};
  zonefile_store& store = rig.store;
  plan_registry& registry = rig.registry;
  enactor_rig::enactor_type& e = rig.e;
  std::map<std::string, std::vector<std::string>> first;
  for (std::size_t i = 0; i < 20; ++i) first[name_of(i)] = {"10.1.0." + std::to_string(i)};
  REQUIRE(registry.publish(planfence_test::make_plan(1, first)));
  // Step until the enactor is about to commit its first batch, then move the marks behind it.
  bool moved = false;
  for (std::uint64_t steps = 0; e.applied_generation() != generation{1}; ++steps) {
    REQUIRE(steps < 10'000);
    if (!moved && e.state() == enactor_state::commit) {
      REQUIRE(store.begin_apply(store.read_marks().value(), generation{1}, fence_token{1}));  // another runner of plan 1
      moved = true;
    }
    static_cast<void>(e.step());
  }
  CHECK(moved);
  CHECK(store.read_marks().value() == marks_of(1, 1));
  for (std::size_t i = 0; i < 20; ++i) {
    CHECK(store.read_stamp(store.resolve(name_of(i)).value()).value().gen == generation{1});
  }
}
