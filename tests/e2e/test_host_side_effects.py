"""What a lab cluster changes on the host itself: the kubelet in a privileged kind node sets
three kernel settings that are global, not per container (`protectKernelDefaults: false`
lets it "fix" them), so every lab cluster leaves them changed on the host after it is gone.

Resetting them first, so the test proves the cluster changed them, is itself a change to
the host: it happens only with PULL_LAB_DESTRUCTIVE_TESTS=1, and the values found are put
back afterwards. Without the opt-in the test asserts the values after a cluster came up and
records that the values before were not reset.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.conftest import destructive_tests_allowed

pytestmark = pytest.mark.e2e

SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
# What the kubelet sets them to (pkg/kubelet/cm: setupKernelTunables).
KUBELET_VALUES = (1, 10, 1)


def _path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> tuple[int, ...]:
    return tuple(int(_path(name).read_text()) for name in SYSCTLS)


def write_sysctls(values: Sequence[int]) -> None:
    for name, value in zip(SYSCTLS, values, strict=True):
        _path(name).write_text(f"{value}\n")


def pull_lab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_kubelet_sets_host_sysctls(lab_images, lab_settings, record_property):
    name = f"pull-lab-sysctl-{uuid.uuid4().hex[:4]}"
    env = {"PULL_LAB_CACHE_DIR": str(lab_settings.cache_dir)}
    found = read_sysctls()
    reset = destructive_tests_allowed()
    record_property("sysctls", " ".join(SYSCTLS))
    record_property("found", found)
    record_property("reset_to_zero_before", reset)
    try:
        if reset:
            write_sysctls((0, 0, 0))
            assert read_sysctls() == (0, 0, 0), "the kernel did not take the reset"
        before = read_sysctls()
        record_property("before", before)
        up = pull_lab("up", "--name", name, env=env)
        assert up.returncode == 0, up.stderr[-3000:]
        after = read_sysctls()
        record_property("after", after)
    finally:
        down = pull_lab("down", "--name", name, env=env)
        if reset:
            write_sysctls(found)
    assert down.returncode == 0, down.stderr[-2000:]
    assert after == KUBELET_VALUES, f"{SYSCTLS}: before {before}, after {after}"
