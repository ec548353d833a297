"""`pull-lab`: the lab's front door.

Exit codes: 0 ok, 1 a scenario failed (`doctor`: a pull problem was found), 2 bad usage or
environment.

`run` replays the scenarios through pytest from wherever the package lives: a checkout, or
site-packages after `pip install`, where `scenarios` is installed beside `lab`.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.settings import IMAGE_SOURCES, Settings, settings_from_env
from lab.signals import terminate_like_interrupt

if TYPE_CHECKING:
    from lab.catalog import Entry

DISTRIBUTION = "registry-pull-lab"


def _settings(args: argparse.Namespace) -> Settings:
    base = settings_from_env()
    return base.with_overrides(
        images=getattr(args, "images", None),
        cluster_name=getattr(args, "name", None),
        workers=getattr(args, "workers", None),
        kubernetes=getattr(args, "kubernetes", None),
        kubeconfig=Path(args.kubeconfig)
        if getattr(args, "lab_kubeconfig", False) and args.kubeconfig
        else None,
        allow_node_changes=getattr(args, "allow_node_changes", False) or None,
    )


def cmd_host_prep(args: argparse.Namespace) -> int:
    from lab.offline.hostprep import prepare_host

    report = prepare_host(sys.stderr)
    if args.with_browser:
        from lab.offline.hostprep import ensure_browser

        report.changes += ensure_browser(sys.stderr).changes
    print("host ready" + ("" if report.changes else " (nothing changed)"))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from lab.offline.build import build_all
    from lab.offline.cache import BuildCache

    settings = _settings(args)
    images, _ = build_all(
        settings.images, BuildCache(settings.cache_dir), settings.versions(), out=sys.stderr
    )
    print(json.dumps({k: str(v) for k, v in vars(images).items()}, indent=2))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from lab.session import LabSession

    settings = _settings(args).with_overrides(keep_cluster=True, reuse_cluster=True)
    session = LabSession(settings, out=sys.stderr)
    session.up()
    print(session.describe_text())
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from lab.cleanup import remove_lab_resources

    removed = remove_lab_resources(_settings(args), everything=args.all, out=sys.stderr)
    print(f"removed {len(removed)} lab resources" if removed else "nothing to remove")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from lab.session import LabSession

    session = LabSession(_settings(args), out=sys.stderr)
    state = session.status()
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        print(session.describe_text(state))
    return 0


# Beside `lab` in a checkout and in site-packages alike (pyproject.toml packages both).
SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
RUN_CONFIG = Path(__file__).with_name("pytest-run.ini")


def version() -> str:
    """The installed distribution's version; a bare source tree has none."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def cmd_scenarios(args: argparse.Namespace) -> int:
    from lab.catalog import CATALOG

    width = max(len(e.id) for e in CATALOG)
    for e in CATALOG:
        flag = "node" if e.node_level else "    "
        print(f"{e.id:<{width}}  {flag}  {e.title}")
    return 0


def docker_answers() -> bool:
    """The environment probe `pull-lab run` checks first: does a Docker daemon answer?"""
    from lab.offline.hostprep import docker_info

    return docker_info() is not None


def check_run_environment() -> None:
    """Docker answers, or we are root: then the build's host prep installs and starts it
    (lab/offline/build.py runs prepare_host first). Anything else cannot run a scenario."""
    import os

    if not docker_answers() and os.geteuid() != 0:
        raise LabError(
            "Docker is not available and host-prep needs root: run `sudo pull-lab host-prep`",
            "or start Docker",
        )


def run_outcomes(report_dir: Path, since: float) -> list[dict] | None:
    """The scenarios this run reported (report.json, written by the lab's reporter), or None
    when this run wrote no report (a stale one from an earlier run does not count)."""
    path = report_dir / "report.json"
    try:
        if path.stat().st_mtime < since:
            return None
        return list(json.loads(path.read_text())["scenarios"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_something_ran(scenarios: list[dict] | None) -> None:
    """Never a success with nothing run: no scenario, or every one skipped, is exit 2."""
    if not scenarios:
        raise LabError("no scenario ran", "see pytest's output above")
    if all(s.get("outcome") == "skipped" for s in scenarios):
        reason = (scenarios[0].get("error") or "no reason given").strip().splitlines()[0]
        raise LabError(
            f"every selected scenario was skipped; {scenarios[0]['id']}: {reason}",
            "fix that and rerun",
        )


def scenario_args(entries: Sequence[Entry]) -> list[str]:
    """pytest's arguments that select ``entries`` from the scenarios beside `lab`, under the
    run's own configuration (RUN_CONFIG), never one pytest would find above site-packages."""
    root = SCENARIOS_DIR.parent
    return [
        *(f"{SCENARIOS_DIR / e.module}.py::test_{e.id.replace('-', '_')}" for e in entries),
        "-c",
        str(RUN_CONFIG),
        f"--rootdir={root}",
        # With -c, pytest loads conftest.py files only below the config file's directory.
        f"--confcutdir={root}",
    ]


def cmd_run(args: argparse.Namespace) -> int:
    """Replay scenarios through pytest (the same fixtures as `make test`), with a report."""
    import os
    import time

    import pytest

    from lab.catalog import CATALOG, entry, long_waits_first
    from lab.report import check_writable

    entries = [entry(s) for s in args.scenarios] if args.scenarios else list(CATALOG)
    report_dir = Path(args.report_dir)
    check_writable(report_dir)
    if args.kubernetes and ("," in args.kubernetes or args.kubernetes.strip() == "all"):
        if args.kubeconfig:
            raise LabError(
                "--kubernetes with several versions makes a cluster per version",
                "drop --kubeconfig, or give one version",
            )
        return run_matrix(args, report_dir)
    if args.kubeconfig and args.workers is not None:
        raise LabError("--workers makes the lab's own cluster", "drop it with --kubeconfig")
    if not (SCENARIOS_DIR / "__init__.py").is_file():
        raise LabError(
            f"the scenarios are not at {SCENARIOS_DIR}",
            f"reinstall {DISTRIBUTION} from its wheel or checkout: its scenarios are missing",
        )
    settings = _settings(args)
    check_run_environment()
    if args.jobs > 1:
        entries = long_waits_first(entries)
    pytest_args = [
        *scenario_args(entries),
        f"--lab-report={report_dir}",
        "--lab-progress",
        "-q",
        "-p",
        "no:cacheprovider",
        # In CI a skip fails the run, as in `make test` (a no-op when the root conftest.py
        # has already loaded it).
        "-p",
        "fixtures.ci_gate",
    ]
    if args.images:
        pytest_args.append(f"--lab-images={args.images}")
    if args.keep_cluster:
        pytest_args.append("--lab-keep-cluster")
    if args.workers is not None:
        pytest_args.append(f"--lab-workers={args.workers}")
    if args.jobs > 1:
        pytest_args += ["-n", str(args.jobs)]
    if settings.kubernetes is not None:
        pytest_args.append(f"--lab-kubernetes={settings.kubernetes}")
    if settings.kubeconfig is not None:
        pytest_args.append(f"--lab-kubeconfig={settings.kubeconfig}")
    if settings.allow_node_changes:
        pytest_args.append("--lab-allow-node-changes")
    if (settings.state_dir / "lab.json").exists():
        # A lab is up (`pull-lab up`): replay on its cluster and leave it running.
        os.environ["PULL_LAB_CLUSTER_NAME"] = settings.cluster_name
        pytest_args.append("--lab-reuse-cluster")
    started = time.time() - 1  # mtimes may be coarser than time.time()
    code = int(pytest.main(pytest_args))
    scenarios = run_outcomes(report_dir, started)
    if code in (0, 5) or (code == 1 and scenarios):
        check_something_ran(scenarios)
    print(f"report: {report_dir / 'report.html'} (also report.md, report.json, junit.xml)")
    return {0: 0, 1: 1}.get(code, 2)


def matrix_cluster_name(base: str, patch: str) -> str:
    """One cluster per version, never a lab that is `up` under the base name: pull-lab-k137."""
    major, minor = patch.removeprefix("v").split(".")[:2]
    return f"{base}-k{major}{minor}"


def run_matrix(args: argparse.Namespace, report_dir: Path) -> int:
    """The catalogue on each version, one cluster at a time, then one matrix report.

    Each version is its own `pull-lab run` process (its own pytest session and cluster), its
    report in REPORT_DIR/<version>/; the matrix reads those reports."""
    import subprocess

    from lab.matrix import load_version_reports
    from lab.matrix_render import write_matrix
    from lab.versions import parse_kubernetes_list

    settings = _settings(argparse.Namespace(**{**vars(args), "kubernetes": None}))
    patches = parse_kubernetes_list(args.kubernetes, settings.versions())
    check_run_environment()
    codes: dict[str, int] = {}
    for patch in patches:
        print(f"[matrix] Kubernetes {patch}: running the catalogue", file=sys.stderr, flush=True)
        cmd = [
            *(sys.executable, "-m", "lab.cli", "run", *args.scenarios),
            *("--kubernetes", patch, "--report-dir", str(report_dir / patch)),
            *("--name", matrix_cluster_name(settings.cluster_name, patch)),
        ]
        if args.images:
            cmd += ["--images", args.images]
        if args.workers is not None:
            cmd += ["--workers", str(args.workers)]
        if args.jobs > 1:
            cmd += ["--jobs", str(args.jobs)]
        codes[patch] = subprocess.run(cmd, check=False).returncode
    ran = {p: report_dir / p for p, code in codes.items() if code in (0, 1)}
    if not ran:
        raise LabError("no version ran its catalogue", "see the output above")
    written = write_matrix(load_version_reports(ran), report_dir)
    print(f"matrix: {', '.join(str(p) for p in written)}")
    if any(code not in (0, 1) for code in codes.values()):
        return 2
    return 1 if any(code == 1 for code in codes.values()) else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Diagnose one pod, or with --all every pod of a namespace that waits on a pull."""
    from dataclasses import replace

    from kubernetes import client

    from lab.doctor import Diagnosis, NamespaceDiagnosis, examine, examine_namespace, probed
    from lab.doctor.connect import connect

    if bool(args.pod) == bool(args.all):
        raise LabError("name one pod, or pass --all for every pod of the namespace")
    ca_file = Path(args.ca_file) if args.ca_file else None
    if ca_file is not None and not (args.probe and ca_file.is_file()):
        raise LabError(f"--ca-file {ca_file}: an existing file, and only with --probe")
    api, chosen = connect(args.kubeconfig, args.context)
    namespace = args.namespace or chosen.namespace or "default"
    core = client.CoreV1Api(api)
    what = f"pods in {namespace}" if args.all else f"pod {namespace}/{args.pod}"
    answer: Diagnosis | NamespaceDiagnosis
    try:
        if args.all:
            answer = examine_namespace(core, namespace)
            if args.probe:
                answer = replace(answer, diagnoses=[probed(d, ca_file) for d in answer.diagnoses])
        else:
            answer = examine(core, namespace, args.pod)
            answer = probed(answer, ca_file) if args.probe else answer
    except LabError:
        raise
    except Exception as exc:
        raise _api_error(exc, f"read {what}", "from", chosen) from exc
    print(answer.json_text() if args.json else answer.text())
    # 1: a pull problem was found; 0: none (every image pulled, or none failed yet).
    return answer.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    """Probe every schedulable node with a pod that pulls the image; one line per node."""
    from kubernetes import client

    from lab.check import CheckRequest, NodeFacts, parse_node_selector, run_check
    from lab.doctor.connect import connect

    if not args.image:
        raise LabError("--image is required", "e.g. pull-lab check --image reg:5000/team/app:1.0")
    if args.timeout <= 0:
        raise LabError(f"--timeout {args.timeout:g}: a number of seconds above 0")
    selector = parse_node_selector(args.node_selector or [])
    api, chosen = connect(args.kubeconfig, args.context)
    namespace = args.namespace or chosen.namespace or "default"
    core = client.CoreV1Api(api)
    request = CheckRequest(
        image=args.image,
        namespace=namespace,
        secret=args.secret,
        node_selector=selector,
        timeout=args.timeout,
        keep=args.keep,
        tolerate_taints=args.tolerate_taints,
    )
    doing = "list nodes"
    try:
        nodes = [NodeFacts.of(n) for n in core.list_node().items]
        if args.secret:
            doing = f"read secret {namespace}/{args.secret}"
            _secret_exists(core, namespace, args.secret)
        doing = f"run probe pods in namespace {namespace}"
        report = run_check(core, request, nodes)
    except LabError:
        raise
    except Exception as exc:
        raise _api_error(exc, doing, "on", chosen) from exc
    print(report.json_text() if args.json else report.text())
    return report.exit_code


def _api_error(exc: Exception, doing: str, preposition: str, chosen: Any) -> LabError:
    """One line for a failed API call: the API's own status, or why the server was not reached
    (unreachable, TLS to it, a broken kubeconfig)."""
    from kubernetes import client

    if isinstance(exc, client.ApiException):
        return LabError(f"cannot {doing}: {exc.status} {exc.reason}", f"context {chosen.context}")
    return LabError(
        f"cannot {doing} {preposition} {chosen.server}: {_short_reason(exc)}",
        f"check the API server of context {chosen.context}",
    )


def _secret_exists(core: Any, namespace: str, name: str) -> None:
    """A secret that is not there is a typo, said before any pod starts. One check may not read
    (403) is left to the kubelet: check needs no such right."""
    from kubernetes import client

    try:
        core.read_namespaced_secret(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            raise LabError(
                f"secret {name} not found in namespace {namespace}", "check --secret and -n"
            ) from exc
        if exc.status != 403:
            raise


def _short_reason(exc: BaseException) -> str:
    """The root of a urllib3 error in one line ("Connection refused"), not its retry story."""
    reason: Any = getattr(exc, "reason", None) or exc
    text = str(reason).splitlines()[0] if str(reason) else type(reason).__name__
    marker = "Failed to establish a new connection: "
    return text.split(marker, 1)[1].rstrip("')\"") if marker in text else text


def add_kubernetes_option(parser: argparse.ArgumentParser, several: bool = False) -> None:
    from lab.versions import load_versions

    v = load_versions()
    supported = ", ".join(v.supported)
    parser.add_argument(
        "--kubernetes",
        metavar="VERSIONS" if several else "VERSION",
        help=f"Kubernetes minor ({supported}; default {v.default_minor}, or $PULL_LAB_KUBERNETES)"
        + (
            ": several, comma-separated, or `all`, run one after another into a matrix report"
            if several
            else ""
        ),
    )


MAX_JOBS = 8


def add_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="worker nodes beside the control plane (default 0, or $PULL_LAB_WORKERS)",
    )


def _jobs(text: str) -> int:
    """argparse's type for --jobs: a count, and pytest-xdist there to run them."""
    import importlib.util

    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"use a whole number of jobs, not {text!r}") from None
    if not 1 <= jobs <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"use 1 to {MAX_JOBS} jobs, not {jobs}")
    if jobs > 1 and importlib.util.find_spec("xdist") is None:
        raise argparse.ArgumentTypeError("more than one job needs pytest-xdist: pip install it")
    return jobs


def _workers(text: str) -> int:
    """argparse's type for --workers: a bad count is a usage error in one line."""
    from lab.settings import MAX_WORKERS, parse_workers

    try:
        count = parse_workers(text)
    except LabError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 0 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"use 0 to {MAX_WORKERS} workers, not {count}")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pull-lab",
        description="Replay how a kubelet pulls from a private TLS + basic-auth registry on kind.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("host-prep", help="install/start Docker and make privileged containers work")
    p.add_argument(
        "--with-browser", action="store_true", help="also install chromium (report test)"
    )
    p.set_defaults(func=cmd_host_prep)

    p = sub.add_parser("build", help="build (or find cached) kind, Kubernetes and every image")
    p.add_argument("--images", choices=IMAGE_SOURCES, help="offline (build all) or upstream (pull)")
    add_kubernetes_option(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("up", help="cluster and seeded lab registries ready; prints how to use them")
    p.add_argument("--images", choices=IMAGE_SOURCES)
    p.add_argument("--name", help="cluster name (default pull-lab)")
    add_workers_option(p)
    add_kubernetes_option(p)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="remove what the lab made (by label)")
    p.add_argument("--name", help="cluster name (default pull-lab)")
    p.add_argument(
        "--all", action="store_true", help="every lab cluster and resource on this machine"
    )
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("scenarios", help="the scenario catalogue, one line each")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("run", help="replay scenarios (all by default) and write the report")
    p.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help="catalogue IDs (see `scenarios`)"
    )
    p.add_argument(
        "--report-dir", default="lab-report", help="where the report goes (./lab-report)"
    )
    p.add_argument("--images", choices=IMAGE_SOURCES)
    p.add_argument("--name", help="cluster name (a lab that is `up` under it is reused)")
    p.add_argument("--keep-cluster", action="store_true", help="keep the cluster afterwards")
    add_workers_option(p)
    add_kubernetes_option(p, several=True)
    p.add_argument(
        "--kubeconfig",
        help="run on this cluster instead of making one: the lab's registries run inside it",
    )
    p.add_argument(
        "--allow-node-changes",
        action="store_true",
        help="with --kubeconfig: a privileged node agent may change (and restore) node files, "
        "so node-level scenarios run too",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=1,
        metavar="N",
        help="scenarios at once (pytest-xdist); node-level ones still hold their node alone",
    )
    p.set_defaults(func=cmd_run, lab_kubeconfig=True)

    p = sub.add_parser("doctor", help="diagnose why a pod cannot pull its image")
    p.add_argument("pod", nargs="?", help="the pod (or --all)")
    p.add_argument("-n", "--namespace", help="default: the context's namespace, else default")
    p.add_argument(
        "--all", action="store_true", help="every pod of the namespace with a pull problem"
    )
    p.add_argument("--kubeconfig", help="one file (default: $KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--context", help="the kubeconfig context (default: the current one)")
    p.add_argument(
        "--json",
        action="store_true",
        help="as JSON (schema pull-lab-doctor/1; with --all pull-lab-doctor-list/1)",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="also probe each failing image's registry from here (DNS, TCP, TLS, /v2/, manifest)",
    )
    p.add_argument("--ca-file", help="with --probe: also trust this CA (PEM)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("check", help="can every node pull this image? one probe pod per node")
    p.add_argument("--image", help="REG/REPO:TAG to pull on each node (required)")
    p.add_argument("--secret", help="the pull secret the probe pods name (in -n NS)")
    p.add_argument("-n", "--namespace", help="default: the context's namespace, else default")
    p.add_argument("--kubeconfig", help="one file (default: $KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--context", help="the kubeconfig context (default: the current one)")
    p.add_argument(
        "--node-selector",
        action="append",
        metavar="K=V",
        help="only nodes with these labels (repeat, or join with commas)",
    )
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds for every pull (default 120)"
    )
    p.add_argument("--keep", action="store_true", help="leave failed probe pods for inspection")
    p.add_argument(
        "--tolerate-taints",
        action="store_true",
        help="also probe tainted and cordoned nodes (the control plane, say)",
    )
    p.add_argument("--json", action="store_true", help="as JSON (schema pull-lab-check/1)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("status", help="cluster, kubeconfig and registries of a lab that is up")
    p.add_argument("--name", help="cluster name (default pull-lab)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    terminate_like_interrupt()
    try:
        return int(args.func(args))
    except LabError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"pull-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pull-lab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pull-lab scenarios | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
