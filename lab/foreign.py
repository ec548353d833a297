"""A cluster brought with a kubeconfig: the lab never creates, changes or deletes it, except
for what it puts in a namespace of its own (registries, and with consent a node agent), all of
which goes at the end, also on Ctrl-C.

Its nodes are read from the API. The node the lab changes by default is where an unpinned pod
lands first: a Ready node without a NoSchedule taint (a worker when the control plane is
tainted, as kind and most clusters do).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from lab.errors import LabError
from lab.incluster_registry import Workspace
from lab.kube import api_client, delete_namespace, node_ready
from lab.node_agent import AgentShell, NodeAgent
from lab.settings import LABEL
from lab.signals import shielded
from lab.watch import WaitTimeout, wait_gone

# hostNetwork (the registry) and a privileged agent need the namespace to admit them.
POD_SECURITY = {
    "pod-security.kubernetes.io/enforce": "privileged",
    "pod-security.kubernetes.io/warn": "privileged",
}


class NoNodeAccess(LabError):
    """The cluster was brought with a kubeconfig and no consent to change its nodes."""


@dataclass(frozen=True)
class NodeSet:
    node: str  # where node changes go unless a test picks another
    nodes: tuple[str, ...]
    # Where the scheduler may put a pod: the lab pins its test pods to these only.
    schedulable: tuple[str, ...] = ()

    @property
    def workers(self) -> int:
        return len(self.nodes) - 1


def schedulable(node: Any) -> bool:
    taints = (node.spec.taints or []) if node.spec else []
    return node_ready(node) and not any(t.effect == "NoSchedule" for t in taints)


def read_nodes(core: client.CoreV1Api) -> NodeSet:
    """Ready nodes, untainted first (where pods land), each list in name order."""
    nodes: list[Any] = list(core.list_node().items)
    nodes.sort(key=lambda n: (not schedulable(n), n.metadata.name))
    names = tuple(str(n.metadata.name) for n in nodes if node_ready(n))
    if not names:
        raise LabError("the cluster has no Ready node", "check `kubectl get nodes`")
    open_to_pods = tuple(str(n.metadata.name) for n in nodes if schedulable(n))
    return NodeSet(node=names[0], nodes=names, schedulable=open_to_pods)


def node_address(core: client.CoreV1Api, name: str) -> str:
    """The node's InternalIP: what other nodes reach its host network at."""
    node: Any = core.read_node(name)
    for address in node.status.addresses or []:
        if address.type == "InternalIP":
            return str(address.address)
    raise LabError(f"node {name} reports no InternalIP", "the lab needs one to place a registry")


class ForeignCluster:
    """API access always; node access only through a node agent the user consented to."""

    name = "external"

    def __init__(self, kubeconfig: Path, kubectl: Path, run_id: str, namespace: str) -> None:
        self.kubeconfig_path = kubeconfig
        self.kubectl_path = kubectl
        self.run_id = run_id
        self.namespace = namespace
        self.api = api_client(kubeconfig)
        self.spec = read_nodes(self.core)
        self._workspace: Workspace | None = None
        self.agent: NodeAgent | None = None
        # Test namespaces deleted during the run: still Terminating, maybe, until ``close``.
        self._deleted: list[str] = []

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def workspace(self) -> Workspace:
        """The lab's namespace on this cluster, made on first use; ``close`` deletes it."""
        if self._workspace is None:
            labels = {LABEL: self.run_id, **POD_SECURITY}
            meta = client.V1ObjectMeta(name=self.namespace, labels=labels)
            with shielded():
                self.core.create_namespace(client.V1Namespace(metadata=meta))
                self._workspace = Workspace(
                    self.namespace, self.kubectl_path, self.kubeconfig_path, self.api
                )
        return self._workspace

    def allow_node_changes(self, agent_image: str, pull_policy: str) -> None:
        """Install the node agent on every node (`--allow-node-changes`)."""
        agent = NodeAgent(self.workspace(), agent_image, self.run_id, pull_policy)
        self.agent = agent
        agent.install(self.spec.nodes)

    def on(self, node: str) -> AgentShell:
        if self.agent is None:
            raise NoNodeAccess(
                "changes node files: a cluster brought with a kubeconfig is changed only with "
                "--allow-node-changes"
            )
        return self.agent.on(node)

    def node_exec(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        return self.on(self.spec.node).node_exec(*args, input=input, check=check)

    @property
    def restart_script(self) -> str:
        return self.on(self.spec.node).restart_script

    @property
    def exec_prefix(self) -> str:
        return self.on(self.spec.node).exec_prefix

    def delete_namespace(self, name: str) -> None:
        """A test's namespace: deleted now, waited for at ``close`` (a namespace with pods in
        it takes seconds to go; the run is not over while one is still Terminating)."""
        delete_namespace(self.core, name)
        self._deleted.append(name)

    def close(self, timeout: float = 120.0) -> None:
        """Delete the lab's namespace (registries, agent, secrets) and wait until it and every
        test namespace the run deleted are gone."""
        with shielded():
            if self._workspace is not None:
                with contextlib.suppress(client.ApiException):
                    self.core.delete_namespace(self.namespace, grace_period_seconds=0)
            # Asked again: a delete cut short (or refused) leaves nothing to wait for.
            for name in self._deleted:
                delete_namespace(self.core, name)
            going = [self.namespace] if self._workspace is not None else []
            deadline = time.monotonic() + timeout  # one budget for them all
            try:
                for name in [*going, *self._deleted]:
                    wait_gone(
                        self.core.list_namespace,
                        what=f"namespace {name} gone",
                        timeout=max(deadline - time.monotonic(), 0.0),
                        field_selector=f"metadata.name={name}",
                    )
            except WaitTimeout as exc:
                raise LabError(
                    f"a namespace of the lab's is still there: {exc}",
                    f"look at `kubectl get all -n {name}`",
                ) from exc
            self._workspace = None
            self._deleted.clear()
            self.agent = None
