"""One cluster, several processes: file locks and a users file, so the first creates and the
last one out deletes.

`pytest -n N` starts N worker processes that each run the session fixtures; they must share one
cluster, not race to make N. The lock serialises bring-up; the users file counts who is still
using what was made. Both live in the cache dir, next to the cluster's state, and `pull-lab
down` removes what a killed run left of them.

>>> use = SharedUse(cache_dir / ".cluster-x.lock", cache_dir / ".cluster-x.users", "gw0")
>>> with use.locked():
...     use.join()
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


@contextlib.contextmanager
def file_lock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold ``path`` locked (readers-writer: ``shared`` readers, one exclusive writer) across
    processes. The lock goes with the process, so a killed holder never blocks the next run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def try_lock(path: Path, shared: bool = False) -> TextIO | None:
    """``path`` locked like ``file_lock`` but without waiting: the open file (closing it lets
    go), or None when another holder's lock conflicts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a")  # noqa: SIM115 - the caller closes it to let go of the lock
    try:
        fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


@dataclass(frozen=True)
class SharedUse:
    """Who uses a shared resource right now, by process name (an xdist worker id or "main").

    Call ``join``/``leave`` inside ``locked()``: a user reads, decides and writes in one step.
    """

    lock_path: Path
    users_path: Path
    me: str

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.lock_path)

    def users(self) -> set[str]:
        return set(self.users_path.read_text().split()) if self.users_path.exists() else set()

    def join(self) -> None:
        self.users_path.write_text(" ".join(sorted(self.users() | {self.me})))

    def leave(self) -> bool:
        """Drop ``me``; True when nobody is left (the caller then removes what was shared)."""
        rest = self.users() - {self.me}
        if rest:
            self.users_path.write_text(" ".join(sorted(rest)))
            return False
        self.users_path.unlink(missing_ok=True)
        return True

    def forget(self) -> None:
        """Remove the users and lock files (the resource is gone, or never came up)."""
        self.users_path.unlink(missing_ok=True)
        self.lock_path.unlink(missing_ok=True)
