"""Helpers for the reliability tests: run `pull-lab` as a user would, signal it, look around."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.reliability)
            item.add_marker(pytest.mark.e2e)
    # The order (the Docker restart last) is set for the whole suite in tests/conftest.py.


@dataclass
class LabProcess:
    """A `pull-lab` command in the background whose output lines can be waited for."""

    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    seen: threading.Condition = field(default_factory=threading.Condition)
    done: bool = False

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self.seen:
                self.lines.append(raw.rstrip("\n"))
                self.seen.notify_all()
        with self.seen:
            self.done = True
            self.seen.notify_all()

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self.seen:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.done:
                    raise AssertionError(
                        f"no such line within {timeout}s; last lines: {self.lines[-15:]}"
                    )
                self.seen.wait(remaining)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 300) -> int:
        return self.proc.wait(timeout=timeout)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def start_pull_lab(*args: str, env: dict[str, str]) -> LabProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # signals go to it alone, as from a job controller
    )
    lab = LabProcess(proc)
    threading.Thread(target=lab._pump, daemon=True).start()
    return lab


def leftovers(name: str, cache: Path) -> list[str]:
    """Everything a run named ``name`` could leave: containers, networks, volumes, state."""
    found = []
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found += [f"container {c}" for c in out]
    nets = subprocess.run(
        ["docker", "network", "ls", "--filter", f"name={name}", "--format", "{{.Name}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found += [f"network {n}" for n in nets]
    state = cache / "clusters" / name
    if state.exists():
        found.append(f"state dir {state}: {sorted(p.name for p in state.iterdir())}")
    return found


def dangling_volumes() -> set[str]:
    out = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", "dangling=true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


SIGINT, SIGTERM = signal.SIGINT, signal.SIGTERM
