// Proves that result<T> and result<void> (result.hpp) hold exactly one of a value or an error,
// keep that state through copies, moves and assignments (checked with a type that counts its
// live instances, so a leaked or doubly destroyed value shows), work with move-only values, build
// a failure in place with `unexpect`, and that error::message() spells "code at line:column:
// detail" with each part present only when it applies. Each errc has a distinct stable name.
#include <catch2/catch.hpp>

#include <memory>
#include <sstream>
#include <set>
#include <string_view>
#include <type_traits>
#include <string>
#include <utility>

#include <planfence/result.hpp>

using namespace planfence;

namespace {

// Counts live instances so that a missing or doubled destructor call fails a test.
struct counted {
  static inline int live = 0;
  std::string text;
  explicit counted(std::string t) : text(std::move(t)) { ++live; }
  counted(const counted& other) : text(other.text) { ++live; }
  counted(counted&& other) noexcept : text(std::move(other.text)) { ++live; }
  counted& operator=(const counted&) = default;
  counted& operator=(counted&&) noexcept = default;
  ~counted() { --live; }
};

result<int> half_of(int x) {
  if (x % 2 != 0) return fail(errc::invalid_rdata, "odd");
  return x / 2;
}

result<void> must_be_positive(int x) {
  if (x <= 0) return fail_at(errc::parse_error, 2, 7, "not positive");
  return ok();
}

}  // namespace

TEST_CASE("result<T> holds a value or an error, never both", "[result]") {
  result<int> good = half_of(10);
  REQUIRE(good.has_value());
  CHECK(static_cast<bool>(good));
  CHECK(good.value() == 5);
  CHECK(*good == 5);

  result<int> bad = half_of(7);
  REQUIRE_FALSE(bad.has_value());
  CHECK_FALSE(static_cast<bool>(bad));
  CHECK(bad.error().code == errc::invalid_rdata);
  CHECK(bad.error().detail == "odd");
  CHECK(bad.error().line == 0);
  CHECK(bad.error().column == 0);

  result<std::string> text = std::string("abc");
  CHECK(text->size() == 3);  // operator->
  text.value() += "d";
  CHECK(*text == "abcd");
}

TEST_CASE("result<T> copies, moves and assigns both states without leaking", "[result]") {
  counted::live = 0;
  {
    result<counted> value = counted("v");
    result<counted> failure = fail(errc::stale);
    CHECK(counted::live == 1);

    result<counted> value_copy = value;  // copy of a value
    CHECK(counted::live == 2);
    CHECK(value_copy->text == "v");
    CHECK(value->text == "v");

    result<counted> failure_copy = failure;  // copy of an error
    CHECK(counted::live == 2);
    REQUIRE_FALSE(failure_copy);
    CHECK(failure_copy.error().code == errc::stale);

    result<counted> moved = std::move(value_copy);
    CHECK(moved->text == "v");
    CHECK(counted::live == 3);  // the moved-from value is still alive until its result dies

    // Value -> error: the value must be destroyed.
    moved = failure;
    CHECK(counted::live == 2);
    REQUIRE_FALSE(moved);
    CHECK(moved.error().code == errc::stale);

    // Error -> value.
    moved = value;
    CHECK(counted::live == 3);
    REQUIRE(moved);
    CHECK(moved->text == "v");

    // Value -> value.
    moved = result<counted>(counted("w"));
    CHECK(counted::live == 3);
    CHECK(moved->text == "w");

    // Self-assignment keeps the value.
    auto& alias = moved;
    moved = alias;
    REQUIRE(moved);
    CHECK(moved->text == "w");
    CHECK(counted::live == 3);
  }
  CHECK(counted::live == 0);
}

TEST_CASE("result<T> carries move-only values", "[result]") {
  result<std::unique_ptr<int>> owner = std::make_unique<int>(42);
  REQUIRE(owner);
  result<std::unique_ptr<int>> taken = std::move(owner);
  REQUIRE(taken);
  REQUIRE(*taken != nullptr);
  CHECK(**taken == 42);
  std::unique_ptr<int> out = std::move(taken).value();
  REQUIRE(out != nullptr);
  CHECK(*out == 42);

  result<std::unique_ptr<int>> failure = fail(errc::not_found, "gone");
  error e = std::move(failure).error();
  CHECK(e.code == errc::not_found);
  CHECK(e.detail == "gone");
}

TEST_CASE("result<T>(unexpect, code) builds the failure in place", "[result]") {
  // The apply path's allocation-free refusal: the same error as fail(code), without a detail.
  result<counted> refused(unexpect, errc::fenced);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == errc::fenced);
  CHECK(refused.error().detail.empty());
  CHECK(refused.error().line == 0);
  CHECK(refused.error().message() == "fenced");
  result<int> same = fail(errc::fenced);
  CHECK(refused.error() == same.error());
  result<counted> copy = refused;
  REQUIRE_FALSE(copy);
  CHECK(copy.error().code == errc::fenced);
}

TEST_CASE("result<void> is ok() or an error with its position", "[result]") {
  result<void> good = must_be_positive(1);
  CHECK(good.has_value());
  CHECK(static_cast<bool>(good));
  good.value();  // must not assert

  result<void> bad = must_be_positive(0);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == errc::parse_error);
  CHECK(bad.error().line == 2);
  CHECK(bad.error().column == 7);
  CHECK(bad.error().message() == "parse_error at 2:7: not positive");

  result<void> copy = bad;
  REQUIRE_FALSE(copy);
  CHECK(copy.error().detail == "not positive");
  copy = ok();
  CHECK(copy.has_value());
  copy = good;
  CHECK(copy.has_value());
}

TEST_CASE("error::message() gives code, position and detail only when present", "[result]") {
  CHECK(error{errc::stale}.message() == "stale");
  CHECK(error{errc::invalid_name, 0, 0, "empty label"}.message() == "invalid_name: empty label");
  CHECK(error{errc::parse_error, 3, 14, "expected a TTL"}.message() == "parse_error at 3:14: expected a TTL");
  CHECK(error{errc::digest_mismatch, 12, 1, {}}.message() == "digest_mismatch at 12:1");
  // Multi-digit positions are written in full, not truncated.
  CHECK(error{errc::parse_error, 40000, 8193, "x"}.message() == "parse_error at 40000:8193: x");
  // fail() never sets a position; fail_at() does.
  result<int> plain = fail(errc::fenced);
  CHECK(plain.error().message() == "fenced");
  result<int> placed = fail_at(errc::invalid_ttl, 9, 5, "TTL above 2147483647");
  CHECK(placed.error().message() == "invalid_ttl at 9:5: TTL above 2147483647");
}

TEST_CASE("errors compare by code only", "[result]") {
  // Documented by the operator in result.hpp: position and detail are diagnostics, the code is
  // the outcome callers branch on.
  CHECK(error{errc::stale, 1, 2, "a"} == error{errc::stale, 3, 4, "b"});
  CHECK_FALSE(error{errc::stale} == error{errc::fenced});
}

TEST_CASE("every errc has a distinct stable name", "[result]") {
  std::set<std::string_view> names;
  const auto last = static_cast<int>(errc::io_error);
  for (int code = 0; code <= last; ++code) {
    const std::string_view name = to_string(static_cast<errc>(code));
    CHECK(name != "unknown");
    CHECK_FALSE(name.empty());
    names.insert(name);
  }
  CHECK(names.size() == static_cast<std::size_t>(last + 1));
  CHECK(to_string(errc::stale) == "stale");
  CHECK(to_string(errc::capacity_exceeded) == "capacity_exceeded");
  CHECK(to_string(errc::lease_superseded) == "lease_superseded");
  CHECK(to_string(errc::digest_mismatch) == "digest_mismatch");
  CHECK(to_string(static_cast<errc>(200)) == "unknown");
}

TEST_CASE("error::detail reads like a std::string and costs nothing when empty", "[result]") {
  // The detail is an error_text, not a std::string (result.hpp: no self-referencing buffer, so a
  // refusal stays in registers once inlined). Everything callers did with the string still
  // compiles and means the same: compare, concatenate, print, convert, test for emptiness.
  const error e{errc::invalid_name, 0, 0, "empty label"};
  CHECK(e.detail == "empty label");
  CHECK(e.detail == std::string("empty label"));
  CHECK(e.detail == std::string_view("empty label"));
  CHECK("empty label" == e.detail);
  CHECK(e.detail != "other");
  CHECK_FALSE(e.detail.empty());
  CHECK(e.detail.size() == 11);
  CHECK(std::string(e.detail.c_str()) == "empty label");
  CHECK("name: " + e.detail == "name: empty label");
  CHECK(std::string("name '") + "x" + "': " + e.detail == "name 'x': empty label");
  CHECK(e.detail + " in endpoint a." == "empty label in endpoint a.");
  const std::string converted = e.detail;
  CHECK(converted == "empty label");
  const std::string_view viewed = e.detail;
  CHECK(viewed == "empty label");
  std::string appended = "x: ";
  appended += e.detail;
  CHECK(appended == "x: empty label");
  CHECK(e.detail.contains("label"));
  std::ostringstream printed;
  printed << e.detail;
  CHECK(printed.str() == "empty label");

  // Text from a std::string, copied and moved with the error; a copy owns its own text.
  std::string source = "built at run time";
  result<int> failure = fail(errc::io_error, source);
  source.clear();
  CHECK(failure.error().detail == "built at run time");
  result<int> copy = failure;
  result<int> moved = std::move(failure);
  CHECK(copy.error().detail == "built at run time");
  CHECK(moved.error().detail == "built at run time");
  CHECK(copy.error().detail == moved.error().detail);

  // No text: a null pointer and a size, nothing to free; reads as "".
  const error bare{errc::stale};
  CHECK(bare.detail.empty());
  CHECK(bare.detail == "");
  CHECK(std::string_view(bare.detail.c_str()).empty());
  static_assert(sizeof(error_text) <= 2 * sizeof(void*));
  static_assert(std::is_nothrow_move_constructible_v<error>);
}
