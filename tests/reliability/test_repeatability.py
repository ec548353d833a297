"""The whole catalogue, several times in a row on one reused cluster: the same verdicts every
time (node-level scenarios also check the node is as they found it), and not one password,
base64 auth value or private key in any output, log or report of those runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest

REPEATS = int(os.environ.get("PULL_LAB_REPEAT", "3"))

# Shapes of every credential the lab makes (see fixtures/plugin.py and scenarios/conftest.py).
SECRET_PATTERNS = [
    re.compile(r"foo123-[0-9a-f]{8}"),
    re.compile(r"bar-\d{8}"),
    re.compile(r"bad-pw-[0-9a-f]{8}"),
    re.compile(r"Zm9vOmZvbzEyMy0"),  # base64 of "foo:foo123-": the start of every lab auth value
    re.compile(r"PRIVATE KEY-----\s*\n\s*[A-Za-z0-9+/]"),
]


def pull_lab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def test_catalogue_repeats_with_the_same_verdicts_and_no_secret_leaks(
    lab_images, lab_settings, tmp_path
):
    name = f"pull-lab-rep-{uuid.uuid4().hex[:4]}"
    env = {"PULL_LAB_CLUSTER_NAME": name, "PULL_LAB_CACHE_DIR": str(lab_settings.cache_dir)}
    verdicts, outputs = [], []
    try:
        for i in range(REPEATS):
            report = tmp_path / f"report-{i}"
            proc = pull_lab("run", "--report-dir", str(report), "--keep-cluster", env=env)
            outputs.append(proc.stdout + proc.stderr)
            doc = json.loads((report / "report.json").read_text())
            verdicts.append({s["id"]: s["outcome"] for s in doc["scenarios"]})
            assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    finally:
        pull_lab("down", "--name", name, env=env)

    assert len(verdicts[0]) == 26
    assert all(v == verdicts[0] for v in verdicts), verdicts
    assert set(verdicts[0].values()) == {"passed"}

    texts = outputs + [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    logs = lab_settings.cache_dir / "logs"
    texts += [p.read_text(errors="replace") for p in logs.glob("*.log")] if logs.is_dir() else []
    leaks = [
        (pat.pattern, m.group(0)) for t in texts for pat in SECRET_PATTERNS for m in pat.finditer(t)
    ]
    assert leaks == [], leaks[:5]
    assert any("******" in t for t in texts), "the runs did print masked credentials"


@pytest.fixture(autouse=True)
def _report_repeats(record_property):
    record_property("repeats", REPEATS)
