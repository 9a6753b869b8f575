// planfence/result.hpp: expected outcomes as values.
//
// Every operation that can meet an expected failure (a stale plan, a fenced writer, bad input, a
// store that is down) returns planfence::result<T>: either a T or a planfence::error. It is
// std::expected<T, error> where the standard library has it, and a small type with the same
// interface otherwise (libstdc++ 12 in C++20 mode does not). An `error` carries a code, and for
// parse errors a line and column; its `detail` text is empty on the apply and read paths, so
// building an error there never allocates.
//
// Cost: an error without detail text is a code, two 32-bit positions and an empty `error_text`
// (a null pointer and a size): no self-referencing buffer as in std::string, so once a refusal is
// inlined into its caller the compiler keeps the whole result in registers and its destructor
// folds away (bench/apply_bench.cpp, BM_RejectStale; docs/benchmarks.md). Text, when there is
// some, is one heap block owned by the error (the cold paths: bad input, setup failures).
#pragma once

#include <cstdint>
#include <cstring>
#include <iosfwd>
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
  authentication_failed, ///< TSIG: the server refused our signature (BADSIG, BADKEY, BADTIME) or its answer was unsigned or badly signed; etcd: wrong user or password, or permission denied
  not_authoritative, ///< the server does not serve the zone the store names (wrong zone or server)
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
    case errc::not_authoritative: return "not_authoritative";
  }
  return "unknown";
}

/// The detail text of an error: empty (a null pointer, the apply and read paths), or an owned
/// heap copy of the text. It reads like a `const std::string`: `empty()`, `size()`, `c_str()`,
/// comparison with strings, `+` with strings, `<<` to a stream, and an implicit conversion to
/// `std::string_view` and to `std::string` (so matchers and functions taking either accept it).
/// Building one from text allocates once (never for empty text); copying copies the text.
/// Not thread-safe to mutate; immutable once built, like the error that holds it.
class error_text {
 public:
  error_text() noexcept = default;
  error_text(std::string_view text) { assign(text); }                    // NOLINT: implicit, as std::string
  error_text(const char* text) { assign(std::string_view(text)); }       // NOLINT: implicit
  error_text(const std::string& text) { assign(std::string_view(text)); } // NOLINT: implicit
  error_text(const error_text& other) { assign(other.view()); }
  error_text(error_text&& other) noexcept : text_(other.text_), size_(other.size_) {
    other.text_ = nullptr;
    other.size_ = 0;
  }
  error_text& operator=(const error_text& other) {
    if (this != &other) {
      error_text copy(other);
      swap(copy);
    }
    return *this;
  }
  error_text& operator=(error_text&& other) noexcept {
    error_text taken(std::move(other));
    swap(taken);
    return *this;
  }
  ~error_text() {
    // Null on every refusal of the apply path. The free is a cold call of its own, so a caller's
    // loop around a refusal keeps its values in registers (BM_RejectStale).
    if (text_ != nullptr) [[unlikely]] release(text_);
  }

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t length() const noexcept { return size_; }
  [[nodiscard]] const char* data() const noexcept { return text_ == nullptr ? "" : text_; }
  [[nodiscard]] const char* c_str() const noexcept { return data(); }
  [[nodiscard]] std::string_view view() const noexcept { return {data(), size_}; }
  [[nodiscard]] std::string str() const { return std::string(view()); }
  [[nodiscard]] const char* begin() const noexcept { return data(); }
  [[nodiscard]] const char* end() const noexcept { return data() + size_; }
  [[nodiscard]] bool contains(std::string_view part) const noexcept { return view().find(part) != std::string_view::npos; }
  [[nodiscard]] std::size_t find(std::string_view part, std::size_t from = 0) const noexcept { return view().find(part, from); }
  [[nodiscard]] bool starts_with(std::string_view part) const noexcept { return view().starts_with(part); }
  [[nodiscard]] bool ends_with(std::string_view part) const noexcept { return view().ends_with(part); }
  operator std::string_view() const noexcept { return view(); }  // NOLINT: implicit, reads as a string
  operator std::string() const { return str(); }                 // NOLINT: implicit

  void swap(error_text& other) noexcept {
    std::swap(text_, other.text_);
    std::swap(size_, other.size_);
  }

  friend bool operator==(const error_text& a, const error_text& b) noexcept { return a.view() == b.view(); }
  friend bool operator==(const error_text& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const error_text& a, const char* b) noexcept { return a.view() == std::string_view(b); }
  friend bool operator==(const error_text& a, const std::string& b) noexcept { return a.view() == std::string_view(b); }

  friend std::string operator+(const error_text& a, const error_text& b) { return a.str().append(b.view()); }
  friend std::string operator+(const error_text& a, std::string_view b) { return a.str().append(b); }
  friend std::string operator+(const error_text& a, const char* b) { return a.str().append(b); }
  friend std::string operator+(const error_text& a, const std::string& b) { return a.str().append(b); }
  friend std::string operator+(const error_text& a, char b) { return a.str().append(1, b); }
  friend std::string operator+(std::string_view a, const error_text& b) { return std::string(a).append(b.view()); }
  friend std::string operator+(const char* a, const error_text& b) { return std::string(a).append(b.view()); }
  friend std::string operator+(const std::string& a, const error_text& b) { return std::string(a).append(b.view()); }
  friend std::string operator+(std::string&& a, const error_text& b) { return std::move(a.append(b.view())); }
  friend std::string operator+(char a, const error_text& b) { return std::string(1, a).append(b.view()); }

  template <class Traits>
  friend std::basic_ostream<char, Traits>& operator<<(std::basic_ostream<char, Traits>& out, const error_text& text) {
    return out << text.view();
  }

 private:
  void assign(std::string_view text) {
    if (text.empty()) return;
    PLANFENCE_ASSERT(text.size() <= UINT32_MAX);
    text_ = new char[text.size() + 1];
    std::memcpy(text_, text.data(), text.size());
    text_[text.size()] = '\0';
    size_ = static_cast<std::uint32_t>(text.size());
  }
  PLANFENCE_COLD static void release(char* text) noexcept { delete[] text; }
  char* text_ = nullptr;
  std::uint32_t size_ = 0;
};

/// An expected failure. `line` and `column` are 1-based and 0 when they do not apply.
struct error {
  errc code{};
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  error_text detail{};

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
      out += detail.view();
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

/// Builds the failure half of a result: `return fail(errc::stale);`. Never allocates.
[[nodiscard]] inline unexpected_error fail(errc code) noexcept { return unexpected_error(error{code, 0, 0, {}}); }

/// The same with detail text (`fail(errc::invalid_name, "empty label")`, or any std::string):
/// the text is copied into the error, one allocation when it is not empty.
[[nodiscard]] inline unexpected_error fail(errc code, std::string_view detail) {
  return unexpected_error(error{code, 0, 0, error_text(detail)});
}

/// A parse failure at a 1-based line and column.
[[nodiscard]] inline unexpected_error fail_at(errc code, std::uint32_t line, std::uint32_t column,
                                              std::string_view detail) {
  return unexpected_error(error{code, line, column, error_text(detail)});
}

/// The success value of a result<void>.
[[nodiscard]] inline result<void> ok() noexcept { return {}; }

}  // namespace v1
}  // namespace planfence
