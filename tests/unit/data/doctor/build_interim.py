"""Build the INTERIM doctor fixtures in this folder (run once; the JSON files are what the tests
read). Delete this file when real captures (tools/capture_doctor_evidence.py) replace them.
A file whose provenance kind is already ``capture`` is left alone (see docs/wip-doctor.md).

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
HOST2 = "pull-lab-registry-2:5000"
IMAGE = f"{HOST}/lab/nginx:1.7.9"
REG_IP = "172.18.0.3"
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
MSG_NOT_FOUND = (
    "rpc error: code = NotFound desc = "
    + PREFIX.replace(IMAGE, f"{HOST}/lab/busybox:no-such-tag")
    + f"{HOST}/lab/busybox:no-such-tag: not found"
)
MSG_BAD_CERT = PREFIX + HEAD + "remote error: tls: bad certificate"
ALIAS = "reg-alias-3f9a2c"
MSG_NAME_MISMATCH = (
    PREFIX.replace(HOST, f"{ALIAS}:5000")
    + HEAD.replace(HOST, f"{ALIAS}:5000")
    + f"x509: certificate is valid for pull-lab-registry, localhost, not {ALIAS}"
)
REFUSED_HOST = "pull-lab-registry:5999"
MSG_REFUSED = (
    PREFIX.replace(HOST, REFUSED_HOST).replace("nginx:1.7.9", "busybox:1.0")
    + f'failed to do request: Head "https://{REFUSED_HOST}/v2/lab/busybox/manifests/1.0": '
    + f"dial tcp {REG_IP}:5999: connect: connection refused"
)


def back_off(message: str, image: str = IMAGE) -> str:
    """docs/findings.md: the ImagePullBackOff status message after a failed pull."""
    return f'Back-off pulling image "{image}": ErrImagePull: {message}'


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
        "unknown-ca",
        FINDINGS,
        "no CA on the node",
        pod("nginx-registry", app, one("ErrImagePull", MSG_UNKNOWN_CA)),
        first="unknown-ca",
        names=["unknown-ca"],
    )
    fixture(
        "no-credentials",
        FINDINGS,
        "CA, no credentials, no pull secret",
        pod("app", app, one("ErrImagePull", MSG_401)),
        first="no-credentials",
        names=["no-credentials"],
    )
    fixture(
        "wrong-password",
        FINDINGS,
        "a secret keyed to the host, wrong password",
        pod("app", app, one("ErrImagePull", MSG_401), ("registry-1",)),
        secrets=[pull_secret("registry-1", [HOST])],
        first="wrong-password",
        names=["wrong-password"],
    )
    fixture(
        "not-found",
        FINDINGS,
        "tag missing, valid credentials",
        pod(
            "app",
            [("app", f"{HOST}/lab/busybox:no-such-tag")],
            one("ErrImagePull", MSG_NOT_FOUND, f"{HOST}/lab/busybox:no-such-tag"),
            ("registry-1",),
        ),
        secrets=[pull_secret("registry-1", [HOST])],
        first="not-found",
        names=["not-found"],
    )
    fixture(
        "client-cert-required",
        FINDINGS,
        "mTLS registry, no client pair on the node",
        pod("nginx-registry", app, one("ErrImagePull", MSG_BAD_CERT), ("registry-1",)),
        secrets=[pull_secret("registry-1", [HOST])],
        first="client-cert-required",
        names=["client-cert-required"],
    )
    alias_image = IMAGE.replace(HOST, f"{ALIAS}:5000")
    fixture(
        "name-mismatch",
        FINDINGS,
        "the image names the registry by an alias",
        pod(
            "app",
            [("app", alias_image)],
            one("ErrImagePull", MSG_NAME_MISMATCH, alias_image),
            ("registry-1",),
        ),
        secrets=[pull_secret("registry-1", [f"{ALIAS}:5000"])],
        first="name-mismatch",
        names=["name-mismatch"],
    )
    refused_image = f"{REFUSED_HOST}/lab/busybox:1.0"
    fixture(
        "connection-refused",
        FINDINGS,
        "nothing listens at the image's port",
        pod(
            "app",
            [("app", refused_image)],
            one("ErrImagePull", MSG_REFUSED, refused_image),
            ("registry-1",),
        ),
        secrets=[pull_secret("registry-1", [REFUSED_HOST])],
        first="connection-refused",
        names=["connection-refused"],
    )
    fixture(
        "back-off-message",
        FINDINGS,
        "ImagePullBackOff carrying the ErrImagePull message",
        pod("nginx-registry", app, one("ImagePullBackOff", back_off(MSG_UNKNOWN_CA))),
        first="unknown-ca",
        names=["unknown-ca"],
    )
    fixture(
        "back-off-bare-status-event",
        FINDINGS,
        "after a kubelet restart the status says only Back-off: the error is in the last "
        "Failed event (an older event says 401)",
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
        "init-container",
        FINDINGS,
        "the init container's image fails; the app waits",
        pod(
            "app",
            app,
            [waiting("app", IMAGE, "PodInitializing", "")],
            init=[("setup", IMAGE)],
            init_statuses=[waiting("setup", IMAGE, "ErrImagePull", MSG_UNKNOWN_CA)],
        ),
        first="unknown-ca",
        names=["unknown-ca"],
    )
    fixture(
        "secret-missing",
        FINDINGS,
        "imagePullSecrets names a secret that does not exist",
        pod("app", app, one("ErrImagePull", MSG_401), ("registry-nope",)),
        secrets=[{"name": "registry-nope", "status": "missing", "elsewhere": []}],
        first="secret-missing",
        names=["secret-missing"],
    )
    fixture(
        "secret-other-namespace",
        FINDINGS,
        "the secret lives in another namespace",
        pod("app", app, one("ErrImagePull", MSG_401), ("registry-1",)),
        secrets=[{"name": "registry-1", "status": "missing", "elsewhere": ["lab-other"]}],
        first="secret-other-namespace",
        names=["secret-other-namespace"],
    )
    fixture(
        "secret-forbidden",
        FINDINGS,
        "doctor may not read the pod's secret",
        pod("app", app, one("ErrImagePull", MSG_401), ("registry-1",)),
        secrets=[{"name": "registry-1", "status": "forbidden", "error": "403 Forbidden"}],
        first="secret-forbidden",
        names=["secret-forbidden"],
        absent=["secret-missing"],
    )
    fixture(
        "secret-port-mismatch",
        FINDINGS,
        "secret keyed 'reg', image 'reg:5000'",
        pod("app", app, one("ErrImagePull", MSG_401), ("registry-1",)),
        secrets=[pull_secret("registry-1", [HOST.split(":")[0]])],
        first="secret-port-mismatch",
        names=["secret-port-mismatch"],
    )
    fixture(
        "secret-wrong-type",
        FINDINGS,
        "type Opaque holding a .dockerconfigjson",
        pod("with-opaque", app, one("ErrImagePull", MSG_401), ("opaque",)),
        secrets=[secret("opaque", {".dockerconfigjson": dockerconfigjson([HOST])}, "Opaque")],
        first="secret-wrong-type",
        names=["secret-wrong-type"],
    )
    bare_map = base64.b64encode(
        json.dumps({HOST: {"username": "foo", "password": MASKED, "auth": MASKED}}).encode()
    ).decode()
    fixture(
        "secret-wrong-shape",
        FINDINGS,
        ".dockerconfigjson holding the bare host map",
        pod("with-no-auths", app, one("ErrImagePull", MSG_401), ("no-auths",)),
        secrets=[secret("no-auths", {".dockerconfigjson": bare_map})],
        first="secret-wrong-shape",
        names=["secret-wrong-shape"],
    )
    helper = base64.b64encode(
        json.dumps({"auths": {HOST: {}}, "credsStore": "desktop"}).encode()
    ).decode()
    fixture(
        "credsstore",
        FINDINGS,
        "config.json with credsStore and no auth values",
        pod("app", app, one("ErrImagePull", MSG_401), ("registry-1",)),
        secrets=[secret("registry-1", {".dockerconfigjson": helper})],
        first="credsstore",
        names=["credsstore"],
    )
    hub = base64.b64encode(
        json.dumps({"https://index.docker.io/v1/": {"auth": MASKED, "email": MASKED}}).encode()
    ).decode()
    fixture(
        "secret-other-host",
        FINDINGS,
        "the tutorial's .dockercfg is keyed to Docker Hub; the pod backs off",
        pod("nginx-registry-2", app, one("ImagePullBackOff", back_off(MSG_401)), ("registry-1",)),
        secrets=[secret("registry-1", {".dockercfg": hub}, "kubernetes.io/dockercfg")],
        first="secret-other-host",
        names=["secret-other-host"],
    )
    image_b = f"{HOST2}/lab/nginx:1.7.9"
    msg_b = MSG_401.replace(HOST, HOST2)
    fixture(
        "multi-registry-one-secret",
        FINDINGS,
        "two registries, only registry-1's secret listed: container b alone fails",
        pod(
            "one-secret",
            [("a", IMAGE), ("b", image_b)],
            [running("a", IMAGE), waiting("b", image_b, "ErrImagePull", msg_b)],
            ("registry-1",),
        ),
        secrets=[pull_secret("registry-1", [HOST])],
        first="secret-other-host",
        names=["secret-other-host"],
    )
    fixture(
        "multi-registry-wrong-secret",
        FINDINGS,
        "two registries, two secrets, registry-2 holds a wrong password: it is the one blamed",
        pod(
            "two-registries",
            [("a", IMAGE), ("b", image_b)],
            [running("a", IMAGE), waiting("b", image_b, "ErrImagePull", msg_b)],
            ("registry-1", "registry-2"),
        ),
        secrets=[pull_secret("registry-1", [HOST]), pull_secret("registry-2", [HOST2])],
        first="wrong-password",
        names=["wrong-password"],
        absent=["secret-other-host"],
    )
    fixture(
        "mtls-ranked-before-secret",
        FINDINGS,
        "mTLS failure with a secret keyed elsewhere: TLS comes first, before credentials",
        pod("nginx-registry", app, one("ErrImagePull", MSG_BAD_CERT), ("registry-1",)),
        secrets=[pull_secret("registry-1", [HOST2])],
        first="client-cert-required",
        names=["client-cert-required", "secret-other-host"],
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
    # ---- not observed on the lab: upstream wording, to verify with captures -----------------
    typo = "pull-lab-regsitry:5000"
    typo_image = f"{typo}/lab/nginx:1.7.9"
    msg_dns = (
        PREFIX.replace(HOST, typo)
        + f'failed to do request: Head "https://{typo}/v2/lab/nginx/manifests/1.7.9": '
        + f"dial tcp: lookup {typo.split(':')[0]} on 127.0.0.11:53: no such host"
    )
    fixture(
        "dns-failure-typo",
        UPSTREAM,
        "a typo in the registry host, the secret keyed to the right one: DNS first, a hint "
        "of the typo, never 'key the secret to the typo'",
        pod(
            "app", [("app", typo_image)], one("ErrImagePull", msg_dns, typo_image), ("registry-1",)
        ),
        secrets=[pull_secret("registry-1", [HOST])],
        first="dns-failure",
        names=["dns-failure", "host-maybe-mistyped"],
        absent=["secret-other-host"],
    )
    msgs = {
        "timeout": HEAD + f"dial tcp {REG_IP}:5000: i/o timeout",
        "no-route": HEAD + f"dial tcp {REG_IP}:5000: connect: no route to host",
        # Go before 1.15 gave no dates; today's Go always says "is after" / "is before".
        "cert-validity": HEAD + "x509: certificate has expired or is not yet valid",
        "cert-expired": HEAD + "x509: certificate has expired or is not yet valid: current time "
        "2026-11-29T21:00:00Z is after 2026-11-28T12:00:00Z",
        "cert-not-yet-valid": HEAD + "x509: certificate has expired or is not yet valid: current "
        "time 2026-11-29T21:00:00Z is before 2026-12-01T00:00:00Z",
        "forbidden": f"pulling from host {HOST} failed with status code [manifests 1.7.9]: "
        "403 Forbidden",
        "rate-limited": f"pulling from host {HOST} failed with status code [manifests 1.7.9]: "
        "429 Too Many Requests",
        "https-to-http-registry": HEAD + "http: server gave HTTP response to HTTPS client",
        "http-to-https-registry": HEAD.replace("https://", "http://")
        + 'malformed HTTP response "\\x15\\x03\\x01\\x00\\x02\\x02"',
        "tag-not-found": f"{HOST}/lab/nginx:1.7.9: not found: manifest unknown: manifest unknown",
        "repository-not-found": f"{HOST}/lab/nginx:1.7.9: not found: name unknown: repository "
        "name not known to registry",
    }
    for name, tail in msgs.items():
        fixture(
            name,
            UPSTREAM,
            f"{name}: wording from upstream, not yet seen on the lab",
            pod("app", app, one("ErrImagePull", PREFIX + tail), ("registry-1",)),
            secrets=[pull_secret("registry-1", [HOST])],
            first=name,
            names=[name],
        )
    fixture(
        "no-platform-manifest",
        UPSTREAM,
        "containerd: the index has no linux/amd64 image",
        pod(
            "app",
            app,
            one(
                "ErrImagePull",
                f'failed to pull and unpack image "{IMAGE}": '
                "no match for platform in manifest: not found",
            ),
            ("registry-1",),
        ),
        secrets=[pull_secret("registry-1", [HOST])],
        first="no-platform-manifest",
        names=["no-platform-manifest"],
    )
    fixture(
        "never-pull",
        UPSTREAM,
        "kubelet: policy Never, image not on the node",
        pod(
            "app",
            app,
            one(
                "ErrImageNeverPull",
                f'Container image "{IMAGE}" is not present with pull policy of Never',
            ),
            policy="Never",
        ),
        first="never-pull",
        names=["never-pull"],
    )
    bad = "Pull-Lab-Registry:5000/Lab/Nginx"
    fixture(
        "invalid-image-name",
        UPSTREAM,
        "kubelet: the reference does not parse",
        pod(
            "app",
            [("app", bad)],
            one(
                "InvalidImageName",
                f"Failed to apply default image "
                f'tag "{bad}": couldn\'t parse image name "{bad}": invalid reference format: '
                "repository name must be lowercase",
                bad,
            ),
        ),
        first="invalid-image-name",
        names=["invalid-image-name"],
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
