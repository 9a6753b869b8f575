// Proves the validation and canonical forms of record.hpp, path by path: every rule it states for
// names, TTLs, A, AAAA, CNAME and TXT data and weights is exercised with inputs on both sides of
// its boundary, each rejection with the error code (and, where the reason matters, the detail)
// that the caller sees. Canonical output is checked against RFC 5952 (IPv6: lower case, no leading
// zeros, longest zero run as "::", first run on ties, never "::" for one group) and against
// re-escaping for TXT; re-canonicalising canonical data must be the identity, since the plan
// digest (S7) relies on it. Record sets are checked for sorting, duplicates (also when spelled
// differently), the CNAME rules of RFC 1034 section 3.6.2 with weighted CNAMEs, intent=empty and
// the size bound; records_removed for the S4 guard.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <planfence/record.hpp>

using namespace planfence;
using Catch::Matchers::Contains;

namespace {

struct rejection {
  std::string_view input;
  errc code;
  std::string_view detail_contains;  // empty: any detail
};

struct canonical_case {
  std::string_view input;
  std::string_view canonical;
};

record make(record_type type, std::string_view rdata, std::uint32_t ttl = 60,
            std::optional<std::uint8_t> weight = std::nullopt) {
  auto r = make_record(type, ttl, rdata, weight);
  if (!r) FAIL("make_record(" << to_string(type) << ", " << rdata << ") failed: " << r.error().message());
  return *r;
}

void check_canonical(record_type type, const std::vector<canonical_case>& cases) {
  for (const auto& c : cases) {
    CAPTURE(to_string(type), c.input);
    auto r = make_record(type, 60, c.input);
    if (!r) {
      FAIL_CHECK("rejected: " << r.error().message());
      continue;
    }
    CHECK(r->rdata == c.canonical);
    // Canonical data is a fixed point: the digest does not depend on how many times it is
    // normalised.
    auto again = make_record(type, 60, r->rdata);
    REQUIRE(again);
    CHECK(again->rdata == c.canonical);
  }
}

void check_rejected(record_type type, const std::vector<rejection>& cases) {
  for (const auto& c : cases) {
    CAPTURE(to_string(type), c.input);
    auto r = make_record(type, 60, c.input);
    if (r) {
      FAIL_CHECK("accepted as " << r->rdata);
      continue;
    }
    CHECK(r.error().code == c.code);
    CHECK(r.error().line == 0);
    if (!c.detail_contains.empty()) CHECK_THAT(r.error().detail, Contains(std::string(c.detail_contains)));
  }
}

std::string repeat(char c, std::size_t n) { return std::string(n, c); }

}  // namespace

TEST_CASE("record types: names, parsing and wire values", "[record]") {
  CHECK(to_string(record_type::a) == "A");
  CHECK(to_string(record_type::aaaa) == "AAAA");
  CHECK(to_string(record_type::cname) == "CNAME");
  CHECK(to_string(record_type::txt) == "TXT");
  CHECK(wire_type(record_type::a) == 1);
  CHECK(wire_type(record_type::aaaa) == 28);
  CHECK(wire_type(record_type::cname) == 5);
  CHECK(wire_type(record_type::txt) == 16);
  CHECK(parse_record_type("A") == record_type::a);
  CHECK(parse_record_type("a") == record_type::a);
  CHECK(parse_record_type("aAaA") == record_type::aaaa);
  CHECK(parse_record_type("cname") == record_type::cname);
  CHECK(parse_record_type("Txt") == record_type::txt);
  for (std::string_view bad : {"", "MX", "AA", "AAAAA", "TXT ", " A", "CNAMES", "A6"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_record_type(bad).has_value());
  }
}

TEST_CASE("names are validated, lower-cased and made absolute", "[record][name]") {
  const std::vector<canonical_case> good = {
      {"example.com", "example.com."},
      {"example.com.", "example.com."},
      {"Example.COM.", "example.com."},
      {"DB.US-EAST-1.Example.", "db.us-east-1.example."},
      {"_planfence.www.example.test.", "_planfence.www.example.test."},
      {"_sip._tcp.Example", "_sip._tcp.example."},
      {"a", "a."},
      {"1.2.3.4.in-addr.arpa", "1.2.3.4.in-addr.arpa."},
      {".", "."},  // the root
  };
  for (const auto& c : good) {
    CAPTURE(c.input);
    auto r = canonical_name(c.input);
    REQUIRE(r);
    CHECK(*r == c.canonical);
    auto again = canonical_name(*r);
    REQUIRE(again);
    CHECK(*again == c.canonical);
  }
  const std::vector<rejection> bad = {
      {"", errc::invalid_name, "empty name"},
      {"..", errc::invalid_name, "empty label"},
      {".example.", errc::invalid_name, "empty label"},
      {"a..b", errc::invalid_name, "empty label"},
      {"a...", errc::invalid_name, "empty label"},
      // Only one final dot is the root label; a second one is an empty label, not a name.
      {"a..", errc::invalid_name, "empty label"},
      {"www.example..", errc::invalid_name, "empty label"},
      {"a b.example.", errc::invalid_name, "character ' '"},
      {"a*.example.", errc::invalid_name, "character '*'"},
      {"a/b.", errc::invalid_name, "not allowed"},
      {"a@b.", errc::invalid_name, "not allowed"},
      {"a\\.b.", errc::invalid_name, "not allowed"},
      {"caf\xc3\xa9.example.", errc::invalid_name, "not allowed"},
      {"tab\t.example.", errc::invalid_name, "not allowed"},
  };
  for (const auto& c : bad) {
    CAPTURE(c.input);
    auto r = canonical_name(c.input);
    if (r) {
      FAIL_CHECK("accepted as " << *r);
      continue;
    }
    CHECK(r.error().code == c.code);
    CHECK_THAT(r.error().detail, Contains(std::string(c.detail_contains)));
  }
}

TEST_CASE("name length bounds: 63-octet labels, 253 characters", "[record][name]") {
  static_assert(label_length_max == 63);
  static_assert(name_text_length_max == 253);

  const std::string label63 = repeat('a', 63);
  const std::string label64 = repeat('a', 64);
  CHECK(canonical_name(label63 + ".example."));
  auto too_long_label = canonical_name(label64 + ".example.");
  REQUIRE_FALSE(too_long_label);
  CHECK(too_long_label.error().code == errc::invalid_name);
  CHECK_THAT(too_long_label.error().detail, Contains("label longer than 63"));
  // The label bound applies to every label, the last one too.
  auto last_label = canonical_name("example." + label64);
  REQUIRE_FALSE(last_label);
  CHECK(last_label.error().code == errc::invalid_name);

  // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters: 255 octets on the wire, the maximum.
  const std::string longest = label63 + "." + label63 + "." + label63 + "." + repeat('b', 61);
  REQUIRE(longest.size() == 253);
  auto at_limit = canonical_name(longest);
  REQUIRE(at_limit);
  CHECK(*at_limit == longest + ".");
  auto at_limit_absolute = canonical_name(longest + ".");
  REQUIRE(at_limit_absolute);
  CHECK(*at_limit_absolute == longest + ".");
  // One more character is one octet too many on the wire.
  for (const std::string& over : {longest + "b", longest + "b."}) {
    CAPTURE(over.size());
    auto r = canonical_name(over);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_name);
    CHECK_THAT(r.error().detail, Contains("longer than 255 octets"));
  }
}

TEST_CASE("TTL bounds are 0 to 2^31 - 1 (RFC 2181 section 8)", "[record]") {
  for (std::uint64_t ttl : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{86400}, std::uint64_t{ttl_max}}) {
    CAPTURE(ttl);
    auto r = make_record(record_type::a, ttl, "192.0.2.1");
    REQUIRE(r);
    CHECK(r->ttl == ttl);
  }
  for (std::uint64_t ttl : {std::uint64_t{ttl_max} + 1, std::uint64_t{1} << 32,
                            std::numeric_limits<std::uint64_t>::max()}) {
    CAPTURE(ttl);
    auto r = make_record(record_type::a, ttl, "192.0.2.1");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_ttl);
  }
  // The TTL is checked for every type, before the data.
  auto txt = make_record(record_type::txt, std::uint64_t{ttl_max} + 1, "not even quoted");
  REQUIRE_FALSE(txt);
  CHECK(txt.error().code == errc::invalid_ttl);
}

TEST_CASE("A data: four decimal octets without leading zeros", "[record][a]") {
  check_canonical(record_type::a, {
                                      {"192.0.2.10", "192.0.2.10"},
                                      {"0.0.0.0", "0.0.0.0"},
                                      {"255.255.255.255", "255.255.255.255"},
                                      {"10.0.100.9", "10.0.100.9"},
                                  });
  check_rejected(record_type::a, {
                                     {"01.2.3.4", errc::invalid_rdata, "leading zero"},
                                     {"1.2.3.04", errc::invalid_rdata, "leading zero"},
                                     {"1.00.3.4", errc::invalid_rdata, "leading zero"},
                                     {"256.1.1.1", errc::invalid_rdata, "above 255"},
                                     {"1.2.3.999", errc::invalid_rdata, "above 255"},
                                     {"0001.2.3.4", errc::invalid_rdata, "a.b.c.d"},
                                     {"1.2.3", errc::invalid_rdata, "a.b.c.d"},
                                     {"1.2", errc::invalid_rdata, "a.b.c.d"},
                                     {"1.2.3.", errc::invalid_rdata, "a.b.c.d"},
                                     {"1..2.3", errc::invalid_rdata, "a.b.c.d"},
                                     {"", errc::invalid_rdata, "a.b.c.d"},
                                     {"a.b.c.d", errc::invalid_rdata, "a.b.c.d"},
                                     {" 1.2.3.4", errc::invalid_rdata, "a.b.c.d"},
                                     {"-1.2.3.4", errc::invalid_rdata, "a.b.c.d"},
                                     {"1.2.3.4.5", errc::invalid_rdata, "trailing"},
                                     {"1.2.3.4.", errc::invalid_rdata, "trailing"},
                                     {"1.2.3.4 ", errc::invalid_rdata, "trailing"},
                                     {"1.2.3.4x", errc::invalid_rdata, "trailing"},
                                     {"1.2.3.4/24", errc::invalid_rdata, "trailing"},
                                     {"::1", errc::invalid_rdata, ""},
                                 });
}

TEST_CASE("AAAA data: every RFC 4291 text form, stored in RFC 5952 form", "[record][aaaa]") {
  check_canonical(record_type::aaaa, {
      // Preferred form x:x:x:x:x:x:x:x, leading zeros dropped, lower case.
      {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
      {"2001:DB8::A", "2001:db8::a"},
      {"FFFF:ffff:FFFF:ffff:ffff:ffff:ffff:FFFF", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
      {"0001:0002::", "1:2::"},
      {"00ab::0C", "ab::c"},
      // Compressed form, '::' anywhere.
      {"::", "::"},
      {"0:0:0:0:0:0:0:0", "::"},
      {"::1", "::1"},
      {"0:0:0:0:0:0:0:1", "::1"},
      {"1::", "1::"},
      {"1:0:0:0:0:0:0:0", "1::"},
      {"fe80::1:2", "fe80::1:2"},
      // '::' standing for one group is expanded: RFC 5952 section 4.2.2.
      {"2001:db8::1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
      {"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"},
      {"::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"},
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
      // Longest run wins (RFC 5952 section 4.2.3) ...
      {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},
      {"1:0:0:2:0:0:0:3", "1:0:0:2::3"},
      {"1:0:0:0:2:0:0:3", "1::2:0:0:3"},
      // ... and on a tie, the first.
      {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
      {"0:0:1:0:0:1:0:0", "::1:0:0:1:0:0"},
      {"1:0:0:1:0:0:1:1", "1::1:0:0:1:1"},
      // Mixed form with an embedded IPv4 address (RFC 4291 section 2.2 form 3). planfence stores
      // the RFC 5952 section 4 form, all hexadecimal.
      {"::ffff:192.0.2.1", "::ffff:c000:201"},
      {"::192.0.2.1", "::c000:201"},
      {"64:ff9b::192.0.2.33", "64:ff9b::c000:221"},
      {"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"},
      {"0:0:0:0:0:FFFF:129.144.52.38", "::ffff:8190:3426"},
      // The longest valid text, 45 characters.
      {"0000:0000:0000:0000:0000:ffff:255.255.255.255", "::ffff:ffff:ffff"},
  });
  // The same address however it is spelled.
  CHECK(make(record_type::aaaa, "::ffff:192.0.2.1").rdata == make(record_type::aaaa, "::FFFF:C000:0201").rdata);
}

TEST_CASE("AAAA data: malformed addresses are refused", "[record][aaaa]") {
  check_rejected(record_type::aaaa, {
      {"1::2::3", errc::invalid_rdata, "two '::'"},
      {"::1::", errc::invalid_rdata, "two '::'"},
      {":::", errc::invalid_rdata, "1 to 4 hex digits"},
      {"1:::2", errc::invalid_rdata, "1 to 4 hex digits"},
      {"1:2:3:4:5:6:7:8:9", errc::invalid_rdata, "too many groups"},
      {"1:2:3:4:5:6:7:8::", errc::invalid_rdata, "at least one group"},
      {"::1:2:3:4:5:6:7:8", errc::invalid_rdata, "at least one group"},
      {"1:2:3:4::5:6:7:8", errc::invalid_rdata, "at least one group"},
      {"1:2:3:4:5:6:7", errc::invalid_rdata, "fewer than 8 groups"},
      {"1", errc::invalid_rdata, "not an IPv6 address"},
      {"", errc::invalid_rdata, "not an IPv6 address"},
      {":", errc::invalid_rdata, "not an IPv6 address"},
      {"12345::", errc::invalid_rdata, "1 to 4 hex digits"},
      {"::00000", errc::invalid_rdata, "1 to 4 hex digits"},
      {"g::1", errc::invalid_rdata, "non-hex"},
      {"2001:db8::z", errc::invalid_rdata, "non-hex"},
      {"1::-1", errc::invalid_rdata, "non-hex"},
      {"fe80::1%e", errc::invalid_rdata, "non-hex"},
      {"fe80::1%eth0", errc::invalid_rdata, "1 to 4 hex digits"},
      {" ::1", errc::invalid_rdata, "non-hex"},
      {"::1 ", errc::invalid_rdata, "non-hex"},
      {":1:2:3:4:5:6:7:8", errc::invalid_rdata, "starts with a single colon"},
      {":1::", errc::invalid_rdata, "starts with a single colon"},
      {"1:2:3:4:5:6:7:8:", errc::invalid_rdata, "ends with a single colon"},
      {"::1:", errc::invalid_rdata, "ends with a single colon"},
      // Embedded IPv4: only as the last 32 bits, only a valid dotted quad, only in 8 groups.
      {"1.2.3.4", errc::invalid_rdata, "fewer than 8 groups"},
      {"::1.2.3.4:5", errc::invalid_rdata, "IPv4 part must end"},
      {"::256.1.1.1", errc::invalid_rdata, "bad IPv4 part"},
      {"::1.2.3", errc::invalid_rdata, "bad IPv4 part"},
      {"::01.2.3.4", errc::invalid_rdata, "bad IPv4 part"},
      {"1:2:3:4:5:6:7:1.2.3.4", errc::invalid_rdata, "too many groups"},
      {"1:2:3:4:5:6::1.2.3.4", errc::invalid_rdata, "at least one group"},
      {"1:2:3:4:5:1.2.3.4", errc::invalid_rdata, "fewer than 8 groups"},
      {"0000:0000:0000:0000:0000:ffff:255.255.255.2555", errc::invalid_rdata, "not an IPv6 address"},
  });
}

TEST_CASE("CNAME data is a canonical absolute name", "[record][cname]") {
  check_canonical(record_type::cname, {
                                          {"Target.Example.COM", "target.example.com."},
                                          {"target.example.", "target.example."},
                                          {"_svc.example.", "_svc.example."},
                                      });
  // A bad target is bad *data* (invalid_rdata), and says what was wrong with the name.
  check_rejected(record_type::cname, {
                                         {"", errc::invalid_rdata, "CNAME target: empty name"},
                                         {"a..b.", errc::invalid_rdata, "CNAME target: empty label"},
                                         {"target.example..", errc::invalid_rdata, "CNAME target: empty label"},
                                         {"a b.", errc::invalid_rdata, "CNAME target: character"},
                                         {std::string_view("x\0y", 3), errc::invalid_rdata, "CNAME target"},
                                     });
  const std::string long_label = repeat('x', 64) + ".example.";
  auto r = make_record(record_type::cname, 60, long_label);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_rdata);
  CHECK_THAT(r.error().detail, Contains("label longer than 63"));
}

TEST_CASE("TXT data: quoted strings, escapes and canonical re-escaping", "[record][txt]") {
  check_canonical(record_type::txt, {
      {R"("hello")", R"("hello")"},
      {R"("")", R"("")"},
      {R"("a" "b")", R"("a" "b")"},
      {R"(  "a"    "b"  )", R"("a" "b")"},
      {R"("two  spaces inside")", R"("two  spaces inside")"},
      {R"("say \"hi\"")", R"("say \"hi\"")"},
      {R"("back\\slash")", R"("back\\slash")"},
      // \DDD of a printable byte becomes the byte; \X of an ordinary character becomes X.
      {R"("\065\066C")", R"("ABC")"},
      {R"("\x\y")", R"("xy")"},
      {R"("\034")", R"("\"")"},
      {R"("\092")", R"("\\")"},
      // Control and non-ASCII bytes are written as \DDD.
      {R"("\009tab")", R"("\009tab")"},
      {R"("\000")", R"("\000")"},
      {R"("\127\128\255")", R"("\127\128\255")"},
      {R"("v=spf1 -all" "k=\"v\"")", R"("v=spf1 -all" "k=\"v\"")"},
      {R"("gen=1 fence=1")", R"("gen=1 fence=1")"},
      {R"("#not a comment")", R"("#not a comment")"},
  });
  check_rejected(record_type::txt, {
      {"", errc::invalid_rdata, "without a string"},
      {"   ", errc::invalid_rdata, "without a string"},
      {"hello", errc::invalid_rdata, "quoted strings"},
      {R"("a" b)", errc::invalid_rdata, "quoted strings"},
      {R"("abc)", errc::invalid_rdata, "without a closing quote"},
      {R"("a\")", errc::invalid_rdata, "without a closing quote"},
      {R"("abc\)", errc::invalid_rdata, "inside an escape"},
      {R"("\12")", errc::invalid_rdata, "three digits"},
      {R"("\1")", errc::invalid_rdata, "three digits"},
      {R"("\1a2")", errc::invalid_rdata, "three digits"},
      {R"("\256")", errc::invalid_rdata, "above 255"},
      {R"("\999")", errc::invalid_rdata, "above 255"},
      {R"("a""b")", errc::invalid_rdata, "separated by a space"},
      {R"("a"x)", errc::invalid_rdata, "separated by a space"},
      {"\"tab\there\"", errc::invalid_rdata, "raw control"},
      {"\"nl\nhere\"", errc::invalid_rdata, "raw control"},
      {"\"del\x7f\"", errc::invalid_rdata, "raw control"},
      {"\"caf\xc3\xa9\"", errc::invalid_rdata, "non-ASCII"},
      {std::string_view("\"nul\0\"", 6), errc::invalid_rdata, "raw control"},
      // A backslash does not make a raw control byte acceptable: it must be written as \DDD.
      {"\"esc\\\x01\"", errc::invalid_rdata, "raw control"},
      {"\"esc\\\t\"", errc::invalid_rdata, "raw control"},
      {"\"esc\\\xc3\xa9\"", errc::invalid_rdata, "non-ASCII"},
  });
}

TEST_CASE("TXT bounds: 255 octets per string, 16 strings per record", "[record][txt]") {
  const std::string s255 = "\"" + repeat('x', 255) + "\"";
  const std::string s256 = "\"" + repeat('x', 256) + "\"";
  CHECK(make_record(record_type::txt, 60, s255));
  auto too_long = make_record(record_type::txt, 60, s256);
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().code == errc::invalid_rdata);
  CHECK_THAT(too_long.error().detail, Contains("longer than 255"));

  // The bound counts octets, not characters of text: 255 escapes are 255 octets.
  std::string escaped255 = "\"";
  for (int i = 0; i < 255; ++i) escaped255 += "\\001";
  escaped255 += "\"";
  auto at_limit = make_record(record_type::txt, 60, escaped255);
  REQUIRE(at_limit);
  CHECK(at_limit->rdata == escaped255);
  std::string escaped256 = escaped255;
  escaped256.insert(1, "\\001");
  auto over = make_record(record_type::txt, 60, escaped256);
  REQUIRE_FALSE(over);
  CHECK(over.error().code == errc::invalid_rdata);

  std::string sixteen;
  for (int i = 0; i < 16; ++i) sixteen += "\"s\" ";
  CHECK(make_record(record_type::txt, 60, sixteen));
  auto seventeen = make_record(record_type::txt, 60, sixteen + "\"s\"");
  REQUIRE_FALSE(seventeen);
  CHECK(seventeen.error().code == errc::invalid_rdata);
  CHECK_THAT(seventeen.error().detail, Contains("more than 16"));

  // Several maximal strings in one record are fine.
  auto three = make_record(record_type::txt, 60, s255 + " " + s255 + " " + s255);
  REQUIRE(three);
  CHECK(three->rdata.size() == 3 * 257 + 2);
}

TEST_CASE("weights: 0 to 255 on A, AAAA and CNAME, never on TXT", "[record][weight]") {
  auto w0 = make_record(record_type::a, 60, "192.0.2.1", std::uint8_t{0});
  REQUIRE(w0);
  REQUIRE(w0->weight.has_value());
  CHECK(*w0->weight == 0);
  auto w255 = make_record(record_type::aaaa, 60, "2001:db8::1", std::uint8_t{255});
  REQUIRE(w255);
  CHECK(w255->weight == std::optional<std::uint8_t>{255});
  auto cname = make_record(record_type::cname, 60, "lb1.example.", std::uint8_t{10});
  REQUIRE(cname);
  CHECK(cname->weight == std::optional<std::uint8_t>{10});
  auto unweighted = make_record(record_type::a, 60, "192.0.2.1");
  REQUIRE(unweighted);
  CHECK_FALSE(unweighted->weight.has_value());
  // A weight of 0 is a weight: the record differs from the unweighted one.
  CHECK_FALSE(*w0 == *unweighted);

  auto txt = make_record(record_type::txt, 60, R"("x")", std::uint8_t{1});
  REQUIRE_FALSE(txt);
  CHECK(txt.error().code == errc::invalid_rdata);
  CHECK_THAT(txt.error().detail, Contains("cannot be weighted"));
  auto txt_zero = make_record(record_type::txt, 60, R"("x")", std::uint8_t{0});
  REQUIRE_FALSE(txt_zero);
  CHECK(txt_zero.error().code == errc::invalid_rdata);
}

TEST_CASE("record_set sorts records into canonical order", "[record][set]") {
  auto set = record_set::make({
      make(record_type::txt, R"("z")"),
      make(record_type::a, "9.0.0.1"),
      make(record_type::aaaa, "2001:db8::2"),
      make(record_type::a, "10.0.0.1"),
      make(record_type::aaaa, "2001:DB8::1"),
  });
  REQUIRE(set);
  REQUIRE(set->size() == 5);
  CHECK_FALSE(set->empty());
  CHECK_FALSE(set->intended_empty());
  const auto records = set->records();
  // By type (A, AAAA, CNAME, TXT), then by canonical data as text.
  CHECK(records[0].rdata == "10.0.0.1");
  CHECK(records[1].rdata == "9.0.0.1");
  CHECK(records[2].rdata == "2001:db8::1");
  CHECK(records[3].rdata == "2001:db8::2");
  CHECK(records[4].rdata == R"("z")");
  CHECK(std::is_sorted(records.begin(), records.end()));

  // The same records in any order make an equal set.
  auto reordered = record_set::make({
      make(record_type::a, "10.0.0.1"),
      make(record_type::aaaa, "2001:db8::1"),
      make(record_type::a, "9.0.0.1"),
      make(record_type::txt, R"("z")"),
      make(record_type::aaaa, "2001:db8:0:0:0:0:0:2"),
  });
  REQUIRE(reordered);
  CHECK(*reordered == *set);
  auto different_ttl = record_set::make({make(record_type::a, "10.0.0.1", 30)});
  auto same_addr = record_set::make({make(record_type::a, "10.0.0.1", 60)});
  REQUIRE(different_ttl);
  REQUIRE(same_addr);
  CHECK_FALSE(*different_ttl == *same_addr);
}

TEST_CASE("record_set refuses duplicates, however they differ", "[record][set]") {
  const std::vector<std::vector<record>> duplicates = {
      {make(record_type::a, "192.0.2.1"), make(record_type::a, "192.0.2.1")},
      // Same data, different TTL or weight: still one record of the RRset twice.
      {make(record_type::a, "192.0.2.1", 60), make(record_type::a, "192.0.2.1", 300)},
      {make(record_type::a, "192.0.2.1", 60, 1), make(record_type::a, "192.0.2.1", 60, 2)},
      {make(record_type::a, "192.0.2.1", 60, 1), make(record_type::a, "192.0.2.1", 60)},
      // Spelled differently, equal once canonical.
      {make(record_type::aaaa, "2001:db8::1"), make(record_type::aaaa, "2001:DB8:0:0::0001")},
      {make(record_type::txt, R"("A")"), make(record_type::txt, R"("\065")")},
      {make(record_type::cname, "x.example", 60, 1), make(record_type::cname, "X.EXAMPLE.", 60, 2)},
  };
  for (std::size_t i = 0; i < duplicates.size(); ++i) {
    CAPTURE(i);
    auto set = record_set::make(duplicates[i]);
    REQUIRE_FALSE(set);
    CHECK(set.error().code == errc::invalid_plan);
    CHECK_THAT(set.error().detail, Contains("duplicate"));
  }
}

TEST_CASE("record_set CNAME rules (RFC 1034 section 3.6.2, weighted CNAMEs)", "[record][set]") {
  // Alone: fine, weighted or not.
  CHECK(record_set::make({make(record_type::cname, "lb.example.")}));
  CHECK(record_set::make({make(record_type::cname, "lb.example.", 60, 5)}));
  // Several, all weighted: weighted routing between targets.
  auto weighted = record_set::make({make(record_type::cname, "lb1.example.", 60, 1),
                                    make(record_type::cname, "lb2.example.", 60, 0),
                                    make(record_type::cname, "lb3.example.", 60, 255)});
  REQUIRE(weighted);
  CHECK(weighted->size() == 3);

  struct bad_case {
    std::vector<record> records;
    std::string_view detail;
  };
  const std::vector<bad_case> bad = {
      {{make(record_type::cname, "lb.example."), make(record_type::a, "192.0.2.1")}, "only data"},
      {{make(record_type::cname, "lb.example."), make(record_type::txt, R"("x")")}, "only data"},
      {{make(record_type::cname, "lb.example.", 60, 1), make(record_type::aaaa, "::1", 60, 1)}, "only data"},
      {{make(record_type::cname, "a.example.", 60, 1), make(record_type::cname, "b.example.", 60, 1),
        make(record_type::a, "192.0.2.1", 60, 1)},
       "only data"},
      {{make(record_type::cname, "a.example."), make(record_type::cname, "b.example.")}, "weighted"},
      {{make(record_type::cname, "a.example.", 60, 1), make(record_type::cname, "b.example.")}, "weighted"},
  };
  for (std::size_t i = 0; i < bad.size(); ++i) {
    CAPTURE(i);
    auto set = record_set::make(bad[i].records);
    REQUIRE_FALSE(set);
    CHECK(set.error().code == errc::invalid_plan);
    CHECK_THAT(set.error().detail, Contains(std::string(bad[i].detail)));
  }
}

TEST_CASE("record_set intent=empty and the empty set", "[record][set]") {
  const record_set unintended;
  CHECK(unintended.empty());
  CHECK_FALSE(unintended.intended_empty());
  auto made_empty = record_set::make({});
  REQUIRE(made_empty);
  CHECK(*made_empty == unintended);

  auto intended = record_set::make({}, true);
  REQUIRE(intended);
  CHECK(intended->empty());
  CHECK(intended->intended_empty());
  CHECK_FALSE(*intended == unintended);  // the intent is part of the content

  auto contradiction = record_set::make({make(record_type::a, "192.0.2.1")}, true);
  REQUIRE_FALSE(contradiction);
  CHECK(contradiction.error().code == errc::invalid_plan);
  CHECK_THAT(contradiction.error().detail, Contains("intent=empty"));
}

TEST_CASE("record_set holds at most 1024 records", "[record][set]") {
  static_assert(records_per_set_max == 1024);
  std::vector<record> records;
  for (unsigned i = 0; i < records_per_set_max; ++i) {
    records.push_back(make(record_type::a, "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256)));
  }
  auto full = record_set::make(records);
  REQUIRE(full);
  CHECK(full->size() == 1024);
  CHECK(std::is_sorted(full->records().begin(), full->records().end()));
  records.push_back(make(record_type::a, "10.1.0.0"));
  auto over = record_set::make(records);
  REQUIRE_FALSE(over);
  CHECK(over.error().code == errc::invalid_plan);
  CHECK_THAT(over.error().detail, Contains("more than 1024"));
}

TEST_CASE("records_removed counts what the new set no longer has", "[record][set]") {
  auto set_of = [](std::vector<record> records) {
    auto s = record_set::make(std::move(records));
    REQUIRE(s);
    return *s;
  };
  const record a1 = make(record_type::a, "192.0.2.1");
  const record a2 = make(record_type::a, "192.0.2.2");
  const record a3 = make(record_type::a, "192.0.2.3");
  const record v6 = make(record_type::aaaa, "2001:db8::1");
  const record a1_ttl = make(record_type::a, "192.0.2.1", 300);
  const record a2_weight = make(record_type::a, "192.0.2.2", 60, 7);
  const record_set base = set_of({a1, a2, a3, v6});

  CHECK(records_removed(base, base) == 0);
  CHECK(records_removed(base, record_set{}) == 4);
  CHECK(records_removed(record_set{}, base) == 0);
  CHECK(records_removed(base, set_of({a1, a2, a3})) == 1);         // one removed
  CHECK(records_removed(base, set_of({a1, a2, a3, v6, make(record_type::a, "192.0.2.4")})) == 0);  // added only
  CHECK(records_removed(base, set_of({a1_ttl, a2, a3, v6})) == 1);  // TTL changed
  CHECK(records_removed(base, set_of({a1, a2_weight, a3, v6})) == 1);  // weight changed
  CHECK(records_removed(base, set_of({v6})) == 3);
  CHECK(records_removed(base, set_of({make(record_type::a, "198.51.100.1")})) == 4);
  CHECK(records_removed(set_of({a1, a2}), set_of({a2, a3})) == 1);
  CHECK(records_removed(set_of({a2, a3}), set_of({a1, a2})) == 1);
}
