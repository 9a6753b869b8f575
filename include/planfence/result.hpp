// planfence/result.hpp: expected outcomes as values.
//
// Every operation that can meet an expected failure (a stale plan, a fenced writer, bad input, a
// store that is down) returns planfence::result<T>: either a T or a planfence::error. It is
// std::expected<T, error> where the standard library has it, and a small type with the same
// interface otherwise (libstdc++ 12 in C++20 mode does not). An `error` carries a code, and for
// parse errors a line and column; its `detail` text is empty on the apply and read paths, so
// building an error there never allocates.
#pragma once

#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "config.hpp"

#if defined(__has_include)
#if __has_include(<expected>)
#include <expected>
#endif
#endif

namespace planfence {
inline namespace v1 {

/// What went wrong. Stable names: `to_string` gives them, tests and tools print them.
enum class errc : std::uint8_t {
  // Commit outcomes (store concept, docs/concepts.md).
  stale,             ///< the target already serves this generation or a newer one (S1)
  fenced,            ///< the target accepted a larger fence token (S2)
  conflict,          ///< the stamp moved since it was read: read again and decide again
  unknown_endpoint,  ///< the store has no such endpoint
  store_unavailable, ///< the store could not be reached or failed; nothing was written
  capacity_exceeded, ///< a packed field or a bounded table would overflow; nothing was written
  // Leases.
  lease_held,        ///< another holder's lease has not expired
  lease_lapsed,      ///< the lease expired or was released
  lease_superseded,  ///< a newer lease (larger fence token) was granted
  // Registry.
  equivocation,      ///< the generation is taken by a plan with different content (S5)
  not_found,         ///< no retained plan has that generation
  collected,         ///< the plan was collected
  protected_plan,    ///< collection refused: the plan is live, pinned or among the newest (S3)
  registry_full,     ///< the retention table or the reclamation backlog is at its bound
  // Plans and input.
  parse_error,       ///< bad text; line and column say where
  invalid_name,      ///< not an RFC 1035 name
  invalid_ttl,       ///< TTL outside 0..2147483647 (RFC 2181 section 8)
  invalid_rdata,     ///< record data does not fit the record type
  invalid_plan,      ///< inconsistent plan (duplicate endpoint, CNAME beside other data, ...)
  digest_mismatch,   ///< content does not match its digest (S7)
  blast_radius,      ///< refused by the S4 guard: the plan does not mark the change as intended
  io_error,          ///< a file or socket operation failed
  authentication_failed, ///< TSIG: the server refused our signature (BADSIG, BADKEY, BADTIME) or its answer was unsigned or badly signed
};

/// The stable name of a code, e.g. "stale".
[[nodiscard]] constexpr std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::stale: return "stale";
    case errc::fenced: return "fenced";
    case errc::conflict: return "conflict";
    case errc::unknown_endpoint: return "unknown_endpoint";
    case errc::store_unavailable: return "store_unavailable";
    case errc::capacity_exceeded: return "capacity_exceeded";
    case errc::lease_held: return "lease_held";
    case errc::lease_lapsed: return "lease_lapsed";
    case errc::lease_superseded: return "lease_superseded";
    case errc::equivocation: return "equivocation";
    case errc::not_found: return "not_found";
    case errc::collected: return "collected";
    case errc::protected_plan: return "protected_plan";
    case errc::registry_full: return "registry_full";
    case errc::parse_error: return "parse_error";
    case errc::invalid_name: return "invalid_name";
    case errc::invalid_ttl: return "invalid_ttl";
    case errc::invalid_rdata: return "invalid_rdata";
    case errc::invalid_plan: return "invalid_plan";
    case errc::digest_mismatch: return "digest_mismatch";
    case errc::blast_radius: return "blast_radius";
    case errc::io_error: return "io_error";
    case errc::authentication_failed: return "authentication_failed";
  }
  return "unknown";
}

/// An expected failure. `line` and `column` are 1-based and 0 when they do not apply.
struct error {
  errc code{};
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  std::string detail{};

  /// "parse_error at 3:14: expected a TTL" or "stale".
  [[nodiscard]] std::string message() const {
    std::string out(to_string(code));
    if (line != 0) {
      out += " at ";
      out += std::to_string(line);
      out += ':';
      out += std::to_string(column);
    }
    if (!detail.empty()) {
      out += ": ";
      out += detail;
    }
    return out;
  }
  friend bool operator==(const error& a, const error& b) noexcept { return a.code == b.code; }
};

#if defined(__cpp_lib_expected) && __cpp_lib_expected >= 202202L
template <class T>
using result = std::expected<T, error>;
using unexpected_error = std::unexpected<error>;
using unexpect_t = std::unexpect_t;
inline constexpr unexpect_t unexpect = std::unexpect;
#else
/// Tag that builds a result's failure in place: `return result<T>(unexpect, errc::stale);`
/// (std::unexpect_t where <expected> exists). Unlike `fail(code)`, no error is built and moved
/// through out-of-line calls, so a refusal on the apply path stays a few stores
/// (bench/apply_bench.cpp, BM_RejectStale).
struct unexpect_t {
  explicit unexpect_t() = default;
};
inline constexpr unexpect_t unexpect{};

/// The failure half of a result, as std::unexpected<error>.
class unexpected_error {
 public:
  using error_type = ::planfence::v1::error;
  explicit unexpected_error(error_type e) noexcept : error_(std::move(e)) {}
  [[nodiscard]] const error_type& error() const& noexcept { return error_; }
  [[nodiscard]] error_type&& error() && noexcept { return std::move(error_); }

 private:
  error_type error_;
};

/// A T or an error; the subset of std::expected<T, error> that planfence uses.
template <class T>
class [[nodiscard]] result {
 public:
  using error_type = ::planfence::v1::error;
  using value_type = T;
  template <class U = T>
    requires std::is_constructible_v<T, U&&> &&
             (!std::is_same_v<std::remove_cvref_t<U>, result>) &&
             (!std::is_same_v<std::remove_cvref_t<U>, unexpected_error>)
  result(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>)  // NOLINT: implicit
      : has_value_(true) {
    ::new (static_cast<void*>(&storage_.value)) T(std::forward<U>(value));
  }
  /// The failure `code`, built in place (std::expected's unexpect_t constructor). Never allocates.
  result(unexpect_t, errc code) noexcept : has_value_(false) {
    ::new (static_cast<void*>(&storage_.failure)) error_type{code, 0, 0, {}};
  }
  result(unexpected_error failure) noexcept : has_value_(false) {  // NOLINT: implicit
    ::new (static_cast<void*>(&storage_.failure)) error_type(std::move(failure).error());
  }
  result(const result& other) : has_value_(other.has_value_) {
    if (has_value_) ::new (static_cast<void*>(&storage_.value)) T(other.storage_.value);
    else ::new (static_cast<void*>(&storage_.failure)) error_type(other.storage_.failure);
  }
  result(result&& other) noexcept(std::is_nothrow_move_constructible_v<T>)
      : has_value_(other.has_value_) {
    if (has_value_) ::new (static_cast<void*>(&storage_.value)) T(std::move(other.storage_.value));
    else ::new (static_cast<void*>(&storage_.failure)) error_type(std::move(other.storage_.failure));
  }
  result& operator=(result other) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &other) {
      destroy();
      ::new (static_cast<void*>(this)) result(std::move(other));
    }
    return *this;
  }
  ~result() { destroy(); }

  [[nodiscard]] bool has_value() const noexcept { return has_value_; }
  explicit operator bool() const noexcept { return has_value_; }
  [[nodiscard]] T& value() & noexcept { PLANFENCE_ASSERT(has_value_); return storage_.value; }
  [[nodiscard]] const T& value() const& noexcept { PLANFENCE_ASSERT(has_value_); return storage_.value; }
  [[nodiscard]] T&& value() && noexcept { PLANFENCE_ASSERT(has_value_); return std::move(storage_.value); }
  [[nodiscard]] const error_type& error() const& noexcept { PLANFENCE_ASSERT(!has_value_); return storage_.failure; }
  [[nodiscard]] error_type&& error() && noexcept { PLANFENCE_ASSERT(!has_value_); return std::move(storage_.failure); }
  T& operator*() & noexcept { return value(); }
  const T& operator*() const& noexcept { return value(); }
  T* operator->() noexcept { return &value(); }
  const T* operator->() const noexcept { return &value(); }

 private:
  void destroy() noexcept {
    if (has_value_) storage_.value.~T();
    else storage_.failure.~error_type();
  }
  union storage {
    storage() noexcept {}
    ~storage() {}
    T value;
    error_type failure;
  } storage_;
  bool has_value_;
};

/// result<void>: success carries nothing.
template <>
class [[nodiscard]] result<void> {
 public:
  using error_type = ::planfence::v1::error;
  using value_type = void;
  result() noexcept = default;
  result(unexpected_error failure) noexcept  // NOLINT: implicit
      : failure_(std::move(failure).error()), has_value_(false) {}
  [[nodiscard]] bool has_value() const noexcept { return has_value_; }
  explicit operator bool() const noexcept { return has_value_; }
  void value() const noexcept { PLANFENCE_ASSERT(has_value_); }
  [[nodiscard]] const error_type& error() const& noexcept { PLANFENCE_ASSERT(!has_value_); return failure_; }

 private:
  error_type failure_{};
  bool has_value_ = true;
};
#endif

/// Builds the failure half of a result: `return fail(errc::stale);`. Never allocates when
/// `detail` is empty.
[[nodiscard]] inline unexpected_error fail(errc code, std::string detail = {}) {
  return unexpected_error(error{code, 0, 0, std::move(detail)});
}

/// A parse failure at a 1-based line and column.
[[nodiscard]] inline unexpected_error fail_at(errc code, std::uint32_t line, std::uint32_t column,
                                              std::string detail) {
  return unexpected_error(error{code, line, column, std::move(detail)});
}

/// The success value of a result<void>.
[[nodiscard]] inline result<void> ok() noexcept { return {}; }

}  // namespace v1
}  // namespace planfence
