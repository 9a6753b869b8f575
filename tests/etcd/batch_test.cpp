// The etcd store as a batched_store against real etcd: commit_batch decides every item by its own
// condition (fresh, stale, fenced and conflicting items in one batch), in as few transactions as
// the server's limits allow (max-txn-ops, max-request-bytes, on a member started with smaller
// ones), refuses an item too large for one request before sending anything, and leaves each
// transaction applied whole or not at all when the member is killed in the middle of a batch,
// with the undecided items `pending` and completed by a second batch after the restart.
#include <catch2/catch.hpp>

#include <planfence/etcd/store.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "etcd_support.hpp"

namespace {

using namespace planfence;
using planfence_test::a_records;
using planfence_test::shared_etcd;
using planfence_test::unique_prefix;

std::string name_of(std::size_t i) { return "e" + std::to_string(i) + ".batch.test."; }

/// `count` distinct A records: 198.18.x.y from `first` on (RFC 2544 benchmark addresses).
record_set many_records(std::size_t count, std::size_t first = 0) {
  std::vector<std::string> addresses;
  for (std::size_t i = first; i < first + count; ++i) {
    addresses.push_back("198.18." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256));
  }
  return a_records(addresses);
}

std::vector<endpoint_handle> resolve_all(const etcd_store& store, std::size_t n) {
  std::vector<endpoint_handle> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(store.resolve(name_of(i)).value());
  return out;
}

/// A batch writing `gen` with `fence` over every handle, expecting `expected[i]`.
std::vector<commit_item> batch_of(const std::vector<endpoint_handle>& handles, const std::vector<stamp>& expected,
                                  std::uint64_t gen, std::uint64_t fence, const record_set& records) {
  std::vector<commit_item> out;
  for (std::size_t i = 0; i < handles.size(); ++i) {
    out.push_back(commit_item{handles[i], expected[i], stamp{generation{gen}, fence_token{fence}, 0}, &records});
  }
  return out;
}

std::set<std::uint64_t> versions_written(const std::vector<commit_item>& items) {
  std::set<std::uint64_t> out;
  for (const commit_item& it : items) {
    if (it.outcome == commit_outcome::written) out.insert(it.now.version);
  }
  return out;
}

/// Every item written, and what etcd holds now is exactly it: the stamp (read_stamps) and the
/// records (served).
void require_all_written(const etcd_store& store, const std::vector<commit_item>& items, const record_set& records) {
  std::vector<endpoint_handle> handles;
  for (const commit_item& it : items) {
    INFO("endpoint " << store.name(it.endpoint) << ": " << to_string(it.outcome));
    REQUIRE(it.outcome == commit_outcome::written);
    handles.push_back(it.endpoint);
  }
  std::vector<stamp> now(handles.size());
  REQUIRE(store.read_stamps(handles, now));
  for (std::size_t i = 0; i < items.size(); ++i) {
    REQUIRE(now[i] == items[i].now);
    REQUIRE(now[i].gen == items[i].desired.gen);
  }
  // The records of the first, a middle and the last (served is one range each).
  for (const std::size_t i : {std::size_t{0}, items.size() / 2, items.size() - 1}) {
    const auto served = store.served(items[i].endpoint).value();
    REQUIRE(served.size() == records.records().size());
    CHECK(served.front().rdata == records.records().front().rdata);
  }
}

}  // namespace

TEST_CASE("etcd batch: fresh, stale, fenced and conflicting items each get their own outcome", "[etcd][batch]") {
  auto store = etcd_store::make(shared_etcd().config(), unique_prefix(), {}, etcd::fence_mode::floor_only).value();
  auto other = etcd_store::make(shared_etcd().config(), store.keys().prefix, {}, etcd::fence_mode::floor_only).value();
  const auto h = resolve_all(store, 8);
  const auto oh = resolve_all(other, 8);  // the other store's handles of the same names
  const record_set one = a_records({"192.0.2.1"});
  // e1..e6 serve generation 1 with fence 10; e0 and e7 were never written.
  std::vector<commit_item> setup;
  for (std::size_t i = 1; i <= 6; ++i) setup.push_back(commit_item{h[i], stamp{}, stamp{generation{1}, fence_token{10}, 0}, &one});
  REQUIRE(store.commit_batch(setup));
  std::vector<stamp> seen(8);
  REQUIRE(store.read_stamps(h, seen));
  CHECK(seen[0] == stamp{});
  CHECK(seen[1].gen == generation{1});
  // Another writer moves some of them after they were read.
  const record_set theirs = a_records({"192.0.2.99"});
  const stamp e3_now = other.commit(oh[3], seen[3], stamp{generation{6}, fence_token{10}, 0}, theirs).value();   // newer gen
  const stamp e4_now = other.commit(oh[4], seen[4], stamp{generation{2}, fence_token{20}, 0}, theirs).value();   // larger fence
  const stamp e5_now = other.commit(oh[5], seen[5], stamp{generation{2}, fence_token{10}, 0}, theirs).value();   // just moved
  const stamp e7_now = other.commit(oh[7], seen[7], stamp{generation{1}, fence_token{10}, 0}, theirs).value();   // created
  std::vector<stamp> expected = seen;
  expected[2] = stamp{generation{5}, fence_token{10}, seen[2].version};  // the caller believes it serves 5 already
  expected[6] = stamp{generation{1}, fence_token{30}, seen[6].version};  // the caller saw a larger fence

  const record_set ours = a_records({"192.0.2.5"});
  auto items = batch_of(h, expected, 5, 10, ours);
  REQUIRE(store.commit_batch(items));
  const commit_outcome want[8] = {commit_outcome::written, commit_outcome::written, commit_outcome::stale,
                                  commit_outcome::stale,   commit_outcome::fenced,  commit_outcome::conflict,
                                  commit_outcome::fenced,  commit_outcome::conflict};
  for (std::size_t i = 0; i < 8; ++i) {
    INFO("item " << i << ": " << to_string(items[i].outcome));
    CHECK(items[i].outcome == want[i]);
  }
  // `now`: what was written, or what the store found (the expected stamp for local refusals).
  CHECK(items[2].now == expected[2]);
  CHECK(items[3].now == e3_now);
  CHECK(items[4].now == e4_now);
  CHECK(items[5].now == e5_now);
  CHECK(items[6].now == expected[6]);
  CHECK(items[7].now == e7_now);
  // The two fresh items went in one transaction (the second send, after the refused ones left).
  CHECK(items[0].now.version == items[1].now.version);
  CHECK(items[0].now == stamp{generation{5}, fence_token{10}, items[0].now.version});

  std::vector<stamp> after(8);
  REQUIRE(store.read_stamps(h, after));
  CHECK(after[0] == items[0].now);
  CHECK(after[1] == items[1].now);
  CHECK(after[2] == seen[2]);  // untouched
  CHECK(after[3] == e3_now);
  CHECK(after[4] == e4_now);
  CHECK(after[5] == e5_now);
  CHECK(after[6] == seen[6]);
  CHECK(after[7] == e7_now);
  CHECK(store.served(h[0]).value().at(0).rdata == "192.0.2.5");
  CHECK(store.served(h[1]).value().at(0).rdata == "192.0.2.5");
  CHECK(store.served(h[5]).value().at(0).rdata == "192.0.2.99");

  // The floor raised to 15: in one batch, the items with fence 10 are fenced by it and those
  // with fence 20 are written (each fence group is its own transaction).
  REQUIRE(store.raise_fence(fence_token{15}));
  std::vector<commit_item> mixed = {
      commit_item{h[0], after[0], stamp{generation{7}, fence_token{10}, 0}, &ours},
      commit_item{h[1], after[1], stamp{generation{7}, fence_token{20}, 0}, &ours},
      commit_item{h[5], after[5], stamp{generation{7}, fence_token{10}, 0}, &ours},
      commit_item{h[7], after[7], stamp{generation{7}, fence_token{20}, 0}, &ours},
  };
  REQUIRE(store.commit_batch(mixed));
  CHECK(mixed[0].outcome == commit_outcome::fenced);
  CHECK(mixed[1].outcome == commit_outcome::written);
  CHECK(mixed[2].outcome == commit_outcome::fenced);
  CHECK(mixed[3].outcome == commit_outcome::written);
  CHECK(mixed[1].now.version == mixed[3].now.version);
  CHECK(store.read_stamp(h[0]).value() == after[0]);
  CHECK(store.read_stamp(h[7]).value() == mixed[3].now);
}

TEST_CASE("etcd batch: holder-key mode refuses the whole batch of a writer without the holder key", "[etcd][batch][S2]") {
  auto store = etcd_store::make(shared_etcd().config(), unique_prefix()).value();
  const auto h = resolve_all(store, 5);
  const record_set one = a_records({"192.0.2.1"});
  auto items = batch_of(h, std::vector<stamp>(5), 1, 12345, one);
  REQUIRE(store.commit_batch(items));
  for (const commit_item& it : items) CHECK(it.outcome == commit_outcome::fenced);
  CHECK(store.endpoint_names().value().empty());
  // With the holder key taken, its create revision is the token that commits.
  etcd::client& c = store.connection();
  const auto lease = c.grant(5).value();
  auto t = c.txn({etcd::compare::create_revision(store.keys().holder(), 0)}, {etcd::op::put(store.keys().holder(), "az1", lease.id)}, {});
  REQUIRE(t);
  REQUIRE(t->succeeded);
  auto again = batch_of(h, std::vector<stamp>(5), 1, static_cast<std::uint64_t>(t->revision), one);
  REQUIRE(store.commit_batch(again));
  require_all_written(store, again, one);
  REQUIRE(c.revoke(lease.id));
}

TEST_CASE("etcd batch: 300 items go in three transactions of at most 128 operations", "[etcd][batch]") {
  const std::string uri = "etcd://" + shared_etcd().client_address() + unique_prefix() + "?fence=floor&max-txn-ops=128";
  auto store = etcd_store::open_uri(uri).value();
  CHECK(store.limits() == etcd::txn_limits{});
  const auto h = resolve_all(store, 300);
  const record_set records = many_records(3);
  auto items = batch_of(h, std::vector<stamp>(300), 1, 1, records);
  REQUIRE(store.commit_batch(items));
  require_all_written(store, items, records);
  CHECK(versions_written(items).size() == 3);  // 125 items a transaction (3 operations for the floor)
  // A second generation over what the reads say: again every item written.
  std::vector<stamp> seen(300);
  REQUIRE(store.read_stamps(h, seen));
  auto next = batch_of(h, seen, 2, 1, records);
  REQUIRE(store.commit_batch(next));
  require_all_written(store, next, records);
}

TEST_CASE("etcd inspect: stamps and records of many endpoints in few transactions, as read_stamp and served give them",
          "[etcd][batch][inspect]") {
  const std::string uri = "etcd://" + shared_etcd().client_address() + unique_prefix() + "?fence=floor&max-txn-ops=16";
  auto store = etcd_store::open_uri(uri).value();
  const auto h = resolve_all(store, 40);
  const record_set records = many_records(3);
  // Every endpoint but the last five written.
  std::vector<endpoint_handle> written(h.begin(), h.end() - 5);
  auto items = batch_of(written, std::vector<stamp>(written.size()), 1, 1, records);
  REQUIRE(store.commit_batch(items));
  std::vector<endpoint_state> states(h.size());
  REQUIRE(store.inspect(h, states));
  for (std::size_t i = 0; i < h.size(); ++i) {
    INFO(name_of(i));
    CHECK(states[i].st == store.read_stamp(h[i]).value());
    CHECK(states[i].records == store.served(h[i]).value());
    CHECK(states[i].st.gen == (i < 35 ? generation{1} : generation_none));
    CHECK(states[i].records.size() == (i < 35 ? 3u : 0u));
  }
}

TEST_CASE("etcd batch: a server with --max-txn-ops 16 and --max-request-bytes 65536", "[etcd][batch][limits]") {
  planfence_test::etcd_member member({"--max-txn-ops", "16", "--max-request-bytes", "65536"});
  const std::string base = "etcd://" + member.client_address();

  SECTION("a store told the server's limits commits 100 items in transactions of 13") {
    auto store = etcd_store::open_uri(base + "/small?fence=floor&max-txn-ops=16&max-request-bytes=65536").value();
    const auto h = resolve_all(store, 100);
    const record_set records = a_records({"192.0.2.1"});
    auto items = batch_of(h, std::vector<stamp>(100), 1, 1, records);
    REQUIRE(store.commit_batch(items));
    require_all_written(store, items, records);
    CHECK(versions_written(items).size() == 8);  // ceil(100 / 13)
  }
  SECTION("values larger together than one request are split by size") {
    auto store = etcd_store::open_uri(base + "/large?fence=floor&max-txn-ops=16&max-request-bytes=65536").value();
    const auto h = resolve_all(store, 12);
    const record_set records = many_records(800);  // about 20 KB of JSON an item
    auto items = batch_of(h, std::vector<stamp>(12), 1, 1, records);
    REQUIRE(store.commit_batch(items));
    require_all_written(store, items, records);
    CHECK(versions_written(items).size() >= 4);
  }
  SECTION("a store told more operations than the server allows gets a clear error and writes nothing") {
    auto store = etcd_store::open_uri(base + "/toomany?fence=floor").value();
    const auto h = resolve_all(store, 100);
    const record_set records = a_records({"192.0.2.1"});
    auto items = batch_of(h, std::vector<stamp>(100), 1, 1, records);
    auto done = store.commit_batch(items);
    REQUIRE_FALSE(done);
    CHECK(done.error().code == errc::store_unavailable);
    INFO(done.error().message());
    CHECK(done.error().message().find("too many operations") != std::string::npos);
    CHECK(done.error().message().find("max-txn-ops=128") != std::string::npos);
    for (const commit_item& it : items) CHECK(it.outcome == commit_outcome::pending);
    CHECK(store.endpoint_names().value().empty());
    // A dense read is one range, which no operation limit concerns; a sparse one goes in
    // transactions of max-txn-ops ranges, which the server refuses with the same clear error.
    std::vector<stamp> seen(100);
    REQUIRE(store.read_stamps(h, seen));
    for (const stamp& st : seen) CHECK(st.gen == generation_none);
    std::vector<endpoint_handle> spread;
    for (std::size_t i = 0; i < 100; i += 5) spread.push_back(h[i]);
    std::vector<stamp> sparse(spread.size());
    auto read = store.read_stamps(spread, sparse);
    REQUIRE_FALSE(read);
    CHECK(read.error().message().find("too many operations") != std::string::npos);
  }
  SECTION("a store told a larger request limit than the server's gets a clear error and writes nothing") {
    auto store = etcd_store::open_uri(base + "/toolarge?fence=floor&max-txn-ops=16").value();
    const auto h = resolve_all(store, 12);
    const record_set records = many_records(800);
    auto items = batch_of(h, std::vector<stamp>(12), 1, 1, records);
    auto done = store.commit_batch(items);
    REQUIRE_FALSE(done);
    INFO(done.error().message());
    CHECK(done.error().message().find("max-request-bytes") != std::string::npos);
    for (const commit_item& it : items) CHECK(it.outcome == commit_outcome::pending);
    CHECK(store.endpoint_names().value().empty());
  }
  SECTION("an item too large for one request is capacity_exceeded, and nothing of the batch is written") {
    // (A value beyond 65536 bytes needs more records than a set holds: the store is told less.)
    auto store = etcd_store::open_uri(base + "/huge?fence=floor&max-txn-ops=16&max-request-bytes=16384").value();
    const auto h = resolve_all(store, 4);
    const record_set small = a_records({"192.0.2.1"});
    const record_set huge = many_records(1000);  // about 27 KB of JSON
    auto items = batch_of(h, std::vector<stamp>(4), 1, 1, small);
    items[2].records = &huge;
    auto done = store.commit_batch(items);
    REQUIRE_FALSE(done);
    CHECK(done.error().code == errc::capacity_exceeded);
    CHECK(done.error().message().find(name_of(2)) != std::string::npos);
    for (const commit_item& it : items) CHECK(it.outcome == commit_outcome::pending);
    CHECK(store.endpoint_names().value().empty());
  }
}

TEST_CASE("etcd batch: URI limits are validated with clear errors", "[etcd][batch][uri]") {
  const std::string base = "etcd://127.0.0.1:1/p?fence=floor&";
  for (const std::string bad : {"max-txn-ops=3", "max-txn-ops=x", "max-txn-ops=", "max-txn-ops=1000001",
                                "max-request-bytes=1023", "max-request-bytes=-5", "max-request-bytes=2147483648"}) {
    auto refused = etcd_store::open_uri(base + bad);
    INFO(bad);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::parse_error);
    const std::string name = bad.substr(0, bad.find('='));
    CHECK(refused.error().message().find(name + " (etcd's --" + name) != std::string::npos);
    CHECK(refused.error().message().find("takes an integer from") != std::string::npos);
  }
  auto twice = etcd_store::mode_of_uri("etcd://127.0.0.1:1/p?max-txn-ops=16&max-txn-ops=32");
  REQUIRE_FALSE(twice);
  CHECK(twice.error().message().find("given twice") != std::string::npos);
  CHECK(etcd_store::mode_of_uri("etcd://127.0.0.1:1/p?max-txn-ops=16&fence=floor").value() == etcd::fence_mode::floor_only);
  auto options = etcd::parse_store_uri_options("etcd://127.0.0.1:1/p?max-request-bytes=65536&max-txn-ops=16").value();
  CHECK(options.limits == etcd::txn_limits{16, 65536});
  CHECK(options.mode == etcd::fence_mode::holder_key);
}

TEST_CASE("etcd batch: a member killed in the middle leaves whole transactions, pending items, and a retry completes",
          "[etcd][batch][faults]") {
  planfence_test::etcd_member member;
  auto store = etcd_store::open_uri("etcd://" + member.client_address() + "/kill?fence=floor&max-txn-ops=16").value();
  constexpr std::size_t n = 2000;
  constexpr std::size_t per_txn = 13;
  const auto h = resolve_all(store, n);
  const record_set old_records = many_records(2, 0);
  const record_set new_records = many_records(20, 100);
  auto first = batch_of(h, std::vector<stamp>(n), 1, 1, old_records);
  REQUIRE(store.commit_batch(first));
  std::vector<stamp> seen(n);
  REQUIRE(store.read_stamps(h, seen));

  // A second client watches the revision and kills the member once a few transactions are in.
  auto probe_config = member.config();
  probe_config.request_timeout = std::chrono::milliseconds{500};
  etcd::client probe{probe_config};
  const std::int64_t start = probe.range("/kill/none").value().revision;
  std::atomic<bool> go{false};
  std::thread killer([&] {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < 20000; ++i) {
      auto r = probe.range("/kill/none");
      if (r && r->revision >= start + 10) break;
      std::this_thread::sleep_for(std::chrono::microseconds{200});
    }
    member.kill();
  });
  auto second = batch_of(h, seen, 2, 1, new_records);
  go = true;
  auto done = store.commit_batch(second);
  killer.join();
  REQUIRE_FALSE(done);
  CHECK(done.error().code == errc::store_unavailable);
  std::size_t written = 0;
  std::size_t pending = 0;
  for (const commit_item& it : second) {
    REQUIRE((it.outcome == commit_outcome::written || it.outcome == commit_outcome::pending));
    (it.outcome == commit_outcome::written ? written : pending) += 1;
  }
  CHECK(written >= per_txn);
  CHECK(pending > 0);

  member.start();
  // Every key holds the full old value or the full new one, and each transaction (13 items in
  // order) is all new or all old.
  auto all = store.read_all().value();
  REQUIRE(all.endpoints.size() == n);
  std::vector<int> is_new(n, -1);
  for (const auto& e : all.endpoints) {
    const std::size_t i = std::stoul(e.name.substr(1, e.name.find('.') - 1));
    REQUIRE(i < n);
    const bool now_new = e.value.gen == generation{2};
    REQUIRE((now_new || e.value.gen == generation{1}));
    const record_set& want = now_new ? new_records : old_records;
    REQUIRE(e.value.records.records().size() == want.records().size());
    for (std::size_t r = 0; r < want.records().size(); ++r) REQUIRE(e.value.records.records()[r].rdata == want.records()[r].rdata);
    is_new[i] = now_new ? 1 : 0;
    if (second[i].outcome == commit_outcome::written) REQUIRE(now_new);
  }
  for (std::size_t unit = 0; unit * per_txn < n; ++unit) {
    for (std::size_t i = unit * per_txn; i < std::min(n, (unit + 1) * per_txn); ++i) {
      INFO("transaction " << unit << ", item " << i);
      REQUIRE(is_new[i] == is_new[unit * per_txn]);
    }
  }

  // The pending items again, as they were: every one is decided now, and every key serves 2.
  std::vector<commit_item> retry;
  for (const commit_item& it : second) {
    if (it.outcome == commit_outcome::pending) retry.push_back(commit_item{it.endpoint, it.expected, it.desired, it.records});
  }
  REQUIRE(store.commit_batch(retry));
  for (const commit_item& it : retry) {
    const std::size_t i = std::stoul(store.name(it.endpoint).substr(1));
    INFO("item " << i << ": " << to_string(it.outcome));
    // Written now, or stale because the transaction whose answer was lost had written it.
    REQUIRE((it.outcome == commit_outcome::written || (it.outcome == commit_outcome::stale && is_new[i] == 1)));
    if (it.outcome == commit_outcome::written) REQUIRE(is_new[i] == 0);
  }
  std::vector<stamp> final_stamps(n);
  REQUIRE(store.read_stamps(h, final_stamps));
  for (const stamp& s : final_stamps) REQUIRE(s.gen == generation{2});
}

TEST_CASE("etcd read_stamps: a dense batch is one range request, and other writers' keys in it change nothing",
          "[etcd][batch]") {
  const std::string uri = "etcd://" + shared_etcd().client_address() + unique_prefix() + "?fence=floor&max-txn-ops=16";
  auto store = etcd_store::open_uri(uri).value();
  const auto h = resolve_all(store, 40);
  const record_set records = many_records(2);
  std::vector<endpoint_handle> written(h.begin(), h.begin() + 30);  // the last ten never written
  auto items = batch_of(written, std::vector<stamp>(written.size()), 1, 1, records);
  REQUIRE(store.commit_batch(items));
  // Another writer's endpoints between these keys (this store does not know them): e1x, e2x, ...
  auto other = etcd_store::open_uri(uri).value();
  std::vector<endpoint_handle> foreign;
  for (int i = 1; i <= 5; ++i) foreign.push_back(other.resolve("e" + std::to_string(i) + "x.batch.test.").value());
  auto theirs = batch_of(foreign, std::vector<stamp>(foreign.size()), 7, 1, records);
  REQUIRE(other.commit_batch(theirs));
  auto exact = [&](const std::vector<stamp>& seen) {
    for (std::size_t i = 0; i < h.size(); ++i) {
      INFO(name_of(i));
      CHECK(seen[i] == store.read_stamp(h[i]).value());
      CHECK(seen[i].gen == (i < 30 ? generation{1} : generation_none));
    }
  };
  std::vector<stamp> seen(h.size());
  std::uint64_t before = store.requests_sent();
  REQUIRE(store.read_stamps(h, seen));
  CHECK(store.requests_sent() - before == 1);  // 40 keys with max-txn-ops 16: 3 transactions otherwise
  exact(seen);
  // Many foreign keys in between: the range's limit stops it, and the transactions read them.
  std::vector<endpoint_handle> crowd;
  for (int i = 0; i < 60; ++i) crowd.push_back(other.resolve("e2" + std::to_string(i) + "y.batch.test.").value());
  auto many = batch_of(crowd, std::vector<stamp>(crowd.size()), 7, 1, records);
  REQUIRE(other.commit_batch(many));
  before = store.requests_sent();
  REQUIRE(store.read_stamps(h, seen));
  CHECK(store.requests_sent() - before == 1 + 3);
  exact(seen);
  // A sparse batch (a plan's few changes spread over many endpoints): transactions at once.
  const auto all = resolve_all(store, 400);
  std::vector<endpoint_handle> spread;
  for (std::size_t i = 0; i < 400; i += 20) spread.push_back(all[i]);
  std::vector<stamp> sparse(spread.size());
  before = store.requests_sent();
  REQUIRE(store.read_stamps(spread, sparse));
  CHECK(store.requests_sent() - before == 2);  // 20 keys, 16 a transaction
  for (std::size_t i = 0; i < spread.size(); ++i) CHECK(sparse[i] == store.read_stamp(spread[i]).value());
}
