"""Every pull failure the lab can cause on its own cluster, caused, then diagnosed by the real
`pull-lab doctor` (a subprocess, `--json`): exit 1, the expected cause first, and the
container's own message as the evidence.

Order as a pull proceeds: certificate dates, HTTP vs HTTPS, the network, then the causes the
scenarios also meet (one cheap pod each), the platform, and the pull secrets. With
``PULL_LAB_CAPTURE_DOCTOR=DIR`` each failing pod is also written to DIR as a masked capture
(the unit tests' fixtures, tests/unit/data/doctor).

Not here: 403 (distribution 2.8 with htpasswd answers 401 or 400, never 403, to a pull; only
a token server could say 403), 429, and a dial timeout (it needs packets dropped past the lab's
own networks); their fixtures stay hand-built.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import uuid
from pathlib import Path

import docker
import pytest
import yaml
from kubernetes import client

from lab.credentials import new_password, register_known
from lab.dockerconfig import config_json, dockercfg, dockerconfigjson
from lab.kube import api_client
from lab.pki import write_private
from lab.push import prepared, push_index_for
from lab.registry import REGISTRY_PORT, network_ipv4
from lab.waits import wait_pod_running
from tests.e2e.doctor_causes import APP, CauseLab, Failure, ask_doctor, save_capture

pytestmark = pytest.mark.e2e

DAY = datetime.timedelta(days=1)
# Go's crypto/x509 prints the dates in RFC 3339 (containerd 2.x wraps it in crypto/tls's prefix).
DATES_WRONG = r"x509: certificate has expired or is not yet valid: current time \S+ is {} \S+$"


@pytest.fixture
def lab(lab_core_v1, lab_namespace, lab_settings, lab_cluster) -> CauseLab:
    return CauseLab(
        lab_core_v1, lab_namespace, lab_settings.run_id, Path(lab_cluster.kubeconfig_path)
    )


def secret_for(lab: CauseLab, registry, name: str = "registry-1") -> tuple[str, ...]:
    """A pull secret holding the registry's real credentials, keyed to its host:port."""
    user, password = registry.credentials
    lab.secret(name, dockerconfigjson(registry.spec.host, user, password))
    return (name,)


def own_registry(lab_registries, purpose: str, **spec):
    """A fresh registry of this test's own, seeded with the workload as lab/busybox:1.0."""
    registry = lab_registries.start(purpose, **spec)
    lab_registries.seed(registry)
    return registry


# ---- 1. certificate dates ------------------------------------------------------------------
def test_expired_certificate_is_cert_expired(lab, lab_registries, lab_node, lab_pki):
    """The node trusts the CA; only the server certificate's notAfter (yesterday) is wrong."""
    now = datetime.datetime.now(datetime.UTC)
    reg = own_registry(lab_registries, "expired", cert_dates=(now - 2 * DAY, now - DAY))
    lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    lab.pod(f"{reg.spec.host}/lab/busybox:1.0", pull_secrets=secret_for(lab, reg))

    failure = lab.failure()

    assert re.search(DATES_WRONG.format("after"), failure.message), failure.message
    lab.diagnosed(failure, "cert-expired")


def test_not_yet_valid_certificate_is_cert_not_yet_valid(lab, lab_registries, lab_node, lab_pki):
    """The node trusts the CA; only the server certificate's notBefore (tomorrow) is wrong."""
    now = datetime.datetime.now(datetime.UTC)
    reg = own_registry(lab_registries, "notyet", cert_dates=(now + DAY, now + 2 * DAY))
    lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    lab.pod(f"{reg.spec.host}/lab/busybox:1.0", pull_secrets=secret_for(lab, reg))

    failure = lab.failure()

    assert re.search(DATES_WRONG.format("before"), failure.message), failure.message
    lab.diagnosed(failure, "cert-not-yet-valid")


# ---- 2. HTTP vs HTTPS ----------------------------------------------------------------------
def test_plain_http_registry_pulled_over_https(lab, lab_registries):
    """A registry without TLS, the image named as usual: the node speaks HTTPS to it."""
    reg = own_registry(lab_registries, "plain", tls=False)
    lab.pod(f"{reg.spec.host}/lab/busybox:1.0")

    failure = lab.failure()

    assert failure.message.endswith("http: server gave HTTP response to HTTPS client"), (
        failure.message
    )
    lab.diagnosed(failure, "https-to-http-registry")


def test_tls_registry_declared_plain_http_on_the_node(lab, lab_registries, lab_node):
    """A TLS registry that the node's hosts.toml declares `server = "http://..."`."""
    reg = own_registry(lab_registries, "ashttp")
    host = reg.spec.host
    http_only = f'server = "http://{host}"\n\n[host."http://{host}"]\n'
    lab_node.install_hosts_toml(host, http_only + '  capabilities = ["pull", "resolve"]\n')
    lab.pod(f"{host}/lab/busybox:1.0", pull_secrets=secret_for(lab, reg))

    failure = lab.failure()

    # Go's TLS server answers plain HTTP with a bare 400; a HEAD shows no body.
    assert failure.message.endswith(
        f"unexpected status from HEAD request to http://{host}/v2/lab/busybox/manifests/1.0: "
        "400 Bad Request"
    ), failure.message
    lab.diagnosed(failure, "http-to-https-registry")


# ---- 3. the network ------------------------------------------------------------------------
def unused_address(network: str) -> str:
    """An address of the lab network's subnet that no container holds (below the registries'
    slots at the top of the subnet, above what Docker hands out from the bottom)."""
    subnet, used = network_ipv4(docker.from_env(), network)
    net = ipaddress.ip_network(subnet)
    for offset in range(100, 200):
        candidate = str(net.broadcast_address - offset)
        if candidate not in used:
            return candidate
    raise AssertionError(f"no unused address in {subnet}: {sorted(used)}")


def test_address_nothing_holds_is_no_route(lab, lab_settings):
    """The image names an address on the lab's own network that no container holds: the
    node's ARP gets no answer."""
    address = unused_address(lab_settings.network_name)
    lab.pod(f"{address}:{REGISTRY_PORT}/lab/busybox:1.0")

    failure = lab.failure(timeout=120)

    assert re.search(
        rf"dial tcp {re.escape(address)}:{REGISTRY_PORT}: connect: no route to host$",
        failure.message,
    ), failure.message
    lab.diagnosed(failure, "no-route")


def test_address_the_node_drops_packets_to_is_timeout(lab, lab_settings, lab_node):
    """The node's own firewall drops what it sends to an address nobody holds: the dial
    waits until containerd gives up. Nothing leaves the node."""
    address = unused_address(lab_settings.network_name)
    rule = f"OUTPUT -d {address} -j DROP"
    lab_node.changes.run(f"drop what the node sends to {address}", f"iptables -I {rule}")
    lab_node.changes.undo.append(["sh", "-c", f"iptables -D {rule}"])
    lab.pod(f"{address}:{REGISTRY_PORT}/lab/busybox:1.0")

    failure = lab.failure(timeout=180)

    assert re.search(
        rf"dial tcp {re.escape(address)}:{REGISTRY_PORT}: i/o timeout$", failure.message
    ), failure.message
    lab.diagnosed(failure, "timeout")


def test_host_that_does_not_resolve_is_dns_failure(lab):
    host = f"no-such-registry-{uuid.uuid4().hex[:6]}.invalid:{REGISTRY_PORT}"
    lab.pod(f"{host}/lab/busybox:1.0")

    failure = lab.failure(timeout=120)

    assert f"dial tcp: lookup {host.split(':')[0]}" in failure.message, failure.message
    lab.diagnosed(failure, "dns-failure")


def test_nothing_listening_is_connection_refused(lab, lab_secret_registry):
    host = f"{lab_secret_registry.spec.name}:{REGISTRY_PORT + 999}"
    lab.pod(f"{host}/lab/busybox:1.0")

    failure = lab.failure()

    assert failure.message.endswith("connect: connection refused"), failure.message
    lab.diagnosed(failure, "connection-refused")


def mirror_for_docker_hub(lab_node, mirror, ca_pem: bytes, mirror_port: int) -> None:
    """docker.io served by ``mirror`` at ``mirror_port`` on its address; the origin stands at a
    closed port of the same address, so nothing leaves the lab network."""
    ca = "/etc/pull-lab/doctor-mirror-ca.crt"
    lab_node.changes.make_dir("/etc/pull-lab")
    lab_node.changes.write(ca, ca_pem)
    lab_node.install_hosts_toml(
        "docker.io",
        f'server = "https://{mirror.ip}:5999"\n\n[host."https://{mirror.ip}:{mirror_port}"]\n'
        f'  capabilities = ["pull", "resolve"]\n  ca = "{ca}"\n',
    )


def test_mirror_that_does_not_answer_is_mirror_unreachable(lab, lab_registries, lab_node, lab_pki):
    """docker.io goes to a mirror from hosts.toml, and nothing listens there: the message names
    the mirror's address, not the image's registry; the fix is in hosts.toml."""
    mirror = own_registry(lab_registries, "mirror")
    mirror_for_docker_hub(lab_node, mirror, lab_pki.ca_pem, REGISTRY_PORT + 998)
    lab.pod("docker.io/lab/busybox:1.0")

    failure = lab.failure()

    assert f"dial tcp {mirror.ip}:{REGISTRY_PORT + 998}: connect: connection refused" in (
        failure.message
    ), failure.message
    answer = lab.diagnosed(failure, "mirror-unreachable")
    assert "/etc/containerd/certs.d/docker.io/hosts.toml" in answer.first["fix"], answer.first


def test_secret_keyed_to_the_mirror_is_a_secret_for_another_host(
    lab, lab_registries, lab_node, lab_pki
):
    """The mirror answers 401: the secret is keyed to the mirror, the kubelet matches docker.io.
    containerd 2.x's message names no host, so doctor claims none: no "containerd reached"
    note (containerd 1.6's message named the mirror, and doctor said so)."""
    mirror = own_registry(lab_registries, "mirror")
    mirror_for_docker_hub(lab_node, mirror, lab_pki.ca_pem, REGISTRY_PORT)
    lab.pod("docker.io/lab/busybox:1.0", pull_secrets=secret_for(lab, mirror))

    failure = lab.failure()

    assert failure.message.endswith(
        '"docker.io/lab/busybox:1.0": pull access denied, repository does not exist or may '
        "require authorization: authorization failed: no basic auth credentials"
    ), failure.message
    answer = lab.diagnosed(failure, "secret-other-host", capture_as="mirror-secret-other-host")
    assert not any(note.startswith("containerd reached") for note in answer.first["notes"]), (
        answer.first
    )


# ---- 4. what the scenarios also meet, one pod each -----------------------------------------
def test_init_container_pull_failure_is_named_for_the_init_container(
    lab, lab_secret_registry, lab_fresh_image
):
    """The init container's image needs credentials the pod does not have; the app waits."""
    image = lab_fresh_image(lab_secret_registry)
    lab.pod(image, init_image=image)

    failure = lab.failure(container="setup")

    pod = lab.core.read_namespaced_pod(APP, lab.namespace)
    (app,) = pod.status.container_statuses
    assert app.state.waiting.reason == "PodInitializing", app.state
    lab.diagnosed(failure, "no-credentials", capture_as="init-container")


def test_never_pull_without_the_image(lab, lab_secret_registry):
    image = f"{lab_secret_registry.spec.host}/lab/busybox:never-{uuid.uuid4().hex[:6]}"
    lab.pod(image, pull_policy="Never")

    failure = lab.failure(reason="ErrImageNeverPull")

    assert failure.message == (
        f'Container image "{image}" is not present with pull policy of Never'
    ), failure.message
    lab.diagnosed(failure, "never-pull")


def test_invalid_image_name(lab):
    lab.pod("UPPER/Case:tag")

    failure = lab.failure(reason="InvalidImageName")

    assert failure.message.endswith(
        "invalid reference format: repository name (Case) must be lowercase"
    ), failure.message
    lab.diagnosed(failure, "invalid-image-name")


def test_missing_tag_is_not_found(lab, lab_secret_registry):
    reg = lab_secret_registry
    lab.pod(f"{reg.spec.host}/lab/busybox:no-such-tag", pull_secrets=secret_for(lab, reg))

    failure = lab.failure()

    lab.diagnosed(failure, "not-found")


def test_missing_repository_is_not_found(lab, lab_secret_registry):
    reg = lab_secret_registry
    ref = f"{reg.spec.host}/lab/no-such-repo:1.0"
    lab.pod(ref, pull_secrets=secret_for(lab, reg))

    failure = lab.failure()

    assert failure.message == (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
        f'failed to resolve reference "{ref}": {ref}: not found'
    ), "a missing repository reads like a missing tag: " + failure.message

    lab.diagnosed(failure, "not-found", capture_as="not-found-repository")


def test_wrong_password(lab, lab_secret_registry, lab_fresh_image):
    reg = lab_secret_registry
    user, _ = reg.credentials
    lab.secret("registry-1", dockerconfigjson(reg.spec.host, user, new_password(user)))
    lab.pod(lab_fresh_image(reg), pull_secrets=("registry-1",))

    failure = lab.failure()

    lab.diagnosed(failure, "wrong-password")


def test_no_credentials(lab, lab_secret_registry, lab_fresh_image):
    lab.pod(lab_fresh_image(lab_secret_registry))

    failure = lab.failure()

    assert failure.message.endswith("authorization failed: no basic auth credentials"), (
        failure.message
    )
    lab.diagnosed(failure, "no-credentials")


def test_unknown_ca(lab, lab_registries):
    """A registry whose CA the node was never given."""
    reg = own_registry(lab_registries, "noca")
    lab.pod(f"{reg.spec.host}/lab/busybox:1.0", pull_secrets=secret_for(lab, reg))

    failure = lab.failure()

    assert failure.message.endswith("x509: certificate signed by unknown authority")
    lab.diagnosed(failure, "unknown-ca")


def test_name_not_in_certificate(lab, lab_registries, lab_node, lab_pki):
    alias = f"reg-alias-{uuid.uuid4().hex[:6]}"
    reg = own_registry(lab_registries, "alias", aliases=(alias,))
    host = f"{alias}:{REGISTRY_PORT}"
    lab_node.install_ca(host, lab_pki.ca_pem)
    user, password = reg.credentials
    lab.secret("registry-1", dockerconfigjson(host, user, password))
    lab.pod(f"{host}/lab/busybox:1.0", pull_secrets=("registry-1",))

    failure = lab.failure()

    assert re.search(rf"x509: certificate is valid for .+, not {alias}$", failure.message)
    lab.diagnosed(failure, "name-mismatch")


def test_client_certificate_required(lab, lab_registries, lab_node, lab_pki):
    """The registry verifies client certificates; the node trusts its CA but has no pair."""
    reg = own_registry(lab_registries, "mtls", mtls=True)
    lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    lab.pod(f"{reg.spec.host}/lab/busybox:1.0", pull_secrets=secret_for(lab, reg))

    failure = lab.failure()

    assert failure.message.endswith("remote error: tls: bad certificate"), failure.message
    lab.diagnosed(failure, "client-cert-required")


# ---- 5. the platform -----------------------------------------------------------------------
def test_index_without_the_node_platform(lab, lab_secret_registry, lab_images):
    """A manifest list whose only image is linux/arm64 (the workload's layers relabelled)."""
    reg = lab_secret_registry
    tag = f"arm64-only-{uuid.uuid4().hex[:6]}"
    image = prepared(lab_images.workload_image)
    push_index_for(reg.session(reg.auth), reg.url, "lab/busybox", tag, image, "linux/arm64")
    ref = f"{reg.spec.host}/lab/busybox:{tag}"
    lab.pod(ref, pull_secrets=secret_for(lab, reg))

    failure = lab.failure()

    assert failure.message == (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
        "no match for platform in manifest: not found"
    ), failure.message
    lab.diagnosed(failure, "no-platform-manifest")


# ---- 6. pull secrets (the node trusts the CA, holds no credentials) ------------------------
def test_secret_missing(lab, lab_secret_registry, lab_fresh_image):
    lab.pod(lab_fresh_image(lab_secret_registry), pull_secrets=("registry-nope",))

    lab.diagnosed(lab.failure(), "secret-missing")


def test_secret_in_another_namespace(lab, lab_core_v1, lab_secret_registry, lab_fresh_image):
    reg = lab_secret_registry
    other = f"{lab.namespace}-other"
    lab_core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        user, password = reg.credentials
        elsewhere = CauseLab(lab.core, other, lab.run_id, lab.kubeconfig)
        elsewhere.secret("registry-1", dockerconfigjson(reg.spec.host, user, password))
        lab.pod(lab_fresh_image(reg), pull_secrets=("registry-1",))

        lab.diagnosed(lab.failure(), "secret-other-namespace")
    finally:
        lab_core_v1.delete_namespace(other, grace_period_seconds=0)


def test_secret_keyed_without_the_port(lab, lab_secret_registry, lab_fresh_image):
    reg = lab_secret_registry
    user, password = reg.credentials
    lab.secret("registry-1", dockerconfigjson(reg.spec.name, user, password))
    lab.pod(lab_fresh_image(reg), pull_secrets=("registry-1",))

    lab.diagnosed(lab.failure(), "secret-port-mismatch")


def test_secret_of_type_opaque(lab, lab_secret_registry, lab_fresh_image):
    reg = lab_secret_registry
    user, password = reg.credentials
    content = dockerconfigjson(reg.spec.host, user, password)
    lab.secret("registry-1", content, secret_type="Opaque")
    lab.pod(lab_fresh_image(reg), pull_secrets=("registry-1",))

    lab.diagnosed(lab.failure(), "secret-wrong-type")


def test_dockerconfigjson_without_auths(lab, lab_secret_registry, lab_fresh_image):
    reg = lab_secret_registry
    user, password = reg.credentials
    lab.secret("registry-1", dockercfg(reg.spec.host, user, password))  # the bare host map
    lab.pod(lab_fresh_image(reg), pull_secrets=("registry-1",))

    lab.diagnosed(lab.failure(), "secret-wrong-shape")


def test_config_json_with_a_credential_store(lab, lab_secret_registry, lab_fresh_image):
    reg = lab_secret_registry
    lab.secret("registry-1", config_json({reg.spec.host: {}}, credsStore="desktop"))
    lab.pod(lab_fresh_image(reg), pull_secrets=("registry-1",))

    lab.diagnosed(lab.failure(), "credsstore")


def test_secret_keyed_to_docker_hub(lab, lab_secret_registry, lab_fresh_image):
    reg = lab_secret_registry
    user, password = reg.credentials
    lab.secret("registry-1", dockerconfigjson("https://index.docker.io/v1/", user, password))
    lab.pod(lab_fresh_image(reg), pull_secrets=("registry-1",))

    lab.diagnosed(lab.failure(), "secret-other-host")


def test_client_certificate_ranks_before_a_secret_for_another_host(
    lab, lab_registries, lab_node, lab_pki
):
    """mTLS fails before any credential is sent: that comes first, the secret's host second."""
    reg = own_registry(lab_registries, "mtls", mtls=True)
    lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    user, password = reg.credentials
    lab.secret("registry-1", dockerconfigjson(f"elsewhere.{reg.spec.host}", user, password))
    lab.pod(f"{reg.spec.host}/lab/busybox:1.0", pull_secrets=("registry-1",))

    answer = lab.diagnosed(lab.failure(), "client-cert-required", "mtls-ranked-before-secret")

    assert answer.names == ["client-cert-required", "secret-other-host"], answer.names


def two_registries(lab_secret_registry, lab_registries, lab_node, lab_pki, lab_fresh_image):
    """The secrets registry and a second one the node trusts; a fresh image in each."""
    second = lab_registries.start("second")
    lab_node.install_ca(second.spec.host, lab_pki.ca_pem)
    return (
        (lab_secret_registry, lab_fresh_image(lab_secret_registry)),
        (second, lab_fresh_image(second)),
    )


def test_two_registries_one_secret(
    lab, lab_secret_registry, lab_registries, lab_node, lab_pki, lab_fresh_image
):
    """Container a pulls with registry-1; b's registry has no secret listed: b alone fails."""
    (reg1, image_a), (_, image_b) = two_registries(
        lab_secret_registry, lab_registries, lab_node, lab_pki, lab_fresh_image
    )
    secrets = secret_for(lab, reg1)
    lab.pod(image_a, container="a", extra_containers=(("b", image_b),), pull_secrets=secrets)

    failure = lab.failure(container="b")

    lab.diagnosed(failure, "secret-other-host", "multi-registry-one-secret")


def test_two_registries_the_wrong_secret_is_blamed(
    lab, lab_secret_registry, lab_registries, lab_node, lab_pki, lab_fresh_image
):
    """Two secrets; registry-2 holds a wrong password: it, not registry-1, is blamed."""
    (reg1, image_a), (reg2, image_b) = two_registries(
        lab_secret_registry, lab_registries, lab_node, lab_pki, lab_fresh_image
    )
    user, _ = reg2.credentials
    secret_for(lab, reg1, "registry-1")
    lab.secret("registry-2", dockerconfigjson(reg2.spec.host, user, new_password(user)))
    pull_secrets = ("registry-1", "registry-2")
    lab.pod(image_a, container="a", extra_containers=(("b", image_b),), pull_secrets=pull_secrets)

    answer = lab.diagnosed(
        lab.failure(container="b"), "wrong-password", "multi-registry-wrong-secret"
    )

    assert "registry-2" in answer.first["cause"], answer.first
    assert "registry-1" not in answer.first["cause"], answer.first


def limited_kubeconfig(
    lab: CauseLab,
    tmp_path: Path,
    resources: tuple[str, ...] = ("pods", "events", "serviceaccounts"),
) -> Path:
    """A kubeconfig for a service account that may get and list only ``resources`` here
    (by default pods, events and ServiceAccounts: not secrets)."""
    rbac = client.RbacAuthorizationV1Api(lab.core.api_client)
    ns, name = lab.namespace, "doctor-limited"
    lab.core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
    rule = {"apiGroups": [""], "resources": list(resources)}
    rbac.create_namespaced_role(
        ns, {"metadata": {"name": name}, "rules": [{**rule, "verbs": ["get", "list"]}]}
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        },
    )
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    token = lab.core.create_namespaced_service_account_token(name, ns, request).status.token
    register_known(name, token)  # a credential like any other: masked wherever it shows
    config = yaml.safe_load(lab.kubeconfig.read_text())
    config["users"] = [{"name": name, "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = name
    path = tmp_path / "limited.kubeconfig"
    write_private(path, yaml.safe_dump(config).encode())
    return path


def test_secret_doctor_may_not_read_is_forbidden(lab, lab_secret_registry, tmp_path):
    """The secret holds a wrong password, and doctor runs as a user who may not read
    secrets: it says it could not look ("forbidden"), never "missing" or "wrong password"."""
    reg = lab_secret_registry
    user, _ = reg.credentials
    lab.secret("registry-1", dockerconfigjson(reg.spec.host, user, new_password(user)))
    lab.pod(f"{reg.spec.host}/lab/busybox:1.0", pull_secrets=("registry-1",))
    failure = lab.failure()
    kubeconfig = limited_kubeconfig(lab, tmp_path)
    limited = CauseLab(
        client.CoreV1Api(api_client(kubeconfig)), lab.namespace, lab.run_id, kubeconfig
    )

    answer = limited.diagnosed(failure, "secret-forbidden")

    assert not {"secret-missing", "wrong-password"} & set(answer.names), answer.names


# ---- 7. the ServiceAccount ----------------------------------------------------------------
def service_account(lab: CauseLab, name: str = "builder") -> str:
    lab.core.create_namespaced_service_account(lab.namespace, {"metadata": {"name": name}})
    return name


def test_secret_added_to_the_serviceaccount_after_the_pod(
    lab, lab_secret_registry, lab_fresh_image
):
    """The pod is made under ServiceAccount builder, which lists no pull secret: 401. Then
    registry-1 (the right credentials) is added to builder; the pod never gets it."""
    reg = lab_secret_registry
    sa = service_account(lab)
    lab.pod(lab_fresh_image(reg), service_account=sa)
    failure = lab.failure()
    secret_for(lab, reg)
    lab.core.patch_namespaced_service_account(
        sa, lab.namespace, {"imagePullSecrets": [{"name": "registry-1"}]}
    )

    answer = lab.diagnosed(
        failure, "sa-secret-added-after-pod", names=["sa-secret-added-after-pod"]
    )

    pod = lab.core.read_namespaced_pod(APP, lab.namespace)
    assert not pod.spec.image_pull_secrets, pod.spec.image_pull_secrets
    assert answer.first["evidenceSource"] == "serviceaccount", answer.first


def test_serviceaccount_doctor_may_not_read_is_forbidden(
    lab, lab_secret_registry, lab_fresh_image, tmp_path
):
    """No pull secret (401), and doctor runs as a user who may read pods, events and secrets
    but not ServiceAccounts: it says it could not look, after the 401's own finding."""
    lab.pod(lab_fresh_image(lab_secret_registry))
    failure = lab.failure()
    kubeconfig = limited_kubeconfig(lab, tmp_path, ("pods", "events", "secrets"))
    limited = CauseLab(
        client.CoreV1Api(api_client(kubeconfig)), lab.namespace, lab.run_id, kubeconfig
    )

    answer = limited.diagnosed(
        failure,
        "no-credentials",
        capture_as="serviceaccount-forbidden",
        names=["no-credentials", "serviceaccount-forbidden"],
    )

    assert answer.doc["findings"][1]["evidence"] == "get serviceaccount default: 403 Forbidden"


def test_serviceaccount_deleted_after_the_pod(lab, lab_secret_registry, lab_fresh_image):
    """The pod's ServiceAccount is deleted once the pod failed to pull: the pod stays."""
    sa = service_account(lab)
    lab.pod(lab_fresh_image(lab_secret_registry), service_account=sa)
    failure = lab.failure()
    lab.core.delete_namespaced_service_account(sa, lab.namespace)

    answer = lab.diagnosed(
        failure,
        "no-credentials",
        capture_as="serviceaccount-missing",
        names=["no-credentials", "serviceaccount-missing"],
    )

    pod = lab.core.read_namespaced_pod(APP, lab.namespace)
    assert pod.spec.service_account_name == sa and pod.status.phase == "Pending", pod.status
    assert answer.doc["findings"][1]["evidence"] == f"get serviceaccount {sa}: 404 Not Found"


# ---- 8. a kubelet restart while a pod backs off --------------------------------------------
def test_a_kubelet_restart_while_a_pod_backs_off(
    lab, lab_secret_registry, lab_fresh_image, lab_node
):
    """A pod backs off after a 401 and the kubelet restarts: for a while the status says only
    ContainerCreating, with no message, while the Failed events still hold the 401; doctor
    reads them. The next pull puts the same message back in the status."""
    lab.pod(lab_fresh_image(lab_secret_registry))
    first = lab.failure()
    lab.failure(reason="ImagePullBackOff")

    lab_node.restart_kubelet()
    forgot = lab.failure(reason="ContainerCreating", timeout=20)
    answer = lab.diagnosed(
        Failure(APP, APP, forgot.reason, first.message),
        "no-credentials",
        capture_as="kubelet-restart-container-creating",
        names=["no-credentials"],
    )
    again = lab.failure(timeout=90)

    assert forgot.message == "", forgot
    assert answer.doc["containers"][0]["reason"] == "ContainerCreating", answer.doc["containers"]
    assert answer.first["evidenceSource"] == "event", answer.first
    assert any("says only ContainerCreating" in note for note in answer.first["notes"])
    assert again.message == first.message, (again.message, first.message)


# ---- and a pod that pulled -----------------------------------------------------------------
def test_a_pod_that_pulled_exits_0(lab, lab_secret_registry, lab_fresh_image):
    reg = lab_secret_registry
    lab.pod(lab_fresh_image(reg), pull_secrets=secret_for(lab, reg))
    wait_pod_running(lab.core, lab.namespace, APP)

    answer = ask_doctor(lab.kubeconfig, lab.namespace, APP)

    save_capture(
        lab.core, lab.namespace, APP, "all-pulled", "all-pulled", {"first": None, "names": []}
    )
    assert (answer.exit_code, answer.doc["result"], answer.names) == (0, "all-pulled", [])
