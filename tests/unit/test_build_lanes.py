"""The build's side lane: Debian's steps run beside the Go builds, a step that needs one waits
for it, and a failure or Ctrl-C on either lane stops the other with nothing left running."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from lab.errors import StepFailed
from lab.offline import commands
from lab.offline.build import Builder
from lab.offline.cache import BuildCache
from lab.offline.pipeline import Pipeline, Step
from lab.versions import load_versions

WAIT = 10.0  # seconds a test waits for the other lane before it fails


def never_done() -> bool:
    return False


def lane_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "build side lane"]


def test_a_side_step_runs_while_the_main_lane_builds():
    side_started, main_finished = threading.Event(), threading.Event()
    order: list[str] = []

    def side() -> None:
        side_started.set()
        assert main_finished.wait(WAIT), "the main lane never ran beside this step"
        order.append("side")

    def main() -> None:
        assert side_started.wait(WAIT), "the side step did not start before the main one ended"
        order.append("main")
        main_finished.set()

    steps = [Step("rootfs", never_done, side, beside=True), Step("go", never_done, main)]
    results = Pipeline("build", steps, io.StringIO()).run()

    assert order == ["main", "side"]
    assert [(r.name, r.status) for r in results] == [("rootfs", "built"), ("go", "built")]
    assert lane_threads() == []


def test_without_lanes_a_side_step_runs_in_its_turn_on_the_main_thread():
    """The benchmark's baseline (`python -m bench build-lanes`): the same steps, in turn."""
    threads: list[str] = []

    def record() -> None:
        threads.append(threading.current_thread().name)

    steps = [Step("rootfs", never_done, record, beside=True), Step("go", never_done, record)]
    Pipeline("build", steps, io.StringIO(), lanes=False).run()

    assert threads == [threading.main_thread().name] * 2


def test_a_step_that_needs_a_side_step_waits_for_it():
    made: list[str] = []

    def slow_side() -> None:
        time.sleep(0.3)
        made.append("rootfs")

    def needs_it() -> None:
        assert made == ["rootfs"], "ran before the side step it needs had finished"

    steps = [
        Step("rootfs", never_done, slow_side, beside=True),
        Step("go", never_done, lambda: None),
        Step("node-image", never_done, needs_it, needs=("rootfs",)),
    ]
    out = io.StringIO()
    Pipeline("build", steps, out).run()

    text = out.getvalue()
    assert text.index("rootfs: done in") < text.index("node-image: building")


def test_a_cached_side_step_is_not_waited_for_nor_run():
    steps = [
        Step("rootfs", lambda: True, lambda: pytest.fail("a cached step ran"), beside=True),
        Step("node-image", never_done, lambda: None, needs=("rootfs",)),
    ]
    out = io.StringIO()
    results = Pipeline("build", steps, out).run()

    assert [(r.name, r.status) for r in results] == [("rootfs", "cached"), ("node-image", "built")]
    assert "[build 1/2] rootfs: cached" in out.getvalue()


def test_a_failed_side_step_fails_the_build_before_a_later_step_starts():
    ran: list[str] = []

    def fails() -> None:
        raise StepFailed("rootfs", "debootstrap: no route to the mirror")

    steps = [
        Step("rootfs", never_done, fails, beside=True),
        Step("node-image", never_done, lambda: ran.append("node-image"), needs=("rootfs",)),
    ]
    out = io.StringIO()
    with pytest.raises(StepFailed, match="step 'rootfs' failed: debootstrap: no route"):
        Pipeline("build", steps, out).run()

    assert ran == []
    assert "[build 1/2] rootfs: FAILED after " in out.getvalue()
    assert lane_threads() == []


def running_sleeps() -> list[int]:
    return [p.pid for p in commands._running if p.args[0] == "sleep"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt("Ctrl-C"), StepFailed("go", "link failed")])
def test_ctrl_c_or_a_failure_on_the_main_lane_stops_the_side_lanes_command(stop, tmp_path):
    """The side lane's command is a real process: it must not go on writing into the cache
    once the build has ended."""
    pids: list[int] = []

    def side() -> None:
        commands.run("rootfs", ["sleep", "60"], log=tmp_path / "rootfs.log")

    def main() -> None:
        deadline = time.monotonic() + WAIT
        while not running_sleeps():
            assert time.monotonic() < deadline, "the side step's command never started"
            time.sleep(0.02)
        pids.extend(running_sleeps())
        raise stop

    steps = [Step("rootfs", never_done, side, beside=True), Step("go", never_done, main)]
    started = time.monotonic()
    with pytest.raises(type(stop)):
        Pipeline("build", steps, io.StringIO()).run()

    assert time.monotonic() - started < WAIT
    assert running_sleeps() == []
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    assert lane_threads() == []


def test_a_side_step_between_two_commands_starts_no_more_once_stopped(tmp_path):
    """Ctrl-C lands while the side step is between its commands: its next one must not run."""
    between, ran = threading.Event(), []

    def side() -> None:
        commands.run("rootfs", ["true"])
        between.set()
        assert commands._stopped.wait(WAIT), "the main lane's Ctrl-C never stopped the build"
        commands.run("rootfs", ["touch", tmp_path / "second"])
        ran.append("second")

    def main() -> None:
        assert between.wait(WAIT)
        raise KeyboardInterrupt("Ctrl-C")

    steps = [Step("rootfs", never_done, side, beside=True), Step("go", never_done, main)]
    with pytest.raises(KeyboardInterrupt):
        Pipeline("build", steps, io.StringIO()).run()

    assert ran == [] and not (tmp_path / "second").exists()
    assert lane_threads() == []
    # The next build runs its commands again.
    Pipeline("build", [Step("go", never_done, lambda: commands.run("go", ["true"]))]).run()


def test_heartbeats_are_plain_lines_while_two_lanes_share_the_output():
    """A live line is one line redrawn in place: two lanes redrawing it would garble both."""
    live_seen: list[bool] = []
    pipeline = Pipeline("build", [], io.StringIO())

    def main() -> None:
        live_seen.append(bool(pipeline._live))

    pipeline.steps = [
        Step("rootfs", never_done, lambda: None, beside=True),
        Step("go", never_done, main),
    ]
    pipeline.run()

    assert live_seen == [False]


def test_the_offline_build_puts_debian_beside_go_and_waits_for_it_where_needed(tmp_path):
    builder = Builder(BuildCache(tmp_path), load_versions(), io.StringIO())
    steps = {s.name: s for s in builder.offline_steps()}

    beside = sorted(name for name, s in steps.items() if s.beside)
    assert beside == ["apt-busybox", "apt-registry", "debian-rootfs"]
    assert not any(s.beside for name, s in steps.items() if name.startswith("go-"))
    assert steps["node-image"].needs == ("debian-rootfs",)
    assert set(steps["component-images"].needs) == {"apt-busybox", "apt-registry"}
    assert steps["registry-image"].needs == ("apt-registry",)
    assert steps["workload-image"].needs == ("apt-busybox",)
    # Every side step is handed to its lane before the first Go build starts.
    names = list(steps)
    assert max(names.index(n) for n in beside) < names.index("go-kind")
