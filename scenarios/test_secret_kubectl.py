"""Tutorial section 2: `kubectl create secret docker-registry`, then imagePullSecrets.

The node trusts the registry's CA but holds no credentials: every pull authenticates with the
pod's secrets alone, and every image tag is new to the node, so each pull really happens.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from lab.credentials import TUTORIAL_PASSWORD, TUTORIAL_USER, new_password, register_known
from lab.expect import event_counts
from lab.pods import hold_running, kubelet_sync_period, pod_manifest
from lab.secrets import DOCKERCFG, DOCKERCONFIGJSON, SecretMaker, decode_secret, dockercfg
from scenarios.conftest import bad_password

# How long past one kubelet sync period a running pod is watched for a change.
SYNC_MARGIN = 15.0

# The tutorial's `kubectl get secret registry-1 -o yaml` shows this .dockercfg: old kubectl
# ignored --docker-server there and keyed the credentials to Docker Hub.
TUTORIAL_DOCKERCFG = (
    "eyJodHRwczovL2luZGV4LmRvY2tlci5pby92MS8iOnsidXNlcm5hbWUiOiJmb28iLCJwYXNzd29yZCI6ImZvbzEy"
    "MyIsImVtYWlsIjoiZm9vQGZvbyIsImF1dGgiOiJabTl2T21admJ6RXlNdz09In19"
)


@pytest.fixture
def secrets(lab_cluster, kube_api, transcript):
    return SecretMaker(lab_cluster.kubeconfig_path, lab_cluster.kubectl_path, kube_api, transcript)


def nginx_pod(
    name: str, image: str, run_id: str, secrets: tuple[str, ...], policy: str = "IfNotPresent"
):
    return pod_manifest(
        name, image, run_id=run_id, container="nginx", pull_secrets=secrets, pull_policy=policy
    )


@pytest.mark.scenario("secret-kubectl")
def test_secret_kubectl(scenario, secrets, secret_registry, fresh_image, lab_settings):
    """registry-1 from kubectl: today a dockerconfigjson secret keyed to --docker-server."""
    reg = secret_registry
    user, password = reg.credentials
    image = fresh_image(reg)
    secret = secrets.via_kubectl_create(
        "registry-1", scenario.namespace, reg.spec.host, user, password, "foo@foo"
    )
    scenario.kubectl("get", "secret", "registry-1", title="kubectl get secret registry-1")

    scenario.expect(f"type {DOCKERCONFIGJSON}, auths keyed to {reg.spec.host}")
    assert secret.type == DOCKERCONFIGJSON
    auths = decode_secret(secret)[".dockerconfigjson"]["auths"]
    entry = auths[reg.spec.host]
    assert (entry["username"], entry["password"], entry["email"]) == (user, password, "foo@foo")
    assert base64.b64decode(entry["auth"]).decode() == f"{user}:{password}"
    scenario.saw(f"secret type {secret.type}, auths for {', '.join(auths)}")
    scenario.differs(
        "kubectl created type kubernetes.io/dockercfg keyed to https://index.docker.io/v1/",
        "kubectl creates kubernetes.io/dockerconfigjson keyed to --docker-server, with username, "
        "password, email and auth",
    )

    scenario.create_pod(
        nginx_pod("nginx-registry-2", image, lab_settings.run_id, ("registry-1",)),
        "nginx-registry-2.yaml",
    )
    pod = scenario.expect_running("nginx-registry-2")
    scenario.pulled_fresh(pod, image)
    scenario.describe_tail("nginx-registry-2")


@pytest.mark.scenario("secret-legacy-dockercfg")
def test_secret_legacy_dockercfg(scenario, secrets, secret_registry, fresh_image, lab_settings):
    """A kubernetes.io/dockercfg secret (the bare host map of ~/.dockercfg) is still honoured."""
    reg = secret_registry
    user, password = reg.credentials
    image = fresh_image(reg)
    content = dockercfg(reg.spec.host, user, password, "foo@foo")
    secret = secrets.via_yaml("registry-1", scenario.namespace, content, DOCKERCFG, ".dockercfg")
    assert secret.type == DOCKERCFG and reg.spec.host in decode_secret(secret)[".dockercfg"]
    scenario.saw(f"secret type {secret.type} with key .dockercfg: {{{reg.spec.host!r}: ...}}")
    scenario.create_pod(
        nginx_pod("nginx-registry-2", image, lab_settings.run_id, ("registry-1",)),
        "nginx-registry-2.yaml",
    )
    pod = scenario.expect_running("nginx-registry-2")
    scenario.pulled_fresh(pod, image)


@pytest.mark.scenario("secret-tutorial-dockercfg")
def test_secret_tutorial_dockercfg(scenario, secrets, secret_registry, fresh_image, lab_settings):
    """The tutorial's own registry-1 content never matches a private registry."""
    register_known(TUTORIAL_USER, TUTORIAL_PASSWORD)  # the tutorial's published credentials
    reg = secret_registry
    image = fresh_image(reg)
    content = base64.b64decode(TUTORIAL_DOCKERCFG)
    keys = list(json.loads(content))
    scenario.file(
        "the tutorial's .dockercfg value (its kubectl get secret registry-1 -o yaml)",
        "tutorial-dockercfg.b64",
        TUTORIAL_DOCKERCFG,
    )
    decoded = scenario.on_host(
        "decode the tutorial's .dockercfg",
        ["base64", "-d"],
        input=TUTORIAL_DOCKERCFG.encode(),
        input_name="tutorial-dockercfg.b64",
    )
    assert decoded == content.decode()
    assert keys == ["https://index.docker.io/v1/"]
    secrets.via_yaml("registry-1", scenario.namespace, content, DOCKERCFG, ".dockercfg")
    scenario.create_pod(
        nginx_pod("nginx-registry-2", image, lab_settings.run_id, ("registry-1",)),
        "nginx-registry-2.yaml",
    )
    scenario.expect("no key matches the image's host: the pull is anonymous and gets 401")
    scenario.expect_pull_failure("nginx-registry-2", "unauthorized", diagnosis="secret-other-host")
    scenario.differs(
        "this secret made nginx-registry-2 Running",
        "a key of https://index.docker.io/v1/ matches only Docker Hub images; the pull of "
        f"{reg.spec.host} goes without credentials (the tutorial's pod was helped by the image "
        "docker had already pulled, or by node credentials)",
    )


@pytest.mark.scenario("multi-registry")
def test_multi_registry(
    scenario, secrets, secret_registry, registries, fresh_image, lab_settings, node, lab_pki
):
    """Two registries with different credentials: one secret each, both listed in the pod."""
    first = secret_registry
    second = registries.start("second", users={"bar": new_password("bar")})
    node.install_ca(second.spec.host, lab_pki.ca_pem)
    image_a, image_b = fresh_image(first), fresh_image(second)
    for name, reg in (("registry-1", first), ("registry-2", second)):
        user, password = reg.credentials
        secrets.via_kubectl_create(name, scenario.namespace, reg.spec.host, user, password)
    both = pod_manifest(
        "two-registries",
        image_a,
        run_id=lab_settings.run_id,
        container="a",
        pull_secrets=("registry-1", "registry-2"),
        extra_containers=(("b", image_b),),
    )
    scenario.create_pod(both)
    pod = scenario.expect_running("two-registries")
    scenario.pulled_fresh(pod, image_a)
    scenario.expect_event(pod, "Pulled", f'Successfully pulled image "{image_b}"')

    scenario.expect("with registry-2 dropped from the pod, container b alone fails (401)")
    image_a2, image_b2 = fresh_image(first), fresh_image(second)
    one = pod_manifest(
        "one-secret",
        image_a2,
        run_id=lab_settings.run_id,
        container="a",
        pull_secrets=("registry-1",),
        extra_containers=(("b", image_b2),),
    )
    scenario.create_pod(one)
    pod = scenario.expect_pull_failure(
        "one-secret", "unauthorized", container="b", diagnosis="secret-other-host"
    )
    scenario.expect_event(pod, "Pulled", f'Successfully pulled image "{image_a2}"')
    states = {cs.name: cs.state for cs in pod.status.container_statuses}
    assert states["b"].waiting is not None
    scenario.saw(
        "container a pulled with registry-1; container b waits: no secret for its registry"
    )


def expect_running_pod_left_alone(scenario, secrets, reg, fresh_image, lab_settings, pod) -> None:
    """Break the secret again; once a probe pod proves the kubelet reads the broken secret,
    watch the running pod for a whole kubelet sync period: same uid, restart count and
    container ID, still running, and not one new event (no pull, no kill)."""
    core = scenario.core
    user, _ = reg.credentials
    sync = kubelet_sync_period(core, pod.spec.node_name)
    scenario.expect(
        f"after the secret breaks again the running pod is left alone for a sync period "
        f"({sync:.0f}s, the node kubelet's syncFrequency) + {SYNC_MARGIN:.0f}s"
    )
    events_before = event_counts(core, scenario.namespace, pod)
    scenario.kubectl("delete", "secret", "registry-1", title="kubectl delete secret registry-1")
    secrets.docker_registry("registry-1", scenario.namespace, reg.spec.host, user, bad_password())
    probe = nginx_pod("probe", fresh_image(reg), lab_settings.run_id, ("registry-1",))
    scenario.create_pod(probe, "probe.yaml")
    scenario.expect_pull_failure("probe", "unauthorized", diagnosis="wrong-password")
    updates = hold_running(core, scenario.namespace, pod, sync + SYNC_MARGIN)
    scenario.get_pod("nginx-registry-2")
    events_after = event_counts(core, scenario.namespace, pod)
    assert events_after.per_reason == events_before.per_reason, (
        f"the running pod got events: {events_before.per_reason} -> {events_after.per_reason}"
    )
    scenario.saw(
        f"a probe pod with the broken secret got 401; the running pod then stayed as it was "
        f"for {sync + SYNC_MARGIN:.0f}s ({updates} status updates watched): same uid, "
        "restartCount and container ID, no new event"
    )


@pytest.mark.scenario("secret-update")
def test_secret_update(scenario, secrets, secret_registry, fresh_image, lab_settings, core_v1):
    """Fixing a secret helps at the next pull attempt; nothing restarts a running pod."""
    reg = secret_registry
    user, password = reg.credentials
    image = fresh_image(reg)
    secrets.docker_registry("registry-1", scenario.namespace, reg.spec.host, user, bad_password())
    scenario.create_pod(
        nginx_pod("nginx-registry-2", image, lab_settings.run_id, ("registry-1",)),
        "nginx-registry-2.yaml",
    )
    pod = scenario.expect_pull_failure(
        "nginx-registry-2", "unauthorized", diagnosis="wrong-password"
    )
    scenario.expect_back_off("nginx-registry-2")
    uid = pod.metadata.uid

    before_fix = scenario.event_snapshot(pod)
    t0 = time.monotonic()
    scenario.kubectl("delete", "secret", "registry-1", title="kubectl delete secret registry-1")
    secrets.docker_registry("registry-1", scenario.namespace, reg.spec.host, user, password)
    scenario.expect("the next retry (after back-off) uses the fixed secret: same pod Running")
    pod = scenario.expect_running("nginx-registry-2", timeout=360, recovering=True)
    scenario.timed("recovery: secret fixed to Running (kubelet back-off)", time.monotonic() - t0)
    assert pod.metadata.uid == uid
    scenario.pulled_fresh(pod, image, after=before_fix)
    scenario.saw(f"same pod uid {uid} Running")

    expect_running_pod_left_alone(scenario, secrets, reg, fresh_image, lab_settings, pod)
    scenario.differs(
        "if a secret is updated, the pods that use it are updated automatically",
        "a pull secret is read at each pull attempt; a failing pod recovers at its next retry "
        "(back-off up to 5 minutes), a running pod is never restarted or re-pulled",
    )
