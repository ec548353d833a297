"""`pull-lab`: the lab's front door.

Exit codes: 0 ok, 1 a scenario failed, 2 bad usage or environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence

from lab.errors import LabError
from lab.settings import IMAGE_SOURCES, Settings, settings_from_env


def _settings(args: argparse.Namespace) -> Settings:
    base = settings_from_env()
    return base.with_overrides(
        images=getattr(args, "images", None),
        cluster_name=getattr(args, "name", None),
    )


def cmd_host_prep(args: argparse.Namespace) -> int:
    from lab.offline.hostprep import prepare_host

    report = prepare_host(sys.stderr)
    print("host ready" + ("" if report.changes else " (nothing changed)"))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from lab.offline.build import build_all
    from lab.offline.cache import BuildCache

    settings = _settings(args)
    images, _ = build_all(settings.images, BuildCache(settings.cache_dir), out=sys.stderr)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pull-lab",
        description="Replay how a kubelet pulls from a private TLS + basic-auth registry on kind.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("host-prep", help="install/start Docker and make privileged containers work")
    p.set_defaults(func=cmd_host_prep)

    p = sub.add_parser("build", help="build (or find cached) kind, Kubernetes and every image")
    p.add_argument("--images", choices=IMAGE_SOURCES, help="offline (build all) or upstream (pull)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("up", help="cluster and seeded lab registries ready; prints how to use them")
    p.add_argument("--images", choices=IMAGE_SOURCES)
    p.add_argument("--name", help="cluster name (default pull-lab)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("down", help="remove what the lab made (by label)")
    p.add_argument("--name", help="cluster name (default pull-lab)")
    p.add_argument(
        "--all", action="store_true", help="every lab cluster and resource on this machine"
    )
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="cluster, kubeconfig and registries of a lab that is up")
    p.add_argument("--name", help="cluster name (default pull-lab)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
