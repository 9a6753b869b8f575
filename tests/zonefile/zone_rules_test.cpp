// The zone-file store and format_zone never write a zone that a DNS server refuses to load
// (check_zone_loadable, include/planfence/zonefile/zone.hpp). How it is proved:
//  - a table of zones, each breaking one rule: kzonecheck (Knot) refuses every one (and BIND's
//    named-checkzone every one but data below a DNAME and a delegation without glue), and check_zone_loadable refuses it too,
//    naming the owner and the types; the same zones without the fault pass all three;
//  - the store refuses commits that would produce such a zone (a CNAME endpoint beside an MX, at
//    the apex, at the zone's name server, below a DNAME, a zone that already holds two CNAMEs) with
//    errc::invalid_plan, leaving the file byte for byte as it was; format_zone refuses such plans;
//  - in the normal cases (a CNAME endpoint with other data at other names, MX and SRV beside
//    address endpoints) the store's file passes kzonecheck and named-checkzone.
#include <catch2/catch.hpp>

#include <string>

#include "zonefile_fixture.hpp"

using namespace planfence;
using namespace planfence_zonefile_test;

namespace {

const std::string head =
    "$ORIGIN example.test.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ 3600 IN NS ns1\n";
const std::string glue = "ns1 3600 IN A 127.0.0.1\n";

record_set cname_to(const std::string& target) {
  return record_set::make({make_record(record_type::cname, 60, target).value()}).value();
}

/// kzonecheck's verdict: true when it loads; nullopt without kzonecheck.
std::optional<bool> loads(const std::string& text) {
  auto [status, output] = kzonecheck(text, "example.test.");
  if (status == -1) return std::nullopt;
  return status == 0;
}

/// named-checkzone's verdict (BIND): true when it loads; nullopt without it.
std::optional<bool> bind_loads(const std::string& text) {
  auto [status, output] = named_checkzone(text, "example.test.");
  if (status == -1) return std::nullopt;
  return status == 0;
}

}  // namespace

TEST_CASE("check_zone_loadable refuses exactly what kzonecheck refuses, naming the owner and types", "[zonefile][rules][kzonecheck]") {
  struct rule_case {
    const char* what;
    std::string bad;   // appended to head + glue (or to head alone for the glue cases)
    bool with_glue;
    std::string says;  // in check_zone_loadable's detail
    std::string good;  // the same zone without the fault
    bool bind_refuses = true;  // named-checkzone refuses it too (BIND logs, but loads, the two marked false)
  };
  const rule_case cases[] = {
      {"CNAME beside MX", "www 60 IN CNAME lb.example.net.\nwww 60 IN MX 10 mail.example.net.\n", true,
       "www.example.test.: a CNAME (line 5) beside MX data (line 6)", "www 60 IN CNAME lb.example.net.\nmail 60 IN MX 10 mail.example.net.\n"},
      {"CNAME beside A", "www 60 IN A 192.0.2.1\nwww 60 IN CNAME lb.example.net.\n", true, "www.example.test.: a CNAME",
       "www 60 IN A 192.0.2.1\n"},
      {"CNAME at the apex", "@ 60 IN CNAME lb.example.net.\n", true, "example.test.: a CNAME (line 5) beside SOA data", ""},
      {"two CNAMEs", "www 60 IN CNAME a.example.net.\nwww 60 IN CNAME b.example.net.\n", true,
       "www.example.test.: 2 CNAME records", "www 60 IN CNAME a.example.net.\n"},
      {"a CNAME at a delegation", "sub 60 IN NS ns.example.net.\nsub 60 IN CNAME a.example.net.\n", true,
       "sub.example.test.: a CNAME", "sub 60 IN NS ns.example.net.\n"},
      {"data below a DNAME", "www 60 IN DNAME a.example.net.\n_planfence.www 0 IN TXT \"gen=1 fence=1\"\n", true,
       "below the DNAME at www.example.test.", "www 60 IN DNAME a.example.net.\n", false},
      {"the name server a CNAME", "ns1 60 IN CNAME a.example.net.\n", false, "is a CNAME, so it has no A or AAAA record",
       "ns1 60 IN AAAA 2001:db8::53\n"},
      {"the name server without an address", "ns1 60 IN TXT \"x\"\n", false, "NS ns1.example.test. (line 3): the name server is inside the zone",
       "ns1 60 IN A 192.0.2.53\n"},
      {"a delegation without glue", "sub 60 IN NS ns.sub\n", true, "sub.example.test. NS ns.sub.example.test.",
       "sub 60 IN NS ns.sub\nns.sub 60 IN A 192.0.2.54\n", false},
  };
  for (const rule_case& c : cases) {
    INFO(c.what);
    const std::string bad = head + (c.with_glue ? glue : "") + c.bad;
    const std::string good = head + (c.with_glue ? glue : "") + c.good;
    auto bad_records = parse_zone(bad, zone_parse_options{"example.test."}).value();
    auto refused = check_zone_loadable(bad_records, "example.test.");
    REQUIRE_FALSE(refused);
    INFO(refused.error().message());
    CHECK(refused.error().code == errc::invalid_plan);
    CHECK(contains(refused.error().detail, c.says));
    CHECK(contains(refused.error().detail, "DNS servers refuse the zone"));
    CHECK(check_zone_loadable(parse_zone(good, zone_parse_options{"example.test."}).value(), "example.test."));
    if (auto verdict = loads(bad)) {
      CHECK_FALSE(*verdict);
      CHECK(*loads(good));
    } else {
      WARN("kzonecheck not found: the table is not checked against Knot");
    }
    if (auto verdict = bind_loads(bad)) {
      CHECK(*verdict == !c.bind_refuses);
      CHECK(*bind_loads(good));
    } else {
      WARN("named-checkzone not found: the table is not checked against BIND");
    }
  }
  // RRSIG and NSEC may stand beside a CNAME (RFC 4035).
  CHECK(check_zone_loadable(parse_zone(head + glue + "www 60 IN CNAME a.example.net.\n"
                                                     "www 60 IN NSEC z.example.test. CNAME RRSIG NSEC\n",
                                       zone_parse_options{"example.test."})
                                .value(),
                            "example.test."));
  // A TTL above 2^31 - 1 (records built by hand: the parser refuses such text).
  std::vector<zone_record> records = parse_zone(head + glue, zone_parse_options{"example.test."}).value();
  records.push_back(zone_record{"www.example.test.", 2147483648U, "A", "192.0.2.1", {}, 0});
  auto refused = check_zone_loadable(records, "example.test.");
  REQUIRE_FALSE(refused);
  CHECK(contains(refused.error().detail, "www.example.test. A: TTL 2147483648 is above 2147483647"));
}

TEST_CASE("zonefile store: a commit that would make a zone DNS servers refuse writes nothing", "[zonefile][rules]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  const endpoint_handle www = store.resolve("www.example.test.").value();
  REQUIRE(store.commit(www, stamp{}, stamp_at(1, 1), planfence_test::a_records({"192.0.2.1"})));

  auto refuses = [&](const std::string& endpoint, const record_set& records, std::initializer_list<std::string> says) {
    INFO(endpoint);
    const std::string before = read_text(file);
    const endpoint_handle h = store.resolve(endpoint).value();
    const stamp now = store.read_stamp(h).value();
    auto refused = store.commit(h, now, stamp_at(now.gen.value() + 1, 1), records);
    REQUIRE_FALSE(refused);
    INFO(refused.error().message());
    CHECK(refused.error().code == errc::invalid_plan);
    CHECK(contains(refused.error().detail, file.string()));
    CHECK(contains(refused.error().detail, "nothing was written"));
    for (const std::string& part : says) CHECK(contains(refused.error().detail, part));
    CHECK(read_text(file) == before);
    CHECK(store.read_stamp(h).value() == now);
  };

  SECTION("an MX beside an endpoint the plan makes a CNAME (RFC 1034 3.6.2)") {
    std::string text = read_text(file);
    write_text(file, text + "www.example.test. 300 IN MX 10 mail.example.net.\n");
    refuses("www.example.test.", cname_to("lb.example.net."), {"www.example.test.: a CNAME", "beside MX data"});
  }
  SECTION("a CNAME at the apex") {
    refuses("example.test.", cname_to("lb.example.net."), {"example.test.: a CNAME", "SOA"});
  }
  SECTION("the zone's name server made a CNAME, or left without an address") {
    refuses("ns1.example.test.", cname_to("lb.example.net."), {"NS ns1.example.test.", "is a CNAME, so it has no A or AAAA"});
    refuses("ns1.example.test.", record_set::make({}, true).value(), {"NS ns1.example.test.", "no A or AAAA record"});
  }
  SECTION("an endpoint below a DNAME (its stamp would be below it)") {
    write_text(file, read_text(file) + "alias.example.test. 300 IN DNAME example.net.\n");
    refuses("x.alias.example.test.", planfence_test::a_records({"192.0.2.9"}), {"below the DNAME at alias.example.test."});
  }
  SECTION("an endpoint so long that its stamp's owner would exceed 255 octets") {
    const std::string label(60, 'a');
    const std::string name = label + "." + label + "." + label + "." + std::string(50, 'b') + ".example.test.";
    REQUIRE(name.size() == 247);  // a valid name: 253 characters at most without the final dot
    refuses(name, planfence_test::a_records({"192.0.2.9"}), {"_planfence." + name, "longer than 253 characters"});
  }
  SECTION("a zone that already breaks a rule elsewhere is named, not made worse") {
    write_text(file, read_text(file) + "old.example.test. 300 IN CNAME a.example.net.\nold.example.test. 300 IN CNAME b.example.net.\n");
    refuses("www.example.test.", planfence_test::a_records({"192.0.2.2"}), {"old.example.test.: 2 CNAME records"});
  }
}

TEST_CASE("zonefile store: zones written in the normal cases load in kzonecheck", "[zonefile][rules][kzonecheck]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  write_text(file, read_text(file) + "mail.example.test. 300 IN MX 10 mx.example.net.\n"
                                     "_sip._tcp.example.test. 300 IN SRV 10 5 5060 sip.example.net.\n"
                                     "example.test. 300 IN MX 10 mx.example.net.\n");
  auto commit = [&](const std::string& name, const record_set& records) {
    const endpoint_handle h = store.resolve(name).value();
    const stamp now = store.read_stamp(h).value();
    auto done = store.commit(h, now, stamp_at(now.gen.value() + 1, 1), records);
    INFO(name << ": " << (done ? std::string("ok") : done.error().message()));
    REQUIRE(done);
  };
  commit("www.example.test.", cname_to("lb.example.net."));
  commit("api.example.test.", cname_to("www.example.test."));
  commit("mail.example.test.", planfence_test::a_records({"192.0.2.25"}));  // beside the MX
  commit("example.test.", planfence_test::a_records({"192.0.2.1"}));        // the apex, beside SOA, NS, MX
  commit("www.example.test.", planfence_test::a_records({"192.0.2.80"}));   // CNAME back to addresses
  commit("api.example.test.", cname_to("lb2.example.net."));
  REQUIRE(store.raise_fence(fence_token{2}));
  INFO(read_text(file));
  check_servers_load(read_text(file), "example.test.");
}

TEST_CASE("format_zone refuses a plan whose zone DNS servers would refuse", "[export][rules]") {
  auto plan_with = [](const std::string& name, record_set records) {
    plan_builder builder{generation{4}, 1'761'200'000'000};
    REQUIRE(builder.set("www.example.test.", planfence_test::a_records({"192.0.2.1"})));
    REQUIRE(builder.set(name, std::move(records)));
    return std::move(builder).build().value();
  };
  zone_export_options options;
  options.zone = "example.test.";
  auto apex = format_zone(plan_with("example.test.", cname_to("lb.example.net.")), options);
  REQUIRE_FALSE(apex);
  CHECK(apex.error().code == errc::invalid_plan);
  CHECK(contains(apex.error().detail, "zone example.test. of generation 4: example.test.: a CNAME beside SOA data"));
  auto server = format_zone(plan_with("ns1.example.test.", cname_to("lb.example.net.")), options);
  REQUIRE_FALSE(server);
  CHECK(contains(server.error().detail, "ns1.example.test.: a CNAME beside A data"));
  // A CNAME endpoint elsewhere exports.
  CHECK(format_zone(plan_with("api.example.test.", cname_to("lb.example.net.")), options));
}
