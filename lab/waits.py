"""Waits as named conditions: what a pod (or its events) should reach, and what proves that
waiting longer cannot help.

Each condition is a small frozen object with a name a reader understands, in the manner of
testcontainers' wait strategies; ``wait_for_pod`` and ``wait_for_event`` watch the API until one
holds (``lab.watch``), stop early when its fail-fast check says so, and otherwise time out
saying what they last saw.

>>> pod, _ = wait_for_pod(core, ns, "nginx-registry", pod_waiting("ErrImagePull"))
>>> wait_for_pod(core, ns, "nginx-registry", pod_running(recovering=True), timeout=360)
>>> wait_for_event(core, ns, pod, failed_pulls_above(3, signature("unauthorized")))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client

from lab.expect import (
    EventCounts,
    SeenEvent,
    as_seen,
    event_pattern,
    failed_count,
    is_failed_pull,
    matches,
)
from lab.pods import (
    RunningState,
    all_running,
    container_views,
    describe_pod,
    pull_failure,
    secret_not_yet_synced,
)
from lab.signatures import Signature
from lab.watch import Timeline, WaitTimeout, wait_for


@dataclass(frozen=True)
class Scope:
    """Where a condition looks when it needs more than the object at hand."""

    core: client.CoreV1Api
    namespace: str


class PodCondition(Protocol):
    @property
    def what(self) -> str: ...
    def done(self, pod: Any, scope: Scope) -> bool: ...
    def fail_fast(self, pod: Any, scope: Scope) -> str | None: ...


class EventCondition(Protocol):
    @property
    def reason_filter(self) -> str: ...  # only events of this reason are listed ("" for all)

    def what(self, pod_name: str) -> str: ...
    def done(self, event: Any, pod: Any, scope: Scope) -> bool: ...
    def describe(self, event: Any) -> str: ...


# ---- conditions on a pod ---------------------------------------------------------------------
@dataclass(frozen=True)
class PodWaiting:
    """A container waits with ``reason`` (and a message matching ``message``). A container that
    runs instead ends the wait: the pull that was meant to fail succeeded."""

    reason: str
    container: str | None = None
    message: str | re.Pattern[str] | None = None

    @property
    def what(self) -> str:
        return f"waiting with {self.reason}"

    def _mine(self, pod: Any) -> list[Any]:
        return [v for v in container_views(pod) if self.container in (None, v.name)]

    def done(self, pod: Any, scope: Scope) -> bool:
        return any(
            v.state == "waiting" and v.reason == self.reason and matches(self.message, v.message)
            for v in self._mine(pod)
        )

    def fail_fast(self, pod: Any, scope: Scope) -> str | None:
        for v in self._mine(pod):
            if v.state == "running":
                return f"container {v.name} is Running: the pull succeeded"
        return None


@dataclass(frozen=True)
class PodRunning:
    """Every container runs. A pull failure ends the wait, unless the pod is ``recovering`` (it
    is expected to pass through failures) or, ``tolerating_late_secret_sync``, the failure came
    right after the kubelet could not yet read an existing pull secret: its secret cache gives
    up after a second (slow API server, a kubelet just restarted) and the next attempt, after
    back-off, has the secret."""

    recovering: bool = False
    tolerating_late_secret_sync: bool = True

    @property
    def what(self) -> str:
        return "Running"

    def done(self, pod: Any, scope: Scope) -> bool:
        return all_running(pod)

    def fail_fast(self, pod: Any, scope: Scope) -> str | None:
        if self.recovering:
            return None
        reason = pull_failure(pod)
        if (
            reason
            and self.tolerating_late_secret_sync
            and secret_not_yet_synced(scope.core, scope.namespace, pod)
        ):
            return None
        return reason


@dataclass(frozen=True)
class PodLeftAlone:
    """Never done: a running pod that must stay as it is. It fails at once if the pod stops
    running, is deleted, or its uid, restart count or container ID changes."""

    baseline: RunningState
    seconds: float

    @property
    def what(self) -> str:
        return f"left alone for {self.seconds:.0f}s"

    def done(self, pod: Any, scope: Scope) -> bool:
        return False

    def fail_fast(self, pod: Any, scope: Scope) -> str | None:
        if pod.metadata.deletion_timestamp is not None:
            return "the pod is being deleted"
        if not all_running(pod):
            return f"it stopped running: {describe_pod(pod)}"
        now = RunningState.of(pod)
        return None if now == self.baseline else f"it changed: {self.baseline} -> {now}"


def pod_waiting(
    reason: str, container: str | None = None, message: str | re.Pattern[str] | None = None
) -> PodWaiting:
    return PodWaiting(reason, container, message)


def pod_running(recovering: bool = False, tolerating_late_secret_sync: bool = True) -> PodRunning:
    return PodRunning(recovering, tolerating_late_secret_sync)


def pod_left_alone(pod: Any, seconds: float) -> PodLeftAlone:
    return PodLeftAlone(RunningState.of(pod), seconds)


# ---- conditions on a pod's events -----------------------------------------------------------
@dataclass(frozen=True)
class EventSeen:
    """An event about the pod with ``reason`` and a message matching ``message`` (with
    ``exact``: exactly it); with ``after``, only one that happened after that snapshot."""

    reason: str
    message: str | re.Pattern[str] | None = None
    exact: bool = False
    after: EventCounts | None = None
    reason_filter: str = ""

    def what(self, pod_name: str) -> str:
        return f"event {self.reason} for pod {pod_name}" + (
            " after the snapshot" if self.after else ""
        )

    def done(self, event: Any, pod: Any, scope: Scope) -> bool:
        return (
            event.reason == self.reason
            and matches(event_pattern(self.message, self.exact), event.message or "")
            and (self.after is None or self.after.is_new(event))
        )

    def describe(self, event: Any) -> str:
        return f"event {event.reason}: {(event.message or '')[:160]}"


@dataclass(frozen=True)
class FailedPullsAbove:
    """The kubelet has reported more than ``count`` failed pulls, the newest of ``signature``:
    proof that it tried again."""

    count: int
    signature: Signature
    reason_filter: str = "Failed"

    def what(self, pod_name: str) -> str:
        return f"another failed pull of pod {pod_name}"

    def done(self, event: Any, pod: Any, scope: Scope) -> bool:
        return (
            is_failed_pull(event)
            and failed_count(scope.core, scope.namespace, pod) > self.count
            and self.signature.matches(event.message or "")
        )

    def describe(self, event: Any) -> str:
        return f"event {event.reason} x{event.count}: {(event.message or '')[:120]}"


def event_seen(
    reason: str,
    message: str | re.Pattern[str] | None = None,
    exact: bool = False,
    after: EventCounts | None = None,
) -> EventSeen:
    return EventSeen(reason, message, exact, after)


def failed_pulls_above(count: int, signature: Signature) -> FailedPullsAbove:
    return FailedPullsAbove(count, signature)


# ---- waiting --------------------------------------------------------------------------------
def wait_for_pod(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    condition: PodCondition,
    timeout: float = 120.0,
) -> tuple[Any, Timeline]:
    """Until the pod meets ``condition``; ``WaitFailed`` when its fail-fast check matches,
    ``WaitTimeout`` (saying what was last seen) after ``timeout`` seconds."""
    scope = Scope(core, namespace)
    return wait_for(
        core.list_namespaced_pod,
        what=f"pod {namespace}/{name} {condition.what}",
        done=lambda pod: condition.done(pod, scope),
        describe=describe_pod,
        fail_fast=lambda pod: condition.fail_fast(pod, scope),
        timeout=timeout,
        namespace=namespace,
        field_selector=f"metadata.name={name}",
    )


def wait_for_event(
    core: client.CoreV1Api,
    namespace: str,
    pod: Any,
    condition: EventCondition,
    timeout: float = 60.0,
) -> tuple[Any, Timeline]:
    """Until an event about this pod (by UID) meets ``condition``."""
    scope = Scope(core, namespace)
    selector = f"involvedObject.uid={pod.metadata.uid}"
    if condition.reason_filter:
        selector += f",reason={condition.reason_filter}"
    return wait_for(
        core.list_namespaced_event,
        what=condition.what(pod.metadata.name),
        done=lambda event: condition.done(event, pod, scope),
        describe=condition.describe,
        timeout=timeout,
        namespace=namespace,
        field_selector=selector,
    )


# ---- the waits every caller uses, by name ----------------------------------------------------
def wait_waiting(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    reason: str,
    container: str | None = None,
    message: str | re.Pattern[str] | None = None,
    timeout: float = 90.0,
) -> tuple[Any, Timeline]:
    """Until a container waits with ``reason``; fails fast when it runs instead."""
    return wait_for_pod(core, namespace, name, pod_waiting(reason, container, message), timeout)


def wait_pod_running(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    timeout: float = 120.0,
    recovering: bool = False,
) -> tuple[Any, Timeline]:
    """Running, or fail at the first pull failure with its message (see ``PodRunning``)."""
    return wait_for_pod(core, namespace, name, pod_running(recovering), timeout)


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
    """Until an event about this pod has ``reason`` and a matching message (see ``EventSeen``)."""
    event, _ = wait_for_event(
        core, namespace, pod, event_seen(reason, message, exact, after), timeout
    )
    return as_seen(event)


def hold_running(core: client.CoreV1Api, namespace: str, pod: Any, seconds: float) -> int:
    """Watch a running pod for ``seconds`` (see ``PodLeftAlone``); returns how many updates
    were seen."""
    condition = pod_left_alone(pod, seconds)
    updates = [0]

    class Counted:
        what = condition.what

        def done(self, current: Any, scope: Scope) -> bool:
            return condition.done(current, scope)

        def fail_fast(self, current: Any, scope: Scope) -> str | None:
            updates[0] += 1
            return condition.fail_fast(current, scope)

    try:
        wait_for_pod(core, namespace, pod.metadata.name, Counted(), timeout=seconds)
    except WaitTimeout:
        return updates[0]
    raise AssertionError("unreachable: the wait has no done state")
