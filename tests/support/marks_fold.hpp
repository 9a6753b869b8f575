// tests/support/marks_fold.hpp: what the batch-marks tests of the stores that fold the apply marks
// into their writes (marks_batch_store: RFC 2136, etcd) share: an enactor applying generation 1,
// then a generation 2 that changes a few endpoints, which such a store writes with ONE write.
// Needs Catch2 and planfence/planfence.hpp included first.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fixtures.hpp"
#include "store_fixtures.hpp"

namespace planfence_test {

/// A batch_marks asking for the begin (from `begin`, when not null) and/or the finish of `target`
/// with `token`.
inline planfence::batch_marks fold(const planfence::apply_marks* begin, bool finish, std::uint64_t target, std::uint64_t token) {
  planfence::batch_marks m;
  m.begin = begin;
  m.finish = finish;
  m.target = planfence::generation{target};
  m.token = planfence::fence_token{token};
  return m;
}

/// Steps the enactor until it has applied `gen` (bounded).
template <class Enactor>
void apply_until(Enactor& e, planfence::generation gen) {
  for (std::uint64_t steps = 0; e.applied_generation() != gen; ++steps) {
    REQUIRE(steps < 10'000);
    static_cast<void>(e.step());
  }
}

/// g1 over `names` (each its own address), then g2 changing every 7th of them (three of 20),
/// through an enactor of type Enactor over `store` with `batch_max`; `counter` is the concrete
/// store underneath and `writes()` its count of writes (UPDATE messages, transactions): the
/// second apply must be exactly one, with the marks {2, 2} and every endpoint right after it.
template <class Enactor, class Store, class Counter, class Writes>
void apply_small_change(Store& store, const Counter& counter, const std::vector<std::string>& names, std::uint32_t batch_max,
                        Writes writes) {
  using namespace planfence;
  manual_clock clock;
  local_lease_authority<manual_clock> authority{clock};
  plan_registry registry;
  Enactor e{store, authority, registry, clock, {.name = "fold", .batch_max = batch_max, .collect = false}};
  std::map<std::string, std::vector<std::string>> first;
  for (std::size_t i = 0; i < names.size(); ++i) first[names[i]] = {"10.1.0." + std::to_string(i + 1)};
  REQUIRE(registry.publish(make_plan(1, first)));
  apply_until(e, generation{1});
  const apply_marks g1 = counter.read_marks().value();
  CHECK(g1.begun == generation{1});
  CHECK(g1.applied == generation{1});
  {
    plan_builder b = plan_builder::based_on(*registry.pin_latest(), generation{2}, 0);
    for (std::size_t i = 0; i < names.size(); i += 7) REQUIRE(b.set(names[i], a_records({"10.2.0.1"})));
    REQUIRE(registry.publish(std::move(b).build().value()));
  }
  const std::uint64_t sent = writes();
  apply_until(e, generation{2});
  CHECK(writes() - sent == 1);  // begin, the three endpoints and finish in one write
  const apply_marks g2 = counter.read_marks().value();
  CHECK(g2.begun == generation{2});
  CHECK(g2.applied == generation{2});
  for (std::size_t i = 0; i < names.size(); ++i) {
    INFO(names[i]);
    const endpoint_handle handle = counter.resolve(names[i]).value();
    const bool changed = i % 7 == 0;
    CHECK(counter.read_stamp(handle).value().gen == generation{changed ? 2u : 1u});
    CHECK(served_addresses(counter, handle) == std::vector<std::string>{changed ? "10.2.0.1" : "10.1.0." + std::to_string(i + 1)});
  }
}

}  // namespace planfence_test
