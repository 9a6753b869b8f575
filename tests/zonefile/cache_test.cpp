// The zone-file store's parse cache (store.hpp, "Costs"): a zone file is read every time, but bytes
// identical to those the store last read or wrote are not parsed again. These tests show that a
// file changed behind the store's back (same size, or renamed into place) is always seen, that
// what the store caches after its own writes is what a fresh parse of the file gives (also the
// decoded zone a rewrite builds from the one before and the change, compared field by field over
// random batches), that the cache holds under several threads, and that an enactor's plan costs at
// most one parse per zone.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <thread>

#include <planfence/planfence.hpp>

#include "zonefile_fixture.hpp"

using namespace planfence;
using namespace planfence_zonefile_test;

namespace {

/// `text` with the one occurrence of `from` replaced by `to`.
std::string replaced(const std::string& text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + 1) == std::string::npos);
  return text.substr(0, at) + to + text.substr(at + from.size());
}

record_set cname_to(const std::string& target) {
  return record_set::make({make_record(record_type::cname, 300, target).value()}).value();
}

/// Everything a store reads of the directory, as one comparable text.
std::string everything(const zonefile_store& store) {
  std::string out;
  const std::vector<std::string> names = store.endpoint_names().value();
  for (const std::string& name : names) {
    const endpoint_handle h = store.resolve(name).value();
    const stamp s = store.read_stamp(h).value();
    out += name;
    out += " gen=";
    out += std::to_string(s.gen.value());
    out += " fence=";
    out += std::to_string(s.fence.value());
    const std::vector<record> served = store.served(h).value();
    for (const record& r : served) {
      out += " ";
      out += to_string(r.type);
      out += " ";
      out += r.rdata;
      out += " ttl=";
      out += std::to_string(r.ttl);
      out += " w=";
      out += r.weight ? std::to_string(*r.weight) : std::string("-");
    }
    out += "\n";
  }
  const apply_marks marks = store.read_marks().value();
  out += "marks ";
  out += dns::format_marks(marks);
  out += "\nfloor ";
  out += std::to_string(store.fence_floor().value().value());
  const std::vector<generation> live = store.live_generations().value();
  for (generation g : live) {
    out += " live=";
    out += std::to_string(g.value());
  }
  out += "\n";
  return out;
}

}  // namespace

TEST_CASE("zonefile cache: a file edited behind the store's back, same size or renamed in, is seen", "[zonefile][cache]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  const endpoint_handle www = store.resolve("www.example.test.").value();
  const auto v1 = planfence_test::a_records({"192.0.2.1"});
  REQUIRE(store.commit(www, stamp{}, stamp_at(1, 1), v1));
  const std::uint64_t after_commit = store.parses();
  CHECK(store.read_stamp(www).value() == stamp_at(1, 1));
  CHECK(store.parses() == after_commit);  // the bytes it wrote: not parsed again

  SECTION("same size, different content") {
    // Another writer (taking the lock, as the header asks) moves the stamp to generation 2: the
    // file keeps its size, only a byte differs.
    const std::string before = read_text(file);
    const std::string edited = replaced(before, "\"gen=1 fence=1\"", "\"gen=2 fence=1\"");
    REQUIRE(edited.size() == before.size());
    write_text(file, edited);
    CHECK(store.read_stamp(www).value() == stamp_at(2, 1));
    CHECK(store.parses() == after_commit + 1);
    // The commit decides from the file, not from what the store wrote: generation 2 is stale.
    CHECK(store.commit(www, stamp_at(1, 1), stamp_at(2, 1), v1).error().code == errc::stale);
    // Same size again (the address): the commit's expectation is checked against the new file.
    write_text(file, replaced(read_text(file), "\"gen=2 fence=1\"", "\"gen=3 fence=1\""));
    CHECK(store.commit(www, stamp_at(2, 1), stamp_at(4, 1), v1).error().code == errc::conflict);
    REQUIRE(store.commit(www, stamp_at(3, 1), stamp_at(4, 1), v1));
    CHECK(store.read_stamp(www).value() == stamp_at(4, 1));
    // Back to the exact bytes of an earlier state: read as they are.
    write_text(file, before);
    CHECK(store.read_stamp(www).value() == stamp_at(1, 1));
  }
  SECTION("a new file renamed over the zone file") {
    const std::filesystem::path temp = dir.path() / "elsewhere.tmp";
    write_text(temp, replaced(read_text(file), "\"gen=1 fence=1\"", "\"gen=7 fence=3\""));
    std::filesystem::rename(temp, file);
    CHECK(store.read_stamp(www).value() == stamp_at(7, 3));
    std::vector<stamp> seen(1);
    REQUIRE(store.read_stamps(std::span<const endpoint_handle>(&www, 1), seen));
    CHECK(seen[0] == stamp_at(7, 3));
    CHECK(store.commit(www, stamp_at(1, 1), stamp_at(8, 3), v1).error().code == errc::conflict);
    REQUIRE(store.commit(www, stamp_at(7, 3), stamp_at(8, 3), v1));
    // The marks too: written behind the store's back, read by read_marks and begin_apply.
    write_text(temp, read_text(file) + "_apply._planfence.example.test. 0 IN TXT \"begun=9 applied=8\"\n");
    std::filesystem::rename(temp, file);
    CHECK(store.read_marks().value() == apply_marks{generation{9}, generation{8}, 0});
    CHECK(store.begin_apply(apply_marks{}, generation{10}, fence_token{3}).error().code == errc::conflict);
    REQUIRE(store.begin_apply(apply_marks{generation{9}, generation{8}, 0}, generation{10}, fence_token{3}));
  }
  SECTION("a file that no longer parses is an error, not the cached zone") {
    write_text(file, read_text(file) + "broken.example.test. 300 IN A not-an-address\n");
    CHECK(store.read_stamp(www).error().code == errc::store_unavailable);
    CHECK(store.commit(www, stamp_at(1, 1), stamp_at(2, 1), v1).error().code == errc::store_unavailable);
    CHECK(store.read_marks().error().code == errc::parse_error);
  }
}

TEST_CASE("zonefile cache: what the store caches after its writes is what a fresh parse of the files gives", "[zonefile][cache]") {
  temp_directory dir;
  zonefile_store store = open_with_zones(dir.path(), {"a.test.", "b.test."});
  record_set weighted = planfence_test::a_records({"192.0.2.1", "192.0.2.2"});
  std::vector<record> with_weights(weighted.records().begin(), weighted.records().end());
  with_weights[0].weight = 3;
  with_weights[1].weight = 7;
  const record_set weights = record_set::make(with_weights).value();
  std::vector<commit_item> items;
  const auto v1 = planfence_test::a_records({"198.51.100.1"});
  for (int i = 0; i < 10; ++i) {
    const std::string suffix = i % 2 == 0 ? ".a.test." : ".b.test.";
    std::string name = "e";
    name += std::to_string(i);
    name += suffix;
    items.push_back({store.resolve(name).value(), stamp{}, stamp_at(1, 1), i == 3 ? &weights : &v1});
  }
  REQUIRE(store.begin_apply(apply_marks{}, generation{1}, fence_token{1}));
  REQUIRE(store.commit_batch(items));
  REQUIRE(store.finish_apply(generation{1}, fence_token{1}));
  REQUIRE(store.raise_fence(fence_token{2}));
  const auto alias = cname_to("lb.example.net.");
  const endpoint_handle www = store.resolve("www.b.test.").value();
  REQUIRE(store.commit(www, store.read_stamp(www).value(), stamp_at(2, 2), alias));
  const std::uint64_t before = store.parses();
  const std::string cached = everything(store);
  CHECK(store.parses() == before);  // every read served from what the store wrote
  zonefile_store fresh = zonefile_store::open(dir.path()).value();
  CHECK(everything(fresh) == cached);
  CHECK(fresh.parses() == 2);  // one parse per zone, when it opened
}

TEST_CASE("zonefile cache: threads committing and reading through one store", "[zonefile][cache]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  constexpr int threads = 4;
  constexpr int each = 25;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&store, t] {
      const auto v = planfence_test::a_records({"192.0.2.9"});
      for (int i = 0; i < each; ++i) {
        std::string name = "t";
        name += std::to_string(t);
        name += "-";
        name += std::to_string(i);
        name += ".example.test.";
        const endpoint_handle h = store.resolve(name).value();
        auto seen = store.read_stamp(h);
        if (!seen) std::fprintf(stderr, "read_stamp: %s\n", seen.error().message().c_str());
        auto done = store.commit(h, seen.value(), stamp_at(1, 1), v);
        if (!done) std::fprintf(stderr, "commit: %s\n", done.error().message().c_str());
        if (!done) std::abort();
        auto after = store.read_stamp(h);
        if (!after) std::fprintf(stderr, "read_stamp after: %s\n", after.error().message().c_str());
        if (after.value() != stamp_at(1, 1)) std::abort();
      }
    });
  }
  for (std::thread& w : workers) w.join();
  zonefile_store fresh = zonefile_store::open(dir.path()).value();
  CHECK(everything(fresh) == everything(store));
  CHECK(fresh.endpoint_names().value().size() == static_cast<std::size_t>(threads * each));
}

namespace {

template <class Enactor>
void apply(Enactor& e, generation gen) {
  for (std::uint64_t steps = 0; e.applied_generation() != gen; ++steps) {
    REQUIRE(steps < 1'000'000);
    static_cast<void>(e.step());
  }
}

}  // namespace

TEST_CASE("zonefile cache: an enactor's plan parses the zone at most once, not once per batch", "[zonefile][cache]") {
  constexpr std::size_t endpoints = 400;
  enactor_rig rig{{.name = "cache", .batch_max = 32, .collect = false}};
  zonefile_store& store = rig.store;
  const std::filesystem::path& file = rig.file;
  plan_registry& registry = rig.registry;
  enactor_rig::enactor_type& e = rig.e;
  std::vector<std::string> names;
  std::map<std::string, std::vector<std::string>> first;
  for (std::size_t i = 0; i < endpoints; ++i) {
    std::string name = "ep";
    name += std::to_string(i);
    name += ".example.test.";
    names.push_back(name);
    first[name] = {"10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256)};
  }
  { auto p = registry.publish(planfence_test::make_plan(1, first)); REQUIRE(p); }
  const std::uint64_t opened = store.parses();
  const std::uint32_t serial0 = serial_of(file);
  apply(e, generation{1});
  const std::uint64_t full = store.parses() - opened;
  const std::uint32_t serial1 = serial_of(file);
  {
    plan_builder b = plan_builder::based_on(*registry.pin_latest(), generation{2}, 0);
    for (std::size_t i = 0; i < endpoints; i += 100) REQUIRE(b.set(names[i], planfence_test::a_records({"10.2.0.1"})));
    auto p = registry.publish(std::move(b).build().value());
    REQUIRE(p);
  }
  const std::uint64_t before_change = store.parses();
  apply(e, generation{2});
  const std::uint64_t change = store.parses() - before_change;
  const std::uint32_t serial2 = serial_of(file);
  std::printf("cache: %zu endpoints, batch_max 32: full plan %u rewrites, %llu parses; 1%% change %u rewrites, %llu parses "
              "(open: %llu)\n",
              endpoints, serial1 - serial0, static_cast<unsigned long long>(full), serial2 - serial1,
              static_cast<unsigned long long>(change), static_cast<unsigned long long>(opened));
  CHECK(serial1 - serial0 > 10);  // many batches, each a rewrite
  CHECK(serial2 - serial1 == 1);  // begin, the batch and finish in one rewrite (marks_batch_store)
  // Every file the enactor reads is one this store wrote (or read at open): no parse at all.
  CHECK(full <= 1);
  CHECK(change <= 1);
  // Another writer in between: the next read parses once, then the cache serves again.
  write_text(file, read_text(file) + "extra.example.test. 300 IN MX 10 mail.example.net.\n");
  {
    plan_builder b = plan_builder::based_on(*registry.pin_latest(), generation{3}, 0);
    for (std::size_t i = 1; i < endpoints; i += 100) REQUIRE(b.set(names[i], planfence_test::a_records({"10.3.0.1"})));
    auto p = registry.publish(std::move(b).build().value());
    REQUIRE(p);
  }
  const std::uint64_t before_third = store.parses();
  apply(e, generation{3});
  CHECK(store.parses() - before_third == 1);
  CHECK(contains(read_text(file), "extra.example.test. 300 IN MX 10 mail.example.net."));
}

TEST_CASE("zonefile cache: a zone the store wrote past records_max is not served from the cache", "[zonefile][cache]") {
  temp_directory dir;
  static_cast<void>(open_with_zone(dir.path()));  // SOA, NS, glue, floor: 4 records
  zonefile_options options;
  options.records_max = 6;
  zonefile_store store = zonefile_store::open(dir.path(), options).value();
  const endpoint_handle www = store.resolve("www.example.test.").value();
  REQUIRE(store.commit(www, stamp{}, stamp_at(1, 1), planfence_test::a_records({"192.0.2.1"})));  // 6 records
  // The marks record is written without the record bound (as the floor record is): 7 records,
  // which no parse accepts. The store that wrote them reports it as a fresh store does.
  REQUIRE(store.begin_apply(apply_marks{}, generation{2}, fence_token{1}));
  auto marks = store.read_marks();
  REQUIRE_FALSE(marks);
  CHECK(marks.error().code == errc::parse_error);
  CHECK(contains(marks.error().detail.str(), "more than 6 records"));
  CHECK_FALSE(zonefile_store::open(dir.path(), options));
}

namespace {

/// Every field of a decoded zone, lines included, as one comparable text.
std::string dump(const zone_contents& c) {
  std::string out = "zone " + c.zone + "\nsoa " + format_soa(c.soa) + " line=" + std::to_string(c.soa_line) +
                    "\nfloor " + std::to_string(c.floor.value()) + (c.legacy_floor ? " legacy" : "") + "\nmarks " +
                    (c.marks ? dns::format_marks(*c.marks) + " v" + std::to_string(c.marks->version) : std::string("none")) +
                    " line=" + std::to_string(c.marks_line) + "\n";
  for (const zone_endpoint& e : c.endpoints) {
    out += e.name + " line=" + std::to_string(e.line) + " stamp=";
    out += e.stamped ? dns::format_stamp(e.stamped->gen, e.stamped->fence) + " v" + std::to_string(e.stamped->version)
                     : std::string("none");
    for (const record& r : e.records) {
      out += " | " + std::string(to_string(r.type)) + " " + r.rdata + " ttl=" + std::to_string(r.ttl) +
             " w=" + (r.weight ? std::to_string(*r.weight) : std::string("-"));
    }
    out += "\n";
  }
  return out;
}

/// What decode_zone gives for the records of the file as it is now, their lines cleared (as the
/// records a store writes have none).
std::string decoded_file(const std::filesystem::path& file, const std::string& zone) {
  std::vector<zone_record> records = parse_zone(read_text(file), zone_parse_options{zone}).value();
  for (zone_record& r : records) r.line = 0;
  return dump(decode_zone(records, zone).value());
}

/// The store's cached decoded zone equals a fresh decode of the file's records, and its bytes are
/// the file's. False when the entry is not the store's last rewrite: a reader that read the file
/// before that rewrite may replace it with its parse of the older bytes (the cache's rule: at
/// worst a later parse), which the next read then parses again.
bool check_cache(zonefile_store& store, const std::string& zone) {
  const std::optional<zonefile_store::cache_entry> cached = store.cached(zone);
  REQUIRE(cached.has_value());
  if (!cached->written) return false;
  const std::filesystem::path file = store.zone_file(zone);
  CHECK(cached->bytes == read_text(file));
  CHECK(dump(cached->contents) == decoded_file(file, zone));
  return true;
}

record_set random_records(std::mt19937& random) {
  auto a = [&](int weight) {
    record r = make_record(record_type::a, 60 + random() % 3 * 60, "192.0.2." + std::to_string(random() % 200 + 1)).value();
    if (weight > 0) r.weight = static_cast<std::uint8_t>(weight);
    return r;
  };
  for (;;) {
    std::vector<record> out;
    switch (random() % 9) {
      case 0: return record_set::make({}, true).value();  // records removed: only the stamp stays
      case 1: out.push_back(make_record(record_type::cname, 300, "lb" + std::to_string(random() % 3) + ".example.net.").value()); break;
      case 2: {  // weighted CNAMEs: one served, the others kept in the weights only
        record x = make_record(record_type::cname, 300, "x.example.net.").value();
        record y = make_record(record_type::cname, 300, "y.example.net.").value();
        x.weight = static_cast<std::uint8_t>(1 + random() % 9);
        y.weight = static_cast<std::uint8_t>(1 + random() % 9);
        out = {x, y};
        break;
      }
      case 3: out = {a(1 + static_cast<int>(random() % 9)), a(1 + static_cast<int>(random() % 9))}; break;  // weights
      case 4:
        out = {a(0), make_record(record_type::aaaa, 60, "2001:db8::" + std::to_string(random() % 50 + 1)).value(),
               make_record(record_type::txt, 60, "\"v=" + std::to_string(random() % 5) + "\"").value()};
        break;
      // Data a plan may hold in other than the canonical form (record_set::make does not
      // canonicalize): written as given, read back canonical. The cache must say what is read.
      case 5: out = {record{record_type::aaaa, 60, {}, "2001:DB8:0::" + std::to_string(random() % 50 + 1)}}; break;
      case 6: out = {record{record_type::cname, 300, {}, "LB" + std::to_string(random() % 3) + ".Example.NET."}}; break;
      default: out = {a(0)}; break;
    }
    if (auto set = record_set::make(out)) return *set;  // two equal addresses: drawn again
  }
}

}  // namespace

// What a rewrite caches is no longer decoded from all the records written: it is the decoded zone
// before, with the endpoints the rewrite wrote decoded from their new records alone, the marks, the
// floor and the SOA updated (zonefile_store::write, updated_contents). It must be exactly what
// decoding the records written gives: checked after every step of random batches (new endpoints,
// changed ones, weights, CNAMEs kept in the weights, records removed, foreign records at endpoint
// owners, the glue's owner, refused items, marks, floors, a legacy floor owner), with a reader
// thread holding snapshots part of the time (so that rewrites take both paths: moving out of the
// snapshot, and copying it).
TEST_CASE("zonefile cache: the contents a rewrite caches equal a fresh decode of the file over random batches",
          "[zonefile][cache]") {
  temp_directory dir;
  static_cast<void>(open_with_zones(dir.path(), {"a.test.", "b.test."}));
  const std::filesystem::path file_a = dir.path() / "a.test.zone";
  // Records that are not planfence's at endpoint owners, a foreign endpoint without a stamp, an
  // opaque record, and the legacy floor owner (removed by the next floor written).
  write_text(file_a, read_text(file_a) +
                         "e1.a.test. 300 IN MX 10 mail.example.net.\n"
                         "e2.a.test. 300 IN TXT \"foreign\"\n"
                         "e3.a.test. 300 IN NS ns.example.net.\n"
                         "plain.a.test. 300 IN A 192.0.2.250\n"
                         "_planfence-floor.a.test. 0 IN TXT \"floor=1\"\n");
  zonefile_store store = zonefile_store::open(dir.path()).value();
  std::vector<std::string> names;
  for (int i = 0; i < 12; ++i) names.push_back("e" + std::to_string(i) + ".a.test.");
  for (int i = 0; i < 6; ++i) names.push_back("e" + std::to_string(i) + ".b.test.");
  names.push_back("deep.e1.a.test.");
  names.push_back("ns1.a.test.");  // the glue of the zone's name server: a CNAME there is refused
  names.push_back("a.test.");      // the apex: a CNAME there is refused
  std::vector<endpoint_handle> handles;
  for (const std::string& n : names) handles.push_back(store.resolve(n).value());

  std::mt19937 random(20261207);
  // The reader reads only while `reading`; `busy` is raised before it looks, so that once the main
  // thread has lowered `reading` and seen `busy` low, no read is in flight (none can then replace
  // the cache entry with a parse of older bytes: in those steps every check compares).
  std::atomic<bool> stop{false};
  std::atomic<bool> reading{false};
  std::atomic<bool> busy{false};
  std::thread reader([&] {
    std::vector<stamp> seen(handles.size());
    while (!stop.load()) {
      busy.store(true);
      if (reading.load()) static_cast<void>(store.read_stamps(handles, seen));
      busy.store(false);
      std::this_thread::yield();
    }
  });
  std::uint64_t gen = 1, fence = 1;
  std::deque<record_set> sets;  // items point into it
  int written = 0, refused = 0, compared = 0, skipped = 0;
  for (int step = 0; step < 120; ++step) {
    INFO("step " << step);
    reading.store(step % 40 >= 20);
    while (!reading.load() && busy.load()) std::this_thread::yield();
    const unsigned what = random() % 10;
    if (what == 0) {
      fence += random() % 2;
      REQUIRE(store.raise_fence(fence_token{fence}));
    } else if (what == 1) {
      const apply_marks now = store.read_marks().value();
      REQUIRE(store.begin_apply(now, generation{std::max<std::uint64_t>(now.begun.value(), gen) + 1}, fence_token{fence}));
    } else if (what == 2) {
      REQUIRE(store.finish_apply(generation{gen}, fence_token{fence}));
    } else {
      ++gen;
      std::vector<commit_item> items;
      std::vector<stamp> seen(handles.size());
      REQUIRE(store.read_stamps(handles, seen));
      for (std::size_t i = 0; i < handles.size(); ++i) {
        if (random() % 3 != 0) continue;
        sets.push_back(random_records(random));
        // Now and then a stale expectation: a conflict, nothing written for it.
        const stamp expected = random() % 8 == 0 ? stamp_at(gen + 5, fence) : seen[i];
        items.push_back(commit_item{handles[i], expected, stamp_at(gen, fence), &sets.back()});
      }
      if (what == 3) {
        const apply_marks now = store.read_marks().value();
        batch_marks marks;
        marks.begin = &now;
        marks.target = generation{std::max<std::uint64_t>(now.begun.value(), gen) + 1};
        marks.finish = random() % 2 == 0;
        marks.token = fence_token{fence};
        static_cast<void>(store.commit_batch(items, marks));  // refused items: an error, the rest written
        gen = marks.target.value();
      } else {
        static_cast<void>(store.commit_batch(items));
      }
      for (const commit_item& item : items) (item.outcome == commit_outcome::written ? written : refused) += 1;
    }
    for (const char* zone : {"a.test.", "b.test."}) (check_cache(store, zone) ? compared : skipped) += 1;
  }
  stop.store(true);
  reader.join();
  std::printf("cache: random batches: %d items written, %d not; cache compared %d times, %d replaced by a reader\n",
              written, refused, compared, skipped);
  CHECK(compared >= 100);  // in the 60 steps without the reader, both zones once written
  CHECK(written > 100);
  CHECK(refused > 5);
  // The legacy floor owner went with the first floor written.
  CHECK_FALSE(contains(read_text(file_a), "_planfence-floor"));
}
