"""Beyond the tutorial: what users get wrong, each replayed and diagnosed.

Unless noted, the node trusts the registry's CA and holds no credentials, so what a pod's
secrets carry (or fail to carry) decides the pull.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from kubernetes import client

from lab.expect import view_of
from lab.kube import wait_default_service_account
from lab.pods import node_kubelet_version, pod_manifest
from lab.registry import REGISTRY_PORT
from lab.secrets import DOCKERCONFIGJSON, SecretMaker, auth_entry, dockerconfigjson
from scenarios.conftest import bad_password, tutorial_image


@pytest.fixture
def maker(lab_cluster, kube_api, transcript):
    return SecretMaker(lab_cluster.kubeconfig_path, lab_cluster.kubectl_path, kube_api, transcript)


def pod(
    name: str, image: str, run_id: str, secrets: tuple[str, ...] = (), policy: str = "IfNotPresent"
) -> dict:
    return pod_manifest(
        name, image, run_id=run_id, container="app", pull_secrets=secrets, pull_policy=policy
    )


@pytest.mark.scenario("secret-missing")
def test_secret_missing(scenario, secret_registry, fresh_image, lab_settings):
    """A pod names a secret that does not exist: a warning, then an anonymous pull."""
    image = fresh_image(secret_registry)
    created = scenario.create_pod(pod("app", image, lab_settings.run_id, ("registry-nope",)))
    scenario.expect("event FailedToRetrieveImagePullSecret naming the secret")
    scenario.expect_event(
        created,
        "FailedToRetrieveImagePullSecret",
        r"Unable to retrieve some image pull secrets \(registry-nope\)",
    )
    scenario.expect_pull_failure("app", "unauthorized", diagnosis="secret-missing")


@pytest.mark.scenario("secret-other-namespace")
def test_secret_other_namespace(
    scenario, secret_registry, fresh_image, maker, core_v1, lab_settings
):
    """The secret exists, but in another namespace: pods see only their own namespace's secrets."""
    reg = secret_registry
    user, password = reg.credentials
    other = f"{scenario.namespace}-other"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        maker.docker_registry("registry-1", other, reg.spec.host, user, password)
        title = "the secret is in another namespace"
        listing = scenario.kubectl("get", "secret", "registry-1", namespace=other, title=title)
        assert listing.split()[4:6] == ["registry-1", DOCKERCONFIGJSON], listing
        missing = scenario.kubectl(
            "get", "secret", "registry-1", title="and not in the pod's namespace", check=False
        )
        assert 'secrets "registry-1" not found' in missing
        created = scenario.create_pod(
            pod("app", fresh_image(reg), lab_settings.run_id, ("registry-1",))
        )
        scenario.expect_event(created, "FailedToRetrieveImagePullSecret", r"\(registry-1\)")
        scenario.expect_pull_failure("app", "unauthorized", diagnosis="secret-other-namespace")
    finally:
        core_v1.delete_namespace(other, grace_period_seconds=0)


@pytest.mark.scenario("wrong-password")
def test_wrong_password(scenario, secret_registry, fresh_image, maker, lab_settings):
    """The secret matches the host but holds a wrong password: 401, word for word what a pod
    with no credentials at all gets (both pull the same fresh image in this run)."""
    reg = secret_registry
    user, _ = reg.credentials
    image = fresh_image(reg)
    maker.docker_registry("registry-1", scenario.namespace, reg.spec.host, user, bad_password())
    scenario.create_pod(pod("app", image, lab_settings.run_id, ("registry-1",)))
    wrong = scenario.expect_pull_failure("app", "unauthorized", diagnosis="wrong-password")
    scenario.create_pod(pod("no-secret", image, lab_settings.run_id))
    missing = scenario.expect_pull_failure("no-secret", "unauthorized")

    scenario.expect("a wrong password and no password give the same status message")
    wrong_message, missing_message = view_of(wrong).message, view_of(missing).message
    assert wrong_message == missing_message, (
        f"wrong password: {wrong_message}\nno password:    {missing_message}"
    )
    assert not wrong_message.startswith("rpc error:"), "only NotFound keeps the gRPC prefix"
    scenario.saw(f"wrong and missing password, the same message: {wrong_message}")


@pytest.mark.scenario("tag-not-found")
def test_tag_not_found(scenario, secret_registry, maker, lab_settings):
    """Valid credentials, a tag the registry does not have: NotFound (not 401)."""
    reg = secret_registry
    user, password = reg.credentials
    maker.docker_registry("registry-1", scenario.namespace, reg.spec.host, user, password)
    image = f"{reg.spec.host}/lab/busybox:no-such-tag"
    scenario.create_pod(pod("app", image, lab_settings.run_id, ("registry-1",)))
    pending = scenario.expect_pull_failure("app", "not-found")
    message = view_of(pending).message
    assert message == (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
        f'failed to resolve reference "{image}": {image}: not found'
    ), f"containerd's NotFound, with its gRPC prefix: {message}"


@pytest.mark.scenario("registry-unreachable")
def test_registry_unreachable(scenario, secret_registry, maker, lab_settings):
    """Nothing listens at the image's host:port: the node's connection is refused."""
    reg = secret_registry
    host = f"{reg.spec.name}:{REGISTRY_PORT + 999}"
    user, password = reg.credentials
    maker.docker_registry("registry-1", scenario.namespace, host, user, password)
    scenario.create_pod(pod("app", f"{host}/lab/busybox:1.0", lab_settings.run_id, ("registry-1",)))
    failed = scenario.expect_pull_failure("app", "connection-refused")
    message = view_of(failed).message
    assert re.search(
        rf"dial tcp [0-9.]+:{REGISTRY_PORT + 999}: connect: connection refused$", message
    ), f"not exactly a refused connection to port {REGISTRY_PORT + 999}: {message}"


@pytest.mark.scenario("secret-port-mismatch")
def test_secret_port_mismatch(scenario, secret_registry, fresh_image, maker, lab_settings):
    """The secret is keyed by the host without its port: keys must match host:port exactly."""
    reg = secret_registry
    user, password = reg.credentials
    maker.via_client(
        "registry-1", scenario.namespace, dockerconfigjson(reg.spec.name, user, password)
    )
    scenario.note(
        "the secret's key", f"auths: {{{reg.spec.name!r}: ...}}   image: {reg.spec.host}/..."
    )
    scenario.create_pod(pod("app", fresh_image(reg), lab_settings.run_id, ("registry-1",)))
    scenario.expect_pull_failure("app", "unauthorized", diagnosis="secret-port-mismatch")


@pytest.mark.scenario("secret-wrong-shape")
def test_secret_wrong_shape(scenario, secret_registry, fresh_image, maker, lab_settings):
    """Type Opaque, or .dockerconfigjson without `auths`: the API accepts, the kubelet ignores."""
    reg = secret_registry
    user, password = reg.credentials
    good = dockerconfigjson(reg.spec.host, user, password)
    opaque = maker.via_yaml("opaque", scenario.namespace, good, "Opaque", ".dockerconfigjson")
    assert opaque.type == "Opaque"
    bare_map = json.dumps({reg.spec.host: auth_entry(user, password)}).encode()
    no_auths = maker.via_client("no-auths", scenario.namespace, bare_map, DOCKERCONFIGJSON)
    assert no_auths.type == DOCKERCONFIGJSON
    scenario.saw("the API server accepted both secrets")
    scenario.create_pod(pod("with-opaque", fresh_image(reg), lab_settings.run_id, ("opaque",)))
    scenario.expect_pull_failure("with-opaque", "unauthorized", diagnosis="secret-wrong-type")
    scenario.create_pod(pod("with-no-auths", fresh_image(reg), lab_settings.run_id, ("no-auths",)))
    scenario.expect_pull_failure("with-no-auths", "unauthorized", diagnosis="secret-wrong-shape")


@pytest.mark.scenario("cert-name-mismatch")
def test_cert_name_mismatch(scenario, own_registry, node, lab_pki, maker, lab_settings):
    """The image names the registry by an alias its certificate does not list."""
    alias = f"reg-alias-{uuid.uuid4().hex[:6]}"
    reg = own_registry(aliases=(alias,))
    host = f"{alias}:{REGISTRY_PORT}"
    node.install_ca(host, lab_pki.ca_pem)
    user, password = reg.credentials
    maker.docker_registry("registry-1", scenario.namespace, host, user, password)
    cert = str(reg.workdir / "server.crt")
    sans = scenario.on_host(
        "names in the registry's certificate",
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert],
    )
    assert f"DNS:{reg.spec.name}" in sans and alias not in sans, sans
    image = tutorial_image(reg).replace(reg.spec.host, host)
    scenario.create_pod(pod("app", image, lab_settings.run_id, ("registry-1",)))
    failed = scenario.expect_pull_failure("app", "name-mismatch")
    message = view_of(failed).message
    assert re.search(rf"x509: certificate is valid for .+, not {re.escape(alias)}$", message), (
        message
    )


@pytest.mark.scenario("cached-image-no-creds")
def test_cached_image_no_creds(scenario, secret_registry, fresh_image, maker, lab_settings):
    """An image pulled with a secret stays on the node; who may use it depends on the version."""
    reg = secret_registry
    user, password = reg.credentials
    image = fresh_image(reg)
    maker.docker_registry("registry-1", scenario.namespace, reg.spec.host, user, password)
    scenario.create_pod(pod("with-secret", image, lab_settings.run_id, ("registry-1",)))
    running = scenario.expect_running("with-secret")

    # What decides is the kubelet that runs the pod, not the version the lab asked for.
    major, minor = node_kubelet_version(scenario.core, running.spec.node_name)
    scenario.create_pod(pod("no-secret", image, lab_settings.run_id))
    if (major, minor) <= (1, 34):
        scenario.expect("without a secret the pod runs the cached image: no Pulling event")
        cached = scenario.expect_running("no-secret")
        scenario.expect_event(cached, "Pulled", "already present on machine")
        scenario.expect_no_event(cached, "Pulling")
        scenario.saw(f"node's kubelet v{major}.{minor}: cached images are not re-verified")
    else:
        scenario.expect("without a secret the kubelet re-verifies the cached image: 401")
        scenario.expect_pull_failure("no-secret", "unauthorized")
        scenario.saw(
            f"node's kubelet v{major}.{minor}: KubeletEnsureSecretPulledImages re-verifies"
        )

    scenario.expect("with imagePullPolicy Always and no secret, the pull goes to the registry: 401")
    scenario.create_pod(pod("always-no-secret", image, lab_settings.run_id, policy="Always"))
    scenario.expect_pull_failure("always-no-secret", "unauthorized")


@pytest.mark.scenario("serviceaccount-pull-secret")
def test_serviceaccount_pull_secret(
    scenario, secret_registry, fresh_image, maker, core_v1, kube_api, lab_settings
):
    """imagePullSecrets on the namespace's default ServiceAccount are copied into new pods."""
    reg = secret_registry
    user, password = reg.credentials
    maker.docker_registry("registry-1", scenario.namespace, reg.spec.host, user, password)
    wait_default_service_account(kube_api, scenario.namespace)
    scenario.kubectl(
        "patch",
        "serviceaccount",
        "default",
        "-p",
        '{"imagePullSecrets": [{"name": "registry-1"}]}',
        title="kubectl patch serviceaccount default",
    )
    scenario.create_pod(pod("app", fresh_image(reg), lab_settings.run_id))
    created = core_v1.read_namespaced_pod("app", scenario.namespace)
    assert [s.name for s in created.spec.image_pull_secrets] == ["registry-1"]
    scenario.saw("the admission plugin put registry-1 into the pod's imagePullSecrets")
    scenario.expect_running("app")


@pytest.mark.scenario("credsstore-ignored")
def test_credsstore_ignored(scenario, secret_registry, fresh_image, maker, lab_settings):
    """A Docker Desktop config.json keeps credentials in a helper: the secret carries none."""
    content = json.dumps(
        {"auths": {secret_registry.spec.host: {}}, "credsStore": "desktop"}
    ).encode()
    scenario.file("config.json with a credential store", "~/.docker/config.json", content.decode())
    maker.via_yaml("registry-1", scenario.namespace, content)
    scenario.create_pod(
        pod("app", fresh_image(secret_registry), lab_settings.run_id, ("registry-1",))
    )
    scenario.expect_pull_failure("app", "unauthorized", diagnosis="credsstore")
