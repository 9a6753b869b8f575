// Proves that every refusal of the RFC 2136 store says its cause in DNS terms (the RCODE, the TSIG
// error when there is one) and what the operator can do, against a real knotd (which serves
// example.test. only):
//  - a wrong key name: NOTAUTH with TSIG error BADKEY, the key name, "update ACL";
//  - a wrong secret: NOTAUTH with TSIG error BADSIG, "secret";
//  - no key: the UPDATE is refused with NOTAUTH, "no TSIG key", "tsig-file";
//  - a zone knotd does not serve (Knot 3.2 answers REFUSED to queries and NOTAUTH to updates,
//    unsigned, with or without a key), and a zone below the one it serves (it answers NXDOMAIN
//    from example.test.): errc::not_authoritative, "not authoritative for ZONE", never
//    authentication_failed;
// and, with a loopback responder behaving as PowerDNS does (an unsigned NOTAUTH to any signed
// request, an authoritative SOA to an unsigned SOA query): "without signing its answer" and "the key
// name ... or its secret is wrong".
#include <catch2/catch.hpp>

#include <planfence/detail/socket.hpp>
#include <planfence/rfc2136/tsig.hpp>

#include <poll.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "knot_fixture.hpp"
#include "refusal_checks.hpp"

using namespace planfence;
using namespace planfence::detail;
using namespace planfence_rfc2136_test;

namespace {

constexpr int timeout_ms = 1000;

/// Answers as PowerDNS does to a key it does not accept: NOTAUTH without TSIG to every signed
/// request; an unsigned SOA query for example.test. gets the zone's SOA, authoritatively. UDP only.
class unsigned_notauth_responder {
 public:
  unsigned_notauth_responder() {
    udp_ = bind_socket(resolve_address("127.0.0.1", 0).value(), SOCK_DGRAM).value();
    port_ = local_port(udp_.get()).value();
    thread_ = std::thread([this] { serve(); });
  }
  ~unsigned_notauth_responder() {
    stop_.store(true);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  void serve() {
    std::vector<std::uint8_t> buffer(65535);
    while (!stop_.load()) {
      pollfd fds[1] = {{udp_.get(), POLLIN, 0}};
      if (::poll(fds, 1, 20) <= 0) continue;
      auto got = receive_datagram_from(udp_.get(), buffer, deadline_after(std::chrono::milliseconds(100)));
      if (!got) continue;
      auto q = decode_message(std::span<const std::uint8_t>(buffer.data(), got->length));
      if (!q || q->questions.empty()) continue;
      const bool signed_request = !q->additional.empty() && q->additional.back().type == dns_type::tsig;
      std::uint16_t flags = dns_flag::qr;
      if (signed_request) flags |= dns_rcode::notauth;
      else flags |= dns_flag::aa;
      dns_message_builder b(q->id, q->opcode(), flags);
      b.question(q->questions[0].name, q->questions[0].type);
      if (!signed_request && q->questions[0].type == dns_type::soa) {
        std::vector<std::uint8_t> soa;
        append_wire_name(soa, "ns.example.test.");
        append_wire_name(soa, "hostmaster.example.test.");
        for (int i = 0; i < 20; ++i) soa.push_back(i % 4 == 3 ? 1 : 0);
        b.record(1, q->questions[0].name, dns_type::soa, dns_class::in, 60, soa);
      }
      static_cast<void>(send_datagram_to(udp_.get(), std::move(b).finish(), *got));
    }
  }

  unique_fd udp_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("messages: knotd's refusals of keys name the RCODE, the TSIG error and what to check",
          "[messages][knotd]") {
  auto knot = planfence_test::start_knot();
  const std::vector<std::string> names = {"www.example.test."};

  SECTION("a key name the server does not know") {
    const std::string message = open_refused(
        store_uri(knot.port(), "example.test.", timeout_ms, "hmac-sha256:nobody.:" + knot.secret_base64()), names,
        errc::authentication_failed);
    INFO(message);
    CHECK(contains(message, "NOTAUTH with TSIG error BADKEY"));
    CHECK(contains(message, "nobody."));
    CHECK(contains(message, "update ACL"));
  }
  SECTION("the right key name with another secret") {
    const std::string message = open_refused(
        store_uri(knot.port(), "example.test.", timeout_ms,
                  "hmac-sha256:" + knot.key_name() + ":c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"),
        names, errc::authentication_failed);
    INFO(message);
    CHECK(contains(message, "NOTAUTH with TSIG error BADSIG"));
    CHECK(contains(message, "secret of key " + knot.key_name()));
  }
  SECTION("no key: the update is refused, and the message says a key is needed") {
    auto store = rfc2136_store::open_uri(store_uri(knot.port(), "example.test.", timeout_ms), names);
    REQUIRE(store);
    const std::string message = first_commit_refused(*store, errc::authentication_failed);
    INFO(message);
    CHECK(contains(message, "NOTAUTH"));
    CHECK(contains(message, "no TSIG key"));
    CHECK(contains(message, "tsig-file"));
    auto raised = store->raise_fence(fence_token{3});
    REQUIRE(!raised);
    CHECK(raised.error().code == errc::authentication_failed);
    CHECK(contains(raised.error().message(), "NOTAUTH"));
  }
}

TEST_CASE("messages: a zone knotd does not serve is not_authoritative, with a key or without",
          "[messages][knotd]") {
  auto knot = planfence_test::start_knot();
  for (const std::string zone : {"other.test.", "sub.example.test."}) {
    for (const bool with_key : {true, false}) {
      INFO(zone << (with_key ? " with the right key" : " without a key"));
      const std::string uri = store_uri(knot.port(), zone, timeout_ms, with_key ? knot.key_argument() : std::string());
      const std::string message = open_refused(uri, {"www." + zone}, errc::not_authoritative);
      INFO(message);
      CHECK(contains(message, "not authoritative for " + zone));
      CHECK(!contains(message, "authentication"));
    }
  }
}

TEST_CASE("messages: an unsigned NOTAUTH to a signed request names the key problem", "[messages]") {
  unsigned_notauth_responder responder;
  const std::string message = open_refused(
      store_uri(responder.port(), "example.test.", timeout_ms,
                "hmac-sha256:planfence-key.:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
      {"www.example.test."}, errc::authentication_failed);
  INFO(message);
  CHECK(contains(message, "NOTAUTH"));
  CHECK(contains(message, "without signing its answer"));
  CHECK(contains(message, "the key name (planfence-key.) or its secret is wrong"));
  CHECK(contains(message, "not allowed to"));
}
