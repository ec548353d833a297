"""Faults in the middle of a run: the affected wait fails with a message that names the cause
(not a bare timeout), diagnostics say what broke, and cleanup still completes."""

from __future__ import annotations

import subprocess

import pytest

from lab.diagnose import node_report
from lab.dockerconfig import dockerconfigjson
from lab.doctor import diagnose_pod
from lab.pods import pod_manifest
from lab.secrets import SecretMaker
from lab.signatures import classify
from lab.waits import wait_pod_running
from lab.watch import WaitFailed, WaitTimeout


def test_registry_killed_mid_run_fails_with_the_cause(
    lab_registries,
    lab_namespace,
    lab_core_v1,
    lab_node,
    lab_pki,
    lab_kube_api,
    lab_cluster,
    lab_transcript,
):
    reg = lab_registries.start("doomed")
    lab_registries.seed(reg, "lab/busybox", "1.0")
    lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    user, password = reg.credentials
    SecretMaker(
        lab_cluster.kubeconfig_path, lab_cluster.kubectl_path, lab_kube_api, lab_transcript
    ).via_client("reg", lab_namespace, dockerconfigjson(reg.spec.host, user, password))
    subprocess.run(["docker", "kill", reg.spec.name], capture_output=True, check=True)

    lab_core_v1.create_namespaced_pod(
        lab_namespace,
        pod_manifest(
            "p", f"{reg.spec.host}/lab/busybox:1.0", run_id="fault", pull_secrets=("reg",)
        ),
    )
    with pytest.raises(WaitFailed) as failed:
        wait_pod_running(lab_core_v1, lab_namespace, "p", timeout=90)
    message = str(failed.value)
    sig = classify(message)
    # A killed container's name no longer resolves on the docker network.
    assert sig is not None and sig.name == "dns-failure", message
    assert diagnose_pod(lab_core_v1, lab_namespace, "p")[0].name == "dns-failure"

    reg.stop()  # the container is already gone: stopping must still succeed
    listed = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name={reg.spec.name}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.strip() == ""


def test_containerd_down_on_the_node_times_out_with_context(
    lab_node, lab_namespace, lab_core_v1, lab_cluster, lab_images
):
    lab_node.changes.undo.append(["systemctl", "start", "containerd"])  # always brought back
    lab_node.changes.sh("systemctl stop containerd")
    lab_core_v1.create_namespaced_pod(
        lab_namespace, pod_manifest("p", lab_images.preloaded_image, run_id="fault")
    )
    with pytest.raises(WaitTimeout) as timed_out:
        wait_pod_running(lab_core_v1, lab_namespace, "p", timeout=20)
    assert "last seen: pod p Pending" in str(timed_out.value)
    report = node_report(lab_cluster)
    assert "containerd: inactive" in report and "kubelet: active" in report, report[:500]

    lab_node.changes.sh("systemctl start containerd")
    pod, _ = wait_pod_running(lab_core_v1, lab_namespace, "p", timeout=180)
    assert pod.status.phase == "Running"
