"""Build the INTERIM doctor fixtures in this folder (run once; the JSON files are what the tests
read). Delete this file when real captures (tools/capture_doctor_evidence.py) replace them.
A file whose provenance kind is already ``capture`` is left alone (see README.md beside it).

Each fixture has the shape a capture writes (pod, events, secrets, node, in the API's field
names, credentials masked) plus ``provenance`` and ``expect``. Provenance says where its message
comes from:
- ``findings.md``: the message as docs/findings.md records it, observed on the lab's cluster
  (containerd 1.6.20, kubelet v1.34.4), with the placeholders filled in by hand;
- ``upstream-wording``: not observed on the lab; the wording is taken from the upstream source
  (Go crypto/x509, containerd, the kubelet) and must be verified by a capture.

    .venv/bin/python tests/unit/data/doctor/build_interim.py
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

HERE = Path(__file__).parent
HOST = "pull-lab-registry:5000"
IMAGE = f"{HOST}/lab/nginx:1.7.9"
MASKED = ["<masked>"]
NODE = {
    "name": "pull-lab-control-plane",
    "nodeInfo": {
        "kubeletVersion": "v1.34.4",
        "containerRuntimeVersion": "containerd://1.6.20",
        "operatingSystem": "linux",
        "architecture": "amd64",
    },
}
FINDINGS = "findings.md"
UPSTREAM = "upstream-wording"

# docs/findings.md, "Messages": the ErrImagePull status messages, <ref> and <host> filled in.
PREFIX = f'failed to pull and unpack image "{IMAGE}": failed to resolve reference "{IMAGE}": '
HEAD = f'failed to do request: Head "https://{HOST}/v2/lab/nginx/manifests/1.7.9": '
MSG_UNKNOWN_CA = PREFIX + HEAD + "x509: certificate signed by unknown authority"
MSG_401 = (
    PREFIX + f"pulling from host {HOST} failed with status code [manifests 1.7.9]: 401 Unauthorized"
)


def dockerconfigjson(hosts: list[str], **extra: object) -> str:
    auths = {h: {"username": "foo", "password": MASKED, "auth": MASKED} for h in hosts}
    return base64.b64encode(json.dumps({"auths": auths, **extra}).encode()).decode()


def secret(name: str, data: dict[str, str], type_: str = "kubernetes.io/dockerconfigjson"):
    return {
        "name": name,
        "status": "found",
        "secret": {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": "lab"},
            "type": type_,
            "data": data,
        },
    }


def pull_secret(name: str, hosts: list[str], **extra: object):
    return secret(name, {".dockerconfigjson": dockerconfigjson(hosts, **extra)})


def waiting(name: str, image: str, reason: str, message: str) -> dict:
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": reason, "message": message}},
    }


def running(name: str, image: str) -> dict:
    return {
        "name": name,
        "image": image,
        "imageID": f"{image.rsplit(':', 1)[0]}@sha256:{'ab' * 32}",
        "ready": True,
        "restartCount": 0,
        "state": {"running": {"startedAt": "2026-11-29T21:00:05Z"}},
    }


def failed_event(container: str, image: str, error: str, when: str, field: str = "containers"):
    return {
        "reason": "Failed",
        "type": "Warning",
        "message": f'Failed to pull image "{image}": {error}',
        "involvedObject": {"kind": "Pod", "fieldPath": f"spec.{field}{{{container}}}"},
        "lastTimestamp": when,
        "count": 1,
    }


def pod(
    name: str,
    containers: list[tuple[str, str]],
    statuses: list[dict],
    secrets: tuple[str, ...] = (),
    init: list[tuple[str, str]] = (),  # type: ignore[assignment]
    init_statuses: list[dict] = (),  # type: ignore[assignment]
    policy: str = "IfNotPresent",
    phase: str = "Pending",
) -> dict:
    spec: dict = {
        "nodeName": NODE["name"],
        "containers": [{"name": n, "image": i, "imagePullPolicy": policy} for n, i in containers],
    }
    if init:
        spec["initContainers"] = [{"name": n, "image": i} for n, i in init]
    if secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in secrets]
    status: dict = {"phase": phase, "containerStatuses": statuses}
    if init_statuses:
        status["initContainerStatuses"] = list(init_statuses)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "lab", "uid": f"uid-{name}"},
        "spec": spec,
        "status": status,
    }


def fixture(
    file: str,
    provenance: str,
    note: str,
    the_pod: dict,
    *,
    secrets: list[dict] = (),  # type: ignore[assignment]
    events: list[dict] = (),  # type: ignore[assignment]
    first: str | None,
    names: list[str] | None = None,
    absent: list[str] = (),  # type: ignore[assignment]
) -> None:
    expect: dict = {"first": first}
    if names is not None:
        expect["names"] = names
    if absent:
        expect["absent"] = list(absent)
    record = {
        "schema": "pull-lab-doctor-capture/1",
        "provenance": {"kind": f"interim: {provenance}", "note": note},
        "expect": expect,
        "pod": the_pod,
        "events": list(events),
        "secrets": list(secrets),
        "node": NODE,
    }
    path = HERE / f"{file}.json"
    if path.exists() and json.loads(path.read_text())["provenance"]["kind"] == "capture":
        return  # a real capture from the lab cluster replaced this one: never overwrite it
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def one(reason: str, message: str, image: str = IMAGE, name: str = "app") -> list[dict]:
    return [waiting(name, image, reason, message)]


def main() -> None:
    app = [("app", IMAGE)]
    # ---- from docs/findings.md -----------------------------------------------------------
    fixture(
        "back-off-bare-status-event",
        FINDINGS,
        "a status that says only the BackOff event's wording (Back-off pulling image, no "
        "ErrImagePull suffix): the error is in the last Failed event (an older event says 401). "
        "Not seen on the lab: kubelet v1.34.4 keeps the message in ImagePullBackOff, and after a "
        "kubelet restart says ContainerCreating with no message until its next pull (captured: "
        "kubelet-restart-container-creating.json)",
        pod("nginx-registry", app, one("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')),
        events=[
            failed_event("app", IMAGE, MSG_401, "2026-11-29T21:00:00Z"),
            failed_event("app", IMAGE, MSG_UNKNOWN_CA, "2026-11-29T21:05:00Z"),
            {
                "reason": "Failed",
                "type": "Warning",
                "message": "Error: ErrImagePull",
                "involvedObject": {"kind": "Pod", "fieldPath": "spec.containers{app}"},
                "lastTimestamp": "2026-11-29T21:05:01Z",
            },
        ],
        first="unknown-ca",
        names=["unknown-ca"],
    )
    fixture(
        "all-pulled",
        FINDINGS,
        "the pull succeeded: Running, no finding",
        pod("nginx-registry", app, [running("app", IMAGE)], ("registry-1",), phase="Running"),
        secrets=[pull_secret("registry-1", [HOST])],
        first=None,
        names=[],
    )
    # ---- not produced on the lab: upstream wording (see docs/findings.md, "Noted") ---------
    msgs = {
        # Go before 1.15 gave no dates; since then it always says "is after" / "is before".
        "cert-validity": HEAD + "x509: certificate has expired or is not yet valid",
        # distribution 2.8 with htpasswd never answers 403 to a pull, nor 429.
        "forbidden": f"pulling from host {HOST} failed with status code [manifests 1.7.9]: "
        "403 Forbidden",
        "rate-limited": f"pulling from host {HOST} failed with status code [manifests 1.7.9]: "
        "429 Too Many Requests",
        # containerd 1.6 asks with HEAD: a 404 has no body, so these never reach the status.
        "tag-not-found": f"{HOST}/lab/nginx:1.7.9: not found: manifest unknown: manifest unknown",
        "repository-not-found": f"{HOST}/lab/nginx:1.7.9: not found: name unknown: repository "
        "name not known to registry",
    }
    for name, tail in msgs.items():
        fixture(
            name,
            UPSTREAM,
            f"{name}: wording from upstream, not produced on the lab",
            pod("app", app, one("ErrImagePull", PREFIX + tail), ("registry-1",)),
            secrets=[pull_secret("registry-1", [HOST])],
            first=name,
            names=[name],
        )
    fixture(
        "not-recognised",
        UPSTREAM,
        "a message no rule knows is shown verbatim",
        pod(
            "app",
            app,
            one(
                "ErrImagePull",
                f'failed to pull and unpack image "{IMAGE}": '
                f"failed to extract layer sha256:{'cd' * 32}: write /var/lib/containerd/x: no "
                "space left on device: unknown",
            ),
        ),
        first="not-recognised",
        names=["not-recognised"],
    )


if __name__ == "__main__":
    main()
