// Proves S1 and S2 for the RFC 2136 store under real concurrency against a real knotd. Writer
// threads, each with its own store (its own connections, as separate enactor processes would),
// race commits with unique generations on the same three endpoints; each pauses between reading
// the stamp and committing, the window a delayed 2025 enactor had. Halfway, a new lease holder
// raises the fence floor above two of the writers' tokens. Checked from what the server answers:
//  - a watcher reading the stamps throughout never sees an endpoint's generation decrease (S1);
//  - each successful commit replaced a distinct stamp (no lost update: the prerequisite is a
//    compare-and-swap), and generations increase along each endpoint's chain (S1);
//  - no commit that started after raise_fence returned succeeded with a smaller token (S2);
//  - at the end, each endpoint serves exactly the records of the generation its stamp names
//    (records and stamp are written in one atomic step).
// The same run with prerequisites omitted (the broken variant, as popular RFC 2136 tools send
// updates) must show violations: that is how we know the checks have teeth.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "knot_fixture.hpp"

using namespace planfence;

namespace {

struct success {
  std::uint32_t endpoint;
  stamp replaced;
  stamp written;
  std::uint64_t started_at;
};

struct verdict {
  std::size_t commits = 0, refused_stale = 0, refused_fenced = 0, conflicts = 0, other_errors = 0;
  std::size_t watcher_regressions = 0;  // S1 as a reader sees it
  std::size_t lost_updates = 0;         // two commits replaced the same stamp
  std::size_t chain_regressions = 0;    // S1 along the chain
  std::size_t fence_violations = 0;     // S2 after the raise
  std::size_t torn_endpoints = 0;       // records and stamp disagree at the end
};

verdict race(const planfence_example::knot_server& knot, bool broken) {
  const std::vector<std::string> names = {"www.example.test.", "db.example.test.", "api.example.test."};
  auto make_store = [&] {
    auto options = rfc2136_store::parse_uri(knot.uri("example.test.")).value();
    options.broken_omit_prerequisites = broken;
    auto s = rfc2136_store::open(std::move(options), names);
    PLANFENCE_ASSERT(s.has_value());
    return std::move(*s);
  };
  std::map<std::uint64_t, record_set> sets;
  std::mutex sets_mutex;
  auto records_of = [&](std::uint64_t gen) -> const record_set& {
    std::lock_guard lock(sets_mutex);
    auto it = sets.find(gen);
    if (it == sets.end()) it = sets.emplace(gen, planfence_test::a_records({planfence_test::address_of(gen)})).first;
    return it->second;
  };

  std::atomic<std::uint64_t> next_gen{1}, sequence{0};
  std::atomic<std::uint64_t> raised_at{~std::uint64_t{0}};
  constexpr std::uint64_t raised_floor = 3;
  std::atomic<bool> stop{false};
  std::mutex history_mutex;
  std::vector<success> history;
  verdict v;
  std::mutex verdict_mutex;

  std::vector<std::thread> writers;
  for (std::uint64_t w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      rfc2136_store store = make_store();
      const fence_token fence{w + 1};  // writers 0 and 1 are fenced out by the raise to 3
      std::minstd_rand pick(static_cast<std::uint32_t>(w + 1));
      verdict mine;
      while (!stop.load()) {
        const endpoint_handle h{static_cast<std::uint32_t>(pick() % names.size())};
        const std::uint64_t gen = next_gen.fetch_add(1);
        auto seen = store.read_stamp(h);
        if (!seen) { ++mine.other_errors; continue; }
        std::this_thread::sleep_for(std::chrono::microseconds(200 * (w + 1)));  // the delayed enactor's window
        const std::uint64_t started = sequence.fetch_add(1);
        auto done = store.commit(h, *seen, stamp{generation{gen}, fence, 0}, records_of(gen));
        if (done) {
          ++mine.commits;
          std::lock_guard lock(history_mutex);
          history.push_back({h.index(), *seen, *done, started});
        } else if (done.error().code == errc::stale) {
          ++mine.refused_stale;
        } else if (done.error().code == errc::fenced) {
          ++mine.refused_fenced;
          std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a fenced enactor stops; here it idles
        } else if (done.error().code == errc::conflict) {
          ++mine.conflicts;
        } else {
          ++mine.other_errors;
          UNSCOPED_INFO("writer " << w << ": " << done.error().message());
        }
      }
      std::lock_guard lock(verdict_mutex);
      v.commits += mine.commits;
      v.refused_stale += mine.refused_stale;
      v.refused_fenced += mine.refused_fenced;
      v.conflicts += mine.conflicts;
      v.other_errors += mine.other_errors;
    });
  }
  std::thread watcher([&] {
    rfc2136_store store = make_store();
    std::vector<std::uint64_t> highest(names.size(), 0);
    while (!stop.load()) {
      for (std::uint32_t e = 0; e < names.size(); ++e) {
        auto s = store.read_stamp(endpoint_handle{e});
        if (!s) continue;
        if (s->gen.value() < highest[e]) {
          std::lock_guard lock(verdict_mutex);
          ++v.watcher_regressions;
        }
        highest[e] = std::max(highest[e], s->gen.value());
      }
    }
  });

  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  {
    rfc2136_store holder = make_store();
    auto raised = holder.raise_fence(fence_token{raised_floor});
    PLANFENCE_ASSERT(raised.has_value());
    raised_at.store(sequence.load());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  stop.store(true);
  for (std::thread& t : writers) t.join();
  watcher.join();

  // The chain of each endpoint, in the order the server applied the commits.
  std::map<std::uint32_t, std::vector<success>> chains;
  for (const success& s : history) chains[s.endpoint].push_back(s);
  for (auto& [endpoint, chain] : chains) {
    std::map<std::uint64_t, int> replaced;
    for (const success& s : chain) {
      if (++replaced[s.replaced.gen.value()] > 1) ++v.lost_updates;
      if (s.written.gen <= s.replaced.gen) ++v.chain_regressions;
      if (s.started_at > raised_at.load() && s.written.fence.value() < raised_floor) ++v.fence_violations;
    }
  }
  rfc2136_store reader = make_store();
  for (std::uint32_t e = 0; e < names.size(); ++e) {
    const stamp final_stamp = reader.read_stamp(endpoint_handle{e}).value();
    const auto served = reader.served(endpoint_handle{e}).value();
    if (final_stamp.gen == generation_none) continue;
    if (served.size() != 1 || served[0].rdata != planfence_test::address_of(final_stamp.gen.value())) ++v.torn_endpoints;
    // The endpoint's final generation is the largest any commit wrote to it (S1).
    std::uint64_t largest = 0;
    for (const success& s : chains[e]) largest = std::max(largest, s.written.gen.value());
    if (!broken && final_stamp.gen.value() != largest) ++v.chain_regressions;
    if (broken && final_stamp.gen.value() != largest) ++v.watcher_regressions;
  }
  return v;
}

}  // namespace

TEST_CASE("rfc2136 race: enactors racing on one knotd keep S1 and S2", "[race][knotd][S1][S2]") {
  auto knot = planfence_test::start_knot();
  const verdict v = race(knot, /*broken=*/false);
  INFO("commits " << v.commits << ", stale " << v.refused_stale << ", fenced " << v.refused_fenced << ", conflicts "
                  << v.conflicts << ", other errors " << v.other_errors);
  CHECK(v.commits > 10);
  CHECK(v.refused_fenced > 0);  // the raise did fence writers out
  // How often the writers collided (conflict or stale) depends on the machine's load; the
  // conformance suite forces each outcome deterministically, so it is reported, not required.
  CHECK(v.other_errors == 0);
  CHECK(v.watcher_regressions == 0);
  CHECK(v.lost_updates == 0);
  CHECK(v.chain_regressions == 0);
  CHECK(v.fence_violations == 0);
  CHECK(v.torn_endpoints == 0);
}

TEST_CASE("rfc2136 race: without prerequisites the same race breaks S1 or S2 (the checks have teeth)",
          "[race][knotd][broken]") {
  auto knot = planfence_test::start_knot();
  const verdict v = race(knot, /*broken=*/true);
  INFO("commits " << v.commits << ", lost " << v.lost_updates << ", regressions " << v.chain_regressions << "/"
                  << v.watcher_regressions << ", fence violations " << v.fence_violations);
  CHECK(v.lost_updates + v.chain_regressions + v.watcher_regressions + v.fence_violations > 0);
}
