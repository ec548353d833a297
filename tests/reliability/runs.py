"""Lab runs as child processes, several at once: a few in the background for their whole
length, the rest from a queue, a fixed number at a time.

One thread watches them all, so a Ctrl-C (or a failure) in the test stops every child at
once, not after the slowest of them. A child that outlives its timeout is stopped and counted
as failed with TIMED_OUT; the others go on.

>>> outcomes = run_at_once([serial], queue=alone, at_once=2)
>>> outcomes["serial"].code
0
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

TIMED_OUT = -999
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 60  # a lab run cleans up on SIGTERM; give it that long


@dataclass(frozen=True)
class Run:
    """One run of the lab: its command, environment, timeout, where its output and report go."""

    label: str
    args: tuple[str, ...]
    report_dir: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 900


@dataclass(frozen=True)
class Outcome:
    """How one run ended: its exit code (TIMED_OUT if stopped), start time and seconds."""

    code: int
    started: float
    seconds: float

    @property
    def ended(self) -> float:
        return self.started + self.seconds


@dataclass
class Started:
    run: Run
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    started: float
    queued: bool

    def poll(self, now: float) -> Outcome | None:
        """Its outcome once it has ended, or once it outlived its timeout (then stopped)."""
        code = self.proc.poll()
        if code is None and now - self.started > self.run.timeout:
            self.stop()
            code = TIMED_OUT
        if code is None:
            return None
        self.log.close()
        return Outcome(code, self.started, time.monotonic() - self.started)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start(run: Run, cwd: Path, queued: bool) -> Started:
    """Start it with stdout and stderr going to its log."""
    run.log.parent.mkdir(parents=True, exist_ok=True)
    log = run.log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, *run.args],
        cwd=cwd,
        env={**os.environ, **run.env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return Started(run, proc, log, time.monotonic(), queued)


def run_at_once(
    background: Sequence[Run], queue: Sequence[Run], at_once: int, cwd: Path
) -> dict[str, Outcome]:
    """Every run in ``background`` at once, and meanwhile those of ``queue`` in order,
    ``at_once`` at a time; the outcome of each, by label."""
    waiting = deque(queue)
    running = [start(run, cwd, queued=False) for run in background]
    outcomes: dict[str, Outcome] = {}
    try:
        while running or waiting:
            while waiting and sum(s.queued for s in running) < at_once:
                running.append(start(waiting.popleft(), cwd, queued=True))
            now = time.monotonic()
            for started in list(running):
                outcome = started.poll(now)
                if outcome is not None:
                    outcomes[started.run.label] = outcome
                    running.remove(started)
            time.sleep(POLL_SECONDS)
    finally:
        for started in running:
            started.stop()
    return outcomes


def wall_seconds(outcomes: Sequence[Outcome]) -> int:
    """Wall time of a group of runs, from the first start to the last end."""
    return round(max(o.ended for o in outcomes) - min(o.started for o in outcomes))
