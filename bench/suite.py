"""`make test`'s own figure: the whole suite's wall time, the machine's CPU over it, and which
test files cost what (from the suite's JUnit file, setup and teardown included).

The CPU is the whole machine's (/proc/stat), not pytest's alone: the clusters, dockerd and
every process the tests start are the suite's cost too. On 2 cores it bounds what overlap
can win: a suite needing C core-seconds takes at least C / 2 seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuTicks:
    busy: int
    total: int


def cpu_ticks(stat_text: str) -> CpuTicks:
    """The first `cpu` line of /proc/stat: idle and iowait are the only not-busy ticks."""
    fields = [int(f) for f in stat_text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return CpuTicks(busy=sum(fields[:8]) - idle, total=sum(fields[:8]))


def read_cpu_ticks() -> CpuTicks:
    return cpu_ticks(Path("/proc/stat").read_text())


def module_of(classname: str) -> str:
    """`tests.e2e.test_x` (or `tests.e2e.test_x.TestCase`) as the file `tests/e2e/test_x.py`."""
    parts = classname.split(".")
    while len(parts) > 1 and parts[-1][:1].isupper():
        parts.pop()  # a test class, not a module
    return "/".join(parts) + ".py"


@dataclass(frozen=True)
class SuiteResult:
    tests: int
    failed: int
    skipped: int
    seconds_per_file: dict[str, float]


def read_junit(text: str) -> SuiteResult:
    per_file: Counter[str] = Counter()
    tests = failed = skipped = 0
    for case in ET.fromstring(text).iter("testcase"):
        tests += 1
        per_file[module_of(case.get("classname", ""))] += float(case.get("time", "0"))
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
    return SuiteResult(tests, failed, skipped, dict(per_file))


def run_suite(pytest_args: list[str], top: int = 15) -> int:
    """Run the suite as `make test` does, print the figures, return pytest's exit status."""
    with tempfile.TemporaryDirectory(prefix="pull-lab-bench-suite-") as tmp:
        junit = Path(tmp) / "suite.xml"
        log = Path(tmp) / "pytest.out"
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}"]
        before, started = read_cpu_ticks(), time.monotonic()
        with log.open("w") as out:
            code = subprocess.run(
                [*cmd, *pytest_args], stdout=out, stderr=subprocess.STDOUT
            ).returncode
        wall, after = time.monotonic() - started, read_cpu_ticks()
        if not junit.is_file():
            print(log.read_text()[-3000:], file=sys.stderr)
            print(f"pytest wrote no JUnit file (exit {code})", file=sys.stderr)
            return code or 1
        result = read_junit(junit.read_text())
    busy = (after.busy - before.busy) / CLOCK_TICKS
    share = (after.busy - before.busy) / max(after.total - before.total, 1)
    cores = os.cpu_count() or 1
    print(
        f"the whole suite: {wall:.0f} s wall, {result.tests} tests, {result.failed} failed, "
        f"{result.skipped} skipped (pytest exit {code})"
    )
    print(
        f"  machine CPU: {busy:.0f} core-seconds, {share:.0%} busy on {cores} cores; "
        f"all of it packed on {cores} cores would take {busy / cores:.0f} s at least"
    )
    print(f"  the {top} costliest files (setup, call and teardown):")
    ranked = sorted(result.seconds_per_file.items(), key=lambda kv: -kv[1])
    for path, seconds in ranked[:top]:
        print(f"    {seconds:7.1f} s  {path}")
    return code
