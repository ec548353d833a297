"""`pull-lab doctor`: why does this pod not pull its image, and what fixes it.

It reads what anyone can read on a real cluster (the pod's status, its `Failed` events, the pull
secrets it names, its node) into an ``Evidence`` and runs a table of small rules over it
(``lab.doctor.rules``), ranked in the order a pull proceeds. Work in progress for issue 11:
see docs/wip-doctor.md.

>>> findings = diagnose_pod(core, "default", "nginx-registry")
>>> print(render("nginx-registry", "default", findings))
"""

from __future__ import annotations

from kubernetes import client

from lab.doctor.capture import capture
from lab.doctor.evidence import Evidence
from lab.doctor.keyring import image_host, key_host
from lab.doctor.output import Diagnosis, render
from lab.doctor.rules import Finding, Stage, diagnose

__all__ = [
    "Diagnosis",
    "Evidence",
    "Finding",
    "Stage",
    "diagnose",
    "diagnose_pod",
    "examine",
    "image_host",
    "key_host",
    "render",
]


def examine(core: client.CoreV1Api, namespace: str, name: str) -> Diagnosis:
    """Read the pod from the cluster and diagnose it."""
    evidence = Evidence.from_capture(capture(core, namespace, name))
    return Diagnosis(evidence, diagnose(evidence))


def diagnose_pod(core: client.CoreV1Api, namespace: str, name: str) -> list[Finding]:
    """The pod's findings, most basic first (empty when nothing stops its pulls)."""
    return examine(core, namespace, name).findings
