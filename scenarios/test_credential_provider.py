"""Beyond the tutorial: the kubelet gets registry credentials from a credential provider plugin.

The tutorial copies a config.json to every node. Clusters today run a kubelet image credential
provider instead (GA since Kubernetes 1.26; the clouds' ECR, ACR and GCR plugins): the kubelet
runs a plugin for every image its config matches and pulls with what the plugin answers. The
lab's plugin is a bash and jq script answering from a file on the node (lab.credential_provider);
its request log shows whether the kubelet asked it at all.
"""

from __future__ import annotations

import pytest

from lab import credential_provider as cp
from lab.credential_provider import ProviderSetup, answers_json
from lab.tutorial import tutorial_image, wrong_password


def install_provider(scenario, node, match: str, answers: bytes, cache: str = "0s") -> None:
    """The plugin, its config and answers on the node; the kubelet restarted with its flags."""
    setup = ProviderSetup(match_images=(match,), default_cache_duration=cache)
    plugin = f"{cp.BIN_DIR}/{cp.PROVIDER_NAME}"
    scenario.file("the plugin the kubelet runs", plugin, cp.PLUGIN_SCRIPT)
    scenario.file("the kubelet's CredentialProviderConfig", cp.CONFIG_PATH, setup.config_yaml())
    scenario.note(
        "the plugin's answers",
        f"{cp.ANSWERS_PATH} (mode 0600) holds the registry's user and password; not shown",
    )
    node.install_credential_provider(setup, answers)
    scenario.on_node(node, "the kubelet's flags name the plugin", f"cat {cp.KUBELET_DEFAULTS}")


@pytest.mark.scenario("credential-provider")
def test_credential_provider(lab_scenario, lab_node, lab_own_registry, lab_pki):
    """The plugin answers for the registry: the pod runs with no pull secret and no config.json."""
    reg = lab_own_registry()
    host, image = reg.spec.host, tutorial_image(reg)
    lab_node.install_ca(host, lab_pki.ca_pem)
    install_provider(lab_scenario, lab_node, host, answers_json({host: reg.credentials}))

    lab_scenario.create_pod(lab_scenario.pod("nginx-registry", image, container="nginx"))
    pod = lab_scenario.expect_running("nginx-registry")
    lab_scenario.pulled_fresh(pod, image)
    repository = image.rsplit(":", 1)[0]
    lab_scenario.expect(f"the kubelet asked the plugin for {repository} (no tag)")
    lab_scenario.on_node(lab_node, "the plugin's request log", f"cat {cp.REQUEST_LOG}")
    assert lab_node.provider_requests() == [repository]
    lab_scenario.saw(f"the plugin was asked once, for {repository}")
    lab_scenario.describe_tail("nginx-registry")
    lab_scenario.differs(
        "credentials in ~/.docker/config.json on every node",
        "the kubelet asks a plugin for each matching image: nothing secret on the node's "
        "disk but the plugin's own source (here a file; a cloud's metadata service elsewhere)",
    )


@pytest.mark.scenario("credential-provider-no-match")
def test_credential_provider_no_match(lab_scenario, lab_node, lab_own_registry, lab_pki):
    """An image on a host outside matchImages: the plugin is never asked; the pull gets a 401."""
    matched, other = lab_own_registry(), lab_own_registry()
    for reg in (matched, other):
        lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    answers = answers_json({matched.spec.host: matched.credentials})
    install_provider(lab_scenario, lab_node, matched.spec.host, answers)

    image = tutorial_image(other)
    lab_scenario.create_pod(lab_scenario.pod("nginx-registry", image, container="nginx"))
    lab_scenario.expect_pull_failure("nginx-registry", "unauthorized", diagnosis="no-credentials")
    lab_scenario.expect(f"the plugin was never asked for {image}")
    lab_scenario.on_node(lab_node, "the plugin's request log", f"cat {cp.REQUEST_LOG}")
    asked = lab_node.provider_requests()
    assert not any(other.spec.host in req for req in asked), asked
    lab_scenario.saw(f"the plugin's log names no image on {other.spec.host}")
    lab_scenario.describe_tail("nginx-registry")


@pytest.mark.scenario("credential-provider-fails")
def test_credential_provider_fails(lab_scenario, lab_node, lab_own_registry, lab_pki):
    """The plugin exits 1: the kubelet logs its stderr and pulls anonymously, so the pod gets
    the registry's 401; nothing in the pod's status names the plugin."""
    reg = lab_own_registry()
    host, image = reg.spec.host, tutorial_image(reg)
    lab_node.install_ca(host, lab_pki.ca_pem)
    install_provider(lab_scenario, lab_node, host, answers_json({}, fail=True))

    lab_scenario.create_pod(lab_scenario.pod("nginx-registry", image, container="nginx"))
    lab_scenario.expect_pull_failure("nginx-registry", "unauthorized", diagnosis="no-credentials")
    assert image.rsplit(":", 1)[0] in lab_node.provider_requests()
    lab_scenario.expect("the kubelet's log has the plugin's error")
    journal = lab_scenario.on_node(
        lab_node,
        "the kubelet's log about the plugin",
        f"journalctl -u kubelet --no-pager -o cat | grep -F {cp.PROVIDER_NAME!r} | tail -n 3",
    )
    repository = image.rsplit(":", 1)[0]
    assert (
        "Failed getting credential from external registry credential provider: error execing "
        f"credential provider plugin {cp.PROVIDER_NAME} for image {repository}: exit status 1: "
        f"{cp.FAILURE_MESSAGE} ({repository})"
    ) in journal, journal
    lab_scenario.saw("the kubelet logged the plugin's stderr; the pod shows only the 401")
    lab_scenario.describe_tail("nginx-registry")


@pytest.mark.scenario("credential-provider-cache")
def test_credential_provider_cache(
    lab_scenario, lab_node, lab_own_registry, lab_pki, lab_fresh_image
):
    """The kubelet keeps the plugin's answer for its cache duration: answers changed behind the
    cache are not seen, and the plugin is not asked again for the same registry."""
    reg = lab_own_registry()
    host = reg.spec.host
    user, password = reg.credentials
    lab_node.install_ca(host, lab_pki.ca_pem)
    install_provider(lab_scenario, lab_node, host, answers_json({host: (user, password)}), "10m")

    first = lab_fresh_image(reg, repo="lab/busybox")
    lab_scenario.create_pod(lab_scenario.pod("first", first))
    lab_scenario.pulled_fresh(lab_scenario.expect_running("first"), first)
    lab_scenario.note(
        "the plugin now answers a wrong password",
        f"{cp.ANSWERS_PATH} rewritten; the kubelet holds the first answer for 10m",
    )
    lab_node.set_provider_answers(answers_json({host: (user, wrong_password(user))}))
    second = lab_fresh_image(reg, repo="lab/busybox")
    lab_scenario.create_pod(lab_scenario.pod("second", second))
    lab_scenario.pulled_fresh(lab_scenario.expect_running("second"), second)
    lab_scenario.expect("the plugin was asked once: the second pull used the cached answer")
    lab_scenario.on_node(lab_node, "the plugin's request log", f"cat {cp.REQUEST_LOG}")
    assert lab_node.provider_requests() == [first.rsplit(":", 1)[0]]
    lab_scenario.saw("one request in the plugin's log for two pulls")
    lab_scenario.differs(
        "node credentials are read from config.json (cached by the kubelet for minutes)",
        "a plugin's answer is cached for its cacheDuration (per registry here: cacheKeyType "
        "Registry); a rotated password reaches pulls only when the cache expires",
    )
