"""The pinned versions, read from the one file that holds them (versions.toml)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lab.errors import LabError

VERSIONS_FILE = Path(__file__).with_name("versions.toml")


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
    upstream_node_image: str
    upstream_registry_image: str
    upstream_workload_image: str

    @property
    def staging_version(self) -> str:
        """k8s.io/kubernetes v1.X.Y publishes its staging modules as v0.X.Y."""
        return "v0." + self.kubernetes.removeprefix("v").split(".", 1)[1]

    @property
    def kubernetes_minor(self) -> tuple[int, int]:
        major, minor = self.kubernetes.removeprefix("v").split(".")[:2]
        return int(major), int(minor)


def parse_versions(data: dict) -> Versions:
    return Versions(
        kind=data["kind"]["version"],
        kubernetes=data["kubernetes"]["version"],
        kubernetes_binaries=tuple(data["kubernetes"]["binaries"]),
        etcd_module=data["etcd"]["module"],
        crictl_module=data["crictl"]["module"],
        crictl=data["crictl"]["version"],
        pause_image=data["pause"]["image"],
        debian_suite=data["debian"]["suite"],
        debian_packages=tuple(data["debian"]["packages"]),
        registry_package=data["registry"]["debian_package"],
        workload_package=data["registry"]["workload_package"],
        upstream_node_image=data["upstream"]["node_image"],
        upstream_registry_image=data["upstream"]["registry_image"],
        upstream_workload_image=data["upstream"]["workload_image"],
    )


def load_versions(path: Path | None = None) -> Versions:
    """The pinned versions; PULL_LAB_VERSIONS_FILE points at another file (e.g. to try a bump)."""
    chosen = path or Path(os.environ.get("PULL_LAB_VERSIONS_FILE") or VERSIONS_FILE)
    return _load(chosen.resolve())


@cache
def _load(path: Path) -> Versions:
    try:
        with path.open("rb") as f:
            return parse_versions(tomllib.load(f))
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise LabError(f"cannot read versions file {path}: {exc}", "fix or restore it") from exc
