"""The scenario catalogue: stable IDs, what each replays, and where in the tutorial.

Tutorial sections (../shared/seed): 1 = node-level config, 2 = `kubectl create secret
docker-registry`, 3 = a YAML dockerconfigjson secret, 4 = a secret made through the REST API,
note = "pods using an updated secret are updated automatically".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    id: str
    module: str  # scenarios/<module>.py
    title: str
    tutorial: str  # the tutorial step it replays, or "beyond the tutorial"
    node_level: bool = False  # changes node files: serialized, skipped without node access
    workers: int = 0  # worker nodes it needs (skipped on a lab with fewer)
    # Why it waits long on purpose; such scenarios start first when several run at once, so
    # their wait overlaps the others instead of ending the run alone.
    long_wait: str = ""


CATALOG: tuple[Entry, ...] = (
    Entry(
        "registry-catalog",
        "test_registry_api",
        "list repositories and tags with CA + basic auth; 401 without",
        "1: curl _catalog / tags/list",
    ),
    Entry(
        "node-no-ca",
        "test_node_config",
        "no CA, no credentials on the node: x509 unknown authority, then back-off",
        "1: mv ca.crt{,.bak}; mv config.json{,.bak}",
        True,
    ),
    Entry(
        "node-ca-no-creds",
        "test_node_config",
        "CA restored, no credentials: 401 unauthorized (the tutorial saw 'not found')",
        "1: mv ca.crt{.bak,}",
        True,
    ),
    Entry(
        "node-creds-restored",
        "test_node_config",
        "credentials restored while backing off: the same pod turns Running",
        "1: mv config.json{.bak,}; wait a while",
        True,
    ),
    Entry(
        "node-image-cached",
        "test_node_config",
        "image already on the node with IfNotPresent: 'already present on machine'",
        "1: events after recovery",
        True,
    ),
    Entry(
        "one-worker-configured",
        "test_two_nodes",
        "CA and config.json on one worker only: the same pod runs there, backs off on the other; "
        "doctor names the node",
        "1: configure the node (here one of two)",
        True,
        workers=2,
    ),
    Entry(
        "secret-kubectl",
        "test_secret_kubectl",
        "kubectl create secret docker-registry, pod with imagePullSecrets",
        "2: registry-1, nginx-registry-2",
    ),
    Entry(
        "secret-legacy-dockercfg",
        "test_secret_kubectl",
        "a kubernetes.io/dockercfg secret (bare host map) still works",
        "2: type kubernetes.io/dockercfg",
    ),
    Entry(
        "secret-tutorial-dockercfg",
        "test_secret_kubectl",
        "the tutorial's own .dockercfg is keyed to Docker Hub: anonymous pull fails",
        "2: kubectl get secret registry-1 -o yaml",
    ),
    Entry(
        "multi-registry",
        "test_secret_kubectl",
        "two registries, two secrets, one pod; drop one secret and that container fails",
        "2: several private registries",
        True,  # installs the second registry's CA on the node
    ),
    Entry(
        "secret-update",
        "test_secret_kubectl",
        "fix a wrong secret: the next retry pulls; a running pod is not restarted",
        "note: secrets update pods automatically",
        long_wait="watches the running pod over one kubelet sync period",
    ),
    Entry(
        "secret-yaml",
        "test_secret_yaml",
        "config.json as docker login writes it, base64 -w 0, YAML applied",
        "3: registry-2, nginx-registry-3",
    ),
    Entry(
        "secret-rest-api",
        "test_secret_rest_api",
        "the corrected POST to /api/v1/namespaces/<ns>/secrets: 201, pod Running",
        "4: curl -X POST",
    ),
    Entry(
        "secret-rest-api-as-written",
        "test_secret_rest_api",
        "the tutorial's request as written: wrong URL and non-base64 data, rejected",
        "4: curl -X POST",
    ),
    Entry(
        "mtls-no-client-cert",
        "test_mtls",
        "registry verifies client certificates, node has none: TLS failure",
        "intro: registry verifies client certs",
        True,
    ),
    Entry(
        "mtls-client-cert",
        "test_mtls",
        "client.cert and client.key on the node: the pull succeeds",
        "intro: registry verifies client certs",
        True,
    ),
    Entry(
        "secret-missing",
        "test_beyond",
        "imagePullSecrets names a secret that does not exist",
        "beyond the tutorial",
    ),
    Entry(
        "secret-other-namespace",
        "test_beyond",
        "the secret lives in another namespace",
        "beyond the tutorial",
    ),
    Entry(
        "wrong-password",
        "test_beyond",
        "the secret holds a wrong password: 401",
        "beyond the tutorial",
    ),
    Entry(
        "tag-not-found",
        "test_beyond",
        "valid credentials, missing tag: NotFound",
        "beyond the tutorial",
    ),
    Entry(
        "registry-unreachable",
        "test_beyond",
        "nothing listens at the image's host:port: connection refused",
        "beyond the tutorial",
    ),
    Entry(
        "secret-port-mismatch",
        "test_beyond",
        "secret keyed 'reg', image 'reg:5000': no match, anonymous pull",
        "beyond the tutorial",
    ),
    Entry(
        "secret-wrong-shape",
        "test_beyond",
        "type Opaque, or .dockerconfigjson without auths: silently ignored",
        "beyond the tutorial",
    ),
    Entry(
        "cert-name-mismatch",
        "test_beyond",
        "the name in the image reference is not in the certificate",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "cached-image-no-creds",
        "test_beyond",
        "an image another pod pulled with a secret, used without credentials: runs on 1.34, "
        "re-verified (401) on 1.35+",
        "beyond the tutorial",
    ),
    Entry(
        "serviceaccount-pull-secret",
        "test_beyond",
        "imagePullSecrets on the default ServiceAccount are copied into pods",
        "beyond the tutorial",
    ),
    Entry(
        "credsstore-ignored",
        "test_beyond",
        "a config.json with credsStore and no auths gives no credentials",
        "beyond the tutorial",
    ),
    Entry(
        "never-preloaded",
        "test_beyond",
        "imagePullPolicy Never: a preloaded image runs; an absent one is ErrImageNeverPull",
        "beyond the tutorial (air-gapped)",
    ),
    Entry(
        "verify-preloaded-default",
        "test_verification_policy",
        "default policy (1.35+): the preloaded image serves a pod without credentials, an "
        "image pulled with a secret is 'not present' to it",
        "beyond the tutorial",
    ),
    Entry(
        "verify-never",
        "test_verification_policy",
        "imagePullCredentialsVerificationPolicy NeverVerify: any pod runs what another pod "
        "pulled with a secret, as on 1.34",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "verify-always",
        "test_verification_policy",
        "AlwaysVerify: even the preloaded image is 'not present' to a pod without credentials; "
        "the pulling secret still serves",
        "beyond the tutorial (instead of 1: images loaded onto the node beforehand)",
        True,
    ),
    Entry(
        "verify-allowlist",
        "test_verification_policy",
        "NeverVerifyAllowlistedImages: a listed repository serves every pod, the preloaded "
        "image (not listed) does not",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "credential-provider",
        "test_credential_provider",
        "a kubelet credential provider plugin answers: no secret, no config.json, the pod runs",
        "beyond the tutorial (instead of 1: config.json on every node)",
        True,
    ),
    Entry(
        "credential-provider-no-match",
        "test_credential_provider",
        "an image outside the plugin's matchImages: the kubelet never asks it, 401",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "credential-provider-fails",
        "test_credential_provider",
        "the plugin exits non-zero: the kubelet logs it and pulls without credentials, 401",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "credential-provider-cache",
        "test_credential_provider",
        "the kubelet caches the plugin's answer: a changed answer is not seen for cacheDuration",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "credential-provider-sa-token",
        "test_credential_provider",
        "the plugin gets each pod's ServiceAccount token, answers one account: the other gets 401",
        "beyond the tutorial (instead of 1: one config.json for every pod on the node)",
        True,
    ),
    Entry(
        "credential-provider-sa-token-no-rbac",
        "test_credential_provider",
        "the node may not request tokens for the plugin's audience: the plugin is never run, 401",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "credential-provider-sa-annotation",
        "test_credential_provider",
        "a ServiceAccount without the required annotation: the kubelet never runs the plugin, 401",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "hosts-toml-ca",
        "test_hosts_toml",
        "hosts.toml names a CA outside certs.d (`ca = ...`): the pull verifies and works",
        "beyond the tutorial (instead of 1: ca.crt in certs.d)",
        True,
    ),
    Entry(
        "hosts-toml-skip-verify",
        "test_hosts_toml",
        "skip_verify = true: no CA, a certificate without the host's name, and the pull works",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "hosts-toml-client",
        "test_hosts_toml",
        "hosts.toml names the client pair (`client = [[cert, key]]`) for an mTLS registry",
        "beyond the tutorial (instead of intro: client.cert/client.key in certs.d)",
        True,
    ),
    Entry(
        "mirror-creds-original-host",
        "test_hosts_toml",
        "docker.io mirrored to the lab registry; the secret keyed to docker.io",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "mirror-creds-mirror-host",
        "test_hosts_toml",
        "docker.io mirrored to the lab registry; the secret keyed to the mirror's host",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "mirror-down",
        "test_hosts_toml",
        "the mirror does not answer and the origin is unreachable: which host the error names",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "mirror-down-no-fallback",
        "test_hosts_toml",
        "hosts.toml's server is the mirror itself and it does not answer: no fallback, one host "
        "tried",
        "beyond the tutorial",
        True,
    ),
    Entry(
        "mirror-pull-only",
        "test_hosts_toml",
        "a mirror with capabilities [pull] only: tags resolve at the origin, not the mirror",
        "beyond the tutorial",
        True,
    ),
)

BY_ID = {e.id: e for e in CATALOG}


def entry(scenario_id: str) -> Entry:
    try:
        return BY_ID[scenario_id]
    except KeyError:
        from lab.errors import LabError

        raise LabError(
            f"unknown scenario {scenario_id!r}", "`pull-lab scenarios` lists the catalogue"
        ) from None


def long_waits_first(entries: Sequence[Entry]) -> list[Entry]:
    """The order for scenarios run at once: those that wait long on purpose first, the rest
    in the order given (longest first is what keeps the last worker from finishing alone)."""
    return sorted(entries, key=lambda e: not e.long_wait)  # stable
