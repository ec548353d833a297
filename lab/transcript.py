"""What a scenario did, step by step, in the tutorial's form: the command and its real output.

The report renders it; every line is masked on the way in, so nothing later can leak.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.masking import mask

# Set by a front end that shows steps as they happen (`pull-lab run`): called with each step.
PROGRESS: list[Callable[[TranscriptStep], None]] = []


@dataclass(frozen=True)
class TranscriptStep:
    title: str
    command: str
    output: str
    at: float  # seconds since the transcript started
    seconds: float


@dataclass
class Transcript:
    started: float = field(default_factory=time.monotonic)
    steps: list[TranscriptStep] = field(default_factory=list)

    def add(self, title: str, command: str = "", output: str = "", seconds: float = 0.0) -> None:
        step = TranscriptStep(
            title=title,
            command=mask(command),
            output=mask(output.rstrip()),
            at=time.monotonic() - self.started - seconds,
            seconds=seconds,
        )
        self.steps.append(step)
        for show in PROGRESS:
            show(step)

    def render_text(self) -> str:
        from lab.report import transcript_text

        return transcript_text([vars(step) for step in self.steps])
