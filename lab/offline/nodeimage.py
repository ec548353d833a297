"""Assemble the kind node image directly: what `kind build node-image` does, without pulls.

Inputs: a Debian rootfs tarball, kind's base files from the sigs.k8s.io/kind module, the
Kubernetes binaries, and an archive of the images the control plane needs. Output: an
image `docker load`ed into the host's Docker, ready for `kind create cluster --image`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.errors import StepFailed
from lab.offline import commands, heartbeat
from lab.offline.archive import DEFAULT_PATH, ImageSpec, write_archive

STEP = "node-image"
NODE_FILES = Path(__file__).with_name("node")
# The node's egress guard: pull-lab-egress.sh as /usr/local/bin/pull-lab-egress, and its unit.
EGRESS_SCRIPT = "pull-lab-egress"

# Global (not namespaced) kernel settings a node's systemd-sysctl would change on the host.
HOST_GLOBAL_SYSCTL_FILES = ("usr/lib/sysctl.d", "etc/sysctl.d/99-sysctl.conf")

# Mirrors the unit clean-up of kind's base image: services a node container must not start.
WANTS_TO_CLEAR = (
    "lib/systemd/system/multi-user.target.wants",
    "etc/systemd/system",  # every *.wants under it
    "lib/systemd/system/local-fs.target.wants",
    "lib/systemd/system/basic.target.wants",
)


def install_kind_files(kind_files: Path, root: Path) -> None:
    """Copy kind's images/base/files with the modes its Dockerfile sets (zips drop exec bits)."""
    for src in kind_files.rglob("*"):
        rel = src.relative_to(kind_files)
        dest = root / rel
        if src.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            dest.chmod(0o755)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        executable = rel.parts[:3] == ("usr", "local", "bin") or rel.parts[:2] == ("kind", "bin")
        dest.chmod(0o755 if executable else 0o644)


# kind's entrypoint asks DNS for host.docker.internal, with a 5 s timeout. On the lab's network
# (masquerading off) docker's resolver forwards that query to the host's upstream servers and no
# answer can come back: every node boot waited the full 5 s, and the query left the host. A
# Linux engine only ever names that host through /etc/hosts (--add-host), so the image asks
# the hosts file alone and falls back, as kind does, to the default gateway.
DOCKER_HOST_LOOKUP = "getent ahostsv4 'host.docker.internal'"
DOCKER_HOST_LOOKUP_FILES_ONLY = "getent -s files ahostsv4 'host.docker.internal'"


def look_up_docker_host_in_hosts_file(entrypoint: Path) -> None:
    """Rewrite the one lookup; a kind release that changed it fails the build, not the boot."""
    text = entrypoint.read_text()
    if text.count(DOCKER_HOST_LOOKUP) != 1:
        raise StepFailed(
            STEP,
            f"kind's entrypoint {entrypoint} no longer has exactly one `{DOCKER_HOST_LOOKUP}`",
            "update lab/offline/nodeimage.py for this kind release",
        )
    entrypoint.write_text(text.replace(DOCKER_HOST_LOOKUP, DOCKER_HOST_LOOKUP_FILES_ONLY))


def _unit_wanted_by(unit: Path) -> list[str]:
    targets = []
    for line in unit.read_text().splitlines():
        if line.strip().startswith("WantedBy="):
            targets += line.split("=", 1)[1].split()
    return targets


def enable_unit(root: Path, name: str) -> None:
    """What `systemctl enable` does for a unit with [Install] WantedBy=, without systemd."""
    unit = root / "etc/systemd/system" / name
    if not unit.exists():
        unit = root / "lib/systemd/system" / name
    for target in _unit_wanted_by(unit):
        wants = root / "etc/systemd/system" / f"{target}.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f"/{unit.relative_to(root)}")


def mask_unit(root: Path, name: str) -> None:
    link = root / "etc/systemd/system" / name
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("/dev/null")


def clear_unit_wants(root: Path) -> None:
    tmpfiles = root / "lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service"
    if tmpfiles.is_symlink() or tmpfiles.exists():
        tmpfiles.unlink()
    for rel in WANTS_TO_CLEAR:
        base = root / rel
        dirs = base.glob("*.wants") if rel == "etc/systemd/system" else [base]
        for d in dirs:
            if d.is_dir():
                for link in d.iterdir():
                    link.unlink()
    sockets = root / "lib/systemd/system/sockets.target.wants"
    if sockets.is_dir():
        for link in sockets.iterdir():
            if "udev" in link.name or "initctl" in link.name:
                link.unlink()


def cri_base_spec(oci_spec: dict) -> dict:
    """kind's base runtime spec: the default OCI spec, a product-files hook, no rlimits."""
    spec = json.loads(json.dumps(oci_spec))
    hooks = spec.setdefault("hooks", {})
    hooks.setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    spec.get("process", {}).pop("rlimits", None)
    return spec


@dataclass(frozen=True)
class Runtime:
    """The node's container runtime as built from the Go module proxy (lab/offline/gobuild.py)."""

    containerd_bin: Path  # containerd, ctr, containerd-shim-runc-v2
    runc: Path
    cni_bin: Path  # one binary per CNI plugin

    @property
    def containerd(self) -> Path:
        return self.containerd_bin / "containerd"

    @property
    def ctr(self) -> Path:
        return self.containerd_bin / "ctr"


CONTAINERD_BINARIES = ("containerd", "ctr", "containerd-shim-runc-v2")


def _install(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    shutil.copyfile(src, dest)
    dest.chmod(0o755)


def install_runtime(root: Path, runtime: Runtime) -> None:
    """containerd, its shim, runc and the CNI plugins where kind's units and config expect them."""
    for name in CONTAINERD_BINARIES:
        _install(runtime.containerd_bin / name, root / "usr/local/bin" / name)
    _install(runtime.runc, root / "usr/local/sbin/runc")  # the shim finds runc on PATH
    for plugin in sorted(runtime.cni_bin.iterdir()):
        _install(plugin, root / "opt/cni/bin" / plugin.name)


def write_containerd_config(root: Path, runtime: Runtime, log: Path) -> None:
    """kind's config.toml is `version = 2` (containerd 1.x plugin names); ours is version 3.

    containerd itself checks it at build time, so a key it does not know fails the build."""
    config = root / "etc/containerd/config.toml"
    config.write_text((NODE_FILES / "containerd2-config.toml").read_text())
    commands.run(
        STEP,
        [runtime.containerd, "--config", config, "config", "dump"],
        log=log,
        doing="checking the containerd config",
    )


def keep_traffic_on_the_network(root: Path) -> None:
    """A unit refusing, in the node, what would leave its docker network (node/*egress*)."""
    _install(NODE_FILES / f"{EGRESS_SCRIPT}.sh", root / "usr/local/bin" / EGRESS_SCRIPT)
    unit = root / "etc/systemd/system" / f"{EGRESS_SCRIPT}.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(NODE_FILES / f"{EGRESS_SCRIPT}.service", unit)


def configure_rootfs(
    root: Path,
    kind_files: Path,
    k8s_bin: Path,
    crictl: Path,
    runtime: Runtime,
    version: str,
    log: Path,
) -> None:
    install_kind_files(kind_files, root)
    look_up_docker_host_in_hosts_file(root / "usr/local/bin/entrypoint")
    install_runtime(root, runtime)
    net_d = root / "etc/cni/net.d"
    net_d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(NODE_FILES / "10-lab-ptp.conflist", net_d / "10-lab-ptp.conflist")
    keep_traffic_on_the_network(root)
    (root / "etc/containerd/certs.d").mkdir(parents=True, exist_ok=True)
    write_containerd_config(root, runtime, log)
    # The node's own ctr: containerd 2's default spec, not whatever the host has.
    oci = json.loads(commands.run(STEP, [runtime.ctr, "oci", "spec"], log=None))
    (root / "etc/containerd/cri-base.json").write_text(json.dumps(cri_base_spec(oci), indent=2))

    clear_unit_wants(root)
    with (root / "etc/systemd/journald.conf").open("a") as f:
        f.write("ReadKMsg=no\n")
    for unit in (
        "kubelet.service",
        "containerd.service",
        "undo-mount-hacks.service",
        f"{EGRESS_SCRIPT}.service",
    ):
        enable_unit(root, unit)
    mask_unit(root, "systemd-binfmt.service")
    (root / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
    (root / "etc/machine-id").write_text("")
    for rel in HOST_GLOBAL_SYSCTL_FILES:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            path.mkdir()
        elif path.exists() or path.is_symlink():
            path.unlink()

    for name in ("kubeadm", "kubelet", "kubectl"):
        shutil.copyfile(k8s_bin / name, root / "usr/bin" / name)
        (root / "usr/bin" / name).chmod(0o755)
    shutil.copyfile(crictl, root / "usr/local/bin/crictl")
    (root / "usr/local/bin/crictl").chmod(0o755)
    (root / "kind").mkdir(exist_ok=True)
    (root / "kind/version").write_text(version + "\n")


# A private daemon for preloading needs the content store and metadata, not the CRI plugins.
PRELOAD_DISABLED_PLUGINS = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.cri.v1.runtime",
    "io.containerd.cri.v1.images",
)


def preload_config(root: Path, state: Path, sock: Path) -> str:
    disabled = ", ".join(f'"{name}"' for name in PRELOAD_DISABLED_PLUGINS)
    return (
        f"version = 3\ndisabled_plugins = [{disabled}]\n"
        f'root = "{root / "var/lib/containerd"}"\nstate = "{state}"\n'
        f'[grpc]\n  address = "{sock}"\n'
    )


def preload_images(root: Path, archive: Path, workdir: Path, runtime: Runtime, log: Path) -> None:
    """Import images into the rootfs's containerd store with the node's own containerd.

    Run on the host, the node's containerd binary writes the metadata in the node's format."""
    state = workdir / "ctrd-state"
    state.mkdir()
    sock = state / "containerd.sock"
    config = workdir / "ctrd.toml"
    config.write_text(preload_config(root, state, sock))
    with (workdir / "ctrd.log").open("wb") as ctrd_log:
        proc = subprocess.Popen(
            [str(runtime.containerd), "--config", str(config)],
            stdout=ctrd_log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StepFailed(
                    STEP,
                    "a private containerd for preloading did not start",
                    f"see {workdir}/ctrd.log",
                )
            time.sleep(0.05)  # waiting for the socket of a process we just started, bounded
        commands.run(
            STEP,
            [
                runtime.ctr,
                "--address",
                sock,
                "--namespace",
                "k8s.io",
                "images",
                "import",
                "--all-platforms",
                "--no-unpack",
                archive,
            ],
            log=log,
            doing="preloading the control-plane images",
        )
        listed = commands.run(
            STEP,
            [runtime.ctr, "--address", sock, "--namespace", "k8s.io", "images", "ls", "-q"],
            log=log,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    (workdir / "preloaded.txt").write_text(listed)


def load_node_image(
    root: Path, workdir: Path, refs: tuple[str, ...], labels: dict[str, str], log: Path
) -> None:
    """Tar the rootfs as one layer and `docker load` it with kind's entrypoint and stop signal."""
    layer = workdir / "rootfs-layer.tar"
    commands.run(
        STEP,
        ["tar", "-C", root, "--numeric-owner", "--xattrs", "-cf", layer, "."],
        log=log,
        doing="packing the node rootfs",
    )
    spec = ImageSpec(
        refs=refs,
        layer_tar=layer,
        entrypoint=("/usr/local/bin/entrypoint", "/sbin/init"),
        env=("container=docker", f"PATH={DEFAULT_PATH}"),
        labels=labels,
        stop_signal="SIGRTMIN+3",
    )
    read_fd, write_fd = os.pipe()
    heartbeat.doing("docker load of the node image")
    with subprocess.Popen(
        ["docker", "load"], stdin=read_fd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as loader:
        os.close(read_fd)
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                write_archive([spec], pipe)
        except BrokenPipeError:
            pass
        output = loader.stdout.read().decode(errors="replace") if loader.stdout else ""
        loader.wait()
    layer.unlink()
    if loader.returncode != 0:
        raise StepFailed(STEP, f"docker load failed: {commands.last_meaningful_line(output)}")
