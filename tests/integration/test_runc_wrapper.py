"""The runc wrapper host-prep installs, built for real with Go and run in front of a stand-in
runc that records what it was given: the same arguments reach runc, and only capabilities
outside this host's bounding set leave the spec files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lab.offline import hostprep

pytestmark = pytest.mark.integration

# Past float64's exact range: a decoder that turns numbers into floats would change it.
UNLIMITED = 18446744073709551615


@pytest.fixture(scope="module")
def wrapper(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wrapper") / "pull-lab-runc"
    hostprep.build_wrapper(out, hostprep.wrapper_digest())
    return out


@pytest.fixture
def runc(tmp_path) -> tuple[Path, Path]:
    """A stand-in runc writing its arguments, one per line, to a file."""
    record = tmp_path / "argv"
    fake = tmp_path / "runc"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\n")
    fake.chmod(0o755)
    return fake, record


def bounding_set() -> set[str]:
    status = Path("/proc/self/status").read_text()
    bits = int(next(ln for ln in status.splitlines() if ln.startswith("CapBnd:")).split()[1], 16)
    return {f"CAP_{name}" for i, name in enumerate(CAP_ORDER) if bits >> i & 1}


# linux/capability.h, by number: enough of it to name what this host lacks.
CAP_ORDER = (
    *("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID"),
    *("SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN"),
    *("NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE"),
    *("SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME"),
)


def run(wrapper: Path, runc: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PULL_LAB_REAL_RUNC": str(runc)}
    return subprocess.run(
        [str(wrapper), *argv], env=env, capture_output=True, text=True, check=False
    )


def test_create_drops_only_capabilities_outside_the_bounding_set(wrapper, runc, tmp_path):
    fake, record = runc
    held = bounding_set()
    lacking = sorted({f"CAP_{n}" for n in CAP_ORDER} - held)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = {
        "process": {
            "args": ["sh", "-c", "a<b && c"],
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN", *lacking],
                "effective": ["CAP_CHOWN", *lacking],
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": UNLIMITED, "soft": 1048576}],
        },
        "root": {"path": "rootfs"},
    }
    (bundle / "config.json").write_text(json.dumps(spec))
    argv = ("--root", "/run/r", "--log", "/l.json", "create", "--bundle", str(bundle), "c1")

    proc = run(wrapper, fake, *argv)

    assert proc.returncode == 0, proc.stderr
    assert record.read_text().splitlines() == list(argv)
    written = json.loads((bundle / "config.json").read_text())
    kept = [c for c in ("CAP_CHOWN", "CAP_SYS_ADMIN") if c in held]
    spec["process"]["capabilities"] = {"bounding": kept, "effective": kept[:1]}
    assert written == spec


def test_exec_filters_the_process_file_named_with_an_equals_sign(wrapper, runc, tmp_path):
    fake, record = runc
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["true"], "capabilities": {"bounding": ["CAP_KILL"]}}))
    if "CAP_SYS_RESOURCE" not in bounding_set():
        # This host's case: show the capability it lacks leaving the spec.
        doc = json.loads(process.read_text())
        doc["capabilities"]["bounding"].append("CAP_SYS_RESOURCE")
        process.write_text(json.dumps(doc))

    proc = run(wrapper, fake, "exec", f"--process={process}", "--detach", "c1")

    assert proc.returncode == 0, proc.stderr
    assert record.read_text().splitlines() == ["exec", f"--process={process}", "--detach", "c1"]
    assert json.loads(process.read_text())["capabilities"] == {"bounding": ["CAP_KILL"]}


def test_other_subcommands_pass_through_untouched(wrapper, runc, tmp_path):
    fake, record = runc
    proc = run(wrapper, fake, "--root", "/run/r", "state", "c1")
    assert proc.returncode == 0, proc.stderr
    assert record.read_text().splitlines() == ["--root", "/run/r", "state", "c1"]


def test_a_spec_that_is_not_json_stops_it_before_runc(wrapper, runc, tmp_path):
    fake, record = runc
    (tmp_path / "config.json").write_text("{not json")
    proc = run(wrapper, fake, "create", "--bundle", str(tmp_path), "c1")
    assert proc.returncode == 1
    assert proc.stderr.startswith("pull-lab-runc ")
    assert not record.exists()


def test_the_installed_binary_is_known_by_its_source_digest(wrapper):
    assert hostprep.wrapper_current(hostprep.wrapper_digest(), wrapper)
    assert not hostprep.wrapper_current("pull-lab-runc-" + "0" * 32, wrapper)
