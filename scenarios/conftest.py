"""Helpers the scenarios share: a registry of the scenario's own, seeded like the tutorial's."""

from __future__ import annotations

import pytest

# The tutorial pulls zhangjun3/nginx:1.7.9; the lab pushes its small workload image (busybox
# tools, pause as the command) under this stand-in name.
TUTORIAL_REPO = "lab/nginx"
TUTORIAL_TAG = "1.7.9"


@pytest.fixture
def own_registry(registries, request):
    """A fresh registry for one node-level scenario: no other test touches its host's files."""

    def start(**spec):
        registry = registries.start("node", **spec)
        registries.seed(registry, TUTORIAL_REPO, TUTORIAL_TAG)
        from fixtures.plugin import diagnostics

        diagnostics(request).registries.append(registry)
        return registry

    return start


def tutorial_image(registry) -> str:
    return f"{registry.spec.host}/{TUTORIAL_REPO}:{TUTORIAL_TAG}"


def bad_password(user: str = "foo") -> str:
    """A wrong password, made and registered with the masker like any other: it must not leak
    either."""
    from lab.credentials import new_password

    return new_password(user)
