"""The lab's cluster carries the settings it adds for speed (lab.cluster): the controller
manager's client limit and both leader-election retry periods (kubeadm v1beta3 on 1.34,
v1beta4 on 1.35+), and the kubelet's sync period."""

from __future__ import annotations

import pytest

from lab.pods import kubelet_sync_period

pytestmark = pytest.mark.e2e

MANIFESTS = "/etc/kubernetes/manifests"


def test_controller_manager_runs_with_the_raised_client_limit_and_kinds_own_flag(lab_cluster):
    manifest = lab_cluster.node_exec("cat", f"{MANIFESTS}/kube-controller-manager.yaml")
    assert "--kube-api-qps=200" in manifest
    assert "--kube-api-burst=400" in manifest
    assert "--leader-elect-retry-period=500ms" in manifest
    # The v1beta4 patch replaces kind's extraArgs list: its own entry must survive.
    assert "--enable-hostpath-provisioner=true" in manifest


def test_scheduler_asks_for_its_lease_again_sooner(lab_cluster):
    manifest = lab_cluster.node_exec("cat", f"{MANIFESTS}/kube-scheduler.yaml")
    assert "--leader-elect-retry-period=500ms" in manifest


def test_the_kubelet_resyncs_running_pods_every_ten_seconds(lab_cluster, lab_core_v1):
    assert kubelet_sync_period(lab_core_v1, lab_cluster.spec.node) == 10.0
