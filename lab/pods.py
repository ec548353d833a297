"""The tutorial's pods from templates, and waits on what their containers are doing."""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from lab.watch import Timeline, WaitTimeout, wait_for

MANIFESTS = Path(__file__).resolve().parent.parent / "fixtures" / "manifests"
# Reasons after which waiting longer for Running cannot help.
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")


def render(template: str, **values: object) -> dict:
    text = (MANIFESTS / template).read_text()
    return yaml.safe_load(string.Template(text).substitute({k: str(v) for k, v in values.items()}))


def pod_manifest(
    name: str,
    image: str,
    *,
    run_id: str,
    pull_policy: str = "IfNotPresent",
    pull_secrets: tuple[str, ...] = (),
    extra_containers: tuple[tuple[str, str], ...] = (),
    container: str | None = None,
) -> dict:
    """The tutorial's pod; ``container`` defaults to the pod's name (the tutorial's is "nginx")."""
    pod = render(
        "pod.yaml",
        name=name,
        image=image,
        run_id=run_id,
        pull_policy=pull_policy,
        container=container or name,
    )
    for cname, cimage in extra_containers:
        pod["spec"]["containers"].append(
            {"name": cname, "image": cimage, "imagePullPolicy": pull_policy}
        )
    if pull_secrets:
        pod["spec"]["imagePullSecrets"] = [{"name": s} for s in pull_secrets]
    return pod


@dataclass(frozen=True)
class ContainerView:
    """What one container is doing, in the words of its status."""

    name: str
    state: str  # waiting / running / terminated / unknown
    reason: str
    message: str


def container_views(pod: Any) -> list[ContainerView]:
    views = []
    for cs in (pod.status.container_statuses or []) if pod.status else []:
        st = cs.state
        if st.running:
            views.append(ContainerView(cs.name, "running", "Running", ""))
        elif st.waiting:
            views.append(
                ContainerView(cs.name, "waiting", st.waiting.reason or "", st.waiting.message or "")
            )
        elif st.terminated:
            views.append(
                ContainerView(
                    cs.name, "terminated", st.terminated.reason or "", st.terminated.message or ""
                )
            )
        else:
            views.append(ContainerView(cs.name, "unknown", "", ""))
    return views


def describe_pod(pod: Any) -> str:
    phase = pod.status.phase if pod.status else "?"
    parts = [f"{v.name}={v.reason or v.state}" for v in container_views(pod)]
    return f"pod {pod.metadata.name} {phase} " + (" ".join(parts) or "(no container status yet)")


def all_running(pod: Any) -> bool:
    views = container_views(pod)
    return (
        bool(views) and pod.status.phase == "Running" and all(v.state == "running" for v in views)
    )


def pull_failure(pod: Any) -> str | None:
    for v in container_views(pod):
        if v.reason in PULL_FAILURES:
            return f"container {v.name}: {v.reason}: {v.message}"
    return None


def wait_pod_running(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    timeout: float = 120.0,
    recovering: bool = False,
):
    """Running, or fail at the first pull failure with its message.

    A ``recovering`` pod is expected to pass through pull failures on its way to Running.
    A failure right after the kubelet could not yet read an existing pull secret is not final
    either: the kubelet's secret cache gives up after a second (slow API server, a kubelet
    just restarted) and the next attempt, after back-off, has the secret.
    """

    def final_failure(pod: Any) -> str | None:
        reason = pull_failure(pod)
        if reason and secret_not_yet_synced(core, namespace, pod):
            return None
        return reason

    return wait_for(
        core.list_namespaced_pod,
        what=f"pod {namespace}/{name} Running",
        done=all_running,
        describe=describe_pod,
        fail_fast=(lambda pod: None) if recovering else final_failure,
        timeout=timeout,
        namespace=namespace,
        field_selector=f"metadata.name={name}",
    )


def secret_not_yet_synced(core: client.CoreV1Api, namespace: str, pod: Any) -> bool:
    """The kubelet reported FailedToRetrieveImagePullSecret though every secret exists."""
    names = [s.name for s in pod.spec.image_pull_secrets or []]
    if not names:
        return False
    events = core.list_namespaced_event(
        namespace,
        field_selector=f"involvedObject.uid={pod.metadata.uid},reason=FailedToRetrieveImagePullSecret",
    ).items
    if not events:
        return False
    secrets: list[Any] = core.list_namespaced_secret(namespace).items
    existing = {s.metadata.name for s in secrets}
    return all(n in existing for n in names)


def pod_events(core: client.CoreV1Api, namespace: str, pod: Any) -> list[Any]:
    events: list[Any] = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.uid={pod.metadata.uid}"
    ).items
    return sorted(events, key=event_time)


def event_time(event: Any) -> Any:
    """Events carry their time in one of three fields, depending on who wrote them."""
    return event.last_timestamp or event.event_time or event.metadata.creation_timestamp


GO_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> float:
    """Seconds in a Go duration string as the kubelet's configz prints it ("1m0s", "1.5s")."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * GO_DURATION_UNITS[u] for n, u in parts)


def kubelet_config(core: client.CoreV1Api, node: str) -> dict:
    """The configuration the node's kubelet really runs with (its /configz, via the API)."""
    response: Any = core.connect_get_node_proxy_with_path(node, "configz", _preload_content=False)
    raw = response.data
    config: dict = json.loads(raw)["kubeletconfig"]
    return config


def kubelet_sync_period(core: client.CoreV1Api, node: str) -> float:
    """How often the kubelet resyncs each pod (``syncFrequency``), in seconds."""
    return go_duration(kubelet_config(core, node)["syncFrequency"])


def node_kubelet_version(core: client.CoreV1Api, node: str) -> tuple[int, int]:
    """(major, minor) of the kubelet the node reports in status.nodeInfo.kubeletVersion."""
    found: Any = core.read_node(node)
    version = found.status.node_info.kubelet_version
    match = re.match(r"v?(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"node {node} reports kubelet version {version!r}")
    return int(match[1]), int(match[2])


@dataclass(frozen=True)
class RunningState:
    """What would change if the kubelet restarted or re-created a running container."""

    uid: str
    restarts: tuple[int, ...]
    container_ids: tuple[str, ...]

    @staticmethod
    def of(pod: Any) -> RunningState:
        statuses = pod.status.container_statuses or []
        return RunningState(
            pod.metadata.uid,
            tuple(cs.restart_count for cs in statuses),
            tuple(cs.container_id or "" for cs in statuses),
        )


def hold_running(core: client.CoreV1Api, namespace: str, pod: Any, seconds: float) -> int:
    """Watch a running pod for ``seconds``: fail at once if it stops running, is deleted, or
    its uid, restart count or container ID changes. Returns how many updates were seen."""
    baseline = RunningState.of(pod)
    updates = [0]

    def changed(current: Any) -> str | None:
        updates[0] += 1
        if current.metadata.deletion_timestamp is not None:
            return "the pod is being deleted"
        if not all_running(current):
            return f"it stopped running: {describe_pod(current)}"
        now = RunningState.of(current)
        return None if now == baseline else f"it changed: {baseline} -> {now}"

    try:
        wait_for(
            core.list_namespaced_pod,
            what=f"pod {namespace}/{pod.metadata.name} left alone for {seconds:.0f}s",
            done=lambda current: False,
            describe=describe_pod,
            fail_fast=changed,
            timeout=seconds,
            namespace=namespace,
            field_selector=f"metadata.name={pod.metadata.name}",
        )
    except WaitTimeout:
        return updates[0]
    raise AssertionError("unreachable: the wait has no done state")


__all__ = ["Timeline", "container_views", "pod_events", "pod_manifest", "wait_pod_running"]
