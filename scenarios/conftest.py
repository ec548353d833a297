"""Fixtures the scenarios share: a registry of the scenario's own, seeded like the tutorial's.

Helpers the scenarios share live in ``lab`` (``lab.tutorial``, ``ScenarioRun``), never here:
a scenario module imports no other scenario module.
"""

from __future__ import annotations

import pytest

from lab.tutorial import TUTORIAL_REPO, TUTORIAL_TAG


@pytest.fixture
def lab_own_registry(lab_registries, request):
    """A fresh registry for one node-level scenario: no other test touches its host's files."""

    def start(**spec):
        from lab.session import NeedsLabNetwork

        try:
            registry = lab_registries.start("node", **spec)
        except NeedsLabNetwork as exc:
            pytest.skip(f"needs the lab's own cluster: {exc}")
        lab_registries.seed(registry, TUTORIAL_REPO, TUTORIAL_TAG)
        from fixtures.plugin import diagnostics

        diagnostics(request).registries.append(registry)
        return registry

    return start
