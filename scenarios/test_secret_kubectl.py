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
from lab.dockerconfig import dockercfg
from lab.expect import event_counts
from lab.pods import kubelet_sync_period
from lab.secrets import DOCKERCFG, DOCKERCONFIGJSON, decode_secret
from lab.tutorial import wrong_password
from lab.waits import hold_running

# How long past one kubelet sync period a running pod is watched for a change.
SYNC_MARGIN = 15.0

# The tutorial's `kubectl get secret registry-1 -o yaml` shows this .dockercfg: old kubectl
# ignored --docker-server there and keyed the credentials to Docker Hub.
TUTORIAL_DOCKERCFG = (
    "eyJodHRwczovL2luZGV4LmRvY2tlci5pby92MS8iOnsidXNlcm5hbWUiOiJmb28iLCJwYXNzd29yZCI6ImZvbzEy"
    "MyIsImVtYWlsIjoiZm9vQGZvbyIsImF1dGgiOiJabTl2T21admJ6RXlNdz09In19"
)


@pytest.mark.scenario("secret-kubectl")
def test_secret_kubectl(lab_scenario, lab_secret_registry, lab_fresh_image):
    """registry-1 from kubectl: today a dockerconfigjson secret keyed to --docker-server."""
    reg = lab_secret_registry
    user, password = reg.credentials
    image = lab_fresh_image(reg)
    secret = lab_scenario.secrets.via_kubectl_create(
        "registry-1", lab_scenario.namespace, reg.spec.host, user, password, "foo@foo"
    )
    lab_scenario.kubectl("get", "secret", "registry-1", title="kubectl get secret registry-1")

    lab_scenario.expect(f"type {DOCKERCONFIGJSON}, auths keyed to {reg.spec.host}")
    assert secret.type == DOCKERCONFIGJSON
    auths = decode_secret(secret)[".dockerconfigjson"]["auths"]
    entry = auths[reg.spec.host]
    assert (entry["username"], entry["password"], entry["email"]) == (user, password, "foo@foo")
    assert base64.b64decode(entry["auth"]).decode() == f"{user}:{password}"
    lab_scenario.saw(f"secret type {secret.type}, auths for {', '.join(auths)}")
    lab_scenario.differs(
        "kubectl created type kubernetes.io/dockercfg keyed to https://index.docker.io/v1/",
        "kubectl creates kubernetes.io/dockerconfigjson keyed to --docker-server, with username, "
        "password, email and auth",
    )

    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry-2", image, container="nginx", pull_secrets=("registry-1",))
    )
    pod = lab_scenario.expect_running("nginx-registry-2")
    lab_scenario.pulled_fresh(pod, image)
    lab_scenario.describe_tail("nginx-registry-2")


@pytest.mark.scenario("secret-legacy-dockercfg")
def test_secret_legacy_dockercfg(lab_scenario, lab_secret_registry, lab_fresh_image):
    """A kubernetes.io/dockercfg secret (the bare host map of ~/.dockercfg) is still honoured."""
    reg = lab_secret_registry
    user, password = reg.credentials
    image = lab_fresh_image(reg)
    content = dockercfg(reg.spec.host, user, password, "foo@foo")
    secret = lab_scenario.secrets.via_yaml(
        "registry-1", lab_scenario.namespace, content, DOCKERCFG, ".dockercfg"
    )
    assert secret.type == DOCKERCFG and reg.spec.host in decode_secret(secret)[".dockercfg"]
    lab_scenario.saw(f"secret type {secret.type} with key .dockercfg: {{{reg.spec.host!r}: ...}}")
    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry-2", image, container="nginx", pull_secrets=("registry-1",))
    )
    pod = lab_scenario.expect_running("nginx-registry-2")
    lab_scenario.pulled_fresh(pod, image)


@pytest.mark.scenario("secret-tutorial-dockercfg")
def test_secret_tutorial_dockercfg(lab_scenario, lab_secret_registry, lab_fresh_image):
    """The tutorial's own registry-1 content never matches a private registry."""
    register_known(TUTORIAL_USER, TUTORIAL_PASSWORD)  # the tutorial's published credentials
    reg = lab_secret_registry
    image = lab_fresh_image(reg)
    content = base64.b64decode(TUTORIAL_DOCKERCFG)
    keys = list(json.loads(content))
    lab_scenario.file(
        "the tutorial's .dockercfg value (its kubectl get secret registry-1 -o yaml)",
        "tutorial-dockercfg.b64",
        TUTORIAL_DOCKERCFG,
    )
    decoded = lab_scenario.on_host(
        "decode the tutorial's .dockercfg",
        ["base64", "-d"],
        input=TUTORIAL_DOCKERCFG.encode(),
        input_name="tutorial-dockercfg.b64",
    )
    assert decoded == content.decode()
    assert keys == ["https://index.docker.io/v1/"]
    lab_scenario.secrets.via_yaml(
        "registry-1", lab_scenario.namespace, content, DOCKERCFG, ".dockercfg"
    )
    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry-2", image, container="nginx", pull_secrets=("registry-1",))
    )
    lab_scenario.expect("no key matches the image's host: the pull is anonymous and gets 401")
    lab_scenario.expect_pull_failure(
        "nginx-registry-2", "unauthorized", diagnosis="secret-other-host"
    )
    lab_scenario.differs(
        "this secret made nginx-registry-2 Running",
        "a key of https://index.docker.io/v1/ matches only Docker Hub images; the pull of "
        f"{reg.spec.host} goes without credentials (the tutorial's pod was helped by the image "
        "docker had already pulled, or by node credentials)",
    )


@pytest.mark.scenario("multi-registry")
def test_multi_registry(
    lab_scenario, lab_secret_registry, lab_registries, lab_fresh_image, lab_node, lab_pki
):
    """Two registries with different credentials: one secret each, both listed in the pod."""
    first = lab_secret_registry
    second = lab_registries.start("second", users={"bar": new_password("bar")})
    lab_node.install_ca(second.spec.host, lab_pki.ca_pem)
    image_a, image_b = lab_fresh_image(first), lab_fresh_image(second)
    for name, reg in (("registry-1", first), ("registry-2", second)):
        user, password = reg.credentials
        lab_scenario.secrets.via_kubectl_create(
            name, lab_scenario.namespace, reg.spec.host, user, password
        )
    both = lab_scenario.pod(
        "two-registries",
        image_a,
        container="a",
        pull_secrets=("registry-1", "registry-2"),
        extra_containers=(("b", image_b),),
    )
    lab_scenario.create_pod(both)
    pod = lab_scenario.expect_running("two-registries")
    lab_scenario.pulled_fresh(pod, image_a)
    lab_scenario.expect_event(pod, "Pulled", f'Successfully pulled image "{image_b}"')

    lab_scenario.expect("with registry-2 dropped from the pod, container b alone fails (401)")
    image_a2, image_b2 = lab_fresh_image(first), lab_fresh_image(second)
    one = lab_scenario.pod(
        "one-secret",
        image_a2,
        container="a",
        pull_secrets=("registry-1",),
        extra_containers=(("b", image_b2),),
    )
    lab_scenario.create_pod(one)
    # Inside a cluster the lab did not make, both registries may sit on one node's address,
    # told apart by port only: doctor then rightly names the port.
    same_host = first.spec.name == second.spec.name
    pod = lab_scenario.expect_pull_failure(
        "one-secret",
        "unauthorized",
        container="b",
        diagnosis="secret-port-mismatch" if same_host else "secret-other-host",
    )
    lab_scenario.expect_event(pod, "Pulled", f'Successfully pulled image "{image_a2}"')
    states = {cs.name: cs.state for cs in pod.status.container_statuses}
    assert states["b"].waiting is not None
    lab_scenario.saw(
        "container a pulled with registry-1; container b waits: no secret for its registry"
    )


def expect_running_pod_left_alone(scenario, reg, fresh_image, pod) -> None:
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
    scenario.secrets.docker_registry(
        "registry-1", scenario.namespace, reg.spec.host, user, wrong_password()
    )
    probe = scenario.pod("probe", fresh_image(reg), container="nginx", pull_secrets=("registry-1",))
    scenario.create_pod(probe)
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
def test_secret_update(lab_scenario, lab_secret_registry, lab_fresh_image):
    """Fixing a secret helps at the next pull attempt; nothing restarts a running pod."""
    reg = lab_secret_registry
    user, password = reg.credentials
    image = lab_fresh_image(reg)
    lab_scenario.secrets.docker_registry(
        "registry-1", lab_scenario.namespace, reg.spec.host, user, wrong_password()
    )
    lab_scenario.create_pod(
        lab_scenario.pod("nginx-registry-2", image, container="nginx", pull_secrets=("registry-1",))
    )
    pod = lab_scenario.expect_pull_failure(
        "nginx-registry-2", "unauthorized", diagnosis="wrong-password"
    )
    lab_scenario.expect_back_off("nginx-registry-2")
    uid = pod.metadata.uid

    before_fix = lab_scenario.event_snapshot(pod)
    t0 = time.monotonic()
    lab_scenario.kubectl("delete", "secret", "registry-1", title="kubectl delete secret registry-1")
    lab_scenario.secrets.docker_registry(
        "registry-1", lab_scenario.namespace, reg.spec.host, user, password
    )
    lab_scenario.expect("the next retry (after back-off) uses the fixed secret: same pod Running")
    pod = lab_scenario.expect_running("nginx-registry-2", timeout=360, recovering=True)
    lab_scenario.timed(
        "recovery: secret fixed to Running (kubelet back-off)", time.monotonic() - t0
    )
    assert pod.metadata.uid == uid
    lab_scenario.pulled_fresh(pod, image, after=before_fix)
    lab_scenario.saw(f"same pod uid {uid} Running")

    expect_running_pod_left_alone(lab_scenario, reg, lab_fresh_image, pod)
    lab_scenario.differs(
        "if a secret is updated, the pods that use it are updated automatically",
        "a pull secret is read at each pull attempt; a failing pod recovers at its next retry "
        "(back-off up to 5 minutes), a running pod is never restarted or re-pulled",
    )
