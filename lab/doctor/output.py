"""Doctor's answer for one pod (or a namespace): text or JSON, and the exit code.

The JSON schemas are stable: fields are only ever added, a breaking change bumps the number.
``pull-lab-doctor/1`` is one pod, ``pull-lab-doctor-list/1`` the pods ``--all`` found with a
pull problem; both are documented in the README ("pull-lab doctor").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from lab.doctor.evidence import Evidence, NodeInfo
from lab.doctor.probe import ProbeReport
from lab.doctor.rules import Finding

SCHEMA = "pull-lab-doctor/1"
LIST_SCHEMA = "pull-lab-doctor-list/1"
PROBE_HEADER = "probe (from where doctor runs, not from the node; not what the kubelet saw):"


@dataclass(frozen=True)
class Diagnosis:
    evidence: Evidence
    findings: list[Finding]
    probes: tuple[ProbeReport, ...] | None = None  # None: --probe was not asked for

    @property
    def result(self) -> str:
        """pull-problem / all-pulled / pulling (no failure yet, some image not pulled yet)."""
        if self.findings:
            return "pull-problem"
        return "all-pulled" if all(p.pulled for p in self.evidence.pulls) else "pulling"

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0

    def text(self) -> str:
        ev = self.evidence
        if self.findings:
            head, *rest = render(ev.pod, ev.namespace, self.findings).splitlines()
        elif self.result == "all-pulled":
            head, rest = (
                f"pod {ev.namespace}/{ev.pod}: every image pulled ({len(ev.pulls)} container(s))",
                [],
            )
        else:
            waiting = ", ".join(p.name for p in ev.pulls if not p.pulled)
            head = f"pod {ev.namespace}/{ev.pod}: no image pull problem found (not pulled yet: {waiting})"
            rest = []
        lines = [head, node_line(ev.node), *rest]
        if self.probes is not None:
            lines.append(PROBE_HEADER)
            lines += [f"  {line}" for report in self.probes for line in report.lines()]
            if not self.probes:
                lines.append("  nothing to probe: no container failed to pull")
        return "\n".join(lines)

    def to_json(self) -> dict:
        ev, node = self.evidence, self.evidence.node
        return {
            "schema": SCHEMA,
            "pod": {"namespace": ev.namespace, "name": ev.pod},
            "result": self.result,
            "node": None
            if node is None
            else {
                "name": node.name,
                "kubeletVersion": node.kubelet_version,
                "containerRuntimeVersion": node.runtime_version,
                "platform": node.platform,
            },
            "containers": [
                {
                    "name": p.name,
                    "kind": p.kind,
                    "image": p.image,
                    "state": p.state,
                    "reason": p.reason,
                    "pulled": p.pulled,
                }
                for p in ev.pulls
            ],
            "findings": [
                {
                    "rank": i,
                    "name": f.name,
                    "stage": f.stage.label,
                    "container": f.container,
                    "cause": f.cause,
                    "fix": f.fix,
                    "evidence": f.evidence,
                    "evidenceSource": f.source,
                    "notes": list(f.notes),
                    "said": None if f.said is None else asdict(f.said),
                }
                for i, f in enumerate(self.findings, 1)
            ],
            "probe": None if self.probes is None else [p.to_json() for p in self.probes],
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2)


def node_line(node: NodeInfo | None) -> str:
    """The node and the versions its messages are read for."""
    if node is None:
        return "node: none yet (the pod is not scheduled)"
    if not node.kubelet_version:
        return f"node {node.name}: kubelet and runtime versions unknown (doctor may not read nodes)"
    return f"node {node.name}: kubelet {node.kubelet_version}, runtime {node.runtime_version}"


def render(pod: str, namespace: str, findings: list[Finding]) -> str:
    if not findings:
        return f"pod {namespace}/{pod}: no image pull problem found"
    lines = [f"pod {namespace}/{pod}: {len(findings)} finding(s)"]
    lines += [f"{i}. {f.render()}" for i, f in enumerate(findings, 1)]
    return "\n".join(lines)


@dataclass(frozen=True)
class NamespaceDiagnosis:
    """``doctor --all``: every pod of a namespace with a pull problem."""

    namespace: str
    checked: int
    diagnoses: Sequence[Diagnosis]

    @property
    def exit_code(self) -> int:
        return 1 if any(d.findings for d in self.diagnoses) else 0

    def text(self) -> str:
        found = [d for d in self.diagnoses if d.findings]
        if not found:
            return (
                f"namespace {self.namespace}: no pod with an image pull problem "
                f"({self.checked} pod(s) checked)"
            )
        head = (
            f"namespace {self.namespace}: {len(found)} of {self.checked} pod(s) "
            "with an image pull problem"
        )
        return "\n\n".join([head, *(d.text() for d in found)])

    def to_json(self) -> dict:
        return {
            "schema": LIST_SCHEMA,
            "namespace": self.namespace,
            "checked": self.checked,
            "pods": [d.to_json() for d in self.diagnoses if d.findings],
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2)
