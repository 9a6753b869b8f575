// Commit and read latency of the zone-file store by zone size: the numbers in docs/zonefile.md
// (Costs). Hidden (tag [.bench]): it is a measurement, not a test, and takes about a minute. Run:
//
//   build/tests/zonefile/planfence_zonefile_tests "[.bench]"          (TMPDIR picks the disk)
//
// Each size: a zone of N endpoints (one A record and one stamp each) is written directly, then
// read_stamp and commit of one endpoint are timed, repeated, and the median and 90th percentile
// printed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>

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
