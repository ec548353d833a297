"""One settings object: environment (PULL_LAB_*), CLI flags and pytest options map onto it."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError

if TYPE_CHECKING:
    from lab.versions import Versions

IMAGE_SOURCES = ("offline", "upstream")
# Builds are cached by version outside the repo; PULL_LAB_CACHE_DIR points elsewhere.
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "registry-pull-lab"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
# The run's label, one spelling for Docker objects and Kubernetes objects alike: a valid
# Kubernetes label key (no prefix) and a Docker label key.
LABEL = "io.registry-pull-lab.run"
CLUSTER_PREFIX = "pull-lab"
# Each kind node is a privileged container running a kubelet and containerd (about 300 MiB
# and some CPU each): more workers than this is not a lab for one machine.
MAX_WORKERS = 8


def new_run_id() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class Settings:
    images: str = "offline"
    cluster_name: str = CLUSTER_PREFIX
    cache_dir: Path = DEFAULT_CACHE_DIR
    report_dir: Path = Path("lab-report")
    keep_cluster: bool = False
    reuse_cluster: bool = False
    kubeconfig: Path | None = None  # bring your own cluster
    # On that cluster, a privileged node agent may change node files (and restore them).
    allow_node_changes: bool = False
    kind_image: str | None = None  # override the node image
    workers: int = 0  # worker nodes beside the control plane (kind's default: none)
    kubernetes: str | None = None  # a minor ("1.37") or its pinned patch; None: the default
    run_id: str = field(default_factory=new_run_id)

    def __post_init__(self) -> None:
        if self.images not in IMAGE_SOURCES:
            raise LabError(
                f"unknown image source {self.images!r}", f"use one of: {', '.join(IMAGE_SOURCES)}"
            )
        if not _NAME.match(self.cluster_name):
            raise LabError(
                f"invalid cluster name {self.cluster_name!r}",
                "use 1-32 lowercase letters, digits and '-', starting and ending alphanumeric",
            )
        if not 0 <= self.workers <= MAX_WORKERS:
            raise LabError(f"invalid number of workers {self.workers}", f"use 0 to {MAX_WORKERS}")
        if self.kubernetes is not None:
            from lab.versions import load_versions

            load_versions(kubernetes=self.kubernetes)  # an unsupported one fails here, in one line
        if self.kubeconfig is not None and not Path(self.kubeconfig).is_file():
            raise LabError(f"kubeconfig {self.kubeconfig} does not exist", "pass an existing file")
        if self.allow_node_changes and self.kubeconfig is None:
            raise LabError(
                "--allow-node-changes is for a cluster brought with a kubeconfig",
                "add --kubeconfig FILE, or drop it: the lab's own cluster needs no consent",
            )

    @property
    def state_dir(self) -> Path:
        """Per-cluster files (kubeconfig, keys) live here, outside the repo."""
        return self.cache_dir / "clusters" / self.cluster_name

    def versions(self) -> Versions:
        """The pinned versions with this run's Kubernetes."""
        from lab.versions import load_versions

        return load_versions(kubernetes=self.kubernetes)

    @property
    def network_name(self) -> str:
        return f"{self.cluster_name}-net"

    def with_overrides(self, **changes: object) -> Settings:
        clean = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **clean)  # type: ignore[arg-type]


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def in_ci(env: Mapping[str, str] | None = None) -> bool:
    """CI sets CI=true: there, missing infrastructure must fail a run, never skip it."""
    env = os.environ if env is None else env
    return env.get("CI", "").strip().lower() in ("1", "true", "yes")


def parse_workers(text: str) -> int:
    """A worker count as a person types it (flag or PULL_LAB_WORKERS)."""
    try:
        return int(text.strip())
    except ValueError:
        raise LabError(
            f"invalid number of workers {text!r}", f"use a whole number, 0 to {MAX_WORKERS}"
        ) from None


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    kwargs: dict[str, object] = {}
    if env.get("PULL_LAB_IMAGES"):
        kwargs["images"] = env["PULL_LAB_IMAGES"]
    if env.get("PULL_LAB_CLUSTER_NAME"):
        kwargs["cluster_name"] = env["PULL_LAB_CLUSTER_NAME"]
    if env.get("PULL_LAB_CACHE_DIR"):
        kwargs["cache_dir"] = Path(env["PULL_LAB_CACHE_DIR"]).expanduser()
    if env.get("PULL_LAB_REPORT_DIR"):
        kwargs["report_dir"] = Path(env["PULL_LAB_REPORT_DIR"])
    if env.get("PULL_LAB_KIND_IMAGE"):
        kwargs["kind_image"] = env["PULL_LAB_KIND_IMAGE"]
    if env.get("PULL_LAB_KUBECONFIG"):
        kwargs["kubeconfig"] = Path(env["PULL_LAB_KUBECONFIG"])
    if env.get("PULL_LAB_KUBERNETES"):
        kwargs["kubernetes"] = env["PULL_LAB_KUBERNETES"]
    if env.get("PULL_LAB_WORKERS"):
        kwargs["workers"] = parse_workers(env["PULL_LAB_WORKERS"])
    kwargs["allow_node_changes"] = _flag(env.get("PULL_LAB_ALLOW_NODE_CHANGES"))
    kwargs["keep_cluster"] = _flag(env.get("PULL_LAB_KEEP_CLUSTER"))
    kwargs["reuse_cluster"] = _flag(env.get("PULL_LAB_REUSE_CLUSTER"))
    return Settings(**kwargs)  # type: ignore[arg-type]
