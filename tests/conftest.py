"""Order of the whole suite, and the one switch for tests that may harm the host.

`make test` runs on users' machines: the bystander test checks that a container and a network
of the user's survive every lab test, so its start goes first and its check after everything
else, except the Docker restart, which is destructive by design and outside that promise.
"""

from __future__ import annotations

import os

import pytest

# Tests that stop a Docker daemon or change host sysctls run only with this set to 1
# (`.ci/run` sets it: CI machines are throwaway), or against what the lab itself started.
DESTRUCTIVE_OPT_IN = "PULL_LAB_DESTRUCTIVE_TESTS"

BYSTANDER_START = "test_bystander_runs_before_the_lab_tests"
BYSTANDER_CHECK = "test_bystander_is_unchanged_after_the_lab_tests"


def destructive_tests_allowed() -> bool:
    return os.environ.get(DESTRUCTIVE_OPT_IN) == "1"


def suite_rank(item: pytest.Item) -> int:
    """0 the bystander's start, 1 every other test, 2 its check, 3 the Docker restart."""
    name = getattr(item, "originalname", item.name)
    if item.get_closest_marker("restarts_docker") is not None:
        return 3
    return {BYSTANDER_START: 0, BYSTANDER_CHECK: 2}.get(name, 1)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=suite_rank)  # stable: the order within each rank is kept
