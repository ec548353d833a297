"""`pull-lab check`: can every node pull this image? A preflight for a user's own registry.

"Works on node A, ImagePullBackOff on node B" is how uneven node configuration shows itself
(a CA in one node's certs.d, a config.json on another). Reading the nodes' files needs
privileges; starting a pod does not. So check starts one short-lived probe pod per node, pinned
with ``spec.nodeName`` (no scheduler, no spreading to guess about), ``imagePullPolicy: Always``
(a cached copy proves nothing) and a command that exits at once, waits on the API's watch
until each image is pulled or its pull fails, and asks ``lab.doctor`` why a failing one failed.
Its pods carry the run label and go away at the end, also on Ctrl-C (``--keep`` leaves the
failed ones for ``kubectl describe``).

>>> nodes = [NodeFacts.of(n) for n in core.list_node().items]
>>> report = run_check(core, CheckRequest("reg:5000/lab/app:1", "default"), nodes)
>>> print(report.text()); sys.exit(report.exit_code)
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client

from lab.doctor import examine
from lab.doctor.rules import Finding
from lab.errors import LabError
from lab.kube import node_ready
from lab.pods import container_views, go_duration, pull_failure, secret_not_yet_synced
from lab.settings import LABEL, new_run_id
from lab.signals import shielded
from lab.waits import Scope, event_seen, wait_for_event, wait_for_pod
from lab.watch import WaitFailed, WaitTimeout

SCHEMA = "pull-lab-check/1"
POD_PREFIX = "pull-lab-check"
CONTAINER = "probe"
# Taints that keep pods off a node; PreferNoSchedule only discourages the scheduler.
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
# Reasons a container waits or ends with only after its image was pulled.
AFTER_PULL = (
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "StartError",
    "ContainerCannotRun",
)
# The kubelet's Pulled event: `Successfully pulled image "x" in 512ms (512ms including waiting)`.
PULLED_IN = re.compile(r"Successfully pulled image .* in (\S+?) \(")


# ---- which nodes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeFacts:
    """What check needs to know of a node to decide whether to probe it."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[str, ...] = ()  # blocking taints as `key=value:Effect`
    ready: bool = True
    cordoned: bool = False

    @staticmethod
    def of(node: Any) -> NodeFacts:
        taints = tuple(
            f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}"
            for t in (node.spec.taints or [])
            if t.effect in BLOCKING_EFFECTS
        )
        return NodeFacts(
            name=node.metadata.name,
            labels=dict(node.metadata.labels or {}),
            taints=taints,
            ready=node_ready(node),
            cordoned=bool(node.spec.unschedulable),
        )


@dataclass(frozen=True)
class Target:
    """A node check looked at: probed, or skipped for ``skipped`` (why)."""

    node: str
    skipped: str = ""


def parse_node_selector(texts: Iterable[str]) -> dict[str, str]:
    """``k=v`` pairs, from repeated flags or joined with commas, as a pod's nodeSelector."""
    selector: dict[str, str] = {}
    for text in texts:
        for pair in filter(None, (p.strip() for p in text.split(","))):
            key, eq, value = pair.partition("=")
            if not eq or not key.strip():
                raise LabError(f"--node-selector {pair!r} is not key=value", "e.g. zone=a")
            selector[key.strip()] = value.strip()
    return selector


def select_nodes(
    nodes: Sequence[NodeFacts], selector: Mapping[str, str], tolerate_taints: bool
) -> list[Target]:
    """The nodes the selector matches, each probed or skipped with a reason: a node that is not
    Ready would only time out; a cordoned or tainted one runs no ordinary pod, so it is probed
    only with ``tolerate_taints``."""
    targets = []
    for node in sorted(nodes, key=lambda n: n.name):
        if any(node.labels.get(k) != v for k, v in selector.items()):
            continue
        if not node.ready:
            targets.append(Target(node.name, "not Ready"))
        elif node.cordoned and not tolerate_taints:
            targets.append(Target(node.name, "cordoned (--tolerate-taints probes it)"))
        elif node.taints and not tolerate_taints:
            taints = ", ".join(node.taints)
            targets.append(Target(node.name, f"tainted {taints} (--tolerate-taints probes it)"))
        else:
            targets.append(Target(node.name))
    return targets


# ---- the probe pod ----------------------------------------------------------------------------
def probe_pod_name(run_id: str, node: str) -> str:
    """One name per run and node, so `kubectl get pods` says which node a probe is on."""
    return f"{POD_PREFIX}-{run_id}-{node}"[:253].rstrip("-.")


def probe_pod_manifest(
    name: str, node: str, image: str, run_id: str, secret: str | None, tolerate_taints: bool
) -> dict:
    """A pod pinned to ``node`` that pulls ``image`` every time and exits at once. It asks for
    no privileges and passes the `restricted` Pod Security level; an image without `true`
    still proves the pull (the start fails after it)."""
    spec: dict[str, Any] = {
        "nodeName": node,  # no scheduler: this node and no other
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": CONTAINER,
                "image": image,
                "imagePullPolicy": "Always",
                "command": ["true"],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }
    if secret:
        spec["imagePullSecrets"] = [{"name": secret}]
    if tolerate_taints:
        spec["tolerations"] = [{"operator": "Exists"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {LABEL: run_id, "app": POD_PREFIX}},
        "spec": spec,
    }


def pulled(pod: Any) -> bool:
    """The probe's image is on the node: its container ran, or failed only after the pull."""
    return any(
        v.state in ("running", "terminated") or (v.state == "waiting" and v.reason in AFTER_PULL)
        for v in container_views(pod)
    )


def pulled_seconds(event_message: str) -> float | None:
    """How long the kubelet says the pull took, from its Pulled event."""
    match = PULLED_IN.search(event_message)
    if match is None:
        return None
    try:
        return go_duration(match[1])
    except ValueError:
        return None


@dataclass(frozen=True)
class ImagePulled:
    """The wait's condition: the image is pulled. A pull failure stops it at once (unless the
    kubelet only could not read an existing secret yet: its next attempt will), and so does a
    pod the node rejected."""

    what: str = "pulled its image"

    def done(self, pod: Any, scope: Scope) -> bool:
        return pulled(pod)

    def fail_fast(self, pod: Any, scope: Scope) -> str | None:
        if pod.status and pod.status.phase == "Failed":
            return f"the node rejected the pod: {pod.status.reason}: {pod.status.message}"
        reason = pull_failure(pod)
        named_secrets = bool(pod.spec and pod.spec.image_pull_secrets)
        if reason and named_secrets and secret_not_yet_synced(scope.core, scope.namespace, pod):
            return None
        return reason


# ---- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeResult:
    """One node's line: ``pulled``, ``failed`` or ``skipped``."""

    node: str
    result: str
    seconds: float | None = None
    finding: Finding | None = None
    detail: str = ""  # why skipped, or what the wait saw when doctor found no cause
    pod: str | None = None
    kept: bool = False

    def line(self) -> str:
        if self.result == "pulled":
            said = f"pulled in {self.seconds:.2f} s" if self.seconds is not None else "pulled"
        elif self.result == "skipped":
            said = f"skipped: {self.detail}"
        elif self.finding is not None:
            f = self.finding
            said = f"failed: {f.name}: {f.cause} — {f.fix}"
        else:
            said = f"failed: {self.detail}"
        kept = f" (kept: pod {self.pod})" if self.kept else ""
        return f"{self.node}: {said}{kept}"

    def to_json(self) -> dict:
        f = self.finding
        return {
            "name": self.node,
            "result": self.result,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "pod": self.pod,
            "kept": self.kept,
            "detail": self.detail or None,
            "finding": None
            if f is None
            else {
                "name": f.name,
                "stage": f.stage.label,
                "cause": f.cause,
                "fix": f.fix,
                "evidence": f.evidence,
            },
        }


@dataclass(frozen=True)
class CheckReport:
    image: str
    namespace: str
    secret: str | None
    nodes: tuple[NodeResult, ...]

    @property
    def failed(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.result == "failed"]

    @property
    def probed(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.result != "skipped"]

    @property
    def exit_code(self) -> int:
        """1 when any node failed to pull, 0 when every probed node pulled."""
        return 1 if self.failed else 0

    def text(self) -> str:
        secret = f", secret {self.secret}" if self.secret else ", no pull secret"
        head = (
            f"pull-lab check: {self.image} on {len(self.probed)} of {len(self.nodes)} node(s) "
            f"(namespace {self.namespace}{secret})"
        )
        if self.failed:
            tail = f"{len(self.failed)} of {len(self.probed)} probed node(s) failed to pull"
        else:
            tail = f"every probed node pulled ({len(self.probed)})"
        return "\n".join([head, *(f"  {n.line()}" for n in self.nodes), tail])

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "image": self.image,
            "namespace": self.namespace,
            "secret": self.secret,
            "result": "failed" if self.failed else "all-pulled",
            "nodes": [n.to_json() for n in self.nodes],
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2)


# ---- running it -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckRequest:
    image: str
    namespace: str
    secret: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 120.0
    keep: bool = False
    tolerate_taints: bool = False
    run_id: str = field(default_factory=new_run_id)


def run_check(
    core: client.CoreV1Api, request: CheckRequest, nodes: Sequence[NodeFacts]
) -> CheckReport:
    """Probe every selected node; the probe pods are deleted whatever happens (Ctrl-C too),
    except failed ones with ``request.keep``."""
    targets = select_nodes(nodes, request.node_selector, request.tolerate_taints)
    if not any(not t.skipped for t in targets):
        raise _nothing_to_probe(targets, request)
    created: list[str] = []
    results: dict[str, NodeResult] = {}
    try:
        for target in targets:
            if not target.skipped:
                created.append(_start_probe(core, request, target.node))
        deadline = time.monotonic() + request.timeout
        for target in targets:
            results[target.node] = _result_of(core, request, target, deadline)
    finally:
        keep = {r.pod for r in results.values() if r.result == "failed"} if request.keep else set()
        _delete_pods(core, request.namespace, [p for p in created if p not in keep])
    return CheckReport(
        request.image, request.namespace, request.secret, tuple(results[t.node] for t in targets)
    )


def _nothing_to_probe(targets: list[Target], request: CheckRequest) -> LabError:
    if not targets:
        wanted = ",".join(f"{k}={v}" for k, v in request.node_selector.items())
        return LabError(f"no node matches --node-selector {wanted}" if wanted else "no node found")
    skipped = "; ".join(f"{t.node}: {t.skipped}" for t in targets)
    return LabError(f"no node to probe: {skipped}")


def _start_probe(core: client.CoreV1Api, request: CheckRequest, node: str) -> str:
    name = probe_pod_name(request.run_id, node)
    manifest = probe_pod_manifest(
        name, node, request.image, request.run_id, request.secret, request.tolerate_taints
    )
    body: Any = manifest  # the client sends a dict as it is
    core.create_namespaced_pod(request.namespace, body)
    return name


def _result_of(
    core: client.CoreV1Api, request: CheckRequest, target: Target, deadline: float
) -> NodeResult:
    if target.skipped:
        return NodeResult(target.node, "skipped", detail=target.skipped)
    name = probe_pod_name(request.run_id, target.node)
    remaining = max(1.0, deadline - time.monotonic())
    try:
        pod, _ = wait_for_pod(core, request.namespace, name, ImagePulled(), timeout=remaining)
    except (WaitFailed, WaitTimeout) as exc:
        return _failure(core, request, target.node, name, exc)
    return NodeResult(target.node, "pulled", _pull_seconds(core, request.namespace, pod), pod=name)


def _failure(
    core: client.CoreV1Api, request: CheckRequest, node: str, name: str, exc: LabError
) -> NodeResult:
    """A failed probe, with doctor's first finding when it names one."""
    with contextlib.suppress(LabError, client.ApiException):
        findings = examine(core, request.namespace, name).findings
        if findings:
            return NodeResult(node, "failed", finding=findings[0], pod=name, kept=request.keep)
    detail = str(exc) if isinstance(exc, WaitTimeout) else exc.message.split(": ", 1)[-1]
    return NodeResult(node, "failed", detail=detail, pod=name, kept=request.keep)


def _pull_seconds(core: client.CoreV1Api, namespace: str, pod: Any) -> float | None:
    """The kubelet's own measure of the pull (its Pulled event); None when no event says."""
    with contextlib.suppress(WaitTimeout, client.ApiException):
        event, _ = wait_for_event(core, namespace, pod, event_seen("Pulled"), timeout=5.0)
        return pulled_seconds(event.message or "")
    return None


def _delete_pods(core: client.CoreV1Api, namespace: str, names: list[str]) -> None:
    with shielded():
        for name in names:
            with contextlib.suppress(client.ApiException):
                core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
