"""Beyond the tutorial (section 1 on a real cluster): node configuration is per node.

The tutorial configures "the node"; a cluster has several, and the kubelet of each pulls with
its own CA files and its own config.json. Here one worker gets the registry's CA and node
credentials and the other gets neither: the same pod, pinned to each with nodeName, runs on the
first and backs off on the second, and `pull-lab doctor` names the second node and the cause.
It holds both workers alone, so it needs a lab with two (`--lab-workers 2`).
"""

from __future__ import annotations

import pytest

from lab.dockerconfig import auth_entry
from lab.expect import view_of
from lab.kubelet_messages import unknown_ca_failure
from lab.node import KUBELET_CONFIG_JSON, certs_dir
from lab.tutorial import tutorial_image

UNKNOWN_CA_CAUSE = "the node does not trust the registry's CA"


@pytest.mark.scenario("one-worker-configured")
def test_one_worker_configured(lab_scenario, lab_worker_pair, lab_own_registry, lab_pki):
    """CA and config.json on one worker only: Running there, ImagePullBackOff on the other."""
    configured, bare = lab_worker_pair
    good, bad = configured.changes.name, bare.changes.name
    reg = lab_own_registry()
    host, image = reg.spec.host, tutorial_image(reg)
    configured.install_ca(host, lab_pki.ca_pem)
    user, password = reg.credentials
    configured.set_credentials({host: auth_entry(user, password)})
    configured.restart_kubelet()
    lab_scenario.on_node(configured, f"CA and credentials on {good}", f"ls {certs_dir(host)}")
    absent = lab_scenario.on_node(
        bare, f"neither on {bad}", f"ls {certs_dir(host)} {KUBELET_CONFIG_JSON}", check=False
    )
    assert absent.count("No such file or directory") == 2, absent

    pods = {good: "nginx-configured", bad: "nginx-unconfigured"}
    specs = [
        lab_scenario.create_pod(lab_scenario.pod(name, image, container="nginx", node=node))
        for node, name in pods.items()
    ]
    lab_scenario.expect(f"the same spec on both nodes, only nodeName differs ({good}, {bad})")
    assert [p.spec.node_name for p in specs] == [good, bad]
    assert len({(c.image, c.image_pull_policy) for p in specs for c in p.spec.containers}) == 1
    assert all(not p.spec.image_pull_secrets for p in specs)

    running = lab_scenario.expect_running(pods[good])
    lab_scenario.pulled_fresh(running, image)

    failing = lab_scenario.expect_pull_failure(pods[bad], "unknown-ca")
    assert view_of(failing).message == unknown_ca_failure(image, host), view_of(failing).message
    lab_scenario.expect_back_off(pods[bad])

    lab_scenario.expect(f"pull-lab doctor names node {bad} and the cause: {UNKNOWN_CA_CAUSE}")
    doctor = next(
        s.output
        for s in reversed(lab_scenario.transcript.steps)
        if s.title == f"pull-lab doctor {pods[bad]}"
    )
    assert f"node {bad}:" in doctor, doctor
    assert UNKNOWN_CA_CAUSE in doctor, doctor
    lab_scenario.saw(f"doctor on {pods[bad]}: node {bad}, {UNKNOWN_CA_CAUSE}")
    lab_scenario.differs(
        "one node, configured by hand (mv ca.crt, config.json)",
        "each node pulls with its own files: a node left out backs off while the same pod "
        "runs on a configured one",
    )
