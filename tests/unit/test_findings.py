"""docs/findings.md says only what tests assert: every fact names its tests, and they exist.

A fact is a bullet (with its indented continuation lines) or a table row in any section but
"Noted, not asserted"; it names tests as `(asserted by: path::function[, path::function])`.
Prose outside the introduction and tables' header rows is not allowed in those sections, so a
fact cannot hide in a paragraph.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.signatures import classify

ROOT = Path(__file__).resolve().parents[2]
FINDINGS = ROOT / "docs" / "findings.md"
NOTED = "Noted, not asserted"
ASSERTED_BY = re.compile(r"\(asserted by: ([^)]*)\)")
TEST_REF = re.compile(r"^([\w./-]+\.py)::(\w+)$")


@dataclass(frozen=True)
class Fact:
    section: str
    line: int
    text: str

    def tests(self) -> list[str]:
        return [
            ref.strip()
            for group in ASSERTED_BY.findall(self.text)
            for ref in group.split(",")
            if ref.strip()
        ]


def _is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\|(?:\s*:?-{3,}:?\s*\|)+", line.strip()))


def parse_facts(text: str) -> tuple[list[Fact], list[str]]:
    """The facts per section, and the lines that are neither facts nor allowed prose."""
    facts: list[Fact] = []
    stray: list[str] = []
    section = ""
    in_prose = True  # a section's leading paragraph (up to its first fact or table) is allowed
    lines = text.splitlines()
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if line.startswith("#"):
            section, in_prose = line.lstrip("#").strip(), True
        elif not line.strip() or _is_separator(line):
            continue
        elif line.startswith("|"):
            in_prose = False
            if not _is_separator(following):  # the row before a separator is the header
                facts.append(Fact(section, i + 1, line))
        elif line.startswith("- "):
            in_prose = False
            facts.append(Fact(section, i + 1, line))
        elif line.startswith("  ") and facts and facts[-1].section == section and not in_prose:
            last = facts.pop()
            facts.append(Fact(last.section, last.line, last.text + " " + line.strip()))
        elif not in_prose and section != NOTED:
            stray.append(f"line {i + 1}: {line}")
    return facts, stray


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def missing_tests(refs: list[str]) -> list[str]:
    missing = []
    for ref in refs:
        match = TEST_REF.match(ref)
        if match is None:
            missing.append(f"{ref} (not path::function)")
            continue
        path = ROOT / match[1]
        if not path.is_file():
            missing.append(f"{ref} (no file {match[1]})")
        elif match[2] not in defined_functions(path):
            missing.append(f"{ref} (no function {match[2]} in {match[1]})")
    return missing


FACTS, STRAY = parse_facts(FINDINGS.read_text())
ASSERTED = [f for f in FACTS if f.section != NOTED]


def test_findings_have_facts_and_a_noted_section():
    assert len(ASSERTED) >= 20
    assert any(f.section == NOTED for f in FACTS), f"no '## {NOTED}' section"


def test_every_fact_outside_noted_names_a_test():
    unnamed = [f"line {f.line}: {f.text[:100]}" for f in ASSERTED if not f.tests()]
    assert not unnamed, "facts that name no test:\n" + "\n".join(unnamed)


def test_noted_facts_claim_no_test():
    claimed = [f"line {f.line}" for f in FACTS if f.section == NOTED and f.tests()]
    assert not claimed, f"a noted fact names a test: move it up ({claimed})"


def test_no_fact_hides_in_prose():
    assert not STRAY, "prose in an asserted section (make it a bullet):\n" + "\n".join(STRAY)


def test_every_named_test_exists():
    refs = sorted({ref for f in ASSERTED for ref in f.tests()})
    assert refs
    missing = missing_tests(refs)
    assert not missing, "findings.md names tests that do not exist:\n" + "\n".join(missing)


def test_the_issue_s_facts_are_asserted():
    """The facts issue 9 names explicitly each carry a test."""
    wanted = {
        "test_wrong_password": "the same text, word for word",
        "test_node_no_ca": "`Error: ErrImagePull`",
        "test_kubelet_sets_host_sysctls": "vm.overcommit_memory",
    }
    for test, phrase in wanted.items():
        assert any(phrase in f.text and test in f.text for f in ASSERTED), (test, phrase)
    assert any("No `FailedSync`" in f.text and "test_node_no_ca" in f.text for f in ASSERTED)
    assert any("Back-off pulling image" in f.text and "ErrImagePull:" in f.text for f in ASSERTED)


# ---- the parser itself -------------------------------------------------------------------
SAMPLE = """# Title

Intro prose is fine.

## Things

Leading prose is fine.

| a | b |
| --- | --- |
| row one | (asserted by: scenarios/test_beyond.py::test_wrong_password) |
| row two | nothing |

- a bullet
  continued (asserted by: x.py::y, z.py::w)
stray prose

## Noted, not asserted

- a note
"""


def test_parser_reads_rows_bullets_continuations_and_strays():
    facts, stray = parse_facts(SAMPLE)
    texts = {f.text.split("|")[1].strip() if f.text.startswith("|") else f.text for f in facts}
    assert texts == {
        "row one",
        "row two",
        "- a bullet continued (asserted by: x.py::y, z.py::w)",
        "- a note",
    }
    bullet = next(f for f in facts if f.text.startswith("- a bullet"))
    assert bullet.tests() == ["x.py::y", "z.py::w"]
    assert stray == ["line 16: stray prose"]


def test_missing_tests_names_what_is_wrong():
    found = missing_tests(
        [
            "scenarios/test_beyond.py::test_wrong_password",
            "scenarios/test_beyond.py::test_nope",
            "scenarios/nope.py::test_x",
            "no-colons",
        ]
    )
    assert found == [
        "scenarios/test_beyond.py::test_nope (no function test_nope in scenarios/test_beyond.py)",
        "scenarios/nope.py::test_x (no file scenarios/nope.py)",
        "no-colons (not path::function)",
    ]


# ---- the recorded messages classify as the signatures the scenarios assert ----------------
@pytest.mark.parametrize(
    ("message", "name"),
    [
        (
            'failed to do request: Head "https://reg:5000/v2/lab/nginx/manifests/1.7.9": '
            "x509: certificate signed by unknown authority",
            "unknown-ca",
        ),
        (
            "pulling from host reg:5000 failed with status code [manifests 1.7.9]: "
            "401 Unauthorized",
            "unauthorized",
        ),
        ("dial tcp 172.31.0.253:5999: connect: connection refused", "connection-refused"),
        ("dial tcp: lookup nope on 127.0.0.11:53: no such host", "dns-failure"),
        ("dial tcp: lookup nope on 127.0.0.11:53: read udp ...: i/o timeout", "dns-failure"),
        ("dial tcp 10.9.9.9:5000: i/o timeout", "timeout"),
        ("dial tcp 10.9.9.9:5000: connect: no route to host", "no-route"),
        ("dial tcp 10.9.9.9:5000: connect: network is unreachable", "no-route"),
        ("...: remote error: tls: bad certificate", "client-cert-required"),
    ],
)
def test_recorded_messages_classify_by_name(message, name):
    sig = classify(message)
    assert sig is not None and sig.name == name
