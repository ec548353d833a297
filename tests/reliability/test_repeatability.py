"""The whole catalogue three ways on one reused cluster gives the same verdicts, and not one
password leaks, in any encoding, into anything those runs wrote.

The three ways: (a) the catalogue in one `pull-lab run`; (b) every scenario alone, one
`pull-lab run <id>` each (a scenario alone is where masking has the least help: nothing ran
before it); (c) the catalogue under `pytest -n 2`, where the workers make the secrets and the
controller writes the report. Then every file they wrote is scanned (tests/leakscan.py): run
output, reports, junit files, retained pytest temp dirs (TMPDIR points into the test's own
directory), the lab's build logs, the cluster's state dir, and any /tmp/pull-lab-* dir the
runs left. Slow: about 15 minutes on 2 cores (see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from lab.catalog import CATALOG
from tests.leakscan import files_under, scan

REPO = Path(__file__).resolve().parents[2]
MASK = "******"


@dataclass(frozen=True)
class Run:
    """One run of the lab: its command, where its output and report go."""

    label: str
    args: tuple[str, ...]
    report_dir: Path
    log: Path


def execute(run: Run, env: dict[str, str], timeout: float) -> tuple[int, float]:
    """Run it with stdout and stderr saved to its log; (exit code, seconds)."""
    run.log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with run.log.open("w") as log:
        proc = subprocess.run(
            [sys.executable, *run.args],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    return proc.returncode, time.monotonic() - start


def verdicts(report_dir: Path) -> dict[str, str]:
    report = report_dir / "report.json"
    if not report.is_file():
        return {}
    return {s["id"]: s["outcome"] for s in json.loads(report.read_text())["scenarios"]}


def lab_run(d: Path, label: str, *scenarios: str) -> Run:
    report = d / label
    args = ("-m", "lab.cli", "run", *scenarios, "--report-dir", str(report), "--keep-cluster")
    return Run(label, args, report, d / "logs" / f"{label.replace('/', '-')}.out")


def xdist_run(d: Path) -> Run:
    out = d / "xdist"
    args = (
        *("-m", "pytest", "-n", "2", "scenarios", "--lab-report", str(out)),
        *("--junitxml", str(out / "junit-pytest.xml"), "-rA"),
        *("--basetemp", str(out / "tmp"), "-p", "no:cacheprovider", "--lab-reuse-cluster"),
    )
    return Run("xdist", args, out, d / "logs" / "xdist.out")


def pull_lab_down(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", "down", "--name", name],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_catalogue_gives_the_same_verdicts_three_ways_and_leaks_no_password(
    lab_images, lab_settings, tmp_path, record_property
):
    d = tmp_path
    name = f"pull-lab-rep-{uuid.uuid4().hex[:4]}"
    (d / "tmp").mkdir()
    # TMPDIR: the runs' pytest temp dirs (what stays of them) land where the scan looks.
    env = {
        "PULL_LAB_CLUSTER_NAME": name,
        "PULL_LAB_CACHE_DIR": str(lab_settings.cache_dir),
        "TMPDIR": str(d / "tmp"),
    }
    reuse = {**env, "PULL_LAB_REUSE_CLUSTER": "1"}
    tmp_before = set(Path("/tmp").glob("pull-lab-*"))
    serial = lab_run(d, "serial")
    alone = [lab_run(d, f"alone/{e.id}", e.id) for e in CATALOG]
    xdist = xdist_run(d)
    codes: dict[str, int] = {}
    try:
        codes[serial.label], took = execute(serial, env, timeout=1800)
        record_property("serial_seconds", round(took))
        assert codes[serial.label] == 0, serial.log.read_text()[-4000:]
        start = time.monotonic()
        for run in alone:
            codes[run.label], _ = execute(run, reuse, timeout=900)
        record_property("alone_seconds", round(time.monotonic() - start))
        codes[xdist.label], took = execute(xdist, reuse, timeout=1800)
        record_property("xdist_seconds", round(took))
        state_files = list(files_under([lab_settings.state_dir.parent / name]))
        leaks = scan(state_files)
    finally:
        down = pull_lab_down(name, env)
    assert down.returncode == 0, down.stderr[-2000:]

    failed = {label: code for label, code in codes.items() if code != 0}
    logs_of_failed = "\n".join(
        f"--- {run.label} (exit {codes[run.label]}):\n{run.log.read_text(errors='replace')[-3000:]}"
        for run in (serial, *alone, xdist)
        if run.label in failed
    )
    assert failed == {}, f"runs that failed: {failed}\n{logs_of_failed}"
    by_way = {
        "serial": verdicts(serial.report_dir),
        "alone": {k: v for run in alone for k, v in verdicts(run.report_dir).items()},
        "xdist": verdicts(xdist.report_dir),
    }
    ids = [e.id for e in CATALOG]
    for way, found in by_way.items():
        assert sorted(found) == sorted(ids), f"{way}: scenarios missing or extra"
        assert set(found.values()) == {"passed"}, f"{way}: {found}"
    assert by_way["serial"] == by_way["alone"] == by_way["xdist"]

    left_in_tmp = sorted(set(Path("/tmp").glob("pull-lab-*")) - tmp_before)
    logs = lab_settings.cache_dir / "logs"
    scanned = [d, logs, *left_in_tmp]
    record_property("files_scanned", len(list(files_under(scanned))) + len(state_files))
    leaks += scan(scanned)
    assert leaks == [], "passwords leaked:\n" + "\n".join(map(str, leaks))
    # The scan is only worth something if credentials went through the outputs, masked.
    outputs = [run.log for run in (serial, *alone, xdist)] + sorted(d.rglob("report.*"))
    masked = [p for p in outputs if MASK in p.read_text(errors="replace")]
    assert masked, "no run output or report holds a masked credential"
