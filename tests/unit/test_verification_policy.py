"""The kubelet config edit and the version gate behind the verification-policy scenarios."""

from __future__ import annotations

import json

import pytest

from lab import node

KUBEADM_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
clusterDNS:
- 10.96.0.10
kind: KubeletConfiguration
"""


def test_the_policy_is_added_and_every_other_line_kept():
    changed = node.with_verification_policy(KUBEADM_CONFIG, "AlwaysVerify")
    assert changed == KUBEADM_CONFIG + "imagePullCredentialsVerificationPolicy: AlwaysVerify\n"


def test_an_earlier_policy_and_allowlist_are_replaced_not_repeated():
    earlier = node.with_verification_policy(
        KUBEADM_CONFIG, "NeverVerifyAllowlistedImages", ("reg:5000/lab/busybox", "reg:5000/x/*")
    )
    changed = node.with_verification_policy(earlier, "NeverVerify")
    assert changed == KUBEADM_CONFIG + "imagePullCredentialsVerificationPolicy: NeverVerify\n"


def test_the_allowlist_is_written_as_a_yaml_list_of_quoted_patterns():
    changed = node.with_verification_policy(
        KUBEADM_CONFIG, "NeverVerifyAllowlistedImages", ("reg:5000/lab/busybox",)
    )
    assert changed.endswith(
        "imagePullCredentialsVerificationPolicy: NeverVerifyAllowlistedImages\n"
        "preloadedImagesVerificationAllowlist:\n"
        '- "reg:5000/lab/busybox"\n'
    )


def test_policies_the_kubelet_would_refuse_are_refused_before_any_restart():
    with pytest.raises(ValueError, match="unknown"):
        node.with_verification_policy(KUBEADM_CONFIG, "Sometimes")
    with pytest.raises(ValueError, match="needs policy NeverVerifyAllowlistedImages"):
        node.with_verification_policy(KUBEADM_CONFIG, "AlwaysVerify", ("reg:5000/lab/busybox",))


def test_verification_is_skipped_with_the_version_reason_before_1_35():
    assert node.verification_policy_unsupported((1, 35)) is None
    assert node.verification_policy_unsupported((1, 37)) is None
    assert node.verification_policy_unsupported((1, 34)) == (
        "kubelet v1.34: KubeletEnsureSecretPulledImages is alpha and off by default "
        "(beta and on since v1.35)"
    )
    assert node.verification_policy_unsupported((1, 33)) == (
        "kubelet v1.33: KubeletEnsureSecretPulledImages is alpha and off by default "
        "(beta and on since v1.35)"
    )
    assert node.verification_policy_unsupported((1, 32)) == (
        "kubelet v1.32 has no KubeletEnsureSecretPulledImages (alpha in v1.33, beta and on "
        "by default since v1.35)"
    )


def test_pulled_records_are_read_per_image_id_one_json_document_a_line():
    secret = {"uid": "u1", "namespace": "ns", "name": "registry-1", "credentialHash": "(hidden)"}
    record = {
        "kind": "ImagePulledRecord",
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "lastUpdatedTime": "2026-11-30T02:00:00Z",
        "imageRef": "sha256:abc",
        "credentialMapping": {"reg:5000/lab/busybox": {"kubernetesSecrets": [secret]}},
    }
    bare = {"kind": "ImagePulledRecord", "imageRef": "sha256:def", "lastUpdatedTime": "x"}
    text = json.dumps(record) + "\n\n" + json.dumps(bare) + "\n"
    assert node.parse_pulled_records(text) == {
        "sha256:abc": {"reg:5000/lab/busybox": {"kubernetesSecrets": [secret]}},
        "sha256:def": {},
    }


def test_the_records_script_hides_every_credential_hash():
    assert "credentialHash" in node.PULLED_RECORDS_SCRIPT
    assert f'"credentialHash":"{node.HIDDEN_HASH}"' in node.PULLED_RECORDS_SCRIPT
