// planfence/sim/corrupt_plan.hpp: fault injection for S7: a plan whose content no longer matches
// its digest, and plan text damaged in transit.
//
// A plan is immutable and computes its digest when it is built, so a correct program cannot make
// a plan that lies about its content. Memory corruption, a bug in a plan transport, or a plan
// store returning bytes that were never written can; S7 says such a plan is never applied. To
// test that, this header defines `planfence::plan_access`, the friend that plan.hpp declares for
// exactly this purpose, and uses it to swap one endpoint's record set after the digest was taken.
// tests/unit/enactor_test.cpp defines its own plan_access for its S7 test: a program may contain
// only one definition (ODR), so that file and this header must never meet in one program (the
// unit tests do not include planfence/sim/).
//
//     planfence::plan p = ...;                               // digest covers p's content
//     planfence::sim::corrupt_after_digest(p, 0, other_records);
//     assert(!p.verify());                                    // S7: the enactor must refuse it
//
// damage_plan_text() changes one TTL digit of a plan's text form: the result still parses
// record by record, so only the digest line can catch it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "../config.hpp"
#include "../plan.hpp"
#include "../record.hpp"
#include "checked_build.hpp"

namespace planfence {
inline namespace v1 {

/// Private access to a plan, for fault injection only (see planfence/sim/corrupt_plan.hpp).
struct plan_access {
  /// Replaces endpoint `index`'s records, leaving the digest as it was.
  static void replace_records_keeping_digest(plan& p, std::size_t index, record_set records) {
    PLANFENCE_ASSERT(index < p.size());
    p.replace_records_keeping_digest(index, std::move(records));
  }
};

namespace sim {

/// Makes `p` lie: endpoint `index` gets `records`, the digest stays that of the old content.
inline void corrupt_after_digest(plan& p, std::size_t index, record_set records) {
  plan_access::replace_records_keeping_digest(p, index, std::move(records));
}

/// The plan text with the first record's TTL changed by one (60 becomes 61): every line still
/// parses, only the digest no longer matches. Returns false when the text has no record.
[[nodiscard]] inline bool damage_plan_text(std::string& text) {
  const std::size_t record = text.find("\n  ");
  if (record == std::string::npos) return false;
  const std::size_t ttl = text.find(' ', record + 3);  // after the record type
  if (ttl == std::string::npos || ttl + 1 >= text.size()) return false;
  char& digit = text[ttl + 1];
  if (digit < '0' || digit > '9') return false;
  digit = digit == '9' ? '8' : static_cast<char>(digit + 1);
  return true;
}

}  // namespace sim
}  // namespace v1
}  // namespace planfence
