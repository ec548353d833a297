"""Project-wide test policy. The fixtures come from the `fixtures` plugin (a pytest11 entry
point installed with the package), so this file only holds what is specific to this repo."""

from __future__ import annotations

import pytest

from fixtures.plugin import in_ci


def _skipped_e2e(config: pytest.Config) -> list:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return []
    return [r for r in reporter.stats.get("skipped", []) if "e2e" in r.keywords]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if in_ci() and _skipped_e2e(config):
        terminalreporter.write_line(
            f"CI: {len(_skipped_e2e(config))} e2e tests were skipped; in CI that is a failure",
            red=True,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped e2e test hides missing infrastructure: fail the run instead."""
    if in_ci() and exitstatus == 0 and _skipped_e2e(session.config):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
