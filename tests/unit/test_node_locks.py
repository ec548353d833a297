"""Which node a test holds on a multi-node lab, and where its pods go: real file locks in a
temp dir (flock conflicts between two opens of a file in one process too)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lab.catalog import entry
from lab.errors import LabError
from lab.node_locks import NodeLocks, lock_order, rotated
from lab.results import ScenarioResult
from lab.scenario import ScenarioRun, pinned
from lab.sharing import try_lock

CP, W1, W2 = "lab-control-plane", "lab-worker", "lab-worker2"


def locks(tmp_path: Path, *workers: str, start: int = 0) -> NodeLocks:
    return NodeLocks(tmp_path, (CP, *workers), CP, start=start, poll=0.01)


def test_workers_come_before_the_control_plane():
    assert lock_order((CP, W1, W2), CP) == (W1, W2, CP)
    assert lock_order((CP,), CP) == (CP,)


def test_rotated_takes_turns():
    assert rotated((W1, W2), 0) == (W1, W2)
    assert rotated((W1, W2), 3) == (W2, W1)
    assert rotated((), 1) == ()


def test_without_workers_the_control_plane_is_held_and_pods_are_not_pinned(tmp_path):
    nodes = locks(tmp_path)
    with nodes.hold(exclusive=True) as hold:
        assert hold.nodes == (CP,)
        assert not hold.pin and hold.pod_node == ""
        assert nodes.try_hold((CP,), exclusive=False, count=1) is None
    assert nodes.try_hold((CP,), exclusive=False, count=1) is not None


def test_node_level_tests_take_a_free_node_each_workers_first(tmp_path):
    nodes = locks(tmp_path, W1, W2)
    with (
        nodes.hold(exclusive=True) as first,
        nodes.hold(exclusive=True) as second,
        nodes.hold(exclusive=True) as third,
    ):
        assert (first.node, second.node, third.node) == (W1, W2, CP)
        assert first.pin and first.pod_node == W1
        assert nodes.try_hold(nodes.order, exclusive=True, count=1) is None
        assert nodes.try_hold(nodes.order, exclusive=False, count=1) is None


def test_a_shared_hold_prefers_a_node_nobody_holds(tmp_path):
    nodes = locks(tmp_path, W1, W2)
    with nodes.hold(exclusive=False) as a, nodes.hold(exclusive=False) as b:
        assert {a.node, b.node} == {W1, W2}
        assert not a.exclusive
        # Both workers shared: a node-level test gets the control plane, not a shared worker.
        with nodes.hold(exclusive=True) as alone:
            assert alone.node == CP


def test_shared_holds_share_when_nothing_is_idle(tmp_path):
    nodes = locks(tmp_path, W1)
    with nodes.hold(exclusive=True) as alone:
        assert alone.node == W1
        with nodes.hold(exclusive=False) as a, nodes.hold(exclusive=False) as b:
            assert a.node == b.node == CP  # the worker is held alone; they share the other


def test_processes_start_their_shared_round_at_another_worker(tmp_path):
    first, second = locks(tmp_path, W1, W2, start=0), locks(tmp_path, W1, W2, start=1)
    assert first.candidates(exclusive=False) == (W1, W2, CP)
    assert second.candidates(exclusive=False) == (W2, W1, CP)
    assert second.candidates(exclusive=True) == (W1, W2, CP)


def test_a_pair_of_workers_is_all_or_nothing(tmp_path):
    nodes = locks(tmp_path, W1, W2)
    with nodes.hold(exclusive=False) as shared:
        assert shared.node == W1
        assert nodes.try_hold(nodes.workers, exclusive=True, count=2) is None
        held = try_lock(nodes.path(W2))  # the pass let go of the worker it did get
        assert held is not None
        held.close()
    with nodes.hold(exclusive=True, count=2, workers_only=True) as pair:
        assert pair.nodes == (W1, W2)
        assert nodes.try_hold((CP,), exclusive=True, count=1) is not None


def test_more_nodes_than_the_lab_has_is_an_error(tmp_path):
    with (
        pytest.raises(LabError, match="2 nodes wanted, the lab has 1"),
        locks(tmp_path, W1).hold(exclusive=True, count=2, workers_only=True),
    ):
        pass


def test_a_hold_waits_while_every_node_is_held_and_takes_the_first_freed(tmp_path):
    nodes = locks(tmp_path, W1)
    got: list[str] = []
    other = NodeLocks(tmp_path, (CP, W1), CP, poll=0.01)  # another process, as it were
    with nodes.hold(exclusive=True), nodes.hold(exclusive=True):
        waiter = threading.Thread(target=lambda: _hold_once(other, got))
        waiter.start()
        time.sleep(0.1)
        assert got == []
    waiter.join(timeout=5)
    assert got and got[0] in (W1, CP)


def _hold_once(nodes: NodeLocks, got: list[str]) -> None:
    with nodes.hold(exclusive=True) as hold:
        got.append(hold.node)


def test_pinned_sets_node_name_only_for_a_node():
    assert pinned({"spec": {}}, W1) == {"spec": {"nodeName": W1}}
    assert pinned({"spec": {}}, "") == {"spec": {}}


def test_a_scenarios_pods_go_to_its_node_unless_told_otherwise(tmp_path):
    run = ScenarioRun(
        entry=entry("node-no-ca"),
        namespace="lab-test",
        core=None,  # type: ignore[arg-type]
        kubectl_bin=tmp_path / "kubectl",
        kubeconfig=tmp_path / "kubeconfig",
        kubernetes_version="v1.37.0",
        run_id="r1",
        node=W1,
        nodes_held=(W1,),
    )
    assert run.pod("app", "reg/app:1")["spec"]["nodeName"] == W1
    assert run.pod("app", "reg/app:1", node=W2)["spec"]["nodeName"] == W2
    assert "nodeName" not in run.pod("app", "reg/app:1", node="")["spec"]
    run.pod_nodes["app"] = W1
    result = run.result("passed")
    assert (result.nodes, result.pod_nodes) == ((W1,), (("app", W1),))
    assert ScenarioResult.from_dict(result.to_dict()) == result


def test_the_markdown_report_says_which_nodes_and_where_each_pod_was():
    from lab.report import nodes_line

    result = ScenarioResult.placeholder(entry("node-no-ca"), "passed")
    held = replace(result, nodes=(W1,), pod_nodes=(("nginx-registry", W1),))
    assert nodes_line(held) == f"**Nodes**: {W1} (alone); pods: nginx-registry on {W1}"


def test_shared_holds_keep_off_a_node_a_waiting_test_wants_alone(tmp_path):
    nodes = locks(tmp_path, W1)
    other = NodeLocks(tmp_path, (CP, W1), CP, poll=0.01)
    got: list[str] = []
    with nodes.hold(exclusive=False) as a, nodes.hold(exclusive=False) as b:
        assert {a.node, b.node} == {W1, CP}
        waiter = threading.Thread(target=lambda: _hold_once(other, got))
        waiter.start()
        time.sleep(0.1)
        assert got == [] and nodes.wanted(W1) and nodes.wanted(CP)
        # A shared hold arriving now waits instead of taking a node the waiter wants.
        assert nodes.try_hold(nodes.order, exclusive=False, count=1) is None
    waiter.join(timeout=5)
    assert got and not nodes.wanted(W1) and not nodes.wanted(CP)


def test_something_started_during_a_test_goes_to_the_node_the_test_holds(tmp_path):
    nodes = locks(tmp_path, W1, W2)
    with nodes.hold(exclusive=False) as hold:
        node, guard = nodes.using(default=W1)
        assert node == hold.node
        with guard:  # already guarded by the test's own hold: no second lock to wait for
            pass
    assert nodes.holding == ()


def test_outside_a_test_it_waits_while_another_test_holds_the_node_alone(tmp_path):
    nodes, other = locks(tmp_path, W1, W2), locks(tmp_path, W1, W2)
    entered = threading.Event()
    with other.hold(exclusive=True) as hold:
        assert hold.node == W1
        node, guard = nodes.using(default=W1)
        assert node == W1

        def start() -> None:
            with guard:
                entered.set()

        thread = threading.Thread(target=start)
        thread.start()
        assert not entered.wait(0.3), "started on a node another test holds alone"
    thread.join(timeout=5)
    assert entered.is_set()
