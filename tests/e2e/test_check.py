"""`pull-lab check` on a lab of two nodes configured unevenly, run as a user runs it (a
subprocess): the registry's CA is on the worker only, so exactly the control plane fails with
`unknown-ca` and the worker pulls; with the CA on both, every node pulls. Bad input is one line
and exit 2.

This module makes its own cluster (a control plane and one worker): the session's cluster has
one node. About 60 s on 2 cores, cluster creation included.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from lab.cluster import LabCluster
from lab.dockerconfig import dockerconfigjson
from lab.kube import api_client, create_namespace, delete_namespace
from lab.node import NodeChanges, NodeRegistryConfig
from lab.registry import LabRegistry
from lab.session import SEED_REPO, SEED_TAG, LabSession
from lab.settings import LABEL, Settings, new_run_id

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECRET = "registry-1"


@dataclass
class TwoNodeLab:
    settings: Settings
    cluster: LabCluster
    registry: LabRegistry
    ca_pem: bytes
    core: client.CoreV1Api
    namespace: str

    @property
    def image(self) -> str:
        return f"{self.registry.spec.host}/{SEED_REPO}:{SEED_TAG}"

    @property
    def kubeconfig(self) -> str:
        return str(self.cluster.kubeconfig_path)

    def trust_ca_on(self, node: str) -> NodeRegistryConfig:
        config = NodeRegistryConfig(NodeChanges(self.cluster.on(node), name=node))
        config.install_ca(self.registry.spec.host, self.ca_pem)
        return config


@pytest.fixture(scope="module")
def two_node_lab(lab_settings: Settings, lab_images, tmp_path_factory) -> Iterator[TwoNodeLab]:
    settings = lab_settings.with_overrides(
        cluster_name=f"pull-lab-c{uuid.uuid4().hex[:6]}", workers=1, run_id=new_run_id()
    )
    keys = tmp_path_factory.mktemp("check-lab")
    with LabSession(settings, key_dir=keys / "keys") as session:
        cluster = session.cluster()
        assert isinstance(cluster, LabCluster)
        registry = session.registries.start("check")
        session.registries.seed(registry)
        core = client.CoreV1Api(api_client(cluster.kubeconfig_path))
        namespace = create_namespace(core, settings.run_id)
        # The probes ask for no privileges: the strictest Pod Security level admits them.
        restricted = {"pod-security.kubernetes.io/enforce": "restricted"}
        core.patch_namespace(namespace, {"metadata": {"labels": restricted}})
        user, password = registry.credentials
        content = dockerconfigjson(registry.spec.host, user, password)
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=SECRET),
                type="kubernetes.io/dockerconfigjson",
                data={".dockerconfigjson": base64.b64encode(content).decode()},
            ),
        )
        try:
            yield TwoNodeLab(settings, cluster, registry, session.pki.ca_pem, core, namespace)
        finally:
            delete_namespace(core, namespace)


def check(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", "check", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def probe_pods(lab: TwoNodeLab) -> dict[str, str]:
    """The check's pods left in the namespace: pod name -> node."""
    pods = lab.core.list_namespaced_pod(lab.namespace, label_selector=LABEL).items
    return {
        p.metadata.name: p.spec.node_name for p in pods if p.metadata.deletion_timestamp is None
    }


def assert_no_password(lab: TwoNodeLab, proc: subprocess.CompletedProcess[str]) -> None:
    user, password = lab.registry.credentials
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    for secret in (password, auth):
        assert secret not in proc.stdout + proc.stderr


def test_check_names_exactly_the_node_without_the_ca(two_node_lab: TwoNodeLab):
    lab = two_node_lab
    control_plane, worker = lab.cluster.spec.nodes
    common = ("--image", lab.image, "--secret", SECRET, "-n", lab.namespace)
    common += ("--kubeconfig", lab.kubeconfig)
    on_worker = lab.trust_ca_on(worker)
    try:
        default = check(*common)
        uneven = check(*common, "--tolerate-taints", "--keep")
        kept = probe_pods(lab)
        for name in kept:
            lab.core.delete_namespaced_pod(name, lab.namespace, grace_period_seconds=0)
        on_control_plane = lab.trust_ca_on(control_plane)
        try:
            even = check(*common, "--tolerate-taints", "--json")
        finally:
            on_control_plane.restore()
    finally:
        on_worker.restore()

    print(default.stdout, uneven.stdout, even.stdout, sep="\n")  # shown with -rA or on failure
    # Without --tolerate-taints the tainted control plane is left out, and the worker pulls.
    assert default.returncode == 0, default.stdout + default.stderr
    lines = default.stdout.splitlines()
    assert f"  {worker}: pulled in " in "\n".join(lines)
    assert any(
        line.startswith(f"  {control_plane}: skipped: tainted ")
        and "node-role.kubernetes.io/control-plane:NoSchedule" in line
        for line in lines
    ), default.stdout
    # Both probed: exactly the control plane (no CA) fails, and doctor names why.
    assert uneven.returncode == 1, uneven.stdout + uneven.stderr
    by_node = {line.split(": ", 1)[0].strip(): line for line in uneven.stdout.splitlines()[1:-1]}
    assert set(by_node) == {control_plane, worker}
    assert by_node[control_plane].startswith(f"  {control_plane}: failed: unknown-ca: ")
    assert " — " in by_node[control_plane]
    assert by_node[worker].startswith(f"  {worker}: pulled in ")
    assert uneven.stdout.splitlines()[-1] == "1 of 2 probed node(s) failed to pull"
    # --keep left the failed probe, and only that one.
    assert list(kept.values()) == [control_plane]
    assert f"(kept: pod {next(iter(kept))})" in by_node[control_plane]
    # The CA on both nodes: every node pulls; nothing is left behind.
    assert even.returncode == 0, even.stdout + even.stderr
    doc = json.loads(even.stdout)
    assert (doc["schema"], doc["result"]) == ("pull-lab-check/1", "all-pulled")
    assert [(n["name"], n["result"]) for n in doc["nodes"]] == [
        (control_plane, "pulled"),
        (worker, "pulled"),
    ]
    assert all(n["seconds"] is not None and n["seconds"] >= 0 for n in doc["nodes"])
    assert probe_pods(lab) == {}
    for proc in (default, uneven, even):
        assert_no_password(lab, proc)


def test_ctrl_c_while_pulls_hang_deletes_every_probe(two_node_lab: TwoNodeLab):
    """The registry paused (TCP accepted, never answered): the pulls hang until Ctrl-C."""
    lab = two_node_lab
    container = lab.registry.spec.name
    subprocess.run(["docker", "pause", container], capture_output=True, check=True)
    try:
        argv = ["check", "--image", lab.image, "--tolerate-taints", "-n", lab.namespace]
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab.cli", *argv, "--kubeconfig", lab.kubeconfig],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while len(probe_pods(lab)) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        started = probe_pods(lab)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        subprocess.run(["docker", "unpause", container], capture_output=True, check=False)

    assert sorted(started.values()) == list(lab.cluster.spec.nodes)
    assert (proc.returncode, out) == (130, ""), err
    assert err.strip().splitlines()[-1] == "pull-lab: interrupted"
    assert probe_pods(lab) == {}


def test_bad_input_is_one_line_and_exit_2(two_node_lab: TwoNodeLab):
    lab = two_node_lab
    no_image = check("--kubeconfig", lab.kubeconfig)
    no_context = check("--image", lab.image, "--kubeconfig", lab.kubeconfig, "--context", "nope")
    no_secret = check(
        "--image", lab.image, "--kubeconfig", lab.kubeconfig, "-n", lab.namespace, "--secret", "x"
    )

    for proc in (no_image, no_context, no_secret):
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert no_image.stderr.startswith("pull-lab: error: --image is required")
    assert no_context.stderr.startswith(
        f"pull-lab: error: context 'nope' is not in kubeconfig {lab.kubeconfig}"
    )
    assert no_secret.stderr.startswith(
        f"pull-lab: error: secret x not found in namespace {lab.namespace}"
    )
    assert probe_pods(lab) == {}
