"""The catalogue on a cluster the lab did not make: `pull-lab run --kubeconfig F
--allow-node-changes -j 3` on a four-node cluster (a control plane, three workers) made here with
plain `kind create cluster`.

The cluster comes from the lab's kind and node image but not through `LabCluster`, so nothing
lab-specific is on it: no lab registry on its network, no CA on its nodes, no lab state. Its
config holds only what an offline node needs (no kindnet, kube-proxy or CoreDNS images exist
here; the node image brings its own CNI config) and what this cgroup v1 host needs. It sits
on a docker network of this test's own, which goes with it.

The run must bring its registries into the cluster, reach the nodes through its node agent,
pass every scenario that does not need the lab's own cluster, say why for each one that does,
and leave nothing behind in the cluster. Three scenarios at a time, each node-level one holding
one worker alone, the long waits first: with one worker and one at a time the catalogue took
471 s, with two workers and two at a time 260 s, now 227 s (one-worker-configured, which needs
three nodes open to pods, runs here too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from lab.cluster import ensure_network, remove_network
from lab.kube import api_client
from lab.node import NODE_STATE_SCRIPT
from lab.settings import LABEL
from tests.reliability.conftest import SIGINT, start_pull_lab

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
OWN_CONFIG = {
    "kind": "Cluster",
    "apiVersion": "kind.x-k8s.io/v1alpha4",
    "networking": {"disableDefaultCNI": True, "kubeProxyMode": "none"},
    "kubeadmConfigPatches": [
        # kind's patches replace lists: kind's own skip of kube-proxy (kubeProxyMode none) must
        # be repeated, or kube-proxy's pull of an image no one can get (it fails after ~45 s)
        # blocks every other pull of the node (serializeImagePulls) after each kubelet start.
        "kind: InitConfiguration\nskipPhases: [preflight, addon/coredns, addon/kube-proxy]\n",
        "kind: KubeletConfiguration\nfailCgroupV1: false\n",
    ],
    "nodes": [{"role": "control-plane"}, *[{"role": "worker"}] * 3],
}
WORKERS = ("worker", "worker2", "worker3")  # kind's names, after the cluster's
# What cannot run on this cluster, and the reason each skip must give.
NEEDS_OWN_NETWORK = "needs the lab's own cluster: needs a DNS name for the registry"
CANNOT_RUN_HERE = {
    "cert-name-mismatch": NEEDS_OWN_NETWORK,
    "hosts-toml-skip-verify": NEEDS_OWN_NETWORK,
}


@pytest.fixture(scope="module")
def plain_kind_cluster(lab_images, lab_settings, tmp_path_factory):
    """A three-node cluster made with `kind create cluster` and deleted afterwards."""
    name = f"plain-{uuid.uuid4().hex[:6]}"
    network = f"{name}-net"
    workdir = tmp_path_factory.mktemp("plain-kind")
    config, kubeconfig = workdir / "kind.yaml", workdir / "kubeconfig"
    config.write_text(yaml.safe_dump(OWN_CONFIG))
    kind = [str(lab_images.kind_bin)]
    env = {**os.environ, "KIND_EXPERIMENTAL_DOCKER_NETWORK": network}
    assert ensure_network(network, lab_settings.run_id)
    try:
        started = time.monotonic()
        made = subprocess.run(
            [
                *kind,
                "create",
                "cluster",
                f"--name={name}",
                f"--image={lab_images.node_image}",
                f"--config={config}",
                f"--kubeconfig={kubeconfig}",
                "--wait=120s",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert made.returncode == 0, made.stderr[-2000:]
        print(f"plain kind cluster: {time.monotonic() - started:.1f} s")
        yield name, kubeconfig
    finally:
        subprocess.run([*kind, "delete", "cluster", f"--name={name}"], env=env, check=False)
        remove_network(network)


@pytest.fixture(scope="module")
def foreign_run(plain_kind_cluster, tmp_path_factory):
    _, kubeconfig = plain_kind_cluster
    report_dir = tmp_path_factory.mktemp("foreign-report")
    # Not CI=true: this run skips on purpose, and the test below names every skip.
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "run",
            f"--kubeconfig={kubeconfig}",
            "--allow-node-changes",
            "--jobs=3",
            f"--report-dir={report_dir}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    print(f"catalogue on the plain kind cluster: {time.monotonic() - started:.1f} s")
    report = json.loads((report_dir / "report.json").read_text())
    slowest = sorted(report["scenarios"], key=lambda s: -s["seconds"])[:8]
    print("slowest there: " + ", ".join(f"{s['id']} {s['seconds']:.0f} s" for s in slowest))
    return proc, report, kubeconfig


def test_every_scenario_that_can_run_there_passes_and_each_other_says_why(foreign_run):
    proc, report, _ = foreign_run
    outcomes = {s["id"]: (s["outcome"], s.get("error", "")) for s in report["scenarios"]}
    broken = {i: o for i, o in outcomes.items() if o[0] in ("failed", "error")}
    assert not broken, (broken, proc.stdout[-3000:])
    skipped = {i: why for i, (outcome, why) in outcomes.items() if outcome == "skipped"}
    assert sorted(skipped) == sorted(CANNOT_RUN_HERE), skipped
    for scenario, why in skipped.items():
        assert why.startswith(CANNOT_RUN_HERE[scenario]), (scenario, why)
    passed = [i for i, (outcome, _) in outcomes.items() if outcome == "passed"]
    print(f"foreign cluster: {len(passed)} passed, {len(skipped)} skipped: {sorted(skipped)}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Node-level scenarios ran through the agent: the report shows its exec, never docker's.
    assert len(passed) > len(skipped)


def test_node_commands_went_through_the_agent_and_the_registries_inside(foreign_run):
    _, report, _ = foreign_run
    node_level = [s for s in report["scenarios"] if s["node_level"] and s["outcome"] == "passed"]
    assert node_level, "no node-level scenario passed on the foreign cluster"
    text = json.dumps(node_level)
    assert "nsenter -t 1 -m -u -i -n -p -- /bin/sh -c" in text
    assert "docker exec" not in text


def lab_objects(kubeconfig: Path) -> list[str]:
    """Whatever carries the lab's run label on the cluster: namespaces, pods, agents, secrets."""
    api = api_client(kubeconfig)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    found = [
        *core.list_namespace(label_selector=LABEL).items,
        *core.list_pod_for_all_namespaces(label_selector=LABEL).items,
        *apps.list_daemon_set_for_all_namespaces(label_selector=LABEL).items,
        *core.list_secret_for_all_namespaces(label_selector=LABEL).items,
    ]
    return [f"{o.kind or type(o).__name__} {o.metadata.name}" for o in found]


def test_nothing_the_lab_made_is_left_in_the_cluster(foreign_run):
    _, _, kubeconfig = foreign_run
    assert lab_objects(kubeconfig) == []


def test_ctrl_c_mid_scenario_leaves_the_cluster_and_its_node_as_they_were(
    plain_kind_cluster, foreign_run, tmp_path
):
    """After the catalogue: a run stopped while its node-level scenario has moved a file away
    on the node puts the file back, and deletes its namespace, agent and registries."""
    name, kubeconfig = plain_kind_cluster

    def fingerprint() -> str:
        """Every worker: the nodes open to pods, one of which gets the node change."""
        return "".join(
            subprocess.run(
                ["docker", "exec", f"{name}-{worker}", "sh", "-c", NODE_STATE_SCRIPT],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for worker in WORKERS
        )

    before = fingerprint()
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    lab = start_pull_lab(
        *("run", "node-no-ca", f"--kubeconfig={kubeconfig}", "--allow-node-changes"),
        f"--report-dir={tmp_path / 'report'}",
        env=env,
    )
    lab.wait_for_line(lambda ln: "move the registry CA away" in ln, timeout=300)
    assert fingerprint() != before, "the node was not changed before the signal"
    lab.signal(SIGINT)
    assert lab.finish() != 0
    assert lab_objects(kubeconfig) == [], lab.text[-2000:]
    assert fingerprint() == before
