#!/usr/bin/env bash
# tests/run_all.sh: every planfence test, with every compiler and sanitizer we support.
#
# This is the README's second quick-start command and what CI runs (.ci/run). It installs what
# the tests need (Debian/Ubuntu, apt-get), then configures, builds and tests one build directory
# per stage under build/ci-<stage>. Run `tests/run_all.sh --help` for the stages and options.
set -euo pipefail

# Debian packages the tests need. Add to this list when a test needs a new tool or server.
test_packages=(
  cmake ninja-build g++ clang
  libclang-rt-dev   # Clang's sanitizer runtimes (only recommended by clang, so name it)
  catch2 libbenchmark-dev spin pkg-config
  python3  # bench/report_test.py checks bench/report.py (CTest bench.report); planfence-ctl status --json is parsed with its json module
  knot knot-dnsutils  # knotd and kdig: tests/recovery's drill loads an exported zone and queries it
  knot-dnssecutils  # kzonecheck: tests/zonefile checks that exported zones load in a real server
  bind9-utils  # named-checkzone: tests/zonefile checks the zone rules against BIND's loader too
  bind9  # named: tests/rfc2136 runs the store against a real BIND too (examples/support/bind_server.hpp)
  pdns-server pdns-backend-sqlite3 sqlite3  # tests/rfc2136's [pdns] cases run a real PowerDNS
  etcd-server etcd-client  # etcd and etcdctl: tests/etcd starts real members and reads back with etcdctl
  openssl libssl-dev  # tests/etcd_tls: certificates made by openssl; the gcc stage builds the TLS transport
  prometheus  # prometheus and promtool: tests/metrics checks the exposition and rules, and scrapes the example
)

all_stages=(gcc clang tsan asan)
jobs="${PLANFENCE_JOBS:-2}"

usage() {
  cat <<EOF
Usage: tests/run_all.sh [--fresh] [--no-install] [stage...]

Runs the planfence test stages named (default: all, in this order):
  gcc    g++ -O2 (no debug info): everything, benchmarks included (smoke runs), with the
         etcd TLS transport (PLANFENCE_WITH_OPENSSL=ON: tests/etcd_tls)      build/ci-gcc
  clang  clang++ -O0: builds everything; runs all but the Spin models and the
         server suites (knot, etcd, recovery, prometheus), which gcc runs once build/ci-clang
  tsan   clang++ with ThreadSanitizer: the concurrent tests (ctest -L concurrent)
                                                                            build/ci-tsan
  asan   clang++ with AddressSanitizer and UndefinedBehaviorSanitizer: the unit and
         concurrent tests (ctest -L 'unit|concurrent')                      build/ci-asan

Options:
  --fresh       delete the build directories of the chosen stages first
  --no-install  do not install missing packages (same as PLANFENCE_SKIP_INSTALL=1)
  -h, --help    show this help

Environment:
  PLANFENCE_JOBS          parallel build and test jobs (default 2)
  PLANFENCE_SKIP_INSTALL  1 to skip the package check

Before the stages, missing packages are installed with apt-get (through sudo when not root):
  ${test_packages[*]}
Every stage is configured with PLANFENCE_REQUIRE_TEST_DEPS=ON, so a missing dependency is an
error, never a silently skipped test.

Examples:
  tests/run_all.sh              # all stages
  tests/run_all.sh gcc          # the quick one
  tests/run_all.sh tsan asan    # only the sanitizers
EOF
}

fresh=0
install_packages=1
if [[ "${PLANFENCE_SKIP_INSTALL:-0}" == 1 ]]; then
  install_packages=0
fi
stages=()
for argument in "$@"; do
  case "$argument" in
    -h | --help) usage; exit 0 ;;
    --fresh) fresh=1 ;;
    --no-install) install_packages=0 ;;
    all) stages+=("${all_stages[@]}") ;;
    gcc | clang | tsan | asan) stages+=("$argument") ;;
    *) echo "run_all.sh: unknown stage or option '$argument'" >&2; usage >&2; exit 2 ;;
  esac
done
if [[ ${#stages[@]} -eq 0 ]]; then
  stages=("${all_stages[@]}")
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

say() { printf '\n==> %s\n' "$*"; }
# Prints a command, then runs it: the log shows exactly what to re-run by hand.
run() {
  printf '+ %s\n' "$*"
  "$@"
}

# ---------------------------------------------------------------------------------------------
# Summary: which stages ran, how long each took, and which one failed (printed on any exit).

current_stage=""
stage_started=0
summary=()
total_started=$SECONDS
print_summary() {
  local exit_code=$?
  if [[ -n "$current_stage" ]]; then
    summary+=("$(printf '%-8s FAILED after %4ds' "$current_stage" $((SECONDS - stage_started)))")
  fi
  say "Summary"
  local line
  for line in "${summary[@]}"; do
    printf '  %s\n' "$line"
  done
  printf '  total    %4ds\n' $((SECONDS - total_started))
  if [[ $exit_code -eq 0 ]]; then
    printf '  all stages passed\n'
  else
    printf '  FAILED (exit %d)\n' "$exit_code"
  fi
}
trap print_summary EXIT

begin_stage() {
  current_stage="$1"
  stage_started=$SECONDS
  say "Stage $1: $2"
}
end_stage() {
  local elapsed=$((SECONDS - stage_started))
  summary+=("$(printf '%-8s passed in %4ds' "$current_stage" "$elapsed")")
  say "Stage $current_stage passed in ${elapsed}s"
  current_stage=""
}

# ---------------------------------------------------------------------------------------------
# Dependencies.

install_missing_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "Not a Debian system: make sure these are installed: ${test_packages[*]}"
    return 0
  fi
  local missing=() package
  for package in "${test_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$package")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    say "All test packages are installed"
    return 0
  fi
  say "Installing missing packages: ${missing[*]}"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "run_all.sh: not root and no sudo: install these packages, then run again:" >&2
      echo "  apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# Stages.

# configure <build dir> <cmake arguments...>: the settings every stage shares come first.
# A build directory is reused only with the very same arguments: when CMake sees a different
# compiler it deletes its cache and silently drops every other -D (the sanitizer among them), so
# a changed configuration starts from an empty directory instead.
configure() {
  local build_dir="$1"
  shift
  local arguments=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPLANFENCE_REQUIRE_TEST_DEPS=ON "$@")
  local settings_file="$build_dir/run_all-settings.txt"
  local settings="${arguments[*]}"
  if [[ $fresh -eq 1 ]]; then
    run rm -rf "$build_dir"
  elif [[ -d "$build_dir" && "$(cat "$settings_file" 2>/dev/null)" != "$settings" ]]; then
    say "$build_dir was configured differently: starting it afresh"
    run rm -rf "$build_dir"
  fi
  run cmake -S . -B "$build_dir" "${arguments[@]}"
  printf '%s\n' "$settings" > "$settings_file"
}

stage_gcc() {
  begin_stage gcc "g++, everything including benchmark smoke runs and etcd over TLS"
  # PLANFENCE_WITH_OPENSSL: planfence-ctl and tests/etcd_tls link OpenSSL (the one opt-in
  # dependency); the other stages keep the default, and their linkage test checks that it links
  # no TLS library.
  # Optimized (GCC's flow-based warnings need the optimizer, the servers' suites and benchmark
  # smoke runs want the speed) but without debug information, which costs a fifth of the compile
  # time here; Catch2 names the file and line of a failed check without it.
  configure build/ci-gcc -DCMAKE_CXX_COMPILER=g++ -DPLANFENCE_BUILD_BENCHMARKS=ON -DPLANFENCE_WITH_OPENSSL=ON \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG"
  run cmake --build build/ci-gcc -j "$jobs"
  run ctest --test-dir build/ci-gcc --output-on-failure -j "$jobs"
  end_stage
}

stage_clang() {
  begin_stage clang "clang++, builds everything, runs what does not need a server (benchmarks smoke-run too)"
  # The benchmarks are built by default wherever Google Benchmark is installed, so they must
  # build with Clang as well (a sized operator delete once broke that unseen).
  # Unoptimized: Clang's warnings come from its front end and do not depend on the optimizer, the
  # optimized build is the gcc stage's, and -O0 compiles these tests about 2.8 times faster than
  # -O2 -g (the stage used to take 15 minutes, most of it compiling).
  configure build/ci-clang -DCMAKE_CXX_COMPILER=clang++ -DPLANFENCE_BUILD_BENCHMARKS=ON \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -DNDEBUG"
  run cmake --build build/ci-clang -j "$jobs"
  # The Spin models do not depend on the C++ compiler and take minutes, and the suites that run
  # real servers (knotd, PowerDNS, etcd, Prometheus, and the recovery drill and crash test) check
  # the servers' behaviour more than the compiler's: the gcc stage runs them all, once. Everything
  # here is still built with Clang, warnings as errors.
  run ctest --test-dir build/ci-clang --output-on-failure -j "$jobs" -LE '^(model|knot|etcd|recovery|prometheus)$'
  end_stage
}

stage_tsan() {
  begin_stage tsan "clang++ -fsanitize=thread, concurrent tests"
  configure build/ci-tsan -DCMAKE_CXX_COMPILER=clang++ -DPLANFENCE_SANITIZE=thread \
    -DPLANFENCE_BUILD_BENCHMARKS=OFF -DPLANFENCE_BUILD_EXAMPLES=OFF
  # Only what `ctest -L concurrent` runs (the target always exists, possibly empty).
  run cmake --build build/ci-tsan -j "$jobs" --target planfence_concurrent
  run env TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
    ctest --test-dir build/ci-tsan --output-on-failure -j "$jobs" -L concurrent
  end_stage
}

stage_asan() {
  begin_stage asan "clang++ -fsanitize=address,undefined, unit and concurrent tests"
  # clang++, not g++: GCC 12 compiles these tests about four times slower with ASan+UBSan, which
  # alone would take most of the time budget; g++ is covered by the gcc stage.
  configure build/ci-asan -DCMAKE_CXX_COMPILER=clang++ -DPLANFENCE_SANITIZE=address,undefined \
    -DPLANFENCE_BUILD_BENCHMARKS=OFF -DPLANFENCE_BUILD_EXAMPLES=OFF
  run cmake --build build/ci-asan -j "$jobs" --target planfence_unit planfence_concurrent
  run env ASAN_OPTIONS="detect_leaks=1:strict_init_order=1" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    ctest --test-dir build/ci-asan --output-on-failure -j "$jobs" -L 'unit|concurrent'
  end_stage
}

say "planfence tests in $repo_root: stages ${stages[*]}, $jobs jobs"
if [[ $install_packages -eq 1 ]]; then
  install_missing_packages
fi
for stage in "${stages[@]}"; do
  "stage_$stage"
done
