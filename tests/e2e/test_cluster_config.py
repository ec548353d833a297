"""The lab's cluster carries the one control-plane setting it adds for speed, on every node
image kind configures with either kubeadm API (1.34's v1beta3, 1.35+'s v1beta4)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

MANIFEST = "/etc/kubernetes/manifests/kube-controller-manager.yaml"


def test_controller_manager_runs_with_the_raised_client_limit_and_kinds_own_flag(lab_cluster):
    manifest = lab_cluster.node_exec("cat", MANIFEST)
    assert "--kube-api-qps=200" in manifest
    assert "--kube-api-burst=400" in manifest
    # The v1beta4 patch replaces kind's extraArgs list: its own entry must survive.
    assert "--enable-hostpath-provisioner=true" in manifest
