#!/usr/bin/env bash
# tests/spin/run_spin.sh: check one Promela model of planfence's commit and collection protocol
# with Spin, exhaustively, and say whether the outcome is the expected one.
#
# Usage: run_spin.sh MODEL EXPECT [-DNAME[=VALUE] ...] [--property S1|S2|S3|I]
#   MODEL     naive | fixed | change | a path to a .pml file
#   EXPECT    verified        exit 0 only if pan reports "errors: 0" AND the search was complete
#                             (full state space, no bitstate hashing, no depth truncation, no
#                             memory exhaustion)
#             counterexample  exit 0 only if pan finds an error and the violated assertion names
#                             the guarantee: S1 or S3 by default, or the one given by --property
#                             (I: change.pml's records invariant, I_records_match_eff)
#   -D...     model parameters and variants, passed to spin (see the model's header comment),
#             e.g. -DE=4 -DG=6, -DBROKEN_COLLECT
#
# Environment: SPIN (default spin), SPIN_CC (default $CC, else cc), SPIN_OPT (optimisation for
# pan.c, default -O2 for verified and -O0 for counterexample), SPIN_HASH (pan -w, default 24),
# SPIN_DEPTH (pan -m, default 200000), SPIN_MEMLIM (MB, default 4096).
#
# Prints the commands, the state count, transitions, memory and time, and the outcome; for a
# counterexample also the violated guarantee and a short trail (`spin -t -p`, trimmed to the
# model's own step narrative and the last steps before the failure). Works from any directory;
# pan's files go to a temporary directory that is removed on exit.
set -euo pipefail

usage() {
  sed -n '4,18p' "$0" >&2
  exit 2
}

[[ $# -ge 2 ]] || usage
model_arg=$1
expect=$2
shift 2
case "$expect" in
  verified|counterexample) ;;
  *) echo "run_spin.sh: EXPECT must be 'verified' or 'counterexample', not '$expect'" >&2; usage ;;
esac

defines=()
property=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -D*) defines+=("$1") ;;
    --property) [[ $# -ge 2 ]] || usage; property=$2; shift ;;
    --property=*) property=${1#--property=} ;;
    *) echo "run_spin.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
if [[ -n $property && ! $property =~ ^(S[1-7]|I)$ ]]; then
  echo "run_spin.sh: --property takes a guarantee id such as S1 (or I), not '$property'" >&2
  exit 2
fi

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "$model_arg" in
  naive|fixed|change) model_path="$script_dir/$model_arg.pml" ;;
  *) model_path=$model_arg ;;
esac
if [[ ! -f $model_path ]]; then
  echo "run_spin.sh: no model file '$model_path'" >&2
  exit 2
fi
model_path=$(cd "$(dirname "$model_path")" && pwd)/$(basename "$model_path")
model_file=$(basename "$model_path")

spin_bin=${SPIN:-spin}
cc_bin=${SPIN_CC:-${CC:-cc}}
hash_bits=${SPIN_HASH:-24}
depth=${SPIN_DEPTH:-200000}
memlim=${SPIN_MEMLIM:-4096}
command -v "$spin_bin" >/dev/null || { echo "run_spin.sh: spin not found ('$spin_bin')" >&2; exit 2; }
command -v "$cc_bin" >/dev/null || { echo "run_spin.sh: C compiler not found ('$cc_bin')" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/planfence-spin.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$model_path" "$work/$model_file"
cd "$work"

# Exhaustive search only: no -DBITSTATE, no -DMA, no hash-compact. -DSAFETY: every property is
# a safety property (assertions, and LTL [] invariants, which Spin turns into an assertion in
# the never claim), so no cycle detection is needed. -DCOLLAPSE: lossless state compression.
# -O2 pays for itself on a full search; a counterexample search is short, so there the
# compile time dominates and -O0 is quicker overall.
if [[ $expect == verified ]]; then opt=${SPIN_OPT:--O2}; else opt=${SPIN_OPT:--O0}; fi
cflags=("$opt" -w -DSAFETY -DCOLLAPSE "-DMEMLIM=$memlim")
pan_args=("-m$depth" "-w$hash_bits")

echo "== model:  $model_path ${defines[*]:-}"
echo "== expect: $expect${property:+ ($property)}"
echo "\$ $spin_bin ${defines[*]:-} -a $model_file"
if ! "$spin_bin" "${defines[@]}" -a "$model_file" >spin.out 2>&1; then
  cat spin.out
  echo "run_spin.sh: spin -a failed" >&2
  exit 1
fi
echo "\$ $cc_bin ${cflags[*]} -o pan pan.c"
if ! "$cc_bin" "${cflags[@]}" -o pan pan.c >cc.out 2>&1; then
  cat cc.out
  echo "run_spin.sh: compiling pan.c failed" >&2
  exit 1
fi
echo "\$ ./pan ${pan_args[*]}"
start_ns=$(date +%s%N)
set +e
./pan "${pan_args[@]}" >pan.out 2>&1
pan_rc=$?
set -e
end_ns=$(date +%s%N)
wall=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')

field() { sed -n "$1" pan.out | head -n 1; }
errors=$(field 's/.*errors: \([0-9][0-9]*\).*/\1/p')
stored=$(field 's/^ *\([0-9.e+]*\) states, stored.*/\1/p')
transitions=$(field 's/^ *\([0-9.e+]*\) transitions (= stored+matched).*/\1/p')
depth_reached=$(field 's/.*depth reached \([0-9][0-9]*\).*/\1/p')
vector=$(field 's/^State-vector \([0-9]*\) byte.*/\1/p')
memory=$(field 's/^ *\([0-9.]*\)[[:space:]]*total actual memory usage.*/\1/p')
elapsed=$(field 's/^pan: elapsed time \([0-9.e+]*\) seconds.*/\1/p')

echo "== pan: states stored ${stored:-?}, transitions ${transitions:-?}, state vector ${vector:-?} bytes," \
     "depth reached ${depth_reached:-?}, memory ${memory:-?} MB, pan time ${elapsed:-?} s (wall ${wall} s)"

incomplete=()
grep -q 'max search depth too small' pan.out && incomplete+=("max search depth too small (raise SPIN_DEPTH)")
grep -qiE 'out of memory|reached -DMEMLIM bound' pan.out && incomplete+=("out of memory (raise SPIN_MEMLIM)")
grep -q '^Full statespace search' pan.out || incomplete+=("not a full state-space search")
# (pan's out-of-memory hints mention -DBITSTATE and -DHC: look at the search header only)
grep -qE '^Bit statespace search|^[[:space:]]+\+ .*[Hh]ash.?[Cc]ompact' pan.out && incomplete+=("bitstate or hash-compact search")
[[ -n $errors ]] || incomplete+=("no 'errors:' line in pan's report (pan exit status $pan_rc)")

if [[ $expect == verified ]]; then
  if [[ -n $errors && $errors != 0 ]]; then
    grep -E '^pan:[0-9]+: ' pan.out || true
    echo "== outcome: COUNTEREXAMPLE (errors: $errors), expected verified"
    echo "   replay: cd to a copy of the model, run the commands above, then $spin_bin ${defines[*]:-} -t -p $model_file"
    exit 1
  fi
  if [[ ${#incomplete[@]} -eq 0 ]] && grep -q 'Warning: Search not completed' pan.out; then
    incomplete+=("pan says the search was not completed")
  fi
  if [[ ${#incomplete[@]} -ne 0 ]]; then
    cat pan.out
    printf 'run_spin.sh: search incomplete: %s\n' "${incomplete[@]}" >&2
    echo "== outcome: INCOMPLETE (expected verified)"
    exit 1
  fi
  echo "== outcome: VERIFIED: errors: 0, complete search, ${stored} states stored"
  exit 0
fi

# EXPECT = counterexample
if [[ -z $errors || $errors == 0 ]]; then
  cat pan.out
  echo "== outcome: NO COUNTEREXAMPLE (errors: ${errors:-?}), expected one"
  exit 1
fi
violation=$(grep -m1 -E '^pan:[0-9]+: ' pan.out || true)
# The assertion texts carry the guarantee id (S1_no_regression, S3_not_served_at_unlink, ...,
# or I_records_match_eff), right after an opening parenthesis.
violated=$(printf '%s\n' "$violation" | grep -oE '[(](S[1-7]|I)_[A-Za-z_]*' | head -n 1 | sed 's/^(//' || true)
violated_id=${violated%%_*}
echo "== violation: ${violation#pan:*: }"
echo "== guarantee violated: ${violated:-none named} (${violated_id:-?})"

if [[ -f $model_file.trail ]]; then
  "$spin_bin" "${defines[@]}" -t -p "$model_file" >trail.out 2>&1 || true
  steps=$(sed -n 's/^spin: trail ends after \([0-9]*\) steps.*/\1/p' trail.out | head -n 1)
  # Everything up to the failure: the model's printf narrative, and the step lines.
  sed -n '/^spin: [^ ]*:[0-9]*, Error/q;p' trail.out >before.out
  echo "== trail: ${steps:-?} steps (spin ${defines[*]:-} -t -p $model_file), the model's narrative:"
  grep -vE '^ *[0-9]+:[[:space:]]+proc|^ltl |^starting claim|^Never claim|^[[:space:]]*$' before.out \
    | sed 's/^ */    /' | tail -n 60
  echo "   last steps before the failure:"
  grep -E '^ *[0-9]+:[[:space:]]+proc +[0-9]+ .*\[' before.out | grep -v 'printf(' | tail -n 4 \
    | sed 's/^ */    /'
  grep -E '^spin: [^ ]+:[0-9]+, Error|^spin: text of failed assertion' trail.out | sed 's/^/    /'
else
  echo "== (no trail file written)"
fi

if [[ -n $property ]]; then
  if [[ $violated_id != "$property" ]]; then
    echo "== outcome: COUNTEREXAMPLE for ${violated_id:-an unnamed property}, expected one for $property"
    exit 1
  fi
elif [[ $violated_id != S1 && $violated_id != S3 ]]; then
  echo "== outcome: COUNTEREXAMPLE for ${violated_id:-an unnamed property}, expected one for S1 or S3"
  exit 1
fi
echo "== outcome: COUNTEREXAMPLE as expected: $violated_id violated (${stored} states stored)"
exit 0
