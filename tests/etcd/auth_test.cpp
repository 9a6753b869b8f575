// etcd authentication against a real member with `etcdctl auth enable` (tests/support/etcd_secure.hpp:
// a root user, a user `planfence` whose role grants readwrite on /pf/ only, a user `outsider`
// limited to /other/). Plain HTTP here, so these run in every build; tests/etcd_tls/ runs the same
// workflow over TLS with client certificates.
//
// What is checked: the prefix-limited user is enough for every component and for planfence-ctl; a
// wrong password and a refused permission are errc::authentication_failed naming the user or the
// prefix; the password comes from an owner-only file or an environment variable, never from the
// URI; a token that expires (--auth-token-ttl 2) in the middle of an apply is renewed and every
// write is applied exactly once; no password reaches any message or output.
#include <catch2/catch.hpp>

#include <planfence/detail/uri.hpp>
#include <planfence/etcd/client.hpp>
#include <planfence/etcd/lease_authority.hpp>
#include <planfence/etcd/registry.hpp>
#include <planfence/etcd/sequencer.hpp>
#include <planfence/etcd/store.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "secure_workflow.hpp"

namespace {

using namespace planfence;
using namespace std::chrono_literals;
using planfence_test::secured_etcd;
using planfence_test::secured_prefix;

secured_etcd& shared_secured() {
  static secured_etcd member({.tls = false});
  return member;
}

/// The version etcd holds for `key` (1: written once), read as root.
std::int64_t version_of(const secured_etcd& etcd, const std::string& key) {
  etcd::client root(etcd.config("root"));
  auto got = root.range(key);
  REQUIRE(got);
  return got->kvs.empty() ? 0 : got->kvs[0].version;
}

}  // namespace

TEST_CASE("etcd auth: a user granted readwrite on the planfence prefix only runs every component", "[etcd][auth]") {
  planfence_test::run_every_component_as_prefix_user(shared_secured());
}

#if defined(PLANFENCE_CTL_PATH)
TEST_CASE("etcd auth: planfence-ctl runs as the prefix user and names a wrong password or a refused permission",
          "[etcd][auth][ctl]") {
  planfence_test::run_ctl_as_prefix_user(shared_secured(), PLANFENCE_CTL_PATH);
}
#endif

#if defined(PLANFENCE_ETCD_ENACTORS_PATH)
TEST_CASE("etcd auth: the etcd_enactors example races its enactors as the prefix user and converges", "[etcd][auth][example]") {
  // Planner, three enactors in their own processes, a holder paused past its lease, a holder
  // killed mid-apply, a monitor of every endpoint: all as the user whose role grants readwrite on
  // /pf/ only.
  const std::string output_file = (shared_secured().dir() / "etcd_enactors.out").string();
  const std::string command = std::string(PLANFENCE_ETCD_ENACTORS_PATH) + " --uri '" + shared_secured().uri(secured_prefix()) +
                              "' >" + output_file + " 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream in(output_file);
  const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO(output);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(output.find("every endpoint converged to the newest plan") != std::string::npos);
  // The faults happened (whether the paused holder still tries a write depends on timing).
  CHECK(output.find("SIGSTOP") != std::string::npos);
  CHECK(output.find("SIGKILL") != std::string::npos);
  CHECK(output.find(secured_etcd::password("planfence")) == std::string::npos);

  // The wrong prefix: refused before anything starts, in etcd's words.
  const std::string refused = std::string(PLANFENCE_ETCD_ENACTORS_PATH) + " --uri '" +
                              shared_secured().uri("/other") + "' >" + output_file + " 2>&1";
  const int refused_status = std::system(refused.c_str());
  std::ifstream again(output_file);
  const std::string refused_output((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  INFO(refused_output);
  CHECK(WEXITSTATUS(refused_status) == 2);
  CHECK(refused_output.find("grant-permission") != std::string::npos);
  CHECK(refused_output.find(secured_etcd::password("planfence")) == std::string::npos);
}
#endif

TEST_CASE("etcd auth: a wrong password is authentication_failed naming the user and never the password", "[etcd][auth]") {
  secured_etcd& e = shared_secured();
  const std::string prefix = secured_prefix();
  const std::string wrong = (e.dir() / "wrong-for-open.password").string();
  planfence_test::write_file(wrong, "Wrong-Password-77aa\n", 0600);
  const std::string uri = "etcd://" + e.address() + prefix + "?user=planfence&password-file=" + wrong;
  std::vector<std::string> messages;

  auto store = etcd_store::open_uri(uri);
  REQUIRE_FALSE(store);
  CHECK(store.error().code == errc::authentication_failed);
  messages.push_back(store.error().message());
  auto registry = etcd::etcd_plan_registry::open_uri(uri);
  REQUIRE_FALSE(registry);
  CHECK(registry.error().code == errc::authentication_failed);
  messages.push_back(registry.error().message());
  auto sequencer = etcd::etcd_sequencer::open_uri(uri);
  REQUIRE(sequencer);  // opening reads nothing
  auto next = sequencer->next();
  REQUIRE_FALSE(next);
  messages.push_back(next.error().message());
  steady_clock clock;
  auto authority = etcd::etcd_lease_authority<>::open_uri(uri, clock);
  REQUIRE(authority);
  auto acquired = authority->acquire(2s);
  REQUIRE_FALSE(acquired);
  CHECK(acquired.error().code == errc::authentication_failed);
  messages.push_back(acquired.error().message());
  for (const std::string& m : messages) {
    INFO(m);
    CHECK(m.find("authentication failed") != std::string::npos);
    CHECK(m.find("'planfence'") != std::string::npos);
    CHECK(m.find("Wrong-Password-77aa") == std::string::npos);
    CHECK_FALSE(planfence_test::holds_a_password(m));
  }
  // The right password through the same path works.
  CHECK(etcd_store::open_uri(e.uri(prefix)).has_value());
}

TEST_CASE("etcd auth: a user without permission on the prefix is refused naming the prefix", "[etcd][auth]") {
  secured_etcd& e = shared_secured();
  const std::string prefix = secured_prefix();
  auto store = etcd_store::open_uri(e.uri(prefix, "outsider"));
  REQUIRE_FALSE(store);
  INFO(store.error().message());
  CHECK(store.error().code == errc::authentication_failed);
  CHECK(store.error().detail.find("permission denied") != std::string::npos);
  CHECK(store.error().detail.find("'outsider'") != std::string::npos);
  CHECK(store.error().detail.find("under " + prefix + "/") != std::string::npos);
  CHECK_FALSE(planfence_test::holds_a_password(store.error().message()));
  // Nothing at all without credentials: etcd says the user name is empty.
  auto anonymous = etcd_store::open_uri("etcd://" + e.address() + prefix);
  REQUIRE_FALSE(anonymous);
  INFO(anonymous.error().message());
  CHECK(anonymous.error().detail.find("user name is empty") != std::string::npos);
  // Made by hand from a client_config (no key_prefix set): the components name their prefix too.
  auto config = e.config("outsider");
  config.key_prefix.clear();
  auto by_hand = etcd::etcd_plan_registry::make(config, prefix);
  REQUIRE_FALSE(by_hand);
  CHECK(by_hand.error().detail.find("under " + prefix + "/") != std::string::npos);
  // The outsider may use its own prefix.
  etcd::client outsider(e.config("outsider"));
  CHECK(outsider.put("/other/key", "value").has_value());
  CHECK(outsider.put(prefix + "/key", "value").error().code == errc::authentication_failed);
}

TEST_CASE("etcd auth: the password comes from an owner-only file or an environment variable and never from the URI",
          "[etcd][auth][uri]") {
  secured_etcd& e = shared_secured();
  const std::string base = "etcd://" + e.address() + "/pf/uri";
  const std::string secret = secured_etcd::password("planfence");
  std::vector<std::string> messages;
  auto refused = [&](const std::string& uri, errc code, const std::string& says) {
    auto where = etcd::parse_uri(uri);
    REQUIRE_FALSE(where);
    INFO(where.error().message());
    CHECK(where.error().code == code);
    CHECK(where.error().detail.find(says) != std::string::npos);
    messages.push_back(where.error().message());
  };
  // In the URI itself: refused, and the password is not repeated.
  refused(base + "?user=planfence&password=" + secret, errc::parse_error, "password-file=PATH or password-env=VAR");
  refused("etcd://planfence:" + secret + "@" + e.address() + "/pf/uri", errc::parse_error, "before the host");
  refused(base + "?user=planfence", errc::parse_error, "needs its password");
  refused(base + "?pasword=" + secret, errc::parse_error, "not one planfence knows");
  // A password file the group or others may read is refused, naming the file and its mode.
  const std::string open_file = (e.dir() / "readable.password").string();
  planfence_test::write_file(open_file, secret + "\n", 0640);
  refused(base + "?user=planfence&password-file=" + open_file, errc::io_error, "chmod 600");
  refused(base + "?user=planfence&password-file=" + (e.dir() / "missing").string(), errc::io_error, "cannot open");
  // An environment variable: its name is in the URI, the password in the environment.
  ::unsetenv("PLANFENCE_TEST_ETCD_PASSWORD");
  refused(base + "?user=planfence&password-env=PLANFENCE_TEST_ETCD_PASSWORD", errc::parse_error, "is not set");
  REQUIRE(::setenv("PLANFENCE_TEST_ETCD_PASSWORD", secret.c_str(), 1) == 0);
  const std::string env_uri = base + "?user=planfence&password-env=PLANFENCE_TEST_ETCD_PASSWORD";
  auto from_env = etcd::parse_uri(env_uri);
  REQUIRE(from_env);
  REQUIRE(from_env->config.auth.has_value());
  CHECK(from_env->config.auth->user == "planfence");
  CHECK(from_env->config.auth->password == secret);
  CHECK(etcd_store::open_uri(env_uri).has_value());
  ::unsetenv("PLANFENCE_TEST_ETCD_PASSWORD");
  auto from_file = etcd::parse_uri(e.uri("/pf/uri"));
  REQUIRE(from_file);
  CHECK(from_file->config.auth->password == secret);  // the first line, without its newline
  // TLS parameters need etcds://.
  refused(base + "?ca-file=/etc/ssl/ca.pem", errc::parse_error, "use etcds://");
  for (const std::string& m : messages) CHECK(m.find(secret) == std::string::npos);
  // Printed URIs keep the user and the paths, never a password.
  CHECK(detail::redact_uri(base + "?user=planfence&password-file=/p&password=" + secret) ==
        base + "?user=planfence&password-file=/p&password=(redacted)");
  CHECK(detail::redact_uri(env_uri) == env_uri);
}

TEST_CASE("etcd auth: a refused token is renewed and the write is sent again exactly once", "[etcd][auth]") {
  secured_etcd& e = shared_secured();
  const std::string prefix = secured_prefix();
  etcd::client c(e.config());
  REQUIRE(c.put(prefix + "/a", "1"));
  CHECK(c.authentications() == 1);
  // A token etcd no longer knows (as an expired one): the put is refused before it is applied,
  // the client authenticates again and sends it once more.
  c.spoil_token_for_test();
  auto put = c.put(prefix + "/b", "1");
  REQUIRE(put);
  CHECK(c.authentications() == 2);
  CHECK(version_of(e, prefix + "/b") == 1);
  c.spoil_token_for_test();
  auto txn = c.txn({etcd::compare::create_revision(prefix + "/c", 0)}, {etcd::op::put(prefix + "/c", "1")}, {});
  REQUIRE(txn);
  CHECK(txn->succeeded);  // applied by the second send, not by the refused first one
  CHECK(c.authentications() == 3);
  CHECK(version_of(e, prefix + "/c") == 1);
}

TEST_CASE("etcd auth: a token expiring mid-apply is renewed and no write is lost or repeated", "[etcd][auth][S1]") {
  // Simple tokens expire --auth-token-ttl after their last use: 1 s here, and the apply below
  // pauses 2.5 s before each of its writes, as an apply held up by a slow plan or a busy host.
  secured_etcd e({.tls = false, .auth_token_ttl_seconds = 1});
  const std::string prefix = secured_prefix();
  std::vector<std::string> names;
  for (int i = 0; i < 12; ++i) names.push_back("e" + std::to_string(i) + ".expiry.test.");
  auto store = etcd_store::open_uri(e.uri(prefix, "planfence", "&fence=floor&max-txn-ops=7"));  // 4 items a transaction
  REQUIRE(store);
  const auto records = planfence_test::a_records({"192.0.2.7"});
  const fence_token token{3};
  REQUIRE(store->raise_fence(token));
  const std::uint64_t first_auth = store->connection().authentications();
  const generation target{5};
  REQUIRE(store->begin_apply(store->read_marks().value(), target, token));
  std::vector<endpoint_handle> handles;
  for (const std::string& n : names) handles.push_back(store->resolve(n).value());
  for (std::size_t from = 0; from < handles.size(); from += 4) {
    std::vector<stamp> seen(4);
    REQUIRE(store->read_stamps(std::span(handles).subspan(from, 4), seen));
    std::vector<commit_item> items;
    for (std::size_t i = 0; i < 4; ++i) items.push_back(commit_item{handles[from + i], seen[i], stamp{target, token, 0}, &records});
    std::this_thread::sleep_for(2500ms);  // the token expires between the read and the write
    REQUIRE(store->commit_batch(items));
    for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
  }
  std::this_thread::sleep_for(2500ms);
  REQUIRE(store->finish_apply(target, token));
  // The token was renewed (once per pause), and every write happened exactly once.
  CHECK(store->connection().authentications() >= first_auth + 4);
  for (const std::string& n : names) {
    INFO(n);
    CHECK(version_of(e, store->keys().endpoint(n)) == 1);
  }
  CHECK(version_of(e, store->keys().marks()) == 2);  // begin_apply, finish_apply
  CHECK(store->read_marks().value().applied == target);
}

TEST_CASE("etcd tls: an etcds URI in a build without TLS says how to enable it", "[etcd][tls][uri]") {
  // This executable is compiled without PLANFENCE_ETCD_OPENSSL (tests/etcd_tls/ has it).
  static_assert(!etcd::tls_compiled);
  auto where = etcd::parse_uri("etcds://127.0.0.1:2379/pf/x?ca-file=/etc/ssl/ca.pem");
  REQUIRE_FALSE(where);
  INFO(where.error().message());
  CHECK(where.error().code == errc::io_error);
  CHECK(where.error().detail.find("PLANFENCE_ETCD_OPENSSL") != std::string::npos);
  CHECK(where.error().detail.find("PLANFENCE_WITH_OPENSSL=ON") != std::string::npos);
  auto store = etcd_store::open_uri("etcds://127.0.0.1:2379/pf/x?fence=floor");
  REQUIRE_FALSE(store);
  CHECK(store.error().detail.find("not compiled into this program") != std::string::npos);
  // A client configured for TLS by hand says the same on every call, and sends nothing.
  auto config = etcd::parse_endpoints("127.0.0.1:9").value();
  config.tls.enabled = true;
  etcd::client c(config);
  auto got = c.range("/x");
  REQUIRE_FALSE(got);
  CHECK(got.error().detail.find("PLANFENCE_ETCD_OPENSSL") != std::string::npos);
  CHECK(c.requests_sent() == 0);
}
