"""A kubelet image credential provider of the lab's own: the files that put it on a node.

Since Kubernetes 1.26 the kubelet can ask an executable for registry credentials: it runs the
plugin named in its ``--image-credential-provider-config`` for every image that config's
``matchImages`` covers, writes a ``CredentialProviderRequest`` (JSON, with the image) to its
stdin and reads a ``CredentialProviderResponse`` from its stdout. Clouds ship such plugins
(ecr-credential-provider, acr-credential-provider, gcp-credential-provider); the lab's is a bash
and jq script, so a reader can see every step, that answers from a file on the node.

The answers file holds the password: it is written through stdin, mode 0600, and the plugin
reads it, so no password is ever on a command line. The plugin appends each image it is asked
about to a log file, so a scenario can show whether the kubelet asked at all.

Since 1.34 (KEP-4412, beta and on by default) a provider config with ``tokenAttributes`` makes
the kubelet request a token for the pod's ServiceAccount, with the configured audience, and
pass it in the request: a plugin can then answer per workload, as the clouds' workload identity
does. The lab's plugin reads the token's ``sub`` claim and answers only for the ServiceAccounts
its answers file allows; it logs the ServiceAccount and its decision, never the token.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

PROVIDER_NAME = "pull-lab-credential-provider"
LAB_NODE_DIR = "/etc/pull-lab"  # the lab's own files on the node; removed whole on restore
PROVIDER_DIR = f"{LAB_NODE_DIR}/credential-provider"
BIN_DIR = f"{PROVIDER_DIR}/bin"
CONFIG_PATH = f"{PROVIDER_DIR}/config.yaml"
ANSWERS_PATH = f"{PROVIDER_DIR}/answers.json"
REQUEST_LOG = "/var/log/pull-lab-credential-provider.log"
KUBELET_DEFAULTS = "/etc/default/kubelet"  # kind's kubelet unit reads KUBELET_EXTRA_ARGS here
API_VERSION = "credentialprovider.kubelet.k8s.io/v1"
# The message the plugin writes to stderr when told to fail; the kubelet logs it.
FAILURE_MESSAGE = "pull-lab credential provider: told to fail"

# What the plugin answers a ServiceAccount it does not allow: no credentials, not cached.
REFUSAL = (
    f'{{apiVersion: "{API_VERSION}", kind: "CredentialProviderResponse", '
    'cacheKeyType: "Registry", cacheDuration: "0s", auth: {}}'
)

PLUGIN_SCRIPT = f"""#!/bin/bash
# The lab's credential provider: the kubelet writes a CredentialProviderRequest on stdin and
# reads a CredentialProviderResponse on stdout. Answers come from {ANSWERS_PATH}.
set -euo pipefail
request=$(cat)
image=$(jq -r .image <<<"$request")
if [ "$(jq -r 'has("serviceAccountToken")' <<<"$request")" = false ]; then
  echo "$(date -u +%FT%TZ) $image" >>{REQUEST_LOG}
else
  # The token is a JWT: its payload (base64url, unpadded) names the ServiceAccount in sub,
  # system:serviceaccount:<namespace>:<name>. Only the name and the decision are logged.
  claims=$(jq '.serviceAccountToken | split(".")[1] | gsub("-"; "+") | gsub("_"; "/")
    | . + ("=" * ((4 - length % 4) % 4)) | @base64d | fromjson' <<<"$request")
  account=$(jq -r '.sub | sub("^system:serviceaccount:"; "")' <<<"$claims")
  audience=$(jq -r '[.aud] | flatten | join(",")' <<<"$claims")
  decision=refused
  if jq -e --arg sa "$account" 'any(.serviceAccounts[]?; . == $sa)' {ANSWERS_PATH} >/dev/null; then
    decision=allowed
  fi
  entry="$image serviceaccount=$account audience=$audience $decision"
  echo "$(date -u +%FT%TZ) $entry" >>{REQUEST_LOG}
  if [ "$decision" = refused ]; then
    jq -n '{REFUSAL}'
    exit 0
  fi
fi
if [ "$(jq -r '.fail // false' {ANSWERS_PATH})" = true ]; then
  echo "{FAILURE_MESSAGE} ($image)" >&2
  exit 1
fi
jq '{{apiVersion: "{API_VERSION}", kind: "CredentialProviderResponse",
     cacheKeyType: "Registry", auth: .auth}}' {ANSWERS_PATH}
"""


@dataclass(frozen=True)
class TokenAttributes:
    """``tokenAttributes`` of a provider: the kubelet passes the pod's ServiceAccount token.

    ``cache_type`` ServiceAccount keys cached answers by ServiceAccount (Token: by token);
    annotation keys name ServiceAccount annotations the kubelet passes along (a missing
    required one means the plugin is not run at all)."""

    audience: str
    require_service_account: bool = True
    cache_type: str = "ServiceAccount"
    required_annotation_keys: tuple[str, ...] = ()
    optional_annotation_keys: tuple[str, ...] = ()

    def yaml_lines(self) -> list[str]:
        lines = [
            "  tokenAttributes:",
            f"    serviceAccountTokenAudience: {json.dumps(self.audience)}",
            f"    requireServiceAccount: {json.dumps(self.require_service_account)}",
            f"    cacheType: {json.dumps(self.cache_type)}",
        ]
        for name, keys in (
            ("requiredServiceAccountAnnotationKeys", self.required_annotation_keys),
            ("optionalServiceAccountAnnotationKeys", self.optional_annotation_keys),
        ):
            if keys:
                lines += [f"    {name}:", *(f"    - {json.dumps(k)}" for k in keys)]
        return lines


@dataclass(frozen=True)
class ProviderSetup:
    """Which images the kubelet asks the plugin about, how long it keeps an answer, and
    whether it passes the pod's ServiceAccount token."""

    match_images: tuple[str, ...]
    default_cache_duration: str = "0s"  # the kubelet asks again for every pull
    token: TokenAttributes | None = field(default=None)

    def config_yaml(self) -> str:
        """The kubelet's CredentialProviderConfig (kubelet.config.k8s.io/v1)."""
        lines = [
            "apiVersion: kubelet.config.k8s.io/v1",
            "kind: CredentialProviderConfig",
            "providers:",
            f"- name: {PROVIDER_NAME}",
            f"  apiVersion: {API_VERSION}",
            f"  defaultCacheDuration: {json.dumps(self.default_cache_duration)}",
            "  matchImages:",
            *(f"  - {json.dumps(p)}" for p in self.match_images),
        ]
        if self.token is not None:
            lines += self.token.yaml_lines()
        return "\n".join(lines) + "\n"


def answers_json(
    auth: dict[str, tuple[str, str]],
    fail: bool = False,
    service_accounts: tuple[str, ...] | None = None,
) -> bytes:
    """What the plugin answers: credentials per registry host, or a failure; with
    ``service_accounts`` ("<namespace>:<name>"), credentials only to a token of one of them."""
    answers: dict = {
        "fail": fail,
        "auth": {host: {"username": u, "password": p} for host, (u, p) in auth.items()},
    }
    if service_accounts is not None:
        answers["serviceAccounts"] = list(service_accounts)
    return json.dumps(answers, indent=2).encode()


@dataclass(frozen=True)
class ProviderDecision:
    """One line of the plugin's log in token mode: who asked for which image, and the answer."""

    image: str
    service_account: str  # <namespace>:<name>, from the token's sub claim
    audience: str
    decision: str  # allowed / refused


def parse_request_log(text: str) -> list[tuple[str, ProviderDecision | None]]:
    """The plugin's log: per request the image, and in token mode the decision."""
    entries: list[tuple[str, ProviderDecision | None]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        decision = None
        if len(fields) == 5 and fields[2].startswith("serviceaccount="):
            decision = ProviderDecision(
                image=fields[1],
                service_account=fields[2].removeprefix("serviceaccount="),
                audience=fields[3].removeprefix("audience="),
                decision=fields[4],
            )
        entries.append((fields[1], decision))
    return entries


# ---- the node's permission to request tokens for the plugin's audience -------------------
TOKEN_AUDIENCE_VERB = "request-serviceaccounts-token-audience"
NODES_GROUP = "system:nodes"


def audience_rbac(name: str, audience: str, labels: dict[str, str]) -> list[dict]:
    """A Role and RoleBinding letting the nodes request tokens for ``audience`` in one
    namespace: with ServiceAccountNodeAudienceRestriction (on since 1.33) a node may request
    a token only for an audience a pod volume names, or one RBAC grants it (the audience is the
    rule's resource, the ServiceAccount its resourceName; none here: every ServiceAccount)."""
    meta = {"name": name, "labels": dict(labels)}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [{"apiGroups": [""], "resources": [audience], "verbs": [TOKEN_AUDIENCE_VERB]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": dict(meta),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": NODES_GROUP}
        ],
    }
    return [role, binding]


# The first kubelet minor where KubeletServiceAccountTokenForCredentialProviders is on by
# default (alpha and off in 1.33, beta and on in 1.34: pkg/features/kube_features.go).
TOKEN_MODE_SINCE = (1, 34)


def token_mode_unsupported(kubelet: tuple[int, int]) -> str | None:
    """Why a kubelet of this (major, minor) cannot pass ServiceAccount tokens to a plugin by
    default, or None when it can."""
    if kubelet >= TOKEN_MODE_SINCE:
        return None
    if kubelet == (1, 33):
        return (
            "kubelet v1.33: KubeletServiceAccountTokenForCredentialProviders is alpha and off "
            "by default (beta and on since v1.34)"
        )
    return (
        f"kubelet v{kubelet[0]}.{kubelet[1]} has no "
        "KubeletServiceAccountTokenForCredentialProviders (alpha in v1.33, beta and on by "
        "default since v1.34)"
    )


KUBELET_FLAGS = (
    f"--image-credential-provider-config={CONFIG_PATH}",
    f"--image-credential-provider-bin-dir={BIN_DIR}",
)

_EXTRA_ARGS = re.compile(r"^KUBELET_EXTRA_ARGS=(.*)$", re.MULTILINE)


def with_extra_args(defaults: str, flags: tuple[str, ...] = KUBELET_FLAGS) -> str:
    """The kubelet's defaults file with ``flags`` added to KUBELET_EXTRA_ARGS, others kept."""
    added = " ".join(shlex.quote(f) for f in flags)
    match = _EXTRA_ARGS.search(defaults)
    if match is None:
        return (
            defaults
            + ("" if defaults.endswith("\n") or not defaults else "\n")
            + (f"KUBELET_EXTRA_ARGS={added}\n")
        )
    value = match.group(1).strip().strip('"')
    line = f"KUBELET_EXTRA_ARGS={value} {added}" if value else f"KUBELET_EXTRA_ARGS={added}"
    return defaults[: match.start()] + line + defaults[match.end() :]
