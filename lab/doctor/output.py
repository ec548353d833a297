"""Doctor's answer for one pod: its findings as text or as JSON, and the exit code.

The JSON schema (``pull-lab-doctor/1``) is stable: fields are only ever added. It is documented
with the causes table in docs/wip-doctor.md (the README, once issue 11 lands).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from lab.doctor.evidence import Evidence
from lab.doctor.rules import Finding

SCHEMA = "pull-lab-doctor/1"


@dataclass(frozen=True)
class Diagnosis:
    evidence: Evidence
    findings: list[Finding]

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
            return render(ev.pod, ev.namespace, self.findings)
        if self.result == "all-pulled":
            return f"pod {ev.namespace}/{ev.pod}: every image pulled ({len(ev.pulls)} container(s))"
        waiting = ", ".join(p.name for p in ev.pulls if not p.pulled)
        return (
            f"pod {ev.namespace}/{ev.pod}: no image pull problem found (not pulled yet: {waiting})"
        )

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
                }
                for i, f in enumerate(self.findings, 1)
            ],
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2)


def render(pod: str, namespace: str, findings: list[Finding]) -> str:
    if not findings:
        return f"pod {namespace}/{pod}: no image pull problem found"
    lines = [f"pod {namespace}/{pod}: {len(findings)} finding(s)"]
    lines += [f"{i}. {f.render()}" for i, f in enumerate(findings, 1)]
    return "\n".join(lines)
