// Proves that planfence's TSIG (RFC 8945, hmac-sha256) is the one servers speak. Without a
// server: the MAC of a request and of its answer equal values computed independently (Python's
// hmac module) over the bytes RFC 8945 section 4.3 lays out, written out octet by octet below;
// tampering with any signed octet, the key, the time or the request MAC is refused. With knotd:
// knsupdate and kdig (-y, the same key) and the store interoperate in both directions.
#include <catch2/catch.hpp>

#include <planfence/rfc2136/tsig.hpp>
#include <planfence/rfc2136/store.hpp>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "examples/support/knot_server.hpp"
#include "refusal_checks.hpp"

using namespace planfence;
using namespace planfence::detail;
using planfence_rfc2136_test::command_output;

namespace {

std::vector<std::uint8_t> from_hex(std::string_view hex) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

tsig_key test_key() {
  std::vector<std::uint8_t> secret(32);
  for (std::size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<std::uint8_t>(i);
  return tsig_key{"test-key.", secret};
}

std::vector<std::uint8_t> zone_update(std::uint16_t id, bool response) {
  dns_message_builder b(id, dns_opcode::update, response ? dns_flag::qr : 0);
  b.question("example.test.", dns_type::soa);
  return std::move(b).finish();
}

}  // namespace

TEST_CASE("tsig: the request MAC is HMAC-SHA256 over the message and the TSIG variables", "[tsig]") {
  // The message: ID 0x1234, opcode UPDATE, one zone record example.test. SOA IN.
  const auto message = zone_update(0x1234, false);
  CHECK(message == from_hex("123428000001000000000000076578616d706c6504746573740000060001"));
  // By hand, RFC 8945 section 4.3.3: key name, class ANY, TTL 0, algorithm name, time signed
  // (48 bits), fudge, error, other len. The MAC below was computed with Python's hmac module
  // over message || these octets under the key 00 01 02 ... 1f.
  const auto variables = from_hex(
      "08746573742d6b657900" "00ff" "00000000" "0b686d61632d73686132353600" "00006553f100" "012c" "0000" "0000");
  std::vector<std::uint8_t> digested = message;
  digested.insert(digested.end(), variables.begin(), variables.end());
  const auto expected_mac = from_hex("ef75a075af48611d98b4b10981ffe200e2cef8acf9758e9ac5ddaa2474e2d9da");
  const hmac_sha256_mac by_hand = hmac_sha256(test_key().secret, digested);
  CHECK(std::vector<std::uint8_t>(by_hand.begin(), by_hand.end()) == expected_mac);

  hmac_sha256_mac mac{};
  const auto signed_message = tsig_sign(message, test_key(), 1'700'000'000, mac, 300);
  CHECK(std::vector<std::uint8_t>(mac.begin(), mac.end()) == expected_mac);
  auto decoded = decode_message(signed_message);
  REQUIRE(decoded);
  REQUIRE(decoded->additional.size() == 1);
  const dns_record& tsig = decoded->additional[0];
  CHECK(tsig.name == "test-key.");
  CHECK(tsig.type == dns_type::tsig);
  CHECK(tsig.klass == dns_class::any);
  auto fields = parse_tsig_rdata(tsig.rdata);
  REQUIRE(fields);
  CHECK(fields->algorithm == "hmac-sha256.");
  CHECK(fields->time_signed == 1'700'000'000);
  CHECK(fields->fudge == 300);
  CHECK(fields->original_id == 0x1234);
  CHECK(fields->mac == expected_mac);
}

TEST_CASE("tsig: an answer verifies only with the request MAC, the key, the bytes and the time", "[tsig]") {
  hmac_sha256_mac request_mac{};
  static_cast<void>(tsig_sign(zone_update(0x1234, false), test_key(), 1'700'000'000, request_mac, 300));
  hmac_sha256_mac answer_mac{};
  const auto answer = tsig_sign(zone_update(0x1234, true), test_key(), 1'700'000'001, answer_mac, 300, request_mac);
  // Independently computed: HMAC(len(request MAC) || request MAC || answer || variables).
  CHECK(std::vector<std::uint8_t>(answer_mac.begin(), answer_mac.end()) ==
        from_hex("0dd30692819f9ff7aeb2805f899f31c6bd754ec2164c4f5aec9975fa2339d57f"));
  const auto decoded = decode_message(answer).value();
  CHECK(tsig_verify_response(answer, decoded, test_key(), request_mac, 1'700'000'010));

  SECTION("any flipped octet is refused, but for the ID (the digest uses the original ID in TSIG)") {
    for (std::size_t i = 2; i < answer.size(); ++i) {
      auto tampered = answer;
      tampered[i] ^= 0x01;
      auto m = decode_message(tampered);
      if (!m) continue;  // no longer a message at all: refused earlier
      INFO("octet " << i);
      CHECK(tsig_verify_response(tampered, *m, test_key(), request_mac, 1'700'000'010).error().code ==
            errc::authentication_failed);
    }
  }
  SECTION("another secret, another request, or a time outside the fudge") {
    tsig_key other = test_key();
    other.secret[0] ^= 1;
    CHECK(!tsig_verify_response(answer, decoded, other, request_mac, 1'700'000'010));
    hmac_sha256_mac other_request = request_mac;
    other_request[5] ^= 1;
    CHECK(!tsig_verify_response(answer, decoded, test_key(), other_request, 1'700'000'010));
    auto late = tsig_verify_response(answer, decoded, test_key(), request_mac, 1'700'000'001 + 301);
    REQUIRE(!late);
    CHECK(late.error().detail.find("fudge") != std::string::npos);
  }
  SECTION("an unsigned answer is refused") {
    const auto bare = zone_update(0x1234, true);
    auto result = tsig_verify_response(bare, decode_message(bare).value(), test_key(), request_mac, 1'700'000'010);
    REQUIRE(!result);
    CHECK(result.error().message().find("unsigned") != std::string::npos);
  }
}

TEST_CASE("tsig: the server's TSIG errors are reported by name", "[tsig]") {
  hmac_sha256_mac request_mac{};
  static_cast<void>(tsig_sign(zone_update(9, false), test_key(), 1'700'000'000, request_mac, 300));
  for (const auto& [code, name] : std::vector<std::pair<std::uint16_t, std::string>>{
           {dns_rcode::badsig, "BADSIG"}, {dns_rcode::badkey, "BADKEY"}, {dns_rcode::badtime, "BADTIME"}}) {
    hmac_sha256_mac mac{};
    const std::array<std::uint8_t, 6> server_time{0, 0, 0x65, 0x53, 0xf1, 0x00};
    const auto answer = tsig_sign(zone_update(9, true), test_key(), 1'700'000'000, mac, 300, std::nullopt, code,
                                  code == dns_rcode::badtime ? std::span<const std::uint8_t>(server_time)
                                                             : std::span<const std::uint8_t>());
    auto result = tsig_verify_response(answer, decode_message(answer).value(), test_key(), request_mac, 1'700'000'000);
    REQUIRE(!result);
    CHECK(result.error().code == errc::authentication_failed);
    CHECK(result.error().message().find(name) != std::string::npos);
    // The RCODE of the answer and the TSIG error, each by name.
    CHECK(result.error().message().find(rcode_text(decode_message(answer)->rcode()) + " with TSIG error " + name) !=
          std::string::npos);
  }
}

TEST_CASE("tsig: keys from ALGORITHM:NAME:SECRET, base64 both ways", "[tsig]") {
  auto key = parse_tsig_key("hmac-sha256:Planfence-Key:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  REQUIRE(key);
  CHECK(key->name == "planfence-key.");
  CHECK(key->secret == test_key().secret);
  CHECK(base64_encode(key->secret) == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
  CHECK(base64_decode("YQ==").value() == "a");
  CHECK(base64_decode("YWI=").value() == "ab");
  CHECK(!base64_decode("YR=="));  // padding hides non-zero bits
  CHECK(!base64_decode("YQ="));
  CHECK(!base64_decode("Y=Q="));
  CHECK(!base64_decode("YQ*="));
  CHECK(parse_tsig_key("hmac-md5:k:YQ==").error().message().find("only hmac-sha256") != std::string::npos);
  CHECK(!parse_tsig_key("hmac-sha256:k"));
  CHECK(!parse_tsig_key("hmac-sha256:bad name:YQ=="));
}

TEST_CASE("tsig: knsupdate and kdig interoperate with the store through knotd", "[tsig][knotd]") {
  auto knot = planfence_example::knot_server::start({{"example.test.", ""}});
  REQUIRE(knot);
  const std::string port = std::to_string(knot->port());
  // knsupdate (signed by Knot's own TSIG code) writes a stamp and a record...
  const std::string script = "server 127.0.0.1 " + port + "\nzone example.test.\n"
                             "prereq nxrrset _planfence.www.example.test. TXT\n"
                             "update add www.example.test. 60 A 192.0.2.7\n"
                             "update add _planfence.www.example.test. 0 TXT \"gen=7 fence=2\"\nsend\nanswer\n";
  const std::string out = command_output("printf '%s' '" + script + "' | knsupdate -y " + knot->key_argument() + " 2>&1");
  REQUIRE(out.find("NOERROR") != std::string::npos);
  // ...which the store reads through signed answers it verified...
  auto store = rfc2136_store::open_uri(knot->uri("example.test."), {"www.example.test."});
  REQUIRE(store);
  const endpoint_handle www = store->resolve("www.example.test.").value();
  const stamp seen = store->read_stamp(www).value();
  CHECK(seen.gen == generation{7});
  CHECK(seen.fence == fence_token{2});
  // ...and commits on top of; kdig, verifying Knot's TSIG with the same key, reads it back.
  auto records = record_set::make({make_record(record_type::a, 60, "192.0.2.8").value()}).value();
  REQUIRE(store->commit(www, seen, stamp{generation{8}, fence_token{2}, 0}, records));
  const std::string dig = command_output("kdig @127.0.0.1 -p " + port + " -y " + knot->key_argument() +
                              " TXT _planfence.www.example.test. 2>&1");
  CHECK(dig.find("\"gen=8 fence=2\"") != std::string::npos);
  CHECK(dig.find("NOERROR") != std::string::npos);
  CHECK(dig.find("WARNING") == std::string::npos);
}
