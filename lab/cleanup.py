"""Remove what the lab made, found by label and by the cluster-name prefix, and nothing else."""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

import docker

from lab.settings import CLUSTER_PREFIX, LABEL, Settings
from lab.signals import shielded

KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"


def _kind_clusters(client: docker.DockerClient) -> set[str]:
    names = set()
    for c in client.containers.list(all=True, filters={"label": KIND_CLUSTER_LABEL}):
        names.add(c.labels.get(KIND_CLUSTER_LABEL, ""))
    return names


def _remove_lab_resources(
    settings: Settings, everything: bool = False, out: TextIO = sys.stderr
) -> list[str]:
    """Containers and networks labelled by the lab, kind clusters of the lab's name(s),
    and their state dirs. ``everything`` widens it from one cluster to every lab cluster."""
    client = docker.from_env()
    removed: list[str] = []

    def mine(name: str) -> bool:
        if everything:
            return name == CLUSTER_PREFIX or name.startswith(CLUSTER_PREFIX + "-")
        return name == settings.cluster_name

    for cluster in sorted(n for n in _kind_clusters(client) if mine(n)):
        for c in client.containers.list(
            all=True, filters={"label": f"{KIND_CLUSTER_LABEL}={cluster}"}
        ):
            c.remove(force=True, v=True)
            removed.append(f"kind node {c.name}")
        print(f"[down] removed kind cluster {cluster}", file=out)

    for c in client.containers.list(all=True, filters={"label": LABEL}):
        if everything or c.name.startswith(settings.cluster_name + "-"):
            c.remove(force=True, v=True)
            removed.append(f"container {c.name}")
            print(f"[down] removed container {c.name}", file=out)

    for net in client.networks.list(filters={"label": LABEL}):
        if everything or net.name == settings.network_name:
            net.reload()
            for c in net.containers:
                # A container without the lab's label keeps the network: not ours to stop.
                print(f"[down] network {net.name} kept: still used by {c.name}", file=out)
                break
            else:
                net.remove()
                removed.append(f"network {net.name}")
                print(f"[down] removed network {net.name}", file=out)

    state_root = settings.cache_dir / "clusters"
    dirs = (
        [settings.state_dir]
        if not everything
        else list(state_root.glob("*"))
        if state_root.is_dir()
        else []
    )
    for d in dirs:
        if d.is_dir():
            shutil.rmtree(d)
            removed.append(f"state dir {d}")
            print(f"[down] removed {d}", file=out)
    # Lock and user files a killed test run left for its cluster.
    pattern = "*" if everything else settings.cluster_name
    for lock in (
        *settings.cache_dir.glob(f".cluster-{pattern}.*"),
        *settings.cache_dir.glob(f".node-{pattern}.lock"),
    ):
        lock.unlink(missing_ok=True)
    return removed


def remove_lab_resources(
    settings: Settings, everything: bool = False, out: TextIO = sys.stderr
) -> list[str]:
    """Containers and networks labelled by the lab, kind clusters of the lab's name(s), and
    their state dirs; ``everything`` widens it from one cluster to every lab cluster.
    Signals wait until it is done."""
    with shielded():
        return _remove_lab_resources(settings, everything, out)
