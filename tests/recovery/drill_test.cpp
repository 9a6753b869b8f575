// tests/recovery/drill_test.cpp: the recovery drill, docs/runbook.md run as a test.
//
// What it proves: the manual path works end to end, with the real tools. The naive 2025 enactor
// is replayed (sim::replay_2025) until it leaves the regional endpoint empty and itself wedged;
// its plans go to a durable history, and a zone-file store is put into the same state
// (`planfence-ctl rehearse --stamp`: that endpoint serving no records under the generation the
// naive run left, the others on the newest plan); the runbook's commands, run as the real planfence-ctl
// binary, find the damage (diff exits 1 and says the endpoint serves nothing), export the newest
// retained generation as a zone that a real DNS server (knotd on loopback, started by the test
// in a temporary directory, stopped by RAII even when the test fails) loads and answers with the
// plan's records (queried with kdig); override restores the endpoint behind an operator fence
// (diff exits 0); automation whose lease authority is wrapped in fence_floor_authority stays out
// during the hold and, after release, resumes and converges on a newer plan (S6).
#include <catch2/catch.hpp>

#include <planfence/history.hpp>
#include <planfence/planfence.hpp>
#include <planfence/plan_text.hpp>
#include <planfence/recovery.hpp>
#include <planfence/sim/scripted.hpp>
#include <planfence/zonefile/store.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../support/fixtures.hpp"
#include "examples/support/knot_server.hpp"
#include "../support/shell.hpp"
#include "../support/temporary_directory.hpp"

#if defined(PLANFENCE_CTL_PATH)

namespace {

using planfence::generation;

using planfence_test::temporary_directory;

using planfence_test::command_result;
using planfence_test::run;

std::string ctl(const std::string& arguments) { return std::string(PLANFENCE_CTL_PATH) + " " + arguments; }

const std::string zone = "example.test.";
const std::vector<std::string> endpoints = {"api.example.test.", "db.example.test.", "www.example.test."};

/// Generation g: api and www fixed, db on two addresses that change with g (so a plan changes one
/// endpoint of three and the S4 zone guard lets it through).
planfence::plan plan_of(std::uint64_t g) {
  return planfence_test::make_plan(g, {{"api.example.test.", {"192.0.2.1"}},
                                       {"db.example.test.", {"198.51.100." + std::to_string(g), "198.51.100.200"}},
                                       {"www.example.test.", {"192.0.2.80"}}});
}

std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

}  // namespace

TEST_CASE("recovery drill: the runbook restores an emptied endpoint, a real DNS server serves it, automation resumes",
          "[recovery][drill][S6]") {
  REQUIRE(planfence_example::knot_server::available());  // knot is a test package (tests/run_all.sh)
  temporary_directory dir;
  const std::string history_dir = (dir.path / "history").string();
  const std::string zones_dir = (dir.path / "zones").string();
  std::filesystem::create_directories(zones_dir);
  const std::string store = "zonefile://" + zones_dir;
  const std::string where = " --dir " + history_dir + " --store " + store;

  // The planner's history: generations 1..6.
  {
    auto history = planfence::durable_history::open(history_dir).value();
    for (std::uint64_t g = 1; g <= 6; ++g) REQUIRE(history->publish(plan_of(g)).has_value());
  }

  // The outage: db serves no records under generation 1's stamp; api and www serve generation 6.
  auto broken = run(ctl("rehearse" + where + " --zone " + zone + " --endpoint db.example.test."));
  REQUIRE(broken.status == 0);

  // Runbook step 1: what does the history hold?
  auto history_listing = run(ctl("history --dir " + history_dir));
  REQUIRE(history_listing.status == 0);
  CHECK(history_listing.output.find("6 plans, generations 1..6") != std::string::npos);

  // Step 2: how does the store differ from the newest plan? diff exits 1 and names the damage.
  auto drift = run(ctl("diff" + where + " --generation latest"));
  CHECK(drift.status == 1);
  CHECK(drift.output.find("db.example.test. (store: serves g1, fence 1, SERVES NO RECORDS)") != std::string::npos);
  CHECK(drift.output.find("2 endpoints agree, 1 differ") != std::string::npos);

  // Step 3: export the plan to restore and check it with a real DNS server.
  auto exported = run(ctl("export --dir " + history_dir + " --generation 6 --zone " + zone));
  REQUIRE(exported.status == 0);
  {
    auto knot = planfence_example::knot_server::start({{zone, ""}});
    REQUIRE(knot.has_value());
    {
      std::ofstream file(knot->zone_file(zone), std::ios::trunc);
      file << exported.output;
    }
    REQUIRE(knot->restart().has_value());
    const std::string dig = "kdig @127.0.0.1 -p " + std::to_string(knot->port()) + " +short +timeout=2 +retry=1 ";
    auto db = run(dig + "db.example.test. A");
    REQUIRE(db.status == 0);
    CHECK(sorted_lines(db.output) == std::vector<std::string>{"198.51.100.200", "198.51.100.6"});
    auto www = run(dig + "www.example.test. A");
    CHECK(sorted_lines(www.output) == std::vector<std::string>{"192.0.2.80"});
    auto stamp = run(dig + "_planfence.db.example.test. TXT");
    CHECK(stamp.output.find("gen=6") != std::string::npos);
    auto soa = run(dig + "example.test. SOA");
    CHECK(soa.output.find(" 6 ") != std::string::npos);  // the serial comes from the generation
  }  // knotd stops here (and on any failed REQUIRE above)

  // Automation, as it will be restarted: the fixed enactor, its lease authority wrapped in
  // fence_floor_authority over the same store.
  auto history = planfence::durable_history::open(history_dir).value();
  auto files = planfence::zonefile_store::open(zones_dir).value();
  planfence::manual_clock clock;
  planfence::local_lease_authority<planfence::manual_clock> inner{clock};
  planfence::fence_floor_authority authority{inner, [&] { return planfence::store_fence_floor(files); }};
  planfence::enactor automation{files, authority, *history, clock,
                                {.name = "az1", .lease_ttl = std::chrono::milliseconds{1000},
                                 .renew_margin = std::chrono::milliseconds{500},
                                 .retention = {.keep_newest = 3}}};
  auto drive = [&](int steps) {
    for (int i = 0; i < steps; ++i) {
      (void)automation.step();
      clock.advance(std::chrono::milliseconds{20});
    }
  };

  // Step 4: override: fence automation out and apply generation 6.
  auto override_run = run(ctl("override" + where + " --generation 6"));
  REQUIRE(override_run.status == 0);
  CHECK(override_run.output.find("Operator fence 1024") != std::string::npos);
  CHECK(override_run.output.find("db.example.test.") != std::string::npos);
  auto agreed = run(ctl("diff" + where + " --generation 6"));
  CHECK(agreed.status == 0);

  // During the hold the planner goes on publishing; automation must not act on it.
  REQUIRE(history->publish(plan_of(7)).has_value());
  drive(40);
  CHECK(automation.counters()[planfence::event_kind::applied] == 0);
  CHECK(automation.counters()[planfence::event_kind::lease_gained] == 0);
  CHECK(run(ctl("diff" + where + " --generation 6")).status == 0);

  // Step 5: release. Automation acquires above the floor and converges on generation 7 (S6).
  auto released = run(ctl("release --store " + store));
  REQUIRE(released.status == 0);
  drive(60);
  CHECK(automation.applied_generation() == generation{7});
  CHECK(automation.current_lease()->fence.value() > 1025);
  auto converged = run(ctl("diff" + where + " --generation 7"));
  CHECK(converged.status == 0);
  CHECK(converged.output.find("agrees with generation 7: 3 endpoints agree, 0 differ") != std::string::npos);
  // Its collection deleted only what nothing serves (S3): generation 7 and the newest stay.
  const auto kept = history->retained();
  CHECK(std::find(kept.begin(), kept.end(), generation{7}) != kept.end());
  CHECK(std::filesystem::exists(history->file_of(generation{7})));
}

TEST_CASE("recovery drill from the naive enactor's own wreckage: the regional endpoint restored and served by knotd",
          "[recovery][drill][naive]") {
  REQUIRE(planfence_example::knot_server::available());
  // The 2025 race with the naive design: the regional endpoint ends empty and automation wedged.
  const planfence::sim::scripted_outcome naive =
      planfence::sim::replay_2025(planfence::sim::variant::naive, 3, /*keep_history=*/true);
  REQUIRE(naive.endpoint_records == 0);
  REQUIRE(naive.stuck);
  REQUIRE(naive.endpoint_gen < naive.newest);
  temporary_directory dir;
  const std::string history_dir = (dir.path / "history").string();
  const std::string zones_dir = (dir.path / "zones").string();
  std::filesystem::create_directories(zones_dir);
  {
    auto history = planfence::durable_history::open(history_dir).value();
    for (const auto& [gen, text] : naive.history) REQUIRE(history->publish(planfence::parse_plan(text).value()).has_value());
  }
  const std::string zone_name = "us-east-1.amazonaws.com.";
  const std::string where = " --dir " + history_dir + " --store zonefile://" + zones_dir;
  REQUIRE(run(ctl("rehearse" + where + " --zone " + zone_name + " --endpoint " + naive.endpoint + " --stamp " +
                  std::to_string(naive.endpoint_gen.value())))
              .status == 0);
  auto drift = run(ctl("diff" + where + " --generation latest"));
  CHECK(drift.status == 1);
  CHECK(drift.output.find(naive.endpoint + " (store: serves g" + std::to_string(naive.endpoint_gen.value()) +
                          ", fence 1, SERVES NO RECORDS)") != std::string::npos);
  REQUIRE(run(ctl("override" + where + " --generation latest")).status == 0);
  CHECK(run(ctl("diff" + where + " --generation latest")).status == 0);

  // What the store now holds is what knotd answers: the zone file itself, loaded as it is.
  auto files = planfence::zonefile_store::open(zones_dir).value();
  std::ifstream zone_text(files.zone_file(zone_name));
  std::stringstream zone_copy;
  zone_copy << zone_text.rdbuf();
  auto knot = planfence_example::knot_server::start({{zone_name, ""}});
  REQUIRE(knot.has_value());
  {
    std::ofstream file(knot->zone_file(zone_name), std::ios::trunc);
    file << zone_copy.str();
  }
  REQUIRE(knot->restart().has_value());
  auto answer = run("kdig @127.0.0.1 -p " + std::to_string(knot->port()) + " +short +timeout=2 +retry=1 " +
                    naive.endpoint + " A");
  REQUIRE(answer.status == 0);
  auto history = planfence::durable_history::open(history_dir, {.read_only = true}).value();
  std::vector<std::string> expected;
  for (const auto& r : history->pin_latest()->find(naive.endpoint)->records.records()) expected.push_back(r.rdata);
  std::sort(expected.begin(), expected.end());
  REQUIRE_FALSE(expected.empty());
  CHECK(sorted_lines(answer.output) == expected);
}

TEST_CASE("planfence-ctl: every command has --help, and bad input names what was expected", "[recovery][ctl]") {
  for (const char* command : {"history", "show", "export", "diff", "apply", "override", "release", "rehearse", "status"}) {
    auto help = run(ctl(std::string(command) + " --help"));
    CHECK(help.status == 0);
    CHECK(help.output.find("Usage: planfence-ctl " + std::string(command)) != std::string::npos);
  }
  CHECK(run(ctl("--help")).status == 0);
  auto unknown = run(ctl("frobnicate"));
  CHECK(unknown.status == 2);
  CHECK(unknown.output.find("unknown command 'frobnicate'") != std::string::npos);
  auto missing = run(ctl("show --dir /nonexistent"));
  CHECK(missing.status == 2);
  CHECK(missing.output.find("missing --generation N") != std::string::npos);
  auto bad_generation = run(ctl("show --dir /tmp --generation seven"));
  CHECK(bad_generation.status == 2);
  CHECK(bad_generation.output.find("expected a generation number from 1 to 2^40-1 or 'latest', got 'seven'") != std::string::npos);

  // A corrupt plan file: history names the file, line and column, and exits 1.
  temporary_directory dir;
  {
    auto history = planfence::durable_history::open(dir.path).value();
    REQUIRE(history->publish(plan_of(1)).has_value());
    REQUIRE(history->publish(plan_of(2)).has_value());
  }
  {
    std::ofstream file(dir.path / "0000000002.plan", std::ios::app);
    file << "  A 60 192.0.2.99\n";
  }
  auto listing = run(ctl("history --dir " + dir.path.string()));
  CHECK(listing.status == 1);
  CHECK(listing.output.find("0000000002.plan:12:1: parse_error: nothing may follow the digest line") !=
        std::string::npos);
  auto shown = run(ctl("show --dir " + dir.path.string() + " --generation 2"));
  CHECK(shown.status == 2);
  CHECK(shown.output.find("generation 2 is not in") != std::string::npos);
  auto bad_store = run(ctl("diff --dir " + dir.path.string() + " --generation 1 --store nosuch://x"));
  CHECK(bad_store.status == 2);
  CHECK(bad_store.output.find("no store handles the scheme 'nosuch'") != std::string::npos);
  // --batch out of range: refused before the store is opened or anything written (the zone
  // directory does not even exist, which would be the next error).
  for (const std::string command : {"apply", "override"}) {
    for (const std::string batch : {"0", "65537", "many", "-1"}) {
      auto bad_batch = run(ctl(command + " --dir " + dir.path.string() + " --generation 1 --store zonefile:///nonexistent/zones --batch " + batch));
      CHECK(bad_batch.status == 2);
      CHECK(bad_batch.output.find("--batch: expected a number of endpoints from 1 to 65536, got '" + batch + "'") != std::string::npos);
    }
  }
}

TEST_CASE("planfence-ctl drives an RFC 2136 store: apply, diff, override and release against knotd",
          "[recovery][drill][rfc2136]") {
  REQUIRE(planfence_example::knot_server::available());
  temporary_directory dir;
  const std::string history_dir = (dir.path / "history").string();
  {
    auto history = planfence::durable_history::open(history_dir).value();
    for (std::uint64_t g = 1; g <= 3; ++g) REQUIRE(history->publish(plan_of(g)).has_value());
  }
  auto knot = planfence_example::knot_server::start({{zone, ""}});
  REQUIRE(knot.has_value());
  const std::string where = " --dir " + history_dir + " --store '" + knot->uri(zone) + "'";
  const std::string dig = "kdig @127.0.0.1 -p " + std::to_string(knot->port()) + " +short +timeout=2 +retry=1 ";

  auto drift = run(ctl("diff" + where + " --generation 2"));
  CHECK(drift.status == 1);
  auto applied = run(ctl("apply" + where + " --generation 2"));
  REQUIRE(applied.status == 0);
  CHECK(run(ctl("diff" + where + " --generation 2")).status == 0);
  CHECK(sorted_lines(run(dig + "db.example.test. A").output) == std::vector<std::string>{"198.51.100.2", "198.51.100.200"});

  auto taken = run(ctl("override" + where + " --generation 3"));
  REQUIRE(taken.status == 0);
  CHECK(taken.output.find("Operator fence 1024") != std::string::npos);
  CHECK(sorted_lines(run(dig + "db.example.test. A").output) == std::vector<std::string>{"198.51.100.200", "198.51.100.3"});
  // An apply with an older fence than the operator's commits nothing (S2).
  {
    auto history = planfence::durable_history::open(history_dir).value();
    REQUIRE(history->publish(plan_of(4)).has_value());
  }
  auto refused = run(ctl("apply" + where + " --generation 4 --fence 5"));
  CHECK(refused.status == 1);
  CHECK(refused.output.find("Stopped: the store refused fence 5 because it has accepted a larger token (S2)") != std::string::npos);
  CHECK(run(ctl("diff" + where + " --generation 3")).status == 0);
  auto released = run(ctl("release" + where.substr(where.find(" --store"))));
  CHECK(released.status == 0);
  CHECK(released.output.find("its floor reads back as 1025") != std::string::npos);
}

#endif  // PLANFENCE_CTL_PATH
