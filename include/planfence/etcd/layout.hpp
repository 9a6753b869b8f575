// planfence/etcd/layout.hpp: where planfence keeps things in etcd, and how numbers are written.
//
// Everything lives under one prefix P (the path of an etcd:// URI). docs/etcd.md shows the
// layout with etcdctl output:
//
//   P/endpoints/<name>     one endpoint: its stamp and records (etcd_store)
//   P/fence-floor          the store's fence floor, 20 decimal digits (etcd_store)
//   P/holder               the lease holder key, attached to the holder's etcd lease; its
//                          create_revision is the fence token (etcd_lease_authority)
//   P/sequence             the last generation issued (etcd_sequencer)
//   P/plans/<gen>          a plan in its text form, gen in 20 digits (etcd_plan_registry)
//   P/plans-collected      the highest collected generation, 20 digits (etcd_plan_registry)
//   P/pins/<gen>/<holder>  an in-flight apply's pin, attached to the pinner's etcd lease
//
// Numbers compared by etcd itself are written as 20 zero-padded decimal digits, so that etcd's
// byte-wise VALUE comparison orders them as numbers: "value(P/fence-floor) < pad(f + 1)" is the
// server-side test "floor <= f". Plans are keyed by padded generation so that a range sorted by
// key, descending, limit 1, is "the newest plan".
//
// P/fence-floor and P/plans-collected are created by the first write that needs them (a commit,
// raise_fence, publish or collect), inside that write's transaction; opening and reading never
// write anything, so a read-only tool leaves the cluster's revision where it found it.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "../config.hpp"
#include "../result.hpp"

namespace planfence {
inline namespace v1 {
namespace etcd {

/// Digits of a padded number: enough for any uint64.
inline constexpr std::size_t padded_digits = 20;

/// `value` as 20 zero-padded decimal digits.
[[nodiscard]] inline std::string padded(std::uint64_t value) {
  std::string out(padded_digits, '0');
  for (std::size_t i = padded_digits; value != 0; --i) {
    out[i - 1] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  return out;
}

/// Reads a decimal number (padded or not); nullopt for anything else.
[[nodiscard]] inline std::optional<std::uint64_t> read_decimal(std::string_view text) noexcept {
  std::uint64_t out = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return out;
}

/// A value read from etcd as it may appear in a message: quoted when short and printable (these
/// keys hold numbers and plan text, never secrets), else only its size.
[[nodiscard]] inline std::string describe_value(std::string_view value) {
  bool printable = value.size() <= 40;
  for (const char c : value) printable = printable && c >= 0x20 && c < 0x7F;
  if (!printable) return "a value of " + std::to_string(value.size()) + " bytes that is not a number";
  return "'" + std::string(value) + "'";
}

/// Reads a number planfence writes padded (P/fence-floor, P/plans-collected): exactly 20 decimal
/// digits, at most `max`. Anything else is refused, because etcd compares these values as bytes
/// inside transactions and would order a non-padded value wrongly. The error names the key and
/// the value and says what to do. Errors: errc::store_unavailable (the store cannot be used until
/// the key is repaired).
[[nodiscard]] inline result<std::uint64_t> read_padded_value(std::string_view key, std::string_view value,
                                                             std::uint64_t max) {
  if (value.size() == padded_digits) {
    if (auto n = read_decimal(value); n && *n <= max) return *n;
  }
  return fail(errc::store_unavailable, "corrupt value: " + std::string(key) + " holds " + describe_value(value) +
                                           ", not 20 decimal digits of a number from 0 to " + std::to_string(max) +
                                           " (planfence writes it so); repair or delete the key with etcdctl");
}

/// How an etcd store or plan history is opened.
struct open_options {
  /// Fail with errc::not_found when the prefix holds none of the keys planfence keeps (a mistyped
  /// prefix, or one never used), rather than open it as an empty store or history. For read-only
  /// tools, which must not report "nothing there" when they are looking in the wrong place.
  bool must_exist = false;
};

/// The keys under one prefix.
struct layout {
  std::string prefix;  ///< "/planfence/prod": starts with '/', no final '/'

  [[nodiscard]] std::string endpoints() const { return prefix + "/endpoints/"; }
  [[nodiscard]] std::string endpoint(std::string_view name) const { return endpoints() + std::string(name); }
  [[nodiscard]] std::string fence_floor() const { return prefix + "/fence-floor"; }
  [[nodiscard]] std::string holder() const { return prefix + "/holder"; }
  [[nodiscard]] std::string sequence() const { return prefix + "/sequence"; }
  [[nodiscard]] std::string plans() const { return prefix + "/plans/"; }
  [[nodiscard]] std::string plan(std::uint64_t gen) const { return plans() + padded(gen); }
  [[nodiscard]] std::string plans_collected() const { return prefix + "/plans-collected"; }
  [[nodiscard]] std::string all_pins() const { return prefix + "/pins/"; }
  [[nodiscard]] std::string pins(std::uint64_t gen) const { return all_pins() + padded(gen) + "/"; }
  [[nodiscard]] std::string pin(std::uint64_t gen, std::string_view holder_name) const {
    return pins(gen) + std::string(holder_name);
  }
};

}  // namespace etcd
}  // namespace v1
}  // namespace planfence
