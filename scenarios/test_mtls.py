"""The tutorial's introduction: a registry may also verify the client's certificate.

The node then needs a client pair next to the CA (`client.cert` + `client.key` in the host's
certs.d directory, docker's layout, which containerd reads too). Credentials still come from a
pull secret: mutual TLS and basic auth are separate checks.
"""

from __future__ import annotations

import pytest

from lab.expect import view_of
from lab.node import certs_dir
from lab.pods import pod_manifest
from lab.secrets import SecretMaker
from scenarios.conftest import tutorial_image


@pytest.fixture
def mtls_setup(
    scenario, own_registry, node, lab_pki, lab_cluster, kube_api, transcript, lab_settings
):
    reg = own_registry(mtls=True)
    node.install_ca(reg.spec.host, lab_pki.ca_pem)
    user, password = reg.credentials
    SecretMaker(
        lab_cluster.kubeconfig_path, lab_cluster.kubectl_path, kube_api, transcript
    ).docker_registry("registry-1", scenario.namespace, reg.spec.host, user, password)
    pod = pod_manifest(
        "nginx-registry",
        tutorial_image(reg),
        run_id=lab_settings.run_id,
        container="nginx",
        pull_secrets=("registry-1",),
        pull_policy="Always",
    )
    return reg, pod


@pytest.mark.scenario("mtls-no-client-cert")
def test_mtls_no_client_cert(scenario, mtls_setup, node):
    """CA and credentials, no client certificate: the TLS handshake is refused."""
    reg, pod = mtls_setup
    scenario.kubectl("get", "secret", "registry-1", title="kubectl get secret registry-1")
    listing = scenario.on_node(node, "only the CA on the node", f"ls {certs_dir(reg.spec.host)}")
    assert listing.split() == ["ca.crt"], listing
    scenario.create_pod(pod)
    failed = scenario.expect_pull_failure("nginx-registry", "client-cert-required")
    message = view_of(failed).message
    assert message.endswith(": remote error: tls: bad certificate"), message
    scenario.expect_back_off("nginx-registry")
    scenario.describe_tail("nginx-registry")


@pytest.mark.scenario("mtls-client-cert")
def test_mtls_client_cert(scenario, mtls_setup, node):
    """client.cert and client.key beside ca.crt: the registry accepts the node, the pull works."""
    reg, pod = mtls_setup
    cert = (reg.workdir / "client.cert").read_bytes()
    key = (reg.workdir / "client.key").read_bytes()
    node.install_client_pair(reg.spec.host, cert, key)
    listing = scenario.on_node(
        node, "CA and client pair on the node", f"ls -l {certs_dir(reg.spec.host)}"
    )
    assert "-rw------- " in next(
        line for line in listing.splitlines() if line.endswith("client.key")
    )
    scenario.create_pod(pod)
    running = scenario.expect_running("nginx-registry")
    scenario.pulled_fresh(running, tutorial_image(reg))
