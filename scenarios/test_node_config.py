"""Tutorial section 1: the kubelet pulls with the CA and credentials configured on the node.

The tutorial moves the CA and `~/.docker/config.json` away (`mv x{,.bak}`), watches the pull
fail, and moves them back one at a time. Here each scenario has a registry of its own, so the
node files it moves belong to it alone; all of them are restored when the scenario ends.
"""

from __future__ import annotations

import os
import time

import pytest

from lab.dockerconfig import auth_entry
from lab.expect import failed_count, view_of
from lab.kubelet_messages import image_present, unknown_ca_failure
from lab.node import KUBELET_CONFIG_JSON, TUTORIAL_CONFIG_JSON, certs_dir
from lab.pods import node_kubelet_version
from lab.tutorial import tutorial_image

NATURAL_WAIT = os.environ.get("PULL_LAB_NATURAL_WAIT", "").lower() in ("1", "true", "yes")


def move_ca_away(scenario, node, host: str, ca_pem: bytes) -> None:
    """The tutorial's starting point (CA in place), then `mv ca.crt{,.bak}`."""
    ca = node.install_ca(host, ca_pem)
    node.changes.move_away(ca)
    scenario.note(
        "move the registry CA away: the tutorial's step, run above on the node",
        f"the tutorial: mv /etc/docker/certs.d/<reg>/ca.crt{{,.bak}} (here: {ca})",
    )


@pytest.mark.scenario("node-no-ca")
def test_node_no_ca(lab_scenario, lab_node, lab_own_registry, lab_pki):
    """No CA and no credentials on the node: the TLS handshake fails before any auth."""
    reg = lab_own_registry()
    move_ca_away(lab_scenario, lab_node, reg.spec.host, lab_pki.ca_pem)
    assert not lab_node.changes.exists(KUBELET_CONFIG_JSON)
    lab_scenario.note(
        "no node credentials",
        "the tutorial: mv ~/.docker/config.json{,.bak}; this node never had any to move",
    )
    listing = lab_scenario.on_node(
        lab_node, "no node credentials", f"ls {KUBELET_CONFIG_JSON}", check=False
    )
    assert "No such file or directory" in listing

    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry", tutorial_image(reg), container="nginx")
    )
    image = tutorial_image(reg)
    pod = lab_scenario.expect_pull_failure("nginx-registry", "unknown-ca")
    assert view_of(pod).message == unknown_ca_failure(image, reg.spec.host), view_of(pod).message
    lab_scenario.expect_event(
        pod, "Failed", r"Failed to pull image .*x509: certificate signed by unknown authority"
    )
    lab_scenario.expect("event Failed with the message exactly 'Error: ErrImagePull'")
    lab_scenario.expect_event(pod, "Failed", "Error: ErrImagePull", exact=True)
    lab_scenario.expect_back_off("nginx-registry")
    lab_scenario.expect("event Failed with the message exactly 'Error: ImagePullBackOff'")
    backing_off = lab_scenario.expect_event(pod, "Failed", "Error: ImagePullBackOff", exact=True)
    assert backing_off.source == "kubelet"
    lab_scenario.expect_no_event(pod, "FailedSync")
    lab_scenario.describe_tail("nginx-registry")
    lab_scenario.differs(
        'docker said "Get https://<reg>/v1/_ping: x509: certificate signed by unknown authority" '
        "through a FailedSync event",
        "containerd reports it on the manifest HEAD request; the container waits with "
        "ErrImagePull, then ImagePullBackOff, and no FailedSync event exists any more",
    )


@pytest.mark.scenario("node-ca-no-creds")
def test_node_ca_no_creds(lab_scenario, lab_node, lab_own_registry, lab_pki):
    """CA back in place, still no credentials: the registry answers 401."""
    reg = lab_own_registry()
    ca = lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    lab_scenario.note("the CA is back", "the tutorial: mv /etc/docker/certs.d/<reg>/ca.crt{.bak,}")
    listing = lab_scenario.on_node(lab_node, "the CA is back", f"ls {certs_dir(reg.spec.host)}")
    assert listing.split() == ["ca.crt"]
    assert lab_node.changes.exists(ca)

    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry", tutorial_image(reg), container="nginx")
    )
    pod = lab_scenario.expect_pull_failure("nginx-registry", "unauthorized")
    image = tutorial_image(reg)
    assert view_of(pod).message == (
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
        "pull access denied, repository does not exist or may require authorization: "
        "authorization failed: no basic auth credentials"
    ), view_of(pod).message
    lab_scenario.expect_event(pod, "Failed", r"Failed to pull image .*no basic auth credentials")
    lab_scenario.expect_back_off("nginx-registry")
    lab_scenario.describe_tail("nginx-registry")
    lab_scenario.differs(
        'the failure read "Error: image zhangjun3/nginx:1.7.9 not found"',
        "the registry's 401 is reported: containerd 2.x says 'no basic auth credentials' "
        "(containerd 1.6 said 'failed with status code [manifests <tag>]: 401 Unauthorized')",
    )


@pytest.mark.scenario("node-creds-restored")
def test_node_creds_restored(lab_scenario, lab_node, lab_own_registry, lab_pki, lab_core_v1):
    """Credentials come back while the pod backs off: the same pod turns Running.

    The kubelet reads node credentials from its root dir, not from ~/.docker, and caches them
    for up to 5 minutes while back-off grows to 5 minutes: the tutorial's "wait a while". By
    default the kubelet is restarted so recovery is prompt; PULL_LAB_NATURAL_WAIT=1 waits instead.
    """
    reg = lab_own_registry()
    host = reg.spec.host
    lab_node.install_ca(host, lab_pki.ca_pem)
    user, password = reg.credentials
    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry", tutorial_image(reg), container="nginx")
    )
    pod = lab_scenario.expect_pull_failure("nginx-registry", "unauthorized")
    lab_scenario.expect_back_off("nginx-registry")
    uid = pod.metadata.uid

    # The tutorial's path: `mv ~/.docker/config.json{.bak,}`. kind's kubelet has no $HOME.
    lab_scenario.expect(f"credentials at {TUTORIAL_CONFIG_JSON} are not read by the kubelet")
    lab_scenario.note(
        "restore the credentials where the tutorial kept them",
        f"the tutorial: mv ~/.docker/config.json{{.bak,}}; the lab writes {TUTORIAL_CONFIG_JSON}, "
        "then restarts the kubelet so it looks again",
    )
    lab_node.set_credentials({host: auth_entry(user, password)}, path=TUTORIAL_CONFIG_JSON)
    before = failed_count(lab_core_v1, lab_scenario.namespace, pod)
    lab_node.restart_kubelet()
    lab_scenario.expect_another_failure(pod, before, "unauthorized")

    lab_scenario.expect(f"credentials at {KUBELET_CONFIG_JSON} (the kubelet's root dir) are read")
    before_fix = lab_scenario.event_snapshot(pod)
    t0 = time.monotonic()
    lab_scenario.note(
        "put the credentials in the kubelet's root dir",
        f"the lab writes {KUBELET_CONFIG_JSON} (the kubelet's --root-dir)",
    )
    lab_node.set_credentials({host: auth_entry(user, password)})
    if NATURAL_WAIT:
        lab_scenario.note(
            "wait for the kubelet's credential cache and back-off to expire (no restart)"
        )
        pod = lab_scenario.expect_running("nginx-registry", timeout=420, recovering=True)
    else:
        lab_scenario.note("restart the kubelet: it drops its 5-minute credential cache")
        lab_node.restart_kubelet()
        pod = lab_scenario.expect_running("nginx-registry", timeout=120, recovering=True)
    lab_scenario.timed("recovery: credentials restored to Running", time.monotonic() - t0)
    assert pod.metadata.uid == uid, "recovery happens in the same pod"
    assert pod.status.container_statuses[0].restart_count == 0
    lab_scenario.saw(f"same pod uid {uid}, restartCount 0")
    if NATURAL_WAIT:
        # Minutes of failures use up the kubelet's event budget for this pod (burst 25, then
        # one per 5 minutes): the status above is the evidence, events may be gone.
        lab_scenario.saw("natural wait: events after many failures are best effort (spam filter)")
    else:
        lab_scenario.pulled_fresh(pod, tutorial_image(reg), after=before_fix)
    lab_scenario.describe_tail("nginx-registry")
    lab_scenario.differs(
        "credentials in ~/.docker/config.json; the pod recovered 'after a while' and its events "
        'said "already present on machine" (docker had pulled the image)',
        f"the kubelet reads {KUBELET_CONFIG_JSON} (its --root-dir), not /root/.docker; "
        "it caches node credentials and backs off up to 5 minutes, so recovery takes a kubelet "
        "restart or that long; the event is 'Successfully pulled'",
    )


@pytest.mark.scenario("node-image-cached")
def test_node_image_cached(lab_scenario, lab_node, lab_own_registry, lab_pki):
    """Once the node holds the image, IfNotPresent uses it: 'already present on machine'."""
    reg = lab_own_registry()
    host = reg.spec.host
    image = tutorial_image(reg)
    lab_node.install_ca(host, lab_pki.ca_pem)
    user, password = reg.credentials
    lab_node.set_credentials({host: auth_entry(user, password)})
    lab_node.restart_kubelet()
    lab_scenario.create_pod(lab_scenario.pod("nginx-registry", image, container="nginx"))
    first = lab_scenario.expect_running("nginx-registry")
    lab_scenario.pulled_fresh(first, image)

    lab_scenario.create_pod(lab_scenario.pod("nginx-registry-again", image, container="nginx"))
    again = lab_scenario.expect_running("nginx-registry-again")
    # The wording is the kubelet's: 1.35 added the clause KubeletEnsureSecretPulledImages checks.
    major, minor = node_kubelet_version(lab_scenario.core, again.spec.node_name)
    present = image_present(image, (major, minor))
    lab_scenario.expect(f"event Pulled (kubelet v{major}.{minor}): {present!r}, no Pulling")
    event = lab_scenario.expect_event(again, "Pulled", present, exact=True)
    assert event.source == "kubelet"
    lab_scenario.expect_no_event(again, "Pulling")
    lab_scenario.describe_tail("nginx-registry-again")
