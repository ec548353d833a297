"""Trim real per-version reports to the few scenarios the matrix tests read (run once; the
trimmed report.json files are what the tests read, see README.md beside this file).

    .venv/bin/python tests/unit/data/matrix/trim_reports.py /var/tmp/spike12

reads ``<source>/report-all-<minor>/report.json`` for each minor and writes
``<this folder>/v<patch>/report.json``: the meta as recorded, and of each kept scenario every
field but its transcript (the matrix never reads it; it is most of a report's size). Nothing is
edited: every observed line is the masked text the run wrote.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
MINORS = ("1.34", "1.35", "1.36", "1.37")
KEEP = (
    "registry-catalog",  # an HTTP answer; JSON quotes and braces for the escaping tests
    "node-no-ca",  # failed on every version: a failure reason
    "secret-kubectl",  # same on 1.35..1.37 but for host, tag and duration
    "mtls-no-client-cert",  # 1.36 says readLoopPeekFailLocked: (timing, not version)
    "registry-unreachable",  # an IP and a port
    "cert-name-mismatch",  # two run-specific hosts in one message
    "cached-image-no-creds",  # flips at 1.35 (KubeletEnsureSecretPulledImages)
)


def trim(source: Path, minor: str) -> Path:
    doc = json.loads((source / f"report-all-{minor}" / "report.json").read_text())
    scenarios = [
        {k: v for k, v in s.items() if k != "transcript"}
        for s in doc["scenarios"]
        if s["id"] in KEEP
    ]
    out = HERE / doc["meta"]["kubernetes"] / "report.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"meta": doc["meta"], "scenarios": scenarios}, indent=2) + "\n")
    return out


if __name__ == "__main__":
    for minor in MINORS:
        print(trim(Path(sys.argv[1]), minor))
