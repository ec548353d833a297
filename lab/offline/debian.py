"""Debian pieces: the node's root filesystem and single packages, from the host's own mirrors.

Mirror addresses are read from this machine's apt sources, never written into the project.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError, StepFailed
from lab.offline import commands

APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}


@dataclass(frozen=True)
class Mirrors:
    main: str
    security: str | None


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if fields:
            yield fields


def parse_sources(files: dict[str, str], suite: str) -> Mirrors:
    """Find the mirror serving ``suite`` and the one serving ``suite``-security."""
    main = security = None
    for name, text in files.items():
        if name.endswith(".sources"):
            entries = [
                (s.get("uris", "").split(), s.get("suites", "").split())
                for s in _deb822_stanzas(text)
                if "deb" in s.get("types", "deb").split() and s.get("enabled", "yes") != "no"
            ]
        elif name.endswith(".list"):
            entries = []
            for line in text.splitlines():
                parts = re.sub(r"\[[^\]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb":
                    entries.append(([parts[1]], [parts[2]]))
        else:
            continue
        for uris, suites in entries:
            if not uris:
                continue
            if suite in suites and main is None:
                main = uris[0]
            if f"{suite}-security" in suites and security is None:
                security = uris[0]
    if main is None:
        raise LabError(
            f"no apt source for Debian {suite} on this machine",
            "add a Debian mirror to /etc/apt/sources.list.d so the node rootfs can be built",
        )
    return Mirrors(main, security)


def host_mirrors(suite: str) -> Mirrors:
    files: dict[str, str] = {}
    for src in APT_SOURCES:
        if src.is_file():
            files[src.name] = src.read_text()
        elif src.is_dir():
            for f in sorted(src.iterdir()):
                if f.suffix in (".sources", ".list"):
                    files[f.name] = f.read_text()
    return parse_sources(files, suite)


def sources_list(mirrors: Mirrors, suite: str) -> str:
    lines = [f"deb {mirrors.main} {suite} main", f"deb {mirrors.main} {suite}-updates main"]
    if mirrors.security:
        lines.append(f"deb {mirrors.security} {suite}-security main")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def chroot_mounts(root: Path) -> Iterator[None]:
    """proc, sys and dev/pts inside ``root`` for apt's maintainer scripts; always unmounted."""
    mounted: list[Path] = []
    try:
        for fstype, src, target in (("proc", "proc", "proc"), ("sysfs", "sysfs", "sys")):
            path = root / target
            path.mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", fstype, src, str(path)], check=True)
            mounted.append(path)
        pts = root / "dev" / "pts"
        pts.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", "/dev/pts", str(pts)], check=True)
        mounted.append(pts)
        yield
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", str(path)], check=False)


def build_rootfs(suite: str, packages: tuple[str, ...], out: Path, log: Path) -> Path:
    """debootstrap a minimal system, add packages with apt, return ``out/rootfs.tar``."""
    step = "debian-rootfs"
    mirrors = host_mirrors(suite)
    root = out / "rootfs"
    commands.run(
        step,
        ["debootstrap", "--variant=minbase", suite, root, mirrors.main],
        log=log,
        doing=f"debootstrap {suite}",
    )
    (root / "etc/apt/sources.list").write_text(sources_list(mirrors, suite))
    policy = root / "usr/sbin/policy-rc.d"  # no service may start inside the chroot
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    with chroot_mounts(root):
        commands.run(
            step,
            ["chroot", root, "apt-get", "update", "-q"],
            env=APT_ENV,
            log=log,
            doing="apt-get update in the rootfs",
        )
        commands.run(
            step,
            ["chroot", root, "apt-get", "upgrade", "-y", "-q"],
            env=APT_ENV,
            log=log,
            doing="apt-get upgrade in the rootfs",
        )
        commands.run(
            step,
            [
                "chroot",
                root,
                "apt-get",
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                *packages,
            ],
            env=APT_ENV,
            log=log,
            doing=f"apt-get install of {len(packages)} packages in the rootfs",
        )
        commands.run(
            step,
            ["chroot", root, "apt-get", "clean"],
            env=APT_ENV,
            log=log,
            doing="apt-get clean in the rootfs",
        )
        versions = commands.run(
            step,
            ["chroot", root, "dpkg-query", "-W", "-f", "${Package} ${Version}\n"],
            log=None,
            doing="listing the rootfs packages",
        )
    (out / "packages.txt").write_text(versions)
    policy.unlink()
    for junk in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"):
        commands.run(step, ["rm", "-rf", root / junk])
    (root / "var/lib/apt/lists/partial").mkdir(parents=True)
    tar = out / "rootfs.tar"
    commands.run(
        step,
        ["tar", "-C", root, "--numeric-owner", "--xattrs", "-cf", tar, "."],
        log=log,
        doing="packing rootfs.tar",
    )
    commands.run(step, ["rm", "-rf", root])
    return tar


def download_package(package: str, dest: Path, log: Path) -> Path:
    """Fetch one .deb with the host's apt (no install) and unpack it into ``dest``/root."""
    step = f"apt-download-{package}"
    dest.mkdir(parents=True, exist_ok=True)
    try:
        commands.run(step, ["apt-get", "download", package], cwd=dest, env=APT_ENV, log=log)
    except StepFailed:
        commands.run(step, ["apt-get", "update", "-q"], env=APT_ENV, log=log)
        commands.run(step, ["apt-get", "download", package], cwd=dest, env=APT_ENV, log=log)
    debs = sorted(dest.glob(f"{package}_*.deb"))
    if not debs:
        raise StepFailed(step, f"apt-get download left no {package}_*.deb in {dest}")
    root = dest / "root"
    commands.run(step, ["dpkg-deb", "-x", debs[-1], root], log=log)
    (dest / "version.txt").write_text(debs[-1].name + "\n")
    os.remove(debs[-1])
    return root
