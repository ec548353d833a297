"""The CI gate itself: in CI every kind of skip fails the run and is named; outside CI, nothing."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

UNIT_SKIP = """
import pytest

def test_runs():
    pass

def test_unit_skipped():
    pytest.skip("no frobnicator here")
"""

E2E_SKIP = """
import pytest

def test_runs():
    pass

@pytest.mark.e2e
def test_e2e_skipped():
    pytest.skip("Docker is not available")
"""

MODULE_SKIP = """
import pytest

pytest.skip("whole module needs a cluster", allow_module_level=True)

def test_never_collected():
    pass
"""

ALL_PASS = """
def test_runs():
    pass
"""


def run_gate(pytester: pytest.Pytester, **modules: str) -> pytest.RunResult:
    pytester.makepyfile(**modules)
    return pytester.runpytest("-p", "fixtures.ci_gate", "-p", "no:cacheprovider")


@pytest.fixture
def in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")


@pytest.fixture
def not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)


@pytest.mark.usefixtures("in_ci")
def test_in_ci_a_skipped_unit_test_fails_the_run_and_is_named(pytester):
    result = run_gate(pytester, test_unit=UNIT_SKIP)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["CI: 1 skipped; in CI a skip fails the run*", "CI: skipped *: no frobnicator here"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.usefixtures("in_ci")
def test_in_ci_a_skipped_e2e_test_fails_the_run_and_is_named(pytester):
    result = run_gate(pytester, test_e2e=E2E_SKIP)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["CI: skipped *test_e2e.py::test_e2e_skipped: Docker is not*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.usefixtures("in_ci")
def test_in_ci_a_collection_level_skip_fails_the_run_without_internal_error(pytester):
    result = run_gate(pytester, test_mod=MODULE_SKIP, test_other=ALL_PASS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["CI: skipped test_mod.py: whole module needs a cluster"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.usefixtures("in_ci")
def test_in_ci_a_run_of_nothing_but_a_module_skip_fails(pytester):
    result = run_gate(pytester, test_mod=MODULE_SKIP)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.usefixtures("in_ci")
def test_in_ci_a_run_without_skips_passes(pytester):
    result = run_gate(pytester, test_ok=ALL_PASS)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("CI: *")


@pytest.mark.usefixtures("in_ci")
def test_in_ci_an_expected_failure_is_not_a_skip(pytester):
    xfail = "import pytest\n\n@pytest.mark.xfail\ndef test_known_bug():\n    assert False\n"
    result = run_gate(pytester, test_xfail=xfail)
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.usefixtures("not_in_ci")
@pytest.mark.parametrize(
    "module", [UNIT_SKIP, E2E_SKIP, MODULE_SKIP], ids=["unit", "e2e", "module"]
)
def test_outside_ci_skips_pass(pytester, module):
    result = run_gate(pytester, test_skips=module, test_other=ALL_PASS)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("CI: *")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.usefixtures("in_ci")
@pytest.mark.parametrize("value", ["1", "yes", "TRUE"])
def test_ci_is_recognised_in_its_common_spellings(pytester, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    result = run_gate(pytester, test_unit=UNIT_SKIP)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_the_root_conftest_loads_the_gate_and_no_entry_point_does(request):
    assert request.config.pluginmanager.has_plugin("fixtures.ci_gate")
    from importlib.metadata import entry_points

    assert all("ci_gate" not in ep.value for ep in entry_points(group="pytest11"))
