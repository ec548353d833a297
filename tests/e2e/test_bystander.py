"""`make test` harms nothing it did not make: a container and a network of "the user's", made
before the lab tests, are still there and unchanged after them (same container, never
restarted, still running, still on its network; same dockerd process).

tests/conftest.py runs the start first and the check after every other test, but before the
Docker restart test, which is destructive by design (opt-in) and outside this promise. The
two tests share state in this process: the check fails, rather than passing vacuously, when
the start did not run in this session (a `-k` that selects only the check, or xdist placing
them on different workers) or when no other e2e test ran between them.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lab.offline.hostprep import ProcessIdentity, running_dockerd
from lab.settings import CLUSTER_PREFIX, LABEL
from tests.conftest import BYSTANDER_CHECK, BYSTANDER_START

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Bystander:
    container: str
    network: str


@dataclass(frozen=True)
class Snapshot:
    """What must not change: the container, its start, its network, the daemon under it."""

    container_id: str
    started_at: str
    restart_count: int
    running: bool
    network_id: str
    on_network: bool
    dockerd: ProcessIdentity | None


# Filled by the start test, read by the check (same process; see the module docstring).
STARTED: dict[str, Snapshot] = {}


def _docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def snapshot(b: Bystander) -> Snapshot:
    container = json.loads(_docker("container", "inspect", b.container))[0]
    network = json.loads(_docker("network", "inspect", b.network))[0]
    return Snapshot(
        container_id=container["Id"],
        started_at=container["State"]["StartedAt"],
        restart_count=container["RestartCount"],
        running=container["State"]["Running"],
        network_id=network["Id"],
        on_network=container["Id"] in (network.get("Containers") or {}),
        dockerd=running_dockerd(),
    )


@pytest.fixture(scope="session")
def bystander(lab_images) -> Iterator[Bystander]:
    """A container and a network the lab did not make: no lab label, no `pull-lab` name."""
    suffix = uuid.uuid4().hex[:6]
    b = Bystander(container=f"bystander-{suffix}", network=f"bystander-net-{suffix}")
    _docker("network", "create", b.network)
    try:
        _docker(
            "run", "-d", "--name", b.container, "--network", b.network, lab_images.workload_image
        )
        yield b
    finally:
        subprocess.run(["docker", "rm", "-f", b.container], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", b.network], capture_output=True, check=False)


def test_bystander_runs_before_the_lab_tests(bystander, request):
    assert request.session.items[0].name == BYSTANDER_START, "tests/conftest.py runs this first"
    labels = json.loads(_docker("container", "inspect", bystander.container))[0]["Config"]["Labels"]
    # The image's build-key label is inherited; the run label `pull-lab down` looks for is not.
    assert LABEL not in (labels or {}) and not bystander.container.startswith(CLUSTER_PREFIX)
    before = snapshot(bystander)
    assert before.running and before.restart_count == 0 and before.on_network, before
    assert before.dockerd is not None, "no dockerd found through /var/run/docker.pid"
    STARTED["before"] = before


def test_bystander_is_unchanged_after_the_lab_tests(request, record_property):
    before = STARTED.get("before")
    assert before is not None, (
        f"the bystander was never started in this session: select {BYSTANDER_START} too "
        "(run this whole file with the tests it should survive)"
    )
    names = [item.name for item in request.session.items]
    between = request.session.items[names.index(BYSTANDER_START) + 1 : names.index(BYSTANDER_CHECK)]
    lab_tests = [i for i in between if i.get_closest_marker("e2e") is not None]
    record_property("lab_tests_in_between", len(lab_tests))
    assert lab_tests, "no e2e test ran between start and check: this would show nothing"

    bystander = request.getfixturevalue("bystander")
    after = snapshot(bystander)
    assert after == before
    assert after.running and after.restart_count == 0 and after.on_network
