"""Run a build command, keep its whole output in a log, and fail with one line that says why."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.errors import StepFailed
from lab.offline import heartbeat

# Lines that say nothing about the cause; the line before them usually does.
_NOISE = ("exit status", "make: ***", "Error: exit", "error: exit")


def last_meaningful_line(output: str) -> str:
    """The line a person needs from a failed command: the last one that is not noise.

    An indented last line continues the one above it (Go prints "server response:" that way),
    so the two are joined.
    """
    raw = [ln.rstrip() for ln in output.splitlines() if ln.strip()]
    for i in range(len(raw) - 1, -1, -1):
        line = raw[i].strip()
        if line.startswith(_NOISE):
            continue
        if raw[i][0].isspace() and i > 0 and not raw[i - 1][0].isspace():
            line = f"{raw[i - 1].strip()} {line}"
        return line[:400]
    return raw[-1].strip()[:400] if raw else "no output"


def describe(args: Sequence[str | os.PathLike[str]]) -> str:
    """A command's name for a heartbeat line: the program and its subcommands, no options or
    paths (``go mod download``, ``docker load``)."""
    words = [Path(str(args[0])).name] if args else []
    for arg in args[1:]:
        text = str(arg)
        if isinstance(arg, os.PathLike) or text.startswith("-") or "/" in text or len(words) == 3:
            break
        words.append(text)
    return " ".join(words)


def run(
    step: str,
    args: Sequence[str | os.PathLike[str]],
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input: bytes | None = None,
    timeout: float | None = None,
    doing: str | None = None,
) -> str:
    """Run ``args``; on failure raise StepFailed naming ``step`` and the cause.

    Output goes to ``log`` (appended) when given, so a long build leaves a full record
    while the person sees one line, and the step's heartbeat says ``doing`` (default: the
    command's name) until the next command.
    """
    heartbeat.doing(doing or describe(args))
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env=full_env,
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise StepFailed(step, f"{args[0]} is not installed", "run `pull-lab host-prep`") from exc
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(step, f"{args[0]} did not finish within {timeout:.0f}s") from exc
    out = proc.stdout.decode(errors="replace")
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as f:
            f.write(f"$ {' '.join(str(a) for a in args)}\n{out}\n")
    if proc.returncode != 0:
        hint = f"full output in {log}" if log else ""
        raise StepFailed(step, last_meaningful_line(out), hint)
    return out
