"""Write container images as `docker save` archives, without a daemon.

`docker load` and `ctr images import` both read this format, so one writer serves the
component images preloaded into the node and the images loaded into the host's Docker.
Layers are deterministic (fixed mtimes and owners): the same inputs give the same digests.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class FileEntry:
    """A file, directory or symlink to put in a layer."""

    path: str  # inside the image, without a leading slash
    source: Path | None = None  # host file to copy
    data: bytes | None = None  # or literal content
    mode: int = 0o644
    kind: str = "file"  # "file", "dir" or "symlink"
    target: str = ""  # for symlinks


@dataclass(frozen=True)
class ImageSpec:
    refs: tuple[str, ...]
    entries: tuple[FileEntry, ...] = ()
    layer_tar: Path | None = None  # an existing uncompressed tar used as the only layer
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = (f"PATH={DEFAULT_PATH}",)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str | None = None
    working_dir: str = ""


def _tarinfo(entry: FileEntry, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path.lstrip("/"))
    info.mode = entry.mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
    else:
        info.size = size
    return info


def _parents(entries: Iterable[FileEntry]) -> list[FileEntry]:
    """Directories implied by the entries' paths, so every file has a parent in the layer."""
    declared = {e.path.strip("/") for e in entries if e.kind == "dir"}
    implied: set[str] = set()
    for e in entries:
        parts = e.path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            implied.add("/".join(parts[:i]))
    return [FileEntry(p, kind="dir", mode=0o755) for p in sorted(implied - declared)]


def layer_bytes(entries: Iterable[FileEntry]) -> bytes:
    entries = list(entries)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(_parents(entries) + entries, key=lambda e: e.path.strip("/")):
            if entry.kind != "file":
                tar.addfile(_tarinfo(entry))
                continue
            data = entry.data if entry.data is not None else Path(entry.source or "").read_bytes()
            tar.addfile(_tarinfo(entry, len(data)), io.BytesIO(data))
    return buf.getvalue()


def image_config(spec: ImageSpec, diff_id: str) -> dict:
    config: dict = {"Env": list(spec.env)}
    if spec.entrypoint is not None:
        config["Entrypoint"] = list(spec.entrypoint)
    if spec.cmd is not None:
        config["Cmd"] = list(spec.cmd)
    if spec.labels:
        config["Labels"] = dict(spec.labels)
    if spec.stop_signal:
        config["StopSignal"] = spec.stop_signal
    if spec.working_dir:
        config["WorkingDir"] = spec.working_dir
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "registry-pull-lab"}],
    }


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_archive(specs: Iterable[ImageSpec], out: IO[bytes]) -> list[str]:
    """Write a docker-save archive holding every image; return each image's config digest."""
    manifest = []
    digests = []
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for spec in specs:
            if spec.layer_tar is not None:
                layer_digest = _sha256_file(spec.layer_tar)
                layer_name = f"{layer_digest}/layer.tar"
                if layer_name not in written:
                    info = tar.gettarinfo(str(spec.layer_tar), arcname=layer_name)
                    info.mtime = 0
                    with spec.layer_tar.open("rb") as f:
                        tar.addfile(info, f)
            else:
                data = layer_bytes(spec.entries)
                layer_digest = hashlib.sha256(data).hexdigest()
                layer_name = f"{layer_digest}/layer.tar"
                if layer_name not in written:
                    _add_bytes(tar, layer_name, data)
            written.add(layer_name)
            config = json.dumps(
                image_config(spec, f"sha256:{layer_digest}"), sort_keys=True
            ).encode()
            config_digest = hashlib.sha256(config).hexdigest()
            _add_bytes(tar, f"{config_digest}.json", config)
            manifest.append(
                {
                    "Config": f"{config_digest}.json",
                    "RepoTags": list(spec.refs),
                    "Layers": [layer_name],
                }
            )
            digests.append(f"sha256:{config_digest}")
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
    return digests


def write_archive_file(specs: Iterable[ImageSpec], path: Path) -> list[str]:
    with path.open("wb") as f:
        return write_archive(specs, f)
