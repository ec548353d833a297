"""`pull-lab doctor`: why does this pod not pull its image, and what fixes it.

It reads what anyone can read on a real cluster (the pod's status, its events, the secrets it
names) and matches them against the failures the scenarios reproduce. Secret problems are
checked first: a 401 has many causes, and the secrets tell which one it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from lab.errors import LabError
from lab.pods import PULL_FAILURES, container_views, pod_events
from lab.signatures import classify

PULL_SECRET_TYPES = {
    "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
    "kubernetes.io/dockercfg": ".dockercfg",
}


@dataclass(frozen=True)
class Finding:
    name: str
    container: str | None
    cause: str
    fix: str
    evidence: str

    def render(self) -> str:
        where = f"container {self.container}: " if self.container else ""
        return f"{where}{self.name}\n  likely cause: {self.cause}\n  fix: {self.fix}\n  evidence: {self.evidence[:400]}"


def image_host(image: str) -> str:
    """The registry part of an image reference, as the kubelet matches it (host[:port])."""
    first = image.split("/", 1)[0]
    if "/" not in image or ("." not in first and ":" not in first and first != "localhost"):
        return "docker.io"
    return first


def key_host(key: str) -> str:
    """A credentials key as the kubelet reads it: no scheme, no /v1/ or /v2/ path."""
    key = key.split("://", 1)[-1]
    return key.split("/", 1)[0]


def _decode(secret: Any) -> tuple[dict | None, str]:
    key = PULL_SECRET_TYPES.get(secret.type or "")
    raw = (secret.data or {}).get(key or ".dockerconfigjson")
    if raw is None:
        return None, "no data"
    try:
        return json.loads(base64.b64decode(raw)), ""
    except (binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, f"not JSON: {exc}"


def secret_findings(core: client.CoreV1Api, pod: Any, hosts: set[str]) -> list[Finding]:
    ns = pod.metadata.namespace
    findings: list[Finding] = []
    for ref in pod.spec.image_pull_secrets or []:
        name = ref.name
        try:
            secret: Any = core.read_namespaced_secret(name, ns)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            elsewhere = _namespaces_with_secret(core, name)
            if elsewhere:
                findings.append(
                    Finding(
                        "secret-other-namespace",
                        None,
                        f"secret {name} exists in {', '.join(elsewhere)}, not in {ns}: pods only see their own namespace's secrets",
                        f"create the secret in namespace {ns}",
                        f"FailedToRetrieveImagePullSecret ({name})",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "secret-missing",
                        None,
                        f"imagePullSecrets names {name}, which does not exist",
                        f"create it: kubectl create secret docker-registry {name} -n {ns} --docker-server=<host:port> ...",
                        f"FailedToRetrieveImagePullSecret ({name})",
                    )
                )
            continue
        if secret.type not in PULL_SECRET_TYPES:
            findings.append(
                Finding(
                    "secret-wrong-type",
                    None,
                    f"secret {name} has type {secret.type}; the kubelet reads only kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg",
                    "recreate it with kubectl create secret docker-registry (or type kubernetes.io/dockerconfigjson)",
                    f"type {secret.type}",
                )
            )
            continue
        content, problem = _decode(secret)
        if content is None:
            findings.append(
                Finding(
                    "secret-wrong-shape",
                    None,
                    f"secret {name}: {problem}",
                    "store the config.json content, base64-encoded once",
                    problem,
                )
            )
            continue
        auths = content.get("auths") if secret.type == "kubernetes.io/dockerconfigjson" else content
        if secret.type == "kubernetes.io/dockerconfigjson" and not isinstance(auths, dict):
            findings.append(
                Finding(
                    "secret-wrong-shape",
                    None,
                    f"secret {name}'s .dockerconfigjson has no `auths` object: the kubelet finds no credentials in it",
                    'wrap the host map as {"auths": {"<host:port>": {...}}}',
                    f"top-level keys: {', '.join(sorted(content)) or '(none)'}",
                )
            )
            continue
        auths = auths or {}
        helper = content.get("credsStore") or content.get("credHelpers")
        has_creds = any(
            isinstance(v, dict) and (v.get("auth") or v.get("password")) for v in auths.values()
        )
        if helper and not has_creds:
            findings.append(
                Finding(
                    "credsstore",
                    None,
                    f"secret {name} comes from a config.json whose credentials live in a credential helper ({content.get('credsStore') or 'credHelpers'}): it holds none",
                    "make the secret with kubectl create secret docker-registry --docker-username/--docker-password",
                    "credsStore set, auths without auth",
                )
            )
            continue
        keys = {key_host(k): k for k in auths}
        for host in hosts:
            if host in keys:
                continue
            bare = host.split(":", 1)[0]
            if bare in keys or any(k.split(":", 1)[0] == bare for k in keys):
                findings.append(
                    Finding(
                        "secret-port-mismatch",
                        None,
                        f"secret {name} has credentials for {', '.join(keys.values())} but the image's registry is {host}: keys must match host:port exactly",
                        f"key the credentials as {host}",
                        f"keys: {', '.join(keys.values())}",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "secret-other-host",
                        None,
                        f"secret {name} has no credentials for {host} (its keys: {', '.join(keys.values()) or 'none'}): the pull goes without",
                        f"kubectl create secret docker-registry ... --docker-server={host}",
                        f"keys: {', '.join(keys.values()) or '(none)'}",
                    )
                )
    return findings


def _namespaces_with_secret(core: client.CoreV1Api, name: str) -> list[str]:
    try:
        items: list[Any] = core.list_secret_for_all_namespaces(
            field_selector=f"metadata.name={name}"
        ).items
    except client.ApiException:
        return []
    return sorted({s.metadata.namespace for s in items})


def diagnose_pod(core: client.CoreV1Api, namespace: str, name: str) -> list[Finding]:
    try:
        pod: Any = core.read_namespaced_pod(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            raise LabError(
                f"pod {name} not found in namespace {namespace}", "check the name and -n"
            ) from None
        raise
    images = {c.name: c.image for c in pod.spec.containers}
    failing = [v for v in container_views(pod) if v.reason in PULL_FAILURES]
    if not failing:
        failed_events = [
            e
            for e in pod_events(core, namespace, pod)
            if e.reason == "Failed" and "Failed to pull" in (e.message or "")
        ]
        if not failed_events:
            return []
    hosts = {image_host(images[v.name]) for v in failing}
    findings = secret_findings(core, pod, hosts)
    secret_level = {f.name for f in findings}
    for view in failing:
        sig = classify(view.message)
        if sig is None:
            findings.append(
                Finding(
                    "unknown",
                    view.name,
                    "no known signature matches",
                    "read the message and the node's containerd log",
                    view.message,
                )
            )
            continue
        if sig.name == "unauthorized":
            if secret_level:
                continue  # the secret findings above are the more precise cause
            has_secret = bool(pod.spec.image_pull_secrets)
            findings.append(
                Finding(
                    "wrong-password" if has_secret else "no-credentials",
                    view.name,
                    "a secret matches the registry but it refused the credentials: the user or password is wrong"
                    if has_secret
                    else "the pod has no pull secret and the node has no credentials for this registry",
                    "fix the password in the secret (it is read at the next pull attempt)"
                    if has_secret
                    else sig.fix,
                    view.message,
                )
            )
            continue
        findings.append(Finding(sig.name, view.name, sig.cause, sig.fix, view.message))
    return findings


def render(pod: str, namespace: str, findings: list[Finding]) -> str:
    if not findings:
        return f"pod {namespace}/{pod}: no image pull problem found"
    lines = [f"pod {namespace}/{pod}: {len(findings)} finding(s)"]
    lines += [f"{i}. {f.render()}" for i, f in enumerate(findings, 1)]
    return "\n".join(lines)
