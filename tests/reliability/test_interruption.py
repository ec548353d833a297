"""Signals at every stage leave nothing behind: no container, network, volume, cluster,
kubeconfig or key file of the run. A second signal does not cut the cleanup short, and
`pull-lab down` clears what a killed (-9) run left, and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.reliability.conftest import SIGINT, SIGTERM, dangling_volumes, leftovers, start_pull_lab

KEY_FILES = ("*.key", "htpasswd", "credentials.json", "client.cert")


def run_env(name: str, cache: Path, tmp: Path) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    # TMPDIR moves pytest's per-run directory (the registries' keys) where the test can look.
    return {"PULL_LAB_CLUSTER_NAME": name, "PULL_LAB_CACHE_DIR": str(cache), "TMPDIR": str(tmp)}


def key_files(root: Path) -> list[Path]:
    return [p for pattern in KEY_FILES for p in root.rglob(pattern)]


def wait_for_container(name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["docker", "ps", "--filter", f"name={name}", "--format", "{{.Names}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if out.strip():
            return
        time.sleep(0.2)  # polling Docker for a container another process is creating
    raise AssertionError(f"container {name} did not appear within {timeout}s")


@pytest.fixture
def run_name() -> str:
    return f"pull-lab-int-{uuid.uuid4().hex[:6]}"


@pytest.mark.parametrize(
    ("sig", "extra_signals"),
    [(SIGINT, 0), (SIGTERM, 0), (SIGINT, 2)],
    ids=["sigint", "sigterm", "sigint-then-two-more-during-cleanup"],
)
def test_signal_mid_scenario_leaves_nothing(
    sig, extra_signals, run_name, lab_images, lab_settings, tmp_path
):
    volumes_before = dangling_volumes()
    lab = start_pull_lab(
        "run",
        "node-no-ca",
        "secret-kubectl",
        "--report-dir",
        str(tmp_path / "report"),
        env=run_env(run_name, lab_settings.cache_dir, tmp_path / "tmp"),
    )
    lab.wait_for_line(lambda ln: "move the registry CA away" in ln, timeout=300)  # node changed
    lab.signal(sig)
    for _ in range(extra_signals):
        time.sleep(0.3)  # land the extra signals while cleanup is under way
        lab.signal(signal.SIGINT)
    code = lab.finish()
    assert code != 0
    assert leftovers(run_name, lab_settings.cache_dir) == [], lab.text[-2000:]
    assert key_files(tmp_path / "tmp") == []
    assert dangling_volumes() <= volumes_before


def test_sigterm_while_the_cluster_is_created(run_name, lab_images, lab_settings, tmp_path):
    lab = start_pull_lab(
        "run",
        "registry-catalog",
        "--report-dir",
        str(tmp_path / "report"),
        env=run_env(run_name, lab_settings.cache_dir, tmp_path / "tmp"),
    )
    wait_for_container(f"{run_name}-control-plane")
    lab.signal(SIGTERM)
    assert lab.finish() != 0
    assert leftovers(run_name, lab_settings.cache_dir) == [], lab.text[-2000:]


def test_sigint_while_up_boots_the_node_and_starts_registries(
    run_name, lab_images, lab_settings, tmp_path
):
    """`up` starts its registries while the node boots: a Ctrl-C then waits for that thread,
    so no registry container can appear after the clean-up."""
    lab = start_pull_lab("up", env=run_env(run_name, lab_settings.cache_dir, tmp_path / "tmp"))
    wait_for_container(f"{run_name}-registry")
    wait_for_container(f"{run_name}-control-plane")
    lab.signal(SIGINT)
    assert lab.finish() != 0
    assert leftovers(run_name, lab_settings.cache_dir) == [], lab.text[-2000:]


def test_sigint_while_building_leaves_no_trusted_cache_entry(lab_images, tmp_path):
    cache = tmp_path / "cache"
    lab = start_pull_lab("build", env={"PULL_LAB_CACHE_DIR": str(cache)})
    lab.wait_for_line(lambda ln: "go-kind: building" in ln, timeout=60)
    lab.signal(SIGINT)
    code = lab.finish(timeout=120)
    assert code == 130, lab.text
    assert "pull-lab: interrupted" in lab.text
    assert not (cache / "go-kind").exists() or list((cache / "go-kind").iterdir()) == []


def test_down_clears_a_killed_run_and_spares_other_containers(
    run_name, lab_images, lab_settings, tmp_path
):
    bystander = f"bystander-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        ["docker", "run", "-d", "--name", bystander, lab_images.workload_image],
        capture_output=True,
        check=True,
    )
    try:
        lab = start_pull_lab(
            "run",
            "registry-catalog",
            "--report-dir",
            str(tmp_path / "report"),
            env=run_env(run_name, lab_settings.cache_dir, tmp_path / "tmp"),
        )
        # Mid-scenario: the cluster and the registry exist.
        lab.wait_for_line(lambda ln: "list the registry's repositories" in ln, timeout=300)
        os.killpg(lab.proc.pid, signal.SIGKILL)
        lab.finish()
        assert leftovers(run_name, lab_settings.cache_dir), "a killed run leaves its resources"

        down = subprocess.run(
            [sys.executable, "-m", "lab.cli", "down", "--name", run_name],
            env={**os.environ, "PULL_LAB_CACHE_DIR": str(lab_settings.cache_dir)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert down.returncode == 0, down.stderr
        assert leftovers(run_name, lab_settings.cache_dir) == []
        alive = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Running}}", bystander],
            capture_output=True,
            text=True,
        )
        assert alive.stdout.strip() == "true"
    finally:
        subprocess.run(["docker", "rm", "-f", bystander], capture_output=True, check=False)
