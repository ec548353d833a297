"""The catalogue and the scenario modules agree: every ID has exactly one scenario."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lab.catalog import BY_ID, CATALOG, entry
from lab.errors import LabError

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def scenario_markers() -> dict[str, list[tuple[str, str]]]:
    """{scenario id: [(module, test function)]} read from the @pytest.mark.scenario decorators."""
    found: dict[str, list[tuple[str, str]]] = {}
    for module in sorted(SCENARIOS.glob("test_*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr == "scenario"
                ):
                    arg = deco.args[0]
                    assert isinstance(arg, ast.Constant)
                    found.setdefault(arg.value, []).append((module.stem, node.name))
    return found


def test_every_catalogue_id_has_exactly_one_scenario_in_its_module():
    markers = scenario_markers()
    assert sorted(markers) == sorted(BY_ID)
    for scenario_id, places in markers.items():
        assert len(places) == 1, f"{scenario_id} is implemented {len(places)} times"
        module, function = places[0]
        assert module == BY_ID[scenario_id].module
        assert function == "test_" + scenario_id.replace("-", "_")


def test_scenario_docstrings_exist():
    for module in SCENARIOS.glob("test_*.py"):
        tree = ast.parse(module.read_text())
        assert ast.get_docstring(tree), f"{module.name} says which tutorial step it replays"


def test_catalogue_ids_are_unique_and_lookup_fails_clearly():
    assert len({e.id for e in CATALOG}) == len(CATALOG)
    with pytest.raises(LabError, match="unknown scenario 'nope'"):
        entry("nope")
