// tests/fuzz/fuzz_support.hpp: what every planfence fuzz target shares.
//
//   fuzz_violated(target, what, input)   report a violated property with the input, then abort()
//                                        (libFuzzer saves the input as crash-<hash>)
//   fuzz_check_position(target, e, text) a parse error's line and column lie inside `text` (or
//                                        one past the end of a line, or just past the last line)
//   PLANFENCE_FUZZ_REPLAY_MAIN(target)   with -DPLANFENCE_FUZZ_MAIN, a main() that replays files
//                                        through LLVMFuzzerTestOneInput without libFuzzer (any
//                                        compiler), e.g. to debug a crash under gdb
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <planfence/result.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size);

namespace planfence_fuzz {

[[noreturn]] inline void fuzz_violated(const char* target, const char* what, std::string_view input) {
  std::fprintf(stderr, "%s: property violated: %s\ninput (%zu bytes):\n%.*s\n", target, what, input.size(),
               static_cast<int>(input.size()), input.data());
  std::abort();
}

inline void fuzz_check_position(const char* target, const planfence::error& e, std::string_view text) {
  if (e.line == 0 || e.column == 0) fuzz_violated(target, "an error without a position", text);
  // Find the start of line e.line (1-based).
  std::size_t start = 0;
  std::uint32_t line = 1;
  while (line < e.line) {
    const std::size_t newline = text.find('\n', start);
    if (newline == std::string_view::npos) {
      // Only "just past the last line" is allowed beyond the text.
      if (line + 1 == e.line && e.column == 1) return;
      fuzz_violated(target, "an error line beyond the input", text);
    }
    start = newline + 1;
    ++line;
  }
  if (start == text.size()) {
    if (e.column != 1) fuzz_violated(target, "a column on the line past the end", text);
    return;
  }
  const std::size_t end = text.find('\n', start);
  const std::size_t length = (end == std::string_view::npos ? text.size() : end) - start;
  if (e.column > length + 1) fuzz_violated(target, "an error column beyond the end of its line", text);
}

}  // namespace planfence_fuzz

#if defined(PLANFENCE_FUZZ_MAIN)
#include <fstream>
#include <iterator>
#include <string>

namespace planfence_fuzz {
/// Feeds every file named on the command line to LLVMFuzzerTestOneInput.
inline int fuzz_replay_files(const char* target, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  }
  std::printf("%s: %d inputs passed\n", target, argc - 1);
  return 0;
}
}  // namespace planfence_fuzz
#define PLANFENCE_FUZZ_REPLAY_MAIN(target) \
  int main(int argc, char** argv) { return planfence_fuzz::fuzz_replay_files(target, argc, argv); }
#else
#define PLANFENCE_FUZZ_REPLAY_MAIN(target)
#endif
