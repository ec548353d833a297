"""A versioned build cache outside the repo: entries appear whole or not at all."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.settings import DEFAULT_CACHE_DIR
from lab.signals import shielded


def cache_key(*parts: object) -> str:
    """A short stable digest of the inputs that decide a build's output."""
    blob = json.dumps([str(p) for p in parts], separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class BuildCache:
    """Entries live at ``root/<step>/<key>``; a half-built entry is never visible there.

    A build writes into a temporary sibling directory and is renamed into place only
    after it succeeded, so an interrupted run leaves nothing a later run would trust.
    """

    def __init__(self, root: Path = DEFAULT_CACHE_DIR) -> None:
        self.root = Path(root)

    def entry(self, step: str, key: str) -> Path:
        return self.root / step / key

    def has(self, step: str, key: str) -> bool:
        return self.entry(step, key).is_dir()

    def logs(self) -> Path:
        return self.root / "logs"

    def build(self, step: str, key: str, produce: Callable[[Path], None]) -> Path:
        final = self.entry(step, key)
        if final.is_dir():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{key}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            produce(tmp)
            os.rename(tmp, final)
        except BaseException:
            with shielded():
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def sweep_partial(self) -> list[Path]:
        """Remove temp dirs left by runs that were killed before they could clean up."""
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        for tmp in self.root.glob("*/.tmp-*"):
            pid = tmp.name.rsplit("-", 1)[-1]
            if pid.isdigit() and Path(f"/proc/{pid}").exists():
                continue  # another live build owns it
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
        return removed

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize builds of two runs on one machine; reads need no lock."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
