"""`bench suite`'s arithmetic: per-file seconds from pytest's JUnit file, and busy CPU from
/proc/stat."""

from __future__ import annotations

from bench.suite import CpuTicks, cpu_ticks, module_of, read_junit

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.e2e.test_a" name="test_one" time="10.5"/>
<testcase classname="tests.e2e.test_a" name="test_two" time="2.0"><skipped message="x"/></testcase>
<testcase classname="scenarios.test_b" name="test_3" time="3.25"><failure message="y"/></testcase>
<testcase classname="tests.unit.test_c.TestGroup" name="test_four" time="0.5"/>
<testcase classname="tests.unit.test_c" name="test_five" time="0.25"><error message="z"/></testcase>
</testsuite></testsuites>
"""


def test_seconds_add_up_per_file_and_outcomes_are_counted():
    result = read_junit(JUNIT)
    assert result.seconds_per_file == {
        "tests/e2e/test_a.py": 12.5,
        "scenarios/test_b.py": 3.25,
        "tests/unit/test_c.py": 0.75,
    }
    assert (result.tests, result.failed, result.skipped) == (5, 2, 1)


def test_a_test_class_is_not_taken_for_a_module():
    assert module_of("tests.unit.test_c.TestGroup") == "tests/unit/test_c.py"
    assert module_of("tests.unit.test_c") == "tests/unit/test_c.py"


def test_idle_and_iowait_are_the_only_ticks_not_busy():
    stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n"
    assert cpu_ticks(stat) == CpuTicks(busy=160, total=1000)
