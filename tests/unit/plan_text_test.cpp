// Proves the plan text form (plan_text.hpp): it round-trips exactly both ways, tolerates exactly the
// non-canonical spellings it documents, and refuses everything else with the right code at the
// right line and column.
//  - format_plan(parse_plan(t)) == t for canonical texts t (one pinned to a SHA-256 computed
//    outside planfence, so the canonical encoding that stored plans are hashed over cannot drift),
//    and parse_plan(format_plan(p)) has p's content and digest for plans built in code;
//  - comments, blank lines, upper case, other record orders and extra spaces parse to the
//    canonical plan, and carry the canonical digest;
//  - a table walks every error return of parse_plan in source order, each row an input with the
//    expected code, line and column (columns point at the offending text);
//  - S7: a digest that does not match the content is refused; a missing digest is refused unless
//    require_digest is false.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <planfence/plan.hpp>
#include <planfence/plan_text.hpp>

using namespace planfence;
using Catch::Matchers::Contains;

namespace {

// A canonical body exercising every feature of the text form. Its SHA-256 was computed with
// `sha256sum`, independently of planfence.
const std::string canonical_body =
    "planfence-plan 1\n"
    "generation 7\n"
    "created-unix-ms 1761200000000\n"
    "intent bulk-change\n"
    "endpoint _planfence.www.example.test.\n"
    "  TXT 300 \"gen=1 fence=1\"\n"
    "endpoint db.us-east-1.example.\n"
    "  A 60 192.0.2.10\n"
    "  A 60 weight=10 192.0.2.11\n"
    "  AAAA 60 2001:db8::1\n"
    "endpoint old.example. intent=empty\n"
    "endpoint txt.example.\n"
    "  TXT 60 \"say \\\"hi\\\"\" \"back\\\\slash\" \"\\009tab\\255\"\n"
    "endpoint www.example.\n"
    "  CNAME 30 weight=1 lb1.example.\n"
    "  CNAME 30 weight=2 lb2.example.\n";
const std::string canonical_digest = "9b6d23fd8325c3c00d4fabec1a0f8dc111b9caeea33604c73ac2450de2f28a66";
const std::string canonical_text = canonical_body + "digest sha256:" + canonical_digest + "\n";

const parse_plan_options no_digest{false};

// The digest line a body needs (computed by parsing it without one).
std::string with_digest(const std::string& body) {
  auto p = parse_plan(body, no_digest);
  if (!p) FAIL("body does not parse: " << p.error().message());
  return body + "digest sha256:" + p->digest_hex() + "\n";
}

// Content equality of two plans, endpoint by endpoint.
bool same_content(const plan& x, const plan& y) {
  if (x.gen() != y.gen() || x.created_unix_ms() != y.created_unix_ms() ||
      x.bulk_change_intended() != y.bulk_change_intended() || x.size() != y.size()) {
    return false;
  }
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x.endpoints()[i]->name != y.endpoints()[i]->name) return false;
    if (!(x.endpoints()[i]->records == y.endpoints()[i]->records)) return false;
  }
  return true;
}

record make(record_type type, std::string_view rdata, std::uint32_t ttl = 60,
            std::optional<std::uint8_t> weight = std::nullopt) {
  auto r = make_record(type, ttl, rdata, weight);
  if (!r) FAIL("make_record failed: " << r.error().message());
  return *r;
}

record_set set_of(std::vector<record> records, bool intended_empty = false) {
  auto s = record_set::make(std::move(records), intended_empty);
  if (!s) FAIL("record_set::make failed: " << s.error().message());
  return *s;
}

}  // namespace

TEST_CASE("a canonical text round-trips exactly and hashes as pinned", "[plan][text]") {
  auto parsed = parse_plan(canonical_text);
  REQUIRE(parsed);
  CHECK(parsed->digest_hex() == canonical_digest);
  CHECK(format_plan(*parsed) == canonical_text);
  CHECK(parsed->verify());

  CHECK(parsed->gen() == generation{7});
  CHECK(parsed->created_unix_ms() == 1761200000000u);
  CHECK(parsed->bulk_change_intended());
  REQUIRE(parsed->size() == 5);
  const endpoint_entry* db = parsed->find("db.us-east-1.example.");
  REQUIRE(db != nullptr);
  REQUIRE(db->records.size() == 3);
  CHECK(db->records.records()[1].weight == std::optional<std::uint8_t>{10});
  const endpoint_entry* old = parsed->find("old.example.");
  REQUIRE(old != nullptr);
  CHECK(old->records.intended_empty());
  const endpoint_entry* txt = parsed->find("txt.example.");
  REQUIRE(txt != nullptr);
  CHECK(txt->records.records()[0].rdata == R"("say \"hi\"" "back\\slash" "\009tab\255")");
}

TEST_CASE("canonical texts of many shapes round-trip exactly", "[plan][text]") {
  const std::vector<std::string> bodies = {
      // No endpoints at all.
      "planfence-plan 1\ngeneration 1\ncreated-unix-ms 0\n",
      // The largest generation and creation time.
      "planfence-plan 1\ngeneration 1099511627775\ncreated-unix-ms 18446744073709551615\n"
      "endpoint a.\n  A 2147483647 255.255.255.255\n",
      // An endpoint that says nothing (empty, not intended): kept, S4 refuses it at commit.
      "planfence-plan 1\ngeneration 2\ncreated-unix-ms 5\nendpoint quiet.example.\n",
      // Only intent=empty endpoints, with a bulk change.
      "planfence-plan 1\ngeneration 3\ncreated-unix-ms 5\nintent bulk-change\n"
      "endpoint a.example. intent=empty\nendpoint b.example. intent=empty\n",
      // Every type, weights on every weightable type, TTL 0, weight 0 and 255.
      "planfence-plan 1\ngeneration 4\ncreated-unix-ms 5\n"
      "endpoint mixed.example.\n  A 0 weight=0 10.0.0.1\n  A 0 weight=255 10.0.0.2\n"
      "  AAAA 60 weight=3 ::ffff:c000:201\n  AAAA 60 fe80::1\n  TXT 1 \"\"\n  TXT 1 \"\\000\\\\\\\"\"\n"
      "endpoint root-cname.example.\n  CNAME 60 .\n",
      // The root as an endpoint, underscores, digits and hyphens.
      "planfence-plan 1\ngeneration 5\ncreated-unix-ms 5\nendpoint .\n  A 1 1.1.1.1\n"
      "endpoint 0-9.example.\n  A 1 1.1.1.1\nendpoint _x._y.example.\n  TXT 1 \"v\"\n",
  };
  for (const std::string& body : bodies) {
    CAPTURE(body);
    const std::string text = with_digest(body);
    auto parsed = parse_plan(text);
    REQUIRE(parsed);
    CHECK(format_plan(*parsed) == text);
    auto again = parse_plan(format_plan(*parsed));
    REQUIRE(again);
    CHECK(same_content(*parsed, *again));
    CHECK(again->digest() == parsed->digest());
  }
}

TEST_CASE("plans built in code survive format then parse", "[plan][text]") {
  auto builder = plan_builder{generation{42}, 1700000000123};
  REQUIRE(builder.set("WWW.Example.com", set_of({make(record_type::cname, "lb1.example.", 30, 5),
                                                  make(record_type::cname, "LB2.example", 30, 7)})));
  REQUIRE(builder.set("db.example.", set_of({make(record_type::a, "192.0.2.1", 60, 1),
                                             make(record_type::a, "192.0.2.2", 60, 2),
                                             make(record_type::aaaa, "2001:0DB8::0001", 60, 9)})));
  REQUIRE(builder.set("_planfence.db.example.", set_of({make(record_type::txt, R"("gen=41 fence=3")", 0)})));
  REQUIRE(builder.set("esc.example.", set_of({make(record_type::txt, "\"q\\\"b\\\\c\\007\\200\" \"two\"")})));
  REQUIRE(builder.set("gone.example.", set_of({}, true)));
  builder.intend_bulk_change();
  auto built = std::move(builder).build();
  REQUIRE(built);

  const std::string text = format_plan(*built);
  auto parsed = parse_plan(text);
  REQUIRE(parsed);
  CHECK(same_content(*built, *parsed));
  CHECK(parsed->digest() == built->digest());
  CHECK(format_plan(*parsed) == text);
  CHECK_THAT(text, Contains("endpoint gone.example. intent=empty\n"));
  CHECK_THAT(text, Contains("  TXT 60 \"q\\\"b\\\\c\\007\\200\" \"two\"\n"));
  CHECK_THAT(text, Contains("  CNAME 30 weight=7 lb2.example.\n"));
  CHECK_THAT(text, Contains("  AAAA 60 weight=9 2001:db8::1\n"));
  CHECK_THAT(text, Contains("\nintent bulk-change\n"));
}

TEST_CASE("non-canonical spellings parse to the canonical plan", "[plan][text]") {
  const std::string messy =
      "# A plan written by hand.\n"
      "\n"
      "   planfence-plan    1   \n"
      "generation 7  \n"
      "  # indented comment\n"
      "created-unix-ms   1761200000000\n"
      "intent   bulk-change \n"
      "\n"
      "endpoint WWW.Example.  \n"
      "    cname 30 weight=2 LB2.Example.\n"
      "  CNAME   30   weight=1   lb1.example\n"
      "endpoint TXT.example.\n"
      "  txt 60   \"say \\\"hi\\\"\"    \"back\\\\slash\" \"\\009tab\\255\"   \n"
      "endpoint old.example.   intent=empty\n"
      "endpoint DB.us-east-1.EXAMPLE.\n"
      "  AAAA 60 2001:0DB8:0:0:0:0:0:1\n"
      "  a 60 weight=10 192.0.2.11\n"
      "#\n"
      "  A 60 192.0.2.10   \n"
      "endpoint _PLANFENCE.www.example.test.\n"
      "  Txt 300 \"gen=1 fence=\\049\"\n"
      "\n"
      "# the digest of the canonical form: spelling does not change content\n"
      "digest   sha256:" + canonical_digest + "  \n"
      "\n"
      "# comments and blank lines may follow the digest\n";
  auto parsed = parse_plan(messy);
  if (!parsed) FAIL(parsed.error().message());
  CHECK(format_plan(*parsed) == canonical_text);
  CHECK(parsed->digest_hex() == canonical_digest);
}

TEST_CASE("the digest guards the content (S7)", "[plan][text]") {
  // Change one record and keep the digest: refused at the digest's hex digits.
  std::string tampered = canonical_text;
  const auto at = tampered.find("192.0.2.11");
  REQUIRE(at != std::string::npos);
  tampered.replace(at, 10, "192.0.2.12");
  auto refused = parse_plan(tampered);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::digest_mismatch);
  CHECK(refused.error().line == 17);
  CHECK(refused.error().column == 15);
  CHECK_THAT(refused.error().detail, Contains("S7"));

  // Change the digest and keep the content.
  std::string wrong_digest = canonical_text;
  wrong_digest[wrong_digest.size() - 2] = wrong_digest[wrong_digest.size() - 2] == '0' ? '1' : '0';
  auto refused_too = parse_plan(wrong_digest);
  REQUIRE_FALSE(refused_too);
  CHECK(refused_too.error().code == errc::digest_mismatch);
  CHECK(refused_too.error().line == 17);

  // A present digest is checked even when none is required.
  auto still_checked = parse_plan(tampered, no_digest);
  REQUIRE_FALSE(still_checked);
  CHECK(still_checked.error().code == errc::digest_mismatch);

  // Changing the generation alone changes the digest too.
  std::string regenerated = canonical_text;
  regenerated.replace(regenerated.find("generation 7"), 12, "generation 8");
  auto refused_generation = parse_plan(regenerated);
  REQUIRE_FALSE(refused_generation);
  CHECK(refused_generation.error().code == errc::digest_mismatch);
}

TEST_CASE("a missing digest is refused unless require_digest is false", "[plan][text]") {
  auto refused = parse_plan(canonical_body);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::parse_error);
  CHECK(refused.error().line == 17);  // just past the last line
  CHECK(refused.error().column == 1);
  CHECK_THAT(refused.error().detail, Contains("digest"));

  // Trailing comments count as lines: the error is still past the end.
  auto refused_comment = parse_plan(canonical_body + "# end\n\n");
  REQUIRE_FALSE(refused_comment);
  CHECK(refused_comment.error().line == 19);

  auto accepted = parse_plan(canonical_body, no_digest);
  REQUIRE(accepted);
  CHECK(accepted->digest_hex() == canonical_digest);
  CHECK(format_plan(*accepted) == canonical_text);

  // A final line without a newline is still a line.
  std::string unterminated = canonical_text;
  unterminated.pop_back();
  auto parsed = parse_plan(unterminated);
  REQUIRE(parsed);
  CHECK(format_plan(*parsed) == canonical_text);
}

TEST_CASE("CRLF, tabs and overlong lines are refused where they stand", "[plan][text]") {
  // CRLF line ends: refused on the first line, at the carriage return.
  std::string crlf;
  for (char c : canonical_text) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  auto refused_crlf = parse_plan(crlf);
  REQUIRE_FALSE(refused_crlf);
  CHECK(refused_crlf.error().code == errc::parse_error);
  CHECK(refused_crlf.error().line == 1);
  CHECK(refused_crlf.error().column == 17);
  CHECK_THAT(refused_crlf.error().detail, Contains("carriage return"));

  // A tab between fields of a record.
  std::string tabbed = canonical_text;
  tabbed.replace(tabbed.find("  A 60 192.0.2.10"), 17, "  A\t60 192.0.2.10");
  auto refused_tab = parse_plan(tabbed);
  REQUIRE_FALSE(refused_tab);
  CHECK(refused_tab.error().code == errc::parse_error);
  CHECK(refused_tab.error().line == 8);
  CHECK(refused_tab.error().column == 4);
  CHECK_THAT(refused_tab.error().detail, Contains("tab"));

  // A line of exactly 8192 characters is fine (a comment here), one more is refused, even as
  // a comment or a blank line, at its first column.
  const std::string head = "planfence-plan 1\ngeneration 1\ncreated-unix-ms 0\n";
  const std::string longest = "#" + std::string(plan_line_length_max - 1, 'x') + "\n";
  CHECK(parse_plan(head + longest, no_digest));
  for (const std::string& overlong : {"#" + std::string(plan_line_length_max, 'x') + "\n",
                                      std::string(plan_line_length_max + 1, ' ') + "\n",
                                      "endpoint a.\n  TXT 60 \"" + std::string(plan_line_length_max, 'x') + "\"\n"}) {
    auto refused_long = parse_plan(head + overlong, no_digest);
    REQUIRE_FALSE(refused_long);
    CHECK(refused_long.error().code == errc::parse_error);
    CHECK(refused_long.error().line == (overlong[0] == 'e' ? 5u : 4u));
    CHECK(refused_long.error().column == 1);
    CHECK_THAT(refused_long.error().detail, Contains("longer than 8192"));
  }
}

TEST_CASE("a duplicate endpoint names the line of its first definition", "[plan][text]") {
  const std::string text =
      "planfence-plan 1\ngeneration 1\ncreated-unix-ms 0\n"
      "endpoint a.example.\n  A 60 192.0.2.1\n"
      "endpoint b.example.\n  A 60 192.0.2.2\n"
      "# same name, other spelling\n"
      "endpoint A.EXAMPLE.\n  A 60 192.0.2.3\n";
  auto refused = parse_plan(text, no_digest);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::invalid_plan);
  CHECK(refused.error().line == 9);
  CHECK(refused.error().column == 10);
  CHECK_THAT(refused.error().detail, Contains("endpoint a.example. already defined at line 4"));
}

namespace {

struct error_row {
  std::string what;
  std::string text;
  errc code;
  std::uint32_t line;
  std::uint32_t column;
};

const std::string h = "planfence-plan 1\ngeneration 7\ncreated-unix-ms 1000\n";  // lines 1-3
const std::string hex64(64, 'a');

std::string records(std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += "  A 60 10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
           std::to_string(i % 256) + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("every parse error reports its code, line and column", "[plan][text]") {
  // In the order of the returns in parse_plan. Inputs need no digest unless the row is about it.
  const std::vector<error_row> rows = {
      // The first line.
      {"empty input", "", errc::parse_error, 1, 1},
      {"only comments and blank lines", "# nothing\n\n   \n", errc::parse_error, 4, 1},
      {"overlong first line", std::string(plan_line_length_max + 1, 'p'), errc::parse_error, 1, 1},
      {"carriage return on the first line", "planfence-plan 1\r\n", errc::parse_error, 1, 17},
      {"tab on the first line", "planfence-plan\t1\n", errc::parse_error, 1, 15},
      {"not a plan", "zone example.\n", errc::parse_error, 1, 1},
      {"not a plan, indented", "   plan 1\n", errc::parse_error, 1, 4},
      {"version missing", "planfence-plan\n", errc::parse_error, 1, 15},
      {"version missing, trailing spaces", "planfence-plan   \n", errc::parse_error, 1, 18},
      {"version 2", "planfence-plan 2\n", errc::parse_error, 1, 16},
      {"version 0", "planfence-plan 0\n", errc::parse_error, 1, 16},
      {"version with a leading zero", "planfence-plan 01\n", errc::parse_error, 1, 16},
      {"version not a number", "planfence-plan one\n", errc::parse_error, 1, 16},
      {"text after the version", "planfence-plan 1 extra words\n", errc::parse_error, 1, 18},
      // The generation line (header_number).
      {"end after the first line", "planfence-plan 1\n", errc::parse_error, 2, 1},
      {"end after comments", "planfence-plan 1\n# c\n", errc::parse_error, 3, 1},
      {"carriage return on the generation line", "planfence-plan 1\ngeneration 7\r\n", errc::parse_error, 2, 13},
      {"tab on the generation line", "planfence-plan 1\ngeneration\t7\n", errc::parse_error, 2, 11},
      {"generation keyword misspelt", "planfence-plan 1\ngen 7\n", errc::parse_error, 2, 1},
      {"created line where generation belongs", "planfence-plan 1\ncreated-unix-ms 5\n", errc::parse_error, 2, 1},
      {"generation without a number", "planfence-plan 1\ngeneration\n", errc::parse_error, 2, 11},
      {"generation without a number, trailing spaces", "planfence-plan 1\ngeneration   \n", errc::parse_error, 2, 14},
      {"generation with a leading zero", "planfence-plan 1\ngeneration 07\n", errc::parse_error, 2, 12},
      {"generation negative", "planfence-plan 1\n  generation -7\n", errc::parse_error, 2, 14},
      {"generation with a sign", "planfence-plan 1\ngeneration +7\n", errc::parse_error, 2, 12},
      {"generation not decimal", "planfence-plan 1\ngeneration 0x7\n", errc::parse_error, 2, 12},
      {"generation above 2^64", "planfence-plan 1\ngeneration 18446744073709551616\n", errc::parse_error, 2, 12},
      {"generation of 21 digits", "planfence-plan 1\ngeneration 100000000000000000000\n", errc::parse_error, 2, 12},
      {"text after the generation", "planfence-plan 1\ngeneration 7 8\n", errc::parse_error, 2, 14},
      {"generation 0", "planfence-plan 1\ngeneration 0\n", errc::parse_error, 2, 12},
      {"generation 2^40", "planfence-plan 1\ngeneration 1099511627776\n", errc::parse_error, 2, 12},
      {"generation 2^64 - 1", "planfence-plan 1\ngeneration   18446744073709551615\n", errc::parse_error, 2, 14},
      // The created-unix-ms line.
      {"end after the generation", "planfence-plan 1\ngeneration 7\n", errc::parse_error, 3, 1},
      {"created keyword misspelt", "planfence-plan 1\ngeneration 7\ncreated 5\n", errc::parse_error, 3, 1},
      {"created above 2^64", "planfence-plan 1\ngeneration 7\ncreated-unix-ms 18446744073709551616\n", errc::parse_error, 3, 17},
      {"text after created", "planfence-plan 1\ngeneration 7\ncreated-unix-ms 5 # comment\n", errc::parse_error, 3, 19},
      // The body: line checks.
      {"carriage return in the body", h + "endpoint a.\r\n", errc::parse_error, 4, 12},
      {"tab in the body", h + "endpoint a.\n\tA 60 192.0.2.1\n", errc::parse_error, 5, 1},
      {"overlong body line", h + "endpoint a.\n" + std::string(plan_line_length_max + 1, '#') + "\n", errc::parse_error, 5, 1},
      // After the digest.
      {"an endpoint after the digest", h + "digest sha256:" + hex64 + "\nendpoint a.\n", errc::parse_error, 5, 1},
      {"a record after the digest", h + "endpoint a.\ndigest sha256:" + hex64 + "\n  A 60 192.0.2.1\n", errc::parse_error, 6, 1},
      {"a second digest", h + "digest sha256:" + hex64 + "\n\ndigest sha256:" + hex64 + "\n", errc::parse_error, 6, 1},
      // intent.
      {"intent after an endpoint", h + "endpoint a.\nintent bulk-change\n", errc::parse_error, 5, 1},
      {"intent after the digest line", h + "digest sha256:" + hex64 + "\nintent bulk-change\n", errc::parse_error, 5, 1},
      {"intent of another kind", h + "intent  everything\n", errc::parse_error, 4, 9},
      {"intent of no kind", h + "intent\n", errc::parse_error, 4, 7},
      {"intent=empty as a header intent", h + "intent empty\n", errc::parse_error, 4, 8},
      {"indented intent (read as a record)", h + "intent bulk-change\n  intent bulk-change\n", errc::parse_error, 5, 3},
      {"intent given twice", h + "intent bulk-change\nintent bulk-change\n", errc::parse_error, 5, 1},
      {"text after intent", h + "intent bulk-change now\n", errc::parse_error, 4, 20},
      // endpoint.
      {"endpoint without a name", h + "endpoint\n", errc::parse_error, 4, 9},
      {"endpoint without a name, trailing spaces", h + "endpoint  \n", errc::parse_error, 4, 11},
      {"endpoint with an empty label", h + "endpoint a..b.\n", errc::invalid_name, 4, 10},
      {"endpoint ending in two dots", h + "endpoint   a..\n", errc::invalid_name, 4, 12},
      {"endpoint with a bad character", h + "endpoint a*b.example.\n", errc::invalid_name, 4, 10},
      {"endpoint with a 64-octet label", h + "endpoint " + std::string(64, 'x') + ".\n", errc::invalid_name, 4, 10},
      {"endpoint name too long", h + "endpoint " + [] { std::string n; for (int i = 0; i < 128; ++i) n += "x."; return n; }() + "\n", errc::invalid_name, 4, 10},
      {"relative endpoint name", h + "endpoint www.example\n", errc::invalid_name, 4, 10},
      {"endpoint with an unknown option", h + "endpoint a. intent=full\n", errc::parse_error, 4, 13},
      {"endpoint with a weight", h + "endpoint a. weight=1\n", errc::parse_error, 4, 13},
      {"text after intent=empty", h + "endpoint a. intent=empty now\n", errc::parse_error, 4, 26},
      {"duplicate endpoint", h + "endpoint a.\nendpoint b.\nendpoint a.\n", errc::invalid_plan, 6, 10},
      // Record sets are checked when the endpoint ends, and reported at the endpoint's name.
      {"duplicate record, next endpoint follows", h + "endpoint  a.\n  A 60 192.0.2.1\n  A 30 192.0.2.1\nendpoint b.\n", errc::invalid_plan, 4, 11},
      {"CNAME beside A, digest follows", h + "endpoint a.\n  CNAME 60 b.\n  A 60 192.0.2.1\ndigest sha256:" + hex64 + "\n", errc::invalid_plan, 4, 10},
      {"two unweighted CNAMEs at the end of input", h + "endpoint a.\n  CNAME 60 b.\n  CNAME 60 c.\n", errc::invalid_plan, 4, 10},
      // digest.
      {"digest without a value", h + "digest\n", errc::parse_error, 4, 7},
      {"digest of another algorithm", h + "digest md5:" + hex64.substr(0, 32) + "\n", errc::parse_error, 4, 8},
      {"digest without the algorithm", h + "digest " + hex64 + "\n", errc::parse_error, 4, 8},
      {"digest without hex", h + "digest sha256:\n", errc::parse_error, 4, 8},
      {"digest too short", h + "digest sha256:" + hex64.substr(1) + "\n", errc::parse_error, 4, 15},
      {"digest too long", h + "digest sha256:" + hex64 + "a\n", errc::parse_error, 4, 15},
      {"digest in upper case", h + "digest sha256:" + std::string(64, 'A') + "\n", errc::parse_error, 4, 15},
      {"digest not hex", h + "digest sha256:" + hex64.substr(1) + "g\n", errc::parse_error, 4, 15},
      {"text after the digest", h + "digest sha256:" + hex64 + " trailing\n", errc::parse_error, 4, 80},
      // Unknown unindented lines.
      {"unknown keyword", h + "zone example.\n", errc::parse_error, 4, 1},
      {"keyword in upper case", h + "ENDPOINT a.\n", errc::parse_error, 4, 1},
      // Records.
      {"record before any endpoint", h + "  A 60 192.0.2.1\n", errc::parse_error, 4, 3},
      {"record after intent=empty", h + "endpoint a. intent=empty\n   A 60 192.0.2.1\n", errc::invalid_plan, 5, 4},
      {"indented endpoint line", h + "endpoint a.\n  endpoint b.\n", errc::parse_error, 5, 3},
      {"unknown record type", h + "endpoint a.\n  MX 60 10 mail.example.\n", errc::parse_error, 5, 3},
      {"record without a TTL", h + "endpoint a.\n  A\n", errc::parse_error, 5, 4},
      {"record without a TTL, trailing spaces", h + "endpoint a.\n  A   \n", errc::parse_error, 5, 7},
      {"TTL not a number", h + "endpoint a.\n  A sixty 192.0.2.1\n", errc::invalid_ttl, 5, 5},
      {"TTL with a leading zero", h + "endpoint a.\n  A 060 192.0.2.1\n", errc::invalid_ttl, 5, 5},
      {"TTL with a unit", h + "endpoint a.\n  A 60s 192.0.2.1\n", errc::invalid_ttl, 5, 5},
      {"TTL above 2^31 - 1", h + "endpoint a.\n  A 2147483648 192.0.2.1\n", errc::invalid_ttl, 5, 5},
      {"record without data", h + "endpoint a.\n  A 60\n", errc::parse_error, 5, 7},
      {"record without data, trailing spaces", h + "endpoint a.\n  A 60   \n", errc::parse_error, 5, 7},
      {"weight above 255", h + "endpoint a.\n  A 60 weight=256 192.0.2.1\n", errc::parse_error, 5, 8},
      {"weight empty", h + "endpoint a.\n  A 60 weight= 192.0.2.1\n", errc::parse_error, 5, 8},
      {"weight with a leading zero", h + "endpoint a.\n  A 60 weight=01 192.0.2.1\n", errc::parse_error, 5, 8},
      {"weight not a number", h + "endpoint a.\n  A 60   weight=heavy 192.0.2.1\n", errc::parse_error, 5, 10},
      {"weight without data", h + "endpoint a.\n  A 60 weight=5\n", errc::parse_error, 5, 16},
      {"weight without data, trailing spaces", h + "endpoint a.\n  A 60 weight=5   \n", errc::parse_error, 5, 16},
      {"text after A data", h + "endpoint a.\n  A 60 192.0.2.1 192.0.2.2\n", errc::parse_error, 5, 18},
      {"text after CNAME data", h + "endpoint a.\n  CNAME 60 b.example.   c.example.\n", errc::parse_error, 5, 25},
      {"comment after record data", h + "endpoint a.\n  AAAA 60 ::1 # loopback\n", errc::parse_error, 5, 15},
      {"bad A data", h + "endpoint a.\n  A 60 192.0.2.256\n", errc::invalid_rdata, 5, 8},
      {"bad AAAA data", h + "endpoint a.\n  AAAA 60 weight=1 1::2::3\n", errc::invalid_rdata, 5, 20},
      {"bad CNAME data", h + "endpoint a.\n  CNAME 60 b..example.\n", errc::invalid_rdata, 5, 12},
      {"bad TXT data", h + "endpoint a.\n  TXT 60 \"unterminated\n", errc::invalid_rdata, 5, 10},
      {"TXT not quoted", h + "endpoint a.\n  TXT 60 hello\n", errc::invalid_rdata, 5, 10},
      {"weighted TXT", h + "endpoint a.\n  TXT 60 weight=1 \"x\"\n", errc::invalid_rdata, 5, 19},
      {"1025 records for one endpoint", h + "endpoint a.\n" + records(1025), errc::invalid_plan, 1029, 3},
  };
  for (const error_row& row : rows) {
    CAPTURE(row.what);
    auto parsed = parse_plan(row.text, no_digest);
    if (parsed) {
      FAIL_CHECK("accepted");
      continue;
    }
    CAPTURE(parsed.error().message());
    CHECK(parsed.error().code == row.code);
    CHECK(parsed.error().line == row.line);
    CHECK(parsed.error().column == row.column);
    CHECK_FALSE(parsed.error().detail.empty());  // every error says what was expected
  }
  // Not covered by a row: "more than 2^24 endpoints" needs 16 million endpoint lines (about
  // 300 MB of text); the bound is the same constant plan_builder checks.
}

TEST_CASE("limits that parse: 1024 records, generation 2^40 - 1", "[plan][text]") {
  auto full = parse_plan(h + "endpoint a.\n" + records(1024), no_digest);
  REQUIRE(full);
  REQUIRE(full->find("a.") != nullptr);
  CHECK(full->find("a.")->records.size() == 1024);

  auto top = parse_plan("planfence-plan 1\ngeneration 1099511627775\ncreated-unix-ms 0\n", no_digest);
  REQUIRE(top);
  CHECK(top->gen() == generation_max);
}
