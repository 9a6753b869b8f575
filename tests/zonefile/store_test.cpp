// The zone-file store (include/planfence/zonefile/store.hpp): the conformance suite every
// store runs, then what is particular to files: errors that name the file, line and what was
// expected; a failed commit that writes nothing and leaves no temp file; the lock, its timeout and
// the SOA serial; several processes (fork) committing to one directory concurrently, with S1
// checked on the final files and on the chain of commits each process logged; and raise_fence
// in one process fencing out a writer in another (S2).
#include <catch2/catch.hpp>

#include <algorithm>

#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "zonefile_fixture.hpp"

#define PLANFENCE_CONFORMANCE_FIXTURES std::tuple<planfence_zonefile_test::zonefile_store_fixture>
#include "../support/store_conformance.inc"

using planfence_zonefile_test::files_in;
using planfence_zonefile_test::open_with_zone;
using planfence_zonefile_test::read_text;
using planfence_zonefile_test::temp_directory;
using planfence_zonefile_test::write_text;
using planfence_zonefile_test::serial_of;

namespace {

record_set addresses(std::initializer_list<std::string> list) { return planfence_test::a_records(list); }

stamp committed(zonefile_store& store, endpoint_handle h, std::uint64_t gen, std::uint64_t fence, const record_set& records) {
  auto now = store.read_stamp(h);
  REQUIRE(now);
  auto done = store.commit(h, *now, at(gen, fence), records);
  INFO((done ? std::string("ok") : done.error().message()));
  REQUIRE(done);
  return *done;
}

}  // namespace

TEST_CASE("zonefile store: resolve gives a name the same handle however many short_names came after it", "[zonefile]") {
  // Names short enough to live inside their std::string (x.example.test.: 15 characters), each
  // resolved once, then all again after the table of short_names has grown many times: the index keeps
  // views of the short_names, which must not move (a vector of slots would move them on growth).
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  std::vector<std::string> short_names;
  for (char c = 'a'; c <= 'z'; ++c) short_names.push_back(std::string(1, c) + ".example.test.");
  for (char c = '0'; c <= '9'; ++c) short_names.push_back(std::string(1, c) + ".example.test.");
  std::vector<endpoint_handle> first;
  for (const std::string& name : short_names) first.push_back(store.resolve(name).value());
  for (std::size_t i = 0; i < short_names.size(); ++i) {
    CHECK(store.resolve(short_names[i]).value() == first[i]);
    CHECK(store.name(first[i]) == short_names[i]);
  }
  std::vector<endpoint_handle> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // one handle per name
}

TEST_CASE("zonefile store: resolve accepts names inside a zone, refuses others and reserved ones", "[zonefile]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  CHECK(store.resolve("WWW.Example.Test").has_value());
  CHECK(store.resolve("www.example.test.").value() == store.resolve("WWW.Example.Test").value());
  CHECK(store.resolve("example.test.").has_value());  // the apex is an endpoint too
  CHECK(store.resolve("www.other.test.").error().code == errc::unknown_endpoint);
  CHECK(store.resolve("_planfence.www.example.test.").error().code == errc::invalid_name);
  CHECK(store.resolve("bad..name.").error().code == errc::invalid_name);

  // A zone another process (here: another store object) creates is found on the next resolve.
  zonefile_store other = zonefile_store::open(dir.path()).value();
  REQUIRE(other.create_zone("other.test."));
  CHECK(store.resolve("www.other.test.").has_value());
  CHECK(store.zones() == std::vector<std::string>{"example.test.", "other.test."});
  CHECK(zonefile_store::create_zone(dir.path(), "other.test.").error().code == errc::io_error);

  // Nested zones: the most specific one owns the name.
  REQUIRE(store.create_zone("sub.example.test."));
  const endpoint_handle deep = store.resolve("x.sub.example.test.").value();
  REQUIRE(store.commit(deep, stamp{}, at(1, 1), addresses({"192.0.2.1"})));
  CHECK(read_text(store.zone_file("sub.example.test.")).find("x.sub.example.test. 60 IN A 192.0.2.1") != std::string::npos);
  CHECK(read_text(store.zone_file("example.test.")).find("x.sub") == std::string::npos);
  CHECK(store.endpoint_names().value() == std::vector<std::string>{"x.sub.example.test."});  // glue is not an endpoint
  const endpoint_handle ns1 = store.resolve("ns1.other.test.").value();
  REQUIRE(store.commit(ns1, stamp{}, at(1, 1), addresses({"192.0.2.53"})));  // unless planfence writes it
  CHECK(store.endpoint_names().value() == std::vector<std::string>{"ns1.other.test.", "x.sub.example.test."});
}

TEST_CASE("zonefile store: open_uri takes zonefile:///absolute/dir and explains bad URIs", "[zonefile]") {
  temp_directory dir;
  REQUIRE(zonefile_store::create_zone(dir.path(), "example.test."));
  CHECK(zonefile_store::open_uri("zonefile://" + dir.path().string()).has_value());
  struct bad_uri {
    std::string uri;
    errc code;
    std::uint32_t column;
    const char* says;
  };
  const bad_uri cases[] = {
      {"file:///tmp", errc::parse_error, 1, "expected zonefile:///"},
      {"zonefile://host/tmp", errc::parse_error, 12, "no host"},
      {"zonefile://relative/dir", errc::parse_error, 12, "no host"},
      {"zonefile:///tmp?x=1", errc::parse_error, 16, "no query"},
      {"zonefile:///tmp%2", errc::parse_error, 16, "two hex digits"},
      {"zonefile:///no/such/planfence/dir", errc::io_error, 0, "not a directory"},
  };
  for (const bad_uri& c : cases) {
    auto opened = zonefile_store::open_uri(c.uri);
    INFO(c.uri);
    REQUIRE_FALSE(opened);
    INFO(opened.error().message());
    CHECK(opened.error().code == c.code);
    CHECK(opened.error().column == c.column);
    CHECK(opened.error().detail.find(c.says) != std::string::npos);
  }
  // Percent-escapes are decoded.
  const std::filesystem::path spaced = dir.path() / "with space";
  std::filesystem::create_directory(spaced);
  CHECK(zonefile_store::open_uri("zonefile://" + dir.path().string() + "/with%20space").has_value());
}

TEST_CASE("zonefile store: a zone file that does not parse is reported with its name, line and column", "[zonefile]") {
  temp_directory dir;
  write_text(dir.path() / "example.test.zone",
             "$ORIGIN example.test.\n@ 60 SOA ns1 h 1 1 1 1 1\nwww 60 A 192.0.2.300\n");
  auto opened = zonefile_store::open(dir.path());
  REQUIRE_FALSE(opened);
  CHECK(opened.error().code == errc::parse_error);
  CHECK(opened.error().line == 3);
  CHECK(opened.error().column == 10);
  CHECK(opened.error().detail.find("example.test.zone: expected an IPv4 address") != std::string::npos);

  write_text(dir.path() / "example.test.zone", "$ORIGIN example.test.\n@ 60 SOA ns1 h 1 1 1 1 1\n");
  zonefile_store store = zonefile_store::open(dir.path()).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  // Broken by hand between commits: every operation says where, and commit writes nothing.
  const std::string broken = "$ORIGIN example.test.\n@ 60 SOA ns1 h 1 1 1 1 1\n_planfence.www 0 TXT \"gen=one\"\n";
  write_text(dir.path() / "example.test.zone", broken);
  auto read = store.read_stamp(www);
  REQUIRE_FALSE(read);
  CHECK(read.error().code == errc::store_unavailable);
  CHECK(read.error().line == 3);
  CHECK(read.error().detail.find("example.test.zone: a malformed stamp") != std::string::npos);
  CHECK(store.commit(www, stamp{}, at(1, 1), addresses({"192.0.2.1"})).error().code == errc::store_unavailable);
  CHECK(store.live_generations().error().code == errc::store_unavailable);
  CHECK(read_text(dir.path() / "example.test.zone") == broken);

  write_text(dir.path() / "bad name!.zone", "");
  CHECK(zonefile_store::open(dir.path()).error().code == errc::invalid_name);
}

TEST_CASE("zonefile store: a commit that cannot write writes nothing and leaves no temp file", "[zonefile]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const endpoint_handle www = store.resolve("www.example.test.").value();
  committed(store, www, 1, 1, addresses({"192.0.2.1"}));
  const std::string before = read_text(store.zone_file("example.test."));
  const std::vector<std::string> files_before = files_in(dir.path());

  SECTION("the temp file cannot be created") {
    std::filesystem::create_directory(dir.path() / "example.test.zone.tmp");  // open(O_WRONLY) fails: EISDIR
    auto refused = store.commit(www, store.read_stamp(www).value(), at(2, 1), addresses({"192.0.2.2"}));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::store_unavailable);
    CHECK(refused.error().detail.find("example.test.zone.tmp: cannot create the temp file") != std::string::npos);
    std::filesystem::remove(dir.path() / "example.test.zone.tmp");
  }
  SECTION("the zone is locked by another writer past the timeout") {
    zonefile_options patient;
    patient.lock_timeout_ms = 50;
    zonefile_store impatient = zonefile_store::open(dir.path(), patient).value();
    const int fd = ::open((dir.path() / "example.test.zone.lock").c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX) == 0);
    const auto start = std::chrono::steady_clock::now();
    const endpoint_handle mine = impatient.resolve("www.example.test.").value();  // handles belong to their store
    auto refused = impatient.commit(mine, impatient.read_stamp(mine).value(), at(2, 1), addresses({"192.0.2.2"}));
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(50));
    ::close(fd);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::store_unavailable);
    CHECK(refused.error().detail.find("still locked by another writer after 50 ms") != std::string::npos);
  }
  SECTION("the zone would exceed its record bound: capacity_exceeded") {
    zonefile_options small;
    small.records_max = 7;  // SOA, NS, glue, floor, www's A and stamp: 6 now
    zonefile_store bounded = zonefile_store::open(dir.path(), small).value();
    auto refused = bounded.commit(bounded.resolve("db.example.test.").value(), stamp{}, at(2, 1), addresses({"192.0.2.2"}));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::capacity_exceeded);
  }
  CHECK(read_text(store.zone_file("example.test.")) == before);
  CHECK(files_in(dir.path()) == files_before);
}

TEST_CASE("zonefile store: every commit advances the SOA serial by one, wrapping under RFC 1982", "[zonefile]") {
  temp_directory dir;
  write_text(dir.path() / "example.test.zone",
             "; kept by hand until planfence took over\n$ORIGIN example.test.\n$TTL 300\n"
             "@ SOA ns1 hostmaster ( 4294967294 1h 10m 1w 60 )\n  NS ns1\nns1 A 192.0.2.53\n"
             "mail MX 10 mx.example.net.\nwww MX 20 mail\n");
  zonefile_store store = zonefile_store::open(dir.path()).value();
  const std::filesystem::path file = store.zone_file("example.test.");
  const endpoint_handle www = store.resolve("www.example.test.").value();
  committed(store, www, 1, 1, addresses({"192.0.2.1"}));
  CHECK(serial_of(file) == 4294967295U);
  committed(store, www, 2, 1, addresses({"192.0.2.2"}));
  CHECK(serial_of(file) == 0);  // 2^32 - 1 + 1, modulo 2^32
  CHECK(serial_compare(soa_serial_number{0}, soa_serial_number{4294967295U}) == 1);  // still "newer"
  REQUIRE(store.raise_fence(fence_token{5}));
  CHECK(serial_of(file) == 1);  // raising the floor rewrites the zone: the serial moves too
  // Records of other types at the endpoint's name are kept; planfence's types are replaced.
  const std::string text = read_text(file);
  CHECK(text.find("www.example.test. 300 IN MX 20 mail") != std::string::npos);
  CHECK(text.find("mail.example.test. 300 IN MX 10 mx.example.net.") != std::string::npos);
  CHECK(text.find("192.0.2.1") == std::string::npos);
  CHECK(text.find("kept by hand") == std::string::npos);  // comments are not kept (documented)
  CHECK(store.served(www).value().size() == 1);
}

TEST_CASE("zonefile store: weights, CNAME, TXT and AAAA records read back exactly", "[zonefile]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  std::vector<record> list = {make_record(record_type::a, 60, "192.0.2.10", 10).value(),
                              make_record(record_type::a, 60, "192.0.2.11", 0).value(),
                              make_record(record_type::aaaa, 60, "2001:DB8::1", 255).value(),
                              make_record(record_type::txt, 300, "\"v=1 \\\"q\\\"\" \"\\255\"").value()};
  const record_set set = record_set::make(list).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  committed(store, www, 3, 2, set);
  const auto served = store.served(www).value();
  CHECK(std::vector<record>(set.records().begin(), set.records().end()) == served);

  const record_set alias =
      record_set::make({make_record(record_type::cname, 30, "lb1.example.net.", 1).value(),
                        make_record(record_type::cname, 30, "lb2.example.net.", 2).value()}).value();
  committed(store, www, 4, 2, alias);
  CHECK(std::vector<record>(alias.records().begin(), alias.records().end()) == store.served(www).value());
  CHECK(read_text(store.zone_file("example.test.")).find("2001:db8::1") == std::string::npos);  // old weights gone too

  // An intended-empty set: the endpoint serves nothing, and its stamp says which plan emptied it.
  committed(store, www, 5, 2, record_set::make({}, true).value());
  CHECK(store.served(www).value().empty());
  CHECK(store.read_stamp(www).value().gen == generation{5});
  CHECK(store.endpoint_names().value() == std::vector<std::string>{"www.example.test."});
}

TEST_CASE("zonefile store: the floor survives reopening and reaches zones created or copied in later (S2)", "[zonefile][S2]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  REQUIRE(store.raise_fence(fence_token{7}));
  CHECK(store.read_stamp(store.resolve("www.example.test.").value()).value().fence == fence_token{7});
  CHECK(read_text(store.zone_file("example.test.")).find("_fence._planfence.example.test. 0 IN TXT \"floor=7\"") !=
        std::string::npos);
  CHECK(read_text(dir.path() / "planfence.floor") == "floor=7\n");

  zonefile_store reopened = zonefile_store::open(dir.path()).value();
  CHECK(reopened.fence_floor().value() == fence_token{7});
  REQUIRE(reopened.create_zone("later.test."));
  CHECK(read_text(reopened.zone_file("later.test.")).find("floor=7") != std::string::npos);
  // A zone file copied in by hand, without a floor record: planfence.floor still refuses token 6.
  write_text(dir.path() / "copied.test.zone", "$ORIGIN copied.test.\n@ 60 SOA ns1 h 1 1 1 1 1\n");
  const endpoint_handle copied = reopened.resolve("www.copied.test.").value();
  CHECK(reopened.read_stamp(copied).value() == at(0, 7));
  CHECK(reopened.commit(copied, at(0, 7), at(1, 6), addresses({"192.0.2.1"})).error().code == errc::fenced);
  CHECK(reopened.commit(copied, at(0, 7), at(1, 7), addresses({"192.0.2.1"})).has_value());
  REQUIRE(reopened.raise_fence(fence_token{3}));  // never lowers
  CHECK(reopened.fence_floor().value() == fence_token{7});
}

namespace {

// One line per successful commit: "<endpoint> <expected gen> <new gen> <new fence>"; one per
// refusal: "refused <code>".
struct commit_log {
  std::map<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>> chains;  // endpoint -> (expected, new)
  std::map<std::string, int> refusals;
  std::map<std::string, std::vector<std::uint64_t>> fences;  // endpoint -> fences of the successes
};

void read_log(const std::filesystem::path& file, commit_log& log) {
  std::istringstream in(read_text(file));
  std::string word;
  while (in >> word) {
    if (word == "refused") {
      std::string code;
      in >> code;
      ++log.refusals[code];
      continue;
    }
    std::uint64_t expected = 0, gen = 0, fence = 0;
    in >> expected >> gen >> fence;
    log.chains[word].emplace_back(expected, gen);
    log.fences[word].push_back(fence);
  }
}

/// The child's work: `rounds` generations of its own parity, each applied to every endpoint with
/// read-decide-commit and bounded conflict retries, as the enactor does. Returns the exit code.
int committer(const std::filesystem::path& directory, const std::filesystem::path& log_file, int parity, int rounds,
              std::uint64_t fence, const std::filesystem::path& stop_file) {
  auto opened = zonefile_store::open(directory);
  if (!opened) return 2;
  zonefile_store& store = *opened;
  std::FILE* log = std::fopen(log_file.c_str(), "w");
  if (log == nullptr) return 3;
  for (int round = 1; round <= rounds; ++round) {
    if (!stop_file.empty() && std::filesystem::exists(stop_file)) break;
    const std::uint64_t gen = static_cast<std::uint64_t>(2 * round + parity);
    const record_set records = planfence_test::a_records({address_of(gen)});
    for (const std::string& name : names) {
      const endpoint_handle h = store.resolve(name).value();
      for (int attempt = 0; attempt < 8; ++attempt) {
        auto now = store.read_stamp(h);
        if (!now) return 4;
        auto done = store.commit(h, *now, at(gen, fence), records);
        if (done) {
          std::fprintf(log, "%s %llu %llu %llu\n", name.c_str(), static_cast<unsigned long long>(now->gen.value()),
                       static_cast<unsigned long long>(gen), static_cast<unsigned long long>(fence));
          break;
        }
        std::fprintf(log, "refused %s\n", std::string(to_string(done.error().code)).c_str());
        if (done.error().code != errc::conflict) break;
      }
      std::fflush(log);
    }
  }
  std::fclose(log);
  return 0;
}

pid_t spawn(const std::function<int()>& work) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(work());
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("zonefile store: processes committing concurrently never regress an endpoint (S1)", "[zonefile][S1][processes]") {
  // Three processes, generations 2r, 2r+1 and 2r+2 offsets apart, race on the same three endpoints.
  // Proof on the files: every success replaced exactly the stamp the previous success wrote (a
  // single chain per endpoint, generations increasing: no lost update, no regression), the final
  // stamp is the chain's end and its records are that generation's, and the SOA serial counts
  // every success (no commit overwrote another's file).
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::uint32_t serial_before = serial_of(store.zone_file("example.test."));
  constexpr int rounds = 12;
  std::vector<pid_t> children;
  for (int parity = 0; parity < 3; ++parity) {
    children.push_back(spawn([&, parity] {
      return committer(dir.path(), dir.path() / ("log" + std::to_string(parity)), parity, rounds, 1, {});
    }));
  }
  for (pid_t child : children) CHECK(wait_for(child) == 0);

  commit_log log;
  for (int parity = 0; parity < 3; ++parity) read_log(dir.path() / ("log" + std::to_string(parity)), log);
  std::size_t successes = 0;
  for (const std::string& name : names) {
    auto chain = log.chains[name];
    REQUIRE_FALSE(chain.empty());
    std::sort(chain.begin(), chain.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
    std::uint64_t previous = 0;
    for (const auto& [expected, gen] : chain) {
      CHECK(expected == previous);  // replaced exactly what the previous success wrote
      CHECK(gen > previous);        // S1
      previous = gen;
    }
    successes += chain.size();
    const endpoint_handle h = store.resolve(name).value();
    CHECK(store.read_stamp(h).value().gen == generation{previous});
    CHECK(store.served(h).value() == std::vector<record>{make_record(record_type::a, 60, address_of(previous)).value()});
  }
  CHECK(serial_of(store.zone_file("example.test.")) == serial_before + successes);
  CHECK(log.refusals.count("store_unavailable") == 0);
  INFO("refusals: stale " << log.refusals["stale"] << ", conflict " << log.refusals["conflict"]);
  CHECK(log.refusals["stale"] + log.refusals["conflict"] > 0);  // they did race
  CHECK(files_in(dir.path()) == std::vector<std::string>{"example.test.zone", "example.test.zone.lock", "log0", "log1",
                                                         "log2", "planfence.lock"});
}

TEST_CASE("zonefile store: raise_fence in one process fences a writer in another at once (S2)", "[zonefile][S2][processes]") {
  // A child commits with token 1 as fast as it can. The parent waits until it has committed a few
  // generations, raises the fence to 2, and notes the stamps right after raise_fence returned.
  // The child keeps trying for a while: none of its commits may land after that point.
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path stop = dir.path() / "stop";
  const pid_t child = spawn([&] { return committer(dir.path(), dir.path() / "log", 1, 100000, 1, stop); });
  const endpoint_handle api = store.resolve("api.example.test.").value();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (store.read_stamp(api).value().gen < generation{7} && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(store.raise_fence(fence_token{2}));
  std::map<std::string, stamp> after_raise;
  for (const std::string& name : names) after_raise[name] = store.read_stamp(store.resolve(name).value()).value();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the child keeps trying with token 1
  write_text(stop, "");
  CHECK(wait_for(child) == 0);

  commit_log log;
  read_log(dir.path() / "log", log);
  CHECK(log.refusals["fenced"] > 0);
  for (const std::string& name : names) {
    const stamp final_stamp = store.read_stamp(store.resolve(name).value()).value();
    INFO(name);
    CHECK(final_stamp.gen == after_raise[name].gen);  // nothing landed after the raise returned
    CHECK(final_stamp.fence == fence_token{2});
    CHECK(after_raise[name].gen >= generation{3});
    for (std::uint64_t fence : log.fences[name]) CHECK(fence == 1);
  }
  // The new holder, in yet another process, commits with token 2.
  const pid_t holder = spawn([&] { return committer(dir.path(), dir.path() / "log2", 0, 1, 2, {}); });
  CHECK(wait_for(holder) == 0);
  CHECK(store.read_stamp(api).value().fence == fence_token{2});
  commit_log second;
  read_log(dir.path() / "log2", second);
  // Its one round (generation 2) is older than what the child left: stale, never fenced.
  CHECK(second.refusals["fenced"] == 0);

  // And the other way round: a raise in a child fences this process's store.
  const pid_t raiser = spawn([&] { return zonefile_store::open(dir.path()).value().raise_fence(fence_token{9}) ? 0 : 1; });
  CHECK(wait_for(raiser) == 0);
  const stamp now = store.read_stamp(api).value();
  CHECK(now.fence == fence_token{9});
  CHECK(store.commit(api, now, at(now.gen.value() + 1, 8), addresses({"192.0.2.8"})).error().code == errc::fenced);
  CHECK(store.commit(api, now, at(now.gen.value() + 1, 9), addresses({"192.0.2.9"})).has_value());
}

TEST_CASE("zonefile store: a zone with the legacy floor owner _planfence-floor is read and migrated", "[zonefile][layout]") {
  // The owner where the RFC 2136 store kept the floor before both stores shared
  // dns/zone_layout.hpp: still read (the larger floor counts), removed by the next floor write.
  temp_directory dir;
  write_text(dir.path() / "example.test.zone",
             "$ORIGIN example.test.\n"
             "@ 3600 IN SOA ns1 hostmaster 5 3600 600 604800 60\n"
             "@ 3600 IN NS ns1\n"
             "ns1 3600 IN A 127.0.0.1\n"
             "_planfence-floor 0 IN TXT \"floor=9\"\n");
  auto store = zonefile_store::open(dir.path()).value();
  CHECK(store.fence_floor().value() == fence_token{9});
  const endpoint_handle www = store.resolve("www.example.test.").value();
  CHECK(store.read_stamp(www).value() == at(0, 9));
  const std::string before = read_text(store.zone_file("example.test."));
  auto refused = store.commit(www, store.read_stamp(www).value(), at(1, 5), planfence_test::a_records({"192.0.2.1"}));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::fenced);
  CHECK(read_text(store.zone_file("example.test.")) == before);

  REQUIRE(store.raise_fence(fence_token{12}));
  const std::string after = read_text(store.zone_file("example.test."));
  INFO(after);
  CHECK(after.find("_planfence-floor") == std::string::npos);
  CHECK(after.find("_fence._planfence.example.test. 0 IN TXT \"floor=12\"") != std::string::npos);
  CHECK(store.fence_floor().value() == fence_token{12});
  // Only the canonical owner, once: the decoder refuses a second floor at one owner.
  auto records = parse_zone(after, zone_parse_options{"example.test."}).value();
  CHECK(std::count_if(records.begin(), records.end(), [](const zone_record& r) { return r.owner.find("floor") != std::string::npos || r.owner.starts_with("_fence."); }) == 1);
  CHECK(decode_zone(records, "example.test.").value().legacy_floor == false);
  // And a commit at the new floor lands.
  CHECK(store.commit(www, store.read_stamp(www).value(), at(1, 12), planfence_test::a_records({"192.0.2.1"})));
}

TEST_CASE("zonefile store: the larger of the canonical and the legacy floor counts", "[zonefile][layout]") {
  temp_directory dir;
  write_text(dir.path() / "example.test.zone",
             "$ORIGIN example.test.\n@ 3600 IN SOA ns1 hostmaster 5 3600 600 604800 60\n@ 3600 IN NS ns1\n"
             "ns1 3600 IN A 127.0.0.1\n_fence._planfence 0 IN TXT \"floor=4\"\n_planfence-floor 0 IN TXT \"floor=7\"\n");
  auto store = zonefile_store::open(dir.path()).value();
  CHECK(store.fence_floor().value() == fence_token{7});
  const endpoint_handle www = store.resolve("www.example.test.").value();
  auto refused = store.commit(www, stamp{}, at(1, 6), planfence_test::a_records({"192.0.2.1"}));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::fenced);
  // A name with a label beginning with _planfence is reserved.
  CHECK(store.resolve("_planfence-floor.www.example.test.").error().code == errc::invalid_name);
}
