// Proves that the DNS wire code builds the messages RFC 1035 and RFC 2136 lay out, and that its
// decoder survives hostile answers: each malformed input below (a compression loop, a forward
// pointer, truncation at every octet, lengths and counts beyond the message, an over-long name)
// is refused with errc::parse_error, never read out of bounds (the suite also runs under ASan in
// CI, and tests/fuzz/dns_response_fuzz.cpp explores further).
#include <catch2/catch.hpp>

#include <planfence/rfc2136/wire.hpp>

#include <cstdint>
#include <string>
#include <vector>

using namespace planfence;
using namespace planfence::detail;

namespace {

std::vector<std::uint8_t> bytes(std::initializer_list<int> values) {
  std::vector<std::uint8_t> out;
  for (int v : values) out.push_back(static_cast<std::uint8_t>(v));
  return out;
}

void append(std::vector<std::uint8_t>& out, std::initializer_list<int> values) {
  for (int v : values) out.push_back(static_cast<std::uint8_t>(v));
}

/// A response header with the given counts.
std::vector<std::uint8_t> header(int qd, int an, int ns = 0, int ar = 0) {
  return bytes({0x12, 0x34, 0x84, 0x00, 0, qd, 0, an, 0, ns, 0, ar});
}

}  // namespace

TEST_CASE("dns wire: a query is the RFC 1035 layout", "[dns]") {
  const auto q = make_query(0xbeef, "www.example.test.", dns_type::txt);
  const auto expected = bytes({0xbe, 0xef, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                               3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0,
                               0, 16, 0, 1});
  CHECK(q == expected);
  auto decoded = decode_message(q);
  REQUIRE(decoded);
  CHECK(decoded->id == 0xbeef);
  CHECK(!decoded->is_response());
  REQUIRE(decoded->questions.size() == 1);
  CHECK(decoded->questions[0].name == "www.example.test.");
  CHECK(decoded->questions[0].type == dns_type::txt);
}

TEST_CASE("dns wire: an UPDATE has zone, prerequisite and update sections (RFC 2136 section 2)", "[dns]") {
  dns_message_builder b(7, dns_opcode::update);
  b.question("example.test.", dns_type::soa);
  b.prerequisite_rrset_equals("_planfence.www.example.test.", dns_type::txt, txt_rdata("gen=1 fence=1"));
  b.prerequisite_rrset_absent("_fence._planfence.example.test.", dns_type::txt);
  b.update_delete_rrset("www.example.test.", dns_type::a);
  b.update_add("www.example.test.", dns_type::a, 60, bytes({10, 0, 0, 1}));
  const auto wire = std::move(b).finish();
  auto m = decode_message(wire);
  REQUIRE(m);
  CHECK(m->opcode() == dns_opcode::update);
  CHECK(m->questions.size() == 1);   // ZOCOUNT
  REQUIRE(m->answers.size() == 2);   // PRCOUNT
  REQUIRE(m->authority.size() == 2); // UPCOUNT
  CHECK(m->answers[0].klass == dns_class::in);   // value-dependent: class of the zone, TTL 0
  CHECK(m->answers[0].ttl == 0);
  CHECK(m->answers[0].rdata == txt_rdata("gen=1 fence=1"));
  CHECK(m->answers[1].klass == dns_class::none);  // RRset does not exist: class NONE, no rdata
  CHECK(m->answers[1].rdata.empty());
  CHECK(m->authority[0].klass == dns_class::any);  // delete an RRset: class ANY, TTL 0, no rdata
  CHECK(m->authority[0].ttl == 0);
  CHECK(m->authority[1].klass == dns_class::in);
  CHECK(m->authority[1].ttl == 60);
}

TEST_CASE("dns wire: record data round-trips for A, AAAA, CNAME and TXT", "[dns]") {
  for (const auto& [type, text] : std::vector<std::pair<record_type, std::string>>{
           {record_type::a, "192.0.2.10"},
           {record_type::aaaa, "2001:db8::a"},
           {record_type::cname, "target.example.test."},
           {record_type::txt, "\"hello world\" \"q\\\"uote\" \"\\007\""}}) {
    const record r = make_record(type, 300, text).value();
    auto rdata = encode_rdata(r);
    REQUIRE(rdata);
    auto wire = header(0, 1);
    append_wire_name(wire, "x.example.test.");
    append(wire, {0, wire_type(type), 0, 1, 0, 0, 1, 44, 0, static_cast<int>(rdata->size())});
    wire.insert(wire.end(), rdata->begin(), rdata->end());
    auto m = decode_message(wire);
    REQUIRE(m);
    REQUIRE(m->answers.size() == 1);
    auto back = decode_record(m->answers[0]);
    REQUIRE(back);
    CHECK(*back == r);
  }
}

TEST_CASE("dns wire: compressed names are expanded, also inside rdata", "[dns]") {
  // Question www.example.test. at 12; the answer's owner points to it (0xc00c); its CNAME
  // target is "api" followed by a pointer to "example.test." at offset 16.
  auto wire = header(1, 1);
  append_wire_name(wire, "www.example.test.");
  append(wire, {0, 5, 0, 1});
  append(wire, {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, 'a', 'p', 'i', 0xc0, 16});
  auto m = decode_message(wire);
  REQUIRE(m);
  REQUIRE(m->answers.size() == 1);
  CHECK(m->answers[0].name == "www.example.test.");
  CHECK(m->answers[0].rdata_name == "api.example.test.");
  CHECK(decode_record(m->answers[0])->rdata == "api.example.test.");
  CHECK(m->answers[0].rdata == wire_name("api.example.test."));  // expanded, uncompressed
}

TEST_CASE("dns wire: hostile answers are refused, never read out of bounds", "[dns][hostile]") {
  SECTION("a pointer to itself (a loop)") {
    auto wire = header(1, 0);
    append(wire, {0xc0, 12, 0, 1, 0, 1});
    CHECK(decode_message(wire).error().code == errc::parse_error);
  }
  SECTION("two pointers pointing at each other") {
    auto wire = header(1, 0);
    append(wire, {1, 'a', 0xc0, 16, 0xc0, 12, 0, 1, 0, 1});  // "a" then -> 16 -> 12 -> "a" ...
    CHECK(decode_message(wire).error().code == errc::parse_error);
  }
  SECTION("a label sequence that points back into itself") {
    auto wire = header(1, 0);
    append(wire, {1, 'a', 1, 'b', 0xc0, 12, 0, 1, 0, 1});
    auto m = decode_message(wire);
    REQUIRE(!m);
    CHECK(m.error().detail.find("backwards") != std::string::npos);
  }
  SECTION("a forward pointer") {
    auto wire = header(1, 0);
    append(wire, {0xc0, 20, 0, 1, 0, 1, 0, 0, 0, 0, 1, 'a', 0});
    CHECK(decode_message(wire).error().code == errc::parse_error);
  }
  SECTION("a reserved label type (0x40, 0x80)") {
    for (int type : {0x40, 0x80}) {
      auto wire = header(1, 0);
      append(wire, {type | 1, 'a', 0, 0, 1, 0, 1});
      CHECK(decode_message(wire).error().code == errc::parse_error);
    }
  }
  SECTION("a name longer than 255 octets, built from pointers") {
    // Five 63-octet labels = 320 octets: refused even though each piece is in bounds.
    auto wire = header(1, 0);
    for (int label = 0; label < 5; ++label) {
      wire.push_back(63);
      wire.insert(wire.end(), 63, 'x');
    }
    append(wire, {0, 0, 1, 0, 1});
    CHECK(decode_message(wire).error().code == errc::parse_error);
  }
  SECTION("an rdata length beyond the message") {
    auto wire = header(0, 1);
    append(wire, {0, 0, 1, 0, 1, 0, 0, 0, 60, 0xff, 0xff, 10, 0, 0, 1});
    CHECK(decode_message(wire).error().code == errc::parse_error);
  }
  SECTION("record counts the message cannot hold") {
    auto wire = header(0, 0xff);
    append(wire, {0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1});
    CHECK(decode_message(wire).error().code == errc::parse_error);
    auto huge = bytes({0, 0, 0x84, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
    CHECK(decode_message(huge).error().code == errc::parse_error);
  }
  SECTION("trailing octets") {
    auto wire = make_query(1, "a.test.", dns_type::a);
    wire.push_back(0);
    CHECK(decode_message(wire).error().code == errc::parse_error);
  }
  SECTION("a compressed name in CNAME rdata that ends past the rdata") {
    auto wire = header(1, 1);
    append_wire_name(wire, "www.example.test.");
    append(wire, {0, 5, 0, 1});
    append(wire, {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 3, 'a', 'p', 'i', 0});  // rdlength 2 < name
    CHECK(decode_message(wire).error().code == errc::parse_error);
  }
  SECTION("TXT strings running past their rdata") {
    CHECK(decode_txt_strings(bytes({5, 'a', 'b'})).error().code == errc::parse_error);
    CHECK(decode_txt_strings(bytes({})).error().code == errc::parse_error);
  }
  SECTION("labels with dots or control bytes cannot pose as other names") {
    auto wire = header(1, 0);
    append(wire, {3, 'a', '.', 'b', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1});
    auto m = decode_message(wire);
    REQUIRE(m);
    CHECK(m->questions[0].name == "a\\046b.test.");
  }
}

TEST_CASE("dns wire: every truncation of a valid answer is refused", "[dns][hostile]") {
  auto wire = header(1, 2, 0, 0);
  append_wire_name(wire, "www.example.test.");
  append(wire, {0, 16, 0, 1});
  append(wire, {0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, 14, 13});
  for (char c : std::string("gen=1 fence=1")) wire.push_back(static_cast<std::uint8_t>(c));
  append(wire, {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 16});
  REQUIRE(decode_message(wire));
  for (std::size_t n = 0; n < wire.size(); ++n) {
    std::vector<std::uint8_t> cut(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(n));
    INFO("cut at " << n);
    CHECK(decode_message(cut).error().code == errc::parse_error);
  }
}
