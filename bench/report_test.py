#!/usr/bin/env python3
"""bench/report_test.py: checks that bench/report.py computes what it claims from Google Benchmark's
JSON, on synthetic runs whose every ratio is known in advance (CTest: bench.report, label
bench-smoke). It does not run any benchmark.

What it proves, each case failing if the script breaks it:
  - a target's value is the ratio of the two benchmarks' medians over their repetitions (not the
    mean, not the first run), in time per item for "at most Nx" targets and items/s otherwise;
  - the verdict follows the bound on both sides of the limit;
  - a repetition that reported an error is left out, and a target whose benchmark is missing or
    only failed is "not measured", never held;
  - counter targets read the counter's median;
  - the report rewrites only what lies between its markers in docs/benchmarks.md (the prose
    around them is kept), names every benchmark in its table, and writes an SVG that parses;
  - thread counts beyond 2 (a machine with more CPUs) are reported beside the 1- and 2-thread
    runs without disturbing the targets;
  - the plan diff is reported as a ratio to iterating the plan, per size, without a target;
  - the machine named is the one recorded with the run (benchmarks-run.json), or what the JSON's
    own context says, never the machine that derives the report.

Run by hand: python3 bench/report_test.py -v
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ElementTree
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = importlib.util.spec_from_file_location("planfence_report", HERE / "report.py")
report = importlib.util.module_from_spec(SPEC)
sys.modules["planfence_report"] = report  # dataclasses look their module up by name
SPEC.loader.exec_module(report)


def iteration(run_name: str, rate: float, repetition: int, error: bool = False, **counters) -> dict:
    """One repetition of one benchmark, shaped as Google Benchmark 1.7.1 writes it."""
    entry = {
        "name": run_name, "run_name": run_name, "run_type": "iteration", "repetitions": 3,
        "repetition_index": repetition, "threads": 1, "iterations": 1000,
        "real_time": 1e9 / rate, "cpu_time": 1e9 / rate, "time_unit": "ns",
        "items_per_second": rate,
    }
    if error:
        entry["error_occurred"] = True
        entry["error_message"] = "synthetic failure"
    entry.update(counters)
    return entry


def aggregate(run_name: str, rate: float) -> dict:
    """A mean aggregate with a misleading value: the script must recompute from the iterations."""
    return {"name": run_name + "_mean", "run_name": run_name, "run_type": "aggregate",
            "aggregate_name": "mean", "items_per_second": rate * 1000}


# Every benchmark the targets name, with three repetitions of items/s; the median is the middle
# value, chosen so that each ratio is round. (Time per item is 1e9 / items_per_second.)
RATES = {
    "BM_Baseline_AtomicLoadAcquire/real_time/threads:1": [2.0e9, 2.0e9, 9.0e9],  # median 2e9: 0.5 ns
    "BM_RejectStale/real_time/threads:1": [1.25e9, 0.1e9, 1.25e9],               # 0.8 ns: 1.6x, held
    "BM_RejectStale/real_time/threads:2": [1.5e9, 1.5e9, 1.5e9],                 # 1.2x of 1 thread: missed
    "BM_Baseline_Cas64": [4.0e8, 4.0e8, 4.0e8],                                  # 2.5 ns
    "BM_ApplyCommit": [2.0e8, 2.0e8, 2.0e8],                                     # 5 ns: 2x Cas64, missed
    "BM_Baseline_MutexLockUnlock": [1.0e8, 1.0e8, 1.0e8],                        # 10 ns: 0.5x, held
    "BM_ApplyByName/real_time/threads:1": [30e6, 30e6, 30e6],
    "BM_Baseline_MutexMapApply/real_time/threads:1": [20e6, 20e6, 20e6],         # 1.5x, held
    "BM_ApplyByName/real_time/threads:2": [60e6, 60e6, 60e6],
    "BM_Baseline_MutexMapApply/real_time/threads:2": [20e6, 20e6, 20e6],         # 3x: missed (>= 4)
    "BM_ApplyHotEndpoint/real_time/threads:2": [45e6, 45e6, 45e6],
    "BM_Baseline_MutexMapApplyHot/real_time/threads:2": [30e6, 30e6, 30e6],      # 1.5x: held at the limit
    "BM_SnapshotRead/real_time/threads:2": [400e6, 400e6, 400e6],
    "BM_Baseline_AtomicSharedPtrRead/real_time/threads:2": [10e6, 10e6, 10e6],   # 40x, held
    "BM_SnapshotRead/real_time/threads:1": [0.25e9, 0.25e9, 0.25e9],            # 4 ns: 1.6x Cas64, missed
    "BM_RetireReclaim": [25e6, 25e6, 25e6],                                      # 40 ns
    "BM_Baseline_NewDelete": [100e6, 100e6, 100e6],                              # 10 ns: 4x, missed
}
COUNTERS = {
    "BM_RetireReclaim": [{"backlog_max_observed": 63}, {"backlog_max_observed": 5000},
                         {"backlog_max_observed": 70}],                          # median 70: held
    "BM_Scale_StoreBytesPerEndpoint/1000000/iterations:1/manual_time": [{"stamp_bytes_per_endpoint": 8}] * 3,
    "BM_Scale_RetainedGenerations/100000/iterations:1/manual_time": [{"memory_ratio_100_over_1": 3.5}] * 3,
}
# BM_RetireReclaimWithReader is absent on purpose: its target must read "not measured".
EXPECTED = {  # target text prefix -> (value, holds)
    "BM_RejectStale at most 2x": (1.6, True),
    "BM_RejectStale: 2 threads": (1.2, False),
    "BM_ApplyCommit at most 1.5x": (2.0, False),
    "BM_ApplyCommit at most 0.6x": (0.5, True),
    "BM_ApplyByName at least 1.2x": (1.5, True),
    "BM_ApplyByName at least 4x": (3.0, False),
    "BM_ApplyHotEndpoint at least 1.5x": (1.5, True),
    "BM_SnapshotRead at least 20x": (40.0, True),
    "BM_SnapshotRead at most 1.2x": (1.6, False),
    "BM_RetireReclaim at most 3x": (4.0, False),
    "BM_RetireReclaim: unreclaimed backlog": (70.0, True),
    "...and with a reader": (None, None),
    "At most 16 bytes": (8.0, True),
    "100 generations": (3.5, False),
}


def synthetic_json(directory: Path, extra: list[dict] | None = None) -> list[Path]:
    apply_runs: list[dict] = []
    scale_runs: list[dict] = []
    for name, rates in RATES.items():
        for i, rate in enumerate(rates):
            apply_runs.append(iteration(name, rate, i, **(COUNTERS.get(name, [{}] * 3)[i])))
        apply_runs.append(aggregate(name, rates[1]))
    for name, counters in COUNTERS.items():
        if name.startswith("BM_Scale_"):
            scale_runs += [iteration(name, 1.0, i, **c) for i, c in enumerate(counters)]
    # A failed repetition of a benchmark with no good one, and a failed one beside good ones.
    apply_runs.append(iteration("BM_RetireReclaimWithReader/real_time", 1e6, 0, error=True,
                                backlog_max_observed=1))
    apply_runs.append(iteration("BM_Baseline_Cas64", 1.0, 3, error=True))
    apply_runs += extra or []
    context = {"date": "2026-12-02T00:00:00+00:00", "mhz_per_cpu": 1000, "library_build_type": "release",
               "load_avg": [0.0, 0.0, 0.0], "num_cpus": 96}
    paths = []
    for binary, runs in (("apply_bench", apply_runs), ("scale_bench", scale_runs)):
        path = directory / f"benchmarks-{binary.removesuffix('_bench')}.json"
        path.write_text(json.dumps({"context": dict(context, executable=f"/x/{binary}"), "benchmarks": runs}))
        paths.append(path)
    return paths


class Ratios(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self) -> None:
        self.tmp.cleanup()

    def test_every_target_is_the_ratio_of_two_medians(self) -> None:
        results, _, _ = report.load_results(synthetic_json(self.dir))
        verdicts = report.evaluate(results)
        self.assertEqual(len(verdicts), len(report.TARGETS))
        seen = set()
        for v in verdicts:
            prefix = next(p for p in EXPECTED if v.target.text.startswith(p))
            seen.add(prefix)
            value, holds = EXPECTED[prefix]
            with self.subTest(target=v.target.text):
                self.assertIs(v.holds, holds)
                if value is None:
                    self.assertIsNone(v.value)
                    self.assertIn("not measured", v.detail)
                else:
                    self.assertAlmostEqual(v.value, value, places=9)
        self.assertEqual(seen, set(EXPECTED))

    def test_a_failed_repetition_is_left_out(self) -> None:
        results, _, _ = report.load_results(synthetic_json(self.dir))
        self.assertEqual(results["BM_Baseline_Cas64"].repetitions, 3)
        self.assertAlmostEqual(results["BM_Baseline_Cas64"].ns_per_item, 2.5)
        self.assertNotIn("BM_RetireReclaimWithReader/real_time", results)

    def test_the_bound_decides_on_each_side_of_the_limit(self) -> None:
        for bound, limit, value, holds in (("<=", 2.0, 1.99, True), ("<=", 2.0, 2.0, True), ("<=", 2.0, 2.01, False),
                                           (">=", 1.8, 1.81, True), (">=", 1.8, 1.8, True), (">=", 1.8, 1.79, False)):
            target = report.Target("t", "A", "B", "rate", bound, limit)
            results = {"A": report.Measured("A", value, 0.0, 1, {}), "B": report.Measured("B", 1.0, 0.0, 1, {})}
            saved = report.TARGETS
            report.TARGETS = [target]
            try:
                (verdict,) = report.evaluate(results)
            finally:
                report.TARGETS = saved
            with self.subTest(bound=bound, value=value):
                self.assertIs(verdict.holds, holds)


class Output(unittest.TestCase):
    def test_report_keeps_the_prose_and_writes_table_and_chart(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            docs = Path(tmp) / "docs"
            docs.mkdir()
            more_threads = [iteration("BM_SnapshotRead/real_time/threads:8", 1.6e9, i) for i in range(3)]
            plan_diff = [iteration("BM_PlanDiff_OnePercent/100000", 1e4, i) for i in range(3)]
            plan_diff += [iteration("BM_Baseline_PlanIterate/100000", 400.0, i) for i in range(3)]
            plan_diff += [iteration("BM_PlanDiff_OnePercent/10000", 1e5, i) for i in range(3)]  # no baseline
            paths = synthetic_json(docs, more_threads + plan_diff)
            (docs / "benchmarks.md").write_text(
                f"# Benchmarks\n\nprose before\n\n{report.BEGIN_MARK}\nold numbers\n{report.END_MARK}\n\nprose after\n")
            done = subprocess.run([sys.executable, str(HERE / "report.py"), "--from-json", *map(str, paths),
                                   "--docs", str(docs)], capture_output=True, text=True, check=True)
            self.assertIn("7 of 14 targets held.", done.stdout)
            text = (docs / "benchmarks.md").read_text()
            self.assertTrue(text.startswith("# Benchmarks\n\nprose before\n\n" + report.BEGIN_MARK + "\n"))
            self.assertTrue(text.endswith(report.END_MARK + "\n\nprose after\n"))
            self.assertNotIn("old numbers", text)
            self.assertIn("**7 of 14 targets held**", text)
            for name in list(RATES) + ["BM_SnapshotRead/real_time/threads:8"]:
                self.assertIn(f"| `{name}` |", text)
            self.assertIn("| BM_ApplyCommit at most 1.5x BM_Baseline_Cas64 | 2 | <= 1.5 | **MISSED** |", text)
            self.assertIn("threads:8` | 0.625 ns |", text)
            self.assertIn("1 thread: `BM_SnapshotRead` 6.40x at 8", text)
            self.assertIn("(`BM_Baseline_PlanIterate`): 100,000 endpoints 0.04x (100 µs / 2.5 ms). No target", text)
            root = ElementTree.parse(docs / "benchmarks.svg").getroot()
            self.assertTrue(root.tag.endswith("svg"))
            # No benchmarks-run.json beside the JSON: the machine is what the JSON says, never the
            # machine deriving the report.
            self.assertIn("- CPU: not recorded, 96 CPUs at 1000 MHz", text)
            self.assertIn("- Compiler: not recorded", text)
            self.assertNotIn("Compile command of", text)

    def test_report_names_the_machine_recorded_beside_the_json(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            docs = Path(tmp)
            paths = synthetic_json(docs)
            (docs / "benchmarks-run.json").write_text(json.dumps({
                "apply_bench": {"wall_seconds": 10.0, "own_cpu_seconds": 9.0, "other_cpu_share": 0.01},
                "machine": {"cpu": "Example CPU 9000", "cpus": "96", "hypervisor": "none reported",
                            "kernel": "6.1.0", "compiler": "g++ (Example) 14.1",
                            "benchmark_library": "Google Benchmark 1.7.1-1 (Debian libbenchmark-dev)",
                            "compile_commands": {"apply_bench.cpp": "c++ -O3 example.cpp"}}}))
            subprocess.run([sys.executable, str(HERE / "report.py"), "--from-json", *map(str, paths),
                            "--docs", str(docs)], capture_output=True, text=True, check=True)
            text = (docs / "benchmarks.md").read_text()
            self.assertIn("- CPU: Example CPU 9000, 96 CPUs at 1000 MHz (hypervisor: none reported), Linux 6.1.0", text)
            self.assertIn("- Compiler: g++ (Example) 14.1", text)
            self.assertIn("- Compile command of `bench/apply_bench.cpp` (from compile_commands.json): "
                          "`c++ -O3 example.cpp`", text)
            self.assertIn("- While `apply_bench` ran (10 s), other processes used 1.0%", text)


if __name__ == "__main__":
    unittest.main()
