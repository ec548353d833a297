"""Installed next to another project, the lab's pytest plugin changes nothing in that project's
runs: the same outcomes, the same signal handlers, no file in the user's cache or home, no
fixture of its own pulled into a test, and options and fixture names that cannot clash.

The outside project below has its own `e2e` marker (the lab's lock once reacted to any `e2e`
test) and its own `scenario` marker, and runs in a fresh process each time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

LAB_PLUGINS = ("registry_pull_lab", "registry_pull_lab_reporting")

OUTSIDE_CONFTEST = """
import signal

import pytest

# Taken when this conftest loads, before any plugin's pytest_configure: a handler the lab's
# plugin installed at configure time would differ from these.
HANDLERS = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: this project's own end-to-end tests")
    config.addinivalue_line("markers", "scenario(name): this project's own scenarios")
"""

OUTSIDE_TESTS = """
import signal

import pytest

from conftest import HANDLERS


def lab_fixtures(request):
    return [n for n in request.fixturenames if n.startswith(("lab_", "_node"))]


@pytest.mark.e2e
def test_e2e_passes(request):
    assert lab_fixtures(request) == []


@pytest.mark.e2e
@pytest.mark.scenario("login")
def test_scenario_of_its_own(request):
    assert lab_fixtures(request) == []


@pytest.mark.e2e
def test_e2e_fails():
    assert 1 == 2


@pytest.mark.e2e
def test_e2e_skips():
    pytest.skip("not today")


def test_signal_handlers_are_the_ones_before_configure():
    assert signal.getsignal(signal.SIGTERM) == HANDLERS[signal.SIGTERM] == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) == HANDLERS[signal.SIGINT]


def test_prints_credential_shaped_text():
    print('{"password": "hunter22"} --password=hunter22')
    assert 0, "password: hunter22"
"""


@pytest.fixture
def outside(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """Another project, with a home and a lab cache dir that must stay empty."""
    for name in ("home", "cache"):
        (pytester.path / name).mkdir()
    monkeypatch.setenv("HOME", str(pytester.path / "home"))
    monkeypatch.setenv("PULL_LAB_CACHE_DIR", str(pytester.path / "cache"))
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    pytester.makeconftest(OUTSIDE_CONFTEST)
    pytester.makepyfile(test_outside=OUTSIDE_TESTS)
    return pytester


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def run(outside: pytest.Pytester, *args: str) -> pytest.RunResult:
    return outside.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args)


def test_another_projects_run_is_unchanged_with_the_lab_plugin_installed(outside):
    with_lab = run(outside)
    without_lab = run(outside, *(f"-p no:{name}" for name in LAB_PLUGINS))

    assert with_lab.parseoutcomes() == without_lab.parseoutcomes()
    with_lab.assert_outcomes(passed=3, failed=2, skipped=1)
    # Its signal handlers are untouched (checked inside a test), its credential-shaped
    # output is its own business: not masked.
    assert "hunter22" in with_lab.stdout.str()
    assert "PASSED test_outside.py::test_signal_handlers_are_the_ones_before_configure" in (
        with_lab.stdout.str()
    )


def test_the_plugin_writes_nothing_under_home_or_the_lab_cache(outside):
    result = run(outside)

    result.assert_outcomes(passed=3, failed=2, skipped=1)
    assert files_under(outside.path / "home") == []
    assert files_under(outside.path / "cache") == []


def test_the_plugin_loads_in_the_outside_project(outside):
    result = outside.runpytest_subprocess("-p", "no:cacheprovider", "--help")
    assert "registry-pull-lab:" in result.stdout.str(), "the plugin is installed and loaded"


def lab_options(help_text: str) -> list[str]:
    """The options listed in the lab's group of `pytest --help`."""
    lines = help_text.splitlines()
    start = lines.index("registry-pull-lab:")
    options = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break  # the next group
        options += re.findall(r"^\s{2}(--[\w-]+)", line)
    return options


def test_every_lab_option_starts_with_lab(outside):
    help_text = outside.runpytest_subprocess("-p", "no:cacheprovider", "--help").stdout.str()

    options = lab_options(help_text)

    assert "--lab-kubeconfig" in options and "--lab-report" in options
    assert [o for o in options if not o.startswith("--lab-")] == []


def test_every_lab_fixture_starts_with_lab_and_none_is_autouse(outside):
    result = outside.runpytest_subprocess("-p", "no:cacheprovider", "--fixtures", "-v")
    text = result.stdout.str()

    # `--fixtures -v` names each fixture with where it is defined.
    ours = re.findall(
        r"^(\w+)(?: \[\w+ scope\])? -- .*fixtures[/\\](?:plugin|reporting)\.py", text, re.M
    )

    assert "lab_cluster" in ours and "lab_node" in ours
    assert [name for name in ours if not name.startswith("lab_")] == []
