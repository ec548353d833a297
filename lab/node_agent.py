"""Node access on a cluster the lab did not make, only when the user opts in.

`--allow-node-changes` puts a privileged DaemonSet (host PID namespace) in the lab's
namespace; the lab then runs a node command with `kubectl exec` into the agent pod on that node
and ``nsenter`` into the node's own namespaces (PID 1's), so the command sees the node's files
and systemd, as ``docker exec`` into a kind node does. ``lab.node`` changes and restores files
through it, one node at a time under the node lock, and checks the node's fingerprint before
and after. The DaemonSet goes with the lab's namespace; without the flag nothing is installed.

The exec passes through the node's kubelet: a kubelet restart inside it would cut the stream,
so the agent asks systemd to restart the kubelet a second later (``restart_script``).
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

from kubernetes import client

from lab.errors import LabError
from lab.incluster_registry import Workspace, pod_not_starting
from lab.settings import LABEL
from lab.watch import WaitFailed, WaitTimeout, wait_for

AGENT = "pull-lab-node-agent"
# The node's own mount, UTS, IPC, network and PID namespaces: its files, name and systemd.
# /bin/sh by path: busybox would run its own applets for a bare `sh`, `find`, `sha256sum`.
NSENTER = ("nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--")
RESTART_LATER = "systemd-run --quiet --collect --on-active=1 systemctl restart kubelet"


def agent_daemonset(image: str, run_id: str, pull_policy: str = "IfNotPresent") -> dict:
    labels = {LABEL: run_id, "app.kubernetes.io/name": AGENT}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": AGENT, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": AGENT}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostPID": True,
                    "tolerations": [{"operator": "Exists"}],  # every node, tainted or not
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "agent",
                            "image": image,
                            "imagePullPolicy": pull_policy,
                            "command": ["sleep", "2147483647"],
                            "securityContext": {"privileged": True},
                        }
                    ],
                },
            },
        },
    }


@dataclass
class AgentShell:
    """``node_exec`` on one node through its agent pod (the ``lab.node`` NodeExec protocol)."""

    place: Workspace
    node: str
    pod: str
    restart_script: str = RESTART_LATER

    @property
    def name(self) -> str:
        return self.node

    @property
    def exec_prefix(self) -> str:
        """How a node command runs, for a transcript (no kubeconfig)."""
        return shlex.join(
            [
                "kubectl",
                "exec",
                "-i",
                f"--namespace={self.place.namespace}",
                self.pod,
                "--",
                *NSENTER,
            ]
        )

    def argv(self, *args: str) -> list[str]:
        """kubectl exec into the agent, nsenter into the node; ``sh`` is the node's own."""
        command = ("/bin/sh", *args[1:]) if args and args[0] == "sh" else args
        return [
            str(self.place.kubectl),
            f"--kubeconfig={self.place.kubeconfig}",
            f"--namespace={self.place.namespace}",
            "exec",
            "-i",
            self.pod,
            "--",
            *NSENTER,
            *command,
        ]

    def node_exec(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            self.argv(*args), input=input or b"", capture_output=True, check=False
        )
        if check and proc.returncode != 0:
            said = proc.stderr.decode(errors="replace").strip()[:300]
            raise LabError(f"on node {self.node}: {shlex.join(args)[:200]} failed: {said}")
        return proc.stdout.decode(errors="replace")


class NodeAgent:
    """The DaemonSet and, once its pods run, a shell per node."""

    def __init__(
        self, place: Workspace, image: str, run_id: str, pull_policy: str = "IfNotPresent"
    ) -> None:
        self.place = place
        self.image = image
        self.pull_policy = pull_policy
        self.run_id = run_id
        self.pods: dict[str, str] = {}

    def install(self, nodes: tuple[str, ...], timeout: float = 120.0) -> None:
        """Create the DaemonSet and wait until it runs on every one of ``nodes``."""
        ns = self.place.namespace
        manifest = agent_daemonset(self.image, self.run_id, self.pull_policy)
        self.place.apps.create_namespaced_daemon_set(ns, manifest)  # type: ignore[arg-type]
        for node in nodes:
            try:
                pod, _ = wait_for(
                    self.place.core.list_namespaced_pod,
                    what=f"node agent running on {node}",
                    done=lambda p: bool(p.status and p.status.phase == "Running"),
                    describe=lambda p: f"agent {p.metadata.name} {p.status.phase}",
                    fail_fast=pod_not_starting,
                    timeout=timeout,
                    namespace=ns,
                    label_selector=f"app.kubernetes.io/name={AGENT}",
                    field_selector=f"spec.nodeName={node}",
                )
            except (WaitFailed, WaitTimeout) as exc:
                raise LabError(
                    f"the node agent cannot run on node {node}: {exc}",
                    f"the node must be able to get {self.image} (see README, 'Against your own "
                    "cluster'), and the namespace must admit privileged pods",
                ) from exc
            self.pods[node] = str(pod.metadata.name)

    def on(self, node: str) -> AgentShell:
        if node not in self.pods:
            raise LabError(f"no node agent on node {node}", f"agents run on: {sorted(self.pods)}")
        return AgentShell(self.place, node, self.pods[node])

    def remove(self) -> None:
        try:
            self.place.apps.delete_namespaced_daemon_set(
                AGENT, self.place.namespace, grace_period_seconds=0
            )
        except client.ApiException as exc:
            if exc.status != 404:
                raise
