"""Event-driven waits: watch the API until a predicate holds, fail fast, or time out.

Every wait returns a timeline (what changed, when) so a report can show how the kubelet got
there, and so a failure says what was last seen instead of just "timeout".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes import watch
from kubernetes.client import ApiException

from lab.errors import LabError


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    entries: list[tuple[float, str]] = field(default_factory=list)

    def note(self, what: str) -> None:
        if not self.entries or self.entries[-1][1] != what:
            self.entries.append((time.monotonic() - self.started, what))

    def render(self) -> str:
        return "\n".join(f"+{t:6.1f}s {what}" for t, what in self.entries)


class WaitTimeout(LabError):
    def __init__(self, what: str, seconds: float, last: str, timeline: Timeline) -> None:
        super().__init__(f"{what}: not reached within {seconds:.0f}s; last seen: {last}")
        self.timeline = timeline


class WaitFailed(LabError):
    """The fail-fast predicate matched: waiting longer cannot help."""

    def __init__(self, what: str, reason: str, timeline: Timeline) -> None:
        super().__init__(f"{what}: {reason}")
        self.timeline = timeline


def events_after(
    list_func: Callable[..., Any], listing: Any, remaining: float, list_kwargs: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Watch events since ``listing``, for at most ``remaining`` seconds; a 410 (the
    resource version is too old) just ends them, and the caller lists again."""
    w = watch.Watch()
    try:
        yield from w.stream(
            list_func,
            resource_version=listing.metadata.resource_version,
            timeout_seconds=max(1, int(remaining)),
            _request_timeout=remaining + 5,
            **list_kwargs,
        )
    except ApiException as exc:
        if exc.status != 410:
            raise
    finally:
        w.stop()


def wait_for(
    list_func: Callable[..., Any],
    *,
    what: str,
    done: Callable[[Any], bool],
    describe: Callable[[Any], str],
    fail_fast: Callable[[Any], str | None] = lambda obj: None,
    timeout: float = 120.0,
    **list_kwargs: Any,
) -> tuple[Any, Timeline]:
    """Watch ``list_func`` (e.g. CoreV1Api.list_namespaced_pod) until ``done(obj)``.

    ``fail_fast(obj)`` returns a reason to stop early. The current state is read first, so a
    condition that already holds returns at once; then watch events drive the checks.
    """
    timeline = Timeline()
    deadline = time.monotonic() + timeout
    last = ["nothing yet"]

    def reached(obj: Any) -> bool:
        """Record what was seen; True when done, WaitFailed when waiting cannot help."""
        last[0] = describe(obj)
        timeline.note(last[0])
        if done(obj):
            return True
        reason = fail_fast(obj)
        if reason:
            raise WaitFailed(what, reason, timeline)
        return False

    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(what, timeout, last[0], timeline)
        listing = list_func(**list_kwargs)
        for obj in listing.items:
            if reached(obj):
                return obj, timeline
        for event in events_after(list_func, listing, remaining, list_kwargs):
            obj = event["object"]
            if event["type"] == "DELETED":
                last[0] = f"deleted: {describe(obj)}"
                timeline.note(last[0])
                continue
            if reached(obj):
                return obj, timeline
            if time.monotonic() >= deadline:
                break


def wait_gone(
    list_func: Callable[..., Any], *, what: str, timeout: float = 120.0, **list_kwargs: Any
) -> None:
    """Until the list (one object, by field selector) is empty: its DELETED event, or a list
    that no longer holds it."""
    deadline = time.monotonic() + timeout
    timeline = Timeline()
    while True:
        remaining = deadline - time.monotonic()
        listing = list_func(**list_kwargs)
        if not listing.items:
            return
        if remaining <= 0:
            raise WaitTimeout(what, timeout, "still there", timeline)
        for event in events_after(list_func, listing, remaining, list_kwargs):
            timeline.note(f"{event['type']} {event['object'].metadata.name}")
            if event["type"] == "DELETED":
                return
