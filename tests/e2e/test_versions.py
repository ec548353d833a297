"""The version-sensitive scenarios on the oldest supported Kubernetes and the default (newest)
one, through `pull-lab run --kubernetes OLDEST,NEWEST`: each version on its own real cluster,
then one matrix report whose "what changes if you upgrade" names exactly what the kubelet
changed. Both nodes run the same containerd 2.3.4, so a difference is the kubelet's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from xml.etree import ElementTree as ET

import pytest

from lab.versions import load_versions

pytestmark = pytest.mark.e2e

# What changed between 1.34 and 1.35 (KubeletEnsureSecretPulledImages, the event wording),
# and one scenario whose texts are containerd's only: it must not show up as a change.
SENSITIVE = ("cached-image-no-creds", "node-image-cached")
UNCHANGED = "wrong-password"


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory, lab_images):
    versions = load_versions()
    oldest, newest = versions.supported[0], versions.default_minor
    report_dir = tmp_path_factory.mktemp("matrix")
    name = f"pull-lab-v{uuid.uuid4().hex[:4]}"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "lab.cli", "run", *SENSITIVE, UNCHANGED),
            *("--kubernetes", f"{oldest},{newest}", "--report-dir", str(report_dir)),
            *("--name", name),
        ],
        env={**os.environ, "PULL_LAB_CLUSTER_NAME": ""},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    patches = [dict(versions.kubernetes_minors)[m] for m in (oldest, newest)]
    return proc, report_dir, patches, name


def test_each_version_ran_on_its_own_cluster_and_passed(matrix_run):
    proc, report_dir, patches, name = matrix_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((report_dir / "matrix.json").read_text())
    assert doc["schema"] == "pull-lab-matrix/1"
    assert [v["kubernetes"] for v in doc["versions"]] == patches
    assert {v["runtime"] for v in doc["versions"]} == {"containerd://2.3.4"}
    for row in doc["scenarios"]:
        assert {cell["outcome"] for cell in row["cells"].values()} == {"passed"}, row
        assert sorted(row["cells"]) == patches
    for patch in patches:
        assert (report_dir / patch / "report.json").is_file()
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name={name}-k", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert left.strip() == "", f"clusters left behind: {left}"


def test_the_upgrade_names_what_the_kubelet_changed_and_nothing_else(matrix_run):
    _, report_dir, patches, _ = matrix_run
    doc = json.loads((report_dir / "matrix.json").read_text())
    (upgrade,) = [u for u in doc["upgrades"] if (u["from"], u["to"]) == tuple(patches)]
    changed = {c["scenario"]: c for c in upgrade["changes"]}
    assert set(changed) == set(SENSITIVE), changed
    cached = changed["cached-image-no-creds"]
    assert any("ErrImagePull" in line for line in cached["added"]), cached
    present = changed["node-image-cached"]
    assert any("and can be accessed by the pod" in line for line in present["added"]), present
    # 1.35 also reworded the container events: "Created container: <name>" -> "Container created"
    assert "event Normal Created: Created container: nginx" in present["removed"], present
    assert "event Normal Created: Container created" in present["added"], present
    assert "event Normal Started: Container started" in present["added"], present
    md = (report_dir / "matrix.md").read_text()
    assert md.index("cached-image-no-creds") < md.index("| scenario |"), "changes come first"


def test_junit_has_one_suite_per_version(matrix_run):
    _, report_dir, patches, _ = matrix_run
    root = ET.parse(report_dir / "junit-matrix.xml").getroot()
    suites = root.findall("testsuite") if root.tag == "testsuites" else [root]
    assert len(suites) == len(patches)
    for suite in suites:
        assert int(suite.get("tests", "0")) == len(SENSITIVE) + 1
        assert int(suite.get("failures", "0")) == 0
