"""The version matrix: one catalogue run on several Kubernetes versions, read back as one table.

`pull-lab run --kubernetes 1.34,1.37` replays the catalogue once per version, and each run writes
its usual report (lab/report.py). The question a user brings is "what changes if I upgrade?", so
this module reads those reports into a ``Matrix``: scenarios (rows, catalogue order) by versions
(columns, oldest first). A cell is the scenario's outcome, its seconds, its skip or failure
reason, and the lines of what it observed that carry the node's own words (``message_lines``:
container statuses, events, pod phases, HTTP answers; the lab's narration and the doctor's
diagnosis are left out).

Two runs never print the same text: each starts registries with random names, pushes random
tags, makes namespaces and pods with fresh UIDs. ``normalize`` replaces exactly those parts by
placeholders (``<host1>``, ``<tag>``, ``<duration>``...), each rule taken from real reports
(tests/unit/data/matrix/README.md), so ``Matrix.changes(a, b)`` names only cells whose outcome
or whose messages really differ: "Created container: nginx" on 1.34 becomes "Container created"
on 1.35; a different registry name does not count.

>>> data = Path("tests/unit/data/matrix")
>>> matrix = load_version_reports({v: data / v for v in ("v1.34.4", "v1.37.2")})
>>> [c.scenario for c in matrix.changes("v1.34.4", "v1.37.2")]
['secret-kubectl', 'cached-image-no-creds']

The renderers (Markdown, HTML, JSON, JUnit) and ``write_matrix`` are in lab/matrix_render.py.
Everything read here was masked when its report was written; nothing here unmasks it.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.catalog import BY_ID
from lab.errors import LabError
from lab.results import ScenarioResult

NOT_RUN = "not run"  # the outcome of a scenario a version's report does not hold

# ---- which observed lines are the node's own words ----------------------------------------------
# lab/scenario.py records them in these shapes (ScenarioRun.expect_* and saw()):
#   "nginx: ErrImagePull: <message>"             a container's waiting reason and message
#   "event Normal Pulled: <message>"             an event (the type is absent for BackOff)
#   "pod nginx-registry Running (nginx)"         a pod's phase
#   "URL as written: HTTP 405 {...}"             an answer from the API server or the registry
# Everything else ("doctor: ...", "events before the fix: ...", "same pod uid ...") is the lab
# speaking: it may count events that depend on timing, and it says nothing the node said.
_STATUS_OR_EVENT = re.compile(
    r"^(?!doctor: )(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?: [A-Z][A-Za-z]+: "
    r"|event (?:(?:Normal|Warning) )?[A-Z][A-Za-z]+: "
    r"|pod \S+ [A-Z][a-z]+\b)"
)
_HTTP_ANSWER = re.compile(r"\bHTTP [1-5]\d\d\b")


def message_lines(observed: Iterable[str]) -> tuple[str, ...]:
    """The observed lines that quote the kubelet, containerd, the API server or a registry."""
    return tuple(
        line for line in observed if _STATUS_OR_EVENT.match(line) or _HTTP_ANSWER.search(line)
    )


# ---- what is particular to one run --------------------------------------------------------------
# Each rule names where the lab (or the cluster) makes the value; the order matters: a timestamp
# holds what looks like a duration and an IP, a UID holds what looks like a random name.
_TIMESTAMP = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?(?: UTC)?"
)
_UID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_LAB_TAG = re.compile(r"\bt-[0-9a-f]{10}\b")  # Registries.push_fresh: a tag no node has seen
_NAMESPACE = re.compile(r"\blab-[0-9a-f]{8}\b")  # kube.create_namespace: one per test
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# Registries.start and the alias scenarios: `<cluster>-<purpose>-<6 hex>`, `reg-alias-<6 hex>`.
_RANDOM_NAME = r"[a-z0-9][a-z0-9-]*-[0-9a-f]{6}"
_NAME_END = r"(?![\w-]|\.\w)"
# `host:port` where an image reference or URL names a registry ("reg:5000/lab/x", "//reg:5000"):
# how the standing registries (`<cluster>-registry`, no random part) are found.
_REGISTRY_HOST = re.compile(r"(?:(?<=//)|(?<![\w./-]))([a-z][a-z0-9.-]*[a-z0-9]):\d{1,5}(?![\w.])")
# Go's HTTP client adds this prefix when the registry's TLS alert (no client certificate)
# arrives before the request is written, and not when it arrives after: one pod's events on one
# run hold both forms (mtls-no-client-cert, v1.36.3 report). Timing, not version.
_READ_LOOP_PREFIX = re.compile(r"\breadLoopPeekFailLocked: ")
_PORT = re.compile(r"(<host\d+>|<ip>|\blocalhost):\d{1,5}\b")
# Go's time.Duration as the kubelet prints it: "in 209ms (209ms including waiting)", "1m30.5s".
_DURATION = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|h|m|s))+(?!\w)")


def registry_hosts(lines: Iterable[str]) -> frozenset[str]:
    """The registry host names one run's lines use in image references (``localhost`` aside)."""
    found = {m.group(1) for line in lines for m in _REGISTRY_HOST.finditer(line)}
    return frozenset(found - {"localhost"})


def _number_hosts(line: str, hosts: Iterable[str]) -> str:
    """Each distinct run-specific host becomes ``<host1>``, ``<host2>``... in order of first
    appearance in the line, so "valid for A, not B" keeps saying that A and B differ."""
    known = "|".join(re.escape(h) for h in sorted(hosts, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.-])(?:{known + '|' if known else ''}{_RANDOM_NAME}){_NAME_END}")
    numbers: dict[str, str] = {}

    def placeholder(m: re.Match[str]) -> str:
        return numbers.setdefault(m.group(0), f"<host{len(numbers) + 1}>")

    return pattern.sub(placeholder, line)


def normalize(line: str, hosts: Iterable[str] = ()) -> str:
    """The line with every run-specific part replaced by a placeholder: timestamps, UIDs, the
    lab's random tags and namespaces, IPs, registry host names (random ones and ``hosts``),
    their ports, durations, and a prefix Go's HTTP client adds or not by timing. Two runs
    that behaved alike give the same text.

    >>> normalize('Successfully pulled image "reg-ab12cd:5000/lab/x:t-0123456789" in 9ms')
    'Successfully pulled image "<host1>:<port>/lab/x:<tag>" in <duration>'
    """
    for pattern, placeholder in (
        (_TIMESTAMP, "<time>"),
        (_UID, "<uid>"),
        (_LAB_TAG, "<tag>"),
        (_NAMESPACE, "<namespace>"),
        (_IPV4, "<ip>"),
    ):
        line = pattern.sub(placeholder, line)
    line = _READ_LOOP_PREFIX.sub("", line)
    line = _number_hosts(line, hosts)
    line = _PORT.sub(r"\1:<port>", line)
    return _DURATION.sub("<duration>", line)


# ---- the matrix ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionRun:
    """One version's run as its report.json's meta recorded it.

    ``runtime`` is the node's container runtime (``containerd://2.3.4``), empty when the report
    does not record it."""

    label: str
    report_dir: Path
    title: str
    kubernetes: str
    runtime: str
    images: str
    started: str
    seconds: float


@dataclass(frozen=True)
class Cell:
    """One scenario on one version: the result, its message lines raw and normalized."""

    result: ScenarioResult
    messages: tuple[str, ...]
    normalized: tuple[str, ...]

    @property
    def outcome(self) -> str:
        return self.result.outcome

    @property
    def seconds(self) -> float:
        return self.result.seconds

    @property
    def reason(self) -> str:
        """Why it was skipped or failed (masked); empty when it passed."""
        return self.result.error


@dataclass(frozen=True)
class Row:
    """One scenario across the versions; ``cells`` holds only the versions that ran it."""

    id: str
    title: str
    cells: Mapping[str, Cell]

    def outcome(self, label: str) -> str:
        cell = self.cells.get(label)
        return cell.outcome if cell else NOT_RUN


@dataclass(frozen=True)
class Change:
    """What upgrading from ``before`` to ``after`` changes in one scenario: its outcome, or
    its (normalized) message lines, ``removed`` ones gone and ``added`` ones new."""

    scenario: str
    before: str
    after: str
    outcome_before: str
    outcome_after: str
    removed: tuple[str, ...]
    added: tuple[str, ...]

    @property
    def outcome_changed(self) -> bool:
        return self.outcome_before != self.outcome_after

    @property
    def what(self) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
        """The change without the scenario's name: equal for two scenarios changed alike."""
        return (self.outcome_before, self.outcome_after, self.removed, self.added)


def group_changes(changes: Iterable[Change]) -> tuple[tuple[Change, ...], ...]:
    """Changes that are the same change in several scenarios, together (one kubelet wording
    change touches every scenario that starts a container); changed outcomes first."""
    groups: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], list[Change]] = {}
    for change in changes:
        groups.setdefault(change.what, []).append(change)
    ordered = sorted(groups.values(), key=lambda group: not group[0].outcome_changed)
    return tuple(tuple(group) for group in ordered)


def _only_in(lines: Sequence[str], other: Sequence[str]) -> tuple[str, ...]:
    """Lines of ``lines`` beyond those ``other`` has too (as many times as it has them), in
    order. Order alone is no change: two pods' events may be recorded either way round."""
    spare = Counter(other)
    out = []
    for line in lines:
        if spare[line]:
            spare[line] -= 1
        else:
            out.append(line)
    return tuple(out)


def compare(row: Row, before: str, after: str) -> Change | None:
    """The change in ``row`` from version ``before`` to ``after``, or None if there is none."""
    old, new = row.cells.get(before), row.cells.get(after)
    old_lines = old.normalized if old else ()
    new_lines = new.normalized if new else ()
    change = Change(
        scenario=row.id,
        before=before,
        after=after,
        outcome_before=row.outcome(before),
        outcome_after=row.outcome(after),
        removed=_only_in(old_lines, new_lines),
        added=_only_in(new_lines, old_lines),
    )
    if change.outcome_changed or change.removed or change.added:
        return change
    return None


@dataclass(frozen=True)
class Matrix:
    """Scenarios (rows, catalogue order) by versions (columns, oldest first)."""

    versions: tuple[VersionRun, ...]
    rows: tuple[Row, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(v.label for v in self.versions)

    def results(self, label: str) -> list[ScenarioResult]:
        """One version's results, in catalogue order, as its report holds them."""
        return [row.cells[label].result for row in self.rows if label in row.cells]

    def changes(self, before: str, after: str) -> tuple[Change, ...]:
        """Every scenario that behaves otherwise on ``after`` than on ``before``."""
        found = (compare(row, before, after) for row in self.rows)
        return tuple(c for c in found if c is not None)

    def upgrades(self) -> tuple[tuple[str, str], ...]:
        """The upgrades worth reading: oldest to newest first, then each step between."""
        labels = self.labels
        steps = tuple(itertools.pairwise(labels))
        return ((labels[0], labels[-1]), *steps) if len(labels) > 2 else steps

    def changed_cells(self) -> set[tuple[str, str]]:
        """(scenario, version) of each cell that differs from the version before it."""
        return {
            (c.scenario, c.after)
            for before, after in itertools.pairwise(self.labels)
            for c in self.changes(before, after)
        }


# ---- reading the reports ------------------------------------------------------------------------
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def version_key(label: str) -> tuple[int, tuple[int, ...], str]:
    """Sorts "v1.9.0" before "v1.10.0"; a label that is no version sorts after all that are."""
    found = _VERSION.match(label)
    if not found:
        return (1, (), label)
    return (0, tuple(int(part or 0) for part in found.groups()), label)


def _same_version(label: str, recorded: str) -> bool:
    """ "1.37" and "v1.37.2" name the same version; "1.3" and "v1.37.2" do not."""
    wanted, got = label.removeprefix("v"), recorded.removeprefix("v")
    return got == wanted or got.startswith(wanted + ".")


def _read_json(report_dir: Path) -> dict:
    path = report_dir / "report.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise LabError(
            f"no report.json in {report_dir}", "run `pull-lab run --report-dir DIR` there first"
        ) from None
    except (OSError, ValueError) as exc:
        raise LabError(f"cannot read {path}: {exc}", "re-run that version's catalogue") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("scenarios"), list):
        raise LabError(f"{path} is not a pull-lab report", "pass the directory of a report.json")
    return doc


def read_version(label: str, report_dir: Path) -> tuple[VersionRun, list[ScenarioResult]]:
    """One version's report: its meta and its results. The label must name the version the
    report recorded (when the label is a version at all), so reports cannot be mixed up."""
    doc = _read_json(report_dir)
    meta = doc.get("meta") or {}
    results = [ScenarioResult.from_dict(s) for s in doc["scenarios"]]
    kubernetes = meta.get("kubernetes") or next((r.kubernetes for r in results if r.kubernetes), "")
    if kubernetes and _VERSION.match(label) and not _same_version(label, kubernetes):
        raise LabError(
            f"{report_dir} holds a run on Kubernetes {kubernetes}, not {label}",
            "pair each version with the report directory its run wrote",
        )
    run = VersionRun(
        label=label,
        report_dir=report_dir,
        title=meta.get("title") or "registry-pull-lab report",
        kubernetes=kubernetes,
        runtime=meta.get("runtime") or "",
        images=meta.get("images") or "",
        started=meta.get("started") or "",
        seconds=float(meta.get("seconds") or 0.0),
    )
    return run, results


def _cells(results: Sequence[ScenarioResult]) -> dict[str, Cell]:
    hosts = registry_hosts(line for r in results for line in r.observed)
    cells = {}
    for r in results:
        messages = message_lines(r.observed)
        cells[r.id] = Cell(r, messages, tuple(normalize(m, hosts) for m in messages))
    return cells


def _catalogue_order(ids: Iterable[str]) -> list[str]:
    """Catalogue order; a scenario the catalogue does not know goes last, as first seen."""
    known = list(BY_ID)
    seen = list(dict.fromkeys(ids))
    return sorted(
        seen, key=lambda s: (known.index(s), 0) if s in BY_ID else (len(known), seen.index(s))
    )


def load_version_reports(dirs: Mapping[str, Path]) -> Matrix:
    """A matrix from one report directory per version (label -> directory), e.g.
    ``{"v1.34.4": Path("lab-report/v1.34.4"), "v1.37.2": Path("lab-report/v1.37.2")}``."""
    if not dirs:
        raise LabError("no version reports to compare", "pass one report directory per version")
    runs = sorted(
        (read_version(label, Path(d)) for label, d in dirs.items()),
        key=lambda pair: version_key(pair[0].label),
    )
    cells = {run.label: _cells(results) for run, results in runs}
    titles = {r.id: r.title for _, results in runs for r in results}
    rows = tuple(
        Row(
            id=sid,
            title=titles[sid],
            cells={label: by_id[sid] for label, by_id in cells.items() if sid in by_id},
        )
        for sid in _catalogue_order(sid for by_id in cells.values() for sid in by_id)
    )
    return Matrix(versions=tuple(run for run, _ in runs), rows=rows)
