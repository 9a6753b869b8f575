// Proves S1 and S2 for every store under real concurrency, from a recorded history. Writer
// threads race commits with unique generations on a few endpoints while the fence floor is raised
// under them (which may also raise the fence in endpoints' stamps, never their generation). Each successful commit records the stamp it replaced; for each endpoint the
// replaced stamps must form one chain (no two commits replaced the same stamp: no lost update, no
// time-of-check to time-of-use window), generations strictly increase and fences never decrease
// along it (S1, S2), and no commit that started after raise_fence(f') returned succeeded with a
// token below f' (S2). The same checker is run against the broken commit rules, and must find
// violations: that is how we know it would catch a regression in the real one.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "../support/store_fixtures.hpp"

using namespace planfence;

namespace {

struct commit_record {
  std::uint32_t endpoint;
  stamp replaced;
  stamp written;
  std::uint64_t started_at;  // global sequence number taken before the commit call
};

struct history_verdict {
  std::size_t commits = 0;
  std::size_t lost_updates = 0;     // two commits replaced the same stamp
  std::size_t regressions = 0;      // S1: generation did not increase along the chain
  std::size_t fence_decreases = 0;  // S2: fence decreased along the chain
  std::size_t floor_violations = 0; // S2: succeeded below a floor raised before it started
};

/// Runs writers against `store` for `duration` and checks the history. `records_of(gen, name)`
/// returns the record set for a commit.
template <class Store, class RecordsOf>
history_verdict race(Store& store, const std::vector<std::string>& names, RecordsOf&& records_of,
                     std::chrono::milliseconds duration, int writers = 4, std::size_t min_commits = 1000) {
  std::atomic<std::uint64_t> next_generation{1};
  std::atomic<std::uint64_t> next_fence{1};
  std::atomic<std::uint64_t> sequence{0};
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> committed{0};
  std::mutex floor_mutex;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> floors;  // (fence, sequence after raise returned)
  std::vector<std::vector<commit_record>> logs(static_cast<std::size_t>(writers));
  std::vector<endpoint_handle> handles;
  for (const auto& n : names) handles.push_back(store.resolve(n).value());

  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      std::uint64_t fence = next_fence.fetch_add(1);
      std::uint64_t rng = 0x9e3779b97f4a7c15ULL * static_cast<std::uint64_t>(w + 1);
      std::uint32_t operations = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        if (rng % 64 == 0) {  // take over with a new, larger token, as a new lease holder would
          fence = next_fence.fetch_add(1);
          const bool raised = store.raise_fence(fence_token{fence}).has_value();
          PLANFENCE_ASSERT(raised);  // Catch2 assertions are not thread-safe
          const std::uint64_t after = sequence.fetch_add(1);
          std::lock_guard lock(floor_mutex);
          floors.emplace_back(fence, after);
        }
        const auto e = static_cast<std::uint32_t>((rng >> 8) % handles.size());
        const stamp seen = store.read_stamp(handles[e]).value();
        // Now and then give the CPU away between read and commit, as an enactor between its
        // read_stamp and commit steps may be: on two cores this is what makes races happen at
        // all, so the checker sees interleavings (and catches the broken rules) even under load.
        if ((rng >> 20) % 4 == 0) std::this_thread::yield();
        const std::uint64_t gen = next_generation.fetch_add(1);
        const std::uint64_t started = sequence.fetch_add(1);
        auto done = store.commit(handles[e], seen, stamp{generation{gen}, fence_token{fence}, 0}, records_of(gen, names[e]));
        if (done) {
          logs[static_cast<std::size_t>(w)].push_back({e, seen, *done, started});
          committed.fetch_add(1, std::memory_order_relaxed);
        }
        if ((++operations & 0xff) == 0) std::this_thread::yield();
      }
    });
  }
  // Run for `duration`, and longer (up to 20x) until enough commits landed for the history to
  // mean something: on a loaded machine the writer holding the largest fence may get little CPU
  // while the fenced ones spin, and a few commits would check nothing.
  const auto started_at = std::chrono::steady_clock::now();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
    const auto elapsed = std::chrono::steady_clock::now() - started_at;
    if (elapsed >= duration && committed.load(std::memory_order_relaxed) >= min_commits) break;
    if (elapsed >= duration * 20) break;
  }
  stop = true;
  for (auto& t : threads) t.join();

  history_verdict verdict;
  std::map<std::uint32_t, std::vector<commit_record>> per_endpoint;
  for (const auto& log : logs) {
    for (const auto& c : log) per_endpoint[c.endpoint].push_back(c);
    verdict.commits += log.size();
  }
  for (auto& [endpoint, commits] : per_endpoint) {
    // Order by the generation written; in a correct store that is also the commit order.
    std::sort(commits.begin(), commits.end(), [](const auto& a, const auto& b) { return a.written.gen < b.written.gen; });
    // Chains compare generations: raise_fence may raise an endpoint's fence between two commits
    // without changing its generation.
    std::map<std::uint64_t, int> replaced_count;
    for (const auto& c : commits) {
      if (++replaced_count[c.replaced.gen.value()] > 1) ++verdict.lost_updates;
      if (!(c.written.gen > c.replaced.gen)) ++verdict.regressions;
      if (c.written.fence < c.replaced.fence) ++verdict.fence_decreases;
    }
    for (std::size_t i = 1; i < commits.size(); ++i) {
      const bool chained = commits[i].replaced.gen == commits[i - 1].written.gen &&
                           commits[i].replaced.fence >= commits[i - 1].written.fence;
      if (!chained) ++verdict.lost_updates;
    }
    // The final stamp is the newest commit: nothing regressed after it.
    const stamp final_stamp = store.read_stamp(handles[endpoint]).value();
    if (!commits.empty() && final_stamp.gen != commits.back().written.gen) ++verdict.regressions;
  }
  // For each commit, the largest floor raised before it started (prefix maximum over raise order).
  std::sort(floors.begin(), floors.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  std::vector<std::uint64_t> floor_so_far(floors.size());
  for (std::size_t i = 0; i < floors.size(); ++i) {
    floor_so_far[i] = std::max(floors[i].first, i == 0 ? 0 : floor_so_far[i - 1]);
  }
  for (const auto& log : logs) {
    for (const auto& c : log) {
      const auto after = std::lower_bound(floors.begin(), floors.end(), c.started_at,
                                          [](const auto& f, std::uint64_t at) { return f.second < at; });
      if (after == floors.begin()) continue;
      const std::uint64_t floor = floor_so_far[static_cast<std::size_t>(after - floors.begin()) - 1];
      if (c.written.fence.value() < floor) ++verdict.floor_violations;
    }
  }
  return verdict;
}

const std::vector<std::string> names = {"a.example.", "b.example.", "c.example."};

}  // namespace

TEMPLATE_LIST_TEST_CASE("racing writers leave a history that keeps S1 and S2", "[concurrent][S1][S2]",
                        planfence_test::store_fixtures) {
  TestType f{names};
  // The race checks stamps, not answers: every commit carries generation 1's records, so the
  // fixture needs no plan per generation (tens of thousands are committed).
  auto records_of = [&](std::uint64_t, const std::string& name) -> const record_set& {
    return f.records(generation{1}, name);
  };
  const history_verdict v = race(f.store, names, records_of, std::chrono::milliseconds{300});
  INFO("commits " << v.commits);
  CHECK(v.commits > 100);
  CHECK(v.lost_updates == 0);
  CHECK(v.regressions == 0);
  CHECK(v.fence_decreases == 0);
  CHECK(v.floor_violations == 0);
}

namespace {
// The broken variants share one registry-free setup: the commit rules do not look at records.
template <commit_rule Rule>
history_verdict race_broken(std::chrono::milliseconds duration) {
  plan_registry registry;
  auto store = basic_memory_store<plan_registry, Rule>::make(registry, names).value();
  const record_set none{};
  return race(store, names, [&](std::uint64_t, const std::string&) -> const record_set& { return none; }, duration);
}
}  // namespace

TEST_CASE("the history checker catches check-then-write (S1) and ignored fences (S2)", "[concurrent][S1][S2][broken]") {
  // Races are probabilistic: run in rounds until the checker sees the violation, bounded.
  bool caught_toctou = false;
  for (int round = 0; round < 20 && !caught_toctou; ++round) {
    const history_verdict v = race_broken<commit_rule::check_then_write>(std::chrono::milliseconds{100});
    caught_toctou = v.lost_updates > 0 || v.regressions > 0;
  }
  CHECK(caught_toctou);

  bool caught_unconditional = false;
  for (int round = 0; round < 20 && !caught_unconditional; ++round) {
    const history_verdict v = race_broken<commit_rule::unconditional>(std::chrono::milliseconds{100});
    caught_unconditional = v.regressions > 0 || v.lost_updates > 0;
  }
  CHECK(caught_unconditional);

  bool caught_fence = false;
  for (int round = 0; round < 20 && !caught_fence; ++round) {
    const history_verdict v = race_broken<commit_rule::ignore_fence>(std::chrono::milliseconds{100});
    caught_fence = v.fence_decreases > 0 || v.floor_violations > 0;
  }
  CHECK(caught_fence);
}
