"""One scenario's run: the steps it takes, what it expected, what it saw, how long it took.

Scenarios read like the tutorial because this class speaks its verbs (make a pull secret,
build and create the pod, get it, describe it, expect what the kubelet does) and records each
step with its real output for the report. Only what ran is shown as a command (on the host,
with kubectl, or on the node); what the tutorial would have typed instead is a note, so a
reader never takes narration for output.

>>> run.secrets.docker_registry("registry-1", run.namespace, reg.spec.host, user, password)
>>> run.create_pod(run.pod("nginx-registry", image, container="nginx",
...                        pull_secrets=("registry-1",)))
>>> run.expect_running("nginx-registry")
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import requests
from kubernetes import client

from lab import manifest_yaml
from lab.catalog import Entry
from lab.errors import LabError
from lab.expect import EventCounts, SeenEvent, as_seen, event_counts, reasons_seen, view_of
from lab.http_record import request_text, response_text
from lab.kubectl import Kubectl
from lab.masking import mask
from lab.node import NodeRegistryConfig
from lab.pods import container_views, event_time, pod_manifest, secret_not_yet_synced
from lab.results import PodEvent, ScenarioResult
from lab.secrets import SecretMaker
from lab.signatures import Signature, signature
from lab.transcript import Transcript
from lab.waits import (
    failed_pulls_above,
    pod_running,
    pod_waiting,
    wait_event,
    wait_for_event,
    wait_for_pod,
)

DESCRIBE_TAIL = 12
DEFAULT_DIAGNOSIS = {"unauthorized": "no-credentials"}


def pinned(manifest: dict, node: str) -> dict:
    """The pod with ``spec.nodeName`` set to ``node`` ("" leaves it to the scheduler).

    nodeName, not a nodeSelector on kubernetes.io/hostname: the kubelet of that node takes the
    pod without the scheduler, so the control plane's NoSchedule taint needs no toleration, a
    pod never waits on the scheduler, and `lab.check` pins its probes the same way."""
    if node:
        manifest["spec"]["nodeName"] = node
    return manifest


@dataclass
class ScenarioRun:
    """A scenario in its own namespace on the lab's cluster; ``run_id`` labels what it makes."""

    entry: Entry
    namespace: str
    core: client.CoreV1Api
    kubectl_bin: Path
    kubeconfig: Path
    kubernetes_version: str
    run_id: str
    runtime_version: str = ""  # the node's, e.g. containerd://2.3.4
    # The node the scenario holds, its pods pinned there (nodeName); "" lets the scheduler
    # place them (a lab without workers: one node anyway).
    node: str = ""
    nodes_held: tuple[str, ...] = ()
    pod_nodes: dict[str, str] = field(default_factory=dict)
    transcript: Transcript = field(default_factory=Transcript)
    expected: list[str] = field(default_factory=list)
    observed: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    events: list[PodEvent] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    pull_errors: dict[tuple[str, str], str] = field(default_factory=dict)  # (pod, container)

    # ---- the scenario's tools ----------------------------------------------------------------
    @cached_property
    def kubectl_runner(self) -> Kubectl:
        """kubectl in the scenario's namespace, recorded into its transcript."""
        return Kubectl(self.kubectl_bin, self.kubeconfig, self.transcript, self.namespace)

    @cached_property
    def secrets(self) -> SecretMaker:
        """The scenario's pull-secret maker: the tutorial's four ways, each recorded here.

        Example: ``run.secrets.via_yaml("registry-2", run.namespace, config)``."""
        return SecretMaker(
            self.kubeconfig,
            self.kubectl_bin,
            self.core.api_client,
            self.transcript,
            namespace=self.namespace,
            core=self.core,
        )

    def pod(
        self,
        name: str,
        image: str,
        *,
        container: str | None = None,
        pull_secrets: tuple[str, ...] = (),
        pull_policy: str = "IfNotPresent",
        extra_containers: tuple[tuple[str, str], ...] = (),
        node: str | None = None,
    ) -> dict:
        """The tutorial's pod, labelled with this run (``lab.pods.pod_manifest``), pinned to
        ``node`` (default: the scenario's own node, if it has one).

        Example: ``run.pod("nginx-registry", image, container="nginx", pull_policy="Always")``."""
        return pinned(
            pod_manifest(
                name,
                image,
                run_id=self.run_id,
                container=container,
                pull_secrets=pull_secrets,
                pull_policy=pull_policy,
                extra_containers=extra_containers,
            ),
            self.node if node is None else node,
        )

    # ---- commands --------------------------------------------------------------------------
    def kubectl(
        self,
        *args: str,
        title: str | None = None,
        input: bytes | None = None,
        check: bool = True,
        namespace: str | None = None,
        input_name: str | None = None,
    ) -> str:
        """Run kubectl in the scenario's namespace (or ``namespace``) and record it as it ran.

        The kubeconfig and the scenario's own namespace are left out of the line shown; another
        namespace is shown as ``--namespace=``, stdin as ``< input_name``.

        Example: ``run.kubectl("get", "secret", "registry-1", title="kubectl get secret")``."""
        return self.kubectl_runner.run(
            *args,
            title=title,
            input=input,
            input_name=input_name,
            check=check,
            namespace=namespace,
        )

    def note(self, title: str, text: str = "") -> None:
        """Narration: nothing ran (e.g. what the tutorial would have typed)."""
        self.transcript.note(title, text)

    def file(self, title: str, path: str, content: str) -> None:
        """The content of a file (or stdin) the lab wrote, as written."""
        self.transcript.file(title, path, content)

    def http(self, title: str, response: requests.Response) -> None:
        """Record a request that was made with ``requests``, in HTTP form (credentials hidden)."""
        self.transcript.http(
            title,
            request_text(response.request),
            response_text(response),
            response.elapsed.total_seconds(),
        )

    def on_host(
        self,
        title: str,
        argv: list[str],
        input: bytes | None = None,
        input_name: str | None = None,
        check: bool = True,
    ) -> str:
        """Run a command on this host and record it with its output (stdout and stderr).

        Example: ``lab_scenario.on_host("encode", ["base64", "-w0"], config, "config.json")``."""
        t0 = time.monotonic()
        proc = subprocess.run(
            argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
        )
        out = proc.stdout.decode(errors="replace")
        shown = shlex.join([Path(argv[0]).name, *argv[1:]])
        if input is not None:
            shown += f" < {input_name or 'stdin'}"
        self.transcript.add(title, shown, out, time.monotonic() - t0)
        if check and proc.returncode != 0:
            raise LabError(f"{shown} failed (exit {proc.returncode}): {out.strip()[:300]}")
        return out

    def on_node(self, node: NodeRegistryConfig, title: str, script: str, check: bool = True) -> str:
        """Run ``sh -c script`` on the kind node and record the ``docker exec`` with its real
        output (stdout and stderr), also when it fails.

        Example: ``lab_scenario.on_node(lab_node, "no node credentials", "ls /x", check=False)``."""
        t0 = time.monotonic()
        status, out = node.changes.execute(script)
        self.transcript.add(
            title if status == 0 else f"{title} (exit {status})",
            node.changes.command_line(script),
            out,
            time.monotonic() - t0,
        )
        if check and status != 0:
            raise LabError(f"on the node: {script} failed (exit {status}): {out.strip()[:300]}")
        return out

    def create_pod(self, manifest: dict, filename: str | None = None) -> Any:
        """The manifest as a file, then `kubectl create -f - < x.yaml`, as it ran."""
        name = manifest["metadata"]["name"]
        filename = filename or f"{name}.yaml"
        text = manifest_yaml.dump(manifest, sort_keys=False)
        self.file(f"the pod manifest {filename}", filename, text)
        self.kubectl(
            "create",
            "-f",
            "-",
            title=f"create the pod {name}",
            input=text.encode(),
            input_name=filename,
        )
        return self.core.read_namespaced_pod(name, self.namespace)

    def run_doctor(self, pod_name: str) -> str:
        """Run the real `pull-lab doctor` on the pod and record what it printed."""
        script = Path(sys.executable).with_name("pull-lab")
        argv = [str(script)] if script.exists() else [sys.executable, "-m", "lab.cli"]
        argv += ["doctor", pod_name, "-n", self.namespace, f"--kubeconfig={self.kubeconfig}"]
        return self.on_host(f"pull-lab doctor {pod_name}", argv, check=False)

    def get_pod(self, name: str) -> str:
        """`kubectl get pod NAME`, recorded: the tutorial's way of looking."""
        return self.kubectl("get", "pod", name, title=f"kubectl get pod {name}")

    def describe_tail(self, name: str) -> str:
        """`kubectl describe pod`, recorded with the last lines of its output only."""
        args = ("describe", "pod", name)
        _, output, seconds = self.kubectl_runner.execute(*args)
        tail = "\n".join(output.rstrip().splitlines()[-DESCRIBE_TAIL:])
        self.transcript.add(
            f"kubectl describe pod {name} (its last {DESCRIBE_TAIL} lines shown)",
            self.kubectl_runner.shown(args),
            tail,
            seconds,
        )
        return tail

    # ---- expectations -----------------------------------------------------------------------
    def expect(self, text: str) -> None:
        """Say what the scenario expects, in words, before it checks it (for the report)."""
        self.expected.append(text)

    def saw(self, text: str) -> None:
        """Record what was observed (masked), for the report."""
        self.observed.append(mask(text))

    def differs(self, tutorial: str, today: str) -> None:
        """Record where today's Kubernetes behaves otherwise than the tutorial's text."""
        self.differences.append(
            mask(f"tutorial: {tutorial} | today ({self.kubernetes_version}): {today}")
        )

    def timed(self, label: str, seconds: float) -> None:
        """Record how long something took (e.g. a recovery), for the report."""
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
        pod, _ = wait_for_pod(
            self.core, self.namespace, pod_name, pod_waiting(reason, container), timeout
        )
        self.timed(f"{pod_name}: {reason}", time.monotonic() - t0)
        view = view_of(pod, container)
        assert sig.matches(view.message), (
            f"{view.name} waits with {view.reason} but its message is not "
            f"{sig.name!r}: {view.message}"
        )
        assert pod.status.phase == "Pending"
        self.saw(f"{view.name}: {view.reason}: {view.message}")
        if reason == "ErrImagePull":
            self.pull_errors[(pod_name, view.name)] = view.message
        self.get_pod(pod_name)
        self.expect_diagnosis(pod_name, diagnosis or DEFAULT_DIAGNOSIS.get(sig.name, sig.name))
        return pod

    def expect_diagnosis(self, pod_name: str, name: str) -> None:
        """Feed the failing pod to `pull-lab doctor`: its first finding must be ``name``."""
        from lab.doctor import diagnose_pod

        findings = diagnose_pod(self.core, self.namespace, pod_name)
        self.run_doctor(pod_name)
        assert findings, f"doctor found nothing wrong with {pod_name}"
        assert findings[0].name == name, (
            f"doctor's diagnosis is {findings[0].name!r}, expected {name!r}"
        )
        self.saw(f"doctor: {findings[0].name}: {findings[0].cause}")

    def expect_back_off(
        self, pod_name: str, container: str | None = None, timeout: float = 90.0
    ) -> Any:
        """After a failed pull the kubelet backs off: status ImagePullBackOff with the message
        `Back-off pulling image "<ref>": ErrImagePull: <the ErrImagePull message>`, and a
        BackOff event whose message is `Back-off pulling image "<ref>"`, nothing more."""
        self.expect(
            f"container {container or pod_name} in ImagePullBackOff with message "
            "Back-off pulling image <ref>: ErrImagePull: <the pull error>; "
            "event BackOff: Back-off pulling image <ref>"
        )
        t0 = time.monotonic()
        pod, _ = wait_for_pod(
            self.core, self.namespace, pod_name, pod_waiting("ImagePullBackOff", container), timeout
        )
        view = view_of(pod, container)
        image = next(c.image for c in pod.spec.containers if c.name == view.name)
        earlier = self.pull_errors.get((pod_name, view.name))
        assert earlier is not None, f"no ErrImagePull message recorded for {view.name} first"
        wanted = f'Back-off pulling image "{image}": ErrImagePull: {earlier}'
        assert view.message == wanted, (
            f"ImagePullBackOff message is not the documented shape:\n"
            f"  seen:     {view.message}\n  expected: {wanted}"
        )
        self.saw(f"{view.name}: {view.reason}: {view.message}")
        backoff = f'Back-off pulling image "{image}"'
        event = wait_event(self.core, self.namespace, pod, "BackOff", backoff, exact=True)
        self.saw(f"event {event.reason}: {event.message}")
        self.timed(f"{pod_name}: back-off", time.monotonic() - t0)
        self.get_pod(pod_name)
        return pod

    def expect_event(
        self,
        pod: Any,
        reason: str,
        message: str | None = None,
        timeout: float = 60.0,
        after: EventCounts | None = None,
        exact: bool = False,
    ) -> SeenEvent:
        """An event about the pod; ``exact``: the message is exactly ``message`` (literal);
        ``after``: it happened after that snapshot (``event_snapshot``)."""
        event = wait_event(
            self.core, self.namespace, pod, reason, message, timeout, after=after, exact=exact
        )
        self.saw(f"event {event.type} {event.reason}: {event.message}")
        return event

    def event_snapshot(self, pod: Any) -> EventCounts:
        """The pod's event counts now: recovery checks count only what happens after this."""
        counts = event_counts(self.core, self.namespace, pod)
        self.saw(
            "events before the fix: "
            + ", ".join(f"{r} x{n}" for r, n in sorted(counts.per_reason.items()))
        )
        return counts

    def expect_no_event(self, pod: Any, reason: str) -> None:
        """No event with ``reason`` exists for the pod (by UID), as far as the API keeps them."""
        self.expect(f"no {reason} event for pod {pod.metadata.name}")
        seen = reasons_seen(self.core, self.namespace, pod)
        assert reason not in seen, f"pod {pod.metadata.name} has {reason} events: {seen[reason]}"
        self.saw(f"no {reason} event for {pod.metadata.name} (events: {', '.join(sorted(seen))})")

    def expect_running(
        self, pod_name: str, timeout: float = 120.0, recovering: bool = False
    ) -> Any:
        """The pod runs within ``timeout`` (see ``lab.waits.PodRunning``): a pull failure ends
        the wait at once unless the pod is ``recovering`` (it is expected to fail first).

        Example: ``run.expect_running("nginx-registry", timeout=360, recovering=True)``."""
        self.expect(f"pod {pod_name} Running")
        t0 = time.monotonic()
        pod, _ = wait_for_pod(self.core, self.namespace, pod_name, pod_running(recovering), timeout)
        self.timed(f"{pod_name}: Running", time.monotonic() - t0)
        self.saw(f"pod {pod_name} Running ({', '.join(v.name for v in container_views(pod))})")
        if secret_not_yet_synced(self.core, self.namespace, pod):
            self.saw(
                "the kubelet could not read the pull secret at its first attempt "
                "(FailedToRetrieveImagePullSecret: its secret cache gives up after 1s); it retried"
            )
        self.get_pod(pod_name)
        return pod

    def pulled_fresh(self, pod: Any, image: str, after: EventCounts | None = None) -> SeenEvent:
        """Events Pulling and Pulled("Successfully pulled"), then Created and Started; with
        ``after`` (a snapshot taken before a fix) each of them must have happened since, and
        the counts of Pulling and Pulled must have grown."""
        since = " after the fix" if after else ""
        self.expect(
            f"events Pulling, Pulled (successfully pulled {image}), Created, Started{since}"
        )
        self.expect_event(pod, "Pulling", re.escape(f'Pulling image "{image}"'), after=after)
        pulled = self.expect_event(
            pod, "Pulled", re.escape(f'Successfully pulled image "{image}"'), after=after
        )
        self.expect_event(pod, "Created", after=after)
        self.expect_event(pod, "Started", after=after)
        if after is not None:
            now = event_counts(self.core, self.namespace, pod)
            for reason in ("Pulling", "Pulled", "Created", "Started"):
                assert now.reason(reason) > after.reason(reason), (
                    f"{reason} count did not grow after the fix: "
                    f"{after.reason(reason)} -> {now.reason(reason)}"
                )
            self.saw(
                "after the fix: "
                + ", ".join(
                    f"{r} {after.reason(r)} -> {now.reason(r)}"
                    for r in ("Pulling", "Pulled", "Created", "Started")
                )
            )
        return pulled

    # ---- results ------------------------------------------------------------------------------
    def expect_another_failure(
        self, pod: Any, before: int, sig: str, timeout: float = 60.0
    ) -> None:
        """A pull attempt after ``before`` failures fails again with ``sig`` (proves a retry)."""
        wanted = signature(sig)
        wait_for_event(self.core, self.namespace, pod, failed_pulls_above(before, wanted), timeout)
        self.saw(f"another failed pull ({wanted.name}) after {before} before it")

    def collect_events(self, pod_name: str) -> None:
        """Every event about the pod, for the report's timeline, and the node it is on."""
        try:
            pod: Any = self.core.read_namespaced_pod(pod_name, self.namespace)
        except client.ApiException:
            return
        self.pod_nodes[pod_name] = pod.spec.node_name or ""
        items: list[Any] = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.uid={pod.metadata.uid}"
        ).items
        for e in sorted(items, key=event_time):
            seen = as_seen(e)
            first = e.first_timestamp or e.event_time or e.metadata.creation_timestamp
            last = e.last_timestamp or first
            self.events.append(
                PodEvent(
                    pod=pod_name,
                    type=seen.type,
                    reason=seen.reason,
                    message=mask(seen.message),
                    count=seen.count,
                    source=seen.source,
                    first=first.isoformat() if first else None,
                    last=last.isoformat() if last else None,
                )
            )

    def result(self, outcome: str, error: str = "") -> ScenarioResult:
        """What the run recorded so far, frozen, with how it ended."""
        return ScenarioResult(
            id=self.entry.id,
            title=self.entry.title,
            tutorial=self.entry.tutorial,
            node_level=self.entry.node_level,
            outcome=outcome,
            kubernetes=self.kubernetes_version,
            runtime=self.runtime_version,
            seconds=round(time.monotonic() - self.started, 2),
            expected=tuple(self.expected),
            observed=tuple(self.observed),
            differences=tuple(self.differences),
            timings=tuple(self.timings.items()),
            events=tuple(self.events),
            transcript=tuple(
                replace(s, at=round(s.at, 2), seconds=round(s.seconds, 2))
                for s in self.transcript.steps
            ),
            error=error,
            nodes=self.nodes_held,
            pod_nodes=tuple(sorted(self.pod_nodes.items())),
        )
