# planfence_helpers.cmake: the compile options every planfence-owned target shares.
#
# The library target itself is INTERFACE and carries none of these: they are for our tests,
# examples and benchmarks, never pushed onto a consumer.
include_guard(GLOBAL)
include(CheckCXXSourceCompiles)

# The warning set, the same for GCC and Clang. Also used verbatim by the compile-fail and
# umbrella-header tests, which call the compiler directly.
set(PLANFENCE_WARNING_FLAGS
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Werror)

# Makes every warning in `target`'s own sources an error. Third-party headers (Catch2, Google
# Benchmark) come from system include directories, so their warnings stay out of it.
function(planfence_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE ${PLANFENCE_WARNING_FLAGS})
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /WX /permissive-)
  endif()
endfunction()

# Checks once, at configure time, that the compiler and its runtime accept
# -fsanitize=${PLANFENCE_SANITIZE}: a missing runtime (e.g. libclang-rt-dev for Clang's tsan)
# should be a clear configure error, not a link error in the middle of the build.
if(PLANFENCE_SANITIZE)
  string(MAKE_C_IDENTIFIER "${PLANFENCE_SANITIZE}" planfence_sanitize_id)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=${PLANFENCE_SANITIZE}")
  set(CMAKE_REQUIRED_LINK_OPTIONS "-fsanitize=${PLANFENCE_SANITIZE}")
  # The result is cached per sanitizer set, so this runs once per build directory.
  check_cxx_source_compiles("int main() { return 0; }"
    PLANFENCE_SANITIZE_WORKS_${planfence_sanitize_id})
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_LINK_OPTIONS)
  if(NOT PLANFENCE_SANITIZE_WORKS_${planfence_sanitize_id})
    message(FATAL_ERROR
      "planfence: ${CMAKE_CXX_COMPILER} cannot build with -fsanitize=${PLANFENCE_SANITIZE}. "
      "Is the sanitizer runtime installed (Debian: libclang-rt-dev for Clang, libasan/libtsan/"
      "libubsan come with GCC)? See CMakeFiles/CMakeError.log.")
  endif()
endif()

# Builds `target` with the sanitizers named in PLANFENCE_SANITIZE (nothing when empty). Frame
# pointers make the reports' stacks complete; undefined behaviour stops the program instead of
# printing and going on, so a test cannot pass over it.
function(planfence_set_sanitizers target)
  if(NOT PLANFENCE_SANITIZE)
    return()
  endif()
  set(flags "-fsanitize=${PLANFENCE_SANITIZE}" -fno-omit-frame-pointer)
  if(PLANFENCE_SANITIZE MATCHES "undefined")
    list(APPEND flags -fno-sanitize-recover=undefined)
  endif()
  target_compile_options(${target} PRIVATE ${flags})
  # GCC's manual warns that sanitizers raise false -Wmaybe-uninitialized reports; with GCC 12
  # and -Werror they break on libstdc++'s own <regex> (inlined into Catch2's main). The plain
  # GCC build still has the warning on, so nothing goes unchecked.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
  target_link_options(${target} PRIVATE ${flags})
endfunction()

# Both of the above: what a new test, example or benchmark target should call.
function(planfence_set_project_options target)
  planfence_set_warnings(${target})
  planfence_set_sanitizers(${target})
endfunction()
