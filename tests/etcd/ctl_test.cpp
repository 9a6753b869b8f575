// planfence-ctl against etcd: a plan history kept in etcd (--dir etcd://...) and an etcd store
// (--store etcd://...?fence=floor), driven through the real binary as an operator would. Also that
// the read-only commands (history, show, export, diff) leave the cluster's revision unchanged,
// read from a response header before and after, on a used prefix and on a mistyped one.
// Cases tagged [ctl-pending] state what planfence-ctl must do and does not yet (a mistyped
// prefix is a usage error, not "0 plans"; a corrupt plan in an etcd history exits 1 and is
// listed); they are also tagged [.] (hidden: neither ctest nor a plain run sees them) until it
// does. Run them with `planfence_etcd_tests "[ctl-pending]"`; drop the [.] when they pass.
#include <catch2/catch.hpp>

#include <planfence/etcd/registry.hpp>
#include <planfence/store/etcd_store.hpp>

#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "../support/store_fixtures.hpp"
#include "etcd_support.hpp"

#if defined(PLANFENCE_CTL_PATH)

namespace {

struct ctl_run {
  int status = -1;
  std::string output;
};

/// Runs planfence-ctl with `arguments` (already shell-quoted), stdout and stderr together.
ctl_run ctl(const std::string& arguments) {
  ctl_run out;
  const std::string command = std::string(PLANFENCE_CTL_PATH) + " " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out.output += buffer;
  const int raw = ::pclose(pipe);
  out.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

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
  CHECK(before.status == 1);  // nothing served yet

  const ctl_run override_run = ctl("override --dir '" + history_uri + "' --generation 2 --store '" + store_uri + "'");
  INFO(override_run.output);
  CHECK(override_run.status == 0);
  const ctl_run after = ctl("diff --dir '" + history_uri + "' --generation 2 --store '" + store_uri + "'");
  INFO(after.output);
  CHECK(after.status == 0);

  // Automation's old token is fenced out by the operator fence (S2), read back from etcd.
  auto store = etcd::etcd_store::open_uri(store_uri);
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
    auto store = etcd::etcd_store::open_uri(store_uri).value();
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
          "[.][etcd][ctl][ctl-pending]") {
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
          "[.][etcd][ctl][ctl-pending][S7]") {
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

#endif
