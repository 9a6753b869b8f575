// A libFuzzer target for the zone-file parser and writer (zonefile.hpp). It proves, for every
// input the fuzzer finds, what tests/zonefile/parser_test.cpp proves for chosen ones:
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

#include <planfence/zonefile.hpp>

namespace {

[[noreturn]] void violated(const char* what, std::string_view input) {
  std::fprintf(stderr, "zone_parser_fuzz: property violated: %s\ninput (%zu bytes):\n%.*s\n", what, input.size(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}

void check_position(const planfence::error& e, std::string_view text) {
  if (e.line == 0 || e.column == 0) violated("an error without a position", text);
  std::size_t start = 0;
  std::uint32_t line = 1;
  while (line < e.line) {
    const std::size_t newline = text.find('\n', start);
    if (newline == std::string_view::npos) {
      if (line + 1 == e.line && e.column == 1) return;
      violated("an error line beyond the input", text);
    }
    start = newline + 1;
    ++line;
  }
  if (start == text.size()) {
    if (e.column != 1) violated("a column on the line past the end", text);
    return;
  }
  const std::size_t end = text.find('\n', start);
  const std::size_t length = (end == std::string_view::npos ? text.size() : end) - start;
  if (e.column > length + 1) violated("an error column beyond the end of its line", text);
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

#if defined(PLANFENCE_FUZZ_MAIN)
#include <fstream>
#include <iterator>

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  }
  std::printf("zone_parser_fuzz: %d inputs passed\n", argc - 1);
  return 0;
}
#endif
