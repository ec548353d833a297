"""Assertions on what the kubelet did: container status first, events second.

Status is the primary oracle (events are best effort); both are waited for through the watch
API, and a mismatch says what was expected, what was seen, and the timeline that led there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from lab.pods import ContainerView, container_views, describe_pod
from lab.watch import Timeline, wait_for

EVENT_PREFIX = r"^(?:\(combined from similar events\): )?"


def _matches(pattern: str | re.Pattern[str] | None, text: str) -> bool:
    if pattern is None:
        return True
    return bool(re.search(pattern, text, re.S))


def wait_waiting(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    reason: str,
    container: str | None = None,
    message: str | re.Pattern[str] | None = None,
    timeout: float = 90.0,
) -> tuple[Any, Timeline]:
    """Until a container waits with ``reason`` (and a message matching ``message``).

    Fails fast when the container runs instead: a pull that was meant to fail succeeded.
    """

    def hit(pod: Any) -> bool:
        return any(
            v.state == "waiting" and v.reason == reason and _matches(message, v.message)
            for v in container_views(pod)
            if container is None or v.name == container
        )

    def ran(pod: Any) -> str | None:
        for v in container_views(pod):
            if (container is None or v.name == container) and v.state == "running":
                return f"container {v.name} is Running: the pull succeeded"
        return None

    return wait_for(
        core.list_namespaced_pod,
        what=f"pod {namespace}/{name} waiting with {reason}",
        done=hit,
        describe=describe_pod,
        fail_fast=ran,
        timeout=timeout,
        namespace=namespace,
        field_selector=f"metadata.name={name}",
    )


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


def event_counts(core: client.CoreV1Api, namespace: str, pod: Any) -> EventCounts:
    """Snapshot of the pod's events (by UID): taken before a fix, compared after it."""
    items: list[Any] = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.uid={pod.metadata.uid}"
    ).items
    per_reason: dict[str, int] = {}
    for e in items:
        per_reason[e.reason or ""] = per_reason.get(e.reason or "", 0) + (e.count or 1)
    return EventCounts({e.metadata.name: e.count or 1 for e in items}, per_reason)


def event_pattern(message: str | re.Pattern[str] | None, exact: bool) -> str | None:
    """A search pattern (anywhere after an optional aggregation prefix), or with ``exact`` the
    literal message, whole and without prefix."""
    if message is None:
        return None
    text = message if isinstance(message, str) else message.pattern
    if exact:
        return "^" + re.escape(text) + r"\Z"
    return EVENT_PREFIX + ".*?" + text


def wait_event(
    core: client.CoreV1Api,
    namespace: str,
    pod: Any,
    reason: str,
    message: str | re.Pattern[str] | None = None,
    timeout: float = 60.0,
    after: EventCounts | None = None,
    exact: bool = False,
) -> SeenEvent:
    """Until an event about this pod (by UID) has ``reason`` and a matching message; with
    ``after``, only an event that happened after that snapshot counts."""
    pattern = event_pattern(message, exact)
    event, _ = wait_for(
        core.list_namespaced_event,
        what=f"event {reason} for pod {pod.metadata.name}"
        + (" after the snapshot" if after else ""),
        done=lambda e: (
            e.reason == reason
            and _matches(pattern, e.message or "")
            and (after is None or after.is_new(e))
        ),
        describe=lambda e: f"event {e.reason}: {(e.message or '')[:160]}",
        timeout=timeout,
        namespace=namespace,
        field_selector=f"involvedObject.uid={pod.metadata.uid}",
    )
    return as_seen(event)


def reasons_seen(core: client.CoreV1Api, namespace: str, pod: Any) -> dict[str, list[str]]:
    """Every event reason recorded for the pod (by UID), with its messages."""
    items: list[Any] = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.uid={pod.metadata.uid}"
    ).items
    seen: dict[str, list[str]] = {}
    for e in items:
        seen.setdefault(e.reason or "", []).append(e.message or "")
    return seen
