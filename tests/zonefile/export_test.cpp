// format_zone (include/planfence/zonefile/zone.hpp): a plan exported as a zone file is one that a real
// DNS server loads (kzonecheck, from Knot, accepts it), and reading it back gives the plan's
// records exactly, weights included, with a stamp naming the plan's generation on every endpoint.
// The zone files the store writes pass kzonecheck too, and so do the fuzz seed corpus's zones.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "zonefile_fixture.hpp"

using namespace planfence;
using planfence_zonefile_test::kzonecheck;
using planfence_zonefile_test::read_text;
using planfence_zonefile_test::temp_directory;
using planfence_zonefile_test::write_text;

namespace {

plan weighted_plan(std::uint64_t gen) {
  plan_builder builder{generation{gen}, 1'761'200'000'000};
  auto set = [&](std::string name, std::vector<record> records, bool empty = false) {
    REQUIRE(builder.set(name, record_set::make(std::move(records), empty).value()));
  };
  set("db.example.test.", {make_record(record_type::a, 60, "192.0.2.10", 10).value(),
                           make_record(record_type::a, 60, "192.0.2.11", 20).value(),
                           make_record(record_type::aaaa, 60, "2001:db8::10", 10).value()});
  set("example.test.", {make_record(record_type::a, 300, "192.0.2.1").value()});
  set("www.example.test.", {make_record(record_type::cname, 30, "lb1.example.net.", 1).value(),
                            make_record(record_type::cname, 30, "lb2.example.net.", 3).value()});
  set("txt.example.test.", {make_record(record_type::txt, 60, "\"v=spf1 -all\"").value(),
                            make_record(record_type::txt, 60, "\"quote \\\" and \\\\ and \\255\" \"two\"").value()});
  set("old.example.test.", {}, true);
  return std::move(builder).build().value();
}

void check_loads(const std::string& text, const std::string& zone) {
  auto [status, output] = kzonecheck(text, zone);
  if (status == -1) {
    WARN("not checked with kzonecheck: " << output);
    return;
  }
  INFO(text);
  INFO(output);
  CHECK(status == 0);
}

}  // namespace

TEST_CASE("export: format_zone then parse gives the plan's records, weights and stamps", "[export][round-trip]") {
  const plan p = weighted_plan(42);
  zone_export_options options;
  options.zone = "Example.Test";
  options.fence = fence_token{5};
  const std::string text = format_zone(p, options).value();
  INFO(text);
  auto records = parse_zone(text);  // the text carries its own $ORIGIN
  REQUIRE(records);
  auto contents = decode_zone(*records, "example.test.");
  REQUIRE(contents);
  CHECK(contents->soa.serial == soa_serial(generation{42}));
  std::size_t checked = 0;
  for (const auto& e : p.endpoints()) {
    auto found = std::find_if(contents->endpoints.begin(), contents->endpoints.end(),
                              [&](const zone_endpoint& z) { return z.name == e->name; });
    REQUIRE(found != contents->endpoints.end());
    CHECK(found->records == std::vector<record>(e->records.records().begin(), e->records.records().end()));
    REQUIRE(found->stamped.has_value());
    CHECK(*found->stamped == stamp{generation{42}, fence_token{5}, 0});
    ++checked;
  }
  CHECK(checked == p.size());
  CHECK(text.find("_planfence.db.example.test. 0 IN TXT \"gen=42 fence=5\"") != std::string::npos);
  CHECK(text.find("_weight._planfence.db.example.test. 60 IN TXT \"A 192.0.2.10 10\"") != std::string::npos);
  CHECK(text.find("plan digest sha256:" + p.digest_hex()) != std::string::npos);
  // Writing the parsed records again gives the same records (format_records is a fixed point).
  CHECK(parse_zone(format_records(*records)).value() == *records);
}

TEST_CASE("export: kzonecheck accepts exported zones", "[export][kzonecheck]") {
  const plan p = weighted_plan(7);
  zone_export_options options;
  options.zone = "example.test.";
  check_loads(format_zone(p, options).value(), "example.test.");

  // Real name servers outside the zone need no glue; in-zone ones get the glue given.
  options.soa.name_servers = {"ns1.example.net.", "ns2"};
  options.soa.glue = {{"ns2", "2001:db8::53"}};
  options.soa.rname = "dns-admin.example.net.";
  const std::string text = format_zone(p, options).value();
  CHECK(text.find("ns2.example.test. 3600 IN AAAA 2001:db8::53") != std::string::npos);
  check_loads(text, "example.test.");
}

TEST_CASE("export: the SOA serial maps the generation under RFC 1982", "[export]") {
  const plan p = weighted_plan(7);
  zone_export_options options;
  options.zone = "example.test.";
  options.serial_base = 4294967295U;
  auto records = zone_records_of(p, options).value();
  CHECK(parse_soa(records[0].rdata).value().serial == soa_serial_number{6});  // 2^32 - 1 + 7 mod 2^32
  CHECK(serial_compare(soa_serial_number{6}, soa_serial_number{4294967295U}) == 1);
}

TEST_CASE("export: endpoints outside the zone are refused, or left out when asked", "[export]") {
  const plan p = weighted_plan(3);
  zone_export_options options;
  options.zone = "db.example.test.";
  auto refused = format_zone(p, options);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::invalid_plan);
  CHECK(refused.error().detail.find("is not inside the zone db.example.test.") != std::string::npos);
  options.skip_outside = true;
  const std::string text = format_zone(p, options).value();
  CHECK(text.find("www.example.test.") == std::string::npos);
  CHECK(text.find("db.example.test. 60 IN A 192.0.2.10") != std::string::npos);
  check_loads(text, "db.example.test.");
  options.zone = "bad..zone";
  CHECK(format_zone(p, options).error().code == errc::invalid_name);
}

TEST_CASE("export: zone files written by the store load in kzonecheck", "[export][kzonecheck][zonefile]") {
  temp_directory dir;
  zonefile_store store = planfence_zonefile_test::open_with_zone(dir.path());
  const plan p = weighted_plan(9);
  for (const auto& e : p.endpoints()) {
    const endpoint_handle h = store.resolve(e->name).value();
    REQUIRE(store.commit(h, store.read_stamp(h).value(), stamp{generation{9}, fence_token{1}, 0}, e->records));
  }
  REQUIRE(store.raise_fence(fence_token{2}));
  check_loads(read_text(store.zone_file("example.test.")), "example.test.");
}

TEST_CASE("export: the fuzz seed corpus is made of zones that parse, round-trip and load", "[export][kzonecheck]") {
  std::size_t zones = 0;
  for (const auto& entry : std::filesystem::directory_iterator(PLANFENCE_ZONE_CORPUS)) {
    const std::string file = entry.path().filename().string();
    if (!file.ends_with(".zone")) continue;
    const std::string zone = file.substr(0, file.size() - 5) + ".";
    const std::string text = read_text(entry.path());
    INFO(file);
    auto records = parse_zone(text, zone_parse_options{zone});
    if (!records) FAIL(records.error().message());
    CHECK(parse_zone(format_records(*records)).value() == *records);
    CHECK(decode_zone(*records, zone).has_value());
    check_loads(text, zone);
    ++zones;
  }
  CHECK(zones >= 3);
}
