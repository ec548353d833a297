"""Record what `pull-lab doctor` reads about one pod, as masked JSON, for its unit tests.

    .venv/bin/python tools/capture_doctor_evidence.py [--kubeconfig K] [--context C] -n NS POD \\
        -o tests/unit/data/doctor/<cause>.json [--cause NAME] [--note TEXT]

It writes the pod, its events, its pull secrets as read (found / missing / forbidden), its
ServiceAccount (and the pull secrets only it lists), and its node's nodeInfo and copies of the
pod's images, in the API's own field names (``lab.doctor.capture``); kubeconfig and context
are chosen as `pull-lab doctor` chooses them (``lab.doctor.connect``). Every credential in a
pull secret is replaced by a marker that keeps only its presence, env values and last-applied
annotations are dropped, and the lab's masker runs over the rest; the script then refuses to
write a file in which a registered password or a credential field still shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kubernetes import client

from lab.doctor.capture import capture, masked
from lab.doctor.connect import connect
from lab.errors import LabError
from lab.masking import mask


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pod")
    parser.add_argument("-n", "--namespace", default="default")
    parser.add_argument("--kubeconfig", help="one file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", help="the kubeconfig context (default: the current one)")
    parser.add_argument("-o", "--output", type=Path, help="default: stdout")
    parser.add_argument("--cause", help="the finding this capture must produce (for the tests)")
    parser.add_argument("--note", default="", help="how the failure was provoked")
    args = parser.parse_args(argv)
    try:
        core = client.CoreV1Api(connect(args.kubeconfig, args.context)[0])
        record = masked(capture(core, args.namespace, args.pod))
    except LabError as exc:
        print(f"capture: error: {exc}", file=sys.stderr)
        return 2
    record["provenance"] = {"kind": "capture", "note": args.note}
    if args.cause:
        record["expect"] = {"first": args.cause}
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    if mask(text) != text:  # the masker would still change something: do not write it
        print("capture: error: the capture still holds a credential; not written", file=sys.stderr)
        return 2
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
