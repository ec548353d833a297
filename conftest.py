"""Project-wide test policy. The fixtures come from the `fixtures` plugin (a pytest11 entry
point installed with the package), so this file only holds what is specific to this repo:
the CI gate (in CI any skip fails the run), which must not travel with the installed plugin,
and where a scenario that needs workers runs when the suite's own lab has none."""

from __future__ import annotations

import pytest

pytest_plugins = ["fixtures.ci_gate"]

# Replays the scenarios that need workers on a lab of its own with workers (`make test`).
MULTI_NODE_TEST = "tests/e2e/test_multi_node.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A scenario needing more workers than this run's lab has would only skip (a failure in
    CI); when the multi-node e2e test runs in the same session and replays it on a lab that
    has them, it is deselected here instead. Run alone, it still skips and says why."""
    if not any(item.nodeid.startswith(MULTI_NODE_TEST) for item in items):
        return
    from lab.catalog import entry
    from lab.settings import settings_from_env

    workers = config.getoption("lab_workers", None)
    if workers is None:
        workers = settings_from_env().workers
    kept, moved = [], []
    for item in items:
        marker = item.get_closest_marker("scenario")
        needs = entry(marker.args[0]).workers if marker else 0
        (moved if needs > workers else kept).append(item)
    if moved:
        config.hook.pytest_deselected(items=moved)
        items[:] = kept
