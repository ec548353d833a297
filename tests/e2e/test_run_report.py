"""`pull-lab run` end to end: live progress, exit code, and a report a browser renders, with
one section per scenario, nothing loaded from elsewhere, and no secret in any file."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.settings import in_ci

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if in_ci():
            pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (make test installs it)")
    return path


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory, lab_images):
    report_dir = tmp_path_factory.mktemp("report")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "run",
            "registry-catalog",
            "wrong-password",
            "--report-dir",
            str(report_dir),
        ],
        env={**os.environ, "PULL_LAB_CLUSTER_NAME": ""},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return proc, report_dir


def test_run_exits_0_with_progress_lines(lab_run):
    proc, _ = lab_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[registry-catalog] PASSED in" in proc.stderr
    assert "[wrong-password] PASSED in" in proc.stderr
    assert "pull-lab doctor app" in proc.stderr


def test_report_renders_in_chromium_one_section_per_scenario(lab_run, tmp_path):
    _, report_dir = lab_run
    page = report_dir / "report.html"
    proc = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    dom = proc.stdout
    assert dom.count('<section class="scenario"') == 2, dom[:500]
    assert dom.count("<h3>Event timeline</h3>") == 2
    assert '<svg class="timeline"' in dom, "the scenario with events has its chart"
    assert "Content Security Policy" not in proc.stderr, "the page tried to load something"
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.stat().st_size > 20_000, "a rendered page, not a blank one"


def test_report_files_hold_no_secret(lab_run):
    _, report_dir = lab_run
    doc = json.loads((report_dir / "report.json").read_text())
    assert [s["id"] for s in doc["scenarios"]] == ["registry-catalog", "wrong-password"]
    text = "".join(p.read_text() for p in Path(report_dir).iterdir())
    assert "******" in text
    assert "PRIVATE KEY" not in text
    for marker in ("foo123-", base64.b64encode(b"foo:foo123-").decode()[:12]):
        assert marker not in text
