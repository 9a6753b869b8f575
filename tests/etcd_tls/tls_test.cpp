// The etcd components over TLS, against a real etcd member started with --client-cert-auth,
// --trusted-ca-file, --cert-file and --key-file, with authentication enabled (a root user and a
// user whose role grants readwrite on /pf/ only): tests/support/etcd_secure.hpp makes the
// certificates with `openssl` and sets the cluster up with `etcdctl`, as docs/etcd.md says.
//
// What is checked: the store conformance suite, every component (store, registry, sequencer, lease
// authority) and planfence-ctl as the prefix-limited user over TLS with a client certificate; and
// each refusal, with a message naming the cause and no secret: a server certificate from another
// CA, a server name the certificate does not carry, a client certificate that is expired, missing
// or from another CA, a private key file others may read, a wrong password, a user without
// permission on the prefix.
#ifndef PLANFENCE_ETCD_OPENSSL
#error "tests/etcd_tls is built with planfence::planfence_openssl, which defines PLANFENCE_ETCD_OPENSSL"
#endif
#include <catch2/catch.hpp>

#include <planfence/etcd/client.hpp>
#include <planfence/etcd/store.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <span>
#include <thread>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../etcd/secure_workflow.hpp"
#include "../support/store_fixtures.hpp"

namespace planfence_test {

inline secured_etcd& shared_tls_etcd() {
  static secured_etcd member({.tls = true});
  return member;
}

/// The conformance fixture: a floor-only store under a fresh prefix of the TLS member, as the
/// prefix-limited user with a client certificate.
struct etcd_tls_store_fixture {
  static constexpr const char* name = "etcd-tls";

  explicit etcd_tls_store_fixture(const std::vector<std::string>& names)
      : store(planfence::etcd_store::make(shared_tls_etcd().config(), secured_prefix(), names,
                                          planfence::etcd::fence_mode::floor_only)
                  .value()) {}

  planfence::etcd_store store;

  const planfence::record_set& records(planfence::generation gen, const std::string& endpoint) {
    std::lock_guard lock(mutex_);
    static_cast<void>(endpoint);
    auto [it, inserted] = sets_.try_emplace(gen.value(), nullptr);
    if (inserted) it->second = std::make_unique<planfence::record_set>(a_records({address_of(gen.value())}));
    return *it->second;
  }

  std::vector<std::string> served(planfence::endpoint_handle h) const {
    std::vector<std::string> out;
    const auto records = store.served(h);
    for (const planfence::record& r : records.value()) out.push_back(r.rdata);
    return out;
  }

 private:
  std::mutex mutex_;
  std::map<std::uint64_t, std::unique_ptr<planfence::record_set>> sets_;
};

}  // namespace planfence_test

#define PLANFENCE_CONFORMANCE_FIXTURES std::tuple<planfence_test::etcd_tls_store_fixture>
#include "../support/store_conformance.inc"

namespace {

using planfence_test::secured_etcd;
using planfence_test::secured_prefix;
using planfence_test::shared_tls_etcd;

/// `uri` with `name`'s value replaced by `value` (the parameter must be there).
std::string with_parameter(std::string uri, const std::string& name, const std::string& value) {
  const std::size_t at = uri.find(name + "=");
  REQUIRE(at != std::string::npos);
  const std::size_t end = uri.find('&', at);
  uri.replace(at, (end == std::string::npos ? uri.size() : end) - at, name + "=" + value);
  return uri;
}

std::string without_parameter(std::string uri, const std::string& name) {
  const std::size_t at = uri.find("&" + name + "=");
  REQUIRE(at != std::string::npos);
  const std::size_t end = uri.find('&', at + 1);
  uri.erase(at, (end == std::string::npos ? uri.size() : end) - at);
  return uri;
}

/// Opening a store at `uri` fails; the message holds `says` and no secret.
void refused(const std::string& uri, const std::string& says) {
  auto store = planfence::etcd_store::open_uri(uri);
  REQUIRE_FALSE(store);
  const std::string message = store.error().message();
  INFO(message);
  CHECK(message.find(says) != std::string::npos);
  CHECK_FALSE(planfence_test::holds_a_password(message));
  CHECK(message.find("PRIVATE KEY") == std::string::npos);
}

}  // namespace

TEST_CASE("etcd tls: every component runs over TLS with a client certificate as the prefix user", "[etcd][tls][auth]") {
  planfence_test::run_every_component_as_prefix_user(shared_tls_etcd());
}

#if defined(PLANFENCE_CTL_PATH)
TEST_CASE("etcd tls: planfence-ctl runs over TLS as the prefix user and names a wrong password or a refused permission",
          "[etcd][tls][auth][ctl]") {
  planfence_test::run_ctl_as_prefix_user(shared_tls_etcd(), PLANFENCE_CTL_PATH);
}
#endif

TEST_CASE("etcd tls: the server's certificate is checked against the CA file and the host name", "[etcd][tls]") {
  secured_etcd& e = shared_tls_etcd();
  const std::string uri = e.uri(secured_prefix());
  REQUIRE(planfence::etcd_store::open_uri(uri).has_value());
  // A CA that did not sign the server's certificate.
  refused(with_parameter(uri, "ca-file", e.pki("other-ca.pem")), "unable to get local issuer certificate");
  // A name the certificate does not carry (it names 127.0.0.1 and localhost).
  refused(uri + "&server-name=etcd.wrong.example", "mismatch");
  refused(uri + "&server-name=127.0.0.2", "mismatch");
  CHECK(planfence::etcd_store::open_uri(uri + "&server-name=localhost").has_value());
  // Plain HTTP to a TLS member gets no answer it can use.
  std::string plain = uri.substr(0, uri.find('?'));
  plain.replace(0, 5, "etcd");
  plain += "?user=planfence&password-file=" + e.password_file("planfence");
  auto store = planfence::etcd_store::open_uri(plain);
  CHECK_FALSE(store.has_value());
}

TEST_CASE("etcd tls: a client certificate that is expired or missing or from another CA is refused", "[etcd][tls]") {
  secured_etcd& e = shared_tls_etcd();
  const std::string uri = e.uri(secured_prefix());
  REQUIRE(planfence::etcd_store::open_uri(uri).has_value());
  // etcd (Go's TLS) refuses these after the handshake, with an alert ("bad certificate",
  // "certificate required") or by closing the connection: the first request fails in TLS.
  refused(with_parameter(uri, "cert-file", e.pki("expired.pem")), "(TLS, ");
  refused(without_parameter(without_parameter(uri, "cert-file"), "key-file"), "(TLS, ");
  refused(with_parameter(uri, "cert-file", e.pki("stranger.pem")), "(TLS, ");
  // Half a client identity is refused before connecting.
  auto half = planfence::etcd::parse_uri(without_parameter(uri, "key-file"));
  REQUIRE_FALSE(half);
  CHECK(half.error().detail.find("both cert-file and key-file") != std::string::npos);
  // A private key its group or others may read is refused, naming the file and never its content.
  const std::string open_key = (e.dir() / "open-client.key").string();
  std::filesystem::copy_file(e.pki("client.key"), open_key);
  REQUIRE(::chmod(open_key.c_str(), 0644) == 0);
  refused(with_parameter(uri, "key-file", open_key), "chmod 600");
  // A CA file that is not there is named.
  refused(with_parameter(uri, "ca-file", (e.dir() / "missing-ca.pem").string()), "missing-ca.pem");
}

TEST_CASE("etcd tls: a wrong password or a user without permission is refused over TLS too", "[etcd][tls][auth]") {
  secured_etcd& e = shared_tls_etcd();
  const std::string prefix = secured_prefix();
  const std::string wrong = (e.dir() / "tls-wrong.password").string();
  planfence_test::write_file(wrong, "Tls-Wrong-Password-3c\n", 0600);
  auto bad = planfence::etcd_store::open_uri(with_parameter(e.uri(prefix), "password-file", wrong));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == planfence::errc::authentication_failed);
  CHECK(bad.error().message().find("Tls-Wrong-Password-3c") == std::string::npos);
  auto outsider = planfence::etcd_store::open_uri(e.uri(prefix, "outsider"));
  REQUIRE_FALSE(outsider);
  CHECK(outsider.error().code == planfence::errc::authentication_failed);
  CHECK(outsider.error().detail.find("under " + prefix + "/") != std::string::npos);
  // The token is renewed over TLS as over plain HTTP.
  planfence::etcd::client c(e.config());
  REQUIRE(c.put(prefix + "/a", "1"));
  c.spoil_token_for_test();
  REQUIRE(c.put(prefix + "/a", "2"));
  CHECK(c.authentications() == 2);
  CHECK(c.range(prefix + "/a").value().kvs.at(0).version == 2);
}

TEST_CASE("etcd tls: on a secured three-member cluster a killed member and expiring tokens lose and repeat no write",
          "[etcd][tls][auth][cluster]") {
  using namespace planfence;
  using namespace std::chrono_literals;
  // --auth-token-ttl 1: a token unused for a second on a member is gone there, so each pause
  // below expires it on every member, and the member the client fails over to never saw it used.
  secured_etcd e({.tls = true, .auth_token_ttl_seconds = 1, .members = 3});
  const std::string prefix = secured_prefix();
  std::vector<std::string> cluster_names;
  for (int i = 0; i < 12; ++i) cluster_names.push_back("e" + std::to_string(i) + ".cluster.test.");
  auto store = etcd_store::open_uri(e.uri(prefix, "planfence", "&fence=floor&max-txn-ops=7"));  // 4 items a transaction
  PLANFENCE_REQUIRE_OK(store);
  const auto records = planfence_test::a_records({"192.0.2.9"});
  const fence_token token{4};
  PLANFENCE_REQUIRE_OK(store->raise_fence(token));
  const std::uint64_t first_auth = store->connection().authentications();
  std::vector<endpoint_handle> handles;
  for (const std::string& n : cluster_names) handles.push_back(store->resolve(n).value());
  for (std::size_t from = 0; from < handles.size(); from += 4) {
    std::vector<stamp> seen(4);
    PLANFENCE_REQUIRE_OK(store->read_stamps(std::span(handles).subspan(from, 4), seen));
    std::vector<commit_item> items;
    for (std::size_t i = 0; i < 4; ++i) items.push_back(commit_item{handles[from + i], seen[i], stamp{generation{7}, token, 0}, &records});
    PLANFENCE_REQUIRE_OK(store->commit_batch(items));
    for (const commit_item& item : items) CHECK(item.outcome == commit_outcome::written);
    if (from == 0) e.kill_member(store->connection().current_member());  // the member this client talks to
    std::this_thread::sleep_for(2500ms);  // a new leader if it was the leader; every token expired
  }
  CHECK(store->connection().authentications() >= first_auth + 2);
  // Every key written exactly once (etcd's version), read as root from the surviving members.
  etcd::client root(e.config("root"));
  for (const std::string& n : cluster_names) {
    INFO(n);
    auto got = root.range(store->keys().endpoint(n));
    PLANFENCE_REQUIRE_OK(got);
    REQUIRE(got->kvs.size() == 1);
    CHECK(got->kvs[0].version == 1);
  }
}
