// Commit and read latency of the zone-file store by zone size: the numbers in docs/zonefile.md
// (Costs). Hidden (tag [.bench]): measurements, not tests; each up to about a minute in Release. Run:
//
//   build/tests/zonefile/planfence_zonefile_tests "[.bench]"          (TMPDIR picks the disk)
//
// Each size: a zone of N endpoints (one A record and one stamp each) is written directly, then
// read_stamp and commit of one endpoint are timed, repeated, and the median and 90th percentile
// printed. The second case applies a 10,000-endpoint plan through the enactor in batches of
// 64 to 16,384 and at the default (the store's preferred_batch_max, the whole plan), and
// compares it with one write of the final zone.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include <planfence/planfence.hpp>

#include "zonefile_fixture.hpp"

TEST_CASE("zonefile store: commit latency by zone size", "[.bench]") {
  using namespace planfence;
  for (int n : {10, 100, 1000, 10000}) {
    planfence_zonefile_test::temp_directory dir;
    std::string text = "$ORIGIN example.test.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ 3600 IN NS ns1\n"
                       "ns1 3600 IN A 127.0.0.1\n";
    for (int i = 0; i < n; ++i) {
      text += "ep" + std::to_string(i) + " 60 IN A 10.0.0.1\n_planfence.ep" + std::to_string(i) + " 0 IN TXT \"gen=1 fence=1\"\n";
    }
    planfence_zonefile_test::write_text(dir.path() / "example.test.zone", text);
    zonefile_store store = zonefile_store::open(dir.path()).value();
    std::vector<double> commit_us, read_us;
    const int reps = n >= 10000 ? 20 : 50;
    for (int r = 0; r < reps; ++r) {
      const endpoint_handle h = store.resolve("ep" + std::to_string(r % n) + ".example.test.").value();
      const auto t0 = std::chrono::steady_clock::now();
      const stamp s = store.read_stamp(h).value();
      const auto t1 = std::chrono::steady_clock::now();
      const record_set records = planfence_test::a_records({"10.0.1." + std::to_string(r % 250)});
      REQUIRE(store.commit(h, s, stamp{generation{s.gen.value() + 1}, fence_token{1}, 0}, records));
      const auto t2 = std::chrono::steady_clock::now();
      read_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      commit_us.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
    }
    std::sort(commit_us.begin(), commit_us.end());
    std::sort(read_us.begin(), read_us.end());
    std::printf("endpoints %6d (records %6d): read_stamp median %8.0f us; commit median %8.0f us, p90 %8.0f us\n", n,
                2 * n + 4, read_us[read_us.size() / 2], commit_us[commit_us.size() / 2], commit_us[commit_us.size() * 9 / 10]);
  }
}

namespace {

using namespace planfence;
using planfence_zonefile_test::serial_of;

/// Steps the enactor until it has applied `gen`; the seconds it took.
template <class Enactor>
double apply_seconds(Enactor& e, generation gen) {
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t steps = 0; e.applied_generation() != gen; ++steps) {
    REQUIRE(steps < 10'000'000);
    static_cast<void>(e.step());
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// A 10,000-endpoint plan applied by the enactor to an empty zone-file store, then a plan changing
// 1% of the endpoints, each compared with ONE write of the final zone (format, temp file, fsync,
// rename, directory fsync: what a store that knew the whole plan would do). The full plan is
// timed twice, each on a store of its own: by a new enactor, which first acquires its lease and
// raises the fence (raise_fence: a rewrite of the zone), and by an enactor that already holds its
// lease (it applied a one-endpoint plan first), which is what each plan costs an enactor that
// stays in charge. Each batch size runs several rounds (fresh stores each); a round times one
// write of the final zone right after its plans, and its ratios are to that write. The median
// round is printed, with the range: fsync times on a shared machine vary several-fold from one
// minute to the next, and a ratio to a write made minutes apart would measure that instead. The
// numbers in docs/zonefile.md (Costs: batches).
namespace {

struct plan_round {
  double full = 0, held = 0, change = 0, write = 0, read = 0;
  std::uint32_t full_rewrites = 0, held_rewrites = 0, change_rewrites = 0, batch = 0;
  std::size_t records = 0;
};

plan_round one_round(std::uint32_t batch_max, const std::vector<std::string>& names,
                     const std::map<std::string, std::vector<std::string>>& first) {
  using zone_enactor = enactor<zonefile_store, local_lease_authority<manual_clock>, plan_registry, manual_clock>;
  plan_round out;
  planfence_zonefile_test::temp_directory dir;
  planfence_zonefile_test::temp_directory other;
  zonefile_store store = planfence_zonefile_test::open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  manual_clock clock;
  local_lease_authority<manual_clock> authority{clock};
  plan_registry registry;
  zone_enactor e{store, authority, registry, clock, {.name = "bench", .batch_max = batch_max, .collect = false}};
  { auto p = registry.publish(planfence_test::make_plan(1, first)); REQUIRE(p); }
  const std::uint32_t serial0 = serial_of(file);
  out.full = apply_seconds(e, generation{1});
  const std::uint32_t serial1 = serial_of(file);
  out.full_rewrites = serial1 - serial0;
  out.batch = e.batch_max();
  {
    plan_builder b = plan_builder::based_on(*registry.pin_latest(), generation{2}, 0);
    for (std::size_t i = 0; i < names.size(); i += 100) REQUIRE(b.set(names[i], planfence_test::a_records({"10.2.0.1"})));
    auto p = registry.publish(std::move(b).build().value());
    REQUIRE(p);
  }
  out.change = apply_seconds(e, generation{2});
  out.change_rewrites = serial_of(file) - serial1;
  // The same full plan by an enactor that already holds its lease, on a store of its own: it
  // applied a one-endpoint plan first (the lease, the fence raised), then the 10,000 endpoints.
  {
    planfence_zonefile_test::temp_directory held_dir;
    zonefile_store held_store = planfence_zonefile_test::open_with_zone(held_dir.path());
    const std::filesystem::path held_file = held_store.zone_file("example.test.");
    plan_registry held_registry;
    local_lease_authority<manual_clock> held_authority{clock};
    zone_enactor h{held_store, held_authority, held_registry, clock, {.name = "held", .batch_max = batch_max, .collect = false}};
    { auto p = held_registry.publish(planfence_test::make_plan(1, {{"warm.example.test.", {"10.3.0.1"}}})); REQUIRE(p); }
    static_cast<void>(apply_seconds(h, generation{1}));
    {
      plan_builder b = plan_builder::based_on(*held_registry.pin_latest(), generation{2}, 0);
      for (const auto& [name, addresses] : first) REQUIRE(b.set(name, planfence_test::a_records(addresses)));
      auto p = held_registry.publish(std::move(b).build().value());
      REQUIRE(p);
    }
    const std::uint32_t before = serial_of(held_file);
    out.held = apply_seconds(h, generation{2});
    out.held_rewrites = serial_of(held_file) - before;
    REQUIRE(h.counters()[event_kind::applied] == names.size() + 1);
  }
  // One write of the final zone, the faster of two.
  auto records = parse_zone(planfence_zonefile_test::read_text(file), zone_parse_options{"example.test."}).value();
  out.records = records.size();
  out.write = 1e9;
  for (int r = 0; r < 2; ++r) {
    std::vector<zone_record> copy = records;
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(detail::zonefile::write_zone(other.path() / "example.test.zone", "example.test.", std::move(copy), nullptr));
    out.write = std::min(out.write, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  // One read of the final zone (read_stamps of every endpoint): every batch pays two (its
  // read_stamps, and its commit's read under the lock). The store wrote this file last, so its
  // parse is cached: this is a read of the bytes, a compare and the lookups.
  std::vector<endpoint_handle> handles;
  for (const std::string& name : names) handles.push_back(store.resolve(name).value());
  std::vector<stamp> seen(handles.size());
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(store.read_stamps(handles, seen));
  out.read = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

/// "median (min-max)" of `values` scaled by `scale`, with `unit`.
std::string spread(std::vector<double> values, double scale, const char* format) {
  std::sort(values.begin(), values.end());
  char text[96];
  std::snprintf(text, sizeof text, format, values[values.size() / 2] * scale, values.front() * scale, values.back() * scale);
  return text;
}

}  // namespace

TEST_CASE("zonefile store: a 10000-endpoint plan through the enactor against one write of the zone", "[.bench]") {
  constexpr std::size_t endpoints = 10'000;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < endpoints; ++i) names.push_back("ep" + std::to_string(i) + ".example.test.");
  std::map<std::string, std::vector<std::string>> first;
  for (std::size_t i = 0; i < endpoints; ++i) first[names[i]] = {"10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256)};
  std::printf("%zu endpoints, one A record each; per batch size the median round (min-max over the rounds); each ratio is\n"
              "to one write of the final zone timed in the same round\n", endpoints);
  for (std::uint32_t batch_max : {64u, 256u, 1024u, 4096u, 16384u, 0u}) {
    const int rounds = batch_max == 64 ? 1 : 5;
    std::vector<plan_round> all;
    for (int r = 0; r < rounds; ++r) all.push_back(one_round(batch_max, names, first));
    const auto column = [&](auto field) {
      std::vector<double> v;
      for (const plan_round& x : all) v.push_back(field(x));
      return v;
    };
    const plan_round& any = all.front();
    std::printf("batch_max %5u (%5u), %d round%s: one write of the final zone (%zu records) %s, one read %s\n"
                "  full plan  %s (%u rewrites), %s\n  lease held %s (%u rewrites), %s\n  1%% change  %s (%u rewrites), %s\n",
                batch_max, any.batch, rounds, rounds == 1 ? "" : "s", any.records,
                spread(column([](const plan_round& x) { return x.write; }), 1e3, "%.1f ms (%.1f-%.1f)").c_str(),
                spread(column([](const plan_round& x) { return x.read; }), 1e3, "%.1f ms (%.1f-%.1f)").c_str(),
                spread(column([](const plan_round& x) { return x.full; }), 1e3, "%7.1f ms (%.1f-%.1f)").c_str(), any.full_rewrites,
                spread(column([](const plan_round& x) { return x.full / x.write; }), 1, "%.1fx (%.1fx-%.1fx)").c_str(),
                spread(column([](const plan_round& x) { return x.held; }), 1e3, "%7.1f ms (%.1f-%.1f)").c_str(), any.held_rewrites,
                spread(column([](const plan_round& x) { return x.held / x.write; }), 1, "%.1fx (%.1fx-%.1fx)").c_str(),
                spread(column([](const plan_round& x) { return x.change; }), 1e3, "%7.1f ms (%.1f-%.1f)").c_str(), any.change_rewrites,
                spread(column([](const plan_round& x) { return x.change / x.write; }), 1, "%.1fx (%.1fx-%.1fx)").c_str());
    std::fflush(stdout);
  }
}
