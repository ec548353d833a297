"""The version matrix as files: Markdown, a self-contained HTML page, JSON and JUnit XML.

Each format leads with what a reader came for, "what changes if I upgrade", then the whole
table. Files are written the way lab/report.py writes a report: whole or not at all, masked once
more on the way out (the per-version reports were masked already; nothing here unmasks).

``matrix.json``, schema ``"pull-lab-matrix/1"``::

    {
      "schema": "pull-lab-matrix/1",
      "title": "registry-pull-lab version matrix",
      "versions": [                       # oldest first: the columns
        {"label": "v1.34.4", "kubernetes": "v1.34.4", "runtime": "containerd://2.3.4" or "",
         "images": "offline", "started": "2026-11-29 23:46:21 UTC", "seconds": 220.8,
         "summary": {"passed": 23, "failed": 3, "error": 0, "skipped": 0}}
      ],
      "scenarios": [                      # catalogue order: the rows
        {"id": "cached-image-no-creds", "title": "...",
         "cells": {                       # only the versions that ran the scenario
           "v1.34.4": {"outcome": "passed", "seconds": 3.8,
                       "reason": "",      # the skip or failure text; "" when it passed
                       "messages": [...], # the observed lines that quote the node (masked)
                       "normalized": [...],  # the same, run-specific parts as placeholders
                       "observed": [...]}}}  # every observed line, as the report holds it
      ],
      "upgrades": [                       # oldest -> newest, then each step between
        {"from": "v1.34.4", "to": "v1.35.4",
         "changes": [{"scenario": "...", "outcome": {"from": "passed", "to": "passed"},
                      "removed": [...], "added": [...]}]}   # normalized lines
      ]
    }

An outcome is one of lab.results.OUTCOMES, or ``"not run"`` in a change when one version's
report does not hold the scenario.

>>> write_matrix(load_version_reports({"v1.34.4": d134, "v1.37.2": d137}), Path("lab-report"))
[PosixPath('lab-report/matrix.md'), ..., PosixPath('lab-report/junit-matrix.xml')]
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from lab.matrix import Cell, Change, Matrix, Row, VersionRun, group_changes
from lab.report import CSS, ReportMeta, render_junit, summary, summary_text, write_files

SCHEMA = "pull-lab-matrix/1"
TITLE = "registry-pull-lab version matrix"
REASON_CHARS = 300  # a failure's text in a table cell; the version's own report has all of it


def _meta(run: VersionRun) -> ReportMeta:
    return ReportMeta(run.title, run.kubernetes, run.images, run.started, run.seconds)


def _runtime(run: VersionRun) -> str:
    return run.runtime or "not recorded"


def _report_link(run: VersionRun, base: Path | None, name: str) -> str:
    """The version's own report, relative to where the matrix is written; "" without a base."""
    if base is None:
        return ""
    return Path(os.path.relpath(run.report_dir / name, base)).as_posix()


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"


def _upgrade_heading(before: str, after: str, changes: int) -> str:
    verb = "scenario differs" if changes == 1 else "scenarios differ"
    return f"from {before} to {after}: {changes} {verb}"


# Says what the comparison ignores, in both Markdown and HTML (lab.matrix.normalize's rules).
IGNORED = (
    "A scenario is listed when its outcome differs or the node's messages differ once "
    "run-specific parts (registry names, ports, tags, UIDs, namespaces, IPs, durations, "
    "timestamps, and the readLoopPeekFailLocked prefix Go's HTTP client adds by timing) are "
    "replaced by placeholders such as <host1> and <tag>."
)


# ---- Markdown -----------------------------------------------------------------------------------
def _md_code(text: str) -> str:
    """A code span (placeholders such as <host1> must not read as HTML) that survives any
    backticks in the text and keeps a table's pipes escaped."""
    longest = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def _md_cell_text(text: str) -> str:
    """Plain text in a table cell: no pipe ends the cell, no `<` opens a tag."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def _md_fence(lines: Sequence[str]) -> str:
    """A code fence longer than any run of backticks in the lines."""
    fence = "```"
    while any(fence in line for line in lines):
        fence += "`"
    return fence


def _outcome_text(change: Change) -> str:
    if change.outcome_changed:
        return f"{change.outcome_before} → {change.outcome_after}"
    return f"{change.outcome_after} on both"


def _md_change(group: Sequence[Change]) -> list[str]:
    change = group[0]
    names = ", ".join(f"[{c.scenario}](#{c.scenario})" for c in group)
    outcome = _outcome_text(change)
    lines = [f"#### {names}", "", f"**{outcome}**" if change.outcome_changed else outcome, ""]
    diff = [f"- {line}" for line in change.removed] + [f"+ {line}" for line in change.added]
    if diff:
        fence = _md_fence(diff)
        lines += [f"{fence}diff", *diff, fence, ""]
    return lines


def _md_changes(matrix: Matrix) -> list[str]:
    lines = ["## What changes if you upgrade", ""]
    upgrades = matrix.upgrades()
    if not upgrades:
        return [*lines, "One version only: nothing to compare.", ""]
    lines += [IGNORED.replace("<host1>", "`<host1>`").replace("<tag>", "`<tag>`"), ""]
    for before, after in upgrades:
        changes = matrix.changes(before, after)
        lines += [f"### {_upgrade_heading(before, after, len(changes))}", ""]
        if not changes:
            lines += ["Nothing: every scenario ends the same, with the same messages.", ""]
        for group in group_changes(changes):
            lines += _md_change(group)
    return lines


def _md_cell(cell: Cell | None, changed: bool) -> str:
    if cell is None:
        return "not run"
    parts = [f"**{cell.outcome}** {cell.seconds:.1f}s" + (" (changed)" if changed else "")]
    if cell.reason and cell.outcome != "passed":
        parts.append(_md_cell_text(_first_line(cell.reason)))
    parts += [_md_code(line) for line in cell.normalized]
    return "<br>".join(parts)


def _md_versions(matrix: Matrix, base: Path | None) -> list[str]:
    lines = [
        "| version | Kubernetes | runtime | images | started | seconds | result |",
        "| --- | --- | --- | --- | --- | ---: | --- |",
    ]
    for run in matrix.versions:
        link = _report_link(run, base, "report.md")
        label = f"[{run.label}]({link})" if link else run.label
        counts = summary(matrix.results(run.label))
        lines.append(
            f"| {label} | {run.kubernetes} | {_runtime(run)} | {run.images} | {run.started} "
            f"| {run.seconds:.0f} | {summary_text(counts)} |"
        )
    return lines


def render_markdown(matrix: Matrix, base: Path | None = None) -> str:
    """The changes first, then every scenario on every version (normalized messages)."""
    changed = matrix.changed_cells()
    lines = [f"# {TITLE}", "", *_md_versions(matrix, base), "", *_md_changes(matrix)]
    lines += [
        "## Every scenario on every version",
        "",
        "| scenario | " + " | ".join(matrix.labels) + " |",
        "| --- |" + " --- |" * len(matrix.labels),
    ]
    for row in matrix.rows:
        cells = [_md_cell(row.cells.get(v), (row.id, v) in changed) for v in matrix.labels]
        lines.append(f"| <a id='{row.id}'></a>{row.id} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---- HTML ---------------------------------------------------------------------------------------
MATRIX_CSS = """
.changes{background:#fffbeb;border:1px solid #f59e0b;padding:4px 16px 12px;margin:16px 0}
.changes h2{border-top:0;margin-top:8px;padding-top:0}
body{max-width:1600px}
.change{margin:10px 0}.change h4{margin:8px 0 4px;font-size:15px}
.diff{white-space:pre-wrap}.diff .removed{color:#991b1b;background:#fee2e2;display:block}
.diff .added{color:#166534;background:#dcfce7;display:block}
table.matrix td{vertical-align:top;min-width:180px}table.matrix td.changed{background:#fef3c7;
border-left:3px solid #d97706}.msg{font:11px/1.35 ui-monospace,monospace;margin:2px 0;
word-break:break-word}.reason{font-size:12px;color:#7f1d1d}.flag{font-size:11px;color:#92400e}
details summary{font-size:11px;color:#6b7280;cursor:pointer}
"""


def _html_change(group: Sequence[Change]) -> str:
    esc = html.escape
    change = group[0]
    links = ", ".join(f"<a href='#row-{esc(c.scenario)}'>{esc(c.scenario)}</a>" for c in group)
    outcome = esc(_outcome_text(change))
    if change.outcome_changed:
        outcome = f"<b class='{esc(change.outcome_after)}'>{outcome}</b>"
    diff = "".join(f"<span class='removed'>- {esc(line)}</span>" for line in change.removed)
    diff += "".join(f"<span class='added'>+ {esc(line)}</span>" for line in change.added)
    block = f"<pre class='diff'>{diff}</pre>" if diff else ""
    return f"<div class='change'><h4>{links}</h4><p>{outcome}</p>{block}</div>"


def _html_changes(matrix: Matrix) -> str:
    out = ["<section class='changes' id='changes'><h2>What changes if you upgrade</h2>"]
    if not matrix.upgrades():
        out.append("<p>One version only: nothing to compare.</p>")
    else:
        out.append(f"<p>{html.escape(IGNORED)}</p>")
    for before, after in matrix.upgrades():
        changes = matrix.changes(before, after)
        heading = _upgrade_heading(before, after, len(changes))
        out.append(f"<h3 class='upgrade'>{html.escape(heading)}</h3>")
        if not changes:
            out.append("<p>Nothing: every scenario ends the same, with the same messages.</p>")
        out += [_html_change(group) for group in group_changes(changes)]
    out.append("</section>")
    return "\n".join(out)


def _html_versions(matrix: Matrix, base: Path | None) -> str:
    esc = html.escape
    out = [
        "<table class='versions'><tr><th>version</th><th>Kubernetes</th><th>runtime</th>"
        "<th>images</th><th>started</th><th>seconds</th><th>result</th></tr>"
    ]
    for run in matrix.versions:
        link = _report_link(run, base, "report.html")
        label = f"<a href='{esc(link)}'>{esc(run.label)}</a>" if link else esc(run.label)
        counts = summary(matrix.results(run.label))
        out.append(
            f"<tr><td>{label}</td><td>{esc(run.kubernetes)}</td><td>{esc(_runtime(run))}</td>"
            f"<td>{esc(run.images)}</td><td>{esc(run.started)}</td><td>{run.seconds:.0f}</td>"
            f"<td>{esc(summary_text(counts))}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _html_cell(cell: Cell | None, changed: bool) -> str:
    esc = html.escape
    if cell is None:
        return "<td class='cell not-run muted'>not run</td>"
    parts = [
        f"<span class='{esc(cell.outcome)}'>{esc(cell.outcome)}</span> {cell.seconds:.1f}s",
        "<span class='flag'> changed</span>" if changed else "",
    ]
    if cell.reason and cell.outcome != "passed":
        parts.append(f"<div class='reason'>{esc(_first_line(cell.reason))}</div>")
    parts += [f"<div class='msg'>{esc(line)}</div>" for line in cell.normalized]
    if cell.result.observed:
        parts.append(
            f"<details><summary>observed ({len(cell.result.observed)} lines)</summary>"
            f"<pre>{esc(chr(10).join(cell.result.observed))}</pre></details>"
        )
    classes = "cell changed" if changed else "cell"
    return f"<td class='{classes}'>" + "".join(parts) + "</td>"


def _html_row(row: Row, labels: Sequence[str], changed: set[tuple[str, str]]) -> str:
    esc = html.escape
    cells = "".join(_html_cell(row.cells.get(v), (row.id, v) in changed) for v in labels)
    return (
        f"<tr class='scenario' id='row-{esc(row.id)}'><th title='{esc(row.title)}'>"
        f"{esc(row.id)}</th>{cells}</tr>"
    )


def render_html(matrix: Matrix, base: Path | None = None) -> str:
    """One self-contained page (no script, nothing loaded): versions, changes, the table."""
    esc = html.escape
    changed = matrix.changed_cells()
    head = "".join(f"<th>{esc(label)}</th>" for label in matrix.labels)
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{esc(TITLE)}</title><style>{CSS}{MATRIX_CSS}</style></head><body>",
        f"<h1>{esc(TITLE)}</h1>",
        _html_versions(matrix, base),
        _html_changes(matrix),
        "<section id='matrix'><h2>Every scenario on every version</h2>",
        f"<table class='matrix'><tr><th>scenario</th>{head}</tr>",
        *(_html_row(row, matrix.labels, changed) for row in matrix.rows),
        "</table></section></body></html>",
    ]
    return "\n".join(out)


# ---- JSON ---------------------------------------------------------------------------------------
def _cell_dict(cell: Cell) -> dict[str, Any]:
    return {
        "outcome": cell.outcome,
        "seconds": cell.seconds,
        "reason": cell.reason,
        "messages": list(cell.messages),
        "normalized": list(cell.normalized),
        "observed": list(cell.result.observed),
    }


def _change_dict(change: Change) -> dict[str, Any]:
    return {
        "scenario": change.scenario,
        "outcome": {"from": change.outcome_before, "to": change.outcome_after},
        "removed": list(change.removed),
        "added": list(change.added),
    }


def matrix_dict(matrix: Matrix) -> dict[str, Any]:
    """matrix.json's document (the schema is in this module's docstring)."""
    return {
        "schema": SCHEMA,
        "title": TITLE,
        "versions": [
            {
                "label": run.label,
                "kubernetes": run.kubernetes,
                "runtime": run.runtime,
                "images": run.images,
                "started": run.started,
                "seconds": run.seconds,
                "summary": summary(matrix.results(run.label)),
            }
            for run in matrix.versions
        ],
        "scenarios": [
            {
                "id": row.id,
                "title": row.title,
                "cells": {label: _cell_dict(cell) for label, cell in row.cells.items()},
            }
            for row in matrix.rows
        ],
        "upgrades": [
            {
                "from": before,
                "to": after,
                "changes": [_change_dict(c) for c in matrix.changes(before, after)],
            }
            for before, after in matrix.upgrades()
        ],
    }


def render_json(matrix: Matrix) -> str:
    return json.dumps(matrix_dict(matrix), indent=2)


# ---- JUnit --------------------------------------------------------------------------------------
def _suite(matrix: Matrix, run: VersionRun) -> ET.Element:
    """lab/report.py's suite for one version, named after it; its cases get the version as
    class name, so a CI tool keeps the same scenario on two versions apart."""
    suite = ET.fromstring(render_junit(matrix.results(run.label), _meta(run)))
    suite.set("name", f"registry-pull-lab {run.label}")
    classname = f"kubernetes-{run.label.replace('.', '_')}"
    for case in suite.iter("testcase"):
        case.set("classname", classname)
    properties = ET.Element("properties")
    for name, value in (("kubernetes", run.kubernetes), ("runtime", _runtime(run))):
        ET.SubElement(properties, "property", name=name, value=value)
    suite.insert(0, properties)
    return suite


def render_junit_matrix(matrix: Matrix) -> str:
    """<testsuites> with one <testsuite> per version, one <testcase> per scenario."""
    suites = [_suite(matrix, run) for run in matrix.versions]
    root = ET.Element("testsuites", name=TITLE)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(s.get(key) or 0) for s in suites)))
    root.set("time", f"{sum(run.seconds for run in matrix.versions):.2f}")
    root.extend(suites)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def write_matrix(matrix: Matrix, out_dir: Path) -> list[Path]:
    """matrix.md, matrix.html, matrix.json and junit-matrix.xml in ``out_dir``, each written
    whole or not at all; returns the paths written. Links to each version's own report are
    relative to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "matrix.md": render_markdown(matrix, out_dir),
        "matrix.html": render_html(matrix, out_dir),
        "matrix.json": render_json(matrix),
        "junit-matrix.xml": render_junit_matrix(matrix),
    }
    return write_files(out_dir, files)
