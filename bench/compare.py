#!/usr/bin/env python3
"""bench/compare.py: A/B two or more builds of a benchmark binary on a noisy machine.

On a shared host the same binary measures differently from one process to the next (the host's
other guests come and go), so two builds run one after the other compare the host's moods, not
the code. This runs the binaries in turn, round after round, each round a short run of the
selected benchmarks, and prints per benchmark and binary the minimum, first quartile and median
of real time per iteration over the rounds: slow phases of the host then hit every binary alike.

Usage:
  python3 bench/compare.py --filter 'BM_SnapshotRead/real_time/threads:1$|BM_Baseline_Cas64' \\
      --rounds 30 old/apply_bench new/apply_bench

Keep a copy of the old binary before rebuilding (cp build/bench-release/bench/apply_bench /tmp/old).
Numbers quoted in docs/benchmarks.md as "alternations" come from this script. It times nothing
itself: every figure is Google Benchmark's real_time from its JSON.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def one_run(binary: str, pattern: str, min_time: float) -> dict[str, float]:
    done = subprocess.run([binary, f"--benchmark_filter={pattern}", f"--benchmark_min_time={min_time}",
                           "--benchmark_format=json"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"compare.py: {binary} failed (exit {done.returncode}):\n{done.stderr}")
    if not done.stdout.strip():
        return {}  # Google Benchmark prints nothing when the filter matches no benchmark
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError as e:
        sys.exit(f"compare.py: {binary} did not print Google Benchmark JSON ({e})")
    out = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") == "iteration" and not b.get("error_occurred"):
            out[b["name"]] = float(b["real_time"])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+", help="benchmark binaries to compare (two or more)")
    parser.add_argument("--filter", required=True, help="--benchmark_filter for every run")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--min-time", type=float, default=0.05, help="--benchmark_min_time of each run")
    args = parser.parse_args()
    if len(args.binaries) < 2:
        parser.error("give at least two binaries")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    for binary in args.binaries:
        if not Path(binary).is_file():
            parser.error(f"no such binary: {binary}")
    # Two binaries of the same name (old/apply_bench, new/apply_bench) are told apart by path.
    labels = [str(Path(b)) for b in args.binaries]
    times: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for label, binary in zip(labels, args.binaries):
            for name, t in one_run(binary, args.filter, args.min_time).items():
                times.setdefault((name, label), []).append(t)
        print(f"round {r + 1} of {args.rounds}", file=sys.stderr, flush=True)
    if not times:
        sys.exit(f"compare.py: no benchmark matched --filter={args.filter}")
    width = max(len(n) for n, _ in times)
    lwidth = max(len(label) for label in labels)
    print(f"{'benchmark':<{width}}  {'binary':<{lwidth}}  {'min':>9}  {'p25':>9}  {'median':>9}  (ns, {args.rounds} rounds)")
    for name in dict.fromkeys(n for n, _ in times):
        for label in labels:
            v = sorted(times.get((name, label), []))
            if not v:
                print(f"{name:<{width}}  {label:<{lwidth}}  {'-':>9}")
                continue
            p25 = v[len(v) // 4]
            print(f"{name:<{width}}  {label:<{lwidth}}  {v[0]:>9.3f}  {p25:>9.3f}  {statistics.median(v):>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
