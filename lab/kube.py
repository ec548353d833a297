"""Kubernetes API clients for a kubeconfig, the waits every run starts with, and the
throwaway namespaces tests and scenarios run in."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from kubernetes import client, config

from lab.settings import LABEL
from lab.signals import shielded
from lab.watch import Timeline, wait_for


def api_client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def node_ready(node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


# The node lifecycle controller lifts these taints a moment after the node turns Ready; until
# then a pod pinned to the node (a `pull-lab check` probe) is not admitted there.
STARTUP_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def node_schedulable(node) -> bool:
    """Ready, and no longer tainted as starting up."""
    taints = (node.spec.taints or []) if node.spec else []
    return node_ready(node) and not any(t.key in STARTUP_TAINTS for t in taints)


def describe_node(node) -> str:
    ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
    if ready is None:
        return f"node {node.metadata.name}: no Ready condition yet"
    present = (node.spec.taints or []) if node.spec else []
    taints = [t.key for t in present if t.key in STARTUP_TAINTS]
    tainted = f", tainted {', '.join(taints)}" if taints else ""
    return f"node {node.metadata.name}: Ready={ready.status} ({ready.reason}){tainted}"


def wait_nodes_ready(api: client.ApiClient, timeout: float = 180.0) -> Timeline:
    core = client.CoreV1Api(api)
    _, timeline = wait_for(
        core.list_node,
        what="node Ready",
        done=node_ready,
        describe=describe_node,
        timeout=timeout,
    )
    return timeline


def wait_default_service_account(
    api: client.ApiClient, namespace: str = "default", timeout: float = 120.0
) -> Timeline:
    """Pods cannot be created before the controller manager made the namespace's default SA."""
    core = client.CoreV1Api(api)
    _, timeline = wait_for(
        core.list_namespaced_service_account,
        what=f"service account {namespace}/default",
        done=lambda sa: sa.metadata.name == "default",
        describe=lambda sa: f"service account {sa.metadata.name}",
        timeout=timeout,
        namespace=namespace,
        field_selector="metadata.name=default",
    )
    return timeline


def wait_cluster_usable(api: client.ApiClient, timeout: float = 180.0) -> Timeline:
    """Node Ready and pods creatable: what kind's own --wait does not cover."""
    timeline = wait_nodes_ready(api, timeout)
    wait_default_service_account(api, timeout=timeout)
    timeline.note("default service account present")
    return timeline


def create_namespace(core: client.CoreV1Api, run_id: str) -> str:
    """A namespace of its own for one test, labelled with the run; returns its name."""
    name = f"lab-{uuid.uuid4().hex[:8]}"
    labels = {LABEL: run_id}  # the one run label, as on pods, containers and networks
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    return name


def delete_namespace(core: client.CoreV1Api, name: str) -> None:
    """Delete it with everything in it (pods, secrets, events); never fails, never cut short."""
    with shielded(), contextlib.suppress(Exception):
        core.delete_namespace(name, grace_period_seconds=0)
