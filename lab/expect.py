"""What the kubelet did, read back the way a scenario checks it: container status first,
events second.

Status is the primary oracle; events are best effort (the kubelet aggregates repeats into one
object with a ``count``, and may prefix a message with ``(combined from similar events): ``),
so event messages are matched tolerantly and counted per reason. Waiting for either is
``lab.waits``'s job; this module only reads and matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from lab.pods import ContainerView, container_views, describe_pod

EVENT_PREFIX = r"^(?:\(combined from similar events\): )?"


def matches(pattern: str | re.Pattern[str] | None, text: str) -> bool:
    """``pattern`` found anywhere in ``text`` (None matches everything)."""
    if pattern is None:
        return True
    return bool(re.search(pattern, text, re.S))


def view_of(pod: Any, container: str | None = None) -> ContainerView:
    views = container_views(pod)
    if container is not None:
        views = [v for v in views if v.name == container]
    assert views, f"no status for container {container or '(any)'} in {describe_pod(pod)}"
    return views[0]


@dataclass(frozen=True)
class SeenEvent:
    type: str
    reason: str
    message: str
    count: int
    source: str


def as_seen(event: Any) -> SeenEvent:
    source = (event.source.component if event.source else "") or (event.reporting_component or "")
    return SeenEvent(
        event.type or "", event.reason or "", event.message or "", event.count or 1, source
    )


@dataclass(frozen=True)
class EventCounts:
    """How often each of a pod's events had happened at one moment (the kubelet aggregates a
    repeated event into one object and raises its ``count``)."""

    per_event: dict[str, int]  # event object name -> count
    per_reason: dict[str, int]  # reason -> sum of counts

    def is_new(self, event: Any) -> bool:
        """The event happened (again) after this snapshot."""
        return (event.count or 1) > self.per_event.get(event.metadata.name, 0)

    def reason(self, reason: str) -> int:
        return self.per_reason.get(reason, 0)


def _pod_events(core: client.CoreV1Api, namespace: str, pod: Any, reason: str = "") -> list[Any]:
    selector = f"involvedObject.uid={pod.metadata.uid}" + (f",reason={reason}" if reason else "")
    items: list[Any] = core.list_namespaced_event(namespace, field_selector=selector).items
    return items


def event_counts(core: client.CoreV1Api, namespace: str, pod: Any) -> EventCounts:
    """Snapshot of the pod's events (by UID): taken before a fix, compared after it."""
    items = _pod_events(core, namespace, pod)
    per_reason: dict[str, int] = {}
    for e in items:
        per_reason[e.reason or ""] = per_reason.get(e.reason or "", 0) + (e.count or 1)
    return EventCounts({e.metadata.name: e.count or 1 for e in items}, per_reason)


def failed_count(core: client.CoreV1Api, namespace: str, pod: Any) -> int:
    """How many failed pulls the kubelet has reported for this pod so far."""
    items = _pod_events(core, namespace, pod, reason="Failed")
    return sum(e.count or 1 for e in items if is_failed_pull(e))


def is_failed_pull(event: Any) -> bool:
    """A Failed event about a pull (not the `Error: ErrImagePull` that follows it)."""
    return (event.message or "").startswith("Failed to pull image")


def event_pattern(message: str | re.Pattern[str] | None, exact: bool) -> str | None:
    """A search pattern (anywhere after an optional aggregation prefix), or with ``exact`` the
    literal message, whole and without prefix."""
    if message is None:
        return None
    text = message if isinstance(message, str) else message.pattern
    if exact:
        return "^" + re.escape(text) + r"\Z"
    return EVENT_PREFIX + ".*?" + text


def reasons_seen(core: client.CoreV1Api, namespace: str, pod: Any) -> dict[str, list[str]]:
    """Every event reason recorded for the pod (by UID), with its messages."""
    seen: dict[str, list[str]] = {}
    for e in _pod_events(core, namespace, pod):
        seen.setdefault(e.reason or "", []).append(e.message or "")
    return seen
