"""An image loaded into a running node (`kind load docker-image`, `ctr images import`) runs at
once for a pod without credentials, with `imagePullPolicy: Never` and no pull: what the README
tells users of air-gapped clusters to do with the lab's registry and agent images. The image
has an ID of its own, as those two have: no registry ever served it to the node.

On a 1.35+ kubelet this holds only while the kubelet has no record of pulling that image (by
its ID) with credentials: such an image is re-verified (docs/findings.md, the kubelet's
re-verification of cached images). A first version of this test expected the opposite and
failed on a fresh node; the refusal seen on a foreign cluster came from such a record.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from lab.kubelet_messages import image_present
from lab.pods import node_kubelet_version, pod_events, pod_manifest
from lab.waits import wait_pod_running

pytestmark = pytest.mark.e2e


@pytest.fixture
def loaded_image(lab_images, lab_cluster, lab_node):
    """The workload image under a tag no node has seen, `kind load`ed into the running node;
    removed from the node and from Docker afterwards."""
    unique = uuid.uuid4().hex[:8]
    ref = f"pull-lab.local/loaded-later-{unique}:1.0"
    # An image ID of its own (a label changes the config): a plain tag of the workload image
    # would share its ID with what other tests pulled with a secret, and a 1.35+ kubelet
    # refuses such an image to a pod without credentials (it did, in the full suite).
    container = subprocess.run(
        ["docker", "create", lab_images.workload_image], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        subprocess.run(
            ["docker", "commit", "--change", f"LABEL loaded-later={unique}", container, ref],
            capture_output=True,
            check=True,
        )
    finally:
        subprocess.run(["docker", "rm", container], capture_output=True, check=False)
    try:
        load = subprocess.run(
            [str(lab_images.kind_bin), "load", "docker-image", ref, f"--name={lab_cluster.name}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert load.returncode == 0, load.stderr
        assert lab_node.image_present(ref)
        yield ref
    finally:
        lab_node.remove_image(ref)
        subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)


def test_an_image_loaded_into_a_running_node_runs_at_once_without_credentials(
    loaded_image, lab_core_v1, lab_namespace, lab_settings
):
    core, ns, ref = lab_core_v1, lab_namespace, loaded_image
    node = lab_cluster_node(core)
    manifest = pod_manifest("loaded", ref, run_id=lab_settings.run_id, pull_policy="Never")
    manifest["spec"]["nodeName"] = node
    core.create_namespaced_pod(ns, manifest)
    running, _ = wait_pod_running(core, ns, "loaded")
    events = pod_events(core, ns, running)
    pulled = next(e.message for e in events if e.reason == "Pulled")
    assert pulled == image_present(ref, node_kubelet_version(core, node))
    assert "Pulling" not in [e.reason for e in events]


def lab_cluster_node(core) -> str:
    """The node `kind load` filled (the only one of a one-node lab)."""
    nodes = [n.metadata.name for n in core.list_node().items]
    assert len(nodes) == 1, f"this test loads into a one-node lab, not into {nodes}"
    return nodes[0]
