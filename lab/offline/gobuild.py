"""Go builds from the module proxy: kind, Kubernetes, etcd, crictl, the node's container runtime
(containerd, runc, CNI plugins) and our pause binary.

Every binary is static (CGO_ENABLED=0) so it runs in an image that holds nothing else, except
runc: it needs cgo for seccomp and links the node's libseccomp and libc, as kind's runc does.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from lab.offline import commands
from lab.versions import Versions

GO_ENV = {
    "CGO_ENABLED": "0",
    "GOFLAGS": "-buildvcs=false -trimpath",
    # Never fetch another Go toolchain: the one installed is the one we build with.
    "GOTOOLCHAIN": "local",
}
PAUSE_SOURCE = Path(__file__).with_name("pause")


def go_version(step: str) -> str:
    return commands.run(step, ["go", "env", "GOVERSION"], env=GO_ENV).strip()


def module_dir(step: str, module: str, version: str, log: Path) -> Path:
    """Download one module (zip only, no dependencies) and return its directory."""
    out = commands.run(
        step,
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        log=log,
        env=GO_ENV,
        doing=f"downloading {module}@{version}",
    )
    info = json.loads(out[out.index("{") :])
    if info.get("Error"):
        raise commands.StepFailed(step, info["Error"], "check the version in lab/versions.toml")
    return Path(info["Dir"])


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The k8s.io modules that k8s.io/kubernetes replaces with its own staging tree."""
    return sorted(
        set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", kubernetes_go_mod, re.M))
    )


def kubernetes_wrapper_go_mod(versions: Versions, staging: list[str]) -> str:
    """A module that builds k8s.io/kubernetes commands with each staging module at its release."""
    lines = [
        "module registry-pull-lab/kubernetes-build",
        "",
        "go 1.24",
        "",
        f"require k8s.io/kubernetes {versions.kubernetes}",
        "",
        "replace (",
        *(f"\t{m} => {m} {versions.staging_version}" for m in staging),
        ")",
        "",
    ]
    return "\n".join(lines)


def tools_go(packages: list[str]) -> str:
    imports = "\n".join(f'\t_ "{p}"' for p in packages)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def version_ldflags(version: str, commit: str = "0" * 40) -> str:
    """What upstream's hack/lib/version.sh stamps; kubeadm derives its skew checks from it."""
    v = version.removeprefix("v")
    major, minor = v.split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        for key, value in (
            ("gitVersion", version),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitCommit", commit),
            ("gitTreeState", "clean"),
            ("buildDate", "1970-01-01T00:00:00Z"),
        ):
            flags.append(f"-X {pkg}.{key}={value}")
    return " ".join(flags)


def go_install(
    step: str, module_at_version: str, out: Path, log: Path, ldflags: str | None = None
) -> None:
    """`go install module@version` into ``out``/bin: a module with no replace directives."""
    bin_dir = out / "bin"
    bin_dir.mkdir(parents=True)
    flags = ["-ldflags", ldflags] if ldflags else []
    commands.run(
        step,
        ["go", "install", *flags, module_at_version],
        env={**GO_ENV, "GOBIN": str(bin_dir)},
        log=log,
        doing=f"building {module_at_version}",
    )


def build_kind(versions: Versions, out: Path, log: Path) -> None:
    go_install("go-kind", f"sigs.k8s.io/kind@{versions.kind}", out, log)


def build_crictl(versions: Versions, out: Path, log: Path) -> None:
    go_install(
        "go-crictl",
        f"{versions.crictl_module}@{versions.crictl}",
        out,
        log,
        ldflags=f"-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version={versions.crictl}",
    )


@dataclass(frozen=True)
class GoCommand:
    """One binary of a module: its package, where it goes under the output, its tags and flags."""

    package: str
    output: str  # relative to the step's output directory, e.g. "bin/containerd"
    tags: str = ""
    ldflags: str = "-s -w"


def build_from_module(
    step: str,
    module: str,
    version: str,
    binaries: list[GoCommand],
    out: Path,
    log: Path,
    cgo: bool = False,
) -> None:
    """Build commands of ``module`` at ``version`` with the dependency versions its go.sum pins.

    A throwaway module requires it (so `go mod tidy` takes the module's own pins) and a tools.go
    imports the commands (so tidy keeps their dependencies)."""
    src = out / "src"
    src.mkdir(parents=True)
    (src / "go.mod").write_text(
        f"module registry-pull-lab/{step}-build\n\ngo 1.24\n\nrequire {module} {version}\n"
    )
    (src / "tools.go").write_text(tools_go(sorted({b.package for b in binaries})))
    env = {**GO_ENV, "CGO_ENABLED": "1" if cgo else "0"}
    commands.run(step, ["go", "mod", "tidy"], cwd=src, env=env, log=log, doing="resolving modules")
    for i, binary in enumerate(binaries, 1):
        target = out / binary.output
        target.parent.mkdir(parents=True, exist_ok=True)
        commands.run(
            step,
            [
                *("go", "build", "-tags", binary.tags, "-ldflags", binary.ldflags),
                *("-o", str(target), binary.package),
            ],
            cwd=src,
            env=env,
            log=log,
            doing=f"building {target.name} ({i}/{len(binaries)})",
        )


CONTAINERD_MODULE = "github.com/containerd/containerd/v2"
CONTAINERD_TAGS = "no_aufs no_zfs no_btrfs no_devmapper"
RUNC_MODULE = "github.com/opencontainers/runc"
CNI_MODULE = "github.com/containernetworking/plugins"


def containerd_commands(version: str) -> list[GoCommand]:
    """containerd, ctr and the runc shim, stamped with the version as containerd's Makefile does."""
    stamp = (
        f"-s -w -X {CONTAINERD_MODULE}/version.Version={version}"
        f" -X {CONTAINERD_MODULE}/version.Package={CONTAINERD_MODULE}"
    )
    return [
        GoCommand(f"{CONTAINERD_MODULE}/cmd/containerd", "bin/containerd", CONTAINERD_TAGS, stamp),
        GoCommand(f"{CONTAINERD_MODULE}/cmd/ctr", "bin/ctr", CONTAINERD_TAGS, stamp),
        # The shim is built without gRPC (ttrpc only), as containerd's Makefile builds it.
        GoCommand(
            f"{CONTAINERD_MODULE}/cmd/containerd-shim-runc-v2",
            "bin/containerd-shim-runc-v2",
            CONTAINERD_TAGS + " no_grpc",
            stamp,
        ),
    ]


def runc_commands() -> list[GoCommand]:
    """runc reads its version from the VERSION file it embeds: no stamp needed."""
    return [GoCommand(RUNC_MODULE, "bin/runc", "seccomp urfave_cli_no_docs")]


def cni_commands(version: str, plugins: tuple[str, ...]) -> list[GoCommand]:
    stamp = f"-s -w -X {CNI_MODULE}/pkg/utils/buildversion.BuildVersion={version}"
    return [
        GoCommand(f"{CNI_MODULE}/plugins/{p}", f"cni/{p.rsplit('/', 1)[1]}", ldflags=stamp)
        for p in plugins
    ]


def build_containerd(versions: Versions, out: Path, log: Path) -> None:
    build_from_module(
        "go-containerd",
        CONTAINERD_MODULE,
        versions.containerd,
        containerd_commands(versions.containerd),
        out,
        log,
    )


def build_runc(versions: Versions, out: Path, log: Path) -> None:
    build_from_module("go-runc", RUNC_MODULE, versions.runc, runc_commands(), out, log, cgo=True)


def build_cni(versions: Versions, out: Path, log: Path) -> None:
    build_from_module(
        "go-cni",
        CNI_MODULE,
        versions.cni_plugins,
        cni_commands(versions.cni_plugins, versions.cni_plugin_list),
        out,
        log,
    )


def build_kubernetes(versions: Versions, out: Path, log: Path) -> None:
    step = "go-kubernetes"
    k8s_dir = module_dir(step, "k8s.io/kubernetes", versions.kubernetes, log)
    staging = staging_modules((k8s_dir / "go.mod").read_text())
    if not staging:
        raise commands.StepFailed(step, f"no staging modules found in {k8s_dir}/go.mod")
    src = out / "src"
    src.mkdir(parents=True)
    (src / "go.mod").write_text(kubernetes_wrapper_go_mod(versions, staging))
    packages = [f"k8s.io/kubernetes/cmd/{b}" for b in versions.kubernetes_binaries]
    (src / "tools.go").write_text(tools_go(packages))
    commands.run(
        step, ["go", "mod", "tidy"], cwd=src, env=GO_ENV, log=log, doing="resolving modules"
    )
    # The whole graph first: a module the proxy does not serve fails here, in seconds.
    commands.run(
        step, ["go", "mod", "download"], cwd=src, env=GO_ENV, log=log, doing="downloading modules"
    )
    bin_dir = out / "bin"
    bin_dir.mkdir()
    ldflags = version_ldflags(versions.kubernetes)
    total = len(packages)
    for i, (name, pkg) in enumerate(zip(versions.kubernetes_binaries, packages, strict=True), 1):
        commands.run(
            step,
            ["go", "build", "-ldflags", ldflags, "-o", str(bin_dir / name), pkg],
            cwd=src,
            env=GO_ENV,
            log=log,
            doing=f"building {name} ({i}/{total})",
        )


def etcd_module_version(image_tag: str) -> str:
    """kubeadm's etcd tag '3.6.5-0' is built from module release v3.6.5."""
    match = re.fullmatch(r"(\d+\.\d+\.\d+)(-\d+)?", image_tag)
    if not match:
        raise ValueError(f"unexpected etcd image tag {image_tag!r}")
    return "v" + match.group(1)


def build_etcd(versions: Versions, image_tag: str, out: Path, log: Path) -> None:
    step = "go-etcd"
    src = out / "src"
    src.mkdir(parents=True)
    module_version = etcd_module_version(image_tag)
    (src / "go.mod").write_text(
        "module registry-pull-lab/etcd-build\n\ngo 1.24\n\n"
        f"require {versions.etcd_module} {module_version}\n"
    )
    (src / "main.go").write_text(
        "// etcd, built from its server module: the same entry point as the etcd command.\n"
        'package main\n\nimport (\n\t"os"\n\n'
        f'\t"{versions.etcd_module}/etcdmain"\n)\n\nfunc main() {{ etcdmain.Main(os.Args) }}\n'
    )
    commands.run(
        step, ["go", "mod", "tidy"], cwd=src, env=GO_ENV, log=log, doing="resolving modules"
    )
    bin_dir = out / "bin"
    bin_dir.mkdir()
    commands.run(
        step,
        ["go", "build", "-ldflags", "-s -w", "-o", str(bin_dir / "etcd"), "."],
        cwd=src,
        env=GO_ENV,
        log=log,
        doing=f"building etcd {module_version}",
    )


def build_pause(out: Path, log: Path) -> None:
    src = out / "src"
    shutil.copytree(PAUSE_SOURCE, src)
    bin_dir = out / "bin"
    bin_dir.mkdir()
    commands.run(
        "go-pause",
        ["go", "build", "-ldflags", "-s -w", "-o", str(bin_dir / "pause"), "."],
        cwd=src,
        env=GO_ENV,
        log=log,
        doing="building pause",
    )


def pause_source_digest() -> str:
    return "".join(p.read_text() for p in sorted(PAUSE_SOURCE.iterdir()) if p.is_file())
