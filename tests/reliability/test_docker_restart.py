"""Docker restarted between two runs: host prep brings the daemon back, the next run passes.

Stopping a dockerd stops every container on it, the user's too. So this stops only the dockerd
host-prep started and recorded (same pid, start time and boot as in its record), or, with the
explicit opt-in PULL_LAB_DESTRUCTIVE_TESTS=1 (`.ci/run` sets it on throwaway CI machines),
whatever dockerd runs. Without either it skips and says why. Runs last (tests/conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from lab.offline.hostprep import (
    DOCKERD_RECORD,
    ProcessIdentity,
    docker_info,
    dockerd_started_by_host_prep,
    process_identity,
    running_dockerd,
)
from tests.conftest import DESTRUCTIVE_OPT_IN, destructive_tests_allowed

pytestmark = pytest.mark.restarts_docker


def daemon_to_stop() -> ProcessIdentity:
    """The dockerd this test may stop, or a skip that says why there is none."""
    ours = dockerd_started_by_host_prep()
    if ours is not None:
        return ours
    if not destructive_tests_allowed():
        pytest.skip(
            f"the running dockerd was not started by host-prep (no matching {DOCKERD_RECORD}): "
            f"stopping it would stop the user's containers; set {DESTRUCTIVE_OPT_IN}=1 to allow"
        )
    running = running_dockerd()
    assert running is not None, "no running dockerd found through /var/run/docker.pid"
    return running


def test_run_passes_after_docker_restarts(lab_images, lab_settings, tmp_path, record_property):
    target = daemon_to_stop()
    record_property("stopped_dockerd", f"pid {target.pid}, started at tick {target.start_ticks}")
    assert target.same_process(process_identity(target.pid)), "dockerd changed under the test"
    os.kill(target.pid, signal.SIGTERM)
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
    restarted = dockerd_started_by_host_prep()
    assert restarted is not None, f"host-prep started dockerd but {DOCKERD_RECORD} does not match"
    assert not restarted.same_process(target)
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
