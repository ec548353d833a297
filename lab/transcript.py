"""What a scenario did, step by step, in the tutorial's form: the command and its real output.

Four kinds of step, so a reader can tell what ran from what is narration:

- ``command``: a command the lab really ran, shown as it ran, with its real output;
- ``http``: a request the lab really made (with ``requests``), shown as the request line and
  headers it sent and the status and body it got back, never as a ``curl`` that did not run;
- ``file``: the content of a file (or stdin) the lab wrote, as it wrote it;
- ``note``: narration, including what the tutorial would have run; nothing here was run.

The report renders it; every line is masked on the way in, so nothing later can leak.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from lab.masking import mask

StepKind = Literal["command", "http", "file", "note"]

# Set by a front end that shows steps as they happen (`pull-lab run`): called with each step.
PROGRESS: list[Callable[[TranscriptStep], None]] = []


@dataclass(frozen=True)
class TranscriptStep:
    title: str
    command: str  # command: the command line; http: the request; file: the path; note: ""
    output: str  # command: its output; http: the response; file: the content; note: the text
    at: float  # seconds since the transcript started
    seconds: float
    kind: StepKind = "command"


@dataclass
class Transcript:
    started: float = field(default_factory=time.monotonic)
    steps: list[TranscriptStep] = field(default_factory=list)

    def _record(
        self, kind: StepKind, title: str, command: str, output: str, seconds: float
    ) -> None:
        step = TranscriptStep(
            title=title,
            command=mask(command),
            output=mask(output.rstrip()),
            at=time.monotonic() - self.started - seconds,
            seconds=seconds,
            kind=kind,
        )
        self.steps.append(step)
        for show in PROGRESS:
            show(step)

    def add(self, title: str, command: str = "", output: str = "", seconds: float = 0.0) -> None:
        """A command that ran, exactly as it ran, and its real output."""
        self._record("command", title, command, output, seconds)

    def http(self, title: str, request: str, response: str, seconds: float = 0.0) -> None:
        """A request that was made: ``request`` is its line and headers, ``response`` what came
        back (status line, then body)."""
        self._record("http", title, request, response, seconds)

    def file(self, title: str, path: str, content: str) -> None:
        """The content of a file (or of stdin) the lab wrote; nothing ran."""
        self._record("file", title, path, content, 0.0)

    def note(self, title: str, text: str = "") -> None:
        """Narration: nothing ran. What the tutorial would have run belongs here, said so."""
        self._record("note", title, "", text, 0.0)
