"""kubectl as the lab runs it: the cluster's kubeconfig, a namespace, and a transcript entry
for every command, showing it as a reader would type it.

One runner for everything that shells out to kubectl (a scenario's steps, the tutorial's
``kubectl create secret``, ``kubectl describe``), so each command line is shown the same way:
the kubeconfig is left out, the runner's own namespace too; another namespace is shown as
``--namespace=``, stdin by its name only (``< secret.yaml``).

>>> kubectl = Kubectl(Path("kubectl"), Path("kubeconfig"), transcript, namespace="lab-1")
>>> kubectl.run("get", "pod", "p", title="kubectl get pod p")
"""

from __future__ import annotations

import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.transcript import Transcript


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    kubeconfig: Path
    transcript: Transcript
    namespace: str | None = None  # passed to every command, and left out of the line shown

    def argv(self, args: tuple[str, ...], namespace: str | None = None) -> list[str]:
        argv = [str(self.binary), f"--kubeconfig={self.kubeconfig}"]
        if namespace or self.namespace:
            argv.append(f"--namespace={namespace or self.namespace}")
        return [*argv, *args]

    def shown(
        self, args: tuple[str, ...], namespace: str | None = None, input_name: str | None = None
    ) -> str:
        """The command line for a reader: no kubeconfig, no default namespace."""
        words = ["kubectl", *args]
        if namespace and namespace != self.namespace:
            words.append(f"--namespace={namespace}")
        return shlex.join(words) + (f" < {input_name}" if input_name else "")

    def execute(
        self, *args: str, input: bytes | None = None, namespace: str | None = None
    ) -> tuple[int, str, float]:
        """Run kubectl without recording it: exit status, stdout then stderr, and seconds."""
        started = time.monotonic()
        proc = subprocess.run(
            self.argv(args, namespace), input=input, capture_output=True, check=False
        )
        output = (proc.stdout + proc.stderr).decode(errors="replace")
        return proc.returncode, output, time.monotonic() - started

    def run(
        self,
        *args: str,
        title: str | None = None,
        input: bytes | None = None,
        input_name: str | None = None,
        check: bool = True,
        namespace: str | None = None,
    ) -> str:
        """Run kubectl and record it as it ran, with its real output (also when it fails).

        ``check``: a non-zero exit raises ``LabError`` with kubectl's message."""
        status, output, seconds = self.execute(*args, input=input, namespace=namespace)
        line = self.shown(args, namespace, input_name)
        self.transcript.add(title or f"kubectl {args[0]}", line, output, seconds)
        if check and status != 0:
            raise LabError(f"kubectl {' '.join(args[:3])} failed: {output.strip()[:300]}")
        return output
