"""A scenario's result: one typed, frozen record that every report format reads.

A run records into a ``ScenarioRun``; when it ends, ``ScenarioRun.result(outcome)`` freezes
what it recorded into a ``ScenarioResult``. The report renders attributes of that object, and
``to_dict``/``from_dict`` are the only places that know report.json's keys, so a result can
travel as JSON (from an xdist worker to the controller) and come back the same.

>>> result = run.result("passed")
>>> ScenarioResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lab.catalog import Entry
from lab.transcript import TranscriptStep

OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class PodEvent:
    """One Kubernetes event about a scenario's pod, as the report's timeline shows it.

    ``first`` and ``last`` are ISO 8601 times (or None when the API gave none); ``message`` was
    masked when it was recorded."""

    pod: str
    type: str
    reason: str
    message: str
    count: int
    source: str
    first: str | None
    last: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> PodEvent:
        return PodEvent(
            pod=d["pod"],
            type=d["type"],
            reason=d["reason"],
            message=d["message"],
            count=int(d.get("count") or 1),
            source=d.get("source") or "",
            first=d.get("first"),
            last=d.get("last"),
        )


def step_to_dict(step: TranscriptStep) -> dict[str, Any]:
    """A step for report.json: what ran (or the note), its output, when, and of which kind."""
    entry = asdict(step)
    entry["at"] = round(step.at, 2)
    entry["seconds"] = round(step.seconds, 2)
    return entry


def step_from_dict(d: Mapping[str, Any]) -> TranscriptStep:
    """A step read back from report.json; a step without a kind is a command."""
    return TranscriptStep(
        title=d["title"],
        command=d.get("command") or "",
        output=d.get("output") or "",
        at=float(d.get("at") or 0.0),
        seconds=float(d.get("seconds") or 0.0),
        kind=d.get("kind") or "command",
    )


@dataclass(frozen=True)
class ScenarioResult:
    """What one scenario expected, saw and did, and how it ended.

    ``outcome`` is one of ``OUTCOMES``; ``error`` is the (masked) failure or skip text, empty
    when the scenario passed. ``timings`` pairs a label with seconds, in the order recorded."""

    id: str
    title: str
    tutorial: str
    node_level: bool
    outcome: str
    kubernetes: str
    seconds: float
    runtime: str = ""  # the node's container runtime, e.g. containerd://2.3.4
    expected: tuple[str, ...] = ()
    observed: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()
    events: tuple[PodEvent, ...] = ()
    transcript: tuple[TranscriptStep, ...] = ()
    error: str = ""
    nodes: tuple[str, ...] = ()  # the nodes it held (alone when node_level)
    pod_nodes: tuple[tuple[str, str], ...] = ()  # (pod, the node the API says it is on)

    @staticmethod
    def placeholder(entry: Entry, outcome: str = "failed", error: str = "") -> ScenarioResult:
        """A scenario that failed or was skipped before it recorded anything."""
        return ScenarioResult(
            id=entry.id,
            title=entry.title,
            tutorial=entry.tutorial,
            node_level=entry.node_level,
            outcome=outcome,
            kubernetes="",
            seconds=0.0,
            error=error,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with report.json's keys (``error`` only when there is one)."""
        d: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "tutorial": self.tutorial,
            "node_level": self.node_level,
            "outcome": self.outcome,
            "kubernetes": self.kubernetes,
            "runtime": self.runtime,
            "seconds": self.seconds,
            "expected": list(self.expected),
            "observed": list(self.observed),
            "differences": list(self.differences),
            "timings": dict(self.timings),
            "events": [e.to_dict() for e in self.events],
            "transcript": [step_to_dict(s) for s in self.transcript],
        }
        if self.error:
            d["error"] = self.error
        if self.nodes:
            d["nodes"] = list(self.nodes)
        if self.pod_nodes:
            d["pod_nodes"] = dict(self.pod_nodes)
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> ScenarioResult:
        """The inverse of ``to_dict``."""
        return ScenarioResult(
            id=d["id"],
            title=d["title"],
            tutorial=d["tutorial"],
            node_level=bool(d.get("node_level", False)),
            outcome=d["outcome"],
            kubernetes=d.get("kubernetes") or "",
            runtime=d.get("runtime") or "",
            seconds=float(d.get("seconds") or 0.0),
            expected=tuple(d.get("expected") or ()),
            observed=tuple(d.get("observed") or ()),
            differences=tuple(d.get("differences") or ()),
            timings=tuple((k, float(v)) for k, v in (d.get("timings") or {}).items()),
            events=tuple(PodEvent.from_dict(e) for e in d.get("events") or ()),
            transcript=tuple(step_from_dict(s) for s in d.get("transcript") or ()),
            error=d.get("error") or "",
            nodes=tuple(d.get("nodes") or ()),
            pod_nodes=tuple((d.get("pod_nodes") or {}).items()),
        )
