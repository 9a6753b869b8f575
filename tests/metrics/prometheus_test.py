#!/usr/bin/env python3
"""A real Prometheus scrapes examples/embedded_control_plane through a lease takeover and an
operator hold (CTest metrics.prometheus, label prometheus; docs/metrics.md).

It starts Prometheus on loopback (a temporary configuration scraping the example every second,
the alerting rules of docs/alerts/planfence.rules.yml loaded, its database in a temporary
directory), then the example with --serve-metrics and --hold-seconds, and follows the example's
scripted acts (the lines "act NAME at ..."). In each act it asks Prometheus's HTTP API
(/api/v1/query) for the metrics until they show the act's state, and fails if they do not within
the act:

  holding        az1 holds the lease (lease_held 1), az2 and az3 do not
  takeover       az1 (stalled past its lease) no longer holds it, az2 does, with a larger fence
                 token; Prometheus saw az1 holding it before (max_over_time)
  operator-hold  the store's operator hold is 1, its fence floor an operator fence (1024), no
                 enactor holds the lease, az2's write was refused as fenced
  released       the hold is 0, one enactor holds the lease with a token above the operator
                 fence, and it applied the newest published generation

and throughout: the empty-endpoint gauge (planfence_store_endpoints_empty) was scraped and was
always 0, the target was up, the rules loaded and no PlanfenceEndpointsEmpty alert is pending
or firing. Prometheus and the example are stopped however the test ends.

    prometheus_test.py --prometheus /usr/bin/prometheus --example build/examples/embedded_control_plane
"""

import argparse
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HOLD_SECONDS = 4  # each scripted act, long enough for several scrapes at 1 s
ACT_SLACK_SECONDS = 3  # beyond the hold: Prometheus's scrape and query
RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "alerts", "planfence.rules.yml")


class Failure(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, binary, directory, target_port):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        config = os.path.join(directory, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global:\n"
                "  scrape_interval: 1s\n"
                "  scrape_timeout: 900ms\n"
                "  evaluation_interval: 1s\n"
                "rule_files:\n"
                "  - %s\n"
                "scrape_configs:\n"
                "  - job_name: planfence\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % (json.dumps(os.path.abspath(RULES)), target_port)
            )
        self.log_path = os.path.join(directory, "prometheus.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [
                binary,
                "--config.file=" + config,
                "--storage.tsdb.path=" + os.path.join(directory, "data"),
                "--web.listen-address=127.0.0.1:%d" % self.port,
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path):
        with urllib.request.urlopen(self.base + path, timeout=5) as response:
            return response.read().decode()

    def wait_ready(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Failure("prometheus exited with %d:\n%s" % (self.process.returncode, self.log_text()))
            try:
                self.get("/-/ready")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        raise Failure("prometheus not ready after %d s:\n%s" % (seconds, self.log_text()))

    def query(self, expression):
        """The instant vector of `expression` now, as {frozenset(labels): value}."""
        body = json.loads(self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expression})))
        if body.get("status") != "success":
            raise Failure("query %s: %s" % (expression, body))
        if body["data"]["resultType"] == "scalar":
            return {frozenset(): float(body["data"]["result"][1])}
        return {frozenset(r["metric"].items()): float(r["value"][1]) for r in body["data"]["result"]}

    def value(self, expression):
        """The single value of `expression`, or None when it has no sample (or several)."""
        result = self.query(expression)
        return next(iter(result.values())) if len(result) == 1 else None

    def log_text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Example:
    def __init__(self, binary, port):
        self.process = subprocess.Popen(
            [binary, "--seconds", "1", "--quiet", "--serve-metrics", str(port), "--hold-seconds", str(HOLD_SECONDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = []
        self.acts = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("act "):
                self.acts.put(line.split()[1])
        self.acts.put(None)  # the program ended

    def next_act(self, seconds):
        try:
            act = self.acts.get(timeout=seconds)
        except queue.Empty:
            raise Failure("no act from the example within %d s" % seconds)
        if act is None:
            raise Failure("the example ended early")
        return act

    def output(self):
        return "\n".join(self.lines)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def held(prometheus):
    """{enactor: lease_held} as Prometheus has it now."""
    return {dict(labels)["enactor"]: value for labels, value in prometheus.query("planfence_enactor_lease_held").items()}


def fence(prometheus, enactor):
    return prometheus.value('planfence_enactor_fence_token{enactor="%s"}' % enactor)


def wait_for(what, check, seconds):
    """Calls check() until it returns None (the state is there) or `seconds` pass; then fails
    with the last thing check() said was missing."""
    deadline = time.monotonic() + seconds
    missing = "never checked"
    while time.monotonic() < deadline:
        try:
            missing = check()
        except Failure as e:
            missing = str(e)
        if missing is None:
            print("ok   %s" % what)
            return
        time.sleep(0.25)
    raise Failure("%s: not seen within %d s: %s" % (what, seconds, missing))


def expect_act(example, name):
    act = example.next_act(60)
    if act != name:
        raise Failure("expected act %s, the example says %s" % (name, act))


def run(arguments, directory):
    example_port = free_port()
    prometheus = Prometheus(arguments.prometheus, directory, example_port)
    example = None
    try:
        prometheus.wait_ready(30)
        # Ready is not scraping yet: the scrape manager applies its targets a few seconds later.
        # Wait for the first scrape of the target (up 0: the example is not running yet), so
        # that every act is scraped.
        wait_for("Prometheus scrapes the target", lambda: None if prometheus.query('up{job="planfence"}') else "no scrape yet", 30)
        example = Example(arguments.example, example_port)
        example_started = time.monotonic()
        act_seconds = HOLD_SECONDS + ACT_SLACK_SECONDS

        expect_act(example, "holding")

        def holding():
            h = held(prometheus)
            if h != {"az1": 1, "az2": 0, "az3": 0}:
                return "lease_held is %s" % h
            return None

        wait_for("act holding: az1 holds the lease, az2 and az3 do not", holding, act_seconds)
        az1_fence = fence(prometheus, "az1")

        expect_act(example, "takeover")

        def takeover():
            h = held(prometheus)
            if h != {"az1": 0, "az2": 1, "az3": 0}:
                return "lease_held is %s" % h
            az2_fence = fence(prometheus, "az2")
            if az2_fence is None or az1_fence is None or not az2_fence > az1_fence:
                return "fence tokens az1 %s, az2 %s" % (az1_fence, az2_fence)
            if prometheus.value('max_over_time(planfence_enactor_lease_held{enactor="az1"}[5m])') != 1:
                return "Prometheus never saw az1 holding the lease"
            return None

        wait_for("act takeover: az1 lost the lease, az2 holds it with a larger fence token", takeover, act_seconds)

        expect_act(example, "operator-hold")

        def operator_hold():
            hold = prometheus.value('planfence_store_operator_hold{store="memory"}')
            floor = prometheus.value('planfence_store_fence_floor{store="memory"}')
            if hold != 1 or floor is None or floor % 1024 != 0 or floor == 0:
                return "operator_hold %s, fence floor %s" % (hold, floor)
            if any(v != 0 for v in held(prometheus).values()):
                return "lease_held is %s under the hold" % held(prometheus)
            fenced = prometheus.value('planfence_enactor_refusals_total{enactor="az2",reason="fenced"}')
            if fenced is None or fenced < 1:
                return "az2's fenced refusals: %s" % fenced
            return None

        wait_for("act operator-hold: the store is held, nobody holds the lease, az2 was fenced", operator_hold, act_seconds)

        expect_act(example, "released")

        def released():
            if prometheus.value('planfence_store_operator_hold{store="memory"}') != 0:
                return "the hold is still there"
            h = held(prometheus)
            holders = [e for e, v in h.items() if v == 1]
            if len(holders) != 1:
                return "lease_held is %s" % h
            token = fence(prometheus, holders[0])
            if token is None or token <= 1024:
                return "%s holds fence %s, not above the operator fence" % (holders[0], token)
            applied = prometheus.value('planfence_enactor_applied_generation{enactor="%s"}' % holders[0])
            published = prometheus.value('planfence_enactor_published_generation{enactor="%s"}' % holders[0])
            if applied is None or applied != published:
                return "%s applied %s of %s published" % (holders[0], applied, published)
            return None

        wait_for("act released: one holder above the operator fence, the newest plan applied", released, act_seconds)

        # Throughout: the 2025 alarm was scraped many times and never left 0; the target was up;
        # the rules were loaded and evaluated, and the empty-endpoint alert never became active.
        samples = prometheus.value('count_over_time(planfence_store_endpoints_empty{store="memory"}[5m])')
        if samples is None or samples < 4 * 2:
            raise Failure("the empty-endpoint gauge was scraped %s times" % samples)
        worst = prometheus.value('max_over_time(planfence_store_endpoints_empty{store="memory"}[5m])')
        if worst != 0:
            raise Failure("planfence_store_endpoints_empty reached %s" % worst)
        print("ok   planfence_store_endpoints_empty was 0 in all %d scrapes" % samples)
        window = int(time.monotonic() - example_started) - 2  # scrapes since the example listened
        if prometheus.value('min_over_time(up{job="planfence"}[%ds])' % window) != 1:
            raise Failure("the example's target was not up at every scrape in the last %d s" % window)
        rules = json.loads(prometheus.get("/api/v1/rules"))["data"]["groups"]
        loaded = [r for g in rules for r in g["rules"]]
        if not loaded or any(r.get("health") != "ok" for r in loaded):
            raise Failure("alerting rules not loaded or unhealthy: %s" % [(r["name"], r.get("health"), r.get("lastError")) for r in loaded])
        active = [r["name"] for r in loaded if r["name"] == "PlanfenceEndpointsEmpty" and r.get("state") != "inactive"]
        if active:
            raise Failure("PlanfenceEndpointsEmpty is %s" % active)
        print("ok   %d alerting rules loaded and healthy, PlanfenceEndpointsEmpty inactive" % len(loaded))

        expect_act(example, "done")
        code = example.process.wait(timeout=60)
        if code != 0:
            raise Failure("the example exited with %d" % code)
        print("ok   the example's own checks passed")
    except Failure:
        if example is not None:
            sys.stderr.write("--- example output ---\n%s\n" % example.output())
        sys.stderr.write("--- prometheus log ---\n%s\n" % prometheus.log_text())
        raise
    finally:
        if example is not None:
            example.stop()
        prometheus.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "prometheus")
    parser.add_argument("--example", required=True)
    arguments = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="planfence-prometheus-")
    try:
        run(arguments, directory)
    except Failure as e:
        print("FAIL %s" % e, file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
