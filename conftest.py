"""Project-wide test policy. The fixtures come from the `fixtures` plugin (a pytest11 entry
point installed with the package), so this file only holds what is specific to this repo:
the CI gate (in CI any skip fails the run), which must not travel with the installed plugin."""

from __future__ import annotations

pytest_plugins = ["fixtures.ci_gate"]
