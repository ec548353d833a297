"""Interruptions: SIGTERM behaves like Ctrl-C, and cleanup cannot be cut short.

The first SIGINT or SIGTERM stops the work (KeyboardInterrupt) and cleanup runs; any later
one only says that cleanup is under way, so the external resources (containers, networks,
clusters, key files) are always removed. `kill -9` remains the way to stop without cleanup,
and `pull-lab down` clears what that leaves.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_state = {"interrupted": False}


def _first_interrupts_then_waits(signum: int, frame: object) -> None:
    if _state["interrupted"]:
        os.write(2, b"pull-lab: cleaning up what this run made, please wait\n")
        return
    _state["interrupted"] = True
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def terminate_like_interrupt() -> None:
    """Install the handler for SIGINT and SIGTERM (CI cancelling a job, `kill`)."""
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            signal.signal(sig, _first_interrupts_then_waits)


@contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done; they are delivered right after.

    Child processes started inside inherit the mask, so `kind delete` or `docker rm` also
    finish instead of dying halfway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
