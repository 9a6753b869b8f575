// planfence/etcd/layout.hpp: where planfence keeps things in etcd, and how numbers are written.
//
// Everything lives under one prefix P (the path of an etcd:// URI). docs/etcd.md shows the
// layout with etcdctl output:
//
//   P/endpoints/<name>     one endpoint: its stamp and records (etcd_store)
//   P/fence-floor          the store's fence floor, 20 decimal digits (etcd_store)
//   P/apply-marks          the store's apply marks, "begun=B applied=A" in decimal (etcd_store's
//                          begin_apply and finish_apply: change_following_store in store.hpp)
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
// raise_fence, begin_apply, finish_apply, publish or collect), inside that write's transaction;
// P/apply-marks by the first begin_apply or finish_apply (missing: never marked, both marks
// generation_none). Opening and reading never write anything, so a read-only tool leaves the
// cluster's revision where it found it. The apply marks are compared by their key's mod
// revision, never by value, so they need no padding.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "../config.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../result.hpp"
#include "../store.hpp"

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
  if (!printable) return "a value of " + std::to_string(value.size()) + " bytes (longer than 40 or not printable)";
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

/// "begun=B applied=A": the value of P/apply-marks (generation_none as 0; the same text as the DNS
/// stores' marks record).
[[nodiscard]] inline std::string format_marks(const apply_marks& marks) {
  std::string out = "begun=";
  out += std::to_string(marks.begun.value());
  out += " applied=";
  out += std::to_string(marks.applied.value());
  return out;
}

/// Reads the value of the apply marks key `key`: exactly "begun=B applied=A", B and A decimal
/// from 0 (never) to generation_max, A at most B. The version is 0 (the caller sets the key's mod
/// revision). Errors: errc::parse_error naming the key and the value and saying what to do.
[[nodiscard]] inline result<apply_marks> parse_marks(std::string_view key, std::string_view value) {
  auto refuse = [&](std::string_view why) {
    return fail(errc::parse_error, "corrupt apply marks: " + std::string(key) + " holds " + describe_value(value) + ", " +
                                       std::string(why) + "; repair it with etcdctl (or delete it: the next apply then "
                                       "writes every endpoint of its plan)");
  };
  constexpr std::string_view begun_word = "begun=";
  constexpr std::string_view applied_word = " applied=";
  const std::size_t space = value.find(' ');
  if (value.substr(0, begun_word.size()) != begun_word || space == std::string_view::npos ||
      value.substr(space, applied_word.size()) != applied_word) {
    return refuse("not \"begun=B applied=A\"");
  }
  const std::string_view texts[2] = {value.substr(begun_word.size(), space - begun_word.size()),
                                     value.substr(space + applied_word.size())};
  std::uint64_t numbers[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    const std::string_view t = texts[i];
    const bool digits = !t.empty() && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) return refuse("not \"begun=B applied=A\" in decimal");
    const auto n = read_decimal(t);
    if (!n || *n > generation_max.value()) {
      return refuse(std::string(i == 0 ? "begun" : "applied") + " beyond generation_max " +
                    std::to_string(generation_max.value()));
    }
    numbers[i] = *n;
  }
  if (numbers[1] > numbers[0]) return refuse("applied above begun");
  return apply_marks{generation{numbers[0]}, generation{numbers[1]}, 0};
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
  [[nodiscard]] std::string marks() const { return prefix + "/apply-marks"; }
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
