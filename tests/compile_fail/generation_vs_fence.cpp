// expect: no match for .operator==|invalid operands to binary expression
//
// Proves that a generation and a fence token cannot be compared. Both are 64-bit numbers, and
// checking one where the other was meant is the slip that turns a fence check (S2) into a
// generation check (S1) without anyone noticing; ids.hpp makes them distinct types so that the
// slip is a compile error. The control variant compares two generations, which must compile, so
// the failure can only come from mixing the two types.
#include <planfence/ids.hpp>

int main() {
  constexpr planfence::generation applied{3};
  constexpr planfence::fence_token token{3};
#ifdef PLANFENCE_COMPILE_FAIL_CONTROL
  return applied == planfence::generation{token.value()} ? 0 : 1;
#else
  return applied == token ? 0 : 1;
#endif
}
