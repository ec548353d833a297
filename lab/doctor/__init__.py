"""`pull-lab doctor`: why does this pod not pull its image, and what fixes it.

It reads what anyone can read on a real cluster (the pod's status, its `Failed` events, the pull
secrets it names, its ServiceAccount, its node) into an ``Evidence`` and runs a table of small
rules over it (``lab.doctor.rules``), ranked in the order a pull proceeds. ``--probe`` adds what
this machine sees of the registry (``lab.doctor.probe``), shown apart from the kubelet's word.

>>> findings = diagnose_pod(core, "default", "nginx-registry")
>>> print(render("nginx-registry", "default", findings))
>>> print(examine_namespace(core, "default").text())
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from kubernetes import client

from lab.doctor.capture import capture
from lab.doctor.evidence import Evidence
from lab.doctor.keyring import image_host, key_host
from lab.doctor.output import Diagnosis, NamespaceDiagnosis, render
from lab.doctor.probe import probe_failing
from lab.doctor.rules import Finding, Stage, diagnose
from lab.errors import LabError

__all__ = [
    "Diagnosis",
    "Evidence",
    "Finding",
    "NamespaceDiagnosis",
    "Stage",
    "diagnose",
    "diagnose_pod",
    "examine",
    "examine_namespace",
    "image_host",
    "key_host",
    "probed",
    "render",
]


def examine(core: client.CoreV1Api, namespace: str, name: str) -> Diagnosis:
    """Read the pod from the cluster and diagnose it."""
    evidence = Evidence.from_capture(capture(core, namespace, name))
    return Diagnosis(evidence, diagnose(evidence))


def probed(diagnosis: Diagnosis, ca_file: Path | None = None) -> Diagnosis:
    """The same diagnosis with the probe's evidence of each failing image's registry."""
    return replace(diagnosis, probes=probe_failing(diagnosis.evidence, ca_file))


def examine_namespace(core: client.CoreV1Api, namespace: str) -> NamespaceDiagnosis:
    """Every pod of the namespace whose containers wait on a pull, each read and diagnosed."""
    pods: list[Any] = core.list_namespaced_pod(namespace).items
    failed = _failed_events_by_pod(core, namespace)
    diagnoses = []
    for pod in pods:
        quick = Evidence.from_capture(
            {
                "pod": core.api_client.sanitize_for_serialization(pod),
                "events": failed.get(pod.metadata.uid, []),
            }
        )
        if not quick.failing:
            continue  # its status and its Failed events say no container waits on a pull
        try:
            diagnoses.append(examine(core, namespace, pod.metadata.name))
        except LabError:
            continue  # gone (or hidden) since the list: nothing to say about it
    return NamespaceDiagnosis(namespace, len(pods), diagnoses)


def _failed_events_by_pod(core: client.CoreV1Api, namespace: str) -> dict[str, list[dict]]:
    """The namespace's `Failed` events, per pod uid: a status may forget a failed pull (after a
    kubelet restart it says only ContainerCreating) while the events still hold it."""
    events: list[Any] = core.list_namespaced_event(namespace, field_selector="reason=Failed").items
    found: dict[str, list[dict]] = {}
    for event in events:
        uid = event.involved_object.uid or ""
        found.setdefault(uid, []).append(core.api_client.sanitize_for_serialization(event))
    return found


def diagnose_pod(core: client.CoreV1Api, namespace: str, name: str) -> list[Finding]:
    """The pod's findings, most basic first (empty when nothing stops its pulls)."""
    return examine(core, namespace, name).findings
