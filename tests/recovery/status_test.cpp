// tests/recovery/status_test.cpp: `planfence-ctl status`, the on-call page's first command, run as
// the real binary against a zone-file store and a real Knot server (RFC 2136).
//
// What it proves: a healthy store exits 0; the 2025 state (`rehearse --stamp` of a generation the
// history no longer has: the emptied endpoint stamped with a collected plan) exits 1 and names the
// empty endpoint and the missing plan, on the screen and in --json (parsed by python3's json
// module); generations are effective ones (endpoints left on an older stamp under the applied
// mark serve the mark's generation, so a collected older plan is not reported missing); an
// operator hold is shown and does not make the exit status non-zero; lists are capped on the
// screen and complete in --json; usage errors exit 2. tests/etcd/ctl_test.cpp does the same on etcd.
#include <catch2/catch.hpp>

#include <planfence/history.hpp>
#include <planfence/plan_text.hpp>
#include <planfence/recovery.hpp>
#include <planfence/rfc2136/store.hpp>
#include <planfence/zonefile/store.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <cstdlib>
#include <sys/wait.h>
#include <string>
#include <vector>

#include "../support/fixtures.hpp"
#include "../support/shell.hpp"
#include "../support/temporary_directory.hpp"
#include "examples/support/knot_server.hpp"

#if defined(PLANFENCE_CTL_PATH)

namespace {

using planfence_test::command_result;
using planfence_test::contains;
using planfence_test::run;
using planfence_test::temporary_directory;

std::string ctl(const std::string& arguments) { return std::string(PLANFENCE_CTL_PATH) + " " + arguments; }

const std::string zone = "example.test.";

/// Generation g: api and www fixed, db on two addresses that change with g.
planfence::plan plan_of(std::uint64_t g) {
  return planfence_test::make_plan(g, {{"api.example.test.", {"192.0.2.1"}},
                                       {"db.example.test.", {"198.51.100." + std::to_string(g), "198.51.100.200"}},
                                       {"www.example.test.", {"192.0.2.80"}}});
}

/// Runs `python3 -c CHECK` on `json` (the check reads the document from standard input with
/// json.load and asserts on it): exit 0 only when the document parses and the assertions hold.
command_result check_json(const temporary_directory& dir, const std::string& json, const std::string& check) {
  const auto file = dir.path / "status.json";
  {
    std::ofstream out(file, std::ios::trunc);
    out << json;
  }
  return run("python3 -c 'import json,sys\nd=json.load(sys.stdin)\n" + check + "' < " + file.string());
}

}  // namespace

TEST_CASE("planfence-ctl status on a zone-file store: the 2025 state exits 1 naming the empty endpoint and the missing plan",
          "[recovery][ctl][status]") {
  temporary_directory dir;
  const std::string history_dir = (dir.path / "history").string();
  const std::string zones_dir = (dir.path / "zones").string();
  std::filesystem::create_directories(zones_dir);
  const std::string store = "zonefile://" + zones_dir;
  // The history retains generations 2..6: generation 1 was collected, as in 2025.
  {
    auto history = planfence::durable_history::open(history_dir).value();
    for (std::uint64_t g = 2; g <= 6; ++g) REQUIRE(history->publish(plan_of(g)).has_value());
  }
  REQUIRE(run(ctl("rehearse --dir " + history_dir + " --store " + store + " --zone " + zone +
                  " --endpoint db.example.test. --stamp 1"))
              .status == 0);

  const auto broken = run(ctl("status --store " + store + " --dir " + history_dir));
  CHECK(broken.status == 1);
  CHECK(contains(broken.output, "History " + history_dir + ": 5 plans retained, generations 2..6; newest 6"));
  CHECK(contains(broken.output, "2 serve the newest generation, 6"));
  CHECK(contains(broken.output, "Endpoints: 3 managed; by generation served: g6 2, g1 1"));
  CHECK(contains(broken.output, "1 SERVES NO RECORDS:"));
  CHECK(contains(broken.output, "db.example.test.                             serves g1, fence 1, 0 records, PLAN GONE"));
  CHECK(contains(broken.output, "1 serves a generation whose plan the history no longer has:"));
  CHECK(contains(broken.output, "NOT HEALTHY: 1 endpoint serves no records, 1 serves a plan the history no longer has."));

  const auto as_json = run(ctl("status --json --store " + store + " --dir " + history_dir) + " 2>/dev/null");
  CHECK(as_json.status == 1);
  CHECK(check_json(dir, as_json.output,
                   "assert d[\"healthy\"] is False, d\n"
                   "assert [e[\"name\"] for e in d[\"serving_nothing\"]] == [\"db.example.test.\"], d\n"
                   "assert [(e[\"name\"], e[\"generation\"]) for e in d[\"missing_plan\"]] == [(\"db.example.test.\", 1)], d\n"
                   "assert sorted(e[\"name\"] for e in d[\"serving_newest\"]) == [\"api.example.test.\", \"www.example.test.\"], d\n"
                   "assert d[\"history\"][\"newest\"] == 6 and d[\"history\"][\"retained\"] == [2, 3, 4, 5, 6], d\n"
                   "assert d[\"operator_hold\"] is None and d[\"fence_floor\"] == 1, d\n"
                   "assert d[\"by_generation\"] == {\"6\": 2, \"1\": 1}, d")
            .status == 0);

  // Restored behind an operator fence: healthy (exit 0), and the hold is shown.
  REQUIRE(run(ctl("override --dir " + history_dir + " --generation latest --store " + store)).status == 0);
  const auto held = run(ctl("status --store " + store + " --dir " + history_dir));
  CHECK(held.status == 0);
  CHECK(contains(held.output, "fence floor   1024  OPERATOR HOLD"));
  CHECK(contains(held.output, "3 serve the newest generation, 6"));
  CHECK(contains(held.output, "Healthy: every endpoint serves records of a plan the history retains."));
  const auto held_json = run(ctl("status --json --store " + store + " --dir " + history_dir) + " 2>/dev/null");
  CHECK(held_json.status == 0);
  CHECK(check_json(dir, held_json.output,
                   "assert d[\"healthy\"] is True and d[\"serving_nothing\"] == [] and d[\"missing_plan\"] == [], d\n"
                   "assert d[\"operator_hold\"] == {\"kind\": \"fence-floor\", \"fence\": 1024}, d")
            .status == 0);
  REQUIRE(run(ctl("release --store " + store)).status == 0);
  const auto released = run(ctl("status --store " + store + " --dir " + history_dir));
  CHECK(released.status == 0);
  CHECK(contains(released.output, "fence floor   1025\n"));
  CHECK_FALSE(contains(released.output, "OPERATOR HOLD"));

  // Without --dir: what the store holds, nothing about plans.
  const auto bare = run(ctl("status --store " + store));
  CHECK(bare.status == 0);
  CHECK(contains(bare.output, "History: not given (--dir)"));
  CHECK(contains(bare.output, "by generation served: g6 3"));

  // Usage errors.
  CHECK(run(ctl("status --dir " + history_dir)).status == 2);
  CHECK(run(ctl("status --store rfc2136://127.0.0.1:1/example.test.?tsig=hmac-sha256:k:c2VjcmV0")).status == 2);
  CHECK(run(ctl("status --store " + store + " --json=yes")).status == 2);
}

TEST_CASE("planfence-ctl status reads effective generations and caps its lists on the screen, not in --json",
          "[recovery][ctl][status]") {
  using namespace planfence;
  temporary_directory dir;
  const std::string history_dir = (dir.path / "history").string();
  const std::string zones_dir = (dir.path / "zones").string();
  std::filesystem::create_directories(zones_dir);
  const std::string store_uri = "zonefile://" + zones_dir;
  // 30 endpoints; generation 2 changes only ep0.
  std::map<std::string, std::vector<std::string>> endpoints;
  for (int i = 0; i < 30; ++i) endpoints["ep" + std::to_string(i) + ".example.test."] = {"192.0.2." + std::to_string(i + 1)};
  const auto first_endpoints = endpoints;
  endpoints["ep0.example.test."] = {"198.51.100.7"};
  const plan second = planfence_test::make_plan(2, endpoints);
  {
    auto history = durable_history::open(history_dir).value();
    REQUIRE(history->publish(planfence_test::make_plan(1, first_endpoints)).has_value());
  }
  {
    auto files = zonefile_store::open(zones_dir).value();
    REQUIRE(files.create_zone(zone));
  }
  REQUIRE(run(ctl("apply --dir " + history_dir + " --generation 1 --store " + store_uri)).status == 0);
  {
    auto history = durable_history::open(history_dir).value();
    REQUIRE(history->publish(planfence_test::make_plan(2, endpoints)).has_value());
  }
  // Older is not broken: 30 endpoints on generation 1 while 2 is the newest: exit 0, 20 shown.
  const auto behind = run(ctl("status --store " + store_uri + " --dir " + history_dir));
  CHECK(behind.status == 0);
  CHECK(contains(behind.output, "0 serve the newest generation, 2"));
  CHECK(contains(behind.output, "30 serve an older generation:"));
  CHECK(contains(behind.output, "... and 10 more (--json lists all)"));
  const auto behind_json = run(ctl("status --json --store " + store_uri + " --dir " + history_dir) + " 2>/dev/null");
  CHECK(check_json(dir, behind_json.output, "assert len(d[\"serving_older\"]) == 30 and d[\"healthy\"] is True, d").status == 0);
  // Progress goes to standard error, so standard output stays one JSON document.
  {
    const std::string out = (dir.path / "out.json").string();
    const std::string err = (dir.path / "err.txt").string();
    const int raw = std::system(("env PLANFENCE_CTL_PROGRESS_MS=0 " + ctl("status --json --store " + store_uri + " --dir " +
                                                                          history_dir) + " >" + out + " 2>" + err).c_str());
    CHECK(WEXITSTATUS(raw) == 0);
    std::ifstream in(out), progress(err);
    std::stringstream json, lines;
    json << in.rdbuf();
    lines << progress.rdbuf();
    CHECK(contains(lines.str(), "planfence-ctl status: read 30 of 30 endpoints (100%)"));
    CHECK(check_json(dir, json.str(), "assert d[\"endpoints\"] == 30, d").status == 0);
  }

  // A change-following apply of generation 2 writes ep0 only, under the apply marks: the other 29
  // keep generation 1's stamp and serve generation 2 (the applied mark).
  {
    auto files = zonefile_store::open(zones_dir).value();
    const apply_marks marks = files.read_marks().value();
    const fence_token token{1};
    REQUIRE(files.begin_apply(marks, generation{2}, token));
    const auto ep0 = files.resolve("ep0.example.test.").value();
    const stamp seen = files.read_stamp(ep0).value();
    REQUIRE(files.commit(ep0, seen, stamp{generation{2}, token, 0}, second.find("ep0.example.test.")->records));
    REQUIRE(files.finish_apply(generation{2}, token));
  }
  // Generation 1's plan collected: its stamps are still on 29 endpoints, but they serve 2.
  std::filesystem::remove(std::filesystem::path(history_dir) / "0000000001.plan");
  const auto marked = run(ctl("status --store " + store_uri + " --dir " + history_dir));
  CHECK(marked.status == 0);
  CHECK(contains(marked.output, "30 serve the newest generation, 2"));
  CHECK(contains(marked.output, "apply marks   begun 2, applied 2"));
  const auto marked_json = run(ctl("status --json --store " + store_uri + " --dir " + history_dir) + " 2>/dev/null");
  CHECK(check_json(dir, marked_json.output,
                   "s = {e[\"name\"]: e for e in d[\"serving_newest\"]}\n"
                   "assert len(s) == 30 and d[\"missing_plan\"] == [], d\n"
                   "assert s[\"ep5.example.test.\"][\"stamp_generation\"] == 1 and s[\"ep5.example.test.\"][\"generation\"] == 2, d")
            .status == 0);
}

TEST_CASE("planfence-ctl status on an RFC 2136 store (knotd): the 2025 state exits 1, restored exits 0",
          "[recovery][ctl][status][rfc2136]") {
  using namespace planfence;
  REQUIRE(planfence_example::knot_server::available());
  temporary_directory dir;
  const std::string history_dir = (dir.path / "history").string();
  {
    auto history = durable_history::open(history_dir).value();
    for (std::uint64_t g = 2; g <= 4; ++g) REQUIRE(history->publish(plan_of(g)).has_value());
  }
  auto knot = planfence_example::knot_server::start({{zone, ""}});
  REQUIRE(knot.has_value());
  const std::string where = " --dir " + history_dir + " --store '" + knot->uri(zone) + "'";

  // Never written: every endpoint of the newest plan serves nothing.
  const auto fresh = run(ctl("status" + where));
  CHECK(fresh.status == 1);
  CHECK(contains(fresh.output, "3 SERVE NO RECORDS:"));

  // The 2025 state, written past the enactor's rules as `rehearse` does for zone files: api and
  // www on generation 4, db emptied under generation 1's stamp (collected).
  {
    const plan newest = plan_of(4);
    std::vector<std::string> names;
    for (const auto& e : newest.endpoints()) names.push_back(e->name);
    auto store = rfc2136_store::open_uri(knot->uri(zone), names).value();
    for (const auto& e : newest.endpoints()) {
      const auto h = store.resolve(e->name).value();
      const stamp seen = store.read_stamp(h).value();
      const bool emptied = e->name == "db.example.test.";
      REQUIRE(store.commit(h, seen, stamp{generation{emptied ? 1u : 4u}, fence_token{1}, 0},
                           emptied ? record_set{} : e->records));
    }
  }
  const auto broken = run(ctl("status" + where));
  CHECK(broken.status == 1);
  CHECK(contains(broken.output, "2 serve the newest generation, 4"));
  CHECK(contains(broken.output, "db.example.test.                             serves g1, fence 1, 0 records, PLAN GONE"));
  const auto broken_json = run(ctl("status --json" + where) + " 2>/dev/null");
  CHECK(broken_json.status == 1);
  CHECK(check_json(dir, broken_json.output,
                   "assert [e[\"name\"] for e in d[\"serving_nothing\"]] == [\"db.example.test.\"], d\n"
                   "assert [e[\"generation\"] for e in d[\"missing_plan\"]] == [1], d")
            .status == 0);
  CHECK_FALSE(contains(broken.output + broken_json.output, knot->key_argument()));  // no TSIG secret

  REQUIRE(run(ctl("override" + where + " --generation latest")).status == 0);
  const auto restored = run(ctl("status" + where));
  CHECK(restored.status == 0);
  CHECK(contains(restored.output, "3 serve the newest generation, 4"));
  CHECK(contains(restored.output, "OPERATOR HOLD"));
}

#endif  // PLANFENCE_CTL_PATH
