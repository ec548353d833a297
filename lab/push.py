"""Seed a registry with an image from the host's Docker, without `docker push` or any pull.

Docker's own push would need the host daemon to trust the lab CA and hold credentials;
speaking the registry API directly needs neither and works the same for every registry.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import dataclass

import requests

from lab.errors import LabError

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST_V2 = "application/vnd.docker.distribution.manifest.list.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class Blob:
    digest: str
    data: bytes
    media_type: str


@dataclass(frozen=True)
class PreparedImage:
    config: Blob
    layers: tuple[Blob, ...]

    def manifest(self) -> bytes:
        doc = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_V2,
            "config": {
                "mediaType": CONFIG_V1,
                "size": len(self.config.data),
                "digest": self.config.digest,
            },
            "layers": [
                {"mediaType": layer.media_type, "size": len(layer.data), "digest": layer.digest}
                for layer in self.layers
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode()


def _blob(data: bytes, media_type: str) -> Blob:
    return Blob("sha256:" + hashlib.sha256(data).hexdigest(), data, media_type)


def gzip_deterministic(data: bytes) -> bytes:
    """The same layer always compresses to the same bytes, so its digest is stable."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def prepare_from_archive(archive: bytes) -> PreparedImage:
    """Read the first image of a `docker save` archive and compress its layers."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            if member is None:
                raise LabError(f"image archive has no {name}")
            return member.read()

        manifest = json.loads(read("manifest.json"))[0]
        config = read(manifest["Config"])
        layers = tuple(
            _blob(gzip_deterministic(read(name)), LAYER_GZIP) for name in manifest["Layers"]
        )
    return PreparedImage(_blob(config, CONFIG_V1), layers)


def docker_save(ref: str) -> bytes:
    proc = subprocess.run(["docker", "save", ref], capture_output=True, check=False)
    if proc.returncode != 0:
        raise LabError(
            f"docker save {ref} failed: {proc.stderr.decode(errors='replace').strip()[:200]}",
            "build the lab images first (`pull-lab build`)",
        )
    return proc.stdout


def docker_image_id(ref: str) -> str:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise LabError(
            f"no image {ref} in the host's Docker: {proc.stderr.strip()[:200]}",
            "build the lab images first (`pull-lab build`)",
        )
    return proc.stdout.strip()


_prepared: dict[str, PreparedImage] = {}  # image ID -> its blobs, for this process


def prepared(ref: str) -> PreparedImage:
    """The image's registry blobs, made once per process and image ID: every scenario pushes
    the workload under a fresh tag, and `docker save` plus gzip cost about 0.2 s of CPU each
    time. Keyed by ID, so an image rebuilt under the same tag is read again."""
    image_id = docker_image_id(ref)
    if image_id not in _prepared:
        _prepared[image_id] = prepare_from_archive(docker_save(ref))
    return _prepared[image_id]


def push_image(
    session: requests.Session, base_url: str, repo: str, tag: str, image: PreparedImage
) -> str:
    """Upload blobs the registry lacks, then the manifest; return the manifest digest."""
    for blob in (*image.layers, image.config):
        head = session.head(f"{base_url}/v2/{repo}/blobs/{blob.digest}", timeout=30)
        if head.status_code == 200:
            continue
        start = session.post(f"{base_url}/v2/{repo}/blobs/uploads/", timeout=30)
        start.raise_for_status()
        location = start.headers["Location"]
        if location.startswith("/"):
            location = base_url + location
        sep = "&" if "?" in location else "?"
        put = session.put(
            f"{location}{sep}digest={blob.digest}",
            data=blob.data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=120,
        )
        put.raise_for_status()
    manifest = image.manifest()
    resp = session.put(
        f"{base_url}/v2/{repo}/manifests/{tag}",
        data=manifest,
        headers={"Content-Type": MANIFEST_V2},
        timeout=30,
    )
    resp.raise_for_status()
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def for_platform(image: PreparedImage, platform: str) -> PreparedImage:
    """The same layers under a config that names another platform ("linux/arm64"): an image
    a node of that platform would pick from an index, without building one for it."""
    os_name, _, architecture = platform.partition("/")
    config = json.loads(image.config.data)
    config.update(os=os_name, architecture=architecture)
    data = json.dumps(config, separators=(",", ":")).encode()
    return PreparedImage(_blob(data, CONFIG_V1), image.layers)


def manifest_list(entries: list[tuple[bytes, str]]) -> bytes:
    """A Docker manifest list: each (image manifest, "os/architecture") as one entry."""
    manifests = []
    for manifest, platform in entries:
        os_name, _, architecture = platform.partition("/")
        manifests.append(
            {
                "mediaType": MANIFEST_V2,
                "size": len(manifest),
                "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
                "platform": {"architecture": architecture, "os": os_name},
            }
        )
    doc = {"schemaVersion": 2, "mediaType": MANIFEST_LIST_V2, "manifests": manifests}
    return json.dumps(doc, separators=(",", ":")).encode()


def push_index_for(
    session: requests.Session,
    base_url: str,
    repo: str,
    tag: str,
    image: PreparedImage,
    platform: str,
) -> str:
    """Push ``image`` relabelled for ``platform`` by digest, then a manifest list under ``tag``
    whose only entry is that platform; return the list's digest. A node of any other platform
    finds no image for itself there.

    >>> push_index_for(session, reg.url, "lab/busybox", "arm64-only", image, "linux/arm64")
    """
    other = for_platform(image, platform)
    manifest = other.manifest()
    push_image(session, base_url, repo, "sha256:" + hashlib.sha256(manifest).hexdigest(), other)
    index = manifest_list([(manifest, platform)])
    resp = session.put(
        f"{base_url}/v2/{repo}/manifests/{tag}",
        data=index,
        headers={"Content-Type": MANIFEST_LIST_V2},
        timeout=30,
    )
    resp.raise_for_status()
    return "sha256:" + hashlib.sha256(index).hexdigest()
