"""Make this machine able to run kind: Docker installed, dockerd answering, privileged OK.

On a machine whose Docker already works nothing is changed. On our Debian machines
(no engine running, a capability bounding set without CAP_SYS_RESOURCE) this installs
Debian's docker.io, registers a runc wrapper as dockerd's default runtime and starts dockerd.

A dockerd host-prep starts is recorded (pid, start time, boot), so tests can tell it from a
daemon the user runs: only the recorded one is ever reloaded or restarted without consent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from lab.errors import LabError
from lab.offline.gobuild import GO_ENV
from lab.offline.heartbeat import Heartbeat

# What the offline build runs on the host, by the Debian package that brings it: a command on
# PATH, or an absolute path for a file that is not a command.
HOST_PACKAGES = {
    "dockerd": "docker.io",
    "debootstrap": "debootstrap",
    "dpkg-deb": "dpkg",
    "tar": "tar",
    # runc is built with cgo for seccomp, as kind's is.
    "gcc": "gcc",
    "pkg-config": "pkg-config",
    "/usr/include/seccomp.h": "libseccomp-dev",
}


def host_tool_present(tool: str) -> bool:
    return Path(tool).exists() if tool.startswith("/") else shutil.which(tool) is not None


RUNTIME_NAME = "pull-lab-runc"
WRAPPER_PATH = Path("/usr/local/sbin/pull-lab-runc")
WRAPPER_SOURCE = Path(__file__).with_name("runc_capfilter")
DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKERD_LOG = Path("/var/log/pull-lab-dockerd.log")
DOCKERD_READY_TIMEOUT = 60.0
DOCKER_PID_FILE = Path("/var/run/docker.pid")
# Under /run: the record is gone after a reboot, like the daemon it names.
DOCKERD_RECORD = Path("/run/pull-lab/dockerd.json")
# Consent to change (daemon.json, reload) a dockerd that host-prep did not start.
RECONFIGURE_OPT_IN = "PULL_LAB_RECONFIGURE_DOCKER"


@dataclass
class HostReport:
    changes: list[str] = field(default_factory=list)

    def add(self, what: str, out: TextIO) -> None:
        self.changes.append(what)
        print(f"[host-prep] {what}", file=out, flush=True)


@dataclass(frozen=True)
class ProcessIdentity:
    """One process, told apart from a later one that got the same pid."""

    pid: int
    start_ticks: int  # clock ticks after boot (field 22 of /proc/<pid>/stat)
    boot_id: str
    binary: str = ""

    def same_process(self, other: ProcessIdentity | None) -> bool:
        return other is not None and (self.pid, self.start_ticks, self.boot_id) == (
            other.pid,
            other.start_ticks,
            other.boot_id,
        )


def start_ticks(stat_text: str) -> int:
    """Field 22 (starttime) of /proc/<pid>/stat; the name in field 2 may hold spaces and ')'."""
    after_name = stat_text[stat_text.rindex(")") + 2 :].split()
    return int(after_name[19])  # after_name[0] is field 3 (state)


def process_identity(pid: int, proc: Path = Path("/proc")) -> ProcessIdentity | None:
    """The identity of a running process, or None when no such process exists."""
    try:
        ticks = start_ticks((proc / str(pid) / "stat").read_text())
        boot_id = (proc / "sys/kernel/random/boot_id").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    try:
        binary = os.readlink(proc / str(pid) / "exe")
    except OSError:
        binary = ""  # another user's process: its pid and start time still identify it
    return ProcessIdentity(pid, ticks, boot_id, binary)


def running_dockerd(pid_file: Path = DOCKER_PID_FILE) -> ProcessIdentity | None:
    """The dockerd named by the daemon's pid file, if that process runs."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return process_identity(pid)


def record_dockerd(identity: ProcessIdentity, path: Path = DOCKERD_RECORD) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(identity), indent=2) + "\n")
    os.replace(tmp, path)


def recorded_dockerd(path: Path = DOCKERD_RECORD) -> ProcessIdentity | None:
    try:
        return ProcessIdentity(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def dockerd_started_by_host_prep(
    record: Path = DOCKERD_RECORD, pid_file: Path = DOCKER_PID_FILE
) -> ProcessIdentity | None:
    """The running dockerd if host-prep started it: same pid, start time and boot as recorded."""
    recorded = recorded_dockerd(record)
    running = running_dockerd(pid_file)
    return running if recorded is not None and recorded.same_process(running) else None


def may_reconfigure_dockerd(env: dict[str, str] | None = None) -> bool:
    """Whether host-prep may change the running dockerd: it started it, or the user said so."""
    env = dict(os.environ) if env is None else env
    return env.get(RECONFIGURE_OPT_IN) == "1" or dockerd_started_by_host_prep() is not None


def missing_capabilities(status_text: str, cap_last_cap: int) -> list[int]:
    """Capability numbers the kernel knows but this process may never hold."""
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            bnd = int(line.split()[1], 16)
            return [i for i in range(cap_last_cap + 1) if not (bnd >> i) & 1]
    return []


def needs_cap_wrapper() -> bool:
    status = Path("/proc/self/status").read_text()
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    return bool(missing_capabilities(status, last))


def merged_daemon_config(current: dict) -> dict:
    """daemon.json with our runtime as the default; other settings are kept as they are."""
    merged = dict(current)
    runtimes = dict(merged.get("runtimes") or {})
    runtimes[RUNTIME_NAME] = {"path": str(WRAPPER_PATH)}
    merged["runtimes"] = runtimes
    merged["default-runtime"] = RUNTIME_NAME
    return merged


def docker_info() -> dict | None:
    """The daemon's info, or None when no daemon answers."""
    try:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        info = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return None
    return info if info.get("ServerVersion") else None


def _is_debian() -> bool:
    return Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def _apt_install(packages: list[str], report: HostReport, out: TextIO) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def install() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    # docker.io and chromium take a minute or more to fetch and unpack: show life meanwhile.
    with Heartbeat(f"[host-prep] apt-get install {' '.join(packages)}", out) as beat:
        if not any(Path("/var/lib/apt/lists").glob("*Packages*")):
            beat.doing("apt-get update")
            subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        beat.doing("installing")
        proc = install()
        if proc.returncode != 0:
            # A stale package list is the usual cause; refresh once and retry.
            beat.doing("apt-get update, then installing again")
            subprocess.run(["apt-get", "update", "-q"], env=env, check=False, capture_output=True)
            proc = install()
    if proc.returncode != 0:
        last = [ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if ln.strip()]
        raise LabError(
            f"apt-get install {' '.join(packages)} failed: {last[-1] if last else 'no output'}",
            "check that Debian's package mirror is reachable",
        )
    report.add(f"installed Debian packages: {' '.join(packages)}", out)


def wrapper_digest(source: Path = WRAPPER_SOURCE) -> str:
    """Names one build of the wrapper: a digest of its Go source, stamped into the binary."""
    digest = hashlib.sha256()
    for path in sorted(source.iterdir()):
        if path.suffix in (".go", ".mod"):
            data = path.read_bytes()
            digest.update(f"{path.name}\0{len(data)}\0".encode() + data)
    return f"pull-lab-runc-{digest.hexdigest()[:32]}"


def wrapper_current(digest: str, path: Path = WRAPPER_PATH) -> bool:
    """The installed wrapper was built from this source (an older one is replaced)."""
    return path.is_file() and digest.encode() in path.read_bytes()


def build_wrapper(out: Path, digest: str) -> None:
    """`go build` the wrapper: stdlib only, static, seconds even from an empty Go build cache."""
    go = shutil.which("go")
    if go is None:
        raise LabError(
            "this host needs the lab's runc wrapper, which is built with Go, and go is not on PATH",
            "install Go 1.22 or newer and rerun",
        )
    proc = subprocess.run(
        [go, "build", "-ldflags", f"-s -w -X main.source={digest}", "-o", str(out), "."],
        cwd=WRAPPER_SOURCE,
        env={**os.environ, **GO_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        last = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        raise LabError(
            f"building the runc wrapper failed: {last[-1] if last else 'no output'}",
            f"run `go build .` in {WRAPPER_SOURCE} to see why",
        )


def _install_wrapper(report: HostReport, out: TextIO) -> None:
    digest = wrapper_digest()
    if wrapper_current(digest):
        return
    WRAPPER_PATH.parent.mkdir(parents=True, exist_ok=True)
    tmp = WRAPPER_PATH.with_suffix(".tmp")
    try:
        build_wrapper(tmp, digest)
        tmp.chmod(0o755)
        os.replace(tmp, WRAPPER_PATH)  # a shim running the old one keeps its own copy
    finally:
        tmp.unlink(missing_ok=True)
    report.add(f"installed runc wrapper {WRAPPER_PATH} ({digest})", out)


def _write_daemon_json(report: HostReport, out: TextIO) -> bool:
    current = json.loads(DAEMON_JSON.read_text()) if DAEMON_JSON.exists() else {}
    merged = merged_daemon_config(current)
    if merged == current:
        return False
    DAEMON_JSON.parent.mkdir(parents=True, exist_ok=True)
    tmp = DAEMON_JSON.with_suffix(".tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, DAEMON_JSON)
    report.add(f"set {RUNTIME_NAME} as dockerd's default runtime in {DAEMON_JSON}", out)
    return True


def _wait_for_daemon(predicate, what: str) -> dict:
    deadline = time.monotonic() + DOCKERD_READY_TIMEOUT
    delay = 0.1
    while time.monotonic() < deadline:
        info = docker_info()
        if info is not None and predicate(info):
            return info
        time.sleep(delay)  # polling the daemon's socket for readiness, with a deadline
        delay = min(delay * 2, 1.0)
    raise LabError(
        f"dockerd did not {what} within {DOCKERD_READY_TIMEOUT:.0f}s",
        f"see {DOCKERD_LOG}",
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_old_daemon() -> None:
    """A dockerd that is shutting down still holds its pid file: wait for it to exit."""
    pid_file = DOCKER_PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + DOCKERD_READY_TIMEOUT
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            raise LabError(
                f"dockerd (pid {pid}) runs but does not answer",
                f"stop it or look at {DOCKERD_LOG}",
            )
        time.sleep(0.2)  # polling a process we cannot wait() on (not our child)


def _start_dockerd(report: HostReport, out: TextIO) -> None:
    _wait_for_old_daemon()
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with DOCKERD_LOG.open("ab") as log:
        proc = subprocess.Popen(
            ["dockerd"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this process, like a service would
        )

    deadline = time.monotonic() + DOCKERD_READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lines = [
                ln for ln in DOCKERD_LOG.read_text(errors="replace").splitlines() if ln.strip()
            ]
            raise LabError(
                f"dockerd exited at start: {lines[-1][:300] if lines else 'no output'}",
                f"see {DOCKERD_LOG}",
            )
        if docker_info() is not None:
            _record_started(proc.pid)
            report.add(f"started dockerd (log: {DOCKERD_LOG})", out)
            return
        time.sleep(0.2)  # polling the new daemon's socket, with a deadline
    raise LabError(
        f"dockerd did not answer within {DOCKERD_READY_TIMEOUT:.0f}s", f"see {DOCKERD_LOG}"
    )


def _record_started(pid: int) -> None:
    identity = process_identity(pid)
    if identity is None:
        raise LabError(f"dockerd (pid {pid}) answered but is gone", f"see {DOCKERD_LOG}")
    record_dockerd(identity)


def _reload_dockerd() -> None:
    pid_file = DOCKER_PID_FILE
    if not pid_file.exists():
        raise LabError(
            "dockerd runs but its pid file /var/run/docker.pid is missing",
            f"restart dockerd so it reads {DAEMON_JSON}",
        )
    os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)


def ensure_browser(out: TextIO = sys.stderr) -> HostReport:
    """Debian's chromium, for the test that renders the HTML report in a real browser."""
    report = HostReport()
    if shutil.which("chromium"):
        return report
    if os.geteuid() != 0 or not _is_debian():
        raise LabError(
            "chromium is not installed",
            "install Debian's chromium package (apt-get install chromium)",
        )
    _apt_install(["chromium"], report, out)
    return report


def prepare_host(out: TextIO = sys.stderr) -> HostReport:
    """Idempotent: the second call on a prepared machine changes nothing."""
    report = HostReport()
    info = docker_info()
    wrapper_needed = needs_cap_wrapper()
    wrapper_active = bool(info and info.get("DefaultRuntime") == RUNTIME_NAME)
    # An older wrapper still works: only root replaces it, nobody else is stopped by it.
    wrapper_ready = not wrapper_needed or (
        wrapper_active and (os.geteuid() != 0 or wrapper_current(wrapper_digest()))
    )
    missing_tools = [tool for tool in HOST_PACKAGES if not host_tool_present(tool)]
    if info is not None and not missing_tools and wrapper_ready:
        return report

    docker_host = os.environ.get("DOCKER_HOST", "")
    if info is None and docker_host and docker_host != "unix:///var/run/docker.sock":
        # Someone else's daemon: starting ours would not make that one answer.
        raise LabError(
            f"Docker at DOCKER_HOST={docker_host} does not answer",
            "start that daemon or unset DOCKER_HOST to use the local one",
        )
    if os.geteuid() != 0:
        if info is None:
            raise LabError(
                "Docker is not running and host-prep needs root to install or start it",
                "install Docker (Debian: apt-get install docker.io), start dockerd, and rerun",
            )
        raise LabError(
            f"host tools missing ({', '.join(missing_tools)}) and host-prep is not root",
            "install the Debian packages "
            + " ".join(sorted({HOST_PACKAGES[t] for t in missing_tools})),
        )
    if missing_tools:
        if not _is_debian():
            raise LabError(
                f"missing host tools: {', '.join(missing_tools)}",
                "install Docker, debootstrap, gcc, pkg-config and the libseccomp headers "
                "with your distribution's packages",
            )
        _apt_install(sorted({HOST_PACKAGES[t] for t in missing_tools}), report, out)

    if wrapper_needed:
        if info is not None and not wrapper_active and not may_reconfigure_dockerd():
            # A daemon the user runs: changing its default runtime is the user's call.
            # (Replacing the wrapper host-prep installed earlier changes nothing of theirs.)
            raise LabError(
                f"dockerd lacks the {RUNTIME_NAME} runtime privileged kind nodes need here, "
                "and host-prep did not start that daemon",
                f"set {RECONFIGURE_OPT_IN}=1 to let host-prep add it to {DAEMON_JSON} "
                "and reload dockerd, or stop dockerd and rerun host-prep",
            )
        _install_wrapper(report, out)
        _write_daemon_json(report, out)
        info = docker_info()
        if info is not None and info.get("DefaultRuntime") != RUNTIME_NAME:
            # dockerd 20.10 live-reloads runtimes and default-runtime on SIGHUP.
            _reload_dockerd()
            _wait_for_daemon(lambda i: i.get("DefaultRuntime") == RUNTIME_NAME, "reload")
            report.add("reloaded dockerd", out)
    if docker_info() is None:
        _start_dockerd(report, out)
    return report
