"""The tutorial's pods, and views of what they are doing: container states in the words of
their status, and the events about them. Waiting on them is ``lab.waits``'s job."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from lab.settings import LABEL

# Reasons after which waiting longer for Running cannot help.
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName")


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
    """The tutorial's pod (nginx-registry*): one container from a private registry, labelled
    with the run; ``container`` defaults to the pod's name (the tutorial's is "nginx").

    >>> pod_manifest("nginx-registry", "reg:5000/lab/nginx:1.7.9", run_id=run.run_id)
    """
    pod: dict = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name, LABEL: run_id}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {"name": container or name, "image": image, "imagePullPolicy": pull_policy}
            ],
        },
    }
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
