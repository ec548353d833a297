"""The kind cluster: create, reuse, delete; kubeconfig; exec and file copy on the node.

A plain class over the lab's own `kind` binary and node image. It used to subclass
pytest-kind-ng's `KindCluster` without calling its constructor: that class makes a
`.pytest-kind/` folder in the working directory, downloads kind from GitHub when the binary is
missing and runs `kind create` with no environment (the lab needs
`KIND_EXPERIMENTAL_DOCKER_NETWORK`), no timeout and no signal shielding, so every method the lab
used was its own already.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from lab import manifest_yaml
from lab.errors import LabError
from lab.kube import describe_node, node_schedulable
from lab.settings import LABEL
from lab.signals import shielded
from lab.watch import wait_for

CREATE_TIMEOUT = 600.0


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    node_image: str
    kind_bin: Path
    kubectl_bin: Path
    state_dir: Path
    network: str
    run_id: str
    default_cni: bool  # the upstream node image ships kindnet; ours bakes a ptp conflist
    workers: int = 0

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def node(self) -> str:
        """The control plane: the node the lab's node-level code changes."""
        return f"{self.name}-control-plane"

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node's name (also its container's), as kind names them: the control plane,
        then `-worker`, `-worker2`, ..."""
        workers = (f"{self.name}-worker{i if i > 1 else ''}" for i in range(1, self.workers + 1))
        return (self.node, *workers)


# Control-plane start-up, on 2 cores, for speed only: nothing a kubelet or containerd does in a
# pull changes.
# - The controller manager builds its ~40 controllers one after another through a client
#   limited to 20 requests/s: the default service account (no pod can be made before it) came
#   7 s after kind returned, 0.6-0.9 s with the limit raised.
# - The controller manager and the scheduler ask for their leader lease before RBAC is
#   bootstrapped, are refused, and ask again only 2 s later (leader-elect-retry-period): the
#   lease came 1.5 s after kind returned. One control plane, so nobody else competes for it.
# kind writes kubeadm's v1beta3 (1.34) or v1beta4 (1.35+), whose extraArgs are a map or a list;
# a patch applies to its apiVersion only, and a list is replaced whole, so kind's one entry
# (enable-hostpath-provisioner) is repeated.
LEADER_RETRY = {"leader-elect-retry-period": "500ms"}
CONTROLLER_MANAGER_ARGS = {"kube-api-qps": "200", "kube-api-burst": "400", **LEADER_RETRY}
SCHEDULER_ARGS = dict(LEADER_RETRY)
KIND_CONTROLLER_MANAGER_ARGS = {"enable-hostpath-provisioner": "true"}


def _arg_list(args: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in args.items()]


CONTROL_PLANE_PATCHES = (
    manifest_yaml.dump(
        {
            "apiVersion": "kubeadm.k8s.io/v1beta3",
            "kind": "ClusterConfiguration",
            "controllerManager": {"extraArgs": CONTROLLER_MANAGER_ARGS},
            "scheduler": {"extraArgs": SCHEDULER_ARGS},
        }
    ),
    manifest_yaml.dump(
        {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "ClusterConfiguration",
            "controllerManager": {
                "extraArgs": _arg_list({**KIND_CONTROLLER_MANAGER_ARGS, **CONTROLLER_MANAGER_ARGS})
            },
            "scheduler": {"extraArgs": _arg_list(SCHEDULER_ARGS)},
        }
    ),
)


def kind_config(spec: ClusterSpec) -> dict:
    """A control plane and ``spec.workers`` workers, all from the same node image (kind joins
    workers with kubeadm join, whose preflight kind skips itself); no kube-proxy, no CoreDNS:
    image pulls need neither. With workers kind leaves the control plane's NoSchedule taint
    on, as on a real cluster, so pods land on the workers."""
    networking: dict = {"kubeProxyMode": "none"}
    if not spec.default_cni:
        networking["disableDefaultCNI"] = True
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "networking": networking,
        # kind's patches are merge patches: lists are replaced, so preflight is repeated.
        "kubeadmConfigPatches": [
            "kind: InitConfiguration\nskipPhases: [preflight, addon/coredns, addon/kube-proxy]\n",
            # 1.35+ kubelets exit on a cgroup v1 host unless told otherwise ("kubelet is
            # configured to not run on a host using cgroup v1"); false is 1.34's default, and
            # cgroup v2 hosts ignore it.
            # syncFrequency: a running pod is resynced every 10 s, not every minute, so
            # secret-update's "left alone for a whole sync period" watch costs 25 s, not 75 s.
            # A pull's back-off, messages and credentials are not tied to it; the scenario
            # reads the period from the node, so other clusters keep their own.
            "kind: KubeletConfiguration\nfailCgroupV1: false\nsyncFrequency: 10s\n",
            *CONTROL_PLANE_PATCHES,
        ],
        "nodes": [{"role": "control-plane"}] + [{"role": "worker"}] * spec.workers,
    }


def _docker(
    *args: str, input: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], input=input, capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(
            f"docker {args[0]} failed: {proc.stderr.decode(errors='replace').strip()[:300]}"
        )
    return proc


def used_ipv4_networks() -> list[ipaddress.IPv4Network]:
    """Subnets already routed on this host or held by a docker network."""
    used = []
    routes = subprocess.run(
        ["ip", "-4", "route"], capture_output=True, text=True, check=False
    ).stdout
    for line in routes.splitlines():
        dest = line.split()[0] if line.strip() else ""
        if dest and dest != "default":
            used.append(ipaddress.ip_network(dest if "/" in dest else f"{dest}/32", strict=False))
    ids = _docker("network", "ls", "-q").stdout.decode().split()
    if ids:
        out = _docker(
            "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", *ids
        )
        for subnet in out.stdout.decode().split():
            if ":" not in subnet:
                used.append(ipaddress.ip_network(subnet, strict=False))
    return used  # type: ignore[return-value]


def pick_subnet(used: list[ipaddress.IPv4Network]) -> str:
    """A free /24 for the lab network; a user-set subnet lets registries have fixed addresses."""
    for third in range(0, 256):
        candidate = ipaddress.ip_network(f"172.31.{third}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise LabError(
        "no free /24 left in 172.31.0.0/16 for the lab network", "run `pull-lab down --all`"
    )


def ensure_network(name: str, run_id: str) -> bool:
    """Create the docker network kind and the registries share; True if this call made it."""
    if _docker("network", "inspect", name, check=False).returncode == 0:
        return False
    subnet = pick_subnet(used_ipv4_networks())
    # No masquerading: nothing on the lab network can open a connection past this host.
    _docker(
        "network",
        "create",
        "--driver",
        "bridge",
        "--subnet",
        subnet,
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=false",
        "--label",
        f"{LABEL}={run_id}",
        name,
    )
    return True


def remove_network(name: str) -> None:
    with shielded():
        _docker("network", "rm", name, check=False)


@dataclass(frozen=True)
class NodeShell:
    """``node_exec`` on one named node of a lab cluster (a worker, say)."""

    cluster: LabCluster
    name: str

    def node_exec(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        return self.cluster.node_exec(*args, input=input, check=check, node=self.name)


def wait_all_nodes_ready(api: client.ApiClient, names: tuple[str, ...], timeout: float) -> None:
    """Each named node registered, Ready and rid of its start-up taints; kind's own wait covers
    the control plane's Ready only."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    for name in names:
        wait_for(
            core.list_node,
            what=f"node {name} Ready and untainted",
            done=node_schedulable,
            describe=describe_node,
            timeout=max(1.0, deadline - time.monotonic()),
            field_selector=f"metadata.name={name}",
        )


class LabCluster:
    """A kind cluster on the lab's own network, with state kept outside the repository.

    >>> cluster = LabCluster(cluster_spec(settings, images))
    >>> cluster.create()  # or reuse one of that name; writes the kubeconfig
    >>> cluster.node_exec("crictl", "images")
    """

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.image = spec.node_image
        self.path = spec.state_dir
        self.kubeconfig_path = spec.kubeconfig
        self.kind_path = spec.kind_bin
        self.kubectl_path = spec.kubectl_bin

    def _env(self) -> dict[str, str]:
        # kind joins an existing network of this name instead of creating "kind".
        return {**os.environ, "KIND_EXPERIMENTAL_DOCKER_NETWORK": self.spec.network}

    def exists(self) -> bool:
        out = subprocess.run(
            [str(self.kind_path), "get", "clusters"], capture_output=True, text=True, check=False
        ).stdout
        return self.name in out.split()

    def running_image(self) -> str | None:
        """The image the control-plane container was created from, or None without one."""
        proc = subprocess.run(
            ["docker", "inspect", "--format", "{{.Config.Image}}", self.spec.node],
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else None

    def check_reusable(self) -> None:
        """A cluster of another Kubernetes version (or runtime) must not pass for this one."""
        running = self.running_image()
        if running is not None and running != self.image:
            raise LabError(
                f"cluster {self.name} runs node image {running}, this run asks for {self.image}",
                f"use another --name, or remove it first: pull-lab down --name {self.name}",
            )

    def create(self) -> None:
        """Create the cluster, or reuse one of the same name; write its kubeconfig."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.exists():
            self.check_reusable()
            ensure_network(self.spec.network, self.spec.run_id)
            self.export_kubeconfig()
            return
        ensure_network(self.spec.network, self.spec.run_id)
        config = self.path / "kind-config.yaml"
        config.write_text(manifest_yaml.dump(kind_config(self.spec)))
        self.kubeconfig_path.touch(0o600, exist_ok=True)
        cmd = [
            str(self.kind_path),
            "create",
            "cluster",
            f"--name={self.name}",
            f"--kubeconfig={self.kubeconfig_path}",
            f"--image={self.image}",
            f"--config={config}",
        ]
        try:
            # Held signals: killing kind halfway would leave docker finishing a node container
            # after our cleanup. A Ctrl-C waits for kind, then the cluster is deleted.
            with shielded():
                proc = subprocess.run(
                    cmd,
                    env=self._env(),
                    capture_output=True,
                    text=True,
                    timeout=CREATE_TIMEOUT,
                    check=False,
                )
        except subprocess.TimeoutExpired as exc:
            self.delete()
            raise LabError(
                f"kind create cluster {self.name} took over {CREATE_TIMEOUT:.0f}s"
            ) from exc
        except BaseException:  # Ctrl-C or SIGTERM halfway: no half-made cluster stays behind
            self.delete()
            raise
        (self.path / "kind-create.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            self.delete()
            raise LabError(
                f"kind create cluster {self.name} failed: {lines[-1] if lines else 'no output'}",
                f"full output in {self.path / 'kind-create.log'}",
            )

    def load_image(self, ref: str) -> None:
        """Put a host image into the node's containerd (`kind load docker-image`)."""
        proc = subprocess.run(
            [str(self.kind_path), "load", "docker-image", "--name", self.name, ref],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise LabError(f"kind load docker-image {ref} failed: {proc.stderr.strip()[-300:]}")

    def export_kubeconfig(self) -> None:
        """Written aside and renamed into place: another run of this cluster may be reading it
        (kubectl, the API client) while this one joins."""
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        fresh = self.kubeconfig_path.with_name(f".{self.kubeconfig_path.name}.{os.getpid()}")
        fresh.unlink(missing_ok=True)
        fresh.touch(0o600)
        try:
            subprocess.run(
                [
                    str(self.kind_path),
                    "export",
                    "kubeconfig",
                    f"--name={self.name}",
                    f"--kubeconfig={fresh}",
                ],
                capture_output=True,
                check=True,
            )
            os.replace(fresh, self.kubeconfig_path)
        finally:
            fresh.unlink(missing_ok=True)

    def delete(self) -> None:
        """Delete the cluster and its state dir (kubeconfig, kind config, logs)."""
        with shielded():
            self._delete()

    def _delete(self) -> None:
        subprocess.run(
            [
                str(self.kind_path),
                "delete",
                "cluster",
                f"--name={self.name}",
                f"--kubeconfig={self.kubeconfig_path}",
            ],
            capture_output=True,
            check=False,
        )
        self.kubeconfig_path.unlink(missing_ok=True)
        shutil.rmtree(self.path, ignore_errors=True)

    # ---- node access -------------------------------------------------------------------
    def node_exec(
        self, *args: str, input: bytes | None = None, check: bool = True, node: str = ""
    ) -> str:
        """Run a command in a node's container: the control plane unless ``node`` names
        another."""
        node = node or self.spec.node
        proc = _docker("exec", "-i", node, *args, input=input, check=False)
        if check and proc.returncode != 0:
            raise LabError(
                f"on node {node}: {' '.join(args)} failed: "
                f"{proc.stderr.decode(errors='replace').strip()[:300]}"
            )
        return proc.stdout.decode(errors="replace")

    def on(self, node: str) -> NodeShell:
        """One node of this cluster, for code that changes "the node" (``lab.node``)."""
        if node not in self.spec.nodes:
            raise LabError(f"no node {node} in cluster {self.name}", f"nodes: {self.spec.nodes}")
        return NodeShell(self, node)

    def node_write(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.node_exec(
            "sh",
            "-c",
            f'mkdir -p "$(dirname "{path}")" && cat > "{path}" && chmod {mode:o} "{path}"',
            input=data,
        )

    def node_read(self, path: str) -> bytes:
        proc = _docker("exec", self.spec.node, "cat", path, check=False)
        if proc.returncode != 0:
            raise LabError(f"on node {self.spec.node}: cannot read {path}")
        return proc.stdout
