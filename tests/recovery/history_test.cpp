// tests/recovery/history_test.cpp: the durable plan history (include/planfence/history.hpp).
//
// What it proves: a published plan is a complete file before publish returns and survives a
// reopen; S5 holds across two handles on one directory and across two processes (fork); S3
// collection deletes only what the in-memory rules allow (never the live, pinned or newest K
// plans) and what it deletes stays unpublishable; an abandoned temporary file is ignored and
// cleaned; a corrupt file (bad digest, torn text, wrong generation) is reported with its file and
// line and is never loaded, and its generation is not overwritten (S7).
#include <catch2/catch.hpp>

#include <planfence/history.hpp>
#include <planfence/planfence.hpp>
#include <planfence/plan_text.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/fixtures.hpp"
#include "../support/temporary_directory.hpp"

namespace {

using planfence::durable_history;
using planfence::errc;
using planfence::generation;
using planfence_test::make_plan;

/// A fresh temporary directory, removed at the end of the test.
using planfence_test::temporary_directory;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream buffer;
  buffer << file.rdbuf();
  return buffer.str();
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream file(path, std::ios::trunc);
  file << text;
}

planfence::plan plan_a(std::uint64_t gen) { return make_plan(gen, {{"db.example.", {"192.0.2.1"}}}); }
planfence::plan plan_b(std::uint64_t gen) { return make_plan(gen, {{"db.example.", {"192.0.2.2"}}}); }

}  // namespace

TEST_CASE("a published plan is a complete file and survives a reopen", "[history]") {
  temporary_directory dir;
  {
    auto history = durable_history::open(dir.path).value();
    auto pinned = history->publish(plan_a(1));
    REQUIRE(pinned.has_value());
    REQUIRE(history->publish(plan_a(2)).has_value());
    // The file holds exactly the text form, digest line included.
    CHECK(read_text(history->file_of(generation{1})) == planfence::format_plan(**pinned));
    CHECK(history->file_of(generation{1}).filename() == "0000000001.plan");
    CHECK(history->latest() == generation{2});
  }
  auto again = durable_history::open(dir.path).value();
  CHECK(again->retained() == std::vector<generation>{generation{1}, generation{2}});
  CHECK(again->problems().empty());
  auto pinned = again->pin(generation{1});
  REQUIRE(pinned.has_value());
  CHECK((*pinned)->digest_hex() == plan_a(1).digest_hex());
}

TEST_CASE("S5: equivocation is refused across two handles on one directory", "[history][S5]") {
  temporary_directory dir;
  auto first = durable_history::open(dir.path).value();
  auto second = durable_history::open(dir.path).value();
  REQUIRE(first->publish(plan_a(5)).has_value());
  // The second handle has not seen generation 5 in memory: the directory refuses it.
  auto other = second->publish(plan_b(5));
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error().code == errc::equivocation);
  // Identical content is idempotent from either handle.
  CHECK(second->publish(plan_a(5)).has_value());
  CHECK(first->publish(plan_a(5)).has_value());
  CHECK(read_text(first->file_of(generation{5})) == planfence::format_plan(plan_a(5)));
}

TEST_CASE("S5: equivocation is refused across processes racing to publish", "[history][S5]") {
  temporary_directory dir;
  // Eight children race to publish generations 1..20, half with content a, half with content b.
  // Each generation ends with exactly one content, and every child that was refused was refused
  // for equivocation, never by overwriting.
  constexpr int children = 8;
  std::vector<pid_t> pids;
  for (int c = 0; c < children; ++c) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto history = durable_history::open(dir.path);
      if (!history) ::_exit(2);
      for (std::uint64_t g = 1; g <= 20; ++g) {
        auto published = (*history)->publish(c % 2 == 0 ? plan_a(g) : plan_b(g));
        if (!published && published.error().code != errc::equivocation) ::_exit(3);
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto history = durable_history::open(dir.path).value();
  CHECK(history->problems().empty());
  REQUIRE(history->retained().size() == 20);
  for (std::uint64_t g = 1; g <= 20; ++g) {
    const std::string text = read_text(history->file_of(generation{g}));
    CHECK((text == planfence::format_plan(plan_a(g)) || text == planfence::format_plan(plan_b(g))));
  }
  // No temporary file is left behind by the winners or the losers.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path)) {
    CHECK_FALSE(entry.path().filename().string().ends_with(".tmp"));
  }
}

TEST_CASE("S3: collection never deletes the live, pinned or newest plans, and deleted stays deleted", "[history][S3]") {
  temporary_directory dir;
  auto history = durable_history::open(dir.path).value();
  for (std::uint64_t g = 1; g <= 8; ++g) REQUIRE(history->publish(plan_a(g)).has_value());
  auto pinned = history->pin(generation{3});
  REQUIRE(pinned.has_value());
  const std::vector<generation> live{generation{2}};
  const auto report = history->collect({.keep_newest = 2}, 0, [&] { return live; });
  // Collected: 1, 4, 5, 6. Kept: 2 (live), 3 (pinned), 7 and 8 (newest two).
  CHECK(report.collected == std::vector<generation>{generation{1}, generation{4}, generation{5}, generation{6}});
  CHECK(report.protected_live == std::vector<generation>{generation{2}});
  CHECK(report.protected_pinned == std::vector<generation>{generation{3}});
  for (std::uint64_t g : {1, 4, 5, 6}) CHECK_FALSE(std::filesystem::exists(history->file_of(generation{g})));
  for (std::uint64_t g : {2, 3, 7, 8}) CHECK(std::filesystem::exists(history->file_of(generation{g})));
  // Another handle (another process) sees the same and cannot bring a collected generation back.
  auto other = durable_history::open(dir.path).value();
  CHECK(other->retained() == std::vector<generation>{generation{2}, generation{3}, generation{7}, generation{8}});
  CHECK(other->collected_high_water() == generation{6});
  auto back = other->publish(plan_b(4));
  REQUIRE_FALSE(back.has_value());
  CHECK(back.error().code == errc::collected);
  // The live plan stays protected through collect_one too.
  auto refused = other->collect_one(generation{2}, [&] { return live; });
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == errc::protected_plan);
  CHECK(std::filesystem::exists(other->file_of(generation{2})));
}

TEST_CASE("an abandoned temporary file is ignored and cleaned", "[history]") {
  temporary_directory dir;
  {
    auto history = durable_history::open(dir.path).value();
    REQUIRE(history->publish(plan_a(1)).has_value());
  }
  // What a writer killed before its link leaves: a torn temporary file.
  const std::string text = planfence::format_plan(plan_a(2));
  const auto torn = dir.path / ".0000000002.plan.12345.0.tmp";
  write_text(torn, text.substr(0, text.size() / 2));
  auto history = durable_history::open(dir.path).value();
  CHECK(history->retained() == std::vector<generation>{generation{1}});
  CHECK(history->problems().empty());
  CHECK_FALSE(std::filesystem::exists(torn));
  // And generation 2 can be published normally afterwards.
  CHECK(history->publish(plan_b(2)).has_value());
}

TEST_CASE("S7: a corrupt plan file is reported with its position, never loaded, never overwritten", "[history][S7]") {
  temporary_directory dir;
  {
    auto history = durable_history::open(dir.path).value();
    for (std::uint64_t g = 1; g <= 3; ++g) REQUIRE(history->publish(plan_a(g)).has_value());
  }
  // Generation 2: one address changed by hand, digest left alone.
  std::string text = read_text(dir.path / "0000000002.plan");
  const auto at = text.find("192.0.2.1");
  REQUIRE(at != std::string::npos);
  text[at + 8] = '9';
  write_text(dir.path / "0000000002.plan", text);
  // Generation 3: cut in half (not something planfence writes, but a disk can).
  const std::string whole = read_text(dir.path / "0000000003.plan");
  write_text(dir.path / "0000000003.plan", whole.substr(0, whole.size() / 2));
  // Generation 4's file holding generation 1's plan.
  write_text(dir.path / "0000000004.plan", planfence::format_plan(plan_a(1)));

  auto history = durable_history::open(dir.path).value();
  CHECK(history->retained() == std::vector<generation>{generation{1}});
  const auto problems = history->problems();
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].file.ends_with("0000000002.plan"));
  CHECK(problems[0].what.code == errc::digest_mismatch);
  CHECK(problems[0].what.line > 0);
  CHECK(problems[1].file.ends_with("0000000003.plan"));
  CHECK(problems[1].what.code == errc::parse_error);
  CHECK(problems[2].what.code == errc::invalid_plan);
  // Publishing over a corrupt file is refused: it stays for the operator to inspect.
  auto over = history->publish(plan_a(2));
  REQUIRE_FALSE(over.has_value());
  CHECK(over.error().code == errc::digest_mismatch);
  CHECK(read_text(dir.path / "0000000002.plan") == text);
}

TEST_CASE("a read-only history loads plans and writes nothing", "[history]") {
  temporary_directory dir;
  {
    auto history = durable_history::open(dir.path).value();
    REQUIRE(history->publish(plan_a(1)).has_value());
  }
  std::filesystem::remove(dir.path / durable_history::lock_file_name);
  auto history = durable_history::open(dir.path, {.read_only = true}).value();
  CHECK(history->retained().size() == 1);
  CHECK_FALSE(std::filesystem::exists(dir.path / durable_history::lock_file_name));
  auto refused = history->publish(plan_a(2));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == errc::io_error);
}

TEST_CASE("the fixed enactor runs over a durable history unchanged, and collects files", "[history][S6]") {
  temporary_directory dir;
  auto history = durable_history::open(dir.path).value();
  planfence::plan_registry memory_registry;  // the memory store serves records from this registry
  auto store = planfence::memory_store::make(memory_registry, {"db.example."}).value();
  planfence::manual_clock clock;
  planfence::local_lease_authority<planfence::manual_clock> authority{clock};
  planfence::enactor zone{store, authority, *history, clock, {.name = "az1", .retention = {.keep_newest = 1}}};
  for (std::uint64_t g = 1; g <= 4; ++g) {
    REQUIRE(history->publish(plan_a(g)).has_value());
    REQUIRE(memory_registry.publish(plan_a(g)).has_value());
    for (int i = 0; i < 20 && zone.applied_generation() != generation{g}; ++i) (void)zone.step();
    REQUIRE(zone.applied_generation() == generation{g});
  }
  for (int i = 0; i < 5; ++i) (void)zone.step();  // the collect step
  CHECK(history->retained() == std::vector<generation>{generation{4}});
  CHECK_FALSE(std::filesystem::exists(history->file_of(generation{1})));
  CHECK(std::filesystem::exists(history->file_of(generation{4})));
}

TEST_CASE("threads of one process on two handles: one content per generation, collection alongside", "[history][S5][S3]") {
  // Four publishers (two per handle) race over generations 1..40 with two contents while a
  // collector keeps the newest 4. Every publish either succeeds with the content now on disk, or
  // is refused as equivocation or as collected; no plan file is ever torn or replaced.
  temporary_directory dir;
  auto first = durable_history::open(dir.path).value();
  auto second = durable_history::open(dir.path).value();
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      durable_history& mine = t % 2 == 0 ? *first : *second;
      for (std::uint64_t g = 1; g <= 40; ++g) {
        auto published = mine.publish(t < 2 ? plan_a(g) : plan_b(g));
        if (published) {
          const std::string expected = planfence::format_plan(**published);
          if (std::filesystem::exists(mine.file_of(generation{g})) && read_text(mine.file_of(generation{g})) != expected) {
            ++unexpected;
          }
        } else if (published.error().code != errc::equivocation && published.error().code != errc::collected) {
          ++unexpected;
        }
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 40; ++i) (void)first->collect({.keep_newest = 4}, 0, [] { return std::vector<generation>{}; });
  });
  for (auto& t : threads) t.join();
  CHECK(unexpected.load() == 0);
  auto reopened = durable_history::open(dir.path).value();
  CHECK(reopened->problems().empty());
  CHECK(reopened->latest() == generation{40});
  for (generation g : reopened->retained()) {
    const std::string text = read_text(reopened->file_of(g));
    CHECK((text == planfence::format_plan(plan_a(g.value())) || text == planfence::format_plan(plan_b(g.value()))));
  }
}

TEST_CASE("a handle sees plans other handles published after refresh()", "[history]") {
  // pin_latest never does I/O (it is on the enactor's path): plans another process published
  // appear at the next refresh(), which publish and collect also make.
  temporary_directory dir;
  auto planner = durable_history::open(dir.path).value();
  auto enactor_side = durable_history::open(dir.path).value();
  REQUIRE(planner->publish(plan_a(1)).has_value());
  CHECK(enactor_side->latest() == planfence::generation_none);
  auto loaded = enactor_side->refresh();
  REQUIRE(loaded.has_value());
  CHECK(*loaded == 1);
  CHECK(enactor_side->pin_latest()->gen() == generation{1});
  CHECK(enactor_side->refresh().value() == 0);
}
