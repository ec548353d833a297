"""Diagnostics gathered when a scenario fails: pods, events, and the node's own logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from lab.kube import api_client
from lab.pods import container_views, event_time

NODE_LOG_LINES = 60


def namespace_report(kubeconfig: Path, namespace: str) -> str:
    core = client.CoreV1Api(api_client(kubeconfig))
    lines: list[str] = []
    pods: list[Any] = core.list_namespaced_pod(namespace).items
    for pod in pods:
        lines.append(f"pod {pod.metadata.name} uid={pod.metadata.uid} phase={pod.status.phase}")
        for view in container_views(pod):
            lines.append(
                f"  container {view.name}: {view.state} {view.reason} {view.message}".rstrip()
            )
        secrets = [s.name for s in pod.spec.image_pull_secrets or []]
        if secrets:
            lines.append(f"  imagePullSecrets: {', '.join(secrets)}")
    items: list[Any] = core.list_namespaced_event(namespace).items
    events = sorted(items, key=event_time)
    lines.append("events:")
    for e in events:
        obj = e.involved_object
        lines.append(
            f"  {event_time(e)} {e.type} {e.reason} {obj.kind}/{obj.name} "
            f"x{e.count or 1}: {e.message}"
        )
    return "\n".join(lines)


def node_report(cluster: Any) -> str:
    parts = []
    for title, cmd in (
        ("services", 'for s in containerd kubelet; do echo "$s: $(systemctl is-active $s)"; done'),
        ("certs.d", "ls -lR /etc/containerd/certs.d 2>&1 | head -40"),
        ("kubelet config.json", "ls -l /var/lib/kubelet/config.json /root/.docker 2>&1"),
        ("images", "crictl images 2>&1 | head -30"),
        (
            "journal (containerd, kubelet)",
            f"journalctl -u containerd -u kubelet --no-pager -n {NODE_LOG_LINES} 2>&1",
        ),
    ):
        try:
            out = cluster.node_exec("sh", "-c", cmd, check=False)
        except Exception as exc:  # the node may be the thing that broke
            out = f"(could not run: {exc})"
        parts.append(f"--- {title}\n{out.rstrip()}")
    return "\n".join(parts)
