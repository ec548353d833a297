"""The version matrix reads per-version reports, normalizes what is particular to one run, names
what changes between versions, and renders Markdown, HTML, JSON and JUnit.

The reports under data/matrix/ are real runs on Kubernetes 1.34 to 1.37, trimmed (README.md
there); every normalization rule is checked against a line from them or from the full reports
they were cut from."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from lab.catalog import BY_ID
from lab.credentials import new_password
from lab.errors import LabError
from lab.matrix import (
    NOT_RUN,
    Matrix,
    Row,
    compare,
    group_changes,
    load_version_reports,
    message_lines,
    normalize,
    registry_hosts,
    version_key,
)
from lab.matrix_render import (
    SCHEMA,
    _md_code,
    matrix_dict,
    render_html,
    render_json,
    render_junit_matrix,
    render_markdown,
    write_matrix,
)

DATA = Path(__file__).parent / "data" / "matrix"
V134, V135, V136, V137 = "v1.34.4", "v1.35.4", "v1.36.3", "v1.37.2"
VERSIONS = (V134, V135, V136, V137)
KEPT = [
    "registry-catalog",
    "node-no-ca",
    "secret-kubectl",
    "mtls-no-client-cert",
    "registry-unreachable",
    "cert-name-mismatch",
    "cached-image-no-creds",
]


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    # Given out of order on purpose: the columns must come out oldest first.
    return load_version_reports({v: DATA / v for v in (V137, V134, V136, V135)})


def row(matrix: Matrix, sid: str) -> Row:
    return next(r for r in matrix.rows if r.id == sid)


def observed(version: str, sid: str) -> list[str]:
    doc = json.loads((DATA / version / "report.json").read_text())
    return next(s["observed"] for s in doc["scenarios"] if s["id"] == sid)


def copy_report(tmp_path: Path, version: str) -> Path:
    target = tmp_path / version
    shutil.copytree(DATA / version, target)
    return target


def edit_report(report_dir: Path, edit) -> None:
    path = report_dir / "report.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


# ---- loading ------------------------------------------------------------------------------------
def test_columns_come_oldest_first_and_rows_in_catalogue_order(matrix):
    assert matrix.labels == VERSIONS
    assert [r.id for r in matrix.rows] == KEPT
    catalogue = list(BY_ID)
    assert sorted(KEPT, key=catalogue.index) == KEPT


def test_each_version_keeps_its_meta_and_says_the_runtime_was_not_recorded(matrix):
    first = matrix.versions[0]
    assert (first.label, first.kubernetes, first.images) == (V134, "v1.34.4", "offline")
    assert first.started == "2026-11-29 23:46:21 UTC"
    assert first.runtime == ""  # these reports predate a runtime field in the meta


def test_a_cell_holds_outcome_seconds_reason_and_the_node_messages(matrix):
    cell = row(matrix, "node-no-ca").cells[V134]
    assert (cell.outcome, cell.seconds) == ("failed", 3.22)
    assert cell.reason.startswith("AssertionError: failed to pull and unpack image")
    assert cell.messages == (observed(V134, "node-no-ca")[0],)
    assert row(matrix, "secret-kubectl").cells[V134].reason == ""


def test_the_runtime_is_read_when_the_report_records_it(tmp_path):
    report = copy_report(tmp_path, V137)
    edit_report(report, lambda doc: doc["meta"].update(runtime="containerd://2.3.4"))
    assert load_version_reports({V137: report}).versions[0].runtime == "containerd://2.3.4"


def test_a_minor_label_names_the_patch_the_report_recorded():
    assert load_version_reports({"1.34": DATA / V134}).labels == ("1.34",)


def test_a_label_that_names_another_version_is_refused():
    with pytest.raises(LabError, match=r"Kubernetes v1\.34\.4, not v1\.35\.4"):
        load_version_reports({V135: DATA / V134})


def test_a_directory_without_a_report_is_refused(tmp_path):
    with pytest.raises(LabError, match=r"no report\.json in"):
        load_version_reports({V134: tmp_path})


def test_a_report_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(LabError, match="cannot read"):
        load_version_reports({V134: tmp_path})


def test_no_versions_at_all_is_refused():
    with pytest.raises(LabError, match="no version reports"):
        load_version_reports({})


def test_versions_sort_by_number_and_non_versions_last():
    labels = ["legacy", "v1.10.0", "1.9", "v1.9.3"]
    assert sorted(labels, key=version_key) == ["1.9", "v1.9.3", "v1.10.0", "legacy"]


def test_a_scenario_one_version_did_not_run_is_not_run_there_and_a_change(tmp_path):
    older = copy_report(tmp_path, V134)
    edit_report(
        older,
        lambda doc: doc.update(
            scenarios=[s for s in doc["scenarios"] if s["id"] != "registry-catalog"]
        ),
    )
    m = load_version_reports({V134: older, V135: DATA / V135})
    assert row(m, "registry-catalog").outcome(V134) == NOT_RUN
    change = next(c for c in m.changes(V134, V135) if c.scenario == "registry-catalog")
    assert (change.outcome_before, change.outcome_after) == (NOT_RUN, "passed")


# ---- which lines are the node's words -----------------------------------------------------------
def test_message_lines_keep_statuses_events_and_phases_and_drop_the_lab_narration():
    lines = observed(V134, "cached-image-no-creds")
    assert lines[3].startswith("no Pulling event for no-secret")
    assert lines[4] == "node's kubelet v1.34: cached images are not re-verified"
    assert lines[6].startswith("doctor: no-credentials:")
    assert message_lines(lines) == (lines[0], lines[1], lines[2], lines[5])


def test_message_lines_keep_an_http_answer():
    lines = observed(V134, "registry-catalog")
    assert message_lines(lines) == (lines[2],)
    assert lines[2].startswith("without -u: HTTP 401 ")


# ---- normalization ------------------------------------------------------------------------------
def test_a_pull_event_keeps_its_words_and_loses_host_port_tag_and_durations():
    line = observed(V135, "secret-kubectl")[3]
    assert normalize(line) == (
        'event Normal Pulled: Successfully pulled image "<host1>:<port>/lab/busybox:<tag>" in '
        "<duration> (<duration> including waiting). Image size: 1678079 bytes."
    )
    assert normalize(observed(V136, "secret-kubectl")[3]) == normalize(line)


def test_an_ip_and_its_port_become_placeholders():
    line = observed(V134, "registry-unreachable")[0]
    assert "dial tcp 172.31.0.246:5999" in line
    assert normalize(line).endswith(
        'failed to do request: Head "https://<host1>:<port>/v2/lab/busybox/manifests/1.0": '
        "dial tcp <ip>:<port>: connect: connection refused"
    )


def test_two_hosts_in_one_message_stay_two():
    line = observed(V134, "cert-name-mismatch")[0]
    assert normalize(line).endswith(
        "x509: certificate is valid for <host2>, localhost, not <host1>"
    )


def test_go_http_clients_timing_prefix_is_not_a_difference():
    with_prefix = observed(V136, "mtls-no-client-cert")[0]
    without = observed(V135, "mtls-no-client-cert")[0]
    assert "readLoopPeekFailLocked: remote error: tls: bad certificate" in with_prefix
    assert "readLoopPeekFailLocked" not in without
    assert normalize(with_prefix) == normalize(without)


def test_uids_namespaces_and_timestamps_become_placeholders():
    # Lines from the full 1.34 spike report (node-creds-restored, secret-other-namespace) and
    # an event's time as report.json records it.
    assert (
        normalize("same pod uid 6f992f1e-ac73-40f1-99c1-263da42095fb, restartCount 0")
        == "same pod uid <uid>, restartCount 0"
    )
    assert (
        normalize("secret registry-1 in lab-5b1c295b, lab-7f940793-other, not in lab-7f940793")
        == "secret registry-1 in <namespace>, <namespace>-other, not in <namespace>"
    )
    assert normalize("first 2026-11-29T23:46:58+00:00 last") == "first <time> last"


def test_a_standing_registry_without_a_random_part_is_found_by_its_image_references():
    # `<cluster>-registry` (lab/session.py's registry_specs) has nothing random in its name:
    # a run under another cluster name must still compare equal.
    lines = [
        'nginx: ErrImagePull: failed to pull and unpack image "pull-lab-registry:5000/lab/x:1"',
        "doctor: no-credentials: no pull secret for pull-lab-registry",
    ]
    hosts = registry_hosts(lines)
    assert hosts == {"pull-lab-registry"}
    assert normalize(lines[1], hosts) == "doctor: no-credentials: no pull secret for <host1>"
    other = lines[0].replace("pull-lab-registry", "pull-lab-t1234abcd-registry")
    assert normalize(other, registry_hosts([other])) == normalize(lines[0], hosts)


def test_what_is_the_same_in_every_run_is_left_alone():
    line = observed(V134, "registry-catalog")[2]
    assert normalize(line) == line
    assert normalize("pod nginx-registry Running (nginx)") == "pod nginx-registry Running (nginx)"
    assert "lab/nginx:1.7.9" in normalize(observed(V134, "node-no-ca")[0])


# ---- what changes -------------------------------------------------------------------------------
def test_a_cell_that_differs_only_by_host_and_tag_is_no_change(matrix):
    secret_kubectl = row(matrix, "secret-kubectl")
    assert secret_kubectl.cells[V135].messages != secret_kubectl.cells[V136].messages
    assert compare(secret_kubectl, V135, V136) is None


def test_cached_image_no_creds_changes_from_134_to_135(matrix):
    change = compare(row(matrix, "cached-image-no-creds"), V134, V135)
    assert change is not None
    assert not change.outcome_changed  # the scenario expects each version's behaviour
    assert change.removed == (
        "pod no-secret Running (app)",
        'event Normal Pulled: Container image "<host1>:<port>/lab/busybox:<tag>" '
        "already present on machine",
    )
    assert len(change.added) == 1
    assert change.added[0].startswith("app: ErrImagePull: failed to pull and unpack image")


def test_the_kubelets_new_event_wording_is_a_change(matrix):
    change = compare(row(matrix, "secret-kubectl"), V134, V135)
    assert change is not None
    assert change.removed == (
        "event Normal Created: Created container: nginx",
        "event Normal Started: Started container nginx",
    )
    assert change.added == (
        "event Normal Created: Container created",
        "event Normal Started: Container started",
    )


def test_the_real_reports_change_only_at_135(matrix):
    assert [c.scenario for c in matrix.changes(V134, V135)] == [
        "secret-kubectl",
        "cached-image-no-creds",
    ]
    assert [c.scenario for c in matrix.changes(V134, V137)] == [
        "secret-kubectl",
        "cached-image-no-creds",
    ]
    assert matrix.changes(V135, V136) == ()
    assert matrix.changes(V136, V137) == ()
    assert matrix.changed_cells() == {
        ("secret-kubectl", V135),
        ("cached-image-no-creds", V135),
    }


def test_an_outcome_change_counts_even_with_the_same_messages(matrix):
    base = row(matrix, "registry-catalog")
    failed = replace(base.cells[V135], result=replace(base.cells[V135].result, outcome="failed"))
    change = compare(replace(base, cells={**base.cells, V135: failed}), V134, V135)
    assert change is not None
    assert (change.outcome_before, change.outcome_after) == ("passed", "failed")
    assert (change.removed, change.added) == ((), ())


def test_the_same_lines_in_another_order_are_no_change(matrix):
    base = row(matrix, "cached-image-no-creds")
    cell = base.cells[V134]
    flipped = replace(cell, normalized=tuple(reversed(cell.normalized)))
    assert compare(replace(base, cells={V134: cell, V135: flipped}), V134, V135) is None


def test_upgrades_read_oldest_to_newest_then_each_step(matrix):
    assert matrix.upgrades() == ((V134, V137), (V134, V135), (V135, V136), (V136, V137))
    two = replace(matrix, versions=matrix.versions[:2])
    assert two.upgrades() == ((V134, V135),)
    assert replace(matrix, versions=matrix.versions[:1]).upgrades() == ()


def test_the_same_change_in_several_scenarios_is_grouped_and_outcome_changes_come_first(matrix):
    wording = compare(row(matrix, "secret-kubectl"), V134, V135)
    assert wording is not None
    twin = replace(wording, scenario="secret-yaml")
    flipped = replace(wording, scenario="node-no-ca", outcome_after="failed")
    groups = group_changes([wording, flipped, twin])
    assert [[c.scenario for c in g] for g in groups] == [
        ["node-no-ca"],
        ["secret-kubectl", "secret-yaml"],
    ]


# ---- Markdown -----------------------------------------------------------------------------------
def test_markdown_puts_the_changes_before_the_full_table(matrix):
    text = render_markdown(matrix)
    lines = text.splitlines()
    assert lines[0] == "# registry-pull-lab version matrix"
    assert text.index("## What changes if you upgrade") < text.index("## Every scenario")
    assert f"### from {V134} to {V137}: 2 scenarios differ" in lines
    assert f"### from {V135} to {V136}: 0 scenarios differ" in lines
    assert "- pod no-secret Running (app)" in lines
    header = "| scenario | " + " | ".join(VERSIONS) + " |"
    table = lines[lines.index(header) + 2 :]
    assert len(table) == len(KEPT)
    assert all(r.count(" | ") == len(VERSIONS) for r in table)


def test_markdown_cells_show_placeholders_as_code_and_flag_a_changed_cell(matrix):
    text = render_markdown(matrix)
    cached = next(line for line in text.splitlines() if "a id='cached-image-no-creds'" in line)
    assert "`pod no-secret Running (app)`" in cached
    assert "(changed)" in cached
    outside_code = cached.split("`")[::2]
    assert not any("<host" in part for part in outside_code)


def test_a_failure_reason_cannot_break_the_markdown_table(matrix):
    base = row(matrix, "registry-catalog")
    failed = replace(base.cells[V134].result, outcome="failed", error="assert a|b <b>\nmore")
    rows = (replace(base, cells={V134: replace(base.cells[V134], result=failed)}),)
    text = render_markdown(replace(matrix, versions=matrix.versions[:1], rows=rows))
    line = next(x for x in text.splitlines() if "a id='registry-catalog'" in x)
    assert "<br>assert a\\|b &lt;b><br>" in line
    assert "more" not in line  # the first line only; the version's report has the rest


def test_a_code_span_survives_backticks_and_pipes():
    assert _md_code("a|b") == "`a\\|b`"
    assert _md_code("no `auths` object") == "``no `auths` object``"
    assert _md_code("`x`") == "`` `x` ``"


# ---- HTML ---------------------------------------------------------------------------------------
class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.starts: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))


def test_html_is_self_contained_with_the_changes_highlighted_first(matrix):
    page = render_html(matrix)
    assert "default-src 'none'" in page and "<script" not in page
    assert page.index("class='changes'") < page.index("id='matrix'")
    parser = Tags()
    parser.feed(page)
    rows = [a["id"] for t, a in parser.starts if t == "tr" and a.get("class") == "scenario"]
    assert rows == [f"row-{sid}" for sid in KEPT]
    changed = [a for t, a in parser.starts if t == "td" and a.get("class") == "cell changed"]
    assert len(changed) == 2


def test_html_escapes_placeholders_quotes_and_markup(matrix):
    page = render_html(matrix)
    assert "<host1>" not in page and "&lt;host1&gt;:&lt;port&gt;" in page
    assert "&quot;UNAUTHORIZED&quot;" in page  # the registry's JSON answer
    base = row(matrix, "registry-catalog")
    result = replace(base.cells[V134].result, observed=("pod <script>alert(1)</script> Running",))
    evil = replace(base, cells={V134: replace(base.cells[V134], result=result)})
    page = render_html(replace(matrix, rows=(evil,)))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# ---- JSON ---------------------------------------------------------------------------------------
def test_json_follows_the_documented_schema(matrix):
    doc = json.loads(render_json(matrix))
    assert doc["schema"] == SCHEMA == "pull-lab-matrix/1"
    assert [v["label"] for v in doc["versions"]] == list(VERSIONS)
    assert doc["versions"][0]["summary"] == {"passed": 6, "failed": 1, "error": 0, "skipped": 0}
    assert [s["id"] for s in doc["scenarios"]] == KEPT
    cell = doc["scenarios"][KEPT.index("node-no-ca")]["cells"][V134]
    assert set(cell) == {"outcome", "seconds", "reason", "messages", "normalized", "observed"}
    assert [(u["from"], u["to"]) for u in doc["upgrades"]] == list(matrix.upgrades())
    first = doc["upgrades"][0]["changes"]
    assert [c["scenario"] for c in first] == ["secret-kubectl", "cached-image-no-creds"]
    assert first[1]["outcome"] == {"from": "passed", "to": "passed"}
    assert doc == matrix_dict(matrix)


# ---- JUnit --------------------------------------------------------------------------------------
def test_junit_has_one_suite_per_version_and_one_case_per_scenario(matrix):
    root = ET.fromstring(render_junit_matrix(matrix))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"registry-pull-lab {v}" for v in VERSIONS]
    for suite in suites:
        cases = suite.findall("testcase")
        assert [c.get("name") for c in cases] == KEPT
        assert len({c.get("classname") for c in cases}) == 1
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["runtime"] == "not recorded"
        failing = [c.get("name") for c in cases if c.find("failure") is not None]
        assert failing == ["node-no-ca"]
    assert root.get("tests") == str(len(VERSIONS) * len(KEPT))
    assert root.get("failures") == str(len(VERSIONS))


def test_junit_marks_a_skipped_scenario_skipped(matrix):
    base = row(matrix, "registry-catalog")
    skipped = replace(base.cells[V134].result, outcome="skipped", error="needs node access")
    rows = (replace(base, cells={V134: replace(base.cells[V134], result=skipped)}),)
    root = ET.fromstring(
        render_junit_matrix(replace(matrix, versions=matrix.versions[:1], rows=rows))
    )
    case = root.find("testsuite/testcase")
    assert case is not None and case.find("skipped") is not None
    assert root.get("skipped") == "1"


# ---- writing ------------------------------------------------------------------------------------
def test_write_matrix_writes_four_files_linking_each_versions_report(matrix, tmp_path):
    out = tmp_path / "out"
    paths = write_matrix(matrix, out)
    assert [p.name for p in paths] == [
        "matrix.md",
        "matrix.html",
        "matrix.json",
        "junit-matrix.xml",
    ]
    text = (out / "matrix.md").read_text()
    link = text.split(f"[{V134}](", 1)[1].split(")", 1)[0]
    assert (out / link).resolve() == (DATA / V134 / "report.md").resolve()


def test_write_matrix_masks_a_password_that_reached_a_result(matrix, tmp_path):
    password = new_password("foo")
    base = row(matrix, "registry-catalog")
    leaked = replace(base.cells[V134].result, observed=(f"HTTP 401 for foo:{password}",))
    cell = replace(base.cells[V134], result=leaked, messages=leaked.observed)
    write_matrix(replace(matrix, rows=(replace(base, cells={V134: cell}),)), tmp_path)
    for name in ("matrix.md", "matrix.html", "matrix.json", "junit-matrix.xml"):
        assert password not in (tmp_path / name).read_text()
