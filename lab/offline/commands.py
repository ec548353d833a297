"""Run a build command, keep its whole output in a log, and fail with one line that says why."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.errors import StepFailed
from lab.offline import heartbeat

# Lines that say nothing about the cause; the line before them usually does.
_NOISE = ("exit status", "make: ***", "Error: exit", "error: exit")

# Commands running now, on any lane of the build (lab/offline/pipeline.py stops the side lane's).
_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()
_stopped = threading.Event()  # set by terminate_running: no new command starts


def allow_running() -> None:
    """A new build starts: commands may run again."""
    _stopped.clear()


def terminate_running() -> None:
    """Ask every build command still running to stop (SIGTERM), and start no new one: the
    build was interrupted or failed on another lane, and a side lane between two commands
    of its step must not go on writing into the cache either."""
    with _running_lock:
        _stopped.set()
        procs = list(_running)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()


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
    if _stopped.is_set():
        raise StepFailed(step, "stopped: the build was interrupted or failed on another lane")
    heartbeat.doing(doing or describe(args))
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.Popen(
            [str(a) for a in args],
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if input is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    except FileNotFoundError as exc:
        raise StepFailed(step, f"{args[0]} is not installed", "run `pull-lab host-prep`") from exc
    with _running_lock:
        _running.add(proc)
        if _stopped.is_set():  # stopped while this one was starting
            proc.terminate()
    try:
        stdout, _ = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise StepFailed(step, f"{args[0]} did not finish within {timeout:.0f}s") from exc
    except BaseException:  # Ctrl-C: the command must not outlive the build
        proc.kill()
        proc.wait()
        raise
    finally:
        with _running_lock:
            _running.discard(proc)
    out = stdout.decode(errors="replace")
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as f:
            f.write(f"$ {' '.join(str(a) for a in args)}\n{out}\n")
    if proc.returncode != 0:
        hint = f"full output in {log}" if log else ""
        raise StepFailed(step, last_meaningful_line(out), hint)
    return out
