"""Read one pod's evidence from a cluster as a capture: plain JSON in the API's field names.

It holds the pod, its events, the pull secrets it names (found / missing / forbidden), its
ServiceAccount with the pull secrets listed there and not in the pod (the admission plugin
copies them only when the pod is created), and its node: nodeInfo and, of the images the node
lists, those the pod uses.

``capture`` is what doctor reads live; ``masked`` is the same capture fit to be written to a
file or checked in (``tools/capture_doctor_evidence.py``): every credential inside a pull
secret is replaced, keeping only whether it was there (the rules need no more), and what else
could carry a secret (env values, last-applied annotations) is dropped.

>>> capture(core, "default", "nginx-registry")["secrets"][0]["status"]
'found'
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import json
from typing import Any

from kubernetes import client

from lab.doctor.keyring import PULL_SECRET_TYPES, same_image
from lab.errors import LabError
from lab.masking import mask_all

SCHEMA = "pull-lab-doctor-capture/1"
MASKED = "<masked>"
# A masked credential field holds this list, not a string: present (so the rules still see
# credentials there) and shaped unlike any credential, so the lab's masker leaves the
# surrounding base64 JSON readable instead of blanking it whole.
MASKED_FIELD = [MASKED]
_CREDENTIAL_FIELDS = ("auth", "password", "identitytoken", "registrytoken", "email")
_DATA_KEYS = set(PULL_SECRET_TYPES.values())


def capture(core: client.CoreV1Api, namespace: str, name: str) -> dict:
    """The pod, its events, its pull secrets as read (found / missing / forbidden) and its node."""
    api = core.api_client
    try:
        pod: Any = core.read_namespaced_pod(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            raise LabError(
                f"pod {name} not found in namespace {namespace}", "check the name and -n"
            ) from None
        if exc.status == 403:
            raise LabError(
                f"cannot read pod {namespace}/{name} (forbidden)",
                "use a kubeconfig that may get pods there",
            ) from None
        raise
    events: list[Any] = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.uid={pod.metadata.uid}"
    ).items
    listed = [ref.name for ref in pod.spec.image_pull_secrets or []]
    return {
        "schema": SCHEMA,
        "captured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "pod": api.sanitize_for_serialization(pod),
        "events": [api.sanitize_for_serialization(e) for e in events],
        "secrets": [_read_secret(core, namespace, name) for name in listed],
        "serviceAccount": _read_service_account(
            core, namespace, pod.spec.service_account_name or "default", listed
        ),
        "node": _read_node(core, pod.spec.node_name, _images_of(pod)),
    }


def _images_of(pod: Any) -> list[str]:
    containers = [
        *(pod.spec.init_containers or []),
        *(pod.spec.containers or []),
        *(pod.spec.ephemeral_containers or []),
    ]
    return [c.image for c in containers if c.image]


def _read_service_account(
    core: client.CoreV1Api, namespace: str, name: str, pod_secrets: list[str]
) -> dict:
    """The ServiceAccount's pull secrets; those the pod lacks are read like the pod's own."""
    try:
        sa: Any = core.read_namespaced_service_account(name, namespace)
    except client.ApiException as exc:
        status = {404: "missing", 403: "forbidden"}.get(exc.status or 0, "error")
        read = {"name": name, "status": status}
        return read if status == "missing" else {**read, "error": f"{exc.status} {exc.reason}"}
    names = [ref.name for ref in sa.image_pull_secrets or [] if ref.name]
    return {
        "name": name,
        "status": "found",
        "imagePullSecrets": names,
        "secrets": [_read_secret(core, namespace, n) for n in names if n not in pod_secrets],
    }


def _read_secret(core: client.CoreV1Api, namespace: str, name: str) -> dict:
    try:
        secret: Any = core.read_namespaced_secret(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return {"name": name, "status": "missing", "elsewhere": _namespaces_with(core, name)}
        if exc.status == 403:
            # Not being allowed to look is not the same as the secret being absent.
            return {"name": name, "status": "forbidden", "error": f"{exc.status} {exc.reason}"}
        return {"name": name, "status": "error", "error": f"{exc.status} {exc.reason}"}
    return {
        "name": name,
        "status": "found",
        "secret": core.api_client.sanitize_for_serialization(secret),
    }


def _namespaces_with(core: client.CoreV1Api, name: str) -> list[str]:
    try:
        items: list[Any] = core.list_secret_for_all_namespaces(
            field_selector=f"metadata.name={name}"
        ).items
    except client.ApiException:
        return []  # no right to list every namespace: say nothing rather than guess
    return sorted({s.metadata.namespace for s in items})


def _read_node(core: client.CoreV1Api, node_name: str | None, images: list[str]) -> dict | None:
    if not node_name:
        return None
    try:
        node: Any = core.read_node(node_name)
    except client.ApiException:
        return {"name": node_name}  # nodes are cluster-scoped: many users may not read them
    info = core.api_client.sanitize_for_serialization(node.status.node_info)
    # Only the pod's own images: the node's full list says nothing about this pod.
    held = sorted(
        {
            name
            for held_image in node.status.images or []
            for name in held_image.names or []
            if any(same_image(name, image) for image in images)
        }
    )
    return {"name": node_name, "nodeInfo": info, "images": held}


def masked(captured: dict) -> dict:
    """A copy safe to write down: credentials replaced by a marker, their presence kept."""
    out = copy.deepcopy(captured)
    sa_reads = (out.get("serviceAccount") or {}).get("secrets") or []
    for read in [*(out.get("secrets") or []), *sa_reads]:
        secret = read.get("secret")
        if not secret:
            continue
        secret.get("metadata", {}).pop("managedFields", None)
        secret.get("metadata", {}).pop("annotations", None)  # last-applied holds the data
        secret["data"] = {k: _mask_value(k, v) for k, v in (secret.get("data") or {}).items()}
        secret.pop("stringData", None)
    pod_meta = out.get("pod", {}).get("metadata", {})
    pod_meta.pop("managedFields", None)
    (pod_meta.get("annotations") or {}).pop(
        "kubectl.kubernetes.io/last-applied-configuration", None
    )
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in out.get("pod", {}).get("spec", {}).get(field) or []:
            for env in c.get("env") or []:
                if "value" in env:
                    env["value"] = MASKED
    result: dict = mask_all(out)  # and whatever the lab itself registered as a secret
    return result


def _mask_value(key: str, value: str) -> str:
    """Mask a pull secret's content and keep its shape, so a masked capture reads the same."""
    if key not in _DATA_KEYS and key != ".dockerconfigjson":
        return base64.b64encode(MASKED.encode()).decode()
    try:
        content = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        # Undecodable content reads as "not base64 JSON" to doctor whatever it held.
        return MASKED
    return base64.b64encode(json.dumps(_mask_json(content)).encode()).decode()


def _mask_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (MASKED_FIELD if k in _CREDENTIAL_FIELDS and v else _mask_json(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    return value
