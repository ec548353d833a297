"""The pinned versions, read from the one file that holds them (versions.toml).

One file pins every Kubernetes minor the lab supports; a run picks one (``--kubernetes 1.35``,
PULL_LAB_KUBERNETES, or the file's default), and ``Versions.kubernetes`` is then that minor's
pinned patch. Everything else (kind, the container runtime, crictl, Debian) is shared by all.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lab.errors import LabError

VERSIONS_FILE = Path(__file__).with_name("versions.toml")
KUBERNETES_ENV = "PULL_LAB_KUBERNETES"
_MINOR = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True)
class Versions:
    kind: str
    kubernetes: str
    kubernetes_binaries: tuple[str, ...]
    etcd_module: str
    crictl_module: str
    crictl: str
    pause_image: str
    debian_suite: str
    debian_packages: tuple[str, ...]
    registry_package: str
    workload_package: str
    upstream_node_images: tuple[tuple[str, str], ...]  # (minor, kindest/node@digest)
    upstream_registry_image: str
    upstream_workload_image: str
    containerd: str = ""
    runc: str = ""
    cni_plugins: str = ""
    cni_plugin_list: tuple[str, ...] = ()
    kubernetes_minors: tuple[tuple[str, str], ...] = ()  # ("1.37", "v1.37.2"), oldest first
    default_minor: str = ""

    @property
    def staging_version(self) -> str:
        """k8s.io/kubernetes v1.X.Y publishes its staging modules as v0.X.Y."""
        return "v0." + self.kubernetes.removeprefix("v").split(".", 1)[1]

    @property
    def kubernetes_minor(self) -> tuple[int, int]:
        major, minor = self.kubernetes.removeprefix("v").split(".")[:2]
        return int(major), int(minor)

    @property
    def runtime_label(self) -> str:
        """The node runtime as an image tag suffix: two runtimes never share a node tag."""
        return f"containerd{self.containerd.removeprefix('v')}"

    @property
    def upstream_node_image(self) -> str:
        """kindest/node for this minor: a one-line error where kind's digest is not pinned."""
        minor = ".".join(str(n) for n in self.kubernetes_minor)
        images = dict(self.upstream_node_images)
        if minor not in images:
            raise LabError(
                f"no pinned kindest/node image for Kubernetes {minor} "
                f"(pinned: {', '.join(images)})",
                "use --images offline, or PULL_LAB_KIND_IMAGE=kindest/node:<tag>@<digest>",
            )
        return images[minor]

    @property
    def supported(self) -> tuple[str, ...]:
        return tuple(minor for minor, _ in self.kubernetes_minors)

    def for_kubernetes(self, wanted: str | None) -> Versions:
        """These versions with Kubernetes at ``wanted``: a minor ("1.37") or its pinned patch."""
        patch = resolve_kubernetes(wanted or self.default_minor, dict(self.kubernetes_minors))
        return dataclasses.replace(self, kubernetes=patch)


def _minor_sort_key(minor: str) -> tuple[int, ...]:
    return tuple(int(part) for part in minor.split("."))


def resolve_kubernetes(wanted: str, minors: Mapping[str, str]) -> str:
    """'1.37', 'v1.37' or 'v1.37.2' -> the pinned patch; anything else is a one-line error."""
    supported = ", ".join(sorted(minors, key=_minor_sort_key))
    match = _MINOR.match(wanted.strip())
    minor = f"{match.group(1)}.{match.group(2)}" if match else None
    if minor is None or minor not in minors:
        raise LabError(f"unsupported Kubernetes version {wanted!r}", f"use one of: {supported}")
    patch = minors[minor]
    if match and match.group(3) is not None and wanted.strip().lstrip("v") != patch.lstrip("v"):
        raise LabError(
            f"Kubernetes {wanted} is not the pinned patch of {minor} ({patch})",
            f"use {minor} or {patch}",
        )
    return patch


def parse_kubernetes_list(text: str, versions: Versions) -> list[str]:
    """'1.34,1.37' or 'all' -> pinned patches, oldest first, each once."""
    minors = dict(versions.kubernetes_minors)
    if text.strip() == "all":
        wanted = list(versions.supported)
    else:
        wanted = [part for part in (p.strip() for p in text.split(",")) if part]
    if not wanted:
        raise LabError(
            "no Kubernetes version given", f"use one of: {', '.join(versions.supported)}"
        )
    patches = {resolve_kubernetes(w, minors) for w in wanted}
    return sorted(patches, key=lambda p: _minor_sort_key(p.lstrip("v")))


def parse_versions(data: dict, kubernetes: str | None = None) -> Versions:
    k8s = data["kubernetes"]
    minors = tuple(sorted(k8s["minors"].items(), key=lambda item: _minor_sort_key(item[0])))
    runtime = data["runtime"]
    chosen = resolve_kubernetes(kubernetes or k8s["default"], dict(minors))
    return Versions(
        kind=data["kind"]["version"],
        kubernetes=chosen,
        kubernetes_binaries=tuple(k8s["binaries"]),
        etcd_module=data["etcd"]["module"],
        crictl_module=data["crictl"]["module"],
        crictl=data["crictl"]["version"],
        pause_image=data["pause"]["image"],
        debian_suite=data["debian"]["suite"],
        debian_packages=tuple(data["debian"]["packages"]),
        registry_package=data["registry"]["debian_package"],
        workload_package=data["registry"]["workload_package"],
        upstream_node_images=tuple(data["upstream"]["node_images"].items()),
        upstream_registry_image=data["upstream"]["registry_image"],
        upstream_workload_image=data["upstream"]["workload_image"],
        containerd=runtime["containerd"],
        runc=runtime["runc"],
        cni_plugins=runtime["cni_plugins"],
        cni_plugin_list=tuple(runtime["cni_plugin_list"]),
        kubernetes_minors=minors,
        default_minor=k8s["default"],
    )


def load_versions(path: Path | None = None, kubernetes: str | None = None) -> Versions:
    """The pinned versions for ``kubernetes`` (else PULL_LAB_KUBERNETES, else the default).

    PULL_LAB_VERSIONS_FILE points at another file (e.g. to try a bump)."""
    chosen = path or Path(os.environ.get("PULL_LAB_VERSIONS_FILE") or VERSIONS_FILE)
    wanted = kubernetes or os.environ.get(KUBERNETES_ENV) or None
    return _load(chosen.resolve(), wanted)


@cache
def _load(path: Path, kubernetes: str | None) -> Versions:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LabError(f"cannot read versions file {path}: {exc}", "fix or restore it") from exc
    try:
        return parse_versions(data, kubernetes)
    except KeyError as exc:
        raise LabError(f"versions file {path} lacks {exc}", "fix or restore it") from exc
