"""The lab's report: per scenario, a transcript in the tutorial's form, expected vs observed,
differences from the tutorial, timings and an event timeline, as Markdown, a self-contained
HTML page, JSON and JUnit XML. Everything here was masked when it was recorded; it is masked
again on the way out, in case a caller handed in raw text."""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree as ET

from lab.errors import LabError
from lab.masking import mask
from lab.results import OUTCOMES, PodEvent, ScenarioResult
from lab.transcript import TranscriptStep

TIMELINE_REASONS = (
    "Scheduled",
    "Pulling",
    "Failed",
    "BackOff",
    "Pulled",
    "Created",
    "Started",
    "FailedToRetrieveImagePullSecret",
)
COLORS = {
    "Scheduled": "#6b7280",
    "Pulling": "#2563eb",
    "Failed": "#dc2626",
    "BackOff": "#d97706",
    "Pulled": "#059669",
    "Created": "#7c3aed",
    "Started": "#16a34a",
    "FailedToRetrieveImagePullSecret": "#be123c",
}
FORMATS = ("md", "html", "json", "xml")


@dataclass(frozen=True)
class ReportMeta:
    title: str
    kubernetes: str
    images: str
    started: str
    seconds: float
    runtime: str = ""  # the nodes' container runtime (containerd://2.3.4); "" when none ran


def runtime_text(meta: ReportMeta) -> str:
    """', containerd 2.3.4' from the node's 'containerd://2.3.4'; nothing when none was read."""
    if not meta.runtime:
        return ""
    name, _, version = meta.runtime.partition("://")
    return f", {name} {version}" if version else f", {meta.runtime}"


def check_writable(report_dir: Path) -> None:
    """Fail before running anything if the report cannot be written there."""
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=report_dir, prefix=".probe-"):
            pass
    except OSError as exc:
        raise LabError(
            f"cannot write the report to {report_dir}: {exc.strerror or exc}",
            "pass --report-dir with a writable directory",
        ) from exc


def atomic_write(path: Path, text: str) -> None:
    """No half-written report: write a temp file beside it, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(mask(text))
        os.chmod(tmp, 0o644)  # a report holds no secret: readable like any other file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def summary(results: Sequence[ScenarioResult]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    return counts


def summary_text(counts: dict[str, int]) -> str:
    """`1 passed, 0 failed, 2 errors, 0 skipped`: pytest's words."""
    errors = counts["error"]
    return (
        f"{counts['passed']} passed, {counts['failed']} failed, "
        f"{errors} error{'' if errors == 1 else 's'}, {counts['skipped']} skipped"
    )


# ---- transcripts --------------------------------------------------------------------------------
# What a reader sees above each step in HTML: what kind of thing it is, and whether it ran.
STEP_LABELS = {
    "command": "command, ran",
    "http": "HTTP request, made",
    "file": "file, written by the lab",
    "note": "note, not run",
}


def _prefixed(prefix: str, text: str) -> list[str]:
    return [f"{prefix}{line}".rstrip() for line in text.splitlines()]


def step_text(step: TranscriptStep) -> str:
    """One step in console form; the four kinds look different so nothing narrated can pass
    for output (lab/transcript.py says what each kind holds)."""
    kind, command, output = step.kind, step.command, step.output
    if kind == "note":
        return "\n".join([f"# note (not run): {step.title}", *_prefixed("#   ", output)])
    lines = [f"# {step.title}"]
    if kind == "http":
        lines += [*_prefixed("> ", command), *_prefixed("< ", output)]
    elif kind == "file":
        lines += [f"--- {command} (written by the lab) ---", *output.splitlines()]
    else:
        lines += [f"$ {command}"] if command else []
        lines += [output] if output else []
    return "\n".join(lines)


def transcript_text(steps: Sequence[TranscriptStep]) -> str:
    """Steps in the tutorial's console form: `# what`, `$ command`, then its output."""
    return "\n".join(step_text(step) for step in steps)


def transcript_html(steps: Sequence[TranscriptStep]) -> str:
    """The same text as Markdown shows, a block per step with its kind as class and label."""
    blocks = []
    for step in steps:
        kind = step.kind if step.kind in STEP_LABELS else "command"
        blocks.append(
            f"<div class='step step-{kind}'><span class='kind'>{STEP_LABELS[kind]}</span>"
            f"<pre>{html.escape(step_text(step))}</pre></div>"
        )
    return "<div class='transcript'>" + "".join(blocks) + "</div>"


# ---- Markdown ---------------------------------------------------------------------------------
def render_markdown(results: Sequence[ScenarioResult], meta: ReportMeta) -> str:
    counts = summary(results)
    lines = [
        f"# {meta.title}",
        "",
        f"Kubernetes {meta.kubernetes}{runtime_text(meta)}, images: {meta.images}, "
        f"started {meta.started}, "
        f"{meta.seconds:.0f}s. **{summary_text(counts)}.**",
        "",
        "| scenario | outcome | seconds | tutorial |",
        "| --- | --- | ---: | --- |",
    ]
    for r in results:
        lines.append(f"| [{r.id}](#{r.id}) | {r.outcome} | {r.seconds:.1f} | {r.tutorial} |")
    for r in results:
        lines += [
            "",
            f"## {r.id}",
            "",
            f"{r.title} — *{r.tutorial}* — **{r.outcome}**",
            "",
        ]
        if r.error:
            lines += ["```", r.error, "```", ""]
        if r.nodes:
            lines += [nodes_line(r), ""]
        if r.expected:
            lines += ["**Expected**", "", *(f"- {e}" for e in r.expected), ""]
        if r.observed:
            lines += ["**Observed**", "", *(f"- `{o}`" for o in r.observed), ""]
        if r.differences:
            lines += ["**Tutorial vs today**", "", *(f"- {d}" for d in r.differences), ""]
        if r.timings:
            lines += ["**Timings**", "", *(f"- {k}: {v:.1f}s" for k, v in r.timings), ""]
        if r.events:
            lines += [
                "**Events**",
                "",
                "| pod | type | reason | count | message |",
                "| --- | --- | --- | ---: | --- |",
            ]
            for e in r.events:
                msg = e.message.replace("|", "\\|")
                lines.append(f"| {e.pod} | {e.type} | {e.reason} | {e.count} | {msg} |")
            lines.append("")
        if r.transcript:
            lines += ["**Transcript**", "", "```console", transcript_text(r.transcript), "```"]
    return "\n".join(lines) + "\n"


def nodes_line(r: ScenarioResult) -> str:
    """The nodes the scenario held (alone when node-level) and where each of its pods was."""
    held = "alone" if r.node_level else "shared"
    pods = ", ".join(f"{pod} on {node or 'no node'}" for pod, node in r.pod_nodes)
    return f"**Nodes**: {', '.join(r.nodes)} ({held})" + (f"; pods: {pods}" if pods else "")


# ---- HTML -------------------------------------------------------------------------------------
def _parse(ts: str | None) -> float | None:
    return datetime.fromisoformat(ts).timestamp() if ts else None


def timeline_svg(events: Sequence[PodEvent], width: int = 760) -> str:
    """Who did what when: a row per reason, a mark from an event's first to last time."""
    points = [(e, _parse(e.first), _parse(e.last)) for e in events if e.first]
    if not points:
        return '<p class="muted">no events recorded</p>'
    start = min(p[1] for p in points if p[1] is not None)
    end = max((p[2] or p[1] or start) for p in points)
    span = max(end - start, 1.0)
    reasons = [r for r in TIMELINE_REASONS if any(p[0].reason == r for p in points)]
    reasons += sorted({p[0].reason for p in points} - set(reasons))
    left, row_h, top = 210, 22, 10
    height = top + row_h * len(reasons) + 30
    scale = (width - left - 20) / span
    parts = [
        f'<svg class="timeline" width="{width}" height="{height}" role="img" '
        'aria-label="event timeline">'
    ]
    for i, reason in enumerate(reasons):
        y = top + i * row_h
        parts.append(f'<text x="4" y="{y + 15}" class="lbl">{html.escape(reason)}</text>')
        parts.append(
            f'<line x1="{left}" y1="{y + 11}" x2="{width - 10}" y2="{y + 11}" class="grid"/>'
        )
    for e, first, last in points:
        y = top + reasons.index(e.reason) * row_h
        x1 = left + ((first or start) - start) * scale
        x2 = left + ((last or first or start) - start) * scale
        color = COLORS.get(e.reason, "#374151")
        tip = html.escape(f"{e.pod}: {e.reason} x{e.count}: {e.message}")
        parts.append(
            f'<rect x="{x1:.1f}" y="{y + 4}" width="{max(x2 - x1, 6):.1f}" height="14" rx="3" '
            f'fill="{color}"><title>{tip}</title></rect>'
        )
        if e.count > 1:
            parts.append(f'<text x="{x2 + 9:.1f}" y="{y + 15}" class="cnt">x{e.count}</text>')
    axis_y = top + row_h * len(reasons) + 14
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = left + frac * span * scale
        label = f"+{frac * span:.1f}s" if span < 10 else f"+{frac * span:.0f}s"
        parts.append(f'<text x="{x:.1f}" y="{axis_y}" class="tick">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#111827;max-width:1100px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-top:1px solid #e5e7eb;padding-top:16px}
table{border-collapse:collapse}td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:left}
.passed{color:#15803d}.failed{color:#b91c1c}.error{color:#9a3412;font-weight:600}
.skipped{color:#6b7280}.muted{color:#6b7280}
pre{background:#f9fafb;border:1px solid #e5e7eb;padding:8px;overflow-x:auto;font-size:12px}
.lbl{font-size:12px;fill:#374151}.tick{font-size:11px;fill:#6b7280}.cnt{font-size:11px;fill:#111827}
.grid{stroke:#f3f4f6}
.step{margin:6px 0}.step pre{margin:0}
.kind{display:inline-block;font-size:11px;color:#374151;background:#e5e7eb;padding:0 6px}
.step-command pre{border-left:3px solid #2563eb}.step-http pre{border-left:3px solid #0891b2}
.step-file pre{border-left:3px solid #7c3aed}
.step-note pre{font-style:italic;color:#4b5563;background:#fffbeb;border:1px dashed #d97706}
.step-note .kind{background:#fef3c7;font-style:italic}
"""


def render_html(results: Sequence[ScenarioResult], meta: ReportMeta) -> str:
    esc = html.escape
    counts = summary(results)
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        # Nothing may load from anywhere: the page is one file, styles inline, no scripts.
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{esc(meta.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(meta.title)}</h1>",
        f"<p>Kubernetes {esc(meta.kubernetes)}{esc(runtime_text(meta))}, "
        f"images: {esc(meta.images)}, "
        f"started {esc(meta.started)}, "
        f"{meta.seconds:.0f}s: <b>{esc(summary_text(counts))}</b>.</p>",
        "<table><tr><th>scenario</th><th>outcome</th><th>seconds</th><th>tutorial</th></tr>",
    ]
    for r in results:
        out.append(
            f"<tr><td><a href='#{esc(r.id)}'>{esc(r.id)}</a></td>"
            f"<td class='{esc(r.outcome)}'>{esc(r.outcome)}</td><td>{r.seconds:.1f}</td>"
            f"<td>{esc(r.tutorial)}</td></tr>"
        )
    out.append("</table>")
    for r in results:
        out.append(f"<section class='scenario' id='{esc(r.id)}'>")
        out.append(f"<h2>{esc(r.id)} <span class='{esc(r.outcome)}'>{esc(r.outcome)}</span></h2>")
        out.append(f"<p>{esc(r.title)} — <i>{esc(r.tutorial)}</i></p>")
        if r.error:
            out.append(f"<pre class='{esc(r.outcome)}'>{esc(r.error)}</pre>")
        for label, items in (
            ("Expected", r.expected),
            ("Observed", r.observed),
            ("Tutorial vs today", r.differences),
        ):
            if items:
                out.append(
                    f"<h3>{label}</h3><ul>" + "".join(f"<li>{esc(x)}</li>" for x in items) + "</ul>"
                )
        if r.timings:
            out.append(
                "<h3>Timings</h3><ul>"
                + "".join(f"<li>{esc(k)}: {v:.1f}s</li>" for k, v in r.timings)
                + "</ul>"
            )
        out.append("<h3>Event timeline</h3>" + timeline_svg(r.events))
        if r.transcript:
            out.append("<h3>Transcript</h3>" + transcript_html(r.transcript))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


# ---- JUnit --------------------------------------------------------------------------------------
def render_junit(results: Sequence[ScenarioResult], meta: ReportMeta) -> str:
    counts = summary(results)
    suite = ET.Element(
        "testsuite",
        name="registry-pull-lab",
        tests=str(len(results)),
        failures=str(counts["failed"]),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"]),
        time=f"{meta.seconds:.2f}",
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname="scenarios", name=r.id, time=f"{r.seconds:.2f}"
        )
        if r.outcome in ("failed", "error"):
            # JUnit's words: <failure> an assertion in the test, <error> everything around it.
            tag = "failure" if r.outcome == "failed" else "error"
            message = (r.error or r.outcome)[:500]
            ET.SubElement(case, tag, message=message).text = r.error
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped", message=r.error[:500])
        ET.SubElement(case, "system-out").text = "\n".join(
            [
                *(f"expected: {e}" for e in r.expected),
                *(f"observed: {o}" for o in r.observed),
                *(f"differs: {d}" for d in r.differences),
            ]
        )
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def write_report(
    report_dir: Path, results: Sequence[ScenarioResult], meta: ReportMeta
) -> list[Path]:
    """Every format, each written whole or not at all; returns the paths written.

    >>> write_report(Path("lab-report"), [run.result("passed")], meta)
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    scenarios = [r.to_dict() for r in results]
    files = {
        "report.md": render_markdown(results, meta),
        "report.html": render_html(results, meta),
        "report.json": json.dumps({"meta": meta.__dict__, "scenarios": scenarios}, indent=2),
        "junit.xml": render_junit(results, meta),
    }
    return write_files(report_dir, files)


def write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Each file whole or not at all, masked once more on the way out; their paths."""
    written = []
    for name, text in files.items():
        path = directory / name
        atomic_write(path, text)
        written.append(path)
    return written
