"""Outcomes in the report match what happened: a teardown that fails after a passing call (node
files not restored) is an `error`, a setup failure too, a failing call stays `failed`.

The inner tests are named like scenarios, so the lab's reporter maps them to catalogue IDs.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

LEAK = "node changes not undone: /etc/containerd/certs.d/reg:5000/ca.crt still missing"
SECRET = "plabpw-outcomes-0123456789abcdef"

SCENARIOS = f'''
import pytest

from fixtures.reporting import record_result
from lab.masking import MASKER
from lab.results import ScenarioResult

MASKER.add_password({SECRET!r}, "foo")  # registered where it is made, as the lab does


@pytest.fixture
def node():
    yield "node"
    pytest.fail({LEAK!r}, pytrace=False)


@pytest.fixture
def broken_setup():
    raise RuntimeError("registry did not start")


def recorded(request, sid):
    """What a scenario records during its call: it passed, as far as the call knows."""
    record_result(request.config, ScenarioResult.from_dict({{
        "id": sid, "title": sid, "tutorial": "t", "node_level": True, "outcome": "passed",
        "kubernetes": "v1.34.4", "seconds": 1.0, "expected": [], "observed": [],
        "differences": [], "timings": {{}}, "events": [], "transcript": [],
    }}))


def test_node_no_ca(node, request):
    recorded(request, "node-no-ca")


def test_wrong_password(request):
    recorded(request, "wrong-password")
    assert "401" == "200", "secret holds {SECRET}"


def test_registry_catalog(request):
    recorded(request, "registry-catalog")


def test_tag_not_found(broken_setup):
    pass


def test_secret_missing():
    pytest.skip("no cluster for this one")
'''

EXPECTED = {
    "registry-catalog": "passed",
    "node-no-ca": "error",
    "secret-missing": "skipped",
    "wrong-password": "failed",
    "tag-not-found": "error",
}


@pytest.fixture
def lab_report(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the inner scenarios once through the reporter; the report directory it wrote."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(test_scenarios=SCENARIOS)
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        "--lab-report", str(report), "-p", "no:cacheprovider", "-p", "no:randomly"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-2000:]
    result.assert_outcomes(passed=2, failed=1, errors=2, skipped=1)
    return report


def test_report_json_says_error_failed_skipped_passed(lab_report):
    doc = json.loads((lab_report / "report.json").read_text())
    assert {s["id"]: s["outcome"] for s in doc["scenarios"]} == EXPECTED
    by_id = {s["id"]: s for s in doc["scenarios"]}
    assert LEAK in by_id["node-no-ca"]["error"], "the teardown's whole message"
    assert "registry did not start" in by_id["tag-not-found"]["error"]
    assert "401" in by_id["wrong-password"]["error"]
    assert by_id["secret-missing"]["error"] == "no cluster for this one"
    assert "error" not in by_id["registry-catalog"]


def test_markdown_and_html_show_the_error_with_its_text(lab_report):
    md = (lab_report / "report.md").read_text()
    assert "| [node-no-ca](#node-no-ca) | error |" in md
    assert "— **error**" in md and LEAK in md
    assert "**1 passed, 1 failed, 2 errors, 1 skipped.**" in md
    page = (lab_report / "report.html").read_text()
    assert "<span class='error'>error</span>" in page
    assert "/etc/containerd/certs.d/reg:5000/ca.crt still missing" in page


def test_junit_has_an_error_for_teardown_and_a_failure_for_the_call(lab_report):
    suite = ET.parse(lab_report / "junit.xml").getroot()
    assert (suite.get("errors"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    error = cases["node-no-ca"].find("error")
    assert error is not None and LEAK in (error.get("message") or "")
    assert cases["node-no-ca"].find("failure") is None
    assert cases["wrong-password"].find("failure") is not None
    assert cases["registry-catalog"].find("error") is None


def test_errors_are_masked_in_every_file(lab_report):
    for path in lab_report.iterdir():
        assert SECRET not in path.read_text(), path.name
    assert "******" in (lab_report / "report.json").read_text()
