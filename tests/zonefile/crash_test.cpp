// Killing a committer at any instant leaves the zone-file store consistent: a child process
// commits to three endpoints in a loop and is killed with SIGKILL at random moments, 40 times.
// After each kill the directory opens (every file parses and decodes), every endpoint's records
// are the ones its stamp names (no commit is half-applied: the rename is atomic), no generation
// went backwards, and a temp file left by the kill does not get in the way of the next commit.
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
