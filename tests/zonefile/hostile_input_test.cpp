// Hostile input to the zone-file store (include/planfence/zonefile/store.hpp) and the zone
// decoder (include/planfence/zonefile/zone.hpp) is refused with an error that names it, never taken in
// and never waited on:
//  - a stamp whose generation is above generation_max (2^40 - 1) or whose fence is above fence_max
//    (2^24 - 1), and a floor above fence_max, in a zone file or in planfence.floor: refused with
//    the file, line, owner, value and range, and never written by a commit or format_zone
//    (before, such a stamp wedged the endpoint for good: every later commit was "stale"; such a
//    fence raised the store's floor past every token);
//  - a FIFO in place of a zone file, planfence.floor, a lock file or the temp file: every
//    operation returns (each one runs in a forked child under alarm(), so a regression that blocks
//    fails the test instead of hanging it), the FIFO is refused by name, and a FIFO planted as the
//    temp file is removed, never written through;
//  - a link to /dev/zero in place of a zone file is never opened; planfence.floor above 64 bytes
//    and a zone file above zone_bytes_max are refused by name.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "zonefile_fixture.hpp"

using namespace planfence;
using namespace planfence_zonefile_test;

namespace {

const std::string zone_head =
    "$ORIGIN example.test.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ 3600 IN NS ns1\nns1 3600 IN A 127.0.0.1\n"
    "www 60 IN A 192.0.2.1\n";

/// Runs `body` in a forked child under alarm(`seconds`). Returns the child's exit status (what
/// `body` returned), or -SIGNAL if it was killed (SIGALRM: it blocked).
int bounded(const std::function<int()>& body, unsigned seconds = 5) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(seconds);
    ::_exit(body());
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return WEXITSTATUS(status);
}

/// 0 when `r` is an error whose message contains every part; 1 when it succeeded; 2 otherwise.
template <typename T>
int refused_saying(const result<T>& r, std::initializer_list<std::string> parts) {
  if (r) return 1;
  const std::string message = r.error().message();
  for (const std::string& part : parts) {
    if (!contains(message, part)) {
      std::fprintf(stderr, "error without '%s': %s\n", part.c_str(), message.c_str());
      return 2;
    }
  }
  return 0;
}

}  // namespace

TEST_CASE("decode_zone refuses stamps and floors outside the ranges planfence represents", "[zonefile][range]") {
  struct bad_case {
    std::string line;
    std::string says;
  };
  const bad_case cases[] = {
      {"_planfence.www 0 IN TXT \"gen=18446744073709551615 fence=1\"", "generation 18446744073709551615 is out of range: expected 1 to 1099511627775"},
      {"_planfence.www 0 IN TXT \"gen=1099511627776 fence=1\"", "generation 1099511627776 is out of range"},
      {"_planfence.www 0 IN TXT \"gen=3 fence=16777216\"", "fence 16777216 is out of range: expected 0 to 16777215"},
      {"_fence._planfence 0 IN TXT \"floor=16777216\"", "floor 16777216 is out of range: expected 0 to 16777215"},
      {"_fence._planfence 0 IN TXT \"floor=18446744073709551615\"", "floor 18446744073709551615 is out of range"},
  };
  for (const bad_case& c : cases) {
    INFO(c.line);
    auto records = parse_zone(zone_head + c.line + "\n", zone_parse_options{"example.test."});
    REQUIRE(records);
    auto decoded = decode_zone(*records, "example.test.");
    REQUIRE_FALSE(decoded);
    INFO(decoded.error().message());
    CHECK(decoded.error().code == errc::parse_error);
    CHECK(decoded.error().line == 6);
    CHECK(contains(decoded.error().detail, c.says));
    CHECK((contains(decoded.error().detail, " at _planfence.www.example.test. ") ||
           contains(decoded.error().detail, " at _fence._planfence.example.test. ")));  // the owner
  }
  // The largest values are accepted.
  auto records = parse_zone(zone_head + "_planfence.www 0 IN TXT \"gen=1099511627775 fence=16777215\"\n"
                                        "_fence._planfence 0 IN TXT \"floor=16777215\"\n",
                            zone_parse_options{"example.test."});
  REQUIRE(records);
  auto decoded = decode_zone(*records, "example.test.");
  REQUIRE(decoded);
  CHECK(decoded->floor == fence_max);
  CHECK(decoded->endpoints.back().stamped == stamp_at(generation_max.value(), fence_max.value()));
  CHECK_FALSE(dns::parse_stamp("gen=1099511627776 fence=1").has_value());
  CHECK_FALSE(dns::parse_stamp("gen=1 fence=16777216").has_value());
}

TEST_CASE("zonefile store: an out-of-range stamp or floor is refused, never taken as the endpoint's or store's", "[zonefile][range]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const endpoint_handle www = store.resolve("www.example.test.").value();
  REQUIRE(store.commit(www, store.read_stamp(www).value(), stamp_at(1, 1), planfence_test::a_records({"192.0.2.1"})));
  const std::filesystem::path file = store.zone_file("example.test.");
  const std::string good = read_text(file);

  SECTION("a stamp generation of 2^64 - 1 does not wedge the endpoint") {
    std::string text = good;
    const auto at = text.find("gen=1 fence=1");
    REQUIRE(at != std::string::npos);
    text.replace(at, 13, "gen=18446744073709551615 fence=1");
    write_text(file, text);
    auto seen = store.read_stamp(www);
    REQUIRE_FALSE(seen);
    INFO(seen.error().message());
    CHECK(seen.error().code == errc::store_unavailable);
    CHECK(contains(seen.error().detail, file.string()));
    CHECK(contains(seen.error().detail, "_planfence.www.example.test."));
    CHECK(contains(seen.error().detail, "18446744073709551615 is out of range: expected 1 to 1099511627775"));
    CHECK(seen.error().line > 0);
    auto applied = store.commit(www, stamp_at(1, 1), stamp_at(2, 1), planfence_test::a_records({"192.0.2.2"}));
    REQUIRE_FALSE(applied);
    CHECK(applied.error().code == errc::store_unavailable);  // not "stale"
    CHECK(read_text(file) == text);
  }
  SECTION("a stamp fence of 2^24 is not taken as the store's fence") {
    std::string text = good;
    text.replace(text.find("gen=1 fence=1"), 13, "gen=1 fence=16777216");
    write_text(file, text);
    auto seen = store.read_stamp(www);
    REQUIRE_FALSE(seen);
    CHECK(contains(seen.error().detail, "fence 16777216 is out of range: expected 0 to 16777215"));
    CHECK_FALSE(store.fence_floor());
  }
  SECTION("a floor of 2^24 in planfence.floor") {
    write_text(dir.path() / "planfence.floor", "floor=16777216\n");
    auto floor = store.fence_floor();
    REQUIRE_FALSE(floor);
    INFO(floor.error().message());
    CHECK(contains(floor.error().detail, (dir.path() / "planfence.floor").string()));
    CHECK(contains(floor.error().detail, "floor 16777216 is out of range: expected 0 to 16777215"));
    CHECK_FALSE(store.read_stamp(www));
    CHECK_FALSE(store.commit(www, stamp_at(1, 1), stamp_at(2, 1), planfence_test::a_records({"192.0.2.2"})));
    CHECK_FALSE(store.raise_fence(fence_token{2}));
    CHECK(read_text(file) == good);
  }
}

TEST_CASE("zonefile store and format_zone never write a stamp they would refuse to read", "[zonefile][range]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const endpoint_handle www = store.resolve("www.example.test.").value();
  const std::string before = read_text(store.zone_file("example.test."));
  for (const stamp& desired : {stamp_at(1, fence_max.value() + 1), stamp_at(generation_max.value() + 1, 1)}) {
    auto refused = store.commit(www, stamp{}, desired, planfence_test::a_records({"192.0.2.1"}));
    REQUIRE_FALSE(refused);
    INFO(refused.error().message());
    CHECK(refused.error().code == errc::capacity_exceeded);
    CHECK(contains(refused.error().detail, "is out of range"));
  }
  CHECK(read_text(store.zone_file("example.test.")) == before);
  CHECK(store.read_stamp(www).value() == stamp{});

  plan_builder builder{generation{3}, 1'761'200'000'000};
  REQUIRE(builder.set("www.example.test.", planfence_test::a_records({"192.0.2.1"})));
  const plan p = std::move(builder).build().value();
  zone_export_options options;
  options.zone = "example.test.";
  options.fence = fence_token{fence_max.value() + 1};
  auto exported = format_zone(p, options);
  REQUIRE_FALSE(exported);
  CHECK(exported.error().code == errc::capacity_exceeded);
  CHECK(contains(exported.error().detail, "zone_export_options::fence 16777216 is out of range"));
}

TEST_CASE("zonefile store: a FIFO in place of any file it reads or writes is refused, never blocked on", "[zonefile][fifo]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const endpoint_handle www = store.resolve("www.example.test.").value();
  REQUIRE(store.commit(www, store.read_stamp(www).value(), stamp_at(1, 1), planfence_test::a_records({"192.0.2.1"})));
  const std::filesystem::path file = store.zone_file("example.test.");
  const auto next = [&] { return store.commit(www, stamp_at(1, 1), stamp_at(2, 1), planfence_test::a_records({"192.0.2.2"})); };

  SECTION("the zone file") {
    std::filesystem::remove(file);
    REQUIRE(::mkfifo(file.c_str(), 0644) == 0);
    CHECK(bounded([&] { return refused_saying(store.read_stamp(www), {file.string(), "is a FIFO, not a regular file"}); }) == 0);
    CHECK(bounded([&] { return refused_saying(next(), {file.string(), "FIFO"}); }) == 0);
    CHECK(bounded([&] { return refused_saying(store.served(www), {"FIFO"}); }) == 0);
    CHECK(bounded([&] { return refused_saying(store.raise_fence(fence_token{3}), {"FIFO"}); }) == 0);
    CHECK(bounded([&] { return refused_saying(zonefile_store::open(dir.path()), {file.string(), "FIFO"}); }) == 0);
  }
  SECTION("a new file named like a zone") {
    const std::filesystem::path other = dir.path() / "other.test.zone";
    REQUIRE(::mkfifo(other.c_str(), 0644) == 0);
    CHECK(bounded([&] { return refused_saying(zonefile_store::open(dir.path()), {other.string(), "a FIFO, not a regular file"}); }) == 0);
    CHECK(bounded([&] { return refused_saying(store.resolve("www.other.test."), {other.string(), "FIFO"}); }) == 0);
  }
  SECTION("planfence.floor") {
    const std::filesystem::path floor = dir.path() / "planfence.floor";
    std::filesystem::remove(floor);
    REQUIRE(::mkfifo(floor.c_str(), 0644) == 0);
    CHECK(bounded([&] { return refused_saying(store.read_stamp(www), {floor.string(), "is a FIFO"}); }) == 0);
    CHECK(bounded([&] { return refused_saying(next(), {floor.string(), "FIFO"}); }) == 0);
    CHECK(bounded([&] { return refused_saying(store.fence_floor(), {floor.string(), "FIFO"}); }) == 0);
    CHECK(bounded([&] { return refused_saying(store.raise_fence(fence_token{3}), {floor.string(), "FIFO"}); }) == 0);
    CHECK(bounded([&] { return refused_saying(zonefile_store::create_zone(dir.path(), "new.test."), {"FIFO"}); }) == 0);
  }
  SECTION("the zone's lock file") {
    const std::filesystem::path lock = file.string() + ".lock";
    std::filesystem::remove(lock);
    REQUIRE(::mkfifo(lock.c_str(), 0644) == 0);
    CHECK(bounded([&] { return refused_saying(next(), {lock.string(), "the lock file is a FIFO"}); }) == 0);
  }
  SECTION("the directory lock file") {
    const std::filesystem::path lock = dir.path() / "planfence.lock";
    std::filesystem::remove(lock);
    REQUIRE(::mkfifo(lock.c_str(), 0644) == 0);
    CHECK(bounded([&] { return refused_saying(store.raise_fence(fence_token{3}), {lock.string(), "FIFO"}); }) == 0);
  }
  SECTION("a FIFO planted as the temp file is removed, not written through") {
    const std::filesystem::path temp = file.string() + ".tmp";
    REQUIRE(::mkfifo(temp.c_str(), 0644) == 0);
    CHECK(bounded([&] { return next() ? 0 : 1; }) == 0);
    // The child committed: the zone holds generation 2 and no temp file is left.
    CHECK(contains(read_text(file), "gen=2 fence=1"));
    CHECK_FALSE(std::filesystem::exists(std::filesystem::symlink_status(temp)));
  }
  SECTION("a symbolic link planted as the temp file is removed, its target untouched") {
    const std::filesystem::path temp = file.string() + ".tmp";
    const std::filesystem::path victim = dir.path() / "victim";
    write_text(victim, "keep me\n");
    std::filesystem::create_symlink(victim, temp);
    REQUIRE(next());
    CHECK(read_text(victim) == "keep me\n");
    CHECK(contains(read_text(file), "gen=2 fence=1"));
    CHECK_FALSE(std::filesystem::exists(std::filesystem::symlink_status(temp)));
  }
}

TEST_CASE("zonefile store: devices and oversize files are refused by name, within their bounds", "[zonefile][bounds]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const endpoint_handle www = store.resolve("www.example.test.").value();
  const std::filesystem::path file = store.zone_file("example.test.");
  const std::filesystem::path floor = dir.path() / "planfence.floor";

  SECTION("a zone file that is a link to /dev/zero is never opened") {
    std::filesystem::remove(file);
    std::filesystem::create_symlink("/dev/zero", file);
    auto refused = store.read_stamp(www);
    REQUIRE_FALSE(refused);
    CHECK(contains(refused.error().detail, file.string() + ": is a character device, not a regular file"));
    CHECK(contains(zonefile_store::open(dir.path()).error().detail, "a character device"));
  }
  SECTION("planfence.floor above its 64-byte bound") {
    write_text(floor, "floor=1" + std::string(100, ' ') + "\n");
    auto refused = store.fence_floor();
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::capacity_exceeded);
    CHECK(contains(refused.error().detail, floor.string() + ": larger than 64 bytes"));
  }
  SECTION("a zone file above zone_bytes_max") {
    zonefile_options small;
    small.zone_bytes_max = 256;
    write_text(file, read_text(file) + std::string(300, ';') + "\n");
    auto refused = zonefile_store::open(dir.path(), small);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::capacity_exceeded);
    CHECK(contains(refused.error().detail, file.string() + ": larger than 256 bytes"));
  }
}
