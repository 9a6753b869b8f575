// Proves that the plan registry's mutex (detail::registry_mutex: a CAS to lock, an exchange to
// unlock, a sleep on the word when contended) excludes, and that the registry's publish and
// collect keep S5 and the retained order when threads race on them: of several publishers of
// one generation with different contents exactly one wins and the others are refused as
// equivocation, and a generation collected while publishers race never comes back.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/fixtures.hpp"

#include <planfence/registry.hpp>

using planfence::errc;
using planfence::generation;
using planfence::plan_registry;
using planfence_test::generation_plan;
using planfence_test::make_plan;

TEST_CASE("registry_mutex: contended sections exclude each other, and every waiter wakes", "[concurrent][registry]") {
  planfence::detail::registry_mutex mutex;
  std::uint64_t counter = 0;  // plain: only the mutex orders the increments
  constexpr int threads = 4;
  constexpr int rounds = 20'000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (int i = 0; i < rounds; ++i) {
        std::lock_guard lock(mutex);
        const std::uint64_t seen = counter;
        if (i % 64 == 0) std::this_thread::yield();  // hold it a while: others must wait (and sleep)
        counter = seen + 1;
      }
    });
  }
  for (std::thread& w : workers) w.join();
  CHECK(counter == std::uint64_t{threads} * rounds);
}

TEST_CASE("racing publishers of one generation: one content wins, the others are equivocation (S5)",
          "[concurrent][registry][S5]") {
  const std::vector<std::string> names{"a.example."};
  for (std::uint64_t gen = 1; gen <= 200; ++gen) {
    plan_registry registry;
    constexpr int publishers = 3;
    std::vector<planfence::plan> plans;
    for (int k = 0; k < publishers; ++k) {
      plans.push_back(make_plan(gen, {{"a.example.", {"192.0.2." + std::to_string(k + 1)}}}));
    }
    std::atomic<int> won{0};
    std::atomic<int> refused{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> workers;
    for (int k = 0; k < publishers; ++k) {
      workers.emplace_back([&, k] {
        while (!go.load(std::memory_order_acquire)) {
        }
        auto pinned = registry.publish(std::move(plans[static_cast<std::size_t>(k)]));
        if (pinned) {
          won.fetch_add(1);
        } else if (pinned.error().code == errc::equivocation) {
          refused.fetch_add(1);
        }
      });
    }
    go.store(true, std::memory_order_release);
    for (std::thread& w : workers) w.join();
    REQUIRE(won.load() == 1);
    REQUIRE(refused.load() == publishers - 1);
    REQUIRE(registry.retained() == std::vector<generation>{generation{gen}});
  }
}

TEST_CASE("publishers racing a collector: a generation is collected once at most, retained stays sorted (S5)",
          "[concurrent][registry][S5]") {
  const std::vector<std::string> names{"a.example.", "b.example."};
  plan_registry registry;
  constexpr std::uint64_t last = 3000;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> bad{0};
  // Two publishers take alternate generations (so publishes arrive out of order now and then);
  // each also re-publishes an older generation: the same plan while it is retained, else
  // refused as collected.
  auto publisher = [&](std::uint64_t first) {
    for (std::uint64_t gen = first; gen <= last; gen += 2) {
      // Refused as collected when the other publisher's newer generations pushed this one's
      // place out of the window before it arrived.
      auto pinned = registry.publish(generation_plan(gen, names));
      if (!pinned && pinned.error().code != errc::collected && pinned.error().code != errc::registry_full) {
        bad.fetch_add(1);
      }
      if (gen > 8) {
        auto again = registry.publish(generation_plan(gen - 8, names));
        if (!again && again.error().code != errc::collected && again.error().code != errc::registry_full) {
          bad.fetch_add(1);
        }
      }
    }
  };
  std::thread collector([&] {
    std::set<std::uint64_t> collected;
    while (!done.load(std::memory_order_acquire)) {
      const auto report = registry.collect({.keep_newest = 4}, 1'761'200'000'000 + last + 1,
                                           [](std::vector<generation>&) {});
      for (generation g : report.collected) {
        if (!collected.insert(g.value()).second) bad.fetch_add(1);  // collected twice: it came back
      }
      const std::vector<generation> retained = registry.retained();
      if (!std::is_sorted(retained.begin(), retained.end())) bad.fetch_add(1);
    }
  });
  std::thread odd(publisher, 1);
  std::thread even(publisher, 2);
  odd.join();
  even.join();
  done.store(true, std::memory_order_release);
  collector.join();
  CHECK(bad.load() == 0);
  const std::vector<generation> retained = registry.retained();
  CHECK(std::is_sorted(retained.begin(), retained.end()));
  CHECK(std::adjacent_find(retained.begin(), retained.end()) == retained.end());
}
