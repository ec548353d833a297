"""Beyond the tutorial: the kubelet gets registry credentials from a credential provider plugin.

The tutorial copies a config.json to every node. Clusters today run a kubelet image credential
provider instead (GA since Kubernetes 1.26; the clouds' ECR, ACR and GCR plugins): the kubelet
runs a plugin for every image its config matches and pulls with what the plugin answers. The
lab's plugin is a bash and jq script answering from a file on the node (lab.credential_provider);
its request log shows whether the kubelet asked it at all.

Since 1.34 the kubelet can also hand the plugin the pod's ServiceAccount token (KEP-4412), so
credentials follow the workload, not the node: the token scenarios give two ServiceAccounts one
registry, and the plugin answers only one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lab import credential_provider as cp
from lab import manifest_yaml
from lab.credential_provider import ProviderDecision, ProviderSetup, TokenAttributes, answers_json
from lab.kubelet_messages import provider_failure, token_refused
from lab.pods import node_kubelet_version
from lab.settings import LABEL
from lab.tutorial import tutorial_image, wrong_password

AUDIENCE = "pull-lab-registry"  # the audience the kubelet requests the pod's token for
ALLOWED, OTHER = "builder", "visitor"  # the plugin answers the first ServiceAccount only
JWT_START = "eyJ"  # every JWT begins with base64url of '{"': none may reach a log


def install_provider(
    scenario, node, match: str, answers: bytes, cache: str = "0s", token=None
) -> None:
    """The plugin, its config and answers on the node; the kubelet restarted with its flags."""
    setup = ProviderSetup(match_images=(match,), default_cache_duration=cache, token=token)
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
    lab_scenario.differs(
        "node credentials in config.json apply to whatever registry they name",
        "a plugin is asked only for images its matchImages covers; any other registry is "
        "pulled without credentials, and the pod's status does not say the plugin was skipped",
    )


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
    kubelet = node_kubelet_version(lab_scenario.core, lab_node.changes.name)
    said = provider_failure(
        cp.PROVIDER_NAME, repository, f"{cp.FAILURE_MESSAGE} ({repository})", kubelet
    )
    assert said in journal, journal
    lab_scenario.saw("the kubelet logged the plugin's stderr; the pod shows only the 401")
    lab_scenario.describe_tail("nginx-registry")
    lab_scenario.differs(
        "a broken config.json fails the same way on every pull and is there to read on the node",
        "a failing plugin leaves no trace in the pod (only the registry's 401): its error is in "
        "the kubelet's log, so doctor's 401 findings say where to look",
    )


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


# ---- the pod's ServiceAccount token for the plugin (KEP-4412) ---------------------------------
def require_token_mode(scenario, node) -> None:
    """Skip, with the version's reason, on a kubelet that passes no tokens to plugins."""
    kubelet = node_kubelet_version(scenario.core, node.changes.name)
    reason = cp.token_mode_unsupported(kubelet)
    if reason is not None:
        pytest.skip(reason)
    gate = "KubeletServiceAccountTokenForCredentialProviders"
    scenario.saw(f"node's kubelet v{kubelet[0]}.{kubelet[1]}: {gate} is on by default")


@contextmanager
def accounts(
    scenario, names: tuple[str, ...], rbac: bool, annotated: dict[str, dict] | None = None
) -> Iterator[None]:
    """The ServiceAccounts (with the ``annotated`` ones' annotations) and, with ``rbac``, the
    Role letting the nodes request tokens for the plugin's audience in this namespace, all
    labelled with the run; deleted when the block ends (the namespace would take them later)."""
    labels = {LABEL: scenario.run_id}
    docs: list[dict] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": n, "labels": labels}}
        for n in names
    ]
    for doc in docs:
        if (annotations := (annotated or {}).get(doc["metadata"]["name"])) is not None:
            doc["metadata"]["annotations"] = annotations
    if rbac:
        docs += cp.audience_rbac("pull-lab-token-audience", AUDIENCE, labels)
    text = "---\n".join(manifest_yaml.dump(d, sort_keys=False) for d in docs)
    title = "ServiceAccounts" + (" and the nodes' token audience" if rbac else "")
    scenario.file(title, "accounts.yaml", text)
    stdin = {"input": text.encode(), "input_name": "accounts.yaml"}
    scenario.kubectl("create", "-f", "-", title="create them", **stdin)
    try:
        yield
    finally:
        scenario.kubectl("delete", "-f", "-", title="delete them", **stdin)


def pod_as(scenario, name: str, image: str, account: str) -> dict:
    """The tutorial's pod, run under ``account``."""
    manifest = scenario.pod(name, image)
    manifest["spec"]["serviceAccountName"] = account
    return manifest


def token_provider(
    scenario, node, reg, allowed: tuple[str, ...], required: tuple[str, ...] = ()
) -> None:
    """The plugin in token mode: the kubelet passes each pod's token for AUDIENCE (and the
    ``required`` ServiceAccount annotations); the plugin answers the registry's credentials to
    ``allowed`` ServiceAccounts only."""
    host = reg.spec.host
    accounts = tuple(f"{scenario.namespace}:{a}" for a in allowed)
    answers = answers_json({host: reg.credentials}, service_accounts=accounts)
    token = TokenAttributes(AUDIENCE, required_annotation_keys=required)
    install_provider(scenario, node, host, answers, token=token)
    scenario.note(
        "the plugin answers only these ServiceAccounts",
        f"{cp.ANSWERS_PATH} lists {', '.join(accounts)}; the plugin reads the token's sub claim",
    )


@pytest.mark.scenario("credential-provider-sa-token")
def test_credential_provider_sa_token(
    lab_scenario, lab_node, lab_own_registry, lab_pki, lab_fresh_image
):
    """The kubelet passes each pod's ServiceAccount token to the plugin, which answers one
    ServiceAccount only: its pod runs; a pod under another ServiceAccount gets the 401."""
    require_token_mode(lab_scenario, lab_node)
    reg = lab_own_registry()
    lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    with accounts(lab_scenario, (ALLOWED, OTHER), rbac=True):
        token_provider(lab_scenario, lab_node, reg, allowed=(ALLOWED,))
        allowed_image = lab_fresh_image(reg, repo="lab/busybox")
        lab_scenario.create_pod(pod_as(lab_scenario, "builder-pod", allowed_image, ALLOWED))
        lab_scenario.pulled_fresh(lab_scenario.expect_running("builder-pod"), allowed_image)

        other_image = lab_fresh_image(reg, repo="lab/busybox")
        lab_scenario.create_pod(pod_as(lab_scenario, "visitor-pod", other_image, OTHER))
        lab_scenario.expect_pull_failure("visitor-pod", "unauthorized", diagnosis="no-credentials")

        ns, repository = lab_scenario.namespace, allowed_image.rsplit(":", 1)[0]
        lab_scenario.expect(f"the plugin's log: {ALLOWED} allowed, {OTHER} refused, no token")
        log = lab_scenario.on_node(lab_node, "the plugin's request log", f"cat {cp.REQUEST_LOG}")
        decisions = lab_node.provider_decisions()
        assert decisions[0] == ProviderDecision(repository, f"{ns}:{ALLOWED}", AUDIENCE, "allowed")
        refused = decisions[1:]
        assert refused and all(
            d == ProviderDecision(repository, f"{ns}:{OTHER}", AUDIENCE, "refused") for d in refused
        ), log
        assert JWT_START not in log, "the plugin's log holds a token"
        lab_scenario.saw(
            f"the plugin allowed {ns}:{ALLOWED} once and refused {ns}:{OTHER} "
            f"{len(refused)} time(s), each token for audience {AUDIENCE}"
        )
        lab_scenario.describe_tail("visitor-pod")
    lab_scenario.differs(
        "one config.json per node: every pod on the node pulls with it",
        "the kubelet hands the plugin each pod's ServiceAccount token; the plugin decides per "
        "workload, so two pods on one node get different answers",
    )


@pytest.mark.scenario("credential-provider-sa-token-no-rbac")
def test_credential_provider_sa_token_no_rbac(
    lab_scenario, lab_node, lab_own_registry, lab_pki, lab_fresh_image
):
    """Token mode without the RBAC for its audience: the API server refuses the kubelet's token
    request (ServiceAccountNodeAudienceRestriction), the kubelet logs it and never runs the
    plugin, and the pod, even under the allowed ServiceAccount, gets the 401."""
    require_token_mode(lab_scenario, lab_node)
    reg = lab_own_registry()
    lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    with accounts(lab_scenario, (ALLOWED,), rbac=False):
        token_provider(lab_scenario, lab_node, reg, allowed=(ALLOWED,))
        image = lab_fresh_image(reg, repo="lab/busybox")
        lab_scenario.create_pod(pod_as(lab_scenario, "builder-pod", image, ALLOWED))
        lab_scenario.expect_pull_failure("builder-pod", "unauthorized", diagnosis="no-credentials")

        ns = lab_scenario.namespace
        lab_scenario.expect("the kubelet's log: the token request for the audience was refused")
        journal = lab_scenario.on_node(
            lab_node,
            "the kubelet's log about the token",
            "journalctl -u kubelet --no-pager -o cat | grep -F 'service account token' | tail -n 2",
        )
        node = lab_node.changes.name
        kubelet = node_kubelet_version(lab_scenario.core, node)
        assert token_refused(ns, ALLOWED, node, AUDIENCE, kubelet) in journal, journal
        lab_scenario.expect("the plugin was never run")
        lab_scenario.on_node(lab_node, "the plugin's request log", f"cat {cp.REQUEST_LOG}")
        assert lab_node.provider_requests() == []
        lab_scenario.saw("the kubelet logged the refused token request; the plugin's log is empty")
        lab_scenario.describe_tail("builder-pod")
        lab_scenario.differs(
            "no tokens: node credentials serve every pod",
            "per-workload credentials need the node to be allowed a token for the plugin's "
            "audience; without that RBAC the plugin never runs and the pod sees only a 401",
        )


REGISTRY_ROLE = "pull-lab.example/registry-role"  # the annotation the kubelet requires


@pytest.mark.scenario("credential-provider-sa-annotation")
def test_credential_provider_sa_annotation(
    lab_scenario, lab_node, lab_own_registry, lab_pki, lab_fresh_image
):
    """requiredServiceAccountAnnotationKeys: the kubelet runs the plugin only for a pod whose
    ServiceAccount carries the annotation; for another it never runs it, even though the
    plugin would answer that account too, and the pod gets the 401."""
    require_token_mode(lab_scenario, lab_node)
    reg = lab_own_registry()
    lab_node.install_ca(reg.spec.host, lab_pki.ca_pem)
    annotated = {ALLOWED: {REGISTRY_ROLE: "pull"}}
    with accounts(lab_scenario, (ALLOWED, OTHER), rbac=True, annotated=annotated):
        token_provider(lab_scenario, lab_node, reg, (ALLOWED, OTHER), required=(REGISTRY_ROLE,))
        image = lab_fresh_image(reg, repo="lab/busybox")
        lab_scenario.create_pod(pod_as(lab_scenario, "builder-pod", image, ALLOWED))
        lab_scenario.pulled_fresh(lab_scenario.expect_running("builder-pod"), image)
        other_image = lab_fresh_image(reg, repo="lab/busybox")
        lab_scenario.create_pod(pod_as(lab_scenario, "visitor-pod", other_image, OTHER))
        lab_scenario.expect_pull_failure("visitor-pod", "unauthorized", diagnosis="no-credentials")

        ns, repository = lab_scenario.namespace, image.rsplit(":", 1)[0]
        lab_scenario.expect(f"the plugin was run for {ALLOWED} only")
        lab_scenario.on_node(lab_node, "the plugin's request log", f"cat {cp.REQUEST_LOG}")
        assert lab_node.provider_decisions() == [
            ProviderDecision(repository, f"{ns}:{ALLOWED}", AUDIENCE, "allowed")
        ]
        lab_scenario.saw(f"one request, from {ns}:{ALLOWED}; none for {ns}:{OTHER}")
        lab_scenario.describe_tail("visitor-pod")
        lab_scenario.differs(
            "every pod on a node pulls with the node's credentials",
            "requiredServiceAccountAnnotationKeys lets the kubelet skip the plugin for a "
            "ServiceAccount without the annotation: that pod pulls without credentials",
        )
