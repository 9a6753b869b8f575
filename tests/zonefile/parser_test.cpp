// The zone-file parser (include/planfence/zonefile/syntax.hpp): what real zone files contain is read
// into canonical records, and every bad input is refused with the line and column of the fault
// and what was expected. The error table is the heart of it: each row is a small bad zone, the
// position the error must name, and a phrase its detail must contain.
#include <catch2/catch.hpp>

#include <planfence/zonefile/syntax.hpp>
#include <planfence/zonefile/zone.hpp>  // decode_zone

#include <string>
#include <vector>

using planfence::errc;
using planfence::parse_zone;
using planfence::zone_parse_options;
using planfence::zone_record;

namespace {

std::vector<zone_record> parse_ok(const std::string& text, std::string origin = "example.test.") {
  auto parsed = parse_zone(text, zone_parse_options{std::move(origin)});
  INFO(text);
  if (!parsed) FAIL(parsed.error().message());
  return std::move(*parsed);
}

zone_record rr(std::string owner, std::uint32_t ttl, std::string type, std::string rdata, std::string origin = {}) {
  return zone_record{std::move(owner), ttl, std::move(type), std::move(rdata), std::move(origin), 0};
}

}  // namespace

TEST_CASE("parser: a zone as operators write it, with every feature", "[parser]") {
  const std::string text =
      "; example.test., as an operator keeps it\r\n"
      "$TTL 1h\n"
      "$ORIGIN Example.TEST.\n"
      "@\tIN\tSOA\tns1 hostmaster.example.test. (\n"
      "\t\t2026120101 ; serial, YYYYMMDDnn\n"
      "\t\t3h         ; refresh\n"
      "\t\t15M        ; retry\n"
      "\t\t1w         ; expire\n"
      "\t\t300 )      ; negative caching\n"
      "\t\tNS\tns1\n"
      "\t\tNS\tns2.example.net.\n"
      "ns1\t\tA\t192.0.2.53\n"
      "www  60 IN A 192.0.2.10\n"
      "     IN 60 A 192.0.2.11   ; class before TTL, owner omitted\n"
      "     AAAA 2001:DB8:0:0::A\n"
      "txt  TXT \"v=spf1 -all\" \"say \\\"hi\\\"\" back\\\\slash \"\\065\\066\"\n"
      "alias CNAME www\n"
      "mail MX 10 mx.example.net.\n"
      "*.wild 30 A 192.0.2.99\n"
      "$ORIGIN sub.example.test.\n"
      "deep A 192.0.2.1\n"
      "_sip._tcp SRV 0 5 5060 sip\n";
  const auto records = parse_ok(text, "");
  const std::vector<zone_record> expected = {
      rr("example.test.", 3600, "SOA", "ns1.example.test. hostmaster.example.test. 2026120101 10800 900 604800 300"),
      rr("example.test.", 3600, "NS", "ns1.example.test."),
      rr("example.test.", 3600, "NS", "ns2.example.net."),
      rr("ns1.example.test.", 3600, "A", "192.0.2.53"),
      rr("www.example.test.", 60, "A", "192.0.2.10"),
      rr("www.example.test.", 60, "A", "192.0.2.11"),
      rr("www.example.test.", 3600, "AAAA", "2001:db8::a"),
      rr("txt.example.test.", 3600, "TXT", "\"v=spf1 -all\" \"say \\\"hi\\\"\" \"back\\\\slash\" \"AB\""),
      rr("alias.example.test.", 3600, "CNAME", "www.example.test."),
      rr("mail.example.test.", 3600, "MX", "10 mx.example.net.", "example.test."),
      rr("*.wild.example.test.", 30, "A", "192.0.2.99"),
      rr("deep.sub.example.test.", 3600, "A", "192.0.2.1"),
      rr("_sip._tcp.sub.example.test.", 3600, "SRV", "0 5 5060 sip", "sub.example.test."),
  };
  CHECK(records == expected);
  CHECK(records[0].line == 4);
  CHECK(records[5].line == 14);
}

TEST_CASE("parser: without $TTL a record takes the last TTL given explicitly (RFC 1035 5.1)", "[parser]") {
  const auto records = parse_ok("a 300 A 192.0.2.1\nb A 192.0.2.2\nc 10 A 192.0.2.3\nd A 192.0.2.4\n");
  REQUIRE(records.size() == 4);
  CHECK(records[1].ttl == 300);
  CHECK(records[3].ttl == 10);
  const auto with_default = parse_ok("$TTL 99\na 300 A 192.0.2.1\nb A 192.0.2.2\n");
  CHECK(with_default[1].ttl == 99);
}

TEST_CASE("parser: relative $ORIGIN, @ and the root", "[parser]") {
  const auto records = parse_ok("$ORIGIN sub\n@ 1 A 192.0.2.1\nx.y. 1 A 192.0.2.2\n");
  CHECK(records[0].owner == "sub.example.test.");
  CHECK(records[1].owner == "x.y.");
}

TEST_CASE("parser: format_records writes what parses back to the same records", "[parser][round-trip]") {
  const std::string text =
      "$ORIGIN example.test.\n$TTL 60\n@ SOA ns1 h 1 2 3 4 5\nmx MX 10 mail\n$ORIGIN other.test.\nmx MX 20 mail\n"
      "t TXT \"\\255\\000x\" ( \"a;b\" \"(c)\" )\nsig TYPE65534 \\# 3 abcdef\n";
  const auto records = parse_ok(text, "");
  const std::string written = planfence::format_records(records, "a header\nof two lines");
  INFO(written);
  const auto again = parse_ok(written, "");
  CHECK(again == records);
  CHECK(written.rfind("; a header\n; of two lines\n", 0) == 0);

  // A record too long for one line is split over lines with parentheses and still reads back.
  std::string long_txt = "big 60 TXT";
  for (int i = 0; i < 16; ++i) long_txt += " \"" + std::string(255, static_cast<char>('a' + i)) + "\"";
  const auto big = parse_ok(long_txt + "\n");
  const std::string big_written = planfence::format_records(big);
  CHECK(big_written.find("(\n") != std::string::npos);
  CHECK(parse_ok(big_written) == big);
}

namespace {
struct bad_case {
  const char* text;
  std::uint32_t line;
  std::uint32_t column;
  const char* says;
};
}  // namespace

TEST_CASE("parser: every bad input names its line, column and what was expected", "[parser][errors]") {
  // Origin example.test. unless the text changes it.
  const bad_case cases[] = {
      {"$INCLUDE other.zone\n", 1, 1, "$INCLUDE is not supported"},
      {"a 1 A 192.0.2.1\n$include x\n", 2, 1, "$INCLUDE is not supported"},
      {"$GENERATE 1-9 host$ A 10.0.0.$\n", 1, 1, "$GENERATE is not supported"},
      {"$FOO bar\n", 1, 1, "expected $ORIGIN or $TTL"},
      {"$ORIGIN\n", 1, 8, "expected a domain name after $ORIGIN"},
      {"$ORIGIN a. b.\n", 1, 12, "expected the end of the $ORIGIN line"},
      {"$TTL forever\n", 1, 6, "expected a TTL"},
      {"$TTL 2147483648\n", 1, 6, "expected a TTL"},
      {"$TTL 1h30\n", 1, 6, "expected a TTL"},
      {" A 192.0.2.1\n", 1, 1, "no previous owner"},
      {"www 1 IN\n", 1, 9, "expected a record type"},
      {"www 1 IN CH A 192.0.2.1\n", 1, 10, "the class given twice"},
      {"www 1 CH A 192.0.2.1\n", 1, 7, "only class IN"},
      {"www 1 2 A 192.0.2.1\n", 1, 7, "the TTL given twice"},
      {"www 1 IN FOO bar\n", 1, 10, "unknown record type 'FOO'"},
      {"www IN A 192.0.2.1\n", 1, 8, "no TTL"},
      {"www 1 A\n", 1, 8, "expected an IPv4 address"},
      {"www 1 A 192.0.2\n", 1, 9, "expected an IPv4 address"},
      {"www 1 A 192.0.2.1 192.0.2.2\n", 1, 19, "expected the end of the record"},
      {"www 1 A \"192.0.2.1\"\n", 1, 9, "not a quoted string"},
      {"www 1 AAAA 2001:db8::g\n", 1, 12, "expected an IPv6 address"},
      {"www 1 CNAME\n", 1, 12, "expected a domain name"},
      {"www 1 CNAME a..b.\n", 1, 13, "empty label"},
      {"www 1 CNAME *.example.test.\n", 1, 13, "expected a CNAME target"},
      {"www 1 NS ns\\.1\n", 1, 10, "escapes in names are not supported"},
      {"www 1 TXT\n", 1, 10, "expected one or more character-strings"},
      {"www 1 TXT \"abc\n", 1, 11, "without its closing"},
      {"www 1 TXT \"a\\1x\"\n", 1, 13, "three decimal digits"},
      {"www 1 TXT \"\\256\"\n", 1, 12, "above 255"},
      {"www 1 TXT \"abc\\\n", 1, 15, "escape at the end of a line"},
      {"www 1 SOA a. b. 1 2 3 4\n", 1, 24, "expected a minimum TTL"},
      {"www 1 SOA a. b. 1 2 3 4 5 6\n", 1, 27, "expected the end of the SOA record"},
      {"www 1 SOA a. b. 4294967296 2 3 4 5\n", 1, 17, "expected a serial"},
      {"www 1 SOA a. b. 1 2 x 4 5\n", 1, 21, "expected a retry time"},
      {"www 1 SOA ( a. b. 1\n 2 3 4\n", 1, 11, "'(' is never closed"},
      {"www 1 SOA ( a. ( b. ) 1 2 3 4 5 )\n", 1, 16, "nested '('"},
      {"www 1 A 192.0.2.1 )\n", 1, 19, "')' without '('"},
      {"www 1 MX\n", 1, 9, "expected the record's data"},
      {"\"www\" 1 A 192.0.2.1\n", 1, 1, "not a quoted string"},
      {"a_b!c 1 A 192.0.2.1\n", 1, 1, "character '!' not allowed"},
      {"a.*.b. 1 A 192.0.2.1\n", 1, 1, "'*' is only allowed"},
      {"x 1 A 192.0.2.1\n\xc3\xa9t\xc3\xa9 1 A 192.0.2.1\n", 2, 1, "non-ASCII byte outside quotes"},
      {"www 1 TXT \"a\0b\"\n", 1, 13, "NUL byte"},
      {"www 1 A 192.0.2.1\n\n; fine\nwww 1 SOA a. b. 1 2 3 4\n", 4, 24, "expected a minimum TTL"},
  };
  for (const bad_case& c : cases) {
    // Embedded NULs: take the literal's full length up to the final newline.
    std::string text(c.text);
    if (std::string_view(c.says) == "NUL byte") text = std::string("www 1 TXT \"a\0b\"\n", 17);
    auto parsed = parse_zone(text, zone_parse_options{"example.test."});
    INFO("input: " << text);
    REQUIRE_FALSE(parsed.has_value());
    INFO("error: " << parsed.error().message());
    CHECK(parsed.error().code == errc::parse_error);
    CHECK(parsed.error().line == c.line);
    CHECK(parsed.error().column == c.column);
    CHECK(parsed.error().detail.find(c.says) != std::string::npos);
  }
}

TEST_CASE("parser: relative names need an origin", "[parser][errors]") {
  auto parsed = parse_zone("www 1 A 192.0.2.1\n");
  REQUIRE_FALSE(parsed);
  CHECK(parsed.error().line == 1);
  CHECK(parsed.error().column == 1);
  CHECK(parsed.error().detail.find("without an origin") != std::string::npos);
  auto at = parse_zone("@ 1 A 192.0.2.1\n");
  REQUIRE_FALSE(at);
  CHECK(at.error().detail.find("'@' needs an origin") != std::string::npos);
}

TEST_CASE("parser: the bounds hold (line length, records, name and string lengths)", "[parser][errors]") {
  zone_parse_options small{"example.test.", 40, 2};
  auto long_line = parse_zone("www 1 TXT \"" + std::string(40, 'x') + "\"\n", small);
  REQUIRE_FALSE(long_line);
  CHECK(long_line.error().line == 1);
  CHECK(long_line.error().column == 41);
  CHECK(long_line.error().detail.find("line longer than 40") != std::string::npos);

  auto many = parse_zone("a 1 A 192.0.2.1\nb 1 A 192.0.2.1\nc 1 A 192.0.2.1\n", small);
  REQUIRE_FALSE(many);
  CHECK(many.error().line == 3);
  CHECK(many.error().detail.find("more than 2 records") != std::string::npos);

  auto label = parse_zone(std::string(64, 'a') + " 1 A 192.0.2.1\n", zone_parse_options{"example.test."});
  REQUIRE_FALSE(label);
  CHECK(label.error().detail.find("label longer than 63") != std::string::npos);

  std::string name;
  for (int i = 0; i < 50; ++i) name += "abcd.";
  auto too_long = parse_zone(name + "example.test. 1 A 192.0.2.1\n", zone_parse_options{});
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().detail.find("longer than 255 octets") != std::string::npos);

  auto big_string = parse_zone("t 1 TXT \"" + std::string(256, 'x') + "\"\n", zone_parse_options{"example.test."});
  REQUIRE_FALSE(big_string);
  CHECK(big_string.error().column == 9);
  CHECK(big_string.error().detail.find("longer than 255 octets") != std::string::npos);

  std::string seventeen = "t 1 TXT";
  for (int i = 0; i < 17; ++i) seventeen += " x";
  auto strings = parse_zone(seventeen + "\n", zone_parse_options{"example.test."});
  REQUIRE_FALSE(strings);
  CHECK(strings.error().column == 41);
  CHECK(strings.error().detail.find("more than 16") != std::string::npos);

  std::string tokens = "t 1 MX";
  for (std::size_t i = 0; i < planfence::zone_entry_tokens_max; ++i) tokens += " 1";
  auto entry = parse_zone(tokens + "\n", zone_parse_options{"example.test."});
  REQUIRE_FALSE(entry);
  CHECK(entry.error().detail.find("more than 1024 tokens") != std::string::npos);
}

TEST_CASE("parser: decode_zone reads stamps, weights and the floor, and refuses what is inconsistent", "[parser][decode]") {
  const std::string good =
      "$ORIGIN example.test.\n@ 60 SOA ns1 h 7 1 1 1 1\n@ 60 NS ns1\nwww 60 A 192.0.2.1\nwww 60 A 192.0.2.2\n"
      "_planfence.www 0 TXT \"gen=7 fence=3\"\n_weight._planfence.www 60 TXT \"A 192.0.2.2 40\"\n"
      "_fence._planfence 0 TXT \"floor=2\"\n";
  const auto records = parse_ok(good, "");
  auto decoded = planfence::decode_zone(records, "example.test.");
  REQUIRE(decoded);
  CHECK(decoded->floor == planfence::fence_token{2});
  CHECK(decoded->soa.serial.value == 7);
  REQUIRE(decoded->endpoints.size() == 1);
  const planfence::zone_endpoint& www = decoded->endpoints[0];
  CHECK(www.name == "www.example.test.");
  REQUIRE(www.stamped.has_value());
  CHECK(www.stamped->gen == planfence::generation{7});
  CHECK(www.stamped->fence == planfence::fence_token{3});
  REQUIRE(www.records.size() == 2);
  CHECK_FALSE(www.records[0].weight.has_value());
  CHECK(www.records[1].weight == std::optional<std::uint8_t>{40});

  const bad_case bad[] = {
      {"$ORIGIN example.test.\nwww 60 A 192.0.2.1\n", 2, 1, "expected the zone's SOA record first"},
      {"$ORIGIN example.test.\n@ 60 SOA a. b. 1 1 1 1 1\n@ 60 SOA a. b. 1 1 1 1 1\n", 3, 1, "a second SOA"},
      {"$ORIGIN other.test.\n@ 60 SOA a. b. 1 1 1 1 1\n", 2, 1, "outside the zone"},
      {"$ORIGIN example.test.\n@ 60 SOA a. b. 1 1 1 1 1\n_planfence.www 0 TXT \"gen=x fence=1\"\n", 3, 1, "malformed stamp"},
      {"$ORIGIN example.test.\n@ 60 SOA a. b. 1 1 1 1 1\n_planfence.www 0 TXT \"gen=1 fence=1\"\n_planfence.www 0 TXT \"gen=2 fence=1\"\n",
       4, 1, "a second stamp"},
      {"$ORIGIN example.test.\n@ 60 SOA a. b. 1 1 1 1 1\n_planfence.www 0 A 192.0.2.1\n", 3, 1, "under _planfence"},
      {"$ORIGIN example.test.\n@ 60 SOA a. b. 1 1 1 1 1\n_weight._planfence.www 0 TXT \"A 192.0.2.1 7\"\n", 3, 1,
       "which www.example.test. does not have"},
      {"$ORIGIN example.test.\n@ 60 SOA a. b. 1 1 1 1 1\n_weight._planfence.www 0 TXT \"A 192.0.2.1 700\"\n", 3, 1, "malformed weight"},
      {"$ORIGIN example.test.\n@ 60 SOA a. b. 1 1 1 1 1\n_fence._planfence 0 TXT \"floor=-1\"\n", 3, 1, "malformed fence floor"},
      {"$ORIGIN example.test.\n@ 60 SOA a. b. 1 1 1 1 1\nx._planfence.y 0 TXT \"a\"\n", 3, 1, "unexpected name"},
  };
  for (const bad_case& c : bad) {
    INFO("input: " << c.text);
    const auto parsed = parse_ok(c.text, "");
    auto d = planfence::decode_zone(parsed, "example.test.");
    REQUIRE_FALSE(d);
    INFO("error: " << d.error().message());
    CHECK(d.error().code == errc::parse_error);
    CHECK(d.error().line == c.line);
    CHECK(d.error().column == c.column);
    CHECK(d.error().detail.find(c.says) != std::string::npos);
  }
}
