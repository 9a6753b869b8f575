// planfence/etcd/operator_hold.hpp: an operator's hold on an etcd store, made of the lease
// authority's own holder key.
//
// What it is: `etcd_lease_authority` (lease_authority.hpp) grants the lease by creating P/holder
// attached to an etcd lease; its create revision is the fence token, and a holder-key store
// admits a commit only when P/holder's create revision equals the commit's token. An operator
// hold is the same key created by an operator's tool **without an etcd lease**: etcd then
// enforces it exactly as it enforces automation's lease.
//
//   - While the hold is in place, automation's acquire() fails (`lease_held`, "held by
//     'planfence-ctl operator hold' with fence T"), and every commit with an older token is
//     refused by etcd inside the commit's own transaction (P/holder's create revision is T).
//   - The hold outlives the process that took it (no lease, so nothing expires and no keep-alive
//     is needed): the tool that took it may exit, crash or be killed; the hold is only ever
//     ended by deleting the key (`release_operator_hold`), never lost silently.
//   - Once it is deleted, automation's next acquire creates P/holder again, at a revision above
//     T (etcd revisions only grow), so automation is back in at once; no floor is left behind for
//     its tokens to climb past.
//
// take_operator_hold supersedes whoever holds P/holder: an automation holder's key is deleted
// (compared on its create revision) and its etcd lease revoked, so its keep-alive thread reports
// the grant lost and its late commits are refused; an earlier operator hold is replaced, so a
// second operator supersedes the first (whose commits are then refused), as with floor fences.
// A lease-less P/holder is treated as an operator hold whatever its value says: nothing else
// writes one, and one left behind by hand would keep automation out until deleted.
//
//     planfence::etcd::client c{config};
//     planfence::etcd::layout keys{"/planfence/prod"};
//     auto hold = planfence::etcd::take_operator_hold(c, keys, "by alice on ops1").value();
//     // commit through a holder-key etcd_store with hold.fence ...
//     auto released = planfence::etcd::release_operator_hold(c, keys).value();  // verified
//
// Cost: take is 1 to 4 round trips (a read, maybe a delete and a revoke, a transaction, a read
// back); release 2 or 3. Blocking; allocates. Thread safety: that of the client.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "../ids.hpp"
#include "../result.hpp"
#include "client.hpp"
#include "layout.hpp"

namespace planfence {
inline namespace v1 {
namespace etcd {

/// The first line of an operator hold's P/holder value (what acquire's lease_held error quotes).
inline constexpr std::string_view operator_hold_name = "planfence-ctl operator hold";

/// What P/holder holds now.
struct holder_info {
  bool held = false;           ///< P/holder exists
  bool operator_hold = false;  ///< it is attached to no etcd lease: an operator's hold
  std::string name;            ///< the value's first line (the holder's name)
  std::string note;            ///< the rest of the value, first line only (who took a hold, when)
  fence_token fence{};         ///< its create revision: the token a holder-key store admits
  std::int64_t lease = 0;      ///< its etcd lease (0: none)
};

/// `text` for a message: quoted, every byte outside printable ASCII shown as '?', at most 120
/// bytes (the note names who took a hold and when; it is never a secret).
[[nodiscard]] inline std::string printable_note(std::string_view text) {
  std::string out = "'";
  for (const char ch : text.substr(0, 120)) out += ch >= 0x20 && ch < 0x7F ? ch : '?';
  return out + (text.size() > 120 ? "...'" : "'");
}

/// A short description for messages: "nobody", "the operator hold with fence 812", "automation
/// holder 'az1' with fence 45 (etcd lease 7587...)".
[[nodiscard]] inline std::string describe(const holder_info& h) {
  if (!h.held) return "nobody";
  if (h.operator_hold) {
    return "the operator hold with fence " + std::to_string(h.fence.value()) + (h.note.empty() ? "" : ", " + printable_note(h.note));
  }
  return "automation holder " + describe_value(h.name) + " with fence " + std::to_string(h.fence.value()) +
         " (etcd lease " + std::to_string(h.lease) + ")";
}

/// Reads P/holder (one linearizable range). Errors: errc::store_unavailable (etcd's words).
[[nodiscard]] inline result<holder_info> read_holder(client& c, const layout& keys) {
  auto got = c.range(keys.holder());
  if (!got) return etcd_failure("reading " + keys.holder(), got.error());
  holder_info out;
  if (got->kvs.empty()) return out;
  const key_value& kv = got->kvs[0];
  out.held = true;
  out.lease = kv.lease;
  out.operator_hold = kv.lease == 0;
  out.fence = fence_token{static_cast<std::uint64_t>(kv.create_revision)};
  const std::size_t end = kv.value.find('\n');
  out.name = kv.value.substr(0, end);
  if (end != std::string::npos) {
    const std::string rest = kv.value.substr(end + 1);
    out.note = rest.substr(0, rest.find('\n'));
  }
  return out;
}

/// What take_operator_hold did.
struct hold_taken {
  fence_token fence{};                     ///< the hold's token: P/holder's create revision
  std::optional<holder_info> superseded{};  ///< who held P/holder before (deleted; its lease revoked)
};

/// Takes the hold: deletes whatever holds P/holder (compared on its create revision; an
/// automation holder's etcd lease is then revoked so that it learns at once), then creates
/// P/holder = "planfence-ctl operator hold\n<note>\n" with no lease, if nobody took it meanwhile,
/// and reads it back. Retries a lost race a few times. Errors: errc::store_unavailable (etcd's
/// words; when a transaction's outcome is unknown the hold may exist: take it again or release
/// it, both clean it up), errc::conflict (P/holder kept being taken by someone else).
[[nodiscard]] inline result<hold_taken> take_operator_hold(client& c, const layout& keys, std::string_view note) {
  const std::string key = keys.holder();
  hold_taken out;
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto seen = read_holder(c, keys);
    if (!seen) return unexpected_error(seen.error());
    if (seen->held) {
      if (!out.superseded) out.superseded = *seen;
      auto deleted = c.txn({compare::create_revision(key, static_cast<std::int64_t>(seen->fence.value()))},
                           {op::remove(key)}, {});
      if (!deleted) return etcd_failure("deleting " + key + " (held by " + describe(*seen) + ")", deleted.error());
      if (!deleted->succeeded) continue;  // it changed meanwhile: look again
      // The holder's lease too, so that its keep-alive finds the grant lost (its pins go with it;
      // its commits are refused already, since P/holder is no longer its key). Best effort: the
      // hold does not depend on it.
      if (seen->lease != 0) static_cast<void>(c.revoke(seen->lease));
    }
    auto taken = c.txn({compare::create_revision(key, 0)},
                       {op::put(key, std::string(operator_hold_name) + "\n" + std::string(note) + "\n")}, {});
    if (!taken) return etcd_failure("creating " + key, taken.error());
    if (!taken->succeeded) continue;  // automation acquired in between: supersede it too
    out.fence = fence_token{static_cast<std::uint64_t>(taken->revision)};
    auto back = read_holder(c, keys);
    if (!back) return unexpected_error(back.error());
    if (!back->held || !back->operator_hold || back->fence != out.fence) {
      return fail(errc::conflict, key + " was created at revision " + std::to_string(out.fence.value()) +
                                      " but reads back as held by " + describe(*back));
    }
    return out;
  }
  return fail(errc::conflict, key + " kept being taken by another holder while the operator hold was taken");
}

/// Ends the operator hold, if P/holder is one: deletes it (compared on its create revision) and
/// reads P/holder back. Returns the hold released, or nothing when P/holder is not an operator
/// hold (nobody holds it, or automation does: nothing is written). Errors:
/// errc::store_unavailable (etcd's words), errc::conflict (it still reads back as that hold).
[[nodiscard]] inline result<std::optional<holder_info>> release_operator_hold(client& c, const layout& keys) {
  const std::string key = keys.holder();
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto seen = read_holder(c, keys);
    if (!seen) return unexpected_error(seen.error());
    if (!seen->held || !seen->operator_hold) return std::optional<holder_info>{};
    auto deleted = c.txn({compare::create_revision(key, static_cast<std::int64_t>(seen->fence.value()))},
                         {op::remove(key)}, {});
    if (!deleted) return etcd_failure("deleting " + key + " (" + describe(*seen) + ")", deleted.error());
    if (!deleted->succeeded) continue;  // replaced meanwhile (another operator's hold?): look again
    auto back = read_holder(c, keys);
    if (!back) return unexpected_error(back.error());
    if (back->held && back->fence == seen->fence) {
      return fail(errc::conflict, key + " still reads back as " + describe(*seen) + " after it was deleted");
    }
    return std::optional<holder_info>{*seen};
  }
  return fail(errc::conflict, key + " kept being replaced while the operator hold was released");
}

}  // namespace etcd
}  // namespace v1
}  // namespace planfence
