// Proves the generation sequencer and the RFC 1982 serial mapping (generation.hpp):
//  - from several threads at once, next() hands out every generation exactly once and without
//    gaps (all issued values are collected, then checked unique and dense 1..N);
//  - a sequencer resumed from a persisted high-water mark never reissues it;
//  - at generation_max it refuses with errc::capacity_exceeded, stays refused, and its
//    high-water mark stays generation_max;
//  - observe() only ever moves the sequencer forward;
//  - soa_serial, serial_compare and serial_add follow RFC 1982 sections 3.1 and 3.2, across the
//    2^32 wrap and in the undefined case of two serials exactly 2^31 apart.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include <planfence/generation.hpp>

using namespace planfence;

TEST_CASE("sequencer issues 1, 2, 3 ... from a fresh start", "[generation]") {
  sequencer seq;
  CHECK(seq.last_issued() == generation_none);
  for (std::uint64_t expected = 1; expected <= 5; ++expected) {
    auto next = seq.next();
    REQUIRE(next);
    CHECK(next->value() == expected);
    CHECK(seq.last_issued() == generation{expected});
  }
}

TEST_CASE("sequencer is unique and dense under concurrent next()", "[generation][concurrent]") {
  constexpr int threads = 4;
  constexpr int per_thread = 20000;
  sequencer seq;
  std::vector<std::vector<std::uint64_t>> issued(threads);
  {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&seq, &mine = issued[static_cast<std::size_t>(t)]] {
        mine.reserve(per_thread);
        std::uint64_t previous = 0;
        for (int i = 0; i < per_thread; ++i) {
          auto next = seq.next();
          if (!next) return;  // the count check below then fails
          // Within one thread the sequence is strictly increasing.
          if (next->value() <= previous) return;
          previous = next->value();
          mine.push_back(previous);
        }
      });
    }
    for (auto& w : workers) w.join();
  }
  std::vector<std::uint64_t> all;
  for (const auto& mine : issued) {
    CHECK(mine.size() == static_cast<std::size_t>(per_thread));
    all.insert(all.end(), mine.begin(), mine.end());
  }
  std::sort(all.begin(), all.end());
  REQUIRE(all.size() == static_cast<std::size_t>(threads * per_thread));
  // Unique and dense: after sorting, exactly 1..N.
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (all[i] != i + 1) FAIL("generation " << i + 1 << " missing or duplicated; found " << all[i]);
  }
  CHECK(seq.last_issued() == generation{all.size()});
}

TEST_CASE("sequencer resumes after a persisted high-water mark", "[generation]") {
  sequencer seq{generation{41}};
  CHECK(seq.last_issued() == generation{41});
  auto next = seq.next();
  REQUIRE(next);
  CHECK(*next == generation{42});

  // A restarted sequencer resumed from last_issued() never reissues what the first one issued.
  sequencer restarted{seq.last_issued()};
  auto after = restarted.next();
  REQUIRE(after);
  CHECK(*after == generation{43});
}

TEST_CASE("sequencer refuses at generation_max and stays exhausted", "[generation]") {
  CHECK(generation_max.value() == (std::uint64_t{1} << 40) - 1);
  sequencer seq{generation{generation_max.value() - 2}};
  auto a = seq.next();
  auto b = seq.next();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->value() == generation_max.value() - 1);
  CHECK(*b == generation_max);
  for (int i = 0; i < 3; ++i) {
    auto refused = seq.next();
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == errc::capacity_exceeded);
  }
  // The high-water mark never reports a generation beyond the limit, even though the internal
  // counter moved past it.
  CHECK(seq.last_issued() == generation_max);
  // observe() cannot revive an exhausted sequencer.
  seq.observe(generation{5});
  CHECK_FALSE(seq.next());
  CHECK(seq.last_issued() == generation_max);

  sequencer at_limit{generation_max};
  auto refused = at_limit.next();
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::capacity_exceeded);
}

TEST_CASE("sequencer observe() moves forward only", "[generation]") {
  sequencer seq{generation{10}};
  seq.observe(generation{5});  // behind: ignored
  CHECK(seq.last_issued() == generation{10});
  seq.observe(generation{10});  // equal: ignored
  CHECK(seq.last_issued() == generation{10});
  seq.observe(generation{100});
  CHECK(seq.last_issued() == generation{100});
  auto next = seq.next();
  REQUIRE(next);
  CHECK(*next == generation{101});

  // observe(generation_max) exhausts the sequencer.
  seq.observe(generation_max);
  auto refused = seq.next();
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::capacity_exceeded);
}

TEST_CASE("observe() racing next() never lets the sequencer go backwards", "[generation][concurrent]") {
  sequencer seq;
  std::thread observer([&seq] {
    for (std::uint64_t g = 1000; g <= 50000; g += 1000) seq.observe(generation{g});
  });
  std::uint64_t previous = 0;
  bool increasing = true;
  for (int i = 0; i < 20000; ++i) {
    auto next = seq.next();
    if (!next || next->value() <= previous) increasing = false;
    if (next) previous = next->value();
  }
  observer.join();
  CHECK(increasing);
  CHECK(seq.last_issued().value() >= 50000);
  CHECK(seq.last_issued().value() >= previous);
}

TEST_CASE("soa_serial is base + generation modulo 2^32", "[generation][rfc1982]") {
  CHECK(soa_serial(generation{1}).value == 1);
  CHECK(soa_serial(generation{7}, 2025102000).value == 2025102007);
  // Wraps modulo 2^32 (RFC 1982 section 3.1).
  CHECK(soa_serial(generation{1}, 0xFFFFFFFFu).value == 0);
  CHECK(soa_serial(generation{10}, 0xFFFFFFF0u).value == 0xFFFFFFFAu);
  CHECK(soa_serial(generation{std::uint64_t{1} << 32}, 5).value == 5);
  CHECK(soa_serial(generation_max, 0).value == 0xFFFFFFFFu);
  // Consecutive generations give serials that compare as increasing, across the wrap.
  for (std::uint64_t g = 1; g < 40; ++g) {
    CHECK(serial_compare(soa_serial(generation{g}, 0xFFFFFFEEu),
                         soa_serial(generation{g + 1}, 0xFFFFFFEEu)) == -1);
  }
}

TEST_CASE("serial_compare follows RFC 1982 section 3.2", "[generation][rfc1982]") {
  auto s = [](std::uint32_t v) { return soa_serial_number{v}; };
  constexpr std::uint32_t half = std::uint32_t{1} << 31;

  // Equal.
  CHECK(serial_compare(s(0), s(0)) == 0);
  CHECK(serial_compare(s(0xFFFFFFFFu), s(0xFFFFFFFFu)) == 0);
  // i1 < i2 and i2 - i1 < 2^31: s1 < s2.
  CHECK(serial_compare(s(1), s(2)) == -1);
  CHECK(serial_compare(s(2), s(1)) == 1);
  CHECK(serial_compare(s(0), s(half - 1)) == -1);
  CHECK(serial_compare(s(half - 1), s(0)) == 1);
  // i1 > i2 and i1 - i2 > 2^31: s1 < s2 (the wrap).
  CHECK(serial_compare(s(0xFFFFFFFFu), s(0)) == -1);
  CHECK(serial_compare(s(0), s(0xFFFFFFFFu)) == 1);
  CHECK(serial_compare(s(0xFFFFFFF0u), s(0x10)) == -1);
  CHECK(serial_compare(s(half + 1), s(0)) == -1);
  CHECK(serial_compare(s(0), s(half + 1)) == 1);
  // Exactly 2^31 apart: undefined (2) in both directions.
  CHECK(serial_compare(s(0), s(half)) == 2);
  CHECK(serial_compare(s(half), s(0)) == 2);
  CHECK(serial_compare(s(12345), s(12345 + half)) == 2);
  CHECK(serial_compare(s(0xFFFFFFFFu), s(half - 1)) == 2);
  // The RFC's own examples (section 5.2, SERIAL_BITS = 32 analogue): 1 < 44, 100 < 200.
  CHECK(serial_compare(s(1), s(44)) == -1);
  CHECK(serial_compare(s(100), s(200)) == -1);
  // Usable in constant expressions.
  static_assert(serial_compare(soa_serial_number{3}, soa_serial_number{4}) == -1);
  static_assert(serial_compare(soa_serial_number{0}, soa_serial_number{half}) == 2);
}

TEST_CASE("serial_add adds modulo 2^32 and keeps the order", "[generation][rfc1982]") {
  auto s = [](std::uint32_t v) { return soa_serial_number{v}; };
  constexpr std::uint32_t largest_increment = (std::uint32_t{1} << 31) - 1;
  CHECK(serial_add(s(1), 0) == s(1));
  CHECK(serial_add(s(1), 5) == s(6));
  CHECK(serial_add(s(0xFFFFFFFFu), 1) == s(0));
  CHECK(serial_add(s(0xFFFFFFF0u), 0x20) == s(0x10));
  // Any increment up to 2^31 - 1 yields a serial that compares greater (RFC 1982 section 3.1).
  for (std::uint32_t base : {0u, 1u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu}) {
    for (std::uint32_t n : {1u, 2u, 1000u, largest_increment}) {
      CHECK(serial_compare(s(base), serial_add(s(base), n)) == -1);
    }
  }
}
