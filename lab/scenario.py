"""One scenario's run: the steps it takes, what it expected, what it saw, how long it took.

Scenarios read like the tutorial because this class speaks its verbs (create the pod, get the
pod, describe it) and records each step with its real output for the report.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from lab.catalog import Entry
from lab.errors import LabError
from lab.expect import SeenEvent, as_seen, view_of, wait_event, wait_waiting
from lab.masking import mask
from lab.pods import container_views, event_time, secret_not_yet_synced, wait_pod_running
from lab.signatures import Signature, signature
from lab.transcript import Transcript

DESCRIBE_TAIL = 12
DEFAULT_DIAGNOSIS = {"unauthorized": "no-credentials"}


@dataclass
class ScenarioRun:
    entry: Entry
    namespace: str
    core: client.CoreV1Api
    kubectl_bin: Path
    kubeconfig: Path
    kubernetes_version: str
    transcript: Transcript = field(default_factory=Transcript)
    expected: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    # ---- commands --------------------------------------------------------------------------
    def kubectl(
        self, *args: str, title: str | None = None, input: bytes | None = None, check: bool = True
    ) -> str:
        cmd = [
            str(self.kubectl_bin),
            f"--kubeconfig={self.kubeconfig}",
            f"--namespace={self.namespace}",
            *args,
        ]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, input=input, capture_output=True, check=False)
        out = (proc.stdout + proc.stderr).decode(errors="replace")
        self.transcript.add(
            title or f"kubectl {args[0]}", "kubectl " + " ".join(args), out, time.monotonic() - t0
        )
        if check and proc.returncode != 0:
            raise LabError(f"kubectl {' '.join(args[:3])} failed: {out.strip()[:300]}")
        return out

    def note(self, title: str, command: str = "", output: str = "") -> None:
        self.transcript.add(title, command, output)

    def create_pod(self, manifest: dict, filename: str | None = None) -> Any:
        """`cat x.yaml` then `kubectl create -f x.yaml`, as the tutorial shows it."""
        name = manifest["metadata"]["name"]
        filename = filename or f"{name}.yaml"
        text = yaml.safe_dump(manifest, sort_keys=False)
        self.note(f"the pod manifest {filename}", f"cat {filename}", text)
        self.kubectl(
            "create", "-f", "-", title=f"kubectl create -f {filename}", input=text.encode()
        )
        return self.core.read_namespaced_pod(name, self.namespace)

    def get_pod(self, name: str) -> str:
        return self.kubectl("get", "pod", name, title=f"kubectl get pod {name}")

    def describe_tail(self, name: str) -> str:
        out = subprocess.run(
            [
                str(self.kubectl_bin),
                f"--kubeconfig={self.kubeconfig}",
                f"--namespace={self.namespace}",
                "describe",
                "pod",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        tail = "\n".join(out.rstrip().splitlines()[-DESCRIBE_TAIL:])
        self.note(
            f"kubectl describe pod {name} | tail -{DESCRIBE_TAIL}",
            f"kubectl describe pod {name} | tail -{DESCRIBE_TAIL}",
            tail,
        )
        return tail

    # ---- expectations -----------------------------------------------------------------------
    def expect(self, text: str) -> None:
        self.expected.append(text)

    def saw(self, text: str) -> None:
        self.observed.append(mask(text))

    def differs(self, tutorial: str, today: str) -> None:
        """Record where today's Kubernetes behaves otherwise than the tutorial's text."""
        self.differences.append(
            mask(f"tutorial: {tutorial} | today ({self.kubernetes_version}): {today}")
        )

    def timed(self, label: str, seconds: float) -> None:
        self.timings[label] = round(seconds, 2)

    def expect_pull_failure(
        self,
        pod_name: str,
        sig: str | Signature,
        reason: str = "ErrImagePull",
        container: str | None = None,
        timeout: float = 90.0,
        diagnosis: str | None = None,
    ) -> Any:
        """The container waits with ``reason`` and a message of the given signature, and
        `pull-lab doctor` names ``diagnosis`` first (default: the signature's own name; a 401
        without any pull secret is "no-credentials")."""
        sig = signature(sig) if isinstance(sig, str) else sig
        self.expect(f"container {container or pod_name} waits with {reason}: {sig.cause}")
        t0 = time.monotonic()
        pod, _ = wait_waiting(
            self.core, self.namespace, pod_name, reason, container, timeout=timeout
        )
        self.timed(f"{pod_name}: {reason}", time.monotonic() - t0)
        view = view_of(pod, container)
        self.saw(f"{view.name}: {view.reason}: {view.message}")
        assert sig.matches(view.message), (
            f"{view.name} waits with {view.reason} but its message is not "
            f"{sig.name!r}: {view.message}"
        )
        assert pod.status.phase == "Pending"
        self.get_pod(pod_name)
        self.expect_diagnosis(pod_name, diagnosis or DEFAULT_DIAGNOSIS.get(sig.name, sig.name))
        return pod

    def expect_diagnosis(self, pod_name: str, name: str) -> None:
        """Feed the failing pod to `pull-lab doctor`: its first finding must be ``name``."""
        from lab.doctor import diagnose_pod, render

        findings = diagnose_pod(self.core, self.namespace, pod_name)
        text = render(pod_name, self.namespace, findings)
        self.note(
            f"pull-lab doctor {pod_name}", f"pull-lab doctor {pod_name} -n {self.namespace}", text
        )
        assert findings, f"doctor found nothing wrong with {pod_name}"
        assert findings[0].name == name, (
            f"doctor's diagnosis is {findings[0].name!r}, expected {name!r}"
        )
        self.saw(f"doctor: {findings[0].name}: {findings[0].cause}")

    def expect_back_off(
        self, pod_name: str, container: str | None = None, timeout: float = 90.0
    ) -> Any:
        """After a failed pull the kubelet backs off: status ImagePullBackOff, event BackOff."""
        self.expect(f"container {container or pod_name} in ImagePullBackOff, event BackOff")
        t0 = time.monotonic()
        pod, _ = wait_waiting(
            self.core, self.namespace, pod_name, "ImagePullBackOff", container, timeout=timeout
        )
        view = view_of(pod, container)
        self.saw(f"{view.name}: {view.reason}: {view.message}")
        event = wait_event(self.core, self.namespace, pod, "BackOff", r"Back-off pulling image")
        self.saw(f"event {event.reason}: {event.message}")
        self.timed(f"{pod_name}: back-off", time.monotonic() - t0)
        self.get_pod(pod_name)
        return pod

    def expect_event(
        self, pod: Any, reason: str, message: str | None = None, timeout: float = 60.0
    ) -> SeenEvent:
        event = wait_event(self.core, self.namespace, pod, reason, message, timeout)
        self.saw(f"event {event.type} {event.reason}: {event.message}")
        return event

    def expect_running(
        self, pod_name: str, timeout: float = 120.0, recovering: bool = False
    ) -> Any:
        self.expect(f"pod {pod_name} Running")
        t0 = time.monotonic()
        pod, _ = wait_pod_running(
            self.core, self.namespace, pod_name, timeout=timeout, recovering=recovering
        )
        self.timed(f"{pod_name}: Running", time.monotonic() - t0)
        self.saw(f"pod {pod_name} Running ({', '.join(v.name for v in container_views(pod))})")
        if secret_not_yet_synced(self.core, self.namespace, pod):
            self.saw(
                "the kubelet could not read the pull secret at its first attempt "
                "(FailedToRetrieveImagePullSecret: its secret cache gives up after 1s); it retried"
            )
        self.get_pod(pod_name)
        return pod

    def pulled_fresh(self, pod: Any, image: str) -> SeenEvent:
        """Events Pulling and Pulled("Successfully pulled"), then Created and Started."""
        self.expect(f"events Pulling, Pulled (successfully pulled {image}), Created, Started")
        self.expect_event(pod, "Pulling", re.escape(f'Pulling image "{image}"'))
        pulled = self.expect_event(pod, "Pulled", re.escape(f'Successfully pulled image "{image}"'))
        self.expect_event(pod, "Created")
        self.expect_event(pod, "Started")
        return pulled

    # ---- results ------------------------------------------------------------------------------
    def expect_another_failure(
        self, pod: Any, before: int, sig: str, timeout: float = 60.0
    ) -> None:
        """A pull attempt after ``before`` failures fails again with ``sig`` (proves a retry)."""
        from lab.watch import wait_for

        wanted = signature(sig)
        wait_for(
            self.core.list_namespaced_event,
            what=f"another failed pull of pod {pod.metadata.name}",
            done=lambda e: (
                (e.message or "").startswith("Failed to pull image")
                and failed_count(self.core, self.namespace, pod) > before
                and wanted.matches(e.message or "")
            ),
            describe=lambda e: f"event {e.reason} x{e.count}: {(e.message or '')[:120]}",
            timeout=timeout,
            namespace=self.namespace,
            field_selector=f"involvedObject.uid={pod.metadata.uid},reason=Failed",
        )
        self.saw(f"another failed pull ({wanted.name}) after {before} before it")

    def collect_events(self, pod_name: str) -> None:
        """Every event about the pod, for the report's timeline."""
        try:
            pod: Any = self.core.read_namespaced_pod(pod_name, self.namespace)
        except client.ApiException:
            return
        items: list[Any] = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.uid={pod.metadata.uid}"
        ).items
        for e in sorted(items, key=event_time):
            seen = as_seen(e)
            first = e.first_timestamp or e.event_time or e.metadata.creation_timestamp
            last = e.last_timestamp or first
            self.events.append(
                {
                    "pod": pod_name,
                    "type": seen.type,
                    "reason": seen.reason,
                    "message": mask(seen.message),
                    "count": seen.count,
                    "source": seen.source,
                    "first": first.isoformat() if first else None,
                    "last": last.isoformat() if last else None,
                }
            )

    def result(self, outcome: str) -> dict:
        return {
            "id": self.entry.id,
            "title": self.entry.title,
            "tutorial": self.entry.tutorial,
            "node_level": self.entry.node_level,
            "outcome": outcome,
            "kubernetes": self.kubernetes_version,
            "seconds": round(time.monotonic() - self.started, 2),
            "expected": self.expected,
            "observed": self.observed,
            "differences": self.differences,
            "timings": self.timings,
            "events": self.events,
            "transcript": [
                {"title": s.title, "command": s.command, "output": s.output, "at": round(s.at, 2)}
                for s in self.transcript.steps
            ],
        }


def failed_count(core: client.CoreV1Api, namespace: str, pod: Any) -> int:
    """How many failed pulls the kubelet has reported for this pod so far."""
    items: list[Any] = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.uid={pod.metadata.uid},reason=Failed"
    ).items
    return sum(e.count or 1 for e in items if (e.message or "").startswith("Failed to pull image"))
