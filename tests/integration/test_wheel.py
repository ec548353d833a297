"""The built wheel behaves outside the checkout: installed into a fresh venv, `pull-lab` knows
its version, lists the catalogue, finds the scenarios in site-packages (their conftest.py too)
and replays one, with every file the lab reads at run time inside the wheel.

The wheel is built from a copy of the files git would commit, so nothing left in the checkout
(a stale build/ directory, an untracked file) can make it pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.catalog import CATALOG

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("lab", "fixtures", "scenarios")
# A config pytest would find above site-packages when a project keeps its venv inside it: a
# lab run must not pick it up (pull-lab run passes its own with -c).
HOSTILE_PYTEST_INI = "[pytest]\naddopts = --option-of-another-project\n"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    site_packages: Path
    outside: Path  # a working directory outside the checkout, below the hostile pytest.ini

    def run(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
            **(env or {}),
        }
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(
            args, cwd=self.outside, env=env, capture_output=True, text=True, timeout=timeout
        )


def committed_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in listed.split("\0") if f and (REPO / f).is_file()]


def checked(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (
        f"{proc.args} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    )
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    if shutil.which("git") is None:
        pytest.fail("git is needed to copy the committed files", pytrace=False)
    root = tmp_path_factory.mktemp("wheel")
    (root / "pytest.ini").write_text(HOSTILE_PYTEST_INI)
    source = root / "source"
    for name in committed_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    dist = root / "dist"
    checked(
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source],
            capture_output=True,
            text=True,
            timeout=600,
        )
    )
    [wheel] = dist.glob("registry_pull_lab-*.whl")
    venv = root / "venv"
    checked(subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True))
    checked(
        subprocess.run(
            [venv / "bin" / "python", "-m", "pip", "install", "-q", wheel],
            capture_output=True,
            text=True,
            timeout=900,
        )
    )
    [site_packages] = (venv / "lib").glob("python3*/site-packages")
    outside = root / "elsewhere"
    outside.mkdir()
    yield Installed(wheel, venv, site_packages, outside)


def test_every_file_the_packages_hold_is_in_the_wheel(installed):
    """versions.toml, the pause module's Go source, node config files, pod manifests, the run's
    pytest.ini: whatever lives in the packages' directories, wherever it moves."""
    expected = {
        f for f in committed_files() if f.split("/", 1)[0] in PACKAGES and "__pycache__" not in f
    }
    in_wheel = set(zipfile.ZipFile(installed.wheel).namelist())
    assert sorted(expected - in_wheel) == []
    tops = {n.split("/", 1)[0] for n in in_wheel}
    assert {t for t in tops if not t.endswith(".dist-info")} == set(PACKAGES), (
        "no tests, bench or build leftovers in the wheel"
    )


def test_installed_metadata_names_its_license_and_pytest(installed):
    [dist_info] = installed.site_packages.glob("registry_pull_lab-*.dist-info")
    meta = (dist_info / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in meta
    assert "Classifier: Framework :: Pytest" in meta
    assert (dist_info / "licenses" / "LICENSE").is_file()


def test_the_installed_command_knows_its_version_and_lists_the_catalogue(installed):
    from importlib.metadata import version

    proc = checked(installed.run("pull-lab", "--version"))
    assert proc.stdout.strip() == f"pull-lab {version('registry-pull-lab')}"
    listed = checked(installed.run("pull-lab", "scenarios")).stdout.splitlines()
    assert [line.split()[0] for line in listed] == [e.id for e in CATALOG]


def test_the_installed_run_collects_every_scenario_from_site_packages(installed):
    """What `pull-lab run` hands pytest, collected only: the scenarios and their conftest.py
    load from site-packages, and the pytest.ini above the venv is not read."""
    script = """
import sys, pytest
from lab.catalog import CATALOG
from lab.cli import scenario_args

class Probe:
    def pytest_collection_finish(self, session):
        plugins = session.config.pluginmanager.get_plugins()
        files = [getattr(p, "__file__", "") or "" for p in plugins]
        print("conftest:", *[f for f in files if f.endswith("conftest.py")])
        print("collected:", *[item.path for item in session.items])

sys.exit(pytest.main([*scenario_args(CATALOG), "--collect-only", "-q", "-p", "no:cacheprovider"],
                     plugins=[Probe()]))
"""
    proc = checked(installed.run(str(installed.venv / "bin" / "python"), "-c", script))
    [conftests] = [ln.split()[1:] for ln in proc.stdout.splitlines() if ln.startswith("conftest:")]
    assert str(installed.site_packages / "scenarios" / "conftest.py") in conftests
    [collected] = [ln.split()[1:] for ln in proc.stdout.splitlines() if ln.startswith("collected:")]
    assert len(collected) == len(CATALOG)
    assert all(Path(p).parent == installed.site_packages / "scenarios" for p in collected)


@pytest.mark.e2e
def test_the_installed_command_replays_a_scenario_and_writes_the_report(installed, lab_images):
    """On the build cache the suite's own build filled (PULL_LAB_CACHE_DIR or
    ~/.cache/registry-pull-lab), on a cluster of its own (no PULL_LAB_CLUSTER_NAME)."""
    report = installed.outside / "report"
    proc = installed.run(
        "pull-lab",
        "run",
        "registry-catalog",
        "--report-dir",
        str(report),
        timeout=1800,
        env={"PULL_LAB_CLUSTER_NAME": ""},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr, (
        "an installed run is as quiet as a checkout's"
    )
    doc = json.loads((report / "report.json").read_text())
    assert [(s["id"], s["outcome"]) for s in doc["scenarios"]] == [("registry-catalog", "passed")]
    assert (report / "report.html").is_file() and (report / "report.md").is_file()
