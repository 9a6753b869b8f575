// tests/support/plan_structure_access.hpp: test-only access to a plan's structure (a friend of
// planfence::plan), shared by the tests that need what real names cannot give them.
//
//  - apply(): changes whose entries carry chosen name hashes, so that names collide on an index
//    key (which real names do too rarely to test) or agree on all but the deepest key bits;
//  - empty(): a plan of nothing, without a generation (to apply such changes to);
//  - index(): a plan's index root, for detail functions that take one (detail::index_diff with
//    a counting hook, in tests/unit/plan_diff_test.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <planfence/plan.hpp>

namespace planfence {
inline namespace v1 {
struct plan_structure_access {
  static void apply(plan& p, const std::map<std::string, const detail::entry_block*>& changes,
                    const std::function<std::uint64_t(const std::string&)>& hash_of) {
    std::vector<plan::change> list;
    for (const auto& [name, entry] : changes) list.push_back({name, hash_of(name), entry});
    p.apply(list);
  }
  static plan empty() { return plan{}; }
  static detail::index_slot index(const plan& p) noexcept { return p.index_; }
};
}  // namespace v1
}  // namespace planfence
