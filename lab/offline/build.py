"""The build pipeline: every binary and image a lab run needs, for either image source.

`offline` builds everything from Debian and the Go module proxy (air-gapped CI);
`upstream` pulls the official kindest/node and registry images (machines with internet).
Both build kind and kubectl from the Go module proxy.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from lab.errors import LabError, StepFailed
from lab.offline import commands, debian, gobuild, images, nodeimage
from lab.offline.archive import write_archive_file
from lab.offline.cache import BuildCache, cache_key
from lab.offline.hostprep import docker_info, prepare_host
from lab.offline.pipeline import Pipeline, Step, StepResult
from lab.registry_config import registry_config
from lab.settings import IMAGE_SOURCES
from lab.versions import Versions, load_versions

LOCAL_REGISTRY = "pull-lab.local"  # a name no public registry serves; offline images only
# Bump when a change to the build code changes its output without changing any version.
RECIPE = "3"
# Bump when only the node image's own recipe changes (nodeimage.py): nothing else rebuilds.
NODE_RECIPE = "2"
MIN_FREE_BYTES = 12 * 1024**3


@dataclass(frozen=True)
class LabImages:
    """What a lab run uses: the binaries and the image references, whichever the source."""

    source: str
    kind_bin: Path
    kubectl_bin: Path
    node_image: str
    registry_image: str
    workload_image: str
    preloaded_image: str  # present in the node's containerd without any pull
    kubernetes_version: str


def _image_key(ref: str) -> str | None:
    proc = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{images.LABEL_KEY}"}}}}',
            ref,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def _image_present(ref: str) -> bool:
    return (
        subprocess.run(
            ["docker", "image", "inspect", ref], capture_output=True, check=False
        ).returncode
        == 0
    )


def _docker_load(spec_archive: Path, step: str, log: Path) -> None:
    commands.run(step, ["docker", "load", "-i", spec_archive], log=log)


class Builder:
    """Holds the cache and versions; each method is one step's work."""

    def __init__(
        self, cache: BuildCache, versions: Versions, out: TextIO, image_prefix: str = LOCAL_REGISTRY
    ) -> None:
        self.cache = cache
        self.image_prefix = image_prefix
        self.v = versions
        self.out = out
        self.log_dir = cache.logs()
        self._go: str | None = None
        self._kubeadm_images: list[str] | None = None

    def log(self, step: str) -> Path:
        return self.log_dir / f"{step}.log"

    @property
    def go(self) -> str:
        if self._go is None:
            self._go = gobuild.go_version("go-version")
        return self._go

    # ---- keys -------------------------------------------------------------------------
    def key_kind(self) -> str:
        return cache_key(self.v.kind, self.go, RECIPE)

    def key_crictl(self) -> str:
        return cache_key(self.v.crictl_module, self.v.crictl, "stamped", self.go, RECIPE)

    # The runtime's keys hold only its own versions: every Kubernetes version reuses it.
    def key_containerd(self) -> str:
        return cache_key(gobuild.CONTAINERD_MODULE, self.v.containerd, self.go, RECIPE)

    def key_runc(self) -> str:
        return cache_key(gobuild.RUNC_MODULE, self.v.runc, self.go, RECIPE)

    def key_cni(self) -> str:
        return cache_key(
            gobuild.CNI_MODULE, self.v.cni_plugins, self.v.cni_plugin_list, self.go, RECIPE
        )

    def runtime(self) -> nodeimage.Runtime:
        return nodeimage.Runtime(
            containerd_bin=self.path("go-containerd", self.key_containerd(), "bin"),
            runc=self.path("go-runc", self.key_runc(), "bin", "runc"),
            cni_bin=self.path("go-cni", self.key_cni(), "cni"),
        )

    def key_kubernetes(self, binaries: tuple[str, ...]) -> str:
        return cache_key(self.v.kubernetes, self.v.staging_version, binaries, self.go, RECIPE)

    def key_pause(self) -> str:
        return cache_key(gobuild.pause_source_digest(), self.go, RECIPE)

    def key_rootfs(self) -> str:
        return cache_key(self.v.debian_suite, self.v.debian_packages, RECIPE)

    # ---- file steps ---------------------------------------------------------------------
    def file_step(
        self, name: str, key, produce, *, beside: bool = False, needs: tuple[str, ...] = ()
    ) -> Step:
        return Step(
            name=name,
            done=lambda: self.cache.has(name, key()),
            run=lambda: self.cache.build(name, key(), produce),
            beside=beside,
            needs=needs,
        )

    def path(self, name: str, key: str, *rel: str) -> Path:
        return self.cache.entry(name, key).joinpath(*rel)

    def kubernetes_bins(self, binaries: tuple[str, ...]) -> Path:
        return self.path("go-kubernetes", self.key_kubernetes(binaries), "bin")

    def kubeadm_image_list(self) -> list[str]:
        """Asked of the built kubeadm once per build: six keys need it, and each `pull-lab
        run` checks every key (the binary cannot change under a running build)."""
        if self._kubeadm_images is None:
            kubeadm = self.kubernetes_bins(self.v.kubernetes_binaries) / "kubeadm"
            self._kubeadm_images = images.kubeadm_images(kubeadm, self.v.kubernetes)
        return self._kubeadm_images

    def key_etcd(self) -> str:
        return cache_key(
            images.etcd_tag(self.kubeadm_image_list()), self.v.etcd_module, self.go, RECIPE
        )

    def apt_key(self, package: str) -> str:
        return cache_key(package, self.v.debian_suite, RECIPE)

    def key_components(self) -> str:
        return cache_key(
            self.key_kubernetes(self.v.kubernetes_binaries),
            self.key_etcd(),
            self.key_pause(),
            self.v.pause_image,
            self.preloaded_workload_ref,
            self.key_registry(),
            self.registry_ref,
            RECIPE,
        )

    def build_components(self, out: Path) -> None:
        image_list = self.kubeadm_image_list()
        specs = images.component_images(
            self.kubernetes_bins(self.v.kubernetes_binaries),
            self.path("go-etcd", self.key_etcd(), "bin", "etcd"),
            self.path("go-pause", self.key_pause(), "bin", "pause"),
            image_list,
            self.v.pause_image,
        )
        specs.append(self.workload_spec((self.preloaded_workload_ref,), labels={}))
        # A cluster made from this node image by anyone (plain `kind create`) runs the lab's
        # registry without a pull: `pull-lab run --kubeconfig` on an offline cluster.
        specs.append(self.registry_spec((self.registry_ref,), labels={}))
        write_archive_file(specs, out / "images.tar")
        (out / "images.txt").write_text("\n".join(r for s in specs for r in s.refs) + "\n")

    # ---- image steps --------------------------------------------------------------------
    def image_step(self, name: str, ref: str, key, produce, needs: tuple[str, ...] = ()) -> Step:
        return Step(name=name, done=lambda: _image_key(ref) == key(), run=produce, needs=needs)

    @property
    def node_ref(self) -> str:
        """Kubernetes and runtime in the tag: two builds of one version never share a tag."""
        return f"{self.image_prefix}/kind-node:{self.v.kubernetes}-{self.v.runtime_label}"

    @property
    def registry_ref(self) -> str:
        return f"{self.image_prefix}/registry:2"

    @property
    def workload_ref(self) -> str:
        return f"{self.image_prefix}/busybox:1.0"

    @property
    def preloaded_workload_ref(self) -> str:
        """The workload image baked into the node's containerd, for pods that need no pull."""
        return f"{self.image_prefix}/preloaded-busybox:1.0"

    def key_node(self) -> str:
        return cache_key(
            self.key_rootfs(),
            self.key_kind(),
            self.key_crictl(),
            self.key_containerd(),
            self.key_runc(),
            self.key_cni(),
            self.key_components(),
            RECIPE,
            NODE_RECIPE,
        )

    def build_node(self) -> None:
        key = self.key_node()
        kind_dir = gobuild.module_dir(
            "node-image", "sigs.k8s.io/kind", self.v.kind, self.log("node-image")
        )
        rootfs_tar = self.path("debian-rootfs", self.key_rootfs(), "rootfs.tar")
        work = Path(tempfile.mkdtemp(prefix="node-image-", dir=self.cache.root))
        try:
            root = work / "rootfs"
            root.mkdir()
            commands.run(
                "node-image", ["tar", "-C", root, "--numeric-owner", "--xattrs", "-xf", rootfs_tar]
            )
            nodeimage.configure_rootfs(
                root,
                kind_dir / "images/base/files",
                self.kubernetes_bins(self.v.kubernetes_binaries),
                self.path("go-crictl", self.key_crictl(), "bin", "crictl"),
                self.runtime(),
                self.v.kubernetes,
                self.log("node-image"),
            )
            nodeimage.preload_images(
                root,
                self.path("component-images", self.key_components(), "images.tar"),
                work,
                self.runtime(),
                self.log("node-image"),
            )
            nodeimage.load_node_image(
                root, work, (self.node_ref,), {images.LABEL_KEY: key}, self.log("node-image")
            )
        finally:
            commands.run("node-image", ["rm", "-rf", work])

    def workload_spec(self, refs: tuple[str, ...], labels: dict[str, str]):
        busybox = self.path(
            "apt-busybox", self.apt_key(self.v.workload_package), "root", "bin", "busybox"
        )
        pause = self.path("go-pause", self.key_pause(), "bin", "pause")
        return images.workload_image(refs, busybox, pause, labels)

    def key_workload(self) -> str:
        return cache_key(self.apt_key(self.v.workload_package), self.key_pause(), RECIPE)

    def build_workload(self) -> None:
        self._load(
            self.workload_spec((self.workload_ref,), {images.LABEL_KEY: self.key_workload()}),
            "workload-image",
        )

    def key_registry(self) -> str:
        return cache_key(self.apt_key(self.v.registry_package), registry_config(tls=False), RECIPE)

    def registry_spec(self, refs: tuple[str, ...], labels: dict[str, str]):
        binary = self.path(
            "apt-registry",
            self.apt_key(self.v.registry_package),
            "root",
            "usr",
            "bin",
            "docker-registry",
        )
        return images.registry_image(refs, binary, labels)

    def build_registry(self) -> None:
        spec = self.registry_spec((self.registry_ref,), {images.LABEL_KEY: self.key_registry()})
        self._load(spec, "registry-image")

    def _load(self, spec, step: str) -> None:
        with tempfile.TemporaryDirectory(dir=self.cache.root) as tmp:
            archive = Path(tmp) / "image.tar"
            write_archive_file([spec], archive)
            _docker_load(archive, step, self.log(step))

    # ---- pipelines ------------------------------------------------------------------------
    def go_steps(self, binaries: tuple[str, ...]) -> list[Step]:
        return [
            self.file_step(
                "go-kind",
                self.key_kind,
                lambda o: gobuild.build_kind(self.v, o, self.log("go-kind")),
            ),
            self.file_step(
                "go-kubernetes",
                lambda: self.key_kubernetes(binaries),
                lambda o: gobuild.build_kubernetes(
                    dataclasses.replace(self.v, kubernetes_binaries=binaries),
                    o,
                    self.log("go-kubernetes"),
                ),
            ),
        ]

    def debian_steps(self) -> list[Step]:
        """Debian's part: no Go output needed, mostly network and disk, so it runs beside
        the Go builds (``beside``) instead of after them."""
        v = self.v
        return [
            self.file_step(
                "debian-rootfs",
                self.key_rootfs,
                lambda o: debian.build_rootfs(
                    v.debian_suite, v.debian_packages, o, self.log("debian-rootfs")
                ),
                beside=True,
            ),
            self.file_step(
                "apt-busybox",
                lambda: self.apt_key(v.workload_package),
                lambda o: debian.download_package(v.workload_package, o, self.log("apt-busybox")),
                beside=True,
            ),
            self.file_step(
                "apt-registry",
                lambda: self.apt_key(v.registry_package),
                lambda o: debian.download_package(v.registry_package, o, self.log("apt-registry")),
                beside=True,
            ),
        ]

    def offline_steps(self) -> list[Step]:
        v = self.v
        return [
            *self.debian_steps(),
            *self.go_steps(v.kubernetes_binaries),
            self.file_step(
                "go-crictl",
                self.key_crictl,
                lambda o: gobuild.build_crictl(v, o, self.log("go-crictl")),
            ),
            self.file_step(
                "go-containerd",
                self.key_containerd,
                lambda o: gobuild.build_containerd(v, o, self.log("go-containerd")),
            ),
            self.file_step(
                "go-runc", self.key_runc, lambda o: gobuild.build_runc(v, o, self.log("go-runc"))
            ),
            self.file_step(
                "go-cni", self.key_cni, lambda o: gobuild.build_cni(v, o, self.log("go-cni"))
            ),
            self.file_step(
                "go-pause", self.key_pause, lambda o: gobuild.build_pause(o, self.log("go-pause"))
            ),
            self.file_step(
                "go-etcd",
                self.key_etcd,
                lambda o: gobuild.build_etcd(
                    v, images.etcd_tag(self.kubeadm_image_list()), o, self.log("go-etcd")
                ),
            ),
            self.file_step(
                "component-images",
                self.key_components,
                self.build_components,
                needs=("apt-busybox", "apt-registry"),
            ),
            self.image_step(
                "node-image", self.node_ref, self.key_node, self.build_node, ("debian-rootfs",)
            ),
            self.image_step(
                "registry-image",
                self.registry_ref,
                self.key_registry,
                self.build_registry,
                ("apt-registry",),
            ),
            self.image_step(
                "workload-image",
                self.workload_ref,
                self.key_workload,
                self.build_workload,
                ("apt-busybox",),
            ),
        ]

    def pull_step(self, ref: str) -> Step:
        def pull() -> None:
            commands.run(f"pull {ref}", ["docker", "pull", ref], log=self.log("docker-pull"))

        return Step(name=f"pull {ref}", done=lambda: _image_present(ref), run=pull)

    def upstream_steps(self) -> list[Step]:
        refs = (
            self.v.upstream_node_image,
            self.v.upstream_registry_image,
            self.v.upstream_workload_image,
        )
        return [*self.go_steps(("kubectl",)), *(self.pull_step(ref) for ref in refs)]

    def outputs(self, source: str) -> LabImages:
        if source == "offline":
            bins = self.kubernetes_bins(self.v.kubernetes_binaries)
            return LabImages(
                source,
                self.path("go-kind", self.key_kind(), "bin", "kind"),
                bins / "kubectl",
                self.node_ref,
                self.registry_ref,
                self.workload_ref,
                self.preloaded_workload_ref,
                self.v.kubernetes,
            )
        node_version = self.v.upstream_node_image.split(":", 1)[1].split("@", 1)[0]
        return LabImages(
            source,
            self.path("go-kind", self.key_kind(), "bin", "kind"),
            self.kubernetes_bins(("kubectl",)) / "kubectl",
            self.v.upstream_node_image,
            self.v.upstream_registry_image,
            self.v.upstream_workload_image,
            self.v.upstream_workload_image,  # `kind load`ed into the node after creation
            node_version,
        )


def _done_or_unknown(step: Step) -> bool:
    """A step whose key needs an earlier step's output counts as done for the space check."""
    try:
        return step.done()
    except (OSError, subprocess.CalledProcessError):
        return True


def check_free_space(root: Path, needed: int = MIN_FREE_BYTES) -> None:
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < needed:
        raise LabError(
            f"only {free / 1024**3:.1f} GiB free under {root}; "
            f"a cold build needs about {needed / 1024**3:.0f} GiB",
            "free disk space or point PULL_LAB_CACHE_DIR at a larger disk",
        )


def build_all(
    source: str = "offline",
    cache: BuildCache | None = None,
    versions: Versions | None = None,
    out: TextIO = sys.stderr,
    image_prefix: str = LOCAL_REGISTRY,
    lanes: bool = True,
) -> tuple[LabImages, list[StepResult]]:
    """Prepare the host, then build (or find cached) everything for ``source``; ``lanes``
    False runs the Debian steps in turn instead of beside the Go builds."""
    if source not in IMAGE_SOURCES:
        raise LabError(
            f"unknown image source {source!r}", f"use one of: {', '.join(IMAGE_SOURCES)}"
        )
    cache = cache or BuildCache()
    versions = versions or load_versions()
    prepare_host(out)
    if docker_info() is None:
        raise StepFailed(
            "host-prep",
            "Docker does not answer",
            "run `pull-lab host-prep` and check dockerd's log",
        )
    builder = Builder(cache, versions, out, image_prefix)
    with cache.locked():
        cache.sweep_partial()
        steps = builder.offline_steps() if source == "offline" else builder.upstream_steps()
        if not all(_done_or_unknown(step) for step in steps):
            check_free_space(cache.root)
        results = Pipeline(f"build:{source}", steps, out, lanes=lanes).run()
    return builder.outputs(source), results
