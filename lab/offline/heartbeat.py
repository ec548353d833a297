"""Signs of life for long build steps.

The Go build of Kubernetes runs for minutes with its output going to a log file; with one line
at its start, a person (or a CI job's idle timeout) cannot tell it from a hang. A heartbeat says
what the step is doing and for how long, every ``interval`` seconds, as plain lines that read
well in a CI log; on a terminal it keeps one live line instead:

    [build:offline 2/12] go-kubernetes: building kube-apiserver (2/7) ... 45s

    with Heartbeat("[build:offline 2/12] go-kubernetes", sys.stderr):
        doing("building kube-apiserver (2/7)")

Code deep inside a step names its current activity with :func:`doing` without being handed
the heartbeat (`commands.run` does it for every command); outside a heartbeat that is a no-op.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TextIO

DEFAULT_INTERVAL = 15.0
LIVE_INTERVAL = 1.0  # a live line is cheap to redraw: once a second reads as a clock
_CLEAR_LINE = "\r\x1b[2K"

_current: ContextVar[Heartbeat | None] = ContextVar("lab_heartbeat", default=None)


def doing(activity: str) -> None:
    """Tell the heartbeat of the step running in this context what it is doing now."""
    beat = _current.get()
    if beat is not None:
        beat.doing(activity)


def format_elapsed(seconds: float) -> str:
    """``45s``, ``6m05s``: whole seconds, as a person reads a stopwatch."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    return f"{whole // 60}m{whole % 60:02d}s"


def is_terminal(out: TextIO) -> bool:
    """A live line needs a terminal that understands carriage return and line clearing."""
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Heartbeat:
    """A background thread that reports ``prefix: activity ... elapsed`` until the block ends.

    It stops when the block ends, however it ends (an exception, Ctrl-C): ``__exit__`` sets an
    event the thread waits on and joins it, so no line follows the step's own result line. A
    failing write (a closed pipe) ends the heartbeat, never the build.
    """

    def __init__(
        self,
        prefix: str,
        out: TextIO,
        *,
        interval: float = DEFAULT_INTERVAL,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self.out = out
        self.live = is_terminal(out) if live is None else live
        self.interval = min(interval, LIVE_INTERVAL) if self.live else interval
        self._clock = clock
        self._started = clock()
        self._activity = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._token: Token[Heartbeat | None] | None = None
        self._drawn = False  # a live line is on the screen and must be cleared at the end

    def doing(self, activity: str) -> None:
        with self._lock:
            self._activity = activity

    def line(self) -> str:
        """What the next beat says."""
        with self._lock:
            activity = self._activity
        what = f"{activity} ... " if activity else "... "
        return f"{self.prefix}: {what}{format_elapsed(self._clock() - self._started)}"

    def beat(self) -> bool:
        """Write one beat; False when the stream cannot take it any more."""
        text = f"{_CLEAR_LINE}{self.line()}" if self.live else f"{self.line()}\n"
        try:
            self.out.write(text)
            self.out.flush()
        except (OSError, ValueError):  # closed pipe or stream: stop beating, keep building
            return False
        self._drawn = self.live
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.beat():
                return

    def __enter__(self) -> Heartbeat:
        self._started = self._clock()
        self._token = _current.set(self)
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat {self.prefix}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """End the beats; idempotent. A live line is cleared for the line that follows."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        if self._drawn:
            self._drawn = False
            try:
                self.out.write(_CLEAR_LINE)
                self.out.flush()
            except (OSError, ValueError):
                pass
