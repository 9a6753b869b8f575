// Proves that planfence::detail::sha256 computes SHA-256 exactly as FIPS 180-4 defines it, so
// that a plan digest computed here matches one computed by any other implementation (S7).
//
// How: the digests of the NIST example messages ("abc", the empty string, the 448- and 896-bit
// messages, one million 'a') are compared with the published values. Messages whose lengths sit
// on each side of the padding boundaries (55/56 bytes: the length field still fits in the block
// or spills into a second one; 63/64/65: one block exactly full) are compared with digests that
// GNU sha256sum produced on the development machine. The same messages fed in pieces of 1, 3,
// 63, 64 and 65 bytes, and in mixed pieces through both update() overloads, must give the
// one-shot digest, which exercises every path through the block buffer. static_asserts check
// digests at compile time, where update(std::string_view) takes a path of its own. Finally, a
// forked child shows that updating or finishing a finished hasher stops the program.
#include <planfence/detail/sha256.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#if defined(__unix__) && PLANFENCE_ASSERTS_ENABLED
#include <csignal>
#include <cstdio>
#include <sys/wait.h>
#include <unistd.h>
#define PLANFENCE_TEST_CAN_FORK 1
#else
#define PLANFENCE_TEST_CAN_FORK 0
#endif

namespace {

using planfence::detail::sha256;
using planfence::detail::sha256_digest;
using planfence::detail::sha256_of;
using planfence::detail::to_hex;

std::string hex_digest_of(std::string_view text) { return to_hex(sha256_of(text)); }

// The bytes of `text` as the span-typed API expects them.
std::vector<std::uint8_t> bytes_of(std::string_view text) {
  return std::vector<std::uint8_t>(text.begin(), text.end());
}

// Feeds `text` to a hasher in pieces of `piece_size` bytes (the last one may be shorter).
sha256_digest digest_in_pieces(std::string_view text, std::size_t piece_size) {
  sha256 hasher;
  while (!text.empty()) {
    const std::size_t size = std::min(piece_size, text.size());
    hasher.update(text.substr(0, size));
    text.remove_prefix(size);
  }
  return hasher.finish();
}

// The first `size` bytes of "The quick brown fox jumps over the lazy dog.\n" repeated, which is
// exactly what `yes 'The quick brown fox jumps over the lazy dog.' | head -c <size>` prints.
std::string fox_prefix(std::size_t size) {
  constexpr std::string_view line = "The quick brown fox jumps over the lazy dog.\n";
  std::string text;
  while (text.size() < size) {
    text += line;
  }
  text.resize(size);
  return text;
}

constexpr std::string_view nist_448_bits =
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr std::string_view nist_896_bits =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopq"
    "rsmnopqrstnopqrstu";
constexpr std::string_view million_a_digest =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

// A digest written as 64 hex digits, decoded at compile time.
constexpr sha256_digest digest_from_hex(std::string_view hex) {
  const auto nibble = [](char digit) {
    return static_cast<std::uint8_t>(digit <= '9' ? digit - '0' : digit - 'a' + 10);
  };
  sha256_digest digest{};
  for (std::size_t i = 0; i < digest.size(); ++i) {
    digest[i] = static_cast<std::uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return digest;
}

// The hasher is constexpr: at compile time update(std::string_view) takes a different path
// (it converts characters block by block instead of viewing them as bytes), so check it there
// too: one block, two blocks, and a length that is not a multiple of the block size.
static_assert(sha256_of("abc") ==
              digest_from_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
static_assert(sha256_of(nist_896_bits) ==
              digest_from_hex("cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"));
// The reference for the first 100 bytes of the 896-bit message was produced on the development
// machine with: printf '%s' <the 896-bit message> | head -c 100 | sha256sum
static_assert(sha256_of(nist_896_bits.substr(0, 100)) ==
              digest_from_hex("3e5f2c9fc813aa7a392a13769cb7036fe6005efd172329c06625446060097359"));

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-4 examples", "[sha256]") {
  CHECK(hex_digest_of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_digest_of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(nist_448_bits.size() == 56);
  CHECK(hex_digest_of(nist_448_bits) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(nist_896_bits.size() == 112);
  CHECK(hex_digest_of(nist_896_bits) ==
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST_CASE("sha256 of one million 'a' matches the FIPS 180-4 example", "[sha256]") {
  const std::string million_a(1'000'000, 'a');
  CHECK(hex_digest_of(million_a) == million_a_digest);
}

TEST_CASE("sha256 is right on each side of the padding boundaries", "[sha256]") {
  // Reference digests produced on the development machine with GNU coreutils:
  //   yes 'The quick brown fox jumps over the lazy dog.' | head -c <size> | sha256sum
  struct boundary_case {
    std::size_t size;
    std::string_view hex_digest;
  };
  const std::array cases{
      boundary_case{55, "85fae5dc7c6ac70ef34ad47b482cb08ff315eb474974b9f9225f0a66bdc3109f"},
      boundary_case{56, "8d3a46c65f46fd504a1d26689dc8eabe2fa91aa01edcbb4088e3433ffff011b7"},
      boundary_case{57, "06a384b8828fee90ba0b6dac28c8414e2beeffa43be5d07bcdceba50e63752c6"},
      boundary_case{63, "45d3793c766a5f14c358f1ad2c16403c2c988544a40c21192a0bdd48a0bda1e9"},
      boundary_case{64, "f81763aa83856f1900b21465af7cadd102ea2d337bf98a651b1d03e78a989a7e"},
      boundary_case{65, "8cb1316b8fa03c0ba3e24eeb2ff8a909c89bdeda90af132f91a14af7fd43d01c"},
      boundary_case{119, "36e12228b35d269097f70c881cf3341c5db278b315c0fb212f687ef8fe90eeca"},
      boundary_case{120, "33bd6af43dfa4230490259e2c971c91d381521bdad9fc948a1dbe831c5028c56"},
      boundary_case{128, "ae8198f5e2dbe67c8ec1997939e67ba1ff0a050ceb6f3887feaf559c761043e5"},
  };
  for (const boundary_case& boundary : cases) {
    INFO("message size " << boundary.size);
    const std::string message = fox_prefix(boundary.size);
    CHECK(hex_digest_of(message) == boundary.hex_digest);
    // The span overload must agree with the string_view one byte for byte.
    CHECK(to_hex(sha256_of(std::span<const std::uint8_t>(bytes_of(message)))) ==
          boundary.hex_digest);
  }
}

TEST_CASE("sha256 gives the one-shot digest however the input is split", "[sha256]") {
  const std::string million_a(1'000'000, 'a');
  const std::array<std::size_t, 5> piece_sizes{1, 3, 63, 64, 65};
  const std::array<std::size_t, 9> message_sizes{55, 56, 63, 64, 65, 127, 128, 129, 1000};
  for (const std::size_t piece_size : piece_sizes) {
    INFO("piece size " << piece_size);
    CHECK(to_hex(digest_in_pieces(million_a, piece_size)) == million_a_digest);
    CHECK(digest_in_pieces(nist_896_bits, piece_size) == sha256_of(nist_896_bits));
    for (const std::size_t size : message_sizes) {
      INFO("message size " << size);
      const std::string message = fox_prefix(size);
      CHECK(digest_in_pieces(message, piece_size) == sha256_of(message));
    }
  }
}

TEST_CASE("sha256 streams mixed piece sizes through both overloads", "[sha256]") {
  // Cycling through the piece sizes leaves the buffer at a different fill level before each
  // update, and alternating the overloads shows that they feed the same state. Empty updates
  // must change nothing.
  const std::string message = fox_prefix(5000);
  const std::vector<std::uint8_t> message_bytes = bytes_of(message);
  const std::array<std::size_t, 6> piece_sizes{1, 3, 63, 64, 65, 0};
  sha256 hasher;
  std::size_t offset = 0;
  for (std::size_t piece = 0; offset < message.size(); ++piece) {
    const std::size_t size =
        std::min(piece_sizes[piece % piece_sizes.size()], message.size() - offset);
    if (piece % 2 == 0) {
      hasher.update(std::string_view(message).substr(offset, size));
    } else {
      hasher.update(std::span<const std::uint8_t>(message_bytes).subspan(offset, size));
    }
    offset += size;
  }
  hasher.update(std::string_view());
  hasher.update(std::span<const std::uint8_t>());
  CHECK(hasher.finish() == sha256_of(message));
}

TEST_CASE("sha256 hasher copies fork the computation", "[sha256]") {
  // hmac.hpp relies on this: a copy taken after a common prefix continues independently.
  sha256 prefix;
  prefix.update(fox_prefix(100));
  sha256 fork = prefix;
  prefix.update("left");
  fork.update("right");
  CHECK(prefix.finish() == sha256_of(fox_prefix(100) + "left"));
  CHECK(fork.finish() == sha256_of(fox_prefix(100) + "right"));
}

TEST_CASE("to_hex writes two lowercase digits per byte", "[sha256]") {
  const std::array<std::uint8_t, 5> bytes{0x00, 0x09, 0x0a, 0xf0, 0xff};
  CHECK(to_hex(bytes) == "00090af0ff");
  CHECK(to_hex(std::span<const std::uint8_t>()).empty());
}

#if PLANFENCE_TEST_CAN_FORK
TEST_CASE("updating or finishing a finished sha256 hasher stops the program", "[sha256]") {
  // A spent hasher silently producing a wrong digest would defeat S7, so misuse must abort
  // (PLANFENCE_ASSERT). Catch2 v2 has no death tests: run the misuse in a forked child and
  // check that the child died of SIGABRT.
  const auto dies_of_abort = [](auto misuse) {
    std::fflush(nullptr);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // Catch2's fatal-signal handler would report the expected abort as a failure: restore
      // the default action, and keep the assertion message out of the test output.
      static_cast<void>(std::signal(SIGABRT, SIG_DFL));
      static_cast<void>(std::freopen("/dev/null", "w", stderr));
      misuse();
      _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
  };
  CHECK(dies_of_abort([] {
    sha256 hasher;
    static_cast<void>(hasher.finish());
    hasher.update("late");
  }));
  CHECK(dies_of_abort([] {
    sha256 hasher;
    static_cast<void>(hasher.finish());
    static_cast<void>(hasher.finish());
  }));
}
#endif
