"""`pull-lab up --workers N`: a control plane and N workers from the same offline node image.

A worker is joined by kind with `kubeadm join` from the lab's node image; this shows it is a
node the lab can use: Ready, on the lab's network, with the node image's preloaded images in its
own containerd (a pod pinned to it runs one with `imagePullPolicy: Never`), while the control
plane keeps kind's NoSchedule taint. `down` removes every node. Its own cluster: about 40 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from lab.kube import api_client
from lab.pods import pod_manifest
from lab.waits import wait_pod_running

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"


def pull_lab(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PULL_LAB_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def kind_nodes(name: str) -> list[str]:
    label = f"label=io.x-k8s.kind.cluster={name}"
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", label, "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(out.stdout.split())


def test_up_with_one_worker_gives_a_usable_worker(lab_images, lab_settings):
    name = f"pull-lab-w{uuid.uuid4().hex[:6]}"
    cache = lab_settings.cache_dir
    worker = f"{name}-worker"
    try:
        up = pull_lab("up", "--name", name, "--workers", "1", cache=cache)
        assert up.returncode == 0, up.stderr[-2000:]
        assert f"cluster {name}: 2 nodes Ready" in up.stderr
        state = json.loads(pull_lab("status", "--name", name, "--json", cache=cache).stdout)
        core = client.CoreV1Api(api_client(Path(state["kubeconfig"])))
        nodes = {n.metadata.name: n for n in core.list_node().items}
        images_on_worker = subprocess.run(
            ["docker", "exec", worker, "crictl", "images", "-o", "json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        pod = pod_manifest("preloaded", lab_images.preloaded_image, run_id="w", pull_policy="Never")
        pod["spec"]["nodeName"] = worker
        core.create_namespaced_pod("default", pod)
        running, _ = wait_pod_running(core, "default", "preloaded")
    finally:
        down = pull_lab("down", "--name", name, cache=cache)

    assert state["nodes"] == [f"{name}-control-plane", worker]
    assert sorted(nodes) == state["nodes"]
    taints = {t.key for t in nodes[f"{name}-control-plane"].spec.taints or []}
    assert CONTROL_PLANE_TAINT in taints  # kind keeps it once there are workers
    assert not [t for t in nodes[worker].spec.taints or [] if t.effect == "NoSchedule"]
    tags = {t for i in json.loads(images_on_worker)["images"] for t in i["repoTags"]}
    assert lab_images.preloaded_image in tags
    assert running.spec.node_name == worker
    assert down.returncode == 0, down.stderr
    assert kind_nodes(name) == []
