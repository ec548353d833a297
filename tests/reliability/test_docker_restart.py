"""Docker restarted between two runs: host prep brings the daemon back, the next run passes.

Runs last (see conftest): restarting the daemon stops every container of this session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lab.offline.hostprep import docker_info

pytestmark = pytest.mark.restarts_docker


def test_run_passes_after_docker_restarts(lab_images, lab_settings, tmp_path):
    pid_file = Path("/var/run/docker.pid")
    if not pid_file.exists():
        pytest.skip("dockerd is not ours to restart here (no /var/run/docker.pid)")
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while docker_info() is not None and time.monotonic() < deadline:
        time.sleep(0.5)  # waiting for the daemon we stopped to stop answering
    assert docker_info() is None, "dockerd did not stop"
    # host-prep must cope with a daemon still on its way out (it holds the pid file).

    name = f"pull-lab-dr-{uuid.uuid4().hex[:4]}"
    env = {
        **os.environ,
        "PULL_LAB_CLUSTER_NAME": name,
        "PULL_LAB_CACHE_DIR": str(lab_settings.cache_dir),
    }
    prep = subprocess.run(
        [sys.executable, "-m", "lab.cli", "host-prep"], env=env, capture_output=True, text=True
    )
    assert prep.returncode == 0, prep.stderr
    assert "started dockerd" in prep.stderr
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "run",
            "registry-catalog",
            "wrong-password",
            "--report-dir",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
