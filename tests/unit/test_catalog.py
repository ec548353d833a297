"""The catalogue and the scenario modules agree: every ID has exactly one scenario."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lab.catalog import BY_ID, CATALOG, entry, long_waits_first
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


def test_scenarios_run_at_once_start_with_the_long_waits_and_keep_the_rest_in_order():
    ordered = long_waits_first(CATALOG)

    waits = [e.id for e in CATALOG if e.long_wait]
    assert waits == ["secret-update"]  # one kubelet sync period watched on purpose
    assert [e.id for e in ordered[: len(waits)]] == waits
    assert [e for e in ordered if not e.long_wait] == [e for e in CATALOG if not e.long_wait]


def test_run_with_jobs_hands_pytest_the_long_waits_first(monkeypatch, tmp_path):
    """`pull-lab run -j 2`: xdist deals the first test to the first worker, so the long wait
    starts at once; one at a time the catalogue order stays."""
    from lab import cli

    seen: dict[int, list[str]] = {}

    def fake_main(args: list[str]) -> int:
        seen[jobs] = [a.rsplit("::test_", 1)[1] for a in args if "::test_" in a]
        return 0

    monkeypatch.setattr("pytest.main", fake_main)
    monkeypatch.setattr(cli, "check_run_environment", lambda: None)
    monkeypatch.setattr(cli, "terminate_like_interrupt", lambda: None)
    monkeypatch.setattr(cli, "run_outcomes", lambda *_: [{"outcome": "passed"}])
    monkeypatch.setenv("PULL_LAB_CACHE_DIR", str(tmp_path / "cache"))
    for jobs in (1, 2):
        argv = ["run", "secret-kubectl", "secret-update", "--report-dir", str(tmp_path / "r")]
        cli.main([*argv, "--jobs", str(jobs)])

    assert seen == {1: ["secret_kubectl", "secret_update"], 2: ["secret_update", "secret_kubectl"]}


def test_scenario_docstrings_exist():
    for module in SCENARIOS.glob("test_*.py"):
        tree = ast.parse(module.read_text())
        assert ast.get_docstring(tree), f"{module.name} says which tutorial step it replays"


def test_catalogue_ids_are_unique_and_lookup_fails_clearly():
    assert len({e.id for e in CATALOG}) == len(CATALOG)
    with pytest.raises(LabError, match="unknown scenario 'nope'"):
        entry("nope")


# Fixtures that change node files: a scenario that reaches one of them is node-level.
NODE_FIXTURES = {"lab_node", "lab_own_registry", "lab_worker_pair"}


def _is_fixture(func: ast.FunctionDef) -> bool:
    for deco in func.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            return True
        if isinstance(target, ast.Name) and target.id == "fixture":
            return True
    return False


def _functions(path: Path) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)]


def _params(func: ast.FunctionDef) -> set[str]:
    return {a.arg for a in func.args.args + func.args.kwonlyargs}


def fixtures_reached(func: ast.FunctionDef, local: dict[str, ast.FunctionDef]) -> set[str]:
    """Every fixture name ``func`` requests, directly or through ``local`` fixtures."""
    seen: set[str] = set()
    todo = list(_params(func))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in local:
            todo.extend(_params(local[name]))
    return seen


def test_scenarios_that_reach_node_files_are_node_level():
    conftest = {f.name: f for f in _functions(SCENARIOS / "conftest.py") if _is_fixture(f)}
    markers = scenario_markers()
    checked = 0
    for scenario_id, [(module, function)] in markers.items():
        funcs = _functions(SCENARIOS / f"{module}.py")
        local = conftest | {f.name: f for f in funcs if _is_fixture(f)}
        test = next(f for f in funcs if f.name == function)
        reached = fixtures_reached(test, local) & NODE_FIXTURES
        node_level = BY_ID[scenario_id].node_level
        assert node_level == bool(reached), (
            f"{scenario_id}: reaches {sorted(reached) or 'no node fixture'} "
            f"but node_level={node_level}"
        )
        checked += 1
    assert checked == len(CATALOG)


def test_fixtures_reached_follows_local_fixtures():
    tree = ast.parse(
        "import pytest\n"
        "@pytest.fixture\ndef setup(lab_own_registry): ...\n"
        "@pytest.fixture\ndef other(setup): ...\n"
        "def test_a(lab_scenario, other): ...\n"
        "def test_b(lab_scenario): ...\n"
    )
    funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    local = {k: v for k, v in funcs.items() if _is_fixture(v)}
    assert "lab_own_registry" in fixtures_reached(funcs["test_a"], local)
    assert not fixtures_reached(funcs["test_b"], local) & NODE_FIXTURES
