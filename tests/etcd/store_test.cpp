// The etcd record store against a real etcd: the shared conformance suite (the same cases every
// store passes), then what only this store does: the holder-key compare that makes etcd itself
// refuse a writer whose lease is gone or superseded (S2 at the server), values legible to
// etcdctl, and the inspectable_store half.
#include <catch2/catch.hpp>

#include <planfence/etcd/store.hpp>

#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../support/store_fixtures.hpp"
#include "etcd_support.hpp"

namespace planfence_test {

/// The conformance fixture: a store over `names` under a fresh prefix of the process's etcd.
/// Floor-only fencing, because the suite uses fixed tokens (1, 2, 3, 4) rather than holder-key
/// revisions; the holder-key mode is tested below.
struct etcd_store_fixture {
  static constexpr const char* name = "etcd";

  explicit etcd_store_fixture(const std::vector<std::string>& names)
      : store(planfence::etcd_store::make(shared_etcd().config(), unique_prefix(), names,
                                                planfence::etcd::fence_mode::floor_only)
                  .value()) {}

  planfence::etcd_store store;

  const planfence::record_set& records(planfence::generation gen, const std::string& endpoint) {
    std::lock_guard lock(mutex_);
    static_cast<void>(endpoint);
    auto [it, inserted] = sets_.try_emplace(gen.value(), nullptr);
    if (inserted) it->second = std::make_unique<planfence::record_set>(a_records({address_of(gen.value())}));
    return *it->second;
  }

  std::vector<std::string> served(planfence::endpoint_handle h) const {
    std::vector<std::string> out;
    const auto records = store.served(h);  // named: a range-for over a temporary's value() dangles
    for (const planfence::record& r : records.value()) out.push_back(r.rdata);
    return out;
  }

 private:
  std::mutex mutex_;
  std::map<std::uint64_t, std::unique_ptr<planfence::record_set>> sets_;
};

}  // namespace planfence_test

#define PLANFENCE_CONFORMANCE_FIXTURES std::tuple<planfence_test::etcd_store_fixture>
#include "../support/store_conformance.inc"

namespace {

using planfence_test::a_records;
using planfence_test::shared_etcd;
using planfence_test::unique_prefix;

/// Takes P/holder under a fresh etcd lease, as the lease authority does; returns (lease id,
/// create revision = the fence token).
std::pair<std::int64_t, std::int64_t> take_holder(etcd::client& c, const etcd::layout& keys, const std::string& who) {
  const auto lease = c.grant(5).value();
  auto t = c.txn({etcd::compare::create_revision(keys.holder(), 0)}, {etcd::op::put(keys.holder(), who, lease.id)}, {});
  REQUIRE(t);
  REQUIRE(t->succeeded);
  return {lease.id, t->revision};
}

}  // namespace

TEST_CASE("etcd store: etcd itself refuses a writer whose holder key is gone or taken (S2)", "[etcd][S2]") {
  // Proves that S2 does not depend on anyone raising the fence floor: the commit transaction
  // compares the holder key's create revision with the committer's token, so a writer whose
  // lease was revoked (or expired) is refused, and so is one whose key was taken over, even
  // though the floor still admits its token.
  auto store = etcd_store::make(shared_etcd().config(), unique_prefix(), {"www.example.test."}).value();
  etcd::client& c = store.connection();
  const auto www = store.resolve("www.example.test.").value();
  const auto [first_lease, first_fence] = take_holder(c, store.keys(), "az1");
  const stamp empty = store.read_stamp(www).value();
  auto applied = store.commit(www, empty, stamp{generation{1}, fence_token{static_cast<std::uint64_t>(first_fence)}, 0},
                              a_records({"192.0.2.1"}));
  REQUIRE(applied);
  const stamp after_first = store.read_stamp(www).value();
  CHECK(after_first.version == applied->version);

  // The first holder's lease ends (revoked here; an expiry does the same), and a second takes over.
  REQUIRE(c.revoke(first_lease));
  auto lapsed = store.commit(www, after_first, stamp{generation{2}, fence_token{static_cast<std::uint64_t>(first_fence)}, 0},
                             a_records({"192.0.2.2"}));
  REQUIRE_FALSE(lapsed);
  CHECK(lapsed.error().code == errc::fenced);
  const auto [second_lease, second_fence] = take_holder(c, store.keys(), "az2");
  CHECK(second_fence > first_fence);
  auto superseded = store.commit(www, after_first, stamp{generation{2}, fence_token{static_cast<std::uint64_t>(first_fence)}, 0},
                                 a_records({"192.0.2.2"}));
  REQUIRE_FALSE(superseded);
  CHECK(superseded.error().code == errc::fenced);
  CHECK(store.fence_floor().value() == fence_token{0});  // nobody raised the floor: etcd refused by itself
  CHECK(store.read_stamp(www).value() == after_first);

  // Teeth: without the holder-key compare (floor-only fencing, floor not raised) etcd would have
  // accepted the superseded writer.
  auto floor_only = etcd_store::make(shared_etcd().config(), store.keys().prefix, {"www.example.test."},
                                           etcd::fence_mode::floor_only)
                        .value();
  CHECK(floor_only.commit(www, after_first, stamp{generation{2}, fence_token{static_cast<std::uint64_t>(first_fence)}, 0},
                          a_records({"192.0.2.99"}))
            .has_value());
  const stamp after_stale_write = store.read_stamp(www).value();

  auto by_second = store.commit(www, after_stale_write, stamp{generation{3}, fence_token{static_cast<std::uint64_t>(second_fence)}, 0},
                                a_records({"192.0.2.2"}));
  REQUIRE(by_second);
  CHECK(store.served(www).value().at(0).rdata == "192.0.2.2");
  REQUIRE(c.revoke(second_lease));
}

TEST_CASE("etcd store: values read by etcdctl are the legible endpoint block", "[etcd][store]") {
  // Proves what an operator sees: etcdctl get of an endpoint key prints the stamp and the
  // records in the plan text form.
  const std::string prefix = unique_prefix();
  auto store = etcd_store::make(shared_etcd().config(), prefix, {"db.example.test."}, etcd::fence_mode::floor_only).value();
  const auto db = store.resolve("db.example.test.").value();
  REQUIRE(store.commit(db, stamp{}, stamp{generation{7}, fence_token{3}, 0}, a_records({"192.0.2.7", "192.0.2.8"})));
  const std::string command = "ETCDCTL_API=3 etcdctl --endpoints=" + shared_etcd().client_address() +
                              " get --print-value-only " + prefix + "/endpoints/db.example.test. 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[256];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out += buffer;
  ::pclose(pipe);
  CHECK(out == "planfence-endpoint 1\ngeneration 7\nfence 3\nendpoint db.example.test.\n  A 60 192.0.2.7\n  A 60 192.0.2.8\n\n");
}

TEST_CASE("etcd store: inspection lists what etcd holds, and an open store resolves any canonical name", "[etcd][store]") {
  const std::string uri = "etcd://" + shared_etcd().client_address() + unique_prefix();
  auto store = etcd_store::open_uri(uri);
  REQUIRE(store);
  CHECK(store->mode() == etcd::fence_mode::holder_key);
  CHECK(store->endpoint_names().value().empty());
  const auto a = store->resolve("a.example.test.").value();
  CHECK(store->resolve("a.example.test.").value() == a);
  CHECK(store->resolve("Not.Canonical").error().code == errc::unknown_endpoint);
  CHECK(store->served(a).value().empty());
  CHECK(store->read_stamp(a).value() == stamp{});
  // Without a holder key, holder-key fencing refuses everything.
  CHECK(store->commit(a, stamp{}, stamp{generation{1}, fence_token{1}, 0}, a_records({"192.0.2.1"})).error().code == errc::fenced);
  CHECK(store->endpoint_names().value().empty());
  CHECK(store->live_generations().value().empty());
  CHECK(etcd_store::open_uri("etcd://127.0.0.1:1/x").error().code == errc::store_unavailable);
}

TEST_CASE("etcd store: ?fence=floor opens floor-only fencing for tools without a holder key", "[etcd][store][S2]") {
  const std::string uri = "etcd://" + shared_etcd().client_address() + unique_prefix();
  auto store = etcd_store::open_uri(uri + "?fence=floor");
  REQUIRE(store);
  CHECK(store->mode() == etcd::fence_mode::floor_only);
  const auto a = store->resolve("a.example.test.").value();
  REQUIRE(store->commit(a, stamp{}, stamp{generation{1}, fence_token{1}, 0}, a_records({"192.0.2.1"})));
  REQUIRE(store->raise_fence(fence_token{1024}));  // an operator fence
  const stamp now = store->read_stamp(a).value();
  CHECK(store->commit(a, now, stamp{generation{2}, fence_token{1}, 0}, a_records({"192.0.2.2"})).error().code == errc::fenced);
  REQUIRE(store->commit(a, now, stamp{generation{2}, fence_token{1024}, 0}, a_records({"192.0.2.2"})));
  CHECK(store->served(a).value().at(0).rdata == "192.0.2.2");
  auto bad = etcd_store::open_uri(uri + "?fence=none");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == errc::parse_error);
  CHECK(bad.error().message().find("fence=holder or fence=floor") != std::string::npos);
  CHECK(etcd_store::open_uri(uri + "?fence=holder")->mode() == etcd::fence_mode::holder_key);
}
