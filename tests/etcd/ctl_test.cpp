// planfence-ctl against etcd: a plan history kept in etcd (--dir etcd://...) and an etcd store
// (--store etcd://...?fence=floor), driven through the real binary as an operator would.
#include <catch2/catch.hpp>

#include <planfence/etcd/registry.hpp>
#include <planfence/store/etcd_store.hpp>

#include <cstdio>
#include <string>
#include <sys/wait.h>

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

#endif
