"""A resumable pipeline of named steps, with a progress line and a timing for each.

A step that builds shows life while it runs: a heartbeat line every 15 s saying what it is doing
and for how long (lab/offline/heartbeat.py), so a six-minute Go build is not one silent line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from lab.errors import LabError, StepFailed
from lab.offline.heartbeat import DEFAULT_INTERVAL, Heartbeat


@dataclass(frozen=True)
class Step:
    """One named unit of work. ``done`` says whether a previous run already produced it."""

    name: str
    done: Callable[[], bool]
    run: Callable[[], object]


@dataclass
class StepResult:
    name: str
    status: str  # "built" or "cached"
    seconds: float


@dataclass
class Pipeline:
    """Runs steps in order; a step whose output exists is skipped, so a rerun resumes."""

    title: str
    steps: Sequence[Step]
    out: TextIO = field(default_factory=lambda: sys.stderr)
    results: list[StepResult] = field(default_factory=list)
    heartbeat_seconds: float = DEFAULT_INTERVAL

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def run(self) -> list[StepResult]:
        total = len(self.steps)
        started = time.monotonic()
        for i, step in enumerate(self.steps, 1):
            prefix = f"[{self.title} {i}/{total}] {step.name}"
            t0 = time.monotonic()
            if step.done():
                self.results.append(StepResult(step.name, "cached", time.monotonic() - t0))
                self._say(f"{prefix}: cached")
                continue
            self._say(f"{prefix}: building ...")
            try:
                with Heartbeat(prefix, self.out, interval=self.heartbeat_seconds):
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
            self.results.append(StepResult(step.name, "built", seconds))
            self._say(f"{prefix}: done in {seconds:.1f}s")
        self._say(f"[{self.title}] all {total} steps ready in {time.monotonic() - started:.1f}s")
        return self.results
