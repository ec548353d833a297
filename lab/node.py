"""Registry configuration on the kind node, the tutorial's way, every change undone at the end.

The tutorial moves files away with ``mv x{,.bak}`` and back again; ``NodeChanges`` does the
same and remembers each step, so ``restore()`` puts the node back exactly as it was, in
reverse order, even after a failed scenario.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Protocol

from lab.errors import LabError
from lab.pki import CERTS_D
from lab.signals import shielded

# The kubelet looks for node credentials in its root dir first (--root-dir, /var/lib/kubelet),
# then its working dir, then $HOME/.docker and /.docker. kind's kubelet unit sets no User= and
# so no $HOME: the tutorial's ~/.docker/config.json (/root/.docker) is never read there.
KUBELET_CONFIG_JSON = "/var/lib/kubelet/config.json"
TUTORIAL_CONFIG_JSON = "/root/.docker/config.json"
BACKUP_SUFFIX = ".lab-bak"


class NodeExec(Protocol):
    def node_exec(self, *args: str, input: bytes | None = None, check: bool = True) -> str: ...


@dataclass
class NodeChanges:
    """File changes on one node, recorded so they can all be undone."""

    node: NodeExec
    undo: list[list[str]] = field(default_factory=list)

    def sh(self, script: str, input: bytes | None = None, check: bool = True) -> str:
        return self.node.node_exec("sh", "-c", script, input=input, check=check)

    def exists(self, path: str) -> bool:
        return self.sh(f"test -e {shlex.quote(path)} && echo yes || echo no").strip() == "yes"

    def move_away(self, path: str) -> bool:
        """``mv path{,.bak}``; returns False when there was nothing to move."""
        if not self.exists(path):
            return False
        q, bak = shlex.quote(path), shlex.quote(path + BACKUP_SUFFIX)
        self.sh(f"rm -rf {bak} && mv {q} {bak}")
        self.undo.append(["sh", "-c", f"rm -rf {q} && mv {bak} {q}"])
        return True

    def write(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file; the file it replaces (or its absence) comes back on restore."""
        q = shlex.quote(path)
        if self.exists(path):
            self.move_away(path)
        else:
            self.undo.append(["sh", "-c", f"rm -rf {q}"])
        self.sh(f'mkdir -p "$(dirname {q})" && cat > {q} && chmod {mode:o} {q}', input=data)

    def make_dir(self, path: str) -> None:
        q = shlex.quote(path)
        if not self.exists(path):
            self.undo.append(["sh", "-c", f"rm -rf {q}"])
            self.sh(f"mkdir -p {q}")

    def restore(self) -> list[str]:
        """Undo every change, newest first; return the errors instead of stopping at one."""
        with shielded():
            return self._restore()

    def _restore(self) -> list[str]:
        errors = []
        while self.undo:
            cmd = self.undo.pop()
            try:
                self.node.node_exec(*cmd)
            except LabError as exc:
                errors.append(str(exc))
        return errors


# What node-level tests may change and must leave as they found it.
NODE_STATE_SCRIPT = (
    f"find {CERTS_D} -printf '%p %m %s\\n' 2>/dev/null | sort; "
    f"sha256sum {KUBELET_CONFIG_JSON} {TUTORIAL_CONFIG_JSON} /.docker/config.json 2>/dev/null; "
    "systemctl is-active kubelet containerd"
)


def node_state(node: NodeExec) -> str:
    """A fingerprint of the node's registry configuration and its services."""
    return node.node_exec("sh", "-c", NODE_STATE_SCRIPT, check=False)


def certs_dir(host: str) -> str:
    return f"{CERTS_D}/{host}"


def docker_config_json(auths: dict[str, dict]) -> bytes:
    return json.dumps({"auths": auths}, indent=2).encode()


@dataclass
class NodeRegistryConfig:
    """CA, client pair and kubelet credentials for registries, on the node."""

    changes: NodeChanges
    credentials_touched: bool = False

    def restore(self) -> list[str]:
        """Undo every change; a kubelet that saw other credentials is restarted, since it
        caches node credentials for minutes and would carry them into the next test."""
        with shielded():
            return self._restore()

    def _restore(self) -> list[str]:
        errors = self.changes.restore()
        if self.credentials_touched:
            try:
                self.restart_kubelet()
            except LabError as exc:
                errors.append(str(exc))
            self.credentials_touched = False
        return errors

    # ---- TLS -----------------------------------------------------------------------------
    def install_ca(self, host: str, ca_pem: bytes) -> str:
        path = f"{certs_dir(host)}/ca.crt"
        self.changes.make_dir(certs_dir(host))
        self.changes.write(path, ca_pem)
        return path

    def install_client_pair(self, host: str, cert_pem: bytes, key_pem: bytes) -> None:
        self.changes.make_dir(certs_dir(host))
        self.changes.write(f"{certs_dir(host)}/client.cert", cert_pem)
        self.changes.write(f"{certs_dir(host)}/client.key", key_pem, mode=0o600)

    def install_hosts_toml(self, host: str, text: str) -> None:
        self.changes.make_dir(certs_dir(host))
        self.changes.write(f"{certs_dir(host)}/hosts.toml", text.encode())

    def remove_registry_dir(self, host: str) -> bool:
        return self.changes.move_away(certs_dir(host))

    # ---- credentials ----------------------------------------------------------------------
    def set_credentials(self, auths: dict[str, dict], path: str = KUBELET_CONFIG_JSON) -> None:
        self.credentials_touched = True
        self.changes.write(path, docker_config_json(auths), mode=0o600)

    def remove_credentials(self, path: str = KUBELET_CONFIG_JSON) -> bool:
        moved = self.changes.move_away(path)
        self.credentials_touched |= moved
        return moved

    # ---- kubelet and images -------------------------------------------------------------
    def restart_kubelet(self, timeout: int = 60) -> float:
        """Restart the kubelet (it caches node credentials for 5 minutes); wait until healthy."""
        started = time.monotonic()
        self.changes.sh("systemctl restart kubelet")
        # curl retries the kubelet's health endpoint until it answers or the deadline passes.
        out = self.changes.sh(
            f"curl -sf --retry {timeout} --retry-connrefused --retry-delay 1 --max-time {timeout} "
            "http://127.0.0.1:10248/healthz || true"
        )
        if out.strip() != "ok":
            raise LabError(
                f"kubelet not healthy {timeout}s after a restart", "see journalctl -u kubelet"
            )
        return time.monotonic() - started

    def image_present(self, ref: str) -> bool:
        out = self.changes.sh(
            f"crictl inspecti -q {shlex.quote(ref)} >/dev/null 2>&1 && echo yes || echo no"
        )
        return out.strip() == "yes"

    def remove_image(self, ref: str) -> bool:
        """Drop a cached image, as the tutorial's `docker rmi`; False when it was not there."""
        if not self.image_present(ref):
            return False
        self.changes.sh(f"crictl rmi {shlex.quote(ref)}")
        return True

    def read(self, path: str) -> str:
        return self.changes.sh(f"cat {shlex.quote(path)}")
