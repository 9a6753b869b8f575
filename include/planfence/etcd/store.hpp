// planfence/etcd/store.hpp: a record store kept in etcd, fenced by etcd itself.
//
// What it is: the record store for enactors on several hosts. Each endpoint is one etcd key,
// P/endpoints/<name>, whose value is legible with `etcdctl get`:
//
//     planfence-endpoint 1
//     generation 12
//     fence 7341
//     endpoint db.us-east-1.example.
//       A 60 weight=10 192.0.2.10
//
// (the last lines are exactly the endpoint's block in the plan text form). The stamp is
// (generation, fence, version = the key's mod revision). A commit is ONE etcd transaction:
//
//     compare  mod_revision(P/endpoints/<name>) == expected.version   (create_revision == 0 when
//                                                                      the endpoint was never written)
//              value(P/fence-floor)            <  pad(desired.fence + 1)      i.e. floor <= fence
//              value(P/fence-floor)            >  19 zeros           (no value sorting below pad(0))
//              create_revision(P/holder)       == desired.fence       (fence_mode::holder_key only)
//     success  put P/endpoints/<name> = the new value
//     failure  range the three keys, to say why (stale, fenced or conflict)
//
// A failed commit reads the floor and refuses one that is not 20 digits with an error naming the
// key and the value; the two value compares keep a garbage floor from admitting a commit, except
// a value that starts with 19 zeros and sorts below pad(desired.fence + 1).
//
// The floor key is created by the first write that needs it, never by opening or reading: while
// it is missing (a floor of 0, which admits every token) the commit compares
// create_revision(P/fence-floor) == 0 instead (etcd fails a VALUE compare on a missing key) and
// also puts P/fence-floor = pad(0) in its success branch. The store remembers which form to send
// from what it last saw; a failure branch that shows the other state (someone created the key,
// or deleted it) sends the commit again in the other form, at most commit_attempts_max times.
// Opening a store is one read-only transaction (nothing is written; it also tells whether the
// prefix holds anything: exists(), open_options::must_exist).
//
// commit_batch (batched_store) sends the same conditions for many endpoints, one transaction per
// unit of items that share a desired fence:
//
//     compare  for each item: mod_revision(P/endpoints/<name>) == expected.version (or create == 0)
//              the floor compares (or create_revision(P/fence-floor) == 0) and the holder
//              compare of commit, ONCE
//     success  for each item: put P/endpoints/<name>      (and P/fence-floor = pad(0) when missing)
//     failure  for each item: range P/endpoints/<name>; range P/fence-floor, range P/holder
//
// A unit holds at most max-txn-ops - 3 items (etcd's --max-txn-ops bounds each of compare,
// success and failure; 3 for the floor and holder) and at most max-request-bytes of JSON (etcd's
// --max-request-bytes, counted on the base64 JSON sent, which is larger than what etcd measures);
// both are the store's options (open_uri: max-txn-ops=N, max-request-bytes=N; etcd's 128 and
// 1.5 MiB by default). When the transaction fails, its failure branch (one revision) decides every
// item as commit would: stale, fenced (its own fence, or the floor or holder for the whole unit) or
// conflict; those are marked, and the rest of the unit is sent again, so no item's outcome depends
// on another's. A unit is applied whole or not at all. read_stamps reads a dense batch (its
// endpoints are most of the store's known endpoints between the first and the last, as an
// enactor's batches in name order are) with ONE range over its keys, whatever the batch's size,
// and other batches with up to max-txn-ops keys in one read-only transaction of ranges.
//
// The apply marks (change_following_store in store.hpp) are one key, P/apply-marks, whose value is
// "begun=B applied=A" (decimal; missing: never marked, both generation_none) and whose version is
// its mod revision. Each write is ONE transaction with the fence conditions of a commit:
//
//     compare  mod_revision(P/apply-marks) == expected.version   (create_revision == 0 when never written)
//              the floor compares (or create_revision(P/fence-floor) == 0) and the holder compare
//     success  put P/apply-marks = "begun=B' applied=A'"          (and P/fence-floor = pad(0) when missing)
//     failure  range P/apply-marks, range P/fence-floor, range P/holder
//
// begin_apply(expected, target, token) sends B' = target, A' = expected.applied against the
// caller's expected marks; its failure branch says fenced (the floor or holder key) or conflict (the
// marks moved). finish_apply(target, token) sends A' = target, B' = max(B, target) against the
// marks as the store last saw them, and on a failure that is not fenced takes the marks its
// failure branch read and sends again (at most apply_attempts_max); when A is already target or
// newer it writes nothing, after one read-only transaction of the same three keys that still
// refuses a fenced token. live_generations() and read_all() read every endpoint key and the marks
// in one read-only transaction (one revision): the live set is every endpoint's effective
// generation, max(stamp, A), plus A and B.
//
// The apply marks in a batch: commit_batch(items, marks) (marks_batch_store, what the enactor
// calls) means begin_apply, commit_batch(items), then finish_apply if every item came out written
// or stale, but puts the begin in the batch's first transaction and the finish in its last: that
// unit also compares mod_revision(P/apply-marks) == expected.version, puts the new marks and
// ranges P/apply-marks in its failure branch, so that a refused begin (fenced, or conflict: the
// marks moved) is diagnosed in the same round trip and nothing is written. A unit that carries
// the marks holds at most max-txn-ops - 4 items (one compare, put and range more) and keeps their
// bytes free; a plan of a few changes with both marks is ONE transaction (it was three).
//
// So every write (commit, commit_batch, begin_apply, finish_apply) checks and writes in one step
// at the server (S1), and etcd itself refuses a writer whose lease is gone or was superseded (S2):
// its holder key no longer has the create revision that is its token, however late the writer
// wakes up. docs/etcd.md gives the full argument.
//
//     auto store = planfence::etcd_store::open_uri("etcd://127.0.0.1:2379/planfence/prod").value();
//     auto www = store.resolve("www.example.").value();
//     auto seen = store.read_stamp(www).value();
//     auto done = store.commit(www, seen, {plan_gen, lease.fence, 0}, records);   // one txn
//
// When not to use it: for resolvers answering queries (every call is a network round trip;
// mirror the store into a memory store for that); without a lease authority issuing tokens
// that are holder-key create revisions (use fence_mode::floor_only for other authorities).
//
// Cost: opening is one read-only transaction; read_stamp is one linearizable range (a round trip
// to the leader); commit is one transaction (a round trip and a raft commit with a disk sync; two
// when another writer created or deleted the floor key since this store last saw it);
// raise_fence is one read and one transaction; read_marks one range; begin_apply one transaction
// (two when the floor key appeared or vanished); finish_apply one transaction when the store saw
// the marks last (after read_marks or begin_apply), else a read-only one first, plus one per time
// the marks moved under it; commit_batch(items, marks) writes the marks in the transactions of the
// items (no transaction of its own, unless the first or last unit cannot carry them), plus one
// read_marks when the finish is asked without a begin and the store never saw the marks;
// transactions_sent() counts the transactions that may write. commit_batch of N items is
// ceil(N / 125) transactions with the defaults (more when values are large: 1.5 MiB of JSON each), plus one
// more send of a unit for each round in which some of its items were refused (at most the number
// of refused items, plus up to 3 when the floor key appears or vanishes); 10,000 two-record
// endpoints took about 1 s against one local member, 1.06x the same transactions written by
// hand (median; bench/etcd_bench.cpp, docs/etcd.md). read_stamps of N endpoints is one range
// request when they are dense (at most range_read_slack more of the store's known endpoints lie
// between them: a bounded range, `limit` set, so another writer's keys in between cost at most
// one wasted request before the fallback), else ceil(N / max-txn-ops) read-only transactions. A failure branch returns the current values of
// its unit's keys, all within the client's 16 MiB response limit only while they average under
// 130 KB with the default max-txn-ops (lower it for larger endpoints). Every operation blocks up
// to the client's request timeout per member and allocates. Thread safety: every member may be
// called concurrently (the client serialises).
//
// Limits: generations up to 2^40 - 1 (generation_max, as every planfence store); fence tokens up
// to 2^63 - 2 (fence_value_max: etcd revisions, which do not fit the memory store's 24 bits, so do
// not use the etcd lease authority's tokens with a memory store; planfence-ctl's operator fences
// stay below 2^24, so a floor raised beyond that by the lease authority leaves it no operator
// fence, which fence_floor() lets it see). Every value read back (an endpoint's stamp, the floor)
// is checked against these ranges, and a refusal names the key and the value. Values up to the
// client's body limit (16 MiB) and etcd's request limit (1.5 MiB by default; a set's 1,024 A
// records are about 20 KB, only long TXT records come near it); commit_batch refuses an endpoint whose transaction alone would exceed
// max-request-bytes (errc::capacity_exceeded naming it, before anything is sent).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../detail/uri.hpp"
#include "client.hpp"
#include "layout.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../plan.hpp"
#include "../plan_text.hpp"
#include "../record.hpp"
#include "../result.hpp"
#include "../store.hpp"

namespace planfence {
inline namespace v1 {
namespace etcd {

/// How a commit proves the committer's right to write.
enum class fence_mode : std::uint8_t {
  /// The token must be the create revision of P/holder (the etcd lease authority's tokens), and
  /// at least the fence floor. Etcd refuses a superseded or lapsed holder by itself.
  holder_key,
  /// The token must be at least the fence floor and the endpoint's fence; for lease authorities
  /// whose tokens are not holder-key revisions (and for the conformance suite's fixed tokens).
  floor_only,
};

/// One endpoint's value decoded.
struct endpoint_value {
  generation gen{};
  fence_token fence{};
  record_set records;
  std::string name;  ///< the endpoint the block names (the key's name, unless the value is corrupt)
};

/// The value stored for an endpoint (see the header comment).
[[nodiscard]] inline std::string format_endpoint_value(std::string_view name, generation gen, fence_token fence,
                                                       const record_set& records) {
  std::string out = "planfence-endpoint 1\ngeneration ";
  out += std::to_string(gen.value());
  out += "\nfence ";
  out += std::to_string(fence.value());
  out += "\nendpoint ";
  out += name;
  if (records.intended_empty()) out += " intent=empty";
  out += '\n';
  for (const record& r : records.records()) {
    out += "  ";
    out += to_string(r.type);
    out += ' ';
    out += std::to_string(r.ttl);
    if (r.weight) {
      out += " weight=";
      out += std::to_string(*r.weight);
    }
    out += ' ';
    out += r.rdata;
    out += '\n';
  }
  return out;
}

/// Decodes an endpoint value; the records are validated by the plan text parser; the generation
/// must be in 1..generation_max and the fence in 0..2^63 - 2 (etcd_store::fence_value_max). Errors:
/// errc::parse_error (with the line in the value).
[[nodiscard]] inline result<endpoint_value> parse_endpoint_value(std::string_view text) {
  auto take_line = [&text](std::string_view& line) {
    const std::size_t newline = text.find('\n');
    if (newline == std::string_view::npos) return false;
    line = text.substr(0, newline);
    text.remove_prefix(newline + 1);
    return true;
  };
  std::string_view line;
  if (!take_line(line) || line != "planfence-endpoint 1") return fail_at(errc::parse_error, 1, 1, "expected 'planfence-endpoint 1'");
  std::uint64_t numbers[2] = {0, 0};
  constexpr std::string_view keywords[2] = {"generation ", "fence "};
  for (int i = 0; i < 2; ++i) {
    if (!take_line(line) || line.substr(0, keywords[i].size()) != keywords[i]) {
      return fail_at(errc::parse_error, static_cast<std::uint32_t>(i + 2), 1, "expected '" + std::string(keywords[i]) + "N'");
    }
    auto n = read_decimal(line.substr(keywords[i].size()));
    if (!n) return fail_at(errc::parse_error, static_cast<std::uint32_t>(i + 2), static_cast<std::uint32_t>(keywords[i].size() + 1), "expected a number");
    numbers[i] = *n;
  }
  if (numbers[0] == 0 || numbers[0] > generation_max.value()) {
    return fail_at(errc::parse_error, 2, 12, "generation " + std::to_string(numbers[0]) + " out of range 1.." +
                                                 std::to_string(generation_max.value()));
  }
  if (numbers[1] > (std::uint64_t{1} << 63) - 2) {
    return fail_at(errc::parse_error, 3, 7, "fence " + std::to_string(numbers[1]) + " out of range 0..2^63-2");
  }
  // The rest is an endpoint block of the plan text form: let the plan parser validate it.
  std::string as_plan = "planfence-plan 1\ngeneration " + std::to_string(numbers[0]) + "\ncreated-unix-ms 0\n";
  as_plan += text;
  auto parsed = parse_plan(as_plan, parse_plan_options{.require_digest = false});
  // Lines 4.. of that text are lines 4.. of the value, so the parser's line numbers hold.
  if (!parsed) return unexpected_error(std::move(parsed).error());
  if (parsed->size() != 1) return fail(errc::parse_error, "an endpoint value holds exactly one endpoint block");
  return endpoint_value{generation{numbers[0]}, fence_token{numbers[1]}, parsed->endpoints()[0]->records,
                        parsed->endpoints()[0]->name};
}

/// What the keys planfence keeps under a prefix look like, read in one read-only transaction
/// (no revision is created). Opening a store or a history reads it.
struct prefix_state {
  bool anything = false;        ///< any key planfence keeps is there (endpoints, plans, pins, floor, marks, ...)
  bool fence_floor = false;     ///< P/fence-floor exists
  bool plans_collected = false; ///< P/plans-collected exists
  std::int64_t revision = 0;    ///< the revision it was read at
};

/// Reads the prefix_state of `keys` (one read-only transaction of keys-only ranges, limit 1).
/// Errors: errc::store_unavailable (with etcd's words).
[[nodiscard]] inline result<prefix_state> read_prefix_state(client& c, const layout& keys) {
  auto under = [](const std::string& from) { return op::range(from, prefix_end(from), 1, true); };
  auto one = [](const std::string& key) { return op::range(key, {}, 0, true); };
  auto got = c.txn({}, {under(keys.endpoints()), under(keys.plans()), under(keys.all_pins()), one(keys.fence_floor()),
                        one(keys.plans_collected()), one(keys.sequence()), one(keys.holder()), one(keys.marks())},
                   {});
  if (!got) {
    // A wrong password or a refused permission is said as such at open, not as an outage.
    if (got.error().code == errc::authentication_failed) {
      return fail(errc::authentication_failed, "reading what is under " + keys.prefix + ": " + got.error().detail);
    }
    return etcd_failure("reading what is under " + keys.prefix, got.error());
  }
  if (!got->succeeded || got->responses.size() != 8) {
    return fail(errc::store_unavailable, "reading what is under " + keys.prefix + ": unexpected transaction response");
  }
  prefix_state out;
  out.revision = got->revision;
  for (const range_result& r : got->responses) out.anything = out.anything || !r.kvs.empty();
  out.fence_floor = !got->responses[3].kvs.empty();
  out.plans_collected = !got->responses[4].kvs.empty();
  return out;
}

/// The errc::not_found of open_options::must_exist, naming the prefix and the members asked.
[[nodiscard]] inline unexpected_error nothing_under(const layout& keys, const client_config& config) {
  std::string members;
  for (const member_address& m : config.members) {
    members += members.empty() ? "" : ",";
    members += m.host.find(':') != std::string::npos ? "[" + m.host + "]" : m.host;
    members += ":" + std::to_string(m.port);
  }
  return fail(errc::not_found, "nothing under " + keys.prefix + " at etcd " + members +
                                   ": no endpoint, plan, pin, fence floor, apply marks, sequence or holder key; check the prefix");
}

/// What one transaction of an etcd store may hold: the server's --max-txn-ops (operations in each
/// of compare, success and failure) and --max-request-bytes (the store counts the JSON body it
/// sends, base64 and all, which is larger than the protobuf request etcd measures). The defaults
/// are etcd's. A store told more than its server allows has its batches refused by etcd with an
/// error that names the option (nothing is written: etcd checks before it applies).
struct txn_limits {
  std::size_t max_txn_ops = 128;
  std::size_t max_request_bytes = std::size_t{1536} * 1024;
  static constexpr std::size_t txn_ops_min = 4;  ///< one item, the two floor compares and the holder compare
  static constexpr std::size_t txn_ops_max = 1'000'000;
  static constexpr std::size_t request_bytes_min = 1024;
  static constexpr std::size_t request_bytes_max = (std::size_t{1} << 31) - 1;
  friend bool operator==(const txn_limits&, const txn_limits&) = default;
};

/// What an etcd store URI's query asks for: `fence=holder|floor`, `max-txn-ops=N`,
/// `max-request-bytes=N`, joined by '&', each at most once.
struct store_uri_options {
  fence_mode mode = fence_mode::holder_key;
  txn_limits limits;
};

/// Reads one `name=value` of an etcd store URI's query into `out` (`seen`: the names read so far).
/// Errors: errc::parse_error without the URI (the caller names it, redacted).
[[nodiscard]] inline result<void> read_store_option(std::string_view pair, store_uri_options& out, unsigned& seen) {
  const std::size_t eq = pair.find('=');
  const std::string_view name = pair.substr(0, eq);
  const std::string_view value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
  auto number = [&](std::size_t lo, std::size_t hi, std::size_t& into, const char* what) -> result<void> {
    const auto n = eq == std::string_view::npos ? std::nullopt : read_decimal(value);
    if (!n || *n < lo || *n > hi) {
      return fail(errc::parse_error, std::string(what) + " takes an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    into = static_cast<std::size_t>(*n);
    return ok();
  };
  unsigned bit = 0;
  result<void> done = ok();
  if (is_connection_parameter(name)) return ok();  // the client's: etcd::parse_uri reads them
  if (name == "fence" && (value == "holder" || value == "floor")) {
    bit = 1;
    out.mode = value == "holder" ? fence_mode::holder_key : fence_mode::floor_only;
  } else if (name == "max-txn-ops") {
    bit = 2;
    done = number(txn_limits::txn_ops_min, txn_limits::txn_ops_max, out.limits.max_txn_ops,
                  "max-txn-ops (etcd's --max-txn-ops, 128 by default)");
  } else if (name == "max-request-bytes") {
    bit = 4;
    done = number(txn_limits::request_bytes_min, txn_limits::request_bytes_max, out.limits.max_request_bytes,
                  "max-request-bytes (etcd's --max-request-bytes, 1572864 by default)");
  } else {
    return fail(errc::parse_error, "unknown etcd store URI option: the options are fence=holder or fence=floor, "
                                   "max-txn-ops=N and max-request-bytes=N, and the connection's user, password-file, "
                                   "password-env, ca-file, cert-file, key-file and server-name");
  }
  if (!done) return done;
  if ((seen & bit) != 0) return fail(errc::parse_error, "etcd store URI option " + std::string(name) + " given twice");
  seen |= bit;
  return ok();
}

/// The options of an etcd store URI (everything after '?'; none: the defaults). No I/O. Errors:
/// errc::parse_error naming the URI through detail::redact_uri, never the option as given.
[[nodiscard]] inline result<store_uri_options> parse_store_uri_options(std::string_view uri) {
  store_uri_options out;
  const std::size_t query = uri.find('?');
  if (query == std::string_view::npos) return out;
  std::string_view rest = uri.substr(query + 1);
  unsigned seen = 0;
  for (;;) {
    const std::size_t amp = rest.find('&');
    auto one = read_store_option(rest.substr(0, amp), out, seen);
    if (!one) return fail(errc::parse_error, std::string(one.error().detail.view()) + " (in " + detail::redact_uri(uri) + ")");
    if (amp == std::string_view::npos) return out;
    rest = rest.substr(amp + 1);
  }
}

}  // namespace etcd

/// The etcd record store. See the header comment.
class etcd_store {
 public:
  /// Bound on endpoints a store resolves (handles are 32-bit; etcd holds far fewer comfortably).
  static constexpr std::size_t endpoints_max = std::size_t{1} << 20;
  /// Attempts of raise_fence's read-then-transaction loop before it reports a conflict.
  static constexpr int raise_attempts_max = 16;
  /// Sends of one commit (or begin_apply) when the fence floor key appears or vanishes between them.
  static constexpr int commit_attempts_max = 4;
  /// Transactions of one finish_apply when the marks keep moving under it.
  static constexpr int apply_attempts_max = 8;

  /// A store under `prefix` (etcd::layout.hpp) in the cluster `config` names. `names`: the endpoints
  /// it resolves; empty: every canonical name (endpoints come into being at their first
  /// commit). Writes nothing: one read-only transaction checks that etcd answers and what the
  /// prefix holds. Errors: errc::invalid_name, errc::store_unavailable, errc::not_found (nothing
  /// under the prefix, with `options.must_exist`).
  [[nodiscard]] static result<etcd_store> make(etcd::client_config config, std::string prefix,
                                               const std::vector<std::string>& names = {},
                                               etcd::fence_mode mode = etcd::fence_mode::holder_key, etcd::open_options options = {},
                                               etcd::txn_limits limits = {}) {
    if (limits.max_txn_ops < etcd::txn_limits::txn_ops_min || limits.max_txn_ops > etcd::txn_limits::txn_ops_max ||
        limits.max_request_bytes < etcd::txn_limits::request_bytes_min ||
        limits.max_request_bytes > etcd::txn_limits::request_bytes_max) {
      return fail(errc::parse_error, "etcd store limits out of range: max-txn-ops " + std::to_string(limits.max_txn_ops) +
                                         " (4 to 1000000), max-request-bytes " + std::to_string(limits.max_request_bytes) +
                                         " (1024 to 2^31 - 1)");
    }
    if (config.key_prefix.empty()) config.key_prefix = prefix;  // named by a refused permission
    etcd_store out(std::make_unique<etcd::client>(std::move(config)), etcd::layout{std::move(prefix)}, mode);
    out.limits_ = limits;
    out.fixed_ = !names.empty();
    for (const std::string& n : names) {
      auto canonical = canonical_name(n);
      if (!canonical) return fail(errc::invalid_name, "endpoint '" + n + "': " + canonical.error().detail);
      if (out.index_->names.size() >= endpoints_max) return fail(errc::capacity_exceeded, "more than 2^20 endpoints");
      if (out.index_->by_name.contains(*canonical)) return fail(errc::invalid_plan, "endpoint " + *canonical + " given twice");
      out.index_->by_name.emplace(*canonical, static_cast<std::uint32_t>(out.index_->names.size()));
      out.index_->names.push_back(std::move(*canonical));
    }
    auto state = etcd::read_prefix_state(*out.client_, out.keys_);
    if (!state) return unexpected_error(state.error());
    if (options.must_exist && !state->anything) return etcd::nothing_under(out.keys_, out.client_->config());
    out.index_->floor_exists.store(state->fence_floor, std::memory_order_relaxed);
    return out;
  }

  /// Opens `etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?OPTION&OPTION...]` (or etcds:// for TLS;
  /// every canonical name resolves). The connection's options (user, password-file,
  /// password-env, ca-file, cert-file, key-file, server-name) are etcd::parse_uri's. The store's
  /// options, each at most once:
  ///   fence=holder (the default) is holder-key fencing, for enactors holding the etcd lease
  ///     authority's tokens; fence=floor is etcd::fence_mode::floor_only, for tools whose tokens
  ///     are not holder-key revisions, such as planfence-ctl's apply and override (the operator's
  ///     fence then protects the store through the fence floor, which holder-key commits also
  ///     compare);
  ///   max-txn-ops=N (4 to 1000000, default 128) and max-request-bytes=N (1024 to 2^31 - 1,
  ///     default 1572864): the server's --max-txn-ops and --max-request-bytes, which bound the
  ///     transactions of commit_batch and read_stamps (etcd::txn_limits). Set them to the
  ///     server's values when it was started with others; a store told more than the server
  ///     allows gets its batches refused by etcd, with an error naming the option.
  /// Read-only tools pass `{.must_exist = true}` to be told of a mistyped prefix (errc::not_found)
  /// instead of reading an empty store. Errors: errc::parse_error (naming the URI redacted,
  /// never the option as given) and those of make().
  [[nodiscard]] static result<etcd_store> open_uri(std::string_view uri, etcd::open_options options = {}) {
    const std::string_view given = uri;
    auto query = etcd::parse_store_uri_options(uri);
    if (!query) return unexpected_error(query.error());
    static constexpr std::array<std::string_view, 3> store_parameters = {"fence", "max-txn-ops", "max-request-bytes"};
    auto where = etcd::parse_uri(given, store_parameters);
    if (!where) return unexpected_error(where.error());
    return make(std::move(where->config), std::move(where->prefix), {}, query->mode, options, query->limits);
  }

  /// The fence mode an etcd store URI asks for (`?fence=holder`, the default, or `?fence=floor`),
  /// without opening anything: no I/O. For tools that must refuse holder-key mode before they
  /// commit with tokens that are not holder-key revisions (planfence-ctl's apply and override);
  /// on an open store, mode() says the same. Errors: errc::parse_error (any option open_uri does
  /// not take, the URI named redacted, never the option as given).
  [[nodiscard]] static result<etcd::fence_mode> mode_of_uri(std::string_view uri) {
    auto query = etcd::parse_store_uri_options(uri);
    if (!query) return unexpected_error(query.error());
    return query->mode;
  }

  /// Whether the prefix holds any key planfence keeps (endpoints, the floor, plans, pins, the
  /// sequence or the holder key): false for a mistyped or unused prefix, where every read finds
  /// nothing. One read-only transaction. Errors: errc::store_unavailable.
  [[nodiscard]] result<bool> exists() const {
    auto state = etcd::read_prefix_state(*client_, keys_);
    if (!state) return unexpected_error(state.error());
    return state->anything;
  }

  etcd_store(etcd_store&&) noexcept = default;
  etcd_store& operator=(etcd_store&&) noexcept = default;

  [[nodiscard]] const etcd::layout& keys() const noexcept { return keys_; }
  [[nodiscard]] etcd::fence_mode mode() const noexcept { return mode_; }
  /// HTTP requests this store's client has sent (every attempt): round trips, for tests and
  /// benchmarks.
  [[nodiscard]] std::uint64_t requests_sent() const noexcept { return client_->requests_sent(); }
  /// Transactions that may write this store has sent (commit, each send of a unit of
  /// commit_batch, begin_apply, finish_apply's conditional write, raise_fence's), each send once
  /// whatever the client's retries; read-only transactions are not counted: what tests and
  /// benchmarks read to see a batch split, or a write of the marks folded or not.
  [[nodiscard]] std::uint64_t transactions_sent() const noexcept {
    return index_->transactions_sent.load(std::memory_order_relaxed);
  }

  /// The bounds of one transaction of commit_batch and read_stamps (open_uri's options).
  [[nodiscard]] const etcd::txn_limits& limits() const noexcept { return limits_; }
  [[nodiscard]] etcd::client& connection() const noexcept { return *client_; }

  /// The handle of a canonical name. No I/O; takes a mutex. Errors: errc::unknown_endpoint (not
  /// in a fixed set, or not a valid canonical name), errc::capacity_exceeded.
  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const {
    std::lock_guard lock(index_->mutex);
    if (auto it = index_->by_name.find(std::string(name)); it != index_->by_name.end()) return endpoint_handle{it->second};
    if (fixed_) return fail(errc::unknown_endpoint, "not among the endpoints this store was opened with");
    auto canonical = canonical_name(name);
    if (!canonical || *canonical != name) return fail(errc::unknown_endpoint, "not a canonical endpoint name");
    if (index_->names.size() >= endpoints_max) return fail(errc::capacity_exceeded, "more than 2^20 endpoints resolved");
    const auto handle = static_cast<std::uint32_t>(index_->names.size());
    index_->by_name.emplace(*canonical, handle);
    index_->names.push_back(std::move(*canonical));
    return endpoint_handle{handle};
  }

  /// The endpoint's name. Takes a mutex.
  [[nodiscard]] std::string name(endpoint_handle h) const {
    std::lock_guard lock(index_->mutex);
    PLANFENCE_ASSERT(h.index() < index_->names.size());
    return index_->names[h.index()];
  }

  /// The endpoint's stamp: one linearizable range. Errors: errc::store_unavailable (etcd
  /// unreachable, or the value is not an endpoint value: the detail says which key).
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const {
    const std::string endpoint_name = name(h);
    const std::string key = keys_.endpoint(endpoint_name);
    auto got = client_->range(key);
    if (!got) return etcd::etcd_failure("reading " + key, got.error());
    if (got->kvs.empty()) return stamp{};
    auto value = decode(key, endpoint_name, got->kvs[0].value);
    if (!value) return unexpected_error(value.error());
    return stamp{value->gen, value->fence, static_cast<std::uint64_t>(got->kvs[0].mod_revision)};
  }

  /// One transaction (header comment). Outcomes as docs/concepts.md says; errc::store_unavailable
  /// also when the transaction's outcome is unknown (the member failed after receiving it): read
  /// the stamp again, which tells. Blocking; allocates.
  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired,
                                     const record_set& records) {
    PLANFENCE_ASSERT(desired.gen != generation_none);
    if (desired.gen > generation_max || desired.fence.value() > fence_value_max) {
      return fail(errc::capacity_exceeded, "generation " + std::to_string(desired.gen.value()) + " or fence " +
                                               std::to_string(desired.fence.value()) + " beyond the store's range");
    }
    // Refusals that the expected stamp already proves: generations and fences never decrease.
    if (expected.gen >= desired.gen) return result<stamp>(unexpect, errc::stale);
    const std::string endpoint_name = name(h);
    const std::string key = keys_.endpoint(endpoint_name);
    if (expected.fence > desired.fence) {
      return fail(errc::fenced, key + " carries fence " + std::to_string(expected.fence.value()) +
                                    ", above the commit's token " + std::to_string(desired.fence.value()));
    }
    const std::string value = etcd::format_endpoint_value(endpoint_name, desired.gen, desired.fence, records);
    const std::vector<etcd::op> why = fence_reads(etcd::op::range(key));
    for (int attempt = 0; attempt < commit_attempts_max; ++attempt) {
      const bool floor_exists = index_->floor_exists.load(std::memory_order_relaxed);
      std::vector<etcd::compare> compares;
      compares.push_back(expected.version == 0 ? etcd::compare::create_revision(key, 0)
                                               : etcd::compare::mod_revision(key, static_cast<std::int64_t>(expected.version)));
      std::vector<etcd::op> success = {etcd::op::put(key, value)};
      add_fence_conditions(compares, success, desired.fence, floor_exists);
      count_transaction();
      auto done = client_->txn(compares, success, why);
      if (!done) return etcd::etcd_failure("commit to " + key, done.error());
      if (done->succeeded) {
        index_->floor_exists.store(true, std::memory_order_relaxed);
        return stamp{desired.gen, desired.fence, static_cast<std::uint64_t>(done->revision)};
      }
      auto refusal = classify_refusal(*done, key, desired, floor_exists);
      if (refusal) return std::move(*refusal);
      // The floor key's existence was not what the etcd::compare assumed: send the other form.
    }
    return fail(errc::conflict, keys_.fence_floor() + " kept appearing and vanishing during the commit to " + key);
  }

  /// The stamps of `handles` into `out` (same size), read as read_stamp reads one: read-only
  /// transactions of range operations, as few as limits() allow (one for up to max-txn-ops
  /// endpoints). Each value is checked as read_stamp checks it. Fills all of `out` or fails as a
  /// whole (errc::store_unavailable naming the key or with etcd's words). Blocking; allocates.
  [[nodiscard]] result<void> read_stamps(std::span<const endpoint_handle> handles, std::span<stamp> out) const {
    PLANFENCE_ASSERT(handles.size() == out.size());
    return read_endpoints(handles, [&](std::size_t i, const etcd::endpoint_value* value, std::int64_t revision) {
      out[i] = value == nullptr ? stamp{} : stamp{value->gen, value->fence, static_cast<std::uint64_t>(revision)};
    });
  }

  /// The stamps and records of several endpoints (batch_inspectable_store), read as read_stamps
  /// reads them: up to max-txn-ops keys per read-only transaction. Errors as read_stamps.
  [[nodiscard]] result<void> inspect(std::span<const endpoint_handle> handles, std::span<endpoint_state> out) const {
    PLANFENCE_ASSERT(handles.size() == out.size());
    return read_endpoints(handles, [&](std::size_t i, const etcd::endpoint_value* value, std::int64_t revision) {
      if (value == nullptr) {
        out[i] = endpoint_state{};
        return;
      }
      out[i].st = stamp{value->gen, value->fence, static_cast<std::uint64_t>(revision)};
      out[i].records.assign(value->records.records().begin(), value->records.records().end());
    });
  }

  /// The enactor's batch when its batch_max is 0 (planfence::preferred_batch_max): one
  /// transaction's worth of items with room for the apply marks, max-txn-ops - 4 (124 at etcd's
  /// default 128; a unit without the marks holds one more), so that each batch is one range read
  /// of its stamps and one transaction, the first and the last with the marks.
  [[nodiscard]] std::uint32_t preferred_batch_max() const noexcept {
    return static_cast<std::uint32_t>(std::clamp<std::size_t>(limits_.max_txn_ops - 4, 1, batch_max_limit));
  }

  /// Each item committed under its own condition, exactly as commit() would decide it
  /// (store.hpp's batched_store), in as few transactions as limits() allow: the items are
  /// grouped by desired fence and packed into units of at most max-txn-ops - 3 items whose JSON
  /// body fits max-request-bytes, and each unit is ONE transaction (the header comment's Cost,
  /// docs/etcd.md): a compare per item, the floor and holder compares once, a put per item; its
  /// failure branch reads every item's key, the floor and the holder, so that the items whose
  /// own condition failed are marked stale, fenced or conflict and the rest of the unit is sent
  /// again (until it is written or empty). A unit is applied whole or not at all.
  /// Errors (before any I/O, nothing decided): errc::capacity_exceeded for a generation or fence
  /// beyond the store's range, or an item whose transaction alone would exceed
  /// max-request-bytes (naming the endpoint and the sizes). Then errc::store_unavailable: etcd
  /// could not be reached or refused a transaction (its words; a refusal for too many operations
  /// or a request too large names the store option to lower), which ends the batch with the
  /// items not yet decided `pending` (those of the failed transaction may have been written when
  /// the failure came after etcd received it: read them again); or an item whose key holds a
  /// corrupt value (that item stays `pending`, the others are decided; the error names the key).
  /// Blocking; allocates.
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items) {
    auto plan = plan_batch(items);
    if (!plan) return unexpected_error(plan.error());
    std::optional<error> corrupt;
    for (const batch_unit& unit : plan->units) {
      std::vector<const batch_entry*> live;
      for (std::size_t i = unit.begin; i < unit.end; ++i) live.push_back(&plan->entries[i]);
      auto done = commit_unit(items, std::move(live), plan->entries[unit.begin].fence, corrupt);
      if (!done) return done;
    }
    if (corrupt) return unexpected_error(std::move(*corrupt));
    return ok();
  }

  /// commit_batch with the apply marks (marks_batch_store, store.hpp; the header comment's "apply
  /// marks in a batch"): exactly begin_apply(*marks.begin, target, token) (if asked),
  /// commit_batch(items), then finish_apply(target, token) (if asked and every item came out
  /// written or stale), except that the begin goes in the batch's first transaction and the
  /// finish in its last: a batch that fits one transaction, with both, is ONE transaction, which
  /// moves the marks from *marks.begin straight to {target, target} with its items. A transaction
  /// that carries the marks also compares their mod revision (as begin_apply does), puts them,
  /// and reads them in its failure branch; the units that carry them keep room for that (one
  /// item fewer, and the marks' bytes). A begin refused (fenced: the floor or the holder key
  /// refuse the token; conflict: the marks moved), decided by that failure branch, writes
  /// nothing: the error is returned with begin_refused set and every item `pending`. The begin is
  /// begin_apply's own transaction, before anything else, when the first unit's fence is not
  /// marks.token or nothing is to be sent; and after the first unit when every item of that unit
  /// was refused. The finish goes with the last unit only when its fence is marks.token and every
  /// item decided before it is written or stale; it compares the marks as this call knows them
  /// (written by its begin, else as the store last saw them, else one read_marks); when they say
  /// A >= target already, nothing is written for it (finished once an item of the last unit is
  /// written under the token). A transaction with the finish that is refused is sent again
  /// without it (declined: finished stays false, the caller finishes), unless the marks are still
  /// as expected and every item it refused is stale. Errors as commit_batch and begin_apply; a
  /// transaction whose answer was lost (errc::store_unavailable) may have written its items and
  /// its marks: read them again, as after begin_apply.
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items, batch_marks& marks) {
    PLANFENCE_ASSERT(marks.begin == nullptr || marks.target > marks.begin->begun);
    marks.began = marks.begin_refused = marks.finished = false;
    if (marks.begin == nullptr && !marks.finish) return commit_batch(items);
    // No room for the marks beside an item (max-txn-ops 4), or marks out of range: the separate
    // calls, which say why.
    if (limits_.max_txn_ops < marks_txn_ops_min || !check_apply_range(marks.target, marks.token)) {
      return commit_batch_then_marks(*this, items, marks);
    }
    auto plan = plan_batch(items, marks.begin != nullptr, marks.finish);
    if (!plan) return unexpected_error(plan.error());
    const std::vector<batch_unit>& units = plan->units;
    auto fence_of = [&](const batch_unit& unit) { return plan->entries[unit.begin].fence; };
    if (marks.begin != nullptr && (units.empty() || !plan->first_has_room || fence_of(units[0]) != marks.token)) {
      if (auto begun = begin_batch_separately(*this, items, marks); !begun) return begun;
    }
    std::optional<error> corrupt;
    for (std::size_t u = 0; u < units.size(); ++u) {
      unit_marks carried{};
      carried.target = marks.target;
      carried.token = marks.token;
      if (u == 0 && marks.begin != nullptr && !marks.began) {
        carried.begin = true;
        carried.expected = *marks.begin;
      }
      std::optional<apply_marks> finished_already;
      if (u + 1 == units.size() && marks.finish && plan->last_has_room && !corrupt && batch_settled(items) &&
          fence_of(units[u]) == marks.token) {
        std::optional<apply_marks> known = carried.begin ? std::optional<apply_marks>(*marks.begin)
                                           : marks.began ? std::optional<apply_marks>(marks.marks)
                                                         : remembered_marks();
        if (!known) {
          if (auto read = read_marks()) known = *read;  // else declined: finish_apply meets the error
        }
        if (known && known->applied >= marks.target) {
          finished_already = known;
        } else if (known) {
          carried.finish = true;
          carried.expected = *known;
        }
      }
      std::vector<const batch_entry*> live;
      for (std::size_t i = units[u].begin; i < units[u].end; ++i) live.push_back(&plan->entries[i]);
      auto done = commit_unit(items, std::move(live), fence_of(units[u]), corrupt,
                              carried.begin || carried.finish ? &carried : nullptr);
      if (auto settled = settle_marks_unit(*this, items, marks, carried, std::move(done), u == 0); !settled) return settled;
      const bool written_under_token = std::any_of(plan->entries.begin() + static_cast<std::ptrdiff_t>(units[u].begin),
                                                   plan->entries.begin() + static_cast<std::ptrdiff_t>(units[u].end),
                                                   [&](const batch_entry& e) { return items[e.item].outcome == commit_outcome::written; });
      if (carried.found_finished) finished_already = carried.found_finished;
      if (finished_already && !corrupt && batch_settled(items) && written_under_token) {
        marks.finished = true;
        marks.marks = *finished_already;
      }
    }
    if (corrupt) return unexpected_error(std::move(*corrupt));
    return ok();
  }

  /// After this returns, etcd refuses every commit with a smaller token (the floor is compared
  /// inside each commit's transaction, so no commit can straddle the raise). Never lowers it.
  /// Errors: errc::store_unavailable, errc::conflict (the floor kept moving), capacity_exceeded.
  /// A floor that is not 20 decimal digits up to fence_value_max is refused (errc::store_unavailable
  /// naming the key and the value), never overwritten or taken as 0. A floor already at or above
  /// `token` is left alone (success: the guarantee holds; read fence_floor() to know whether the
  /// caller's own token still passes). Errors: errc::store_unavailable, errc::conflict (the floor
  /// kept moving), capacity_exceeded.
  [[nodiscard]] result<void> raise_fence(fence_token token) {
    if (token.value() > fence_value_max) {
      return fail(errc::capacity_exceeded, "fence token " + std::to_string(token.value()) + " beyond 2^63-2");
    }
    const std::string key = keys_.fence_floor();
    for (int attempt = 0; attempt < raise_attempts_max; ++attempt) {
      auto got = client_->range(key);
      if (!got) return etcd::etcd_failure("reading " + key, got.error());
      etcd::compare unchanged = etcd::compare::create_revision(key, 0);
      if (got->kvs.empty()) {
        if (token.value() == 0) return ok();  // a missing floor is 0 already
      } else {
        index_->floor_exists.store(true, std::memory_order_relaxed);
        auto floor = etcd::read_padded_value(key, got->kvs[0].value, fence_value_max);
        if (!floor) return unexpected_error(floor.error());
        if (*floor >= token.value()) return ok();
        unchanged = etcd::compare::mod_revision(key, got->kvs[0].mod_revision);
      }
      count_transaction();
      auto raised = client_->txn({unchanged}, {etcd::op::put(key, etcd::padded(token.value()))}, {});
      if (!raised) return etcd::etcd_failure("raising " + key + " to " + std::to_string(token.value()), raised.error());
      if (raised->succeeded) {
        index_->floor_exists.store(true, std::memory_order_relaxed);
        return ok();
      }
    }
    return fail(errc::conflict, key + " kept moving while it was raised");
  }

  /// The store's fence floor: one linearizable range; 0 when the key does not exist yet.
  /// Errors: errc::store_unavailable (etcd's words, or a corrupt value: the key and the value).
  [[nodiscard]] result<fence_token> fence_floor() const {
    auto got = client_->range(keys_.fence_floor());
    if (!got) return etcd::etcd_failure("reading " + keys_.fence_floor(), got.error());
    if (got->kvs.empty()) return fence_token{};
    auto floor = etcd::read_padded_value(keys_.fence_floor(), got->kvs[0].value, fence_value_max);
    if (!floor) return unexpected_error(floor.error());
    return fence_token{*floor};
  }

  /// The apply marks (change_following_store): one linearizable range of P/apply-marks; both
  /// marks generation_none and version 0 when the key was never written. The version is the key's
  /// mod revision, which begin_apply compares. Errors: errc::parse_error naming the key and the
  /// value (not "begun=B applied=A" in decimal, a mark beyond generation_max, applied above
  /// begun), errc::store_unavailable (etcd's words).
  [[nodiscard]] result<apply_marks> read_marks() const {
    const std::string key = keys_.marks();
    auto got = client_->range(key);
    if (!got) return etcd::etcd_failure("reading " + key, got.error());
    auto marks = marks_of(*got);
    if (marks) remember_marks(*marks);
    return marks;
  }

  /// B := target, iff the marks are still `expected` (their key's mod revision, or the key still
  /// missing when expected.version is 0) and `token` passes the fence floor (and, in holder-key
  /// mode, is the holder key's create revision): ONE transaction, the header comment's
  /// "begin_apply". The applied mark is written unchanged (expected.applied). Returns the marks
  /// stored (version: the new mod revision). Refusals, nothing written: errc::fenced (the floor
  /// or the holder key refuse the token; the message says which), errc::conflict (the marks moved
  /// since `expected` was read: read them again and decide again), both decided by the failure
  /// branch's reads at one revision. Errors: errc::capacity_exceeded (target or token beyond the
  /// store's range, before any I/O), errc::parse_error (the marks key holds a corrupt value),
  /// errc::store_unavailable (etcd's words; also when the outcome is unknown: read the marks
  /// again). Precondition: target > expected.begun.
  [[nodiscard]] result<apply_marks> begin_apply(const apply_marks& expected, generation target, fence_token token) {
    PLANFENCE_ASSERT(target > expected.begun);
    PLANFENCE_ASSERT(expected.applied <= expected.begun);
    if (auto range = check_apply_range(target, token); !range) return unexpected_error(range.error());
    const std::string key = keys_.marks();
    const apply_marks desired{target, expected.applied, 0};
    const std::string value = etcd::format_marks(desired);
    const std::vector<etcd::op> why = fence_reads(etcd::op::range(key));
    const std::string what = "begin_apply of generation " + std::to_string(target.value()) + " at " + key;
    for (int attempt = 0; attempt < commit_attempts_max; ++attempt) {
      const bool floor_exists = index_->floor_exists.load(std::memory_order_relaxed);
      std::vector<etcd::compare> compares = {marks_unchanged(expected)};
      std::vector<etcd::op> success = {etcd::op::put(key, value)};
      add_fence_conditions(compares, success, token, floor_exists);
      count_transaction();
      auto done = client_->txn(compares, success, why);
      if (!done) return etcd::etcd_failure(what, done.error());
      if (done->succeeded) return stored_marks(desired, done->revision);
      auto seen = marks_state_of(*done, token, "begin_apply's token", what);
      if (!seen) return unexpected_error(seen.error());
      if (seen->marks.version != expected.version) return marks_moved(expected, seen->marks);
      // Neither the floor nor the marks refuse it: the floor key's existence was not what the
      // compare assumed (created or deleted meanwhile). Send the other form.
      if (seen->floor_exists == floor_exists) break;
    }
    return fail(errc::conflict, keys_.fence_floor() + " kept appearing and vanishing during " + what);
  }

  /// A := max(A, target) and B := max(B, target), iff `token` passes the fence floor (and, in
  /// holder-key mode, is the holder key's create revision): one transaction comparing the marks'
  /// mod revision as this store last saw them (from read_marks, begin_apply or an earlier
  /// finish_apply; else one read-only transaction of the marks, the floor and the holder key
  /// first). When the marks moved, the failure branch's reads give the new ones and the write is
  /// sent again (apply_attempts_max sends in all). When A is already target or newer nothing is
  /// written, but the fence is still checked (by that read-only transaction). Idempotent; returns
  /// the marks stored. Refusals: errc::fenced (nothing written). Errors: errc::capacity_exceeded,
  /// errc::parse_error (a corrupt marks key), errc::conflict (the marks kept moving),
  /// errc::store_unavailable (etcd's words; also when the outcome is unknown: calling again is
  /// harmless).
  [[nodiscard]] result<apply_marks> finish_apply(generation target, fence_token token) {
    PLANFENCE_ASSERT(target != generation_none);
    if (auto range = check_apply_range(target, token); !range) return unexpected_error(range.error());
    const std::string key = keys_.marks();
    const std::vector<etcd::op> why = fence_reads(etcd::op::range(key));
    const std::string what = "finish_apply of generation " + std::to_string(target.value()) + " at " + key;
    std::optional<apply_marks> known = remembered_marks();
    bool floor_exists = index_->floor_exists.load(std::memory_order_relaxed);
    for (int attempt = 0; attempt < apply_attempts_max; ++attempt) {
      if (!known || known->applied >= target) {
        // Nothing known, or nothing to write as far as this store knows: read the marks, the floor
        // and the holder key at one revision, so that a fenced token is refused all the same.
        auto got = client_->txn({}, why, {});
        if (!got) return etcd::etcd_failure(what, got.error());
        auto seen = marks_state_of(*got, token, "finish_apply's token", what);
        if (!seen) return unexpected_error(seen.error());
        floor_exists = seen->floor_exists;
        if (seen->marks.applied >= target) return seen->marks;
        known = seen->marks;
      }
      const apply_marks desired{std::max(known->begun, target), target, 0};
      std::vector<etcd::compare> compares = {marks_unchanged(*known)};
      std::vector<etcd::op> success = {etcd::op::put(key, etcd::format_marks(desired))};
      add_fence_conditions(compares, success, token, floor_exists);
      count_transaction();
      auto done = client_->txn(compares, success, why);
      if (!done) return etcd::etcd_failure(what, done.error());
      if (done->succeeded) return stored_marks(desired, done->revision);
      auto seen = marks_state_of(*done, token, "finish_apply's token", what);
      if (!seen) return unexpected_error(seen.error());
      floor_exists = seen->floor_exists;
      if (seen->marks.applied >= target) return seen->marks;  // finished meanwhile: nothing to write
      known = seen->marks;
    }
    return fail(errc::conflict, key + " kept moving during " + what + " (" + std::to_string(apply_attempts_max) +
                                    " attempts): call it again");
  }

  /// Every endpoint key under the prefix and the apply marks, read at one revision (one read-only
  /// transaction): (name, decoded value, mod revision) per endpoint, the marks, and that revision.
  /// What the S3 check of the etcd registry and live_generations() build on.
  struct snapshot_entry {
    std::string name;
    etcd::endpoint_value value;
    std::int64_t mod_revision = 0;
  };
  struct snapshot {
    std::int64_t revision = 0;
    std::vector<snapshot_entry> endpoints;
    apply_marks marks;  ///< at the same revision (both generation_none: never marked)

    /// Whether plan `gen` is live (S3): it is the applied or the begun mark, or some endpoint's
    /// effective generation (store.hpp's effective_generation: its stamp, or A when the stamp is
    /// older). A plan only stamps older than A name is not live: those endpoints serve A's records.
    [[nodiscard]] bool serves(generation gen) const {
      if (gen == generation_none) return false;
      if (gen == marks.applied || gen == marks.begun) return true;
      return std::any_of(endpoints.begin(), endpoints.end(), [&](const snapshot_entry& e) {
        return e.value.gen != generation_none && effective_generation(e.value.gen, marks) == gen;
      });
    }
    /// The live set serves() describes, ascending, each once.
    [[nodiscard]] std::vector<generation> live() const {
      std::vector<generation> out;
      out.reserve(endpoints.size() + 2);
      for (const snapshot_entry& e : endpoints) {
        if (e.value.gen != generation_none) out.push_back(effective_generation(e.value.gen, marks));
      }
      if (marks.applied != generation_none) out.push_back(marks.applied);
      if (marks.begun != generation_none) out.push_back(marks.begun);
      std::sort(out.begin(), out.end());
      out.erase(std::unique(out.begin(), out.end()), out.end());
      return out;
    }
  };
  [[nodiscard]] result<snapshot> read_all() const {
    const std::string from = keys_.endpoints();
    const std::string marks_key = keys_.marks();
    auto got = client_->txn({}, {etcd::op::range(from, etcd::prefix_end(from)), etcd::op::range(marks_key)}, {});
    if (!got) return etcd::etcd_failure("reading " + from + " and " + marks_key, got.error());
    if (!got->succeeded || got->responses.size() != 2) {
      return fail(errc::store_unavailable, "reading " + from + " and " + marks_key + ": unexpected transaction response");
    }
    snapshot out;
    out.revision = got->revision;
    for (etcd::key_value& kv : got->responses[0].kvs) {
      const std::string endpoint_name = kv.key.substr(from.size());
      auto value = decode(kv.key, endpoint_name, kv.value);
      if (!value) return unexpected_error(value.error());
      out.endpoints.push_back(snapshot_entry{endpoint_name, std::move(*value), kv.mod_revision});
    }
    auto marks = marks_of(got->responses[1]);
    if (!marks) return unexpected_error(marks.error());
    out.marks = *marks;
    return out;
  }

  /// The live set for S3 collection, ascending: every endpoint's effective generation (its stamp,
  /// or the applied mark A when the stamp is older), plus A and B themselves (change_following_store
  /// in store.hpp), from one read-only transaction over every endpoint key and the marks (one
  /// revision), read at the call. Errors: errc::store_unavailable when etcd cannot be read or a
  /// value is corrupt, errc::parse_error for corrupt marks (the registry then collects nothing:
  /// collection_report::live_unavailable, S3). Registries whose collection must be exact across
  /// hosts use etcd_plan_registry::collect, which decides inside a transaction (docs/etcd.md, S3).
  [[nodiscard]] result<std::vector<generation>> live_generations() const {
    auto all = read_all();
    if (!all) return unexpected_error(all.error());
    return all->live();
  }

  /// The records the endpoint serves now (inspectable_store). Errors: errc::store_unavailable.
  [[nodiscard]] result<std::vector<record>> served(endpoint_handle h) const {
    const std::string endpoint_name = name(h);
    const std::string key = keys_.endpoint(endpoint_name);
    auto got = client_->range(key);
    if (!got) return etcd::etcd_failure("reading " + key, got.error());
    if (got->kvs.empty()) return std::vector<record>{};
    auto value = decode(key, endpoint_name, got->kvs[0].value);
    if (!value) return unexpected_error(value.error());
    return std::vector<record>(value->records.records().begin(), value->records.records().end());
  }

  /// Every endpoint etcd holds a key for under the prefix, sorted (inspectable_store).
  [[nodiscard]] result<std::vector<std::string>> endpoint_names() const {
    const std::string from = keys_.endpoints();
    auto got = client_->range(from, etcd::range_options{.range_end = etcd::prefix_end(from), .keys_only = true});
    if (!got) return etcd::etcd_failure("reading " + from, got.error());
    std::vector<std::string> out;
    for (const etcd::key_value& kv : got->kvs) out.push_back(kv.key.substr(from.size()));
    return out;
  }

  /// The largest fence token the store accepts (etcd revisions are int64).
  static constexpr std::uint64_t fence_value_max = (std::uint64_t{1} << 63) - 2;

 private:
  struct name_index {
    std::mutex mutex;
    std::unordered_map<std::string, std::uint32_t> by_name;
    std::vector<std::string> names;
    /// Whether P/fence-floor existed when last seen: which form of the commit to send first.
    std::atomic<bool> floor_exists{false};
    /// The apply marks as last seen (read, written or found by a failure branch): what
    /// finish_apply compares first. Only a guess: a stale one fails the compare and is corrected.
    std::mutex marks_mutex;
    std::optional<apply_marks> marks_seen;
    /// Transactions that may write (transactions_sent()).
    std::atomic<std::uint64_t> transactions_sent{0};
  };

  /// The marks and the floor's existence as a marks transaction's branch read them.
  struct marks_state {
    apply_marks marks;
    bool floor_exists = false;
  };

  /// The marks a range of P/apply-marks read (checked; version: the key's mod revision).
  result<apply_marks> marks_of(const etcd::range_result& read) const {
    if (read.kvs.empty()) return apply_marks{};
    auto marks = etcd::parse_marks(keys_.marks(), read.kvs[0].value);
    if (!marks) return marks;
    marks->version = static_cast<std::uint64_t>(read.kvs[0].mod_revision);
    return marks;
  }

  /// What the reads of fence_reads(range(P/apply-marks)) found, in a failure branch or a
  /// read-only transaction: errc::fenced when the floor or the holder key refuse `token`, the
  /// errors of a corrupt floor or corrupt marks, else the marks (remembered) and the floor's
  /// existence (remembered too).
  result<marks_state> marks_state_of(const etcd::txn_result& done, fence_token token, std::string_view whose,
                                     const std::string& what) const {
    const std::size_t expected_responses = mode_ == etcd::fence_mode::holder_key ? 3 : 2;
    if (done.responses.size() != expected_responses) {
      return fail(errc::store_unavailable, what + ": unexpected transaction response (" + std::to_string(done.responses.size()) +
                                               " ranges)");
    }
    const etcd::range_result* holder = mode_ == etcd::fence_mode::holder_key ? &done.responses[2] : nullptr;
    if (auto fenced = fence_refusal(done.responses[1], holder, token, whose)) return std::move(*fenced);
    auto marks = marks_of(done.responses[0]);
    if (!marks) return unexpected_error(marks.error());
    marks_state out{*marks, !done.responses[1].kvs.empty()};
    index_->floor_exists.store(out.floor_exists, std::memory_order_relaxed);
    remember_marks(out.marks);
    return out;
  }

  /// The compare "the marks are still `m`": their key's mod revision, or the key still missing.
  etcd::compare marks_unchanged(const apply_marks& m) const {
    return m.version == 0 ? etcd::compare::create_revision(keys_.marks(), 0)
                          : etcd::compare::mod_revision(keys_.marks(), static_cast<std::int64_t>(m.version));
  }

  /// `written` as stored by a transaction at `revision` (which also created the floor if missing).
  apply_marks stored_marks(apply_marks written, std::int64_t revision) const {
    written.version = static_cast<std::uint64_t>(revision);
    index_->floor_exists.store(true, std::memory_order_relaxed);
    remember_marks(written);
    return written;
  }

  void count_transaction() const noexcept { index_->transactions_sent.fetch_add(1, std::memory_order_relaxed); }

  void remember_marks(const apply_marks& m) const {
    std::lock_guard lock(index_->marks_mutex);
    index_->marks_seen = m;
  }
  std::optional<apply_marks> remembered_marks() const {
    std::lock_guard lock(index_->marks_mutex);
    return index_->marks_seen;
  }

  /// Marks and tokens the store can hold. Errors: errc::capacity_exceeded.
  static result<void> check_apply_range(generation target, fence_token token) {
    if (target > generation_max || token.value() > fence_value_max) {
      return fail(errc::capacity_exceeded, "generation " + std::to_string(target.value()) + " or fence " +
                                               std::to_string(token.value()) + " beyond the store's range");
    }
    return ok();
  }

  /// The conflict of a begin whose expected marks moved (errc::conflict, both named).
  unexpected_error marks_moved(const apply_marks& expected, const apply_marks& now) const {
    return fail(errc::conflict, keys_.marks() + " moved since it was read (" + describe(expected) + ", now " + describe(now) +
                                    "): read the marks again and decide again");
  }

  /// "begun=B applied=A at revision V" (or "never marked"), for messages.
  static std::string describe(const apply_marks& m) {
    if (m == apply_marks{}) return "never marked";
    return etcd::format_marks(m) + " at revision " + std::to_string(m.version);
  }

  /// Reads the endpoints of `handles` in read-only transactions of up to max-txn-ops ranges
  /// within max-request-bytes, and calls visit(i, value or nullptr when never written, the key's
  /// mod revision) for each, every value checked as read_stamp checks it.
  template <class Visit>
  [[nodiscard]] result<void> read_endpoints(std::span<const endpoint_handle> handles, Visit visit) const {
    const std::vector<std::string> endpoint_names = names_of(handles);
    if (handles.size() >= range_read_min) {
      auto ranged = read_endpoints_in_one_range(endpoint_names, visit);
      if (!ranged) return unexpected_error(ranged.error());
      if (*ranged) return ok();
    }
    std::size_t next = 0;
    while (next < handles.size()) {
      std::string body = "{\"compare\":[],\"success\":[";
      const std::size_t first = next;
      for (; next < handles.size() && next - first < limits_.max_txn_ops; ++next) {
        std::string range = etcd::json_body::op_json(etcd::op::range(keys_.endpoint(endpoint_names[next])));
        if (next != first && body.size() + range.size() + 1 + 16 > limits_.max_request_bytes) break;
        if (next != first) body += ',';
        body += range;
      }
      body += "],\"failure\":[]}";
      const std::string what = "reading " + std::to_string(next - first) + " endpoints from " +
                               keys_.endpoint(endpoint_names[first]);
      auto got = client_->txn_body(body, true);
      if (!got) return etcd::etcd_failure(what, got.error());
      if (!got->succeeded || got->responses.size() != next - first) {
        return fail(errc::store_unavailable, what + ": unexpected transaction response");
      }
      for (std::size_t i = first; i < next; ++i) {
        const etcd::range_result& r = got->responses[i - first];
        if (r.kvs.empty()) {
          visit(i, nullptr, 0);
          continue;
        }
        auto value = decode(r.kvs[0].key, endpoint_names[i], r.kvs[0].value);
        if (!value) return unexpected_error(value.error());
        visit(i, &*value, r.kvs[0].mod_revision);
      }
    }
    return ok();
  }

  /// Batches at least this large are read with one range when they are dense.
  static constexpr std::size_t range_read_min = 16;

  /// The endpoints named `names` (at least range_read_min) read with ONE range request from the
  /// first key to the last, when the store's known endpoints between them are few more than
  /// `names` (an enactor's batch in name order: a slice of the prefix); the range's `limit` bounds
  /// what other writers' keys in between can cost. true: every endpoint visited; false: not
  /// dense, or more keys than the limit (nothing visited: read them in transactions).
  template <class Visit>
  [[nodiscard]] result<bool> read_endpoints_in_one_range(const std::vector<std::string>& names, Visit& visit) const {
    const auto [lowest, highest] = std::minmax_element(names.begin(), names.end());
    std::size_t known = 0;  // the store's endpoints between them (the batch's own included)
    {
      std::lock_guard lock(index_->mutex);
      for (const std::string& name : index_->names) known += name >= *lowest && name <= *highest ? 1 : 0;
    }
    const std::size_t slack = names.size() / 4 + 8;
    if (known > names.size() + slack) return false;
    const std::string from = keys_.endpoint(*lowest);
    std::string to = keys_.endpoint(*highest);
    to.push_back('\0');  // the range's end is exclusive: the last key is in it
    const std::string what = "reading " + std::to_string(names.size()) + " endpoints from " + from + " to " + keys_.endpoint(*highest);
    auto got = client_->range(from, etcd::range_options{.range_end = to, .limit = static_cast<std::int64_t>(known + slack)});
    if (!got) return etcd::etcd_failure(what, got.error());
    if (got->more) return false;  // other writers' keys in between: the transactions instead
    const std::vector<etcd::key_value>& kvs = got->kvs;  // in key order
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string key = keys_.endpoint(names[i]);
      const auto at = std::lower_bound(kvs.begin(), kvs.end(), key,
                                       [](const etcd::key_value& kv, const std::string& k) { return kv.key < k; });
      if (at == kvs.end() || at->key != key) {
        visit(i, nullptr, 0);
        continue;
      }
      auto value = decode(at->key, names[i], at->value);
      if (!value) return unexpected_error(value.error());
      visit(i, &*value, at->mod_revision);
    }
    return true;
  }

  /// The names of `handles`, under one lock.
  std::vector<std::string> names_of(std::span<const endpoint_handle> handles) const {
    std::lock_guard lock(index_->mutex);
    std::vector<std::string> out;
    out.reserve(handles.size());
    for (const endpoint_handle h : handles) {
      PLANFENCE_ASSERT(h.index() < index_->names.size());
      out.push_back(index_->names[h.index()]);
    }
    return out;
  }

  /// One item of a batch that goes to etcd: its key and its three JSON fragments (its compare,
  /// its put and its failure-branch range), built once and sent again as they are.
  struct batch_entry {
    std::size_t item = 0;  ///< index in the batch
    fence_token fence{};
    std::string key;
    std::string compare;
    std::string put;
    std::string range;
    [[nodiscard]] std::size_t bytes() const noexcept { return compare.size() + put.size() + range.size() + 3; }
  };
  /// entries[begin, end): one transaction's items, all with one desired fence.
  struct batch_unit {
    std::size_t begin = 0;
    std::size_t end = 0;
  };
  struct batch_plan {
    std::vector<batch_entry> entries;
    std::vector<batch_unit> units;
    bool first_has_room = false;  ///< the first unit has room for the marks (plan_batch's `room_first`)
    bool last_has_room = false;   ///< the last unit has room for the marks (plan_batch's `room_last`)
  };

  /// The fewest max-txn-ops that leave room for the marks beside one item: its compare, the floor
  /// and holder compares (3) and the marks' compare.
  static constexpr std::size_t marks_txn_ops_min = 5;

  /// The apply marks one unit of a batch carries (commit_batch with batch_marks): a begin, a
  /// finish, or both, as one compare (the marks exactly as `expected`), one put and one range in
  /// the failure branch.
  struct unit_marks : batch_unit_marks {
    /// out: a failure branch found A >= target already (the finish dropped: nothing to write)
    std::optional<apply_marks> found_finished;
    int moves = 0;  ///< times a failure branch found the marks moved under a finish
  };
  /// What a unit's transaction holds besides its items, each fragment preceded by a comma.
  struct unit_fragments {
    std::string compares;
    std::string success;
    std::string failure;
    [[nodiscard]] std::size_t bytes() const noexcept { return compares.size() + success.size() + failure.size(); }
  };

  /// The floor and holder compares (once per transaction, as commit() sends them), the floor's
  /// creation when it is missing, and the floor and holder ranges of the failure branch.
  unit_fragments fragments(fence_token fence, bool floor_exists) const {
    unit_fragments out;
    auto add = [](std::string& to, const std::string& json) {
      to += ',';
      to += json;
    };
    const std::string floor = keys_.fence_floor();
    if (floor_exists) {
      add(out.compares, etcd::json_body::compare_json(
                            etcd::compare::value_is(floor, etcd::padded(fence.value() + 1), etcd::compare::relation::less)));
      add(out.compares, etcd::json_body::compare_json(etcd::compare::value_is(
                            floor, std::string(etcd::padded_digits - 1, '0'), etcd::compare::relation::greater)));
    } else {
      add(out.compares, etcd::json_body::compare_json(etcd::compare::create_revision(floor, 0)));
      add(out.success, etcd::json_body::op_json(etcd::op::put(floor, etcd::padded(0))));
    }
    add(out.failure, etcd::json_body::op_json(etcd::op::range(floor)));
    if (mode_ == etcd::fence_mode::holder_key) {
      add(out.compares, etcd::json_body::compare_json(
                            etcd::compare::create_revision(keys_.holder(), static_cast<std::int64_t>(fence.value()))));
      add(out.failure, etcd::json_body::op_json(etcd::op::range(keys_.holder())));
    }
    return out;
  }

  /// The marks' compare, put and failure-branch range of a unit that carries them.
  unit_fragments marks_fragments(const unit_marks& marks) const {
    unit_fragments out;
    out.compares = "," + etcd::json_body::compare_json(marks_unchanged(marks.expected));
    out.success = "," + etcd::json_body::op_json(etcd::op::put(keys_.marks(), etcd::format_marks(marks.desired())));
    out.failure = "," + etcd::json_body::op_json(etcd::op::range(keys_.marks()));
    return out;
  }

  /// The most marks_fragments() holds (the largest marks and version).
  std::size_t marks_bytes_max() const {
    unit_marks largest{};
    largest.finish = true;
    largest.expected = apply_marks{generation_max, generation_max, static_cast<std::uint64_t>(INT64_MAX)};
    largest.target = generation_max;
    return marks_fragments(largest).bytes();
  }

  /// The most a unit's transaction body holds besides its items' fragments (either floor form).
  std::size_t fixed_bytes(fence_token fence) const {
    constexpr std::size_t skeleton = std::string_view(R"({"compare":[],"success":[],"failure":[]})").size();
    return skeleton + std::max(fragments(fence, true).bytes(), fragments(fence, false).bytes());
  }

  /// The body of one unit's transaction: the items' fragments, then the unit's.
  std::string unit_body(const std::vector<const batch_entry*>& live, fence_token fence, bool floor_exists,
                        const unit_marks* marks = nullptr) const {
    unit_fragments tail = fragments(fence, floor_exists);
    if (marks != nullptr) {
      const unit_fragments m = marks_fragments(*marks);
      tail.compares += m.compares;
      tail.success += m.success;
      tail.failure += m.failure;
    }
    std::size_t size = 48 + tail.bytes();
    for (const batch_entry* e : live) size += e->bytes();
    std::string body;
    body.reserve(size);
    body += "{\"compare\":[";
    for (std::size_t i = 0; i < live.size(); ++i) body.append(i == 0 ? "" : ",").append(live[i]->compare);
    body += tail.compares;
    body += "],\"success\":[";
    for (std::size_t i = 0; i < live.size(); ++i) body.append(i == 0 ? "" : ",").append(live[i]->put);
    body += tail.success;
    body += "],\"failure\":[";
    for (std::size_t i = 0; i < live.size(); ++i) body.append(i == 0 ? "" : ",").append(live[i]->range);
    body += tail.failure;
    body += "]}";
    return body;
  }

  /// Checks a batch, decides what the expected stamps already prove (as commit() does before any
  /// I/O), and packs the rest into units within limits_, the first one (`room_first`) and the
  /// last one (`room_last`, split off the last item when needed) with room for the marks: one
  /// operation fewer and marks_bytes_max() bytes. Errors before deciding anything:
  /// errc::capacity_exceeded (a generation or fence out of range, an item too large alone).
  result<batch_plan> plan_batch(std::span<commit_item> items, bool room_first = false, bool room_last = false) const {
    std::vector<endpoint_handle> handles;
    handles.reserve(items.size());
    for (const commit_item& it : items) {
      PLANFENCE_ASSERT(it.records != nullptr);
      PLANFENCE_ASSERT(it.desired.gen != generation_none);
      handles.push_back(it.endpoint);
    }
    const std::vector<std::string> names = names_of(handles);
    std::sort(handles.begin(), handles.end());
    PLANFENCE_ASSERT(std::adjacent_find(handles.begin(), handles.end()) == handles.end());  // each endpoint once
    batch_plan out;
    std::map<std::uint64_t, std::size_t> fixed;  // per desired fence
    for (std::size_t i = 0; i < items.size(); ++i) {
      const commit_item& it = items[i];
      if (it.desired.gen > generation_max || it.desired.fence.value() > fence_value_max) {
        return fail(errc::capacity_exceeded, "endpoint " + names[i] + ": generation " + std::to_string(it.desired.gen.value()) +
                                                 " or fence " + std::to_string(it.desired.fence.value()) + " beyond the store's range");
      }
      if (it.expected.gen >= it.desired.gen || it.expected.fence > it.desired.fence) continue;  // decided below
      batch_entry e{i, it.desired.fence, keys_.endpoint(names[i]), {}, {}, {}};
      e.compare = etcd::json_body::compare_json(it.expected.version == 0
                                                    ? etcd::compare::create_revision(e.key, 0)
                                                    : etcd::compare::mod_revision(e.key, static_cast<std::int64_t>(it.expected.version)));
      e.put = etcd::json_body::op_json(
          etcd::op::put(e.key, etcd::format_endpoint_value(names[i], it.desired.gen, it.desired.fence, *it.records)));
      e.range = etcd::json_body::op_json(etcd::op::range(e.key));
      auto [at, fresh] = fixed.try_emplace(e.fence.value(), 0);
      if (fresh) at->second = fixed_bytes(e.fence);
      if (at->second + e.bytes() > limits_.max_request_bytes) {
        return fail(errc::capacity_exceeded, "endpoint " + names[i] + ": its commit is " + std::to_string(at->second + e.bytes()) +
                                                 " bytes of JSON, above the store's max-request-bytes " +
                                                 std::to_string(limits_.max_request_bytes) +
                                                 " (etcd's --max-request-bytes): nothing of the batch was sent");
      }
      out.entries.push_back(std::move(e));
    }
    for (commit_item& it : items) {
      if (it.expected.gen < it.desired.gen && it.expected.fence <= it.desired.fence) continue;
      it.outcome = it.expected.gen >= it.desired.gen ? commit_outcome::stale : commit_outcome::fenced;
      it.now = it.expected;
    }
    std::stable_sort(out.entries.begin(), out.entries.end(),
                     [](const batch_entry& a, const batch_entry& b) { return a.fence < b.fence; });
    const std::size_t items_max = limits_.max_txn_ops - 3;  // room for the floor and holder compares
    const std::size_t marks_bytes = room_first || room_last ? marks_bytes_max() : 0;
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < out.entries.size(); ++i) {
      const batch_entry& e = out.entries[i];
      const bool same = !out.units.empty() && out.entries[out.units.back().begin].fence == e.fence;
      const bool reserve = room_first && out.units.size() == 1;  // filling the first unit
      if (!same || out.units.back().end - out.units.back().begin == items_max - (reserve ? 1 : 0) ||
          bytes + e.bytes() + (reserve ? marks_bytes : 0) > limits_.max_request_bytes) {
        out.units.push_back(batch_unit{i, i});
        bytes = fixed[e.fence.value()];
      }
      bytes += e.bytes();
      out.units.back().end = i + 1;
    }
    if (out.units.empty()) return out;
    // Whether a unit has room for the marks besides its items.
    auto room = [&](const batch_unit& unit) {
      std::size_t total = fixed[out.entries[unit.begin].fence.value()] + marks_bytes;
      for (std::size_t i = unit.begin; i < unit.end; ++i) total += out.entries[i].bytes();
      return unit.end - unit.begin < items_max && total <= limits_.max_request_bytes;
    };
    if (room_last && !room(out.units.back()) && out.units.back().end - out.units.back().begin > 1) {
      const std::size_t end = out.units.back().end;  // the last item alone carries the finish
      out.units.back().end = end - 1;
      out.units.push_back(batch_unit{end - 1, end});
    }
    out.first_has_room = room_first && room(out.units.front());
    out.last_has_room = room_last && room(out.units.back());
    return out;
  }

  /// Decides one item of a unit whose transaction failed, from its key as the failure branch
  /// read it: stale, fenced or conflict as commit() would (marked in the item), or true: its own
  /// condition holds and it goes again. A corrupt value leaves the item pending and keeps the
  /// first such error in `corrupt`.
  bool still_eligible(commit_item& it, const batch_entry& e, const etcd::range_result& read, bool unit_fenced,
                      std::optional<error>& corrupt) const {
    stamp found{};
    if (!read.kvs.empty()) {
      auto value = decode(e.key, std::string_view(e.key).substr(keys_.endpoints().size()), read.kvs[0].value);
      if (!value) {
        if (!corrupt) corrupt = value.error();
        return false;
      }
      found = stamp{value->gen, value->fence, static_cast<std::uint64_t>(read.kvs[0].mod_revision)};
    }
    auto refuse = [&](commit_outcome why) {
      it.outcome = why;
      it.now = found;
      return false;
    };
    if (found.gen >= it.desired.gen) return refuse(commit_outcome::stale);
    if (found.fence > it.desired.fence || unit_fenced) return refuse(commit_outcome::fenced);
    const bool unchanged = it.expected.version == 0 ? read.kvs.empty() : !read.kvs.empty() && found.version == it.expected.version;
    if (!unchanged) return refuse(commit_outcome::conflict);
    return true;
  }

  /// One unit: its transaction, sent again without the items refused by its failure branch,
  /// until it is written or empty (or the floor's form kept changing: conflict, as commit()).
  /// With `marks` (a begin, a finish or both: commit_batch with batch_marks), every transaction of
  /// the unit carries them too, and its failure branch reads them: the floor or holder key
  /// refusing the token, or marks that moved, refuse a begin (marks->refused, the error
  /// returned, nothing written); a finish is dropped from the transactions after a refusal unless
  /// the marks are still as expected and every item refused is stale.
  result<void> commit_unit(std::span<commit_item> items, std::vector<const batch_entry*> live, fence_token fence,
                           std::optional<error>& corrupt, unit_marks* marks = nullptr) {
    const std::size_t extra = mode_ == etcd::fence_mode::holder_key ? 2 : 1;
    int flips = 0;
    while (!live.empty()) {
      const bool floor_exists = index_->floor_exists.load(std::memory_order_relaxed);
      const unit_marks* carried = marks != nullptr && (marks->begin || marks->finish) ? marks : nullptr;
      count_transaction();
      auto done = client_->txn_body(unit_body(live, fence, floor_exists, carried), false);
      if (!done) return batch_failure(live, done.error());
      if (done->succeeded) {
        index_->floor_exists.store(true, std::memory_order_relaxed);
        for (const batch_entry* e : live) {
          commit_item& it = items[e->item];
          it.outcome = commit_outcome::written;
          it.now = stamp{it.desired.gen, it.desired.fence, static_cast<std::uint64_t>(done->revision)};
        }
        if (carried != nullptr) {
          marks->landed = true;
          marks->stored = stored_marks(marks->desired(), done->revision);
        }
        return ok();
      }
      if (done->responses.size() != live.size() + extra + (carried != nullptr ? 1 : 0)) {
        return fail(errc::store_unavailable, "commit of " + std::to_string(live.size()) + " endpoints from " + live[0]->key +
                                                 ": unexpected transaction response (" + std::to_string(done->responses.size()) + " ranges)");
      }
      const etcd::range_result& floor = done->responses[live.size()];
      const etcd::range_result* holder = extra == 2 ? &done->responses[live.size() + 1] : nullptr;
      std::optional<unexpected_error> refusal = fence_refusal(floor, holder, fence, "the batch's token");
      if (refusal && refusal->error().code != errc::fenced) return std::move(*refusal);  // a corrupt floor
      const bool unit_fenced = refusal.has_value();
      bool marks_moved_here = false;  // the failure branch found the marks moved (or corrupt)
      bool finish_follows = false;    // ... and the finish goes again against the marks it read
      if (carried != nullptr) {
        // The begin by begin_apply's rules: fenced first, then the marks.
        if (carried->begin && unit_fenced) {
          marks->refused = true;
          return std::move(*refusal);
        }
        auto now = marks_of(done->responses[live.size() + extra]);
        if (!now && carried->begin) return unexpected_error(now.error());
        if (now) remember_marks(*now);
        marks_moved_here = !now || now->version != marks->expected.version;
        if (carried->begin && marks_moved_here) {
          marks->refused = true;
          return marks_moved(marks->expected, *now);
        }
        if (marks_moved_here && now && ++marks->moves < apply_attempts_max) {
          // A finish against marks that moved (another writer, or an old guess): as finish_apply,
          // nothing to write when A >= target already, else the finish against the marks read.
          if (now->applied >= marks->target) {
            marks->found_finished = *now;
            marks->finish = false;
          } else {
            marks->expected = *now;
          }
          finish_follows = true;
        }
      }
      std::vector<const batch_entry*> still;
      bool only_stale = true;  // every item refused in this round is stale
      for (std::size_t i = 0; i < live.size(); ++i) {
        commit_item& it = items[live[i]->item];
        if (still_eligible(it, *live[i], done->responses[i], unit_fenced, corrupt)) {
          still.push_back(live[i]);
        } else {
          only_stale = only_stale && it.outcome == commit_outcome::stale;
        }
      }
      if (marks != nullptr && marks->finish && ((marks_moved_here && !finish_follows) || !only_stale)) marks->finish = false;
      const bool form_wrong = floor.kvs.empty() == floor_exists;
      index_->floor_exists.store(!floor.kvs.empty(), std::memory_order_relaxed);
      // The marks that moved explain a failure too: the next send goes with the marks read, or without the finish.
      if (still.size() == live.size() && !marks_moved_here && (!form_wrong || ++flips >= commit_attempts_max)) {
        // Nothing but the floor's form explains the failure, and it kept changing: conflict.
        for (const batch_entry* e : still) {
          items[e->item].outcome = commit_outcome::conflict;
          items[e->item].now = items[e->item].expected;
        }
        return ok();
      }
      live = std::move(still);
    }
    return ok();
  }

  /// A unit's transaction that failed: etcd's words, and which store option to lower when etcd
  /// refused it for its size.
  unexpected_error batch_failure(const std::vector<const batch_entry*>& live, const error& e) const {
    std::string what = "commit of " + std::to_string(live.size()) + " endpoints from " + live[0]->key;
    const std::string_view words = e.detail.view();
    if (words.find("too many operations in txn request") != std::string_view::npos) {
      what += " (the store sends up to max-txn-ops=" + std::to_string(limits_.max_txn_ops) +
              " operations a transaction: open it with the server's --max-txn-ops as ?max-txn-ops=N)";
    } else if (words.find("request is too large") != std::string_view::npos ||
               words.find("larger than max") != std::string_view::npos) {
      what += " (the store sends up to max-request-bytes=" + std::to_string(limits_.max_request_bytes) +
              " bytes a transaction: open it with the server's --max-request-bytes as ?max-request-bytes=N)";
    }
    return etcd::etcd_failure(what, e);
  }

  /// An endpoint value read at `key`, for endpoint `endpoint_name`. Errors: errc::store_unavailable
  /// naming the key (a value that is not an endpoint value, or the block of another endpoint).
  static result<etcd::endpoint_value> decode(const std::string& key, std::string_view endpoint_name, std::string_view text) {
    auto value = etcd::parse_endpoint_value(text);
    if (!value) return fail(errc::store_unavailable, "corrupt value at " + key + ": " + value.error().message());
    if (value->name != endpoint_name) {
      return fail(errc::store_unavailable, "corrupt value at " + key + ": it holds the block of endpoint " + value->name);
    }
    return value;
  }

  etcd_store(std::unique_ptr<etcd::client> c, etcd::layout keys, etcd::fence_mode mode)
      : client_(std::move(c)), keys_(std::move(keys)), mode_(mode), index_(std::make_unique<name_index>()) {}

  /// The fence conditions of a write carrying `token`, as every write of the store sends them
  /// (the header comment): value(P/fence-floor) < pad(token + 1) and > 19 zeros while the floor
  /// key exists, else create_revision(P/fence-floor) == 0 and its creation as pad(0) in `success`;
  /// in holder-key mode also create_revision(P/holder) == token.
  void add_fence_conditions(std::vector<etcd::compare>& compares, std::vector<etcd::op>& success, fence_token token,
                            bool floor_exists) const {
    const std::string floor = keys_.fence_floor();
    if (floor_exists) {
      compares.push_back(etcd::compare::value_is(floor, etcd::padded(token.value() + 1), etcd::compare::relation::less));
      // And not below 19 zeros: a value that sorts before every etcd::padded number (empty, '-1',
      // ' 5') is refused rather than read as a floor that admits everything.
      compares.push_back(etcd::compare::value_is(floor, std::string(etcd::padded_digits - 1, '0'), etcd::compare::relation::greater));
    } else {
      // No floor key: a floor of 0, which admits every token. Create it in the same step.
      compares.push_back(etcd::compare::create_revision(floor, 0));
      success.push_back(etcd::op::put(floor, etcd::padded(0)));
    }
    if (mode_ == etcd::fence_mode::holder_key) {
      compares.push_back(etcd::compare::create_revision(keys_.holder(), static_cast<std::int64_t>(token.value())));
    }
  }

  /// The reads of a failure branch: `first` (the key the write is about), then the floor and, in
  /// holder-key mode, the holder key, so that one revision tells why the write was refused.
  std::vector<etcd::op> fence_reads(etcd::op first) const {
    std::vector<etcd::op> out = {std::move(first), etcd::op::range(keys_.fence_floor())};
    if (mode_ == etcd::fence_mode::holder_key) out.push_back(etcd::op::range(keys_.holder()));
    return out;
  }

  /// Whether the floor (and in holder-key mode the holder key, `holder`), as a failure branch read
  /// them, refuse `token`: errc::fenced saying which (`whose`: "the commit's token", ...), or the
  /// floor's corruption (errc::store_unavailable naming the key); nullopt when they admit it.
  std::optional<unexpected_error> fence_refusal(const etcd::range_result& floor, const etcd::range_result* holder,
                                                fence_token token, std::string_view whose) const {
    std::uint64_t floor_value = 0;
    if (!floor.kvs.empty()) {
      auto read = etcd::read_padded_value(keys_.fence_floor(), floor.kvs[0].value, fence_value_max);
      if (!read) return unexpected_error(read.error());
      floor_value = *read;
    }
    if (floor_value > token.value()) {
      return fail(errc::fenced, "the fence floor " + keys_.fence_floor() + " is " + std::to_string(floor_value) + ", above " +
                                    std::string(whose) + " " + std::to_string(token.value()));
    }
    if (holder != nullptr &&
        (holder->kvs.empty() || static_cast<std::uint64_t>(holder->kvs[0].create_revision) != token.value())) {
      return fail(errc::fenced,
                  "holder-key mode: " + std::string(whose) + " " + std::to_string(token.value()) +
                      " is not the create revision of a live holder key under " + keys_.prefix + " (" +
                      (holder->kvs.empty() ? keys_.holder() + " does not exist: no etcd lease holds it"
                                           : keys_.holder() + " was created at revision " +
                                                 std::to_string(holder->kvs[0].create_revision)) +
                      "); only holders of the etcd lease authority's tokens commit in this mode: tools like "
                      "planfence-ctl must open the store with ?fence=floor");
    }
    return std::nullopt;
  }

  /// Why a commit transaction failed, from the state its failure branch read (one revision);
  /// nullopt when the only reason was the form of the floor etcd::compare (`floor_exists` was wrong):
  /// the caller sends the other form.
  std::optional<result<stamp>> classify_refusal(const etcd::txn_result& done, const std::string& key, const stamp& desired,
                                                bool floor_exists) const {
    const std::size_t expected_responses = mode_ == etcd::fence_mode::holder_key ? 3 : 2;
    if (done.responses.size() != expected_responses) {
      return fail(errc::store_unavailable, "commit to " + key + ": unexpected transaction response (" +
                                               std::to_string(done.responses.size()) + " ranges)");
    }
    const etcd::range_result& endpoint = done.responses[0];
    const etcd::range_result& floor = done.responses[1];
    if (!endpoint.kvs.empty()) {
      auto current = decode(key, std::string_view(key).substr(keys_.endpoints().size()), endpoint.kvs[0].value);
      if (!current) return unexpected_error(current.error());
      if (current->gen >= desired.gen) {
        return fail(errc::stale, key + " already serves generation " + std::to_string(current->gen.value()));
      }
      if (current->fence > desired.fence) {
        return fail(errc::fenced, key + " carries fence " + std::to_string(current->fence.value()) +
                                      ", above the commit's token " + std::to_string(desired.fence.value()));
      }
    }
    const etcd::range_result* holder = mode_ == etcd::fence_mode::holder_key ? &done.responses[2] : nullptr;
    if (auto fenced = fence_refusal(floor, holder, desired.fence, "the commit's token")) return std::move(*fenced);
    if (floor.kvs.empty() == floor_exists) {
      index_->floor_exists.store(!floor.kvs.empty(), std::memory_order_relaxed);
      return std::nullopt;
    }
    return fail(errc::conflict, key + " changed since its stamp was read: read it again and decide again");
  }

  std::unique_ptr<etcd::client> client_;
  etcd::layout keys_;
  etcd::fence_mode mode_ = etcd::fence_mode::holder_key;
  bool fixed_ = false;
  etcd::txn_limits limits_;
  std::unique_ptr<name_index> index_;
};

static_assert(record_store<etcd_store>);
static_assert(inspectable_store<etcd_store>);
static_assert(batched_store<etcd_store>);
static_assert(batch_inspectable_store<etcd_store>);
static_assert(change_following_store<etcd_store>);
static_assert(marks_batch_store<etcd_store>);

}  // namespace etcd::v1
}  // namespace planfence
