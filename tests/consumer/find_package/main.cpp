// Proves that an installed planfence is usable: the umbrella header compiles with only the flags
// the package gives, and a strong id carries its value. Exit code 0 means it all worked.
#include <planfence/planfence.hpp>

int main() {
  const planfence::generation generation{3};
  return generation.value() == 3 ? 0 : 1;
}
