"""Data flows one way through lab/, and this test says so.

Every module under lab/ stands on a floor, in the order data flows (settings -> images ->
cluster/registry -> node config and secrets -> pods -> waits -> the scenario's record -> the
report -> the command line). A module imports only from its own floor or the floors below it,
never from fixtures/ or scenarios/. A new module must be placed here first: that is the point.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAB = Path(__file__).resolve().parents[2] / "lab"

# Mechanism any floor may use: errors, masking, signals, the catalogue's data, failure
# signatures, recording a transcript (recording never depends on rendering), and the generic
# watch loop (``lab.watch``: a deadline over the API's watch; named waits on pods sit higher).
BASE = 0
SETTINGS = 1
IMAGES = 2  # the offline build and what it bakes into images
CLUSTER = 3  # the kind cluster, the registries, API clients
NODE = 4  # node registry config, pull secrets and their content, kubectl, bring-up of a lab
PODS = 5  # the pods under test and views of what they and their events say
WATCH = 6  # named waits on pods and events; the doctor's reading of them
RECORD = 7  # a scenario's run and its typed result
REPORT = 8  # rendering a result as Markdown, HTML, JSON, JUnit
FRONT = 9  # the `pull-lab` command

LAYERS: dict[str, int] = {
    "lab": BASE,
    "lab.errors": BASE,
    "lab.masking": BASE,
    "lab.signals": BASE,
    "lab.credentials": BASE,
    "lab.versions": BASE,
    "lab.catalog": BASE,
    "lab.signatures": BASE,
    "lab.kubelet_messages": BASE,
    "lab.http_record": BASE,
    "lab.transcript": BASE,
    "lab.manifest_yaml": BASE,
    "lab.watch": BASE,
    "lab.settings": SETTINGS,
    "lab.offline": IMAGES,  # the package and every module in it
    "lab.registry_config": IMAGES,  # baked into the registry image
    "lab.pki": CLUSTER,
    "lab.cluster": CLUSTER,
    "lab.registry": CLUSTER,
    "lab.portforward": CLUSTER,
    "lab.incluster_registry": CLUSTER,  # a registry inside a cluster the lab did not make
    "lab.node_agent": CLUSTER,
    "lab.foreign": CLUSTER,  # that cluster: its nodes, the lab's namespace, the agent
    "lab.push": CLUSTER,
    "lab.kube": CLUSTER,
    "lab.cleanup": CLUSTER,
    "lab.sharing": CLUSTER,
    "lab.dockerconfig": NODE,
    "lab.kubectl": NODE,
    "lab.node": NODE,
    "lab.node_locks": NODE,  # which node a test holds: a lock per node
    "lab.credential_provider": NODE,
    "lab.secrets": NODE,
    "lab.session": NODE,  # brings up cluster, registries and the node's trust of their CA
    "lab.pods": PODS,
    "lab.expect": PODS,
    "lab.waits": WATCH,
    "lab.doctor": WATCH,  # the package and every module in it
    "lab.diagnose": WATCH,
    "lab.check": WATCH,  # probe pods per node, waited on, failures read by the doctor
    "lab.tutorial": RECORD,
    "lab.results": RECORD,
    "lab.scenario": RECORD,
    "lab.report": REPORT,
    "lab.matrix": REPORT,
    "lab.matrix_render": REPORT,
    "lab.cli": FRONT,
}
PACKAGES = ("lab.offline", "lab.doctor")  # placed whole: a module inside takes the package's floor


def module_name(path: Path) -> str:
    parts = path.relative_to(LAB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LAB.rglob("*.py"))}


def layer(module: str) -> int | None:
    if module in LAYERS:
        return LAYERS[module]
    for package in PACKAGES:
        if module.startswith(package + "."):
            return LAYERS[package]
    return None


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from lab import x` imports the module lab.x when there is one
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {
            m for m in imports(path) if m in known or m.split(".")[0] in ("fixtures", "scenarios")
        }
        for name, path in known.items()
    }


def test_every_module_is_placed_on_a_floor():
    unplaced = sorted(m for m in modules() if layer(m) is None)
    assert not unplaced, (
        f"place these modules in LAYERS (tests/unit/test_import_graph.py): {unplaced}"
    )


def test_no_floor_names_a_module_that_is_gone():
    stale = sorted(m for m in LAYERS if m not in modules())
    assert not stale, f"LAYERS names modules that no longer exist: {stale}"


def test_lab_never_imports_the_pytest_plugin_or_the_scenarios():
    wrong = sorted(
        f"{m} imports {dep}"
        for m, deps in graph().items()
        for dep in deps
        if dep.split(".")[0] in ("fixtures", "scenarios")
    )
    assert not wrong, wrong


def test_every_import_follows_the_data_flow():
    against = sorted(
        f"{m} (floor {layer(m)}) imports {dep} (floor {layer(dep)})"
        for m, deps in graph().items()
        for dep in deps
        if dep.startswith("lab") and (layer(dep) or 0) > (layer(m) or 0)
    )
    assert not against, "imports against the data flow:\n" + "\n".join(against)


def test_recording_never_imports_rendering():
    assert "lab.report" not in graph()["lab.transcript"]
    assert "lab.report" not in graph()["lab.results"]
    assert "lab.report" not in graph()["lab.scenario"]


def test_the_rule_catches_an_import_against_the_flow(tmp_path):
    """The checker itself: a settings module importing the build cache is caught."""
    bad = tmp_path / "settings.py"
    bad.write_text("from lab.offline.cache import BuildCache\n\ndef f():\n    import lab.report\n")
    found = imports(bad)
    assert {"lab.offline.cache", "lab.report"} <= found
    assert all(layer(dep) > LAYERS["lab.settings"] for dep in ("lab.offline.cache", "lab.report"))
