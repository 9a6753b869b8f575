// The etcd store's batches with apply marks (marks_batch_store, include/planfence/store.hpp)
// against real etcd: the begin goes in the batch's first transaction and the finish in its last
// (the marks' compare, put and failure-branch range beside the items'), so that
//  - begin, items and finish that fit one transaction are ONE transaction (transactions_sent),
//    the marks moving from the caller's expected ones straight to {target, target};
//  - a begin whose marks moved (another store's begin_apply) is refused as a conflict, and one
//    below the fence floor as fenced, each decided by that transaction's failure branch in the
//    same round trip, writing nothing (the cluster's revision unchanged), every item pending;
//  - a stale item in the transaction with the begin is stale, the others and both marks written
//    (a refusal of stale items only keeps the finish); a conflicting item drops the finish;
//  - a batch over several transactions (a small max-txn-ops) carries the begin in the first and
//    the finish in the last, and no finish when an earlier transaction refused an item;
//  - the units that carry the marks keep room for them: in holder-key mode a full unit of
//    max-txn-ops - 3 items plus the marks would be refused by etcd's --max-txn-ops; the enactor's
//    default batch (preferred_batch_max, max-txn-ops - 4) with both marks is one transaction;
//  - the enactor, through the store and through any_store (as planfence-ctl opens it), applies
//    a plan changing a few endpoints with ONE transaction.
#include <catch2/catch.hpp>

#include <planfence/etcd/lease_authority.hpp>
#include <planfence/etcd/store.hpp>
#include <planfence/planfence.hpp>
#include <planfence/store/any_store.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../support/marks_fold.hpp"
#include "../support/store_fixtures.hpp"
#include "etcd_support.hpp"

namespace {

using namespace planfence;
using planfence_test::fold;
using namespace std::chrono_literals;
using planfence_test::a_records;
using planfence_test::shared_etcd;
using planfence_test::unique_prefix;

apply_marks marks(std::uint64_t begun, std::uint64_t applied) { return apply_marks{generation{begun}, generation{applied}, 0}; }
/// The marks without their version (a mod revision), to compare generations only.
apply_marks gens(apply_marks m) {
  m.version = 0;
  return m;
}
stamp at(std::uint64_t gen, std::uint64_t fence) { return stamp{generation{gen}, fence_token{fence}, 0}; }

std::string name_of(std::size_t i) { return "e" + std::to_string(i) + ".fold.test."; }

etcd_store open_floor(const std::string& prefix, std::size_t max_txn_ops = 128) {
  auto store = etcd_store::make(shared_etcd().config(), prefix, {}, etcd::fence_mode::floor_only, {},
                                etcd::txn_limits{.max_txn_ops = max_txn_ops});
  if (!store) FAIL("etcd_store: " << store.error().message());
  return std::move(*store);
}

std::vector<endpoint_handle> resolve_all(const etcd_store& store, std::size_t n) {
  std::vector<endpoint_handle> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(store.resolve(name_of(i)).value());
  return out;
}

/// The cluster's revision now: it moves with every write anywhere in the cluster, so an unchanged
/// revision proves that nothing was written (test cases of one process run one at a time).
std::int64_t cluster_revision() {
  etcd::client c{shared_etcd().config()};
  auto got = c.range("/");
  REQUIRE(got);
  return got->revision;
}

/// The marks key's etcd version (how many times it was written), 0 when missing.
std::int64_t marks_writes(const etcd_store& store) {
  etcd::client c{shared_etcd().config()};
  auto got = c.range(store.keys().marks());
  REQUIRE(got);
  return got->kvs.empty() ? 0 : got->kvs[0].version;
}

/// A prefix after generation 1: endpoints e0..e(n-1) serve 10.0.0.1 at fence 1, the marks are
/// {1, 1} (written by separate calls). `store` writes with max-txn-ops `ops`; `other` is another
/// writer on the same prefix.
struct after_g1 {
  std::string prefix = unique_prefix();
  std::size_t n;
  record_set v1 = a_records({"10.0.0.1"});
  record_set v2 = a_records({"10.0.0.2"});
  etcd_store store;
  etcd_store other;
  std::vector<endpoint_handle> h;
  apply_marks g1{};  ///< the marks after g1, as read

  explicit after_g1(std::size_t endpoints, std::size_t ops = 128)
      : n(endpoints), store(open_floor(prefix, ops)), other(open_floor(prefix)), h(resolve_all(store, endpoints)) {
    std::vector<commit_item> items;
    for (const endpoint_handle e : h) items.push_back({e, stamp{}, at(1, 1), &v1});
    REQUIRE(store.begin_apply(apply_marks{}, generation{1}, fence_token{1}));
    REQUIRE(store.commit_batch(items));
    for (const commit_item& item : items) REQUIRE(item.outcome == commit_outcome::written);
    g1 = store.finish_apply(generation{1}, fence_token{1}).value();
    REQUIRE(gens(g1) == marks(1, 1));
  }

  [[nodiscard]] std::vector<stamp> stamps() const {
    std::vector<stamp> out(n);
    REQUIRE(store.read_stamps(h, out));
    return out;
  }

  /// Items writing v2 at (gen, fence) to every endpoint, expecting what etcd holds now.
  [[nodiscard]] std::vector<commit_item> items(std::uint64_t gen, std::uint64_t fence) const {
    const std::vector<stamp> now = stamps();
    std::vector<commit_item> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back({h[i], now[i], at(gen, fence), &v2});
    return out;
  }

  /// Endpoint i rewritten by `other` at (gen, 1) with v1: a conflict (gen below ours) or a
  /// stale item (gen at or above ours) for a batch that expected the stamp before.
  void overwrite(std::size_t i, std::uint64_t gen) {
    const endpoint_handle e = other.resolve(name_of(i)).value();
    REQUIRE(other.commit(e, other.read_stamp(e).value(), at(gen, 1), v1));
  }

  /// Checks a batch whose begin was refused with `code`: nothing written (the cluster's revision
  /// unchanged since `revision`), every item pending, the marks as `expected`; ONE round trip.
  void begin_refused(const result<void>& done, const batch_marks& m, const std::vector<commit_item>& batch, errc code,
                     std::int64_t revision, std::uint64_t requests_before, const apply_marks& expected) {
    REQUIRE_FALSE(done);
    INFO(done.error().message());
    CHECK(done.error().code == code);
    CHECK(m.begin_refused);
    CHECK_FALSE(m.began);
    CHECK_FALSE(m.finished);
    CHECK(store.requests_sent() - requests_before == 1);  // refused and diagnosed in one transaction
    CHECK(cluster_revision() == revision);
    for (const commit_item& item : batch) CHECK(item.outcome == commit_outcome::pending);
    for (const stamp& st : stamps()) CHECK(st.gen == generation{1});
    CHECK(store.read_marks().value() == expected);
  }

  /// Another enactor begins generation 3 after we read the marks {1, 1}: our batch of generation 2
  /// with the begin and the finish is refused as a conflict and writes nothing. Its message.
  std::string refused_for_moved_marks() {
    const apply_marks moved = other.begin_apply(other.read_marks().value(), generation{3}, fence_token{1}).value();
    auto batch = items(2, 1);
    batch_marks m = fold(&g1, true, 2, 1);
    const std::int64_t revision = cluster_revision();
    const std::uint64_t requests = store.requests_sent();
    auto done = store.commit_batch(batch, m);
    begin_refused(done, m, batch, errc::conflict, revision, requests, moved);
    return done.error().message();
  }
};

}  // namespace

TEST_CASE("etcd batch marks: begin and items and finish that fit one transaction are one transaction", "[etcd][batch][marks]") {
  after_g1 z(10);
  auto items = z.items(2, 1);
  batch_marks m = fold(&z.g1, true, 2, 1);
  const std::uint64_t sent = z.store.transactions_sent();
  const std::uint64_t requests = z.store.requests_sent();
  const std::int64_t writes = marks_writes(z.store);
  auto done = z.store.commit_batch(items, m);
  if (!done) FAIL(done.error().message());
  CHECK(z.store.transactions_sent() - sent == 1);
  CHECK(z.store.requests_sent() - requests == 1);
  CHECK(marks_writes(z.store) - writes == 1);  // begin and finish as one write of the key
  CHECK(m.began);
  CHECK(m.finished);
  CHECK_FALSE(m.begin_refused);
  CHECK(gens(m.marks) == marks(2, 2));
  for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
  const apply_marks stored = z.store.read_marks().value();
  CHECK(stored == m.marks);
  CHECK(stored.version == items[0].now.version);  // one revision: the items and the marks
  for (const stamp& st : z.stamps()) CHECK(st == stamp{generation{2}, fence_token{1}, stored.version});
  CHECK(planfence_test::served_addresses(z.store, z.h[3]) == std::vector<std::string>{"10.0.0.2"});
}

TEST_CASE("etcd batch marks: a begin whose marks moved is a conflict and writes nothing", "[etcd][batch][marks]") {
  after_g1 z(6);
  CHECK(z.refused_for_moved_marks().find(z.store.keys().marks() + " moved since it was read") != std::string::npos);
}

TEST_CASE("etcd batch marks: a begin below the fence floor is fenced and writes nothing", "[etcd][batch][marks]") {
  after_g1 z(6);
  REQUIRE(z.other.raise_fence(fence_token{5}));
  auto items = z.items(2, 1);
  batch_marks m = fold(&z.g1, true, 2, 1);
  const std::int64_t revision = cluster_revision();
  const std::uint64_t requests = z.store.requests_sent();
  auto done = z.store.commit_batch(items, m);
  z.begin_refused(done, m, items, errc::fenced, revision, requests, z.g1);
  CHECK(done.error().message().find("the fence floor " + z.store.keys().fence_floor() + " is 5") != std::string::npos);
}

TEST_CASE("etcd batch marks: a stale item in the transaction with the begin is stale and the others are written",
          "[etcd][batch][marks]") {
  after_g1 z(6);
  auto items = z.items(2, 1);
  z.overwrite(2, 4);  // e2 already serves generation 4: stale for our generation 2
  batch_marks m = fold(&z.g1, true, 2, 1);
  const std::uint64_t sent = z.store.transactions_sent();
  auto done = z.store.commit_batch(items, m);
  if (!done) FAIL(done.error().message());
  CHECK(z.store.transactions_sent() - sent == 2);  // refused once for e2, sent again without it
  for (std::size_t i = 0; i < items.size(); ++i) {
    INFO(name_of(i));
    CHECK(items[i].outcome == (i == 2 ? commit_outcome::stale : commit_outcome::written));
  }
  CHECK(m.began);
  CHECK(m.finished);  // only a stale item was refused: the finish stays in the transaction
  CHECK(gens(z.store.read_marks().value()) == marks(2, 2));
  CHECK(z.stamps()[2].gen == generation{4});
  CHECK(z.stamps()[0].gen == generation{2});
}

TEST_CASE("etcd batch marks: a conflicting item in the transaction with the finish drops the finish",
          "[etcd][batch][marks]") {
  after_g1 z(6);
  auto items = z.items(3, 1);
  z.overwrite(4, 2);  // e4 rewritten at generation 2 (below our 3): our expected stamp no longer holds
  batch_marks m = fold(&z.g1, true, 3, 1);
  auto done = z.store.commit_batch(items, m);
  if (!done) FAIL(done.error().message());
  for (std::size_t i = 0; i < items.size(); ++i) {
    INFO(name_of(i));
    CHECK(items[i].outcome == (i == 4 ? commit_outcome::conflict : commit_outcome::written));
  }
  CHECK(m.began);
  CHECK_FALSE(m.finished);  // declined: the caller decides e4 again, then finishes
  CHECK(gens(z.store.read_marks().value()) == marks(3, 1));
}

TEST_CASE("etcd batch marks: split over several transactions the begin goes first and the finish last",
          "[etcd][batch][marks]") {
  // max-txn-ops 8: 5 items a transaction, 4 in the first with the begin: 12 items are 3.
  SECTION("every item written: begin in the first, finish in the last") {
    after_g1 z(12, 8);
    auto items = z.items(2, 1);
    batch_marks m = fold(&z.g1, true, 2, 1);
    const std::uint64_t sent = z.store.transactions_sent();
    const std::int64_t writes = marks_writes(z.store);
    auto done = z.store.commit_batch(items, m);
    if (!done) FAIL(done.error().message());
    CHECK(z.store.transactions_sent() - sent == 3);
    CHECK(marks_writes(z.store) - writes == 2);
    CHECK(m.began);
    CHECK(m.finished);
    const apply_marks stored = z.store.read_marks().value();
    CHECK(gens(stored) == marks(2, 2));
    std::set<std::uint64_t> revisions;
    for (const commit_item& item : items) {
      REQUIRE(item.outcome == commit_outcome::written);
      revisions.insert(item.now.version);
    }
    REQUIRE(revisions.size() == 3);
    CHECK(stored.version == *revisions.rbegin());  // the finish with the last transaction
  }
  SECTION("a begin whose marks moved is refused by the first transaction: nothing written") {
    after_g1 z(12, 8);
    static_cast<void>(z.refused_for_moved_marks());
  }
  SECTION("a conflicting item in an earlier transaction: no finish") {
    after_g1 z(12, 8);
    auto items = z.items(3, 1);
    z.overwrite(1, 2);  // in the first transaction: generation 2, below our 3
    batch_marks m = fold(&z.g1, true, 3, 1);
    auto done = z.store.commit_batch(items, m);
    if (!done) FAIL(done.error().message());
    CHECK(items[1].outcome == commit_outcome::conflict);
    CHECK(items[11].outcome == commit_outcome::written);
    CHECK(m.began);
    CHECK_FALSE(m.finished);
    CHECK(gens(z.store.read_marks().value()) == marks(3, 1));
  }
  SECTION("marks already at the target: finished without writing them") {
    after_g1 z(12, 8);
    auto items = z.items(2, 1);
    REQUIRE(z.other.finish_apply(generation{2}, fence_token{1}));
    const std::int64_t writes = marks_writes(z.store);
    batch_marks m = fold(nullptr, true, 2, 1);
    auto done = z.store.commit_batch(items, m);
    if (!done) FAIL(done.error().message());
    CHECK(m.finished);
    CHECK(gens(m.marks) == marks(2, 2));
    CHECK(marks_writes(z.store) == writes);
  }
}

TEST_CASE("etcd batch marks: in holder-key mode a full unit keeps room for the marks", "[etcd][batch][marks][S2]") {
  steady_clock clock;
  const std::string prefix = unique_prefix();
  auto store = etcd_store::make(shared_etcd().config(), prefix).value();  // holder-key mode, max-txn-ops 128
  REQUIRE(store.mode() == etcd::fence_mode::holder_key);
  auto authority = etcd::etcd_lease_authority<>::make(shared_etcd().config(), prefix, clock, {.holder_name = "az1"}).value();
  const auto held = authority.acquire(5s).value();
  // 125 items: a full unit (125 compares, 2 floor, 1 holder); the marks' compare would be the 129th.
  const auto h = resolve_all(store, 125);
  const record_set records = a_records({"192.0.2.1"});
  std::vector<commit_item> items;
  for (const endpoint_handle e : h) items.push_back({e, stamp{}, stamp{generation{1}, held.fence, 0}, &records});
  const apply_marks none = store.read_marks().value();
  batch_marks m = fold(&none, true, 1, held.fence.value());
  const std::uint64_t sent = store.transactions_sent();
  auto done = store.commit_batch(items, m);
  if (!done) FAIL(done.error().message());
  CHECK(store.transactions_sent() - sent == 2);  // 124 items with the begin, 1 with the finish
  for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
  CHECK(m.began);
  CHECK(m.finished);
  CHECK(gens(store.read_marks().value()) == marks(1, 1));
  REQUIRE(authority.release(held));
}

TEST_CASE("etcd batch marks: the enactor's default batch fits one transaction with both marks", "[etcd][batch][marks]") {
  auto store = open_floor(unique_prefix());
  const std::uint32_t batch = store.preferred_batch_max();
  CHECK(batch == 124);  // max-txn-ops 128 less the floor compares, the holder compare and the marks
  const record_set records = a_records({"192.0.2.1"});
  for (const std::uint32_t size : {batch, batch + 1}) {
    INFO(size << " items");
    const auto h = resolve_all(store, size);
    std::vector<commit_item> items;
    const generation target{size};  // a new generation per round
    const apply_marks before = store.read_marks().value();
    std::vector<stamp> now(size);
    REQUIRE(store.read_stamps(h, now));
    for (std::size_t i = 0; i < size; ++i) items.push_back({h[i], now[i], stamp{target, fence_token{1}, 0}, &records});
    batch_marks m = fold(&before, true, target.value(), 1);
    const std::uint64_t sent = store.transactions_sent();
    auto done = store.commit_batch(items, m);
    if (!done) FAIL(done.error().message());
    CHECK(store.transactions_sent() - sent == (size == batch ? 1u : 2u));
    CHECK(m.began);
    CHECK(m.finished);
  }
  auto small = open_floor(unique_prefix(), 4);
  CHECK(small.preferred_batch_max() == 1);  // no room for the marks at all: one item a batch
}

namespace {

using enactor_over_store = enactor<etcd_store, local_lease_authority<manual_clock>, plan_registry, manual_clock>;
using enactor_over_any = enactor<any_store, local_lease_authority<manual_clock>, plan_registry, manual_clock>;

std::vector<std::string> names_of(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(name_of(i));
  return out;
}

}  // namespace

TEST_CASE("etcd batch marks: the enactor applies a small change with one transaction", "[etcd][batch][marks][enactor]") {
  SECTION("through the store") {
    auto store = open_floor(unique_prefix());
    planfence_test::apply_small_change<enactor_over_store>(store, store, names_of(20), 0, [&] { return store.transactions_sent(); });
  }
  SECTION("through any_store as planfence-ctl opens it") {
    auto owned = std::make_unique<etcd_store>(open_floor(unique_prefix()));
    const etcd_store& counter = *owned;
    any_store store(std::move(owned), "etcd (test)");
    planfence_test::apply_small_change<enactor_over_any>(store, counter, names_of(20), 0, [&] { return counter.transactions_sent(); });
  }
}
