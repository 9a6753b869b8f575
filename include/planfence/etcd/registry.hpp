// planfence/etcd/registry.hpp: the plan history in etcd, and how the enactor uses it.
//
// What it is: published plans kept under P/plans/<gen> in their text form (digest line
// included: `etcdctl get` prints a plan exactly as `format_plan` does), shared by every planner
// and enactor of a cluster. It keeps the registry's guarantees across hosts, each decided by a
// transaction, never by an earlier read:
//  - S5 publish: "if create_revision(P/plans/<gen>) == 0 and value(P/plans-collected) <
//    pad(gen), put": a used generation is never overwritten; publishing the same content again is
//    harmless; different content is errc::equivocation; a collected generation never comes back
//    (errc::collected).
//  - S7: every plan read back is parsed with its digest checked; a corrupt plan is reported
//    (errc::digest_mismatch, errc::parse_error), never returned.
//  - S3 collect: the live set is read at one revision R (every endpoint key and the apply marks:
//    a plan is live when it is the applied mark A or the begun mark B, or some endpoint's
//    effective generation max(stamp, A); etcd_store::snapshot::serves), and each plan is then
//    deleted by a transaction that holds only if no endpoint key was modified or created after
//    R (a range compare: mod_revision < R + 1 over P/endpoints/) nor the marks
//    (mod_revision(P/apply-marks) < R + 1), no pin exists for it
//    (create_revision == 0 over P/pins/<gen>/), it was not collected already, and, when a fence
//    is given, the collector still holds the lease (create_revision(P/holder) == fence); it also
//    raises P/plans-collected to max(mark, gen) against the mark it read. So the
//    live set the decision rests on is the live set at the moment of the delete.
//  - P/plans-collected is created by the first publish or collect, inside its transaction (while
//    it is missing, those compare create_revision == 0 instead of its value: etcd fails a VALUE
//    compare on a missing key); opening and reading write nothing.
//  - every key and value read back is checked: plan keys are 20-digit generations in
//    1..generation_max, P/plans-collected 20 digits; a refusal names the key and the value.
//  - pins: an enactor applying plan g holds P/pins/<g>/<holder>, attached to its etcd lease, so a
//    pin ends with its holder (a crash, a pause past the lease) and never blocks collection
//    forever; it is created only if the plan still exists (the same transaction).
//
//     auto history = planfence::etcd::etcd_plan_registry::open_uri("etcd://127.0.0.1:2379/p").value();
//     history.publish(plan).value();                    // S5
//     planfence::plan newest = history.latest().value();
//
// `etcd_enactor_registry` plugs it into the enactor (which needs pinned_plan handles and
// lock-free lookups): it mirrors the newest plan into a local plan_registry on each pin_latest,
// pins it in etcd under the enactor's lease, and collects in etcd as above (then locally).
//
// When not to use it: in one process (plan_registry), or for plans larger than etcd's request
// limit (1.5 MiB by default: about 30,000 single-record endpoints).
//
// Cost: publish one transaction; latest a keys-only range plus a read of the plan when it is
// new; collect one read of every endpoint key and the marks plus a transaction per collected plan. Blocking;
// allocates. Thread safety: every member may be called concurrently.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../clock.hpp"
#include "../detail/epoch.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../plan.hpp"
#include "../plan_text.hpp"
#include "../registry.hpp"
#include "../result.hpp"
#include "store.hpp"
#include "client.hpp"
#include "layout.hpp"
#include "lease_authority.hpp"

namespace planfence {
inline namespace v1 {
namespace etcd {

/// The etcd plan history. `etcd_plan_registry` (Check = full) is the one to embed; `ignore_live`
/// is the broken variant the S3 tests build on purpose (it neither skips live plans nor compares
/// the endpoints in the delete transaction), to show that they catch it. Never embed it.
template <collection_check Check = collection_check::full>
class basic_etcd_plan_registry {
  static_assert(Check == collection_check::full || Check == collection_check::ignore_live,
                "the etcd registry offers the full check and one broken variant (ignore_live) for tests");

 public:
  /// Attempts of one plan's collection when endpoints keep changing under it.
  static constexpr int collect_attempts_max = 4;

  /// Attempts of one publish when P/plans-collected appears or vanishes between them.
  static constexpr int publish_attempts_max = 4;

  /// The history under `prefix`. Writes nothing: one read-only transaction checks that etcd
  /// answers and what the prefix holds. Errors: errc::store_unavailable, errc::not_found (nothing
  /// planfence keeps under the prefix, with `options.must_exist`: a mistyped prefix).
  [[nodiscard]] static result<basic_etcd_plan_registry> make(client_config config, std::string prefix,
                                                             open_options options = {}) {
    if (config.key_prefix.empty()) config.key_prefix = prefix;  // named by a refused permission
    basic_etcd_plan_registry out(std::make_unique<client>(std::move(config)), layout{std::move(prefix)});
    auto state = read_prefix_state(*out.client_, out.keys_);
    if (!state) return unexpected_error(state.error());
    if (options.must_exist && !state->anything) return nothing_under(out.keys_, out.client_->config());
    out.collected_exists_->store(state->plans_collected, std::memory_order_relaxed);
    return out;
  }
  /// The same from `etcd://HOST:PORT[,...]/PREFIX` (no options). Read-only tools pass
  /// `{.must_exist = true}`. Errors: errc::parse_error (the URI named redacted) and make()'s.
  [[nodiscard]] static result<basic_etcd_plan_registry> open_uri(std::string_view uri, open_options options = {}) {
    auto where = parse_uri(uri);
    if (!where) return unexpected_error(where.error());
    return make(std::move(where->config), std::move(where->prefix), options);
  }

  /// Whether the prefix holds any key planfence keeps (plans, the collected mark, endpoints, ...):
  /// false for a mistyped or unused prefix. One read-only transaction. Errors:
  /// errc::store_unavailable.
  [[nodiscard]] result<bool> exists() const {
    auto state = read_prefix_state(*client_, keys_);
    if (!state) return unexpected_error(state.error());
    return state->anything;
  }

  [[nodiscard]] const layout& keys() const noexcept { return keys_; }
  [[nodiscard]] client& connection() const noexcept { return *client_; }

  /// For tests: called in collect() between reading the live set and each delete transaction,
  /// with the generation about to be collected (where another enactor's commit could land).
  void set_collect_hook(std::function<void(generation)> hook) { collect_hook_ = std::move(hook); }

  /// Publishes `p` (S5). Errors: errc::equivocation, errc::collected, errc::store_unavailable.
  [[nodiscard]] result<void> publish(const plan& p) {
    const std::uint64_t gen = p.gen().value();
    const std::string key = keys_.plan(gen);
    const std::string text = format_plan(p);
    const std::string mark_key = keys_.plans_collected();
    for (int attempt = 0; attempt < publish_attempts_max; ++attempt) {
      const bool mark_exists = collected_exists_->load(std::memory_order_relaxed);
      std::vector<compare> compares = {compare::create_revision(key, 0)};
      std::vector<op> success = {op::put(key, text)};
      if (mark_exists) {
        compares.push_back(compare::value_is(mark_key, padded(gen), compare::relation::less));
      } else {
        // No mark yet: nothing was ever collected. Create it in the same step.
        compares.push_back(compare::create_revision(mark_key, 0));
        success.push_back(op::put(mark_key, padded(0)));
      }
      auto done = client_->txn(compares, success, {op::range(key), op::range(mark_key)});
      if (!done) return etcd_failure("publishing " + key, done.error());
      if (done->succeeded) {
        collected_exists_->store(true, std::memory_order_relaxed);
        return ok();
      }
      if (done->responses.size() != 2) return fail(errc::store_unavailable, "publishing " + key + ": unexpected transaction response");
      if (!done->responses[0].kvs.empty()) {
        auto existing = parse_plan(done->responses[0].kvs[0].value);
        if (existing && existing->digest() == p.digest()) return ok();  // the same content again
        return fail(errc::equivocation, "generation " + std::to_string(gen) + " is already " +
                                            (existing ? "sha256:" + existing->digest_hex() : std::string("taken")) +
                                            ", refusing sha256:" + p.digest_hex());
      }
      const range_result& mark = done->responses[1];
      if (!mark.kvs.empty()) {
        auto collected = read_padded_value(mark_key, mark.kvs[0].value, generation_max.value());
        if (!collected) return unexpected_error(collected.error());
        if (*collected >= gen) return fail(errc::collected, "generation " + std::to_string(gen) + " was already collected");
      }
      collected_exists_->store(!mark.kvs.empty(), std::memory_order_relaxed);  // send the other form
    }
    return fail(errc::conflict, mark_key + " kept appearing and vanishing while " + key + " was published");
  }

  /// The newest generation published (generation_none if none). One keys-only range.
  [[nodiscard]] result<generation> latest_generation() const {
    auto got = client_->range(keys_.plans(), range_options{.range_end = prefix_end(keys_.plans()), .limit = 1,
                                                           .keys_only = true, .descending = true});
    if (!got) return etcd_failure("reading " + keys_.plans(), got.error());
    if (got->kvs.empty()) return generation_none;
    return generation_of(got->kvs[0].key);
  }

  /// The plan of `gen`, digest checked (S7). Errors: errc::not_found, errc::digest_mismatch,
  /// errc::parse_error (a corrupt plan), errc::store_unavailable.
  [[nodiscard]] result<plan> lookup(generation gen) const {
    const std::string key = keys_.plan(gen.value());
    auto got = client_->range(key);
    if (!got) return etcd_failure("reading " + key, got.error());
    if (got->kvs.empty()) return fail(errc::not_found, "no plan at " + key);
    auto parsed = parse_plan(got->kvs[0].value);
    if (!parsed) {
      error e = std::move(parsed).error();
      e.detail = key + ": " + std::string(e.detail.view());
      return unexpected_error(std::move(e));
    }
    if (parsed->gen() != gen) {
      return fail(errc::invalid_plan, key + " holds the plan of generation " + std::to_string(parsed->gen().value()));
    }
    return parsed;
  }

  /// The newest plan. Errors: errc::not_found (none published) and those of lookup.
  [[nodiscard]] result<plan> latest() const {
    auto gen = latest_generation();
    if (!gen) return unexpected_error(gen.error());
    if (*gen == generation_none) return fail(errc::not_found, "no plan under " + keys_.plans());
    return lookup(*gen);
  }

  /// Retained generations, oldest first.
  [[nodiscard]] result<std::vector<generation>> retained() const {
    auto got = client_->range(keys_.plans(), range_options{.range_end = prefix_end(keys_.plans()), .keys_only = true});
    if (!got) return etcd_failure("reading " + keys_.plans(), got.error());
    std::vector<generation> out;
    for (const key_value& kv : got->kvs) {
      auto g = generation_of(kv.key);
      if (!g) return unexpected_error(g.error());
      out.push_back(*g);
    }
    return out;
  }

  /// Pins `gen` for `holder` under etcd lease `etcd_lease` (the holder's lease: the pin ends
  /// with it), and drops the holder's pin of `previous` in the same transaction. Errors:
  /// errc::not_found (the plan is gone: collected), errc::store_unavailable.
  [[nodiscard]] result<void> pin(generation gen, std::string_view holder, std::int64_t etcd_lease,
                                 generation previous = generation_none) {
    std::vector<op> ops;
    if (previous != generation_none && previous != gen) ops.push_back(op::remove(keys_.pin(previous.value(), holder)));
    ops.push_back(op::put(keys_.pin(gen.value(), holder), std::string(holder) + "\n", etcd_lease));
    auto done = client_->txn({compare::create_revision(keys_.plan(gen.value()), 0, compare::relation::greater)}, ops, {});
    if (!done) return etcd_failure("pinning " + keys_.plan(gen.value()), done.error());
    if (!done->succeeded) return fail(errc::not_found, "plan " + std::to_string(gen.value()) + " is gone");
    return ok();
  }

  /// Drops `holder`'s pin of `gen`.
  [[nodiscard]] result<void> unpin(generation gen, std::string_view holder) {
    auto done = client_->delete_range(keys_.pin(gen.value(), holder));
    if (!done) return etcd_failure("unpinning " + keys_.pin(gen.value(), holder), done.error());
    return ok();
  }

  /// Collects every plan the policy does not keep and S3 does not protect, against the live
  /// endpoints of `store` (which must use the same prefix). `holder_fence`: when given, each
  /// delete also requires that the lease with this token is still held (only the holder
  /// collects). Errors: errc::store_unavailable, errc::lease_superseded (the fence moved: stop).
  [[nodiscard]] result<collection_report> collect(const retention_policy& policy, std::uint64_t now_unix_ms,
                                                  const etcd_store& store,
                                                  std::optional<fence_token> holder_fence = std::nullopt) {
    PLANFENCE_ASSERT(policy.keep_newest >= 1);
    PLANFENCE_ASSERT(store.keys().prefix == keys_.prefix);
    collection_report report;
    auto all = retained();
    if (!all) return unexpected_error(all.error());
    const std::size_t keep_from = all->size() > policy.keep_newest ? all->size() - policy.keep_newest : 0;
    report.kept_by_policy = all->size() - keep_from;
    auto snapshot = store.read_all();
    if (!snapshot) return unexpected_error(snapshot.error());
    for (std::size_t i = 0; i < keep_from; ++i) {
      const generation gen = (*all)[i];
      if (policy.keep_younger_than.count() > 0) {
        auto p = lookup(gen);
        if (p) {
          const auto age = static_cast<std::int64_t>(now_unix_ms) - static_cast<std::int64_t>(p->created_unix_ms());
          if (age < policy.keep_younger_than.count()) {
            ++report.kept_by_policy;
            continue;
          }
        }  // a corrupt plan has no trustworthy age: it may be collected
      }
      for (int attempt = 0;; ++attempt) {
        if (Check == collection_check::full && serves(*snapshot, gen)) {
          report.protected_live.push_back(gen);
          break;
        }
        if (collect_hook_) collect_hook_(gen);
        auto outcome = collect_one(gen, snapshot->revision, holder_fence);
        if (!outcome) return unexpected_error(outcome.error());
        if (*outcome == outcome_kind::collected) {
          report.collected.push_back(gen);
          break;
        }
        if (*outcome == outcome_kind::pinned) {
          report.protected_pinned.push_back(gen);
          break;
        }
        if (*outcome == outcome_kind::gone || attempt + 1 >= collect_attempts_max) break;
        // Endpoints moved since the snapshot: read the live set again and decide again.
        snapshot = store.read_all();
        if (!snapshot) return unexpected_error(snapshot.error());
      }
    }
    return report;
  }

 private:
  enum class outcome_kind : std::uint8_t { collected, pinned, gone, endpoints_moved };

  basic_etcd_plan_registry(std::unique_ptr<client> c, layout keys)
      : client_(std::move(c)), keys_(std::move(keys)), collected_exists_(std::make_unique<std::atomic<bool>>(false)) {}

  /// The generation a key under P/plans/ names: 20 digits, 1..generation_max. Errors:
  /// errc::store_unavailable naming the key.
  result<generation> generation_of(std::string_view key) const {
    const std::string_view tail = key.substr(std::min(key.size(), keys_.plans().size()));
    if (tail.size() == padded_digits) {
      if (auto g = read_decimal(tail); g && *g != 0 && *g <= generation_max.value()) return generation{*g};
    }
    return fail(errc::store_unavailable, "unexpected key " + describe_value(key) + " in the plan history: plans are "
                                         "kept under " + keys_.plans() + " followed by a 20-digit generation from 1 to " +
                                         std::to_string(generation_max.value()) + "; move or delete it with etcdctl");
  }

  /// The store's live rule (etcd_store::snapshot::serves): A, B, or an endpoint's effective generation.
  static bool serves(const etcd_store::snapshot& s, generation gen) { return s.serves(gen); }

  /// One collection transaction (header comment, S3).
  result<outcome_kind> collect_one(generation gen, std::int64_t live_revision, std::optional<fence_token> holder_fence) {
    const std::string key = keys_.plan(gen.value());
    const std::string pins = keys_.pins(gen.value());
    // The high-water mark only rises: the transaction writes max(mark, gen), against the mark
    // read here (a concurrent change fails the compare and the caller decides again).
    // A missing mark (nothing collected yet) is created by this transaction.
    auto mark = client_->range(keys_.plans_collected());
    if (!mark) return etcd_failure("reading " + keys_.plans_collected(), mark.error());
    std::uint64_t high_water = gen.value();
    std::vector<compare> compares = {
        compare::create_revision(key, 0, compare::relation::greater),
        compare{pins, prefix_end(pins), compare::target::create, compare::relation::equal, 0, {}},
    };
    if (mark->kvs.empty()) {
      compares.push_back(compare::create_revision(keys_.plans_collected(), 0));
    } else {
      auto read = read_padded_value(keys_.plans_collected(), mark->kvs[0].value, generation_max.value());
      if (!read) return unexpected_error(read.error());
      high_water = std::max(*read, gen.value());
      compares.push_back(compare::value_is(keys_.plans_collected(), mark->kvs[0].value));
    }
    if constexpr (Check == collection_check::full) {
      // The S3 compare: no endpoint key modified or created since the live set was read, and the
      // apply marks not moved either (they decide effective generations, and name A and B).
      const std::string endpoints = keys_.endpoints();
      compares.push_back(compare{endpoints, prefix_end(endpoints), compare::target::mod, compare::relation::less,
                                 live_revision + 1, {}});
      compares.push_back(compare::mod_revision(keys_.marks(), live_revision + 1, compare::relation::less));
    }
    std::vector<op> why = {op::range(pins, prefix_end(pins), 1), op::range(key)};
    if (holder_fence) {
      compares.push_back(compare::create_revision(keys_.holder(), static_cast<std::int64_t>(holder_fence->value())));
      why.push_back(op::range(keys_.holder()));
    }
    auto done = client_->txn(compares, {op::remove(key), op::put(keys_.plans_collected(), padded(high_water))}, why);
    if (!done) return etcd_failure("collecting " + key, done.error());
    if (done->succeeded) {
      collected_exists_->store(true, std::memory_order_relaxed);
      return outcome_kind::collected;
    }
    if (done->responses.size() != why.size()) return fail(errc::store_unavailable, "unexpected transaction response");
    if (!done->responses[0].kvs.empty()) return outcome_kind::pinned;
    if (done->responses[1].kvs.empty()) return outcome_kind::gone;
    if (holder_fence) {
      const range_result& holder = done->responses[2];
      if (holder.kvs.empty() || static_cast<std::uint64_t>(holder.kvs[0].create_revision) != holder_fence->value()) {
        return fail(errc::lease_superseded, "the collector no longer holds the lease");
      }
    }
    return outcome_kind::endpoints_moved;  // or the mark moved: decide again
  }

  std::unique_ptr<client> client_;
  layout keys_;
  /// Whether P/plans-collected existed when last seen: which form of publish to send first.
  std::unique_ptr<std::atomic<bool>> collected_exists_;
  std::function<void(generation)> collect_hook_;
};

/// The etcd plan history to embed: collection keeps S3.
using etcd_plan_registry = basic_etcd_plan_registry<collection_check::full>;

/// The registry an enactor uses with etcd: a local plan_registry that mirrors etcd's newest plan
/// and serves the enactor's lock-free lookups, plus the etcd registry for pins and collection.
///
///     planfence::etcd::etcd_enactor_registry registry{history, store, authority, "az1"};
///     planfence::enactor e{store, authority, registry, clock, {.name = "az1"}, sink};
///
/// pin_latest() reads the newest generation from etcd (one keys-only range), copies a new plan
/// into the local registry (digest checked, S7), pins it in etcd under the authority's current
/// etcd lease (replacing this holder's previous pin), and returns the local pin. If the plan was
/// collected in between, it returns an empty handle and the enactor tries again with the next
/// newest. If etcd cannot be read, the newest local plan is used. collect() collects in etcd
/// (S3 decided in transactions, only while this holder's fence holds), then drops the same
/// generations locally. Thread safety: as plan_registry, for one enactor.
template <clock Clock = steady_clock>
class etcd_enactor_registry {
 public:
  etcd_enactor_registry(etcd_plan_registry& history, const etcd_store& store, const etcd_lease_authority<Clock>& authority,
                        std::string holder_name)
      : history_(&history), store_(&store), authority_(&authority), holder_(std::move(holder_name)) {}

  [[nodiscard]] pinned_plan pin_latest() {
    auto newest = history_->latest_generation();
    if (newest && *newest != generation_none && *newest > local_.latest()) {
      auto fetched = history_->lookup(*newest);
      if (fetched) {
        auto published = local_.publish(std::move(*fetched));
        static_cast<void>(published);  // a plan already mirrored, or a local slot clash: use what is local
      }
    }
    const generation gen = local_.latest();
    if (gen == generation_none) return {};
    const std::int64_t lease = authority_->etcd_lease();
    if (lease != 0 && (gen != pinned_in_etcd_ || lease != pinned_lease_)) {
      // An empty handle either way: collected meanwhile (the next pin_latest finds the newer
      // plan), or etcd unreachable (never apply a plan that collection could remove under us).
      if (!history_->pin(gen, holder_, lease, lease == pinned_lease_ ? pinned_in_etcd_ : generation_none)) return {};
      pinned_in_etcd_ = gen;
      pinned_lease_ = lease;
    }
    return local_.pin_latest();
  }

  [[nodiscard]] result<pinned_plan> pin(generation gen) {
    auto local = local_.pin(gen);
    if (local) return local;
    auto fetched = history_->lookup(gen);
    if (!fetched) return unexpected_error(fetched.error());
    auto published = local_.publish(std::move(*fetched));
    if (!published) return unexpected_error(published.error());
    return std::move(*published);
  }

  [[nodiscard]] const plan* find(generation gen, const detail::epoch_guard& guard) const noexcept {
    return local_.find(gen, guard);
  }

  [[nodiscard]] generation latest() const noexcept { return local_.latest(); }

  /// Collects in etcd (the live set is etcd's, read inside collect; `live` is not used), then
  /// locally. A failure in etcd collects nothing anywhere.
  template <class LiveGenerations>
  [[nodiscard]] collection_report collect(const retention_policy& policy, std::uint64_t now_unix_ms, LiveGenerations&&) {
    const fence_token fence = authority_->current_fence();
    if (fence == fence_token{}) return {};
    auto remote = history_->collect(policy, now_unix_ms, *store_, fence);
    if (!remote) return {};
    // Drop the local copies of what etcd collected, and anything older than etcd retains.
    const collection_report local = local_.collect(policy, now_unix_ms, [this] { return store_->live_generations(); });
    static_cast<void>(local);
    return std::move(*remote);
  }

  [[nodiscard]] plan_registry& local() noexcept { return local_; }

 private:
  etcd_plan_registry* history_;
  const etcd_store* store_;
  const etcd_lease_authority<Clock>* authority_;
  std::string holder_;
  plan_registry local_;
  generation pinned_in_etcd_ = generation_none;
  std::int64_t pinned_lease_ = 0;
};
static_assert(enactor_registry<etcd_enactor_registry<>>);

}  // namespace etcd
}  // namespace v1
}  // namespace planfence
