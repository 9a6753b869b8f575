// Proves that the RFC 2136 store explains PowerDNS's refusals, against a real PowerDNS
// Authoritative Server 4.7 (gsqlite3 backend, dnsupdate=yes, the key allowed by the zone's
// TSIG-ALLOW-DNSUPDATE metadata; examples/support/pdns_server.hpp) on loopback:
//  - with the right key, a commit lands and is read back (so the refusals below are about keys);
//  - a wrong secret and an unknown key name get an UNSIGNED NOTAUTH from PowerDNS: the store says
//    "the server refused ... without signing its answer ...: the key name (K) or its secret is
//    wrong, or the key is not allowed to update ZONE", as authentication_failed;
//  - no key: the UPDATE is refused (REFUSED) and the message says to give a key;
//  - a zone PowerDNS does not serve is not_authoritative.
// Tagged [pdns]; registered only where pdns_server, pdnsutil and sqlite3 are installed.
#include <catch2/catch.hpp>

#include <planfence/rfc2136/store.hpp>

#include <string>
#include <vector>

#include "examples/support/pdns_server.hpp"
#include "refusal_checks.hpp"
#include "support/store_fixtures.hpp"

using namespace planfence;
using planfence_example::pdns_server;
using namespace planfence_rfc2136_test;

namespace {

pdns_server start_pdns() {
  auto pdns = pdns_server::start("example.test.");
  if (!pdns) std::fprintf(stderr, "pdns_server: %s\n", pdns.error().message().c_str());
  PLANFENCE_ASSERT(pdns.has_value());
  return std::move(*pdns);
}

std::string uri_with(const pdns_server& pdns, const std::string& zone, const std::string& key) {
  return store_uri(pdns.port(), zone, 2000, key);
}

}  // namespace

TEST_CASE("pdns: the right key commits, and a wrong key is named as the cause of PowerDNS's unsigned NOTAUTH",
          "[pdns]") {
  auto pdns = start_pdns();
  const std::vector<std::string> names = {"www.example.test."};

  SECTION("the right key: a commit lands and is read back") {
    auto store = rfc2136_store::open_uri(pdns.uri(), names);
    INFO((store ? std::string() : store.error().message()));
    REQUIRE(store);
    const endpoint_handle www = store->resolve("www.example.test.").value();
    const stamp first{generation{1}, fence_token{1}, 0};
    REQUIRE(store->commit(www, stamp{}, first, planfence_test::a_records({"192.0.2.1"})));
    auto seen = store->read_stamp(www);
    REQUIRE(seen);
    CHECK(seen->gen == generation{1});
  }
  SECTION("the right key name with another secret") {
    const std::string message = open_refused(
        uri_with(pdns, "example.test.", "hmac-sha256:" + pdns.key_name() + ":c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"), names,
        errc::authentication_failed);
    INFO(message);
    CHECK(contains(message, "NOTAUTH without signing its answer"));
    CHECK(contains(message, "the key name (" + pdns.key_name() + ") or its secret is wrong"));
    CHECK(contains(message, "not allowed to update example.test."));
  }
  SECTION("a key name PowerDNS does not know") {
    const std::string message = open_refused(uri_with(pdns, "example.test.", "hmac-sha256:nobody.:" + pdns.secret_base64()),
                                             names, errc::authentication_failed);
    INFO(message);
    CHECK(contains(message, "without signing its answer"));
    CHECK(contains(message, "the key name (nobody.) or its secret is wrong"));
  }
  SECTION("no key: the update is refused, and the message says to give one") {
    auto store = rfc2136_store::open_uri(uri_with(pdns, "example.test.", ""), names);
    REQUIRE(store);
    const std::string message = first_commit_refused(*store, errc::authentication_failed);
    INFO(message);
    CHECK(contains(message, "REFUSED"));
    CHECK(contains(message, "no TSIG key was given"));
  }
  SECTION("a zone PowerDNS does not serve") {
    const std::string message =
        open_refused(uri_with(pdns, "other.test.", pdns.key_argument()), {"www.other.test."}, errc::not_authoritative);
    INFO(message);
    CHECK(contains(message, "not authoritative for other.test."));
  }
}
