"""One lab's lifetime in one object: build, cluster, registries, node access, cleanup.

`pull-lab up` and the pytest fixtures both go through `LabSession`, so a cluster comes up, is
shared and goes away the same way everywhere:

- the cluster is created (or reused) under a lock; under `pytest -n N` the workers share it:
  the first creates it, the last one out deletes it (`lab.sharing`);
- a failure, Ctrl-C or SIGTERM while it comes up removes what this call made;
- `close()` undoes the rest in reverse order with signals held: trusted CAs off the node,
  registries stopped, the 0700 key dir removed, the cluster left (and deleted if ours).

>>> with LabSession(settings, user="gw0", key_dir=tmp / "keys") as lab:
...     registry = lab.registries.start("registry")
...     lab.cluster().node_exec("crictl", "images")

The state file of `pull-lab up` (0600, in the cluster's state dir) tells `status` and `down`
what was made.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import requests

from lab.cluster import (
    ClusterSpec,
    LabCluster,
    ensure_network,
    remove_network,
    wait_all_nodes_ready,
)
from lab.credentials import new_password, register_known
from lab.errors import LabError
from lab.foreign import ForeignCluster, NoNodeAccess, node_address
from lab.incluster_registry import InClusterRegistry, InClusterSpec
from lab.kube import api_client, wait_cluster_usable
from lab.node import NodeChanges, NodeRegistryConfig, Recorder, node_state
from lab.node_locks import NodeHold, NodeLocks
from lab.offline.build import LabImages, build_all
from lab.offline.cache import BuildCache
from lab.pki import LabPKI, write_private
from lab.registry import LabRegistry, RegistrySpec, seed
from lab.settings import Settings
from lab.sharing import SharedUse
from lab.signals import shielded

Cluster = LabCluster | ForeignCluster
Registry = LabRegistry | InClusterRegistry
__all__ = ["LabSession", "NoNodeAccess", "Registries"]
# Host ports for registries inside a foreign cluster (hostNetwork): above the NodePort range
# and below Linux's ephemeral ports, so neither a Service nor an outgoing connection holds one.
IN_CLUSTER_PORTS = range(20000, 29999)
PORT_ATTEMPTS = 3

SEED_REPO = "lab/busybox"
SEED_TAG = "1.0"


@dataclass(frozen=True)
class RegistryState:
    name: str
    in_cluster: str
    host_address: str
    ca_file: str
    credentials_file: str
    mtls: bool


def cluster_spec(settings: Settings, images: LabImages) -> ClusterSpec:
    return ClusterSpec(
        name=settings.cluster_name,
        node_image=settings.kind_image or images.node_image,
        kind_bin=images.kind_bin,
        kubectl_bin=images.kubectl_bin,
        state_dir=settings.state_dir,
        network=settings.network_name,
        run_id=settings.run_id,
        default_cni=images.source == "upstream",
        workers=settings.workers,
    )


def registry_specs(settings: Settings, image: str) -> list[RegistrySpec]:
    """The lab's standing registries: the tutorial's (basic auth) and one that also wants mTLS.
    Each gets a fresh random password, never the tutorial's published one."""
    name, network, run_id = settings.cluster_name, settings.network_name, settings.run_id
    return [
        RegistrySpec(
            name=f"{name}-registry{suffix}",
            image=image,
            network=network,
            run_id=run_id,
            users={"foo": new_password("foo")},
            index=index,
            mtls=mtls,
        )
        for index, (suffix, mtls) in enumerate((("", False), ("-mtls", True)))
    ]


def _register_saved_credentials(path: Path) -> None:
    """A password `pull-lab up` made in another process, read back here: this process masks it
    too (its masker never saw it made)."""
    try:
        creds = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # status still describes the lab; the file's absence is not a secret
    if creds.get("password"):
        register_known(str(creds.get("username") or ""), str(creds["password"]))


def cluster_images(images: LabImages) -> tuple[str, str, str]:
    """(registry, node agent, pull policy) for a foreign cluster. Offline: the images the lab's
    node image preloads (a node made from it runs them with no pull; a node that loaded them
    later may refuse them until its kubelet restarts, see README). Upstream: official images
    the cluster pulls itself."""
    if images.source == "offline":
        return images.registry_image, images.preloaded_image, "Never"
    return images.registry_image, images.workload_image, "IfNotPresent"


class NeedsLabNetwork(LabError):
    """A registry that only the lab's own docker network can give (a DNS alias, say)."""


@dataclass
class Registries:
    """Starts registries beside the cluster: on its docker network for the lab's own cluster,
    inside it (hostNetwork on a node) for a foreign one. ``stop_all`` stops every one."""

    settings: Settings
    images: LabImages
    pki: LabPKI
    workdir: Path
    foreign: ForeignCluster | None = None
    locks: NodeLocks | None = None  # a foreign cluster's: where its registries may start
    started: list[Registry] = field(default_factory=list)

    def start(self, purpose: str, **spec_kwargs: Any) -> Registry:
        """A running registry named after the run and ``purpose``, with a fresh password for
        ``foo`` unless ``users=`` says otherwise (those passwords are masked all the same)."""
        suffix = uuid.uuid4().hex[:6]
        name = f"{self.settings.cluster_name}-{purpose}-{suffix}"
        users = spec_kwargs.pop("users", None) or {"foo": new_password("foo")}
        for user, password in users.items():
            register_known(user, password)  # a caller's own password: masked all the same
        if self.foreign is not None:
            return self._start_in_cluster(f"registry-{purpose}-{suffix}", users, spec_kwargs)
        spec = RegistrySpec(
            name=name,
            image=self.images.registry_image,
            network=self.settings.network_name,
            run_id=self.settings.run_id,
            users=users,
            **spec_kwargs,
        )
        registry = LabRegistry(spec, self.pki, self.workdir / name)
        registry.start()
        self.started.append(registry)
        return registry

    def _start_in_cluster(
        self, resource: str, users: dict[str, str], spec_kwargs: dict[str, Any]
    ) -> InClusterRegistry:
        """On the node the current test holds (the foreign cluster's first node outside a
        test, held shared while the pod starts), at a free host port: a port someone else
        holds makes the registry exit at once, and the next port is tried. Not on a node
        another test holds alone: its kubelet may be restarting or verifying every image
        (the preloaded registry image then fails with ErrImageNeverPull)."""
        assert self.foreign is not None
        node, guard = (
            self.locks.using(self.foreign.spec.node)
            if self.locks is not None
            else (self.foreign.spec.node, contextlib.nullcontext())
        )
        with guard:
            return self._start_on(node, resource, users, spec_kwargs)

    def _start_on(
        self, node: str, resource: str, users: dict[str, str], spec_kwargs: dict[str, Any]
    ) -> InClusterRegistry:
        assert self.foreign is not None
        if spec_kwargs.pop("aliases", ()):
            raise NeedsLabNetwork(
                "needs a DNS name for the registry that is not in its certificate: only the "
                "lab's own cluster (its docker network) gives one"
            )
        spec_kwargs.pop("index", None)
        address = node_address(self.foreign.core, node)
        image, _, pull_policy = cluster_images(self.images)
        for attempt in range(PORT_ATTEMPTS):
            spec = InClusterSpec(
                name=address,
                image=image,
                pull_policy=pull_policy,
                network="",
                run_id=self.settings.run_id,
                users=users,
                resource=resource,
                port=random.choice(IN_CLUSTER_PORTS),
                node=node,
                **spec_kwargs,
            )
            registry = InClusterRegistry(
                spec, self.pki, self.workdir / resource, self.foreign.workspace()
            )
            try:
                registry.start()
            except LabError as exc:
                if "CrashLoopBackOff" not in str(exc) or attempt == PORT_ATTEMPTS - 1:
                    raise
                continue
            self.started.append(registry)
            return registry
        raise AssertionError("unreachable")

    def seed(self, registry: Registry, repo: str = SEED_REPO, tag: str = SEED_TAG) -> str:
        """Push the lab's workload image as ``repo:tag``; returns its digest. A push into a
        foreign cluster whose forward a kubelet restart cut is made once more (blobs already
        there are not sent again)."""
        try:
            return seed(registry, self.images.workload_image, repo, tag)
        except requests.ConnectionError:
            if not isinstance(registry, InClusterRegistry):
                raise
            return seed(registry, self.images.workload_image, repo, tag)

    def push_fresh(self, registry: Registry, repo: str = SEED_REPO) -> str:
        """Push the workload under a tag no node has seen, so every pull really goes to the
        registry; returns the image reference."""
        tag = f"t-{uuid.uuid4().hex[:10]}"
        self.seed(registry, repo, tag)
        return f"{registry.spec.host}/{repo}:{tag}"

    def stop_all(self) -> None:
        with shielded():
            while self.started:
                self.started.pop().stop()


class LabSession:
    """The lab for one process: built images, the (shared) cluster, registries and cleanup.

    ``user`` names this process among those sharing the cluster (an xdist worker id);
    ``key_dir`` is where registry keys go (0700, removed by ``close``).
    """

    def __init__(
        self,
        settings: Settings,
        out: TextIO = sys.stderr,
        user: str = "main",
        key_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.out = out
        self.user = user
        self.key_dir = key_dir or settings.state_dir / f"keys-{user}"
        self._images: LabImages | None = None
        self._cluster: Cluster | None = None
        self._pki: LabPKI | None = None
        self._registries: Registries | None = None
        self._node_locks: NodeLocks | None = None
        # Everything made here is undone in reverse order, even when one undo fails.
        self._undo = contextlib.ExitStack()

    def __enter__(self) -> LabSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state_file(self) -> Path:
        return self.settings.state_dir / "lab.json"

    def _say(self, text: str) -> None:
        print(f"[up] {text}", file=self.out, flush=True)

    # ---- what a run needs, made on first use -------------------------------------------
    def build(self) -> LabImages:
        """Everything built, or found in the cache."""
        if self._images is None:
            self._images, _ = build_all(
                self.settings.images,
                BuildCache(self.settings.cache_dir),
                self.settings.versions(),
                out=self.out,
            )
        return self._images

    def cluster(self) -> Cluster:
        """The session's cluster, usable; with ``settings.kubeconfig``, that cluster instead.
        Left (and deleted if this run made it and nobody else uses it) by ``close``."""
        if self._cluster is None:
            images = self.build()
            if self.settings.kubeconfig is not None:
                self._cluster = self._foreign(images)
            else:
                self._cluster = self._join(images, register=True)
        return self._cluster

    def _foreign(self, images: LabImages) -> ForeignCluster:
        """The user's cluster: the lab's namespace on it goes at ``close``; the node agent
        only with their consent (`--allow-node-changes`)."""
        assert self.settings.kubeconfig is not None
        namespace = f"pull-lab-{self.settings.run_id}-{self.user}".lower()
        cluster = ForeignCluster(
            self.settings.kubeconfig, images.kubectl_bin, self.settings.run_id, namespace
        )
        self._undo.callback(cluster.close)
        if self.settings.allow_node_changes:
            self._say(f"node agent: installing on {len(cluster.spec.nodes)} nodes")
            cluster.allow_node_changes(*cluster_images(images)[1:])
        return cluster

    @property
    def pki(self) -> LabPKI:
        if self._pki is None:
            self._pki = LabPKI.create()
        return self._pki

    @property
    def registries(self) -> Registries:
        """The factory for this run's registries; all of them stop at ``close``."""
        if self._registries is None:
            cluster = self.cluster()
            self.key_dir.mkdir(parents=True, exist_ok=True)
            self.key_dir.chmod(0o700)
            self._undo.callback(shutil.rmtree, self.key_dir, ignore_errors=True)
            # Registries live on the cluster's network, or inside a cluster brought with a
            # kubeconfig (nothing of the lab's is on its network).
            foreign = cluster if isinstance(cluster, ForeignCluster) else None
            factory = Registries(
                self.settings,
                self.build(),
                self.pki,
                self.key_dir / "registries",
                foreign,
                self.node_locks() if foreign is not None else None,
            )
            self._undo.callback(factory.stop_all)
            self._registries = factory
        return self._registries

    def trusted_registry(self, purpose: str) -> Registry:
        """A registry whose CA the node trusts (for its host only) until ``close``: for
        scenarios whose credentials come from pull secrets, so only this CA is shared state."""
        cluster = self._node_cluster()
        registry = self.registries.start(purpose)
        locks = self.node_locks()
        # Every node: API-level scenarios spread over all of them.
        configs = {n: NodeRegistryConfig(NodeChanges(cluster.on(n))) for n in cluster.spec.nodes}
        # Each node shared, not alone: the file is this registry's own (a host nobody else
        # uses), so it disturbs no other test that shares the node, and a node-level test
        # (which holds its node alone and compares it before and after) cannot run there
        # meanwhile. Taking nodes alone here would make every run's start wait for the longest
        # API-level scenario of every other run (secret-update: two minutes).
        for node, config in configs.items():
            with locks.shared_on(node):
                config.install_ca(registry.spec.host, self.pki.ca_pem)

        def untrust() -> None:
            for node, config in configs.items():
                with locks.shared_on(node):
                    config.restore()

        self._undo.callback(untrust)
        return registry

    # ---- the node ------------------------------------------------------------------------
    def node_locks(self) -> NodeLocks:
        """A readers-writer lock per node, across processes (``lab.node_locks``): whoever
        changes a node's files or restarts its kubelet holds that node alone; everything else
        that uses a node shares it. In the cluster's state dir: they go with the cluster."""
        if self._node_locks is None:
            cluster = self.cluster()
            if isinstance(cluster, LabCluster):
                nodes, control_plane = cluster.spec.nodes, cluster.spec.node
            else:
                # A foreign cluster: test pods go only where its scheduler would put them; the
                # last of those nodes is tried last, as a lab's control plane is.
                nodes = cluster.spec.schedulable or cluster.spec.nodes
                control_plane = nodes[-1]
            start = int("".join(c for c in self.user if c.isdigit()) or 0)
            self._node_locks = NodeLocks(self.settings.state_dir, nodes, control_plane, start)
        return self._node_locks

    def holding_nodes(
        self, exclusive: bool, count: int = 1, workers_only: bool = False
    ) -> contextlib.AbstractContextManager[NodeHold]:
        """Hold ``count`` nodes (alone when ``exclusive``) for one block: see ``NodeLocks``."""
        return self.node_locks().hold(exclusive, count, workers_only)

    def _node_cluster(self) -> Cluster:
        cluster = self.cluster()
        if isinstance(cluster, ForeignCluster):
            cluster.on(cluster.spec.node)  # NoNodeAccess without the user's consent
        return cluster

    @contextlib.contextmanager
    def changing_node(
        self, recorder: Recorder | None = None, node: str = ""
    ) -> Iterator[NodeRegistryConfig]:
        """One node's registry config (default: the control plane) for one block; every change
        is undone when it ends, and that node's registry files and services must then be as
        they were before.

        Hold that node alone around it (``holding_nodes``). Each change (undo included) goes
        to ``recorder`` as the command that ran on the node."""
        cluster = self._node_cluster()
        shell = cluster.on(node or cluster.spec.node)
        before = node_state(shell)
        config = NodeRegistryConfig(NodeChanges(shell, recorder=recorder, name=shell.name))
        try:
            yield config
        finally:
            errors = config.restore()
        if errors:
            raise LabError("node changes not undone: " + "; ".join(errors))
        after = node_state(shell)
        if after != before:
            raise LabError(
                f"node state leaked out of the test:\nbefore:\n{before}\nafter:\n{after}"
            )

    # ---- the end -------------------------------------------------------------------------
    def close(self) -> None:
        """Undo everything this session made, in reverse order; signals wait until it is done."""
        with shielded():
            self._undo.close()

    # ---- sharing the cluster between processes -------------------------------------------
    def _shared_use(self) -> SharedUse:
        cache, name = self.settings.cache_dir, self.settings.cluster_name
        return SharedUse(
            cache / f".cluster-{name}.lock", cache / f".cluster-{name}.users", self.user
        )

    def _join(self, images: LabImages, register: bool) -> LabCluster:
        """Create the cluster (or reuse one of that name) under the lock, and make it usable.

        A failure, Ctrl-C or SIGTERM while it comes up deletes a cluster this call made. With
        ``register`` this process counts as a user and ``close`` leaves it."""
        cluster = LabCluster(cluster_spec(self.settings, images))
        use = self._shared_use()
        with use.locked():
            existed = cluster.exists()
            # A cluster this same run made (another xdist worker) counts as ours, not as
            # "existing": the last user out deletes it.
            ours = not existed or bool(use.users())
            try:
                cluster.create()
                if images.source == "upstream" and not existed:
                    cluster.load_image(images.preloaded_image)  # the official node has no lab image
                api = api_client(cluster.kubeconfig_path)
                wait_cluster_usable(api)
                wait_all_nodes_ready(api, cluster.spec.nodes, timeout=180.0)
            except BaseException:
                if not existed:
                    with shielded():
                        cluster.delete()
                        remove_network(self.settings.network_name)
                        use.forget()
                raise
            if register and ours:
                use.join()
        if register:
            self._undo.callback(self._leave, cluster, use, ours)
        elif not use.users():
            use.lock_path.unlink(missing_ok=True)  # `pull-lab up` leaves no lock file behind
        return cluster

    def _leave(self, cluster: LabCluster, use: SharedUse, ours: bool) -> None:
        """The last user out deletes a cluster this run made (unless told to keep it)."""
        with shielded():
            with use.locked():
                if not use.leave():
                    return
                if ours and not self.settings.keep_cluster and not self.settings.reuse_cluster:
                    cluster.delete()
                    remove_network(self.settings.network_name)
            use.lock_path.unlink(missing_ok=True)  # the last user out removes the lock file too

    # ---- `pull-lab up`: a lab that stays ---------------------------------------------------
    def up(self) -> dict:
        """Build, create the cluster and registries; on any failure remove what this call made."""
        images = self.build()
        cluster = LabCluster(cluster_spec(self.settings, images))
        existed = cluster.exists()
        if existed and self.state_file.exists():
            state = json.loads(self.state_file.read_text())
            if all(LabRegistry.find(r["name"]) for r in state["registries"]):
                self._say(f"lab {cluster.name} is already up")
                return state
        self._say(f"cluster {cluster.name}: " + ("reusing" if existed else "creating"))
        try:
            return self._up(images)
        except BaseException:
            if not existed:
                from lab.cleanup import remove_lab_resources

                remove_lab_resources(self.settings, out=self.out)
            raise

    def _up(self, images: LabImages) -> dict:
        """The registries start and are seeded while the node boots: they need only the
        network. On any failure or Ctrl-C the registry thread is waited for before ``up``
        removes what was made, so no container appears after the clean-up."""
        specs = registry_specs(self.settings, images.registry_image)
        for spec in specs:
            if LabRegistry.find(spec.name):
                raise LabError(
                    f"a container named {spec.name} already exists",
                    f"run `pull-lab down --name {self.settings.cluster_name}` first",
                )
        ensure_network(self.settings.network_name, self.settings.run_id)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="registries") as pool:
            started = pool.submit(self._start_registries, specs, images)
            # Not a user of the cluster: it stays up until `pull-lab down`.
            cluster = self._join(images, register=False)
            ready = (
                "node Ready"
                if cluster.spec.workers == 0
                else f"{len(cluster.spec.nodes)} nodes Ready"
            )
            self._say(f"cluster {cluster.name}: {ready}, default service account present")
            registries = []
            for spec, reg, digest in started.result():
                self._say(
                    f"registry {spec.host}: ready on {reg.url}, "
                    f"seeded {SEED_REPO}:{SEED_TAG} {digest[:19]}"
                )
                registries.append(self._save_credentials(spec, reg))
        state = {
            "cluster": cluster.name,
            "kubeconfig": str(cluster.kubeconfig_path),
            "images": self.settings.images,
            "kubernetes": images.kubernetes_version,
            "nodes": list(cluster.spec.nodes),
            "run_id": self.settings.run_id,
            "registries": [asdict(r) for r in registries],
        }
        write_private(self.state_file, json.dumps(state, indent=2).encode())
        return state

    def _start_registries(
        self, specs: list[RegistrySpec], images: LabImages
    ) -> list[tuple[RegistrySpec, LabRegistry, str]]:
        pki = LabPKI.create()
        out = []
        for spec in specs:
            workdir = self.settings.state_dir / "registries" / spec.name
            reg = LabRegistry(spec, pki, workdir).start()
            out.append((spec, reg, seed(reg, images.workload_image, SEED_REPO, SEED_TAG)))
        return out

    def _save_credentials(self, spec: RegistrySpec, reg: LabRegistry) -> RegistryState:
        creds = self.settings.state_dir / "registries" / spec.name / "credentials.json"
        user, password = reg.credentials
        write_private(creds, json.dumps({"username": user, "password": password}).encode())
        return RegistryState(
            spec.name,
            spec.host,
            reg.url.removeprefix("https://"),
            str(reg.ca_file),
            str(creds),
            spec.mtls,
        )

    def status(self) -> dict:
        if not self.state_file.exists():
            raise LabError(
                f"no lab is up for cluster {self.settings.cluster_name}", "run `pull-lab up` first"
            )
        state = json.loads(self.state_file.read_text())
        for reg in state["registries"]:
            _register_saved_credentials(Path(reg["credentials_file"]))
        return state

    def describe_text(self, state: dict | None = None) -> str:
        state = state or self.status()
        lines = [
            f"cluster:    {state['cluster']} "
            f"(Kubernetes {state['kubernetes']}, images: {state['images']})",
            f"kubeconfig: export KUBECONFIG={state['kubeconfig']}",
        ]
        for reg in state["registries"]:
            lines += [
                f"registry:   {reg['in_cluster']}"
                + ("  (mTLS: client certificate required)" if reg["mtls"] else ""),
                f"  from this host: https://{reg['host_address']}  CA: {reg['ca_file']}",
                f"  credentials:    {reg['credentials_file']} (0600)",
                f'  try: curl --cacert {reg["ca_file"]} -u "$(jq -r \'.username+":"+.password\' '
                f'{reg["credentials_file"]})" https://{reg["host_address"]}/v2/_catalog',
            ]
        return "\n".join(lines)
