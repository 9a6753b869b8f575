// The zone-file store's apply marks (change_following_store, include/planfence/store.hpp): the
// record `_apply._planfence.<home zone> 0 IN TXT "begun=B applied=A"` (docs/zone-layout.md).
//  - a fresh store reads none; begin_apply then finish_apply write exactly one marks record with
//    the layout's text, one rewrite each (serial advanced), and the zone still loads in kzonecheck
//    and named-checkzone;
//  - begin_apply with stale expected marks (begun or applied) is a conflict, a token below the floor
//    (the zone's record or planfence.floor, as raise_fence leaves them) is fenced: the file
//    unchanged byte for byte;
//  - finish_apply is idempotent (no rewrite) and takes the maximum;
//  - the marks survive reopening, and commits, raise_fence and the apex endpoint's commit keep them;
//    the marks owner is never an endpoint (endpoint_names, inspect, resolve);
//  - a malformed, out-of-range or doubled marks record is a parse_error naming the file, the line
//    and the owner, and nothing is written over it;
//  - live_generations maps stamps below A to A and includes A and B;
//  - in a multi-zone store the marks land in the home zone only, and a new zone that becomes the
//    home zone makes them read as none;
//  - threads racing begin_apply from the marks they read: one winner per value (the lock).
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <thread>

#include "zonefile_fixture.hpp"

using namespace planfence;
using namespace planfence_zonefile_test;

namespace {

apply_marks marks_of(std::uint64_t begun, std::uint64_t applied) { return apply_marks{generation{begun}, generation{applied}, 0}; }

/// How many lines of `text` hold `part`.
std::size_t lines_with(const std::string& text, const std::string& part) {
  std::size_t count = 0, start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (text.substr(start, end - start).find(part) != std::string::npos) ++count;
    start = end + 1;
  }
  return count;
}

/// The records of the zone file `text` at the marks owner of `zone` (its data as written).
std::vector<std::string> marks_records(const std::string& text, const std::string& zone = "example.test.") {
  auto records = parse_zone(text, zone_parse_options{zone});
  REQUIRE(records);
  std::vector<std::string> out;
  for (const zone_record& r : *records) {
    if (r.owner == dns::marks_owner(zone)) out.push_back(r.type + " " + r.rdata);
  }
  return out;
}

std::uint32_t serial_of(const std::string& text, const std::string& zone = "example.test.") {
  auto records = parse_zone(text, zone_parse_options{zone});
  REQUIRE(records);
  auto contents = decode_zone(*records, zone);
  REQUIRE(contents);
  return contents->soa.serial.value;
}

void commit_at(zonefile_store& store, const std::string& name, std::uint64_t gen, std::uint64_t fence) {
  const endpoint_handle h = store.resolve(name).value();
  auto done = store.commit(h, store.read_stamp(h).value(), stamp_at(gen, fence), planfence_test::a_records({planfence_test::address_of(gen)}));
  INFO(name << ": " << (done ? std::string("ok") : done.error().message()));
  REQUIRE(done);
}

const std::string zone_head =
    "$ORIGIN example.test.\n@ 3600 IN SOA ns1 hostmaster 5 3600 600 604800 60\n@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\n"
    "www 60 IN A 192.0.2.1\n";  // lines 1 to 5

}  // namespace

TEST_CASE("zonefile marks: a fresh store reads none", "[zonefile][marks]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  CHECK(store.read_marks().value() == apply_marks{});
  CHECK(store.read_marks().value() == marks_of(0, 0));
  CHECK(store.home_zone().value() == "example.test.");
  CHECK(store.live_generations().value().empty());
  CHECK(marks_records(read_text(store.zone_file("example.test."))).empty());  // reading writes nothing

  // A directory without a zone: nothing was applied, and nowhere to begin.
  temp_directory empty;
  zonefile_store bare = zonefile_store::open(empty.path()).value();
  CHECK(bare.read_marks().value() == apply_marks{});
  auto begun = bare.begin_apply(apply_marks{}, generation{1}, fence_token{0});
  REQUIRE_FALSE(begun);
  CHECK(begun.error().code == errc::store_unavailable);
  CHECK(contains(begun.error().detail, "holds no zone file"));
}

TEST_CASE("zonefile marks: begin then finish, one marks record in the home zone, and the zone still loads", "[zonefile][marks][kzonecheck]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  commit_at(store, "www.example.test.", 1, 1);
  commit_at(store, "example.test.", 1, 1);  // the apex: its stamp owner is the marks owner's parent
  const std::filesystem::path file = store.zone_file("example.test.");
  const std::uint32_t serial = serial_of(read_text(file));

  auto begun = store.begin_apply(store.read_marks().value(), generation{3}, fence_token{1});
  REQUIRE(begun);
  CHECK(*begun == marks_of(3, 0));
  CHECK(store.read_marks().value() == marks_of(3, 0));
  std::string text = read_text(file);
  INFO(text);
  CHECK(marks_records(text) == std::vector<std::string>{"TXT \"begun=3 applied=0\""});
  CHECK(lines_with(text, "_apply._planfence.example.test. 0 IN TXT \"begun=3 applied=0\"") == 1);
  CHECK(serial_of(text) == serial + 1);  // one rewrite

  auto finished = store.finish_apply(generation{3}, fence_token{1});
  REQUIRE(finished);
  CHECK(*finished == marks_of(3, 3));
  CHECK(store.read_marks().value() == marks_of(3, 3));
  text = read_text(file);
  CHECK(marks_records(text) == std::vector<std::string>{"TXT \"begun=3 applied=3\""});
  CHECK(lines_with(text, "_apply._planfence.example.test. 0 IN TXT \"begun=3 applied=3\"") == 1);
  CHECK(serial_of(text) == serial + 2);

  // The marks owner is planfence's, never an endpoint.
  CHECK(store.endpoint_names().value() == std::vector<std::string>{"example.test.", "www.example.test."});
  CHECK(store.resolve("_apply._planfence.example.test.").error().code == errc::invalid_name);
  auto records = parse_zone(text, zone_parse_options{"example.test."}).value();
  auto contents = decode_zone(records, "example.test.").value();
  CHECK(contents.marks == marks_of(3, 3));
  CHECK(contents.marks_line > 0);
  for (const zone_endpoint& e : contents.endpoints) CHECK_FALSE(dns::has_reserved_label(e.name));
  const std::vector<endpoint_handle> handles{store.resolve("example.test.").value(), store.resolve("www.example.test.").value()};
  std::vector<endpoint_state> seen(handles.size());
  REQUIRE(store.inspect(handles, seen));
  CHECK(seen[0].st.gen == generation{1});
  CHECK(seen[0].records.size() == 1);

  // A DNS server loads the zone with its marks.
  check_servers_load(text, "example.test.");
}

TEST_CASE("zonefile marks: begin_apply with stale expected marks is a conflict, nothing written", "[zonefile][marks]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  REQUIRE(store.begin_apply(apply_marks{}, generation{3}, fence_token{0}));
  const std::filesystem::path file = store.zone_file("example.test.");
  const std::string before = read_text(file);

  auto stale_begun = store.begin_apply(apply_marks{}, generation{4}, fence_token{0});  // begun moved to 3
  REQUIRE_FALSE(stale_begun);
  INFO(stale_begun.error().message());
  CHECK(stale_begun.error().code == errc::conflict);
  CHECK(contains(stale_begun.error().detail, "\"begun=3 applied=0\""));
  CHECK(contains(stale_begun.error().detail, file.string()));
  CHECK(read_text(file) == before);

  auto stale_applied = store.begin_apply(marks_of(3, 3), generation{4}, fence_token{0});  // begun right, applied not
  REQUIRE_FALSE(stale_applied);
  CHECK(stale_applied.error().code == errc::conflict);
  CHECK(read_text(file) == before);

  // Joining: the expected marks as read, a target above them, succeeds.
  CHECK(store.begin_apply(store.read_marks().value(), generation{4}, fence_token{0}).value() == marks_of(4, 0));
}

TEST_CASE("zonefile marks: a token below the floor is fenced, nothing written", "[zonefile][marks][S2]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  REQUIRE(store.begin_apply(apply_marks{}, generation{2}, fence_token{3}));
  REQUIRE(store.raise_fence(fence_token{5}));
  const std::filesystem::path file = store.zone_file("example.test.");

  SECTION("after raise_fence returned") {
    const std::string before = read_text(file);
    auto begun = store.begin_apply(marks_of(2, 0), generation{4}, fence_token{4});
    REQUIRE_FALSE(begun);
    INFO(begun.error().message());
    CHECK(begun.error().code == errc::fenced);
    CHECK(contains(begun.error().detail, "the fence floor is 5"));
    CHECK(read_text(file) == before);
    auto finished = store.finish_apply(generation{2}, fence_token{4});
    REQUIRE_FALSE(finished);
    CHECK(finished.error().code == errc::fenced);
    CHECK(read_text(file) == before);
    // Stale expected marks and a low token: fenced first (the token decides before the marks).
    CHECK(store.begin_apply(apply_marks{}, generation{4}, fence_token{4}).error().code == errc::fenced);
    // The new holder's token passes.
    CHECK(store.begin_apply(marks_of(2, 0), generation{4}, fence_token{5}).value() == marks_of(4, 0));
    CHECK(store.finish_apply(generation{4}, fence_token{5}).value() == marks_of(4, 4));
  }
  SECTION("planfence.floor alone (a raise that wrote it and not yet the zone) fences too") {
    write_text(dir.path() / "planfence.floor", "floor=9\n");
    const std::string before = read_text(file);
    CHECK(store.begin_apply(marks_of(2, 0), generation{4}, fence_token{8}).error().code == errc::fenced);
    CHECK(store.finish_apply(generation{2}, fence_token{8}).error().code == errc::fenced);
    CHECK(read_text(file) == before);
    CHECK(store.finish_apply(generation{2}, fence_token{9}).value() == marks_of(2, 2));
  }
}

TEST_CASE("zonefile marks: finish_apply is idempotent and takes the maximum", "[zonefile][marks]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");

  CHECK(store.finish_apply(generation{5}, fence_token{0}).value() == marks_of(5, 5));  // begun follows
  const std::string at5 = read_text(file);
  CHECK(store.finish_apply(generation{5}, fence_token{0}).value() == marks_of(5, 5));
  CHECK(read_text(file) == at5);  // nothing changed: no rewrite (the serial did not move)
  CHECK(store.finish_apply(generation{3}, fence_token{0}).value() == marks_of(5, 5));  // never lowered
  CHECK(read_text(file) == at5);
  CHECK(store.finish_apply(generation{7}, fence_token{0}).value() == marks_of(7, 7));
  CHECK(serial_of(read_text(file)) == serial_of(at5) + 1);

  // An apply of 9 has begun; one of 8 finishes: applied 8, begun stays 9.
  REQUIRE(store.begin_apply(marks_of(7, 7), generation{9}, fence_token{0}));
  CHECK(store.finish_apply(generation{8}, fence_token{0}).value() == marks_of(9, 8));
  CHECK(store.finish_apply(generation{9}, fence_token{0}).value() == marks_of(9, 9));
  CHECK(store.read_marks().value() == marks_of(9, 9));
  CHECK(marks_records(read_text(file)) == std::vector<std::string>{"TXT \"begun=9 applied=9\""});

  // Beyond generation_max: refused, nothing written (it could not be read back).
  const std::string before = read_text(file);
  auto huge = store.finish_apply(generation{generation_max.value() + 1}, fence_token{0});
  REQUIRE_FALSE(huge);
  CHECK(huge.error().code == errc::capacity_exceeded);
  CHECK(read_text(file) == before);
}

TEST_CASE("zonefile marks: the marks survive reopening, commits and raise_fence", "[zonefile][marks]") {
  temp_directory dir;
  {
    zonefile_store store = open_with_zone(dir.path());
    REQUIRE(store.begin_apply(apply_marks{}, generation{4}, fence_token{1}));
    REQUIRE(store.finish_apply(generation{4}, fence_token{1}));
    REQUIRE(store.begin_apply(marks_of(4, 4), generation{6}, fence_token{1}));
    commit_at(store, "www.example.test.", 6, 1);
    commit_at(store, "example.test.", 6, 1);  // the apex endpoint's owners replace its stamp, not the marks
    REQUIRE(store.raise_fence(fence_token{2}));
    CHECK(store.read_marks().value() == marks_of(6, 4));
  }
  zonefile_store reopened = zonefile_store::open(dir.path()).value();
  CHECK(reopened.read_marks().value() == marks_of(6, 4));
  CHECK(marks_records(read_text(reopened.zone_file("example.test."))) == std::vector<std::string>{"TXT \"begun=6 applied=4\""});
  CHECK(reopened.finish_apply(generation{6}, fence_token{2}).value() == marks_of(6, 6));
}

TEST_CASE("zonefile marks: a malformed marks record is an error naming the file, line and owner", "[zonefile][marks][range]") {
  struct bad_case {
    std::string lines;  // from line 6
    std::uint32_t line;
    std::string says;
  };
  const bad_case cases[] = {
      {"_apply._planfence 0 IN TXT \"begun=x applied=1\"\n", 6, "malformed apply marks"},
      {"_apply._planfence 0 IN TXT \"applied=1 begun=1\"\n", 6, "malformed apply marks"},
      {"_apply._planfence 0 IN TXT \"begun=1099511627776 applied=0\"\n", 6, "generation 1099511627776 is out of range"},
      {"_apply._planfence 0 IN TXT \"begun=3 applied=18446744073709551616\"\n", 6, "is out of range"},
      {"_apply._planfence 0 IN TXT \"begun=1 applied=2\"\n", 6, "applied is above begun"},
      {"_apply._planfence 0 IN TXT \"begun=1 applied=0\"\n_apply._planfence 0 IN TXT \"begun=2 applied=0\"\n", 7,
       "a second apply marks record"},
      {"_apply._planfence 0 IN TXT \"begun=1\" \"applied=0\"\n", 6, "several strings"},
      {"_apply._planfence 0 IN A 192.0.2.1\n", 6, "under _planfence"},
  };
  for (const bad_case& c : cases) {
    INFO(c.lines);
    temp_directory dir;
    const std::filesystem::path file = dir.path() / "example.test.zone";
    write_text(file, zone_head + "_fence._planfence 0 IN TXT \"floor=0\"\n" + "_planfence.www 0 IN TXT \"gen=1 fence=0\"\n");
    zonefile_store store = zonefile_store::open(dir.path()).value();
    const std::string text = zone_head + c.lines + "_planfence.www 0 IN TXT \"gen=1 fence=0\"\n";
    write_text(file, text);

    auto seen = store.read_marks();
    REQUIRE_FALSE(seen);
    INFO(seen.error().message());
    CHECK(seen.error().code == errc::parse_error);
    CHECK(seen.error().line == c.line);
    CHECK(contains(seen.error().detail, file.string()));
    CHECK(contains(seen.error().detail, "_apply._planfence.example.test."));
    CHECK(contains(seen.error().detail, c.says));
    // Nothing is written over it, and collection is not fed a guess.
    auto begun = store.begin_apply(apply_marks{}, generation{2}, fence_token{0});
    REQUIRE_FALSE(begun);
    CHECK(begun.error().code == errc::parse_error);
    CHECK(begun.error().line == c.line);
    CHECK(store.finish_apply(generation{2}, fence_token{0}).error().code == errc::parse_error);
    CHECK(read_text(file) == text);
    CHECK(store.live_generations().error().code == errc::store_unavailable);
    // Nor does the store open it.
    auto reopened = zonefile_store::open(dir.path());
    REQUIRE_FALSE(reopened);
    CHECK(reopened.error().code == errc::parse_error);
  }
  // The largest marks are accepted; a marks owner other than the zone's is not planfence's.
  temp_directory dir;
  write_text(dir.path() / "example.test.zone", zone_head + "_apply._planfence 0 IN TXT \"begun=1099511627775 applied=1099511627775\"\n");
  CHECK(zonefile_store::open(dir.path()).value().read_marks().value() == marks_of(generation_max.value(), generation_max.value()));
  write_text(dir.path() / "example.test.zone", zone_head + "_apply._planfence.www 0 IN TXT \"begun=1 applied=1\"\n");
  auto elsewhere = zonefile_store::open(dir.path());
  REQUIRE_FALSE(elsewhere);
  CHECK(elsewhere.error().code == errc::parse_error);
  CHECK(contains(elsewhere.error().detail, "unexpected name _apply._planfence.www.example.test."));
}

TEST_CASE("zonefile marks: live_generations maps stamps below A to A and includes A and B", "[zonefile][marks][S3]") {
  temp_directory dir;
  zonefile_store store = open_with_zones(dir.path(), {"b.test.", "a.test."});  // home: a.test.
  commit_at(store, "x.a.test.", 1, 1);
  commit_at(store, "y.b.test.", 2, 1);  // another zone than the marks'
  commit_at(store, "z.b.test.", 5, 1);
  commit_at(store, "w.a.test.", 7, 1);
  CHECK(store.live_generations().value() == std::vector<generation>{generation{1}, generation{2}, generation{5}, generation{7}});

  REQUIRE(store.begin_apply(apply_marks{}, generation{3}, fence_token{1}));
  // Begun 3: the diff's input, live although no stamp carries it; applied none maps nothing.
  CHECK(store.live_generations().value() == std::vector<generation>{generation{1}, generation{2}, generation{3}, generation{5}, generation{7}});
  REQUIRE(store.finish_apply(generation{3}, fence_token{1}));
  // x (1) and y (2) serve plan 3's records now: 1 and 2 are not live.
  CHECK(store.live_generations().value() == std::vector<generation>{generation{3}, generation{5}, generation{7}});
  REQUIRE(store.begin_apply(marks_of(3, 3), generation{9}, fence_token{1}));
  REQUIRE(store.finish_apply(generation{6}, fence_token{1}));  // A = 6 (an apply of 6 ends), B = 9
  CHECK(store.read_marks().value() == marks_of(9, 6));
  CHECK(store.live_generations().value() == std::vector<generation>{generation{6}, generation{7}, generation{9}});
  // Marks in another zone than the home zone are nobody's (written here by hand): never read.
  const std::filesystem::path other = store.zone_file("b.test.");
  write_text(other, read_text(other) + "_apply._planfence.b.test. 0 IN TXT \"begun=20 applied=20\"\n");
  CHECK(store.read_marks().value() == marks_of(9, 6));
  CHECK(store.live_generations().value() == std::vector<generation>{generation{6}, generation{7}, generation{9}});

  // No stamp at all: A and B alone.
  temp_directory bare;
  zonefile_store empty = open_with_zone(bare.path());
  REQUIRE(empty.begin_apply(apply_marks{}, generation{4}, fence_token{0}));
  REQUIRE(empty.finish_apply(generation{2}, fence_token{0}));
  CHECK(empty.read_marks().value() == marks_of(4, 2));
  CHECK(empty.live_generations().value() == std::vector<generation>{generation{2}, generation{4}});
}

TEST_CASE("zonefile marks: in a multi-zone store the marks land in the home zone only", "[zonefile][marks]") {
  temp_directory dir;
  zonefile_store store = open_with_zones(dir.path(), {"m.test.", "c.test.", "sub.c.test.", "x.test."});
  CHECK(store.home_zone().value() == "c.test.");  // the smallest name (dns::home_zone)
  std::map<std::string, std::string> before;
  for (const std::string& z : store.zones()) before[z] = read_text(store.zone_file(z));

  REQUIRE(store.begin_apply(apply_marks{}, generation{2}, fence_token{0}));
  REQUIRE(store.finish_apply(generation{2}, fence_token{0}));
  for (const std::string& z : store.zones()) {
    INFO(z);
    const std::string text = read_text(store.zone_file(z));
    if (z == "c.test.") {
      CHECK(lines_with(text, "_apply._planfence.c.test. 0 IN TXT \"begun=2 applied=2\"") == 1);
      CHECK(marks_records(text, z) == std::vector<std::string>{"TXT \"begun=2 applied=2\""});
    } else {
      CHECK(text == before[z]);  // not rewritten
    }
  }
  // Another store object on the directory reads the same marks.
  CHECK(zonefile_store::open(dir.path()).value().read_marks().value() == marks_of(2, 2));

  // A zone that sorts first becomes the home zone: the marks read as never written (the next
  // apply writes every endpoint), and the next marks land there. Their first write removes the
  // former home zone's record (nothing else of it changes).
  REQUIRE(zonefile_store::create_zone(dir.path(), "a.test."));
  CHECK(store.home_zone().value() == "a.test.");
  CHECK(store.read_marks().value() == apply_marks{});
  CHECK(store.begin_apply(marks_of(2, 2), generation{3}, fence_token{0}).error().code == errc::conflict);
  CHECK(store.begin_apply(apply_marks{}, generation{3}, fence_token{0}).value() == marks_of(3, 0));
  CHECK(lines_with(read_text(store.zone_file("a.test.")), "_apply._planfence.a.test. 0 IN TXT \"begun=3 applied=0\"") == 1);
  const std::string former = read_text(store.zone_file("c.test."));
  CHECK(marks_records(former, "c.test.").empty());
  CHECK(serial_of(former, "c.test.") == serial_of(before["c.test."], "c.test.") + 3);  // begin, finish, removal
  for (const char* z : {"m.test.", "sub.c.test.", "x.test."}) CHECK(read_text(store.zone_file(z)) == before[z]);
  commit_at(store, "www.c.test.", 1, 0);
  CHECK(store.live_generations().value() == std::vector<generation>{generation{1}, generation{3}});
  CHECK(store.finish_apply(generation{3}, fence_token{0}).value() == marks_of(3, 3));
  CHECK(marks_records(read_text(store.zone_file("c.test.")), "c.test.").empty());

  // The home zone moves back (a.test. taken out of the directory): c.test.'s old marks (begun 2,
  // below the apply of 3 since) are not read again; the marks read as never written.
  std::filesystem::remove(store.zone_file("a.test."));
  zonefile_store back = zonefile_store::open(dir.path()).value();
  CHECK(back.home_zone().value() == "c.test.");
  CHECK(back.read_marks().value() == apply_marks{});
  CHECK(back.live_generations().value() == std::vector<generation>{generation{1}});
}

TEST_CASE("zonefile marks: threads racing begin_apply from what they read, one winner per value", "[zonefile][marks][concurrent]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  constexpr int threads = 4;
  constexpr int tries = 12;
  std::atomic<int> wins{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < tries; ++i) {
        auto seen = store.read_marks();
        if (!seen) {
          failed = true;
          return;
        }
        auto begun = store.begin_apply(*seen, generation{seen->begun.value() + 1}, fence_token{0});
        if (begun) {
          ++wins;
        } else if (begun.error().code != errc::conflict) {
          failed = true;
          return;
        }
      }
    });
  }
  for (std::thread& t : pool) t.join();
  CHECK_FALSE(failed.load());
  // Each success raised begun by exactly one from the value it expected: no two won on one value.
  CHECK(store.read_marks().value().begun == generation{static_cast<std::uint64_t>(wins.load())});
  CHECK(wins.load() >= tries);
}
