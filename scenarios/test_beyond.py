"""Beyond the tutorial: what users get wrong, each replayed and diagnosed.

Unless noted, the node trusts the registry's CA and holds no credentials, so what a pod's
secrets carry (or fail to carry) decides the pull.
"""

from __future__ import annotations

import re
import uuid

import pytest
from kubernetes import client

from lab.dockerconfig import config_json, dockercfg, dockerconfigjson
from lab.expect import view_of
from lab.kube import wait_default_service_account
from lab.pods import node_kubelet_version
from lab.registry import REGISTRY_PORT
from lab.secrets import DOCKERCONFIGJSON
from lab.tutorial import tutorial_image, wrong_password
from scenarios.unique_images import unique_image, wait_node_lists

# Every pod here runs one container named "app".
APP = "app"


@pytest.mark.scenario("secret-missing")
def test_secret_missing(lab_scenario, lab_secret_registry, lab_fresh_image):
    """A pod names a secret that does not exist: a warning, then an anonymous pull."""
    image = lab_fresh_image(lab_secret_registry)
    created = lab_scenario.create_pod(
        lab_scenario.pod("app", image, container=APP, pull_secrets=("registry-nope",))
    )
    lab_scenario.expect("event FailedToRetrieveImagePullSecret naming the secret")
    lab_scenario.expect_event(
        created,
        "FailedToRetrieveImagePullSecret",
        r"Unable to retrieve some image pull secrets \(registry-nope\)",
    )
    lab_scenario.expect_pull_failure("app", "unauthorized", diagnosis="secret-missing")


@pytest.mark.scenario("secret-other-namespace")
def test_secret_other_namespace(lab_scenario, lab_secret_registry, lab_fresh_image, lab_core_v1):
    """The secret exists, but in another namespace: pods see only their own namespace's secrets."""
    reg = lab_secret_registry
    user, password = reg.credentials
    other = f"{lab_scenario.namespace}-other"
    lab_core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        lab_scenario.secrets.docker_registry("registry-1", other, reg.spec.host, user, password)
        title = "the secret is in another namespace"
        listing = lab_scenario.kubectl("get", "secret", "registry-1", namespace=other, title=title)
        assert listing.split()[4:6] == ["registry-1", DOCKERCONFIGJSON], listing
        missing = lab_scenario.kubectl(
            "get", "secret", "registry-1", title="and not in the pod's namespace", check=False
        )
        assert 'secrets "registry-1" not found' in missing
        created = lab_scenario.create_pod(
            lab_scenario.pod(
                "app", lab_fresh_image(reg), container=APP, pull_secrets=("registry-1",)
            )
        )
        lab_scenario.expect_event(created, "FailedToRetrieveImagePullSecret", r"\(registry-1\)")
        lab_scenario.expect_pull_failure("app", "unauthorized", diagnosis="secret-other-namespace")
    finally:
        lab_core_v1.delete_namespace(other, grace_period_seconds=0)


@pytest.mark.scenario("wrong-password")
def test_wrong_password(lab_scenario, lab_secret_registry, lab_fresh_image):
    """The secret matches the host but holds a wrong password: 401, and containerd 2.x words
    it differently from a pull with no credentials at all (both pull the same fresh image).

    containerd 1.6 gave both the same text; 2.x tells them apart: with credentials it reports
    the HEAD request's status, without any it says it had no basic auth credentials."""
    reg = lab_secret_registry
    user, _ = reg.credentials
    image = lab_fresh_image(reg)
    repo, tag = image.removeprefix(f"{reg.spec.host}/").rsplit(":", 1)
    lab_scenario.secrets.docker_registry(
        "registry-1", lab_scenario.namespace, reg.spec.host, user, wrong_password()
    )
    lab_scenario.create_pod(
        lab_scenario.pod("app", image, container=APP, pull_secrets=("registry-1",))
    )
    wrong = lab_scenario.expect_pull_failure("app", "unauthorized", diagnosis="wrong-password")
    lab_scenario.create_pod(lab_scenario.pod("no-secret", image, container=APP))
    missing = lab_scenario.expect_pull_failure("no-secret", "unauthorized")

    resolving = (
        f'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
    )
    lab_scenario.expect("a wrong password: the HEAD request's 401, word for word")
    wrong_message, missing_message = view_of(wrong).message, view_of(missing).message
    assert wrong_message == (
        resolving + "unexpected status from HEAD request to "
        f"https://{reg.spec.host}/v2/{repo}/manifests/{tag}: 401 Unauthorized"
    ), wrong_message
    lab_scenario.expect("no password: no basic auth credentials, word for word")
    assert missing_message == (
        resolving + "pull access denied, repository does not exist or may require "
        "authorization: authorization failed: no basic auth credentials"
    ), missing_message
    lab_scenario.saw(f"wrong password: {wrong_message}")
    lab_scenario.saw(f"no password:    {missing_message}")


@pytest.mark.scenario("tag-not-found")
def test_tag_not_found(lab_scenario, lab_secret_registry):
    """Valid credentials, a tag the registry does not have: NotFound (not 401)."""
    reg = lab_secret_registry
    user, password = reg.credentials
    lab_scenario.secrets.docker_registry(
        "registry-1", lab_scenario.namespace, reg.spec.host, user, password
    )
    image = f"{reg.spec.host}/lab/busybox:no-such-tag"
    lab_scenario.create_pod(
        lab_scenario.pod("app", image, container=APP, pull_secrets=("registry-1",))
    )
    pending = lab_scenario.expect_pull_failure("app", "not-found")
    message = view_of(pending).message
    assert message == (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
        f'failed to resolve reference "{image}": {image}: not found'
    ), f"containerd's NotFound, with its gRPC prefix: {message}"


@pytest.mark.scenario("registry-unreachable")
def test_registry_unreachable(lab_scenario, lab_secret_registry):
    """Nothing listens at the image's host:port: the node's connection is refused."""
    reg = lab_secret_registry
    host = f"{reg.spec.name}:{REGISTRY_PORT + 999}"
    user, password = reg.credentials
    lab_scenario.secrets.docker_registry("registry-1", lab_scenario.namespace, host, user, password)
    lab_scenario.create_pod(
        lab_scenario.pod(
            "app", f"{host}/lab/busybox:1.0", container=APP, pull_secrets=("registry-1",)
        )
    )
    failed = lab_scenario.expect_pull_failure("app", "connection-refused")
    message = view_of(failed).message
    assert re.search(
        rf"dial tcp [0-9.]+:{REGISTRY_PORT + 999}: connect: connection refused$", message
    ), f"not exactly a refused connection to port {REGISTRY_PORT + 999}: {message}"


@pytest.mark.scenario("secret-port-mismatch")
def test_secret_port_mismatch(lab_scenario, lab_secret_registry, lab_fresh_image):
    """The secret is keyed by the host without its port: keys must match host:port exactly."""
    reg = lab_secret_registry
    user, password = reg.credentials
    lab_scenario.secrets.via_client(
        "registry-1", lab_scenario.namespace, dockerconfigjson(reg.spec.name, user, password)
    )
    lab_scenario.note(
        "the secret's key", f"auths: {{{reg.spec.name!r}: ...}}   image: {reg.spec.host}/..."
    )
    lab_scenario.create_pod(
        lab_scenario.pod("app", lab_fresh_image(reg), container=APP, pull_secrets=("registry-1",))
    )
    lab_scenario.expect_pull_failure("app", "unauthorized", diagnosis="secret-port-mismatch")


@pytest.mark.scenario("secret-wrong-shape")
def test_secret_wrong_shape(lab_scenario, lab_secret_registry, lab_fresh_image):
    """Type Opaque, or .dockerconfigjson without `auths`: the API accepts, the kubelet ignores."""
    reg = lab_secret_registry
    user, password = reg.credentials
    good = dockerconfigjson(reg.spec.host, user, password)
    opaque = lab_scenario.secrets.via_yaml(
        "opaque", lab_scenario.namespace, good, "Opaque", ".dockerconfigjson"
    )
    assert opaque.type == "Opaque"
    bare_map = dockercfg(reg.spec.host, user, password)  # the bare host map, no `auths`
    no_auths = lab_scenario.secrets.via_client(
        "no-auths", lab_scenario.namespace, bare_map, DOCKERCONFIGJSON
    )
    assert no_auths.type == DOCKERCONFIGJSON
    lab_scenario.saw("the API server accepted both secrets")
    lab_scenario.create_pod(
        lab_scenario.pod(
            "with-opaque", lab_fresh_image(reg), container=APP, pull_secrets=("opaque",)
        )
    )
    lab_scenario.expect_pull_failure("with-opaque", "unauthorized", diagnosis="secret-wrong-type")
    lab_scenario.create_pod(
        lab_scenario.pod(
            "with-no-auths", lab_fresh_image(reg), container=APP, pull_secrets=("no-auths",)
        )
    )
    lab_scenario.expect_pull_failure(
        "with-no-auths", "unauthorized", diagnosis="secret-wrong-shape"
    )


@pytest.mark.scenario("cert-name-mismatch")
def test_cert_name_mismatch(lab_scenario, lab_own_registry, lab_node, lab_pki):
    """The image names the registry by an alias its certificate does not list."""
    alias = f"reg-alias-{uuid.uuid4().hex[:6]}"
    reg = lab_own_registry(aliases=(alias,))
    host = f"{alias}:{REGISTRY_PORT}"
    lab_node.install_ca(host, lab_pki.ca_pem)
    user, password = reg.credentials
    lab_scenario.secrets.docker_registry("registry-1", lab_scenario.namespace, host, user, password)
    cert = str(reg.workdir / "server.crt")
    sans = lab_scenario.on_host(
        "names in the registry's certificate",
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert],
    )
    assert f"DNS:{reg.spec.name}" in sans and alias not in sans, sans
    image = tutorial_image(reg).replace(reg.spec.host, host)
    lab_scenario.create_pod(
        lab_scenario.pod("app", image, container=APP, pull_secrets=("registry-1",))
    )
    failed = lab_scenario.expect_pull_failure("app", "name-mismatch")
    message = view_of(failed).message
    assert re.search(rf"x509: certificate is valid for .+, not {re.escape(alias)}$", message), (
        message
    )


@pytest.mark.scenario("cached-image-no-creds")
def test_cached_image_no_creds(lab_scenario, lab_secret_registry, lab_images):
    """An image pulled with a secret stays on the node; who may use it depends on the version.

    The image has contents of its own (a fresh image ID): the node's status lists at most 5
    names per image, so a fresh tag of the shared workload may never show there late in a run,
    and doctor reads the node's images from its status."""
    reg = lab_secret_registry
    user, password = reg.credentials
    image = unique_image(reg, lab_images).ref
    lab_scenario.secrets.docker_registry(
        "registry-1", lab_scenario.namespace, reg.spec.host, user, password
    )
    lab_scenario.create_pod(
        lab_scenario.pod("with-secret", image, container=APP, pull_secrets=("registry-1",))
    )
    running = lab_scenario.expect_running("with-secret")

    # What decides is the kubelet that runs the pod, not the version the lab asked for.
    major, minor = node_kubelet_version(lab_scenario.core, running.spec.node_name)
    if (major, minor) <= (1, 34):
        lab_scenario.create_pod(lab_scenario.pod("no-secret", image, container=APP))
        lab_scenario.expect("without a secret the pod runs the cached image: no Pulling event")
        cached = lab_scenario.expect_running("no-secret")
        lab_scenario.expect_event(cached, "Pulled", "already present on machine")
        lab_scenario.expect_no_event(cached, "Pulling")
        lab_scenario.saw(f"node's kubelet v{major}.{minor}: cached images are not re-verified")
    else:
        # doctor knows the node holds the image only once the node's status lists it
        wait_node_lists(lab_scenario, running.spec.node_name, image)
        lab_scenario.create_pod(lab_scenario.pod("no-secret", image, container=APP))
        lab_scenario.expect(
            "without a secret the kubelet re-verifies the cached image: it pulls, 401"
        )
        refused = lab_scenario.expect_pull_failure(
            "no-secret", "unauthorized", diagnosis="cached-image-needs-credentials"
        )
        lab_scenario.expect_event(refused, "Pulling", f'Pulling image "{image}"', exact=True)
        lab_scenario.saw(
            f"node's kubelet v{major}.{minor}: KubeletEnsureSecretPulledImages re-verifies"
        )
        # The pod must bring credentials of its own: a secret of another name with the same
        # user and password. The kubelet matches them to its record of the first pull (by a
        # hash of the credentials), so the node's copy serves the pod without a new pull.
        lab_scenario.secrets.docker_registry(
            "registry-2", lab_scenario.namespace, reg.spec.host, user, password
        )
        lab_scenario.create_pod(
            lab_scenario.pod("own-secret", image, container=APP, pull_secrets=("registry-2",))
        )
        own = lab_scenario.expect_running("own-secret")
        present = (
            f'Container image "{image}" already present on machine and can be accessed by the pod'
        )
        lab_scenario.expect(f"with its own secret: event Pulled {present!r}, no Pulling")
        lab_scenario.expect_event(own, "Pulled", present, exact=True)
        lab_scenario.expect_no_event(own, "Pulling")
        lab_scenario.saw("own-secret: its credentials matched the kubelet's record: no new pull")

    lab_scenario.expect(
        "with imagePullPolicy Always and no secret, the pull goes to the registry: 401"
    )
    lab_scenario.create_pod(
        lab_scenario.pod("always-no-secret", image, container=APP, pull_policy="Always")
    )
    lab_scenario.expect_pull_failure("always-no-secret", "unauthorized")


@pytest.mark.scenario("serviceaccount-pull-secret")
def test_serviceaccount_pull_secret(
    lab_scenario,
    lab_secret_registry,
    lab_fresh_image,
    lab_core_v1,
    lab_kube_api,
):
    """imagePullSecrets on the namespace's default ServiceAccount are copied into new pods."""
    reg = lab_secret_registry
    user, password = reg.credentials
    lab_scenario.secrets.docker_registry(
        "registry-1", lab_scenario.namespace, reg.spec.host, user, password
    )
    wait_default_service_account(lab_kube_api, lab_scenario.namespace)
    lab_scenario.kubectl(
        "patch",
        "serviceaccount",
        "default",
        "-p",
        '{"imagePullSecrets": [{"name": "registry-1"}]}',
        title="kubectl patch serviceaccount default",
    )
    lab_scenario.create_pod(lab_scenario.pod("app", lab_fresh_image(reg), container=APP))
    created = lab_core_v1.read_namespaced_pod("app", lab_scenario.namespace)
    assert [s.name for s in created.spec.image_pull_secrets] == ["registry-1"]
    lab_scenario.saw("the admission plugin put registry-1 into the pod's imagePullSecrets")
    lab_scenario.expect_running("app")


@pytest.mark.scenario("credsstore-ignored")
def test_credsstore_ignored(lab_scenario, lab_secret_registry, lab_fresh_image):
    """A Docker Desktop config.json keeps credentials in a helper: the secret carries none."""
    content = config_json({lab_secret_registry.spec.host: {}}, credsStore="desktop")
    lab_scenario.file(
        "config.json with a credential store", "~/.docker/config.json", content.decode()
    )
    lab_scenario.secrets.via_yaml("registry-1", lab_scenario.namespace, content)
    lab_scenario.create_pod(
        lab_scenario.pod(
            "app", lab_fresh_image(lab_secret_registry), container=APP, pull_secrets=("registry-1",)
        )
    )
    lab_scenario.expect_pull_failure("app", "unauthorized", diagnosis="credsstore")


@pytest.mark.scenario("never-preloaded")
def test_never_preloaded(lab_scenario, lab_images, lab_secret_registry, lab_fresh_image):
    """The air-gapped method: images loaded onto the node beforehand, imagePullPolicy Never.
    A preloaded image runs without any registry; an image that is not there is never pulled."""
    preloaded = lab_images.preloaded_image
    lab_scenario.create_pod(lab_scenario.pod("preloaded", preloaded, pull_policy="Never"))
    running = lab_scenario.expect_running("preloaded")
    lab_scenario.expect_event(
        running, "Pulled", f'Container image "{preloaded}" already present on machine'
    )
    lab_scenario.expect_no_event(running, "Pulling")

    absent = lab_fresh_image(lab_secret_registry)
    lab_scenario.create_pod(lab_scenario.pod("absent", absent, pull_policy="Never"))
    pod = lab_scenario.expect_pull_failure(
        "absent", "never-pull", reason="ErrImageNeverPull", diagnosis="never-pull"
    )
    assert view_of(pod).message == (
        f'Container image "{absent}" is not present with pull policy of Never'
    ), view_of(pod).message
    lab_scenario.expect_no_event(pod, "Pulling")
    lab_scenario.differs(
        "every image comes from a registry",
        "with imagePullPolicy Never the kubelet only uses what is on the node "
        "(ErrImageNeverPull otherwise): no registry, no credentials, nothing to diagnose "
        "but the image list (crictl images)",
    )
