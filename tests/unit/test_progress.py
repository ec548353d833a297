"""Long build steps show life: a heartbeat line says what the step does and for how long, and
it stops with the step, however the step ends."""

from __future__ import annotations

import io
import shutil
import threading
import time
from pathlib import Path

import pytest

from lab.errors import StepFailed
from lab.offline import commands, gobuild
from lab.offline.heartbeat import Heartbeat, doing, format_elapsed
from lab.offline.pipeline import Pipeline, Step


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("heartbeat ")]


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0s"), (45.9, "45s"), (60, "1m00s"), (372.5, "6m12s")]
)
def test_elapsed_reads_like_a_stopwatch(seconds, text):
    assert format_elapsed(seconds) == text


def test_a_beat_names_the_step_its_activity_and_the_time_since_the_step_began():
    clock = FakeClock()
    beat = Heartbeat("[build:offline 2/12] go-kubernetes", io.StringIO(), clock=clock)
    with beat:
        clock.now += 45
        beat.doing("building kube-apiserver (2/7)")
        line = beat.line()
    assert line == "[build:offline 2/12] go-kubernetes: building kube-apiserver (2/7) ... 45s"


def test_a_beat_before_any_activity_still_shows_the_time():
    clock = FakeClock()
    beat = Heartbeat("[build 1/1] rootfs", io.StringIO(), clock=clock)
    with beat:
        clock.now += 75
        assert beat.line() == "[build 1/1] rootfs: ... 1m15s"


def test_plain_output_is_one_line_per_interval_and_nothing_after_the_block():
    out = io.StringIO()
    with Heartbeat("[build 1/1] slow", out, interval=0.02, live=False):
        doing("compiling")
        wait_for(lambda: out.getvalue().count("\n") >= 3)
    written = out.getvalue()
    time.sleep(0.1)
    assert out.getvalue() == written, "no beat after the block ended"
    lines = written.splitlines()
    assert all(line.startswith("[build 1/1] slow: ") for line in lines)
    assert "compiling ... 0s" in lines[-1]
    assert "\r" not in written and "\x1b" not in written, "CI logs get plain lines"


def test_a_terminal_gets_one_live_line_that_is_cleared_at_the_end():
    out = io.StringIO()
    with Heartbeat("[build 1/1] slow", out, interval=0.02, live=True):
        wait_for(lambda: out.getvalue().count("\r") >= 2)
    written = out.getvalue()
    assert "\n" not in written
    assert written.endswith("\r\x1b[2K"), "the line after the step starts on a clean line"


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_the_heartbeat_stops_when_the_step_raises(error):
    out = io.StringIO()
    with pytest.raises(type(error)), Heartbeat("[build 1/1] x", out, interval=0.01):
        wait_for(lambda: bool(out.getvalue()))
        raise error
    assert heartbeat_threads() == []
    written = out.getvalue()
    time.sleep(0.05)
    assert out.getvalue() == written


def test_activity_outside_a_heartbeat_is_ignored_and_does_not_leak_into_the_next_one():
    doing("nobody listens")  # no error
    out = io.StringIO()
    with Heartbeat("[a]", out, interval=60) as first:
        doing("inside")
    assert first.line().startswith("[a]: inside ... ")
    doing("after the block")
    assert first.line().startswith("[a]: inside ... ")


def test_a_closed_stream_ends_the_heartbeat_not_the_build():
    out = io.StringIO()
    out.close()
    with Heartbeat("[build 1/1] x", out, interval=0.01, live=False):
        wait_for(lambda: heartbeat_threads() == [])
    assert heartbeat_threads() == []


def test_every_command_names_itself_to_the_heartbeat():
    assert commands.describe(["go", "mod", "download", "-json", "k8s.io/x@v1"]) == (
        "go mod download"
    )
    assert commands.describe(["/usr/bin/docker", "load", "-i", Path("/tmp/a.tar")]) == (
        "docker load"
    )
    assert commands.describe(["chroot", Path("/tmp/root"), "apt-get", "update"]) == "chroot"
    assert commands.describe(["apt-get", "download", "busybox-static"]) == (
        "apt-get download busybox-static"
    )


def test_a_pipeline_step_slower_than_the_interval_shows_life_between_its_lines(tmp_path):
    out = io.StringIO()

    def slow() -> None:
        commands.run("slow", ["sleep", "0.3"], doing="waiting for sleep")

    Pipeline("build", [Step("slow", lambda: False, slow)], out, heartbeat_seconds=0.05).run()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[build 1/1] slow: building ..."
    beats = lines[1:-2]
    assert len(beats) >= 2
    assert all(line.startswith("[build 1/1] slow: waiting for sleep ... ") for line in beats)
    assert lines[-2].startswith("[build 1/1] slow: done in ")
    assert heartbeat_threads() == []


def test_a_failing_pipeline_step_stops_its_heartbeat_before_the_failure_line():
    out = io.StringIO()

    def fails() -> None:
        time.sleep(0.1)
        raise StepFailed("bad", "it broke")

    with pytest.raises(StepFailed):
        Pipeline("build", [Step("bad", lambda: False, fails)], out, heartbeat_seconds=0.02).run()
    assert out.getvalue().splitlines()[-1].startswith("[build 1/1] bad: FAILED after ")
    assert heartbeat_threads() == []


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain")
def test_a_real_go_build_names_the_binary_in_its_heartbeat(tmp_path):
    """The pause binary: the smallest Go step, milliseconds long with a warm Go cache."""
    out = io.StringIO()
    step = Step(
        "go-pause",
        lambda: False,
        lambda: gobuild.build_pause(tmp_path / "out", tmp_path / "go-pause.log"),
    )
    Pipeline("build:offline", [step], out, heartbeat_seconds=0.01).run()
    lines = out.getvalue().splitlines()
    assert (tmp_path / "out" / "bin" / "pause").is_file()
    assert any(ln.startswith("[build:offline 1/1] go-pause: building pause ... ") for ln in lines)
