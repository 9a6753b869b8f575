// planfence/ids.hpp: distinct types for the numbers that cross the public API.
//
// A generation, a fence token, a lease id and an endpoint handle are all 64-bit integers
// underneath, and mixing them up is exactly the kind of slip that turns a fence check into a
// generation check. Each is its own type: comparisons work within a type, never across types, and
// there is no implicit conversion from or to an integer. Cost: none (a 64-bit value).
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace planfence {
inline namespace v1 {

/// A 64-bit number with a tag that makes it a distinct type.
template <class Tag>
class strong_id {
 public:
  using value_type = std::uint64_t;
  constexpr strong_id() noexcept = default;
  constexpr explicit strong_id(value_type value) noexcept : value_(value) {}
  [[nodiscard]] constexpr value_type value() const noexcept { return value_; }
  friend constexpr auto operator<=>(strong_id, strong_id) noexcept = default;
  friend constexpr bool operator==(strong_id, strong_id) noexcept = default;

 private:
  value_type value_ = 0;
};

struct generation_tag {};
struct fence_token_tag {};
struct lease_id_tag {};

/// A plan's place in the total order of plans. Larger is newer. Generation 0 means "nothing
/// applied yet": no plan carries it.
using generation = strong_id<generation_tag>;

/// The token a lease authority attaches to each grant. Every new grant gets a larger token, so a
/// store that remembers the largest token it accepted can refuse a superseded writer (S2).
/// Token 0 is never granted.
using fence_token = strong_id<fence_token_tag>;

/// Identifies one grant of a lease (renewals keep it).
using lease_id = strong_id<lease_id_tag>;

/// A store's pre-resolved reference to one endpoint: looking a name up costs more than the
/// commit itself (docs/benchmarks.md), so hot loops resolve once and keep the handle. Only valid
/// with the store that issued it.
class endpoint_handle {
 public:
  constexpr endpoint_handle() noexcept = default;
  constexpr explicit endpoint_handle(std::uint32_t index) noexcept : index_(index) {}
  [[nodiscard]] constexpr std::uint32_t index() const noexcept { return index_; }
  friend constexpr auto operator<=>(endpoint_handle, endpoint_handle) noexcept = default;
  friend constexpr bool operator==(endpoint_handle, endpoint_handle) noexcept = default;

 private:
  std::uint32_t index_ = 0;
};

}  // namespace v1
}  // namespace planfence

template <class Tag>
struct std::hash<planfence::strong_id<Tag>> {
  std::size_t operator()(planfence::strong_id<Tag> id) const noexcept {
    return std::hash<std::uint64_t>{}(id.value());
  }
};
