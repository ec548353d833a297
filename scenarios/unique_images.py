"""Images of a scenario's own: the lab's workload pushed with a fresh label, so its image ID is
one no node has seen, and a wait until a node's status lists it.

The kubelet's pulled-image records are keyed by image ID, and a node's status lists at most 5
names per image: every fresh tag of the shared workload has one ID, so late in a run a fresh tag
may never show there, and doctor reads the node's images from its status.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from lab.doctor.keyring import same_image
from lab.push import CONFIG_V1, Blob, prepared, push_image
from lab.watch import wait_for

UNIQUE_LABEL = "io.registry-pull-lab.unique"


@dataclass(frozen=True)
class UniqueImage:
    """``image_id`` is the config's digest: the image's ID on the node, which the kubelet's
    pulled-image record names."""

    ref: str  # host:port/repo:tag
    image_id: str


def unique_image(registry: Any, images: Any, repo: str = "lab/busybox") -> UniqueImage:
    """Push the lab's workload with a label of a fresh value under a fresh tag: an image ID
    no node has seen, known to the node by this one name (and its digest) once pulled."""
    token = uuid.uuid4().hex[:10]
    base = prepared(images.workload_image)
    config = json.loads(base.config.data)
    labels = config.setdefault("config", {}).get("Labels") or {}
    config["config"]["Labels"] = {**labels, UNIQUE_LABEL: token}
    data = json.dumps(config, separators=(",", ":")).encode()
    blob = Blob("sha256:" + hashlib.sha256(data).hexdigest(), data, CONFIG_V1)
    push_image(
        registry.session(registry.auth),
        registry.url,
        repo,
        f"u-{token}",
        replace(base, config=blob),
    )
    return UniqueImage(f"{registry.spec.host}/{repo}:u-{token}", blob.digest)


def _image_names(node: Any) -> list[str]:
    return [n for i in node.status.images or [] for n in i.names or []]


def wait_node_lists(scenario: Any, node: str, image: str, timeout: float = 90.0) -> None:
    """Watch the node until its status lists ``image``: the kubelet refreshes its image list
    every 30 s and reports it with its status every 10 s, and doctor reads the node's images
    there."""
    _, timeline = wait_for(
        scenario.core.list_node,
        what=f"node {node} lists {image}",
        done=lambda n: any(same_image(name, image) for name in _image_names(n)),
        describe=lambda n: f"node {n.metadata.name}: {len(_image_names(n))} image names",
        timeout=timeout,
        field_selector=f"metadata.name={node}",
    )
    scenario.timed(f"node {node} lists the image", time.monotonic() - timeline.started)
