"""Make one pod fail to pull for a known cause, then ask the real `pull-lab doctor` about it.

`tests/e2e/test_doctor_causes.py` produces every cause the lab can produce on its own kind
cluster; this module holds what those tests share: a pod, a pull secret, the wait for the
container's failure, the doctor run as a user runs it (a subprocess, `--json`), and, with
``PULL_LAB_CAPTURE_DOCTOR=DIR``, the pod's evidence written down as a masked capture, the same
way `tools/capture_doctor_evidence.py` writes one (the unit tests' fixtures).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from lab.doctor.capture import capture, masked
from lab.masking import mask
from lab.pods import pod_manifest
from lab.waits import Scope, wait_for_pod

ROOT = Path(__file__).resolve().parents[2]
APP = "app"  # every pod here runs one container named "app" (and maybe an init container)
CAPTURE_ENV = "PULL_LAB_CAPTURE_DOCTOR"


@dataclass(frozen=True)
class Failure:
    """A container waiting after a failed pull, as its status said it."""

    pod: str
    container: str
    reason: str
    message: str


@dataclass(frozen=True)
class DoctorAnswer:
    """What `pull-lab doctor POD --json` printed, and its exit code."""

    exit_code: int
    doc: dict
    stderr: str

    @property
    def names(self) -> list[str]:
        return [f["name"] for f in self.doc["findings"]]

    @property
    def first(self) -> dict:
        assert self.doc["findings"], f"doctor found nothing: {self.doc}"
        finding: dict = self.doc["findings"][0]
        return finding


def pull_secret(core: client.CoreV1Api, namespace: str, name: str, content: bytes, **kw: Any):
    """A pull secret made through the API (no password on a command line); ``content`` is the
    ``.dockerconfigjson`` (or, with ``secret_type``/``key``, whatever the test wants to show)."""
    secret_type = kw.get("secret_type", "kubernetes.io/dockerconfigjson")
    key = kw.get("key", ".dockerconfigjson")
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        type=secret_type,
        data={key: base64.b64encode(content).decode()},
    )
    return core.create_namespaced_secret(namespace, body)


def start_pod(
    core: client.CoreV1Api,
    namespace: str,
    run_id: str,
    image: str,
    *,
    name: str = APP,
    pull_secrets: tuple[str, ...] = (),
    pull_policy: str = "IfNotPresent",
    init_image: str | None = None,
    container: str = APP,
    extra_containers: tuple[tuple[str, str], ...] = (),
    service_account: str | None = None,
) -> str:
    """One pod, container ``app`` (and an init container ``setup`` with ``init_image``, and
    more containers as (name, image)), under ``service_account`` (default: the namespace's)."""
    manifest = pod_manifest(
        name,
        image,
        run_id=run_id,
        container=container,
        pull_secrets=pull_secrets,
        pull_policy=pull_policy,
        extra_containers=extra_containers,
    )
    if init_image is not None:
        manifest["spec"]["initContainers"] = [
            {"name": "setup", "image": init_image, "imagePullPolicy": pull_policy}
        ]
    if service_account is not None:
        manifest["spec"]["serviceAccountName"] = service_account
    core.create_namespaced_pod(namespace, manifest)
    return name


def statuses(pod: Any) -> list[Any]:
    """Init and regular containers' statuses (``lab.pods.container_views`` reads the latter)."""
    status = pod.status
    return [*(status.init_container_statuses or []), *(status.container_statuses or [])]


@dataclass(frozen=True)
class ContainerWaiting:
    """A ``lab.waits`` pod condition: ``container`` (init or regular) waits with ``reason``;
    fails fast when it runs instead (the pull meant to fail succeeded)."""

    container: str
    reason: str

    @property
    def what(self) -> str:
        return f"container {self.container} waiting with {self.reason}"

    def _status(self, pod: Any) -> Any:
        return next((s for s in statuses(pod) if s.name == self.container), None)

    def done(self, pod: Any, scope: Scope) -> bool:
        status = self._status(pod)
        waiting = status.state.waiting if status is not None else None
        return waiting is not None and waiting.reason == self.reason

    def fail_fast(self, pod: Any, scope: Scope) -> str | None:
        status = self._status(pod)
        if status is not None and status.state.running is not None:
            return f"container {self.container} is Running: the pull succeeded"
        return None


def wait_failure(
    core: client.CoreV1Api,
    namespace: str,
    pod: str,
    reason: str = "ErrImagePull",
    container: str = APP,
    timeout: float = 90.0,
) -> Failure:
    """Until ``container`` waits with ``reason``; its status message is the real message."""
    seen, _ = wait_for_pod(core, namespace, pod, ContainerWaiting(container, reason), timeout)
    waiting = next(s for s in statuses(seen) if s.name == container).state.waiting
    return Failure(pod, container, waiting.reason, waiting.message or "")


def ask_doctor(kubeconfig: Path, namespace: str, pod: str) -> DoctorAnswer:
    """The real CLI, as a user runs it: `python -m lab.cli doctor POD -n NS --json`."""
    argv = ["doctor", pod, "-n", namespace, "--kubeconfig", str(kubeconfig), "--json"]
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(
            f"doctor printed no JSON (exit {proc.returncode}): {proc.stdout[-500:]} "
            f"{proc.stderr[-1000:]}"
        ) from None
    return DoctorAnswer(proc.returncode, doc, proc.stderr)


def expect_doctor(
    kubeconfig: Path,
    core: client.CoreV1Api,
    namespace: str,
    failure: Failure,
    cause: str,
    capture_as: str | None = None,
    names: list[str] | None = None,
) -> DoctorAnswer:
    """Doctor exits 1 and names ``cause`` first (and exactly ``names``, when given). A
    finding read from the container's message is about that container and shows the message
    as its evidence; one read from a pull secret or the ServiceAccount shows what it read
    there, naming the secret, and may be pod-wide (no container). Either way ``said`` holds
    the container's real message. The pod is captured when asked to (see ``CAPTURE_ENV``; as
    ``capture_as``.json, default ``cause``), whatever doctor said, so a wrong diagnosis can
    be studied offline."""
    answer = ask_doctor(kubeconfig, namespace, failure.pod)
    expect: dict = {"first": cause, **({"names": names} if names is not None else {})}
    save_capture(core, namespace, failure.pod, cause, capture_as or cause, expect)
    assert answer.exit_code == 1, (answer.exit_code, answer.doc, answer.stderr[-500:])
    assert answer.doc["result"] == "pull-problem", answer.doc
    first = answer.first
    assert first["name"] == cause, (
        f"doctor named {answer.names} for container {first['container']}; "
        f"the container's message: {failure.message}"
    )
    if names is not None:
        assert answer.names == names, answer.names
    said = first["said"]
    assert said["container"] == failure.container, said
    assert failure.message in said["message"], (failure.message, said)
    if first["evidenceSource"] in ("secret", "serviceaccount"):
        assert first["container"] in (None, failure.container), first
        assert any(
            name in first["evidence"] for name in read_secret_names(core, namespace, failure.pod)
        ), first
    else:
        assert first["container"] == failure.container, first
        assert failure.message in first["evidence"], (failure.message, first["evidence"])
    return answer


def read_secret_names(core: client.CoreV1Api, namespace: str, pod: str) -> list[str]:
    """The pull secrets the pod lists, and those its ServiceAccount lists."""
    spec = core.read_namespaced_pod(pod, namespace).spec
    names = [ref.name for ref in spec.image_pull_secrets or []]
    try:
        sa = core.read_namespaced_service_account(spec.service_account_name, namespace)
    except client.ApiException:
        return names  # gone, or doctor's user may not read it
    return names + [ref.name for ref in sa.image_pull_secrets or []]


def save_capture(
    core: client.CoreV1Api, namespace: str, pod: str, cause: str, name: str, expect: dict
) -> None:
    """With ``PULL_LAB_CAPTURE_DOCTOR=DIR``: DIR/<name>.json, masked, with provenance and
    what doctor is expected to name (``expect``); never a file the masker would still change."""
    out_dir = os.environ.get(CAPTURE_ENV)
    if not out_dir:
        return
    record = masked(capture(core, namespace, pod))
    node = (record.get("node") or {}).get("nodeInfo") or {}
    record["provenance"] = {
        "kind": "capture",
        "note": (
            f"captured on {record['captured_at'][:10]} from the lab cluster, Kubernetes "
            f"{node.get('kubeletVersion', '?')}, {node.get('containerRuntimeVersion', '?')}: "
            f"by {current_test()} ({cause})"
        ),
    }
    record["expect"] = expect
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    assert mask(text) == text, "the capture still holds a credential; not written"
    path = Path(out_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def current_test() -> str:
    """The running test's node id, as pytest sets it (``PYTEST_CURRENT_TEST``)."""
    return os.environ.get("PYTEST_CURRENT_TEST", "tests/e2e/test_doctor_causes.py").split(" ")[0]


@dataclass(frozen=True)
class CauseLab:
    """One test's namespace on the lab cluster, with the verbs the cause tests use."""

    core: client.CoreV1Api
    namespace: str
    run_id: str
    kubeconfig: Path

    def secret(self, name: str, content: bytes, **kw: Any) -> Any:
        return pull_secret(self.core, self.namespace, name, content, **kw)

    def pod(self, image: str, **kw: Any) -> str:
        return start_pod(self.core, self.namespace, self.run_id, image, **kw)

    def failure(self, pod: str = APP, **kw: Any) -> Failure:
        return wait_failure(self.core, self.namespace, pod, **kw)

    def diagnosed(
        self,
        failure: Failure,
        cause: str,
        capture_as: str | None = None,
        names: list[str] | None = None,
    ) -> DoctorAnswer:
        return expect_doctor(
            self.kubeconfig, self.core, self.namespace, failure, cause, capture_as, names
        )
