#!/usr/bin/python3
"""runc wrapper for hosts whose capability bounding set lacks capabilities the kernel knows.

Docker 20.10 gives a --privileged container every capability the kernel knows; runc cannot
grant one missing from its own bounding set and fails with "unable to apply caps: operation
not permitted". Newer engines filter by the bounding set themselves (moby #42933); this
wrapper does the same for 20.10: it drops unavailable capabilities from the OCI bundle
(create/run) or the exec process spec, then execs the real runc with the same arguments.

Installed by `pull-lab host-prep` as a standalone file, so it imports nothing from the lab.
"""

from __future__ import annotations

import json
import os
import sys

REAL_RUNC = os.environ.get("PULL_LAB_REAL_RUNC", "/usr/sbin/runc")

# Index = capability number (linux/capability.h).
CAP_NAMES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)

# runc global flags that take a value (they come before the subcommand).
_GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu"}


def bounding_set(status_text: str) -> int:
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise ValueError("no CapBnd line in /proc/self/status")


def allowed_caps(bnd: int) -> set[str]:
    return {f"CAP_{name}" for i, name in enumerate(CAP_NAMES) if (bnd >> i) & 1}


def filter_capabilities(caps: dict, allowed: set[str]) -> dict:
    """Keep only allowed names in each capability list (bounding, effective, ...)."""
    return {
        kind: [c for c in names if c in allowed] if isinstance(names, list) else names
        for kind, names in caps.items()
    }


def parse_args(argv: list[str]) -> tuple[str, str | None, str | None]:
    """Return (subcommand, bundle dir, process file) from a runc command line."""
    sub, bundle, process = "", None, None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not sub:
            if arg in _GLOBAL_WITH_VALUE:
                i += 2
                continue
            if not arg.startswith("-"):
                sub = arg
            i += 1
            continue
        if arg in ("--bundle", "-b") and i + 1 < len(argv):
            bundle = argv[i + 1]
        elif arg.startswith("--bundle="):
            bundle = arg.split("=", 1)[1]
        elif arg in ("--process", "-p") and i + 1 < len(argv):
            process = argv[i + 1]
        elif arg.startswith("--process="):
            process = arg.split("=", 1)[1]
        i += 1
    return sub, bundle, process


def rewrite(path: str, locate: list[str], allowed: set[str]) -> None:
    """Filter the capabilities object found at ``locate`` inside the JSON file ``path``."""
    if not os.path.isfile(path):
        return
    with open(path) as f:
        doc = json.load(f)
    parent = doc
    for key in locate[:-1]:
        parent = parent.get(key) or {}
    caps = parent.get(locate[-1]) if isinstance(parent, dict) else None
    if not isinstance(caps, dict):
        return
    parent[locate[-1]] = filter_capabilities(caps, allowed)
    tmp = f"{path}.capfilter"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def main(argv: list[str]) -> None:
    sub, bundle, process = parse_args(argv)
    if sub in ("create", "run", "exec"):
        with open("/proc/self/status") as f:
            allowed = allowed_caps(bounding_set(f.read()))
        if sub in ("create", "run"):
            rewrite(
                os.path.join(bundle or ".", "config.json"), ["process", "capabilities"], allowed
            )
        elif process:
            rewrite(process, ["capabilities"], allowed)
    os.execv(REAL_RUNC, [REAL_RUNC, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
