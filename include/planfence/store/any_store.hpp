// planfence/store/any_store.hpp: a type-erased inspectable store, and stores named by URI.
//
// What it is: recovery tools (planfence-ctl, the recovery drill) take a store from the command
// line as a URI (`zonefile:///var/lib/dns/zones`, `rfc2136://...`, `etcd://...`) and must work
// with whichever store the URI names. `any_store` wraps any `inspectable_store` behind one
// virtual interface, and is itself an inspectable_store, so the fixed enactor and the drift check
// run over it unchanged. `open_store(uri, schemes)` picks the opener by the URI's scheme from a
// table; store/open_store.hpp holds the table of the stores planfence ships, one line per scheme.
//
//     auto store = planfence::open_store("zonefile:///srv/zones").value();   // open_store.hpp
//     for (const std::string& name : store.endpoint_names().value()) { ... }
//     planfence::enactor e{store, authority, registry, clock};              // works unchanged
//
// When not to use it: on the hot path. Every call is a virtual call (and the stores behind it do
// I/O); embed the concrete store type instead, which keeps the apply path free of indirection.
//
// Cost: one heap allocation when made; one indirect call per operation on top of the store's own
// cost. Guarantees: exactly those of the wrapped store (it adds no state and no caching:
// live_generations and served are read from the store at each call, as S3 needs).
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../detail/uri.hpp"
#include "../ids.hpp"
#include "../record.hpp"
#include "../result.hpp"
#include "../store.hpp"

namespace planfence {
inline namespace v1 {

/// Any inspectable store, behind one virtual interface. Movable, not copyable.
///
/// Thread safety: that of the wrapped store.
class any_store {
 public:
  /// Wraps `store` (which must not be null), naming it `description` (e.g. its URI) in messages.
  template <inspectable_store Store>
  any_store(std::unique_ptr<Store> store, std::string description)
      : self_(std::make_unique<model<Store>>(std::move(store))), description_(std::move(description)) {}

  any_store(any_store&&) noexcept = default;
  any_store& operator=(any_store&&) noexcept = default;

  [[nodiscard]] result<endpoint_handle> resolve(std::string_view name) const { return self_->resolve(name); }
  [[nodiscard]] result<stamp> read_stamp(endpoint_handle h) const { return self_->read_stamp(h); }
  [[nodiscard]] result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired,
                                     const record_set& records) {
    return self_->commit(h, expected, desired, records);
  }
  /// Batched as the wrapped store batches (one call per batch), or one call per endpoint for a
  /// store that is not a batched_store.
  [[nodiscard]] result<void> read_stamps(std::span<const endpoint_handle> handles, std::span<stamp> out) const {
    return self_->read_stamps(handles, out);
  }
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items) { return self_->commit_batch(items); }
  /// The batch with the apply marks (marks_batch_store): folded into the wrapped store's writes
  /// when it is a marks_batch_store (one rewrite of a zone file, or one RFC 2136 UPDATE, holds
  /// the begun mark, the records and the applied mark), else commit_batch_then_marks (separate store calls).
  [[nodiscard]] result<void> commit_batch(std::span<commit_item> items, batch_marks& marks) {
    return self_->commit_batch(items, marks);
  }
  [[nodiscard]] result<void> raise_fence(fence_token token) { return self_->raise_fence(token); }
  /// The wrapped store's live set, or its error (a store that cannot fail never reports one).
  [[nodiscard]] result<std::vector<generation>> live_generations() const { return self_->live_generations(); }
  [[nodiscard]] result<std::vector<record>> served(endpoint_handle h) const { return self_->served(h); }
  [[nodiscard]] result<std::vector<std::string>> endpoint_names() const { return self_->endpoint_names(); }
  /// Stamps and records of several endpoints, as the wrapped store reads them (inspect_endpoints).
  [[nodiscard]] result<void> inspect(std::span<const endpoint_handle> handles, std::span<endpoint_state> out) const {
    return self_->inspect(handles, out);
  }
  /// The wrapped store's apply marks (change_following_store). A store that keeps none reads as
  /// never marked and ignores the writes, so that every apply through it writes its whole plan,
  /// as without marks: follows_changes() tells which.
  [[nodiscard]] result<apply_marks> read_marks() const { return self_->read_marks(); }
  [[nodiscard]] result<apply_marks> begin_apply(const apply_marks& expected, generation target, fence_token token) {
    return self_->begin_apply(expected, target, token);
  }
  [[nodiscard]] result<apply_marks> finish_apply(generation target, fence_token token) {
    return self_->finish_apply(target, token);
  }
  /// Whether the wrapped store keeps apply marks.
  [[nodiscard]] bool follows_changes() const noexcept { return self_->follows_changes(); }
  /// The wrapped store's batch size (planfence::preferred_batch_max): what an enactor over this
  /// store takes when its batch_max is left at 0.
  [[nodiscard]] std::uint32_t preferred_batch_max() const noexcept { return self_->preferred_batch_max(); }
  /// The store's own fence floor when it keeps one (`fence_floor()`, as the zone-file store
  /// does); errc::not_found when it does not (recovery.hpp then reads it from the stamps).
  [[nodiscard]] result<fence_token> fence_floor() const { return self_->fence_floor(); }

  /// What the store was opened from (its URI), for messages.
  [[nodiscard]] const std::string& description() const noexcept { return description_; }

  /// The wrapped store if it is a `Store`, else nullptr (for store-specific extras).
  template <class Store>
  [[nodiscard]] Store* get_if() noexcept {
    auto* m = dynamic_cast<model<Store>*>(self_.get());
    return m == nullptr ? nullptr : m->store.get();
  }

 private:
  struct interface {
    virtual ~interface() = default;
    virtual result<endpoint_handle> resolve(std::string_view name) const = 0;
    virtual result<stamp> read_stamp(endpoint_handle h) const = 0;
    virtual result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired,
                                 const record_set& records) = 0;
    virtual result<void> read_stamps(std::span<const endpoint_handle> handles, std::span<stamp> out) const = 0;
    virtual result<void> commit_batch(std::span<commit_item> items) = 0;
    virtual result<void> commit_batch(std::span<commit_item> items, batch_marks& marks) = 0;
    virtual result<void> raise_fence(fence_token token) = 0;
    virtual result<std::vector<generation>> live_generations() const = 0;
    virtual result<std::vector<record>> served(endpoint_handle h) const = 0;
    virtual result<std::vector<std::string>> endpoint_names() const = 0;
    virtual result<void> inspect(std::span<const endpoint_handle> handles, std::span<endpoint_state> out) const = 0;
    virtual result<fence_token> fence_floor() const = 0;
    virtual result<apply_marks> read_marks() const = 0;
    virtual result<apply_marks> begin_apply(const apply_marks& expected, generation target, fence_token token) = 0;
    virtual result<apply_marks> finish_apply(generation target, fence_token token) = 0;
    virtual bool follows_changes() const noexcept = 0;
    virtual std::uint32_t preferred_batch_max() const noexcept = 0;
  };

  template <class Store>
  struct model final : interface {
    explicit model(std::unique_ptr<Store> s) : store(std::move(s)) { PLANFENCE_ASSERT(store != nullptr); }
    result<endpoint_handle> resolve(std::string_view name) const override { return store->resolve(name); }
    result<stamp> read_stamp(endpoint_handle h) const override { return store->read_stamp(h); }
    result<stamp> commit(endpoint_handle h, const stamp& expected, const stamp& desired,
                         const record_set& records) override {
      return store->commit(h, expected, desired, records);
    }
    result<void> read_stamps(std::span<const endpoint_handle> handles, std::span<stamp> out) const override {
      if constexpr (batched_store<Store>) {
        return store->read_stamps(handles, out);
      } else {
        return read_each(*store, handles, out);
      }
    }
    result<void> commit_batch(std::span<commit_item> items) override {
      if constexpr (batched_store<Store>) {
        return store->commit_batch(items);
      } else {
        return commit_each(*store, items);
      }
    }
    result<void> commit_batch(std::span<commit_item> items, batch_marks& marks) override {
      if constexpr (marks_batch_store<Store>) {
        return store->commit_batch(items, marks);
      } else {
        return commit_batch_then_marks(*this, items, marks);  // through this model's own calls
      }
    }
    result<void> raise_fence(fence_token token) override { return store->raise_fence(token); }
    result<std::vector<generation>> live_generations() const override { return store->live_generations(); }
    result<std::vector<record>> served(endpoint_handle h) const override { return store->served(h); }
    result<std::vector<std::string>> endpoint_names() const override { return store->endpoint_names(); }
    result<void> inspect(std::span<const endpoint_handle> handles, std::span<endpoint_state> out) const override {
      return inspect_endpoints(*store, handles, out);
    }
    result<fence_token> fence_floor() const override {
      if constexpr (requires(const Store& s) { { s.fence_floor() } -> std::same_as<result<fence_token>>; }) {
        return store->fence_floor();
      } else if constexpr (requires(const Store& s) {
                             { s.read_floor() } -> std::same_as<result<std::optional<std::uint64_t>>>;
                           }) {
        auto floor = store->read_floor();  // the RFC 2136 store's floor record
        if (!floor) return unexpected_error(std::move(floor).error());
        return fence_token{floor->value_or(0)};
      } else {
        return fail(errc::not_found, "the store keeps no fence floor of its own");
      }
    }
    result<apply_marks> read_marks() const override {
      if constexpr (change_following_store<Store>) {
        return store->read_marks();
      } else {
        return apply_marks{};
      }
    }
    result<apply_marks> begin_apply(const apply_marks& expected, generation target, fence_token token) override {
      if constexpr (change_following_store<Store>) {
        return store->begin_apply(expected, target, token);
      } else {
        return apply_marks{};  // no marks: the apply that follows writes every endpoint anyway
      }
    }
    result<apply_marks> finish_apply(generation target, fence_token token) override {
      if constexpr (change_following_store<Store>) {
        return store->finish_apply(target, token);
      } else {
        return apply_marks{};
      }
    }
    bool follows_changes() const noexcept override { return change_following_store<Store>; }
    std::uint32_t preferred_batch_max() const noexcept override { return planfence::preferred_batch_max(*store); }
    std::unique_ptr<Store> store;
  };

  std::unique_ptr<interface> self_;
  std::string description_;
};

static_assert(inspectable_store<any_store>);
static_assert(batched_store<any_store>);
static_assert(batch_inspectable_store<any_store>);
static_assert(change_following_store<any_store>);
static_assert(marks_batch_store<any_store>);

/// Wraps what a store's `open_uri` returned (a store by value or by unique_ptr) as an any_store.
template <class Opened>
[[nodiscard]] result<any_store> make_any_store(result<Opened> opened, std::string description) {
  if (!opened) return unexpected_error(std::move(opened).error());
  if constexpr (requires { typename Opened::element_type; }) {
    return any_store(std::move(*opened), std::move(description));
  } else {
    return any_store(std::make_unique<Opened>(std::move(*opened)), std::move(description));
  }
}

/// One URI scheme and the function that opens a store from a URI of that scheme. `endpoints` are
/// the names the caller will use (a plan's): a store that cannot list its own endpoints (RFC
/// 2136: a DNS server is not asked for its whole zone) serves exactly those; others ignore it.
struct store_scheme {
  std::string_view scheme;  ///< "zonefile", without "://"
  result<any_store> (*open)(std::string_view uri, std::span<const std::string> endpoints);
  std::string_view example;  ///< shown in help and in errors
};

/// Opens the store `uri` names with the matching entry of `schemes`. Errors:
/// errc::parse_error (no "scheme://"), errc::not_found (a scheme no entry handles: the message
/// lists the known ones), and whatever the store's opener reports. Blocking (opening may do I/O).
[[nodiscard]] inline result<any_store> open_store(std::string_view uri, std::span<const store_scheme> schemes,
                                                  std::span<const std::string> endpoints = {}) {
  const std::size_t colon = uri.find("://");
  if (colon == std::string_view::npos || colon == 0) {
    // Not echoed: text without a scheme may be a secret pasted into the wrong option.
    return fail_at(errc::parse_error, 1, 1,
                   "expected a store URI such as 'zonefile:///absolute/dir' (SCHEME://...); what was given has no '://'");
  }
  const std::string_view scheme = uri.substr(0, colon);
  std::string known;
  for (const store_scheme& entry : schemes) {
    if (entry.scheme == scheme) return entry.open(uri, endpoints);
    known += known.empty() ? "" : ", ";
    known += std::string(entry.example);
  }
  // A scheme is letters, digits, '+', '-' and '.' (RFC 3986 section 3.1); anything else is not
  // echoed (it may be a secret pasted into the wrong option).
  const bool plausible = scheme.size() <= 32 && scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                                                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") ==
                                                      std::string_view::npos;
  return fail(errc::not_found, "no store handles the scheme '" + (plausible ? std::string(scheme) : "(redacted)") +
                                   "' (known: " + known + ")");
}

}  // namespace v1
}  // namespace planfence
