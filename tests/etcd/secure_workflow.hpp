// tests/etcd/secure_workflow.hpp: what the authentication tests (auth_test.cpp, plain HTTP) and
// the TLS tests (tests/etcd_tls/, TLS and authentication) both run against a secured member:
// every etcd component of planfence driven by the user whose role grants readwrite on the
// planfence prefix only, and planfence-ctl likewise; and the check that no secret reached an
// output.
#pragma once

#include <catch2/catch.hpp>

#include <planfence/etcd/lease_authority.hpp>
#include <planfence/etcd/registry.hpp>
#include <planfence/etcd/sequencer.hpp>
#include <planfence/etcd/store.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>
#include <sys/wait.h>

#include "../support/etcd_secure.hpp"
#include "../support/fixtures.hpp"

namespace planfence_test {

/// REQUIRE(r), showing the error when it fails.
#define PLANFENCE_REQUIRE_OK(r)                                           \
  do {                                                                    \
    const auto& planfence_checked = (r);                                  \
    if (!planfence_checked) FAIL(#r ": " << planfence_checked.error().message()); \
  } while (false)

/// Whether `text` holds any of the secured member's passwords.
inline bool holds_a_password(const std::string& text) {
  for (const char* user : {"root", "planfence", "outsider"}) {
    if (text.find(secured_etcd::password(user)) != std::string::npos) return true;
  }
  return false;
}

/// The registry, the sequencer, the lease authority and the store (holder-key and floor-only,
/// commit, commit_batch, read_stamps, marks, raise_fence, live set, collection), all through URIs
/// naming the prefix-limited user: nothing planfence does needs more than readwrite on its prefix.
inline void run_every_component_as_prefix_user(const secured_etcd& etcd) {
  using namespace planfence;
  using namespace std::chrono_literals;
  const std::string prefix = secured_prefix();
  const std::vector<std::string> names = {"db.example.test.", "www.example.test.", "api.example.test."};

  auto sequencer = etcd::etcd_sequencer::open_uri(etcd.uri(prefix));
  PLANFENCE_REQUIRE_OK(sequencer);
  auto registry = etcd::etcd_plan_registry::open_uri(etcd.uri(prefix));
  PLANFENCE_REQUIRE_OK(registry);
  std::vector<generation> generations;
  for (int i = 0; i < 4; ++i) {
    auto next = sequencer->next();
    PLANFENCE_REQUIRE_OK(next);
    generations.push_back(*next);
    PLANFENCE_REQUIRE_OK(registry->publish(generation_plan(next->value(), names)));
  }
  CHECK(registry->retained().value().size() == 4);

  steady_clock clock;
  auto authority = etcd::etcd_lease_authority<>::open_uri(etcd.uri(prefix), clock, {.holder_name = "az1"});
  PLANFENCE_REQUIRE_OK(authority);
  auto held = authority->acquire(3s);
  PLANFENCE_REQUIRE_OK(held);
  auto store = etcd_store::open_uri(etcd.uri(prefix, "planfence", "&max-txn-ops=4"));  // one item per transaction
  PLANFENCE_REQUIRE_OK(store);
  PLANFENCE_REQUIRE_OK(store->raise_fence(held->fence));
  std::vector<endpoint_handle> handles;
  for (const std::string& n : names) handles.push_back(store->resolve(n).value());
  std::vector<stamp> seen(handles.size());
  PLANFENCE_REQUIRE_OK(store->read_stamps(handles, seen));
  const generation target = generations.back();
  auto looked_up = registry->lookup(target);
  PLANFENCE_REQUIRE_OK(looked_up);
  const plan& newest = *looked_up;
  auto begun = store->begin_apply(store->read_marks().value(), target, held->fence);
  PLANFENCE_REQUIRE_OK(begun);
  std::vector<commit_item> items;
  for (std::size_t i = 0; i < handles.size(); ++i) {
    items.push_back(commit_item{handles[i], seen[i], stamp{target, held->fence, 0}, &newest.find(names[i])->records});
  }
  PLANFENCE_REQUIRE_OK(store->commit_batch(items));
  for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
  PLANFENCE_REQUIRE_OK(store->finish_apply(target, held->fence));
  CHECK(store->live_generations().value() == std::vector<generation>{target});
  CHECK(store->read_all().value().endpoints.size() == names.size());
  PLANFENCE_REQUIRE_OK(authority->renew(*held, 3s));
  auto collected = registry->collect(retention_policy{.keep_newest = 1}, 0, *store, held->fence);
  PLANFENCE_REQUIRE_OK(collected);
  CHECK(registry->retained().value() == std::vector<generation>{target});
  PLANFENCE_REQUIRE_OK(authority->release(*held));
}

struct ctl_output {
  int status = -1;
  std::string output;
};

/// Runs planfence-ctl at `ctl_path` with `arguments` (shell-quoted), stdout and stderr together.
inline ctl_output run_ctl(const std::string& ctl_path, const std::string& arguments) {
  ctl_output out;
  const std::string command = ctl_path + " " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) out.output += buffer;
  const int raw = ::pclose(pipe);
  out.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

/// planfence-ctl's etcd commands as the prefix-limited user: history, show, diff, override and
/// release; then the same with a wrong password and as a user without permission on the prefix,
/// which fail naming the cause. No output holds a password.
inline void run_ctl_as_prefix_user(const secured_etcd& etcd, const std::string& ctl_path) {
  using namespace planfence;
  const std::string history_uri = etcd.uri(secured_prefix());
  const std::string store_prefix = secured_prefix();
  const std::string store_uri = etcd.uri(store_prefix, "planfence", "&fence=floor");
  const std::vector<std::string> names = {"db.example.test.", "www.example.test."};
  {
    auto registry = etcd::etcd_plan_registry::open_uri(history_uri).value();
    REQUIRE(registry.publish(generation_plan(1, names)));
    REQUIRE(registry.publish(generation_plan(2, names)));
  }
  std::string everything;
  auto ctl = [&](const std::string& arguments) {
    ctl_output r = run_ctl(ctl_path, arguments);
    UNSCOPED_INFO("planfence-ctl " << arguments << "\n" << r.output << "(exit " << r.status << ")");
    everything += r.output;
    return r;
  };
  const ctl_output history = ctl("history --dir '" + history_uri + "'");
  CHECK(history.status == 0);
  CHECK(history.output.find(": 2 plans") != std::string::npos);
  CHECK(ctl("show --dir '" + history_uri + "' --generation 2").status == 0);
  CHECK(ctl("override --dir '" + history_uri + "' --generation 2 --store '" + store_uri + "'").status == 0);
  CHECK(ctl("diff --dir '" + history_uri + "' --generation 2 --store '" + store_uri + "'").status == 0);
  const ctl_output release = ctl("release --store '" + store_uri + "'");
  CHECK(release.status == 0);
  CHECK(release.output.find("Released the operator hold") != std::string::npos);
  {
    auto store = etcd_store::open_uri(store_uri).value();
    CHECK(store.read_stamp(store.resolve("www.example.test.").value()).value().gen == generation{2});
  }

  // A password file holding the wrong password: refused, naming the failure and the user.
  const std::string wrong = (etcd.dir() / "wrong.password").string();
  write_file(wrong, "not-the-password\n", 0600);
  std::string wrong_uri = history_uri;
  wrong_uri.replace(wrong_uri.find(etcd.password_file("planfence")), etcd.password_file("planfence").size(), wrong);
  const ctl_output refused = ctl("history --dir '" + wrong_uri + "'");
  CHECK(refused.status != 0);
  CHECK(refused.output.find("authentication_failed") != std::string::npos);
  CHECK(refused.output.find("'planfence'") != std::string::npos);
  CHECK(refused.output.find("not-the-password") == std::string::npos);

  // A user whose role does not cover the prefix: permission denied, naming the prefix.
  const ctl_output denied = ctl("history --dir '" + etcd.uri(secured_prefix(), "outsider") + "'");
  CHECK(denied.status != 0);
  CHECK(denied.output.find("permission denied") != std::string::npos);
  CHECK(denied.output.find("grant-permission --prefix=true") != std::string::npos);

  CHECK_FALSE(holds_a_password(everything));
}

}  // namespace planfence_test
