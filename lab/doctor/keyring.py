"""Pull secrets read the way the kubelet reads them: which key of which secret serves an image.

The kubelet's keyring (``pkg/credentialprovider/keyring.go``) strips a key's scheme, treats a
``/v1/`` or ``/v2/`` path as the bare host, lets a key with a path serve only images under that
path, matches ``*`` in a host label by label, wants the ports equal (a key without a port does
not serve ``reg:5000``), and files Docker Hub under ``index.docker.io``, which ``docker.io``
images use. Doing the same here is what lets doctor blame the right secret of several.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
from dataclasses import dataclass
from typing import Any

PULL_SECRET_TYPES = {
    "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
    "kubernetes.io/dockercfg": ".dockercfg",
}
DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_CREDENTIAL_FIELDS = ("auth", "password", "identitytoken", "registrytoken")


def image_host(image: str) -> str:
    """The registry part of an image reference, as the kubelet matches it (host[:port])."""
    first = image.split("/", 1)[0]
    if "/" not in image or ("." not in first and ":" not in first and first != "localhost"):
        return DOCKER_HUB
    return DOCKER_HUB if first in _HUB_ALIASES else first


def image_repository(image: str) -> str:
    """host[:port]/path of an image, without tag or digest (``busybox`` -> docker.io/library/busybox)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    host = image_host(image)
    if host == DOCKER_HUB:
        path = name.split("/", 1)[1] if name.split("/", 1)[0] in _HUB_ALIASES else name
        return f"{host}/{path if '/' in path else 'library/' + path}"
    return name


def image_reference(image: str) -> str:
    """The image as host[:port]/path:tag or @digest, the default tag filled in, so two
    spellings of one image compare equal (``busybox`` == ``docker.io/library/busybox:latest``)."""
    repo = image_repository(image)
    if "@" in image:
        return f"{repo}@{image.split('@', 1)[1]}"
    last = image.rsplit("/", 1)[-1]
    return f"{repo}:{last.split(':', 1)[1] if ':' in last else 'latest'}"


def same_image(a: str, b: str) -> bool:
    return image_reference(a) == image_reference(b)


def key_host(key: str) -> str:
    """A credentials key as the kubelet reads it: no scheme, no /v1/ or /v2/ path."""
    key = key.split("://", 1)[-1]
    return key.split("/", 1)[0]


@dataclass(frozen=True)
class Key:
    """One key of a pull secret, parsed as the kubelet parses it."""

    secret: str
    raw: str
    host: str  # without port
    port: str
    path: str  # "" or "/team/..."
    has_credentials: bool

    @staticmethod
    def parse(secret: str, raw: str, entry: Any) -> Key:
        rest = raw.split("://", 1)[-1]
        hostport, _, path = rest.partition("/")
        path = "/" + path if path else ""
        if path.startswith(("/v1/", "/v2/")) or path in ("/v1", "/v2"):
            path = path[3:]
        path = path.rstrip("/")
        host, _, port = hostport.partition(":")
        if host in _HUB_ALIASES:
            host = DOCKER_HUB
        creds = isinstance(entry, dict) and any(entry.get(f) for f in _CREDENTIAL_FIELDS)
        if isinstance(entry, dict) and entry.get("username") and entry.get("password"):
            creds = True
        return Key(secret, raw, host.lower(), port, path, bool(creds))

    def serves(self, image: str) -> bool:
        """Whether the kubelet would offer this key's credentials for ``image``."""
        repo = image_repository(image)
        hostport, _, path = repo.partition("/")
        host, _, port = hostport.partition(":")
        if port != self.port:
            return False
        key_labels, host_labels = self.host.split("."), host.lower().split(".")
        if len(key_labels) != len(host_labels):
            return False
        if not all(fnmatch.fnmatchcase(h, k) for k, h in zip(key_labels, host_labels, strict=True)):
            return False
        return ("/" + path + "/").startswith(self.path + "/")

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host


@dataclass(frozen=True)
class Parsed:
    """What the kubelet gets out of one pull secret: its keys, or why it gets nothing."""

    keys: tuple[Key, ...] = ()
    problem: str = ""  # "" when the secret is usable
    problem_kind: str = ""  # wrong-type / wrong-shape / credsstore
    helper: str = ""


def _auths(secret_type: str, data: dict[str, str]) -> tuple[dict, dict] | Parsed:
    """(the secret's JSON, its host map), or a ``Parsed`` saying why the kubelet gets nothing."""
    if secret_type not in PULL_SECRET_TYPES:
        return Parsed(problem=f"type {secret_type or '(none)'}", problem_kind="wrong-type")
    raw = data.get(PULL_SECRET_TYPES[secret_type])
    if raw is None:
        return Parsed(
            problem=f"no {PULL_SECRET_TYPES[secret_type]} key", problem_kind="wrong-shape"
        )
    try:
        content = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        return Parsed(problem=f"not base64 JSON: {exc}", problem_kind="wrong-shape")
    if not isinstance(content, dict):
        return Parsed(problem="not a JSON object", problem_kind="wrong-shape")
    if secret_type == "kubernetes.io/dockerconfigjson":
        auths = content.get("auths")
        if not isinstance(auths, dict):
            top = ", ".join(sorted(content)) or "(none)"
            return Parsed(
                problem=f"no `auths` object (top-level keys: {top})", problem_kind="wrong-shape"
            )
    else:
        auths = content
    return content, auths


def key_credentials(secret_type: str, data: dict[str, str], raw_key: str) -> tuple[str, str] | None:
    """The user and password one key of a secret holds (for ``--probe``), or None.

    Never print what this returns: the probe sends it to the registry and nowhere else.
    """
    found = _auths(secret_type, data)
    if isinstance(found, Parsed):
        return None
    entry = found[1].get(raw_key)
    if not isinstance(entry, dict):
        return None
    user, password = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(password, str) and user and password:
        return user, password
    auth = entry.get("auth")
    if not isinstance(auth, str) or not auth:
        return None
    try:
        user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def parse_secret(name: str, secret_type: str, data: dict[str, str]) -> Parsed:
    """Read a secret's data (base64 values, as the API returns them) like the kubelet does."""
    found = _auths(secret_type, data)
    if isinstance(found, Parsed):
        return found
    content, auths = found
    keys = tuple(Key.parse(name, k, v) for k, v in auths.items())
    helper = str(content.get("credsStore") or ("credHelpers" if content.get("credHelpers") else ""))
    if helper and not any(k.has_credentials for k in keys):
        return Parsed(
            keys, f"credentials live in a credential helper ({helper})", "credsstore", helper
        )
    return Parsed(keys)
