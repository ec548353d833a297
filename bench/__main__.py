"""Build and cluster figures: cold build per step, warm cluster-ready time, size, memory.

python -m bench cold-build      # every cache empty (build, Go modules, Go build cache)
python -m bench build-lanes     # Debian and runtime steps rebuilt, in turn and on two lanes
python -m bench warm-cluster -n 3
python -m bench catalogue
python -m bench vs-kind -n 3     # pull-lab up + down beside raw kind, with the ratio
python -m bench one-scenario -n 3  # `pull-lab run secret-kubectl`, its cluster included
python -m bench lab-memory      # a running lab's memory per container
python -m bench suite           # `make test`'s pytest: wall, machine CPU, costliest files

Each takes `--kubernetes 1.37,1.34` (default: the default version): the figures per version, in
that order. For cold-build the first version starts from empty caches and each later one reuses
them: its figure is what one more version costs.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.errors import LabError
from lab.offline.cache import BuildCache
from lab.versions import load_versions


def _peak_child_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def cold_build(args: argparse.Namespace) -> None:
    from lab.offline.build import build_all

    with tempfile.TemporaryDirectory(prefix="pull-lab-bench-", dir=args.tmp) as tmp:
        root = Path(tmp)
        # A cold Go toolchain too: fresh module and build caches, as on a new machine.
        os.environ["GOMODCACHE"] = str(root / "gomod")
        os.environ["GOCACHE"] = str(root / "gocache")
        refs: set[str] = set()
        for n, version in enumerate(args.kubernetes):
            log = io.StringIO()
            started = time.monotonic()
            images, results = build_all(
                "offline",
                BuildCache(root / "cache"),
                version,
                out=log,
                image_prefix="pull-lab-bench.local",
            )
            total = time.monotonic() - started
            state = "every cache empty" if n == 0 else "caches warm from the versions before"
            print(f"offline build of Kubernetes {version.kubernetes}, {state} (seconds per step)")
            for r in results:
                print(f"  {r.name:<18} {r.status:<7} {r.seconds:8.1f}")
            print(f"  {'total':<18} {'':<7} {total:8.1f}")
            size = subprocess.run(
                ["docker", "image", "inspect", "--format", "{{.Size}}", images.node_image],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            print(f"node image size: {int(size) / 1e6:.0f} MB")
            refs |= {images.node_image, images.registry_image, images.workload_image}
        print(f"peak RSS of any build process: {_peak_child_rss_mib():.0f} MiB")
        du = subprocess.run(
            ["du", "-sm", str(root)], capture_output=True, text=True
        ).stdout.split()[0]
        print(f"disk used by the cold caches: {du} MB")
        subprocess.run(
            ["chmod", "-R", "u+w", str(root)], check=False
        )  # Go's module cache is read-only
        for ref in sorted(refs):
            subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)


# What build-lanes makes again: the Debian steps and the runtime's Go builds (Kubernetes, kind
# and etcd stay cached: minutes each, and not what the lanes change).
LANE_STEPS = (
    "debian-rootfs",
    "apt-busybox",
    "apt-registry",
    "go-crictl",
    "go-containerd",
    "go-runc",
    "go-cni",
)


def build_lanes(args: argparse.Namespace) -> None:
    """The Debian steps beside the Go builds, against the same build with every step in turn:
    LANE_STEPS rebuilt from an empty Go build cache (Go's module cache stays warm), the rest
    linked from the lab's cache, the node image made again under a bench tag."""
    main_cache = BuildCache()
    for version in args.kubernetes:
        walls: dict[bool, list[float]] = {False: [], True: []}  # this version's runs only
        for _ in range(args.n):
            for lanes in (False, True):
                walls[lanes].append(_partial_cold_build(main_cache, version, lanes))
        print(f"Kubernetes {version.kubernetes}: {', '.join(LANE_STEPS)} rebuilt")
        turn, beside = statistics.median(walls[False]), statistics.median(walls[True])
        for label, value, runs in (
            ("every step in turn", turn, walls[False]),
            ("Debian beside the Go builds", beside, walls[True]),
        ):
            print(f"  {label:<28} {value:6.1f}s  runs {[round(x, 1) for x in runs]}")
        print(f"  ratio beside / in turn: {beside / turn:.2f}x")
        print(f"  peak RSS of any build process: {_peak_child_rss_mib():.0f} MiB")


def _partial_cold_build(main_cache: BuildCache, version, lanes: bool) -> float:
    from lab.offline.build import build_all

    # Beside the lab's cache: the same disk, so hard links work.
    scratch = str(main_cache.root.parent)
    with tempfile.TemporaryDirectory(prefix="pull-lab-bench-lanes-", dir=scratch) as tmp:
        root = Path(tmp)
        for entry in main_cache.root.iterdir():
            if entry.name not in (*LANE_STEPS, "clusters", "logs"):
                # Hard links: a copy of the cached entries in no time and no space.
                subprocess.run(["cp", "-al", str(entry), str(root / entry.name)], check=True)
        previous = os.environ.get("GOCACHE")
        os.environ["GOCACHE"] = str(root / "gocache")
        try:
            started = time.monotonic()
            images, _ = build_all(
                "offline",
                BuildCache(root),
                version,
                out=io.StringIO(),
                image_prefix="pull-lab-bench.local",
                lanes=lanes,
            )
            wall = time.monotonic() - started
        finally:
            if previous is None:
                os.environ.pop("GOCACHE", None)
            else:
                os.environ["GOCACHE"] = previous
            subprocess.run(["chmod", "-R", "u+w", str(root)], check=False)
        for ref in (images.node_image, images.registry_image, images.workload_image):
            subprocess.run(["docker", "image", "rm", ref], capture_output=True, check=False)
    return wall


def one_scenario(args: argparse.Namespace) -> None:
    """One scenario as a person runs it, its own cluster made and deleted (issue 15: under
    20 s on a warm cache)."""
    for version in args.kubernetes:
        runs = [
            _timed(
                [
                    *(sys.executable, "-m", "lab.cli", "run", args.scenario),
                    *("--kubernetes", version.kubernetes),
                ]
            )
            for _ in range(args.n)
        ]
        print(
            f"Kubernetes {version.kubernetes}: pull-lab run {args.scenario}, cluster included: "
            f"median {statistics.median(runs):.1f}s  runs {[round(x, 1) for x in runs]}"
        )


def warm_cluster(args: argparse.Namespace) -> None:
    for version in args.kubernetes:
        print(f"Kubernetes {version.kubernetes}:")
        warm_cluster_of(version, args.n)


def warm_cluster_of(version, n: int) -> None:
    from lab.cluster import LabCluster
    from lab.kube import api_client, wait_cluster_usable
    from lab.offline.build import build_all
    from lab.session import cluster_spec
    from lab.settings import Settings

    started = time.monotonic()
    images, _ = build_all("offline", versions=version, out=io.StringIO())
    cached = time.monotonic() - started
    creates, readies, deletes = [], [], []
    for i in range(n):
        settings = Settings(cluster_name=f"pull-lab-bench-{i}")
        cluster = LabCluster(cluster_spec(settings, images))
        t0 = time.monotonic()
        try:
            cluster.create()
            t1 = time.monotonic()
            wait_cluster_usable(api_client(cluster.kubeconfig_path))
            t2 = time.monotonic()
        finally:
            cluster.delete()
            from lab.cluster import remove_network

            remove_network(settings.network_name)
        creates.append(t1 - t0)
        readies.append(t2 - t0)
        deletes.append(time.monotonic() - t2)
    print(f"warm build check (all steps cached): {cached:.1f}s")
    for label, values in (("kind create cluster", creates), ("to Ready + default SA", readies)):
        runs = [round(x, 1) for x in values]
        print(f"{label:<24} median {statistics.median(values):6.1f}s  runs {runs}")
    print(f"delete                   median {statistics.median(deletes):6.1f}s")
    print(f"warm total to a usable cluster (median): {cached + statistics.median(readies):.1f}s")


def catalogue(args: argparse.Namespace) -> None:
    """The whole catalogue on a warm cache, cluster creation included; time per scenario. With
    several ``--workers`` counts (and ``--jobs``), the shapes side by side."""
    totals = []
    for version in args.kubernetes:
        for workers in args.workers:
            print(f"Kubernetes {version.kubernetes}, {workers} workers, {args.jobs} jobs:")
            total = catalogue_of(version.kubernetes, workers, args.jobs)
            totals.append((version.kubernetes, workers, total))
    if len(totals) > 1:
        base = totals[0][2]
        for kubernetes, workers, total in totals:
            print(f"  {kubernetes} {workers} workers: {total:6.1f}s  ({total / base:.2f}x)")


def catalogue_of(kubernetes: str, workers: int = 0, jobs: int = 1) -> float:
    import json

    with tempfile.TemporaryDirectory(prefix="pull-lab-bench-report-") as tmp:
        started = time.monotonic()
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "lab.cli", "run"),
                *("--kubernetes", kubernetes, "--report-dir", tmp),
                *("--workers", str(workers), "--jobs", str(jobs)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        total = time.monotonic() - started
        doc = json.loads((Path(tmp) / "report.json").read_text())
    print(
        f"whole catalogue, warm cache, cluster creation included: {total:.1f}s "
        f"(exit {proc.returncode})"
    )
    for s in doc["scenarios"]:
        extra = ", ".join(
            f"{k} {v:.1f}s" for k, v in s["timings"].items() if k.startswith("recovery")
        )
        print(f"  {s['id']:<28} {s['outcome']:<7} {s['seconds']:6.1f}s {extra}")
    return total


def _versions(text: str) -> list:
    """'1.37,1.34' -> the pinned versions, in the order given (the first builds cold)."""
    wanted = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return [load_versions(kubernetes=w) for w in wanted]
    except LabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    return time.monotonic() - started


def vs_kind(args: argparse.Namespace) -> None:
    """`pull-lab up && pull-lab down` beside raw `kind create cluster --wait` + delete, on the
    same node image, kind config and kind of network (raw kind needs the lab's config too: on
    cgroup v1 the 1.35+ kubelet starts only with failCgroupV1: false, and the node image has
    no kindnet)."""
    from lab.cluster import ensure_network, kind_config, remove_network
    from lab.manifest_yaml import dump
    from lab.offline.build import build_all
    from lab.session import cluster_spec
    from lab.settings import Settings

    for version in args.kubernetes:
        images, _ = build_all("offline", versions=version, out=io.StringIO())
        lab_runs, kind_runs = [], []
        with tempfile.TemporaryDirectory(prefix="pull-lab-bench-kind-") as tmp:
            for i in range(args.n):
                name = f"pull-lab-vs-{i}"
                cli = [sys.executable, "-m", "lab.cli"]
                kube = ["--kubernetes", version.kubernetes]
                lab_runs.append(
                    _timed([*cli, "up", "--name", name, *kube])
                    + _timed([*cli, "down", "--name", name])
                )
                raw = f"pull-lab-raw-{i}"
                settings = Settings(cluster_name=raw)
                spec = cluster_spec(settings, images)
                config = Path(tmp) / f"{raw}.yaml"
                config.write_text(dump(kind_config(spec)))
                kind = str(images.kind_bin)
                # A network like the lab's, made and removed here: kind's default "kind"
                # network would masquerade, and stay behind after the delete.
                ensure_network(settings.network_name, settings.run_id)
                env = {**os.environ, "KIND_EXPERIMENTAL_DOCKER_NETWORK": settings.network_name}
                try:
                    kind_runs.append(
                        _timed(
                            [
                                *(kind, "create", "cluster", f"--name={raw}"),
                                *(f"--image={images.node_image}", f"--config={config}"),
                                *("--wait", "120s", f"--kubeconfig={Path(tmp) / raw}"),
                            ],
                            env=env,
                        )
                        + _timed([kind, "delete", "cluster", f"--name={raw}"], env=env)
                    )
                finally:
                    remove_network(settings.network_name)
        lab, kind = statistics.median(lab_runs), statistics.median(kind_runs)
        print(f"Kubernetes {version.kubernetes}, median of {args.n}, up + down each time:")
        for label, value, runs in (
            ("pull-lab up && pull-lab down", lab, lab_runs),
            ("kind create --wait 120s && delete", kind, kind_runs),
        ):
            print(f"  {label:<34} {value:6.1f}s  runs {[round(x, 1) for x in runs]}")
        print(f"  ratio lab / raw kind: {lab / kind:.2f}x")


def _memory_mib(container) -> float:
    """What `docker stats` shows: usage less the page cache (cgroup v1 `cache`, v2 `file`)."""
    stats = container.stats(stream=False)["memory_stats"]
    detail = stats.get("stats", {})
    return (stats["usage"] - detail.get("cache", detail.get("file", 0))) / 2**20


def lab_memory(args: argparse.Namespace) -> None:
    """A running lab's memory: `pull-lab up`, then each of its containers (node, registries)
    after the node settles for ``--settle`` seconds, median of ``-n`` samples 1 s apart."""
    import docker

    client = docker.from_env()
    for version in args.kubernetes:
        name = "pull-lab-bench-mem"
        cli = [sys.executable, "-m", "lab.cli"]
        subprocess.run(
            [*cli, "up", "--name", name, "--kubernetes", version.kubernetes],
            capture_output=True,
            check=True,
        )
        try:
            time.sleep(args.settle)  # a benchmark's idle period, not a wait for a state
            containers = client.containers.list(filters={"name": name})
            samples: dict[str, list[float]] = {c.name: [] for c in containers}
            for _ in range(args.n):
                for c in containers:
                    samples[c.name].append(_memory_mib(c))
                time.sleep(1)  # spacing between samples
        finally:
            subprocess.run([*cli, "down", "--name", name], capture_output=True, check=False)
        print(f"Kubernetes {version.kubernetes}: a running lab (pull-lab up), idle {args.settle}s")
        total = 0.0
        for cname in sorted(samples):
            value = statistics.median(samples[cname])
            total += value
            print(f"  {cname:<36} {value:8.0f} MiB")
        print(f"  {'total':<36} {total:8.0f} MiB")


def suite(args: argparse.Namespace) -> int:
    from bench.suite import run_suite

    return run_suite(args.pytest_args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("cold-build", help="time every build step from empty caches")
    p.add_argument("--tmp", default=str(BuildCache().root.parent), help="where the cold caches go")
    p.set_defaults(func=cold_build)
    p = sub.add_parser("build-lanes", help="Debian beside the Go builds, against in turn")
    p.add_argument("-n", type=int, default=1)
    p.set_defaults(func=build_lanes)
    p = sub.add_parser("one-scenario", help="time `pull-lab run SCENARIO`, cluster included")
    p.add_argument("-n", type=int, default=3)
    p.add_argument("--scenario", default="secret-kubectl")
    p.set_defaults(func=one_scenario)
    p = sub.add_parser("warm-cluster", help="time cluster creation with everything cached")
    p.add_argument("-n", type=int, default=3)
    p.set_defaults(func=warm_cluster)
    p = sub.add_parser("catalogue", help="time the whole scenario catalogue, per scenario")
    p.add_argument(
        "--workers",
        type=lambda t: [int(w) for w in t.split(",")],
        default=[0],
        help="worker counts, comma-separated (default 0)",
    )
    p.add_argument("--jobs", type=int, default=1, help="scenarios at once (pull-lab run -j)")
    p.set_defaults(func=catalogue)
    p = sub.add_parser("vs-kind", help="pull-lab up + down beside raw kind create + delete")
    p.add_argument("-n", type=int, default=3)
    p.set_defaults(func=vs_kind)
    p = sub.add_parser("lab-memory", help="memory of a running lab, per container")
    p.add_argument("-n", type=int, default=5, help="samples, 1 s apart")
    p.add_argument("--settle", type=float, default=20.0, help="seconds idle before sampling")
    p.set_defaults(func=lab_memory)
    p = sub.add_parser("suite", help="the whole test suite: wall, machine CPU, costliest files")
    p.add_argument(
        "pytest_args", nargs="*", help="passed to pytest after `--` (default: the whole suite)"
    )
    p.set_defaults(func=suite)
    for p in sub.choices.values():
        p.add_argument(
            "--kubernetes",
            type=_versions,
            default=None,
            help="versions, comma-separated (default: lab/versions.toml's default)",
        )
    args = parser.parse_args(argv)
    args.kubernetes = args.kubernetes or [load_versions()]
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
