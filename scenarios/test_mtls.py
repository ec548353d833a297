"""The tutorial's introduction: a registry may also verify the client's certificate.

The node then needs a client pair next to the CA (`client.cert` + `client.key` in the host's
certs.d directory, docker's layout, which containerd reads too). Credentials still come from a
pull secret: mutual TLS and basic auth are separate checks.
"""

from __future__ import annotations

import pytest

from lab.expect import view_of
from lab.node import certs_dir
from lab.tutorial import tutorial_image


@pytest.fixture
def mtls_setup(lab_scenario, lab_own_registry, lab_node, lab_pki):
    """A registry that verifies client certificates, its CA on the node, a pull secret, and
    the tutorial's pod (not yet created)."""
    reg = lab_own_registry(mtls=True)
    lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    user, password = reg.credentials
    lab_scenario.secrets.docker_registry(
        "registry-1", lab_scenario.namespace, reg.spec.host, user, password
    )
    pod = lab_scenario.pod(
        "nginx-registry",
        tutorial_image(reg),
        container="nginx",
        pull_secrets=("registry-1",),
        pull_policy="Always",
    )
    return reg, pod


@pytest.mark.scenario("mtls-no-client-cert")
def test_mtls_no_client_cert(lab_scenario, mtls_setup, lab_node):
    """CA and credentials, no client certificate: the TLS handshake is refused."""
    reg, pod = mtls_setup
    lab_scenario.kubectl("get", "secret", "registry-1", title="kubectl get secret registry-1")
    listing = lab_scenario.on_node(
        lab_node, "only the CA on the node", f"ls {certs_dir(reg.spec.host)}"
    )
    assert listing.split() == ["ca.crt"], listing
    lab_scenario.create_pod(pod)
    failed = lab_scenario.expect_pull_failure("nginx-registry", "client-cert-required")
    message = view_of(failed).message
    assert message.endswith(": remote error: tls: bad certificate"), message
    lab_scenario.expect_back_off("nginx-registry")
    lab_scenario.describe_tail("nginx-registry")


@pytest.mark.scenario("mtls-client-cert")
def test_mtls_client_cert(lab_scenario, mtls_setup, lab_node):
    """client.cert and client.key beside ca.crt: the registry accepts the node, the pull works."""
    reg, pod = mtls_setup
    cert = (reg.workdir / "client.cert").read_bytes()
    key = (reg.workdir / "client.key").read_bytes()
    lab_node.install_client_pair(reg.spec.host, cert, key)
    listing = lab_scenario.on_node(
        lab_node, "CA and client pair on the node", f"ls -l {certs_dir(reg.spec.host)}"
    )
    assert "-rw------- " in next(
        line for line in listing.splitlines() if line.endswith("client.key")
    )
    lab_scenario.create_pod(pod)
    running = lab_scenario.expect_running("nginx-registry")
    lab_scenario.pulled_fresh(running, tutorial_image(reg))
