"""A resumable pipeline of named steps, with a progress line and a timing for each.

A step that builds shows life while it runs: a heartbeat line every 15 s saying what it is doing
and for how long (lab/offline/heartbeat.py), so a six-minute Go build is not one silent line.

Steps marked ``beside`` need nothing the others make and mostly wait on the network and the
disk (Debian's rootfs, packages): they run one after another on a lane of their own while the
main lane goes on with the CPU-bound Go builds, and a step that needs one of them (``needs``)
waits for it. Go builds stay on the main lane, one at a time: each already keeps every core
busy, and two at once would double the linker's peak memory.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from lab.errors import LabError, StepFailed
from lab.offline import commands
from lab.offline.heartbeat import DEFAULT_INTERVAL, Heartbeat

SIDE_LANE_STOP_SECONDS = 60  # a stopped apt or debootstrap unmounts its chroot, then ends


@dataclass(frozen=True)
class Step:
    """One named unit of work. ``done`` says whether a previous run already produced it."""

    name: str
    done: Callable[[], bool]
    run: Callable[[], object]
    beside: bool = False  # may run on the side lane while the main lane goes on
    needs: tuple[str, ...] = ()  # side-lane steps that must be finished before this one


@dataclass
class StepResult:
    name: str
    status: str  # "built" or "cached"
    seconds: float


class SideLane:
    """The ``beside`` steps, in their order, on one thread; remembers what each one did."""

    def __init__(self, build: Callable[[int, Step], StepResult]) -> None:
        self._build = build
        self._todo: queue.SimpleQueue[tuple[int, Step] | None] = queue.SimpleQueue()
        self._finished: dict[str, threading.Event] = {}
        self.results: dict[int, StepResult] = {}
        self.error: BaseException | None = None
        self._cancelled = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, index: int, step: Step) -> None:
        self._finished[step.name] = threading.Event()
        self._todo.put((index, step))
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="build side lane")
            self._thread.start()

    def _work(self) -> None:
        while (item := self._todo.get()) is not None:
            index, step = item
            try:
                if self.error is None and not self._cancelled.is_set():
                    self.results[index] = self._build(index, step)
            except BaseException as exc:  # handed to the main lane, which raises it
                self.error = exc
            finally:
                self._finished[step.name].set()

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    def wait_for(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self._finished:
                self._finished[name].wait()
        self.raise_if_failed()

    def finish(self) -> None:
        """Wait for every step given to the lane; raise the first failure."""
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None
        self.raise_if_failed()

    def cancel(self) -> None:
        """The main lane failed or was interrupted: start nothing more, stop what runs."""
        self._cancelled.set()
        if self._thread is None:
            return
        self._todo.put(None)
        commands.terminate_running()
        self._thread.join(timeout=SIDE_LANE_STOP_SECONDS)
        self._thread = None


@dataclass
class Pipeline:
    """Runs steps in order; a step whose output exists is skipped, so a rerun resumes."""

    title: str
    steps: Sequence[Step]
    out: TextIO = field(default_factory=lambda: sys.stderr)
    results: list[StepResult] = field(default_factory=list)
    heartbeat_seconds: float = DEFAULT_INTERVAL
    lanes: bool = True  # False: ``beside`` steps run in turn too (the benchmark's baseline)
    _say_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _live: bool | None = field(default=None, repr=False)

    def _say(self, text: str) -> None:
        with self._say_lock:
            self.out.write(f"{text}\n")
            self.out.flush()

    def _prefix(self, index: int, step: Step) -> str:
        return f"[{self.title} {index}/{len(self.steps)}] {step.name}"

    def _build(self, index: int, step: Step) -> StepResult:
        prefix = self._prefix(index, step)
        self._say(f"{prefix}: building ...")
        t0 = time.monotonic()
        try:
            with Heartbeat(prefix, self.out, interval=self.heartbeat_seconds, live=self._live):
                step.run()
        except LabError:
            self._say(f"{prefix}: FAILED after {time.monotonic() - t0:.1f}s")
            raise
        except OSError as exc:
            self._say(f"{prefix}: FAILED after {time.monotonic() - t0:.1f}s")
            raise StepFailed(
                step.name, f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")
            ) from exc
        seconds = time.monotonic() - t0
        self._say(f"{prefix}: done in {seconds:.1f}s")
        return StepResult(step.name, "built", seconds)

    def _cached(self, index: int, step: Step) -> StepResult | None:
        t0 = time.monotonic()
        if not step.done():
            return None
        self._say(f"{self._prefix(index, step)}: cached")
        return StepResult(step.name, "cached", time.monotonic() - t0)

    def run(self) -> list[StepResult]:
        started = time.monotonic()
        commands.allow_running()
        by_index: dict[int, StepResult] = {}
        side = SideLane(self._build)
        try:
            for i, step in enumerate(self.steps, 1):
                if (cached := self._cached(i, step)) is not None:
                    by_index[i] = cached
                elif step.beside and self.lanes:
                    # Two heartbeats at once cannot share one live terminal line.
                    self._live = False
                    side.add(i, step)
                else:
                    side.wait_for(step.needs)
                    by_index[i] = self._build(i, step)
            side.finish()
        except BaseException:
            side.cancel()
            raise
        by_index.update(side.results)
        self.results.extend(by_index[i] for i in sorted(by_index))
        total = len(self.steps)
        self._say(f"[{self.title}] all {total} steps ready in {time.monotonic() - started:.1f}s")
        return self.results
