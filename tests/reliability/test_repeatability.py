"""The whole catalogue three ways on one reused cluster gives the same verdicts, and not one
password leaks, in any encoding, into anything those runs wrote.

The three ways: (a) the catalogue in one `pull-lab run`; (b) every scenario alone, one
`pull-lab run <id>` each (a scenario alone is where masking has the least help: nothing ran
before it in its process); (c) the catalogue under `pytest -n 2`, where the workers make the
secrets and the controller writes the report. Then every file they wrote is scanned
(tests/leakscan.py): run output, reports, junit files, retained pytest temp dirs (TMPDIR points
into the test's own directory), the lab's build logs, the cluster's state dir, and any
/tmp/pull-lab-* dir the runs left.

The three ways run at the same time on a cluster with WORKERS workers, the alone runs
ALONE_AT_ONCE at a time: every run takes a node lock per node (lab.node_locks) as an xdist
worker does, so a node-level scenario holds one node alone while other runs' scenarios use the
other nodes, and the API-level waits of all the runs overlap. Each run lists the scenarios
API-level first, the long waits (secret-update, one kubelet sync period) at their head.
Nothing is left out; each run replays every scenario, the two-worker one included. On one node
the floor was the node-level scenarios three times over plus the serial run's own API-level
ones (about 10.5 minutes on 2 cores, 18.5 when the ways ran one after another). On two
workers, two alone runs at a time: 570 s, the serial run waiting for nodes the others held
(566 s of it; alone 542 s, 29 % of the CPU idle). On four workers, three at a time, with the
workload image saved once per process: 458 s (serial 451 s, alone 424 s, xdist 304 s, 14 %
idle): the two cores, not the nodes, now set the pace (docs/benchmarks.md, issue 15).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from lab.catalog import CATALOG, Entry
from tests.leakscan import files_under, scan
from tests.reliability.runs import TIMED_OUT, Outcome, Run, run_at_once, wall_seconds

REPO = Path(__file__).resolve().parents[2]
MASK = "******"
# Alone runs at once: each is its own process (its masker saw nothing before its scenario).
ALONE_AT_ONCE = 3
WORKERS = 4


def verdicts(report_dir: Path) -> dict[str, str]:
    report = report_dir / "report.json"
    if not report.is_file():
        return {}
    return {s["id"]: s["outcome"] for s in json.loads(report.read_text())["scenarios"]}


def shared_first(entries: Sequence[Entry]) -> list[Entry]:
    """API-level scenarios first, the long waits (Entry.long_wait) at their head, then the
    node-level ones, each group in catalogue order: API-level waits of concurrent runs overlap
    (they share the node lock), node-level scenarios follow one another (each holds it
    alone)."""
    api = [e for e in entries if not e.node_level]
    api.sort(key=lambda e: not e.long_wait)  # stable: the rest keep catalogue order
    return api + [e for e in entries if e.node_level]


def node_id(e: Entry) -> str:
    return f"scenarios/{e.module}.py::test_{e.id.replace('-', '_')}"


def lab_run(d: Path, label: str, env: dict[str, str], *scenarios: str) -> Run:
    report = d / label
    args = ("-m", "lab.cli", "run", *scenarios, "--report-dir", str(report), "--keep-cluster")
    log = d / "logs" / f"{label.replace('/', '-')}.out"
    return Run(label, args, report, log, env, timeout=1800 if len(scenarios) > 1 else 900)


def xdist_run(d: Path, env: dict[str, str], entries: Sequence[Entry]) -> Run:
    out = d / "xdist"
    args = (
        *("-m", "pytest", "-n", "2", *map(node_id, entries), "--lab-report", str(out)),
        *("--junitxml", str(out / "junit-pytest.xml"), "-rA"),
        *("--basetemp", str(out / "tmp"), "-p", "no:cacheprovider", "--lab-reuse-cluster"),
    )
    return Run("xdist", args, out, d / "logs" / "xdist.out", env, timeout=1800)


def pull_lab_down(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", "down", "--name", name],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def log_tail(run: Run, chars: int = 3000) -> str:
    return run.log.read_text(errors="replace")[-chars:]


def exit_text(code: int) -> str:
    return "timed out" if code == TIMED_OUT else f"exit {code}"


def test_catalogue_gives_the_same_verdicts_three_ways_and_leaks_no_password(
    lab_images, lab_settings, tmp_path, record_property
):
    d = tmp_path
    name = f"pull-lab-rep-{uuid.uuid4().hex[:4]}"
    (d / "tmp").mkdir()
    # TMPDIR: the runs' pytest temp dirs (what stays of them) land where the scan looks.
    env = {
        "PULL_LAB_CLUSTER_NAME": name,
        # Workers: every scenario runs (one needs a pair of them), and node-level ones of the
        # three ways hold different nodes at once instead of queueing for one.
        "PULL_LAB_WORKERS": str(WORKERS),
        "PULL_LAB_CACHE_DIR": str(lab_settings.cache_dir),
        "TMPDIR": str(d / "tmp"),
    }
    reuse = {**env, "PULL_LAB_REUSE_CLUSTER": "1"}
    tmp_before = set(Path("/tmp").glob("pull-lab-*"))
    order = shared_first(CATALOG)
    ids = [e.id for e in order]
    serial = lab_run(d, "serial", env, *ids)
    alone = [lab_run(d, f"alone/{i}", reuse, i) for i in ids]
    xdist = xdist_run(d, reuse, order)
    outcomes: dict[str, Outcome] = {}
    try:
        # Whichever run comes first creates the cluster, under the lab's own lock.
        outcomes = run_at_once([serial, xdist], queue=alone, at_once=ALONE_AT_ONCE, cwd=REPO)
        record_property("ways_seconds", wall_seconds(list(outcomes.values())))
        record_property("serial_seconds", round(outcomes[serial.label].seconds))
        record_property("alone_seconds", wall_seconds([outcomes[r.label] for r in alone]))
        record_property("xdist_seconds", round(outcomes[xdist.label].seconds))
        start = time.monotonic()
        state_files = list(files_under([lab_settings.state_dir.parent / name]))
        leaks = scan(state_files)
        scan_seconds = time.monotonic() - start
    finally:
        down = pull_lab_down(name, env)
    assert down.returncode == 0, down.stderr[-2000:]

    runs = (serial, *alone, xdist)
    failed = {run.label: outcomes[run.label].code for run in runs if outcomes[run.label].code}
    logs_of_failed = "\n".join(
        f"--- {run.label} ({exit_text(failed[run.label])}):\n{log_tail(run)}"
        for run in runs
        if run.label in failed
    )
    assert failed == {}, f"runs that failed: {failed}\n{logs_of_failed}"
    by_way = {
        "serial": verdicts(serial.report_dir),
        "alone": {k: v for run in alone for k, v in verdicts(run.report_dir).items()},
        "xdist": verdicts(xdist.report_dir),
    }
    catalogue = sorted(e.id for e in CATALOG)  # not `ids`: the order must leave nothing out
    for way, found in by_way.items():
        assert sorted(found) == catalogue, f"{way}: scenarios missing or extra"
        assert set(found.values()) == {"passed"}, f"{way}: {found}"
    assert by_way["serial"] == by_way["alone"] == by_way["xdist"]

    left_in_tmp = sorted(set(Path("/tmp").glob("pull-lab-*")) - tmp_before)
    logs = lab_settings.cache_dir / "logs"
    scanned = [d, logs, *left_in_tmp]
    record_property("files_scanned", len(list(files_under(scanned))) + len(state_files))
    start = time.monotonic()
    leaks += scan(scanned)
    record_property("scan_seconds", round(scan_seconds + time.monotonic() - start))
    assert leaks == [], "passwords leaked:\n" + "\n".join(map(str, leaks))
    # The scan is only worth something if credentials went through the outputs, masked.
    outputs = [run.log for run in runs] + sorted(d.rglob("report.*"))
    masked = [p for p in outputs if MASK in p.read_text(errors="replace")]
    assert masked, "no run output or report holds a masked credential"
