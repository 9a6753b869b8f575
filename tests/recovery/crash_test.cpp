// tests/recovery/crash_test.cpp: crash consistency of the durable history and the zone-file store.
//
// What it proves: a process that publishes plans to a history directory and commits them to a
// zone-file store, killed with SIGKILL at random moments (200 times, each at a random instant of
// its run), never leaves a torn or lost state: after every kill the plan files all load (no
// problems: a torn temporary file is ignored and cleaned), every generation the child reported
// published is still retained or was legitimately collected (at or below the collected
// high-water mark, and not live), the zone files parse, every endpoint's stamp names a plan the
// history still holds (S3) and its records are exactly that plan's, and no endpoint's generation
// ever went back (S1). The child reports a publish over a pipe only after publish returned, so a
// reported plan is one the caller was told is durable. Prints the seed of its random delays.
#include <catch2/catch.hpp>

#include <planfence/history.hpp>
#include <planfence/planfence.hpp>
#include <planfence/zonefile/store.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/fixtures.hpp"
#include "../support/temporary_directory.hpp"

namespace {

using planfence::generation;

using planfence_test::temporary_directory;

const std::string zone = "crash.test.";
const std::vector<std::string> endpoints = {"a.crash.test.", "b.crash.test.", "c.crash.test."};

/// Generation g's plan: deterministic, so the parent can recompute what the child published.
/// Only `a` changes every generation (the others every eighth): most commits are small changes.
planfence::plan plan_of(std::uint64_t g) {
  const std::string low = std::to_string(g % 250 + 1);
  const std::string slow = std::to_string(g / 8 % 250 + 1);
  return planfence_test::make_plan(g, {{"a.crash.test.", {"192.0.2." + low, "192.0.2.251"}},
                                       {"b.crash.test.", {"198.51.100." + slow}},
                                       {"c.crash.test.", {"203.0.113." + slow, "203.0.113.252"}}});
}

/// The child: publish, commit every endpoint, collect; forever. Exits only on a broken invariant.
[[noreturn]] void child_loop(const std::filesystem::path& history_dir, const std::filesystem::path& zones_dir,
                             int report_fd) {
  auto history = planfence::durable_history::open(history_dir);
  if (!history) ::_exit(10);
  auto store = planfence::zonefile_store::open(zones_dir);
  if (!store) ::_exit(11);
  for (std::uint64_t g = (*history)->latest().value() + 1;; ++g) {
    auto published = (*history)->publish(plan_of(g));
    if (!published) ::_exit(12);
    const std::uint64_t word = g;
    if (::write(report_fd, &word, sizeof word) != static_cast<ssize_t>(sizeof word)) ::_exit(13);
    for (const std::string& name : endpoints) {
      auto h = store->resolve(name);
      if (!h) ::_exit(14);
      auto seen = store->read_stamp(*h);
      if (!seen) ::_exit(15);
      if (seen->gen >= generation{g}) continue;
      auto committed = store->commit(*h, *seen, {generation{g}, planfence::fence_token{1}, 0},
                                     (*published)->find(name)->records);
      if (!committed) ::_exit(16);
    }
    published->reset();
    (void)(*history)->collect({.keep_newest = 2}, 0, [&] { return store->live_generations(); });
  }
}

std::vector<planfence::record> sorted(std::vector<planfence::record> records) {
  std::sort(records.begin(), records.end());
  return records;
}

}  // namespace

TEST_CASE("crash consistency: 200 SIGKILLs at random moments never tear, lose or regress anything",
          "[recovery][crash][S1][S3][S7]") {
  temporary_directory dir;
  const auto history_dir = dir.path / "history";
  const auto zones_dir = dir.path / "zones";
  std::filesystem::create_directories(zones_dir);
  REQUIRE(planfence::zonefile_store::create_zone(zones_dir, zone).has_value());

  const std::uint64_t seed = std::random_device{}();
  std::mt19937_64 random{seed};
  UNSCOPED_INFO("crash test seed " << seed);
  constexpr int kills = 200;
  std::uniform_int_distribution<int> delay_us{0, 30'000};

  std::set<std::uint64_t> reported;               // published, as the child was told
  std::map<std::string, generation> served_high;  // per endpoint, the newest generation seen
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{120};

  // At least `kills` kills, and on until the child has published 50 plans between them (on a
  // loaded machine a child killed early does less each time), within the deadline.
  for (int kill = 0; kill < kills || reported.size() < 50; ++kill) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      child_loop(history_dir, zones_dir, fds[1]);
    }
    ::close(fds[1]);
    std::this_thread::sleep_for(std::chrono::microseconds{delay_us(random)});
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("kill " << kill << ", seed " << seed);
    REQUIRE(WIFSIGNALED(status));  // it did not stop on its own (a broken invariant: exit code)
    for (std::uint64_t word = 0; ::read(fds[0], &word, sizeof word) == static_cast<ssize_t>(sizeof word);) {
      reported.insert(word);
    }
    ::close(fds[0]);

    // The history: every file loads, nothing reported is lost, content is what was published.
    auto history = planfence::durable_history::open(history_dir).value();  // also cleans torn temp files
    REQUIRE(history->problems().empty());
    const auto retained = history->retained();
    const generation high_water = history->collected_high_water();
    for (std::uint64_t g : reported) {
      const bool kept = std::binary_search(retained.begin(), retained.end(), generation{g});
      REQUIRE((kept || generation{g} <= high_water));
    }
    for (generation g : retained) {
      REQUIRE(history->pin(g).value()->digest() == plan_of(g.value()).digest());
    }
    for (const auto& entry : std::filesystem::directory_iterator(history_dir)) {
      REQUIRE_FALSE(entry.path().filename().string().ends_with(".tmp"));
    }

    // The store: the zone file parses, stamps match records, nothing regressed, live is kept.
    auto store = planfence::zonefile_store::open(zones_dir);
    REQUIRE(store.has_value());
    for (const std::string& name : endpoints) {
      const auto h = store->resolve(name).value();
      const auto seen = store->read_stamp(h).value();
      REQUIRE(seen.gen >= served_high[name]);  // S1
      served_high[name] = seen.gen;
      const auto served = sorted(store->served(h).value());
      if (seen.gen == planfence::generation_none) {
        REQUIRE(served.empty());
        continue;
      }
      const auto p = history->pin(seen.gen);
      REQUIRE(p.has_value());  // S3: the plan an endpoint serves is never collected
      const auto& planned = (*p)->find(name)->records.records();
      REQUIRE(served == sorted(std::vector<planfence::record>(planned.begin(), planned.end())));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      FAIL("crash test took over 120 s after " << kill + 1 << " kills, " << reported.size() << " plans published");
    }
  }
  // The child made progress between kills: the kills did land in the middle of real work.
  CHECK(reported.size() >= 50);
  CHECK(served_high[endpoints[0]] >= generation{20});
}
