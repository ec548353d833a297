"""A lock per node: node-level tests hold one node alone, the others share one, so tests spread
over a lab with workers and node-level ones run side by side under `pytest -n`.

A node-level test changes one node's files, restarts that node's kubelet and compares that
node before and after; it needs that node to itself, not the whole cluster. Each node has a
readers-writer file lock (``lab.sharing``) in the cluster's state dir, so it goes with the
cluster and a killed holder never blocks the next run.

Which node: non-blocking tries over the nodes, workers before the control plane (a pod there
must ignore its NoSchedule taint); a shared hold prefers a node nobody holds, and each process
starts its round at another worker. When nothing fits, try again shortly: a test never holds
some nodes while it waits for others, so two tests that each want two nodes cannot deadlock.
While a test waits to hold nodes alone it marks them wanted, and shared holds keep off wanted
nodes: otherwise tests that share nodes one after another could keep it waiting to the end.
Without workers there is one node, the control plane, and it all behaves as one lock.

>>> locks = NodeLocks(state_dir, cluster.spec.nodes, cluster.spec.node)
>>> with locks.hold(exclusive=True) as hold:
...     hold.node  # "pull-lab-worker"
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from lab.errors import LabError
from lab.sharing import file_lock, try_lock

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class NodeHold:
    """The nodes one test holds (alone when ``exclusive``). With ``pin`` (a lab with workers)
    its pods go to ``node``; without workers the one node takes them as before."""

    nodes: tuple[str, ...]
    exclusive: bool
    pin: bool

    @property
    def node(self) -> str:
        return self.nodes[0]

    @property
    def pod_node(self) -> str:
        """The ``nodeName`` for the test's pods, or "" to leave them to the scheduler."""
        return self.node if self.pin else ""


def lock_order(nodes: Sequence[str], control_plane: str) -> tuple[str, ...]:
    """Workers first, in kind's order, then the control plane."""
    workers = tuple(n for n in nodes if n != control_plane)
    return (*workers, control_plane) if control_plane in nodes else workers


def rotated(items: Sequence[str], start: int) -> tuple[str, ...]:
    """``items`` starting at ``start`` (modulo its length): a round robin's next turn."""
    if not items:
        return ()
    k = start % len(items)
    return (*items[k:], *items[:k])


def _idle_then_shared(path: Path) -> TextIO | None:
    """A shared lock on a node nobody holds (exclusive first, then downgraded), or None."""
    f = try_lock(path)
    if f is None:
        return None
    try:
        fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # a downgrade is not atomic: someone took it meanwhile
        f.close()
        return None
    return f


class NodeLocks:
    """The nodes of one cluster and their locks. ``start`` staggers where this process's
    shared holds begin (an xdist worker's number), so processes spread over the workers."""

    def __init__(
        self,
        state_dir: Path,
        nodes: Sequence[str],
        control_plane: str,
        start: int = 0,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.state_dir = state_dir
        self.order = lock_order(nodes, control_plane)
        self.workers = tuple(n for n in self.order if n != control_plane)
        self.control_plane = control_plane
        self.poll = poll
        self._turn = start
        self.holding: tuple[str, ...] = ()  # what this process holds now (one test at a time)

    def path(self, node: str) -> Path:
        return self.state_dir / f"node-{node}.lock"

    def want_path(self, node: str) -> Path:
        """Held while a test waits to hold ``node`` alone (see ``wanted``)."""
        return self.state_dir / f"node-{node}.want"

    def wanted(self, node: str) -> bool:
        """A test waits to hold ``node`` alone: a shared hold keeps off it."""
        f = try_lock(self.want_path(node), shared=True)
        if f is None:
            return True
        f.close()
        return False

    def candidates(self, exclusive: bool, workers_only: bool = False) -> tuple[str, ...]:
        """The nodes to try, in order: shared holds take turns over the workers."""
        first = self.workers if self.workers else self.order
        if not exclusive:
            first = rotated(first, self._turn)
        rest = () if workers_only or not self.workers else (self.control_plane,)
        return (*first, *rest)

    @contextlib.contextmanager
    def hold(
        self, exclusive: bool, count: int = 1, workers_only: bool = False
    ) -> Iterator[NodeHold]:
        """Hold ``count`` nodes (alone when ``exclusive``) for one block; waits while none fit."""
        candidates = self.candidates(exclusive, workers_only)
        if count > len(candidates):
            raise LabError(f"{count} nodes wanted, the lab has {len(candidates)}: {candidates}")
        if not exclusive:
            self._turn += 1
        files = self._acquire(candidates, exclusive, count)
        before, self.holding = self.holding, tuple(files)
        try:
            yield NodeHold(tuple(files), exclusive, pin=bool(self.workers))
        finally:
            self.holding = before
            for f in files.values():
                f.close()

    def using(self, default: str) -> tuple[str, contextlib.AbstractContextManager[None]]:
        """A node for something this process starts there (a registry's pod), and what keeps
        other tests from changing it meanwhile: the node this process's test holds, already
        guarded, or else ``default`` shared for the block."""
        if self.holding:
            return self.holding[0], contextlib.nullcontext()
        return default, self.shared_on(default)

    def _acquire(
        self, candidates: tuple[str, ...], exclusive: bool, count: int
    ) -> dict[str, TextIO]:
        got = self.try_hold(candidates, exclusive, count)
        if got is not None:
            return got
        with contextlib.ExitStack() as wants:
            if exclusive:  # best effort: a node another waiter marked is wanted already
                for node in candidates:
                    if (f := try_lock(self.want_path(node))) is not None:
                        wants.callback(f.close)
            while got is None:
                time.sleep(self.poll)
                got = self.try_hold(candidates, exclusive, count)
        return got

    def try_hold(
        self, candidates: tuple[str, ...], exclusive: bool, count: int
    ) -> dict[str, TextIO] | None:
        """One pass without waiting: ``count`` of ``candidates`` locked, or none at all. A
        shared hold takes a node nobody holds if there is one, else one others share."""
        passes = [self._alone] if exclusive else [_idle_then_shared, self._shared]
        usable = candidates if exclusive else [n for n in candidates if not self.wanted(n)]
        for attempt in passes:
            got: dict[str, TextIO] = {}
            for node in usable:
                f = attempt(self.path(node))
                if f is not None:
                    got[node] = f
                    if len(got) == count:
                        return got
            for f in got.values():
                f.close()
        return None

    @staticmethod
    def _alone(path: Path) -> TextIO | None:
        return try_lock(path)

    @staticmethod
    def _shared(path: Path) -> TextIO | None:
        return try_lock(path, shared=True)

    def shared_on(self, node: str) -> contextlib.AbstractContextManager[None]:
        """One node shared, waiting while a test holds it alone (for every-node changes that
        disturb no test, such as a registry's own CA)."""
        return file_lock(self.path(node), shared=True)
