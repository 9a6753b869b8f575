// A libFuzzer target for the zone-file parser and writer (zonefile/syntax.hpp) and the decoder
// (zonefile/zone.hpp). It proves, for every input the fuzzer finds, what tests/zonefile/parser_test.cpp proves for chosen ones:
//  - parse_zone never crashes, asserts, hangs or reads out of bounds, whatever the bytes;
//  - every error is errc::parse_error with a line >= 1 and a column >= 1 inside the input (or
//    one past the end of a line, or on the line just past the last one);
//  - whatever parses round-trips: format_records(records) parses to the same records, and
//    formatting those again gives the same text (a fixed point);
//  - decode_zone on parsed records either succeeds or names a line of the input, never asserts.
// A violated property calls abort(), which the fuzzer reports with the input that caused it.
//
// Built by tests/fuzz/CMakeLists.txt when the compiler is Clang, run by `ctest -L fuzz` for
// PLANFENCE_FUZZ_SECONDS from the seeds in tests/fuzz/corpus/zone_parser/ (realistic zone
// files). By hand, from a Clang build directory:
//
//   tests/fuzz/zone_parser_fuzz -max_total_time=300 -max_len=4096 /tmp/corpus ../tests/fuzz/corpus/zone_parser
//
// To replay inputs without libFuzzer (any compiler), define PLANFENCE_FUZZ_MAIN:
//
//   g++ -std=c++20 -g -fsanitize=address,undefined -DPLANFENCE_FUZZ_MAIN -I include
//       tests/fuzz/zone_parser_fuzz.cpp -o /tmp/zone_parser_replay            (one line)
//   /tmp/zone_parser_replay crash-<hash> ...     # each argument is a file
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include <planfence/zonefile/syntax.hpp>
#include <planfence/zonefile/zone.hpp>

namespace {

[[noreturn]] void violated(const char* what, std::string_view input) {
  planfence_fuzz::fuzz_violated("zone_parser_fuzz", what, input);
}
void check_position(const planfence::error& e, std::string_view text) {
  planfence_fuzz::fuzz_check_position("zone_parser_fuzz", e, text);
}

void check_zone_text(std::string_view text, const planfence::zone_parse_options& options) {
  auto parsed = planfence::parse_zone(text, options);
  if (!parsed) {
    if (parsed.error().code != planfence::errc::parse_error) violated("an error that is not parse_error", text);
    check_position(parsed.error(), text);
    return;
  }
  const std::string written = planfence::format_records(*parsed);
  auto again = planfence::parse_zone(written);
  if (!again) {
    std::fprintf(stderr, "%s\n%s\n", again.error().message().c_str(), written.c_str());
    violated("format_records output does not parse", text);
  }
  if (*again != *parsed) violated("the records changed through format and parse", text);
  if (planfence::format_records(*again) != written) violated("format_records is not a fixed point", text);
  if (!parsed->empty()) {
    auto decoded = planfence::decode_zone(*parsed, parsed->front().owner);
    if (!decoded && decoded.error().line == 0) violated("a decode error without a line", text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  check_zone_text(input, planfence::zone_parse_options{});
  check_zone_text(input, planfence::zone_parse_options{"example.test.", 200, 64});
  return 0;
}

PLANFENCE_FUZZ_REPLAY_MAIN("zone_parser_fuzz")
