// Killing a committer at any instant leaves the zone-file store consistent: a child process
// commits to three endpoints in a loop and is killed with SIGKILL at random moments, 40 times.
// After each kill the directory opens (every file parses and decodes), every endpoint's records
// are the ones its stamp names (no commit is half-applied: the rename is atomic), no generation
// went backwards, and a temp file left by the kill does not get in the way of the next commit.
// The same with a child committing batches of 100 endpoints (one rewrite each): after every kill
// all 100 serve one generation, the old zone's or the new one's, never a mix.
// (Durability across a power loss, which the fsyncs are for, cannot be shown by killing a
// process; docs/zonefile.md says why each fsync is there.)
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "zonefile_fixture.hpp"

namespace {

using namespace planfence;

/// The records generation `gen` gives every endpoint: two weighted addresses.
record_set records_of(std::uint64_t gen) {
  return record_set::make({make_record(record_type::a, 60, planfence_test::address_of(gen), 10).value(),
                           make_record(record_type::a, 60, planfence_test::address_of(gen + 100000), 20).value()})
      .value();
}

const std::vector<std::string> endpoints = {"www.example.test.", "db.example.test.", "api.example.test."};

/// Starts at endpoint `first`, so that every endpoint is written even when kills come early
/// (slow starts under sanitizers).
[[noreturn]] void commit_forever(const std::filesystem::path& directory, std::size_t first) {
  auto opened = zonefile_store::open(directory);
  if (!opened) ::_exit(2);
  for (std::size_t i = first;; ++i) {
    {
      const std::string& name = endpoints[i % endpoints.size()];
      const endpoint_handle h = opened->resolve(name).value();
      auto now = opened->read_stamp(h);
      if (!now) ::_exit(3);
      const std::uint64_t gen = now->gen.value() + 1;
      auto done = opened->commit(h, *now, stamp{generation{gen}, fence_token{1}, 0}, records_of(gen));
      if (!done) ::_exit(4);
    }
  }
}

}  // namespace

TEST_CASE("zonefile store: SIGKILL at any moment leaves every zone file whole and every stamp true", "[zonefile][crash]") {
  planfence_zonefile_test::temp_directory dir;
  REQUIRE(zonefile_store::create_zone(dir.path(), "example.test."));
  std::mt19937 random(20261201);
  std::map<std::string, std::uint64_t> seen;
  int kills_mid_commit = 0;
  for (int round = 0; round < 40; ++round) {
    std::fflush(nullptr);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) commit_forever(dir.path(), static_cast<std::size_t>(round));
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(500, 30000)(random)));
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("round " << round);
    REQUIRE(WIFSIGNALED(status));  // killed, not exited with an error code
    if (std::filesystem::exists(dir.path() / "example.test.zone.tmp")) ++kills_mid_commit;

    auto store = zonefile_store::open(dir.path());
    if (!store) FAIL(store.error().message());
    for (const std::string& name : endpoints) {
      const endpoint_handle h = store->resolve(name).value();
      const stamp s = store->read_stamp(h).value();
      CHECK(s.gen.value() >= seen[name]);  // S1 across kills
      seen[name] = s.gen.value();
      if (s.gen == generation_none) continue;
      const record_set expected = records_of(s.gen.value());
      CHECK(store->served(h).value() == std::vector<record>(expected.records().begin(), expected.records().end()));
    }
  }
  for (const std::string& name : endpoints) CHECK(seen[name] > 0);  // it did commit
  WARN("kills that left a temp file (mid-commit): " << kills_mid_commit << " of 40");
  // A temp file left by a kill is overwritten by the next commit, which succeeds.
  zonefile_store store = zonefile_store::open(dir.path()).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  const stamp s = store.read_stamp(www).value();
  REQUIRE(store.commit(www, s, stamp{generation{s.gen.value() + 1}, fence_token{1}, 0}, records_of(s.gen.value() + 1)));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "example.test.zone.tmp"));
}

namespace {

/// Commits batches of every endpoint of `names`, each batch at the next generation, without end.
[[noreturn]] void commit_batches_forever(const std::filesystem::path& directory, const std::vector<std::string>& names) {
  auto opened = zonefile_store::open(directory);
  if (!opened) ::_exit(2);
  std::vector<endpoint_handle> handles;
  for (const std::string& name : names) handles.push_back(opened->resolve(name).value());
  std::vector<stamp> seen(handles.size());
  for (;;) {
    if (!opened->read_stamps(handles, seen)) ::_exit(3);
    const std::uint64_t gen = seen[0].gen.value() + 1;
    const record_set records = records_of(gen);
    std::vector<commit_item> items;
    for (std::size_t i = 0; i < handles.size(); ++i) items.push_back({handles[i], seen[i], stamp{generation{gen}, fence_token{1}, 0}, &records});
    if (!opened->commit_batch(items)) ::_exit(4);
  }
}

}  // namespace

TEST_CASE("zonefile store: SIGKILL during a batch rewrite leaves the old zone or the new one whole", "[zonefile][crash][batch]") {
  planfence_zonefile_test::temp_directory dir;
  REQUIRE(zonefile_store::create_zone(dir.path(), "example.test."));
  std::vector<std::string> names;
  for (int i = 0; i < 100; ++i) {
    std::string name = "b";  // appended piece by piece: GCC 12's -Wrestrict misfires on "b" + to_string(i) at -O3
    name += std::to_string(i);
    name += ".example.test.";
    names.push_back(std::move(name));
  }
  std::mt19937 random(20261207);
  std::uint64_t last = 0;
  int kills_mid_commit = 0;
  for (int round = 0; round < 30; ++round) {
    std::fflush(nullptr);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) commit_batches_forever(dir.path(), names);
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(5000, 150000)(random)));
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("round " << round);
    REQUIRE(WIFSIGNALED(status));
    if (std::filesystem::exists(dir.path() / "example.test.zone.tmp")) ++kills_mid_commit;

    auto store = zonefile_store::open(dir.path());
    if (!store) FAIL(store.error().message());
    std::vector<endpoint_handle> handles;
    for (const std::string& name : names) handles.push_back(store->resolve(name).value());
    std::vector<stamp> seen(handles.size());
    REQUIRE(store->read_stamps(handles, seen));
    // One batch is one rewrite: every endpoint at the same generation, with that generation's
    // records, never behind the last look (S1).
    const std::uint64_t gen = seen[0].gen.value();
    CHECK(gen >= last);
    last = gen;
    for (std::size_t i = 0; i < handles.size(); ++i) {
      INFO(names[i]);
      REQUIRE(seen[i].gen.value() == gen);
      if (gen == 0) continue;
      if (i % 25 != 0) continue;  // the records of a sample: served() parses the zone each time
      const record_set expected = records_of(gen);
      CHECK(store->served(handles[i]).value() == std::vector<record>(expected.records().begin(), expected.records().end()));
    }
  }
  CHECK(last > 1);  // it did commit, more than once
  WARN("kills that left a temp file (mid-batch rewrite): " << kills_mid_commit << " of 30");
}
