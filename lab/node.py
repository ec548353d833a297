"""Registry configuration on the kind node, the tutorial's way, every change undone at the end.

The tutorial moves files away with ``mv x{,.bak}`` and back again; ``NodeChanges`` does the
same and remembers each step, so ``restore()`` puts the node back exactly as it was, in
reverse order, even after a failed scenario.

Each change can be shown as it really ran: given a ``recorder`` (a transcript's ``add``), every
command that changes the node is reported as the ``docker exec`` it was, with its real output
(stdout and stderr). Content written through stdin is named (``< ca.crt``), never shown: it
may be a key.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lab import credential_provider as cp
from lab.credential_provider import ProviderSetup
from lab.dockerconfig import config_json
from lab.errors import LabError
from lab.pki import CERTS_D
from lab.signals import shielded

# The kubelet looks for node credentials in its root dir first (--root-dir, /var/lib/kubelet),
# then its working dir, then $HOME/.docker and /.docker. kind's kubelet unit sets no User= and
# so no $HOME: the tutorial's ~/.docker/config.json (/root/.docker) is never read there.
KUBELET_CONFIG_JSON = "/var/lib/kubelet/config.json"
TUTORIAL_CONFIG_JSON = "/root/.docker/config.json"
BACKUP_SUFFIX = ".lab-bak"
RESTART_KUBELET = "systemctl restart kubelet"
# Changes with every start of the unit: a restart that really happened.
KUBELET_INVOCATION = "systemctl show -p InvocationID --value kubelet"
# Printed after a recorded script, so its exit status travels back with its output.
STATUS_MARK = "__pull_lab_exit="

# Called with (title, command, output, seconds) for each command that ran: Transcript.add.
Recorder = Callable[[str, str, str, float], None]


class NodeExec(Protocol):
    def node_exec(self, *args: str, input: bytes | None = None, check: bool = True) -> str: ...


@dataclass
class NodeChanges:
    """File changes on one node, recorded so they can all be undone (and, with a ``recorder``,
    shown as the commands that ran)."""

    node: NodeExec
    undo: list[list[str]] = field(default_factory=list)
    recorder: Recorder | None = None
    name: str = "node"  # the node's container, for the commands shown

    def sh(self, script: str, input: bytes | None = None, check: bool = True) -> str:
        return self.node.node_exec("sh", "-c", script, input=input, check=check)

    def execute(self, script: str, input: bytes | None = None) -> tuple[int, str]:
        """Run ``script`` with ``sh -c``; return its exit status and its stdout and stderr as
        they interleaved. A subshell keeps an ``exit`` in the script from losing the status."""
        wrapped = f"( {script}\n) 2>&1\nprintf '\\n{STATUS_MARK}%s\\n' \"$?\""
        raw = self.sh(wrapped, input=input, check=False)
        output, mark, status = raw.rpartition("\n" + STATUS_MARK)
        if not mark:  # the node did not run it at all (docker exec failed)
            return -1, raw
        return int(status.strip() or -1), output

    def command_line(self, script: str, input_name: str | None = None) -> str:
        """How ``script`` ran, as a command to read: stdin only by its name."""
        prefix = getattr(self.node, "exec_prefix", None)  # a node agent's kubectl exec
        if prefix is not None:
            line = f"{prefix} /bin/sh -c {shlex.quote(script)}"
            return line if input_name is None else f"{line} < {input_name}"
        if input_name is None:
            return f"docker exec {self.name} sh -c {shlex.quote(script)}"
        return f"docker exec -i {self.name} sh -c {shlex.quote(script)} < {input_name}"

    def run(
        self,
        title: str,
        script: str,
        input: bytes | None = None,
        input_name: str | None = None,
        check: bool = True,
    ) -> str:
        """Run a change on the node and report it to the recorder, even when it fails."""
        started = time.monotonic()
        status, output = self.execute(script, input)
        if self.recorder is not None:
            shown = self.command_line(script, input_name or ("stdin" if input else None))
            self.recorder(title, shown, output, time.monotonic() - started)
        if check and status != 0:
            raise LabError(
                f"on node {self.name}: {script} failed (exit {status}): {output.strip()[:300]}"
            )
        return output

    def exists(self, path: str) -> bool:
        return self.sh(f"test -e {shlex.quote(path)} && echo yes || echo no").strip() == "yes"

    def move_away(self, path: str) -> bool:
        """``mv path{,.bak}``; returns False when there was nothing to move."""
        if not self.exists(path):
            return False
        q, bak = shlex.quote(path), shlex.quote(path + BACKUP_SUFFIX)
        self.run(f"move {path} away", f"rm -rf {bak} && mv {q} {bak}")
        self.undo.append(["sh", "-c", f"rm -rf {q} && mv {bak} {q}"])
        return True

    def write(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file; the file it replaces (or its absence) comes back on restore."""
        q = shlex.quote(path)
        if self.exists(path):
            self.move_away(path)
        else:
            self.undo.append(["sh", "-c", f"rm -rf {q}"])
        self.run(
            f"write {path}",
            f'mkdir -p "$(dirname {q})" && cat > {q} && chmod {mode:o} {q}',
            input=data,
            input_name=path.rsplit("/", 1)[-1],
        )

    def make_dir(self, path: str) -> None:
        q = shlex.quote(path)
        if not self.exists(path):
            self.undo.append(["sh", "-c", f"rm -rf {q}"])
            self.run(f"create {path}", f"mkdir -p {q}")

    def restore(self) -> list[str]:
        """Undo every change, newest first; return the errors instead of stopping at one."""
        with shielded():
            return self._restore()

    def _restore(self) -> list[str]:
        errors = []
        while self.undo:
            cmd = self.undo.pop()
            script = cmd[2] if cmd[:2] == ["sh", "-c"] and len(cmd) == 3 else shlex.join(cmd)
            try:
                self.run("put the node back", script)
            except LabError as exc:
                errors.append(str(exc))
        return errors


# What node-level tests may change and must leave as they found it.
NODE_STATE_SCRIPT = (
    f"find {CERTS_D} -printf '%p %m %s\\n' 2>/dev/null | sort; "
    f"sha256sum {KUBELET_CONFIG_JSON} {TUTORIAL_CONFIG_JSON} /.docker/config.json "
    f"{cp.KUBELET_DEFAULTS} /var/lib/kubelet/config.yaml 2>/dev/null; "
    f"find {cp.LAB_NODE_DIR} {cp.REQUEST_LOG} 2>/dev/null; "
    "systemctl is-active kubelet containerd"
)


def node_state(node: NodeExec) -> str:
    """A fingerprint of the node's registry configuration and its services."""
    return node.node_exec("sh", "-c", NODE_STATE_SCRIPT, check=False)


def certs_dir(host: str) -> str:
    return f"{CERTS_D}/{host}"


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
        self.changes.write(path, config_json(auths, indent=2), mode=0o600)

    def remove_credentials(self, path: str = KUBELET_CONFIG_JSON) -> bool:
        moved = self.changes.move_away(path)
        self.credentials_touched |= moved
        return moved

    # ---- a credential provider plugin ----------------------------------------------------
    def install_credential_provider(self, setup: ProviderSetup, answers: bytes) -> None:
        """The lab's plugin, its config and its answers (0600), and the kubelet's flags naming
        them; the kubelet reads its flags at start, so it is restarted now and on restore."""
        self.changes.make_dir(cp.LAB_NODE_DIR)
        self.changes.write(f"{cp.BIN_DIR}/{cp.PROVIDER_NAME}", cp.PLUGIN_SCRIPT.encode(), 0o755)
        self.changes.write(cp.CONFIG_PATH, setup.config_yaml().encode())
        self.set_provider_answers(answers)
        if not self.changes.exists(cp.REQUEST_LOG):
            self.changes.write(cp.REQUEST_LOG, b"")
        has_defaults = self.changes.exists(cp.KUBELET_DEFAULTS)
        defaults = self.read(cp.KUBELET_DEFAULTS) if has_defaults else ""
        self.credentials_touched = True
        self.changes.write(cp.KUBELET_DEFAULTS, cp.with_extra_args(defaults).encode())
        self.restart_kubelet()

    def set_provider_answers(self, answers: bytes) -> None:
        """What the plugin answers from now on (the kubelet may still hold an older answer)."""
        self.changes.write(cp.ANSWERS_PATH, answers, mode=0o600)

    def provider_requests(self) -> list[str]:
        """The images the kubelet asked the plugin about, oldest first."""
        return [image for image, _ in cp.parse_request_log(self.read(cp.REQUEST_LOG))]

    def provider_decisions(self) -> list[cp.ProviderDecision]:
        """In token mode: per request, the ServiceAccount and the plugin's answer, oldest first."""
        entries = cp.parse_request_log(self.read(cp.REQUEST_LOG))
        return [decision for _, decision in entries if decision is not None]

    # ---- kubelet and images -------------------------------------------------------------
    def restart_kubelet(self, timeout: int = 60) -> float:
        """Restart the kubelet (it caches node credentials for 5 minutes); wait until a new
        kubelet is healthy. Through a node agent the restart is deferred a second (its exec
        passes through the kubelet), so the wait checks that the kubelet really restarted."""
        started = time.monotonic()
        before = self.changes.sh(KUBELET_INVOCATION).strip()
        script = getattr(self.changes.node, "restart_script", RESTART_KUBELET)
        self.changes.run("restart the kubelet", script)
        check = (
            f'test "$({KUBELET_INVOCATION})" != {shlex.quote(before)} && '
            "curl -sf --max-time 2 http://127.0.0.1:10248/healthz"
        )
        status, output = -1, ""
        while time.monotonic() - started < timeout:
            # Each try is its own exec: one cut by the restart, or refused while the kubelet
            # is down, is tried again.
            status, output = self.changes.execute(check)
            if status == 0 and output.strip() == "ok":
                break
            time.sleep(0.5)  # a kubelet starts in seconds; ask its health endpoint again
        if self.changes.recorder is not None:
            self.changes.recorder(
                "wait until a new kubelet is healthy",
                self.changes.command_line(check),
                output,
                time.monotonic() - started,
            )
        if status != 0 or output.strip() != "ok":
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
        self.changes.run(f"remove the image {ref}", f"crictl rmi {shlex.quote(ref)}")
        return True

    def read(self, path: str) -> str:
        return self.changes.sh(f"cat {shlex.quote(path)}")

    # ---- which pods may use an image already on the node (KEP-2535) -----------------------
    def set_verification_policy(self, policy: str, allowlist: tuple[str, ...] = ()) -> str:
        """Set the kubelet's ``imagePullCredentialsVerificationPolicy`` (and, for
        NeverVerifyAllowlistedImages, its allowlist) in its config file; the kubelet reads the
        file at start, so it is restarted now and again on restore. Returns the file written."""
        changed = with_verification_policy(self.read(KUBELET_CONFIG_YAML), policy, allowlist)
        self.credentials_touched = True
        self.changes.write(KUBELET_CONFIG_YAML, changed.encode())
        self.restart_kubelet()
        return changed


# ---- the kubelet's config: imagePullCredentialsVerificationPolicy -----------------------------
# kubeadm writes the kubelet's configuration here; kind's kubelet unit passes it as --config.
KUBELET_CONFIG_YAML = "/var/lib/kubelet/config.yaml"
# Where the kubelet records each image it pulled and the credentials it used (1.35+).
PULLED_RECORDS_DIR = "/var/lib/kubelet/image_manager/pulled"
# One record per line, each credential hash hidden: it is an unsalted SHA-256 of the user and
# password the image was pulled with.
HIDDEN_HASH = "(hidden)"
PULLED_RECORDS_SCRIPT = (
    f'for f in {PULLED_RECORDS_DIR}/*; do [ -f "$f" ] || continue; '
    f'sed -E \'s/"credentialHash":"[^"]*"/"credentialHash":"{HIDDEN_HASH}"/g\' "$f"; '
    "echo; done"
)
POLICY_KEY = "imagePullCredentialsVerificationPolicy"
ALLOWLIST_KEY = "preloadedImagesVerificationAllowlist"
VERIFICATION_POLICIES = (
    "NeverVerify",
    "NeverVerifyPreloadedImages",  # the default
    "NeverVerifyAllowlistedImages",
    "AlwaysVerify",
)
# KubeletEnsureSecretPulledImages: alpha and off in 1.33 and 1.34, beta and on since 1.35
# (pkg/features/kube_features.go); with the gate off the kubelet refuses the policy's keys.
VERIFICATION_SINCE = (1, 35)


def verification_policy_unsupported(kubelet: tuple[int, int]) -> str | None:
    """Why a kubelet of this (major, minor) does not re-verify the credentials of cached images
    by default (and refuses imagePullCredentialsVerificationPolicy), or None when it does."""
    if kubelet >= VERIFICATION_SINCE:
        return None
    if kubelet >= (1, 33):
        return (
            f"kubelet v{kubelet[0]}.{kubelet[1]}: KubeletEnsureSecretPulledImages is alpha and "
            "off by default (beta and on since v1.35)"
        )
    return (
        f"kubelet v{kubelet[0]}.{kubelet[1]} has no KubeletEnsureSecretPulledImages (alpha in "
        "v1.33, beta and on by default since v1.35)"
    )


def with_verification_policy(config: str, policy: str, allowlist: tuple[str, ...] = ()) -> str:
    """The kubelet's config.yaml with ``policy`` (and ``allowlist``) set: an earlier setting of
    either key is replaced, every other line kept. The kubelet refuses an allowlist under any
    other policy (pkg/kubelet/apis/config/validation), so that is an error here too."""
    if policy not in VERIFICATION_POLICIES:
        raise ValueError(f"unknown imagePullCredentialsVerificationPolicy {policy!r}")
    if allowlist and policy != "NeverVerifyAllowlistedImages":
        raise ValueError(f"{ALLOWLIST_KEY} needs policy NeverVerifyAllowlistedImages")
    kept: list[str] = []
    in_replaced_key = False
    for line in config.splitlines():
        # kubeadm writes top-level keys at column 0 and their list items as "- x" or indented
        if in_replaced_key and line.startswith(("-", " ")):
            continue
        in_replaced_key = line.split(":", 1)[0] in (POLICY_KEY, ALLOWLIST_KEY)
        if not in_replaced_key:
            kept.append(line)
    kept.append(f"{POLICY_KEY}: {policy}")
    if allowlist:
        kept += [f"{ALLOWLIST_KEY}:", *(f"- {json.dumps(p)}" for p in allowlist)]
    return "\n".join(kept) + "\n"


def parse_pulled_records(text: str) -> dict[str, dict]:
    """The kubelet's pulled-image records as ``PULLED_RECORDS_SCRIPT`` prints them: per image
    ID, its ``credentialMapping`` (repository without tag -> the credentials it was pulled with:
    ``kubernetesSecrets``, ``kubernetesServiceAccounts`` or ``nodePodsAccessible``)."""
    records: dict[str, dict] = {}
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["imageRef"]] = record.get("credentialMapping", {})
    return records
