// Proves that only the key holder writes and that only the server is believed.
//  - Against knotd: an UPDATE signed with the wrong secret (BADSIG), an unknown key (BADKEY) or
//    no key at all is refused by the server, reported as errc::authentication_failed naming the
//    reason, and writes nothing (checked with the right key afterwards).
//  - Against a fake responder on loopback (UDP and TCP) that answers the store's requests: an
//    unsigned answer, one signed with another secret, a correctly signed answer altered after
//    signing, and one signed too long ago (a replay) are refused; the same responder signing
//    correctly is believed (so the refusals are about the signatures, not the responder).
//  - The same responder, truncating its UDP answers, shows the store asking again over TCP.
#include <catch2/catch.hpp>

#include <planfence/detail/socket.hpp>
#include <planfence/rfc2136/tsig.hpp>

#include <sys/stat.h>

#include <atomic>
#include <functional>
#include <thread>

#include "knot_fixture.hpp"

using namespace planfence;
using namespace planfence::detail;

namespace {

std::string with_secret(const planfence_example::knot_server& knot, const std::string& key_name, const std::string& secret) {
  return "rfc2136://127.0.0.1:" + std::to_string(knot.port()) + "/example.test.?tsig=hmac-sha256:" + key_name + ":" + secret;
}

/// How the fake responder treats an answer before sending it.
enum class forgery { none, unsigned_answer, other_secret, altered_after_signing, replayed_old, truncate_udp };

/// Answers every query for a TXT name with the stamp "gen=99 fence=99" (a forged stamp that
/// would make an enactor skip the endpoint), signed according to `mode`; UDP and TCP.
class fake_responder {
 public:
  fake_responder(tsig_key key, forgery mode) : key_(std::move(key)), mode_(mode) {
    auto any = resolve_address("127.0.0.1", 0).value();
    tcp_ = bind_socket(any, SOCK_STREAM).value();
    port_ = local_port(tcp_.get()).value();
    udp_ = bind_socket(resolve_address("127.0.0.1", port_).value(), SOCK_DGRAM).value();
    thread_ = std::thread([this] { serve(); });
  }
  ~fake_responder() {
    stop_.store(true);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  std::string uri() const {
    return "rfc2136://127.0.0.1:" + std::to_string(port_) + "/example.test.?attempts=1&timeout-ms=500&tsig=hmac-sha256:" +
           key_.name + ":" + base64_encode(signing_key().secret);
  }
  const tsig_key& store_key() const { return key_; }
  tsig_key signing_key() const { return key_; }

  std::size_t tcp_answers() const { return tcp_answers_.load(); }

 private:
  std::vector<std::uint8_t> answer(std::span<const std::uint8_t> request, bool udp) const {
    auto q = decode_message(request);
    if (!q || q->questions.empty()) return {};
    std::optional<hmac_sha256_mac> request_mac;
    if (!q->additional.empty() && q->additional.back().type == dns_type::tsig) {
      auto fields = parse_tsig_rdata(q->additional.back().rdata);
      if (fields && fields->mac.size() == 32) {
        hmac_sha256_mac m{};
        std::copy(fields->mac.begin(), fields->mac.end(), m.begin());
        request_mac = m;
      }
    }
    const bool truncated = udp && mode_ == forgery::truncate_udp;
    dns_message_builder b(q->id, q->opcode(), static_cast<std::uint16_t>(dns_flag::qr | dns_flag::aa | (truncated ? dns_flag::tc : 0)));
    b.question(q->questions[0].name, q->questions[0].type);
    if (!truncated && q->questions[0].type == dns_type::txt && q->questions[0].name.starts_with("_planfence.")) {
      b.record(1, q->questions[0].name, dns_type::txt, dns_class::in, 0, txt_rdata("gen=99 fence=99"));
    }
    std::vector<std::uint8_t> out = std::move(b).finish();
    if (mode_ == forgery::unsigned_answer) return out;
    tsig_key key = key_;
    if (mode_ == forgery::other_secret) key.secret[0] ^= 0x55;
    const std::uint64_t when = mode_ == forgery::replayed_old ? unix_seconds_now() - 3600 : unix_seconds_now();
    hmac_sha256_mac mac{};
    out = tsig_sign(std::move(out), key, when, mac, 300, request_mac);
    if (mode_ == forgery::altered_after_signing) {
      // Flip the case of one letter of the question: the same name to a resolver, but a
      // different octet under the MAC.
      out[dns_header_size + 1] ^= 0x20;
    }
    return out;
  }

  void serve() {
    std::vector<std::uint8_t> buffer(65535);
    while (!stop_.load()) {
      pollfd fds[2] = {{udp_.get(), POLLIN, 0}, {tcp_.get(), POLLIN, 0}};
      if (::poll(fds, 2, 20) <= 0) continue;
      if ((fds[0].revents & POLLIN) != 0) {
        auto got = receive_datagram_from(udp_.get(), buffer, deadline_after(std::chrono::milliseconds(100)));
        if (!got) continue;
        auto reply = answer(std::span<const std::uint8_t>(buffer.data(), got->length), true);
        if (!reply.empty()) static_cast<void>(send_datagram_to(udp_.get(), reply, *got));
      }
      if ((fds[1].revents & POLLIN) != 0) {
        auto connection = accept_connection(tcp_.get(), deadline_after(std::chrono::milliseconds(100)));
        if (!connection) continue;
        const auto deadline = deadline_after(std::chrono::milliseconds(1000));
        std::array<std::uint8_t, 2> prefix{};
        if (!receive_exactly(connection->get(), prefix, deadline)) continue;
        std::vector<std::uint8_t> request(static_cast<std::size_t>(prefix[0] << 8 | prefix[1]));
        if (!receive_exactly(connection->get(), request, deadline)) continue;
        auto reply = answer(request, false);
        tcp_answers_.fetch_add(1);
        std::vector<std::uint8_t> framed = {static_cast<std::uint8_t>(reply.size() >> 8),
                                            static_cast<std::uint8_t>(reply.size() & 0xff)};
        framed.insert(framed.end(), reply.begin(), reply.end());
        static_cast<void>(send_all(connection->get(), framed, deadline));
      }
    }
  }

  tsig_key key_;
  forgery mode_;
  unique_fd tcp_, udp_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> tcp_answers_{0};
  std::thread thread_;
};

tsig_key fake_key() { return make_tsig_key("fake-test-key.", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").value(); }

}  // namespace

TEST_CASE("security: knotd refuses a wrong key, an unknown key and no key, and nothing is written",
          "[security][knotd]") {
  auto knot = planfence_test::start_knot();
  const std::vector<std::string> names = {"www.example.test."};
  auto records = planfence_test::a_records({"192.0.2.66"});

  SECTION("the right name with another secret: BADSIG") {
    auto store = rfc2136_store::open_uri(with_secret(knot, knot.key_name(), "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"), names);
    REQUIRE(!store);  // the first signed query already fails
    CHECK(store.error().code == errc::authentication_failed);
    CHECK(store.error().message().find("BADSIG") != std::string::npos);
  }
  SECTION("a key the server does not know: BADKEY") {
    auto store = rfc2136_store::open_uri(with_secret(knot, "nobody.", knot.secret_base64()), names);
    REQUIRE(!store);
    CHECK(store.error().code == errc::authentication_failed);
    CHECK(store.error().message().find("BADKEY") != std::string::npos);
  }
  SECTION("no key: queries are answered, the UPDATE is refused (NOTAUTH)") {
    auto store = rfc2136_store::open_uri("rfc2136://127.0.0.1:" + std::to_string(knot.port()) + "/example.test.", names);
    REQUIRE(store);
    const endpoint_handle www = store->resolve("www.example.test.").value();
    auto done = store->commit(www, stamp{}, stamp{generation{1}, fence_token{1}, 0}, records);
    REQUIRE(!done);
    CHECK(done.error().code == errc::authentication_failed);
    CHECK(done.error().message().find("NOTAUTH") != std::string::npos);
    CHECK(done.error().message().find("no TSIG key") != std::string::npos);
  }
  auto good = rfc2136_store::open_uri(knot.uri("example.test."), names).value();
  const endpoint_handle www = good.resolve("www.example.test.").value();
  CHECK(good.read_stamp(www)->gen == generation_none);
  CHECK(good.served(www)->empty());
}

TEST_CASE("security: forged, unsigned, altered and replayed answers are refused by the store", "[security]") {
  for (forgery mode : {forgery::unsigned_answer, forgery::other_secret, forgery::altered_after_signing, forgery::replayed_old}) {
    fake_responder fake(fake_key(), mode);
    auto store = rfc2136_store::open_uri(fake.uri(), {"www.example.test."});
    INFO("forgery " << static_cast<int>(mode));
    REQUIRE(!store);  // open reads the floor: the first answer is already refused
    CHECK(store.error().code == errc::authentication_failed);
    INFO(store.error().message());
    CHECK(store.error().message().find("TSIG") != std::string::npos);
  }
}

TEST_CASE("security: the same responder signing correctly is believed", "[security]") {
  fake_responder fake(fake_key(), forgery::none);
  auto store = rfc2136_store::open_uri(fake.uri(), {"www.example.test."});
  REQUIRE(store);
  auto s = store->read_stamp(store->resolve("www.example.test.").value());
  REQUIRE(s);
  CHECK(s->gen == generation{99});
}

TEST_CASE("dns transport: a truncated UDP answer is asked again over TCP", "[security][dns]") {
  fake_responder fake(fake_key(), forgery::truncate_udp);
  auto store = rfc2136_store::open_uri(fake.uri(), {"www.example.test."});
  REQUIRE(store);
  auto s = store->read_stamp(store->resolve("www.example.test.").value());
  REQUIRE(s);
  CHECK(s->gen == generation{99});     // only the TCP answer has the stamp
  CHECK(fake.tcp_answers() >= 2);      // the floor at open, then the stamp
}

TEST_CASE("security: URIs: bad ones are explained, secrets come from files and the environment, never echoed",
          "[security][uri]") {
  CHECK(rfc2136_store::parse_uri("http://x/zone").error().message().find("rfc2136://") != std::string::npos);
  CHECK(!rfc2136_store::parse_uri("rfc2136://127.0.0.1:99999/zone"));
  CHECK(!rfc2136_store::parse_uri("rfc2136://127.0.0.1:53"));
  CHECK(!rfc2136_store::parse_uri("rfc2136://127.0.0.1/zone?color=blue"));
  CHECK(!rfc2136_store::parse_uri("rfc2136://127.0.0.1/zone?tsig=hmac-md5:k:YQ=="));
  auto leaked = rfc2136_store::parse_uri("rfc2136://127.0.0.1/zone?tsig=hmac-sha256:k:c2VjcmV0*&x=1");
  REQUIRE(!leaked);
  CHECK(leaked.error().message().find("c2VjcmV0") == std::string::npos);

  auto v6 = rfc2136_store::parse_uri("rfc2136://[::1]:5300/example.test.");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 5300);
  CHECK(!v6->key);

  const std::string path = "/tmp/planfence-rfc2136-key-test";
  { std::ofstream(path) << "hmac-sha256:file-key.:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"; }
  ::chmod(path.c_str(), 0600);  // a key file others may read is refused (key_file_test.cpp)
  auto from_file = rfc2136_store::parse_uri("rfc2136://127.0.0.1/example.test.?tsig-file=" + path);
  REQUIRE(from_file);
  CHECK(from_file->key->name == "file-key.");
  std::remove(path.c_str());
  ::setenv("PLANFENCE_TEST_TSIG", "hmac-sha256:env-key.:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 1);
  auto from_env = rfc2136_store::parse_uri("rfc2136://127.0.0.1/example.test.?tsig-env=PLANFENCE_TEST_TSIG&timeout-ms=50");
  REQUIRE(from_env);
  CHECK(from_env->key->name == "env-key.");
  CHECK(from_env->timeout == std::chrono::milliseconds(50));
  CHECK(!rfc2136_store::parse_uri("rfc2136://127.0.0.1/example.test.?tsig-env=PLANFENCE_TEST_UNSET_VARIABLE"));
  CHECK(!rfc2136_store::parse_uri("rfc2136://127.0.0.1/example.test.?tsig-env=PLANFENCE_TEST_TSIG&tsig-file=/x"));
}

TEST_CASE("security: an unreachable server is store_unavailable, within the attempts' time", "[security]") {
  // A bound UDP socket that never answers.
  auto silent = bind_socket(resolve_address("127.0.0.1", 0).value(), SOCK_DGRAM).value();
  const std::uint16_t port = local_port(silent.get()).value();
  const auto start = std::chrono::steady_clock::now();
  auto store = rfc2136_store::open_uri("rfc2136://127.0.0.1:" + std::to_string(port) + "/example.test.?timeout-ms=100&attempts=2");
  REQUIRE(!store);
  CHECK(store.error().code == errc::store_unavailable);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}
