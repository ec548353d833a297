"""Proof that the offline build gives a working cluster: the node boots, turns Ready, runs a pod
from a preloaded image, reports its events, and everything made is removed afterwards."""

from __future__ import annotations

import subprocess

import pytest
from kubernetes import client

from lab.cluster import LabCluster, remove_network
from lab.kube import api_client, wait_cluster_usable
from lab.kubelet_messages import image_present
from lab.pods import container_views, node_kubelet_version, pod_events, pod_manifest
from lab.session import cluster_spec
from lab.settings import LABEL, Settings
from lab.waits import wait_pod_running

pytestmark = pytest.mark.e2e


def _docker_names(kind: str, label: str) -> list[str]:
    field = "{{.Names}}" if kind == "container" else "{{.Name}}"
    args = ["docker", kind, "ls", "--filter", f"label={label}", "--format", field]
    if kind == "container":
        args.insert(3, "-a")
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [n for n in out.split() if n]


def test_offline_node_image_runs_preloaded_pod_and_cleans_up(lab_images, lab_settings):
    settings = Settings(
        cluster_name=f"pull-lab-proof-{lab_settings.run_id}", cache_dir=lab_settings.cache_dir
    )
    cluster = LabCluster(cluster_spec(settings, lab_images))
    try:
        cluster.create()
        api = api_client(cluster.kubeconfig_path)
        wait_cluster_usable(api)
        core = client.CoreV1Api(api)
        node = core.list_node().items[0]
        assert node.status.node_info.kubelet_version == lab_images.kubernetes_version
        assert node.status.node_info.container_runtime_version.startswith("containerd://")

        core.create_namespaced_pod(
            "default", pod_manifest("proof", lab_images.preloaded_image, run_id=settings.run_id)
        )
        pod, timeline = wait_pod_running(core, "default", "proof", timeout=120)

        assert [v.state for v in container_views(pod)] == ["running"]
        events = pod_events(core, "default", pod)
        reasons = [e.reason for e in events]
        for expected in ("Scheduled", "Pulled", "Created", "Started"):
            assert expected in reasons, f"no {expected} event in {reasons}"
        pulled = next(e for e in events if e.reason == "Pulled")
        kubelet = node_kubelet_version(core, node.metadata.name)
        assert pulled.message == image_present(lab_images.preloaded_image, kubelet)
        assert "Pulling" not in reasons, "a preloaded image must not be pulled"
        assert timeline.entries, "the wait records what it saw"
    finally:
        cluster.delete()
        remove_network(settings.network_name)

    assert _docker_names("container", f"io.x-k8s.kind.cluster={settings.cluster_name}") == []
    assert _docker_names("network", f"{LABEL}={settings.run_id}") == []
    assert not cluster.kubeconfig_path.exists()
