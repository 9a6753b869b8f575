// The etcd store's batches with apply marks (marks_batch_store) when the answer to one of their
// transactions is lost: the transaction reached etcd and was applied, but the connection was cut
// before its answer came back (tests/support/fault_proxy.hpp sits between the store and etcd and
// drops that answer). With max-txn-ops 8 a batch of 12 goes in three transactions: 4 items with
// the begin, 5, then 3 with the finish.
//  - the answer to the first transaction (the one with the begin) is lost: the call fails with
//    store_unavailable ("outcome unknown"), nothing reported written, began and begin_refused
//    both false; etcd holds that whole transaction (its 4 items and the begun mark, one
//    revision) and nothing of the two transactions never sent;
//  - the answer to the last transaction (the one with the finish) is lost: the call fails with
//    store_unavailable, the first two transactions' items written, the last's pending, finished
//    false; etcd holds the last transaction whole (its 3 items and the marks {2, 2}, one
//    revision);
//  - an enactor whose batch spans several transactions, losing either answer, converges: its
//    applied generation reaches the plan, the marks are {2, 2}, every endpoint serves the plan.
#include <catch2/catch.hpp>

#include <planfence/detail/base64.hpp>
#include <planfence/etcd/store.hpp>
#include <planfence/planfence.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "../support/fault_proxy.hpp"
#include "../support/marks_fold.hpp"
#include "../support/store_fixtures.hpp"
#include "etcd_support.hpp"

namespace {

using namespace planfence;
using planfence_test::fault_proxy;
using planfence_test::fold;
using planfence_test::shared_etcd;
using planfence_test::unique_prefix;

apply_marks gens(std::uint64_t begun, std::uint64_t applied) { return apply_marks{generation{begun}, generation{applied}, 0}; }
apply_marks without_version(apply_marks m) {
  m.version = 0;
  return m;
}
stamp at(std::uint64_t gen, std::uint64_t fence) { return stamp{generation{gen}, fence_token{fence}, 0}; }
std::string name_of(std::size_t i) { return "e" + std::to_string(i) + ".lost.test."; }

etcd_store open_store(const etcd::client_config& config, const std::string& prefix, std::size_t max_txn_ops) {
  auto store = etcd_store::make(config, prefix, {}, etcd::fence_mode::floor_only, {}, etcd::txn_limits{.max_txn_ops = max_txn_ops});
  if (!store) FAIL("etcd_store: " << store.error().message());
  return std::move(*store);
}

/// A store talking to the test's etcd through `proxy` (opened at its first use: it learns at
/// opening whether the fence floor key exists, so open it after what sets up the prefix, or its
/// first transaction is refused for the floor's form and sent again), and one talking to etcd
/// directly (to set up generation 1 and to read back what etcd holds).
struct through_proxy {
  std::string prefix = unique_prefix();
  fault_proxy proxy{shared_etcd().client_port(), fault_proxy::framing::http};
  std::size_t max_txn_ops;
  etcd_store direct;
  std::optional<etcd_store> proxied;

  explicit through_proxy(std::size_t ops) : max_txn_ops(ops), direct(open_store(shared_etcd().config(), prefix, 128)) {}

  etcd_store& store() {
    if (!proxied) proxied.emplace(open_store(proxied_config(), prefix, max_txn_ops));
    return *proxied;
  }

  [[nodiscard]] etcd::client_config proxied_config() const {
    etcd::client_config config = shared_etcd().config();
    config.members = {etcd::member_address{"127.0.0.1", proxy.port()}};
    return config;
  }

  /// A transaction that writes the apply marks (the begin or the finish of a batch): a put, and
  /// the marks key (base64, as the gateway takes keys) in its body. Read-only transactions
  /// (read_stamps) have no put.
  [[nodiscard]] fault_proxy::matcher writes_marks() const {
    const std::string key = planfence::detail::base64_encode(std::string_view(direct.keys().marks()));
    return [key](std::string_view request) {
      return request.find("/v3/kv/txn") != std::string_view::npos && request.find("request_put") != std::string_view::npos &&
             request.find(key) != std::string_view::npos;
    };
  }
};

/// Endpoints e0..e(n-1) at generation 1 (fence 1) with v1, the marks {1, 1}, written directly.
std::vector<endpoint_handle> apply_g1(etcd_store& store, std::size_t n, const record_set& v1) {
  std::vector<endpoint_handle> h;
  std::vector<commit_item> items;
  for (std::size_t i = 0; i < n; ++i) h.push_back(store.resolve(name_of(i)).value());
  for (const endpoint_handle e : h) items.push_back({e, stamp{}, at(1, 1), &v1});
  REQUIRE(store.begin_apply(apply_marks{}, generation{1}, fence_token{1}));
  REQUIRE(store.commit_batch(items));
  REQUIRE(without_version(store.finish_apply(generation{1}, fence_token{1}).value()) == gens(1, 1));
  return h;
}

}  // namespace

TEST_CASE("etcd lost answer: a batch whose transaction with the marks lost its answer is all or nothing per transaction",
          "[etcd][batch][marks][lost]") {
  constexpr std::size_t n = 12;
  through_proxy z(8);
  const record_set v1 = planfence_test::a_records({"10.0.0.1"});
  const record_set v2 = planfence_test::a_records({"10.0.0.2"});
  const std::vector<endpoint_handle> h = apply_g1(z.direct, n, v1);
  for (std::size_t i = 0; i < n; ++i) REQUIRE(z.store().resolve(name_of(i)).value() == h[i]);  // the same handles
  const apply_marks g1 = z.direct.read_marks().value();
  std::vector<commit_item> items;
  for (const endpoint_handle e : h) items.push_back({e, z.direct.read_stamp(e).value(), at(2, 1), &v2});
  batch_marks m = fold(&g1, true, 2, 1);

  // What etcd holds after the call: each endpoint's stamp (its mod revision in `version`).
  auto stamps_now = [&] {
    std::vector<stamp> out(n);
    REQUIRE(z.direct.read_stamps(h, out));
    return out;
  };

  SECTION("the answer to the first transaction, with the begin, is lost") {
    z.proxy.cut_answer(1, z.writes_marks());
    const std::uint64_t sent = z.store().transactions_sent();
    auto done = z.store().commit_batch(items, m);
    REQUIRE(z.proxy.cuts() == 1);
    REQUIRE_FALSE(done);
    INFO(done.error().message());
    CHECK(done.error().code == errc::store_unavailable);
    CHECK(done.error().message().find("outcome unknown") != std::string::npos);
    CHECK(z.store().transactions_sent() - sent == 1);  // the batch ended with the lost transaction
    CHECK_FALSE(m.began);                             // not known: it may or may not have landed
    CHECK_FALSE(m.begin_refused);                     // not refused either: nothing says so
    CHECK_FALSE(m.finished);
    for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::pending);
    // etcd applied the first transaction whole: its 4 items and the begun mark, one revision.
    const apply_marks stored = z.direct.read_marks().value();
    CHECK(without_version(stored) == gens(2, 1));
    const std::vector<stamp> now = stamps_now();
    for (std::size_t i = 0; i < n; ++i) {
      INFO(name_of(i));
      if (i < 4) {
        CHECK(now[i].gen == generation{2});
        CHECK(now[i].version == stored.version);
        CHECK(planfence_test::served_addresses(z.direct, h[i]) == std::vector<std::string>{"10.0.0.2"});
      } else {
        CHECK(now[i].gen == generation{1});  // never sent
        CHECK(planfence_test::served_addresses(z.direct, h[i]) == std::vector<std::string>{"10.0.0.1"});
      }
    }
  }

  SECTION("the answer to the last transaction, with the finish, is lost") {
    z.proxy.cut_answer(2, z.writes_marks());
    const std::uint64_t sent = z.store().transactions_sent();
    auto done = z.store().commit_batch(items, m);
    REQUIRE(z.proxy.cuts() == 1);
    REQUIRE_FALSE(done);
    INFO(done.error().message());
    CHECK(done.error().code == errc::store_unavailable);
    CHECK(done.error().message().find("outcome unknown") != std::string::npos);
    CHECK(z.store().transactions_sent() - sent == 3);
    CHECK(m.began);
    CHECK_FALSE(m.begin_refused);
    CHECK_FALSE(m.finished);  // not known
    std::set<std::uint64_t> revisions;  // of the two transactions whose answers came back
    for (std::size_t i = 0; i < n; ++i) {
      INFO(name_of(i));
      CHECK(items[i].outcome == (i < 9 ? commit_outcome::written : commit_outcome::pending));
      if (i < 9) revisions.insert(items[i].now.version);
    }
    CHECK(revisions.size() == 2);
    // etcd applied the last transaction whole: its 3 items and the marks {2, 2}, one revision.
    const apply_marks stored = z.direct.read_marks().value();
    CHECK(without_version(stored) == gens(2, 2));
    const std::vector<stamp> now = stamps_now();
    for (std::size_t i = 0; i < n; ++i) {
      INFO(name_of(i));
      CHECK(now[i].gen == generation{2});
      if (i >= 9) CHECK(now[i].version == stored.version);
      if (i < 9) CHECK(now[i].version == items[i].now.version);
    }
  }
}

namespace {

using lost_enactor = enactor<etcd_store, local_lease_authority<manual_clock>, plan_registry, manual_clock>;

}  // namespace

TEST_CASE("etcd lost answer: an enactor whose batch lost the answer with the begin or the finish converges",
          "[etcd][batch][marks][lost][enactor]") {
  constexpr std::size_t n = 30;
  // max-txn-ops 8 and one batch of all 30: several transactions, the begin in the first and the
  // finish in the last.
  const std::size_t nth = GENERATE(1, 2);  // the transaction with the begin, the one with the finish
  INFO((nth == 1 ? "the begin's answer lost" : "the finish's answer lost"));
  through_proxy z(8);
  manual_clock clock;
  local_lease_authority<manual_clock> authority{clock};
  plan_registry registry;
  lost_enactor e{z.store(), authority, registry, clock,
                 {.name = "lost", .batch_max = 1000, .zone_change_share_max = 1.0, .collect = false}};
  std::map<std::string, std::vector<std::string>> first;
  std::map<std::string, std::vector<std::string>> second;
  for (std::size_t i = 0; i < n; ++i) {
    first[name_of(i)] = {"10.1.0." + std::to_string(i + 1)};
    second[name_of(i)] = {"10.2.0." + std::to_string(i + 1)};
  }
  REQUIRE(registry.publish(planfence_test::make_plan(1, first)));
  planfence_test::apply_until(e, generation{1});
  REQUIRE(without_version(z.direct.read_marks().value()) == gens(1, 1));

  REQUIRE(registry.publish(planfence_test::make_plan(2, second)));
  z.proxy.cut_answer(nth, z.writes_marks());
  planfence_test::apply_until(e, generation{2});
  CHECK(z.proxy.cuts() == 1);  // the answer was lost on the way
  const apply_marks stored = z.direct.read_marks().value();
  CHECK(stored.begun == generation{2});
  CHECK(stored.applied == generation{2});
  for (std::size_t i = 0; i < n; ++i) {
    INFO(name_of(i));
    const endpoint_handle handle = z.direct.resolve(name_of(i)).value();
    CHECK(z.direct.read_stamp(handle).value().gen == generation{2});
    CHECK(planfence_test::served_addresses(z.direct, handle) == std::vector<std::string>{"10.2.0." + std::to_string(i + 1)});
  }
}
