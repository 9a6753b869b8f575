// Proves that planfence::detail::hmac_sha256 computes HMAC-SHA256 exactly as RFC 2104 defines
// it, so that TSIG signatures made with it verify on real DNS servers, and that
// constant_time_equal answers like == on MACs.
//
// How: all seven HMAC-SHA-256 test cases of RFC 4231 (short and long keys, short and long data,
// case 5 truncated to its first 128 bits as the RFC specifies) are compared with the published
// values, through the one-shot function and through the streaming state fed one byte at a time.
// Keys of 63, 64 and 65 bytes (just below, at and just above the block size, where RFC 2104
// switches to hashing the key) are compared with Python's hmac module on the development
// machine. A keyed state copied before use must give the same MAC as a fresh one. Case 1 is also
// checked by a static_assert, which proves the code usable in constant expressions.
// constant_time_equal is checked on equal spans, on spans differing in any single bit, on
// different lengths and on empty spans. A forked child shows that reusing a finished state
// stops the program.
#include <planfence/detail/hmac.hpp>

#include <catch2/catch.hpp>

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

using planfence::detail::constant_time_equal;
using planfence::detail::hmac_sha256;
using planfence::detail::hmac_sha256_mac;
using planfence::detail::hmac_sha256_state;
using planfence::detail::to_hex;

std::vector<std::uint8_t> bytes_of(std::string_view text) {
  return std::vector<std::uint8_t>(text.begin(), text.end());
}

std::vector<std::uint8_t> repeated(std::uint8_t byte, std::size_t count) {
  return std::vector<std::uint8_t>(count, byte);
}

// The MAC computed by feeding `message` to a streaming state one byte at a time.
hmac_sha256_mac mac_byte_by_byte(std::span<const std::uint8_t> key,
                                 std::span<const std::uint8_t> message) {
  hmac_sha256_state state(key);
  for (std::size_t i = 0; i < message.size(); ++i) {
    state.update(message.subspan(i, 1));
  }
  return state.finish();
}

struct rfc4231_case {
  int number;
  std::vector<std::uint8_t> key;
  std::vector<std::uint8_t> data;
  std::string_view hex_mac;  // as published; case 5 publishes only the first 128 bits
};

// RFC 4231 section 4, the HMAC-SHA-256 rows of test cases 1 to 7.
std::vector<rfc4231_case> rfc4231_cases() {
  std::vector<std::uint8_t> key_1_to_25;
  for (std::uint8_t byte = 0x01; byte <= 0x19; ++byte) {
    key_1_to_25.push_back(byte);
  }
  return {
      {1, repeated(0x0b, 20), bytes_of("Hi There"),
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {2, bytes_of("Jefe"), bytes_of("what do ya want for nothing?"),
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {3, repeated(0xaa, 20), repeated(0xdd, 50),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {4, key_1_to_25, repeated(0xcd, 50),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {5, repeated(0x0c, 20), bytes_of("Test With Truncation"), "a3b6167473100ee06e0c796c2955552b"},
      {6, repeated(0xaa, 131), bytes_of("Test Using Larger Than Block-Size Key - Hash Key First"),
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {7, repeated(0xaa, 131),
       bytes_of("This is a test using a larger than block-size key and a larger than block-size "
                "data. The key needs to be hashed before being used by the HMAC algorithm."),
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
}

// The MAC written as 64 hex digits, decoded at compile time.
constexpr hmac_sha256_mac mac_from_hex(std::string_view hex) {
  const auto nibble = [](char digit) {
    return static_cast<std::uint8_t>(digit <= '9' ? digit - '0' : digit - 'a' + 10);
  };
  hmac_sha256_mac mac{};
  for (std::size_t i = 0; i < mac.size(); ++i) {
    mac[i] = static_cast<std::uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return mac;
}

// HMAC is constexpr like the hasher under it: RFC 4231 test case 1 at compile time.
constexpr std::array<std::uint8_t, 20> case_1_key{0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
                                                  0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
                                                  0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b};
constexpr std::array<std::uint8_t, 8> case_1_data{'H', 'i', ' ', 'T', 'h', 'e', 'r', 'e'};
static_assert(hmac_sha256(case_1_key, case_1_data) ==
              mac_from_hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));

}  // namespace

TEST_CASE("hmac_sha256 matches RFC 4231 test cases 1 to 7", "[hmac]") {
  for (const rfc4231_case& test : rfc4231_cases()) {
    INFO("RFC 4231 test case " << test.number);
    // Case 5 publishes a MAC truncated to 128 bits: compare that many leading bytes.
    const std::size_t compared_bytes = test.hex_mac.size() / 2;
    const hmac_sha256_mac one_shot = hmac_sha256(test.key, test.data);
    CHECK(to_hex(std::span(one_shot).first(compared_bytes)) == test.hex_mac);
    CHECK(mac_byte_by_byte(test.key, test.data) == one_shot);
  }
}

TEST_CASE("hmac_sha256 is right for keys around the block size", "[hmac]") {
  // Reference MACs produced on the development machine with Python 3:
  //   python3 -c 'import hmac, hashlib; n = 64;
  //     key = bytes((i * 7 + 1) & 0xff for i in range(n));
  //     print(hmac.new(key, b"planfence TSIG key boundary", hashlib.sha256).hexdigest())'
  // 64 bytes is used as it is; 65 bytes is longer than a block and is hashed first.
  struct key_case {
    std::size_t key_size;
    std::string_view hex_mac;
  };
  const std::array cases{
      key_case{63, "f51f7eb5f40052ac574a11910771dee06fc7f4f1989b0f83a2d48217945e57be"},
      key_case{64, "fafdccd167528bcbc0eaf1476cf68b87e2ed76b4e972f877a09f51ccb5fd0fd2"},
      key_case{65, "e7479701e79c0f0bcad929c15ffdc33d3027be39fba4a77eb43ce694f913fe1c"},
  };
  const std::vector<std::uint8_t> message = bytes_of("planfence TSIG key boundary");
  for (const key_case& test : cases) {
    INFO("key size " << test.key_size);
    std::vector<std::uint8_t> key;
    for (std::size_t i = 0; i < test.key_size; ++i) {
      key.push_back(static_cast<std::uint8_t>(i * 7 + 1));
    }
    CHECK(to_hex(hmac_sha256(key, message)) == test.hex_mac);
  }
}

TEST_CASE("hmac_sha256 of an empty key and message matches openssl", "[hmac]") {
  // printf '' | openssl dgst -sha256 -hmac ''
  CHECK(to_hex(hmac_sha256({}, {})) ==
        "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST_CASE("hmac_sha256_state accepts text and copies of a keyed state", "[hmac]") {
  // TSIG keys one state per key and copies it per message; both copies must behave like fresh
  // states, and the string_view overload must feed the same bytes as the span one.
  const std::vector<std::uint8_t> key = bytes_of("Jefe");
  const hmac_sha256_state keyed(key);
  hmac_sha256_state first = keyed;
  hmac_sha256_state second = keyed;
  first.update("what do ya want ");
  first.update(bytes_of("for nothing?"));
  second.update("Hi There");
  CHECK(to_hex(first.finish()) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(second.finish() == hmac_sha256(key, bytes_of("Hi There")));
}

TEST_CASE("constant_time_equal answers like == on byte spans", "[hmac]") {
  const hmac_sha256_mac mac = hmac_sha256(bytes_of("key"), bytes_of("message"));
  hmac_sha256_mac copy = mac;
  CHECK(constant_time_equal(mac, copy));

  // A difference in any single bit of any byte, first and last included, is seen.
  for (std::size_t byte = 0; byte < copy.size(); ++byte) {
    for (unsigned bit = 0; bit < 8; ++bit) {
      copy[byte] = static_cast<std::uint8_t>(copy[byte] ^ (1U << bit));
      CHECK_FALSE(constant_time_equal(mac, copy));
      copy[byte] = mac[byte];
    }
  }
  CHECK(constant_time_equal(mac, copy));

  // Different lengths are unequal even when one is a prefix of the other; a truncated MAC is
  // checked by comparing it with the same-length prefix of the full one.
  const std::span<const std::uint8_t> full(mac);
  CHECK_FALSE(constant_time_equal(full, full.first(16)));
  CHECK_FALSE(constant_time_equal(full.first(16), full));
  CHECK(constant_time_equal(full.first(16), std::span<const std::uint8_t>(copy).first(16)));

  // Empty spans are equal to each other and unequal to anything else.
  CHECK(constant_time_equal({}, {}));
  CHECK_FALSE(constant_time_equal({}, full));
}

#if PLANFENCE_TEST_CAN_FORK
TEST_CASE("updating or finishing a finished hmac_sha256_state stops the program", "[hmac]") {
  // Catch2 v2 has no death tests: run the misuse in a forked child and check that the child
  // died of SIGABRT, which is what PLANFENCE_ASSERT does by default.
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
  const std::vector<std::uint8_t> key = bytes_of("key");
  CHECK(dies_of_abort([&key] {
    hmac_sha256_state state(key);
    static_cast<void>(state.finish());
    state.update("late");
  }));
  CHECK(dies_of_abort([&key] {
    hmac_sha256_state state(key);
    static_cast<void>(state.finish());
    static_cast<void>(state.finish());
  }));
}
#endif
