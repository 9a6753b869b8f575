// planfence/etcd/lease_authority.hpp: fenced leases from etcd, for enactors on several hosts.
//
// What it is: a `lease_authority` whose grants are etcd leases. acquire() grants an etcd lease
// and, in one transaction, creates the holder key P/holder attached to it if no one holds it;
// the fence token is that key's create revision, which etcd makes larger than every earlier
// revision, so every new grant's token is larger than every earlier one's (and tokens are never
// reused). A background thread keeps the etcd lease alive (every third of its TTL); when etcd
// says the lease is gone (it expired because this process stalled, or it was revoked), or keep-
// alives keep failing until the lease's expiry passes, the grant is marked lost: lost() turns
// true, the on_lost callback runs, and renew() and check() report errc::lease_lapsed or
// errc::lease_superseded from then on. The holder key vanishes with the lease, so the etcd
// store (fence_mode::holder_key) refuses every later commit carrying the old token: S2 is kept by
// etcd even for a holder that never learns it lost (a SIGSTOPped process).
//
//     planfence::steady_clock clock;
//     auto authority = planfence::etcd::etcd_lease_authority<>::open_uri(
//         "etcd://127.0.0.1:2379/planfence/prod", clock, {.holder_name = "az1"}).value();
//     auto lease = authority.acquire(std::chrono::seconds{5});   // fence = P/holder's create revision
//
// When not to use it: within one process (local_lease_authority costs nanoseconds, this a
// round trip); with the memory store (tokens are etcd revisions, beyond its 24-bit fences).
//
// Cost: acquire is a grant and a transaction (two round trips, one raft commit each); renew one
// keep-alive round trip; check one linearizable range; the background thread one keep-alive per
// TTL/3. Blocking; allocates. Thread safety: every member may be called concurrently.
//
// Limits: etcd leases have whole-second TTLs (acquire rounds up; etcd may raise a TTL to its
// minimum, 1.5 election timeouts). `expires` is measured on the caller's clock from *before*
// the grant or keep-alive request was sent, so it never runs later than etcd's own expiry.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "../clock.hpp"
#include "../config.hpp"
#include "../ids.hpp"
#include "../lease.hpp"
#include "../result.hpp"
#include "client.hpp"
#include "layout.hpp"

namespace planfence {
inline namespace v1 {
namespace etcd {

/// Options of an etcd lease authority.
struct lease_options {
  /// Written into the holder key's value (etcdctl shows who holds the lease).
  std::string holder_name = "planfence";
  /// Called once, on the keep-alive thread, when a grant is found lost. Must not block.
  std::function<void()> on_lost{};
};

template <clock Clock = steady_clock>
class etcd_lease_authority {
 public:
  /// An authority for the holder key under `prefix`; `clock` must outlive it.
  [[nodiscard]] static result<etcd_lease_authority> make(client_config config, std::string prefix, const Clock& clock,
                                                         lease_options options = {}) {
    if (config.key_prefix.empty()) config.key_prefix = prefix;  // named by a refused permission
    return etcd_lease_authority(std::move(config), layout{std::move(prefix)}, clock, std::move(options));
  }
  /// The same from an `etcd://HOST:PORT[,...]/PREFIX` URI. Errors: errc::parse_error.
  [[nodiscard]] static result<etcd_lease_authority> open_uri(std::string_view uri, const Clock& clock,
                                                             lease_options options = {}) {
    auto where = parse_uri(uri);
    if (!where) return unexpected_error(where.error());
    return make(std::move(where->config), std::move(where->prefix), clock, std::move(options));
  }

  etcd_lease_authority(etcd_lease_authority&&) noexcept = default;
  etcd_lease_authority& operator=(etcd_lease_authority&&) noexcept = default;

  /// Ends the keep-alive thread and revokes a grant still held (its holder key goes with it).
  ~etcd_lease_authority() {
    if (state_ == nullptr) return;
    std::optional<std::int64_t> held = stop_keep_alive();
    if (held) static_cast<void>(state_->calls.revoke(*held));
  }

  /// Grants the lease if nobody holds it. Errors: errc::lease_held (the holder key exists: another
  /// holder, or this object's own current grant), errc::store_unavailable.
  [[nodiscard]] result<lease> acquire(std::chrono::milliseconds ttl) {
    PLANFENCE_ASSERT(ttl.count() > 0);
    {
      std::lock_guard lock(state_->mutex);
      if (state_->current && !state_->lost.load(std::memory_order_acquire) && state_->current->expires > now_ns(*state_)) {
        return fail(errc::lease_held, "this authority already holds the lease; release it first");
      }
    }
    stop_keep_alive();  // a previous grant that lapsed: end its thread
    const std::int64_t seconds = (ttl.count() + 999) / 1000;
    const auto sent_at = now_ns();
    auto granted = state_->calls.grant(seconds);
    if (!granted) return unexpected_error(granted.error());
    const layout& keys = state_->keys;
    auto taken = state_->calls.txn({compare::create_revision(keys.holder(), 0)},
                                   {op::put(keys.holder(), state_->options.holder_name + "\n", granted->id)},
                                   {op::range(keys.holder())});
    if (!taken || !taken->succeeded) {
      static_cast<void>(state_->calls.revoke(granted->id));
      if (!taken) return unexpected_error(taken.error());
      std::string who = "held";
      if (!taken->responses.empty() && !taken->responses[0].kvs.empty()) {
        const key_value& kv = taken->responses[0].kvs[0];
        who = "held by " + describe_value(kv.value.substr(0, kv.value.find('\n'))) + " with fence " + std::to_string(kv.create_revision);
      }
      return fail(errc::lease_held, who);
    }
    const lease out{lease_id{static_cast<std::uint64_t>(granted->id)}, fence_token{static_cast<std::uint64_t>(taken->revision)},
                    sent_at + std::chrono::seconds{granted->ttl_seconds}};
    start_keep_alive(out, granted->ttl_seconds);
    return out;
  }

  /// Refreshes a current grant with one keep-alive now (the TTL is the one granted; `ttl` is not
  /// renegotiated). Errors: errc::lease_lapsed (expired, revoked or released),
  /// errc::lease_superseded (another grant holds the key). A keep-alive that cannot reach etcd
  /// returns the grant unchanged while it has not expired.
  [[nodiscard]] result<lease> renew(const lease& held, std::chrono::milliseconds ttl) {
    PLANFENCE_ASSERT(ttl.count() > 0);
    if (auto current = current_grant(held); !current) return unexpected_error(current.error());
    const auto sent_at = now_ns();
    auto alive = state_->calls.keep_alive(static_cast<std::int64_t>(held.id.value()));
    if (!alive) {
      std::lock_guard lock(state_->mutex);
      if (state_->current && state_->current->expires > now_ns()) return *state_->current;
      return fail(errc::lease_lapsed, "keep-alive failed until the lease expired: " + alive.error().message());
    }
    if (*alive <= 0) {
      mark_lost();
      return unexpected_error(classify_lost(held).error());
    }
    std::lock_guard lock(state_->mutex);
    if (!state_->current || state_->current->fence != held.fence) return fail(errc::lease_lapsed);
    state_->current->expires = std::max(state_->current->expires, sent_at + std::chrono::seconds{*alive});
    return *state_->current;
  }

  /// Ends a current grant now: revokes the etcd lease, which deletes the holder key.
  [[nodiscard]] result<void> release(const lease& held) {
    if (auto current = current_grant(held); !current) return current;
    stop_keep_alive();
    return state_->calls.revoke(static_cast<std::int64_t>(held.id.value()));
  }

  /// Whether `held` is current: not lost locally, and P/holder still exists with its create
  /// revision (one linearizable range). Errors as renew, and errc::store_unavailable.
  [[nodiscard]] result<void> check(const lease& held) const {
    if (auto current = current_grant(held); !current) return current;
    auto got = state_->calls.range(state_->keys.holder());
    if (!got) return etcd_failure("reading " + state_->keys.holder(), got.error());
    if (got->kvs.empty()) return fail(errc::lease_lapsed, "the holder key is gone");
    if (static_cast<std::uint64_t>(got->kvs[0].create_revision) != held.fence.value()) {
      return fail(errc::lease_superseded, state_->keys.holder() + " was created at revision " +
                                              std::to_string(got->kvs[0].create_revision) + ", not at this grant's token " +
                                              std::to_string(held.fence.value()));
    }
    return ok();
  }

  /// Whether the current grant was found lost by the keep-alive thread (or renew).
  [[nodiscard]] bool lost() const noexcept { return state_->lost.load(std::memory_order_acquire); }
  /// Keep-alives answered since the current grant began (for tests and metrics).
  [[nodiscard]] std::uint64_t keep_alives() const noexcept { return state_->keep_alives.load(std::memory_order_relaxed); }
  [[nodiscard]] const layout& keys() const noexcept { return state_->keys; }
  /// The fence token of the current grant (0 when none or lost).
  [[nodiscard]] fence_token current_fence() const {
    std::lock_guard lock(state_->mutex);
    return state_->current && !state_->lost.load(std::memory_order_acquire) ? state_->current->fence : fence_token{};
  }
  /// The etcd lease id of the current grant (0 when none): for attaching other keys to it.
  [[nodiscard]] std::int64_t etcd_lease() const {
    std::lock_guard lock(state_->mutex);
    return state_->current && !state_->lost.load(std::memory_order_acquire) ? static_cast<std::int64_t>(state_->current->id.value()) : 0;
  }

 private:
  struct shared_state {
    shared_state(client_config config, layout k, const Clock& c, lease_options o)
        : keep_alive_config(config), calls(std::move(config)), keys(std::move(k)), clock(&c), options(std::move(o)) {}
    client_config keep_alive_config;
    client calls;  // acquire, renew, release, check
    layout keys;
    const Clock* clock;
    lease_options options;
    mutable std::mutex mutex;
    std::condition_variable wake;
    std::optional<lease> current;  // the grant this object made and has not released
    bool stopping = false;
    std::thread keep_alive_thread;
    std::atomic<bool> lost{false};
    std::atomic<std::uint64_t> keep_alives{0};
  };

  etcd_lease_authority(client_config config, layout keys, const Clock& clock, lease_options options)
      : state_(std::make_unique<shared_state>(std::move(config), std::move(keys), clock, std::move(options))) {}

  [[nodiscard]] static std::chrono::nanoseconds now_ns(const shared_state& s) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(s.clock->now().time_since_epoch());
  }
  [[nodiscard]] std::chrono::nanoseconds now_ns() const { return now_ns(*state_); }

  /// ok() if `held` is the grant this object holds and has not found lost.
  result<void> current_grant(const lease& held) const {
    PLANFENCE_ASSERT(held.fence.value() != 0);
    std::lock_guard lock(state_->mutex);
    if (!state_->current || state_->current->fence != held.fence) return fail(errc::lease_lapsed, "not the current grant");
    if (state_->lost.load(std::memory_order_acquire)) return fail(errc::lease_lapsed, "the etcd lease was lost");
    if (state_->current->expires <= now_ns()) return fail(errc::lease_lapsed, "expired");
    return ok();
  }

  /// Lapsed or superseded, asked of etcd.
  result<void> classify_lost(const lease& held) const {
    auto got = state_->calls.range(state_->keys.holder());
    if (got && !got->kvs.empty() && static_cast<std::uint64_t>(got->kvs[0].create_revision) != held.fence.value()) {
      return fail(errc::lease_superseded);
    }
    return fail(errc::lease_lapsed, "the etcd lease expired or was revoked");
  }

  static void mark_lost(shared_state& s) {
    if (!s.lost.exchange(true, std::memory_order_acq_rel) && s.options.on_lost) s.options.on_lost();
  }
  void mark_lost() { mark_lost(*state_); }

  void start_keep_alive(const lease& granted, std::int64_t ttl_seconds) {
    {
      std::lock_guard lock(state_->mutex);
      state_->current = granted;
      state_->stopping = false;
      state_->lost.store(false, std::memory_order_release);
      state_->keep_alives.store(0, std::memory_order_relaxed);
    }
    const auto interval = std::chrono::milliseconds{ttl_seconds * 1000 / 3};
    shared_state* s = state_.get();
    std::thread keeper([s, interval, id = static_cast<std::int64_t>(granted.id.value())] {
      client own{s->keep_alive_config};  // never queued behind a slow commit of another thread
      std::unique_lock lock(s->mutex);
      while (!s->stopping) {
        s->wake.wait_for(lock, interval, [s] { return s->stopping; });
        if (s->stopping) break;
        lock.unlock();
        const auto sent_at = now_ns(*s);
        auto alive = own.keep_alive(id);
        lock.lock();
        if (s->stopping || !s->current) break;
        if (alive && *alive > 0) {
          s->keep_alives.fetch_add(1, std::memory_order_relaxed);
          s->current->expires = std::max(s->current->expires, sent_at + std::chrono::seconds{*alive});
          continue;
        }
        if ((alive && *alive <= 0) || s->current->expires <= now_ns(*s)) {
          lock.unlock();
          mark_lost(*s);
          lock.lock();
          break;
        }
        // A failed keep-alive before expiry: try again at the next tick.
      }
    });
    std::lock_guard lock(s->mutex);  // stop_keep_alive moves it out under the same mutex
    s->keep_alive_thread = std::move(keeper);
  }

  /// Stops the keep-alive thread; returns the etcd lease id of a grant that was still current.
  std::optional<std::int64_t> stop_keep_alive() {
    std::thread t;
    std::optional<std::int64_t> held;
    {
      std::lock_guard lock(state_->mutex);
      state_->stopping = true;
      if (state_->current && !state_->lost.load(std::memory_order_acquire) && state_->current->expires > now_ns()) {
        held = static_cast<std::int64_t>(state_->current->id.value());
      }
      state_->current.reset();
      t = std::move(state_->keep_alive_thread);
    }
    state_->wake.notify_all();
    if (t.joinable()) t.join();
    return held;
  }

  std::unique_ptr<shared_state> state_;
};

static_assert(lease_authority<etcd_lease_authority<steady_clock>>);

}  // namespace etcd
}  // namespace v1
}  // namespace planfence
