"""The report renders every format from recorded results, masks secrets, writes atomically."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from xml.etree import ElementTree as ET

import pytest

from lab.errors import LabError
from lab.masking import MASKER
from lab.report import (
    ReportMeta,
    check_writable,
    render_html,
    render_markdown,
    timeline_svg,
    transcript_text,
    write_report,
)
from lab.results import PodEvent, ScenarioResult
from lab.transcript import TranscriptStep

META = ReportMeta("registry-pull-lab report", "v1.34.4", "offline", "2026-11-28 10:00:00 UTC", 42.0)


def result(sid: str, outcome: str = "passed", **extra) -> ScenarioResult:
    base = {
        "id": sid,
        "title": f"title of {sid}",
        "tutorial": "1: mv ca.crt{,.bak}",
        "node_level": False,
        "outcome": outcome,
        "kubernetes": "v1.34.4",
        "seconds": 3.5,
        "expected": ["container waits with ErrImagePull"],
        "observed": ["nginx: ErrImagePull: x509: certificate signed by unknown authority"],
        "differences": ["tutorial: docker said ... | today: containerd says ..."],
        "timings": {"nginx-registry: ErrImagePull": 1.2},
        "events": [
            {
                "pod": "p",
                "type": "Normal",
                "reason": "Pulling",
                "message": 'Pulling image "r:5000/a:1"',
                "count": 2,
                "source": "kubelet",
                "first": "2026-11-28T10:00:01+00:00",
                "last": "2026-11-28T10:00:15+00:00",
            },
            {
                "pod": "p",
                "type": "Warning",
                "reason": "Failed",
                "message": "Failed to pull image",
                "count": 2,
                "source": "kubelet",
                "first": "2026-11-28T10:00:02+00:00",
                "last": "2026-11-28T10:00:16+00:00",
            },
        ],
        "transcript": [
            {
                "title": "kubectl get pod p",
                "command": "kubectl get pod p",
                "output": "p 0/1 ErrImagePull",
                "at": 1.0,
                "seconds": 0.1,
                "kind": "command",
            }
        ],
    }
    base.update(extra)
    return ScenarioResult.from_dict(base)


def test_markdown_has_summary_table_and_a_section_per_scenario():
    text = render_markdown(
        [result("node-no-ca"), result("secret-yaml", "failed", error="boom")], META
    )
    assert "**1 passed, 1 failed, 0 errors, 0 skipped.**" in text
    assert "## node-no-ca" in text and "## secret-yaml" in text
    assert "$ kubectl get pod p" in text
    assert "**Tutorial vs today**" in text


def test_html_is_self_contained_with_a_timeline_per_scenario():
    page = render_html([result("node-no-ca"), result("secret-yaml")], META)
    assert page.count("<section class='scenario'") == 2
    assert page.count('<svg class="timeline"') == 2
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page), (
        "no external resources"
    )
    assert "<script" not in page


def test_timeline_marks_each_reason_with_its_count():
    svg = timeline_svg(result("x").events)
    assert ">Pulling<" in svg and ">Failed<" in svg and ">x2<" in svg
    assert timeline_svg([]) == '<p class="muted">no events recorded</p>'


def test_all_formats_are_written_and_parse(tmp_path):
    paths = write_report(tmp_path, [result("node-no-ca"), result("tag-not-found", "skipped")], META)
    assert sorted(p.name for p in paths) == ["junit.xml", "report.html", "report.json", "report.md"]
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [s["id"] for s in doc["scenarios"]] == ["node-no-ca", "tag-not-found"]
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("tests") == "2" and suite.get("skipped") == "1"
    assert not list(tmp_path.glob(".*")), "no temp files left"


def test_report_masks_secrets_it_was_handed(tmp_path):
    MASKER.add_password("hunter2-report", "foo")
    leaky = result("secret-kubectl", observed=["--docker-password=hunter2-report"])
    write_report(tmp_path, [leaky], META)
    for path in tmp_path.iterdir():
        assert "hunter2-report" not in path.read_text()


def test_unwritable_report_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LabError, match="cannot write the report to"):
        check_writable(blocker / "sub")


STEPS = (
    TranscriptStep("list pods", "kubectl get pod p", "p 0/1 ErrImagePull", 0.0, 0.0),
    TranscriptStep(
        "GET the catalogue",
        "GET https://reg:5000/v2/_catalog HTTP/1.1\nAuthorization: Basic ******",
        'HTTP/1.1 200 OK\n{"repositories":["lab/nginx"]}',
        0.0,
        0.0,
        kind="http",
    ),
    TranscriptStep(
        "docker config", "/root/.docker/config.json", '{"auths": {}}', 0.0, 0.0, kind="file"
    ),
    TranscriptStep(
        "the tutorial runs curl here",
        "",
        "curl --cacert ca.crt https://reg:5000/v2/_catalog\nline two",
        0.0,
        0.0,
        kind="note",
    ),
)


def test_transcript_shows_each_kind_of_step_in_its_own_form():
    lines = transcript_text(STEPS).splitlines()
    assert lines[:3] == ["# list pods", "$ kubectl get pod p", "p 0/1 ErrImagePull"], (
        "a step without kind is a command"
    )
    assert lines[3:8] == [
        "# GET the catalogue",
        "> GET https://reg:5000/v2/_catalog HTTP/1.1",
        "> Authorization: Basic ******",
        "< HTTP/1.1 200 OK",
        '< {"repositories":["lab/nginx"]}',
    ]
    assert lines[8:11] == [
        "# docker config",
        "--- /root/.docker/config.json (written by the lab) ---",
        '{"auths": {}}',
    ]
    assert lines[11:] == [
        "# note (not run): the tutorial runs curl here",
        "#   curl --cacert ca.crt https://reg:5000/v2/_catalog",
        "#   line two",
    ]
    assert not any(line.startswith("$ curl") for line in lines), "a note is never a command"


def test_html_labels_each_kind_of_step_and_sets_notes_apart():
    page = render_html([replace(result("registry-catalog"), transcript=STEPS)], META)
    for kind in ("command", "http", "file", "note"):
        assert f"<div class='step step-{kind}'>" in page
    assert "<span class='kind'>note, not run</span>" in page
    assert re.search(r"\.step-note pre\{[^}]*font-style:italic", page), "notes are in italics"
    assert "&gt; GET https://reg:5000/v2/_catalog" in page and "&lt; HTTP/1.1 200 OK" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)


def test_error_outcome_is_shown_and_counted_in_every_format(tmp_path):
    leak = "node state leaked out of the test: /etc/containerd/certs.d/reg:5000 remains"
    results = [
        result("node-no-ca", "error", error=leak),
        result("node-ca-no-creds", "failed", error="assert 'x509' in message"),
        result("registry-catalog"),
    ]
    write_report(tmp_path, results, META)
    md = (tmp_path / "report.md").read_text()
    assert "**1 passed, 1 failed, 1 error, 0 skipped.**" in md
    assert "| [node-no-ca](#node-no-ca) | error |" in md and leak in md
    page = (tmp_path / "report.html").read_text()
    assert "<span class='error'>error</span>" in page and leak in page
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [s["outcome"] for s in doc["scenarios"]] == ["error", "failed", "passed"]
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert (suite.get("errors"), suite.get("failures")) == ("1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    error = cases["node-no-ca"].find("error")
    assert error is not None and error.get("message") == leak
    assert cases["node-no-ca"].find("failure") is None
    assert cases["node-ca-no-creds"].find("failure") is not None
    assert cases["node-ca-no-creds"].find("error") is None


def test_error_text_is_masked_in_every_file(tmp_path):
    MASKER.add_password("hunter3-error", "foo")
    failing = result("wrong-password", "error", error="teardown saw --password hunter3-error")
    write_report(tmp_path, [failing], META)
    for path in tmp_path.iterdir():
        assert "hunter3-error" not in path.read_text(), path.name
    assert "<error" in (tmp_path / "junit.xml").read_text()


def test_result_round_trips_through_report_json(tmp_path):
    original = result("node-no-ca", "error", error="node files not restored")
    write_report(tmp_path, [original, result("registry-catalog")], META)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert ScenarioResult.from_dict(doc["scenarios"][0]) == original
    assert "error" not in doc["scenarios"][1], "a passing scenario has no error key"
    assert set(doc["scenarios"][1]) == {
        "id", "title", "tutorial", "node_level", "outcome", "kubernetes", "runtime", "seconds",
        "expected", "observed", "differences", "timings", "events", "transcript",
    }  # fmt: skip
    assert isinstance(original.events[0], PodEvent)


def test_placeholder_is_a_scenario_that_recorded_nothing():
    from lab.catalog import entry

    skipped = ScenarioResult.placeholder(entry("tag-not-found"), "skipped", "no registry")
    assert (skipped.id, skipped.outcome, skipped.error) == (
        "tag-not-found",
        "skipped",
        "no registry",
    )
    assert skipped.transcript == () and skipped.events == () and skipped.seconds == 0.0
