// The etcd lease authority against a real etcd: tokens are holder-key create revisions and grow
// with every grant; a second holder is refused while the first holds; revocation and keep-alive
// failure are noticed promptly (lost(), on_lost, renew and check refuse); and a holder that lost
// its lease is fenced out by the etcd store whatever it believes (S2).
#include <catch2/catch.hpp>

#include <planfence/etcd/lease_authority.hpp>
#include <planfence/etcd/store.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "etcd_support.hpp"

using namespace planfence;
using namespace std::chrono_literals;
using planfence_test::a_records;
using planfence_test::shared_etcd;
using planfence_test::unique_prefix;

namespace {

template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds within) {
  const auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

}  // namespace

TEST_CASE("etcd lease: one holder at a time, tokens are holder-key revisions and only grow", "[etcd][lease]") {
  steady_clock clock;
  const std::string prefix = unique_prefix();
  auto az1 = etcd::etcd_lease_authority<>::make(shared_etcd().config(), prefix, clock, {.holder_name = "az1"}).value();
  auto az2 = etcd::etcd_lease_authority<>::make(shared_etcd().config(), prefix, clock, {.holder_name = "az2"}).value();
  auto first = az1.acquire(2s);
  REQUIRE(first);
  CHECK(first->expires > std::chrono::duration_cast<std::chrono::nanoseconds>(clock.now().time_since_epoch()));
  etcd::client c{shared_etcd().config()};
  auto holder = c.range(az1.keys().holder()).value();
  REQUIRE(holder.kvs.size() == 1);
  CHECK(static_cast<std::uint64_t>(holder.kvs[0].create_revision) == first->fence.value());
  CHECK(holder.kvs[0].value == "az1\n");
  CHECK(holder.kvs[0].lease == static_cast<std::int64_t>(first->id.value()));

  auto refused = az2.acquire(2s);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::lease_held);
  CHECK(refused.error().detail.find("az1") != std::string::npos);
  CHECK(az1.acquire(2s).error().code == errc::lease_held);  // even for the holder itself
  CHECK(az1.check(*first));
  auto renewed = az1.renew(*first, 2s);
  REQUIRE(renewed);
  CHECK(renewed->fence == first->fence);

  REQUIRE(az1.release(*first));
  CHECK(az1.check(*first).error().code == errc::lease_lapsed);
  auto second = az2.acquire(2s);
  REQUIRE(second);
  CHECK(second->fence > first->fence);
  CHECK(az1.renew(*first, 2s).error().code == errc::lease_lapsed);
  REQUIRE(az2.release(*second));
  auto third = az1.acquire(2s);
  REQUIRE(third);
  CHECK(third->fence > second->fence);
  CHECK(az1.keep_alives() == 0);
  CHECK(eventually([&] { return az1.keep_alives() > 0; }, 2s));  // the background keep-alive runs
}

TEST_CASE("etcd lease: a revoked lease is noticed promptly, and its holder is fenced by etcd (S2)", "[etcd][lease][S2]") {
  steady_clock clock;
  const std::string prefix = unique_prefix();
  std::atomic<int> lost_calls{0};
  auto authority = etcd::etcd_lease_authority<>::make(shared_etcd().config(), prefix, clock,
                                                      {.holder_name = "az1", .on_lost = [&] { ++lost_calls; }})
                       .value();
  auto store = etcd_store::make(shared_etcd().config(), prefix, {"www.example.test."}).value();
  const auto www = store.resolve("www.example.test.").value();
  auto held = authority.acquire(3s).value();
  REQUIRE(store.raise_fence(held.fence));
  REQUIRE(store.commit(www, store.read_stamp(www).value(), stamp{generation{1}, held.fence, 0}, a_records({"192.0.2.1"})));

  // An operator (or etcd itself, on expiry) ends the lease behind the holder's back.
  etcd::client c{shared_etcd().config()};
  REQUIRE(c.revoke(static_cast<std::int64_t>(held.id.value())));
  CHECK(eventually([&] { return authority.lost(); }, 2500ms));  // within one keep-alive interval (TTL/3)
  CHECK(lost_calls.load() == 1);
  CHECK(authority.renew(held, 3s).error().code == errc::lease_lapsed);
  CHECK(authority.check(held).error().code == errc::lease_lapsed);
  auto late = store.commit(www, store.read_stamp(www).value(), stamp{generation{2}, held.fence, 0}, a_records({"192.0.2.2"}));
  REQUIRE_FALSE(late);
  CHECK(late.error().code == errc::fenced);
  CHECK(store.read_stamp(www)->gen == generation{1});
  // The authority can grant again, with a larger token.
  auto again = authority.acquire(3s);
  REQUIRE(again);
  CHECK(again->fence > held.fence);
}

TEST_CASE("etcd lease: keep-alive failure past the expiry marks the grant lost, then etcd expires it", "[etcd][lease]") {
  // etcd is paused (SIGSTOP) for longer than the lease: keep-alives fail until the lease's local
  // expiry passes, and the holder must then consider itself lost rather than wait for etcd.
  planfence_test::etcd_member own;  // paused below: not the shared member
  steady_clock clock;
  const std::string prefix = unique_prefix();
  auto cfg = own.config();
  cfg.request_timeout = 300ms;
  auto authority = etcd::etcd_lease_authority<>::make(cfg, prefix, clock, {.holder_name = "az1"}).value();
  auto held = authority.acquire(1s).value();
  own.pause();
  CHECK(eventually([&] { return authority.lost(); }, 4s));
  own.resume();
  CHECK(authority.renew(held, 1s).error().code == errc::lease_lapsed);
  // After etcd resumes, it expires the lease itself: another holder gets it with a larger token.
  auto other = etcd::etcd_lease_authority<>::make(own.config(), prefix, clock, {.holder_name = "az2"}).value();
  std::optional<lease> taken;
  CHECK(eventually(
      [&] {
        auto r = other.acquire(1s);
        if (r) taken = *r;
        return r.has_value();
      },
      6s));
  REQUIRE(taken);
  CHECK(taken->fence > held.fence);
}
