"""Beyond the tutorial: which pods may use an image that is already on the node.

The tutorial's world: once the node holds an image, any pod on it runs that image, with or
without credentials. Since Kubernetes 1.35 (KEP-2535, KubeletEnsureSecretPulledImages, beta
and on by default) the kubelet records the credentials it pulled each image with, and before it
lets another pod use a cached image it checks that pod's credentials against the record. The
kubelet's configuration says which cached images are exempt
(``imagePullCredentialsVerificationPolicy``, pkg/kubelet/images/pullmanager):

- NeverVerify: every image (the tutorial's, and 1.34's, behaviour);
- NeverVerifyPreloadedImages (the default): images the kubelet did not pull itself, such as
  the lab's preloaded image, baked into the node's containerd when the node image was built;
- NeverVerifyAllowlistedImages: the repositories in ``preloadedImagesVerificationAllowlist``;
- AlwaysVerify: none, preloaded images included.

A pod the check refuses is answered as if the image were absent: with imagePullPolicy Never,
ErrImageNeverPull ("not present"), so the check never reveals what the node holds; with
IfNotPresent, a new pull (and the registry's 401 without credentials). The preloaded image is
always asked for with Never: its name (pull-lab.local) is served by no registry, so a refused
pod fails at once instead of trying one.

The images pulled here have contents of their own (``unique_image``): every fresh tag of the
lab's workload is one image ID on the node, whose status lists at most 5 names per image, so
late in a run a new tag may never show there, and `pull-lab doctor` reads the node's images
from its status. An image of its own also gets a kubelet record that only this scenario wrote.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import pytest

from lab.expect import view_of
from lab.node import (
    KUBELET_CONFIG_YAML,
    POLICY_KEY,
    PULLED_RECORDS_SCRIPT,
    parse_pulled_records,
    verification_policy_unsupported,
)
from lab.pods import kubelet_config, node_kubelet_version
from scenarios.unique_images import unique_image, wait_node_lists

APP = "app"  # every pod here runs one container named "app"
SECRET = "registry-1"
# The kubelet's Pulled message for a cached image a pod may use (1.35+, image_manager.go).
ACCESSIBLE = "already present on machine and can be accessed by the pod"
# What a pod is told when the check refuses it, under imagePullPolicy Never.
NOT_PRESENT = "is not present with pull policy of Never"
# doctor's rule for an image the node holds that this pod may not use (1.35+).
REVERIFIED = "cached-image-needs-credentials"


# ---- the kubelet and its policy ----------------------------------------------------------------
def require_verification(scenario: Any, nodes: list[str]) -> None:
    """Skip, with the version's reason, unless every node's kubelet re-verifies cached images."""
    for node in nodes:
        kubelet = node_kubelet_version(scenario.core, node)
        reason = verification_policy_unsupported(kubelet)
        if reason is not None:
            pytest.skip(reason)
    scenario.saw(
        f"kubelet v{kubelet[0]}.{kubelet[1]}: KubeletEnsureSecretPulledImages is on by default"
    )


def expect_policy(scenario: Any, node: str, policy: str) -> None:
    """The kubelet really runs with ``policy`` (its /configz, read through the API server)."""
    scenario.expect(f"node {node}'s kubelet runs with {POLICY_KEY}: {policy}")
    running = kubelet_config(scenario.core, node).get(POLICY_KEY)
    assert running == policy, f"the kubelet's {POLICY_KEY} is {running!r}"
    scenario.saw(f"kubelet /configz: {POLICY_KEY}: {running}")


def set_policy(scenario: Any, node: Any, policy: str, allowlist: tuple[str, ...] = ()) -> None:
    """The policy in the kubelet's config file, the kubelet restarted, and read back."""
    node.set_verification_policy(policy, allowlist)
    scenario.on_node(
        node,
        "the kubelet's configuration, changed",
        f"grep -A{len(allowlist) + 1} -E '^(imagePullCredentials|preloadedImages)' "
        f"{KUBELET_CONFIG_YAML}",
    )
    expect_policy(scenario, node.changes.name, policy)


def all_nodes(scenario: Any) -> list[str]:
    return [n.metadata.name for n in scenario.core.list_node().items]


# ---- the pods ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pulled:
    image: str
    image_id: str
    node: str  # where the kubelet pulled it


def pulled_with_secret(scenario: Any, registry: Any, images: Any) -> Pulled:
    """An image of its own pulled by pod with-secret through pull secret registry-1: the
    kubelet records that secret (and its credentials' hash) as able to use the image."""
    user, password = registry.credentials
    unique = unique_image(registry, images)
    scenario.secrets.docker_registry(SECRET, scenario.namespace, registry.spec.host, user, password)
    scenario.create_pod(
        scenario.pod("with-secret", unique.ref, container=APP, pull_secrets=(SECRET,))
    )
    running = scenario.expect_running("with-secret")
    scenario.pulled_fresh(running, unique.ref)
    return Pulled(unique.ref, unique.image_id, running.spec.node_name)


def runs_from_the_node(scenario: Any, name: str, image: str) -> Any:
    """The pod runs the node's copy: Pulled says the pod may use it, and nothing was pulled."""
    pod = scenario.expect_running(name)
    present = f'Container image "{image}" {ACCESSIBLE}'
    scenario.expect(f"event Pulled {present!r}, no Pulling")
    scenario.expect_event(pod, "Pulled", present, exact=True)
    scenario.expect_no_event(pod, "Pulling")
    return pod


def refused_as_absent(scenario: Any, name: str, image: str, diagnosis: str = REVERIFIED) -> Any:
    """Policy Never and the check refuses the pod: ErrImageNeverPull, 'not present', though
    the node holds the image; nothing is pulled. doctor names ``diagnosis``."""
    pod = scenario.expect_pull_failure(
        name, "never-pull", reason="ErrImageNeverPull", diagnosis=diagnosis
    )
    message = f'Container image "{image}" {NOT_PRESENT}'
    assert view_of(pod).message == message, view_of(pod).message
    event = scenario.expect_event(pod, "ErrImageNeverPull", message, exact=True)
    assert event.type == "Warning", event
    scenario.expect_no_event(pod, "Pulling")
    return pod


def node_holds(scenario: Any, node: Any, image: str) -> None:
    """crictl lists the image on the node: the 'not present' answer was the check's."""
    repository, tag = image.rsplit(":", 1)
    listed = scenario.on_node(
        node,
        f"the node holds {image}",
        f"crictl images | awk -v r={shlex.quote(repository)} -v t={shlex.quote(tag)} "
        "'NR == 1 || ($1 == r && $2 == t)'",
    )
    assert [line.split()[:2] for line in listed.splitlines()[1:]] == [[repository, tag]], listed


def pull_record(scenario: Any, node: Any, pulled: Pulled) -> dict:
    """The kubelet's record of ``pulled``: who may use it, per repository (hashes hidden)."""
    shown = scenario.on_node(node, "the kubelet's records of its pulls", PULLED_RECORDS_SCRIPT)
    records = parse_pulled_records(shown)
    assert pulled.image_id in records, f"no record for {pulled.image_id}: {shown}"
    return records[pulled.image_id]


def recorded_secrets(record: dict) -> set[tuple[str, str]]:
    return {(s["namespace"], s["name"]) for s in record.get("kubernetesSecrets", [])}


# ---- the scenarios ----------------------------------------------------------------------------
@pytest.mark.scenario("verify-preloaded-default")
def test_verify_preloaded_default(lab_scenario, lab_images, lab_secret_registry):
    """The default policy, NeverVerifyPreloadedImages: the preloaded image runs in a pod with
    no credentials; an image the kubelet pulled with a secret is refused to such a pod."""
    # Pinned (a lab with workers), the node it holds shared and runs its pods on: another node
    # may be a node-level scenario's, with another policy for the moment (under pytest -n).
    nodes = [lab_scenario.node] if lab_scenario.node else all_nodes(lab_scenario)
    require_verification(lab_scenario, nodes)
    for node in nodes:
        expect_policy(lab_scenario, node, "NeverVerifyPreloadedImages")

    preloaded = lab_images.preloaded_image
    lab_scenario.create_pod(
        lab_scenario.pod("preloaded", preloaded, container=APP, pull_policy="Never")
    )
    runs_from_the_node(lab_scenario, "preloaded", preloaded)

    pulled = pulled_with_secret(lab_scenario, lab_secret_registry, lab_images)
    wait_node_lists(lab_scenario, pulled.node, pulled.image)
    lab_scenario.create_pod(
        lab_scenario.pod("no-secret", pulled.image, container=APP, pull_policy="Never")
    )
    refused_as_absent(lab_scenario, "no-secret", pulled.image)
    lab_scenario.describe_tail("no-secret")
    lab_scenario.differs(
        "an image on the node serves every pod there (events: 'already present on machine')",
        "by default only images the kubelet did not pull (preloaded into the node) serve any "
        "pod; an image pulled with a secret serves only pods whose credentials match the "
        "kubelet's record, and to the others it is 'not present' (Never) or pulled again "
        "(IfNotPresent)",
    )


@pytest.mark.scenario("verify-never")
def test_verify_never(lab_scenario, lab_node, lab_images, lab_secret_registry):
    """NeverVerify: a pod without credentials runs an image another pod pulled with a secret,
    as on 1.34; a real pull (imagePullPolicy Always) still needs credentials."""
    require_verification(lab_scenario, [lab_node.changes.name])
    set_policy(lab_scenario, lab_node, "NeverVerify")

    image = pulled_with_secret(lab_scenario, lab_secret_registry, lab_images).image
    lab_scenario.create_pod(lab_scenario.pod("no-secret", image, container=APP))
    runs_from_the_node(lab_scenario, "no-secret", image)

    lab_scenario.expect("with imagePullPolicy Always and no secret the kubelet pulls: 401")
    lab_scenario.create_pod(
        lab_scenario.pod("always-no-secret", image, container=APP, pull_policy="Always")
    )
    lab_scenario.expect_pull_failure("always-no-secret", "unauthorized")
    lab_scenario.describe_tail("no-secret")
    lab_scenario.differs(
        "an image on the node serves every pod there",
        "so it does again under NeverVerify, which turns the 1.35+ check off for every image: "
        "any pod on the node runs what another pod pulled with its secret",
    )


@pytest.mark.scenario("verify-always")
def test_verify_always(lab_scenario, lab_node, lab_images, lab_secret_registry):
    """AlwaysVerify: even the preloaded image is refused to a pod without credentials; an image
    pulled with a secret serves a later pod with that secret from the kubelet's record, no pull."""
    require_verification(lab_scenario, [lab_node.changes.name])
    set_policy(lab_scenario, lab_node, "AlwaysVerify")

    preloaded = lab_images.preloaded_image
    node_holds(lab_scenario, lab_node, preloaded)
    lab_scenario.create_pod(
        lab_scenario.pod("preloaded", preloaded, container=APP, pull_policy="Never")
    )
    refused_as_absent(lab_scenario, "preloaded", preloaded)

    pulled = pulled_with_secret(lab_scenario, lab_secret_registry, lab_images)
    repository = pulled.image.rsplit(":", 1)[0]
    lab_scenario.expect(f"the kubelet's record: {repository} may be used with {SECRET} only")
    record = pull_record(lab_scenario, lab_node, pulled)
    assert list(record) == [repository], record
    assert recorded_secrets(record[repository]) == {(lab_scenario.namespace, SECRET)}, record
    lab_scenario.saw(
        f"record of {pulled.image_id}: {repository} <- {lab_scenario.namespace}/{SECRET}"
    )
    lab_scenario.create_pod(
        lab_scenario.pod("same-secret", pulled.image, container=APP, pull_secrets=(SECRET,))
    )
    runs_from_the_node(lab_scenario, "same-secret", pulled.image)
    lab_scenario.describe_tail("preloaded")
    lab_scenario.differs(
        "images loaded onto the node beforehand (docker load) serve every pod",
        "under AlwaysVerify no image is exempt: a preloaded image, for which the kubelet "
        "recorded no credentials, is 'not present' to a pod without them; a pod with the "
        "secret that pulled an image uses it from the kubelet's record without a new pull",
    )


@pytest.mark.scenario("verify-allowlist")
def test_verify_allowlist(lab_scenario, lab_node, lab_images, lab_secret_registry):
    """NeverVerifyAllowlistedImages, the registry's lab/busybox allowlisted: a pod without
    credentials runs it although the kubelet pulled it with a secret; the preloaded image,
    not in the list, is refused to such a pod."""
    require_verification(lab_scenario, [lab_node.changes.name])
    allowed = f"{lab_secret_registry.spec.host}/lab/busybox"
    set_policy(lab_scenario, lab_node, "NeverVerifyAllowlistedImages", (allowed,))

    preloaded = lab_images.preloaded_image
    node_holds(lab_scenario, lab_node, preloaded)
    lab_scenario.create_pod(
        lab_scenario.pod("preloaded", preloaded, container=APP, pull_policy="Never")
    )
    refused_as_absent(lab_scenario, "preloaded", preloaded)

    image = pulled_with_secret(lab_scenario, lab_secret_registry, lab_images).image
    assert image.startswith(f"{allowed}:"), image
    lab_scenario.create_pod(lab_scenario.pod("no-secret", image, container=APP))
    runs_from_the_node(lab_scenario, "no-secret", image)
    lab_scenario.describe_tail("preloaded")
    lab_scenario.differs(
        "an image on the node serves every pod there",
        "under NeverVerifyAllowlistedImages the allowlist alone decides: a listed repository "
        "serves every pod, even an image the kubelet pulled with a secret; any other image, "
        "preloaded or not, needs credentials the kubelet recorded",
    )
