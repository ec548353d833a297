"""Image specs built from our binaries and Debian packages: component, registry, workload."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from lab.offline.archive import DEFAULT_PATH, FileEntry, ImageSpec
from lab.registry_config import registry_config

LABEL_KEY = "io.registry-pull-lab.build-key"
TMP = FileEntry("tmp", kind="dir", mode=0o1777)

# kubeadm's static pod manifests run these by name (`command: [kube-apiserver, ...]`).
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def component_images(
    k8s_bin: Path, etcd_bin: Path, pause_bin: Path, image_list: list[str], pause_ref: str
) -> list[ImageSpec]:
    """The control-plane images under the exact names kubeadm asks for, plus the sandbox image."""
    by_name = {ref.rsplit("/", 1)[-1].split(":", 1)[0]: ref for ref in image_list}
    specs = [
        ImageSpec(
            refs=(by_name[name],),
            entries=(FileEntry(f"usr/local/bin/{name}", source=k8s_bin / name, mode=0o755), TMP),
        )
        for name in COMPONENTS
    ]
    specs.append(
        ImageSpec(
            refs=(by_name["etcd"],),
            entries=(FileEntry("usr/local/bin/etcd", source=etcd_bin, mode=0o755), TMP),
        )
    )
    specs.append(
        ImageSpec(
            refs=(pause_ref,),
            entries=(FileEntry("pause", source=pause_bin, mode=0o755),),
            entrypoint=("/pause",),
        )
    )
    return specs


def kubeadm_images(kubeadm: Path, version: str) -> list[str]:
    out = subprocess.run(
        [str(kubeadm), "config", "images", "list", "--kubernetes-version", version],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def etcd_tag(image_list: list[str]) -> str:
    for ref in image_list:
        if ref.rsplit("/", 1)[-1].startswith("etcd:"):
            return ref.rsplit(":", 1)[1]
    raise ValueError("kubeadm lists no etcd image")


def busybox_applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    return [a for a in out.stdout.split() if a and a != "busybox"]


def workload_image(
    refs: tuple[str, ...], busybox: Path, pause_bin: Path, labels: dict[str, str]
) -> ImageSpec:
    """A small image that stays running until told to stop (pause as PID 1), with busybox tools."""
    entries = [
        FileEntry("bin/busybox", source=busybox, mode=0o755),
        FileEntry("bin/pause", source=pause_bin, mode=0o755),
        FileEntry("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"),
        FileEntry("etc/group", data=b"root:x:0:\n"),
        FileEntry("root", kind="dir", mode=0o700),
        TMP,
    ]
    entries += [
        FileEntry(f"bin/{applet}", kind="symlink", target="busybox", mode=0o777)
        for applet in busybox_applets(busybox)
        if applet != "pause"
    ]
    return ImageSpec(refs=refs, entries=tuple(entries), cmd=("/bin/pause",), labels=labels)


def shared_libraries(binary: Path) -> list[Path]:
    """Libraries a dynamic binary loads, by `ldd`; empty for a static one."""
    proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    libs = []
    for line in proc.stdout.splitlines():
        match = re.search(r"(/\S+)\s+\(0x", line)
        if match:
            libs.append(Path(match.group(1)))
    return libs


def registry_image(refs: tuple[str, ...], registry_bin: Path, labels: dict[str, str]) -> ImageSpec:
    """Debian's docker-registry binary with the libc it links, laid out like the official image."""
    entries = [
        FileEntry("bin/registry", source=registry_bin, mode=0o755),
        FileEntry("etc/docker/registry/config.yml", data=registry_config(tls=False).encode()),
        FileEntry("etc/passwd", data=b"root:x:0:0:root:/root:/sbin/nologin\n"),
        FileEntry("etc/group", data=b"root:x:0:\n"),
        FileEntry("var/lib/registry", kind="dir", mode=0o755),
        TMP,
    ]
    for lib in shared_libraries(registry_bin):
        entries.append(FileEntry(str(lib).lstrip("/"), source=lib.resolve(), mode=0o755))
    return ImageSpec(
        refs=refs,
        entries=tuple(entries),
        entrypoint=("/bin/registry",),
        cmd=("serve", "/etc/docker/registry/config.yml"),
        env=(f"PATH={DEFAULT_PATH}",),
        labels=labels,
    )
