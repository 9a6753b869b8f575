// planfence-ctl against etcd: a plan history kept in etcd (--dir etcd://...) and an etcd store
// (--store etcd://...?fence=floor), driven through the real binary as an operator would. Also that
// the read-only commands (history, show, export, diff, status) leave the cluster's revision unchanged,
// read from a response header before and after, on a used prefix and on a mistyped one.
// And that the tool tells the truth about etcd: a mistyped prefix is a usage error naming it, not
// "0 plans"; a corrupt plan in an etcd history makes `history` exit 1 and list it by its key;
// apply refuses a holder-key URI up front unless an operator hold is in place; a password in a URI appears in no output;
// the temporary snapshot of an etcd history is removed, also when SIGTERM stops the tool. status
// on an etcd store and history (the 2025 state, holders and holds); override's hold made of the
// holder key (no etcd lease), kept through a SIGKILL, released at once.
#include <catch2/catch.hpp>

#include <planfence/enactor.hpp>
#include <planfence/etcd/lease_authority.hpp>
#include <planfence/etcd/operator_hold.hpp>
#include <planfence/etcd/registry.hpp>
#include <planfence/etcd/store.hpp>
#include <planfence/plan_text.hpp>
#include <planfence/recovery.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/store_fixtures.hpp"
#include "../support/temporary_directory.hpp"
#include "etcd_support.hpp"

#if defined(PLANFENCE_CTL_PATH)

namespace {

struct ctl_run {
  int status = -1;
  std::string output;
};

/// Runs planfence-ctl with `arguments` (already shell-quoted), stdout and stderr together, after
/// `prefix` (an `env VAR=value ` to set its environment).
ctl_run ctl_in(const std::string& prefix, const std::string& arguments) {
  ctl_run out;
  const std::string command = prefix + std::string(PLANFENCE_CTL_PATH) + " " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out.output += buffer;
  const int raw = ::pclose(pipe);
  out.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

ctl_run ctl(const std::string& arguments) { return ctl_in("", arguments); }

}  // namespace

TEST_CASE("planfence-ctl reads a plan history in etcd and applies it to an etcd store under an operator fence",
          "[etcd][ctl][S2]") {
  using namespace planfence;
  const std::string base = "etcd://" + planfence_test::shared_etcd().client_address();
  const std::string history_uri = base + planfence_test::unique_prefix();
  const std::string store_uri = base + planfence_test::unique_prefix() + "?fence=floor";
  auto registry = etcd::etcd_plan_registry::open_uri(history_uri);
  REQUIRE(registry);
  const std::vector<std::string> names = {"db.example.test.", "www.example.test."};
  REQUIRE(registry->publish(planfence_test::generation_plan(1, names)));
  REQUIRE(registry->publish(planfence_test::generation_plan(2, names)));

  const ctl_run history = ctl("history --dir '" + history_uri + "'");
  INFO(history.output);
  CHECK(history.status == 0);
  CHECK(history.output.find("History " + history_uri + ": 2 plans") != std::string::npos);

  const ctl_run missing = ctl("show --dir '" + history_uri + "' --generation 7");
  CHECK(missing.status == 2);
  CHECK(missing.output.find("generation 7 is not in " + history_uri) != std::string::npos);

  const ctl_run before = ctl("diff --dir '" + history_uri + "' --generation 2 --store '" + store_uri + "'");
  CHECK(before.status == 2);  // nothing under the store's prefix yet: named as a possible typo
  CHECK(before.output.find("nothing under") != std::string::npos);

  const ctl_run override_run = ctl("override --dir '" + history_uri + "' --generation 2 --store '" + store_uri + "'");
  INFO(override_run.output);
  CHECK(override_run.status == 0);
  const ctl_run after = ctl("diff --dir '" + history_uri + "' --generation 2 --store '" + store_uri + "'");
  INFO(after.output);
  CHECK(after.status == 0);

  // Automation's old token is fenced out by the operator fence (S2), read back from etcd.
  auto store = etcd_store::open_uri(store_uri);
  REQUIRE(store);
  const auto www = store->resolve("www.example.test.").value();
  const stamp now = store->read_stamp(www).value();
  CHECK(now.gen == generation{2});
  CHECK(store->commit(www, now, stamp{generation{3}, fence_token{1}, 0},
                      planfence_test::generation_plan(3, names).find("www.example.test.")->records)
            .error()
            .code == errc::fenced);
  const ctl_run release = ctl("release --store '" + store_uri + "'");
  INFO(release.output);
  CHECK(release.status == 0);
  CHECK(release.output.find("Released the operator hold") != std::string::npos);
}

namespace {

std::int64_t cluster_revision() {
  planfence::etcd::client c(planfence_test::shared_etcd().config());
  return c.range("/no-such-key").value().revision;
}

}  // namespace

TEST_CASE("planfence-ctl's read-only commands write nothing to etcd, at a used prefix and a mistyped one",
          "[etcd][ctl][readonly]") {
  using namespace planfence;
  const std::string base = "etcd://" + planfence_test::shared_etcd().client_address();
  const std::string history_uri = base + planfence_test::unique_prefix();
  const std::string store_uri = base + planfence_test::unique_prefix() + "?fence=floor";
  const std::vector<std::string> names = {"db.example.test.", "www.example.test."};
  {
    auto registry = etcd::etcd_plan_registry::open_uri(history_uri).value();
    REQUIRE(registry.publish(planfence_test::generation_plan(1, names)));
    REQUIRE(registry.publish(planfence_test::generation_plan(2, names)));
    auto store = etcd_store::open_uri(store_uri).value();
    const auto www = store.resolve("www.example.test.").value();
    REQUIRE(store.commit(www, stamp{}, stamp{generation{2}, fence_token{5}, 0},
                         planfence_test::generation_plan(2, names).find("www.example.test.")->records));
  }
  const std::string mistyped = base + planfence_test::unique_prefix();
  const std::string mistyped_store = base + planfence_test::unique_prefix() + "?fence=floor";
  const std::int64_t before = cluster_revision();
  for (const std::string& dir : {history_uri, mistyped}) {
    for (const std::string& store : {store_uri, mistyped_store}) {
      const std::vector<std::string> runs = {
          "history --dir '" + dir + "'",
          "show --dir '" + dir + "' --generation 2",
          "export --dir '" + dir + "' --generation 2 --zone example.test.",
          "diff --dir '" + dir + "' --generation 2 --store '" + store + "'",
          "status --store '" + store + "' --dir '" + dir + "'",
          "status --json --store '" + store + "'",
      };
      for (const std::string& run : runs) {
        const ctl_run r = ctl(run);
        INFO(run << "\n" << r.output);
        CHECK(r.status >= 0);  // ran and exited (0, 1 or 2), never killed by a signal
        CHECK(cluster_revision() == before);
      }
    }
  }
}

TEST_CASE("planfence-ctl history at a mistyped etcd prefix is a usage error naming the prefix, never \"0 plans\"",
          "[etcd][ctl]") {
  const std::string prefix = planfence_test::unique_prefix();
  const std::string uri = "etcd://" + planfence_test::shared_etcd().client_address() + prefix;
  for (const std::string& run : {"history --dir '" + uri + "'", "show --dir '" + uri + "' --generation 1"}) {
    const ctl_run r = ctl(run);
    INFO(run << "\n" << r.output);
    CHECK(r.status == 2);
    CHECK(r.output.find(prefix) != std::string::npos);
    CHECK(r.output.find("0 plans") == std::string::npos);
  }
}

TEST_CASE("planfence-ctl history over an etcd history holding a corrupt plan exits 1 and lists it",
          "[etcd][ctl][S7]") {
  using namespace planfence;
  const std::string prefix = planfence_test::unique_prefix();
  const std::string uri = "etcd://" + planfence_test::shared_etcd().client_address() + prefix;
  const std::vector<std::string> names = {"db.example.test.", "www.example.test."};
  auto registry = etcd::etcd_plan_registry::open_uri(uri).value();
  REQUIRE(registry.publish(planfence_test::generation_plan(1, names)));
  REQUIRE(registry.publish(planfence_test::generation_plan(2, names)));
  // Generation 2's record changed behind the digest's back (as a hand edit with etcdctl would).
  std::string text = format_plan(planfence_test::generation_plan(2, names));
  const std::size_t address = text.find(planfence_test::address_of(2));
  REQUIRE(address != std::string::npos);
  text.replace(address, planfence_test::address_of(2).size(), "192.0.2.250");
  REQUIRE(registry.connection().put(registry.keys().plan(2), text));
  REQUIRE(registry.lookup(generation{2}).error().code == errc::digest_mismatch);

  const ctl_run r = ctl("history --dir '" + uri + "'");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find(registry.keys().plan(2)) != std::string::npos);  // listed by its key
  CHECK(r.output.find("digest") != std::string::npos);                 // and what is wrong with it
}

TEST_CASE("planfence-ctl refuses a holder-key etcd store for apply without a hold, and prints no password from a URI",
          "[etcd][ctl]") {
  const std::string prefix = planfence_test::unique_prefix();
  const std::string address = planfence_test::shared_etcd().client_address();
  const std::string uri = "etcd://" + address + prefix;
  const std::vector<std::string> names = {"db.example.test.", "www.example.test."};
  auto registry = planfence::etcd::etcd_plan_registry::open_uri(uri).value();
  REQUIRE(registry.publish(planfence_test::generation_plan(1, names)));
  {
    const ctl_run r = ctl("apply --dir '" + uri + "' --generation 1 --store '" + uri + "'");
    INFO(r.output);
    CHECK(r.status == 2);
    CHECK(r.output.find("?fence=floor") != std::string::npos);
    CHECK(r.output.find("planfence-ctl override") != std::string::npos);
    CHECK(r.output.find("Applying") == std::string::npos);
  }
  const std::string secret = "pa55-w0rd-n0t-t0-be-seen";
  for (const std::string& bad : {"etcd://root:" + secret + "@" + address + prefix,
                                 "etcd://" + address + prefix + "?password=" + secret,
                                 "etcd://" + address + prefix + "?" + secret}) {
    for (const std::string& run : {"history --dir '" + bad + "'", "show --dir '" + bad + "' --generation 1",
                                   "export --dir '" + bad + "' --generation 1 --zone example.test.",
                                   "diff --dir '" + uri + "' --generation 1 --store '" + bad + "'",
                                   "apply --dir '" + uri + "' --generation 1 --store '" + bad + "'",
                                   "release --store '" + bad + "'"}) {
      const ctl_run r = ctl(run);
      INFO(run << "\n" << r.output);
      CHECK(r.status == 2);
      CHECK(r.output.find(secret) == std::string::npos);
    }
  }
}

TEST_CASE("planfence-ctl removes its snapshot of an etcd history, also when SIGTERM stops it", "[etcd][ctl]") {
  const std::string prefix = planfence_test::unique_prefix();
  const std::string uri = "etcd://" + planfence_test::shared_etcd().client_address() + prefix;
  const std::vector<std::string> names = {"db.example.test.", "www.example.test."};
  auto registry = planfence::etcd::etcd_plan_registry::open_uri(uri).value();
  for (std::uint64_t g = 1; g <= 20; ++g) REQUIRE(registry.publish(planfence_test::generation_plan(g, names)));
  planfence_test::temporary_directory temp;
  const std::string env = "env TMPDIR=" + temp.path.string() + " ";
  CHECK(ctl_in(env, "show --dir '" + uri + "' --generation latest").status == 0);
  CHECK(std::filesystem::is_empty(temp.path));
  // SIGTERM at a few moments of the run: before, during or after the snapshot. Whatever it
  // interrupts, the tool exits (0 if it finished first, else 143) and leaves no directory.
  for (const int delay_ms : {0, 5, 20, 50}) {
    const std::string line = env + std::string(PLANFENCE_CTL_PATH) + " history --dir '" + uri + "' >/dev/null 2>&1 & " +
                             "pid=$!; sleep 0." + std::to_string(1000 + delay_ms).substr(1) + "; kill -TERM $pid; wait $pid";
    const int status = std::system(line.c_str());
    INFO("delay " << delay_ms << " ms, status " << status);
    CHECK(WIFEXITED(status));
    CHECK((WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 143));
    CHECK(std::filesystem::is_empty(temp.path));
  }
}

namespace {

/// Generation g of `names`, every endpoint on 10.x.y.g, marked as an intended bulk change (every
/// endpoint changes from one generation to the next, which S4's guard would refuse otherwise).
planfence::plan bulk_plan(std::uint64_t g, const std::vector<std::string>& names) {
  std::map<std::string, std::vector<std::string>> endpoints;
  for (const std::string& name : names) endpoints[name] = {planfence_test::address_of(g)};
  return planfence_test::make_plan(g, endpoints, /*bulk_change=*/true);
}

planfence::etcd::holder_info holder_of(const std::string& prefix) {
  planfence::etcd::client c(planfence_test::shared_etcd().config());
  return planfence::etcd::read_holder(c, planfence::etcd::layout{prefix}).value();
}

}  // namespace

TEST_CASE("planfence-ctl override on a holder-key etcd store takes the holder key: automation is kept out, and back in at once after release",
          "[etcd][ctl][S2][hold]") {
  using namespace planfence;
  const std::string base = "etcd://" + planfence_test::shared_etcd().client_address();
  const std::string history_uri = base + planfence_test::unique_prefix();
  const std::string prefix = planfence_test::unique_prefix();
  const std::string store_uri = base + prefix;  // holder-key fencing: the default
  const std::vector<std::string> names = {"db.example.test.", "www.example.test."};
  auto registry = etcd::etcd_plan_registry::open_uri(history_uri).value();
  for (std::uint64_t g = 1; g <= 3; ++g) REQUIRE(registry.publish(bulk_plan(g, names)));

  // Automation holds the etcd lease and serves generation 1.
  steady_clock clock;
  auto store = etcd_store::open_uri(store_uri).value();
  REQUIRE(store.mode() == etcd::fence_mode::holder_key);
  auto automation = etcd::etcd_lease_authority<>::open_uri(store_uri, clock, {.holder_name = "az1"}).value();
  const lease before = automation.acquire(std::chrono::seconds{30}).value();
  const auto db = store.resolve("db.example.test.").value();
  REQUIRE(store.commit(db, stamp{}, stamp{generation{1}, before.fence, 0}, bulk_plan(1, names).find("db.example.test.")->records));

  const ctl_run taken = ctl("override --dir '" + history_uri + "' --generation 2 --store '" + store_uri + "'");
  INFO(taken.output);
  REQUIRE(taken.status == 0);
  CHECK(taken.output.find("Operator hold " + prefix + "/holder is in place with fence") != std::string::npos);
  CHECK(taken.output.find("superseded automation holder 'az1'") != std::string::npos);
  CHECK(taken.output.find("Verified by reading the store back") != std::string::npos);

  // The hold is the holder key, with no etcd lease, and a token newer than automation's.
  const etcd::holder_info hold = holder_of(prefix);
  CHECK(hold.held);
  CHECK(hold.operator_hold);
  CHECK(hold.lease == 0);
  CHECK(hold.name == etcd::operator_hold_name);
  CHECK(hold.fence > before.fence);
  CHECK_FALSE(is_operator_fence(hold.fence));

  // Automation is kept out by etcd: its old token's commit is refused, its lease is gone, and a
  // new acquire is refused while the hold exists.
  const stamp now = store.read_stamp(db).value();
  CHECK(now.gen == generation{2});
  auto late = store.commit(db, now, stamp{generation{3}, before.fence, 0}, bulk_plan(3, names).find("db.example.test.")->records);
  REQUIRE_FALSE(late.has_value());
  CHECK(late.error().code == errc::fenced);
  CHECK_FALSE(automation.check(before).has_value());
  auto other = etcd::etcd_lease_authority<>::open_uri(store_uri, clock, {.holder_name = "az2"}).value();
  auto refused = other.acquire(std::chrono::seconds{30});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == errc::lease_held);
  CHECK(std::string(refused.error().detail.view()).find("planfence-ctl operator hold") != std::string::npos);

  // While the hold is in place, apply commits with its token on the holder-key URI.
  const ctl_run applied = ctl("apply --dir '" + history_uri + "' --generation 3 --store '" + store_uri + "'");
  INFO(applied.output);
  CHECK(applied.status == 0);
  CHECK(applied.output.find("with fence " + std::to_string(hold.fence.value())) != std::string::npos);

  const ctl_run released = ctl("release --store '" + store_uri + "'");
  INFO(released.output);
  REQUIRE(released.status == 0);
  CHECK(released.output.find("Released the operator hold " + prefix + "/holder with fence " +
                             std::to_string(hold.fence.value())) != std::string::npos);
  CHECK(released.output.find("is held by nobody") != std::string::npos);
  CHECK_FALSE(holder_of(prefix).held);  // read back here too

  // At once (no waiting for etcd's revision to pass anything): automation acquires with a newer
  // token and commits.
  const lease after = other.acquire(std::chrono::seconds{30}).value();
  CHECK(after.fence > hold.fence);
  REQUIRE(registry.publish(bulk_plan(4, names)));
  const stamp current = store.read_stamp(db).value();
  CHECK(current.gen == generation{3});
  auto resumed = store.commit(db, current, stamp{generation{4}, after.fence, 0}, bulk_plan(4, names).find("db.example.test.")->records);
  INFO((resumed ? std::string("written") : resumed.error().message()));
  CHECK(resumed.has_value());
  CHECK(store.read_stamp(db).value().gen == generation{4});

  // Nothing more to release: exit 1, nothing written.
  CHECK(ctl("release --store '" + store_uri + "'").status == 1);
  CHECK(holder_of(prefix).fence == after.fence);
  REQUIRE(other.release(after));
}

TEST_CASE("planfence-ctl release cleans up the hold of an override that was killed, or whose answer was lost",
          "[etcd][ctl][S2][hold]") {
  using namespace planfence;
  const std::string base = "etcd://" + planfence_test::shared_etcd().client_address();
  const std::string history_uri = base + planfence_test::unique_prefix();
  const std::string prefix = planfence_test::unique_prefix();
  const std::string store_uri = base + prefix;
  const std::vector<std::string> names = planfence_test::endpoint_names(3000);
  auto registry = etcd::etcd_plan_registry::open_uri(history_uri).value();
  REQUIRE(registry.publish(bulk_plan(1, names)));
  steady_clock clock;
  auto automation = etcd::etcd_lease_authority<>::open_uri(store_uri, clock, {.holder_name = "az1"}).value();
  const lease first = automation.acquire(std::chrono::seconds{30}).value();

  // override, killed with SIGKILL as soon as it says the hold is in place (mid-apply, or just
  // after: either way the process is gone and cannot release anything).
  planfence_test::temporary_directory temp;
  const std::string log = (temp.path / "override.log").string();
  const std::string ctl_path = PLANFENCE_CTL_PATH;
  std::vector<std::string> argv_text = {ctl_path, "override", "--dir", history_uri, "--generation", "1", "--store", store_uri};
  std::vector<char*> argv;
  for (std::string& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  REQUIRE(::posix_spawn(&pid, ctl_path.c_str(), &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  std::string seen;
  for (int i = 0; i < 6000 && seen.find("is in place") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    seen = text.str();
  }
  ::kill(pid, SIGKILL);
  int raw = 0;
  REQUIRE(::waitpid(pid, &raw, 0) == pid);
  INFO(seen);
  REQUIRE(seen.find("is in place") != std::string::npos);
  CHECK(WIFSIGNALED(raw));

  // The hold outlived the process: etcd keeps automation out.
  const etcd::holder_info left = holder_of(prefix);
  CHECK(left.operator_hold);
  CHECK(left.fence > first.fence);
  auto other = etcd::etcd_lease_authority<>::open_uri(store_uri, clock, {.holder_name = "az2"}).value();
  CHECK(other.acquire(std::chrono::seconds{30}).error().code == errc::lease_held);

  const ctl_run released = ctl("release --store '" + store_uri + "'");
  INFO(released.output);
  CHECK(released.status == 0);
  CHECK_FALSE(holder_of(prefix).held);
  const lease back = other.acquire(std::chrono::seconds{30}).value();
  CHECK(back.fence > left.fence);
  REQUIRE(other.release(back));

  // A hold whose override never saw the answer (its transaction applied, the reply lost): a
  // lease-less holder key nobody reported. release finds and removes it as well.
  {
    etcd::client c(planfence_test::shared_etcd().config());
    REQUIRE(c.put(prefix + "/holder", std::string(etcd::operator_hold_name) + "\n"));
  }
  CHECK(other.acquire(std::chrono::seconds{30}).error().code == errc::lease_held);
  const ctl_run cleaned = ctl("release --store '" + store_uri + "'");
  INFO(cleaned.output);
  CHECK(cleaned.status == 0);
  CHECK_FALSE(holder_of(prefix).held);
  const lease again = other.acquire(std::chrono::seconds{30}).value();
  CHECK(again.fence > back.fence);
  REQUIRE(other.release(again));
}

TEST_CASE("planfence-ctl status on an etcd store: the 2025 state exits 1, the hold and the holder are shown",
          "[etcd][ctl][status]") {
  using namespace planfence;
  const std::string base = "etcd://" + planfence_test::shared_etcd().client_address();
  const std::string history_uri = base + planfence_test::unique_prefix();
  const std::string prefix = planfence_test::unique_prefix();
  const std::string store_uri = base + prefix;
  const std::vector<std::string> names = {"api.example.test.", "db.example.test.", "www.example.test."};
  auto registry = etcd::etcd_plan_registry::open_uri(history_uri).value();
  for (std::uint64_t g = 2; g <= 4; ++g) REQUIRE(registry.publish(bulk_plan(g, names)));
  // The 2025 state: api and www on generation 4, db emptied under generation 1's stamp, a plan
  // the history does not have (written past the enactor's rules, through a floor-only store).
  {
    auto store = etcd_store::open_uri(store_uri + "?fence=floor").value();
    for (const std::string& name : names) {
      const auto h = store.resolve(name).value();
      const bool emptied = name == "db.example.test.";
      REQUIRE(store.commit(h, stamp{}, stamp{generation{emptied ? 1u : 4u}, fence_token{1}, 0},
                           emptied ? record_set{} : bulk_plan(4, names).find(name)->records));
    }
  }
  const std::string where = " --store '" + store_uri + "' --dir '" + history_uri + "'";
  const ctl_run broken = ctl("status" + where);
  INFO(broken.output);
  CHECK(broken.status == 1);
  CHECK(broken.output.find("2 serve the newest generation, 4") != std::string::npos);
  CHECK(broken.output.find("1 SERVES NO RECORDS:") != std::string::npos);
  CHECK(broken.output.find("db.example.test.                             serves g1, fence 1, 0 records, PLAN GONE") !=
        std::string::npos);
  CHECK(broken.output.find("etcd lease    held by nobody") != std::string::npos);

  planfence_test::temporary_directory temp;
  const std::string json_file = (temp.path / "status.json").string();
  const std::string json_run = std::string(PLANFENCE_CTL_PATH) + " status --json" + where + " > " + json_file + " 2>/dev/null";
  const int json_status = std::system(json_run.c_str());
  CHECK(WEXITSTATUS(json_status) == 1);
  const std::string check_broken =
      "python3 -c 'import json,sys\nd=json.load(sys.stdin)\n"
      "assert [e[\"name\"] for e in d[\"serving_nothing\"]] == [\"db.example.test.\"], d\n"
      "assert [e[\"generation\"] for e in d[\"missing_plan\"]] == [1], d\n"
      "assert d[\"lease_holder\"] is None and d[\"operator_hold\"] is None, d' < " + json_file;
  CHECK(std::system(check_broken.c_str()) == 0);

  // Automation holds the lease: shown; then the operator's hold, in place of it.
  steady_clock clock;
  auto automation = etcd::etcd_lease_authority<>::open_uri(store_uri, clock, {.holder_name = "az1"}).value();
  const lease held = automation.acquire(std::chrono::seconds{30}).value();
  const ctl_run with_holder = ctl("status" + where);
  CHECK(with_holder.output.find("etcd lease    held by automation holder 'az1' with fence " + std::to_string(held.fence.value())) !=
        std::string::npos);
  REQUIRE(ctl("override --dir '" + history_uri + "' --generation latest --store '" + store_uri + "'").status == 0);
  const ctl_run restored = ctl("status" + where);
  INFO(restored.output);
  CHECK(restored.status == 0);
  CHECK(restored.output.find("3 serve the newest generation, 4") != std::string::npos);
  CHECK(restored.output.find("etcd lease    OPERATOR HOLD: " + prefix + "/holder is the operator hold with fence") !=
        std::string::npos);
  CHECK(std::system((std::string(PLANFENCE_CTL_PATH) + " status --json" + where + " > " + json_file + " 2>/dev/null").c_str()) == 0);
  const std::string check_held =
      "python3 -c 'import json,sys\nd=json.load(sys.stdin)\n"
      "assert d[\"healthy\"] is True and d[\"operator_hold\"][\"kind\"] == \"holder-key\", d\n"
      "assert d[\"lease_holder\"][\"operator_hold\"] is True and d[\"lease_holder\"][\"lease\"] == 0, d' < " + json_file;
  CHECK(std::system(check_held.c_str()) == 0);
  REQUIRE(ctl("release --store '" + store_uri + "'").status == 0);
  const ctl_run after = ctl("status" + where);
  CHECK(after.status == 0);
  CHECK(after.output.find("OPERATOR HOLD") == std::string::npos);
}

TEST_CASE("planfence-ctl override on a holder-key store refuses, and removes its hold, when the floor is above the hold's token",
          "[etcd][ctl][hold]") {
  using namespace planfence;
  const std::string base = "etcd://" + planfence_test::shared_etcd().client_address();
  const std::string history_uri = base + planfence_test::unique_prefix();
  const std::string prefix = planfence_test::unique_prefix();
  const std::vector<std::string> names = {"db.example.test.", "www.example.test."};
  auto registry = etcd::etcd_plan_registry::open_uri(history_uri).value();
  REQUIRE(registry.publish(bulk_plan(1, names)));
  // A floor far above etcd's revision (raised by a floor-only writer): no holder-key commit can pass it.
  auto floor_store = etcd_store::open_uri(base + prefix + "?fence=floor").value();
  REQUIRE(floor_store.raise_fence(fence_token{std::uint64_t{1} << 40}));
  const ctl_run r = ctl("override --dir '" + history_uri + "' --generation 1 --store '" + base + prefix + "'");
  INFO(r.output);
  CHECK(r.status == 2);
  CHECK(r.output.find("is above the hold's token") != std::string::npos);
  CHECK(r.output.find("the hold was removed again (read back)") != std::string::npos);
  CHECK(r.output.find("Applying") == std::string::npos);
  CHECK_FALSE(holder_of(prefix).held);
}

TEST_CASE("planfence-ctl override on a holder-key store supersedes an earlier operator hold, whose token is then refused",
          "[etcd][ctl][S2][hold]") {
  using namespace planfence;
  const std::string base = "etcd://" + planfence_test::shared_etcd().client_address();
  const std::string history_uri = base + planfence_test::unique_prefix();
  const std::string prefix = planfence_test::unique_prefix();
  const std::vector<std::string> names = {"db.example.test.", "www.example.test."};
  auto registry = etcd::etcd_plan_registry::open_uri(history_uri).value();
  for (std::uint64_t g = 1; g <= 2; ++g) REQUIRE(registry.publish(bulk_plan(g, names)));
  const std::string where = " --dir '" + history_uri + "' --store '" + base + prefix + "'";
  REQUIRE(ctl("override" + where + " --generation 1").status == 0);
  const etcd::holder_info first = holder_of(prefix);
  const ctl_run second = ctl("override" + where + " --generation 1");
  INFO(second.output);
  REQUIRE(second.status == 0);
  CHECK(second.output.find("It superseded the operator hold with fence " + std::to_string(first.fence.value())) !=
        std::string::npos);
  const etcd::holder_info now = holder_of(prefix);
  CHECK(now.operator_hold);
  CHECK(now.fence > first.fence);
  // The first operator's token commits nothing any more.
  auto store = etcd_store::open_uri(base + prefix).value();
  const auto db = store.resolve("db.example.test.").value();
  const stamp seen = store.read_stamp(db).value();
  auto late = store.commit(db, seen, stamp{generation{2}, first.fence, 0}, bulk_plan(2, names).find("db.example.test.")->records);
  REQUIRE_FALSE(late.has_value());
  CHECK(late.error().code == errc::fenced);
  CHECK(ctl("release --store '" + base + prefix + "'").status == 0);
  CHECK_FALSE(holder_of(prefix).held);
}

TEST_CASE("planfence-ctl override and release with a running enactor on the etcd store, authority and registry",
          "[etcd][ctl][enactor][hold][S2][S6]") {
  // The whole loop with the real enactor: it converges, the operator's hold keeps it from writing
  // a newer plan, and after release it converges on that plan at once (no floor to climb past).
  using namespace planfence;
  using namespace std::chrono_literals;
  const std::string prefix = planfence_test::unique_prefix();
  const std::string uri = "etcd://" + planfence_test::shared_etcd().client_address() + prefix;
  const std::vector<std::string> names = planfence_test::endpoint_names(4);
  steady_clock clock;
  auto history = etcd::etcd_plan_registry::open_uri(uri).value();
  auto store = etcd_store::open_uri(uri).value();
  auto authority = etcd::etcd_lease_authority<>::open_uri(uri, clock, {.holder_name = "az1"}).value();
  etcd::etcd_enactor_registry<> registry{history, store, authority, "az1"};
  enactor automation{store, authority, registry, clock,
                     enactor_config{.name = "az1", .lease_ttl = 2000ms, .renew_margin = 1200ms, .poll_interval = 20ms,
                                    .zone_change_share_max = 1.0}};
  std::atomic<bool> stop{false};
  std::thread runner{[&] { automation.run_until(stop); }};
  auto reader = etcd_store::open_uri(uri).value();
  auto all_serve = [&](std::uint64_t g) {
    for (const std::string& n : names) {
      const auto st = reader.read_stamp(reader.resolve(n).value());
      if (!st || st->gen != generation{g}) return false;
    }
    return true;
  };
  auto wait_for = [&](std::uint64_t g) {
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (!all_serve(g) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
    return all_serve(g);
  };
  REQUIRE(history.publish(planfence_test::generation_plan(1, names)));
  CHECK(wait_for(1));

  const ctl_run taken = ctl("override --dir '" + uri + "' --generation 1 --store '" + uri + "'");
  INFO(taken.output);
  CHECK(taken.status == 0);
  CHECK(taken.output.find("superseded automation holder 'az1'") != std::string::npos);
  const etcd::holder_info hold = holder_of(prefix);
  REQUIRE(hold.operator_hold);
  // A newer plan while the hold is in place: the enactor cannot take the lease, so nothing of
  // generation 2 is written however long it polls (a safety property: the wait only gives it
  // the chance to misbehave).
  REQUIRE(history.publish(planfence_test::generation_plan(2, names)));
  std::this_thread::sleep_for(1500ms);
  CHECK(all_serve(1));
  CHECK(holder_of(prefix).fence == hold.fence);

  const ctl_run released = ctl("release --store '" + uri + "'");
  INFO(released.output);
  CHECK(released.status == 0);
  CHECK(wait_for(2));
  stop = true;
  runner.join();
  for (const std::string& n : names) CHECK(reader.read_stamp(reader.resolve(n).value())->fence > hold.fence);
}

TEST_CASE("survey_store reads an etcd store of 3,000 endpoints in a handful of requests", "[etcd][status]") {
  using namespace planfence;
  const std::string uri = "etcd://" + planfence_test::shared_etcd().client_address() + planfence_test::unique_prefix();
  const std::vector<std::string> names = planfence_test::endpoint_names(3000);
  const plan p = bulk_plan(1, names);
  auto store = etcd_store::open_uri(uri + "?fence=floor").value();
  std::vector<commit_item> items;
  for (const std::string& name : names) {
    commit_item item;
    item.endpoint = store.resolve(name).value();
    item.expected = stamp{};
    item.desired = stamp{generation{1}, fence_token{1}, 0};
    item.records = &p.find(name)->records;
    items.push_back(item);
  }
  REQUIRE(store.commit_batch(items));
  auto reader = etcd_store::open_uri(uri).value();
  const std::uint64_t before = reader.requests_sent();
  auto survey = survey_store(reader, nullptr);
  REQUIRE(survey);
  const std::uint64_t requests = reader.requests_sent() - before;
  INFO(requests << " requests");
  CHECK(survey->endpoints.size() == 3000);
  CHECK(survey->healthy());
  // The marks, the names, and one range per 1,024 endpoints (3): not one request per endpoint.
  CHECK(requests <= 8);
}

#endif
