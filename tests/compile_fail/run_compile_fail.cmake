# Runs one compile-fail check (see tests/compile_fail/CMakeLists.txt for the convention).
#   cmake -DCOMPILER=<c++> -DFLAGS="<flags>" -DINCLUDE_DIR=<dir> -DSOURCE=<file.cpp>
#         -DMODE=fail|control -P run_compile_fail.cmake
# Exits non-zero (FATAL_ERROR) when the expectation does not hold, printing the compiler output.
cmake_minimum_required(VERSION 3.21)

foreach(variable IN ITEMS COMPILER INCLUDE_DIR SOURCE MODE)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "run_compile_fail.cmake: -D${variable}=... is required")
  endif()
endforeach()

# The expectation is read when the test runs, so editing it needs no re-configure.
file(STRINGS "${SOURCE}" first_line LIMIT_COUNT 1)
if(NOT first_line MATCHES "^// expect: (.+)$")
  message(FATAL_ERROR
    "${SOURCE}: the first line must be `// expect: <regex>` (got `${first_line}`)")
endif()
set(expected "${CMAKE_MATCH_1}")
string(STRIP "${expected}" expected)

file(READ "${SOURCE}" content)
if(NOT content MATCHES "#ifdef PLANFENCE_COMPILE_FAIL_CONTROL")
  message(FATAL_ERROR
    "${SOURCE}: no `#ifdef PLANFENCE_COMPILE_FAIL_CONTROL` block: without a control variant "
    "the test cannot show that it fails for the stated reason")
endif()

separate_arguments(flags UNIX_COMMAND "${FLAGS}")
set(command "${COMPILER}" -std=c++20 -fsyntax-only -fdiagnostics-color=never ${flags}
            -I "${INCLUDE_DIR}")
if(MODE STREQUAL "control")
  list(APPEND command -DPLANFENCE_COMPILE_FAIL_CONTROL)
elseif(NOT MODE STREQUAL "fail")
  message(FATAL_ERROR "run_compile_fail.cmake: MODE must be fail or control, not ${MODE}")
endif()
list(APPEND command "${SOURCE}")

# Plain ASCII quotes and English messages, whatever the caller's locale.
set(ENV{LC_ALL} C)
set(ENV{LANG} C)
execute_process(COMMAND ${command}
  RESULT_VARIABLE exit_code
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
list(JOIN command " " command_text)

if(MODE STREQUAL "control")
  if(NOT exit_code EQUAL 0)
    message(FATAL_ERROR
      "The control variant of ${SOURCE} must compile, and it does not: the file is broken, so "
      "its failure proves nothing.\n$ ${command_text}\n${output}")
  endif()
  message(STATUS "control variant compiles, as it must")
  return()
endif()

if(exit_code EQUAL 0)
  message(FATAL_ERROR
    "${SOURCE} compiled, but it must be rejected.\n$ ${command_text}\n${output}")
endif()
if(NOT output MATCHES "${expected}")
  message(FATAL_ERROR
    "${SOURCE} failed to compile, but not for the expected reason: the output does not match "
    "`${expected}`.\n$ ${command_text}\n${output}")
endif()
message(STATUS "rejected, as it must be, with output matching `${expected}`")
