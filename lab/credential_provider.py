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
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

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

PLUGIN_SCRIPT = f"""#!/bin/bash
# The lab's credential provider: the kubelet writes a CredentialProviderRequest on stdin and
# reads a CredentialProviderResponse on stdout. Answers come from {ANSWERS_PATH}.
set -euo pipefail
request=$(cat)
image=$(jq -r .image <<<"$request")
echo "$(date -u +%FT%TZ) $image" >>{REQUEST_LOG}
if [ "$(jq -r '.fail // false' {ANSWERS_PATH})" = true ]; then
  echo "{FAILURE_MESSAGE} ($image)" >&2
  exit 1
fi
jq '{{apiVersion: "{API_VERSION}", kind: "CredentialProviderResponse",
     cacheKeyType: "Registry", auth: .auth}}' {ANSWERS_PATH}
"""


@dataclass(frozen=True)
class ProviderSetup:
    """Which images the kubelet asks the plugin about, and how long it keeps an answer."""

    match_images: tuple[str, ...]
    default_cache_duration: str = "0s"  # the kubelet asks again for every pull

    def config_yaml(self) -> str:
        """The kubelet's CredentialProviderConfig (kubelet.config.k8s.io/v1)."""
        patterns = "\n".join(f"  - {json.dumps(p)}" for p in self.match_images)
        return (
            "apiVersion: kubelet.config.k8s.io/v1\n"
            "kind: CredentialProviderConfig\n"
            "providers:\n"
            f"- name: {PROVIDER_NAME}\n"
            f"  apiVersion: {API_VERSION}\n"
            f"  defaultCacheDuration: {json.dumps(self.default_cache_duration)}\n"
            "  matchImages:\n"
            f"{patterns}\n"
        )


def answers_json(auth: dict[str, tuple[str, str]], fail: bool = False) -> bytes:
    """What the plugin answers: credentials per registry host, or a failure."""
    return json.dumps(
        {
            "fail": fail,
            "auth": {host: {"username": u, "password": p} for host, (u, p) in auth.items()},
        },
        indent=2,
    ).encode()


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
