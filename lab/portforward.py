"""`kubectl port-forward` to a pod, held open while the lab pushes into a registry that runs
inside a cluster it did not make: the only way in that every cluster offers.

kubectl picks a free loopback port and prints it; the forward ends with ``close()``.
"""

from __future__ import annotations

import re
import selectors
import subprocess
import threading
import time
from pathlib import Path

from lab.errors import LabError
from lab.signals import shielded

FORWARDING = re.compile(rb"Forwarding from 127\.0\.0\.1:(\d+) ->")


class PortForward:
    def __init__(
        self, kubectl: Path, kubeconfig: Path, namespace: str, pod: str, port: int
    ) -> None:
        self.argv = [
            str(kubectl),
            f"--kubeconfig={kubeconfig}",
            f"--namespace={namespace}",
            "port-forward",
            "--address=127.0.0.1",
            f"pod/{pod}",
            f":{port}",
        ]
        self.target = f"pod/{pod}:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.local_port = 0

    def open(self, timeout: float = 20.0) -> int:
        """Start kubectl and return the loopback port once it says it is forwarding."""
        self.process = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        assert self.process.stdout is not None
        seen = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                line = self.process.stdout.readline()
                if not line:  # kubectl exited
                    break
                seen += line
                if match := FORWARDING.search(line):
                    self.local_port = int(match.group(1))
                    # kubectl says a line per connection: read them, or its pipe fills and
                    # the forward stalls.
                    threading.Thread(target=self.process.stdout.read, daemon=True).start()
                    return self.local_port
        self.close()
        said = seen.decode(errors="replace").strip().replace("\n", " | ")[-300:]
        raise LabError(f"kubectl port-forward to {self.target} did not start: {said or 'silent'}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reopen(self, attempts: int = 10) -> int:
        """A forward that ended (its kubelet restarted, say) started again; while the kubelet
        is still down each try fails at once, so a few are made."""
        self.close()
        for attempt in range(attempts):
            try:
                return self.open()
            except LabError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1)  # the node's kubelet comes back within seconds
        raise AssertionError("unreachable")

    def close(self) -> None:
        with shielded():
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
