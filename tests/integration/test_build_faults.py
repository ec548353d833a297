"""The build's faults, for real: each gives one line naming the step and the cause, exit 2,
and leaves no cache entry a later run would trust."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.versions import VERSIONS_FILE

pytestmark = pytest.mark.integration


def pull_lab(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("pull-lab: error:")]


def assert_nothing_trusted(cache: Path, step: str) -> None:
    step_dir = cache / step
    assert not step_dir.exists() or list(step_dir.iterdir()) == [], list(step_dir.iterdir())


def test_unreachable_module_proxy_names_the_step_and_the_cause(tmp_path):
    cache = tmp_path / "cache"
    proc = pull_lab(
        "build",
        env={
            "PULL_LAB_CACHE_DIR": str(cache),
            "GOPROXY": "http://127.0.0.1:9",  # loopback, nothing listens
            "GOMODCACHE": str(tmp_path / "gomod"),
        },
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    (line,) = error_lines(proc)
    assert line.startswith("pull-lab: error: step 'go-kind' failed: ")
    assert "127.0.0.1:9" in line and "connection refused" in line
    assert_nothing_trusted(cache, "go-kind")
    subprocess.run(["chmod", "-R", "u+w", str(tmp_path / "gomod")], check=False)


def test_version_that_does_not_exist_names_the_step(tmp_path):
    bad = tmp_path / "versions.toml"
    bad.write_text(
        VERSIONS_FILE.read_text().replace('version = "v0.33.0"', 'version = "v0.0.999"', 1)
    )
    cache = tmp_path / "cache"
    proc = pull_lab(
        "build",
        env={"PULL_LAB_CACHE_DIR": str(cache), "PULL_LAB_VERSIONS_FILE": str(bad)},
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    (line,) = error_lines(proc)
    assert line.startswith("pull-lab: error: step 'go-kind' failed: ")
    assert "v0.0.999" in line
    assert_nothing_trusted(cache, "go-kind")


def test_docker_not_answering_is_one_clear_line(tmp_path):
    proc = pull_lab(
        "build",
        env={
            "PULL_LAB_CACHE_DIR": str(tmp_path),
            "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
        },
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert error_lines(proc) == [
        f"pull-lab: error: Docker at DOCKER_HOST=unix://{tmp_path}/no-docker.sock does not answer "
        "(start that daemon or unset DOCKER_HOST to use the local one)"
    ]


@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_stops_before_building(tiny_disk, tmp_path):
    proc = pull_lab("build", env={"PULL_LAB_CACHE_DIR": str(tiny_disk / "cache")}, cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = error_lines(proc)
    assert "free under" in line and "a cold build needs about" in line
    assert "PULL_LAB_CACHE_DIR" in line
